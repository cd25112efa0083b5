//! Replication in each mode, restart catch-up, new followers joining from a snapshot.

mod common;

use std::time::Duration;

use common::{Cluster, is_err_prefix};
use leaderkv::client::{Client, call};
use leaderkv::{Mode, Reply};

async fn replicates_in(mode: Mode) {
    let c = Cluster::start3(mode, &[]).await;
    let l = c.wait_leader().await;
    let acked = c.write_many(l, "k", 300).await;
    assert_eq!(
        acked.len(),
        300,
        "every write is acknowledged in a healthy cluster"
    );
    c.wait_converged(Duration::from_secs(10)).await;
    for i in 0..3 {
        assert_eq!(c.node(i).dump().len(), 300, "n{} has every key", i + 1);
    }
    // Followers refuse writes and name the leader.
    let f = (l + 1) % 3;
    let r = c.set(f, "x", "1").await;
    let want = format!("MOVED n{} {}", l + 1, c.addrs[l]);
    assert_eq!(r, Reply::Error(want));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_sync() {
    replicates_in(Mode::Sync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_semi_sync() {
    replicates_in(Mode::SemiSync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_async() {
    replicates_in(Mode::Async).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_behave_like_redis() {
    let c = Cluster::start3(Mode::Sync, &[]).await;
    let l = c.wait_leader().await;
    let mut cl = Client::connect(c.addrs[l]).await.unwrap();
    assert_eq!(
        cl.cmd(&["PING"]).await.unwrap(),
        Reply::Simple("PONG".into())
    );
    assert_eq!(cl.cmd(&["SET", "a", "1"]).await.unwrap(), Reply::ok());
    assert_eq!(cl.cmd(&["GET", "a"]).await.unwrap(), Reply::bulk("1"));
    assert_eq!(cl.cmd(&["CAS", "a", "1", "2"]).await.unwrap(), Reply::ok());
    assert!(is_err_prefix(
        &cl.cmd(&["CAS", "a", "1", "3"]).await.unwrap(),
        "CASMISMATCH"
    ));
    assert_eq!(cl.cmd(&["GET", "a"]).await.unwrap(), Reply::bulk("2"));
    assert_eq!(cl.cmd(&["INCR", "id"]).await.unwrap(), Reply::Int(1));
    assert_eq!(cl.cmd(&["INCR", "id"]).await.unwrap(), Reply::Int(2));
    assert_eq!(
        cl.cmd(&["SADD", "s", "x", "y"]).await.unwrap(),
        Reply::Int(2)
    );
    assert_eq!(cl.cmd(&["SADD", "s", "x"]).await.unwrap(), Reply::Int(0));
    assert_eq!(
        cl.cmd(&["SMEMBERS", "s"]).await.unwrap(),
        Reply::Array(vec![Reply::bulk("x"), Reply::bulk("y")])
    );
    assert!(is_err_prefix(
        &cl.cmd(&["SADD", "a", "x"]).await.unwrap(),
        "WRONGTYPE"
    ));
    assert!(is_err_prefix(&cl.cmd(&["SET", "a"]).await.unwrap(), "ERR"));
    // Pipelined writes then a read on one connection: the read sees them.
    let cmds: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"p", b"1"],
        vec![b"INCR", b"p"],
        vec![b"INCR", b"p"],
        vec![b"GET", b"p"],
    ];
    let r = cl.pipeline(&cmds).await.unwrap();
    assert_eq!(
        r,
        vec![Reply::ok(), Reply::Int(2), Reply::Int(3), Reply::bulk("3")]
    );
    let role = call(c.addrs[l], &["ROLE"]).await.unwrap();
    let Reply::Array(v) = role else {
        panic!("ROLE is an array")
    };
    assert_eq!(v[0], Reply::bulk("leader"));
    assert_eq!(v[2], Reply::bulk(format!("n{}", l + 1)));
    assert_eq!(v[3], Reply::bulk(c.addrs[l].to_string()));
    let f = (l + 1) % 3;
    let Reply::Bulk(Some(info)) = call(c.addrs[f], &["INFO", "replication"]).await.unwrap() else {
        panic!()
    };
    let info = String::from_utf8_lossy(&info).to_string();
    assert!(
        info.contains("role:follower") && info.contains("reads:stale"),
        "{info}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_reads_can_be_redirected() {
    let mut c = Cluster::new(3, 0, Mode::Sync, &[], 50_000).await;
    c.follower_reads = leaderkv::config::FollowerReads::Redirect;
    for i in 0..3 {
        c.start(i).await;
    }
    let l = c.wait_leader().await;
    assert_eq!(c.set(l, "k", "v").await, Reply::ok());
    let f = (l + 1) % 3;
    let want = format!("MOVED n{} {}", l + 1, c.addrs[l]);
    assert_eq!(c.get(f, "k").await, Reply::Error(want));
    assert_eq!(c.get(l, "k").await, Reply::bulk("v"));
    c.shutdown().await;
}
