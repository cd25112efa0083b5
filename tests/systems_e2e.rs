//! End-to-end tests of `faultline test` on third-party systems installed from the OS packages
//! (root; local clusters `fls1-` 10.77.71.0/24 ...). Each test has its own cluster and a guard
//! that brings it down even when the test fails (the run itself tears the system down).
//! Without root, or without the system's programs, they print `SKIPPED` unless
//! `FAULTLINE_REQUIRE_PRIVILEGED=1`, which makes them fail instead.
//!
//! - `redis-sentinel`, the primary isolated for 30 s: the isolated primary keeps acknowledging
//!   writes while Sentinel promotes a replica; after the heal those writes are gone
//!   (`lost-write`) and the probes saw two primaries (`dual-leader`): exit 1.
//! - `etcd` under partitions, pauses and kills: `register` (linearizable) and `set` valid,
//!   no dual leaders among quorum-confirmed leaders, exit 0 (two seeds).
//! - `postgres-patroni`, asynchronous, the primary isolated for 20 s: a decided verdict
//!   (exit 0 or 1) with only the anomaly classes asynchronous replication can cause; lost
//!   writes and reused ids are findings, not test failures.
//! - argument errors (an unknown system, `clock` on etcd) exit 254 without root.

use std::path::Path;
use std::process::Command;

mod common;

use common::{BIN, text};

const REQUIRE: &str = "FAULTLINE_REQUIRE_PRIVILEGED";

/// Root and cluster tools, and `programs` on the PATH; else skip loudly (or fail when
/// `FAULTLINE_REQUIRE_PRIVILEGED=1`).
fn ready_or_skip(test: &str, programs: &[&str], package: &str) -> bool {
    if !control::prereq::privileged_or_skip(test, false) {
        return false;
    }
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| control::prereq::tool_path(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} not installed (apt-get install -y {package})",
        missing.join(", ")
    );
    if std::env::var(REQUIRE).as_deref() == Ok("1") {
        panic!("{test}: {why} ({REQUIRE}=1, so this fails instead of skipping)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n==== SKIPPED: {test}: {why} ====\n");
    false
}

/// A local cluster of 3 nodes that is brought down when dropped.
struct Cluster {
    prefix: &'static str,
    subnet: &'static str,
    store: tempfile::TempDir,
}

