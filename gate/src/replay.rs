//! What `faultline replay` needs: the original run's arguments with the seed, schedule and
//! store replaced; the recorded schedule with every target pinned to the nodes it actually
//! hit (a "leader" target resolves to whoever led then, which may differ in a new run); and
//! a comparison of the nemesis ops of two runs.

use std::collections::{BTreeMap, BTreeSet};

use history::{History, OpType, Process, Value, vocab};
use nemesis::{Fault, Partition, Schedule, Target};

/// Options a replay sets itself, removed from the original arguments (with their values).
pub const REPLACED: [&str; 3] = ["--seed", "--schedule", "--store"];

/// The `faultline test` arguments of a stored run (from `test.json`'s `argv`), without the
/// options in `replaced` (and their values).
pub fn test_args(argv: &[String], replaced: &[&str]) -> Result<Vec<String>, String> {
    let start = argv
        .iter()
        .position(|a| a == "test")
        .ok_or("test.json's argv has no `test` subcommand")?;
    let mut out = Vec::new();
    let mut it = argv[start + 1..].iter();
    while let Some(a) = it.next() {
        if replaced.contains(&a.as_str()) {
            it.next();
            continue;
        }
        if replaced.iter().any(|r| a.starts_with(&format!("{r}="))) {
            continue;
        }
        out.push(a.clone());
    }
    Ok(out)
}

/// The nodes a recorded fault value names: a partition's grudge, or `nodes`.
fn grudge_of(v: &Value) -> Option<nemesis::Grudge> {
    let Value::Map(pairs) = v else { return None };
    let mut g = BTreeMap::new();
    for (k, v) in pairs {
        let set: BTreeSet<String> = v
            .as_list()?
            .iter()
            .map(|n| n.as_str().map(str::to_owned))
            .collect::<Option<_>>()?;
        g.insert(k.as_str()?.to_owned(), set);
    }
    Some(g)
}

fn nodes_of(v: &Value) -> Option<Vec<String>> {
    v.get("nodes")?
        .as_list()?
        .iter()
        .map(|n| n.as_str().map(str::to_owned))
        .collect()
}

/// The completions of the nemesis's `start-*` ops, in order.
fn starts(h: &History) -> Vec<&history::Op> {
    h.ops()
        .iter()
        .enumerate()
        .filter(|(i, op)| {
            op.process == Process::Nemesis
                && matches!(
                    vocab::parse_nemesis_f(&op.f),
                    Some((vocab::Phase::Start, _))
                )
                && h.partner(*i).is_some_and(|p| p < *i)
        })
        .map(|(_, op)| op)
        .collect()
}

/// The schedule with each fault's targets replaced by the nodes the recorded run hit.
/// Faults the run never started (it was interrupted) keep their original targets.
pub fn pin(schedule: &Schedule, recorded: &History) -> Schedule {
    let mut pinned = schedule.clone();
    let mut order: Vec<usize> = (0..pinned.faults.len()).collect();
    order.sort_by_key(|&i| pinned.faults[i].start_ms);
    for (&i, op) in order.iter().zip(starts(recorded)) {
        let f = &mut pinned.faults[i].fault;
        if vocab::parse_nemesis_f(&op.f) != Some((vocab::Phase::Start, f.kind().name())) {
            break;
        }
        match f {
            Fault::Partition { partition } => {
                if let Some(g) = grudge_of(&op.value) {
                    *partition = Partition::Grudge(g);
                }
            }
            Fault::Pause { target }
            | Fault::Kill { target }
            | Fault::Member { target }
            | Fault::Clock { target, .. }
            | Fault::Loss { target, .. }
            | Fault::Bandwidth { target, .. } => {
                if let Some(nodes) = nodes_of(&op.value) {
                    *target = Target::Nodes(nodes);
                }
            }
        }
    }
    pinned
}

/// A nemesis op reduced to what must match between a run and its replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub f: String,
    pub kind: OpType,
    pub targets: Value,
    /// Since the history's first op (the workload's start): a run's deploy time, which
    /// varies from run to run, is not part of its schedule.
    pub time_ms: f64,
    /// The first half of a nemesis op (when the step began), not its completion.
    pub opens: bool,
    /// When the nemesis was free to begin this step: the time of the step before it. The
    /// nemesis applies one step at a time, so a step due while the one before is still
    /// being applied begins when that one completes.
    pub free_ms: f64,
}

