//! Every shared test history parses and pairs (verdicts are the checkers' tests).

use std::path::{Path, PathBuf};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()))
    {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("edn" | "txt")
        ) {
            out.push(path);
        }
    }
    out
}

#[test]
fn every_shared_history_reads() {
    let all = files(&testdata());
    assert!(
        all.len() >= 127,
        "expected the 127 shared histories, found {}",
        all.len()
    );
    for path in all {
        let (h, info) = history::load(&path, None)
            .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
        assert!(!h.is_empty(), "{} read as empty", path.display());
        assert!(!info.truncated, "{} read as truncated", path.display());
        // One Knossos file (mongodb-v0-ack-rollback-.edn) holds only nemesis ops: legal.
        assert!(h.client_pairs().count() > 0 || h.nemesis_ops().count() > 0);
    }
}
