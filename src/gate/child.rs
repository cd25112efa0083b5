//! Running one `faultline test` as a child process of this binary, and reading what it stored.
//! The gate, replay and shrink talk to runs only through the command line and the store, so
//! they test exactly what a user would run.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value as Json;

/// The verdict of one run, as the gate sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
    /// The run could not be carried out (bad arguments, harness error, killed).
    Error,
}

impl Verdict {
    pub fn from_exit(code: Option<i32>) -> Verdict {
        match code {
            Some(0) => Verdict::Valid,
            Some(1) => Verdict::Invalid,
            Some(2) => Verdict::Unknown,
            _ => Verdict::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::Error => "error",
        }
    }
}

/// What one run left behind.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub name: String,
    pub seed: u64,
    pub verdict: Verdict,
    pub exit: Option<i32>,
    pub run_dir: Option<PathBuf>,
    /// `results.json`, when the run got that far.
    pub results: Option<Json>,
    pub duration: Duration,
}

impl RunOutcome {
    pub fn anomaly_types(&self) -> Vec<String> {
        self.results.as_ref().map(anomaly_types).unwrap_or_default()
    }

    /// One line per anomaly (its explanation), the first `limit` of them.
    pub fn anomaly_lines(&self, limit: usize) -> Vec<String> {
        let Some(Json::Object(results)) = &self.results else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, r) in results {
            for a in r["anomalies"].as_array().into_iter().flatten() {
                if out.len() == limit {
                    return out;
                }
                out.push(format!(
                    "{} [{name}]: {}",
                    a["type"].as_str().unwrap_or("?"),
                    a["explanation"].as_str().unwrap_or("")
                ));
            }
        }
        out
    }

    /// The run's HTML report, when it wrote one.
    pub fn report(&self) -> Option<PathBuf> {
        self.run_dir
            .as_ref()
            .map(|d| d.join("report.html"))
            .filter(|p| p.is_file())
    }
}

/// The anomaly classes a `results.json` names.
pub fn anomaly_types(results: &Json) -> Vec<String> {
    results["anomaly_types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

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
    let status = Command::new(&exe)
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
