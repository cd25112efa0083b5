//! The dual-leader checker on hand-built histories: proven overlaps, overlaps that probe
//! timing cannot prove (never claimed), same-term leaders, split-brain writes.

mod timed;

use checkers::Checker;
use checkers::dual_leader::DualLeader;
use checkers::result::kind;
use history::{OpType, Validity};
use timed::Timed;

fn check(t: &Timed) -> checkers::CheckResult {
    DualLeader::default().check(&t.build())
}

fn kinds(r: &checkers::CheckResult) -> Vec<&'static str> {
    r.anomalies.iter().map(|a| a.kind).collect()
}

/// n1 leads term 1 (probes every 100 ms from 0 to 300 ms).
fn n1_leads(t: &mut Timed) {
    for s in [0.0, 100.0, 200.0, 300.0] {
        t.probe(1, "n1", s, s + 10.0, "leader", 1);
    }
}

#[test]
fn clean_failover_is_valid() {
    let mut t = Timed::default();
    n1_leads(&mut t);
    t.probe(1, "n1", 400.0, 410.0, "follower", 2);
    t.probe(2, "n2", 305.0, 315.0, "follower", 1);
    t.probe(2, "n2", 420.0, 430.0, "leader", 2);
    t.probe(2, "n2", 520.0, 530.0, "leader", 2);
    let r = check(&t);
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
    assert_eq!(r.stats["leader_runs_total"], 2);
    assert_eq!(r.stats["dual_leader_windows"], 0);
    let runs = r.stats["leader_runs"].as_array().unwrap();
    assert_eq!(runs[0]["node"], "n1");
    assert_eq!(runs[0]["term"], 1);
    assert_eq!(runs[1]["node"], "n2");
}

#[test]
fn bracketing_probes_prove_a_window_throughout() {
    let mut t = Timed::default();
    n1_leads(&mut t);
    t.probe(2, "n2", 150.0, 160.0, "leader", 2);
    t.probe(2, "n2", 250.0, 260.0, "leader", 2);
    let h = t.build();
    let r = DualLeader::default().check(&h);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(kinds(&r), [kind::DUAL_LEADER]);
    let a = &r.anomalies[0];
    assert_eq!(a.details["throughout"], true);
    // n1 proven from 10 to 300 ms, n2 from 160 to 250 ms.
    assert_eq!(a.details["start_s"], 0.16);
    assert_eq!(a.details["end_s"], 0.25);
    // The proof: the first and last leader probes of each node.
    for &i in &a.ops {
        assert_eq!(&*h.ops()[i as usize].f, "leader");
    }
    assert!(a.explanation.contains("n1") && a.explanation.contains("n2"));
    assert!(a.explanation.contains("0.160 s"), "{}", a.explanation);
}

#[test]
fn one_probe_inside_a_proven_interval_proves_an_instant() {
    let mut t = Timed::default();
    n1_leads(&mut t);
    t.probe(2, "n2", 150.0, 160.0, "leader", 2);
    let r = check(&t);
    assert_eq!(kinds(&r), [kind::DUAL_LEADER]);
    assert_eq!(r.anomalies[0].details["throughout"], false);
    assert_eq!(r.anomalies[0].details["start_s"], 0.15);
    assert_eq!(r.anomalies[0].details["end_s"], 0.16);
}

#[test]
fn overlapping_single_probes_prove_nothing() {
    // n1 said leader somewhere in 0..100 ms, n2 somewhere in 50..60 ms: maybe at once,
    // maybe not (n1 may have stepped down at 20 ms).
    let mut t = Timed::default();
    t.probe(1, "n1", 0.0, 100.0, "leader", 1);
    t.probe(2, "n2", 50.0, 60.0, "leader", 2);
    let r = check(&t);
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
    assert_eq!(r.stats["unproven_overlaps"], 1);
}

