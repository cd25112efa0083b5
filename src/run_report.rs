//! The HTML report of a stored run: read its files (`history.jsonl`, `results.json` or the
//! checkers re-run, `test.json`, the node logs) and write `report.html` beside them. Used by
//! `faultline report` and after every `faultline test`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value as Json;

use crate::exit::user_error;

/// Writes `dir/report.html` and returns its path (the runner calls this after each run).
pub fn write_report(dir: &Path) -> anyhow::Result<PathBuf> {
    let hist_path = dir.join("history.jsonl");
    if !hist_path.is_file() {
        return Err(user_error(format!(
            "{}: no history.jsonl (is this a run directory?)",
            dir.display()
        )));
    }
    let (history, _) = history::load(&hist_path, Some(history::Format::Jsonl))
        .map_err(|e| user_error(format!("failed to read {}: {e}", hist_path.display())))?;
    let results = match read_json(&dir.join("results.json"))? {
        Some(r) if r.get("valid").is_some() => r,
        Some(_) => {
            return Err(user_error(format!(
                "{}: not a faultline results file (no \"valid\" in it); remove it and the                  report re-runs the checkers on the history",
                dir.join("results.json").display()
            )));
        }
        None => rerun_checkers(&history, run_consistency(dir)),
    };
    let test = read_json(&dir.join("test.json"))?;
    let run = reports::RunData {
        name: run_name(dir),
        history: &history,
        results,
        test,
        node_logs: node_logs(dir),
    };
    let html = reports::render(&run);
    let out = dir.join("report.html");
    runner::store::write_file(&out, html.as_bytes())
        .with_context(|| format!("failed to write {}", out.display()))?;
    Ok(out)
}

fn read_json(path: &Path) -> anyhow::Result<Option<Json>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| user_error(format!("failed to parse {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
    }
}

/// The checkers the history's own ops call for (the suite `check` infers, with stats), with
/// fault context added to their anomalies; list-append against `consistency`.
pub fn rerun_checkers(
    history: &history::History,
    consistency: checkers::list_append::Consistency,
) -> Json {
    let mut suite = checkers::suite::Suite::inferred(&checkers::suite::Census::of(history));
    suite.consistency = consistency;
    checkers::result::results_json(&suite.run(history))
}

/// The list-append model a stored faultline run was checked against (by where its reads
/// went, `test.json`'s `read_from`); strict-serializable for anything else.
pub fn run_consistency(path: &Path) -> checkers::list_append::Consistency {
    let read_from = std::fs::read_to_string(path.join("test.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|j| j["read_from"].as_str()?.parse::<workloads::ReadFrom>().ok())
        .unwrap_or_default();
    runner::checks::consistency(read_from)
}

/// `<test-name>/<timestamp>` when the run sits in a store, else the directory's name.
fn run_name(dir: &Path) -> String {
    let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut parts: Vec<String> = abs
        .iter()
        .rev()
        .take(2)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    parts.reverse();
    parts.join("/")
}

/// Files under `nodes/<node>/` (two levels), as links relative to the run directory.
fn node_logs(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(nodes) = fs::read_dir(dir.join("nodes")) else {
        return out;
    };
    let mut nodes: Vec<_> = nodes.flatten().collect();
    nodes.sort_by_key(|e| e.file_name());
    for n in nodes {
        let node = n.file_name().to_string_lossy().into_owned();
        let Ok(files) = fs::read_dir(n.path()) else {
            continue;
        };
        let mut files: Vec<_> = files.flatten().filter(|f| f.path().is_file()).collect();
        files.sort_by_key(|e| e.file_name());
        for f in files {
            let name = f.file_name().to_string_lossy().into_owned();
            out.push((format!("{node}/{name}"), format!("nodes/{node}/{name}")));
        }
    }
    out
}
