//! `faultline heal` after a SIGKILLed run: a partition, a pause and a clock skew are in force
//! when the controller is killed (nothing of it gets to heal); `heal` alone must remove every
//! rule, resume every paused process and reset every clock offset, through the namespaces
//! and through the nodes' sshds. And `--leave-running`: the system answers after the run,
//! and `cluster down` removes all of it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, faultline, no_faultline_rules, ready_or_skip, text};

/// A partition (n1 cut off), a pause (n2) and a clock bump (n3), each for 100 s from 1 s
/// after the warm-up: in force whenever the run is killed.
fn schedule(dir: &Path) -> PathBuf {
    let p = dir.join("held.toml");
    std::fs::write(
        &p,
        r#"nodes = ["n1", "n2", "n3"]
[[faults]]
start_ms = 1000
end_ms = 100000
fault = { kind = "partition", partition = { isolate = "n1" } }
[[faults]]
start_ms = 1000
end_ms = 100000
fault = { kind = "pause", target = { nodes = ["n2"] } }
[[faults]]
start_ms = 1000
end_ms = 100000
fault = { kind = "clock", target = { nodes = ["n3"] }, action = { mode = "bump", delta_ms = 60000 } }
"#,
    )
    .unwrap();
    p
}

fn pending(state_file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(state_file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["pending"].as_array().cloned())
        .unwrap_or_default()
}

/// The processes of namespace `ns` that are stopped (SIGSTOP).
fn stopped(ns: &str) -> Vec<u32> {
    let o = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('T'))
                })
                .unwrap_or(false)
        })
        .collect()
}

fn offset_ns(file: &str) -> i64 {
    let b = std::fs::read(file).unwrap();
    i64::from_ne_bytes(b[..8].try_into().unwrap())
}

fn heal_after_kill(name: &str, prefix: &'static str, subnet: &'static str, ssh: bool) {
    if !ready_or_skip(name, &["ip", "iptables"], "iproute2 iptables") {
        return;
    }
    let c = Cluster::new(prefix, subnet);
    // The cluster's state lives where every cluster's does (they share the blackhole route).
    let state_file = Path::new(control::cluster::DEFAULT_STATE_ROOT)
        .join(prefix.trim_end_matches('-'))
        .join("nemesis-state.json");
    let sched = schedule(c.store.path());
    let via: &[&str] = if ssh { &["--ssh"] } else { &[] };
    let log = c.store.path().join("killed-run.log");
    let mut child = faultline()
        .args(c.args())
        .args(via)
        .args(["--nemesis", "partition,pause,clock", "--time-limit", "120s"])
        .arg("--schedule")
        .arg(&sched)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Wait for the three faults to be written ahead, and a moment for them to apply.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let kinds: Vec<String> = pending(&state_file)
            .iter()
            .filter_map(|e| e["action"]["action"].as_str().map(str::to_owned))
            .collect();
        if ["iptables", "resume", "clock-shim"]
            .iter()
            .all(|k| kinds.iter().any(|x| x == k))
        {
            break;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the faults never all started:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap(); // SIGKILL: no handler, no heal
    child.wait().unwrap();

    // The faults are in force.
    let n = |i: u32| format!("{prefix}n{i}");
    assert!(
        no_faultline_rules(prefix, 3).is_err(),
        "no partition rules before heal"
    );
    assert!(
        !stopped(&n(2)).is_empty(),
        "nothing paused on n2 before heal"
    );
    let clock_file = pending(&state_file)
        .iter()
        .find_map(|e| e["action"]["file"].as_str().map(str::to_owned))
        .expect("a clock shim entry");
    assert_eq!(offset_ns(&clock_file), 60_000_000_000);
    let entries = pending(&state_file).len();

    let o = faultline()
        .args(["heal", "--prefix", prefix])
        .args(via)
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("iptables rule(s)"), "{out}");
    assert!(out.contains("resumed paused process(es)"), "{out}");
    assert!(out.contains("reset the clock offset to 0"), "{out}");
    assert!(
        out.contains(&format!("{entries} fault(s) healed, 0 failed")),
        "{out}"
    );

    no_faultline_rules(prefix, 3).unwrap();
    for i in 1..=3 {
        assert_eq!(
            stopped(&n(i)),
            Vec::<u32>::new(),
            "{} still has stopped processes",
            n(i)
        );
    }
    assert_eq!(offset_ns(&clock_file), 0);
    assert!(
        pending(&state_file).is_empty(),
        "the state file still lists faults"
    );

    // Twice is harmless: nothing left.
    let o = faultline()
        .args(["heal", "--prefix", prefix])
        .args(via)
        .output()
        .unwrap();
    assert!(text(&o).contains("0 fault(s) healed"), "{}", text(&o));

    // The cluster (and the system the killed run left in it) is the test's to remove.
    Command::new(common::BIN)
        .args(["cluster", "down", "--prefix", prefix])
        .output()
        .unwrap();
    assert!(!Path::new(&format!("/tmp/faultline-nodes/{prefix}")).exists());
}

#[test]
fn heal_after_a_sigkilled_run_on_namespaces() {
    heal_after_kill(
        "heal_after_a_sigkilled_run_on_namespaces",
        "flh1-",
        "10.77.111.0/24",
        false,
    );
}

#[test]
fn heal_after_a_sigkilled_run_over_ssh() {
    if !ready_or_skip(
        "heal_after_a_sigkilled_run_over_ssh",
        &["sshd"],
        "openssh-server",
    ) {
        return;
    }
    heal_after_kill(
        "heal_after_a_sigkilled_run_over_ssh",
        "flh2-",
        "10.77.112.0/24",
        true,
    );
}

#[test]
fn leave_running_keeps_the_system_up_until_cluster_down() {
    if !ready_or_skip("leave_running", &["ip", "iptables"], "iproute2 iptables") {
        return;
    }
    let c = Cluster::new("flh3-", "10.77.113.0/24");
    let (code, out, results) = c.run(&["--time-limit", "8s", "--leave-running"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("left running (every fault healed):"), "{out}");
    assert!(
        out.contains("faultline cluster down --prefix flh3-"),
        "{out}"
    );
    let client = results["left_running"]["nodes"][0]["client"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(client, "10.77.113.11:7000");
    // The store answers a PING from the host after the run.
    let ping = || -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) =
            std::net::TcpStream::connect_timeout(&client.parse().unwrap(), Duration::from_secs(2))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 16];
        s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
            && s.read(&mut buf)
                .map(|n| buf[..n].starts_with(b"+PONG"))
                .unwrap_or(false)
    };
    assert!(
        ping(),
        "leaderkv on n1 does not answer after --leave-running"
    );
    no_faultline_rules("flh3-", 3).unwrap();
    c.down();
    assert!(!ping(), "still answering after cluster down");
    assert!(!Path::new("/tmp/faultline-nodes/flh3-").exists());
}
