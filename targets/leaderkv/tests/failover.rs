//! Crash, restart, join and failover scenarios without seeded bugs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Cluster, ELECTION_MS, is_err_prefix};
use leaderkv::client::Client;
use leaderkv::core::Role;
use leaderkv::{Mode, Reply};

/// Write continuously from a background task until told to stop; returns the acked keys.
fn writer(
    addr: std::net::SocketAddr,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut c = Client::connect(addr).await.expect("connect");
        let mut i = 0;
        while !stop.load(Ordering::SeqCst) && i < 100_000 {
            let keys: Vec<String> = (i..i + 20).map(|j| format!("{prefix}{j}")).collect();
            i += 20;
            let cmds: Vec<Vec<&[u8]>> = keys
                .iter()
                .map(|k| vec![&b"SET"[..], k.as_bytes(), b"v"])
                .collect();
            let r = c.pipeline(&cmds).await.expect("pipeline");
            for (k, r) in keys.into_iter().zip(r) {
                assert_eq!(r, Reply::ok(), "write {k}");
                acked.push(k);
            }
        }
        acked
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up_mid_stream() {
    let mut c = Cluster::start3(Mode::Sync, &[]).await;
    let l = c.wait_leader().await;
    let f = (l + 1) % 3;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(c.addrs[l], "r", stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.kill(f).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.start(f).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let acked = tokio::time::timeout(Duration::from_secs(10), w)
        .await
        .expect("writer ends")
        .unwrap();
    assert!(acked.len() > 100, "writes went on: {}", acked.len());
    c.wait_converged(Duration::from_secs(10)).await;
    let d = c.node(f).dump();
    assert!(
        acked.iter().all(|k| d.contains_key(k.as_bytes())),
        "the restarted follower has every acked write"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_follower_joins_from_snapshot_while_writes_go_on() {
    // n3 is a configured member that starts later with an empty data dir.
    let mut c = Cluster::new(3, 2, Mode::Sync, &[], 50_000).await;
    let l = c.wait_leader_among(&[0, 1], Duration::from_secs(10)).await;
    let pre = c.write_many(l, "pre", 500).await;
    assert_eq!(pre.len(), 500);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(c.addrs[l], "during", stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.start(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let acked = tokio::time::timeout(Duration::from_secs(10), w)
        .await
        .expect("writer ends")
        .unwrap();
    c.wait_converged(Duration::from_secs(10)).await;
    let st = c.node(2).status();
    assert!(
        st.snapshot_lsn > 0,
        "the new follower was seeded by a snapshot: {st:?}"
    );
    let d = c.node(2).dump();
    assert!(
        pre.iter()
            .chain(&acked)
            .all(|k| d.contains_key(k.as_bytes()))
    );
    assert_eq!(d, c.node(l).dump(), "identical state");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_behind_the_retained_log_resnapshots() {
    let mut c = Cluster::new(3, 3, Mode::Sync, &[], 50).await;
    let l = c.wait_leader().await;
    let f = (l + 1) % 3;
    c.kill(f).await;
    let acked = c.write_many(l, "b", 600).await;
    assert_eq!(acked.len(), 600);
    c.wait_until("leader compaction", Duration::from_secs(10), |c| {
        c.node(l).status().snapshot_lsn > 100
    })
    .await;
    c.start(f).await;
    c.wait_converged(Duration::from_secs(10)).await;
    assert!(
        c.node(f).status().snapshot_lsn > 0,
        "re-seeded from a snapshot"
    );
    assert_eq!(c.node(f).dump().len(), 600);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_is_replaced_without_losing_acked_writes() {
    let mut c = Cluster::start3(Mode::Sync, &[]).await;
    let l = c.wait_leader().await;
    let acked = c.write_many(l, "a", 400).await;
    assert_eq!(acked.len(), 400);
    c.kill(l).await;
    let t0 = tokio::time::Instant::now();
    let rest: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    let nl = c.wait_leader_among(&rest, Duration::from_secs(10)).await;
    let took = t0.elapsed();
    eprintln!("failover took {took:?}");
    assert!(
        took < Duration::from_millis(ELECTION_MS * 2 + 2000),
        "new leader within the timeout"
    );
    let mut cl = Client::connect(c.addrs[nl]).await.unwrap();
    for k in &acked {
        assert_eq!(
            cl.cmd(&["GET", k]).await.unwrap(),
            Reply::bulk(k.clone()),
            "acked write {k} survives"
        );
    }
    // The old leader comes back as a follower and catches up.
    c.start(l).await;
    c.wait_converged(Duration::from_secs(10)).await;
    assert_eq!(c.node(l).status().role, Role::Follower);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_old_leader_steps_down_and_discards_its_suffix() {
    let c = Cluster::start3(Mode::Sync, &[]).await;
    let l = c.wait_leader().await;
    assert_eq!(c.set(l, "before", "1").await, Reply::ok());
    c.isolate(l);
    // A write the isolated leader cannot replicate: never acknowledged.
    let r = c.set(l, "orphan", "1").await;
    assert!(
        is_err_prefix(&r, "UNCERTAIN") || is_err_prefix(&r, "NOLEADER"),
        "{r:?}"
    );
    let rest: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    let nl = c.wait_leader_among(&rest, Duration::from_secs(10)).await;
    assert_ne!(
        c.node(l).status().role,
        Role::Leader,
        "the isolated leader stepped down (lease)"
    );
    assert_eq!(c.set(nl, "after", "1").await, Reply::ok());
    c.heal();
    c.wait_until(
        "old leader follows the new one",
        Duration::from_secs(10),
        |c| {
            let s = c.node(l).status();
            s.role == Role::Follower && s.leader == Some(format!("n{}", nl + 1))
        },
    )
    .await;
    c.wait_converged(Duration::from_secs(10)).await;
    let d = c.node(l).dump();
    assert!(
        d.contains_key(&b"after"[..]) && !d.contains_key(&b"orphan"[..]),
        "suffix discarded, caught up"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semi_sync_replaces_a_failed_sync_follower() {
    let mut c = Cluster::start3(Mode::SemiSync, &[]).await;
    let l = c.wait_leader().await;
    assert_eq!(c.write_many(l, "s", 50).await.len(), 50);
    // Kill one follower, then the other: writes keep being acknowledged while one is left.
    let f1 = (l + 1) % 3;
    c.kill(f1).await;
    assert_eq!(
        c.write_many(l, "t", 50).await.len(),
        50,
        "the other follower became synchronous"
    );
    c.start(f1).await;
    c.wait_converged(Duration::from_secs(10)).await;
    let f2 = (l + 2) % 3;
    c.kill(f2).await;
    assert_eq!(c.write_many(l, "u", 50).await.len(), 50);
    c.shutdown().await;
}
