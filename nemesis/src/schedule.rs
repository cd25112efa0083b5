//! Schedules: when each fault starts and stops. Generated from a seed
//! ([`Schedule::generate`]: a random sequence of start/stop pairs over the fault window) or
//! read from a file (JSON or TOML, [`Schedule::load`]) that an earlier run saved
//! ([`Schedule::save`]), so a run can be replayed. Also the command-line helpers
//! [`parse_kinds`].

use std::path::Path;
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fault::{ClockAction, Fault, FaultKind, Partition, Target};
use crate::grudge::{self, NodeName, Shape};

/// One fault and its window, in ms since the start of the fault window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFault {
    pub start_ms: u64,
    pub end_ms: u64,
    pub fault: Fault,
    /// The episode of the failover-aware nemesis that played it (`3:stale-leader-race`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<String>,
}

/// A list of faults with start and stop times. Faults may overlap; each stop undoes exactly
/// its own start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Schedule {
    /// The seed it was generated from, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The nodes it was made for (informational; [`Schedule::validate`] checks the nodes the
    /// faults name).
    #[serde(default)]
    pub nodes: Vec<NodeName>,
    pub faults: Vec<ScheduledFault>,
}

/// What [`Schedule::generate`] draws from.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Kinds of fault to use (each fault picks one at random).
    pub kinds: Vec<FaultKind>,
    /// Quiet time before each fault, and each fault's duration (`--nemesis-interval`).
    pub interval: Duration,
    /// Length of the fault window: no fault is active after it.
    pub window: Duration,
    /// Nodes of the cluster.
    pub nodes: Vec<NodeName>,
    /// Partition shapes to pick from.
    pub shapes: Vec<Shape>,
    /// Targets of node faults to pick from.
    pub targets: Vec<Target>,
    /// Largest clock skew, in ms (bumps are ±250 ms ..= this).
    pub max_clock_skew_ms: i64,
    /// Drop probability of `loss` faults.
    pub loss_probability: f64,
    /// Rate of `bandwidth` faults.
    pub bandwidth_kbit: u32,
}

impl GenerateOptions {
    /// Defaults for everything but the kinds, interval, window and nodes.
    pub fn new(
        kinds: Vec<FaultKind>,
        interval: Duration,
        window: Duration,
        nodes: Vec<NodeName>,
    ) -> Self {
        GenerateOptions {
            kinds,
            interval,
            window,
            nodes,
            shapes: Shape::RANDOM.to_vec(),
            targets: vec![
                Target::One,
                Target::Leader,
                Target::Minority,
                Target::Majority,
                Target::All,
            ],
            max_clock_skew_ms: 10_000,
            loss_probability: 0.2,
            bandwidth_kbit: 512,
        }
    }
}

/// Mixed into the run's seed so the schedule's draws differ from the workload's.
const SCHEDULE_SALT: u64 = 0x6e65_6d65_7369_7321;

