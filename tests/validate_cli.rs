//! `faultline validate` on every kind of file, and `faultline test` refusing a bad schedule
//! before a cluster or run directory exists. No cluster, no root.

use std::path::Path;
use std::process::{Command, Output};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("FAULTLINE_STORE")
        .output()
        .expect("failed to run faultline")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// One error line, exit 254, naming `what`.
fn refused(o: &Output, what: &str) {
    let (_, err) = text(o);
    assert_eq!(o.status.code(), Some(254), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("faultline: error"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(what), "{what} not in {err}");
}

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systems")
}

#[test]
fn every_shipped_system_file_validates_and_renders_per_node() {
    for entry in std::fs::read_dir(examples()).unwrap() {
        let p = entry.unwrap().path();
        let o = faultline(&["validate", p.to_str().unwrap(), "--nodes", "3"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{}: {err}", p.display());
        assert!(out.contains(": valid"), "{out}");
        for n in ["n1 (10.77.0.11", "n2 (10.77.0.12", "n3 (10.77.0.13"] {
            assert!(out.contains(n), "{}: {n} missing in {out}", p.display());
        }
        // Rendered: no placeholder of the node is left (the run's password stays one).
        for line in out.lines().filter(|l| l.trim_start().starts_with("start:")) {
            assert!(!line.contains("{node}") && !line.contains("{ip}"), "{line}");
        }
    }
    // The leaderkv file with a bug and a setting, as `test` would run it.
    let o = faultline(&[
        "validate",
        examples().join("leaderkv.toml").to_str().unwrap(),
        "--nodes",
        "2",
        "--bug",
        "no-fencing",
        "--set",
        "mode=async",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "system");
    let start = v["detail"]["nodes"][1]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == "start")
        .unwrap()[1]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(start.contains("--id n2"), "{start}");
    assert!(
        start.contains("--mode async --replication row --bug no-fencing"),
        "{start}"
    );
    assert!(
        start.contains("n1=10.77.0.11:7000,n2=10.77.0.12:7000"),
        "{start}"
    );
}

#[test]
fn a_broken_system_file_is_one_line_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mine.toml");
    let good = std::fs::read_to_string(examples().join("leaderkv.toml")).unwrap();
    std::fs::write(&p, good.replace("--id {node}", "--id {nodee}")).unwrap();
    refused(&faultline(&["validate", p.to_str().unwrap()]), "nodee");
    // A setting the file needs and nobody gave.
    std::fs::write(&p, good.replace("{set.mode}", "{set.speed}")).unwrap();
    refused(&faultline(&["validate", p.to_str().unwrap()]), "speed");
}

#[test]
fn a_schedule_is_checked_against_the_nodes_it_would_run_on() {
    let d = tempfile::tempdir().unwrap();
    let s = d.path().join("s.json");
    std::fs::write(
        &s,
        r#"{"faults":[{"start_ms":1000,"end_ms":3000,"fault":{"kind":"pause","target":{"nodes":["n4"]}}}]}"#,
    )
    .unwrap();
    let o = faultline(&["validate", s.to_str().unwrap(), "--nodes", "5"]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("1 fault(s)"), "{}", text(&o).0);
    refused(
        &faultline(&["validate", s.to_str().unwrap(), "--nodes", "3"]),
        "n4",
    );
    // Not a schedule at all: the file is named.
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, r#"{"faults":[{"start":1}]}"#).unwrap();
    refused(&faultline(&["validate", bad.to_str().unwrap()]), "bad.json");

    // `test` refuses it before bringing anything up or making a run directory, as any user
    // (root or not) would see it.
    let store = d.path().join("store");
    let o = faultline(&[
        "test",
        "--nodes",
        "3",
        "--schedule",
        s.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--prefix",
        "flv-",
    ]);
    refused(&o, "n4");
    assert!(!text(&o).1.contains("bringing up"), "{}", text(&o).1);
    assert!(!store.exists(), "a run directory was made");
}

#[test]
fn a_gate_config_has_every_run_planned() {
    let d = tempfile::tempdir().unwrap();
    let g = d.path().join("gate.toml");
    std::fs::write(
        &g,
        "[gate]\nruns = 2\nargs = [\"--time-limit\", \"20s\"]\n\n[[matrix]]\nname = \"kv\"\n\
         args = [\"--system\", \"leaderkv\"]\nworkloads = [\"set\", \"register\"]\n",
    )
    .unwrap();
    let o = faultline(&["validate", g.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("gate config of 4 run(s)"), "{out}");
    assert!(out.contains("kv/register/seed-2"), "{out}");
    // A typo in one cell's flags, and a bug the system cannot take: each named by its run.
    std::fs::write(
        &g,
        "[[matrix]]\nname = \"kv\"\nargs = [\"--nemsis\", \"kill\"]\n",
    )
    .unwrap();
    refused(
        &faultline(&["validate", g.to_str().unwrap()]),
        "run kv/seed-1",
    );
    std::fs::write(
        &g,
        "[[matrix]]\nname = \"e\"\nargs = [\"--system\", \"etcd\", \"--bug\", \"no-fencing\"]\n",
    )
    .unwrap();
    refused(&faultline(&["validate", g.to_str().unwrap()]), "--bug");
}

#[test]
fn a_nodes_file_is_read_as_a_run_would() {
    let d = tempfile::tempdir().unwrap();
    let n = d.path().join("nodes");
    std::fs::write(&n, "db1 192.0.2.10\n# a comment\n192.0.2.11\n").unwrap();
    let o = faultline(&["validate", n.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("2 host(s)") && out.contains("db1 192.0.2.10"),
        "{out}"
    );
    std::fs::write(&n, "db1 192.0.2.10\ndb1 192.0.2.11\n").unwrap();
    refused(
        &faultline(&["validate", n.to_str().unwrap(), "--as", "nodes"]),
        "db1",
    );
}
