//! The `dual-leader` checker: who claimed to lead, when, in which term, and whether two nodes
//! provably led at once.
//!
//! Input: the leader probes (`f = "leader"`, one process per node; an `ok` completion carries
//! `{"role":"leader"|"follower"|"candidate","term":5,"leader":"n2"}`) and the `node` of every
//! acknowledged write (`add`, `write`, `cas`, `incr`, ...). Failed or unknown probes prove
//! nothing and are ignored.
//!
//! Timing semantics (see `docs/report.md`): a probe is an interval `[invoke, completion]`; the
//! node's answer was true at *some* instant inside it. The one assumption made is that **a
//! node's leadership in one term is one contiguous interval** (true of Raft, Zab, Viewstamped
//! Replication: a node never leads the same term twice). So consecutive probes of a node that
//! all answer "leader in term t" (no answered probe in between saying otherwise) form a
//! [`LeaderRun`], and the node provably led throughout `[completion of the first, invoke of
//! the last]`, its *proven* interval. Two runs of different nodes provably overlap only when
//! their proven intervals intersect, or when one run's proven interval contains a whole probe
//! interval of the other. Overlaps that timing cannot prove are only counted
//! (`unproven_overlaps`), never claimed.
//!
//! Anomalies: `dual-leader` (a proven window of two leaders, any terms), `same-term-leaders`
//! (two nodes claimed the same term: always a bug, whatever the timing; Raft's Election
//! Safety), `split-brain-writes` (both nodes of a proven window acknowledged writes that were
//! in flight during it).

use history::vocab;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value as Json, json};

use history::{History, OpType, Validity, Value};

use crate::result::{DEFAULT_LIMIT, kind};
use crate::{Anomaly, CheckResult, Checker};

/// Configuration of the dual-leader checker.
#[derive(Clone, Debug)]
pub struct DualLeader {
    /// The probe function (`leader`).
    pub probe_f: String,
    /// Functions whose `ok` completion means the answering node accepted a write.
    pub write_fs: Vec<String>,
    /// Anomalies listed in full (the rest are counted).
    pub limit: usize,
}

impl Default for DualLeader {
    fn default() -> Self {
        DualLeader {
            probe_f: vocab::LEADER.into(),
            write_fs: default_write_fs(),
            limit: DEFAULT_LIMIT,
        }
    }
}

/// The write-like functions of faultline's workloads.
pub fn default_write_fs() -> Vec<String> {
    vocab::WRITE_FS.into_iter().map(String::from).collect()
}

/// One answered probe.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub node: Arc<str>,
    /// Indices of the invocation and the completion.
    pub invoke: u64,
    pub complete: u64,
    /// Invocation and completion times (ns).
    pub start: u64,
    pub end: u64,
    pub role: String,
    pub term: Option<i64>,
    /// The node it believes leads.
    pub leader: Option<String>,
    /// The replication indices it reported, when the system reports them.
    pub applied: Option<i64>,
    pub committed: Option<i64>,
}

impl Probe {
    pub fn is_leader(&self) -> bool {
        self.role == vocab::ROLE_LEADER
    }
}

/// The answered probes of a history and what was left out.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Answered probes, sorted by node, then invocation time.
    pub probes: Vec<Probe>,
    /// Probes that failed, ended `info` or never completed.
    pub unanswered: u64,
    /// Answered probes without times or node, or whose value has no `role`.
    pub unusable: u64,
}

/// Reads the probes of `history`.
pub fn observe(history: &History, probe_f: &str) -> Observations {
    let mut obs = Observations::default();
    for (_, inv, done) in history.client_pairs() {
        if *inv.f != *probe_f {
            continue;
        }
        let Some(done) = done.filter(|d| d.kind == OpType::Ok) else {
            obs.unanswered += 1;
            continue;
        };
        let node = done.node.clone().or_else(|| inv.node.clone());
        let role = done.value.get("role").and_then(Value::as_str);
        match (node, role, inv.time, done.time) {
            (Some(node), Some(role), Some(start), Some(end)) => obs.probes.push(Probe {
                node,
                invoke: inv.index,
                complete: done.index,
                start,
                end: end.max(start),
                role: role.to_owned(),
                term: done.value.get("term").and_then(Value::as_int),
                leader: done
                    .value
                    .get("leader")
                    .and_then(Value::as_str)
                    .map(String::from),
                applied: done.value.get("applied").and_then(Value::as_int),
                committed: done.value.get("committed").and_then(Value::as_int),
            }),
            _ => obs.unusable += 1,
        }
    }
    obs.probes
        .sort_by(|a, b| (&a.node, a.start, a.invoke).cmp(&(&b.node, b.start, b.invoke)));
    obs
}

