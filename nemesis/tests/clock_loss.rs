//! Clock skew through the LD_PRELOAD shim, packet loss and bandwidth on a real local cluster
//! (root).

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use control::{DaemonSpec, Exec};
use nemesis::{
    ClockAction, ClockMode, ClusterNemesis, Fault, Nemesis, NemesisConfig, NemesisOp, Target,
    shim_env,
};

fn on(n: &str) -> Target {
    Target::Nodes(vec![n.to_string()])
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn nemesis_for(tc: &common::TestCluster, clock: ClockMode) -> ClusterNemesis {
    ClusterNemesis::new(NemesisConfig {
        remotes: tc.cluster.remotes(),
        clock,
        state_path: tc.dir.path().join("nemesis-state.json"),
        seed: 3,
        system: None,
    })
    .unwrap()
}

/// RESP `TIME` against redis-server: its clock, in seconds.
fn redis_time(addr: &str, port: u16) -> Option<f64> {
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{addr}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"*1\r\n$4\r\nTIME\r\n").ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.iter().filter(|&&b| b == b'\n').count() < 5 {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).ok()?;
    let parts: Vec<&str> = text.split("\r\n").collect();
    Some(parts.get(2)?.parse::<f64>().ok()? + parts.get(4)?.parse::<f64>().ok()? / 1e6)
}

