//! Elle-style checking of list-append histories: transactions of appends of unique values to
//! keys and reads of whole lists. The reads reveal each key's version order; from it come
//! write-write, write-read and read-write dependencies between transactions, to which
//! process and real-time order are added as the consistency model asks; a cycle in that
//! graph is an anomaly, named as Elle names it (G0, G1c, G-single, G2-item, and their
//! `-process` and `-realtime` variants). Findings that need no cycle (aborted and
//! intermediate reads, duplicate elements, incompatible orders, internal inconsistency,
//! unexpected elements, lost appends) are reported beside them.
//!
//! - [`txns`]: the history as transactions, the version orders and the acyclic findings.
//! - [`graph`]: the dependency graph, its components, the cycle search and its sentences.

pub mod graph;
pub mod txns;

#[cfg(test)]
mod tests;

use std::time::Instant;

use serde_json::json;

use history::{History, OpType, Validity};

use crate::result::{Anomaly, CheckResult};
use graph::{PROCESS, REALTIME};
use txns::{Interner, Mop};

/// Anomaly classes of list-append histories, as Elle names them.
pub mod kind {
    pub const G0: &str = "G0";
    pub const G1A: &str = "G1a";
    pub const G1B: &str = "G1b";
    pub const G1C: &str = "G1c";
    pub const G_SINGLE: &str = "G-single";
    pub const G2_ITEM: &str = "G2-item";
    pub const PLAIN: [&str; 4] = [G0, G1C, G_SINGLE, G2_ITEM];
    pub const PROCESS: [&str; 4] = [
        "G0-process",
        "G1c-process",
        "G-single-process",
        "G2-item-process",
    ];
    pub const REALTIME: [&str; 4] = [
        "G0-realtime",
        "G1c-realtime",
        "G-single-realtime",
        "G2-item-realtime",
    ];
    pub const DUPLICATE_ELEMENTS: &str = "duplicate-elements";
    pub const INCOMPATIBLE_ORDER: &str = "incompatible-order";
    pub const INTERNAL: &str = "internal";
    pub const LOST_APPEND: &str = "lost-append";
}

/// The consistency model a history is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    StrictSerializable,
    /// Serializable, and each process sees its own earlier txns (Elle's
    /// strong-session-serializable): what follower reads with sessions promise.
    StrongSessionSerializable,
    Serializable,
    SnapshotIsolation,
    ReadCommitted,
    ReadYourWrites,
    MonotonicReads,
    ConsistentPrefix,
}

impl Consistency {
    pub const ALL: [Consistency; 8] = [
        Consistency::StrictSerializable,
        Consistency::StrongSessionSerializable,
        Consistency::Serializable,
        Consistency::SnapshotIsolation,
        Consistency::ReadCommitted,
        Consistency::ReadYourWrites,
        Consistency::MonotonicReads,
        Consistency::ConsistentPrefix,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Consistency::StrictSerializable => "strict-serializable",
            Consistency::StrongSessionSerializable => "strong-session-serializable",
            Consistency::Serializable => "serializable",
            Consistency::SnapshotIsolation => "snapshot-isolation",
            Consistency::ReadCommitted => "read-committed",
            Consistency::ReadYourWrites => "read-your-writes",
            Consistency::MonotonicReads => "monotonic-reads",
            Consistency::ConsistentPrefix => "consistent-prefix",
        }
    }

    /// The edge kinds the graph needs beyond ww/wr/rw.
    fn order_edges(self) -> u8 {
        match self {
            Consistency::StrictSerializable => PROCESS | REALTIME,
            Consistency::StrongSessionSerializable
            | Consistency::ReadYourWrites
            | Consistency::MonotonicReads
            | Consistency::ConsistentPrefix => PROCESS,
            _ => 0,
        }
    }

    /// A session model: it constrains what one process sees, nothing else.
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Consistency::ReadYourWrites
                | Consistency::MonotonicReads
                | Consistency::ConsistentPrefix
        )
    }

    /// Whether a session model forbids `cycle` (through process order, named `name`):
    /// read-your-writes and monotonic-reads their own patterns, consistent-prefix any
    /// process-order cycle with at most one anti-dependency (a read that saw a later write
    /// and missed an earlier one).
    fn forbids_session(self, name: &str, cycle: &graph::Cycle) -> bool {
        match self {
            Consistency::ReadYourWrites => {
                graph::session_pattern(cycle) == Some("read-your-writes")
            }
            Consistency::MonotonicReads => graph::session_pattern(cycle) == Some("monotonic-reads"),
            Consistency::ConsistentPrefix => name != "G2-item-process",
            _ => true,
        }
    }

    /// Whether the model proscribes a finding of class `name` (`G-single`, `G1c-process`,
    /// `G1a`, ...); the session models' cycles are judged by [`Consistency::forbids_session`].
    pub fn proscribes(self, name: &str) -> bool {
        let base = name
            .trim_end_matches("-process")
            .trim_end_matches("-realtime");
        let order = if name.ends_with("-process") {
            PROCESS
        } else if name.ends_with("-realtime") {
            REALTIME
        } else {
            0
        };
        match self {
            Consistency::StrictSerializable => true,
            // Read committed: no G0, G1 (dirty writes, aborted, intermediate, circular reads).
            Consistency::ReadCommitted => {
                order == 0 && matches!(base, "G0" | "G1c" | "G1a" | "G1b")
            }
            // Snapshot isolation also forbids lost updates (a single anti-dependency).
            Consistency::SnapshotIsolation => {
                order == 0 && matches!(base, "G0" | "G1c" | "G1a" | "G1b" | "G-single")
            }
            Consistency::Serializable => order == 0,
            Consistency::StrongSessionSerializable => order & REALTIME == 0,
            // A session model says nothing of what other processes' txns see of each other.
            _ => order == PROCESS,
        }
    }
}

