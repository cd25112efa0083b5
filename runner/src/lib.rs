//! The test runner: one task owns the run and drives its phases; workers, the leader probe,
//! the supervisors and the nemesis report ops over one bounded channel to a single history
//! writer (which keeps the live counters); the probe publishes the leader view (a watch
//! channel) that the nemesis, the clients' routing and the progress display read.
//!
//! Phases: deploy (setup + start every node, wait for a leader) → workload + faults for the
//! time limit (the schedule starts after a warm-up) → heal everything → recovery wait (until
//! the cluster converges, bounded) → final reads → teardown + log collection → analysis.
//! Faults are healed on every path: at the end of the window, on error, on Ctrl-C/SIGTERM
//! (first signal; a second exits at once and the next start heals from the state file) and
//! on panic (`HealGuard`).
//!
//! - `deploy`: heal leftovers, staged deploy until one leader is known, log collection
//!   and teardown.
//! - `workload`: the workload phase's tasks (workers, probes, supervisors, nemesis,
//!   progress), started together and stopped in order.
//! - [`recorder`]: the history writer thread and the live counters.
//! - [`supervise`]: the nemesis's ops in the history, and the supervisor that records (and,
//!   if the system says so, restarts) a process that exits without a fault.
//! - [`workers`]: client workers, the leader probe, the convergence wait, final reads.
//! - [`progress`]: the terminal display / plain progress lines.
//! - [`checks`]: the checkers each workload gets.
//! - [`store`]: the run directory (`test.json`, history, results, logs) and `latest`.

pub mod checks;
pub(crate) mod deploy;
pub mod progress;
pub mod recorder;
pub mod store;
pub mod supervise;
pub mod workers;
mod workload;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkers::CheckResult;
use control::Remote;
use history::{Validity, vocab};
use nemesis::{
    AdaptiveOptions, ClockMode, ClusterNemesis, HealGuard, Interrupts, LeaderView, Nemesis,
    NemesisConfig, Schedule,
};
use systems::Context;
use workloads::Workload;

