//! `faultline gate`: run a matrix of tests, write JUnit and a Markdown summary, exit 0 only
//! when every run is valid (and, with a baseline, failover did not regress).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::child::{self, RunOutcome, Verdict};
use crate::exit::{self, user_error};
use ::gate::shard::{self, Shard, ShardFile};
use ::gate::{baseline, junit, summary};
use gate::config::GateConfig;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GateArgs {
    #[command(subcommand)]
    pub merge: Option<GateCommand>,
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
    /// Run only shard K of N of the expanded matrix (every N-th run, from the K-th), e.g.
    /// 2/3 on the second of three CI machines; `faultline gate merge` puts them together.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Write junit.xml, summary.md and gate.json (what `gate merge` reads) into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `faultline test` arguments (short form), after `--`.
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum GateCommand {
    /// Merge the --out directories of a sharded gate's shards into the whole gate's JUnit,
    /// summary and exit code.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' --out directories (or their gate.json files).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Write the merged JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the merged Markdown summary here (it is also printed on stdout).
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// An earlier run directory or results.json, compared with all shards' runs together.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Write the merged junit.xml, summary.md and gate.json into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Where a gate's results go.
struct Outputs<'a> {
    junit: Option<&'a PathBuf>,
    summary: Option<&'a PathBuf>,
    out: Option<&'a PathBuf>,
    baseline: Option<serde_json::Value>,
}

pub fn run(args: GateArgs) -> anyhow::Result<u8> {
    if let Some(GateCommand::Merge(m)) = args.merge {
        return merge(m);
    }
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
    let total = specs.len();
    let fingerprint = shard::fingerprint(&specs);
    let mine: Vec<(usize, gate::config::RunSpec)> = match args.shard {
        Some(sh) => sh.select(specs),
        None => specs.into_iter().enumerate().collect(),
    };
    if let Some(sh) = args.shard {
        crate::term::note!(
            "gate: shard {}/{}: {} of the gate's {total} runs",
            sh.k,
            sh.n,
            mine.len()
        );
    }
    let mut outcomes: Vec<(usize, RunOutcome)> = Vec::with_capacity(mine.len());
    for (i, (index, spec)) in mine.iter().enumerate() {
        crate::term::note!(
            "gate: run {}/{}: {} (seed {})",
            i + 1,
            mine.len(),
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
        outcomes.push((*index, o));
    }
    let file = ShardFile::new(
        fingerprint,
        args.shard,
        total,
        cfg.gate.max_regression_pct,
        &outcomes,
    );
    let outcomes: Vec<RunOutcome> = outcomes.into_iter().map(|(_, o)| o).collect();
    finish(
        &outcomes,
        cfg.gate.max_regression_pct,
        &file,
        Outputs {
            junit: args.junit.as_ref(),
            summary: args.summary.as_ref(),
            out: args.out.as_ref(),
            baseline: base,
        },
    )
}

/// `faultline gate merge DIR...`: the whole gate from its shards.
fn merge(args: MergeArgs) -> anyhow::Result<u8> {
    let mut files = Vec::new();
    for d in &args.dirs {
        let p = if d.is_dir() {
            d.join(shard::FILE)
        } else {
            d.clone()
        };
        let text = std::fs::read_to_string(&p).map_err(|e| {
            user_error(format!(
                "failed to read {}: {e} (give the --out directory of each shard)",
                p.display()
            ))
        })?;
        let f: ShardFile = serde_json::from_str(&text)
            .map_err(|e| user_error(format!("{}: not a shard's gate.json: {e}", p.display())))?;
        files.push((p.display().to_string(), f));
    }
    let (outcomes, pct) = shard::merge(&files).map_err(user_error)?;
    let gate_id = files[0].1.gate.clone();
    let base = args
        .baseline
        .as_deref()
        .map(baseline::load)
        .transpose()
        .map_err(user_error)?;
    let indexed: Vec<(usize, RunOutcome)> = outcomes.iter().cloned().enumerate().collect();
    let file = ShardFile::new(gate_id, None, outcomes.len(), pct, &indexed);
    finish(
        &outcomes,
        pct,
        &file,
        Outputs {
            junit: args.junit.as_ref(),
            summary: args.summary.as_ref(),
            out: args.out.as_ref(),
            baseline: base,
        },
    )
}

/// Summary, JUnit and exit code of a gate's runs (a shard's, a whole gate's, a merge's).
fn finish(
    outcomes: &[RunOutcome],
    max_regression_pct: f64,
    file: &ShardFile,
    to: Outputs<'_>,
) -> anyhow::Result<u8> {
    let base = to.baseline;
    let regressions = match &base {
        Some(b) => {
            let results: Vec<&serde_json::Value> =
                outcomes.iter().filter_map(|o| o.results.as_ref()).collect();
            baseline::compare(b, &results, max_regression_pct)
        }
        None => Vec::new(),
    };
    let all_valid = outcomes.iter().all(|o| o.verdict == Verdict::Valid);
    let passed = all_valid && regressions.is_empty();

    let md = summary::render(outcomes, &regressions, passed);
    print!("{md}");
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
    let xml = junit::render("faultline-gate", outcomes, &extra);
    let write = |p: &std::path::Path, bytes: &[u8]| {
        runner::store::write_file(p, bytes)
            .with_context(|| format!("failed to write {}", p.display()))
    };
    if let Some(p) = to.summary {
        write(p, md.as_bytes())?;
    }
    if let Some(p) = to.junit {
        write(p, xml.as_bytes())?;
    }
    if let Some(dir) = to.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        write(&dir.join("summary.md"), md.as_bytes())?;
        write(&dir.join("junit.xml"), xml.as_bytes())?;
        write(
            &dir.join(shard::FILE),
            serde_json::to_string_pretty(file)?.as_bytes(),
        )?;
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
