//! End-to-end tests of `faultline test --system-file` (root for the cluster runs). Each test
//! has its own cluster prefix and subnet (`flf1-` 10.77.81.0/24 .. `flf5-` 10.77.85.0/24)
//! and a guard that brings its cluster down.
//!
//! - examples/systems/leaderkv.toml given as a file gives the same verdicts as `--system
//!   leaderkv` (which embeds it): valid for the correct build, reused ids for `--bug
//!   local-counter`;
//! - the leader found by a command on each node (`leader.command`, redis-cli) instead of a
//!   client call: valid under partitions (skipped without redis-cli);
//! - examples/systems/redis-sentinel.toml deploys Redis + Sentinel, finds the primary and
//!   reaches a verdict (skipped without redis-server/redis-sentinel);
//! - examples/systems/etcd.toml (protocol `http`, `--system etcd`'s file) on five nodes is
//!   valid under partitions, every checker (the leader probe confirms claims), and
//!   examples/systems/postgres-patroni.toml (protocol `postgres`) reaches a verdict; both
//!   take turns with redis-sentinel on `flf5-` (skipped without their programs);
//! - roles and stages (`flf6-` 10.77.80.0/24): a witness role that does not serve, deployed
//!   after the data role; only serving nodes are probed;
//! - a malformed file exits 254 with one line, before any cluster or node is touched
//!   (no root needed);
//! - a start command that fails exits 255 naming the node, the command and its output, and
//!   leaves no process or node directory behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BIN, Cluster, text};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systems/leaderkv.toml")
}

/// The anomaly classes of a run, sorted.
fn types(results: &serde_json::Value) -> Vec<String> {
    let mut t = common::anomaly_types(results);
    t.sort();
    t
}

/// Runs the built-in leaderkv and the example file with the same arguments; returns
/// (exit code, anomaly types) of each.
fn both(c: &Cluster, extra: &[&str]) -> [(i32, Vec<String>, String); 2] {
    let file = example();
    let file = file.to_str().unwrap();
    let runs = [vec!["--system", "leaderkv"], vec!["--system-file", file]];
    runs.map(|sys| {
        let mut args = sys.clone();
        args.extend_from_slice(extra);
        let (code, out, results) = c.run(&args);
        (code, types(&results), out)
    })
}

#[test]
fn file_and_builtin_agree_on_the_correct_build() {
    if !control::prereq::privileged_or_skip("file_and_builtin_agree_on_the_correct_build", false) {
        return;
    }
    let c = Cluster::new("flf1-", "10.77.81.0/24");
    let [builtin, file] = both(&c, &partitioned("7", "20s", "3s", "set,unique-ids"));
    assert_eq!(builtin.0, 0, "built-in leaderkv: {}", builtin.2);
    assert_eq!(file.0, 0, "leaderkv.toml: {}", file.2);
    assert_eq!(builtin.1, file.1);
}

#[test]
fn file_and_builtin_agree_on_local_counter() {
    if !control::prereq::privileged_or_skip("file_and_builtin_agree_on_local_counter", false) {
        return;
    }
    let c = Cluster::new("flf2-", "10.77.82.0/24");
    // The setup of test_e2e's bug_local_counter_reuses_keys; a second seed only if the first
    // does not reproduce with one of the two (the bug needs a failover under load).
    let mut last = None;
    for seed in ["1", "2"] {
        let [builtin, file] = both(
            &c,
            &[
                "--seed",
                seed,
                "--bug",
                "local-counter",
                "--time-limit",
                "20s",
                "--nemesis",
                "partition,kill",
                "--nemesis-interval",
                "3s",
                "--workload",
                "unique-ids",
            ],
        );
        let hit =
            |r: &(i32, Vec<String>, String)| r.0 == 1 && r.1.iter().any(|t| t == "reused-key");
        if hit(&builtin) && hit(&file) {
            assert_eq!(builtin.1, file.1, "anomaly classes differ");
            return;
        }
        eprintln!(
            "seed {seed}: built-in exit {} {:?}, file exit {} {:?}",
            builtin.0, builtin.1, file.0, file.1
        );
        last = Some((builtin, file));
    }
    let (b, f) = last.unwrap();
    panic!(
        "local-counter: verdicts differ or no reused-key\nbuilt-in: {}\nfile: {}",
        b.2, f.2
    );
}

