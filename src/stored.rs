//! A stored run as replay and shrink read it back: how to run its test again (`--spec` and
//! its test.json; for runs stored before specs, the original arguments less the ones a
//! replay replaces), the seed, the schedule it played, its history and results.

use std::path::{Path, PathBuf};

use crate::exit::user_error;
use gate::replay;

/// The environment variable every command that stores or reads runs takes the store from
/// (`--store` wins).
pub const STORE_ENV: &str = "FAULTLINE_STORE";

/// The store when no `--store` is given: `$FAULTLINE_STORE`, else `store`.
pub fn default_store() -> PathBuf {
    std::env::var_os(STORE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("store"))
}

/// A run directory the user named: the path itself when it exists, else the same relative
/// path inside the store (`faultline check latest`, `faultline report my-test/latest`).
pub fn resolve_run(path: &Path) -> PathBuf {
    if path.exists() || path.is_absolute() {
        return path.to_path_buf();
    }
    let in_store = default_store().join(path);
    if in_store.exists() {
        in_store
    } else {
        path.to_path_buf()
    }
}

/// [`resolve_run`] as a clap value parser.
pub fn run_path(s: &str) -> Result<PathBuf, String> {
    Ok(resolve_run(Path::new(s)))
}

/// What a stored run holds that a replay needs.
pub struct Stored {
    pub args: Vec<String>,
    pub seed: u64,
    pub schedule: nemesis::Schedule,
    pub history: history::History,
    pub results: serde_json::Value,
}

pub fn load(run_dir: &Path, replaced: &[&str]) -> anyhow::Result<Stored> {
    let read = |name: &str| -> anyhow::Result<String> {
        let p = run_dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| {
            user_error(format!(
                "failed to read {}: {e} (give a run directory made by faultline test)",
                p.display()
            ))
        })
    };
    let test: serde_json::Value = serde_json::from_str(&read("test.json")?)
        .map_err(|e| user_error(format!("{}/test.json: {e}", run_dir.display())))?;
    let args = if test.get("spec").is_some() {
        // The typed spec: the child reads it back; the replay's overrides are flags it allows.
        // Canonical: `store/latest` moves as soon as the child stores its own run.
        let p = run_dir
            .join("test.json")
            .canonicalize()
            .unwrap_or_else(|_| run_dir.join("test.json"));
        vec!["--spec".to_owned(), p.display().to_string()]
    } else {
        // A run stored before specs: its command line, less what the replay replaces.
        let argv: Vec<String> = test["argv"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        replay::test_args(&argv, replaced)
            .map_err(|e| user_error(format!("{}/test.json: {e}", run_dir.display())))?
    };
    let seed = test["seed"]
        .as_u64()
        .ok_or_else(|| user_error(format!("{}/test.json has no seed", run_dir.display())))?;
    let schedule = nemesis::Schedule::parse(&read("schedule.json")?)
        .map_err(|e| user_error(format!("{}/schedule.json: {e}", run_dir.display())))?;
    let (history, _) = history::load(&run_dir.join("history.jsonl"), None)
        .map_err(|e| user_error(e.to_string()))?;
    let results = serde_json::from_str(&read("results.json").unwrap_or_default())
        .unwrap_or(serde_json::Value::Null);
    Ok(Stored {
        args,
        seed,
        schedule,
        history,
        results,
    })
}

/// The store a run directory lives in (`<store>/<name>/<timestamp>`).
pub fn store_of(run_dir: &Path) -> PathBuf {
    run_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("store"))
}
