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
use crate::episode::{Center, Planner, Step, Until};
use crate::error::Result;
use crate::fault::{Fault, FaultKind, Partition};
use crate::grudge::{self, NodeName, Shape};
use crate::leader::{LeaderWatch, Observation};
use crate::nemesis::Nemesis;
use crate::schedule::{Schedule, ScheduledFault};

/// How far past the run's end a fault still active at the end is recorded to stop.
pub const HEALED_WITH_THE_RUN_MS: u64 = 3_600_000;

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
    /// slot -> the node its partition cut off from all others, if one was
    cut: BTreeMap<usize, NodeName>,
}

impl Player<'_> {
    fn now_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    async fn start(&mut self, slot: usize, fault: &Fault, episode: &str) -> Result<()> {
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
        match rec
            .grudge
            .as_ref()
            .and_then(|g| grudge::isolated(g, &self.played.nodes))
        {
            Some(n) => self.cut.insert(slot, n),
            None => self.cut.remove(&slot),
        };
        (self.on_played)(&self.played);
        Ok(())
    }

    /// The star of [`Step::StartStar`], built from what is known now: its center, and the
    /// current leader cut off. Without a center, the leader is cut off alone.
    fn star(&self, center: Center, episode_leader: Option<&NodeName>, now: &Observation) -> Fault {
        let center = match center {
            Center::EpisodeLeader => episode_leader.cloned(),
            Center::CutBy(slot) => self.cut.get(&slot).cloned(),
        };
        let leader = now.leader().map(|l| l.0);
        let partition = match center {
            Some(c) => Partition::Grudge(grudge::star(&self.played.nodes, &c, leader.as_deref())),
            None => Partition::Shape(Shape::IsolateLeader),
        };
        Fault::Partition { partition }
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
        cut: BTreeMap::new(),
    };
    tokio::pin!(cancel);
    let mut episodes = 0;
    let mut failovers_ms = Vec::new();
    let mut first_error = None;
    'play: while let Some(episode) = planner.next_episode() {
        episodes += 1;
        let label = format!("{episodes}:{}", episode.name);
        tracing::info!(episode = %label, "nemesis episode");
        // Failover is judged against the leader when the latest fault started.
        let episode_leader = watch.observe().leader();
        let mut reference = episode_leader.clone();
        let mut last_start = Instant::now();
        for step in &episode.steps {
            let res = match step {
                Step::Start { slot, fault } => {
                    last_start = Instant::now();
                    reference = watch.observe().leader();
                    p.start(*slot, fault, &label).await
                }
                Step::StartStar { slot, center } => {
                    last_start = Instant::now();
                    let now = watch.observe();
                    reference = now.leader();
                    let fault = p.star(*center, episode_leader.as_ref().map(|l| &l.0), &now);
                    p.start(*slot, &fault, &label).await
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
    // Faults still active when the run stopped were healed with it: they end after the
    // window, so a replay heals them the same way instead of racing its own end.
    let at = p.now_ms() + HEALED_WITH_THE_RUN_MS;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::AdaptiveOptions;
    use crate::error::Error;
    use crate::fault::{Fault, FaultRecord, Partition, Phase, Target};
    use crate::nemesis::NemesisOp;
    use crate::schedule::parse_kinds;
    use std::sync::Mutex;

    /// Applies nothing; resolves `leader` targets to whoever the scripted watch names and
    /// records what it was asked. Fails starts of kills when `refuse_kill`.
    struct Mock {
        watch: Scripted,
        log: Mutex<Vec<String>>,
        active: Mutex<BTreeMap<u64, FaultRecord>>,
        next: Mutex<u64>,
        refuse_kill: bool,
    }

    #[async_trait::async_trait]
    impl Nemesis for Mock {
        async fn setup(&self) -> Result<()> {
            Ok(())
        }
        async fn invoke(&self, op: NemesisOp) -> Result<FaultRecord> {
            match op {
                NemesisOp::Start(f) => {
                    if self.refuse_kill && f.kind() == FaultKind::Kill {
                        return Err(Error::other("kill", "refused"));
                    }
                    let leader = self.watch.observe().leader().map(|l| l.0);
                    let mut n = self.next.lock().unwrap();
                    *n += 1;
                    let nodes = vec![leader.unwrap_or_else(|| "n1".into())];
                    let fault = match &f {
                        Fault::Partition { .. } => Fault::Partition {
                            partition: Partition::Isolate(nodes[0].clone()),
                        },
                        Fault::Kill { .. } => Fault::Kill {
                            target: Target::Nodes(nodes.clone()),
                        },
                        other => other.clone(),
                    };
                    self.log.lock().unwrap().push(format!(
                        "start {} {}",
                        f.kind().name(),
                        nodes[0]
                    ));
                    self.watch.faults.lock().unwrap().push(*n);
                    let r = FaultRecord {
                        id: *n,
                        kind: f.kind(),
                        phase: Phase::Start,
                        nodes,
                        grudge: None,
                        clock_offset_ms: None,
                        fault,
                        errors: vec![],
                    };
                    self.active.lock().unwrap().insert(*n, r.clone());
                    Ok(r)
                }
                NemesisOp::Stop(id) => {
                    self.log.lock().unwrap().push(format!("stop {id}"));
                    self.watch.faults.lock().unwrap().retain(|f| *f != id);
                    let r = self.active.lock().unwrap().remove(&id).unwrap();
                    Ok(FaultRecord {
                        phase: Phase::Stop,
                        ..r
                    })
                }
            }
        }
        async fn heal_all(&self) -> Result<Vec<FaultRecord>> {
            self.log.lock().unwrap().push("heal-all".into());
            self.watch.faults.lock().unwrap().clear();
            Ok(std::mem::take(&mut *self.active.lock().unwrap())
                .into_values()
                .collect())
        }
        async fn teardown(&self) -> Result<()> {
            Ok(())
        }
    }

    /// A cluster of 3 that fails over `failover_ms` after a fault starts: while a fault is
    /// active and has lasted that long, n2 leads in term 2; otherwise n1 in term 1.
    #[derive(Clone)]
    struct Scripted {
        faults: std::sync::Arc<Mutex<Vec<u64>>>,
        since: std::sync::Arc<Mutex<Option<Instant>>>,
        failover_ms: u64,
    }

    impl LeaderWatch for Scripted {
        fn observe(&self) -> Observation {
            let active = !self.faults.lock().unwrap().is_empty();
            let mut since = self.since.lock().unwrap();
            if !active {
                *since = None;
            } else if since.is_none() {
                *since = Some(Instant::now());
            }
            let failed_over =
                since.is_some_and(|s| s.elapsed() >= Duration::from_millis(self.failover_ms));
            let leader = if failed_over { ("n2", 2) } else { ("n1", 1) };
            Observation {
                leaders: vec![(leader.0.into(), Some(leader.1))],
                answering: 3,
            }
        }
    }

    fn setup(kinds: &str, failover_ms: u64, refuse_kill: bool) -> (Mock, Planner) {
        let watch = Scripted {
            faults: Default::default(),
            since: Default::default(),
            failover_ms,
        };
        let mock = Mock {
            watch,
            log: Mutex::default(),
            active: Mutex::default(),
            next: Mutex::new(0),
            refuse_kill,
        };
        let nodes = vec!["n1".into(), "n2".into(), "n3".into()];
        let mut o =
            AdaptiveOptions::new(parse_kinds(kinds).unwrap(), nodes, Duration::from_secs(2));
        o.fault_max = Duration::from_secs(20);
        (mock, Planner::new(5, o))
    }

    #[tokio::test(start_paused = true)]
    async fn leader_faults_hold_until_a_new_leader_and_the_times_are_recorded() {
        let (mock, planner) = setup("partition", 3000, false);
        let mut events = Vec::new();
        let mut saves = 0;
        let played = run_adaptive(
            &mock,
            planner,
            &mock.watch.clone(),
            tokio::time::sleep(Duration::from_secs(60)),
            &mut |e| events.push(e),
            &mut |_| saves += 1,
        )
        .await;
        played.result.as_ref().unwrap();
        assert!(played.episodes >= 3, "{played:?}");
        assert!(saves >= played.schedule.faults.len());
        // Every wait for a new leader took the scripted 3 s (the poll adds up to 50 ms).
        assert!(!played.failovers_ms.is_empty());
        for ms in &played.failovers_ms {
            assert!((3000..=3100).contains(ms), "{ms}");
        }
        // Faults aimed at the leader lasted at least the failover time; every fault has
        // concrete targets, an episode label and times in order.
        let mut leader_faults = 0;
        for f in &played.schedule.faults {
            assert!(f.end_ms >= f.start_ms, "{f:?}");
            assert!(f.episode.is_some());
            assert!(matches!(
                f.fault,
                Fault::Partition {
                    partition: Partition::Isolate(_) | Partition::Grudge(_)
                }
            ));
            if f.episode
                .as_deref()
                .is_some_and(|e| e.ends_with(":isolate-leader"))
            {
                leader_faults += 1;
                assert!(f.end_ms - f.start_ms >= 3000, "{f:?}");
            }
        }
        assert!(leader_faults > 0, "{:?}", played.schedule);
        assert_eq!(mock.log.lock().unwrap().last().unwrap(), "heal-all");
        let fs: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                NemesisEvent::Complete { f, .. } => Some(f.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(fs.last().unwrap(), "heal-all");
        // The played schedule replays: it validates against the cluster.
        played
            .schedule
            .validate(&["n1".into(), "n2".into(), "n3".into()])
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_system_that_never_fails_over_is_held_only_to_fault_max() {
        let (mock, planner) = setup("kill", u64::MAX, false);
        let played = run_adaptive(
            &mock,
            planner,
            &mock.watch.clone(),
            tokio::time::sleep(Duration::from_secs(100)),
            &mut |_| {},
            &mut |_| {},
        )
        .await;
        played.result.unwrap();
        assert!(played.failovers_ms.is_empty());
        // (A fault still active at the end is recorded as healed with the run.)
        let longest = played
            .schedule
            .faults
            .iter()
            .filter(|f| f.end_ms < HEALED_WITH_THE_RUN_MS)
            .map(|f| f.end_ms - f.start_ms)
            .max()
            .unwrap();
        assert!((20_000..=20_100).contains(&longest), "{longest}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_heals_and_is_returned_with_what_was_played() {
        let (mock, planner) = setup("kill", 500, true);
        let mut events = Vec::new();
        let played = run_adaptive(
            &mock,
            planner,
            &mock.watch.clone(),
            std::future::pending::<()>(),
            &mut |e| events.push(e),
            &mut |_| {},
        )
        .await;
        assert!(played.result.unwrap_err().to_string().contains("refused"));
        assert_eq!(*mock.log.lock().unwrap(), ["heal-all"]);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, NemesisEvent::Fail { f, .. } if f == "start-kill"))
        );
    }

    #[test]
    fn observations() {
        let o = Observation {
            leaders: vec![("n1".into(), Some(3)), ("n2".into(), Some(4))],
            answering: 3,
        };
        assert_eq!(o.leader(), Some(("n2".into(), Some(4))));
        assert!(!o.is_stable(3));
        assert!(o.has_new_leader(Some(&("n1".into(), Some(3)))));
        assert!(!o.has_new_leader(Some(&("n2".into(), Some(4)))));
        let old = Observation {
            leaders: vec![("n1".into(), None)],
            answering: 2,
        };
        assert!(!old.is_stable(3));
        assert!(old.is_stable(2));
        assert!(old.has_new_leader(None));
        assert!(old.has_new_leader(Some(&("n3".into(), None))));
    }
}
