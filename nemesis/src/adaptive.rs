//! [`run_adaptive`]: plays the [`Planner`]'s episodes against a [`Nemesis`], timing each
//! step by what the leader probe sees ([`LeaderWatch`]), and records what it played as a
//! [`Schedule`] with the actual times and the nodes each fault hit, so `--schedule` replays
//! the run as it happened. Like [`crate::run_schedule`], it heals everything at the end,
//! when `cancel` fires and on the first nemesis error.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::driver::{NemesisEvent, heal_reported, invoke_reported, start_op, stop_op};
use crate::episode::{Planner, Step, Until};
use crate::error::Result;
use crate::fault::FaultKind;
use crate::grudge::NodeName;
use crate::nemesis::Nemesis;
use crate::schedule::{Schedule, ScheduledFault};

/// What the leader probe saw last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Nodes whose latest answer claims the lead, with the term they gave, if any.
    pub leaders: Vec<(NodeName, Option<i64>)>,
    /// Nodes whose latest probe got an answer.
    pub answering: usize,
}

impl Observation {
    /// The claimant of the highest term (the first, when terms are not reported).
    pub fn leader(&self) -> Option<(NodeName, Option<i64>)> {
        self.leaders
            .iter()
            .max_by_key(|(_, t)| t.unwrap_or(i64::MIN))
            .cloned()
    }

    /// True if a node other than `old`'s leader claims to lead (in a newer term, when both
    /// terms are known).
    pub fn has_new_leader(&self, old: Option<&(NodeName, Option<i64>)>) -> bool {
        match old {
            None => !self.leaders.is_empty(),
            Some((old, old_term)) => self.leaders.iter().any(|(n, t)| {
                n != old
                    && match (t, old_term) {
                        (Some(t), Some(o)) => t > o,
                        _ => true,
                    }
            }),
        }
    }

    /// True if exactly one node claims to lead and all `nodes` answer.
    pub fn is_stable(&self, nodes: usize) -> bool {
        self.leaders.len() == 1 && self.answering >= nodes
    }
}

/// Where the nemesis learns who leads: the runner's leader probe.
pub trait LeaderWatch: Send + Sync {
    fn observe(&self) -> Observation;
}

/// How often an await looks at the probe's view.
const POLL: Duration = Duration::from_millis(50);

/// What [`run_adaptive`] played.
#[derive(Debug)]
pub struct Played {
    /// The faults with the times they actually started and stopped (ms since the call) and
    /// the nodes they hit: replayable with `--schedule`.
    pub schedule: Schedule,
    /// Episodes begun.
    pub episodes: usize,
    /// Failover times seen (a leader-aimed fault's start to a new leader), in ms.
    pub failovers_ms: Vec<u64>,
    /// Ok, or the first nemesis error (everything was healed after it).
    pub result: Result<()>,
}

struct Player<'a> {
    nemesis: &'a dyn Nemesis,
    on_event: &'a mut (dyn FnMut(NemesisEvent) + Send),
    on_played: &'a mut (dyn FnMut(&Schedule) + Send),
    t0: Instant,
    played: Schedule,
    /// slot -> (fault instance id, index in `played`, kind)
    slots: BTreeMap<usize, (u64, usize, FaultKind)>,
}

impl Player<'_> {
    fn now_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    async fn start(&mut self, slot: usize, fault: &crate::Fault, episode: &str) -> Result<()> {
        let at = self.now_ms();
        let (op, f, value) = start_op(fault);
        let rec = invoke_reported(self.nemesis, op, f, value, self.on_event).await?;
        self.played.faults.push(ScheduledFault {
            start_ms: at,
            end_ms: at,
            fault: rec.fault.clone(),
            episode: Some(episode.to_owned()),
        });
        self.slots
            .insert(slot, (rec.id, self.played.faults.len() - 1, rec.kind));
        (self.on_played)(&self.played);
        Ok(())
    }

    async fn stop(&mut self, slot: usize) -> Result<()> {
        let Some((id, idx, kind)) = self.slots.remove(&slot) else {
            return Ok(());
        };
        let at = self.now_ms();
        let (op, f, value) = stop_op(kind, id);
        let res = invoke_reported(self.nemesis, op, f, value, self.on_event).await;
        self.played.faults[idx].end_ms = at;
        (self.on_played)(&self.played);
        res.map(|_| ())
    }
}

