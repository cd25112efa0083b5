//! Fault context for explanations: the fault windows of a history (from the nemesis ops) and,
//! for any instant and node, a phrase such as "while n1 was cut off from n2..n5 (partition
//! started 11.800 s); n3 led from 13.000 s".
//!
//! [`faults`] reads the nemesis ops: each `start-<kind>` opens a window at its invocation
//! (its completion says what was done: the grudge, the nodes); the matching `stop-<kind>`
//! completion (by `id` when both carry one, else the oldest open window of that kind) or a
//! `heal-all` completion closes it. A window still open at the end of the history has no end.
//!
//! [`Context::enrich`] appends that phrase to other checkers' anomalies (and stores it in
//! `details.context`), so the runner can apply it before writing `results.json` and the report
//! shows it. It is idempotent.

use history::vocab::{self, Phase};
use std::collections::BTreeSet;

use serde_json::{Map, Value as Json};

use history::{History, Op, OpType, Value};

use crate::CheckResult;
use crate::dual_leader::{LeaderRun, leader_runs, observe, secs};

/// One fault, from its start to its heal.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// `partition`, `pause`, `kill`, `clock`, `loss`, `bandwidth`, ...
    pub kind: String,
    /// Invocation time of the start (ns).
    pub start: u64,
    /// Completion time of the stop or heal (ns); None: never healed in the history.
    pub end: Option<u64>,
    /// Index of the start's invocation (and completion, when there is one).
    pub start_ops: Vec<u64>,
    /// Index of the op that healed it.
    pub end_op: Option<u64>,
    /// What was done: the grudge of a partition, `{"nodes":[...], ...}` otherwise.
    pub value: Value,
}

impl FaultWindow {
    /// Whether it was active at `t` (ns).
    pub fn active_at(&self, t: u64) -> bool {
        self.start <= t && self.end.is_none_or(|e| t <= e)
    }

    /// Whether it was active at some instant of `[s, e]`, `grace` ns after its end included.
    pub fn overlaps(&self, s: u64, e: u64, grace: u64) -> bool {
        self.start <= e && self.end.is_none_or(|end| end.saturating_add(grace) >= s)
    }

    /// The nodes it touched (partitions: every node of the grudge).
    pub fn nodes(&self) -> Vec<String> {
        let mut set = BTreeSet::new();
        if let Some(list) = self.value.get("nodes").and_then(Value::as_list) {
            set.extend(list.iter().filter_map(Value::as_str).map(String::from));
        } else if let Value::Map(pairs) = &self.value {
            for (k, v) in pairs {
                if let (Some(k), Some(l)) = (k.as_str(), v.as_list()) {
                    set.insert(k.to_owned());
                    set.extend(l.iter().filter_map(Value::as_str).map(String::from));
                }
            }
        }
        set.into_iter().collect()
    }

    /// "n1 was cut off from n2..n5", "n2 was paused", ...
    pub fn what(&self) -> String {
        if self.kind == "partition" {
            let cut = grudge_phrases(&self.value);
            if !cut.is_empty() {
                return cut.join(", ");
            }
        }
        let nodes = self.nodes();
        if self.kind == "clock" {
            if let Some(ms) = self.value.get("offset_ms").and_then(Value::as_int) {
                let way = if ms < 0 { "behind" } else { "ahead" };
                let whose = if nodes.len() == 1 { "clock" } else { "clocks" };
                return format!(
                    "{}'s {whose} {} {:.3} s {way}",
                    node_list(&nodes),
                    be(&nodes),
                    ms.unsigned_abs() as f64 / 1e3
                );
            }
        }
        let verb = match self.kind.as_str() {
            "pause" => "paused",
            "kill" => "killed",
            "clock" => "clock-skewed",
            "member" => "removed from the cluster",
            "loss" => "losing packets",
            "bandwidth" => "bandwidth-limited",
            _ => "",
        };
        match (nodes.is_empty(), verb.is_empty()) {
            (true, _) => format!("a {} fault was active", self.kind),
            (false, false) => format!("{} {} {verb}", node_list(&nodes), be(&nodes)),
            (false, true) => format!("{} was under a {} fault", node_list(&nodes), self.kind),
        }
    }
}

