//! `faultline shrink RUN_DIR`: the smallest fault schedule that still produces the run's
//! anomaly class, by delta debugging over the recorded schedule (see `gate::shrink`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::child;
use crate::exit::{self, user_error};
use crate::stored::{self, store_of};
use gate::shrink::{self, Candidate, Options, Reproducer};

#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// A stored run directory with an anomaly.
    #[arg(value_parser = crate::stored::run_path)]
    pub run_dir: PathBuf,
    /// Attempts per candidate (reproduction is probabilistic).
    #[arg(long, default_value_t = 3)]
    pub tries: u32,
    /// Total time to spend, e.g. 30m.
    #[arg(long, default_value = "30m", value_parser = nemesis::parse_duration)]
    pub budget: Duration,
    /// Where the attempts are stored (default: the original's store).
    #[arg(long, env = crate::stored::STORE_ENV)]
    pub store: Option<PathBuf>,
    /// Where to write the result (default RUN_DIR/shrink/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

struct ChildReproducer<'a> {
    args: Vec<String>,
    seed: u64,
    store: PathBuf,
    classes: Vec<String>,
    dir: &'a Path,
    started: Instant,
    n: u32,
}

impl Reproducer for ChildReproducer<'_> {
    type Error = anyhow::Error;

    fn attempt(&mut self, c: &Candidate) -> anyhow::Result<bool> {
        self.n += 1;
        let file = self.dir.join(format!("candidate-{}.json", self.n));
        c.schedule
            .save(&file)
            .context("failed to write a candidate schedule")?;
        let mut args = self.args.clone();
        args.extend([
            "--schedule".into(),
            file.display().to_string(),
            "--time-limit".into(),
            format!("{}ms", c.time_limit_ms),
        ]);
        let o = child::run_test("shrink", &args, self.seed, &self.store)?;
        let hit = o.anomaly_types().iter().any(|t| self.classes.contains(t));
        crate::term::note!(
            "shrink: attempt {} ({} faults, {} ms): {}",
            self.n,
            c.faults(),
            c.time_limit_ms,
            if hit { "reproduced" } else { "not reproduced" }
        );
        Ok(hit)
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

pub fn run(args: ShrinkArgs) -> anyhow::Result<u8> {
    if args.tries == 0 {
        return Err(user_error("--tries must be at least 1"));
    }
    let mut replaced = gate::replay::REPLACED.to_vec();
    replaced.push("--time-limit");
    let stored = stored::load(&args.run_dir, &replaced)?;
    let classes = child::anomaly_types(&stored.results);
    if classes.is_empty() {
        return Err(user_error(format!(
            "{} has no anomaly: nothing to shrink",
            args.run_dir.display()
        )));
    }
    let test: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(args.run_dir.join("test.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let time_limit_ms = test["time_limit_ms"]
        .as_u64()
        .or_else(|| test["time_limit_s"].as_f64().map(|s| (s * 1000.0) as u64))
        .unwrap_or_else(|| stored.schedule.end_ms() + 5_000);
    let start = Candidate {
        schedule: gate::replay::pin(&stored.schedule, &stored.history),
        time_limit_ms,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join("shrink"));
    std::fs::create_dir_all(&out).with_context(|| format!("failed to create {}", out.display()))?;
    let work = tempfile::tempdir().context("failed to make a temporary directory")?;
    let mut repro = ChildReproducer {
        args: stored.args.clone(),
        seed: stored.seed,
        store: args
            .store
            .clone()
            .unwrap_or_else(|| store_of(&args.run_dir)),
        classes: classes.clone(),
        dir: work.path(),
        started: Instant::now(),
        n: 0,
    };
    let opts = Options {
        tries: args.tries,
        budget: args.budget,
        min_window_ms: 1_000,
        margin_ms: 2_000,
    };
    crate::term::note!(
        "shrink: {} faults, anomaly {}, seed {}, up to {} tries per candidate, budget {:?}",
        start.faults(),
        classes.join(", "),
        stored.seed,
        args.tries,
        args.budget
    );
    let report = shrink::shrink(start.clone(), &opts, &mut repro)?;
    // How reliably does the result reproduce? K fresh attempts.
    let mut hits = 0;
    for _ in 0..args.tries {
        if repro.attempt(&report.best)? {
            hits += 1;
        }
    }
    let schedule_file = out.join("schedule.json");
    report
        .best
        .schedule
        .save(&schedule_file)
        .context("failed to write the shrunk schedule")?;
    let summary = serde_json::json!({
        "run": args.run_dir.display().to_string(),
        "seed": stored.seed,
        "anomaly_types": classes,
        "faults_before": start.faults(),
        "faults_after": report.best.faults(),
        "time_limit_ms_before": start.time_limit_ms,
        "time_limit_ms_after": report.best.time_limit_ms,
        "reproduced": hits,
        "of": args.tries,
        "attempts": report.attempts + args.tries,
        "budget_exhausted": report.budget_exhausted,
        "steps": report.steps,
    });
    runner::store::write_file(
        &out.join("report.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )
    .context("failed to write the shrink report")?;
    println!(
        "shrunk {} faults to {}, test {} ms -> {} ms; reproduced {hits} of {} times",
        start.faults(),
        report.best.faults(),
        start.time_limit_ms,
        report.best.time_limit_ms,
        args.tries
    );
    println!("schedule: {}", schedule_file.display());
    println!(
        "rerun: faultline test {} --seed {} --schedule {} --time-limit {}ms",
        stored.args.join(" "),
        stored.seed,
        schedule_file.display(),
        report.best.time_limit_ms
    );
    Ok(if hits > 0 {
        exit::INVALID
    } else {
        exit::UNKNOWN
    })
}