#[test]
fn malformed_file_exits_254_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let good = std::fs::read_to_string(example()).unwrap();
    let cases = [
        (
            good.replace("--id {node}", "--id {nodename}"),
            "commands.start: unknown placeholder {nodename}",
        ),
        (
            good.replace("start = ", "# start = "),
            "missing field `start`",
        ),
        (
            good.replace("[process]\n", "[process]\npidfiel = \"x\"\n"),
            "unknown field `pidfiel`",
        ),
        (
            good.replace("protocol = \"resp\"", "protocol = \"smtp\""),
            "client.protocol: protocol \"smtp\" is not supported (supported: resp, postgres, http)",
        ),
        (
            good.replace("[files]\n", "[files]\n\"no-such-file\" = \"{dir}/x\"\n"),
            "no-such-file is not a file",
        ),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, body).unwrap();
        let o = Command::new(BIN)
            .args(["test", "--nodes", "3", "--prefix", "flf3-"])
            .args(["--subnet", "10.77.83.0/24", "--store"])
            .arg(dir.path().join("store"))
            .arg("--state-dir")
            .arg(&state)
            .arg("--system-file")
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(254), "{}", text(&o));
        let line: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(line.len(), 1, "one error line: {err}");
        assert!(line[0].contains(file.to_str().unwrap()), "{err}");
        assert!(line[0].contains(want), "want {want:?}: {err}");
    }
    // Nothing was brought up or stored.
    assert!(!state.exists(), "a cluster state was created");
    assert!(!dir.path().join("store").exists(), "a run was stored");
}

#[test]
fn failing_start_exits_255_and_leaves_nothing_behind() {
    if !control::prereq::privileged_or_skip(
        "failing_start_exits_255_and_leaves_nothing_behind",
        false,
    ) {
        return;
    }
    let c = Cluster::new("flf4-", "10.77.84.0/24");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    let body = std::fs::read_to_string(example())
        .unwrap()
        .replace("--mode {set.mode}", "--mode {set.mode} --no-such-flag");
    let (line, out) = failing_run(&c, &file, &body);
    assert!(line.contains("the start command failed on node n"), "{out}");
    assert!(line.contains("--no-such-flag"), "the command: {out}");
    assert!(
        line.contains("unexpected argument"),
        "the program's stderr: {out}"
    );
    // Every node torn down: no process in any namespace, no node directory.
    assert_no_processes("flf4-");
    assert_no_node_dirs("flf4-");

    // A setup command that fails: the node, the command and its stderr; exit 255.
    let body = std::fs::read_to_string(example()).unwrap().replace(
        "[commands]\n",
        "[commands]\nsetup = \"echo setup broke on {node} >&2; exit 3\"\n",
    );
    let (line, out) = failing_run(&c, &file, &body);
    let n = ["n1", "n2", "n3"]
        .into_iter()
        .find(|n| line.contains(&format!("the setup command failed on node {n} (exit 3)")))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(&format!("setup broke on {n}")), "{out}");
    assert_no_node_dirs("flf4-");

    c.down();
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains("flf4-"),
        "namespaces left behind"
    );
}

/// Runs the system file `body` (written to `file`) for 5 s without faults, expecting it to
/// fail (exit 255) with one error line; returns that line and the whole output.
fn failing_run(c: &Cluster, file: &Path, body: &str) -> (String, String) {
    std::fs::write(file, body).unwrap();
    let (code, out, _) = c.run(&[
        "--system-file",
        file.to_str().unwrap(),
        "--time-limit",
        "5s",
        "--nemesis",
        "none",
    ]);
    assert_eq!(code, 255, "{out}");
    let line: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("faultline: error"))
        .collect();
    assert_eq!(line.len(), 1, "{out}");
    let line = line[0].to_owned();
    (line, out)
}

/// No node directory of the cluster `prefix` left, nor the (empty) directory that held them.
fn assert_no_node_dirs(prefix: &str) {
    for n in 1..=3 {
        let d = format!("/tmp/faultline-nodes/{prefix}n{n}");
        assert!(!Path::new(&d).exists(), "{d} left behind");
    }
    let base = format!("/tmp/faultline-nodes/{prefix}");
    assert!(!Path::new(&base).exists(), "{base} left behind");
}

