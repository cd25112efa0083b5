//! Statement-based replication: the log carries the write commands and every node evaluates
//! them again. Each write stamps its key with the time it was evaluated at (an `updated_at`
//! column); the leader logs its time with the statement, so every node stamps the same. The
//! seeded bug `replica-clock` evaluates the time with the node's own clock (MySQL's
//! `SYSDATE()` under statement-based replication): the values agree, the stamps do not, and
//! only a comparison of the nodes' whole state (`DIGEST`) shows it.

mod common;

use std::time::Duration;

use common::Cluster;
use leaderkv::client::call;
use leaderkv::{Bug, Mode, Replication, Reply};

/// Three nodes, the followers' clocks off by -5 s and +3 s, a mix of writes; each node's
/// `DIGEST` and `GET`s once every node has applied the whole log.
async fn digests(replication: Replication, bugs: &[Bug]) -> (Vec<Reply>, Vec<Vec<Reply>>) {
    let mut c = Cluster::new(3, 0, Mode::Sync, bugs, 50_000).await;
    c.replication = replication;
    for i in 0..3 {
        c.start(i).await;
    }
    let l = c.wait_leader().await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    c.node(followers[0]).skew_clock(-5_000);
    c.node(followers[1]).skew_clock(3_000);
    let writes: [&[&str]; 7] = [
        &["SET", "a", "1"],
        &["INCR", "ids"],
        &["INCR", "ids"],
        &["SADD", "s", "x", "y"],
        &["RPUSH", "l", "1", "2"],
        &["CAS", "a", "1", "2"],
        &["SADD", "s", "x"],
    ];
    for w in writes {
        let r = call(c.addrs[l], w).await.expect("write round trip");
        assert!(!matches!(r, Reply::Error(_)), "{w:?}: {r:?}");
    }
    c.wait_caught_up(Duration::from_secs(10)).await;
    let mut digests = Vec::new();
    let mut values = Vec::new();
    for i in 0..3 {
        digests.push(call(c.addrs[i], &["DIGEST"]).await.expect("DIGEST"));
        // As faultline's client sends it: in a session, answered [position, digest].
        let Reply::Array(wrapped) = call(c.addrs[i], &["SESSION", "0", "DIGEST"])
            .await
            .expect("SESSION DIGEST")
        else {
            panic!("SESSION DIGEST answers [position, digest]");
        };
        assert_eq!(
            wrapped.get(1),
            digests.last(),
            "the same digest in a session"
        );
        let mut v = Vec::new();
        for q in [
            &["GET", "a"][..],
            &["GET", "ids"],
            &["SMEMBERS", "s"],
            &["LRANGE", "l", "0", "-1"],
        ] {
            v.push(call(c.addrs[i], q).await.expect("read"));
        }
        values.push(v);
    }
    c.shutdown().await;
    (digests, values)
}

fn all_equal<T: PartialEq>(v: &[T]) -> bool {
    v.windows(2).all(|w| w[0] == w[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_carry_the_leaders_time_and_every_node_agrees() {
    for replication in [Replication::Row, Replication::Statement] {
        let (digests, values) = digests(replication, &[]).await;
        assert!(
            all_equal(&values),
            "{replication:?}: values differ: {values:?}"
        );
        assert!(
            all_equal(&digests),
            "{replication:?}: digests differ: {digests:?}"
        );
        let Reply::Array(keys) = &digests[0] else {
            panic!("DIGEST is an array: {:?}", digests[0])
        };
        assert_eq!(keys.len(), 8, "four keys and their hashes: {keys:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_clock_statements_diverge_every_node() {
    let (digests, values) = digests(Replication::Row, &[Bug::ReplicaClock]).await;
    assert!(all_equal(&values), "the values agree: {values:?}");
    assert!(
        digests[0] != digests[1] && digests[1] != digests[2] && digests[0] != digests[2],
        "each node stamped the keys with its own clock: {digests:?}"
    );
}
