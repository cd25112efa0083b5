//! Timings of the control plane (run by scripts/bench-control.sh, needs root):
//! 5-node `LocalCluster::up` with sshd and `down`, and 100 sequential `exec` calls over SSH to
//! one node (one session reused).

use std::time::{Duration, Instant};

use control::Exec;
use control::cluster::{ClusterOptions, LocalCluster};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !control::prereq::privileged_or_skip("bench-control", true) {
        std::process::exit(254);
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let opts = ClusterOptions {
        nodes: 5,
        ssh: true,
        prefix: "flb-".into(),
        subnet: "10.77.250.0/24".into(),
        ..ClusterOptions::default()
    };
    let _ = LocalCluster::down_prefix(&opts.state_root, &opts.prefix);
    let mut ups = Vec::new();
    let mut execs = Vec::new();
    for _ in 0..rounds {
        let o = opts.clone();
        let t0 = Instant::now();
        let c = LocalCluster::up_async(o).await.unwrap();
        let up = t0.elapsed();

        let r = c.ssh_remote("n1").await.unwrap();
        let t1 = Instant::now();
        for i in 0..100 {
            let out = r.exec(&Exec::new("echo").arg(i.to_string())).await.unwrap();
            assert_eq!(out.stdout.trim(), i.to_string());
        }
        let ex = t1.elapsed();
        drop(r);

        let t2 = Instant::now();
        c.down_async().await.unwrap();
        let down = t2.elapsed();
        println!(
            "library: 5-node up --ssh {:>7.1} ms, down {:>6.1} ms, total {:>7.1} ms | 100 sequential SSH execs {:>7.1} ms ({:.2} ms each)",
            ms(up),
            ms(down),
            ms(up + down),
            ms(ex),
            ms(ex) / 100.0
        );
        ups.push(up + down);
        execs.push(ex);
    }
    ups.sort();
    execs.sort();
    println!(
        "median of {rounds}: up+down {:.1} ms (target < 2000), 100 execs {:.1} ms (target < 2000)",
        ms(ups[rounds / 2]),
        ms(execs[rounds / 2])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