#[test]
fn leader_command_instead_of_a_client_call() {
    if !control::prereq::privileged_or_skip("leader_command_instead_of_a_client_call", false) {
        return;
    }
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("SKIPPED: redis-cli not installed (apt-get install redis-tools)");
        return;
    }
    let c = Cluster::new("flf3-", "10.77.83.0/24");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leader-command.toml");
    let body = std::fs::read_to_string(example()).unwrap().replace(
        "resp = [\"ROLE\"]",
        "command = \"redis-cli -h {ip} -p {port} ROLE\"\nsplit = \"lines\"",
    );
    std::fs::write(&file, body).unwrap();
    let args = partitioned("7", "12s", "3s", "set");
    let (code, out, results) =
        c.run(&[&["--system-file", file.to_str().unwrap()][..], &args].concat());
    assert_eq!(code, 0, "{out}");
    assert!(types(&results).is_empty(), "{out}");
    assert!(out.contains("is ready; n"), "{out}");
}

/// Roles and stages: leaderkv on the first three of five nodes (`data`, the one role that
/// serves), a witness on the other two, deployed after the data nodes run: its setup fails
/// unless the first data node's pidfile is already there, which only the stage order makes
/// true (every node's setup would otherwise run at once). The run is valid under the default
/// faults, the probe and the final reads address the data nodes only, and the witnesses ran.
#[test]
fn roles_and_stages_deploy_in_order_and_only_serving_nodes_are_probed() {
    let test = "roles_and_stages_deploy_in_order_and_only_serving_nodes_are_probed";
    if !control::prereq::privileged_or_skip(test, false) {
        return;
    }
    let c = Cluster::with_defaults("flf6-", "10.77.80.0/24");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roles.toml");
    let body = std::fs::read_to_string(example())
        .unwrap()
        .replacen(
            "port = 7000\n",
            "port = 7000\nstages = [[\"data\"], [\"witness\"]]\n",
            1,
        )
        .replace("--peers {peers}", "--peers {peers.data}")
        + "\n[roles.data]\nnodes = [1, 2, 3]\n\n[roles.witness]\nnodes = \"rest\"\n\
           serves = false\nsetup = \"test -s {dir}/../{first.data}/leaderkv.pid\"\n\
           start = \"echo witness {node_index} of {role} after {nodes.data}; exec sleep 600\"\n\
           ready = { command = \"true\" }\n";
    std::fs::write(&file, &body).unwrap();
    let (code, out, results) = c.run(&[
        "--system-file",
        file.to_str().unwrap(),
        "--seed",
        "3",
        "--time-limit",
        "20s",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(types(&results).is_empty(), "{out}");
    let run = c.store.path().join("latest");
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let mut probed = std::collections::BTreeSet::new();
    for line in history.lines() {
        let op: serde_json::Value = serde_json::from_str(line).unwrap();
        if op["f"] == "leader" || op["f"] == "read_set" {
            if let Some(n) = op["node"].as_str() {
                probed.insert(n.to_owned());
            }
        }
    }
    assert_eq!(
        probed.into_iter().collect::<Vec<_>>(),
        ["n1", "n2", "n3"],
        "only the data nodes are probed and read"
    );
    let witness = std::fs::read_to_string(run.join("nodes/n5/stdout.log")).unwrap();
    assert_eq!(witness.trim(), "witness 5 of witness after n1,n2,n3");
}

/// The tests on `flf5-` take turns (one cluster prefix and subnet for all of them).
static FLF5: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// No process left in any of the cluster's namespaces.
fn assert_no_processes(prefix: &str) {
    for n in 1..=3 {
        let ns = format!("{prefix}n{n}");
        let pids = Command::new("ip")
            .args(["netns", "pids", &ns])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&pids.stdout).trim().is_empty(),
            "processes left in {ns}: {}",
            String::from_utf8_lossy(&pids.stdout)
        );
    }
}