impl Cluster {
    fn new(prefix: &'static str, subnet: &'static str) -> Cluster {
        Cluster {
            prefix,
            subnet,
            store: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `faultline test` with `extra`; returns the exit code, output and results.json.
    fn run(&self, extra: &[&str]) -> (i32, String, serde_json::Value) {
        let o = Command::new(BIN)
            .env_remove("FAULTLINE_NEMESIS_STATE")
            .args(["test", "--nodes", "3", "--prefix", self.prefix])
            .args(["--subnet", self.subnet, "--store"])
            .arg(self.store.path())
            .args(extra)
            .output()
            .expect("run faultline");
        let results = std::fs::read_to_string(self.store.path().join("latest/results.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        (o.status.code().unwrap_or(-1), text(&o), results)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["cluster", "down", "--prefix", self.prefix])
            .output();
    }
}

#[test]
fn redis_sentinel_loses_acknowledged_writes_when_the_primary_is_isolated() {
    let test = "redis_sentinel_loses_acknowledged_writes_when_the_primary_is_isolated";
    if !ready_or_skip(
        test,
        &["redis-server", "redis-sentinel"],
        "redis-server redis-sentinel",
    ) {
        return;
    }
    let c = Cluster::new("fls1-", "10.77.71.0/24");
    let schedule = common::isolate_leader_schedule(c.store.path(), 1, 1000, 0, 30000);
    let (code, out, results) = c.run(&[
        "--system",
        "redis-sentinel",
        "--workload",
        "set",
        "--schedule",
        schedule.to_str().unwrap(),
        "--seed",
        "1",
        "--time-limit",
        "36s",
        "--recovery-wait",
        "30s",
        "--concurrency",
        "5",
        "--rate",
        "500",
    ]);
    let found = common::anomaly_types(&results);
    assert_eq!(
        code, 1,
        "expected anomalies (exit 1), found {found:?}:\n{out}"
    );
    for class in ["lost-write", "dual-leader"] {
        assert!(
            found.iter().any(|t| t == class),
            "no {class} in {found:?}:\n{out}"
        );
    }
    assert_eq!(results["valid"], serde_json::json!(false), "{out}");
    assert!(out.contains("redis-sentinel is ready"), "{out}");
    // The system was removed from the nodes.
    assert!(
        !Path::new("/tmp/faultline-nodes/fls1-/n1").exists(),
        "node directory left behind"
    );
}

#[test]
fn unknown_systems_are_refused_with_the_known_names() {
    // Argument errors need no root: exit 254 before anything is deployed.
    let o = Command::new(BIN)
        .args(["test", "--system", "no-such-db", "--store"])
        .arg(std::env::temp_dir().join("fls-none"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("redis-sentinel"), "{err}");
}

#[test]
fn etcd_is_valid_under_partitions_pauses_and_kills() {
    let test = "etcd_is_valid_under_partitions_pauses_and_kills";
    if !ready_or_skip(test, &["etcd"], "etcd-server") {
        return;
    }
    let c = Cluster::new("fls2-", "10.77.72.0/24");
    // Seeds whose schedules hold partitions, pauses and kills (3 s faults, 3 s apart).
    for seed in ["12", "13"] {
        let (code, out, results) = c.run(&[
            "--system",
            "etcd",
            "--workload",
            "register,set",
            "--nemesis",
            "partition,pause,kill",
            "--nemesis-interval",
            "3s",
            "--seed",
            seed,
            "--time-limit",
            "30s",
            "--recovery-wait",
            "10s",
            "--concurrency",
            "5",
        ]);
        assert_eq!(
            code,
            0,
            "seed {seed}: expected valid (exit 0), found {:?}:\n{out}",
            common::anomaly_types(&results)
        );
        assert_eq!(
            results["valid"],
            serde_json::json!(true),
            "seed {seed}: {out}"
        );
        for checker in ["linearizable", "set", "dual-leader"] {
            assert_eq!(
                results[checker]["valid"],
                serde_json::json!(true),
                "seed {seed}: {checker}: {out}"
            );
        }
    }
}

#[test]
fn etcd_refuses_the_clock_nemesis() {
    // An argument error: exit 254 before anything is deployed, no root needed.
    let o = Command::new(BIN)
        .args(["test", "--system", "etcd", "--nemesis", "partition,clock"])
        .args(["--workload", "register", "--store"])
        .arg(std::env::temp_dir().join("fls-none"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("LD_PRELOAD"), "{err}");
}

#[test]
fn postgres_patroni_async_with_the_primary_isolated_reports_its_outcome() {
    let test = "postgres_patroni_async_with_the_primary_isolated_reports_its_outcome";
    if !ready_or_skip(
        test,
        &["patroni", "etcd", "/usr/lib/postgresql/15/bin/postgres"],
        "patroni postgresql-15 etcd-server",
    ) {
        return;
    }
    let c = Cluster::new("fls3-", "10.77.73.0/24");
    let schedule = common::isolate_leader_schedule(c.store.path(), 1, 1000, 0, 20000);
    let (code, out, results) = c.run(&[
        "--system",
        "postgres-patroni",
        "--workload",
        "set,unique-ids",
        "--schedule",
        schedule.to_str().unwrap(),
        "--seed",
        "1",
        "--time-limit",
        "30s",
        "--recovery-wait",
        "30s",
        "--concurrency",
        "5",
        "--rate",
        "500",
    ]);
    // A lost write is a finding about PostgreSQL's asynchronous replication, not a failure
    // of the test: the test fails only if the run itself did not work.
    let found = common::anomaly_types(&results);
    eprintln!("postgres-patroni async, primary isolated 20 s: exit {code}, anomalies {found:?}");
    assert!(
        code == 0 || code == 1,
        "expected a decided verdict (exit 0 or 1):\n{out}"
    );
    assert_eq!(results["errors"], serde_json::json!([]), "{out}");
    assert_eq!(
        results["valid"],
        serde_json::json!(code == 0),
        "exit code and results.json disagree:\n{out}"
    );
    let allowed = [
        "lost-write",
        "reused-key",
        "dual-leader",
        "split-brain-writes",
    ];
    for t in &found {
        assert!(
            allowed.contains(&t.as_str()),
            "unexpected anomaly class {t}:\n{out}"
        );
    }
    // The final reads ran on every node.
    assert_eq!(
        results["set"]["stats"]["reads"],
        serde_json::json!(3),
        "{out}"
    );
}
