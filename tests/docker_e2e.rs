//! End-to-end tests of `faultline test --docker`: the nodes as Docker containers (root and a
//! running Docker Engine; the default node image is built from this machine's programs, so
//! an empty engine does). Each test has its own prefix (`fld1-` .. `fld5-`, subnets
//! 10.77.96.0/24 .. 10.77.100.0/24, `fld6-` 10.77.105.0/24; `fln5-` 10.77.101.0/24 is the
//! namespace cluster beside) and a guard that removes its containers and network even when it fails.
//! Without root or Docker they print `SKIPPED` unless `FAULTLINE_REQUIRE_PRIVILEGED=1`.
//!
//! - leaderkv on 5 containers, the correct build: valid under partitions, pauses, kills and
//!   clock skew (each injected at least once);
//! - leaderkv with `--bug no-fencing` on containers: dual leaders found;
//! - Redis Sentinel on 3 containers loses acknowledged writes when its primary is cut off;
//! - a controller SIGKILLed mid-partition: the next start heals, `cluster down --docker`
//!   leaves no container, network or rule;
//! - the leaderkv system file with a seeded bug gives the same verdict on namespaces and on
//!   containers;
//! - an image the engine lacks, and no Docker Engine at all: one line, exit 254.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, anomaly_types, faultline, text};

const REQUIRE: &str = "FAULTLINE_REQUIRE_PRIVILEGED";

