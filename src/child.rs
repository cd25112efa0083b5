//! Running one `faultline test` as a child process of this binary, and reading what it stored.
//! The gate, replay and shrink talk to runs only through the command line and the store, so
//! they test exactly what a user would run.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;

pub use gate::outcome::{RunOutcome, Verdict, anomaly_types};

/// Where `<store>/latest` points now, if anywhere.
pub fn latest(store: &Path) -> Option<PathBuf> {
    let link = store.join("latest");
    let target = std::fs::read_link(&link).ok()?;
    Some(if target.is_absolute() {
        target
    } else {
        store.join(target)
    })
}

/// Runs `faultline test ARGS --seed SEED --store STORE`; the child's output goes to stderr
/// so the caller's stdout carries only its own results.
pub fn run_test(
    name: &str,
    args: &[String],
    seed: u64,
    store: &Path,
) -> anyhow::Result<RunOutcome> {
    let exe = std::env::current_exe().context("failed to find the faultline executable")?;
    let before = latest(store);
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("failed to duplicate stderr")?;
    let started = Instant::now();
    let mut cmd = Command::new(&exe);
    if crate::term::quiet() {
        cmd.arg("-q");
    }
    let status = cmd
        .arg("test")
        .args(args)
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--store")
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .status()
        .with_context(|| format!("failed to run {} test", exe.display()))?;
    let duration = started.elapsed();
    let after = latest(store);
    let run_dir = after.filter(|a| Some(a) != before.as_ref());
    let results = run_dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("results.json")).ok())
        .and_then(|t| serde_json::from_str(&t).ok());
    Ok(RunOutcome {
        name: name.to_owned(),
        seed,
        verdict: Verdict::from_exit(status.code()),
        exit: status.code(),
        run_dir,
        results,
        duration,
    })
}
