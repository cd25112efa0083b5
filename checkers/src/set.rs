//! The `set` checker: Jepsen's set-full over unique `add`s and whole-set `read`s.
//!
//! Each element's fate is decided from history order (positions), not wall clocks:
//! an element becomes *known* when its add is acknowledged or when a read first returns it.
//! Among the reads that began after that point:
//! - none: **never-read** when no read ever had it (no evidence either way), else stable;
//! - the latest ones lack it (every read that began after its last sighting): **lost**;
//! - some lack it but a later one has it: **stale** (an anomaly only with `linearizable`);
//! - all have it: **stable**.
//!
//! Also: **unexpected** (read but never added, or read although its add definitely failed),
//! **duplicated** (twice in one read), **recovered** (an add that ended `info` and was read).
//! The checker streams: [`SetState::observe`] one op at a time, then [`SetState::finish`];
//! memory is one small record per element, never the reads themselves.

use history::vocab;
use std::sync::Arc;

use serde_json::json;

use history::pairing::{Event, Pairer};
use history::{History, Op, OpType, PairError, Value};

use crate::result::{DEFAULT_LIMIT, Findings, kind};
use crate::{Anomaly, CheckResult, Checker};

pub(crate) mod table;
use table::Table;

pub(crate) const NONE: u64 = u64::MAX;

/// Configuration of the set checker.
#[derive(Clone, Debug)]
pub struct Set {
    pub add_f: String,
    pub read_f: String,
    /// Treat stale reads as anomalies (reads are supposed to be linearizable).
    pub linearizable: bool,
    /// How many anomalies to list in full (all are counted).
    pub limit: usize,
}

