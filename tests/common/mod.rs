//! Helpers shared by the end-to-end tests that run `faultline test` on local clusters.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_faultline");

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `leaderkv` and `libclockshim.so`: beside the faultline binary when the workspace was
/// built, else built once into a target dir of their own (no lock on the one running us).
pub fn artifacts() -> &'static (PathBuf, PathBuf) {
    static A: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    A.get_or_init(|| {
        let dir = Path::new(BIN).parent().unwrap().to_path_buf();
        let (kv, shim) = (dir.join("leaderkv"), dir.join("libclockshim.so"));
        if kv.is_file() && shim.is_file() {
            return (kv, shim);
        }
        let target = dir.parent().unwrap().join("e2e-deps");
        let profile = dir.file_name().unwrap().to_str().unwrap();
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "-q",
                "-p",
                "leaderkv",
                "-p",
                "clockshim",
                "--target-dir",
            ])
            .arg(&target);
        if profile == "release" {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo");
        assert!(st.success(), "building leaderkv and clockshim failed");
        let out = target.join(if profile == "release" {
            "release"
        } else {
            "debug"
        });
        (out.join("leaderkv"), out.join("libclockshim.so"))
    })
}

pub fn faultline() -> Command {
    let (kv, shim) = artifacts();
    let mut c = Command::new(BIN);
    c.env("FAULTLINE_LEADERKV_BIN", kv)
        .env("FAULTLINE_CLOCKSHIM_LIB", shim)
        .env_remove("FAULTLINE_NEMESIS_STATE");
    c
}

/// The anomaly classes a run's results.json names.
pub fn anomaly_types(results: &serde_json::Value) -> Vec<String> {
    results["anomaly_types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A schedule file for nodes n1..n3: `cycles` times, the current leader cut off from the
/// others for `cut_ms`, one cycle every `period_ms` from `start_ms` on. The leader must
/// lose its place for ack-before-replicate to lose writes and for no-fencing and no-step-down
/// to show two leaders; random shapes often leave it on the majority side.
pub fn isolate_leader_schedule(
    dir: &Path,
    cycles: u64,
    start_ms: u64,
    period_ms: u64,
    cut_ms: u64,
) -> PathBuf {
    let mut text = String::from("nodes = [\"n1\", \"n2\", \"n3\"]\n");
    for k in 0..cycles {
        let t = start_ms + k * period_ms;
        text.push_str(&format!(
            "[[faults]]\nstart_ms = {}\nend_ms = {}\nfault = {{ kind = \"partition\", partition = {{ shape = \"isolate-leader\" }} }}\n",
            t,
            t + cut_ms
        ));
    }
    let p = dir.join("isolate-leader.toml");
    std::fs::write(&p, text).unwrap();
    p
}
