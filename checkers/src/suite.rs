//! Which checkers a history gets, decided once for `faultline test`, `check` and `report`.
//!
//! A [`Suite`] is plain data: the models to check (from the workloads a run declared, or
//! inferred by a [`Census`] of the ops' functions), whether the leader checkers apply (the
//! history has leader probes), and whether `stats` is wanted. [`Suite::run`] runs them all
//! and adds the fault context to every anomaly (`explain`). The streaming checkers (`set`,
//! `unique-ids`) may be run by the caller over a file too large to hold, and handed in.

use std::time::Duration;

use history::{History, Op, Value, vocab};

use crate::linearizable::{Linearizable, ModelKind};
use crate::{CheckResult, Checker};

/// What a history is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Model {
    /// Jepsen's set-full (`add`, and `read` of the whole set).
    Set,
    /// Ids handed out once (`generate`, `insert`, `incr`).
    UniqueIds,
    /// Linearizable `read`/`write` registers.
    Register,
    /// Linearizable `read`/`write`/`cas` registers.
    CasRegister,
    /// Linearizable `txn`s over named registers.
    MultiRegister,
    /// Linearizable `get`/`put`/`append` string store.
    Kv,
    /// Elle-style list-append `txn`s (`append` and `r` micro-ops), against a consistency model.
    ListAppend,
}

impl Model {
    pub const ALL: [Model; 7] = [
        Model::Set,
        Model::UniqueIds,
        Model::Register,
        Model::CasRegister,
        Model::MultiRegister,
        Model::Kv,
        Model::ListAppend,
    ];

    /// The name on the command line (`--model cas-register`).
    pub fn name(self) -> &'static str {
        match self {
            Model::Set => "set",
            Model::UniqueIds => "unique-ids",
            Model::Register => "register",
            Model::CasRegister => "cas-register",
            Model::MultiRegister => "multi-register",
            Model::Kv => "kv",
            Model::ListAppend => "list-append",
        }
    }

    /// Whether the checker runs op by op over a stream (memory grows with distinct values).
    pub fn streams(self) -> bool {
        matches!(self, Model::Set | Model::UniqueIds | Model::ListAppend)
    }

    fn linearizable(self) -> Option<ModelKind> {
        Some(match self {
            Model::Register => ModelKind::Register,
            Model::CasRegister => ModelKind::CasRegister,
            Model::MultiRegister => ModelKind::MultiRegister,
            Model::Kv => ModelKind::Kv,
            Model::Set | Model::UniqueIds | Model::ListAppend => return None,
        })
    }
}

impl std::str::FromStr for Model {
    type Err = String;

    fn from_str(s: &str) -> Result<Model, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Model::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model {s:?} (one of {})", names.join(", "))
            })
    }
}

/// Which functions a history uses, observed op by op (a stream needs no history in memory).
#[derive(Default, Debug, Clone)]
pub struct Census {
    adds: bool,
    ids: bool,
    register: bool,
    txn: bool,
    /// A txn with an `append` micro-op: list-append, not registers.
    list_append: bool,
    kv: bool,
    /// Leader probes (`leader` ops): the dual-leader and failover checkers apply.
    pub leader: bool,
    /// Nemesis ops: anomalies can be put in their fault context.
    pub nemesis: bool,
    pub ops: u64,
}

impl Census {
    pub fn of(history: &History) -> Census {
        let mut c = Census::default();
        history.ops().iter().for_each(|op| c.observe(op));
        c
    }

    pub fn observe(&mut self, op: &Op) {
        self.ops += 1;
        if !op.is_client() {
            self.nemesis = true;
            return;
        }
        match &*op.f {
            vocab::ADD => self.adds = true,
            vocab::GENERATE | vocab::INSERT | vocab::INCR => self.ids = true,
            vocab::WRITE | vocab::CAS => self.register = true,
            vocab::TXN => {
                self.txn = true;
                if let Value::List(mops) = &op.value {
                    self.list_append |= mops.iter().any(|m| {
                        matches!(m, Value::List(p) if matches!(p.first(), Some(Value::Str(f)) if &**f == "append"))
                    });
                }
            }
            vocab::GET | vocab::PUT | vocab::APPEND => self.kv = true,
            vocab::LEADER => self.leader = true,
            _ => {}
        }
    }

    /// The models the functions seen call for, in [`Model`] order.
    pub fn models(&self) -> Vec<Model> {
        [
            (self.adds, Model::Set),
            (self.ids, Model::UniqueIds),
            (self.register, Model::CasRegister),
            (self.txn && !self.list_append, Model::MultiRegister),
            (self.list_append, Model::ListAppend),
            (self.kv, Model::Kv),
        ]
        .into_iter()
        .filter_map(|(seen, m)| seen.then_some(m))
        .collect()
    }
}

/// The checkers one history gets.
#[derive(Clone, Debug)]
pub struct Suite {
    pub models: Vec<Model>,
    /// Run `dual-leader` and `failover` over the leader probes.
    pub leader: bool,
    /// Run `stats` (counts, latencies, throughput): wanted in a run's results, not by `check`.
    pub stats: bool,
    /// The linearizability search's time budget; past it the verdict is unknown.
    pub budget: Duration,
    /// The registers' initial value (nil when left out).
    pub initial: Option<Value>,
    /// Read a nil read as "value unknown" (Jepsen/Knossos histories record reads so).
    pub nil_read_is_unknown: bool,
    /// The model list-append histories are checked against.
    pub consistency: crate::list_append::Consistency,
}

