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
    // A gate or power run stopped with SIGTERM (or killed) must not leave its current test
    // running: that test would go on acting on the cluster the next one deploys under the
    // same name (the same seed's clients adding the same values to it). The child gets
    // SIGTERM when this process dies, and heals and stops as on any first signal.
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid are async-signal-safe; nothing else runs
    // between fork and exec.
    let parent = std::process::id();
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the prctl took effect: stop now.
            if libc::getppid() as u32 != parent {
                libc::_exit(143);
            }
            Ok(())
        });
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
