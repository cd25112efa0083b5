//! Jepsen interop without a cluster: `faultline check` on a Jepsen run directory (its
//! `history.edn`), runs named relative to the store (`FAULTLINE_STORE`), and `faultline
//! export`, whose EDN reads back as the same ops with the same verdict.

use std::path::Path;
use std::process::{Command, Output};

fn faultline(args: &[&str], store: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_faultline"));
    c.args(args)
        .env("NO_COLOR", "1")
        .env_remove("FAULTLINE_STORE");
    if let Some(s) = store {
        c.env("FAULTLINE_STORE", s);
    }
    c.output().expect("failed to run faultline")
}

fn verdict(o: &Output) -> (i32, String) {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("verdict:"))
        .unwrap_or_default()
        .to_owned();
    (o.status.code().unwrap_or(-1), line)
}

fn data(rel: &str) -> String {
    format!("{}/testdata/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_jepsen_run_directory_is_checked_by_its_history_edn() {
    let store = tempfile::tempdir().unwrap();
    let run = store.path().join("cas").join("20261206T101010.000Z");
    std::fs::create_dir_all(&run).unwrap();
    for (file, code) in [
        ("knossos/cas-register/bad/cas-failure.edn", 1),
        ("knossos/cas-register/good/memstress3-4.edn", 0),
    ] {
        std::fs::copy(data(file), run.join("history.edn")).unwrap();
        std::fs::write(run.join("test.jepsen"), b"fressian").unwrap();
        let direct = verdict(&faultline(&["check", &data(file), "--initial", "0"], None));
        assert_eq!(direct.0, code, "{file}: {direct:?}");
        let by_dir = verdict(&faultline(
            &["check", run.to_str().unwrap(), "--initial", "0"],
            None,
        ));
        assert_eq!(by_dir, direct, "{file}");
        // Relative to the store, from anywhere.
        let by_name = verdict(&faultline(
            &["check", "cas/20261206T101010.000Z", "--initial", "0"],
            Some(store.path()),
        ));
        assert_eq!(by_name, direct, "{file}");
    }
    // A directory with neither history says what it looks for, one line, 254.
    std::fs::remove_file(run.join("history.edn")).unwrap();
    let o = faultline(&["check", run.to_str().unwrap()], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(254), "{err}");
    assert!(
        err.contains("without history.jsonl or history.edn"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn an_exported_history_reads_back_as_the_same_ops_and_verdict() {
    let dir = tempfile::tempdir().unwrap();
    for (file, initial, code) in [
        ("knossos/cas-register/bad/cas-failure.edn", Some("0"), 1),
        ("knossos/cas-register/good/memstress3-4.edn", Some("0"), 0),
        ("porcupine-kv/c01-bad.txt", None, 1),
        ("porcupine-kv/c01-ok.txt", None, 0),
    ] {
        let src = data(file);
        let jsonl = dir.path().join("h.jsonl");
        let edn = dir.path().join("h.edn");
        let o = faultline(
            &[
                "export",
                &src,
                "--format",
                "jsonl",
                "-o",
                jsonl.to_str().unwrap(),
            ],
            None,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = faultline(
            &[
                "export",
                jsonl.to_str().unwrap(),
                "-o",
                edn.to_str().unwrap(),
            ],
            None,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&edn).unwrap();
        assert!(
            text.starts_with("{:index 0"),
            "{file}: {}",
            &text[..80.min(text.len())]
        );
        assert!(text.contains(":type :invoke"), "{file}");

        let mut args = vec!["check"];
        if let Some(i) = initial {
            args.extend(["--initial", i]);
        }
        let check = |p: &str| {
            let mut a = args.clone();
            a.push(p);
            verdict(&faultline(&a, None))
        };
        let want = check(&src);
        assert_eq!(want.0, code, "{file}: {want:?}");
        assert_eq!(check(edn.to_str().unwrap()), want, "{file} as EDN");
        assert_eq!(check(jsonl.to_str().unwrap()), want, "{file} as JSONL");

        // The same ops, field for field: EDN back to JSONL equals the first JSONL.
        let o = faultline(
            &["export", edn.to_str().unwrap(), "--format", "jsonl"],
            None,
        );
        assert!(o.status.success());
        assert_eq!(
            String::from_utf8(o.stdout).unwrap(),
            std::fs::read_to_string(&jsonl).unwrap(),
            "{file}: EDN -> JSONL differs"
        );
    }
}

#[test]
fn export_refuses_a_bad_format_and_a_missing_run_in_one_line() {
    let o = faultline(
        &[
            "export",
            &data("porcupine-kv/c01-ok.txt"),
            "--format",
            "csv",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(254));
    let store = tempfile::tempdir().unwrap();
    let o = faultline(&["export", "no-such-run/latest"], Some(store.path()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(254), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// An Elle list-append history in Jepsen's EDN (`:txn` of `[:append k v]` / `[:r k [..]]`)
/// is recognised without `--model`, checked against `--consistency`, and its anomaly named
/// as Elle names it.
#[test]
fn a_jepsen_list_append_history_gets_elles_anomaly_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("history.edn");
    // Write skew: each txn read the other's key empty and appended to its own.
    std::fs::write(
        &p,
        "{:type :invoke, :f :txn, :value [[:r :x nil] [:append :y 1]], :process 0, :index 0}\n\
         {:type :invoke, :f :txn, :value [[:r :y nil] [:append :x 1]], :process 1, :index 1}\n\
         {:type :ok, :f :txn, :value [[:r :x []] [:append :y 1]], :process 0, :index 2}\n\
         {:type :ok, :f :txn, :value [[:r :y []] [:append :x 1]], :process 1, :index 3}\n\
         {:type :invoke, :f :txn, :value [[:r :x nil] [:r :y nil]], :process 2, :index 4}\n\
         {:type :ok, :f :txn, :value [[:r :x [1]] [:r :y [1]]], :process 2, :index 5}\n",
    )
    .unwrap();
    let path = p.to_str().unwrap();
    let (code, line) = verdict(&faultline(&["check", path], None));
    assert_eq!((code, line.as_str()), (1, "verdict: INVALID (G2-item)"));
    let (code, _) = verdict(&faultline(
        &["check", path, "--consistency", "snapshot-isolation"],
        None,
    ));
    assert_eq!(code, 0, "snapshot isolation allows write skew");
    let o = faultline(&["check", path, "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["list-append"]["anomalies"][0];
    assert_eq!(a["type"], "G2-item", "{v}");
    assert_eq!(a["details"]["cycle"].as_array().unwrap().len(), 2, "{v}");
}
