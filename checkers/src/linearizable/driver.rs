//! Running the searches of all partitions: encode each part with a fresh model (so each has
//! its own small interner), then advance the searches in rounds of growing step slices, so an
//! easy non-linearizable key is found before a hard one is finished (Porcupine gets the same
//! effect by checking keys in parallel and stopping at the first failure). Rounds are counted
//! in steps, not time, so the outcome does not depend on the machine's speed.

use std::time::Instant;

use history::{History, Validity};

use super::explain::{self, Failure};
use super::partition::{Part, Split};
use super::search::{Call, Calls, Effort, Outcome, Search};
use super::{Codec, Linearizable};
use crate::result::{Anomaly, CheckResult};

/// Steps each live search gets in the first round; doubled every round.
const FIRST_SLICE: u64 = 1 << 13;
const MAX_SLICE: u64 = 1 << 20;

/// One check over the parts of a split history.
pub struct Run<'r> {
    checker: &'r Linearizable,
    history: &'r History,
    split: &'r Split<'r>,
    deadline: Option<Instant>,
    /// (part, anomaly), sorted by part at the end.
    anomalies: Vec<(usize, Anomaly)>,
    reasons: Vec<String>,
    effort: Effort,
    ops: u64,
    valid_parts: usize,
    abandoned: Vec<usize>,
}

impl<'r> Run<'r> {
    pub fn new(
        checker: &'r Linearizable,
        history: &'r History,
        split: &'r Split<'r>,
        deadline: Option<Instant>,
    ) -> Self {
        Run {
            checker,
            history,
            split,
            deadline,
            anomalies: Vec::new(),
            reasons: Vec::new(),
            effort: Effort::default(),
            ops: 0,
            valid_parts: 0,
            abandoned: Vec::new(),
        }
    }

    /// Encodes every part with a model from `make` and searches them all.
    pub fn check<M: Codec>(&mut self, make: impl Fn() -> Result<M, String>) {
        let mut encoded: Vec<(usize, M, Calls<M>)> = Vec::new();
        for (i, part) in self.split.parts.iter().enumerate() {
            match make().and_then(|model| self.encode(model, part)) {
                Ok((model, calls)) => {
                    self.ops += calls.len() as u64;
                    encoded.push((i, model, calls));
                }
                Err(reason) => self.reasons.push(reason),
            }
        }
        let mut live: Vec<(usize, Search<'_, M>)> = encoded
            .iter()
            .map(|(i, model, calls)| (*i, Search::new(model, calls)))
            .collect();
        let mut slice = FIRST_SLICE;
        while !live.is_empty() {
            let mut still = Vec::with_capacity(live.len());
            let mut out_of_time = false;
            for (i, mut search) in live {
                if out_of_time {
                    still.push((i, search));
                    continue;
                }
                let outcome = search.run(slice, self.deadline);
                let e = search.effort();
                match outcome {
                    None => {
                        still.push((i, search));
                        continue;
                    }
                    Some(Outcome::Linearizable) => self.valid_parts += 1,
                    Some(Outcome::NotLinearizable { op, states }) => {
                        let (_, model, calls) =
                            &encoded[encoded.iter().position(|x| x.0 == i).unwrap_or(0)];
                        let call = &calls[op];
                        let failure = Failure {
                            model: self.checker.model.name(),
                            key: self.split.parts[i].key,
                            invoke: call.invoke as usize,
                            completion: call.ret.unwrap_or(call.invoke) as usize,
                            states: states.iter().map(|s| model.state_value(s)).collect(),
                            part_ops: &self.split.parts[i].ops,
                        };
                        self.anomalies
                            .push((i, explain::anomaly(self.history, &failure)));
                    }
                    Some(Outcome::OutOfTime) => {
                        out_of_time = true;
                        self.reasons.push(self.out_of_time(i));
                        still.push((i, search));
                    }
                }
                self.effort.steps += e.steps;
                self.effort.configurations += e.configurations;
            }
            live = still;
            let memory: usize = live.iter().map(|(_, s)| s.memory()).sum();
            if !out_of_time && memory > self.checker.memory_limit {
                out_of_time = true;
                let (i, _) = live
                    .iter()
                    .max_by_key(|(_, s)| s.memory())
                    .map_or((0, 0), |(i, s)| (*i, s.memory()));
                self.reasons.push(self.out_of_memory(i, memory));
            }
            if out_of_time || (!self.anomalies.is_empty() && !self.checker.exhaustive) {
                self.abandoned = live.iter().map(|(i, _)| *i).collect();
                for (_, s) in &live {
                    let e = s.effort();
                    self.effort.steps += e.steps;
                    self.effort.configurations += e.configurations;
                }
                break;
            }
            slice = (slice * 2).min(MAX_SLICE);
        }
    }

    fn encode<M: Codec>(&self, mut model: M, part: &Part<'_>) -> Result<(M, Calls<M>), String> {
        let ops = self.history.ops();
        let mut calls = Vec::with_capacity(part.ops.len());
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
                    return Err(format!(
                        "cannot check with the {} model{key}: {reason}",
                        self.checker.model
                    ));
                }
            }
        }
        Ok((model, calls))
    }

    fn out_of_time(&self, part: usize) -> String {
        let budget = self.checker.budget.unwrap_or_default();
        let p = &self.split.parts[part];
        let key = p.key.map(|k| format!(" {k}")).unwrap_or_default();
        format!(
            "the time budget of {budget:?} ran out while checking key{key} ({} ops); {} of {} keys were found linearizable before that",
            p.ops.len(),
            self.valid_parts,
            self.split.parts.len()
        )
    }

    fn out_of_memory(&self, part: usize, bytes: usize) -> String {
        let p = &self.split.parts[part];
        let key = p.key.map(|k| format!(" {k}")).unwrap_or_default();
        format!(
            "the search outgrew its memory limit of {} MiB ({} MiB in use) while checking key{key} ({} ops); {} of {} keys were found linearizable before that",
            self.checker.memory_limit >> 20,
            bytes >> 20,
            p.ops.len(),
            self.valid_parts,
            self.split.parts.len()
        )
    }

    pub fn finish(mut self) -> CheckResult {
        let mut result = CheckResult::new(self.checker.name_str());
        self.anomalies.sort_by_key(|(i, _)| *i);
        for (_, a) in self.anomalies {
            result.push(a, self.checker.limit);
        }
        if !self.reasons.is_empty() {
            result.valid = result.valid.merge(Validity::Unknown);
            result.reason = Some(self.reasons.join("; "));
        }
        result.stat("ops", self.ops);
        result.stat("keys_valid", self.valid_parts as u64);
        if !self.abandoned.is_empty() {
            let keys: Vec<_> = self
                .abandoned
                .iter()
                .map(|&i| {
                    self.split.parts[i]
                        .key
                        .map_or(serde_json::Value::Null, |k| k.to_json())
                })
                .collect();
            result.stat("keys_not_finished", keys);
        }
        result.stat("configurations", self.effort.configurations);
        result.stat("search_steps", self.effort.steps);
        result
    }
}
