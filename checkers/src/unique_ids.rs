//! The `unique-ids` checker: every acknowledged `generate`/`insert`/`incr` must return an id
//! no other acknowledged op returned. A reused id is what a promoted follower with a stale
//! counter hands out (the failover incident the replication texts describe).
//! Streams like [`crate::set`]: one map entry per distinct id.

use history::vocab;
use std::sync::Arc;

use foldhash::HashMap as FastMap;
use serde_json::json;

use history::pairing::{Event, Pairer};
use history::{History, Op, OpType, PairError, Validity, Value};

use crate::result::{DEFAULT_LIMIT, kind};
use crate::set::table::IntMap;
use crate::{Anomaly, CheckResult, Checker};

/// Configuration of the unique-ids checker.
#[derive(Clone, Debug)]
pub struct UniqueIds {
    /// The functions that hand out ids; their `ok` value is the id.
    pub fs: Vec<String>,
    pub limit: usize,
}

impl Default for UniqueIds {
    fn default() -> Self {
        UniqueIds {
            fs: vocab::ID_FS.iter().map(|f| f.to_string()).collect(),
            limit: DEFAULT_LIMIT,
        }
    }
}

impl Checker for UniqueIds {
    fn name(&self) -> &'static str {
        "unique-ids"
    }

    fn check(&self, history: &History) -> CheckResult {
        let mut state = UniqueIdsState::new(self);
        for op in history.ops() {
            if let Err(e) = state.observe(op) {
                return CheckResult::unknown("unique-ids", format!("failed to pair ops: {e}"));
            }
        }
        state.finish()
    }
}

/// Who got an id first.
struct Holder {
    invoke: u64,
    complete: u64,
    time: Option<u64>,
    node: Option<Arc<str>>,
}

/// The streaming form of [`UniqueIds`].
pub struct UniqueIdsState<'a> {
    cfg: &'a UniqueIds,
    pairer: Pairer<Option<u64>>,
    /// Integer ids (the usual kind) by number: cheaper to hash and store than as values, and
    /// ids from a counter land in neighbouring buckets.
    int_ids: IntMap<Holder>,
    ids: FastMap<Value, Holder>,
    attempted: u64,
    acked: u64,
    not_an_id: u64,
    min: Option<i64>,
    max: Option<i64>,
    result: CheckResult,
}

impl<'a> UniqueIdsState<'a> {
    pub fn new(cfg: &'a UniqueIds) -> Self {
        UniqueIdsState {
            cfg,
            pairer: Pairer::default(),
            int_ids: IntMap::default(),
            ids: FastMap::default(),
            attempted: 0,
            acked: 0,
            not_an_id: 0,
            min: None,
            max: None,
            result: CheckResult::new("unique-ids"),
        }
    }

    fn generates(&self, op: &Op) -> bool {
        self.cfg.fs.iter().any(|f| **f == *op.f)
    }

    pub fn observe(&mut self, op: &Op) -> Result<(), PairError> {
        if !op.is_client() {
            return Ok(());
        }
        let wanted = self.generates(op);
        let event = self.pairer.push(op, |inv| wanted.then_some(inv.index))?;
        let Event::Completed {
            payload: Some(invoke),
            ..
        } = event
        else {
            if wanted && op.is_invoke() {
                self.attempted += 1;
            }
            return Ok(());
        };
        if op.kind != OpType::Ok {
            return Ok(());
        }
        self.acked += 1;
        let id = &op.value;
        if id.is_nil() {
            self.not_an_id += 1;
            return Ok(());
        }
        if let Some(i) = id.as_int() {
            self.min = Some(self.min.map_or(i, |m| m.min(i)));
            self.max = Some(self.max.map_or(i, |m| m.max(i)));
        }
        let first = match id {
            Value::Int(i) => self.int_ids.get(i),
            other => self.ids.get(other),
        };
        match first {
            None => {
                let holder = Holder {
                    invoke,
                    complete: op.index,
                    time: op.time,
                    node: op.node.clone(),
                };
                match id {
                    Value::Int(i) => self.int_ids.insert(*i, holder),
                    other => self.ids.insert(other.clone(), holder),
                };
            }
            Some(first) => {
                let anomaly = Anomaly {
                    kind: kind::REUSED_KEY,
                    ops: vec![first.invoke, first.complete, invoke, op.index],
                    explanation: format!(
                        "id {id} was handed out twice: to op {}{}{} and again to op {}{}{}",
                        first.complete,
                        where_(first.node.as_deref()),
                        when(first.time),
                        op.index,
                        where_(op.node.as_deref()),
                        when(op.time),
                    ),
                    details: json!({
                        "id": id.to_json(),
                        "first_node": first.node.as_deref(),
                        "second_node": op.node.as_deref(),
                    }),
                };
                self.result.push(anomaly, self.cfg.limit);
            }
        }
        Ok(())
    }

    pub fn finish(self) -> CheckResult {
        let mut r = self.result;
        let duplicated = r.anomaly_count;
        r.stat("attempted", self.attempted);
        r.stat("acknowledged", self.acked);
        let unique = self.int_ids.len() + self.ids.len();
        r.stat("unique", unique as u64);
        r.stat("duplicated", duplicated);
        r.stat("range", json!([self.min, self.max]));
        if self.not_an_id > 0 {
            r.stat("acknowledged_without_id", self.not_an_id);
        }
        if r.valid == Validity::Valid && unique == 0 {
            r.valid = Validity::Unknown;
            r.reason = Some(format!(
                "no acknowledged {} op returned an id, so uniqueness cannot be judged",
                self.cfg.fs.join("/")
            ));
        }
        r
    }
}

fn where_(node: Option<&str>) -> String {
    node.map(|n| format!(" by {n}")).unwrap_or_default()
}

fn when(time: Option<u64>) -> String {
    time.map(|t| format!(" at {:.3} s", t as f64 / 1e9))
        .unwrap_or_default()
}
