//! What a checker says: a verdict, the anomalies that justify it, and figures.

use serde::Serialize;
use serde_json::{Map, Value as Json};

use history::Validity;

/// Anomaly class names, as they appear in `results.json`'s `anomaly_types`.
pub mod kind {
    /// An acknowledged write (or one seen by a read) absent from every later read.
    pub const LOST_WRITE: &str = "lost-write";
    /// A read returned a value nobody tried to write, or one whose write definitely failed.
    pub const UNEXPECTED: &str = "unexpected";
    /// A value appeared more than once in a single read of a set.
    pub const DUPLICATED: &str = "duplicated";
    /// A known value was missing from a read and reappeared later.
    pub const STALE_READ: &str = "stale-read";
    /// The same id was handed out to two operations.
    pub const REUSED_KEY: &str = "reused-key";
    /// No linearization of the history exists.
    pub const NONLINEARIZABLE: &str = "nonlinearizable";
    /// A function never succeeded at all.
    pub const NEVER_OK: &str = "never-ok";
    /// Two nodes provably claimed leadership at the same instant.
    pub const DUAL_LEADER: &str = "dual-leader";
    /// Two nodes claimed leadership of the same term (Raft's Election Safety broken).
    pub const SAME_TERM_LEADERS: &str = "same-term-leaders";
    /// Both leaders of a dual-leader window acknowledged writes.
    pub const SPLIT_BRAIN_WRITES: &str = "split-brain-writes";
    /// The leader changed while no fault was active (election timeout too short?).
    pub const UNNECESSARY_FAILOVER: &str = "unnecessary-failover";
    /// After the last fault, a follower stood still behind the leader's commit index.
    pub const STUCK_FOLLOWER: &str = "stuck-follower";
    /// After the faults and the writes, nodes' final reads hold different data.
    pub const DIVERGENCE: &str = "divergence";
}

/// One finding, with the ops that prove it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Anomaly {
    /// The class, one of [`kind`].
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `index` of each op that proves it, in history order.
    pub ops: Vec<u64>,
    /// One paragraph a person can read without the history at hand.
    pub explanation: String,
    /// Machine-readable specifics (the value, the nodes, the model state, ...).
    #[serde(skip_serializing_if = "Json::is_null")]
    pub details: Json,
}

/// A checker's whole answer.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub checker: &'static str,
    pub valid: Validity,
    /// Why the verdict is Unknown (time budget, no data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many anomalies there were in all; `anomalies` may list only the first ones.
    pub anomaly_count: u64,
    pub anomalies: Vec<Anomaly>,
    pub stats: Map<String, Json>,
}

impl CheckResult {
    pub fn new(checker: &'static str) -> Self {
        CheckResult {
            checker,
            valid: Validity::Valid,
            reason: None,
            anomaly_count: 0,
            anomalies: Vec::new(),
            stats: Map::new(),
        }
    }

    /// Unknown, with the reason said.
    pub fn unknown(checker: &'static str, reason: impl Into<String>) -> Self {
        CheckResult {
            valid: Validity::Unknown,
            reason: Some(reason.into()),
            ..CheckResult::new(checker)
        }
    }

    /// Records an anomaly (making the result Invalid); beyond `limit` only counts it.
    ///
    /// The limit is per class: a flood of one class (a million unexpected elements) cannot
    /// crowd another (one lost write) out of the list, nor out of the verdict's classes.
    pub fn push(&mut self, anomaly: Anomaly, limit: usize) {
        self.valid = Validity::Invalid;
        self.anomaly_count += 1;
        let listed = self
            .anomalies
            .iter()
            .filter(|a| a.kind == anomaly.kind)
            .take(limit)
            .count();
        if listed < limit {
            self.anomalies.push(anomaly);
        }
    }

    pub fn stat(&mut self, name: &str, value: impl Into<Json>) {
        self.stats.insert(name.to_owned(), value.into());
    }

