//! `faultline test`: deploy a system onto the local cluster, run workloads under faults,
//! record the history, check it and store the run.
//!
//! This file is the command line and the glue (seed, cluster, binaries, store, summary);
//! the run itself is `runner`, the system `systems`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use history::Validity;
use nemesis::{AdaptiveOptions, ClockMode, FaultKind, GenerateOptions, Schedule};
use workloads::Workload;

use crate::exit::{self, user_error};
use crate::nodes;
pub use crate::spec::TestArgs;
use runner::progress::Progress;
use runner::store::{RunDir, RunLog};
use systems::registry::{Builtin, SystemOption};
use systems::{System, artifact, file};

pub(crate) struct Plan {
    seed: u64,
    workloads: Vec<Workload>,
    kinds: Vec<FaultKind>,
    name: String,
    /// The system file, loaded and validated (`--system-file`, or a built-in's own).
    file: file::spec::Loaded,
    /// `--schedule`, loaded and checked against the nodes the run will have.
    schedule: Option<Schedule>,
}

/// The system-specific options the command line sets to other than their `defaults`.
fn options_given(args: &TestArgs, defaults: &TestArgs) -> Vec<SystemOption> {
    let mut v = Vec::new();
    if args.mode != defaults.mode {
        v.push(SystemOption::Mode);
    }
    if !args.bugs.is_empty() {
        v.push(SystemOption::Bug);
    }
    if args.down_after != defaults.down_after {
        v.push(SystemOption::DownAfter);
    }
    if args.synchronous {
        v.push(SystemOption::Synchronous);
    }
    if args.install {
        v.push(SystemOption::Install);
    }
    if args.secure {
        v.push(SystemOption::Secure);
    }
    v
}

