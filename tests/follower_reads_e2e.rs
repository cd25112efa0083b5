//! End-to-end tests of reads from followers (root; local clusters `flr1-` 10.77.121.0/24 ...):
//! the `list-append` workload with `--read-from followers`, checked as
//! strong-session-serializable. Each test has its own cluster, brought down even when the
//! test fails. Without root (or Redis for the last) they print `SKIPPED` unless
//! `FAULTLINE_REQUIRE_PRIVILEGED=1`.
//!
//! - leaderkv, correct build, default flags (partitions, pauses and kills; 30 s), 2 seeds:
//!   valid, with reads served by several followers and none by the leader's route.
//! - leaderkv `ignore-session`: `G-single-process` (read-your-writes), and
//!   `read-uncommitted`: `G-single-process` (monotonic reads) or `incompatible-order`, in at
//!   least 4 of 5 seeds with default flags, the report drawing the cycle.
//! - Redis Sentinel, replica reads: Redis has no sessions, so a client's read on a replica
//!   misses its own append (a read-your-writes violation), no fault needed.

use std::collections::BTreeSet;

mod common;

use common::{Cluster, anomaly_types, bug_matrix, ready_or_skip};

const FOLLOWER_READS: &[&str] = systems::registry::FOLLOWER_READS;

/// The nodes that served the last run's ok reads (`txn`s of reads only).
fn read_nodes(c: &Cluster) -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(c.latest().join("history.jsonl")).expect("the run's history");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|op| op["type"] == "ok" && op["f"] == "txn")
        .filter(|op| op["value"][0][0] == "r")
        .filter_map(|op| op["node"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn correct_leaderkv_serves_session_consistent_reads_from_followers() {
    let test = "correct_leaderkv_serves_session_consistent_reads_from_followers";
    if !control::prereq::privileged_or_skip(test, false) {
        return;
    }
    let c = Cluster::with_defaults("flr1-", "10.77.121.0/24");
    for seed in ["1", "2"] {
        let mut args = vec!["--seed", seed, "--time-limit", "30s"];
        args.extend_from_slice(FOLLOWER_READS);
        let (code, out, results) = c.run(&args);
        assert_eq!(code, 0, "seed {seed}: expected valid:\n{out}");
        let la = &results["list-append"];
        assert_eq!(la["valid"], true, "{out}");
        assert_eq!(
            la["stats"]["consistency"], "strong-session-serializable",
            "{la}"
        );
        assert!(
            la["stats"]["txns"].as_u64().unwrap_or(0) > 5_000,
            "a real workload: {la}"
        );
        let nodes = read_nodes(&c);
        assert!(nodes.len() >= 3, "reads spread over followers: {nodes:?}");
        assert!(
            results["nemesis"]["episodes"].as_u64().unwrap_or(0) > 0,
            "faults were injected: {out}"
        );
    }
}

/// A bug of follower reads found as `classes`; a session anomaly's cycle is drawn in the
/// report and the guarantee it breaks named.
fn follower_bug(
    test: &str,
    prefix: &'static str,
    subnet: &'static str,
    bug: &str,
    classes: &[&str],
) {
    let hits = bug_matrix(test, prefix, subnet, bug, classes, FOLLOWER_READS);
    for (r, report) in &hits {
        if anomaly_types(r).iter().any(|t| t == "G-single-process") {
            assert!(
                report.contains("<svg class=\"cycle\""),
                "the cycle is drawn"
            );
            let text = r["list-append"].to_string();
            assert!(text.contains("violation"), "the guarantee is named: {text}");
        }
    }
}

#[test]
fn bug_ignore_session_breaks_read_your_writes() {
    follower_bug(
        "bug_ignore_session_breaks_read_your_writes",
        "flr2-",
        "10.77.122.0/24",
        "ignore-session",
        &["G-single-process"],
    );
}

#[test]
fn bug_read_uncommitted_breaks_monotonic_reads() {
    follower_bug(
        "bug_read_uncommitted_breaks_monotonic_reads",
        "flr3-",
        "10.77.123.0/24",
        "read-uncommitted",
        // A follower that served a record a new leader's log lacks: a process sees it
        // vanish (monotonic reads), or two reads disagree on the list's order for good.
        &["G-single-process", "incompatible-order"],
    );
}

#[test]
fn redis_replica_reads_miss_the_clients_own_writes() {
    let test = "redis_replica_reads_miss_the_clients_own_writes";
    if !ready_or_skip(
        test,
        &["redis-server", "redis-sentinel"],
        "redis-server redis-sentinel",
    ) {
        return;
    }
    let c = Cluster::new("flr4-", "10.77.124.0/24");
    let mut args = vec![
        "--system",
        "redis-sentinel",
        "--seed",
        "1",
        "--time-limit",
        "15s",
        "--nemesis",
        "none",
    ];
    args.extend_from_slice(FOLLOWER_READS);
    let (code, out, results) = c.run(&args);
    assert_eq!(code, 1, "expected anomalies:\n{out}");
    assert!(
        anomaly_types(&results).contains(&"G-single-process".to_owned()),
        "{out}"
    );
    let text = results["list-append"].to_string();
    assert!(text.contains("read-your-writes violation"), "{text}");
    assert!(read_nodes(&c).len() >= 2, "replicas served the reads");
}
