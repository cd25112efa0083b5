//! The workload phase: every task that runs while faults are injected, started together and
//! stopped in order. Client workers, one leader probe per node, one supervisor per node, the
//! nemesis and the progress display all report to the run's one history writer (and the
//! probe to the leader view); the run owns the [`Running`] and ends it in two steps:
//! [`Running::stop`] (workers and nemesis: the history's fault window closes) and, after the
//! recovery wait and final reads that still need the probe, [`Running::finish`].

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use nemesis::{ClusterNemesis, Planner, Schedule};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use workloads::Generator;

use crate::progress::Progress;
use crate::recorder::Recorder;
use crate::store::RunLog;
use crate::workers::{self, Processes};
use crate::{Config, Env, Faults, self_cpu_secs, supervise};
use systems::System;

/// What the nemesis task returns: episodes begun, failover times seen (ms), its result.
type NemesisEnd = (usize, Vec<u64>, nemesis::Result<()>);

/// The running workload phase.
pub(crate) struct Running {
    rec: Recorder,
    pub(crate) processes: Arc<Processes>,
    /// The phase the progress display shows.
    pub(crate) phase: watch::Sender<&'static str>,
    stop_work: watch::Sender<bool>,
    stop_probe: watch::Sender<bool>,
    stop_progress: watch::Sender<bool>,
    progress: Progress,
    progress_task: JoinHandle<()>,
    probes: Vec<JoinHandle<()>>,
    supervisors: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    nemesis: Option<JoinHandle<NemesisEnd>>,
    nemesis_log: Arc<supervise::NemesisLog>,
    started: Instant,
    cpu_at_start: Option<f64>,
}

/// What the fault window came to.
pub(crate) struct Stopped {
    pub episodes: usize,
    pub failovers_ms: Vec<u64>,
    pub client_ops: u64,
    pub secs: f64,
    pub cpu_secs: Option<f64>,
}

impl Running {
    /// Starts every task of the phase; the nemesis begins after the warm-up.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        cfg: &Config,
        system: &Arc<dyn System>,
        env: &Env,
        nem: Arc<ClusterNemesis>,
        rec: Recorder,
        progress: Progress,
        schedule_path: std::path::PathBuf,
        log: Arc<RunLog>,
        leader: &str,
    ) -> Running {
        let (phase, phase_rx) = watch::channel("workload");
        let (stop_work, stop_work_rx) = watch::channel(false);
        let (stop_probe, stop_probe_rx) = watch::channel(false);
        let (stop_progress, stop_progress_rx) = watch::channel(false);
        let nodes = system.nodes();
        let concurrency = cfg.concurrency.max(1);
        let processes = Arc::new(Processes::starting_at((concurrency + nodes.len()) as u64));
        let progress_task = tokio::spawn(progress.clone().run(
            rec.counters.clone(),
            env.leader.clone(),
            rec.start(),
            cfg.time_limit,
            phase_rx,
            stop_progress_rx,
        ));
        let probes = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                tokio::spawn(workers::probe(
                    rec.clone(),
                    system.client(workloads::ClientOptions::new(Duration::from_millis(1000))),
                    n.clone(),
                    (concurrency + i) as u64,
                    cfg.probe_interval,
                    env.leader.clone(),
                    stop_probe_rx.clone(),
                ))
            })
            .collect();
        let interval = cfg
            .rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(concurrency as f64 / r));
        let started = Instant::now();
        let cpu_at_start = self_cpu_secs();
        let shared = workers::Shared {
            rec: rec.clone(),
            processes: processes.clone(),
            interval,
            stop: stop_work_rx.clone(),
        };
        let workers = (0..concurrency)
            .map(|w| {
                let mut generator =
                    Generator::new(cfg.seed, w as u64, concurrency as u64, &cfg.workloads)
                        .max_txn_len(cfg.max_txn_len);
                // Reads served elsewhere than writes are what such a test is about: half
                // the transactions go there.
                if cfg.read_from != workloads::ReadFrom::Leader {
                    generator = generator.read_only_share(0.5);
                }
                tokio::spawn(workers::worker(
                    shared.clone(),
                    system.client(workloads::ClientOptions {
                        timeout: cfg.op_timeout,
                        read_from: cfg.read_from,
                    }),
                    generator,
                    w as u64,
                    leader.to_owned(),
                ))
            })
            .collect();
        let nemesis_log = supervise::NemesisLog::new(rec.clone());
        // Every node, serving or not: a witness that dies matters too.
        let supervisors = env
            .remotes
            .iter()
            .map(|r| {
                tokio::spawn(supervise::supervise(
                    nemesis_log.clone(),
                    system.control(),
                    r.clone(),
                    log.clone(),
                    supervise::INTERVAL,
                    stop_probe_rx.clone(),
                ))
            })
            .collect();
        let nemesis = tokio::spawn(play(
            cfg.clone(),
            nem,
            nemesis_log.clone(),
            env.leader.clone(),
            schedule_path,
            log.clone(),
            stop_work_rx,
        ));
        announce(cfg, &log);
        Running {
            rec,
            processes,
            phase,
            stop_work,
            stop_probe,
            stop_progress,
            progress,
            progress_task,
            probes,
            supervisors,
            workers,
            nemesis: Some(nemesis),
            nemesis_log,
            started,
            cpu_at_start,
        }
    }

    /// Stops the client workers and the nemesis (which ends what it has open); errors of
    /// either go to `errors`. Probes and supervisors keep running.
    pub(crate) async fn stop(&mut self, op_timeout: Duration, errors: &mut Vec<String>) -> Stopped {
        let _ = self.phase.send("healing");
        let _ = self.stop_work.send(true);
        let (episodes, failovers_ms) = match self.nemesis.take() {
            None => (0, Vec::new()),
            Some(task) => match task.await {
                Ok((n, f, Ok(()))) => (n, f),
                Ok((n, f, Err(e))) => {
                    errors.push(format!("nemesis: {e}"));
                    (n, f)
                }
                Err(e) => {
                    errors.push(format!("nemesis task: {e}"));
                    (0, Vec::new())
                }
            },
        };
        let deadline = op_timeout + Duration::from_secs(5);
        for h in self.workers.drain(..) {
            let abort = h.abort_handle();
            if tokio::time::timeout(deadline, h).await.is_err() {
                abort.abort();
                errors.push("a client worker did not stop in time".into());
            }
        }
        let c = &self.rec.counters;
        Stopped {
            episodes,
            failovers_ms,
            client_ops: c.ok.load(Relaxed) + c.fail.load(Relaxed) + c.info.load(Relaxed),
            secs: self.started.elapsed().as_secs_f64(),
            cpu_secs: match (self.cpu_at_start, self_cpu_secs()) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
        }
    }

    /// The history's recorder, for the final reads.
    pub(crate) fn recorder(&self) -> &Recorder {
        &self.rec
    }

    /// Stops the probes, the supervisors and the progress display. Returns when the first
    /// client op was invoked. Every recorder of the phase is gone afterwards.
    pub(crate) async fn finish(self, log: &RunLog) -> Option<Instant> {
        let _ = self.stop_probe.send(true);
        for p in self.probes.into_iter().chain(self.supervisors) {
            let _ = p.await;
        }
        let exits = self.nemesis_log.exits.load(Relaxed);
        if exits > 0 {
            log.line(&format!(
                "{exits} process exit(s) without a fault; {} restarted",
                self.nemesis_log.restarts.load(Relaxed)
            ));
        }
        let _ = self.stop_progress.send(true);
        let _ = self.progress_task.await;
        self.progress.finish();
        let first_op_ns = self.rec.counters.first_op_ns.load(Relaxed);
        (first_op_ns > 0).then(|| self.rec.start() + Duration::from_nanos(first_op_ns))
    }
}

