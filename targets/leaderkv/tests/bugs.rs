//! Each seeded bug produces its anomaly in a small deterministic scenario, and the same scenario
//! without the bug does not.

mod common;

use std::time::Duration;

use common::{Cluster, ELECTION_MS, ids, is_err_prefix};
use leaderkv::core::Role;
use leaderkv::{Bug, Mode, Reply};

fn others(l: usize) -> Vec<usize> {
    (0..3).filter(|&i| i != l).collect()
}

/// Isolated leader acks a write, dies; is the acked write on the new leader?
async fn ack_before_replicate(bug: bool) -> bool {
    let bugs = if bug {
        vec![Bug::AckBeforeReplicate]
    } else {
        vec![]
    };
    let mut c = Cluster::start3(Mode::Sync, &bugs).await;
    let l = c.wait_leader().await;
    assert_eq!(c.set(l, "base", "1").await, Reply::ok());
    c.wait_converged(Duration::from_secs(10)).await;
    c.isolate(l);
    let acked = c.set(l, "w", "1").await == Reply::ok();
    c.kill(l).await;
    c.heal();
    let nl = c
        .wait_leader_among(&others(l), Duration::from_secs(10))
        .await;
    let present = c.get(nl, "w").await == Reply::bulk("1");
    assert_eq!(c.get(nl, "base").await, Reply::bulk("1"));
    c.shutdown().await;
    acked && !present
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_before_replicate_loses_acked_writes() {
    assert!(
        ack_before_replicate(true).await,
        "with the bug an acked write is lost"
    );
    assert!(
        !ack_before_replicate(false).await,
        "without it no acked write is lost"
    );
}

/// Old leader isolated, new leader elected: do both claim leadership, and does the old one
/// still acknowledge writes (async mode) that end up lost?
async fn no_fencing(bug: bool, mode: Mode) -> (bool, bool) {
    let bugs = if bug { vec![Bug::NoFencing] } else { vec![] };
    let c = Cluster::start3(mode, &bugs).await;
    let l = c.wait_leader().await;
    c.isolate(l);
    let nl = c
        .wait_leader_among(&others(l), Duration::from_secs(10))
        .await;
    let dual = c.node(l).status().role == Role::Leader && c.node(nl).status().role == Role::Leader;
    let r = c.set(l, "split", "old-leader").await;
    let acked = r == Reply::ok();
    if !acked {
        assert!(
            is_err_prefix(&r, "NOLEADER")
                || is_err_prefix(&r, "MOVED")
                || is_err_prefix(&r, "UNCERTAIN"),
            "{r:?}"
        );
    }
    c.heal();
    c.wait_until(
        "the old leader steps down after the heal",
        Duration::from_secs(10),
        |c| c.node(l).status().role != Role::Leader,
    )
    .await;
    c.wait_converged(Duration::from_secs(10)).await;
    let lost = acked && c.get(nl, "split").await == Reply::Bulk(None);
    c.shutdown().await;
    (dual, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fencing_gives_dual_leaders_and_lost_writes() {
    assert!(
        no_fencing(true, Mode::Sync).await.0,
        "dual leaders with the bug"
    );
    assert!(
        !no_fencing(false, Mode::Sync).await.0,
        "no dual leaders without it"
    );
    assert_eq!(
        no_fencing(true, Mode::Async).await,
        (true, true),
        "lost writes with the bug"
    );
    assert_eq!(
        no_fencing(false, Mode::Async).await,
        (false, false),
        "none without it"
    );
}

/// INCR ids on the old leader, then on the new leader after a crash: any id handed out twice?
async fn local_counter(bug: bool) -> bool {
    let bugs = if bug { vec![Bug::LocalCounter] } else { vec![] };
    let mut c = Cluster::start3(Mode::Sync, &bugs).await;
    let l = c.wait_leader().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let Reply::Int(n) = leaderkv::client::call(c.addrs[l], &["INCR", "ids"])
            .await
            .unwrap()
        else {
            panic!()
        };
        ids.push(n);
    }
    c.kill(l).await;
    let nl = c
        .wait_leader_among(&others(l), Duration::from_secs(10))
        .await;
    for _ in 0..3 {
        let Reply::Int(n) = leaderkv::client::call(c.addrs[nl], &["INCR", "ids"])
            .await
            .unwrap()
        else {
            panic!()
        };
        ids.push(n);
    }
    c.shutdown().await;
    let mut u = ids.clone();
    u.sort();
    u.dedup();
    u.len() != ids.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_counter_reuses_ids_after_failover() {
    assert!(local_counter(true).await, "ids reused with the bug");
    assert!(!local_counter(false).await, "unique ids without it");
}

/// A stale follower campaigns right after the leader dies: does it win and lose acked writes?
async fn elect_stale(bug: bool) -> bool {
    let bugs = if bug { vec![Bug::ElectStale] } else { vec![] };
    let mut c = Cluster::start3(Mode::Sync, &bugs).await;
    let l = c.wait_leader().await;
    let (stale, fresh) = ((l + 1) % 3, (l + 2) % 3);
    c.isolate(stale);
    let acked = c.write_many(l, "e", 50).await;
    assert_eq!(acked.len(), 50, "majority (leader + fresh follower) acks");
    c.kill(l).await;
    c.heal();
    c.node(stale).campaign();
    let nl = c
        .wait_leader_among(&[stale, fresh], Duration::from_secs(10))
        .await;
    let mut lost = false;
    for k in &acked {
        if c.get(nl, k).await == Reply::Bulk(None) {
            lost = true;
        }
    }
    c.shutdown().await;
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_stale_loses_acked_writes() {
    assert!(
        elect_stale(true).await,
        "a stale leader loses acked writes with the bug"
    );
    assert!(
        !elect_stale(false).await,
        "the up-to-date follower wins without it"
    );
}

/// 5 nodes. The leader is cut off and the others elect a new one, which acknowledges writes;
/// then a star: every node reaches only the old leader, and the new leader reaches nobody.
/// Only the old leader can gather a majority, but it missed the election (its term is stale)
/// and the acknowledged writes. Returns (the old leader won, acked writes were lost, the old
/// leader's term caught up with the new one).
async fn stale_bridge(bug: bool) -> (bool, bool, bool) {
    let bugs = if bug { vec![Bug::ElectStale] } else { vec![] };
    let c = Cluster::new(5, 5, Mode::Sync, &bugs, 50_000).await;
    let old = c.wait_leader().await;
    let rest: Vec<usize> = (0..5).filter(|&i| i != old).collect();
    c.isolate(old);
    let nl = c.wait_leader_among(&rest, Duration::from_secs(10)).await;
    let new_term = c.node(nl).status().term;
    let acked = c.write_many(nl, "b", 50).await;
    assert_eq!(acked.len(), 50, "the new leader's majority acks");
    c.heal();
    let all = ids(5);
    for i in (0..5).filter(|&i| i != old) {
        let cut: Vec<&str> = (0..5)
            .filter(|&j| j != i && j != old)
            .map(|j| all[j].as_str())
            .collect();
        c.node(i).block(&cut);
    }
    c.node(old).block(&[all[nl].as_str()]);
    let deadline = std::time::Instant::now() + Duration::from_millis(8 * ELECTION_MS);
    let mut won = false;
    while std::time::Instant::now() < deadline {
        if c.node(old).status().role == Role::Leader {
            won = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up = c.node(old).status().term >= new_term;
    let mut lost = false;
    if won {
        c.heal();
        let l = c.wait_leader().await;
        for k in &acked {
            if c.get(l, k).await == Reply::Bulk(None) {
                lost = true;
            }
        }
    }
    c.shutdown().await;
    (won, lost, caught_up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_old_leader_bridging_the_cluster_wins_only_with_elect_stale() {
    let (won, lost, _) = stale_bridge(true).await;
    assert!(
        won && lost,
        "with the bug the stale old leader wins ({won}) and loses acked writes ({lost})"
    );
    let (won, lost, caught_up) = stale_bridge(false).await;
    assert!(!won && !lost, "without it the stale old leader never wins");
    assert!(
        caught_up,
        "a refused pre-vote tells the stale node the current term"
    );
}

/// After a partition heals, does the old leader still claim leadership next to the new one?
async fn no_step_down(bug: bool) -> bool {
    let bugs = if bug { vec![Bug::NoStepDown] } else { vec![] };
    let c = Cluster::start3(Mode::Sync, &bugs).await;
    let l = c.wait_leader().await;
    c.isolate(l);
    let nl = c
        .wait_leader_among(&others(l), Duration::from_secs(10))
        .await;
    c.heal();
    tokio::time::sleep(Duration::from_millis(3 * ELECTION_MS)).await;
    let (a, b) = (c.node(l).status(), c.node(nl).status());
    let dual = a.role == Role::Leader && b.role == Role::Leader;
    if dual {
        // It keeps taking writes it can never commit.
        let r = c.set(l, "x", "1").await;
        assert!(is_err_prefix(&r, "UNCERTAIN"), "{r:?}");
    }
    c.shutdown().await;
    dual
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_step_down_keeps_two_leaders() {
    assert!(
        no_step_down(true).await,
        "the old leader keeps leading with the bug"
    );
    assert!(!no_step_down(false).await, "it steps down without it");
}

/// The leader's clock is set back 5 s, then it is cut off: does it still claim to lead once
/// the others have elected a new leader?
async fn wall_clock_lease(bug: bool) -> bool {
    let bugs = if bug {
        vec![Bug::WallClockLease]
    } else {
        vec![]
    };
    let c = Cluster::start3(Mode::Sync, &bugs).await;
    let l = c.wait_leader().await;
    assert_eq!(c.set(l, "base", "1").await, Reply::ok());
    c.node(l).skew_clock(-5_000);
    // A clock set back alone changes nothing while the leader hears from a majority.
    tokio::time::sleep(Duration::from_millis(3 * ELECTION_MS)).await;
    assert_eq!(c.leaders(), vec![l], "still the only leader");
    c.isolate(l);
    let nl = c
        .wait_leader_among(&others(l), Duration::from_secs(10))
        .await;
    let both = c.node(l).status().role == Role::Leader && c.node(nl).status().role == Role::Leader;
    c.shutdown().await;
    both
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_lease_leads_on_after_a_new_leader_is_elected() {
    assert!(
        wall_clock_lease(true).await,
        "with the bug the old leader still leads next to the new one"
    );
    assert!(
        !wall_clock_lease(false).await,
        "a monotonic lease steps down before anyone else can be elected"
    );
}