pub fn steps(h: &History) -> Vec<Step> {
    let t0 = h.ops().iter().filter_map(|op| op.time).min().unwrap_or(0);
    let mut free_ms = 0.0;
    h.ops()
        .iter()
        .enumerate()
        // A process exiting by itself is the system's doing, not the schedule's.
        .filter(|(_, op)| op.process == Process::Nemesis && !vocab::is_process_event(&op.f))
        .map(|(i, op)| {
            let opens = h.partner(i).is_none_or(|p| p > i);
            let time_ms = op.time.unwrap_or(t0).saturating_sub(t0) as f64 / 1e6;
            let step = Step {
                opens,
                f: op.f.to_string(),
                kind: op.kind,
                targets: if opens { Value::Nil } else { hit(&op.value) },
                time_ms,
                free_ms,
            };
            free_ms = time_ms;
            step
        })
        .collect()
}

/// What a completed nemesis op hit. An opening op carries the fault as requested ("the
/// leader", "isolate a follower"), which a pinned replay names by its nodes instead, so only
/// completions are compared on their targets. Fault ids are per run.
fn hit(value: &Value) -> Value {
    match value {
        Value::Map(pairs) if value.get("nodes").is_some() => Value::Map(
            pairs
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), Some("id" | "errors")))
                .cloned()
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Differences between the nemesis ops of two runs: kind, target and order must match, and
/// the time each step began within `tolerance_ms` (a completion's time only says how long
/// applying the fault took on a loaded machine, which no schedule controls). A step that
/// began later in one run matches when that run's nemesis was still applying the step before
/// until within `tolerance_ms` of it: the delay is that apply time, not the schedule. Empty
/// when they match.
pub fn compare(original: &History, replay: &History, tolerance_ms: f64) -> Vec<String> {
    let (a, b) = (steps(original), steps(replay));
    let mut diffs = Vec::new();
    if a.len() != b.len() {
        diffs.push(format!(
            "the original has {} nemesis ops, the replay {}",
            a.len(),
            b.len()
        ));
    }
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x.f != y.f || x.kind != y.kind || x.targets != y.targets {
            diffs.push(format!(
                "nemesis op {i}: {} {} on {} vs {} {} on {}",
                x.f, x.kind, x.targets, y.f, y.kind, y.targets
            ));
        } else if x.opens {
            let (early, late) = if x.time_ms <= y.time_ms {
                (x, y)
            } else {
                (y, x)
            };
            if late.time_ms - early.time_ms.max(late.free_ms) > tolerance_ms {
                diffs.push(format!(
                    "nemesis op {i} ({}): at {:.0} ms vs {:.0} ms (more than {tolerance_ms} ms apart)",
                    x.f, x.time_ms, y.time_ms
                ));
            }
        }
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::build::Builder;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn strips_the_options_replay_sets() {
        let argv = s(&[
            "faultline",
            "test",
            "--nodes",
            "3",
            "--seed",
            "9",
            "--store=/s",
            "--schedule",
            "x.json",
            "--bug",
            "no-fencing",
        ]);
        assert_eq!(
            test_args(&argv, &REPLACED).unwrap(),
            s(&["--nodes", "3", "--bug", "no-fencing"])
        );
        assert!(test_args(&s(&["faultline", "check"]), &REPLACED).is_err());
    }

    fn run(times: &[u64], nodes: &str) -> History {
        let mut b = Builder::new();
        for (i, &t) in times.iter().enumerate() {
            let f = if i % 4 < 2 {
                "start-pause"
            } else {
                "stop-pause"
            };
            let v: Value =
                serde_json::from_str(&format!(r#"{{"id":{i},"nodes":["{nodes}"]}}"#)).unwrap();
            b.nemesis(f, v).time = Some(t * 1_000_000);
        }
        b.build().unwrap()
    }

    #[test]
    fn compares_kind_target_order_and_time() {
        let a = run(&[1000, 1010, 3000, 3005], "n2");
        assert!(compare(&a, &run(&[1050, 1060, 3080, 3090], "n2"), 100.0).is_empty());
        let late = compare(&a, &run(&[1000, 1010, 3200, 3205], "n2"), 100.0);
        assert_eq!(late.len(), 1, "{late:?}");
        // A slow completion is not a different schedule.
        assert!(compare(&a, &run(&[1000, 1300, 3000, 3400], "n2"), 100.0).is_empty());
        // Nor is the step after it, due while the slow one was still being applied: it began
        // 1 ms after the completion, 150 ms later than in the original.
        let b = run(&[1000, 1010, 1100, 1110, 1500, 1510], "n2");
        assert!(compare(&b, &run(&[1000, 1249, 1250, 1260, 1500, 1510], "n2"), 100.0).is_empty());
        // But a step that began late with the nemesis idle is a different schedule, in
        // either run.
        let idle = run(&[1000, 1010, 1250, 1260, 1500, 1510], "n2");
        assert_eq!(compare(&b, &idle, 100.0).len(), 1);
        assert_eq!(compare(&idle, &b, 100.0).len(), 1);
        // Both completions name n3 where the original hit n2.
        let other = compare(&a, &run(&[1000, 1010, 3000, 3005], "n3"), 100.0);
        assert_eq!(other.len(), 2, "{other:?}");
        assert!(!compare(&a, &run(&[1000, 1010], "n2"), 100.0).is_empty());
    }

    #[test]
    fn processes_exiting_by_themselves_are_not_part_of_the_schedule() {
        let a = run(&[1000, 1010, 3000, 3005], "n2");
        let mut b = Builder::new();
        for (i, t) in [1000u64, 1010, 3000, 3005].into_iter().enumerate() {
            if i == 2 {
                // The replayed system fenced itself between the two faults this time.
                for f in [vocab::PROCESS_EXIT, vocab::PROCESS_EXIT] {
                    let v: Value = serde_json::from_str(r#"{"node":"n1"}"#).unwrap();
                    b.nemesis(f, v).time = Some(2_000_000_000);
                }
            }
            let f = if i < 2 { "start-pause" } else { "stop-pause" };
            let v: Value =
                serde_json::from_str(&format!(r#"{{"id":{i},"nodes":["n2"]}}"#)).unwrap();
            b.nemesis(f, v).time = Some(t * 1_000_000);
        }
        let with_exit = b.build().unwrap();
        assert_eq!(steps(&with_exit).len(), 4);
        assert!(compare(&a, &with_exit, 100.0).is_empty());
    }

    #[test]
    fn a_slower_deploy_is_not_a_different_schedule() {
        // The workload (its first op) starts 250 ms later in the replay, and every fault
        // with it: the schedule is the same.
        let with_start = |start: u64, times: &[u64]| {
            let mut b = Builder::new();
            b.invoke(1, "add", 1).time = Some(start * 1_000_000);
            for (i, &t) in times.iter().enumerate() {
                let f = if i < 2 { "start-pause" } else { "stop-pause" };
                let v: Value =
                    serde_json::from_str(&format!(r#"{{"id":{i},"nodes":["n2"]}}"#)).unwrap();
                b.nemesis(f, v).time = Some(t * 1_000_000);
            }
            b.build().unwrap()
        };
        let a = with_start(1250, &[3250, 3260, 5250, 5260]);
        let b = with_start(1500, &[3500, 3510, 5500, 5510]);
        assert!(compare(&a, &b, 100.0).is_empty());
        let late = with_start(1500, &[3500, 3510, 5700, 5710]);
        assert_eq!(compare(&a, &late, 100.0).len(), 1);
    }

    #[test]
    fn a_pinned_request_matches_the_request_it_pins() {
        // The original asked for "isolate a follower", the replay for the grudge it got.
        let partition = |request: &str| {
            let mut b = Builder::new();
            let grudge: Value = serde_json::from_str(r#"{"n1":["n2"],"n2":["n1"]}"#).unwrap();
            let request: Value = serde_json::from_str(request).unwrap();
            b.nemesis("start-partition", request).time = Some(1_000_000_000);
            b.nemesis("start-partition", grudge).time = Some(1_010_000_000);
            b.build().unwrap()
        };
        let shape = partition(r#"{"kind":"partition","partition":{"shape":"isolate-follower"}}"#);
        let pinned = partition(r#"{"kind":"partition","partition":{"grudge":{"n1":["n2"]}}}"#);
        assert!(compare(&shape, &pinned, 100.0).is_empty());
    }

    #[test]
    fn pins_leader_targets_to_the_recorded_nodes() {
        let schedule: Schedule = Schedule::parse(
            r#"{"nodes":["n1","n2","n3"],"faults":[{"start_ms":1000,"end_ms":3000,"fault":{"kind":"pause","target":"leader"}}]}"#,
        )
        .unwrap();
        let h = run(&[1000, 1010, 3000, 3005], "n2");
        let pinned = pin(&schedule, &h);
        assert_eq!(
            pinned.faults[0].fault.target(),
            Some(&Target::Nodes(vec!["n2".into()]))
        );
    }
}
