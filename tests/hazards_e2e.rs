//! End-to-end tests of the replication hazards no single fault shows (root; local clusters
//! `flh1-` 10.77.131.0/24 ...): leaderkv with a seeded bug, default flags, 30 s, seeds 1 to 5,
//! the bug's anomaly in at least 4 of them. Each test has its own cluster, brought down even
//! when the test fails. Without root they print `SKIPPED` unless
//! `FAULTLINE_REQUIRE_PRIVILEGED=1`.
//!
//! - `resume-truncated` (a follower behind the leader's retained log resumes past what the
//!   log lost) and `snapshot-position` (a snapshot labelled with the log's end): every node at
//!   the leader's position, one with different data: `divergence`, shown in the report's
//!   final state per node.
//! - `wall-clock-lease` (the lease measured by the wall clock): the default clock faults set
//!   the leader's clock back before it is cut off, and it leads on beside the next leader:
//!   `dual-leader`, its context naming the clock.
//! - `replica-clock` (statement replication evaluating a write's time with each node's own
//!   clock): the values agree, the nodes' state digests do not: `divergence` by key, shown in
//!   the report's digest table.

mod common;

use common::bug_matrix;

/// The report of each caught run shows every node's final state and marks a diverged one.
fn assert_final_state_shown(hits: &[(serde_json::Value, String)]) {
    for (results, report) in hits {
        let diverged = results["divergence"]["anomalies"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(diverged > 0, "{results}");
        assert!(
            report.contains("id=\"final-state\"") && report.contains("<b>diverged</b>"),
            "the report shows the final state per node"
        );
    }
}

#[test]
fn bug_resume_truncated_diverges() {
    let hits = bug_matrix(
        "bug_resume_truncated_diverges",
        "flh1-",
        "10.77.131.0/24",
        "resume-truncated",
        &["divergence"],
        &[],
    );
    assert_final_state_shown(&hits);
}

#[test]
fn bug_snapshot_position_diverges() {
    let hits = bug_matrix(
        "bug_snapshot_position_diverges",
        "flh2-",
        "10.77.132.0/24",
        "snapshot-position",
        &["divergence"],
        &[],
    );
    assert_final_state_shown(&hits);
}

#[test]
fn bug_wall_clock_lease_has_dual_leaders() {
    let hits = bug_matrix(
        "bug_wall_clock_lease_has_dual_leaders",
        "flh3-",
        "10.77.133.0/24",
        "wall-clock-lease",
        &["dual-leader"],
        &[],
    );
    for (results, _) in &hits {
        let clocked = results["dual-leader"]["anomalies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["details"]["context"].as_str())
            .any(|c| c.contains("clock was") && c.contains("behind"));
        assert!(
            clocked,
            "a dual-leader window names the skewed clock: {results}"
        );
    }
}

#[test]
fn bug_replica_clock_diverges_by_key() {
    let hits = bug_matrix(
        "bug_replica_clock_diverges_by_key",
        "flh4-",
        "10.77.134.0/24",
        "replica-clock",
        &["divergence"],
        &[],
    );
    assert_final_state_shown(&hits);
    for (results, report) in &hits {
        assert!(
            report.contains("keys that differ"),
            "the report's digest table"
        );
        let by_key = results["divergence"]["anomalies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| {
                a["details"]["digest"] == true
                    && a["details"]["keys"]
                        .as_array()
                        .is_some_and(|k| !k.is_empty())
            });
        assert!(by_key, "a node's digest differs in named keys: {results}");
    }
}