impl std::str::FromStr for Consistency {
    type Err = String;
    fn from_str(s: &str) -> Result<Consistency, String> {
        Consistency::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Consistency::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown consistency model {s:?} (one of {})",
                    names.join(", ")
                )
            })
    }
}

/// The list-append checker.
#[derive(Debug, Clone)]
pub struct ListAppend {
    pub consistency: Consistency,
    /// Anomalies listed per class (all are counted).
    pub limit: usize,
    /// The rw edges tried per component when looking for a single-anti-dependency cycle.
    pub rw_tries: usize,
}

impl Default for ListAppend {
    fn default() -> Self {
        ListAppend {
            consistency: Consistency::StrictSerializable,
            limit: 20,
            rw_tries: 2_000,
        }
    }
}

impl crate::Checker for ListAppend {
    fn name(&self) -> &'static str {
        "list-append"
    }

    fn check(&self, history: &History) -> CheckResult {
        let mut s = txns::Stream::default();
        for op in history.ops() {
            // A history is paired already: its ops pair again.
            if let Err(e) = s.observe(op) {
                return CheckResult::unknown("list-append", e.to_string());
            }
        }
        self.finish(s)
    }
}

impl ListAppend {
    /// The result of a history streamed through `s` (never held whole).
    pub fn finish(&self, s: txns::Stream) -> CheckResult {
        match s.finish() {
            Ok((t, names)) => self.check_txns(&t, &names),
            Err(e) => CheckResult::unknown("list-append", e.0),
        }
    }

