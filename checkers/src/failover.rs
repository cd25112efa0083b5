//! The `failover` checker: how the system behaved around each fault.
//!
//! From the fault windows ([`crate::explain::faults`]), the leader probes
//! ([`crate::dual_leader`]) and the node of each acknowledged write it measures:
//!
//! - per fault, the **failover time**: from the fault's start to the first write acknowledged
//!   by a node other than the one that acknowledged the last write before it (the old
//!   leader), if that happens before the fault is healed plus `settle`;
//! - **unavailability windows**: gaps of at least `min_gap` in which no write was acknowledged
//!   anywhere although some write was in flight;
//! - **convergence**: from a fault's heal to the first instant at which every probed node's
//!   latest answer names the same leader in the same term (before the next fault starts);
//! - **unnecessary failovers** (an anomaly, `unnecessary-failover`): a change of leader (node
//!   or term) between the last probe that saw the old leader and the first that saw the new
//!   (whichever came first: an old leader may go on claiming after the new one appeared),
//!   while no fault was active, nor had ended within `grace`. Typically an election timeout
//!   too short for the load.
//!
//! Summaries (count, median, max) go to the stats, and per-fault figures to `stats.faults`.

use history::vocab;
use serde_json::{Value as Json, json};

use history::{History, Validity};

use crate::dual_leader::{AckedWrite, LeaderRun, Probe, acked_writes, default_write_fs, secs};
use crate::explain::faults;
use crate::result::{DEFAULT_LIMIT, kind};
use crate::{Anomaly, CheckResult, Checker};

/// Configuration of the failover checker (times in ns).
#[derive(Clone, Debug)]
pub struct Failover {
    pub probe_f: String,
    pub write_fs: Vec<String>,
    /// Shortest gap between acknowledged writes counted as unavailability.
    pub min_gap: u64,
    /// How long after a fault's heal a leader change is still blamed on it.
    pub grace: u64,
    /// How long after a heal a new leader's first write still counts as that fault's failover.
    pub settle: u64,
    pub limit: usize,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            probe_f: vocab::LEADER.into(),
            write_fs: default_write_fs(),
            min_gap: 1_000_000_000,
            grace: 5_000_000_000,
            settle: 10_000_000_000,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// A period with writes in flight and none acknowledged.
#[derive(Clone, Debug, PartialEq)]
pub struct Gap {
    pub start: u64,
    pub end: u64,
    /// The last acknowledgement before it (op index), if any.
    pub after_op: Option<u64>,
    /// The first acknowledgement after it.
    pub before_op: Option<u64>,
}

/// Gaps of at least `min_gap` between acknowledged writes (sorted by end) while some write of
/// `attempts` (`(start, end)`, end `u64::MAX` when it never completed) was in flight.
pub fn unavailability(acks: &[AckedWrite], attempts: &[(u64, u64)], min_gap: u64) -> Vec<Gap> {
    let mut attempts = attempts.to_vec();
    attempts.sort_unstable();
    let mut max_end = Vec::with_capacity(attempts.len() + 1);
    max_end.push(0u64);
    for a in &attempts {
        let m = max_end[max_end.len() - 1];
        max_end.push(m.max(a.1));
    }
    let in_flight = |s: u64, e: u64| {
        let k = attempts.partition_point(|a| a.0 < e);
        max_end[k] > s
    };
    let mut out = Vec::new();
    for pair in acks.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.end.saturating_sub(a.end) >= min_gap && in_flight(a.end, b.end) {
            out.push(Gap {
                start: a.end,
                end: b.end,
                after_op: Some(a.complete),
                before_op: Some(b.complete),
            });
        }
    }
    // After the last acknowledgement: up to the last write invoked.
    if let (Some(last), Some(tail)) = (acks.last(), attempts.last()) {
        if tail.0.saturating_sub(last.end) >= min_gap {
            out.push(Gap {
                start: last.end,
                end: tail.0,
                after_op: Some(last.complete),
                before_op: None,
            });
        }
    }
    out
}

fn summary(mut xs: Vec<f64>) -> Json {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    json!({
        "count": n,
        "median": (n > 0).then(|| xs[(n - 1) / 2]),
        "max": xs.last(),
    })
}

fn s(ns: u64) -> f64 {
    ns as f64 / 1e9
}

