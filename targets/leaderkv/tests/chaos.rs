//! A bounded fault soak without seeded bugs: clients write through whichever node leads while
//! nodes are isolated, healed, crashed and restarted; afterwards every acknowledged SET and SADD
//! is present on every replica and no INCR id was handed out twice.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Cluster;
use leaderkv::client::Client;
use leaderkv::{Mode, Reply};
use tokio::time::Instant;

#[derive(Default)]
struct Acks {
    sets: Vec<String>,
    adds: Vec<String>,
    ids: Vec<i64>,
}

/// One client: sends to a node, follows MOVED, records what was acknowledged.
async fn client(
    addrs: Vec<std::net::SocketAddr>,
    me: usize,
    until: Instant,
    acks: Arc<Mutex<Acks>>,
) {
    let mut target = me % addrs.len();
    let mut n = 0u64;
    while Instant::now() < until {
        let Ok(Ok(mut c)) =
            tokio::time::timeout(Duration::from_secs(1), Client::connect(addrs[target])).await
        else {
            target = (target + 1) % addrs.len();
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        while Instant::now() < until {
            n += 1;
            let key = format!("c{me}-{n}");
            let cmds: Vec<Vec<&[u8]>> = vec![
                vec![b"SET", key.as_bytes(), b"v"],
                vec![b"SADD", b"set", key.as_bytes()],
                vec![b"INCR", b"ids"],
            ];
            let r = match tokio::time::timeout(Duration::from_secs(3), c.pipeline(&cmds)).await {
                Ok(Ok(r)) => r,
                _ => break,
            };
            let mut moved = false;
            {
                let mut a = acks.lock().unwrap();
                if r[0] == Reply::ok() {
                    a.sets.push(key.clone());
                }
                if r[1] == Reply::Int(1) {
                    a.adds.push(key.clone());
                }
                if let Reply::Int(id) = r[2] {
                    a.ids.push(id);
                }
                for x in &r {
                    if let Reply::Error(e) = x
                        && (e.starts_with("MOVED") || e.starts_with("NOLEADER"))
                    {
                        moved = true;
                    }
                }
            }
            if moved {
                if let Reply::Error(e) = &r[0]
                    && let Some(id) = e.strip_prefix("MOVED n").and_then(|s| s.split(' ').next())
                    && let Ok(i) = id.parse::<usize>()
                {
                    target = i - 1;
                } else {
                    target = (target + 1) % addrs.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_no_acknowledged_write_in_sync_mode() {
    let mut c = Cluster::start3(Mode::Sync, &[]).await;
    c.wait_leader().await;
    let acks = Arc::new(Mutex::new(Acks::default()));
    let until = Instant::now() + Duration::from_secs(12);
    let mut tasks = Vec::new();
    for me in 0..6 {
        tasks.push(tokio::spawn(client(
            c.addrs.clone(),
            me,
            until,
            acks.clone(),
        )));
    }
    // A fixed schedule, one step per second: isolate the leader, heal, crash the leader,
    // restart it, isolate a follower, heal, crash a follower, restart it, ...
    let mut down: Option<usize> = None;
    let mut step = 0usize;
    while Instant::now() < until {
        let leader = c.leaders().first().copied().unwrap_or(0);
        match step % 8 {
            0 => c.isolate(leader),
            2 => {
                c.kill(leader).await;
                down = Some(leader);
            }
            4 => c.isolate((leader + 1) % 3),
            6 => {
                let f = (leader + 2) % 3;
                c.kill(f).await;
                down = Some(f);
            }
            3 | 7 => {
                if let Some(d) = down.take() {
                    c.start(d).await;
                }
            }
            _ => c.heal(),
        }
        step += 1;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("client ends")
            .unwrap();
    }
    if let Some(d) = down {
        c.start(d).await;
    }
    c.heal();
    // A write through the final leader commits everything before it on every replica.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.set(c.wait_leader().await, "final", "1").await != Reply::ok() {
        assert!(Instant::now() < deadline, "a final write commits");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.wait_converged(Duration::from_secs(15)).await;
    let a = std::mem::take(&mut *acks.lock().unwrap());
    assert!(
        a.sets.len() > 50,
        "the workload made progress: {}",
        a.sets.len()
    );
    for i in 0..3 {
        let d = c.node(i).dump();
        for k in &a.sets {
            assert!(
                d.contains_key(k.as_bytes()),
                "acked SET {k} missing on n{}",
                i + 1
            );
        }
        let Some(leaderkv::state::Value::Set(members)) = d.get(&b"set"[..]) else {
            panic!("no set")
        };
        for k in &a.adds {
            assert!(
                members.contains(k.as_bytes()),
                "acked SADD {k} missing on n{}",
                i + 1
            );
        }
    }
    let uniq: BTreeSet<i64> = a.ids.iter().copied().collect();
    assert_eq!(uniq.len(), a.ids.len(), "INCR ids are unique");
    eprintln!(
        "acked: {} sets, {} adds, {} ids",
        a.sets.len(),
        a.adds.len(),
        a.ids.len()
    );
    c.shutdown().await;
}