fn be(nodes: &[String]) -> &'static str {
    if nodes.len() == 1 { "was" } else { "were" }
}

/// "X was cut off from ..." for each side of a grudge, without repeating symmetric pairs.
fn grudge_phrases(grudge: &Value) -> Vec<String> {
    let Value::Map(pairs) = grudge else {
        return Vec::new();
    };
    let mut entries: Vec<(String, Vec<String>)> = pairs
        .iter()
        .filter_map(|(k, v)| {
            let l: Vec<String> = v
                .as_list()?
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
            Some((k.as_str()?.to_owned(), l))
        })
        .filter(|(_, l)| !l.is_empty())
        .collect();
    entries.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let mut said: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    for (x, l) in entries {
        let new: Vec<String> = l
            .into_iter()
            .filter(|y| !said.contains(&(x.clone(), y.clone())))
            .collect();
        if new.is_empty() {
            continue;
        }
        for y in &new {
            said.insert((x.clone(), y.clone()));
            said.insert((y.clone(), x.clone()));
        }
        out.push(format!("{x} was cut off from {}", node_list(&new)));
    }
    out
}

/// "n2..n5" for consecutive `nN` names, else "n1, n3, x".
pub fn node_list(nodes: &[String]) -> String {
    let num = |s: &str| -> Option<u64> { s.strip_prefix('n')?.parse().ok() };
    let mut nums: Vec<u64> = nodes.iter().filter_map(|n| num(n)).collect();
    nums.sort_unstable();
    nums.dedup();
    if nodes.len() >= 3 && nums.len() == nodes.len() && nums.windows(2).all(|w| w[1] == w[0] + 1) {
        return format!("n{}..n{}", nums[0], nums[nums.len() - 1]);
    }
    nodes.join(", ")
}

/// The fault windows of `history`, by start time.
pub fn faults(history: &History) -> Vec<FaultWindow> {
    let ops = history.ops();
    let mut open: Vec<FaultWindow> = Vec::new();
    let mut done: Vec<FaultWindow> = Vec::new();
    for (pos, op) in ops.iter().enumerate() {
        if op.is_client() || history.partner(pos).is_some_and(|p| p < pos) {
            continue; // client op, or the second half of a nemesis op
        }
        let completion = history.partner(pos).map(|p| &ops[p]);
        let last = completion.unwrap_or(op);
        if let Some((Phase::Start, kind)) = vocab::parse_nemesis_f(&op.f) {
            let mut start_ops = vec![op.index];
            start_ops.extend(completion.map(|c| c.index));
            let value = match completion {
                Some(c) if !c.value.is_nil() => c.value.clone(),
                _ => op.value.clone(),
            };
            open.push(FaultWindow {
                kind: kind.to_owned(),
                start: op.time.unwrap_or(0),
                end: None,
                start_ops,
                end_op: None,
                value,
            });
        } else if let Some((Phase::Stop, kind)) = vocab::parse_nemesis_f(&op.f) {
            if let Some(i) = matching(&open, kind, op, completion) {
                let mut w = open.remove(i);
                close(&mut w, last, op);
                done.push(w);
            }
        } else if &*op.f == vocab::HEAL_ALL {
            for mut w in open.drain(..) {
                close(&mut w, last, op);
                done.push(w);
            }
        }
    }
    done.extend(open);
    done.sort_by_key(|w| (w.start, w.start_ops.first().copied()));
    done
}

fn close(w: &mut FaultWindow, last: &Op, first: &Op) {
    w.end = Some(last.time.or(first.time).unwrap_or(w.start).max(w.start));
    w.end_op = Some(last.index);
}

fn id_of(v: &Value) -> Option<i64> {
    v.get("id").and_then(Value::as_int)
}