/// Plays episodes from `planner` until `cancel` fires, then heals everything. Returns what
/// was played, also when a nemesis operation failed (then healing ran at once).
pub async fn run_adaptive<C>(
    nemesis: &dyn Nemesis,
    mut planner: Planner,
    watch: &dyn LeaderWatch,
    cancel: C,
    on_event: &mut (dyn FnMut(NemesisEvent) + Send),
    on_played: &mut (dyn FnMut(&Schedule) + Send),
) -> Played
where
    C: Future<Output = ()> + Send,
{
    let nodes = planner.options().nodes.clone();
    let mut p = Player {
        nemesis,
        on_event,
        on_played,
        t0: Instant::now(),
        played: Schedule {
            seed: None,
            nodes: nodes.clone(),
            faults: Vec::new(),
        },
        slots: BTreeMap::new(),
    };
    tokio::pin!(cancel);
    let mut episodes = 0;
    let mut failovers_ms = Vec::new();
    let mut first_error = None;
    'play: while let Some(episode) = planner.next_episode() {
        episodes += 1;
        let label = format!("{episodes}:{}", episode.name);
        tracing::info!(episode = %label, "nemesis episode");
        let reference = watch.observe().leader();
        let mut last_start = Instant::now();
        for step in &episode.steps {
            let res = match step {
                Step::Start { slot, fault } => {
                    last_start = Instant::now();
                    p.start(*slot, fault, &label).await
                }
                Step::Stop { slot } => p.stop(*slot).await,
                Step::Sleep { ms } => {
                    let t = tokio::time::sleep(Duration::from_millis(*ms));
                    tokio::select! {
                        _ = t => Ok(()),
                        _ = &mut cancel => break 'play,
                    }
                }
                Step::Await {
                    until,
                    max_ms,
                    margin_ms,
                } => {
                    let deadline = Instant::now() + Duration::from_millis(*max_ms);
                    let held = loop {
                        let o = watch.observe();
                        let ok = match until {
                            Until::NewLeader => o.has_new_leader(reference.as_ref()),
                            Until::Stable => o.is_stable(nodes.len()),
                        };
                        if ok || Instant::now() >= deadline {
                            break ok;
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(POLL) => {}
                            _ = &mut cancel => break 'play,
                        }
                    };
                    if held && *until == Until::NewLeader {
                        let ms = last_start.elapsed().as_millis() as u64;
                        planner.observe_failover(ms);
                        failovers_ms.push(ms);
                    }
                    if held && *margin_ms > 0 {
                        let t = tokio::time::sleep(Duration::from_millis(*margin_ms));
                        tokio::select! {
                            _ = t => {}
                            _ = &mut cancel => break 'play,
                        }
                    }
                    Ok(())
                }
            };
            if let Err(e) = res {
                first_error = Some(e);
                break 'play;
            }
        }
        // An episode stops what it starts; should one not, its faults end with it.
        let open: Vec<usize> = p.slots.keys().copied().collect();
        for slot in open {
            if let Err(e) = p.stop(slot).await {
                first_error = Some(e);
                break 'play;
            }
        }
    }
    let at = p.now_ms();
    for (_, idx, _) in std::mem::take(&mut p.slots).into_values() {
        p.played.faults[idx].end_ms = at;
    }
    let healed = heal_reported(nemesis, p.on_event).await;
    (p.on_played)(&p.played);
    let result = match (first_error, healed) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok(_)) => Ok(()),
    };
    Played {
        schedule: p.played,
        episodes,
        failovers_ms,
        result,
    }
}