#[test]
fn a_probe_sticking_out_of_the_proven_interval_proves_nothing() {
    // n1 provably led 10..100 ms; n2's answers may fall just outside on either side.
    for (s, e) in [(90.0, 120.0), (5.0, 20.0)] {
        let mut t = Timed::default();
        t.probe(1, "n1", 0.0, 10.0, "leader", 1);
        t.probe(1, "n1", 100.0, 110.0, "leader", 1);
        t.probe(2, "n2", s, e, "leader", 2);
        let r = check(&t);
        assert_eq!(r.valid, Validity::Valid, "n2 probe {s}..{e}: {r:?}");
        assert_eq!(r.stats["unproven_overlaps"], 1);
    }
}

#[test]
fn another_answer_or_term_between_breaks_continuity() {
    // A follower answer between two leader answers of the same term.
    let mut t = Timed::default();
    t.probe(1, "n1", 0.0, 10.0, "leader", 1);
    t.probe(1, "n1", 100.0, 110.0, "follower", 1);
    t.probe(1, "n1", 200.0, 210.0, "leader", 1);
    t.probe(2, "n2", 150.0, 160.0, "leader", 2);
    let r = check(&t);
    assert!(!kinds(&r).contains(&kind::DUAL_LEADER), "{r:?}");
    // A term change: n1 led term 1, then term 3; not known to lead in between.
    let mut t = Timed::default();
    t.probe(1, "n1", 0.0, 10.0, "leader", 1);
    t.probe(1, "n1", 200.0, 210.0, "leader", 3);
    t.probe(2, "n2", 100.0, 110.0, "leader", 2);
    let r = check(&t);
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
    assert_eq!(r.stats["leader_runs_total"], 3);
}

#[test]
fn failed_probes_prove_nothing() {
    // A failed probe between two leader answers does not break the run.
    let mut t = Timed::default();
    t.probe(1, "n1", 0.0, 10.0, "leader", 1);
    t.probe_failed(1, "n1", 100.0, 110.0);
    t.probe(1, "n1", 200.0, 210.0, "leader", 1);
    t.probe(2, "n2", 150.0, 160.0, "leader", 2);
    assert_eq!(kinds(&check(&t)), [kind::DUAL_LEADER]);
    // Failed probes alone claim nothing: Unknown, not Valid, not Invalid.
    let mut t = Timed::default();
    t.probe_failed(1, "n1", 0.0, 10.0);
    t.probe_failed(2, "n2", 0.0, 10.0);
    let r = check(&t);
    assert_eq!(r.valid, Validity::Unknown);
    assert_eq!(r.stats["probes_unanswered"], 2);
    assert!(r.reason.unwrap().contains("no `leader` probe"));
}

#[test]
fn same_term_leaders_whatever_the_timing() {
    let mut t = Timed::default();
    t.probe(1, "n1", 0.0, 10.0, "leader", 5);
    t.probe(1, "n1", 100.0, 110.0, "follower", 6);
    t.probe(2, "n2", 1000.0, 1010.0, "leader", 5);
    let r = check(&t);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(kinds(&r), [kind::SAME_TERM_LEADERS]);
    assert_eq!(r.anomalies[0].details["term"], 5);
    assert_eq!(r.anomalies[0].ops, vec![0, 1, 4, 5]);
    assert!(r.anomalies[0].explanation.contains("term 5"));
}