pub(crate) fn plan(args: &TestArgs) -> anyhow::Result<Plan> {
    let defaults = TestArgs::default();
    if args.system_file.is_none() && !args.sets.is_empty() {
        return Err(user_error("--set needs --system-file"));
    }
    let builtin = match &args.system_file {
        Some(_) => None,
        None => Some(args.system.parse::<Builtin>().map_err(user_error)?),
    };
    let read_from: workloads::ReadFrom = args.read_from.parse().map_err(user_error)?;
    let inputs = |sets| file::spec::Inputs {
        bugs: args.bugs.clone(),
        sets,
        read_from,
    };
    let loaded = match (&args.system_file, builtin) {
        (Some(path), _) => {
            let sets = file::spec::parse_sets(&args.sets).map_err(user_error)?;
            file::spec::load(path, &inputs(sets))
        }
        // A built-in system is its embedded system file, with the options it honours as its
        // settings.
        (None, Some(b)) => b.file(
            &inputs(b.settings(&systems::registry::OptionValues {
                mode: args.mode.clone(),
                synchronous: args.synchronous,
                down_after: args.down_after,
            })),
            args.secure,
        ),
        (None, None) => unreachable!("a system is either a file or built in"),
    };
    let mut file = loaded.map_err(user_error)?;
    file.resolve_files()?;
    let system = file.spec.name.clone();
    if !(1..=50).contains(&args.nodes) {
        return Err(user_error(format!(
            "--nodes {} is not in 1..=50",
            args.nodes
        )));
    }
    if args.leave_running && args.reach.nodes_file.is_some() {
        return Err(user_error(
            "--leave-running works on a local cluster or --docker, which `faultline cluster down` \
             removes; on --nodes-file hosts nothing would stop the system: leave it out",
        ));
    }
    if args.concurrency == 0 {
        return Err(user_error("--concurrency must be at least 1"));
    }
    if args.time_limit.is_zero() {
        return Err(user_error("--time-limit must be above 0"));
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        return Err(user_error("--rate must be above 0"));
    }
    let mut workloads = workloads::parse_workloads(&args.workload).map_err(user_error)?;
    // The default workloads are what the system can run: a user who asked for none in
    // particular gets a test, not a refusal (one they named is still refused below).
    if args.workload == defaults.workload {
        let (kept, dropped) = file.supported(&workloads);
        if !dropped.is_empty() && !kept.is_empty() {
            let names = |w: &[workloads::Workload]| {
                w.iter().map(|w| w.name()).collect::<Vec<_>>().join(",")
            };
            crate::term::note!(
                "faultline test: {system} cannot run {} (its file defines no ops for it): running {}",
                names(&dropped),
                names(&kept)
            );
            workloads = kept;
        }
    }
    let mut kinds = if matches!(args.nemesis.trim(), "" | "none") {
        Vec::new()
    } else {
        nemesis::parse_kinds(&args.nemesis).map_err(|e| user_error(e.to_string()))?
    };
    // The default faults are those the system can take, as with workloads. Clock faults are
    // per process on a local cluster and in containers (the shim); on hosts they set the
    // host's clock and stop its NTP, which a user must ask for; without the shim (faultline
    // installed alone) there is nothing to skew a process with.
    // Said once the command line is known to be good: an error stays one line.
    let mut dropped_faults = None;
    if args.nemesis == defaults.nemesis {
        let on_hosts = args.reach.nodes_file.is_some();
        let no_shim = !on_hosts
            && !artifact::artifact_available("libclockshim.so", "FAULTLINE_CLOCKSHIM_LIB");
        let why_not = |k: FaultKind| -> Option<String> {
            if let Some(why) = file.refusal(k) {
                Some(format!("{}: {why}", k.name()))
            } else if k == FaultKind::Clock && on_hosts {
                Some("clock: on hosts it sets the host clock; ask for it with --nemesis".into())
            } else if k == FaultKind::Clock && no_shim {
                Some(
                    "clock: libclockshim.so is not beside faultline (docs/first-run.md says how \
                     to put it there)"
                        .into(),
                )
            } else {
                None
            }
        };
        let why: Vec<String> = kinds.iter().filter_map(|k| why_not(*k)).collect();
        if !why.is_empty() {
            kinds.retain(|k| why_not(*k).is_none());
            let kept: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            dropped_faults = Some(format!(
                "faultline test: left out of the default faults ({}): running {}",
                why.join("; "),
                kept.join(",")
            ));
        }
    }
    let options = options_given(args, &defaults);
    file.check_workloads(&workloads).map_err(user_error)?;
    file.check_faults(&kinds).map_err(user_error)?;
    match builtin {
        Some(b) => b.check(&options).map_err(user_error)?,
        None => {
            let honoured = |o: &SystemOption| {
                *o == SystemOption::Bug
                    || (*o == SystemOption::Install && !file.spec.requires.programs.is_empty())
            };
            if let Some(o) = options.iter().find(|o| !honoured(o)) {
                return Err(user_error(format!(
                    "{} does not apply to a system file (the file says how its system runs; \
                     give it settings with --set KEY=VALUE): leave it out",
                    o.flag()
                )));
            }
        }
    }
    let seed = args.seed.unwrap_or_else(rand::random::<u64>);
    let name = args.name.clone().unwrap_or_else(|| {
        let w: Vec<&str> = workloads.iter().map(|w| w.name()).collect();
        format!("{system}-{}", w.join("+"))
    });
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(user_error(format!("bad test name {name:?}")));
    }
    // Before any cluster or run directory exists: a bad schedule costs nothing.
    let schedule = match &args.schedule {
        Some(path) => {
            let s = Schedule::load(path).map_err(|e| user_error(e.to_string()))?;
            let names: Vec<String> = match args.reach.host_nodes()? {
                Some(hosts) => hosts.into_iter().map(|n| n.name).collect(),
                None => (1..=args.nodes).map(|i| format!("n{i}")).collect(),
            };
            s.validate(&names).map_err(|e| user_error(e.to_string()))?;
            Some(s)
        }
        None => None,
    };
    if let Some(note) = dropped_faults {
        crate::term::note!("{note}");
    }
    Ok(Plan {
        seed,
        workloads,
        kinds,
        name,
        file,
        schedule,
    })
}

pub fn run(args: TestArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let raw: Vec<String> = std::env::args()
        .skip_while(|a| a != "test")
        .skip(1)
        .collect();
    let args = args.with_spec(&raw).map_err(user_error)?;
    let plan = plan(&args)?;
    let seed = plan.seed;
    crate::term::note!("faultline test: seed {seed}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    match rt.block_on(run_async(&args, &plan, started)) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("faultline: error: {e:#} (seed {seed}; rerun with --seed {seed})");
            Ok(exit::code_for(&e))
        }
    }
}

