//! Faults as data: what to do ([`Fault`]), to which nodes ([`Target`]), and what was done
//! ([`FaultRecord`], the value of a nemesis op in the history).

use std::collections::BTreeSet;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};

use crate::grudge::{Grudge, NodeName, Shape, majority};

/// The kinds of fault, as named on the command line (`--nemesis partition,pause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    Pause,
    Kill,
    Clock,
    Loss,
    Bandwidth,
    /// A node leaves the cluster (stopped, its data wiped) and joins again as a new member.
    Member,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Partition,
        FaultKind::Pause,
        FaultKind::Kill,
        FaultKind::Clock,
        FaultKind::Loss,
        FaultKind::Bandwidth,
        FaultKind::Member,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::Clock => "clock",
            FaultKind::Loss => "loss",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == s.trim())
    }
}

/// Which nodes a fault hits. Random choices are made with the nemesis's seeded RNG; the
/// schedule generator resolves them up front, so a saved schedule names its nodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// One random node.
    One,
    /// The current leader (as the system reports it; a random node if none is known).
    Leader,
    /// A random node that is not the current leader (any node if none is known).
    Follower,
    /// A random minority (`(n-1)/2` nodes, at least one).
    Minority,
    /// A random majority.
    Majority,
    /// Every node.
    All,
    /// These nodes.
    Nodes(Vec<NodeName>),
}

impl Target {
    /// Parses `one`, `leader`, `minority`, `majority`, `all`, or a comma-separated node list.
    pub fn parse(s: &str) -> Target {
        match s.trim() {
            "one" | "random" => Target::One,
            "leader" | "primary" => Target::Leader,
            "follower" | "replica" => Target::Follower,
            "minority" => Target::Minority,
            "majority" => Target::Majority,
            "all" => Target::All,
            list => Target::Nodes(
                list.split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
            ),
        }
    }

    /// The nodes this target names now. `leader` is the current leader, if known.
    pub fn resolve<R: Rng + ?Sized>(
        &self,
        nodes: &[NodeName],
        leader: Option<&str>,
        rng: &mut R,
    ) -> Vec<NodeName> {
        let mut v: Vec<NodeName> = nodes.to_vec();
        v.sort();
        let pick = |v: &mut Vec<NodeName>, k: usize, rng: &mut R| {
            v.shuffle(rng);
            v.truncate(k);
            v.sort();
            v.clone()
        };
        match self {
            Target::One => v.choose(rng).cloned().into_iter().collect(),
            Target::Leader => match leader {
                Some(l) if v.iter().any(|n| n == l) => vec![l.to_string()],
                _ => v.choose(rng).cloned().into_iter().collect(),
            },
            Target::Follower => {
                let others: Vec<&NodeName> =
                    v.iter().filter(|n| Some(n.as_str()) != leader).collect();
                let pool: Vec<&NodeName> = if others.is_empty() {
                    v.iter().collect()
                } else {
                    others
                };
                pool.choose(rng).map(|n| (*n).clone()).into_iter().collect()
            }
            Target::Minority => {
                let k = (v.len().saturating_sub(1) / 2).max(1).min(v.len());
                pick(&mut v, k, rng)
            }
            Target::Majority => {
                let k = majority(v.len()).min(v.len());
                pick(&mut v, k, rng)
            }
            Target::All => v,
            Target::Nodes(list) => {
                let set: BTreeSet<NodeName> = list.iter().cloned().collect();
                set.into_iter().collect()
            }
        }
    }

    /// True if resolving needs the system (the leader), so it cannot be fixed up front.
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Target::Leader | Target::Follower)
    }
}

/// The partition a fault makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Partition {
    /// This exact grudge.
    Grudge(Grudge),
    /// This node cut off from all others (`{ isolate = "n2" }`).
    Isolate(NodeName),
    /// A shape, built when the fault starts (isolate-leader needs the leader then).
    Shape(Shape),
}

/// What a clock fault does while it is active. Stopping it restores the offset it added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum ClockAction {
    /// Shift the clock by `delta_ms` (negative: back in time).
    Bump { delta_ms: i64 },
    /// Flip between `+delta_ms` and normal every `period_ms` until stopped.
    Strobe { delta_ms: i64, period_ms: u64 },
}

/// A fault to start (its stop undoes exactly it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Fault {
    /// Cut the network as the grudge says (iptables DROP by source in faultline's chain).
    Partition { partition: Partition },
    /// SIGSTOP the system's processes (SIGCONT on stop).
    Pause { target: Target },
    /// SIGKILL the system's processes (start them again on stop).
    Kill { target: Target },
    /// Skew the wall clock of the targets.
    Clock { target: Target, action: ClockAction },
    /// Drop packets from other nodes at random with this probability (0..=1).
    Loss { target: Target, probability: f64 },
    /// Limit the targets' outgoing bandwidth (tc tbf).
    Bandwidth { target: Target, rate_kbit: u32 },
    /// The nodes leave the cluster by the system's own procedure (`leave`: stopped, data
    /// wiped); stopping the fault has them join again as new members (`join`: the system's
    /// way to seed a new follower, a snapshot and the log from its position).
    Member { target: Target },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Partition { .. } => FaultKind::Partition,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Clock { .. } => FaultKind::Clock,
            Fault::Loss { .. } => FaultKind::Loss,
            Fault::Bandwidth { .. } => FaultKind::Bandwidth,
            Fault::Member { .. } => FaultKind::Member,
        }
    }

    /// The target of a node-targeted fault (`None` for partitions).
    pub fn target(&self) -> Option<&Target> {
        match self {
            Fault::Partition { .. } => None,
            Fault::Pause { target }
            | Fault::Kill { target }
            | Fault::Clock { target, .. }
            | Fault::Loss { target, .. }
            | Fault::Bandwidth { target, .. }
            | Fault::Member { target } => Some(target),
        }
    }

    /// The fault with random targets and shapes fixed now (leader-dependent ones are kept).
    pub fn resolved<R: Rng + ?Sized>(&self, nodes: &[NodeName], rng: &mut R) -> Fault {
        let fix = |t: &Target, rng: &mut R| {
            if t.is_dynamic() {
                t.clone()
            } else {
                Target::Nodes(t.resolve(nodes, None, rng))
            }
        };
        match self {
            Fault::Partition {
                partition: Partition::Shape(s),
            } if !s.needs_leader() => Fault::Partition {
                partition: Partition::Grudge(s.build(nodes, None, rng)),
            },
            Fault::Partition { .. } => self.clone(),
            Fault::Pause { target } => Fault::Pause {
                target: fix(target, rng),
            },
            Fault::Kill { target } => Fault::Kill {
                target: fix(target, rng),
            },
            Fault::Member { target } => Fault::Member {
                target: fix(target, rng),
            },
            Fault::Clock { target, action } => Fault::Clock {
                target: fix(target, rng),
                action: action.clone(),
            },
            Fault::Loss {
                target,
                probability,
            } => Fault::Loss {
                target: fix(target, rng),
                probability: *probability,
            },
            Fault::Bandwidth { target, rate_kbit } => Fault::Bandwidth {
                target: fix(target, rng),
                rate_kbit: *rate_kbit,
            },
        }
    }
}