impl Schedule {
    /// A random schedule, the same for the same seed and options: wait `interval`, start a
    /// fault of a random kind, stop it after `interval`, repeat until the window ends. Random
    /// targets and shapes are resolved now (so the saved schedule names nodes and grudges);
    /// only leader targets are resolved when the fault starts.
    pub fn generate(seed: u64, opts: &GenerateOptions) -> Schedule {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SCHEDULE_SALT);
        let interval = opts.interval.as_millis().max(1) as u64;
        let window = opts.window.as_millis() as u64;
        let mut faults = Vec::new();
        let mut t = interval;
        while !opts.kinds.is_empty() && t + interval <= window {
            let kind = *opts.kinds.choose(&mut rng).expect("non-empty");
            let fault = random_fault(kind, opts, &mut rng).resolved(&opts.nodes, &mut rng);
            faults.push(ScheduledFault {
                start_ms: t,
                end_ms: t + interval,
                fault,
                episode: None,
            });
            t += 2 * interval;
        }
        Schedule {
            seed: Some(seed),
            nodes: opts.nodes.clone(),
            faults,
        }
    }

    /// Checks times and that every node named exists in `nodes`.
    pub fn validate(&self, nodes: &[NodeName]) -> Result<()> {
        let bad = |msg: String| Err(Error::Schedule(msg));
        for (i, f) in self.faults.iter().enumerate() {
            if f.end_ms < f.start_ms {
                return bad(format!(
                    "fault {i} ends ({} ms) before it starts ({} ms)",
                    f.end_ms, f.start_ms
                ));
            }
            let named: Vec<NodeName> = match &f.fault {
                Fault::Partition {
                    partition: Partition::Grudge(g),
                } => {
                    grudge::validate(g, nodes)
                        .map_err(|e| Error::Schedule(format!("fault {i}: {e}")))?;
                    vec![]
                }
                Fault::Partition {
                    partition: Partition::Isolate(n),
                } => vec![n.clone()],
                other => match other.target() {
                    Some(Target::Nodes(list)) => list.clone(),
                    _ => vec![],
                },
            };
            if let Some(n) = named.iter().find(|n| !nodes.contains(n)) {
                return bad(format!(
                    "fault {i} names node {n}, which the cluster does not have"
                ));
            }
            if let Fault::Loss { probability, .. } = &f.fault {
                if !(0.0..=1.0).contains(probability) {
                    return bad(format!(
                        "fault {i}: loss probability {probability} is not within 0..=1"
                    ));
                }
            }
        }
        Ok(())
    }

    /// When the last fault stops (ms).
    pub fn end_ms(&self) -> u64 {
        self.faults.iter().map(|f| f.end_ms).max().unwrap_or(0)
    }

    /// JSON text.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Schedule(format!("failed to encode as JSON: {e}")))
    }

    /// TOML text.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Schedule(format!("failed to encode as TOML: {e}")))
    }

    /// Parses JSON or TOML (JSON if it starts with `{`).
    pub fn parse(text: &str) -> Result<Schedule> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text)
                .map_err(|e| Error::Schedule(format!("failed to parse JSON schedule: {e}")))
        } else {
            toml::from_str(text)
                .map_err(|e| Error::Schedule(format!("failed to parse TOML schedule: {e}")))
        }
    }

    /// Writes the schedule to `path`: TOML if it ends in `.toml`, else JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = if is_toml(path) {
            self.to_toml()?
        } else {
            self.to_json()?
        };
        std::fs::write(path, text)
            .map_err(|e| Error::io(format!("write schedule {}", path.display()), e))
    }

    /// Reads a schedule file (JSON or TOML); a parse error names the file.
    pub fn load(path: &Path) -> Result<Schedule> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read schedule {}", path.display()), e))?;
        Schedule::parse(&text).map_err(|e| match e {
            Error::Schedule(m) => Error::Schedule(format!("{}: {m}", path.display())),
            other => other,
        })
    }
}

fn is_toml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

/// A fault of `kind` with random targets and parameters drawn from `opts`.
pub(crate) fn random_fault<R: Rng + ?Sized>(
    kind: FaultKind,
    opts: &GenerateOptions,
    rng: &mut R,
) -> Fault {
    let target = opts.targets.choose(rng).cloned().unwrap_or(Target::One);
    match kind {
        FaultKind::Partition => {
            let shape = opts.shapes.choose(rng).copied().unwrap_or(Shape::Halves);
            Fault::Partition {
                partition: Partition::Shape(shape),
            }
        }
        FaultKind::Pause => Fault::Pause { target },
        FaultKind::Kill => Fault::Kill { target },
        // One node at a time, as membership changes go (Raft's single-server changes): a
        // majority wiped at once has lost committed data in any consensus system, and a
        // correct one stays unavailable rather than pretend otherwise.
        FaultKind::Member => Fault::Member {
            target: Target::One,
        },
        FaultKind::Clock => {
            let max = opts.max_clock_skew_ms.max(250);
            let mut delta = rng.random_range(250..=max);
            if rng.random_bool(0.5) {
                delta = -delta;
            }
            let action = if rng.random_bool(0.25) {
                ClockAction::Strobe {
                    delta_ms: delta,
                    period_ms: rng.random_range(20..=500),
                }
            } else {
                ClockAction::Bump { delta_ms: delta }
            };
            Fault::Clock { target, action }
        }
        FaultKind::Loss => Fault::Loss {
            target,
            probability: opts.loss_probability,
        },
        FaultKind::Bandwidth => Fault::Bandwidth {
            target,
            rate_kbit: opts.bandwidth_kbit,
        },
    }
}