impl Default for Set {
    fn default() -> Self {
        Set {
            add_f: vocab::ADD.into(),
            read_f: vocab::READ.into(),
            linearizable: false,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl Checker for Set {
    fn name(&self) -> &'static str {
        "set"
    }

    fn check(&self, history: &History) -> CheckResult {
        let mut state = SetState::new(self);
        for op in history.ops() {
            if let Err(e) = state.observe(op) {
                return CheckResult::unknown("set", format!("failed to pair ops: {e}"));
            }
        }
        state.finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AddOutcome {
    NotAttempted,
    Pending,
    Ok,
    Fail,
    Info,
}

/// Where an op happened, for messages.
#[derive(Clone, Debug)]
struct Seen {
    index: u64,
    time: Option<u64>,
    node: Option<Arc<str>>,
}

impl Seen {
    fn of(op: &Op) -> Seen {
        Seen {
            index: op.index,
            time: op.time,
            node: op.node.clone(),
        }
    }

    fn describe(&self) -> String {
        let mut s = format!("op {}", self.index);
        if let Some(n) = &self.node {
            s += &format!(" on {n}");
        }
        if let Some(t) = self.time {
            s += &format!(" at {:.3} s", t as f64 / 1e9);
        }
        s
    }
}

pub(crate) struct Elem {
    add: AddOutcome,
    pub(crate) add_invoke: u64,
    add_complete: u32,
    known_pos: u64,
    last_present_inv: u64,
    last_present_read: u32,
    first_read: u32,
    last_read_id: u32,
    present_after_known: u32,
}

pub(crate) const NO_REF: u32 = u32::MAX;

impl Elem {
    pub(crate) fn new() -> Elem {
        Elem {
            add: AddOutcome::NotAttempted,
            add_invoke: NONE,
            add_complete: NO_REF,
            known_pos: NONE,
            last_present_inv: NONE,
            last_present_read: NO_REF,
            first_read: NO_REF,
            last_read_id: NO_REF,
            present_after_known: 0,
        }
    }
}

struct ReadRec {
    inv_pos: u64,
    complete: Seen,
}

enum Pending {
    Add(Value),
    Read,
    Other,
}

/// The streaming form of [`Set`].
pub struct SetState<'a> {
    cfg: &'a Set,
    pairer: Pairer<Pending>,
    elems: Table,
    /// Add ops referenced by elements (invocations and completions), by `Elem` refs.
    add_ops: Vec<Seen>,
    reads: Vec<ReadRec>,
    pos: u64,
    duplicated: Vec<Anomaly>,
    duplicated_count: u64,
    bad_reads: u64,
    first_bad_read: Option<u64>,
}

impl<'a> SetState<'a> {
    pub fn new(cfg: &'a Set) -> Self {
        SetState {
            cfg,
            pairer: Pairer::default(),
            elems: Table::default(),
            add_ops: Vec::new(),
            reads: Vec::new(),
            pos: 0,
            duplicated: Vec::new(),
            duplicated_count: 0,
            bad_reads: 0,
            first_bad_read: None,
        }
    }

    /// Feeds the next op of the history.
    pub fn observe(&mut self, op: &Op) -> Result<(), PairError> {
        let pos = self.pos;
        self.pos += 1;
        if !op.is_client() {
            return Ok(());
        }
        let cfg = self.cfg;
        let event = self.pairer.push(op, |inv| {
            if *inv.f == *cfg.add_f {
                Pending::Add(inv.value.clone())
            } else if *inv.f == *cfg.read_f {
                Pending::Read
            } else {
                Pending::Other
            }
        })?;
        let Event::Completed {
            invoke_pos,
            payload,
        } = event
        else {
            if *op.f == *cfg.add_f {
                // Register the attempt at invocation time so a read concurrent with the add
                // does not count it as unexpected.
                let e = self.elems.get_or_insert(&op.value);
                if e.add == AddOutcome::NotAttempted {
                    e.add = AddOutcome::Pending;
                    e.add_invoke = op.index;
                }
            }
            return Ok(());
        };
        match payload {
            Pending::Add(value) => {
                let done = self.remember(Seen::of(op));
                let e = self.elems.get_or_insert(&value);
                let outcome = match op.kind {
                    OpType::Ok => AddOutcome::Ok,
                    OpType::Fail => AddOutcome::Fail,
                    _ => AddOutcome::Info,
                };
                if e.add == AddOutcome::Pending || e.add == AddOutcome::NotAttempted {
                    e.add = outcome;
                    e.add_complete = done;
                }
                if outcome == AddOutcome::Ok && e.known_pos == NONE {
                    e.known_pos = pos;
                }
            }
            Pending::Read if op.kind == OpType::Ok => {
                self.observe_read(invoke_pos, op, pos);
            }
            _ => {}
        }
        Ok(())
    }

    fn remember(&mut self, seen: Seen) -> u32 {
        self.add_ops.push(seen);
        (self.add_ops.len() - 1) as u32
    }

    fn observe_read(&mut self, inv_pos: u64, op: &Op, pos: u64) {
        let items: &[Value] = match &op.value {
            Value::List(items) => items,
            Value::Nil => &[],
            _ => {
                self.bad_reads += 1;
                self.first_bad_read.get_or_insert(op.index);
                return;
            }
        };
        let rid = self.reads.len() as u32;
        self.reads.push(ReadRec {
            inv_pos,
            complete: Seen::of(op),
        });
        for item in items {
            let e = self.elems.get_or_insert(item);
            if e.last_read_id == rid {
                self.duplicated_count += 1;
                if self.duplicated.len() < self.cfg.limit {
                    self.duplicated.push(Anomaly {
                        kind: kind::DUPLICATED,
                        ops: vec![op.index],
                        explanation: format!(
                            "{item} appears more than once in the read {} (a set holds each element once)",
                            self.reads[rid as usize].complete.describe()
                        ),
                        details: json!({ "element": item.to_json() }),
                    });
                }
                continue;
            }
            e.last_read_id = rid;
            if e.first_read == NO_REF {
                e.first_read = rid;
            }
            if e.known_pos == NONE {
                e.known_pos = pos;
            } else if inv_pos > e.known_pos {
                e.present_after_known += 1;
            }
            if e.last_present_inv == NONE || inv_pos > e.last_present_inv {
                e.last_present_inv = inv_pos;
                e.last_present_read = rid;
            }
        }
    }

    /// Decides every element's fate.
    pub fn finish(self) -> CheckResult {
        let cfg = self.cfg;
        let mut result = CheckResult::new("set");
        let mut inv_sorted: Vec<u64> = self.reads.iter().map(|r| r.inv_pos).collect();
        inv_sorted.sort_unstable();
        let reads_after = |p: u64| inv_sorted.len() - inv_sorted.partition_point(|&x| x <= p);

        let (mut attempted, mut acked, mut lost, mut stale, mut never_read) = (0u64, 0, 0, 0, 0);
        let (mut stable, mut recovered, mut unexpected) = (0u64, 0, 0);
        let mut findings = Findings::new(cfg.limit);
        for (value, e) in self.elems.iter() {
            let value = &value;
            let read_any = e.first_read != NO_REF;
            if e.add != AddOutcome::NotAttempted {
                attempted += 1;
            }
            if e.add == AddOutcome::Ok {
                acked += 1;
            }
            match e.add {
                AddOutcome::NotAttempted | AddOutcome::Fail if read_any => {
                    unexpected += 1;
                    let first = &self.reads[e.first_read as usize];
                    let mut ops = vec![first.complete.index];
                    let why = if e.add == AddOutcome::Fail {
                        let add = &self.add_ops[e.add_complete as usize];
                        ops.insert(0, add.index);
                        format!(
                            "{value} was read by {} although its add ({}) failed, i.e. definitely did not happen",
                            first.complete.describe(),
                            add.describe()
                        )
                    } else {
                        format!(
                            "{value} was read by {} but no client ever tried to add it",
                            first.complete.describe()
                        )
                    };
                    findings.add(
                        first.complete.index,
                        Anomaly {
                            kind: kind::UNEXPECTED,
                            ops,
                            explanation: why,
                            details: json!({ "element": value.to_json() }),
                        },
                    );
                    continue;
                }
                AddOutcome::Info | AddOutcome::Pending if read_any => recovered += 1,
                _ => {}
            }
            if e.known_pos == NONE {
                continue;
            }
            let after_known = reads_after(e.known_pos);
            if after_known == 0 {
                // Seen by the read that made it known and by none after: nothing contradicts it.
                if read_any {
                    stable += 1;
                } else {
                    never_read += 1;
                }
                continue;
            }
            let last_sighting = if e.last_present_inv == NONE {
                e.known_pos
            } else {
                e.known_pos.max(e.last_present_inv)
            };
            let lacking = reads_after(last_sighting);
            if lacking > 0 {
                lost += 1;
                let (at, a) = self.lost_anomaly(value, e, last_sighting, lacking);
                findings.add(at, a);
            } else if (e.present_after_known as usize) < after_known {
                stale += 1;
                if cfg.linearizable {
                    let last = &self.reads[e.last_present_read as usize];
                    findings.add(
                        last.complete.index,
                        Anomaly {
                            kind: kind::STALE_READ,
                            ops: self.add_refs(e).chain([last.complete.index]).collect(),
                            explanation: format!(
                                "{value} was known to be in the set, yet {} of the {after_known} reads that began after that lacked it; it was back by {}",
                                after_known - e.present_after_known as usize,
                                last.complete.describe()
                            ),
                            details: json!({ "element": value.to_json() }),
                        },
                    );
                }
            } else {
                stable += 1;
            }
        }
        let listed_duplicates = self.duplicated.len() as u64;
        for d in self.duplicated {
            result.push(d, cfg.limit);
        }
        // Duplicates past the listing limit were counted but not kept.
        result.anomaly_count += self.duplicated_count - listed_duplicates;
        findings.into_result(&mut result);
        for (name, n) in [
            ("attempted", attempted),
            ("acknowledged", acked),
            ("stable", stable),
            ("lost", lost),
            ("stale", stale),
            ("never_read", never_read),
            ("recovered", recovered),
            ("unexpected", unexpected),
            ("duplicated", self.duplicated_count),
            ("reads", self.reads.len() as u64),
        ] {
            result.stat(name, n);
        }
        let pending_adds = self.pairer.into_open().count();
        result.stat("adds_never_completed", pending_adds as u64);
        if result.valid == history::Validity::Valid {
            if self.bad_reads > 0 {
                result.valid = history::Validity::Unknown;
                result.reason = Some(format!(
                    "{} reads returned something other than a list of elements (first: op {})",
                    self.bad_reads,
                    self.first_bad_read.unwrap_or_default()
                ));
            } else if self.reads.is_empty() && attempted > 0 {
                result.valid = history::Validity::Unknown;
                result.reason =
                    Some("no read of the set succeeded, so no add can be confirmed".into());
            }
        }
        result
    }

    fn add_refs<'s>(&'s self, e: &Elem) -> impl Iterator<Item = u64> + 's {
        let done = (e.add_complete != NO_REF).then(|| self.add_ops[e.add_complete as usize].index);
        (e.add_invoke != NONE)
            .then_some(e.add_invoke)
            .into_iter()
            .chain(done)
    }

    fn lost_anomaly(
        &self,
        value: &Value,
        e: &Elem,
        last_sighting: u64,
        lacking: usize,
    ) -> (u64, Anomaly) {
        // The reads that prove the loss: those that began after the element's last sighting.
        let mut later: Vec<&ReadRec> = self
            .reads
            .iter()
            .filter(|r| r.inv_pos > last_sighting)
            .collect();
        later.sort_by_key(|r| r.inv_pos);
        let mut ops: Vec<u64> = self.add_refs(e).collect();
        let mut story = match e.add {
            AddOutcome::Ok => {
                let add = &self.add_ops[e.add_complete as usize];
                format!("add {value} was acknowledged ({})", add.describe())
            }
            _ => format!("add {value} did not complete with ok"),
        };
        if e.last_present_read != NO_REF {
            let seen = &self.reads[e.last_present_read as usize];
            ops.push(seen.complete.index);
            story += &format!("; it was last read by {}", seen.complete.describe());
        }
        let nodes: Vec<String> = later
            .iter()
            .filter_map(|r| r.complete.node.as_deref().map(str::to_owned))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let latest = later
            .last()
            .map(|r| r.complete.describe())
            .unwrap_or_default();
        let on = if nodes.is_empty() {
            String::new()
        } else {
            format!(", on {}", nodes.join(", "))
        };
        story += &if lacking == 1 {
            format!("; the one read that began after that lacks it{on} ({latest})")
        } else {
            format!("; all {lacking} reads that began after that lack it{on} (latest: {latest})")
        };
        ops.extend(later.iter().take(10).map(|r| r.complete.index));
        ops.sort_unstable();
        ops.dedup();
        let at = later.last().map(|r| r.complete.index).unwrap_or(0);
        (
            at,
            Anomaly {
                kind: kind::LOST_WRITE,
                ops,
                explanation: story,
                details: json!({ "element": value.to_json(), "lacking_reads": lacking }),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use history::{Format, Process};

    use super::*;

    /// A JSONL history of `adds` adds on 20 processes, then 3 final reads that lack the
    /// elements in `lost`: several parse blocks long, so that it crosses block boundaries.
    fn history_text(adds: i64, lost: &[i64]) -> String {
        let mut w = history::jsonl::Writer::new(Vec::new());
        let mut index = 0;
        let mut op = |process: u64, kind: OpType, f: &str, value: Value| {
            let op = Op {
                index,
                time: Some(index * 1000),
                process: Process::Client(process),
                kind,
                f: f.into(),
                key: None,
                value,
                node: Some(format!("n{}", process % 3 + 1).into()),
                error: None,
            };
            index += 1;
            w.write(&op).unwrap();
        };
        for round in (0..adds).step_by(20) {
            for p in 0..20.min(adds - round) {
                op(p as u64, OpType::Invoke, "add", Value::Int(round + p));
            }
            for p in 0..20.min(adds - round) {
                op(p as u64, OpType::Ok, "add", Value::Int(round + p));
            }
        }
        let read = Value::List(
            (0..adds)
                .filter(|v| !lost.contains(v))
                .map(Value::Int)
                .collect(),
        );
        for p in 100..103 {
            op(p, OpType::Invoke, "read", Value::Nil);
            op(p, OpType::Ok, "read", read.clone());
        }
        String::from_utf8(w.into_inner()).unwrap()
    }

    #[test]
    fn a_streamed_multi_block_history_reports_the_lost_elements() {
        let lost = [7, 31_999, 59_990];
        let text = history_text(60_000, &lost);
        assert!(
            text.len() > 3 * (2 << 20),
            "should span several parse blocks"
        );
        let cfg = Set::default();
        let mut state = SetState::new(&cfg);
        let info = history::stream(text.as_bytes(), "h.jsonl", Format::Jsonl, |op| {
            state.observe(&op).unwrap();
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(!info.truncated);
        let streamed = state.finish();
        assert_eq!(streamed.valid, history::Validity::Invalid);
        let found: Vec<String> = streamed
            .anomalies
            .iter()
            .map(|a| a.details["element"].to_string())
            .collect();
        assert_eq!(found, ["7", "31999", "59990"]);
        assert!(
            streamed
                .anomalies
                .iter()
                .all(|a| a.kind == kind::LOST_WRITE),
            "{streamed:?}"
        );
        // The same verdict and anomalies as checking the history read whole, in order.
        let (whole, _) = history::load_reader(text.as_bytes(), "h.jsonl", None).unwrap();
        let whole = cfg.check(&whole);
        assert_eq!(
            serde_json::to_value(&streamed.anomalies).unwrap(),
            serde_json::to_value(&whole.anomalies).unwrap()
        );
        assert_eq!(streamed.stats, whole.stats);
    }
}
