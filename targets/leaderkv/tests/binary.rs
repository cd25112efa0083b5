//! The real `leaderkv` binary: a 3-process cluster on 127.0.0.1, redirects, crash and restart,
//! clean shutdown on SIGTERM, the log file.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leaderkv::Reply;
use leaderkv::client::call;

/// Kills (by handle) every process it started, even when a test fails.
struct Procs {
    children: Vec<Option<Child>>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn spawn(dir: &Path, i: usize, peers: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_leaderkv"))
        .args(["--id", &format!("n{}", i + 1), "--peers", peers])
        .args([
            "--election-timeout-ms",
            "400",
            "--heartbeat-ms",
            "40",
            "--mode",
            "sync",
        ])
        .arg("--data-dir")
        .arg(dir.join(format!("n{}", i + 1)))
        .arg("--log-file")
        .arg(dir.join(format!("n{}.log", i + 1)))
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn leaderkv")
}

async fn role(a: SocketAddr) -> Option<Vec<Reply>> {
    match call(a, &["ROLE"]).await {
        Ok(Reply::Array(v)) => Some(v),
        _ => None,
    }
}

async fn wait_leader(dir: &Path, addrs: &[SocketAddr], skip: Option<usize>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut seen = Vec::new();
        for (i, a) in addrs.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            let r = role(*a).await;
            if let Some(v) = &r
                && v[0] == Reply::bulk("leader")
            {
                let w = call(*a, &["SET", "probe", "1"]).await;
                if w.as_ref().ok() == Some(&Reply::ok()) {
                    return i;
                }
                seen.push(format!("n{}: {r:?} SET -> {w:?}", i + 1));
            } else {
                seen.push(format!("n{}: {r:?}", i + 1));
            }
        }
        if Instant::now() >= deadline {
            for i in 0..addrs.len() {
                let log = std::fs::read_to_string(dir.join(format!("n{}.log", i + 1)))
                    .unwrap_or_default();
                eprintln!("==== n{} log ====\n{log}", i + 1);
            }
            panic!("no leader: {seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_processes_replicate_fail_over_and_shut_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let addrs: Vec<SocketAddr> = (0..3).map(|_| port()).collect();
    let peers: Vec<String> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("n{}={a}", i + 1))
        .collect();
    let peers = peers.join(",");
    let mut p = Procs {
        children: (0..3).map(|i| Some(spawn(dir.path(), i, &peers))).collect(),
    };
    let l = wait_leader(dir.path(), &addrs, None).await;
    for i in 0..20 {
        let k = format!("k{i}");
        assert_eq!(
            call(addrs[l], &["SET", &k, "v"]).await.unwrap(),
            Reply::ok()
        );
    }
    let f = (l + 1) % 3;
    let r = call(addrs[f], &["SET", "x", "1"]).await.unwrap();
    assert_eq!(r, Reply::Error(format!("MOVED n{} {}", l + 1, addrs[l])));
    let v = role(addrs[f]).await.unwrap();
    assert_eq!(v[0], Reply::bulk("follower"));
    assert_eq!(v[2], Reply::bulk(format!("n{}", l + 1)));

    // Crash the leader (SIGKILL by handle); a new one takes over with every acked write.
    let mut old = p.children[l].take().unwrap();
    old.kill().unwrap();
    old.wait().unwrap();
    let nl = wait_leader(dir.path(), &addrs, Some(l)).await;
    for i in 0..20 {
        assert_eq!(
            call(addrs[nl], &["GET", &format!("k{i}")]).await.unwrap(),
            Reply::bulk("v")
        );
    }
    // Restart it from its data dir: it rejoins as a follower.
    p.children[l] = Some(spawn(dir.path(), l, &peers));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = role(addrs[l]).await
            && v[0] == Reply::bulk("follower")
            && v[2] == Reply::bulk(format!("n{}", nl + 1))
        {
            break;
        }
        assert!(Instant::now() < deadline, "restarted node did not rejoin");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // SIGTERM: clean exit.
    for c in p.children.iter_mut() {
        let mut c = c.take().unwrap();
        let st = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let code = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("no exit after SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(code.success(), "clean exit: {code:?}");
    }
    let log = std::fs::read_to_string(dir.path().join(format!("n{}.log", nl + 1))).unwrap();
    assert!(
        log.contains("elected leader"),
        "the log file records the election"
    );
}

/// A leader paused past its lease (SIGSTOP) while another is elected does not answer `ROLE`
/// as leader when it wakes: the first thing it does with a request is to check its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_does_not_claim_the_lead_when_it_wakes() {
    let dir = tempfile::tempdir().unwrap();
    let addrs: Vec<SocketAddr> = (0..3).map(|_| port()).collect();
    let peers: Vec<String> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("n{}={a}", i + 1))
        .collect();
    let peers = peers.join(",");
    let p = Procs {
        children: (0..3).map(|i| Some(spawn(dir.path(), i, &peers))).collect(),
    };
    let l = wait_leader(dir.path(), &addrs, None).await;
    let pid = p.children[l].as_ref().unwrap().id().to_string();
    let signal = |sig: &str| {
        let st = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(st.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    let resumed = scopeguard(|| {
        let _ = Command::new("kill").args(["-CONT", &pid]).status();
    });
    let nl = wait_leader(dir.path(), &addrs, Some(l)).await;
    assert_ne!(nl, l);
    // Asked while paused, answered first thing after waking.
    let asked = tokio::spawn(role(addrs[l]));
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal("-CONT");
    drop(resumed);
    let v = asked.await.unwrap().expect("the woken node answers ROLE");
    assert_ne!(v[0], Reply::bulk("leader"), "stale claim: {v:?}");
}

/// Runs `f` when dropped (resumes a paused process even when the test fails).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct G<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for G<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    G(Some(f))
}
