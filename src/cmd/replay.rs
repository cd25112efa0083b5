//! `faultline replay RUN_DIR`: run a stored test again with its seed, options and the exact
//! fault schedule it recorded (targets pinned to the nodes actually hit), then say whether
//! the anomaly came back and whether the faults happened as recorded.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::child::{self, RunOutcome};
use crate::exit::{self};
use crate::stored::{load, store_of};
use gate::replay;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A stored run directory (with test.json, schedule.json and history.jsonl).
    #[arg(value_parser = crate::stored::run_path)]
    pub run_dir: PathBuf,
    /// Where the replay is stored (default: the original's store).
    #[arg(long, env = crate::stored::STORE_ENV)]
    pub store: Option<PathBuf>,
    /// How far apart the nemesis ops of the two runs may be, in ms.
    #[arg(long, default_value_t = 100.0)]
    pub tolerance_ms: f64,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<u8> {
    let stored = load(&args.run_dir, &replay::REPLACED)?;
    let pinned = replay::pin(&stored.schedule, &stored.history);
    let dir = tempfile::tempdir().context("failed to make a temporary directory")?;
    let schedule_file = dir.path().join("schedule.json");
    pinned
        .save(&schedule_file)
        .context("failed to write the pinned schedule")?;
    let store = args.store.unwrap_or_else(|| store_of(&args.run_dir));
    let mut test_args = stored.args.clone();
    test_args.extend(["--schedule".into(), schedule_file.display().to_string()]);
    let o: RunOutcome = child::run_test("replay", &test_args, stored.seed, &store)?;
    let Some(new_dir) = &o.run_dir else {
        anyhow::bail!(
            "the replay did not store a run (exit {:?}); seed {}",
            o.exit,
            stored.seed
        );
    };
    let (new_history, _) = history::load(&new_dir.join("history.jsonl"), None)
        .context("failed to read the replay's history")?;
    let diffs = replay::compare(&stored.history, &new_history, args.tolerance_ms);
    let before = child::anomaly_types(&stored.results);
    let after = o.anomaly_types();
    let came_back: Vec<&String> = before.iter().filter(|t| after.contains(t)).collect();
    println!(
        "replay of {} (seed {})",
        args.run_dir.display(),
        stored.seed
    );
    println!("  stored at {}", new_dir.display());
    println!("  verdict: {}", o.verdict.as_str());
    if before.is_empty() {
        println!("  the original run had no anomaly");
    } else if came_back.len() == before.len() {
        println!("  the anomaly came back: {}", before.join(", "));
    } else {
        let missing: Vec<&String> = before.iter().filter(|t| !after.contains(t)).collect();
        let missing: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        println!(
            "  the anomaly did not come back: {} missing",
            missing.join(", ")
        );
    }
    if diffs.is_empty() {
        println!(
            "  faults: as recorded ({} nemesis ops, kind, target and order equal, times within {} ms)",
            replay::steps(&new_history).len(),
            args.tolerance_ms
        );
    } else {
        println!("  faults: NOT as recorded:");
        for d in &diffs {
            println!("    {d}");
        }
    }
    Ok(exit::for_validity(match o.verdict {
        child::Verdict::Valid => history::Validity::Valid,
        child::Verdict::Invalid => history::Validity::Invalid,
        child::Verdict::Unknown => history::Validity::Unknown,
        child::Verdict::Error => return Ok(exit::HARNESS),
    }))
}
