//! The failover-aware nemesis, as plain data: a seeded [`Planner`] draws [`Episode`]s, each a
//! short script of fault starts and stops, waits on what the leader probe sees ([`Until`]),
//! and pauses. [`crate::adaptive`] plays them.
//!
//! Most episodes aim at the leader, because failover code only runs when the leader goes
//! away: cut it off alone or with a minority, pause it past the failure detector, kill it,
//! skew its clock; and the composite sequences that break failover (a stale leader racing
//! the survivors after the new leader dies, flapping isolations around the measured detection
//! time, a lagging follower swapped in for the leader, links clogged one by one and restored
//! out of order). Random shapes and targets stay in the mix for breadth.
//!
//! Episodes come in rounds: each round plays every kind the options allow once, the
//! composite ones first (a node made to fall behind, then given a chance to lead; the
//! leader's clock set back, then the leader cut off), so a 30 s run (five or six episodes)
//! always tries them, and a longer run covers every kind instead of repeating a few.
//!
//! A leader-aimed fault holds until the probe sees a new leader (plus a margin), or
//! `fault_max`, so slow failure detectors do fail over; after healing, the next episode waits
//! until the cluster has one leader again, or `settle_max`. Every choice comes from the seed;
//! only the timing follows the system, and the player records the times it played.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fault::{ClockAction, Fault, FaultKind, Partition, Target};
use crate::grudge::{Shape, majority};
use crate::schedule::random_fault;

mod script;
pub use script::{AdaptiveOptions, Center, Episode, Step, Until};

/// The kinds of episode, with what they need and how often they are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    IsolateLeader,
    LeaderMinority,
    StaleLeaderRace,
    StaleBridge,
    Flapping,
    LaggingFollower,
    Swizzle,
    PauseLeader,
    KillLeader,
    SkewLeader,
    ReplaceFollower,
    Breadth,
}

impl Kind {
    /// Whether the episode is one of the composites no single fault provokes, played first
    /// in a round: those that make a node fall behind and then give it a chance to lead
    /// (lost writes on failover), and, with partitions allowed, the leader's clock set back
    /// before it is cut off (a lease that outlives the election of the next leader).
    fn comes_first(self, partitions: bool) -> bool {
        match self {
            Kind::StaleBridge | Kind::StaleLeaderRace | Kind::LaggingFollower => true,
            Kind::SkewLeader => partitions,
            _ => false,
        }
    }

    /// (kind, weight: how early in a round it tends to come, fault kinds it needs)
    const TABLE: [(Kind, u32, &'static [FaultKind]); 12] = [
        (Kind::IsolateLeader, 2, &[FaultKind::Partition]),
        (Kind::LeaderMinority, 2, &[FaultKind::Partition]),
        (
            Kind::StaleLeaderRace,
            2,
            &[FaultKind::Partition, FaultKind::Kill],
        ),
        (Kind::StaleBridge, 8, &[FaultKind::Partition]),
        (Kind::Flapping, 2, &[FaultKind::Partition]),
        (Kind::LaggingFollower, 1, &[FaultKind::Partition]),
        (Kind::Swizzle, 1, &[FaultKind::Partition]),
        (Kind::PauseLeader, 2, &[FaultKind::Pause]),
        (Kind::KillLeader, 2, &[FaultKind::Kill]),
        (Kind::SkewLeader, 2, &[FaultKind::Clock]),
        (Kind::ReplaceFollower, 2, &[FaultKind::Member]),
        (Kind::Breadth, 2, &[]),
    ];
}

/// Mixed into the run's seed so the nemesis's draws differ from the workload's.
const PLANNER_SALT: u64 = 0x6570_6973_6f64_6521;

/// Draws episodes from a seed, learning the system's failure-detection time as it goes.
#[derive(Debug, Clone)]
pub struct Planner {
    opts: AdaptiveOptions,
    rng: ChaCha8Rng,
    /// Failover times seen so far (fault start to a new leader), in ms.
    detections_ms: Vec<u64>,
    /// What is left of the current round, the next episode last.
    round: Vec<Kind>,
}

impl Planner {
    pub fn new(seed: u64, opts: AdaptiveOptions) -> Planner {
        Planner {
            opts,
            rng: ChaCha8Rng::seed_from_u64(seed ^ PLANNER_SALT),
            detections_ms: Vec::new(),
            round: Vec::new(),
        }
    }

    pub fn options(&self) -> &AdaptiveOptions {
        &self.opts
    }

