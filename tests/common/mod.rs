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

/// A local cluster of 3 nodes for `faultline test` runs (cluster `prefix` on `subnet`, runs
/// stored in a temporary directory), brought down when dropped.
pub struct Cluster {
    pub prefix: &'static str,
    pub subnet: &'static str,
    pub store: tempfile::TempDir,
    recovery_wait: &'static str,
    /// Run with `faultline test`'s default nodes, clients and recovery wait.
    defaults: bool,
}

impl Cluster {
    /// A cluster whose runs wait 8 s for recovery.
    pub fn new(prefix: &'static str, subnet: &'static str) -> Cluster {
        Cluster {
            prefix,
            subnet,
            store: tempfile::tempdir().unwrap(),
            recovery_wait: "8s",
            defaults: false,
        }
    }

    /// A cluster whose runs take `faultline test`'s defaults (5 nodes, 10 clients) for
    /// everything but the cluster's name, subnet and store: what a user would run.
    pub fn with_defaults(prefix: &'static str, subnet: &'static str) -> Cluster {
        let mut c = Cluster::new(prefix, subnet);
        c.defaults = true;
        c
    }

    /// Runs wait `wait` (`30s`) for recovery.
    pub fn recovery_wait(mut self, wait: &'static str) -> Cluster {
        self.recovery_wait = wait;
        self
    }

    /// The arguments of `faultline test` on this cluster (3 nodes, 5 clients, this store;
    /// or only the cluster and store with [`Cluster::with_defaults`]).
    pub fn args(&self) -> Vec<String> {
        if self.defaults {
            return [
                "test",
                "--prefix",
                self.prefix,
                "--subnet",
                self.subnet,
                "--store",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([self.store.path().display().to_string()])
            .collect();
        }
        [
            "test",
            "--nodes",
            "3",
            "--prefix",
            self.prefix,
            "--subnet",
            self.subnet,
            "--recovery-wait",
            self.recovery_wait,
            "--concurrency",
            "5",
            "--store",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([self.store.path().display().to_string()])
        .collect()
    }

    /// Runs `faultline test` with `extra`; returns the exit code, output and results.json
    /// (null when the run stored none).
    pub fn run(&self, extra: &[&str]) -> (i32, String, serde_json::Value) {
        let latest = self.store.path().join("latest");
        let _ = std::fs::remove_file(&latest);
        let o = faultline()
            .args(self.args())
            .args(extra)
            .output()
            .expect("run faultline");
        let results = std::fs::read_to_string(latest.join("results.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        (o.status.code().unwrap_or(-1), text(&o), results)
    }

    /// The directory of the last run.
    pub fn latest(&self) -> PathBuf {
        self.store.path().join("latest")
    }

    /// Brings the cluster down (its namespaces and what runs in them).
    pub fn down(&self) {
        let _ = Command::new(BIN)
            .args(["cluster", "down", "--prefix", self.prefix])
            .output();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.down();
    }
}

/// Brings the local cluster of a prefix down when dropped, also when the test fails.
pub struct Down(pub &'static str);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["cluster", "down", "--prefix", self.0])
            .output();
    }
}

/// The test `test` (skipped without root): runs leaderkv with `bug` on a 5-node cluster
/// `prefix` with default flags but a 30 s time limit (and `extra`: the workload the bug lives
/// in), for up to 5 seeds, and asserts one of `classes` in at least 4 of them, stopping once that is
/// decided. No schedule file: the default nemesis must find it. Returns the results and the
/// report of each run that found it.
pub fn bug_matrix(
    test: &str,
    prefix: &'static str,
    subnet: &'static str,
    bug: &str,
    classes: &[&str],
    extra: &[&str],
) -> Vec<(serde_json::Value, String)> {
    let class = classes.join(" or ");
    if !control::prereq::privileged_or_skip(test, false) {
        return Vec::new();
    }
    let c = Cluster::with_defaults(prefix, subnet);
    let (mut hits, mut misses) = (Vec::new(), Vec::new());
    for seed in 1..=5u64 {
        let seed_s = seed.to_string();
        let mut args = vec!["--seed", &seed_s, "--bug", bug, "--time-limit", "30s"];
        args.extend_from_slice(extra);
        let (code, out, results) = c.run(&args);
        let found = anomaly_types(&results);
        if code == 1 && found.iter().any(|t| classes.contains(&t.as_str())) {
            let report =
                std::fs::read_to_string(c.latest().join("report.html")).unwrap_or_default();
            hits.push((results, report));
        } else {
            eprintln!("{bug} seed {seed}: no {class} (exit {code}, found {found:?})");
            misses.push((seed, code, found, out));
        }
        if hits.len() >= 4 || misses.len() > 1 {
            break;
        }
    }
    eprintln!(
        "{bug}: {class} in {} seeds, missed {}",
        hits.len(),
        misses.len()
    );
    assert!(
        hits.len() >= 4,
        "{bug}: {class} found in only {} seeds; misses: {:#?}",
        hits.len(),
        misses
            .iter()
            .map(|(s, c, f, o)| format!("seed {s}: exit {c}, {f:?}\n{o}"))
            .collect::<Vec<_>>()
    );
    hits
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

/// Errs naming the first node of `prefix` (n1..n`nodes`) whose iptables still hold a faultline
/// rule (the chain's rules or the jump to it).
pub fn no_faultline_rules(prefix: &str, nodes: usize) -> Result<(), String> {
    for n in 1..=nodes {
        let ns = format!("{prefix}n{n}");
        let o = Command::new("ip")
            .args(["netns", "exec", &ns, "iptables", "-S"])
            .output()
            .map_err(|e| format!("failed to run ip netns exec {ns} iptables -S: {e}"))?;
        let rules = String::from_utf8_lossy(&o.stdout);
        if rules
            .lines()
            .any(|l| l.contains("-A FAULTLINE") || l.contains("-j FAULTLINE"))
        {
            return Err(format!("{ns} still has faultline rules:\n{rules}"));
        }
    }
    Ok(())
}

/// Root and cluster tools, and `programs` on the PATH; else skip loudly (or fail when
/// `FAULTLINE_REQUIRE_PRIVILEGED=1`).
pub fn ready_or_skip(test: &str, programs: &[&str], package: &str) -> bool {
    const REQUIRE: &str = "FAULTLINE_REQUIRE_PRIVILEGED";
    if !control::prereq::privileged_or_skip(test, false) {
        return false;
    }
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| control::prereq::tool_path(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} not installed (apt-get install -y {package})",
        missing.join(", ")
    );
    if std::env::var(REQUIRE).as_deref() == Ok("1") {
        panic!("{test}: {why} ({REQUIRE}=1, so this fails instead of skipping)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n==== SKIPPED: {test}: {why} ====\n");
    false
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                if let Ok(b) = std::fs::read(&p) {
                    if b.windows(needle.len()).any(|w| w == needle) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}
