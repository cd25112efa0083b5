//! `faultline gate` and `faultline replay` end to end on a local cluster (root): the correct
//! leaderkv passes a 3-seed gate with default flags and JUnit, the same gate with
//! `--bug no-fencing` fails with the anomaly in the JUnit failure text, and a replay
//! reproduces a run's fault schedule.
//! Without root these print `SKIPPED (needs root)` unless `FAULTLINE_REQUIRE_PRIVILEGED=1`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, faultline, text};

/// Brings the cluster of `prefix` down when dropped, also when the test fails.
struct Down(&'static str);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["cluster", "down", "--prefix", self.0])
            .output();
    }
}

/// Default flags (5 nodes, 10 clients, the default nemesis) but the cluster's name and a
/// 20 s time limit: the gate a user would write.
fn test_args(prefix: &str, subnet: &str) -> Vec<String> {
    [
        "--prefix",
        prefix,
        "--subnet",
        subnet,
        "--time-limit",
        "20s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn gate(
    store: &Path,
    junit: &Path,
    extra: &[&str],
    prefix: &str,
    subnet: &str,
) -> (i32, String, String) {
    let o = faultline()
        .args(["gate", "--runs", "3", "--seed-base", "1", "--junit"])
        .arg(junit)
        .arg("--store")
        .arg(store)
        .arg("--")
        .args(test_args(prefix, subnet))
        .args(extra)
        .output()
        .expect("run faultline gate");
    let xml = std::fs::read_to_string(junit).unwrap_or_default();
    (o.status.code().unwrap_or(-1), text(&o), xml)
}

#[test]
fn gate_passes_the_correct_build_and_fails_no_fencing() {
    if !control::prereq::privileged_or_skip(
        "gate_passes_the_correct_build_and_fails_no_fencing",
        false,
    ) {
        return;
    }
    let _down = Down("flg1-");
    let dir = tempfile::tempdir().unwrap();

    let junit = dir.path().join("correct.xml");
    let (code, out, xml) = gate(
        &dir.path().join("store"),
        &junit,
        &[],
        "flg1-",
        "10.77.86.0/24",
    );
    assert_eq!(code, 0, "the correct build must pass the gate:\n{out}");
    assert!(
        xml.contains("tests=\"3\" failures=\"0\" errors=\"0\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert!(out.contains("faultline gate: passed"), "{out}");

    // No schedule file: the default nemesis must make a build without fencing fail.
    let junit = dir.path().join("no-fencing.xml");
    let (code, out, xml) = gate(
        &dir.path().join("store"),
        &junit,
        &["--bug", "no-fencing"],
        "flg1-",
        "10.77.86.0/24",
    );
    assert_eq!(code, 1, "no-fencing must fail the gate:\n{out}");
    assert!(xml.contains("<failure message=\"anomalies: "), "{xml}");
    assert!(
        xml.contains("dual-leader"),
        "the JUnit failure names the anomaly:\n{xml}"
    );
    assert!(out.contains("faultline gate: FAILED"), "{out}");
}

#[test]
fn replay_reproduces_the_recorded_schedule() {
    if !control::prereq::privileged_or_skip("replay_reproduces_the_recorded_schedule", false) {
        return;
    }
    let _down = Down("flg2-");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // The default nemesis: what it played is replayed as recorded.
    let args = test_args("flg2-", "10.77.87.0/24");
    let o = faultline()
        .arg("test")
        .args(&args)
        .args(["--seed", "7", "--store"])
        .arg(&store)
        .output()
        .expect("run faultline test");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let run = std::fs::read_link(store.join("latest")).unwrap();
    let run = store.join(run);
    let o = faultline()
        .arg("replay")
        .arg(&run)
        .output()
        .expect("run faultline replay");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("faults: as recorded"), "{out}");
    assert!(out.contains("(seed 7)"), "{out}");
}