async fn run_async(args: &TestArgs, plan: &Plan, started: Instant) -> anyhow::Result<u8> {
    let seed = plan.seed;
    let progress = if crate::term::quiet() {
        Progress::silent()
    } else {
        Progress::on_stderr()
    };
    let p2 = progress.clone();
    let log = Arc::new(RunLog::new(
        None,
        Box::new(move |l| p2.println(&format!("faultline: {l}"))),
    )?);
    let res = run_logged(args, plan, started, progress, log.clone()).await;
    if let Err(e) = &res {
        // The same line `run` prints, kept with the run (when it got a directory).
        log.record(&format!(
            "error: {e:#} (seed {seed}; rerun with --seed {seed})"
        ));
    }
    res
}

async fn run_logged(
    args: &TestArgs,
    plan: &Plan,
    started: Instant,
    progress: Progress,
    log: Arc<RunLog>,
) -> anyhow::Result<u8> {
    let seed = plan.seed;
    let log2 = log.clone();
    // The file's `[docker] image`, unless --image names one.
    let mut reach = args.reach.clone();
    if reach.docker && reach.image.is_none() {
        reach.image = plan.file.spec.docker.image.clone();
    }
    let targets = nodes::test_targets(
        &reach,
        &nodes::ClusterWanted {
            nodes: args.nodes,
            prefix: &args.prefix,
            subnet: &args.subnet,
            state_dir: &args.state_dir,
            store: &args.store,
        },
        &move |l| log2.line(l),
    )
    .await?;
    let base_dir = nodes::base_dir(&args.prefix);
    let clock = if !plan.kinds.contains(&FaultKind::Clock) {
        ClockMode::Unsupported
    } else if let Some(shared) = &targets.shared_dir {
        // Containers share the kernel clock too: the shim, copied where they see it, reads
        // offset files there.
        let lib =
            artifact::locate_artifact("libclockshim.so", "FAULTLINE_CLOCKSHIM_LIB", "clockshim")?;
        let copy = shared.join("libclockshim.so");
        std::fs::copy(&lib, &copy)
            .with_context(|| format!("failed to copy {} to {}", lib.display(), copy.display()))?;
        ClockMode::Shim {
            dir: shared.join("clock"),
            lib: copy,
        }
    } else if targets.local {
        // Namespaces share the kernel clock: skew each node's processes through the shim.
        ClockMode::Shim {
            dir: PathBuf::new(), // set below, inside the run directory
            lib: artifact::locate_artifact(
                "libclockshim.so",
                "FAULTLINE_CLOCKSHIM_LIB",
                "clockshim",
            )?,
        }
    } else {
        let helper =
            artifact::locate_artifact("faultline-clock", "FAULTLINE_CLOCK_BIN", "clockshim")?;
        let remote_path = format!("{base_dir}/faultline-clock");
        nodes::upload_executable(&targets.remotes, &helper, &remote_path).await?;
        ClockMode::Settime {
            helper: remote_path,
        }
    };
    let nodes = targets.nodes.clone();
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();

    let run_dir = RunDir::create(&args.store, &plan.name)?;
    log.attach(&run_dir.file("faultline.log"))?;
    log.line(&format!("run directory {}", run_dir.path.display()));

    // The faults: a schedule by the clock, or the failover-aware nemesis, which saves what it
    // played into schedule.json as it goes.
    let warmup = args.warmup.min(args.time_limit);
    let faults = match &plan.schedule {
        // Checked in `plan` against these names (n1..nN, or the nodes file's).
        Some(s) => runner::Faults::Schedule(s.clone()),
        None if args.nemesis_mode == "interval" => runner::Faults::Schedule(Schedule::generate(
            seed,
            &GenerateOptions::new(
                plan.kinds.clone(),
                args.nemesis_interval,
                args.time_limit - warmup,
                names.clone(),
            ),
        )),
        None => {
            let mut o =
                AdaptiveOptions::new(plan.kinds.clone(), names.clone(), args.nemesis_interval);
            o.fault_max = args.fault_max;
            o.settle_max = args.settle_max;
            runner::Faults::Adaptive(o)
        }
    };
    let initial = match &faults {
        runner::Faults::Schedule(s) => s.clone(),
        runner::Faults::Adaptive(_) => Schedule {
            seed: Some(seed),
            nodes: names.clone(),
            faults: Vec::new(),
        },
    };
    initial
        .save(&run_dir.file("schedule.json"))
        .context("failed to save schedule.json")?;
    let clock = match clock {
        ClockMode::Shim { lib, .. } if targets.local => ClockMode::Shim {
            dir: run_dir.path.join("clock"),
            lib,
        },
        other => other,
    };
    if let ClockMode::Shim { dir, .. } = &clock {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }

    let workload_names: Vec<&str> = plan.workloads.iter().map(|w| w.name()).collect();
    let test_json = json!({
        "name": plan.name,
        "system": plan.file.spec.name,
        "system_file": args.system_file.as_ref().map(|p| p.display().to_string()),
        "sets": args.sets,
        "seed": seed,
        "nodes": nodes.iter().map(|n| json!({"name": n.name, "addr": n.addr})).collect::<Vec<_>>(),
        "workloads": workload_names,
        "read_from": args.read_from,
        "nemesis": plan.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "time_limit_s": args.time_limit.as_secs_f64(),
        "concurrency": args.concurrency,
        "rate": args.rate,
        "bugs": args.bugs,
        "mode": args.mode,
        "nemesis_mode": if args.schedule.is_some() { "schedule" } else { args.nemesis_mode.as_str() },
        "nemesis_interval_s": args.nemesis_interval.as_secs_f64(),
        "fault_max_s": args.fault_max.as_secs_f64(),
        "settle_max_s": args.settle_max.as_secs_f64(),
        "schedule_file": args.schedule.as_ref().map(|p| p.display().to_string()),
        "recovery_wait_s": args.recovery_wait.as_secs_f64(),
        "warmup_s": warmup.as_secs_f64(),
        "op_timeout_s": args.op_timeout.as_secs_f64(),
        "cluster": {
            "via": targets.via,
            "prefix": args.prefix,
            "subnet": targets.local.then_some(&args.subnet),
            "nodes_file": args.reach.nodes_file.as_ref().map(|p| p.display().to_string()),
        },
        "faultline_version": env!("CARGO_PKG_VERSION"),
        "argv": std::env::args().collect::<Vec<_>>(),
        "spec": args.stored(seed),
    });
    run_dir.write_json("test.json", &test_json)?;

    let leader = nemesis::LeaderView::default();
    let system: Arc<dyn System> = Arc::new(file::FileSystem::new(
        plan.file.clone(),
        nodes.clone(),
        file::Options {
            base_dir: base_dir.clone(),
            clock: clock.clone(),
            remotes: targets.remotes.clone(),
            install: args.install,
        },
        leader.clone(),
    )?);
    let cfg = runner::Config {
        seed,
        workloads: plan.workloads.clone(),
        concurrency: args.concurrency,
        rate: args.rate,
        time_limit: args.time_limit,
        warmup,
        recovery_wait: args.recovery_wait,
        faults,
        op_timeout: args.op_timeout,
        probe_interval: Duration::from_millis(100),
        check_budget: args.check_budget,
        leave_running: args.leave_running,
        // Parsed once, in `plan`, into the loaded file (its `{read_from}`).
        read_from: plan.file.read_from,
        // Elle's default transaction length, for systems whose file says how to run them.
        max_txn_len: if plan.file.spec.client.transactions.is_some() {
            4
        } else {
            1
        },
    };
    let env = runner::Env {
        remotes: targets.remotes.clone(),
        clock,
        state_path: targets.state_path.clone(),
        leader,
    };
    let outcome = runner::run(&cfg, system, env, &run_dir, log.clone(), progress).await;
    let left_running = args.leave_running && outcome.as_ref().is_ok_and(|o| !o.interrupted);
    if !left_running {
        // Teardown removed every node's directory (also when the run failed): remove the
        // now-empty directories that held them, and the clock helper.
        nodes::remove_base_dir(&targets, &base_dir).await;
    }
    let outcome = outcome?;

    // Store and report.
    let mut results = checkers::result::results_json(&outcome.results);
    let rate = outcome.client_ops as f64 / outcome.workload_secs.max(1e-9);
    let first_op_s = outcome
        .first_op_at
        .map(|t| t.saturating_duration_since(started).as_secs_f64());
    results["seed"] = json!(seed);
    results["interrupted"] = json!(outcome.interrupted);
    results["errors"] = json!(outcome.errors);
    results["run"] = json!({
        "ops_written": outcome.ops_written,
        "client_ops": outcome.client_ops,
        "client_ops_per_s": rate,
        "first_op_after_s": first_op_s,
        "workload_s": outcome.workload_secs,
        "harness_cpu_s": outcome.workload_cpu_secs,
        "harness_cpu_share": outcome.workload_cpu_secs.map(|c| c / outcome.workload_secs.max(1e-9)),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    results["detection"] = outcome.detection.clone();
    results["nemesis"] = json!({
        "episodes": outcome.episodes,
        "failovers_ms": outcome.failovers_ms,
    });
    results["valid"] = serde_json::to_value(outcome.verdict)?;
    let left = left_running.then(|| LeftRunning::new(args, &targets, plan.file.client_port()));
    if let Some(l) = &left {
        results["left_running"] = serde_json::to_value(l)?;
    }
    run_dir.write_json("results.json", &results)?;
    // The report is a view of what is stored: failing to render it must not hide the verdict.
    match crate::run_report::write_report(&run_dir.path) {
        Ok(p) => log.line(&format!("report: {}", p.display())),
        Err(e) => log.line(&format!("failed to write the report: {e:#}")),
    }
    log.line(&format!(
        "{} client ops in {:.1} s ({rate:.0}/s){}",
        outcome.client_ops,
        outcome.workload_secs,
        first_op_s
            .map(|s| format!("; first op {s:.2} s after start"))
            .unwrap_or_default()
    ));
    for e in &outcome.errors {
        log.line(&format!(
            "error: {e} (seed {seed}; rerun with --seed {seed})"
        ));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_summary(&outcome, &run_dir, seed);
        if let Some(l) = &left {
            l.print();
        }
    }
    Ok(match outcome.verdict {
        Validity::Invalid => exit::INVALID,
        _ if !outcome.errors.is_empty() => exit::HARNESS,
        v => exit::for_validity(v),
    })
}

/// How to reach a system `--leave-running` left up.
#[derive(serde::Serialize)]
struct LeftRunning {
    nodes: Vec<serde_json::Value>,
    /// The command that removes it all.
    down: String,
}

impl LeftRunning {
    fn new(args: &TestArgs, targets: &nodes::Targets, port: u16) -> LeftRunning {
        let prefix = &args.prefix;
        let docker = if targets.via == "docker" {
            " --docker"
        } else {
            ""
        };
        let nodes = targets
            .nodes
            .iter()
            .map(|n| {
                let shell = if targets.via == "docker" {
                    format!("docker exec -it {prefix}{} sh", n.name)
                } else {
                    format!("ip netns exec {prefix}{} sh", n.name)
                };
                json!({
                    "name": n.name,
                    "client": format!("{}:{port}", n.addr),
                    "exec": format!("faultline exec {}{docker} --prefix {prefix} -- CMD", n.name),
                    "shell": shell,
                })
            })
            .collect();
        LeftRunning {
            nodes,
            down: format!("faultline cluster down{docker} --prefix {prefix}"),
        }
    }

    fn print(&self) {
        println!("left running (every fault healed):");
        for n in &self.nodes {
            println!(
                "  {}  client {}  shell: {}",
                n["name"].as_str().unwrap_or_default(),
                n["client"].as_str().unwrap_or_default(),
                n["shell"].as_str().unwrap_or_default()
            );
        }
        println!("remove it with: {}", self.down);
    }
}

fn print_summary(outcome: &runner::Outcome, run_dir: &RunDir, seed: u64) {
    for r in &outcome.results {
        let detail = match (&r.reason, r.anomaly_count) {
            (Some(reason), _) => reason.clone(),
            (None, 0) => String::new(),
            (None, n) => format!("{n} anomalies ({})", r.anomaly_types().join(", ")),
        };
        println!("  {:<14} {:<8} {detail}", r.checker, r.valid.as_str());
    }
    let mut types: Vec<&str> = outcome
        .results
        .iter()
        .flat_map(|r| r.anomaly_types())
        .collect();
    types.sort_unstable();
    types.dedup();
    let verdict = outcome.verdict.as_str().to_uppercase();
    if types.is_empty() {
        println!(
            "verdict: {verdict}{}",
            if outcome.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
    } else {
        println!(
            "verdict: {verdict} ({}) (seed {seed}; rerun with --seed {seed})",
            types.join(", ")
        );
    }
    println!("run: {}", run_dir.path.display());
}

#[cfg(test)]
mod tests;