/// Root and a running Docker Engine; else skip loudly (or fail when required).
fn docker_or_skip(test: &str) -> bool {
    if !control::prereq::privileged_or_skip(test, false) {
        return false;
    }
    let up = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if up {
        return true;
    }
    let why = format!("{test}: no running Docker Engine (`docker info` failed)");
    if std::env::var(REQUIRE).as_deref() == Ok("1") {
        panic!("{why}, and {REQUIRE}=1");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// Removes the containers and network of `prefix` when dropped, also when the test fails.
struct Down(&'static str);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["cluster", "down", "--docker", "--prefix", self.0])
            .output();
    }
}

/// The names of the containers and networks labelled with `prefix` (the engine's view).
fn leftovers(prefix: &str) -> Vec<String> {
    let label = format!("label=faultline.cluster={prefix}");
    let mut names = Vec::new();
    for what in [&["ps", "-a"][..], &["network", "ls"][..]] {
        let o = Command::new("docker")
            .args(what)
            .args(["--filter", &label, "--format", "{{.Names}}{{.Name}}"])
            .output()
            .expect("run docker");
        names.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    names
}

/// `faultline test --docker` on `prefix`/`subnet` with `extra` flags; (exit, output,
/// results.json, history text).
fn run(
    prefix: &str,
    subnet: &str,
    store: &std::path::Path,
    extra: &[&str],
) -> (i32, String, serde_json::Value, String) {
    let o = faultline()
        .args(["test", "--docker", "--prefix", prefix, "--subnet", subnet])
        .arg("--store")
        .arg(store)
        .args(extra)
        .output()
        .expect("run faultline test");
    let out = text(&o);
    let latest = std::fs::read_link(store.join("latest")).unwrap_or_default();
    let dir = store.join(latest);
    let results = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap_or_default();
    (o.status.code().unwrap_or(-1), out, results, history)
}

#[test]
fn leaderkv_on_five_containers_is_valid_under_every_fault() {
    if !docker_or_skip("leaderkv_on_five_containers_is_valid_under_every_fault") {
        return;
    }
    let _down = Down("fld1-");
    let store = tempfile::tempdir().unwrap();
    // Faults every 3 s by the clock: this seed's schedule holds every kind.
    let (code, out, results, history) = run(
        "fld1-",
        "10.77.96.0/24",
        store.path(),
        &[
            "--nemesis",
            "partition,pause,kill,clock",
            "--nemesis-mode",
            "interval",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "30s",
            "--seed",
            "1",
        ],
    );
    assert_eq!(code, 0, "{:?}: {out}", anomaly_types(&results));
    for kind in ["partition", "pause", "kill", "clock"] {
        assert!(
            history.contains(&format!("\"f\":\"start-{kind}\"")),
            "no {kind} fault was injected: {out}"
        );
    }
    assert!(
        out.contains("bringing up 5 Docker containers fld1-n*"),
        "{out}"
    );
    // The run stopped everything it started in the containers.
    for i in 1..=5 {
        let o = Command::new("docker")
            .args(["exec", &format!("fld1-n{i}"), "ps", "-eo", "args"])
            .output()
            .unwrap();
        let ps = String::from_utf8_lossy(&o.stdout);
        assert!(
            !ps.contains("leaderkv --id"),
            "n{i} still runs leaderkv:\n{ps}"
        );
    }
    // The cluster stays up for the next run; `exec` and `status` reach it.
    let o = Command::new(BIN)
        .args([
            "exec", "all", "--docker", "--prefix", "fld1-", "--", "hostname",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    for i in 1..=5 {
        assert!(said.contains(&format!("n{i}")), "{}", text(&o));
    }
    let o = Command::new(BIN)
        .args([
            "cluster", "status", "--docker", "--prefix", "fld1-", "--json",
        ])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        status["nodes"].as_array().map(Vec::len),
        Some(5),
        "{status}"
    );
    let o = Command::new(BIN)
        .args(["cluster", "down", "--docker", "--prefix", "fld1-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(leftovers("fld1-"), Vec::<String>::new());
}

#[test]
fn an_image_the_engine_lacks_is_one_line_and_exit_254() {
    if !docker_or_skip("an_image_the_engine_lacks_is_one_line_and_exit_254") {
        return;
    }
    let _down = Down("fld6-");
    let o = faultline()
        .args([
            "test",
            "--docker",
            "--prefix",
            "fld6-",
            "--subnet",
            "10.77.105.0/24",
        ])
        .args(["--image", "faultline-no-such-image:1", "--time-limit", "5s"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("faultline-no-such-image:1") && err.contains("the engine does not have it"),
        "{err}"
    );
    assert_eq!(leftovers("fld6-"), Vec::<String>::new());
}

#[test]
fn a_seeded_bug_is_found_on_containers() {
    if !docker_or_skip("a_seeded_bug_is_found_on_containers") {
        return;
    }
    let _down = Down("fld2-");
    let store = tempfile::tempdir().unwrap();
    // Default nemesis and workloads: what a gate on a candidate image runs.
    let (code, out, results, _) = run(
        "fld2-",
        "10.77.97.0/24",
        store.path(),
        &["--bug", "no-fencing", "--time-limit", "30s", "--seed", "2"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        anomaly_types(&results).contains(&"dual-leader".to_string()),
        "{:?}: {out}",
        anomaly_types(&results)
    );
}

#[test]
fn redis_sentinel_on_containers_loses_acknowledged_writes() {
    if !docker_or_skip("redis_sentinel_on_containers_loses_acknowledged_writes") {
        return;
    }
    if control::prereq::tool_path("redis-server").is_none() {
        let why = "redis_sentinel_on_containers_loses_acknowledged_writes: redis-server is not \
                   installed here (the default node image takes it from this machine)";
        assert!(std::env::var(REQUIRE).as_deref() != Ok("1"), "{why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let _down = Down("fld3-");
    let store = tempfile::tempdir().unwrap();
    let (code, out, results, _) = run(
        "fld3-",
        "10.77.98.0/24",
        store.path(),
        &[
            "--system",
            "redis-sentinel",
            "--nodes",
            "3",
            "--time-limit",
            "30s",
            "--seed",
            "4",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        anomaly_types(&results).contains(&"lost-write".to_string()),
        "{:?}: {out}",
        anomaly_types(&results)
    );
}

#[test]
fn a_killed_controller_leaves_nothing_behind_after_the_next_start() {
    if !docker_or_skip("a_killed_controller_leaves_nothing_behind_after_the_next_start") {
        return;
    }
    let _down = Down("fld4-");
    let store = tempfile::tempdir().unwrap();
    let args = |time_limit: &str, nemesis: &str| {
        vec![
            "test".to_string(),
            "--docker".into(),
            "--prefix".into(),
            "fld4-".into(),
            "--subnet".into(),
            "10.77.99.0/24".into(),
            "--nodes".into(),
            "3".into(),
            "--nemesis".into(),
            nemesis.into(),
            "--nemesis-mode".into(),
            "interval".into(),
            "--nemesis-interval".into(),
            "1s".into(),
            "--time-limit".into(),
            time_limit.into(),
            "--store".into(),
            store.path().display().to_string(),
        ]
    };
    let mut child = faultline()
        .args(args("60s", "partition"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start faultline test");
    // SIGKILL it while a partition is in place: the nemesis state file names the rules.
    let state = store.path().join(".nemesis").join("fld4-docker.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut partitioned = false;
    while Instant::now() < deadline {
        let st = std::fs::read_to_string(&state).unwrap_or_default();
        if st.contains("Iptables") || st.contains("iptables") {
            partitioned = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        partitioned,
        "no partition was recorded in {}",
        state.display()
    );
    let rules = |i: u32| {
        let pid = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Pid}}", &format!("fld4-n{i}")])
            .output()
            .unwrap();
        let pid = String::from_utf8_lossy(&pid.stdout).trim().to_string();
        let o = Command::new("nsenter")
            .args([&format!("--net=/proc/{pid}/ns/net"), "iptables", "-S"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("FAULTLINE") && l.contains("DROP"))
            .count()
    };
    let left: usize = (1..=3).map(rules).sum();
    assert!(
        left > 0,
        "the killed run left no rule to heal: the test proves nothing"
    );
    // The next start heals what the state file names, on the same containers.
    let o = faultline()
        .args(args("3s", "none"))
        .output()
        .expect("run faultline test");
    let out = text(&o);
    assert!(out.contains("healed"), "{out}");
    assert_eq!((1..=3).map(rules).sum::<usize>(), 0, "{out}");
    let o = Command::new(BIN)
        .args(["cluster", "down", "--docker", "--prefix", "fld4-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(leftovers("fld4-"), Vec::<String>::new());
}

#[test]
fn a_system_file_gives_the_same_verdict_on_namespaces_and_containers() {
    if !docker_or_skip("a_system_file_gives_the_same_verdict_on_namespaces_and_containers") {
        return;
    }
    let _down = Down("fld5-");
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systems/leaderkv.toml");
    let common = [
        "--bug",
        "local-counter",
        "--nodes",
        "3",
        "--time-limit",
        "20s",
        "--seed",
        "3",
    ];
    let store = tempfile::tempdir().unwrap();
    let (code, out, results, _) = run(
        "fld5-",
        "10.77.100.0/24",
        store.path(),
        &[&["--system-file", file.to_str().unwrap()][..], &common[..]].concat(),
    );
    let on_containers = (code, anomaly_types(&results));
    assert_eq!(code, 1, "{out}");
    // A namespace cluster of its own (its bridge cannot share the containers' subnet).
    let ns = tempfile::tempdir().unwrap();
    let o = faultline()
        .args(["test", "--prefix", "fln5-", "--subnet", "10.77.101.0/24"])
        .arg("--store")
        .arg(ns.path())
        .arg("--system-file")
        .arg(&file)
        .args(common)
        .output()
        .expect("run faultline test");
    let _ = Command::new(BIN)
        .args(["cluster", "down", "--prefix", "fln5-"])
        .output();
    let latest = std::fs::read_link(ns.path().join("latest"))
        .unwrap_or_else(|e| panic!("no run stored ({e}): {}", text(&o)));
    let dir = ns.path().join(latest);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let on_namespaces = (o.status.code().unwrap_or(-1), anomaly_types(&results));
    assert_eq!(on_containers, on_namespaces, "{}", text(&o));
    assert!(on_containers.1.contains(&"reused-key".to_string()));
}

#[test]
fn without_a_docker_engine_one_line_and_exit_254() {
    let o = Command::new(BIN)
        .args([
            "test",
            "--docker",
            "--prefix",
            "fld7-",
            "--time-limit",
            "5s",
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if !control::prereq::is_root() {
        // Without root the root check answers first, also with 254.
        assert_eq!(o.status.code(), Some(254), "{}", text(&o));
        return;
    }
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("a running Docker Engine"), "{err}");
}
