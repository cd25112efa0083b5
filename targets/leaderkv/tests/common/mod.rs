//! In-process clusters on 127.0.0.1 for the integration tests: nodes run as tasks of the test's
//! runtime; "kill" aborts them, "partition" uses the node's message-dropping hook.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use leaderkv::client::{Client, call};
use leaderkv::core::Role;
use leaderkv::{Args, Bug, Config, Mode, Node, Reply};
use tokio::time::Instant;

pub const ELECTION_MS: u64 = 400;
pub const HEARTBEAT_MS: u64 = 40;

pub struct Cluster {
    pub dirs: Vec<tempfile::TempDir>,
    pub addrs: Vec<SocketAddr>,
    pub nodes: Vec<Option<Node>>,
    pub mode: Mode,
    pub bugs: Vec<Bug>,
    pub retained_log: u64,
    pub follower_reads: leaderkv::config::FollowerReads,
    /// What the log carries (set before a node starts).
    pub replication: leaderkv::Replication,
}

/// A free port on 127.0.0.1, never the same twice in this process (so a restarted node of one
/// test cannot find its port taken by another test's cluster).
pub fn free_port() -> SocketAddr {
    static USED: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let a = l.local_addr().expect("local addr");
        if USED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(a.port())
        {
            return a;
        }
    }
}

pub fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

impl Cluster {
    /// A cluster of `n` configured members of which `started` are running.
    pub async fn new(
        n: usize,
        started: usize,
        mode: Mode,
        bugs: &[Bug],
        retained_log: u64,
    ) -> Cluster {
        if let Ok(path) = std::env::var("LEADERKV_TEST_LOG") {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("log file");
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .try_init();
        }
        let mut c = Cluster {
            dirs: (0..n)
                .map(|_| tempfile::tempdir().expect("tempdir"))
                .collect(),
            addrs: (0..n).map(|_| free_port()).collect(),
            nodes: (0..n).map(|_| None).collect(),
            mode,
            bugs: bugs.to_vec(),
            retained_log,
            follower_reads: leaderkv::config::FollowerReads::Stale,
            replication: leaderkv::Replication::Row,
        };
        for i in 0..started {
            c.start(i).await;
        }
        c
    }

    pub async fn start3(mode: Mode, bugs: &[Bug]) -> Cluster {
        Cluster::new(3, 3, mode, bugs, 50_000).await
    }

    pub fn config(&self, i: usize) -> Config {
        let peers: Vec<String> = ids(self.addrs.len())
            .iter()
            .zip(&self.addrs)
            .map(|(id, a)| format!("{id}={a}"))
            .collect();
        let args = Args {
            id: format!("n{}", i + 1),
            listen: None,
            peers,
            data_dir: self.dir(i),
            log_file: None,
            mode: self.mode,
            replication: self.replication,
            election_timeout_ms: ELECTION_MS,
            heartbeat_ms: HEARTBEAT_MS,
            lease_ms: None,
            write_timeout_ms: 1500,
            semi_sync_timeout_ms: 300,
            retained_log: self.retained_log,
            bugs: self.bugs.clone(),
            follower_reads: self.follower_reads,
        };
        Config::from_args(&args).expect("valid config")
    }

    pub fn dir(&self, i: usize) -> PathBuf {
        self.dirs[i].path().join("data")
    }

    pub async fn start(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match Node::start(self.config(i)).await {
                Ok(n) => {
                    self.nodes[i] = Some(n);
                    return;
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("retrying start of n{}: {e}", i + 1);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("failed to start n{}: {e}", i + 1),
            }
        }
    }

    pub async fn kill(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.kill().await;
        }
    }

    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node running")
    }

    /// Cut node i off from every other node (both directions).
    pub fn isolate(&self, i: usize) {
        let all = ids(self.addrs.len());
        let others: Vec<&str> = all
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| s.as_str())
            .collect();
        self.node(i).block(&others);
        for (j, n) in self.nodes.iter().enumerate() {
            if let (Some(n), true) = (n, j != i) {
                n.block(&[all[i].as_str()]);
            }
        }
    }

    pub fn heal(&self) {
        for n in self.nodes.iter().flatten() {
            n.heal();
        }
    }

    pub fn leaders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .as_ref()
                    .is_some_and(|n| n.status().role == Role::Leader)
            })
            .collect()
    }

    /// Wait until exactly one node among `among` leads (and the others agree); returns it.
    pub async fn wait_leader_among(&self, among: &[usize], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let ls: Vec<usize> = self
                .leaders()
                .into_iter()
                .filter(|l| among.contains(l))
                .collect();
            if let [l] = ls[..] {
                let st = self.node(l).status();
                let agree = among
                    .iter()
                    .filter(|&&j| self.nodes[j].is_some())
                    .all(|&j| {
                        let s = self.node(j).status();
                        s.term == st.term && s.leader.as_deref() == Some(st.id.as_str())
                    });
                if agree && st.commit >= 1 {
                    return l;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no single leader among {among:?} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn wait_leader(&self) -> usize {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect();
        self.wait_leader_among(&live, Duration::from_secs(10)).await
    }

    /// Wait until every running node applied everything the leader committed and all states match.
    pub async fn wait_converged(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let live: Vec<&Node> = self.nodes.iter().flatten().collect();
            let st: Vec<_> = live.iter().map(|n| n.status()).collect();
            let top = st.iter().map(|s| s.last_lsn).max().unwrap_or(0);
            if st.iter().all(|s| s.applied == top && s.last_lsn == top) {
                let d0 = live[0].dump();
                if live.iter().all(|n| n.dump() == d0) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "replicas did not converge within {timeout:?}: {st:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Until every running node has applied the leader's whole log (by LSN), whatever its data.
    pub async fn wait_caught_up(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let st: Vec<_> = self.nodes.iter().flatten().map(|n| n.status()).collect();
            let top = st.iter().map(|s| s.last_lsn).max().unwrap_or(0);
            if st.iter().all(|s| s.applied == top && s.last_lsn == top) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replicas did not catch up within {timeout:?}: {st:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn set(&self, i: usize, k: &str, v: &str) -> Reply {
        call(self.addrs[i], &["SET", k, v])
            .await
            .expect("SET round trip")
    }

    pub async fn get(&self, i: usize, k: &str) -> Reply {
        call(self.addrs[i], &["GET", k])
            .await
            .expect("GET round trip")
    }

    /// SET k0..kN on node i, pipelined in batches; returns the keys acknowledged OK.
    pub async fn write_many(&self, i: usize, prefix: &str, n: usize) -> BTreeSet<String> {
        let mut c = Client::connect(self.addrs[i]).await.expect("connect");
        let keys: Vec<String> = (0..n).map(|j| format!("{prefix}{j}")).collect();
        let mut acked = BTreeSet::new();
        for chunk in keys.chunks(50) {
            let cmds: Vec<Vec<&[u8]>> = chunk
                .iter()
                .map(|k| vec![&b"SET"[..], k.as_bytes(), k.as_bytes()])
                .collect();
            let replies = c.pipeline(&cmds).await.expect("pipeline");
            for (k, r) in chunk.iter().zip(replies) {
                if r == Reply::ok() {
                    acked.insert(k.clone());
                }
            }
        }
        acked
    }

    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&Cluster) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !f(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i).await;
        }
    }
}

pub fn is_err_prefix(r: &Reply, p: &str) -> bool {
    matches!(r, Reply::Error(e) if e.starts_with(p))
}
