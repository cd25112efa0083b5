//! Throughput benchmark: starts a 3-node leaderkv cluster on 127.0.0.1 (real processes of the
//! `leaderkv` binary next to this example, or `LEADERKV_BIN`), drives 50 pipelined clients of
//! SETs at the leader for a few seconds per mode and prints acknowledged SETs per second.
//!
//! `cargo run --release -p leaderkv --example bench -- [SECONDS] [CLIENTS] [DEPTH]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use leaderkv::Reply;
use leaderkv::client::{Client, call};

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bin() -> PathBuf {
    if let Ok(p) = std::env::var("LEADERKV_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("leaderkv")
}

fn port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn run(mode: &str, secs: u64, clients: usize, depth: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let addrs: Vec<SocketAddr> = (0..3).map(|_| port()).collect();
    let peers: Vec<String> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("n{}={a}", i + 1))
        .collect();
    let mut procs = Procs(Vec::new());
    for i in 0..3 {
        let child = Command::new(bin())
            .args([
                "--id",
                &format!("n{}", i + 1),
                "--peers",
                &peers.join(","),
                "--mode",
                mode,
            ])
            .arg("--data-dir")
            .arg(dir.path().join(format!("n{}", i + 1)))
            .arg("--log-file")
            .arg(dir.path().join(format!("n{}.log", i + 1)))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn leaderkv (build it with --release first)");
        procs.0.push(child);
    }
    // Find the leader.
    let deadline = Instant::now() + Duration::from_secs(15);
    let leader = loop {
        let mut found = None;
        for a in &addrs {
            if let Ok(Reply::Array(v)) = call(*a, &["ROLE"]).await
                && v[0] == Reply::bulk("leader")
            {
                found = Some(*a);
            }
        }
        if let Some(a) = found
            && call(a, &["SET", "warmup", "1"]).await.ok() == Some(Reply::ok())
        {
            break a;
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let acked = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut cl = Client::connect(leader).await.expect("connect");
            let mut i = 0u64;
            let val = vec![b'x'; 32];
            while Instant::now() < stop_at {
                let keys: Vec<String> = (0..depth)
                    .map(|j| format!("c{c}k{}", (i + j as u64) % 1000))
                    .collect();
                i += depth as u64;
                let cmds: Vec<Vec<&[u8]>> = keys
                    .iter()
                    .map(|k| vec![&b"SET"[..], k.as_bytes(), &val])
                    .collect();
                let Ok(r) = cl.pipeline(&cmds).await else {
                    break;
                };
                acked.fetch_add(
                    r.iter().filter(|r| **r == Reply::ok()).count() as u64,
                    Ordering::Relaxed,
                );
            }
        }));
    }
    let t0 = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    let rate = acked.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    drop(procs);
    rate
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let secs = a.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let clients = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let depth = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    println!(
        "leaderkv bench: 3 nodes on 127.0.0.1, {clients} clients, pipeline depth {depth}, {secs}s per mode"
    );
    for mode in ["async", "semi-sync", "sync"] {
        let r = run(mode, secs, clients, depth).await;
        println!("{mode:>9}: {r:>10.0} acked SETs/s");
    }
}
