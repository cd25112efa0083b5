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

mod driver;
mod explain;
mod partition;
mod search;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use history::{History, Value};

pub use model::{Codec, Interner, Model};
pub use search::Call;

use crate::Checker;
use crate::result::{CheckResult, DEFAULT_LIMIT};

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
                format!(
                    "unknown model {s:?} (expected register, cas-register, multi-register or kv)"
                )
            })
    }
}

/// The default of [`Linearizable::with_memory_limit`].
pub const DEFAULT_MEMORY_LIMIT: usize = 2 << 30;

/// The linearizability checker. See the module docs for the semantics.
#[derive(Clone, Debug)]
pub struct Linearizable {
    model: ModelKind,
    initial: Value,
    nil_read_is_unknown: bool,
    budget: Option<Duration>,
    memory_limit: usize,
    exhaustive: bool,
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
            memory_limit: DEFAULT_MEMORY_LIMIT,
            exhaustive: false,
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

    /// Gives up with Unknown once the searches hold about this many bytes (default 2 GiB):
    /// a hard history must not take the machine down.
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// False (the default): once one key is found non-linearizable, keys whose search has
    /// not finished yet are abandoned (the verdict is Invalid either way; as Porcupine does).
    /// True: every key is searched to the end, to list every non-linearizable key.
    pub fn with_exhaustive(mut self, yes: bool) -> Self {
        self.exhaustive = yes;
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

impl Checker for Linearizable {
    fn name(&self) -> &'static str {
        "linearizable"
    }

    fn check(&self, history: &History) -> CheckResult {
        let deadline = self.budget.map(|b| Instant::now() + b);
        let split = partition::split(history, self.model != ModelKind::MultiRegister);
        let mut run = driver::Run::new(self, history, &split, deadline);
        let nil_unknown = self.nil_read_is_unknown;
        match self.model {
            ModelKind::Register | ModelKind::CasRegister => {
                let cas = self.model == ModelKind::CasRegister;
                run.check(|| Ok(models::Register::new(&self.initial, cas, nil_unknown)));
            }
            ModelKind::MultiRegister => {
                run.check(|| models::MultiRegister::new(&self.initial, nil_unknown));
            }
            ModelKind::Kv => run.check(|| Ok(models::Kv::default())),
        }
        let mut result = run.finish();
        result.stat("model", self.model.name());
        result.stat("keys", split.parts.len() as u64);
        result.stat("failed_ops_dropped", split.failed);
        result.stat("indefinite_ops", split.indefinite);
        result
    }
}

impl Linearizable {
    fn name_str(&self) -> &'static str {
        "linearizable"
    }
}