/// The verdict of each checker in results.json.
fn checker_verdicts(results: &serde_json::Value) -> Vec<(String, String)> {
    results
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.get("valid").is_some())
                .map(|(k, v)| (k.clone(), v["valid"].to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The arguments of a run under partitions every `interval`: `seed`, `time_limit`, and the
/// workloads `workload`.
fn partitioned<'a>(
    seed: &'a str,
    time_limit: &'a str,
    interval: &'a str,
    workload: &'a str,
) -> [&'a str; 10] {
    [
        "--seed",
        seed,
        "--time-limit",
        time_limit,
        "--nemesis",
        "partition",
        "--nemesis-interval",
        interval,
        "--workload",
        workload,
    ]
}

/// Runs examples/systems/`name` with `args` on `flf5-` (taking its turn), hands the exit
/// code, output and results.json to `check`, then checks that no process is left.
fn example_run(name: &str, args: [&str; 10], check: impl FnOnce(i32, &str, &serde_json::Value)) {
    let _turn = FLF5.lock().unwrap_or_else(|p| p.into_inner());
    let c = Cluster::new("flf5-", "10.77.85.0/24");
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/systems")
        .join(name);
    let (code, out, results) =
        c.run(&[&["--system-file", file.to_str().unwrap()][..], &args].concat());
    check(code, &out, &results);
    assert_no_processes("flf5-");
}

#[test]
fn etcd_over_http_example_runs() {
    if !control::prereq::privileged_or_skip("etcd_over_http_example_runs", false) {
        return;
    }
    if !have("etcd") {
        eprintln!("SKIPPED: etcd not installed (apt-get install etcd-server)");
        return;
    }
    let args = partitioned("5", "20s", "3s", "set,unique-ids");
    example_run("etcd.toml", args, |code, out, results| {
        eprintln!(
            "etcd: exit {code}, checkers {:?}",
            checker_verdicts(results)
        );
        assert!(out.contains("etcd is ready; n"), "{out}");
        // etcd is linearizable: acknowledged puts survive partitions, revisions are unique,
        // and a leader cut off from the majority is no second leader (its claims are
        // unconfirmed: it cannot serve a linearizable read).
        assert_eq!(code, 0, "{:?}: {out}", types(results));
        for checker in ["set", "unique-ids", "dual-leader"] {
            assert_eq!(
                results[checker]["valid"],
                serde_json::json!(true),
                "{checker}: {out}"
            );
        }
        assert!(
            results["run"]["client_ops"].as_u64().unwrap_or(0) > 100,
            "{out}"
        );
    });
}

#[test]
fn postgres_patroni_example_runs() {
    if !control::prereq::privileged_or_skip("postgres_patroni_example_runs", false) {
        return;
    }
    if !have("patroni") || !have("etcd") || !have("psql") {
        eprintln!("SKIPPED: patroni, etcd or psql not installed");
        return;
    }
    let args = partitioned("4", "20s", "4s", "set,unique-ids");
    example_run("postgres-patroni.toml", args, |code, out, results| {
        eprintln!(
            "postgres-patroni: exit {code}, anomalies {:?}, checkers {:?}",
            types(results),
            checker_verdicts(results)
        );
        // Asynchronous replication may lose inserts when an isolated primary is demoted:
        // valid or invalid, but a verdict, with ops acknowledged through the wire protocol.
        assert!(code == 0 || code == 1, "{out}");
        assert!(out.contains("postgres-patroni is ready; n"), "{out}");
        assert!(
            results["run"]["client_ops"].as_u64().unwrap_or(0) > 100,
            "{out}"
        );
    });
}

#[test]
fn redis_sentinel_example_runs() {
    if !control::prereq::privileged_or_skip("redis_sentinel_example_runs", false) {
        return;
    }
    if !have("redis-server") || !have("redis-sentinel") {
        eprintln!("SKIPPED: redis-server/redis-sentinel not installed");
        return;
    }
    let args = partitioned("3", "12s", "3s", "set");
    example_run("redis-sentinel.toml", args, |code, out, results| {
        // Asynchronous replication may lose writes under a partition: valid or invalid, but
        // a verdict, with the primary found by ROLE.
        assert!(code == 0 || code == 1, "{out}");
        assert!(out.contains("redis-sentinel is ready; n1 leads"), "{out}");
        assert!(!results["valid"].is_null(), "no results.json: {out}");
    });
}
