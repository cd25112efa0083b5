//! The `convergence` checker: after the last fault is healed, does every follower catch up?
//!
//! Leader-based replication has a hazard healing does not undo: a follower that fell so far
//! behind that the leader no longer has the log it needs (the "requested WAL segment has
//! already been removed" of PostgreSQL, a truncated replication backlog) never catches up,
//! and a later failover to it loses everything it lacks. The probes that keep running after
//! the last nemesis op show it: the leader's commit index stands still (the workload has
//! stopped), and a follower's applied index stands still below it.
//!
//! In the last `stuck` of the history (default 5 s), entirely after the last nemesis op: if
//! exactly one node claims the lead, its commit index (else, for systems that report none,
//! its applied index: a PostgreSQL primary's WAL position) is known and constant, and a
//! follower answered throughout with an applied index that is known, constant and not that
//! index, it is a `stuck-follower` anomaly: below it, the follower does not catch up; above
//! it, the follower applied records the leader does not have (a former leader that rejoined
//! without rewinding its log) and has diverged for good. A follower still advancing, a tail
//! too short or without indices proves nothing: the result says it did not judge, and stays
//! valid.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use history::{History, Process, vocab};

use crate::dual_leader::{Probe, observe, secs};
use crate::result::{DEFAULT_LIMIT, kind};
use crate::{Anomaly, CheckResult, Checker};

/// Configuration of the convergence checker (times in ns).
#[derive(Clone, Debug)]
pub struct Convergence {
    pub probe_f: String,
    /// How long a follower must stand still behind the leader to be stuck.
    pub stuck: u64,
    pub limit: usize,
}

impl Default for Convergence {
    fn default() -> Self {
        Convergence {
            probe_f: vocab::LEADER.into(),
            stuck: 5_000_000_000,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// Every value the same and known.
fn constant(values: impl Iterator<Item = Option<i64>>) -> Option<i64> {
    let mut first = None;
    for v in values {
        let v = v?;
        match first {
            None => first = Some(v),
            Some(f) if f != v => return None,
            Some(_) => {}
        }
    }
    first
}

impl Checker for Convergence {
    fn name(&self) -> &'static str {
        "convergence"
    }

    fn check(&self, history: &History) -> CheckResult {
        let mut r = CheckResult::new(self.name());
        let judged = |r: &mut CheckResult, why: &str| r.stat("judged", json!(why));
        let last_fault = history
            .ops()
            .iter()
            .filter(|op| op.process == Process::Nemesis)
            .filter_map(|op| op.time)
            .max()
            .unwrap_or(0);
        let mut by_node: BTreeMap<Arc<str>, Vec<Probe>> = BTreeMap::new();
        for p in observe(history, &self.probe_f).probes {
            by_node.entry(p.node.clone()).or_default().push(p);
        }
        let Some(end) = by_node.values().flatten().map(|a| a.end).max() else {
            judged(&mut r, "no answered probes");
            return r;
        };
        let from = end.saturating_sub(self.stuck);
        if from <= last_fault || end - last_fault < self.stuck {
            judged(
                &mut r,
                "the probes after the last fault span less than the window",
            );
            return r;
        }
        let window: BTreeMap<&str, Vec<&Probe>> = by_node
            .iter()
            .map(|(n, a)| (&**n, a.iter().filter(|a| a.end >= from).collect::<Vec<_>>()))
            .filter(|(_, a)| !a.is_empty())
            .collect();
        let leaders: Vec<&str> = window
            .iter()
            .filter(|(_, a)| a.iter().any(|a| a.is_leader()))
            .map(|(n, _)| *n)
            .collect();
        let [leader] = leaders[..] else {
            judged(&mut r, "not exactly one leader after the last fault");
            return r;
        };
        let Some(committed) = constant(window[leader].iter().map(|a| a.committed.or(a.applied)))
        else {
            judged(
                &mut r,
                "the leader's commit index is unknown or still moving",
            );
            return r;
        };
        judged(&mut r, "yes");
        r.stat("leader", json!(leader));
        r.stat("committed", json!(committed));
        // A follower must have answered from the start of the window to its end.
        let slack = self.stuck / 5;
        for (node, answers) in &window {
            if *node == leader || answers.iter().any(|a| a.is_leader()) {
                continue;
            }
            let (first, last) = (answers[0], answers[answers.len() - 1]);
            if first.end > from + slack || last.end + slack < end {
                continue;
            }
            let Some(applied) = constant(answers.iter().map(|a| a.applied)) else {
                continue;
            };
            if applied != committed {
                let how = if applied < committed {
                    format!(
                        "({} behind, neither moving): it does not catch up, and a \
                         failover to it would lose what it lacks",
                        committed - applied
                    )
                } else {
                    format!(
                        "({} ahead of it, neither moving): it applied records the \
                         leader does not have, a log that diverged and is never repaired",
                        applied - committed
                    )
                };
                r.push(
                    Anomaly {
                        kind: kind::STUCK_FOLLOWER,
                        ops: vec![first.complete, last.complete],
                        explanation: format!(
                            "after the last fault was healed, {node} stayed at applied index \
                             {applied} for {} while the leader {leader} had committed {committed} \
                             {how}",
                            secs(last.end - first.end),
                        ),
                        details: json!({
                            "node": node, "applied": applied, "leader": leader,
                            "committed": committed, "behind": committed - applied,
                            "still_for_s": (last.end - first.end) as f64 / 1e9,
                        }),
                    },
                    self.limit,
                );
            }
        }
        r
    }
}