use progress::Progress;
use store::{RunDir, RunLog};
use systems::System;
use workload::Running;

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
    /// Keep the system running after the final reads (faults healed, logs collected), for
    /// the user to look at; `cluster down` removes it.
    pub leave_running: bool,
    /// Where client reads go (`--read-from`); anything but the leader is checked against a
    /// model that allows stale reads across processes.
    pub read_from: workloads::ReadFrom,
    /// Most micro-ops of a list-append transaction: 1 unless the system has transactions.
    pub max_txn_len: usize,
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
    deploy::heal_leftovers(system.as_ref(), &remotes, &env.state_path, &log).await;
    let nodes = system.nodes();
    nemesis::prepare_shim_files(&env.clock, nodes.iter().map(String::as_str))
        .map_err(|e| systems::Error::from(e).context("failed to prepare the clock shim"))?;
    log.line(&format!(
        "deploying {} on {} nodes",
        system.name(),
        remotes.len()
    ));
    let leader = match deploy::deploy(&system, &remotes).await {
        Ok(l) => l,
        Err(e) => {
            deploy::collect_and_teardown(system.as_ref(), &remotes, run_dir, &log).await;
            return Err(e.context("failed to deploy the system"));
        }
    };
    env.leader.assume(&leader);
    log.line(&format!("{} is ready; {leader} leads", system.name()));
    let nem = match set_up_nemesis(cfg, &system, &env).await {
        Ok(n) => n,
        Err(e) => {
            deploy::collect_and_teardown(system.as_ref(), &remotes, run_dir, &log).await;
            return Err(e);
        }
    };
    let guard = HealGuard::new(nem.clone());

    let hist_path = run_dir.file("history.jsonl");
    let file = File::create(&hist_path)
        .with_context(|| format!("failed to create {}", hist_path.display()))?;
    let (rec, writer) = recorder::start(file);
    let mut errors = Vec::new();

    // Workload + faults, until the time limit or a signal.
    let mut work = Running::start(
        cfg,
        &system,
        &env,
        nem.clone(),
        rec,
        progress,
        run_dir.file("schedule.json"),
        log.clone(),
        &leader,
    );
    tokio::select! {
        _ = tokio::time::sleep(cfg.time_limit) => {}
        _ = interrupts.wait() => {}
    }
    let interrupted = interrupts.triggered();
    log.line(if interrupted {
        "interrupted: stopping the workload and healing every fault"
    } else {
        "time limit reached: stopping the workload and healing every fault"
    });
    let stopped = work.stop(cfg.op_timeout, &mut errors).await;
    match guard.heal().await {
        Ok(()) => log.line("every fault healed"),
        Err(e) => errors.push(format!("failed to heal: {e}")),
    }

    // Recovery and final reads (the probes still run).
    if !interrupted {
        let _ = work.phase.send("recovery");
        match workers::converge(system.as_ref(), cfg.recovery_wait).await {
            Ok(l) => log.line(&format!("recovered: {l} leads, every node caught up")),
            Err(why) => log.line(&format!(
                "warning: the cluster did not converge within {:?}: {why}",
                cfg.recovery_wait
            )),
        }
        let finals = [
            (
                cfg.workloads.contains(&Workload::Set),
                vocab::READ,
                "final reads",
            ),
            (system.reads_digest(), vocab::DIGEST, "final digests"),
        ];
        for (wanted, f, what) in finals {
            if !wanted || interrupts.triggered() {
                continue;
            }
            let _ = work.phase.send(what);
            let n = workers::final_reads(
                work.recorder(),
                system.as_ref(),
                &work.processes,
                f,
                cfg.op_timeout,
            )
            .await;
            log.line(&format!(
                "{what}: {n} of {} nodes answered",
                system.nodes().len()
            ));
        }
    }
    let first_op_at = work.finish(&log).await;
    let written = writer.join();

    // Teardown.
    if let Err(e) = nem.teardown().await {
        errors.push(format!("failed to tear the nemesis down: {e}"));
    }
    if cfg.leave_running && !interrupted {
        deploy::collect_logs(system.as_ref(), &remotes, run_dir, &log).await;
        log.line("leaving the system running (--leave-running)");
    } else {
        deploy::collect_and_teardown(system.as_ref(), &remotes, run_dir, &log).await;
    }
    let ops_written =
        written.with_context(|| format!("failed to write {}", hist_path.display()))?;

    // Analysis.
    log.line(&format!("checking {ops_written} ops"));
    let (history, _) = history::load(&hist_path, Some(history::Format::Jsonl))
        .with_context(|| format!("failed to read back {}", hist_path.display()))?;
    let results = checks::check(&history, &cfg.workloads, cfg.read_from, cfg.check_budget);
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
        client_ops: stopped.client_ops,
        workload_secs: stopped.secs,
        first_op_at,
        workload_cpu_secs: stopped.cpu_secs,
        episodes: stopped.episodes,
        failovers_ms: stopped.failovers_ms,
        detection,
    })
}

/// The cluster nemesis for `system`'s nodes, set up (helpers installed, rules ready).
async fn set_up_nemesis(
    cfg: &Config,
    system: &Arc<dyn System>,
    env: &Env,
) -> systems::Result<Arc<ClusterNemesis>> {
    let nem = ClusterNemesis::new(NemesisConfig {
        remotes: env.remotes.clone(),
        clock: env.clock.clone(),
        state_path: env.state_path.clone(),
        seed: cfg.seed,
        system: Some(system.control()),
    })
    .map(Arc::new)
    .map_err(|e| systems::Error::from(e).context("failed to set up the nemesis"))?;
    nem.setup()
        .await
        .map_err(|e| systems::Error::from(e).context("failed to set up the nemesis"))?;
    Ok(nem)
}