/// A probe interval that saw the node lead: it led at some instant in `[start, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Witness {
    pub start: u64,
    pub end: u64,
    pub invoke: u64,
    pub complete: u64,
}

/// Consecutive answered probes of one node that all said "leader" in the same term.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderRun {
    pub node: Arc<str>,
    pub term: Option<i64>,
    /// Sorted by start; never empty.
    pub witnesses: Vec<Witness>,
}

impl LeaderRun {
    pub fn first(&self) -> &Witness {
        &self.witnesses[0]
    }

    pub fn last(&self) -> &Witness {
        &self.witnesses[self.witnesses.len() - 1]
    }

    /// The earliest instant it may have led (ns).
    pub fn seen_from(&self) -> u64 {
        self.first().start
    }

    /// The latest instant it may have led, as observed (ns).
    pub fn seen_to(&self) -> u64 {
        self.witnesses.iter().map(|w| w.end).max().unwrap_or(0)
    }

    /// Where it provably led throughout: from the first probe's completion to the last one's
    /// invocation (needs two probes that do not overlap).
    pub fn proven(&self) -> Option<(u64, u64)> {
        let (a, b) = (self.first().end, self.last().start);
        (self.witnesses.len() >= 2 && a <= b).then_some((a, b))
    }
}

/// Groups each node's leader answers into runs (same term, no other answer between).
pub fn leader_runs(probes: &[Probe]) -> Vec<LeaderRun> {
    let mut runs: Vec<LeaderRun> = Vec::new();
    let mut open: Option<LeaderRun> = None;
    for p in probes {
        let continues = open
            .as_ref()
            .is_some_and(|r| r.node == p.node && r.term == p.term && p.is_leader());
        if continues {
            if let Some(r) = open.as_mut() {
                r.witnesses.push(witness(p));
            }
            continue;
        }
        runs.extend(open.take());
        if p.is_leader() {
            open = Some(LeaderRun {
                node: p.node.clone(),
                term: p.term,
                witnesses: vec![witness(p)],
            });
        }
    }
    runs.extend(open);
    runs.sort_by(|a, b| (a.seen_from(), &a.node).cmp(&(b.seen_from(), &b.node)));
    runs
}

fn witness(p: &Probe) -> Witness {
    Witness {
        start: p.start,
        end: p.end,
        invoke: p.invoke,
        complete: p.complete,
    }
}

/// A proven window of two leaders: both led at some instant inside `[start, end]` (when both
/// runs have proven intervals that intersect: throughout it).
#[derive(Clone, Debug, PartialEq)]
pub struct DualWindow {
    pub start: u64,
    pub end: u64,
    /// Positions in the `runs` slice given to [`dual_windows`].
    pub a: usize,
    pub b: usize,
    /// Whether both led throughout the window (else: at one instant inside it).
    pub throughout: bool,
    /// Indices of the probes that prove it.
    pub ops: Vec<u64>,
}

/// The proven dual-leader windows among `runs` (sorted as [`leader_runs`] returns them), and
/// how many pairs of runs of different nodes might have overlapped without proof.
pub fn dual_windows(runs: &[LeaderRun]) -> (Vec<DualWindow>, u64) {
    let mut out = Vec::new();
    let mut unproven = 0;
    for i in 0..runs.len() {
        for j in i + 1..runs.len() {
            let (a, b) = (&runs[i], &runs[j]);
            if b.seen_from() > a.seen_to() {
                // Sorted by seen_from: no later run can reach back to `a` either.
                break;
            }
            if a.node == b.node {
                continue;
            }
            match prove(a, b) {
                Some((start, end, throughout, mut ops)) => {
                    ops.sort_unstable();
                    ops.dedup();
                    out.push(DualWindow {
                        start,
                        end,
                        a: i,
                        b: j,
                        throughout,
                        ops,
                    });
                }
                None => unproven += 1,
            }
        }
    }
    (out, unproven)
}

fn ends(w: &Witness) -> [u64; 2] {
    [w.invoke, w.complete]
}

fn prove(a: &LeaderRun, b: &LeaderRun) -> Option<(u64, u64, bool, Vec<u64>)> {
    if let (Some(pa), Some(pb)) = (a.proven(), b.proven()) {
        let (s, e) = (pa.0.max(pb.0), pa.1.min(pb.1));
        if s <= e {
            let ops = [a.first(), a.last(), b.first(), b.last()]
                .iter()
                .flat_map(|w| ends(w))
                .collect();
            return Some((s, e, true, ops));
        }
    }
    for (x, y) in [(a, b), (b, a)] {
        let Some((s, e)) = x.proven() else { continue };
        let from = y.witnesses.partition_point(|w| w.start < s);
        let inside = y.witnesses[from..]
            .iter()
            .take_while(|w| w.start <= e)
            .find(|w| w.end <= e);
        if let Some(w) = inside {
            let ops = [x.first(), x.last(), w]
                .iter()
                .flat_map(|w| ends(w))
                .collect();
            return Some((w.start, w.end, false, ops));
        }
    }
    None
}

