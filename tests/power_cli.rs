//! `faultline power`: bad arguments exit 254 without running anything (no root needed), and
//! on a local cluster (root) a one-seed matrix of the correct build and `no-fencing` prints
//! the table and stores `power.json` with what each run found.

mod common;

use common::{faultline, text};

#[test]
fn bad_power_arguments_exit_254_naming_the_problem() {
    let store = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["--builds", "correct,bogus"], "unknown build \"bogus\""),
        (vec!["--runs", "0"], "--runs must be at least 1"),
        (
            vec!["--", "--bug", "no-fencing"],
            "--bug is set by faultline power",
        ),
        (vec!["--", "--seed=3"], "--seed is set by faultline power"),
    ] {
        let o = faultline()
            .arg("power")
            .args(&args)
            .arg("--store")
            .arg(store.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(254), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    assert!(!store.path().join("power.json").exists());
}

#[test]
fn power_runs_each_build_and_tables_what_it_caught() {
    if !control::prereq::privileged_or_skip(
        "power_runs_each_build_and_tables_what_it_caught",
        false,
    ) {
        return;
    }
    let c = common::Cluster::with_defaults("flw1-", "10.77.88.0/24");
    let o = faultline()
        .args([
            "power",
            "--runs",
            "1",
            "--seed-base",
            "3",
            "--builds",
            "correct,no-fencing",
        ])
        .arg("--store")
        .arg(c.store.path())
        .args([
            "--",
            "--prefix",
            c.prefix,
            "--subnet",
            c.subnet,
            "--time-limit",
            "20s",
        ])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("detection power: seeds 3..3"), "{stdout}");
    let row = |b: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(b))
            .unwrap_or_else(|| panic!("no {b} row: {stdout}"))
            .to_owned()
    };
    assert!(row("correct").contains(" 1/1 "), "{stdout}");
    assert!(row("no-fencing").contains("dual-leader"), "{stdout}");
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.store.path().join("power.json")).unwrap())
            .unwrap();
    let builds = table["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[0]["build"], "correct");
    assert_eq!(builds[0]["false_alarms"], 0, "{table}");
    assert_eq!(builds[1]["build"], "no-fencing");
    assert_eq!(builds[1]["caught"], 1, "{table}");
    assert!(
        builds[1]["median_detection_s"].as_f64().unwrap() > 0.0,
        "{table}"
    );
    assert_eq!(
        builds[1]["harness_errors"],
        serde_json::json!([]),
        "{table}"
    );
}