impl Suite {
    /// The suite of a faultline run: its models, the leader checkers and stats.
    pub fn for_run(models: Vec<Model>) -> Suite {
        Suite {
            models,
            leader: true,
            stats: true,
            budget: Duration::from_secs(60),
            initial: None,
            nil_read_is_unknown: false,
            consistency: crate::list_append::Consistency::StrictSerializable,
        }
    }

    /// The suite a history's own ops call for (`check`, `report` without results).
    pub fn inferred(census: &Census) -> Suite {
        Suite {
            leader: census.leader,
            ..Suite::for_run(census.models())
        }
    }

    pub fn with_budget(mut self, budget: Duration) -> Suite {
        self.budget = budget;
        self
    }

    /// Whether [`Suite::run`] needs the whole history (else the streamed results suffice).
    pub fn needs_history(&self, census: &Census) -> bool {
        self.stats || self.leader || census.nemesis || self.models.iter().any(|m| !m.streams())
    }

    /// Runs every checker of the suite over `history`; the fault context is added to every
    /// anomaly.
    pub fn run(&self, history: &History) -> Vec<CheckResult> {
        self.run_with(history, Vec::new())
    }

    /// As [`Suite::run`], reusing results the caller already has for streaming models
    /// (filed under their checker's name), so a large file is not checked twice.
    pub fn run_with(&self, history: &History, streamed: Vec<CheckResult>) -> Vec<CheckResult> {
        let mut results: Vec<CheckResult> = self
            .models
            .iter()
            .map(|&m| self.check(m, history, &streamed))
            .collect();
        if self.leader {
            results.push(crate::dual_leader::DualLeader::default().check(history));
            results.push(crate::failover::Failover::default().check(history));
            results.push(crate::convergence::Convergence::default().check(history));
        }
        let digests = || history.ops().iter().any(|o| *o.f == *vocab::DIGEST);
        if self.models.contains(&Model::Set) || digests() {
            results.push(crate::divergence::Divergence::default().check(history));
        }
        if self.stats {
            results.push(crate::stats::Stats.check(history));
        }
        crate::explain::enrich(history, &mut results);
        results
    }

    /// The results of the streaming models alone, when the history is not needed.
    pub fn streamed_only(&self, streamed: Vec<CheckResult>) -> Vec<CheckResult> {
        let mut streamed = streamed;
        self.models
            .iter()
            .filter_map(|m| {
                let name = Self::streamed_name(*m)?;
                let i = streamed.iter().position(|r| r.checker == name)?;
                Some(streamed.remove(i))
            })
            .collect()
    }

    fn streamed_name(m: Model) -> Option<&'static str> {
        match m {
            Model::Set => Some("set"),
            Model::UniqueIds => Some("unique-ids"),
            Model::ListAppend => Some("list-append"),
            _ => None,
        }
    }

    fn check(&self, m: Model, history: &History, streamed: &[CheckResult]) -> CheckResult {
        if let Some(r) =
            Self::streamed_name(m).and_then(|n| streamed.iter().find(|r| r.checker == n))
        {
            return r.clone();
        }
        // A set read carries no key and a register op does: when both share a history,
        // each checker sees its own ops (and every probe and nemesis op).
        let mixed = self.models.contains(&Model::Set) && self.models.iter().any(|m| !m.streams());
        let r = match (m, m.linearizable()) {
            (Model::Set, _) => {
                let c = crate::set::Set::default();
                if mixed {
                    subset(history, |op| op.key.is_none()).map(|h| c.check(&h))
                } else {
                    Ok(c.check(history))
                }
            }
            (Model::ListAppend, _) => Ok(crate::list_append::ListAppend {
                consistency: self.consistency,
                ..Default::default()
            }
            .check(history)),
            (_, None) => Ok(crate::unique_ids::UniqueIds::default().check(history)),
            (_, Some(kind)) => {
                let mut c = Linearizable::new(kind)
                    .with_nil_read_is_unknown(self.nil_read_is_unknown)
                    .with_budget(self.budget);
                if let Some(v) = &self.initial {
                    c = c.with_initial(v.clone());
                }
                // Only the model's own functions: probes and other workloads' ops are not
                // operations on the registers.
                let fs: &[&str] = match kind {
                    ModelKind::Register | ModelKind::CasRegister => {
                        &[vocab::READ, vocab::WRITE, vocab::CAS]
                    }
                    ModelKind::MultiRegister => &[vocab::TXN],
                    ModelKind::Kv => &[vocab::GET, vocab::PUT, vocab::APPEND],
                };
                subset(history, |op| {
                    !op.is_client() || (fs.contains(&&*op.f) && (!mixed || op.key.is_some()))
                })
                .map(|h| c.check(&h))
            }
        };
        r.unwrap_or_else(|e| CheckResult::unknown("history", e))
    }
}

/// The ops of `history` that `keep` accepts, as a history of their own.
fn subset(history: &History, keep: impl Fn(&Op) -> bool) -> Result<History, String> {
    let ops: Vec<Op> = history.ops().iter().filter(|o| keep(o)).cloned().collect();
    History::new(ops).map_err(|e| format!("failed to pair ops: {e}"))
}
