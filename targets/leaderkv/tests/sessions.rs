//! Lists and sessions: RPUSH/LRANGE, `SESSION <lsn> CMD` on followers (wait until the position
//! is applied), and the two seeded bugs of follower reads, each shown in a small scenario with
//! its correct twin.

mod common;

use std::time::Duration;

use common::{Cluster, is_err_prefix};
use leaderkv::client::call;
use leaderkv::{Bug, Mode, Reply};

fn others(l: usize, n: usize) -> Vec<usize> {
    (0..n).filter(|&i| i != l).collect()
}

/// `[position, reply]` of a `SESSION` command.
fn positioned(r: &Reply) -> (u64, &Reply) {
    match r {
        Reply::Array(items) if items.len() == 2 => match &items[0] {
            Reply::Int(p) => (*p as u64, &items[1]),
            other => panic!("position is not an integer: {other:?}"),
        },
        other => panic!("not a [position, reply] pair: {other:?}"),
    }
}

fn list(r: &Reply) -> Vec<String> {
    match r {
        Reply::Array(items) => items
            .iter()
            .map(|i| match i {
                Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_replicate_and_sessions_position_writes_and_reads() {
    let c = Cluster::start3(Mode::Sync, &[]).await;
    let l = c.wait_leader().await;
    let a = c.addrs[l];
    assert_eq!(call(a, &["RPUSH", "k", "1"]).await.unwrap(), Reply::Int(1));
    assert_eq!(
        call(a, &["RPUSH", "k", "2", "3"]).await.unwrap(),
        Reply::Int(3)
    );
    let w = call(a, &["SESSION", "0", "RPUSH", "k", "4"]).await.unwrap();
    let (pos, inner) = positioned(&w);
    assert_eq!(inner, &Reply::Int(4));
    assert!(pos >= 4, "three records and the term's noop before: {pos}");
    let r = call(a, &["LRANGE", "k", "0", "-1"]).await.unwrap();
    assert_eq!(list(&r), ["1", "2", "3", "4"]);
    assert_eq!(
        list(&call(a, &["LRANGE", "k", "1", "-2"]).await.unwrap()),
        ["2", "3"]
    );
    // A follower, asked with the write's position, answers with all of it.
    for f in others(l, 3) {
        let r = call(
            c.addrs[f],
            &["SESSION", &pos.to_string(), "LRANGE", "k", "0", "-1"],
        )
        .await
        .unwrap();
        let (at, inner) = positioned(&r);
        assert!(at >= pos);
        assert_eq!(list(inner), ["1", "2", "3", "4"]);
    }
    // Lists are a type of their own; writes to followers are refused as before.
    assert!(is_err_prefix(
        &call(a, &["GET", "k"]).await.unwrap(),
        "WRONGTYPE"
    ));
    let f = others(l, 3)[0];
    assert!(is_err_prefix(
        &call(c.addrs[f], &["SESSION", "0", "RPUSH", "k", "5"])
            .await
            .unwrap(),
        "MOVED"
    ));
    assert!(is_err_prefix(
        &call(a, &["SESSION", "x", "GET", "k"]).await.unwrap(),
        "ERR"
    ));
    // Lists survive a restart of every node (log replay and snapshot decoding).
    c.wait_converged(Duration::from_secs(10)).await;
    let dump = c.node(f).dump();
    assert_eq!(
        dump.get(&b"k"[..]),
        Some(&leaderkv::state::Value::List(
            ["1", "2", "3", "4"].map(bytes::Bytes::from).to_vec()
        ))
    );
    c.shutdown().await;
}

/// A follower cut off from the leader is asked for a list with the position of a write it
/// has not seen: it waits and refuses (correct), or answers without the write (the bug).
async fn read_behind_session(bug: bool) -> Reply {
    let bugs = if bug {
        vec![Bug::IgnoreSession]
    } else {
        vec![]
    };
    let c = Cluster::start3(Mode::Sync, &bugs).await;
    let l = c.wait_leader().await;
    c.wait_converged(Duration::from_secs(10)).await;
    let f = others(l, 3)[0];
    c.isolate(f);
    let w = call(c.addrs[l], &["SESSION", "0", "RPUSH", "k", "x"])
        .await
        .unwrap();
    let (pos, _) = positioned(&w);
    let r = call(
        c.addrs[f],
        &["SESSION", &pos.to_string(), "LRANGE", "k", "0", "-1"],
    )
    .await
    .unwrap();
    c.heal();
    c.shutdown().await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_session_waits_unless_it_ignores_sessions() {
    let correct = read_behind_session(false).await;
    assert!(
        is_err_prefix(&correct, "TRYAGAIN session"),
        "the correct follower refuses after waiting: {correct:?}"
    );
    let buggy = read_behind_session(true).await;
    let (_, inner) = positioned(&buggy);
    assert!(
        list(inner).is_empty(),
        "ignore-session answers without the client's own write: {buggy:?}"
    );
}

/// Five nodes; the leader and one follower are cut off from the other three, so what the
/// leader appends reaches the follower but never commits. Does the follower serve it?
async fn read_uncommitted_tail(bug: bool) -> Vec<String> {
    let bugs = if bug {
        vec![Bug::ReadUncommitted]
    } else {
        vec![]
    };
    let c = Cluster::new(5, 5, Mode::Sync, &bugs, 50_000).await;
    let l = c.wait_leader().await;
    c.wait_converged(Duration::from_secs(10)).await;
    let f = others(l, 5)[0];
    for i in others(l, 5).into_iter().filter(|&i| i != f) {
        c.isolate(i);
    }
    let leader = c.addrs[l];
    // Never acknowledged: the leader waits for a majority it cannot reach.
    let pending = tokio::spawn(async move { call(leader, &["RPUSH", "k", "tail"]).await });
    let mut seen = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let r = call(c.addrs[f], &["LRANGE", "k", "0", "-1"]).await.unwrap();
        seen = list(&r);
        if !seen.is_empty() {
            break;
        }
    }
    assert!(
        c.node(f).status().applied < c.node(f).status().last_lsn,
        "the follower holds the uncommitted record"
    );
    let r = pending.await.unwrap().unwrap();
    assert!(is_err_prefix(&r, "UNCERTAIN"), "{r:?}");
    c.heal();
    c.shutdown().await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_serves_uncommitted_records_only_with_the_bug() {
    assert!(read_uncommitted_tail(false).await.is_empty());
    assert_eq!(read_uncommitted_tail(true).await, ["tail"]);
}

fn cmd<'a>(words: &[&'a str]) -> Vec<&'a [u8]> {
    words.iter().map(|w| w.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_run_at_once_and_read_their_own_writes() {
    let c = Cluster::start3(Mode::Sync, &[]).await;
    let l = c.wait_leader().await;
    let mut k = leaderkv::client::Client::connect(c.addrs[l]).await.unwrap();
    let replies = k
        .pipeline(&[
            cmd(&["MULTI"]),
            cmd(&["RPUSH", "t", "1"]),
            cmd(&["LRANGE", "t", "0", "-1"]),
            cmd(&["RPUSH", "u", "2"]),
            cmd(&["EXEC"]),
        ])
        .await
        .unwrap();
    assert_eq!(replies[0], Reply::ok());
    assert_eq!(replies[1], Reply::Simple("QUEUED".into()));
    let Reply::Array(exec) = &replies[4] else {
        panic!("EXEC answers an array: {replies:?}")
    };
    assert_eq!(exec[0], Reply::Int(1));
    assert_eq!(list(&exec[1]), ["1"], "a transaction reads its own append");
    assert_eq!(exec[2], Reply::Int(1));
    // Wrapped in a session: [position, replies]; a follower runs read-only transactions.
    let r = k
        .pipeline(&[
            cmd(&["MULTI"]),
            cmd(&["RPUSH", "t", "3"]),
            cmd(&["SESSION", "0", "EXEC"]),
        ])
        .await
        .unwrap();
    let (pos, inner) = positioned(&r[2]);
    assert_eq!(inner, &Reply::Array(vec![Reply::Int(2)]));
    let f = others(l, 3)[0];
    let mut fk = leaderkv::client::Client::connect(c.addrs[f]).await.unwrap();
    let p = pos.to_string();
    let r = fk
        .pipeline(&[
            cmd(&["MULTI"]),
            cmd(&["LRANGE", "t", "0", "-1"]),
            cmd(&["LRANGE", "u", "0", "-1"]),
            cmd(&["SESSION", &p, "EXEC"]),
        ])
        .await
        .unwrap();
    let (at, inner) = positioned(&r[3]);
    assert!(at >= pos);
    let Reply::Array(reads) = inner else {
        panic!("{inner:?}")
    };
    assert_eq!(
        (list(&reads[0]), list(&reads[1])),
        (vec!["1".to_owned(), "3".into()], vec!["2".to_owned()])
    );
    // A follower refuses a transaction that writes; a refused command aborts EXEC.
    let r = fk
        .pipeline(&[cmd(&["MULTI"]), cmd(&["RPUSH", "t", "4"]), cmd(&["EXEC"])])
        .await
        .unwrap();
    assert!(is_err_prefix(&r[2], "MOVED"), "{r:?}");
    let r = k
        .pipeline(&[cmd(&["MULTI"]), cmd(&["PING"]), cmd(&["EXEC"])])
        .await
        .unwrap();
    assert!(is_err_prefix(&r[1], "ERR"), "{r:?}");
    assert!(is_err_prefix(&r[2], "EXECABORT"), "{r:?}");
    let r = k.pipeline(&[cmd(&["EXEC"])]).await.unwrap();
    assert!(is_err_prefix(&r[0], "ERR EXEC without MULTI"), "{r:?}");
    c.shutdown().await;
}
