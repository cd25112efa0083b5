//! `faultline cluster` and `faultline exec` as a user runs them: exit codes, a `cluster up`
//! SIGKILLed half-way and cleaned up by the next `up` or `down`, `exec` through namespaces,
//! the cluster's sshds, and a nodes file with explicit SSH options.
//!
//! Needs root: skips loudly unless FAULTLINE_REQUIRE_PRIVILEGED=1, then fails instead.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_faultline");

fn faultline(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run faultline")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Names with `prefix` in `ip netns list` and `ip link`.
fn ours(prefix: &str) -> Vec<String> {
    let mut v = Vec::new();
    for args in [&["netns", "list"][..], &["-o", "link"][..]] {
        let o = Command::new("ip").args(args).output().unwrap();
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let name = if args[0] == "netns" {
                line.split_whitespace().next()
            } else {
                line.split(':').nth(1).map(str::trim)
            };
            if let Some(n) = name.map(|n| n.split('@').next().unwrap()) {
                if n.starts_with(prefix) {
                    v.push(n.to_string());
                }
            }
        }
    }
    v.sort();
    v
}

/// Brings the cluster down when the test ends, however it ends.
struct Down(&'static str);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["cluster", "down", "--prefix", self.0])
            .output();
    }
}

/// Starts `cluster up` paused at `stage` (test hook), waits until it gets there, SIGKILLs it.
fn up_killed_at(prefix: &str, subnet: &str, stage: &str) {
    let mut child = Command::new(BIN)
        .args([
            "cluster", "up", "--nodes", "5", "--ssh", "--prefix", prefix, "--subnet", subnet,
        ])
        .env(control::cluster::PAUSE_HOOK_ENV, stage)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("paused at") {
                let _ = tx.send(());
            }
        }
    });
    let reached = rx.recv_timeout(Duration::from_secs(30)).is_ok();
    // SAFETY: SIGKILL to the child we spawned, by pid.
    unsafe { libc_kill(child.id() as i32, 9) };
    let _ = child.wait();
    assert!(reached, "cluster up never reached the stage {stage}");
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn bad_options_exit_254() {
    // Argument validation happens before any privileged step, so this runs everywhere.
    let o = faultline(&["cluster", "up", "--prefix", "BAD!", "--nodes", "2"]);
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let o = faultline(&[
        "exec",
        "n1",
        "--nodes-file",
        "/nonexistent/nodes",
        "--",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
}

#[test]
fn missing_sshd_is_one_line_and_exit_254() {
    if !control::prereq::privileged_or_skip("missing_sshd_is_one_line_and_exit_254", false) {
        return;
    }
    let o = Command::new(BIN)
        .args([
            "cluster",
            "up",
            "--ssh",
            "--nodes",
            "1",
            "--prefix",
            "flt6-",
            "--subnet",
            "10.77.6.0/24",
        ])
        .env("FAULTLINE_TOOL_SSHD", "/nonexistent/sshd")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("sshd") && e.contains("openssh-server"), "{e}");
    assert!(ours("flt6-").is_empty(), "nothing was made");
}

#[test]
fn killed_up_is_repaired_by_up_and_cleaned_by_down() {
    if !control::prereq::privileged_or_skip("killed_up_is_repaired_by_up_and_cleaned_by_down", true)
    {
        return;
    }
    const P: &str = "flt4-";
    let before = ours(P);
    let _down = Down(P);

    // Killed after the namespaces and links exist, before addresses and sshd.
    up_killed_at(P, "10.77.4.0/24", "netns");
    assert_eq!(
        ours(P).len(),
        5 + 5 + 1,
        "half-built: 5 namespaces, 5 veths, 1 bridge: {:?}",
        ours(P)
    );
    let st = faultline(&["cluster", "status", "--prefix", P]);
    assert_eq!(st.status.code(), Some(1), "{}", text(&st));
    assert!(
        String::from_utf8_lossy(&st.stdout).contains("did not finish"),
        "{}",
        text(&st)
    );
    // The next `up` rebuilds it into a working cluster.
    let o = faultline(&[
        "cluster",
        "up",
        "--nodes",
        "5",
        "--ssh",
        "--prefix",
        P,
        "--subnet",
        "10.77.4.0/24",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let st = faultline(&["cluster", "status", "--prefix", P]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st));
    let o = faultline(&[
        "exec",
        "--prefix",
        P,
        "--ssh",
        "all",
        "--",
        "sh",
        "-c",
        "ip -4 -o addr show dev eth0",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for i in 1..=5 {
        assert!(out.contains(&format!("10.77.4.{}/24", 10 + i)), "{out}");
    }

    // Killed again after the sshds started (a stale cluster with live processes): `down` cleans.
    let o = faultline(&["cluster", "down", "--prefix", P]);
    assert!(o.status.success(), "{}", text(&o));
    up_killed_at(P, "10.77.4.0/24", "sshd");
    let sshd_pids: Vec<u32> = (1..=5)
        .filter_map(|i| {
            std::fs::read_to_string(format!(
                "{}/flt4/nodes/n{i}/sshd.pid",
                control::cluster::default_state_root().display()
            ))
            .ok()
        })
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    assert_eq!(sshd_pids.len(), 5);
    let o = faultline(&["cluster", "down", "--prefix", P]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ours(P), before);
    std::thread::sleep(Duration::from_millis(100));
    for pid in sshd_pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "sshd {pid} survived down: {stat}"
        );
    }
    let st = faultline(&["cluster", "status", "--prefix", P]);
    assert_eq!(st.status.code(), Some(1));
}

#[test]
fn exec_through_namespaces_sshd_and_nodes_file() {
    if !control::prereq::privileged_or_skip("exec_through_namespaces_sshd_and_nodes_file", true) {
        return;
    }
    const P: &str = "flt5-";
    let before = ours(P);
    let _down = Down(P);
    let t0 = Instant::now();
    let o = faultline(&[
        "cluster",
        "up",
        "--nodes",
        "2",
        "--ssh",
        "--prefix",
        P,
        "--subnet",
        "10.77.5.0/24",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    eprintln!("cluster up --ssh (2 nodes): {:?}", t0.elapsed());

    let o = faultline(&["exec", "--prefix", P, "n2", "--", "echo", "hello world"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello world\n",
        "{}",
        text(&o)
    );
    // The command's exit status passes through.
    let o = faultline(&[
        "exec",
        "--prefix",
        P,
        "--ssh",
        "n1",
        "--",
        "sh",
        "-c",
        "echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    // Unknown node: the user's error.
    let o = faultline(&["exec", "--prefix", P, "n9", "--", "true"]);
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));

    // Real-host mode against the cluster's sshds: nodes file and explicit SSH options.
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes");
    std::fs::write(
        &nodes,
        "# name address\nalpha 10.77.5.11\nbeta 10.77.5.12\n",
    )
    .unwrap();
    let state = control::cluster::default_state_root().join("flt5");
    let key = state.join("id_ed25519");
    let kh = state.join("known_hosts");
    let ssh_args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "exec",
            "--nodes-file",
            nodes.to_str().unwrap(),
            "--ssh-user",
            "root",
            "--ssh-key",
            key.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let args = ssh_args(&[
        "--known-hosts",
        kh.to_str().unwrap(),
        "all",
        "--",
        "cat",
        "/proc/sys/kernel/hostname",
    ]);
    let o = Command::new(BIN).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("--- beta (10.77.5.12): exit 0"),
        "{}",
        text(&o)
    );
    // Unknown host key: which node, which address, how to trust it; exit 255.
    let empty = dir.path().join("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let args = ssh_args(&[
        "--known-hosts",
        empty.to_str().unwrap(),
        "alpha",
        "--",
        "true",
    ]);
    let o = Command::new(BIN).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("alpha") && e.contains("10.77.5.11") && e.contains("ssh-keyscan"),
        "{e}"
    );
    // ... unless explicitly skipped.
    let args = ssh_args(&[
        "--known-hosts",
        empty.to_str().unwrap(),
        "--insecure-skip-host-key-check",
        "alpha",
        "--",
        "true",
    ]);
    let o = Command::new(BIN).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // Unreachable host: node, address, what failed.
    std::fs::write(&nodes, "gamma 10.77.5.99\n").unwrap();
    let args = ssh_args(&[
        "--known-hosts",
        kh.to_str().unwrap(),
        "--ssh-connect-attempts",
        "2",
        "gamma",
        "--",
        "true",
    ]);
    let t0 = Instant::now();
    let o = Command::new(BIN).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("connect to node gamma (10.77.5.99:22)"), "{e}");
    eprintln!("unreachable host reported after {:?}: {e}", t0.elapsed());

    let o = faultline(&["cluster", "down", "--prefix", P]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(ours(P), before);
}