/// Parses `--nemesis partition,pause,kill,clock,loss` (also `all`, and `none` or empty for
/// no faults). Duplicates are dropped; order is kept.
pub fn parse_kinds(s: &str) -> Result<Vec<FaultKind>> {
    let mut out = Vec::new();
    for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "none" => {}
            "all" => out.extend(FaultKind::ALL),
            w => out.push(FaultKind::parse(w).ok_or_else(|| {
                let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                Error::Schedule(format!(
                    "unknown nemesis {w:?} (known: {}, all, none)",
                    known.join(", ")
                ))
            })?),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|k| seen.insert(*k));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kinds: &str) -> GenerateOptions {
        let nodes = (1..=5).map(|i| format!("n{i}")).collect();
        GenerateOptions::new(
            parse_kinds(kinds).unwrap(),
            Duration::from_secs(5),
            Duration::from_secs(60),
            nodes,
        )
    }

    #[test]
    fn generated_schedule_is_deterministic_and_in_the_window() {
        let o = opts("partition,pause,kill,clock,loss,bandwidth");
        let a = Schedule::generate(42, &o);
        assert_eq!(a, Schedule::generate(42, &o));
        assert_ne!(a, Schedule::generate(43, &o));
        assert_eq!(a.faults.len(), 6, "5 s quiet + 5 s fault, in a 60 s window");
        for (i, f) in a.faults.iter().enumerate() {
            assert_eq!(f.end_ms - f.start_ms, 5000);
            assert!(f.end_ms <= 60_000);
            if i > 0 {
                assert!(f.start_ms >= a.faults[i - 1].end_ms);
            }
        }
        a.validate(&o.nodes).unwrap();
        // Over many seeds every kind shows up and only leader targets stay dynamic.
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..40 {
            for f in Schedule::generate(seed, &o).faults {
                kinds.insert(f.fault.kind());
                if let Some(t) = f.fault.target() {
                    assert!(matches!(t, Target::Nodes(_) | Target::Leader), "{t:?}");
                }
                if let Fault::Partition {
                    partition: Partition::Shape(s),
                } = &f.fault
                {
                    assert!(s.needs_leader(), "{s:?}");
                }
            }
        }
        assert_eq!(kinds.len(), 6);
    }

    #[test]
    fn a_membership_fault_takes_one_node_at_a_time() {
        let o = opts("member");
        for seed in 0..40 {
            for f in Schedule::generate(seed, &o).faults {
                match f.fault {
                    Fault::Member {
                        target: Target::Nodes(n),
                    } => assert_eq!(n.len(), 1, "seed {seed}"),
                    other => panic!("seed {seed}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn json_and_toml_round_trip() {
        let o = opts("all");
        for seed in 0..10 {
            let s = Schedule::generate(seed, &o);
            assert_eq!(Schedule::parse(&s.to_json().unwrap()).unwrap(), s);
            let toml = s.to_toml().unwrap();
            assert_eq!(Schedule::parse(&toml).unwrap(), s, "TOML:\n{toml}");
        }
        let dir = tempfile::tempdir().unwrap();
        let s = Schedule::generate(1, &o);
        for name in ["s.json", "s.toml"] {
            let p = dir.path().join(name);
            s.save(&p).unwrap();
            assert_eq!(Schedule::load(&p).unwrap(), s);
        }
    }

    #[test]
    fn hand_written_toml_schedule() {
        let text = r#"
nodes = ["n1", "n2", "n3"]

[[faults]]
start_ms = 1000
end_ms = 4000
fault = { kind = "partition", partition = { grudge = { n1 = ["n2", "n3"], n2 = ["n1"], n3 = ["n1"] } } }

[[faults]]
start_ms = 2000
end_ms = 3000
fault = { kind = "clock", target = { nodes = ["n2"] }, action = { mode = "bump", delta_ms = -1500 } }

[[faults]]
start_ms = 5000
end_ms = 6000
fault = { kind = "pause", target = "leader" }

[[faults]]
start_ms = 7000
end_ms = 8000
fault = { kind = "partition", partition = { isolate = "n3" } }
"#;
        let s = Schedule::parse(text).unwrap();
        assert_eq!(s.faults.len(), 4);
        s.validate(&s.nodes).unwrap();
        assert!(s.validate(&["n1".to_string()]).is_err());
        assert_eq!(s.end_ms(), 8000);
    }

    #[test]
    fn kinds() {
        assert_eq!(
            parse_kinds("partition, pause,partition").unwrap(),
            vec![FaultKind::Partition, FaultKind::Pause]
        );
        assert_eq!(parse_kinds("all").unwrap().len(), 7);
        assert!(parse_kinds("none").unwrap().is_empty());
        assert!(
            parse_kinds("partition,bogus")
                .unwrap_err()
                .to_string()
                .contains("bogus")
        );
    }
}