/// An acknowledged write: who acked it and when it was in flight.
#[derive(Clone, Debug)]
pub struct AckedWrite {
    pub node: Arc<str>,
    pub start: u64,
    pub end: u64,
    pub invoke: u64,
    pub complete: u64,
    pub f: Arc<str>,
    pub value: Value,
}

/// The acknowledged writes of `history` with a node and times, sorted by completion time.
pub fn acked_writes(history: &History, write_fs: &[String]) -> Vec<AckedWrite> {
    let mut out: Vec<AckedWrite> = history
        .client_pairs()
        .filter(|(_, inv, _)| {
            write_fs.iter().any(|f| **f == *inv.f) || (&*inv.f == vocab::TXN && writes(&inv.value))
        })
        .filter_map(|(_, inv, done)| {
            let done = done.filter(|d| d.kind == OpType::Ok)?;
            Some(AckedWrite {
                node: done.node.clone().or_else(|| inv.node.clone())?,
                start: inv.time?,
                end: done.time?,
                invoke: inv.index,
                complete: done.index,
                f: inv.f.clone(),
                value: inv.value.clone(),
            })
        })
        .collect();
    out.sort_by_key(|w| (w.end, w.complete));
    out
}

/// Whether a transaction's micro-ops write (`append`, Elle's `w`, `write`).
fn writes(txn: &Value) -> bool {
    txn.as_list().is_some_and(|mops| {
        mops.iter().any(|m| {
            m.as_list()
                .and_then(|m| m.first())
                .and_then(Value::as_str)
                .is_some_and(|f| matches!(f, vocab::APPEND | vocab::WRITE | "w"))
        })
    })
}

/// Seconds, for messages.
pub(crate) fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn term_str(t: Option<i64>) -> String {
    t.map_or_else(|| "no term".into(), |t| format!("term {t}"))
}

impl Checker for DualLeader {
    fn name(&self) -> &'static str {
        "dual-leader"
    }

    fn check(&self, history: &History) -> CheckResult {
        let obs = observe(history, &self.probe_f);
        let runs = leader_runs(&obs.probes);
        let mut r = CheckResult::new("dual-leader");
        self.same_term(&runs, &mut r);
        let (windows, unproven) = dual_windows(&runs);
        let writes = acked_writes(history, &self.write_fs);
        let max_latency = writes.iter().map(|w| w.end - w.start).max().unwrap_or(0);
        let mut split = 0u64;
        for w in &windows {
            let (a, b) = (&runs[w.a], &runs[w.b]);
            r.push(
                Anomaly {
                    kind: kind::DUAL_LEADER,
                    ops: w.ops.clone(),
                    explanation: explain_window(w, a, b),
                    details: json!({
                        "nodes": [&*a.node, &*b.node],
                        "terms": [a.term, b.term],
                        "start_s": w.start as f64 / 1e9,
                        "end_s": w.end as f64 / 1e9,
                        "throughout": w.throughout,
                    }),
                },
                self.limit,
            );
            if let Some(anomaly) = split_brain(w, a, b, &writes, max_latency) {
                split += 1;
                r.push(anomaly, self.limit);
            }
        }
        let leaders: Vec<Json> = runs
            .iter()
            .take(1000)
            .map(|run| {
                json!({
                    "node": &*run.node,
                    "term": run.term,
                    "from_s": run.seen_from() as f64 / 1e9,
                    "to_s": run.seen_to() as f64 / 1e9,
                    "proven": run.proven().map(|(s, e)| [s as f64 / 1e9, e as f64 / 1e9]),
                    "probes": run.witnesses.len(),
                    "first_op": run.first().complete,
                    "last_op": run.last().complete,
                })
            })
            .collect();
        r.stat("probes_answered", obs.probes.len() as u64);
        r.stat("probes_unanswered", obs.unanswered);
        if obs.unusable > 0 {
            r.stat("probes_unusable", obs.unusable);
        }
        r.stat("leader_runs_total", runs.len() as u64);
        r.stat("leader_runs", leaders);
        r.stat("dual_leader_windows", windows.len() as u64);
        r.stat("unproven_overlaps", unproven);
        r.stat("split_brain_windows", split);
        if r.valid == Validity::Valid && obs.probes.is_empty() {
            r.valid = Validity::Unknown;
            r.reason = Some(format!(
                "no `{}` probe was answered, so leadership cannot be judged",
                self.probe_f
            ));
        }
        r
    }
}

