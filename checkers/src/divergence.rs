//! The `divergence` checker: once the faults are healed and the cluster had its time to
//! converge, does every node hold the same data?
//!
//! Replicas can agree on every log position and still hold different data: a follower that
//! installed a snapshot labelled with the wrong position, one that resumed from a truncated
//! log without a snapshot, one that re-executed a nondeterministic statement. Their applied
//! indices match the leader's, so neither the convergence wait nor the `stuck-follower`
//! checker sees them, and a set read that lacks an element is only `stale` while any later
//! read (on another node) has it. Comparing the nodes' final reads does.
//!
//! The final phase is everything after the last `add` invocation and the last nemesis op.
//! In it, the latest `ok` whole-set read each node served is that node's final state. With
//! at least two nodes read, the state most nodes hold (ties: the larger one) is the
//! reference; every node whose state differs is a `divergence` anomaly naming what it lacks
//! and what it has in excess, and since which op (the earliest add among the elements it
//! lacks). A node that joined mid-run is compared like the others. Fewer than two nodes read
//! in the final phase proves nothing: the result says it did not judge, and stays valid.
//!
//! Systems that read a digest of each node's whole state (op `digest`) are also compared key
//! by key ([`digest`]): that finds replicas whose values agree while something else about a
//! key does not, and keys no workload reads back.

mod digest;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::json;

use history::{History, OpType, Process, Value, vocab};

use crate::dual_leader::secs;
use crate::result::{DEFAULT_LIMIT, kind};
use crate::{Anomaly, CheckResult, Checker};

/// Elements listed in an anomaly's details, per side.
const SAMPLE: usize = 10;

/// Configuration of the divergence checker.
#[derive(Clone, Debug)]
pub struct Divergence {
    pub add_f: String,
    pub read_f: String,
    pub limit: usize,
}

impl Default for Divergence {
    fn default() -> Self {
        Divergence {
            add_f: vocab::ADD.into(),
            read_f: vocab::READ.into(),
            limit: DEFAULT_LIMIT,
        }
    }
}

/// One node's final read.
struct Final {
    /// Index and time of the read's completion.
    index: u64,
    time: Option<u64>,
    elements: HashSet<Value>,
}

/// Where an element was added (its invocation).
#[derive(Clone, Copy)]
struct Added {
    index: u64,
    time: Option<u64>,
}

/// Where the final phase starts: after the last nemesis op and the last client invocation of a
/// function `writes` accepts.
fn final_phase(history: &History, writes: impl Fn(&str) -> bool) -> usize {
    history
        .ops()
        .iter()
        .rposition(|o| {
            o.process == Process::Nemesis || (o.is_client() && o.is_invoke() && writes(&o.f))
        })
        .map_or(0, |p| p + 1)
}

fn at(index: u64, time: Option<u64>) -> String {
    match time {
        Some(t) => format!("op {index} at {}", secs(t)),
        None => format!("op {index}"),
    }
}

