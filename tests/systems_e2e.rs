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

use common::{BIN, Cluster, ready_or_skip, text};

/// One run of `system` on `c` with the primary cut off from the others for `cut_ms` from
/// 1 s on (seed 1, 5 clients at 500 ops/s in all); returns the exit code, output and
/// results.json.
fn primary_isolated(
    c: &Cluster,
    system: &str,
    workload: &str,
    cut_ms: u64,
    time_limit: &str,
) -> (i32, String, serde_json::Value) {
    let schedule = common::isolate_leader_schedule(c.store.path(), 1, 1000, 0, cut_ms);
    c.run(&[
        "--system",
        system,
        "--workload",
        workload,
        "--schedule",
        schedule.to_str().unwrap(),
        "--seed",
        "1",
        "--time-limit",
        time_limit,
        "--rate",
        "500",
    ])
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
    let c = Cluster::new("fls1-", "10.77.71.0/24").recovery_wait("30s");
    let (code, out, results) = primary_isolated(&c, "redis-sentinel", "set", 30000, "36s");
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
    let c = Cluster::new("fls2-", "10.77.72.0/24").recovery_wait("10s");
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
    let c = Cluster::new("fls3-", "10.77.73.0/24").recovery_wait("30s");
    let (code, out, results) =
        primary_isolated(&c, "postgres-patroni", "set,unique-ids", 20000, "30s");
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
