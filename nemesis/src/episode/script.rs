//! Episodes as plain data: the steps an episode is made of (fault starts and stops, waits on
//! what the leader probe sees, pauses) and the options the planner draws them with.

use std::time::Duration;

use crate::fault::{Fault, FaultKind};
use crate::grudge::NodeName;
use crate::schedule::GenerateOptions;

/// What an [`Step::Await`] waits for, as the leader probe sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// A node other than the leader of the episode's start claims to lead (in a newer term,
    /// when the system reports terms): the system failed over.
    NewLeader,
    /// Exactly one node claims to lead and every node answers: the cluster is whole again.
    Stable,
}

/// One step of an episode. Slots name the faults an episode has started, so a later step
/// can stop exactly that one.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Start `fault` (targets such as `leader` resolve when it starts) into `slot`.
    Start { slot: usize, fault: Fault },
    /// Start a star partition into `slot`: every node reaches only `center`, and the current
    /// leader (if it is not the center) reaches nobody. Only the center can gather a
    /// majority, so only an election that ignores how up to date a candidate is elects it
    /// when it is behind. Resolved by the player, which knows the episode's nodes.
    StartStar { slot: usize, center: Center },
    /// Stop the fault in `slot`.
    Stop { slot: usize },
    /// Wait until `until` holds, at most `max_ms`; then `margin_ms` more if it held.
    Await {
        until: Until,
        max_ms: u64,
        margin_ms: u64,
    },
    /// Wait this long.
    Sleep { ms: u64 },
}

/// The node a [`Step::StartStar`] is built around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Center {
    /// The node that led when the episode began (an old leader, now behind).
    EpisodeLeader,
    /// The node the partition in this slot cut off (a follower that fell behind).
    CutBy(usize),
}

/// A named script of steps. Every fault it starts, it stops.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// What it plays (`isolate-leader`, `stale-leader-race`, ...), for the schedule and logs.
    pub name: &'static str,
    pub steps: Vec<Step>,
}

/// What the failover-aware nemesis draws from.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveOptions {
    /// Kinds of fault it may use (`--nemesis`).
    pub kinds: Vec<FaultKind>,
    /// Nodes of the cluster.
    pub nodes: Vec<NodeName>,
    /// Longest quiet time between episodes, and the length of faults not aimed at the leader
    /// (`--nemesis-interval`).
    pub interval: Duration,
    /// Longest a leader-aimed fault holds while waiting for a new leader (`--fault-max`).
    pub fault_max: Duration,
    /// Longest wait after healing for one leader again (`--settle-max`).
    pub settle_max: Duration,
    /// Largest clock skew, in ms.
    pub max_clock_skew_ms: i64,
    /// Drop probability of `loss` faults.
    pub loss_probability: f64,
    /// Rate of `bandwidth` faults.
    pub bandwidth_kbit: u32,
}

impl AdaptiveOptions {
    /// Defaults for everything but the kinds, nodes and interval.
    pub fn new(kinds: Vec<FaultKind>, nodes: Vec<NodeName>, interval: Duration) -> Self {
        AdaptiveOptions {
            kinds,
            nodes,
            interval,
            fault_max: Duration::from_secs(60),
            settle_max: Duration::from_secs(30),
            max_clock_skew_ms: 10_000,
            loss_probability: 0.2,
            bandwidth_kbit: 512,
        }
    }

    pub(crate) fn breadth(&self) -> GenerateOptions {
        let mut g = GenerateOptions::new(
            self.kinds.clone(),
            self.interval,
            self.interval,
            self.nodes.clone(),
        );
        g.max_clock_skew_ms = self.max_clock_skew_ms;
        g.loss_probability = self.loss_probability;
        g.bandwidth_kbit = self.bandwidth_kbit;
        g
    }
}
