//! Checkers: pure analyses of a [`History`] into a [`CheckResult`] (no IO, no async).
//!
//! - [`result`]: [`CheckResult`], [`Anomaly`] and the anomaly-class names shared with reports.
//! - [`set`]: Jepsen's set-full: lost, unexpected, stale, never-read, duplicated, recovered adds.
//! - [`unique_ids`]: ids handed out twice (reused keys after a failover).
//! - [`linearizable`]: Wing-Gong/Lowe search with memoisation over per-key sub-histories, for
//!   the register, cas-register, multi-register and kv models.
//! - [`list_append`]: Elle-style list-append checking: version orders, a dependency graph
//!   (petgraph) with process and real-time order, cycles named G0 ... G2-item and their
//!   session and real-time variants, and the anomalies that need no cycle.
//! - [`dual_leader`]: leadership intervals from the leader probes, proven dual-leader windows,
//!   same-term leaders, writes acknowledged by two leaders at once (split brain).
//! - [`failover`]: per-fault failover and convergence times, unavailability windows, leader
//!   changes no fault explains (unnecessary failovers).
//! - [`convergence`]: after the last fault, a follower standing still behind the leader's
//!   commit index (`stuck-follower`: it can never catch up).
//! - [`divergence`]: the nodes' final reads compared (`divergence`: which elements a node
//!   lacks or has in excess, since which op), and their state digests key by key (which keys
//!   differ on which node).
//! - [`explain`]: fault windows from the nemesis ops, and the fault context ("while n1 was cut
//!   off from n2..n5 ...") added to other checkers' explanations.
//! - [`stats`]: outcome counts per function, latency quantiles, throughput.
//! - [`suite`]: [`suite::Suite`], which checkers a history gets (from a run's workloads or a
//!   [`suite::Census`] of its ops), run together; the same for `test`, `check` and `report`.
//!
//! Every checker returns Unknown with a reason rather than panicking or guessing Valid.

pub mod convergence;
pub mod divergence;
pub mod dual_leader;
pub mod explain;
pub mod failover;
pub mod linearizable;
pub mod list_append;
pub mod result;
pub mod set;
pub mod stats;
pub mod suite;
pub mod unique_ids;

pub use history::{History, Validity};
pub use result::{Anomaly, CheckResult};

/// A pure analysis of a whole history.
pub trait Checker {
    /// The name results are filed under (`set`, `unique-ids`, `linearizable`, ...).
    fn name(&self) -> &'static str;
    fn check(&self, history: &History) -> CheckResult;
}
