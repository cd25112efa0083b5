//! A stored run built by hand for the report and serve tests: `<store>/demo/<stamp>/` with
//! the synthetic history of `reports::sample` (a lost write, a reused id, a dual-leader
//! window, `<script>` values), `results.json` from the checker suite of a run over it, `test.json`
//! and a node log.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use checkers::suite::Model;

pub const STAMP: &str = "20260101T000000.000Z";

/// Creates the run under `store` and returns its directory.
pub fn make(store: &Path) -> PathBuf {
    let dir = store.join("demo").join(STAMP);
    fs::create_dir_all(dir.join("nodes/n1")).unwrap();
    let ops = reports::sample::demo(4000, true);
    let mut w = history::jsonl::Writer::new(Vec::new());
    for op in &ops {
        w.write(op).unwrap();
    }
    fs::write(dir.join("history.jsonl"), w.into_inner()).unwrap();
    let h = history::History::new(ops).unwrap();
    let suite = checkers::suite::Suite::for_run(vec![Model::Set, Model::UniqueIds]);
    let results = suite.run(&h);
    let json = checkers::result::results_json(&results);
    fs::write(
        dir.join("results.json"),
        serde_json::to_vec_pretty(&json).unwrap(),
    )
    .unwrap();
    let test = serde_json::json!({
        "seed": 1234,
        "argv": ["faultline", "test", "--system", "leaderkv", "--workload", "set",
                 "--nemesis", "partition", "--bug", "no-step-down", "--seed", "1234"],
    });
    fs::write(dir.join("test.json"), test.to_string()).unwrap();
    fs::write(
        dir.join("nodes/n1/leaderkv.log"),
        "n1 <script>alert(1)</script> started\n",
    )
    .unwrap();
    dir
}

/// Runs `faultline report DIR` and returns the report's path.
pub fn report(dir: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("report")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "faultline report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(path, dir.join("report.html"));
    path
}
