//! The test runner: one task owns the run and drives its phases; workers, the leader probe
//! and the nemesis report ops to a single history writer; a reporter shows progress.
//!
//! Phases: deploy (setup + start every node, wait for a leader) → workload + faults for the
//! time limit (the schedule starts after a warm-up) → heal everything → recovery wait (until
//! the cluster converges, bounded) → final reads → teardown + log collection → analysis.
//! Faults are healed on every path: at the end of the window, on error, on Ctrl-C/SIGTERM
//! (first signal; a second exits at once and the next start heals from the state file) and
//! on panic (`HealGuard`).
//!
//! - [`recorder`]: the history writer thread and the live counters.
//! - [`supervise`]: the nemesis's ops in the history, and the supervisor that records (and,
//!   if the system says so, restarts) a process that exits without a fault.
//! - [`workers`]: client workers, the leader probe, the convergence wait, final reads.
//! - [`progress`]: the terminal display / plain progress lines.
//! - [`checks`]: the checkers each workload gets.
//! - [`store`]: the run directory (`test.json`, history, results, logs) and `latest`.

pub mod checks;
pub mod progress;
pub mod recorder;
pub mod store;
pub mod supervise;
pub mod workers;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkers::CheckResult;
use control::Remote;
use history::Validity;
use nemesis::{
    AdaptiveOptions, ClockMode, ClusterNemesis, HealGuard, Interrupts, LeaderView, Nemesis,
    NemesisConfig, Planner, Schedule,
};
use systems::Context;
use tokio::sync::watch;
use workloads::{Generator, Workload};

use progress::Progress;
use store::{RunDir, RunLog};
use systems::System;
use workers::Processes;

/// What a run does (decided by the command line and the seed).
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub workloads: Vec<Workload>,
    pub concurrency: usize,
    /// Total ops/s over all workers, if limited.
    pub rate: Option<f64>,
    pub time_limit: Duration,
    /// Workload without faults before the schedule starts.
    pub warmup: Duration,
    /// Longest wait for the cluster to converge after healing.
    pub recovery_wait: Duration,
    pub faults: Faults,
    pub op_timeout: Duration,
    pub probe_interval: Duration,
    /// Time budget of the linearizability check.
    pub check_budget: Duration,
}

/// What the nemesis plays.
#[derive(Debug, Clone)]
pub enum Faults {
    /// This schedule, by the clock (`--schedule`, or `--nemesis-mode interval`).
    Schedule(Schedule),
    /// The failover-aware nemesis: episodes drawn from the run's seed, timed by the leader
    /// probe; what it played is saved as the run's schedule.
    Adaptive(AdaptiveOptions),
}

/// Where the run happens.
pub struct Env {
    pub remotes: Vec<Arc<dyn Remote>>,
    pub clock: ClockMode,
    /// The nemesis write-ahead state file.
    pub state_path: PathBuf,
    /// The leader as the probe sees it: the run publishes it, the system's clients and
    /// nemesis control (built with a clone), the failover-aware nemesis and progress read it.
    pub leader: LeaderView,
}

