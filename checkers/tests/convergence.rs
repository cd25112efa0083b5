//! The convergence checker on hand-built histories: a follower standing still behind the
//! leader after the last fault is `stuck-follower`, and so is one standing still ahead of it
//! (a diverged log); one that catches up, one still catching up, a tail too short and a
//! history without indices are not.

mod timed;

use checkers::Checker;
use checkers::convergence::Convergence;
use checkers::result::kind;
use history::Validity;
use serde_json::json;
use timed::Timed;

/// A partition healed at 1000 ms, then probes of n1 (leader, committed `c`) and n2, n3 every
/// 100 ms until `until` ms; `applied(node, t)` is each follower's applied index at t.
fn tail(until: f64, c: i64, applied: impl Fn(&str, f64) -> Option<i64>) -> Timed {
    tail_with(until, c, true, applied)
}

/// [`tail`], with the leader reporting its commit index, or (like a PostgreSQL primary) only
/// its applied index.
fn tail_with(
    until: f64,
    c: i64,
    leader_commits: bool,
    applied: impl Fn(&str, f64) -> Option<i64>,
) -> Timed {
    let mut t = Timed::default();
    t.nemesis(
        "start-partition",
        0.0,
        5.0,
        json!({"n1": ["n2"], "n2": ["n1"]}),
    );
    t.nemesis("stop-partition", 995.0, 1000.0, json!(null));
    let mut s = 1100.0;
    while s < until {
        let mut v = json!({"role": "leader", "term": 2, "leader": "n1", "applied": c});
        if leader_commits {
            v["committed"] = json!(c);
        }
        t.probe_value(1, "n1", s, s + 2.0, v);
        for (p, n) in [(2, "n2"), (3, "n3")] {
            let mut v = json!({"role": "follower", "term": 2, "leader": "n1"});
            if let Some(a) = applied(n, s) {
                v["applied"] = json!(a);
                v["committed"] = json!(a);
            }
            t.probe_value(p, n, s + 1.0, s + 3.0, v);
        }
        s += 100.0;
    }
    t
}

#[test]
fn a_follower_standing_still_behind_the_leader_is_stuck() {
    let h = tail(8000.0, 500, |n, _| Some(if n == "n3" { 120 } else { 500 })).build();
    let r = Convergence::default().check(&h);
    assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    assert_eq!(r.anomaly_types(), [kind::STUCK_FOLLOWER]);
    let a = &r.anomalies[0];
    assert_eq!(a.details["node"], "n3");
    assert_eq!(a.details["behind"], 380);
    assert!(
        a.explanation.contains("n3 stayed at applied index 120"),
        "{}",
        a.explanation
    );
    assert!(
        a.explanation.contains("leader n1 had committed 500"),
        "{}",
        a.explanation
    );
}

#[test]
fn caught_up_or_catching_up_followers_are_not_stuck() {
    // Caught up.
    let h = tail(8000.0, 500, |_, _| Some(500)).build();
    let r = Convergence::default().check(&h);
    assert_eq!(
        (r.valid, r.stats["judged"].clone()),
        (Validity::Valid, json!("yes"))
    );
    // Behind but advancing through the window: slow, not stuck.
    let h = tail(8000.0, 500, |n, t| {
        Some(if n == "n3" { (t / 100.0) as i64 } else { 500 })
    })
    .build();
    assert_eq!(Convergence::default().check(&h).valid, Validity::Valid);
}

#[test]
fn a_short_tail_or_no_indices_proves_nothing() {
    // Stuck, but observed for 3 s only after the heal: not judged.
    let h = tail(4000.0, 500, |n, _| Some(if n == "n3" { 120 } else { 500 })).build();
    let r = Convergence::default().check(&h);
    assert_eq!(r.valid, Validity::Valid);
    assert_ne!(r.stats["judged"], json!("yes"));
    // A system that reports no indices.
    let h = tail(8000.0, 500, |_, _| None).build();
    assert_eq!(Convergence::default().check(&h).valid, Validity::Valid);
}

#[test]
fn a_follower_standing_still_ahead_of_the_leader_has_diverged() {
    // A former leader that rejoined without rewinding: it holds records the leader lacks.
    let h = tail(8000.0, 500, |n, _| Some(if n == "n3" { 530 } else { 500 })).build();
    let r = Convergence::default().check(&h);
    assert_eq!(r.anomaly_types(), [kind::STUCK_FOLLOWER], "{r:?}");
    let a = &r.anomalies[0];
    assert_eq!(a.details["node"], "n3");
    assert!(
        a.explanation.contains("30 ahead of it"),
        "{}",
        a.explanation
    );
}

#[test]
fn a_leader_reporting_only_its_applied_index_is_judged_by_it() {
    // PostgreSQL's probe gives a primary's WAL position as its applied index, no commit index.
    let h = tail_with(8000.0, 500, false, |n, _| {
        Some(if n == "n3" { 120 } else { 500 })
    })
    .build();
    let r = Convergence::default().check(&h);
    assert_eq!(r.anomaly_types(), [kind::STUCK_FOLLOWER], "{r:?}");
    let h = tail_with(8000.0, 500, false, |_, _| Some(500)).build();
    let r = Convergence::default().check(&h);
    assert_eq!(
        (r.valid, r.stats["judged"].clone()),
        (Validity::Valid, json!("yes"))
    );
}
