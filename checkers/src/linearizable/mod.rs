//! `linearizable`: is there an order of the operations, consistent with real time, in which a
//! sequential object (the model) gives every answer the clients saw?
//!
//! - [`model`]: the [`Model`] trait (a sequential spec), its [`Codec`] and the [`Interner`].
//! - [`models`]: `register`, `cas-register`, `multi-register`, `kv`.
//! - `partition`: per-key split (P-compositionality); `fail` ops dropped, nemesis ignored.
//! - `search`: Wing-Gong/Lowe depth-first search with a (linearized set, state) cache.
//! - `explain`: the anomaly: failing op, the states it could not apply to, failing prefix.
//!
//! Semantics follow Knossos: `fail` ops never happened; `info` ops (and invocations that
//! never completed) may take effect at any point after their invocation, or never; an `ok`
//! read carries its value in the completion. With [`Linearizable::with_nil_read_is_unknown`]
//! (the default, as in Knossos and Jepsen) a read of nil is always legal; faultline's own
//! histories record nil only for a key that holds nothing, and turn it off.
//!
//! ```
//! use checkers::Checker;
//! use checkers::linearizable::{Linearizable, ModelKind};
//! use std::time::Duration;
//!
//! let checker = Linearizable::new(ModelKind::CasRegister)
//!     .with_initial(history::Value::Int(0))
//!     .with_nil_read_is_unknown(true)
//!     .with_budget(Duration::from_secs(10));
//! let result = checker.check(&history::History::default());
//! assert_eq!(result.valid, checkers::Validity::Valid);
//! ```

pub mod model;
pub mod models;

mod explain;
mod partition;
mod search;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use history::{History, Validity, Value};

pub use model::{Codec, Interner, Model};
pub use search::Call;

use crate::result::{Anomaly, CheckResult, DEFAULT_LIMIT};
use crate::Checker;
use explain::Failure;
use partition::Part;
use search::Outcome;

/// The sequential object a history is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// `read`/`write` per key (`op.key`).
    Register,
    /// `read`/`write`/`cas [old new]` per key.
    CasRegister,
    /// `txn` of `[:read k v]`/`[:write k v]` micro-ops over named registers (not split).
    MultiRegister,
    /// Porcupine's string store: `get`/`put`/`append` per `:key`; a missing key reads "".
    Kv,
}

impl ModelKind {
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::MultiRegister,
        ModelKind::Kv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Kv => "kv",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown model {s:?} (expected register, cas-register, multi-register or kv)")
            })
    }
}

/// The linearizability checker. See the module docs for the semantics.
#[derive(Clone, Debug)]
pub struct Linearizable {
    model: ModelKind,
    initial: Value,
    nil_read_is_unknown: bool,
    budget: Option<Duration>,
    limit: usize,
}

impl Linearizable {
    /// A checker for `model`, initial value nil, nil reads unknown, no time budget.
    pub fn new(model: ModelKind) -> Self {
        Linearizable {
            model,
            initial: Value::Nil,
            nil_read_is_unknown: true,
            budget: None,
            limit: DEFAULT_LIMIT,
        }
    }

    /// The initial value of every register (`register`, `cas-register`), or the map of
    /// register name to initial value (`multi-register`; names absent start nil). Ignored by
    /// `kv`, whose keys start as "".
    pub fn with_initial(mut self, initial: Value) -> Self {
        self.initial = initial;
        self
    }

    /// True (the default, Knossos/Jepsen EDN): an `ok` read of nil is always legal, as if
    /// its value were unknown. False (faultline's JSONL): a read of nil says the register
    /// holds nothing (nil), and is legal only then.
    pub fn with_nil_read_is_unknown(mut self, yes: bool) -> Self {
        self.nil_read_is_unknown = yes;
        self
    }

    /// Gives up with Unknown once `budget` has passed (the whole check, all keys together).
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// How many anomalies (non-linearizable keys) to list in full.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn model(&self) -> ModelKind {
        self.model
    }
}

/// How one part came out.
enum PartVerdict {
    Valid,
    Invalid(Box<Anomaly>),
    Unknown(String),
}

