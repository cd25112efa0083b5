//! `faultline test` over SSH, the way it runs against VMs (root; skipped with a loud message
//! otherwise unless `FAULTLINE_REQUIRE_PRIVILEGED=1`). A local cluster `fle8-`
//! (10.77.68.0/24) runs an sshd per node; then:
//!
//! - `--ssh`: deploy, faults (partition, pause, kill, clock through the shim), log collection
//!   and teardown all go through the nodes' sshds: correct leaderkv is valid;
//! - `--nodes-file` with explicit SSH options (the real-hosts path, no namespace entered):
//!   a seeded bug is found (lost writes), and no rule, process or file is left on the nodes;
//! - an unknown host key and an unreachable host are one clear error each, exit 255, with
//!   nothing deployed.

use std::path::Path;
use std::process::Command;

mod common;

use common::{BIN, anomaly_types, faultline, text};

const P: &str = "fle8-";
const SUBNET: &str = "10.77.68.0/24";

/// Brings the cluster down when dropped (even when the test fails).
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["cluster", "down", "--prefix", P])
            .output();
    }
}

fn results(store: &Path) -> serde_json::Value {
    std::fs::read_to_string(store.join("latest/results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn test_json(store: &Path) -> serde_json::Value {
    std::fs::read_to_string(store.join("latest/test.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[test]
fn test_runs_over_ssh_as_against_vms() {
    if !control::prereq::privileged_or_skip("test_runs_over_ssh_as_against_vms", true) {
        return;
    }
    let _down = Down;
    let o = Command::new(BIN)
        .args([
            "cluster", "up", "--nodes", "3", "--ssh", "--prefix", P, "--subnet", SUBNET,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let store = tempfile::tempdir().unwrap();
    let store_s = store.path().to_str().unwrap().to_string();

    // 1. --ssh: the local cluster's sshds carry everything, clock faults included.
    let o = faultline()
        .args([
            "test",
            "--ssh",
            "--nodes",
            "3",
            "--prefix",
            P,
            "--subnet",
            SUBNET,
            "--seed",
            "21",
            "--time-limit",
            "20s",
            "--nemesis",
            "partition,pause,kill,clock",
            "--nemesis-interval",
            "3s",
            "--workload",
            "set,unique-ids",
            "--concurrency",
            "5",
            "--recovery-wait",
            "8s",
            "--store",
            &store_s,
        ])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "--ssh run: {out}");
    assert!(out.contains("verdict: VALID"), "{out}");
    let t = test_json(store.path());
    assert_eq!(t["cluster"]["via"], "ssh", "{t}");
    let log = std::fs::read_to_string(store.path().join("latest/nodes/n1/leaderkv.log"));
    assert!(log.is_ok(), "n1's log was not collected over SSH: {out}");
    common::no_faultline_rules(P, 3).unwrap();

    // 2. --nodes-file: the real-hosts path (names of our own, explicit SSH options).
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes");
    std::fs::write(
        &nodes,
        "# name address\nn1 10.77.68.11\nn2 10.77.68.12\nn3 10.77.68.13\n",
    )
    .unwrap();
    let state = control::cluster::default_state_root().join("fle8");
    let key = state.join("id_ed25519");
    let kh = state.join("known_hosts");
    let host_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "test",
            "--nodes-file",
            nodes.to_str().unwrap(),
            "--ssh-user",
            "root",
            "--ssh-key",
            key.to_str().unwrap(),
            "--prefix",
            "fle8h-",
            "--store",
            &store_s,
            "--workload",
            "set",
            "--concurrency",
            "5",
            "--recovery-wait",
            "8s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mut found = Vec::new();
    for seed in ["31", "32"] {
        let o = faultline()
            .args(host_args(&[
                "--known-hosts",
                kh.to_str().unwrap(),
                "--seed",
                seed,
                "--bug",
                "ack-before-replicate",
                "--time-limit",
                "20s",
            ]))
            .output()
            .unwrap();
        let out = text(&o);
        let r = results(store.path());
        let types = anomaly_types(&r);
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "nodes-file run, seed {seed}: {out}"
        );
        assert_eq!(test_json(store.path())["cluster"]["via"], "hosts");
        common::no_faultline_rules(P, 3).unwrap();
        assert!(
            !Path::new("/tmp/faultline-nodes/fle8h-").exists(),
            "the nodes' directory was left behind: {out}"
        );
        if o.status.code() == Some(1) && types.iter().any(|t| t == "lost-write") {
            found.push(seed);
            break;
        }
        eprintln!("nodes-file seed {seed}: no lost-write (found {types:?})");
    }
    assert!(
        !found.is_empty(),
        "ack-before-replicate over --nodes-file: no lost write in 2 seeds"
    );

    // 3. An unknown host key: which node, how to trust it; nothing deployed.
    let empty = dir.path().join("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let o = faultline()
        .args(host_args(&[
            "--known-hosts",
            empty.to_str().unwrap(),
            "--time-limit",
            "5s",
        ]))
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(255), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("10.77.68.1") && err.contains("ssh-keyscan"),
        "{out}"
    );
    // 4. An unreachable host (an address of the run's own subnet that no node has).
    std::fs::write(&nodes, "n1 10.77.68.11\nn9 10.77.68.99\n").unwrap();
    let o = faultline()
        .args(host_args(&[
            "--known-hosts",
            kh.to_str().unwrap(),
            "--ssh-connect-attempts",
            "1",
            "--time-limit",
            "5s",
        ]))
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(255), "{out}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("10.77.68.99"),
        "{out}"
    );
    assert!(!Path::new("/tmp/faultline-nodes/fle8h-").exists(), "{out}");
}
