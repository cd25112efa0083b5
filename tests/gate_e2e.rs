//! `faultline gate` and `faultline replay` end to end on a local cluster (root): the correct
//! leaderkv passes a 3-seed gate with default flags and JUnit, the same gate with
//! `--bug no-fencing` fails with the anomaly in the JUnit failure text, and a replay
//! reproduces a run's fault schedule.
//! Without root these print `SKIPPED (needs root)` unless `FAULTLINE_REQUIRE_PRIVILEGED=1`.

mod common;

use std::path::Path;

use common::{Down, faultline, text};

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

/// `(test case, verdict)` of a JUnit file, in order: `valid`, `failure:TYPE` or `error:TYPE`.
fn junit_verdicts(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for case in xml.split("<testcase ").skip(1) {
        let name = case
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_owned();
        let body = case.split("</testcase>").next().unwrap_or_default();
        let kind = |tag: &str| {
            body.split(&format!("<{tag} "))
                .nth(1)
                .and_then(|r| r.split("type=\"").nth(1))
                .and_then(|r| r.split('"').next())
                .map(|t| format!("{tag}:{t}"))
        };
        let verdict = kind("failure")
            .or_else(|| kind("error"))
            .unwrap_or_else(|| "valid".into());
        out.push((name, verdict));
    }
    out
}

/// A gate split in 3 shards (each with its --out directory, as three CI jobs would run it)
/// and merged gives the unsplit gate's JUnit verdicts and exit code. The matrix has a valid
/// cell, a cell whose reads look at the wrong key (every acknowledged add lost: invalid) and
/// one whose system never starts (error), 2 seeds each, on a 1-node cluster for speed.
#[test]
fn a_gate_split_in_three_shards_and_merged_is_the_unsplit_gate() {
    if !control::prereq::privileged_or_skip("a_gate_split_in_three_shards_and_merged", false) {
        return;
    }
    let _down = Down("flg3-");
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systems/leaderkv.toml"),
    )
    .unwrap();
    let lossy = dir.path().join("lossy.toml");
    let read_set = r#"read_set = ["SMEMBERS", "s"]"#;
    assert!(base.contains(read_set));
    std::fs::write(
        &lossy,
        base.replace(read_set, r#"read_set = ["SMEMBERS", "elsewhere"]"#),
    )
    .unwrap();
    let broken = dir.path().join("broken.toml");
    let start = base
        .lines()
        .find(|l| l.starts_with("start = "))
        .unwrap()
        .to_owned();
    std::fs::write(&broken, base.replace(&start, r#"start = "exit 3""#)).unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "[gate]\nruns = 2\nargs = [\"--nodes\", \"1\", \"--time-limit\", \"3s\", \"--nemesis\", \
             \"none\", \"--workload\", \"set\", \"--prefix\", \"flg3-\", \"--subnet\", \
             \"10.77.114.0/24\"]\n\n[[matrix]]\nname = \"ok\"\n\n[[matrix]]\nname = \"lossy\"\n\
             args = [\"--system-file\", {lossy:?}]\n\n[[matrix]]\nname = \"broken\"\n\
             args = [\"--system-file\", {broken:?}]\n"
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let run = |extra: &[&str]| {
        let o = faultline()
            .args(["-q", "gate", "--config", config.to_str().unwrap()])
            .arg("--store")
            .arg(&store)
            .args(extra)
            .output()
            .unwrap();
        (o.status.code().unwrap_or(-1), text(&o))
    };
    let whole = dir.path().join("whole");
    let (code, out) = run(&["--out", whole.to_str().unwrap()]);
    let want = junit_verdicts(&std::fs::read_to_string(whole.join("junit.xml")).unwrap());
    assert_eq!(code, 1, "{out}");
    assert_eq!(want.len(), 6, "{want:?}");
    let count = |v: &str| want.iter().filter(|(_, x)| x.starts_with(v)).count();
    assert_eq!(
        (count("valid"), count("failure"), count("error")),
        (2, 2, 2),
        "{want:?}"
    );

    let mut outs = Vec::new();
    for k in 1..=3 {
        let d = dir.path().join(format!("shard-{k}"));
        let (code, out) = run(&["--shard", &format!("{k}/3"), "--out", d.to_str().unwrap()]);
        assert!([1, 255].contains(&code), "shard {k}: {out}");
        let mine = junit_verdicts(&std::fs::read_to_string(d.join("junit.xml")).unwrap());
        assert_eq!(mine.len(), 2, "shard {k} runs 2 of 6: {mine:?}");
        outs.push(d);
    }
    let merged = dir.path().join("merged.xml");
    // In any order: the merge puts the runs back in the gate's.
    let o = faultline()
        .args(["gate", "merge", "--junit", merged.to_str().unwrap()])
        .args([&outs[2], &outs[0], &outs[1]])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(code), "{}", text(&o));
    let got = junit_verdicts(&std::fs::read_to_string(&merged).unwrap());
    assert_eq!(got, want);
    // A missing shard is refused, not merged into a smaller green gate.
    let o = faultline()
        .args(["gate", "merge"])
        .args([&outs[0], &outs[1]])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
    assert!(text(&o).contains("shard 3/3 is missing"), "{}", text(&o));
}