impl Checker for Divergence {
    fn name(&self) -> &'static str {
        "divergence"
    }

    fn check(&self, history: &History) -> CheckResult {
        let mut result = CheckResult::new("divergence");
        let start = final_phase(history, |f| f == &*self.add_f);
        let mut finals: BTreeMap<Arc<str>, Final> = BTreeMap::new();
        for (pos, invoke, done) in history.client_pairs() {
            let Some(done) = done else { continue };
            if pos < start
                || *invoke.f != *self.read_f
                || invoke.key.is_some()
                || done.kind != OpType::Ok
            {
                continue;
            }
            let (Some(node), Some(list)) = (done.node.clone(), done.value.as_list()) else {
                continue;
            };
            finals.insert(
                node,
                Final {
                    index: done.index,
                    time: done.time,
                    elements: list.iter().cloned().collect(),
                },
            );
        }
        result.stat("nodes_read", finals.len() as u64);
        let digests_judged = digest::check(history, &mut result, self.limit);
        result.stat("judged", finals.len() >= 2 || digests_judged);
        if finals.len() < 2 {
            if !digests_judged {
                result.stat(
                    "why",
                    format!(
                        "{} node(s) answered a whole-set read (or a digest) after the last \
                         write and fault; comparing needs two",
                        finals.len()
                    ),
                );
            }
            return result;
        }

        // Nodes grouped by identical state; the reference is the largest group.
        let mut groups: Vec<Vec<&Arc<str>>> = Vec::new();
        for (node, f) in &finals {
            match groups
                .iter_mut()
                .find(|g| finals[g[0]].elements == f.elements)
            {
                Some(g) => g.push(node),
                None => groups.push(vec![node]),
            }
        }
        groups.sort_by_key(|g| {
            (
                std::cmp::Reverse(g.len()),
                std::cmp::Reverse(finals[g[0]].elements.len()),
            )
        });
        let reference = &groups[0];
        let ref_state = &finals[reference[0]];
        let ref_names: Vec<&str> = reference.iter().map(|n| &***n).collect();

        let mut missing: BTreeMap<&Arc<str>, Vec<&Value>> = BTreeMap::new();
        let mut extra: BTreeMap<&Arc<str>, Vec<&Value>> = BTreeMap::new();
        for g in &groups[1..] {
            let f = &finals[g[0]];
            for n in g {
                missing.insert(n, ref_state.elements.difference(&f.elements).collect());
                extra.insert(n, f.elements.difference(&ref_state.elements).collect());
            }
        }
        let wanted: HashSet<&Value> = missing
            .values()
            .chain(extra.values())
            .flatten()
            .copied()
            .collect();
        let mut added: HashMap<&Value, Added> = HashMap::new();
        for (_, invoke, _) in history.client_pairs() {
            if *invoke.f == *self.add_f && wanted.contains(&invoke.value) {
                added.entry(&invoke.value).or_insert(Added {
                    index: invoke.index,
                    time: invoke.time,
                });
            }
        }

        let mut per_node = Vec::new();
        for (node, f) in &finals {
            let lacks = missing.get(node).map_or(0, Vec::len);
            let excess = extra.get(node).map_or(0, Vec::len);
            per_node.push(json!({
                "node": &**node,
                "elements": f.elements.len(),
                "missing": lacks,
                "extra": excess,
                "read_op": f.index,
            }));
        }
        result.stat("final_state", per_node);
        result.stat("reference_nodes", ref_names.clone());

        for g in &groups[1..] {
            for node in g {
                let f = &finals[*node];
                let mut lacks = missing[node].clone();
                let mut excess = extra[node].clone();
                let key = |v: &&Value| added.get(*v).map_or(u64::MAX, |a| a.index);
                lacks.sort_by_key(key);
                excess.sort_by_key(key);
                let since = lacks.first().and_then(|v| added.get(*v)).copied();
                let mut story = format!(
                    "after the last fault and add, {node}'s final read ({}) differs from what \
                     {} hold ({}): it lacks {} element(s) they have",
                    at(f.index, f.time),
                    ref_names.join(", "),
                    at(ref_state.index, ref_state.time),
                    lacks.len()
                );
                if let Some(s) = since {
                    story += &format!(", the earliest added by {}", at(s.index, s.time));
                }
                story += &format!(" and holds {} they lack", excess.len());
                let tail = if ref_state.elements.len() > f.elements.len() {
                    format!(
                        "; {node} is missing writes the others applied and will not get them back by itself"
                    )
                } else {
                    format!("; {node} applied writes the others do not have")
                };
                story += &tail;
                let mut cited = vec![f.index, ref_state.index];
                cited.extend(since.map(|s| s.index));
                cited.sort_unstable();
                cited.dedup();
                let sample = |v: &[&Value]| -> Vec<serde_json::Value> {
                    v.iter().take(SAMPLE).map(|e| e.to_json()).collect()
                };
                result.push(
                    Anomaly {
                        kind: kind::DIVERGENCE,
                        ops: cited,
                        explanation: story,
                        details: json!({
                            "node": &***node,
                            "reference_nodes": ref_names,
                            "missing": lacks.len(),
                            "extra": excess.len(),
                            "missing_sample": sample(&lacks),
                            "extra_sample": sample(&excess),
                            "since_op": since.map(|s| s.index),
                            "since_s": since.and_then(|s| s.time).map(|t| t as f64 / 1e9),
                        }),
                    },
                    self.limit,
                );
            }
        }
        result
    }
}
