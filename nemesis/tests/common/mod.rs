//! Shared helpers of the privileged nemesis tests: a cluster per test (own prefix and subnet,
//! brought down on drop, with every process the test started killed by pid), echo servers in
//! the namespaces, and reachability checks between every pair of nodes.

#![allow(dead_code, clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use control::cluster::{ClusterOptions, LocalCluster};
use control::{DaemonSpec, Exec, Remote};

pub const PORT: u16 = 7401;

pub fn probe() -> &'static str {
    env!("CARGO_BIN_EXE_faultline-nemesis-probe")
}

/// A test's own cluster; brought down (and its processes killed) on drop.
pub struct TestCluster {
    pub cluster: LocalCluster,
    pub prefix: String,
    pub dir: tempfile::TempDir,
    pids: Mutex<Vec<u32>>,
}

/// Brings a cluster up, or returns `None` after printing SKIPPED (not root, tools missing).
pub async fn up(test: &str, prefix: &str, subnet: &str, nodes: usize) -> Option<TestCluster> {
    if !control::prereq::privileged_or_skip(test, false) {
        return None;
    }
    let opts = ClusterOptions {
        nodes,
        subnet: subnet.into(),
        prefix: prefix.into(),
        ssh: false,
        state_root: control::cluster::default_state_root(),
    };
    let cluster = tokio::task::spawn_blocking(move || LocalCluster::up(&opts))
        .await
        .unwrap();
    let cluster = match cluster {
        Ok(c) => c,
        Err(e) => {
            let _ = LocalCluster::down_prefix(&control::cluster::default_state_root(), prefix);
            panic!("{test}: failed to bring the cluster up: {e}");
        }
    };
    Some(TestCluster {
        cluster,
        prefix: prefix.into(),
        dir: tempfile::tempdir().unwrap(),
        pids: Mutex::new(vec![]),
    })
}

impl TestCluster {
    pub fn names(&self) -> Vec<String> {
        self.cluster.nodes().into_iter().map(|n| n.name).collect()
    }

    pub fn remote(&self, name: &str) -> Arc<dyn Remote> {
        self.cluster.remote(name).unwrap()
    }

    pub fn addr(&self, name: &str) -> String {
        self.remote(name).node().addr.clone()
    }

    pub fn pidfile(&self, name: &str) -> String {
        self.dir
            .path()
            .join(format!("{name}.pid"))
            .display()
            .to_string()
    }

    /// Remembers a pid to kill on drop.
    pub fn track(&self, pid: u32) {
        self.pids.lock().unwrap().push(pid);
    }

    /// The echo server's daemon spec on `name`.
    pub fn echo_spec(&self, name: &str) -> DaemonSpec {
        let log = self
            .dir
            .path()
            .join(format!("{name}.log"))
            .display()
            .to_string();
        DaemonSpec::new(probe(), self.pidfile(name), log).args([
            "echo-server".to_string(),
            self.addr(name),
            PORT.to_string(),
        ])
    }

    /// Starts an echo server on every node; waits until each answers.
    pub async fn start_echo_servers(&self) {
        for n in self.names() {
            let pid = control::start_daemon(self.remote(&n).as_ref(), &self.echo_spec(&n))
                .await
                .unwrap();
            self.track(pid);
        }
        for n in self.names() {
            let mut ok = false;
            for _ in 0..50 {
                if host_round_trip(&self.addr(&n), Duration::from_millis(500)).await {
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(ok, "echo server on {n} did not come up");
        }
    }

    /// Whether `from` gets an echo from `to` within `timeout_ms`.
    pub async fn reaches(&self, from: &str, to: &str, timeout_ms: u64) -> bool {
        connect_from(self.remote(from), self.addr(to), timeout_ms).await
    }

    /// Reachability of every ordered pair (a, b), a != b, checked concurrently.
    pub async fn matrix(&self, timeout_ms: u64) -> BTreeMap<(String, String), bool> {
        let mut set = tokio::task::JoinSet::new();
        for a in self.names() {
            for b in self.names() {
                if a != b {
                    let r = self.remote(&a);
                    let addr = self.addr(&b);
                    let a = a.clone();
                    set.spawn(async move { ((a, b), connect_from(r, addr, timeout_ms).await) });
                }
            }
        }
        let mut m = BTreeMap::new();
        while let Some(res) = set.join_next().await {
            let (k, v) = res.unwrap();
            m.insert(k, v);
        }
        m
    }

    /// `iptables -S` inside a node.
    pub async fn iptables_rules(&self, name: &str) -> String {
        self.remote(name)
            .exec(&Exec::new("iptables").args(["-w", "5", "-S"]))
            .await
            .unwrap()
            .stdout
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for pid in self.pids.lock().unwrap().drain(..) {
            // SAFETY: plain syscalls on pids this test started.
            unsafe {
                libc::kill(pid as i32, libc::SIGCONT);
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        if let Err(e) =
            LocalCluster::down_prefix(&control::cluster::default_state_root(), &self.prefix)
        {
            eprintln!("cleanup of cluster {} failed: {e}", self.prefix);
        }
    }
}

pub async fn connect_from(r: Arc<dyn Remote>, addr: String, timeout_ms: u64) -> bool {
    let cmd = Exec::new(probe())
        .args([
            "connect".to_string(),
            addr,
            PORT.to_string(),
            timeout_ms.to_string(),
        ])
        .timeout(Duration::from_millis(timeout_ms * 3 + 5000));
    r.run(&cmd).await.map(|o| o.status == 0).unwrap_or(false)
}

/// A round trip from the controller (the host) to a node's echo server.
pub async fn host_round_trip(addr: &str, timeout: Duration) -> bool {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((addr, PORT)).await.ok()?;
        s.write_all(b"p\n").await.ok()?;
        let mut line = String::new();
        BufReader::new(&mut s).read_line(&mut line).await.ok()?;
        Some(line == "p\n")
    };
    matches!(tokio::time::timeout(timeout, fut).await, Ok(Some(true)))
}

/// Process state letter from /proc/PID/stat (`T` when stopped).
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The pid in a pidfile.
pub fn read_pid(path: &str) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Path of `libclockshim.so`, building the clockshim crate with cargo if needed.
pub fn clockshim_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let find = || {
        [
            profile_dir.join("libclockshim.so"),
            profile_dir.join("deps/libclockshim.so"),
        ]
        .into_iter()
        .find(|p| p.exists())
    };
    if let Some(p) = find() {
        return p;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = profile_dir.parent().unwrap();
    let st = std::process::Command::new(cargo)
        .args(["build", "-p", "clockshim", "--target-dir"])
        .arg(target_dir)
        .status()
        .expect("run cargo build -p clockshim");
    assert!(st.success(), "cargo build -p clockshim failed");
    find().expect("libclockshim.so after building clockshim")
}

pub fn which(prog: &str) -> Option<PathBuf> {
    control::prereq::which(prog)
}