impl Checker for Failover {
    fn name(&self) -> &'static str {
        "failover"
    }

    fn check(&self, history: &History) -> CheckResult {
        let mut r = CheckResult::new("failover");
        let windows = faults(history);
        let obs = crate::dual_leader::observe(history, &self.probe_f);
        let runs = crate::dual_leader::leader_runs(&obs.probes);
        let acks = acked_writes(history, &self.write_fs);
        let attempts: Vec<(u64, u64)> = history
            .client_pairs()
            .filter(|(_, inv, _)| self.write_fs.iter().any(|f| **f == *inv.f))
            .filter_map(|(_, inv, done)| {
                Some((inv.time?, done.and_then(|d| d.time).unwrap_or(u64::MAX)))
            })
            .collect();
        let mut by_end: Vec<&Probe> = obs.probes.iter().collect();
        by_end.sort_by_key(|p| (p.end, p.complete));
        let mut nodes: Vec<&str> = obs.probes.iter().map(|p| &*p.node).collect();
        nodes.sort_unstable();
        nodes.dedup();

        let mut failovers = Vec::new();
        let mut converges = Vec::new();
        let mut per_fault = Vec::new();
        for (i, f) in windows.iter().enumerate() {
            let next_start = windows.get(i + 1).map_or(u64::MAX, |n| n.start);
            let before = acks.partition_point(|w| w.end < f.start);
            let old = before.checked_sub(1).map(|k| acks[k].node.clone());
            let horizon = f.end.map_or(u64::MAX, |e| e.saturating_add(self.settle));
            let first_any = acks.get(before);
            let new = acks[before..]
                .iter()
                .take_while(|w| w.end <= horizon)
                .find(|w| old.as_ref().is_none_or(|o| *o != w.node));
            let failover = new.map(|w| w.end - f.start);
            failovers.extend(failover.map(s));
            let converge = f
                .end
                .and_then(|e| converged(&by_end, &nodes, e, next_start))
                .map(|t| t - f.end.unwrap_or(t));
            converges.extend(converge.map(s));
            per_fault.push(json!({
                "kind": f.kind,
                "start_s": s(f.start),
                "end_s": f.end.map(s),
                "nodes": f.nodes(),
                "what": f.what(),
                "ops": f.start_ops,
                "leader_before": old.as_deref(),
                "new_leader": new.map(|w| &*w.node),
                "failover_s": failover.map(s),
                "failover_op": new.map(|w| w.complete),
                "first_ack_s": first_any.map(|w| s(w.end.saturating_sub(f.start))),
                "converge_s": converge.map(s),
            }));
        }

        let gaps = unavailability(&acks, &attempts, self.min_gap);
        let changes = leader_changes(&runs);
        let mut unnecessary = 0u64;
        for (prev, next) in &changes {
            let (a, b) = (&runs[*prev], &runs[*next]);
            let (from, to) = (a.last().start, b.first().end);
            // The new leader may have appeared while the old one still claimed (Sentinel
            // demotes an old primary well after the heal): the change spans both moments,
            // and a fault during any of it forced it.
            let (from, to) = (from.min(to), from.max(to));
            if windows.iter().any(|f| f.overlaps(from, to, self.grace)) {
                continue;
            }
            unnecessary += 1;
            r.push(unnecessary_anomaly(a, b, from, to, self.grace), self.limit);
        }

        r.stat(
            "faults",
            per_fault.into_iter().take(1000).collect::<Vec<_>>(),
        );
        r.stat("fault_count", windows.len() as u64);
        r.stat("failover_s", summary(failovers));
        r.stat("converge_s", summary(converges));
        let gap_s: Vec<f64> = gaps.iter().map(|g| s(g.end - g.start)).collect();
        let total: f64 = gap_s.iter().sum();
        let mut unavail = summary(gap_s);
        unavail["total"] = json!(total);
        r.stat("unavailable_s", unavail);
        let listed: Vec<Json> = gaps
            .iter()
            .take(1000)
            .map(|g| {
                let during: Vec<&str> = windows
                    .iter()
                    .filter(|f| f.overlaps(g.start, g.end, 0))
                    .map(|f| f.kind.as_str())
                    .collect();
                json!({"start_s": s(g.start), "end_s": s(g.end), "after_op": g.after_op,
                       "before_op": g.before_op, "faults": during})
            })
            .collect();
        r.stat("unavailable", listed);
        r.stat("leader_changes", changes.len() as u64);
        r.stat("unnecessary_failovers", unnecessary);
        r.stat("acknowledged_writes", acks.len() as u64);
        if r.valid == Validity::Valid && obs.probes.is_empty() && acks.is_empty() {
            r.valid = Validity::Unknown;
            r.reason = Some(
                "no leader probe was answered and no write was acknowledged (with a node and \
                 times), so failover cannot be measured"
                    .into(),
            );
        }
        r
    }
}

/// The first time in `[from, until)` at which every node's latest probe answer (given since
/// `from`) names the same leader in the same term.
fn converged(by_end: &[&Probe], nodes: &[&str], from: u64, until: u64) -> Option<u64> {
    if nodes.is_empty() {
        return None;
    }
    let mut latest: Vec<Option<(Option<&str>, Option<i64>)>> = vec![None; nodes.len()];
    let start = by_end.partition_point(|p| p.end < from);
    for p in &by_end[start..] {
        if p.end >= until {
            break;
        }
        let Ok(i) = nodes.binary_search(&&*p.node) else {
            continue;
        };
        latest[i] = Some((p.leader.as_deref(), p.term));
        let first = latest[0];
        if let Some((Some(_), _)) = first {
            if latest.iter().all(|l| *l == first) {
                return Some(p.end);
            }
        }
    }
    None
}

/// Pairs (previous, next) of positions in `runs` where the leader (node or term) changed.
fn leader_changes(runs: &[LeaderRun]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for j in 1..runs.len() {
        let (a, b) = (&runs[j - 1], &runs[j]);
        if a.node != b.node || a.term != b.term {
            out.push((j - 1, j));
        }
    }
    out
}

fn unnecessary_anomaly(a: &LeaderRun, b: &LeaderRun, from: u64, to: u64, grace: u64) -> Anomaly {
    let term = |t: Option<i64>| t.map(|t| format!(" (term {t})")).unwrap_or_default();
    Anomaly {
        kind: kind::UNNECESSARY_FAILOVER,
        ops: {
            let mut v = vec![
                a.last().invoke,
                a.last().complete,
                b.first().invoke,
                b.first().complete,
            ];
            v.sort_unstable();
            v
        },
        explanation: format!(
            "Leadership moved from {}{} (last seen leading by probe {} at {}) to {}{} (first \
             seen leading by probe {} at {}) while no fault was active or had ended within {}: \
             a failover nothing forced, often an election timeout too short for the load.",
            a.node,
            term(a.term),
            a.last().complete,
            secs(a.last().start),
            b.node,
            term(b.term),
            b.first().complete,
            secs(b.first().end),
            secs(grace)
        ),
        details: json!({
            "from": &*a.node, "to": &*b.node, "terms": [a.term, b.term],
            "start_s": s(from), "end_s": s(to),
        }),
    }
}
