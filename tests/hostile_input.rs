//! Hostile input to `faultline check` and `report` (no cluster): crafted files get a correct
//! verdict or one line and exit 254, never a panic, an abort or a false verdict; nothing
//! from a history reaches the terminal raw, and nothing is written through a planted link.
//! Each case is one of docs/hostile-input.md's table.

use std::path::Path;
use std::process::{Command, Output};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("failed to run faultline")
}

fn check(dir: &Path, name: &str, text: &str, extra: &[&str]) -> (i32, String) {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    let mut args = vec!["check", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = faultline(&args);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), out)
}

fn one_error_line(out: &str) -> &str {
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {out}");
    lines[0]
}

#[test]
fn edn_escapes_decide_the_verdict_as_the_spec_reads_them() {
    let d = tempfile::tempdir().unwrap();
    let h = |write: &str, read: &str| {
        format!(
            "[{{:process 0 :type :invoke :f :write :value {write}}}\n\
             {{:process 0 :type :ok :f :write :value {write}}}\n\
             {{:process 0 :type :invoke :f :read :value nil}}\n\
             {{:process 0 :type :ok :f :read :value {read}}}]\n"
        )
    };
    let reg = ["--model", "register"];
    // "\u00e9" is é: a read of the text "u00e9" is not what was written.
    let (code, out) = check(d.path(), "a.edn", &h(r#""\u00e9""#, r#""u00e9""#), &reg);
    assert_eq!(code, 1, "{out}");
    let (code, out) = check(d.path(), "b.edn", &h(r#""caf\u00e9""#, r#""café""#), &reg);
    assert_eq!(code, 0, "{out}");
    let (code, out) = check(d.path(), "c.edn", &h(r#""\b\f""#, r"\backspace"), &reg);
    assert_eq!(code, 1, "one character against two: {out}");
}

#[test]
fn deep_nesting_and_huge_integers_are_one_line_and_254() {
    let d = tempfile::tempdir().unwrap();
    let deep = format!("{}{}\n", "[".repeat(3000), "]".repeat(3000));
    let (code, out) = check(d.path(), "deep.edn", &deep, &[]);
    assert_eq!(code, 254, "{out}");
    assert!(one_error_line(&out).contains("nested deeper"), "{out}");
    let o = faultline(&[
        "check",
        d.path().join("deep.edn").to_str().unwrap(),
        "--initial",
        &"[".repeat(3000),
    ]);
    assert_eq!(o.status.code(), Some(254));
    for (name, text) in [
        (
            "big.edn",
            "[{:process 0 :type :invoke :f :add :value 18446744073709551616}]\n".to_string(),
        ),
        (
            "big.jsonl",
            r#"{"index":0,"type":"invoke","process":0,"f":"add","value":18446744073709551616}"#
                .to_string()
                + "\n",
        ),
    ] {
        let (code, out) = check(d.path(), name, &text, &[]);
        assert_eq!(code, 254, "{name}: {out}");
        assert!(
            one_error_line(&out).contains("does not fit in 64 bits"),
            "{name}: {out}"
        );
    }
}

#[test]
fn escape_sequences_in_a_history_never_reach_the_terminal() {
    let d = tempfile::tempdir().unwrap();
    // Two nodes claim to lead at once; one is named with a line-erasing escape sequence.
    let evil = "\u{1b}[2K\rn9";
    let mut lines = Vec::new();
    let mut i = 0;
    for t in 0..5u64 {
        for (p, node, term) in [(101, "n1", 1), (102, evil, 2)] {
            let invoke = serde_json::json!({"index": i, "type": "invoke", "process": p,
                "f": "leader", "value": null, "node": node, "time": t * 1_000_000 + 1});
            let ok = serde_json::json!({"index": i + 1, "type": "ok", "process": p,
                "f": "leader", "value": {"role": "leader", "term": term, "leader": node},
                "node": node, "time": t * 1_000_000 + 500_000});
            lines.push(invoke.to_string());
            lines.push(ok.to_string());
            i += 2;
        }
    }
    let (code, out) = check(d.path(), "dual.jsonl", &(lines.join("\n") + "\n"), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("dual-leader"), "{out}");
    assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out:?}");
    assert!(out.contains(r"\u{1b}[2K"), "shown escaped: {out}");
}

#[test]
fn report_replaces_a_planted_link_instead_of_writing_through_it() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(
        run.join("history.jsonl"),
        "{\"index\":0,\"type\":\"invoke\",\"process\":0,\"f\":\"add\",\"value\":1}\n\
         {\"index\":1,\"type\":\"ok\",\"process\":0,\"f\":\"add\",\"value\":1}\n",
    )
    .unwrap();
    let victim = d.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, run.join("report.html")).unwrap();
    let o = faultline(&["report", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(run.join("report.html")).unwrap();
    assert!(meta.file_type().is_file());
}

#[test]
fn a_byte_order_mark_and_a_results_file_of_null_are_named() {
    let d = tempfile::tempdir().unwrap();
    let line = r#"{"index":0,"type":"invoke","process":0,"f":"add","value":1}"#;
    let (code, out) = check(d.path(), "bom.jsonl", &format!("\u{feff}{line}\n"), &[]);
    assert_eq!(code, 254, "{out}");
    assert!(one_error_line(&out).contains("byte-order mark"), "{out}");
    let run = d.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("history.jsonl"), format!("{line}\n")).unwrap();
    std::fs::write(run.join("results.json"), "null\n").unwrap();
    let o = faultline(&["report", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(254), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        one_error_line(&err).contains("not a faultline results file"),
        "{err}"
    );
}

#[test]
fn a_history_from_a_pipe_is_checked_whole() {
    let d = tempfile::tempdir().unwrap();
    let h = d.path().join("h.jsonl");
    std::fs::write(
        &h,
        "{\"index\":0,\"type\":\"invoke\",\"process\":0,\"f\":\"add\",\"value\":1}\n\
         {\"index\":1,\"type\":\"ok\",\"process\":0,\"f\":\"add\",\"value\":1}\n\
         {\"index\":2,\"type\":\"invoke\",\"process\":0,\"f\":\"read\",\"value\":null}\n\
         {\"index\":3,\"type\":\"ok\",\"process\":0,\"f\":\"read\",\"value\":[]}\n",
    )
    .unwrap();
    // bash's <(cat FILE): a pipe, readable once.
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} check <(cat {})",
            env!("CARGO_BIN_EXE_faultline"),
            h.display()
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("(4 ops)") && out.contains("lost-write"),
        "{out}"
    );
}