/// How a run ended.
pub struct Outcome {
    pub results: Vec<CheckResult>,
    pub verdict: Validity,
    pub interrupted: bool,
    /// Errors of the run (nemesis, healing, teardown); the history was still checked.
    pub errors: Vec<String>,
    pub ops_written: u64,
    /// Client ops completed (ok + fail + info) during the workload phase, and its length.
    pub client_ops: u64,
    pub workload_secs: f64,
    /// When the first client op was invoked.
    pub first_op_at: Option<Instant>,
    /// CPU seconds this process used during the workload phase (user + system).
    pub workload_cpu_secs: Option<f64>,
    /// What the failover-aware nemesis did: episodes begun and failover times seen (ms).
    pub episodes: usize,
    pub failovers_ms: Vec<u64>,
    /// When each anomaly class first showed (`checkers::result::detection`).
    pub detection: serde_json::Value,
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`.
pub fn self_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the state field.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

async fn on_every_node<F, Fut>(remotes: &[Arc<dyn Remote>], f: F) -> systems::Result<()>
where
    F: Fn(Arc<dyn Remote>) -> Fut,
    Fut: std::future::Future<Output = systems::Result<()>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for r in remotes {
        set.spawn(f(r.clone()));
    }
    let mut first = None;
    while let Some(res) = set.join_next().await {
        let res = res
            .map_err(|e| systems::Error::msg(format!("a node task failed: {e}")))
            .and_then(|r| r);
        if let Err(e) = res {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Deploys `system`, runs the test, tears down, and checks the history stored in `run_dir`.
/// Errors only when nothing could be checked (deploy failed, the history was not written).
pub async fn run(
    cfg: &Config,
    system: Arc<dyn System>,
    env: Env,
    run_dir: &RunDir,
    log: Arc<RunLog>,
    progress: Progress,
) -> systems::Result<Outcome> {
    let mut interrupts = Interrupts::install().context("failed to handle signals")?;
    let remotes = env.remotes.clone();
    let by_name: BTreeMap<String, Arc<dyn Remote>> = remotes
        .iter()
        .map(|r| (r.node().name.clone(), r.clone()))
        .collect();

    // A controller killed earlier may have left faults behind.
    let resolve = move |n: &str| by_name.get(n).cloned();
    match nemesis::heal_from_state_file(&env.state_path, &resolve, Some(system.control().as_ref()))
        .await
    {
        Ok(r) if !r.healed.is_empty() => log.line(&format!(
            "healed {} fault(s) a previous run left behind",
            r.healed.len()
        )),
        Ok(_) => {}
        Err(e) => log.line(&format!("warning: failed to heal leftovers: {e}")),
    }

    // Deploy.
    log.line(&format!(
        "deploying {} on {} nodes",
        system.name(),
        remotes.len()
    ));
    // Stage by stage: a stage's nodes are set up and started (each waits until it is ready)
    // before the next stage's, so a standby can clone a primary that runs.
    let mut deployed = Ok(());
    for stage in system.stages() {
        let in_stage: Vec<Arc<dyn Remote>> = remotes
            .iter()
            .filter(|r| stage.contains(&r.node().name))
            .cloned()
            .collect();
        let sys = system.clone();
        deployed = on_every_node(&in_stage, move |r| {
            let sys = sys.clone();
            async move {
                sys.setup(r.as_ref()).await?;
                sys.start(r.as_ref()).await
            }
        })
        .await;
        if deployed.is_err() {
            break;
        }
    }
    let ready = match deployed {
        Ok(()) => system.ready(system.ready_timeout()).await,
        Err(e) => Err(e),
    };
    let leader = match ready {
        Ok(l) => l,
        Err(e) => {
            collect_and_teardown(system.as_ref(), &remotes, run_dir, &log).await;
            return Err(e.context("failed to deploy the system"));
        }
    };
    env.leader.assume(&leader);
    log.line(&format!("{} is ready; {leader} leads", system.name()));

    let nem = match ClusterNemesis::new(NemesisConfig {
        remotes: remotes.clone(),
        clock: env.clock.clone(),
        state_path: env.state_path.clone(),
        seed: cfg.seed,
        system: Some(system.control()),
    }) {
        Ok(n) => Arc::new(n),
        Err(e) => {
            collect_and_teardown(system.as_ref(), &remotes, run_dir, &log).await;
            return Err(systems::Error::from(e).context("failed to set up the nemesis"));
        }
    };
    if let Err(e) = nem.setup().await {
        collect_and_teardown(system.as_ref(), &remotes, run_dir, &log).await;
        return Err(systems::Error::from(e).context("failed to set up the nemesis"));
    }
    let guard = HealGuard::new(nem.clone());

    let hist_path = run_dir.file("history.jsonl");
    let file = File::create(&hist_path)
        .with_context(|| format!("failed to create {}", hist_path.display()))?;
    let (rec, writer) = recorder::start(file);
    let mut errors = Vec::new();

    // Workload + faults.
    let (phase_tx, phase_rx) = watch::channel("workload");
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
    let mut probes = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        probes.push(tokio::spawn(workers::probe(
            rec.clone(),
            system.client(Duration::from_millis(1000)),
            n.clone(),
            (concurrency + i) as u64,
            cfg.probe_interval,
            env.leader.clone(),
            stop_probe_rx.clone(),
        )));
    }
    let interval = cfg
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(concurrency as f64 / r));
    let work_start = Instant::now();
    let cpu_start = self_cpu_secs();
    let mut workers_h = Vec::new();
    let shared = workers::Shared {
        rec: rec.clone(),
        processes: processes.clone(),
        interval,
        stop: stop_work_rx.clone(),
    };
    for w in 0..concurrency {
        let generator = Generator::new(cfg.seed, w as u64, concurrency as u64, &cfg.workloads);
        workers_h.push(tokio::spawn(workers::worker(
            shared.clone(),
            system.client(cfg.op_timeout),
            generator,
            w as u64,
            leader.clone(),
        )));
    }
    // The history writer ends when every recorder is gone: keep no copy beyond the workers'.
    drop(shared);
    let nemesis_log = supervise::NemesisLog::new(rec.clone());
    // Every node, serving or not: a witness that dies matters too.
    let supervisors: Vec<_> = remotes
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
    let nem_task = {
        let (nem, faults) = (nem.clone(), cfg.faults.clone());
        let nemesis_log = nemesis_log.clone();
        let watch = env.leader.clone();
        let schedule_path = run_dir.file("schedule.json");
        let (seed, log) = (cfg.seed, log.clone());
        let mut stop = stop_work_rx.clone();
        let warmup = cfg.warmup;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(warmup) => {}
                _ = stop.wait_for(|s| *s) => return (0, Vec::new(), Ok(())),
            }
            let cancel = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let mut on_event = |ev| nemesis_log.record(ev);
            match faults {
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
                        Planner::new(seed, opts),
                        &watch,
                        cancel,
                        &mut on_event,
                        &mut save,
                    )
                    .await;
                    (played.episodes, played.failovers_ms, played.result)
                }
            }
        })
    };
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
    tokio::select! {
        _ = tokio::time::sleep(cfg.time_limit) => {}
        _ = interrupts.wait() => {}
    }
    let interrupted = interrupts.triggered();
    let _ = phase_tx.send("healing");
    log.line(if interrupted {
        "interrupted: stopping the workload and healing every fault"
    } else {
        "time limit reached: stopping the workload and healing every fault"
    });
    let _ = stop_work.send(true);
    let (episodes, failovers_ms) = match nem_task.await {
        Ok((n, f, Ok(()))) => (n, f),
        Ok((n, f, Err(e))) => {
            errors.push(format!("nemesis: {e}"));
            (n, f)
        }
        Err(e) => {
            errors.push(format!("nemesis task: {e}"));
            (0, Vec::new())
        }
    };
    match guard.heal().await {
        Ok(()) => log.line("every fault healed"),
        Err(e) => errors.push(format!("failed to heal: {e}")),
    }
    let workers_deadline = cfg.op_timeout + Duration::from_secs(5);
    for h in workers_h {
        let abort = h.abort_handle();
        if tokio::time::timeout(workers_deadline, h).await.is_err() {
            abort.abort();
            errors.push("a client worker did not stop in time".into());
        }
    }
    let workload_secs = work_start.elapsed().as_secs_f64();
    let workload_cpu_secs = match (cpu_start, self_cpu_secs()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let c = &rec.counters;
    use std::sync::atomic::Ordering::Relaxed;
    let client_ops = c.ok.load(Relaxed) + c.fail.load(Relaxed) + c.info.load(Relaxed);

    // Recovery and final reads.
    if !interrupted {
        let _ = phase_tx.send("recovery");
        match workers::converge(system.as_ref(), cfg.recovery_wait).await {
            Ok(l) => log.line(&format!("recovered: {l} leads, every node caught up")),
            Err(why) => log.line(&format!(
                "warning: the cluster did not converge within {:?}: {why}",
                cfg.recovery_wait
            )),
        }
        if cfg.workloads.contains(&Workload::Set) && !interrupts.triggered() {
            let _ = phase_tx.send("final reads");
            let n = workers::final_reads(&rec, system.as_ref(), &processes, cfg.op_timeout).await;
            log.line(&format!(
                "final reads: {n} of {} nodes answered",
                nodes.len()
            ));
        }
    }
    let _ = stop_probe.send(true);
    for p in probes.into_iter().chain(supervisors) {
        let _ = p.await;
    }
    let exits = nemesis_log.exits.load(Relaxed);
    if exits > 0 {
        log.line(&format!(
            "{exits} process exit(s) without a fault; {} restarted",
            nemesis_log.restarts.load(Relaxed)
        ));
    }
    drop(nemesis_log);
    let _ = stop_progress.send(true);
    let _ = progress_task.await;
    progress.finish();
    let first_op_ns = rec.counters.first_op_ns.load(Relaxed);
    let first_op_at = (first_op_ns > 0).then(|| rec.start() + Duration::from_nanos(first_op_ns));
    let counters = rec.counters.clone();
    drop(rec);
    let written = writer.join();

    // Teardown.
    let _ = phase_tx.send("teardown");
    if let Err(e) = nem.teardown().await {
        errors.push(format!("failed to tear the nemesis down: {e}"));
    }
    collect_and_teardown(system.as_ref(), &remotes, run_dir, &log).await;
    let ops_written =
        written.with_context(|| format!("failed to write {}", hist_path.display()))?;
    let _ = counters;

    // Analysis.
    log.line(&format!("checking {ops_written} ops"));
    let (history, _) = history::load(&hist_path, Some(history::Format::Jsonl))
        .with_context(|| format!("failed to read back {}", hist_path.display()))?;
    let results = checks::check(&history, &cfg.workloads, cfg.check_budget);
    let detection = checkers::result::detection(&history, &results);
    let mut verdict = checkers::result::merge_validity(&results);
    if interrupted && verdict == Validity::Valid {
        verdict = Validity::Unknown;
    }
    Ok(Outcome {
        results,
        verdict,
        interrupted,
        errors,
        ops_written,
        client_ops,
        workload_secs,
        first_op_at,
        workload_cpu_secs,
        episodes,
        failovers_ms,
        detection,
    })
}

/// Downloads the system's logs into `nodes/<node>/` and removes the system from every node.
/// Failures are logged, never returned: they must not mask the run's own outcome.
async fn collect_and_teardown(
    system: &dyn System,
    remotes: &[Arc<dyn Remote>],
    run_dir: &RunDir,
    log: &RunLog,
) {
    for r in remotes {
        let name = r.node().name.clone();
        let dir = match run_dir.node_dir(&name) {
            Ok(d) => d,
            Err(e) => {
                log.line(&format!("warning: {e:#}"));
                continue;
            }
        };
        for (remote_path, local) in system.log_files(&name) {
            if let Err(e) = r.download(&remote_path, &dir.join(&local)).await {
                log.line(&format!(
                    "warning: failed to collect {remote_path} from {name}: {e}"
                ));
            }
        }
        if let Err(e) = system.teardown(r.as_ref()).await {
            log.line(&format!("warning: failed to tear down {name}: {e:#}"));
        }
    }
}