#[test]
fn writes_acked_by_both_leaders_are_split_brain() {
    let mut t = Timed::default();
    n1_leads(&mut t);
    t.probe(2, "n2", 150.0, 160.0, "leader", 2);
    t.probe(2, "n2", 250.0, 260.0, "leader", 2);
    t.add(10, "n1", 170.0, 180.0, 4121, OpType::Ok);
    t.add(11, "n2", 200.0, 220.0, 77, OpType::Ok);
    // Failed and unknown writes put no data at stake.
    t.add(12, "n1", 190.0, 195.0, 5, OpType::Fail);
    let h = t.build();
    let r = DualLeader::default().check(&h);
    assert_eq!(kinds(&r), [kind::DUAL_LEADER, kind::SPLIT_BRAIN_WRITES]);
    let a = &r.anomalies[1];
    assert_eq!(a.details["writes"], serde_json::json!([1, 1]));
    assert!(a.explanation.contains("add 4121"), "{}", a.explanation);
    let adds: Vec<u64> = a
        .ops
        .iter()
        .copied()
        .filter(|&i| &*h.ops()[i as usize].f == "add")
        .collect();
    assert_eq!(adds.len(), 4);
    // Only one leader acking: a dual-leader window, no split brain.
    let mut t = Timed::default();
    n1_leads(&mut t);
    t.probe(2, "n2", 150.0, 160.0, "leader", 2);
    t.probe(2, "n2", 250.0, 260.0, "leader", 2);
    t.add(11, "n2", 200.0, 220.0, 77, OpType::Ok);
    t.add(10, "n1", 500.0, 510.0, 1, OpType::Ok);
    assert_eq!(kinds(&check(&t)), [kind::DUAL_LEADER]);
}

/// List-append transactions that append are writes too; reads are not.
#[test]
fn appending_txns_acked_by_both_leaders_are_split_brain() {
    let mut t = Timed::default();
    n1_leads(&mut t);
    t.probe(2, "n2", 150.0, 160.0, "leader", 2);
    t.probe(2, "n2", 250.0, 260.0, "leader", 2);
    t.append(10, "n1", 170.0, 180.0, 4121);
    t.append(11, "n2", 200.0, 220.0, 77);
    let r = check(&t);
    assert_eq!(kinds(&r), [kind::DUAL_LEADER, kind::SPLIT_BRAIN_WRITES]);
}

#[test]
fn odd_input_is_counted_not_trusted() {
    let mut t = Timed::default();
    t.probe(1, "n1", 0.0, 10.0, "leader", 1);
    let mut h = t.build().into_ops();
    // A probe answered with a string, one without a node, one without times.
    let mut extra = h.clone();
    extra[1].value = history::Value::str("<script>alert(1)</script>");
    h.extend(extra.iter().cloned());
    let mut no_node = h[0..2].to_vec();
    no_node.iter_mut().for_each(|o| o.node = None);
    h.extend(no_node);
    let mut no_time = h[0..2].to_vec();
    no_time.iter_mut().for_each(|o| o.time = None);
    h.extend(no_time);
    for (i, o) in h.iter_mut().enumerate() {
        o.index = i as u64;
    }
    let r = DualLeader::default().check(&history::History::new(h).unwrap());
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.stats["probes_answered"], 1);
    assert_eq!(r.stats["probes_unusable"], 3);
}

#[test]
fn a_dual_leader_window_is_explained_by_the_faults_when_it_opened_clocks_shown() {
    // A kill long over by the time the window opens, then n1's clock set back 5 s and n1
    // cut off: the context names the clock and the partition, not the kill.
    let mut t = Timed::default();
    t.nemesis("start-kill", 0.0, 1.0, serde_json::json!({"nodes": ["n3"]}));
    t.nemesis(
        "stop-kill",
        20.0,
        21.0,
        serde_json::json!({"nodes": ["n3"]}),
    );
    n1_leads(&mut t);
    t.nemesis(
        "start-clock",
        100.0,
        101.0,
        serde_json::json!({"nodes": ["n1"], "clock": {"mode": "bump", "delta_ms": -5000}, "offset_ms": -5000}),
    );
    t.nemesis(
        "start-partition",
        120.0,
        121.0,
        serde_json::json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
    );
    t.probe(2, "n2", 150.0, 160.0, "leader", 2);
    t.probe(2, "n2", 250.0, 260.0, "leader", 2);
    let h = t.build();
    let mut rs = vec![DualLeader::default().check(&h)];
    checkers::explain::enrich(&h, &mut rs);
    let a = &rs[0].anomalies[0];
    let ctx = a.details["context"].as_str().unwrap();
    assert!(ctx.contains("n1's clock was 5.000 s behind"), "{ctx}");
    assert!(ctx.contains("n1 was cut off from n2, n3"), "{ctx}");
    assert!(!ctx.contains("killed"), "{ctx}");
}