    /// Anomaly classes present, sorted, without repeats.
    pub fn anomaly_types(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.anomalies.iter().map(|a| a.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }
}

/// The results of several checkers: the worst verdict wins.
pub fn merge_validity<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Validity {
    results
        .into_iter()
        .fold(Validity::Valid, |v, r| v.merge(r.valid))
}

/// Anomalies found out of order, kept to the `limit` earliest (by the op that shows each) of
/// every class while all are counted: memory stays bounded whatever a history holds.
#[derive(Debug)]
pub struct Findings {
    limit: usize,
    by_kind: std::collections::BTreeMap<&'static str, Vec<(u64, Anomaly)>>,
    count: u64,
}

impl Findings {
    pub fn new(limit: usize) -> Self {
        Findings {
            limit: limit.max(1),
            by_kind: Default::default(),
            count: 0,
        }
    }

    /// Adds an anomaly shown at op index `at`.
    pub fn add(&mut self, at: u64, anomaly: Anomaly) {
        self.count += 1;
        let limit = self.limit;
        let v = self.by_kind.entry(anomaly.kind).or_default();
        v.push((at, anomaly));
        if v.len() >= 2 * limit {
            v.sort_by_key(|(at, _)| *at);
            v.truncate(limit);
        }
    }

    /// Into `result`, in history order, every one counted.
    pub fn into_result(self, result: &mut CheckResult) {
        let mut kept: Vec<(u64, Anomaly)> = Vec::new();
        for (_, mut v) in self.by_kind {
            v.sort_by_key(|(at, _)| *at);
            v.truncate(self.limit);
            kept.extend(v);
        }
        kept.sort_by_key(|(at, _)| *at);
        let listed = kept.len() as u64;
        for (_, a) in kept {
            result.push(a, self.limit);
        }
        result.anomaly_count += self.count - listed;
    }
}

/// How many anomalies a checker lists in full before it only counts them.
pub const DEFAULT_LIMIT: usize = 100;

/// The results object of a run (`results.json`): the merged verdict, the anomaly classes
/// found, and one entry per checker under its name.
pub fn results_json(results: &[CheckResult]) -> Json {
    let mut types: Vec<&str> = results.iter().flat_map(|r| r.anomaly_types()).collect();
    types.sort_unstable();
    types.dedup();
    let mut out = Map::new();
    out.insert(
        "valid".into(),
        serde_json::to_value(merge_validity(results)).unwrap_or(Json::Null),
    );
    out.insert("anomaly_types".into(), types.into());
    for r in results {
        out.insert(
            r.checker.into(),
            serde_json::to_value(r).unwrap_or(Json::Null),
        );
    }
    Json::Object(out)
}

/// When each anomaly class first showed, for `results.json`'s `detection`: per class, the
/// earliest op (by time) among the ops that prove any of its listed anomalies (`first_op`,
/// `first_s`: where the trouble began), and the earliest instant at which one anomaly of the
/// class had its proof (`proven_s`): for an anomaly about a window (two leaders at once,
/// `details.start_s`), when the window opened; otherwise the latest of its ops (a lost write
/// is proven by the read that lacks it). Times are seconds since the test started; ops are
/// history indices.
pub fn detection(history: &history::History, results: &[CheckResult]) -> Json {
    let ops = history.ops();
    let time_of = |index: u64| {
        let pos = ops.partition_point(|o| o.index < index);
        ops.get(pos)
            .filter(|o| o.index == index)
            .and_then(|o| o.time)
    };
    // class -> (first op time, its index, earliest complete proof)
    let mut by_class: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for a in results.iter().flat_map(|r| &r.anomalies) {
        let timed: Vec<(u64, u64)> = a
            .ops
            .iter()
            .filter_map(|&i| time_of(i).map(|t| (t, i)))
            .collect();
        let (Some(&(first_t, first_i)), Some(&(last_t, _))) =
            (timed.iter().min(), timed.iter().max())
        else {
            continue;
        };
        let e = by_class.entry(a.kind).or_insert((first_t, first_i, last_t));
        if (first_t, first_i) < (e.0, e.1) {
            (e.0, e.1) = (first_t, first_i);
        }
        e.2 = e.2.min(last_t);
    }
    let secs = |ns: u64| (ns as f64 / 1e6).round() / 1e3;
    Json::Object(
        by_class
            .into_iter()
            .map(|(k, (t, i, p))| {
                (
                    k.to_owned(),
                    serde_json::json!({ "first_op": i, "first_s": secs(t), "proven_s": secs(p) }),
                )
            })
            .collect(),
    )
}
