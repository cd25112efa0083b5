//! `faultline gate`: run a matrix of tests, write JUnit and a Markdown summary, exit 0 only
//! when every run is valid (and, with a baseline, failover did not regress).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::child::{self, RunOutcome, Verdict};
use crate::exit::{self, user_error};
use ::gate::{baseline, junit, summary};
use gate::config::GateConfig;

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The matrix to run (see docs/ci.md); without it, the arguments after `--` are one
    /// `faultline test` configuration run over `--runs` seeds.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seeds per configuration (overrides the file's).
    #[arg(long)]
    pub runs: Option<u64>,
    /// The first seed (overrides the file's).
    #[arg(long)]
    pub seed_base: Option<u64>,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the Markdown summary here (it is also printed on stdout).
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// An earlier run directory or results.json: fail when failover time or unavailability
    /// grew by more than the configured percentage.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Where the runs are stored.
    #[arg(long, default_value = "store", env = crate::stored::STORE_ENV)]
    pub store: PathBuf,
    /// `faultline test` arguments (short form), after `--`.
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

pub fn run(args: GateArgs) -> anyhow::Result<u8> {
    let mut cfg = match (&args.config, args.test_args.is_empty()) {
        (Some(path), true) => GateConfig::load(path).map_err(user_error)?,
        (None, false) => GateConfig::short(3, 1, args.test_args.clone()),
        (Some(_), false) => {
            return Err(user_error(
                "give either --config FILE or test arguments after --, not both",
            ));
        }
        (None, true) => {
            return Err(user_error(
                "nothing to run: give --config gate.toml, or test arguments after -- (e.g. faultline gate --runs 3 -- --nodes 3 --time-limit 30s)",
            ));
        }
    };
    if let Some(r) = args.runs {
        if r == 0 {
            return Err(user_error("--runs must be at least 1"));
        }
        cfg.gate.runs = r;
    }
    if let Some(s) = args.seed_base {
        cfg.gate.seed_base = s;
    }
    let base = args
        .baseline
        .as_deref()
        .map(baseline::load)
        .transpose()
        .map_err(user_error)?;
    std::fs::create_dir_all(&args.store)
        .with_context(|| format!("failed to create the store {}", args.store.display()))?;

    let specs = cfg.expand();
    let mut outcomes: Vec<RunOutcome> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        crate::term::note!(
            "gate: run {}/{}: {} (seed {})",
            i + 1,
            specs.len(),
            spec.name,
            spec.seed
        );
        let o = child::run_test(&spec.name, &spec.args, spec.seed, &args.store)?;
        crate::term::note!(
            "gate: {} -> {}{}",
            spec.name,
            o.verdict.as_str(),
            match o.anomaly_types() {
                t if t.is_empty() => String::new(),
                t => format!(" ({})", t.join(", ")),
            }
        );
        outcomes.push(o);
    }

    let regressions = match &base {
        Some(b) => {
            let results: Vec<&serde_json::Value> =
                outcomes.iter().filter_map(|o| o.results.as_ref()).collect();
            baseline::compare(b, &results, cfg.gate.max_regression_pct)
        }
        None => Vec::new(),
    };
    let all_valid = outcomes.iter().all(|o| o.verdict == Verdict::Valid);
    let passed = all_valid && regressions.is_empty();

    let md = summary::render(&outcomes, &regressions, passed);
    print!("{md}");
    if let Some(p) = &args.summary {
        std::fs::write(p, &md).with_context(|| format!("failed to write {}", p.display()))?;
    }
    if let Some(p) = &args.junit {
        let extra: Vec<(String, String)> = regressions
            .iter()
            .map(|g| {
                (
                    format!("baseline/{}", g.metric),
                    format!(
                        "{} grew from {:.3} s to {:.3} s (allowed +{}%)",
                        g.metric, g.baseline, g.current, g.allowed_pct
                    ),
                )
            })
            .collect();
        std::fs::write(p, junit::render("faultline-gate", &outcomes, &extra))
            .with_context(|| format!("failed to write {}", p.display()))?;
    }
    let worst = |v: Verdict| outcomes.iter().any(|o| o.verdict == v);
    Ok(if worst(Verdict::Invalid) || !regressions.is_empty() {
        exit::INVALID
    } else if worst(Verdict::Error) {
        exit::HARNESS
    } else if worst(Verdict::Unknown) {
        exit::UNKNOWN
    } else {
        exit::VALID
    })
}