    fn check_txns(&self, txns: &[txns::Txn], names: &Interner) -> CheckResult {
        let started = Instant::now();
        let mut r = CheckResult::new("list-append");
        if txns.is_empty() {
            return CheckResult::unknown("list-append", "no txn ops: nothing to check");
        }
        let versions = txns::versions(txns, names);
        for p in &versions.plain {
            let always = matches!(
                p.kind,
                kind::DUPLICATE_ELEMENTS
                    | kind::INCOMPATIBLE_ORDER
                    | kind::INTERNAL
                    | crate::result::kind::UNEXPECTED
            );
            if always || self.consistency.proscribes(p.kind) {
                r.push(
                    Anomaly {
                        kind: p.kind,
                        ops: p.txns.iter().map(|t| txns[*t].invoke).collect(),
                        explanation: p.text.clone(),
                        details: serde_json::Value::Null,
                    },
                    self.limit,
                );
            }
        }
        if self.consistency == Consistency::StrictSerializable {
            lost_appends(txns, &versions, names, &mut r, self.limit);
        }
        let g = graph::build(
            txns,
            &versions,
            graph::WW | graph::WR | graph::RW | self.consistency.order_edges(),
        );
        let comps = graph::components(&g);
        let tiers: Vec<(u8, &'static [&'static str; 4])> = [
            (0u8, &kind::PLAIN),
            (PROCESS, &kind::PROCESS),
            (PROCESS | REALTIME, &kind::REALTIME),
        ]
        .into_iter()
        .filter(|(extra, _)| extra & !self.consistency.order_edges() == 0)
        .collect();
        let model = self.consistency;
        for comp in &comps {
            let found = if model.is_session() {
                let keep = |c: &graph::Cycle| {
                    let name = graph::session_name(c);
                    model.forbids_session(name, c)
                };
                graph::session_cycle(&g, comp, &keep, self.rw_tries)
            } else {
                graph::classify(&g, comp, &tiers, self.rw_tries)
            };
            let Some((name, cycle)) = found else {
                continue;
            };
            if !model.proscribes(name) {
                continue;
            }
            let steps = graph::explain(&cycle, txns, names);
            // A process-order cycle of a session guarantee's shape says which one it breaks.
            let guarantee = match graph::session_pattern(&cycle) {
                Some(p) if name.ends_with("-process") => format!(" (a {p} violation)"),
                _ => String::new(),
            };
            let mut ops: Vec<u64> = cycle.edges.iter().map(|e| txns[e.0].invoke).collect();
            ops.sort_unstable();
            ops.dedup();
            r.push(
                Anomaly {
                    kind: name,
                    ops,
                    explanation: format!(
                        "a cycle of {} txns{guarantee} that no order of them can satisfy under {}: {}.",
                        cycle.edges.len(),
                        self.consistency.name(),
                        steps.join("; ")
                    ),
                    details: json!({
                        "cycle": cycle.edges.iter().map(|(a, b, d)| json!({
                            "from": txns[*a].invoke, "to": txns[*b].invoke, "edge": d.name(),
                            "process": txns[*a].process,
                        })).collect::<Vec<_>>(),
                        "component_txns": comp.len(),
                        "guarantee": graph::session_pattern(&cycle),
                    }),
                },
                self.limit,
            );
        }
        r.stat("txns", txns.len() as u64);
        r.stat("keys", versions.order.len() as u64);
        r.stat("graph_edges", g.edge_count() as u64);
        r.stat("cyclic_components", comps.len() as u64);
        r.stat("consistency", self.consistency.name());
        r.stat("check_s", started.elapsed().as_secs_f64());
        if r.valid == Validity::Valid && txns.iter().all(|t| t.outcome != OpType::Ok) {
            return CheckResult::unknown(
                "list-append",
                "no txn completed ok: nothing was observed",
            );
        }
        r
    }
}

/// Acknowledged appends that no read shows although a read of the key began after they
/// completed (real time says it had to see them).
fn lost_appends(
    txns: &[txns::Txn],
    v: &txns::Versions,
    names: &Interner,
    r: &mut CheckResult,
    limit: usize,
) {
    // The last ok read invocation per key.
    let mut last_read: std::collections::HashMap<u32, usize> = Default::default();
    for (i, t) in txns.iter().enumerate() {
        if t.outcome != OpType::Ok {
            continue;
        }
        for m in &t.mops {
            if let Mop::Read { key, list: Some(_) } = m {
                last_read.insert(*key, i);
            }
        }
    }
    for t in txns.iter().filter(|t| t.outcome == OpType::Ok) {
        let Some(done) = t.complete else { continue };
        for m in &t.mops {
            let Mop::Append { key, value } = m else {
                continue;
            };
            if !v.order.contains_key(key) || v.position.contains_key(&(*key, *value)) {
                continue;
            }
            let Some(reader) = last_read.get(key).map(|i| &txns[*i]) else {
                continue;
            };
            if reader.invoke > done {
                r.push(
                    Anomaly {
                        kind: kind::LOST_APPEND,
                        ops: vec![t.invoke, reader.invoke],
                        explanation: format!(
                            "{} appended {} to key {} and was acknowledged (op {done}), yet no read ever shows it, not even {}'s, which began after (op {})",
                            t.label(),
                            names.value(*value),
                            names.value(*key),
                            reader.label(),
                            reader.invoke
                        ),
                        details: serde_json::Value::Null,
                    },
                    limit,
                );
            }
        }
    }
}