impl Checker for Linearizable {
    fn name(&self) -> &'static str {
        "linearizable"
    }

    fn check(&self, history: &History) -> CheckResult {
        let started = Instant::now();
        let deadline = self.budget.map(|b| started + b);
        let split = partition::split(history, self.model != ModelKind::MultiRegister);
        let mut result = CheckResult::new(self.name());
        let mut reasons: Vec<String> = Vec::new();
        let mut effort = search::Effort::default();
        let mut searched = 0u64;
        let mut checked_parts = 0usize;
        for part in &split.parts {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                reasons.push(self.out_of_time(part, checked_parts, split.parts.len()));
                break;
            }
            let (verdict, e, n) = match self.model {
                ModelKind::Register | ModelKind::CasRegister => {
                    let cas = self.model == ModelKind::CasRegister;
                    let m = models::Register::new(&self.initial, cas, self.nil_read_is_unknown);
                    self.check_part(m, history, part, deadline)
                }
                ModelKind::MultiRegister => {
                    match models::MultiRegister::new(&self.initial, self.nil_read_is_unknown) {
                        Ok(m) => self.check_part(m, history, part, deadline),
                        Err(reason) => (PartVerdict::Unknown(reason), Default::default(), 0),
                    }
                }
                ModelKind::Kv => self.check_part(models::Kv::default(), history, part, deadline),
            };
            effort.steps += e.steps;
            effort.configurations += e.configurations;
            searched += n;
            checked_parts += 1;
            match verdict {
                PartVerdict::Valid => {}
                PartVerdict::Invalid(a) => result.push(*a, self.limit),
                PartVerdict::Unknown(reason) if reason.is_empty() => {
                    reasons.push(self.out_of_time(part, checked_parts - 1, split.parts.len()));
                    break;
                }
                PartVerdict::Unknown(reason) => reasons.push(reason),
            }
        }
        if !reasons.is_empty() {
            result.valid = result.valid.merge(Validity::Unknown);
            result.reason = Some(reasons.join("; "));
        }
        result.stat("model", self.model.name());
        result.stat("keys", split.parts.len() as u64);
        result.stat("ops", searched);
        result.stat("failed_ops_dropped", split.failed);
        result.stat("indefinite_ops", split.indefinite);
        result.stat("configurations", effort.configurations);
        result.stat("search_steps", effort.steps);
        result
    }
}

impl Linearizable {
    fn out_of_time(&self, part: &Part<'_>, done: usize, total: usize) -> String {
        let budget = self.budget.unwrap_or_default();
        let key = part.key.map(|k| format!(" {k}")).unwrap_or_default();
        format!(
            "the time budget of {budget:?} ran out while checking key{key} ({} ops); {done} of {total} keys were checked and found linearizable",
            part.ops.len()
        )
    }

    /// Encodes and searches one part. An empty Unknown reason means out of time.
    fn check_part<M: Codec>(
        &self,
        mut model: M,
        history: &History,
        part: &Part<'_>,
        deadline: Option<Instant>,
    ) -> (PartVerdict, search::Effort, u64) {
        let ops = history.ops();
        let mut calls: Vec<Call<M::Input, M::Output>> = Vec::with_capacity(part.ops.len());
        for &(invoke, ret) in &part.ops {
            let inv = &ops[invoke as usize];
            let done = ret.map(|r| &ops[r as usize]);
            match model.encode(inv, done) {
                Ok(Some((input, output))) => calls.push(Call {
                    input,
                    output,
                    invoke,
                    ret,
                }),
                Ok(None) => {}
                Err(reason) => {
                    let key = part.key.map(|k| format!(" (key {k})")).unwrap_or_default();
                    let reason = format!("cannot check with the {} model{key}: {reason}", self.model);
                    return (PartVerdict::Unknown(reason), Default::default(), 0);
                }
            }
        }
        let n = calls.len() as u64;
        let (outcome, effort) = search::search(&model, &calls, deadline);
        let verdict = match outcome {
            Outcome::Linearizable => PartVerdict::Valid,
            Outcome::OutOfTime => PartVerdict::Unknown(String::new()),
            Outcome::NotLinearizable { op, states } => {
                let call = &calls[op];
                let failure = Failure {
                    model: self.model.name(),
                    key: part.key,
                    invoke: call.invoke as usize,
                    completion: call.ret.unwrap_or(call.invoke) as usize,
                    states: states.iter().map(|s| model.state_value(s)).collect(),
                    part_ops: part.ops.clone(),
                };
                PartVerdict::Invalid(Box::new(explain::anomaly(history, &failure)))
            }
        };
        (verdict, effort, n)
    }
}
