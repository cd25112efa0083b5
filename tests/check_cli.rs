//! `faultline check` end to end: every shared history with the verdict its README states,
//! exit codes, one-line errors for bad input, JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod stored_run;

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("failed to run faultline")
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited by signal")
}

#[test]
fn knossos_cas_register_verdicts() {
    let root = testdata().join("knossos/cas-register");
    let (mut good, mut bad) = (0, 0);
    for (dir, want) in [("good", 0), ("bad", 1)] {
        for f in files(&root.join(dir)) {
            let out = faultline(&[
                "check",
                f.to_str().unwrap(),
                "--initial",
                "0",
                "--model",
                "cas-register",
            ]);
            assert_eq!(
                code(&out),
                want,
                "{}: {}{}",
                f.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if want == 0 { good += 1 } else { bad += 1 }
        }
    }
    assert_eq!((good, bad), (113, 7));
}

#[test]
fn multi_register_and_porcupine_verdicts() {
    let f = testdata().join("knossos/multi-register/good/multi-register.edn");
    let out = faultline(&["check", f.to_str().unwrap(), "--initial", "{:x 0 :y 0}"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let mut n = 0;
    for f in files(&testdata().join("porcupine-kv")) {
        let name = f.file_name().unwrap().to_str().unwrap().to_owned();
        let want = if name.ends_with("-ok.txt") { 0 } else { 1 };
        // The model is inferred from get/put/append.
        let out = faultline(&["check", f.to_str().unwrap()]);
        assert_eq!(
            code(&out),
            want,
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn pinned_failing_op_is_reported() {
    let f = testdata().join("knossos/cas-register/bad/rethink-fail-minimal.edn");
    let out = faultline(&["check", f.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["anomaly_types"], serde_json::json!(["nonlinearizable"]));
    let a = &v["linearizable"]["anomalies"][0];
    // `{:process 1 :type :ok :f :read :value 3}` is the 5th op (index 4).
    assert!(
        a["ops"].as_array().unwrap().contains(&serde_json::json!(4)),
        "{a}"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn set_and_ids_from_jsonl_with_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(
        dir.path(),
        "h.jsonl",
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"add","value":1,"node":"n1"}
{"index":1,"time":2,"process":0,"type":"ok","f":"add","value":1,"node":"n1"}
{"index":2,"time":3,"process":1,"type":"invoke","f":"incr","value":null}
{"index":3,"time":4,"process":1,"type":"ok","f":"incr","value":7}
{"index":4,"time":5,"process":0,"type":"invoke","f":"read","value":null}
{"index":5,"time":6,"process":0,"type":"ok","f":"read","value":[1]}
"#,
    );
    let out = faultline(&["check", &h, "--json"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["set"]["stats"]["stable"], 1);
    assert_eq!(v["unique-ids"]["valid"], true);

    // The same history with the add missing from the read: lost, exit 1.
    let lost = std::fs::read_to_string(&h)
        .unwrap()
        .replace("\"value\":[1]", "\"value\":[]");
    let h2 = write(dir.path(), "lost.jsonl", &lost);
    let out = faultline(&["check", &h2]);
    assert_eq!(code(&out), 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("lost-write") && text.contains("add 1 was acknowledged"),
        "{text}"
    );

    // A run directory works too.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::copy(&h2, run.join("history.jsonl")).unwrap();
    assert_eq!(code(&faultline(&["check", run.to_str().unwrap()])), 1);
}

#[test]
fn truncated_history_is_checked_up_to_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(
        dir.path(),
        "cut.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"add\",\"value\":1}\n{\"process\":0,\"type\":\"ok\",\"f\":\"add\",\"value\":1}\n{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":[1]}\n{\"process\":1,\"type\":\"inv",
    );
    let out = faultline(&["check", &h, "--json"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["history"]["truncated"], true);
}

#[test]
fn bad_input_is_one_line_and_exit_254() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "bad.jsonl",
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"add\",\"value\":1}\n{\"process\":0,\"type\":\"done\",\"f\":\"add\"}\n",
            "bad.jsonl:2: unknown op type",
        ),
        (
            "bad.edn",
            "[{:process 0 :type :invoke :f :read}\n {:process 0 :type :ok :f :read :value [1 2}]",
            "bad.edn:2: expected ']'",
        ),
        (
            "pair.jsonl",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"add\",\"value\":1}\n",
            "completes (ok) an op it never invoked",
        ),
        ("empty.jsonl", "", "found no ops to check"),
    ];
    for (name, text, want) in cases {
        let p = write(dir.path(), name, text);
        let out = faultline(&["check", &p]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 254, "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let out = faultline(&["check", "/nonexistent/h.jsonl"]);
    assert_eq!(code(&out), 254);
    let out = faultline(&["check", "x.jsonl", "--model", "nope"]);
    assert_eq!(code(&out), 254);
    let out = faultline(&["check", "x.jsonl", "--initial"]);
    assert_eq!(code(&out), 254);
}

#[test]
fn a_duration_too_long_or_malformed_is_exit_254_in_every_command() {
    for args in [
        &["check", "x.jsonl", "--budget", "99999999999999999999h"][..],
        &["test", "--time-limit", "1e400s"],
        &["test", "--nemesis-interval=-1s"],
        &["exec", "--timeout", "5 parsecs", "true"],
        &["shrink", "x", "--budget", "inf"],
    ] {
        let out = faultline(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 254, "{args:?}: {err}");
        assert!(err.contains("bad duration"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_spec_is_refused_in_one_line_when_missing_bad_or_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("test.json");
    std::fs::write(&spec, r#"{"spec": {"nodes": 3, "time_limit": "10s"}}"#).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"spec": {"nodes": "three"}}"#).unwrap();
    let (spec, bad) = (spec.display().to_string(), bad.display().to_string());
    for (args, says) in [
        (
            vec!["test", "--spec", "/nonexistent/test.json"],
            "failed to read the spec",
        ),
        (vec!["test", "--spec", &bad], "bad spec"),
        (
            vec!["test", "--spec", &spec, "--nodes", "4"],
            "--nodes cannot be given with --spec",
        ),
        (
            vec!["test", "--spec", &spec, "--bug=no-fencing"],
            "--bug cannot be given with --spec",
        ),
    ] {
        let out = faultline(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 254, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn systems_are_listed_shown_and_their_limits_refused_before_any_node_is_touched() {
    let list = faultline(&["system", "list"]);
    assert_eq!(code(&list), 0);
    let text = String::from_utf8_lossy(&list.stdout);
    for name in ["leaderkv", "redis-sentinel", "etcd", "postgres-patroni"] {
        assert!(
            text.contains(&format!("faultline system show {name}")),
            "{text}"
        );
    }
    let show = faultline(&["system", "show", "leaderkv"]);
    assert_eq!(code(&show), 0);
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systems/leaderkv.toml"),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&show.stdout), shipped);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systems/leaderkv.toml");
    let file = file.to_str().unwrap();
    for (args, says) in [
        (vec!["system", "show", "mysql"], "unknown system \"mysql\""),
        (
            vec!["test", "--system", "mysql"],
            "unknown system \"mysql\"",
        ),
        (
            vec![
                "test",
                "--system",
                "etcd",
                "--workload",
                "set",
                "--mode",
                "async",
            ],
            "--mode does not apply to etcd (only to leaderkv)",
        ),
        (
            vec!["test", "--system", "leaderkv", "--synchronous"],
            "--synchronous does not apply to leaderkv",
        ),
        (
            vec!["test", "--system-file", file, "--mode", "async"],
            "--mode does not apply to a system file",
        ),
    ] {
        let out = faultline(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 254, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

/// The anomaly classes of a results object, sorted.
fn classes(results: &serde_json::Value) -> Vec<String> {
    results["anomaly_types"]
        .as_array()
        .unwrap_or_else(|| panic!("no anomaly_types in {results}"))
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn check_and_report_run_the_suite_a_run_ran() {
    let store = tempfile::tempdir().unwrap();
    let dir = stored_run::make(store.path());
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let want = classes(&recorded);
    assert!(want.contains(&"dual-leader".to_string()), "{want:?}");
    // `check` on the run directory: the leader checkers run too.
    let out = faultline(&["check", dir.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let checked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(classes(&checked), want);
    // `report` without results.json reruns the same suite.
    std::fs::remove_file(dir.join("results.json")).unwrap();
    let report = stored_run::report(&dir);
    let html = std::fs::read_to_string(report).unwrap();
    for class in &want {
        assert!(html.contains(class.as_str()), "report lacks {class}");
    }
}

/// A stored run that read from followers is checked, by default, against the model its run
/// was (strong-session-serializable): a stale read by another process is allowed there, a
/// process missing its own append is not; `--consistency` still decides when given.
#[test]
fn a_follower_read_run_is_rechecked_against_its_own_model() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let op = |i: u64, p: u64, t: &str, v: &str| {
        format!(
            r#"{{"index":{i},"time":{},"process":{p},"type":"{t}","f":"txn","value":{v}}}"#,
            i * 1000
        )
    };
    // Process 0 appends 1 and completes; process 1 then reads the list without it.
    let stale = [
        op(0, 0, "invoke", r#"[["append",0,1]]"#),
        op(1, 0, "ok", r#"[["append",0,1]]"#),
        op(2, 1, "invoke", r#"[["r",0,null]]"#),
        op(3, 1, "ok", r#"[["r",0,[]]]"#),
        op(4, 2, "invoke", r#"[["r",0,null]]"#),
        op(5, 2, "ok", r#"[["r",0,[1]]]"#),
    ];
    write(run, "history.jsonl", &(stale.join("\n") + "\n"));
    write(run, "test.json", r#"{"read_from": "followers"}"#);
    let p = run.to_str().unwrap();
    let out = faultline(&["check", p]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let out = faultline(&["check", p, "--consistency", "strict-serializable"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("G-single-realtime"));
    // A run that read from the leader: strict-serializable, the stale read is an anomaly.
    write(run, "test.json", r#"{"read_from": "leader"}"#);
    assert_eq!(code(&faultline(&["check", p])), 1);
    // Its own append missed by the same process: invalid under the session model too.
    let own = [
        op(0, 0, "invoke", r#"[["append",0,1]]"#),
        op(1, 0, "ok", r#"[["append",0,1]]"#),
        op(2, 0, "invoke", r#"[["r",0,null]]"#),
        op(3, 0, "ok", r#"[["r",0,[]]]"#),
        op(4, 2, "invoke", r#"[["r",0,null]]"#),
        op(5, 2, "ok", r#"[["r",0,[1]]]"#),
    ];
    write(run, "history.jsonl", &(own.join("\n") + "\n"));
    write(run, "test.json", r#"{"read_from": "followers"}"#);
    let out = faultline(&["check", p]);
    assert_eq!(code(&out), 1);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("G-single-process"), "{text}");
}