impl DualLeader {
    fn same_term(&self, runs: &[LeaderRun], r: &mut CheckResult) {
        let mut by_term: BTreeMap<i64, Vec<&LeaderRun>> = BTreeMap::new();
        for run in runs {
            if let Some(t) = run.term {
                by_term.entry(t).or_default().push(run);
            }
        }
        for (term, claims) in by_term {
            let mut nodes: Vec<&str> = claims.iter().map(|c| &*c.node).collect();
            nodes.sort_unstable();
            nodes.dedup();
            if nodes.len() < 2 {
                continue;
            }
            let mut ops: Vec<u64> = claims.iter().flat_map(|c| ends(c.first())).collect();
            ops.sort_unstable();
            let said: Vec<String> = claims
                .iter()
                .map(|c| {
                    format!(
                        "{} (probe {} answered at {})",
                        c.node,
                        c.first().complete,
                        secs(c.first().end)
                    )
                })
                .collect();
            r.push(
                Anomaly {
                    kind: kind::SAME_TERM_LEADERS,
                    ops,
                    explanation: format!(
                        "{} nodes claimed to lead term {term}: {}. At most one node may lead a \
                         term (Raft's Election Safety), whatever the timing, so this is a bug \
                         in the election.",
                        nodes.len(),
                        said.join(", ")
                    ),
                    details: json!({ "term": term, "nodes": nodes }),
                },
                self.limit,
            );
        }
    }
}

fn describe(run: &LeaderRun) -> String {
    match run.proven() {
        Some((s, e)) => format!(
            "{} ({}) led throughout {}..{} (probes {} and {} said leader)",
            run.node,
            term_str(run.term),
            secs(s),
            secs(e),
            run.first().complete,
            run.last().complete
        ),
        None => format!(
            "{} ({}) answered leader to probe {} ({}..{})",
            run.node,
            term_str(run.term),
            run.first().complete,
            secs(run.first().start),
            secs(run.first().end)
        ),
    }
}

fn explain_window(w: &DualWindow, a: &LeaderRun, b: &LeaderRun) -> String {
    let how = if w.throughout {
        format!("both led throughout {}..{}", secs(w.start), secs(w.end))
    } else {
        format!(
            "both led at some instant in {}..{}",
            secs(w.start),
            secs(w.end)
        )
    };
    format!(
        "{} and {} claimed leadership at the same time: {how}. {}; {}. (A node's leadership \
         in one term is taken to be one contiguous interval.)",
        a.node,
        b.node,
        describe(a),
        describe(b)
    )
}

fn split_brain(
    w: &DualWindow,
    a: &LeaderRun,
    b: &LeaderRun,
    writes: &[AckedWrite],
    max_latency: u64,
) -> Option<Anomaly> {
    let from = writes.partition_point(|x| x.end < w.start);
    let until = w.end.saturating_add(max_latency);
    let during: Vec<&AckedWrite> = writes[from..]
        .iter()
        .take_while(|x| x.end <= until)
        .filter(|x| x.start <= w.end)
        .collect();
    let by = |n: &str| -> Vec<&AckedWrite> {
        during.iter().copied().filter(|x| &*x.node == n).collect()
    };
    let (wa, wb) = (by(&a.node), by(&b.node));
    if wa.is_empty() || wb.is_empty() {
        return None;
    }
    let mut ops = w.ops.clone();
    for x in wa.iter().take(10).chain(wb.iter().take(10)) {
        ops.extend([x.invoke, x.complete]);
    }
    ops.sort_unstable();
    ops.dedup();
    let eg = |x: &AckedWrite| {
        format!(
            "{} {} acked at {} (op {})",
            x.f,
            x.value,
            secs(x.end),
            x.complete
        )
    };
    Some(Anomaly {
        kind: kind::SPLIT_BRAIN_WRITES,
        ops,
        explanation: format!(
            "Split brain with data at stake: while {} and {} both claimed leadership \
             ({}..{}), {} acknowledged {} write(s) in flight then (e.g. {}) and {} acknowledged {} \
             (e.g. {}). Writes accepted by two leaders at once cannot both survive a merge.",
            a.node,
            b.node,
            secs(w.start),
            secs(w.end),
            a.node,
            wa.len(),
            eg(wa[0]),
            b.node,
            wb.len(),
            eg(wb[0])
        ),
        details: json!({
            "nodes": [&*a.node, &*b.node],
            "writes": [wa.len(), wb.len()],
            "start_s": w.start as f64 / 1e9,
            "end_s": w.end as f64 / 1e9,
        }),
    })
}
