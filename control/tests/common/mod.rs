//! Helpers shared by the privileged tests: snapshots of `ip netns list` / `ip link`, and a Drop
//! guard that brings a test's cluster down even when the test fails.

#![allow(dead_code)]

use std::path::PathBuf;

use control::cluster::{ClusterOptions, LocalCluster};

/// `ip netns list` and the link names of `ip -o link`, to compare before/after.
pub fn net_snapshot() -> (Vec<String>, Vec<String>) {
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let mut ns: Vec<String> = String::from_utf8_lossy(&netns.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    ns.sort();
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let mut ls: Vec<String> = String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|s| s.trim().split('@').next().unwrap().to_string())
        })
        .collect();
    ls.sort();
    (ns, ls)
}

/// Only names with `prefix`: other tests run in parallel and make their own.
pub fn ours(snapshot: &(Vec<String>, Vec<String>), prefix: &str) -> (Vec<String>, Vec<String>) {
    (
        snapshot
            .0
            .iter()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect(),
        snapshot
            .1
            .iter()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect(),
    )
}

/// Options for a test cluster with its own prefix and subnet.
pub fn opts(prefix: &str, subnet: &str, nodes: usize, ssh: bool) -> ClusterOptions {
    ClusterOptions {
        nodes,
        subnet: subnet.into(),
        prefix: prefix.into(),
        ssh,
        state_root: state_root(),
    }
}

pub fn state_root() -> PathBuf {
    control::cluster::default_state_root()
}

/// Brings the cluster of `prefix` down on drop (whatever state it is in).
pub struct DownGuard(pub String);

impl Drop for DownGuard {
    fn drop(&mut self) {
        if let Err(e) = LocalCluster::down_prefix(&state_root(), &self.0) {
            eprintln!("cleanup of cluster {} failed: {e}", self.0);
        }
    }
}