/// The skew (seconds) a fresh `faultline-clock now` sees on `node` under the shim.
async fn witness_skew(
    tc: &common::TestCluster,
    mode: &ClockMode,
    node: &str,
    helper: &Path,
) -> f64 {
    let mut cmd = Exec::new(helper.display().to_string()).arg("now");
    for (k, v) in shim_env(mode, node) {
        cmd = cmd.env(k, v);
    }
    let out = tc.remote(node).exec(&cmd).await.unwrap();
    out.stdout.trim().parse::<f64>().unwrap() - now_s()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_shim_moves_the_clock_at_runtime() {
    let Some(tc) = common::up(
        "clock_shim_moves_the_clock_at_runtime",
        "fln4c-",
        "10.77.43.0/24",
        2,
    )
    .await
    else {
        return;
    };
    let lib = common::clockshim_lib();
    let helper = lib.parent().unwrap().join("faultline-clock");
    let helper = if helper.exists() {
        helper
    } else {
        lib.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("faultline-clock")
    };
    let mode = ClockMode::Shim {
        dir: tc.dir.path().join("clock"),
        lib: lib.clone(),
    };
    let nem = nemesis_for(&tc, mode.clone());
    nem.setup().await.unwrap();

    // A long-running witness: redis-server (if installed) started under the shim.
    let redis = common::which("redis-server");
    let addr = tc.addr("n1");
    if let Some(redis) = &redis {
        let mut spec = DaemonSpec::new(
            redis.display().to_string(),
            tc.pidfile("redis"),
            tc.dir.path().join("redis.log").display().to_string(),
        )
        .args([
            "--bind",
            &addr,
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]);
        spec.args
            .extend(["--dir".to_string(), tc.dir.path().display().to_string()]);
        spec.env = shim_env(&mode, "n1");
        let pid = control::start_daemon(tc.remote("n1").as_ref(), &spec)
            .await
            .unwrap();
        tc.track(pid);
    } else {
        eprintln!(
            "redis-server not installed: the clock test uses faultline-clock as its only witness"
        );
    }
    let redis_skew = || {
        let mut v = None;
        for _ in 0..50 {
            v = redis_time(&addr, 6379);
            if v.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(tc.dir.path().join("redis.log")).unwrap_or_default();
        v.unwrap_or_else(|| {
            panic!("redis-server under the shim does not answer TIME; its log:\n{log}")
        }) - now_s()
    };
    if redis.is_some() {
        assert!(redis_skew().abs() < 1.0);
    }

    let bump = |ms| {
        NemesisOp::Start(Fault::Clock {
            target: on("n1"),
            action: ClockAction::Bump { delta_ms: ms },
        })
    };
    let a = nem.invoke(bump(5000)).await.unwrap();
    assert_eq!(a.f(), "start-clock");
    assert_eq!(a.value()["offset_ms"], 5000);
    assert!((witness_skew(&tc, &mode, "n1", &helper).await - 5.0).abs() < 1.0);
    assert!(
        witness_skew(&tc, &mode, "n2", &helper).await.abs() < 1.0,
        "n2 must not be skewed"
    );
    if redis.is_some() {
        let s = redis_skew();
        assert!((s - 5.0).abs() < 1.0, "redis TIME skew {s}, wanted +5 s");
    }
    let b = nem.invoke(bump(-8000)).await.unwrap();
    if redis.is_some() {
        let s = redis_skew();
        assert!((s + 3.0).abs() < 1.0, "bumps add up: skew {s}, wanted -3 s");
    }
    nem.invoke(NemesisOp::Stop(a.id)).await.unwrap();
    assert!((witness_skew(&tc, &mode, "n1", &helper).await + 8.0).abs() < 1.0);
    nem.invoke(NemesisOp::Stop(b.id)).await.unwrap();
    assert!(witness_skew(&tc, &mode, "n1", &helper).await.abs() < 1.0);

    // Strobe: the clock flips between +4 s and normal while it runs.
    let s = nem
        .invoke(NemesisOp::Start(Fault::Clock {
            target: on("n1"),
            action: ClockAction::Strobe {
                delta_ms: 4000,
                period_ms: 100,
            },
        }))
        .await
        .unwrap();
    let (mut high, mut low) = (0, 0);
    for _ in 0..30 {
        let v = witness_skew(&tc, &mode, "n1", &helper).await;
        if (v - 4.0).abs() < 1.0 {
            high += 1;
        } else if v.abs() < 1.0 {
            low += 1;
        }
        tokio::time::sleep(Duration::from_millis(37)).await;
    }
    assert!(
        high > 0 && low > 0,
        "strobe: {high} high and {low} low samples"
    );
    nem.invoke(NemesisOp::Stop(s.id)).await.unwrap();
    assert!(witness_skew(&tc, &mode, "n1", &helper).await.abs() < 1.0);
    if redis.is_some() {
        assert!(redis_skew().abs() < 1.0);
    }
    nem.teardown().await.unwrap();
}

/// Sends `count` datagrams n1 -> n2 and returns how many arrived.
async fn udp_delivered(tc: &common::TestCluster, count: u64) -> u64 {
    let r2 = tc.remote("n2");
    let recv_cmd = Exec::new(common::probe())
        .args([
            "udp-recv".to_string(),
            tc.addr("n2"),
            "7402".into(),
            "1500".into(),
            "30000".into(),
        ])
        .timeout(Duration::from_secs(40));
    let recv = tokio::spawn(async move { r2.exec(&recv_cmd).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let send = Exec::new(common::probe())
        .args([
            "udp-send".to_string(),
            tc.addr("n2"),
            "7402".into(),
            count.to_string(),
            "200".into(),
        ])
        .timeout(Duration::from_secs(60));
    tc.remote("n1").exec(&send).await.unwrap();
    let out = recv.await.unwrap().unwrap().stdout;
    out.lines().last().unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_drops_about_the_requested_fraction_and_bandwidth_uses_tbf() {
    let Some(tc) = common::up(
        "loss_drops_about_the_requested_fraction_and_bandwidth_uses_tbf",
        "fln4d-",
        "10.77.44.0/24",
        2,
    )
    .await
    else {
        return;
    };
    let nem = nemesis_for(&tc, ClockMode::Unsupported);
    nem.setup().await.unwrap();
    const N: u64 = 3000;
    let base = udp_delivered(&tc, N).await;
    assert!(base >= N * 99 / 100, "without loss only {base}/{N} arrived");

    let rec = nem
        .invoke(NemesisOp::Start(Fault::Loss {
            target: on("n2"),
            probability: 0.3,
        }))
        .await
        .unwrap();
    assert_eq!(rec.value()["probability"], 0.3);
    let got = udp_delivered(&tc, N).await;
    let lost = 1.0 - got as f64 / N as f64;
    eprintln!("loss 0.3 requested: {got}/{N} delivered, {:.3} lost", lost);
    assert!(
        (0.25..=0.35).contains(&lost),
        "lost fraction {lost}, wanted about 0.3"
    );
    nem.invoke(NemesisOp::Stop(rec.id)).await.unwrap();
    let after = udp_delivered(&tc, N).await;
    assert!(
        after >= N * 99 / 100,
        "after healing only {after}/{N} arrived"
    );

    // Bandwidth: a tbf root qdisc while active, gone after.
    let qdisc = || async {
        tc.remote("n1")
            .exec(&Exec::new("tc").args(["qdisc", "show", "dev", "eth0", "root"]))
            .await
            .unwrap()
            .stdout
    };
    let rec = nem
        .invoke(NemesisOp::Start(Fault::Bandwidth {
            target: on("n1"),
            rate_kbit: 256,
        }))
        .await
        .unwrap();
    let q = qdisc().await;
    assert!(q.contains("tbf") && q.contains("256Kbit"), "{q}");
    nem.invoke(NemesisOp::Stop(rec.id)).await.unwrap();
    assert!(!qdisc().await.contains("tbf"));
    nem.teardown().await.unwrap();
}