fn matching(open: &[FaultWindow], kind: &str, op: &Op, completion: Option<&Op>) -> Option<usize> {
    let id = id_of(&op.value).or_else(|| completion.and_then(|c| id_of(&c.value)));
    id.and_then(|id| {
        open.iter()
            .position(|w| w.kind == kind && id_of(&w.value) == Some(id))
    })
    .or_else(|| open.iter().position(|w| w.kind == kind))
}

/// Faults and leadership of one history, built once, asked many times.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub faults: Vec<FaultWindow>,
    pub runs: Vec<LeaderRun>,
}

impl Context {
    pub fn new(history: &History) -> Context {
        Context {
            faults: faults(history),
            runs: leader_runs(&observe(history, vocab::LEADER).probes),
        }
    }

    /// "while n1 was cut off from n2..n5 (partition started 11.800 s); n3 led from 13.000 s",
    /// for an event at `t` (ns) on `node`; None when no fault was active.
    pub fn at(&self, t: u64, node: Option<&str>) -> Option<String> {
        let active: Vec<&FaultWindow> = self.faults.iter().filter(|f| f.active_at(t)).collect();
        let first = active.first()?;
        let mut parts: Vec<String> = active
            .iter()
            .map(|f| format!("{} ({} started {})", f.what(), f.kind, secs(f.start)))
            .collect();
        let mut out = format!("while {}", parts.remove(0));
        for p in parts {
            out.push_str(&format!(" and {p}"));
        }
        // The first leader seen after the fault started, other than `node`.
        let next = self
            .runs
            .iter()
            .find(|r| r.seen_from() >= first.start && node.is_none_or(|n| *r.node != *n));
        if let Some(r) = next {
            out.push_str(&format!("; {} led from {}", r.node, secs(r.first().end)));
        }
        Some(out)
    }

    /// Adds the fault context of each anomaly's first acknowledged op (or first op; for an
    /// anomaly over a window of time, `details.start_s`) to its explanation and
    /// `details.context`. Anomalies that already have one are left alone.
    pub fn enrich(&self, history: &History, results: &mut [CheckResult]) {
        if self.faults.is_empty() {
            return;
        }
        for r in results {
            for a in &mut r.anomalies {
                if a.details.get("context").is_some() {
                    continue;
                }
                // An anomaly about a window of time (two leaders at once) is explained by
                // what was going on when the window opened, not at its first cited op.
                let window = a
                    .details
                    .get("start_s")
                    .and_then(Json::as_f64)
                    .map(|s| (s * 1e9) as u64);
                let (t, node) = match window {
                    Some(t) => (t, None),
                    None => {
                        let Some(op) = key_op(history, &a.ops) else {
                            continue;
                        };
                        let Some(t) = op.time else { continue };
                        (t, op.node.as_deref())
                    }
                };
                let Some(ctx) = self.at(t, node) else {
                    continue;
                };
                a.explanation = format!("{} (Context: {ctx}.)", a.explanation.trim_end());
                match &mut a.details {
                    Json::Object(m) => {
                        m.insert("context".into(), ctx.into());
                    }
                    Json::Null => {
                        let mut m = Map::new();
                        m.insert("context".into(), ctx.into());
                        a.details = Json::Object(m);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The op an anomaly is about: its first `ok` client completion, else its first op.
fn key_op<'h>(history: &'h History, indices: &[u64]) -> Option<&'h Op> {
    let ops = history.ops();
    let find = |i: u64| -> Option<&'h Op> {
        let pos = usize::try_from(i).ok()?;
        match ops.get(pos) {
            Some(op) if op.index == i => Some(op),
            _ => ops.iter().find(|o| o.index == i),
        }
    };
    indices
        .iter()
        .filter_map(|&i| find(i))
        .find(|o| o.kind == OpType::Ok && o.is_client())
        .or_else(|| indices.first().and_then(|&i| find(i)))
}

/// Fault context for each anomaly of `results` (a convenience over [`Context`]).
pub fn enrich(history: &History, results: &mut [CheckResult]) {
    Context::new(history).enrich(history, results);
}