    /// Tells the planner a leader-aimed fault caused a failover after `ms`.
    pub fn observe_failover(&mut self, ms: u64) {
        self.detections_ms.push(ms);
    }

    /// The median failover time seen so far, if any.
    pub fn detection_ms(&self) -> Option<u64> {
        let mut v = self.detections_ms.clone();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }

    fn has(&self, kinds: &[FaultKind]) -> bool {
        kinds.iter().all(|k| self.opts.kinds.contains(k))
    }

    /// The next episode; `None` when no fault kind is allowed.
    pub fn next_episode(&mut self) -> Option<Episode> {
        if self.opts.kinds.is_empty() {
            return None;
        }
        if self.round.is_empty() {
            self.round = self.deal();
        }
        let kind = self.round.pop().unwrap_or(Kind::Breadth);
        let mut e = self.build(kind);
        // Every episode ends with the cluster whole again and a quiet time.
        e.steps.push(self.settle());
        let quiet = self.quiet_ms();
        e.steps.push(Step::Sleep { ms: quiet });
        Some(e)
    }

    /// The next round, in reverse play order: every episode kind the options allow, once.
    /// The composite ones that need a node to be behind come first (no single fault makes
    /// one, and a short run must not miss them), then the others; within each group the
    /// order is drawn from the seed, heavier kinds more likely earlier.
    fn deal(&mut self) -> Vec<Kind> {
        let cluster = self.opts.nodes.len();
        let choices: Vec<(Kind, u32)> = Kind::TABLE
            .iter()
            .filter(|(k, _, needs)| {
                self.has(needs)
                    && match k {
                        // With one node there is no one to fail over to.
                        Kind::Breadth => true,
                        Kind::LeaderMinority => cluster >= 5,
                        Kind::StaleLeaderRace
                        | Kind::StaleBridge
                        | Kind::LaggingFollower
                        | Kind::Swizzle
                        | Kind::ReplaceFollower => cluster >= 3,
                        _ => cluster >= 2,
                    }
            })
            .map(|(k, w, _)| (*k, *w))
            .collect();
        // Weighted random order (Efraimidis-Spirakis): sort by u^(1/w), largest first.
        let partitions = self.has(&[FaultKind::Partition]);
        let mut keyed: Vec<(bool, f64, Kind)> = choices
            .into_iter()
            .map(|(k, w)| {
                let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
                (k.comes_first(partitions), u.powf(1.0 / f64::from(w)), k)
            })
            .collect();
        keyed.sort_by(|a, b| {
            (a.0, a.1)
                .partial_cmp(&(b.0, b.1))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        keyed.into_iter().map(|(_, _, k)| k).collect()
    }

    fn ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.random_range(lo..=hi.max(lo))
    }

    fn quiet_ms(&mut self) -> u64 {
        let i = self.opts.interval.as_millis() as u64;
        self.ms(i / 10, i / 4)
    }

    /// Wait for a new leader, then hold a little longer: the new leader takes writes while
    /// the old one is still cut off, paused or dead.
    fn failover(&mut self) -> Step {
        let margin_ms = self.ms(300, 1000);
        Step::Await {
            until: Until::NewLeader,
            max_ms: self.opts.fault_max.as_millis() as u64,
            margin_ms,
        }
    }

    fn settle(&self) -> Step {
        Step::Await {
            until: Until::Stable,
            max_ms: self.opts.settle_max.as_millis() as u64,
            margin_ms: 0,
        }
    }

    /// The detection time to aim around: measured, or a guess of 1.5 s until one was.
    fn detect_ms(&self) -> u64 {
        self.detection_ms().unwrap_or(1500).max(200)
    }

    fn build(&mut self, kind: Kind) -> Episode {
        let part = |shape| Fault::Partition {
            partition: Partition::Shape(shape),
        };
        let leader = Target::Leader;
        match kind {
            Kind::IsolateLeader => {
                self.around_failover("isolate-leader", part(Shape::IsolateLeader))
            }
            Kind::LeaderMinority => {
                self.around_failover("leader-minority", part(Shape::LeaderMinority))
            }
            Kind::PauseLeader => {
                self.around_failover("pause-leader", Fault::Pause { target: leader })
            }
            Kind::KillLeader => self.around_failover("kill-leader", Fault::Kill { target: leader }),
            Kind::StaleLeaderRace => {
                // The old leader is cut off, a new one is elected and takes writes, the new
                // one dies while the old is still cut off, then the partition heals: the
                // stale old leader races the survivors for the next election.
                let hold = self.ms(200, 1000);
                let f = self.failover();
                let race = self.race_ms();
                Episode {
                    name: "stale-leader-race",
                    steps: vec![
                        Step::Start {
                            slot: 0,
                            fault: part(Shape::IsolateLeader),
                        },
                        f,
                        Step::Start {
                            slot: 1,
                            fault: Fault::Kill { target: leader },
                        },
                        Step::Sleep { ms: hold },
                        Step::Stop { slot: 0 },
                        Step::Sleep { ms: race },
                        Step::Stop { slot: 1 },
                    ],
                }
            }
            Kind::StaleBridge => {
                // The only node that can reach a majority is one that missed acknowledged
                // writes: mostly a follower that was cut off while writes went on, sometimes
                // the old leader after a new one took writes. A correct election refuses
                // it (no leader until the heal); one that ignores logs elects it and its log
                // overwrites acknowledged writes.
                let d = self.detect_ms();
                let hold = (3 * d).clamp(3000, self.opts.fault_max.as_millis() as u64);
                let margin_ms = self.ms(300, 1000);
                let mut steps = Vec::new();
                let name = if self.rng.random_bool(0.75) {
                    let lag = self.ms(1000, d.max(1000) * 2);
                    steps.push(Step::Start {
                        slot: 0,
                        fault: part(Shape::IsolateFollower),
                    });
                    steps.push(Step::Sleep { ms: lag });
                    steps.push(Step::StartStar {
                        slot: 1,
                        center: Center::CutBy(0),
                    });
                    "stale-bridge-follower"
                } else {
                    steps.push(Step::Start {
                        slot: 0,
                        fault: part(Shape::IsolateLeader),
                    });
                    steps.push(self.failover());
                    steps.push(Step::StartStar {
                        slot: 1,
                        center: Center::EpisodeLeader,
                    });
                    "stale-bridge-leader"
                };
                steps.push(Step::Stop { slot: 0 });
                steps.push(Step::Await {
                    until: Until::NewLeader,
                    max_ms: hold,
                    margin_ms,
                });
                steps.push(Step::Stop { slot: 1 });
                Episode { name, steps }
            }
            Kind::Flapping => {
                // Isolations around the failure-detection time: some outlast it, some not.
                let d = self.detect_ms();
                let cycles = self.ms(3, 5);
                let mut steps = Vec::new();
                for _ in 0..cycles {
                    let on = self.ms(d / 2, d * 3 / 2);
                    let off = self.ms(d / 4, d * 3 / 4);
                    steps.push(Step::Start {
                        slot: 0,
                        fault: part(Shape::IsolateLeader),
                    });
                    steps.push(Step::Sleep { ms: on });
                    steps.push(Step::Stop { slot: 0 });
                    steps.push(Step::Sleep { ms: off });
                }
                Episode {
                    name: "flapping",
                    steps,
                }
            }
            Kind::LaggingFollower => {
                // A follower cut off long enough to fall behind; half the time it comes back
                // just as the leader is cut off, so it may stand for election while behind.
                let d = self.detect_ms();
                let lag = self.ms(1000, 2 * d.max(1000));
                let swap = self.rng.random_bool(0.5);
                let mut steps = vec![
                    Step::Start {
                        slot: 0,
                        fault: part(Shape::IsolateFollower),
                    },
                    Step::Sleep { ms: lag },
                ];
                if swap {
                    steps.push(Step::Start {
                        slot: 1,
                        fault: part(Shape::IsolateLeader),
                    });
                    steps.push(Step::Stop { slot: 0 });
                    steps.push(self.failover());
                    steps.push(Step::Stop { slot: 1 });
                } else {
                    steps.push(Step::Stop { slot: 0 });
                }
                Episode {
                    name: if swap {
                        "lagging-follower-swap"
                    } else {
                        "lagging-follower"
                    },
                    steps,
                }
            }
            Kind::Swizzle => {
                // FoundationDB's swizzle-clog: cut nodes off one by one, then restore them
                // in a random order.
                let mut nodes = self.opts.nodes.clone();
                nodes.sort();
                nodes.shuffle(&mut self.rng);
                let k = self.ms(2, majority(nodes.len()) as u64) as usize;
                nodes.truncate(k.min(nodes.len()));
                let mut steps = Vec::new();
                for (slot, n) in nodes.iter().enumerate() {
                    steps.push(Step::Start {
                        slot,
                        fault: Fault::Partition {
                            partition: Partition::Isolate(n.clone()),
                        },
                    });
                    let gap = self.ms(200, 1000);
                    steps.push(Step::Sleep { ms: gap });
                }
                let hold = self.ms(500, 2000);
                steps.push(Step::Sleep { ms: hold });
                let mut order: Vec<usize> = (0..nodes.len()).collect();
                order.shuffle(&mut self.rng);
                for slot in order {
                    steps.push(Step::Stop { slot });
                    let gap = self.ms(200, 1000);
                    steps.push(Step::Sleep { ms: gap });
                }
                Episode {
                    name: "swizzle",
                    steps,
                }
            }
            Kind::ReplaceFollower => {
                // A follower leaves while writes go on and joins again as a new member (a
                // snapshot of the leader, then the log from the snapshot's position). Half the
                // time the leader is cut off right after, so the join runs into a failover.
                let away = self.ms(500, 2000);
                let mut steps = vec![
                    Step::Start {
                        slot: 0,
                        fault: Fault::Member {
                            target: Target::Follower,
                        },
                    },
                    Step::Sleep { ms: away },
                    Step::Stop { slot: 0 },
                ];
                let failover = self.has(&[FaultKind::Partition]) && self.rng.random_bool(0.5);
                if failover {
                    let catch = self.ms(100, 600);
                    steps.push(Step::Sleep { ms: catch });
                    steps.push(Step::Start {
                        slot: 1,
                        fault: part(Shape::IsolateLeader),
                    });
                    steps.push(self.failover());
                    steps.push(Step::Stop { slot: 1 });
                }
                Episode {
                    name: if failover {
                        "replace-follower-failover"
                    } else {
                        "replace-follower"
                    },
                    steps,
                }
            }
            Kind::SkewLeader if self.has(&[FaultKind::Partition]) => {
                // The leader and the lock: its clock set back, then cut off. A lease measured
                // by the wall clock outlives the election of a new leader, so the old one
                // goes on acting as leader beside it; a monotonic lease does not notice.
                let back = self.opts.max_clock_skew_ms.max(4000);
                let delta_ms = -self.rng.random_range(4000..=back);
                let gap = self.ms(100, 300);
                let f = self.failover();
                Episode {
                    name: "skew-isolate-leader",
                    steps: vec![
                        Step::Start {
                            slot: 0,
                            fault: Fault::Clock {
                                target: leader,
                                action: ClockAction::Bump { delta_ms },
                            },
                        },
                        Step::Sleep { ms: gap },
                        Step::Start {
                            slot: 1,
                            fault: part(Shape::IsolateLeader),
                        },
                        f,
                        Step::Stop { slot: 1 },
                        Step::Stop { slot: 0 },
                    ],
                }
            }
            Kind::SkewLeader => {
                let max = self.opts.max_clock_skew_ms.max(250);
                let mut delta_ms = self.rng.random_range(250..=max);
                if self.rng.random_bool(0.5) {
                    delta_ms = -delta_ms;
                }
                let hold = self.opts.interval.as_millis() as u64;
                let hold = self.ms(hold / 2, hold);
                Episode {
                    name: "skew-leader",
                    steps: vec![
                        Step::Start {
                            slot: 0,
                            fault: Fault::Clock {
                                target: leader,
                                action: ClockAction::Bump { delta_ms },
                            },
                        },
                        Step::Sleep { ms: hold },
                        Step::Stop { slot: 0 },
                    ],
                }
            }
            Kind::Breadth => {
                let kind = *self
                    .opts
                    .kinds
                    .choose(&mut self.rng)
                    .expect("kinds is not empty");
                let g = self.opts.breadth();
                let fault =
                    random_fault(kind, &g, &mut self.rng).resolved(&self.opts.nodes, &mut self.rng);
                let hold = self.opts.interval.as_millis() as u64;
                Episode {
                    name: "random",
                    steps: vec![
                        Step::Start { slot: 0, fault },
                        Step::Sleep { ms: hold },
                        Step::Stop { slot: 0 },
                    ],
                }
            }
        }
    }

    fn around_failover(&mut self, name: &'static str, fault: Fault) -> Episode {
        let f = self.failover();
        Episode {
            name,
            steps: vec![Step::Start { slot: 0, fault }, f, Step::Stop { slot: 0 }],
        }
    }

    /// How long the survivors and a stale old leader race for the next election while the
    /// leader that replaced it is still dead: two failure-detection times (1 to 5 s). A wait
    /// for a stable cluster would never end before the dead node is back.
    fn race_ms(&self) -> u64 {
        (2 * self.detect_ms()).clamp(1000, 5000)
    }
}

#[cfg(test)]
mod tests;