/// The nemesis task: after the warm-up, the schedule by the clock or the failover-aware
/// nemesis, until `stop`.
async fn play(
    cfg: Config,
    nem: Arc<ClusterNemesis>,
    nemesis_log: Arc<supervise::NemesisLog>,
    leader: nemesis::LeaderView,
    schedule_path: std::path::PathBuf,
    log: Arc<RunLog>,
    mut stop: watch::Receiver<bool>,
) -> NemesisEnd {
    tokio::select! {
        _ = tokio::time::sleep(cfg.warmup) => {}
        _ = stop.wait_for(|s| *s) => return (0, Vec::new(), Ok(())),
    }
    let cancel = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let mut on_event = |ev| nemesis_log.record(ev);
    match cfg.faults {
        Faults::Schedule(schedule) => {
            let res = nemesis::run_schedule(nem.as_ref(), &schedule, cancel, &mut on_event)
                .await
                .map(|_| ());
            (0, Vec::new(), res)
        }
        Faults::Adaptive(opts) => {
            let mut save = |s: &Schedule| {
                if let Err(e) = s.save(&schedule_path) {
                    log.line(&format!("warning: {e}"));
                }
            };
            let played = nemesis::run_adaptive(
                nem.as_ref(),
                Planner::new(cfg.seed, opts),
                &leader,
                cancel,
                &mut on_event,
                &mut save,
            )
            .await;
            (played.episodes, played.failovers_ms, played.result)
        }
    }
}

/// Says what the nemesis will do.
fn announce(cfg: &Config, log: &RunLog) {
    match &cfg.faults {
        Faults::Schedule(s) if !s.faults.is_empty() => log.line(&format!(
            "workload running; {} fault(s) scheduled after a {:?} warm-up",
            s.faults.len(),
            cfg.warmup
        )),
        Faults::Adaptive(o) if !o.kinds.is_empty() => log.line(&format!(
            "workload running; failover-aware faults ({}) after a {:?} warm-up",
            o.kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(","),
            cfg.warmup
        )),
        _ => log.line("workload running; no faults scheduled"),
    }
}