/// Start or stop of a fault: the two ends of a nemesis op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Start,
    Stop,
}

/// What the nemesis did, as plain data: the runner writes it into the history as
/// `{"process":"nemesis","type":"info","f":<f>,"value":<value>}` (see [`FaultRecord::f`] and
/// [`FaultRecord::value`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Id of the fault instance (a start and its stop share it).
    pub id: u64,
    pub kind: FaultKind,
    pub phase: Phase,
    /// The nodes affected.
    pub nodes: Vec<NodeName>,
    /// The grudge applied (partitions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grudge: Option<Grudge>,
    /// Clock offset added, in ms (clock bumps), or the strobe's delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    /// The fault as asked for (with targets resolved).
    pub fault: Fault,
    /// Whatever went wrong on some nodes without failing the whole op.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl FaultRecord {
    /// The op's `f`: `start-partition`, `stop-pause`, `start-clock`, ...
    pub fn f(&self) -> String {
        let phase = match self.phase {
            Phase::Start => history::vocab::Phase::Start,
            Phase::Stop => history::vocab::Phase::Stop,
        };
        history::vocab::nemesis_f(phase, self.kind.name())
    }

    /// The op's `value`: for partitions the grudge itself (`{"n1":["n2","n3"]}`, as Jepsen
    /// writes it); otherwise `{"nodes":[...], ...}` with the offset, probability or rate.
    pub fn value(&self) -> serde_json::Value {
        use serde_json::json;
        if let Some(g) = &self.grudge {
            return json!(g);
        }
        let mut v = json!({ "id": self.id, "nodes": self.nodes });
        let obj = v.as_object_mut().expect("object literal");
        match &self.fault {
            Fault::Clock { action, .. } => {
                obj.insert("clock".into(), json!(action));
                if let Some(ms) = self.clock_offset_ms {
                    obj.insert("offset_ms".into(), json!(ms));
                }
            }
            Fault::Loss { probability, .. } => {
                obj.insert("probability".into(), json!(probability));
            }
            Fault::Bandwidth { rate_kbit, .. } => {
                obj.insert("rate_kbit".into(), json!(rate_kbit));
            }
            _ => {}
        }
        if !self.errors.is_empty() {
            obj.insert("errors".into(), json!(self.errors));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn targets_resolve_to_the_right_sizes() {
        let ns: Vec<NodeName> = (1..=5).map(|i| format!("n{i}")).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(Target::One.resolve(&ns, None, &mut rng).len(), 1);
        assert_eq!(Target::Minority.resolve(&ns, None, &mut rng).len(), 2);
        assert_eq!(Target::Majority.resolve(&ns, None, &mut rng).len(), 3);
        assert_eq!(Target::All.resolve(&ns, None, &mut rng), ns);
        assert_eq!(
            Target::Leader.resolve(&ns, Some("n3"), &mut rng),
            vec!["n3".to_string()]
        );
        assert_eq!(
            Target::parse("n2, n1"),
            Target::Nodes(vec!["n2".into(), "n1".into()])
        );
        assert_eq!(Target::parse("leader"), Target::Leader);
    }

    #[test]
    fn record_f_and_value() {
        let g: Grudge = [("n1".to_string(), ["n2".to_string()].into())].into();
        let r = FaultRecord {
            id: 1,
            kind: FaultKind::Partition,
            phase: Phase::Start,
            nodes: vec!["n1".into(), "n2".into()],
            grudge: Some(g.clone()),
            clock_offset_ms: None,
            fault: Fault::Partition {
                partition: Partition::Grudge(g),
            },
            errors: vec![],
        };
        assert_eq!(r.f(), "start-partition");
        assert_eq!(r.value(), serde_json::json!({"n1": ["n2"]}));
        let c = FaultRecord {
            kind: FaultKind::Clock,
            phase: Phase::Stop,
            grudge: None,
            clock_offset_ms: Some(-250),
            fault: Fault::Clock {
                target: Target::Nodes(vec!["n2".into()]),
                action: ClockAction::Bump { delta_ms: -250 },
            },
            ..r
        };
        assert_eq!(c.f(), "stop-clock");
        assert_eq!(c.value()["offset_ms"], -250);
        assert_eq!(c.value()["nodes"], serde_json::json!(["n1", "n2"]));
    }
}
