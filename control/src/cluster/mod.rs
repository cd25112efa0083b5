//! [`LocalCluster`]: a cluster of network namespaces on a Linux bridge of this machine.
//!
//! Node `nI` lives in the namespace `<prefix>nI` (default prefix `fl-`, so `fl-n1`), attached by
//! a veth pair (`<prefix>nIh` on the host, `eth0` inside) to the bridge `<prefix>br0`, which holds
//! the subnet's first address (default subnet 10.77.0.0/24: bridge 10.77.0.1, node I at
//! 10.77.0.(10+I)), so the controller on the host reaches every node directly. A blackhole
//! route for the subnet's /16 keeps every packet for a cluster address on this machine.
//! With `ssh`, every node runs its own `sshd` on its address, port 22, with a host key and an
//! authorized client key generated for the cluster, and a known_hosts file listing every node.
//!
//! Every resource is written to the state file (`<state_root>/<prefix>/cluster.json`) *before*
//! it is created, so `down` (or the next `up`) removes exactly what a crashed run made, and
//! nothing else.
//!
//! - `plan`: names and the subnet, validated before anything is made.
//! - `build`: bringing the cluster up (namespaces, veths, bridge, routes, rules, sshd).
//! - `teardown`: taking it down, by what the state file records.
//! - `host`: host-side helpers (rules, routes, sshd configs, pids, commands, the global lock).

mod build;
mod host;
pub(crate) mod plan;
pub use plan::valid_prefix;
mod teardown;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::prereq;
use crate::remote::{Node, Remote};
use crate::ssh::{HostKeyCheck, SshAuth, SshOptions, SshRemote};

use host::*;
use plan::{Plan, Subnet};

/// Default namespace/link name prefix.
pub const DEFAULT_PREFIX: &str = "fl-";
/// Default subnet.
pub const DEFAULT_SUBNET: &str = "10.77.0.0/24";
/// Default directory holding one state folder per cluster prefix.
pub const DEFAULT_STATE_ROOT: &str = "/run/faultline";
/// Environment variable overriding [`DEFAULT_STATE_ROOT`].
pub const STATE_ROOT_ENV: &str = "FAULTLINE_STATE_DIR";

/// Options of [`LocalCluster::up`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterOptions {
    /// Number of nodes (`n1..nN`), 1..=200.
    pub nodes: usize,
    /// IPv4 subnet, a /24 or larger (`10.77.0.0/24`).
    pub subnet: String,
    /// Name prefix of namespaces and links (at most 8 characters).
    pub prefix: String,
    /// Run an sshd per node.
    pub ssh: bool,
    /// Where state folders live (default [`DEFAULT_STATE_ROOT`], or `$FAULTLINE_STATE_DIR`).
    pub state_root: PathBuf,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 5,
            subnet: DEFAULT_SUBNET.into(),
            prefix: DEFAULT_PREFIX.into(),
            ssh: false,
            state_root: default_state_root(),
        }
    }
}

/// [`DEFAULT_STATE_ROOT`] unless `$FAULTLINE_STATE_DIR` is set.
pub fn default_state_root() -> PathBuf {
    std::env::var_os(STATE_ROOT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_ROOT))
}

/// One node of the local cluster as recorded in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub node: Node,
    /// Network namespace name.
    pub netns: String,
    /// Host side of the veth pair.
    pub veth: String,
    /// pid of this node's sshd, once started.
    pub sshd_pid: Option<u32>,
}

/// The state file: everything the cluster made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub options: ClusterOptions,
    /// Set once `up` finished.
    pub complete: bool,
    pub bridge: String,
    pub bridge_addr: String,
    pub nodes: Vec<NodeState>,
    /// The blackhole route of the subnet's /16 (e.g. `10.77.0.0/16`) when it is faultline's
    /// (tagged `proto 77`; removed by the last cluster using it), `None` when someone else's
    /// route for that /16 was there already.
    pub blackhole: Option<String>,
    /// iptables FORWARD rules this cluster inserted (as `iptables` argument lists without -I/-D).
    pub forward_rules: Vec<Vec<String>>,
    /// Files and directories this cluster created (removed on `down`).
    pub files: Vec<PathBuf>,
    /// Client private key (with `ssh`).
    pub client_key: Option<PathBuf>,
    /// known_hosts listing every node's host key (with `ssh`).
    pub known_hosts: Option<PathBuf>,
}

/// A local cluster that is up (or being brought up).
#[derive(Debug, Clone)]
pub struct LocalCluster {
    state: ClusterState,
    dir: PathBuf,
}

/// Environment hook for tests: `netns` or `sshd` makes `up` stop after that stage (printing
/// `faultline-test: paused at STAGE` on stderr) and sleep, so a test can SIGKILL it half-way.
pub const PAUSE_HOOK_ENV: &str = "FAULTLINE_TEST_UP_PAUSE";

const STATE_FILE: &str = "cluster.json";

impl LocalCluster {
    /// The nodes (names and addresses) a cluster with `opts` has, without bringing it up;
    /// bad options are the same error `up` gives.
    pub fn planned_nodes(opts: &ClusterOptions) -> Result<Vec<Node>> {
        Ok(plan::Plan::new(opts)?
            .state
            .nodes
            .into_iter()
            .map(|n| n.node)
            .collect())
    }

    /// Brings a cluster up. If a cluster with the same prefix exists, keeps it when it is complete,
    /// healthy and has the same options; otherwise (half-built, stale, different options) tears it
    /// down and builds a fresh one. Blocking (runs `ip`, `sshd`...): from async code, call it
    /// inside `tokio::task::spawn_blocking`.
    pub fn up(opts: &ClusterOptions) -> Result<Self> {
        let plan = Plan::new(opts)?;
        prereq::check(&prereq::cluster_tools(opts.ssh))?;
        let _lock = GlobalLock::take(&opts.state_root)?;
        let dir = cluster_dir(&opts.state_root, &opts.prefix);
        if let Some(old) = Self::read_state(&dir)? {
            if old.state.complete && old.state.options == *opts && old.problems().is_empty() {
                return Ok(old);
            }
            tracing::info!(
                "rebuilding the half-built or stale local cluster {}",
                dir.display()
            );
            old.teardown()?;
        } else if let Some(orphan) = Self::orphan(&opts.state_root, &opts.prefix) {
            tracing::warn!(
                "removing namespaces and links named {}* left without a state file",
                opts.prefix
            );
            orphan.teardown()?;
        }
        let mut c = LocalCluster {
            state: plan.state,
            dir,
        };
        c.build(&plan.subnet)?;
        Ok(c)
    }

    /// [`LocalCluster::up`] on a blocking thread, for async callers.
    #[allow(clippy::result_large_err)]
    pub async fn up_async(opts: ClusterOptions) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::up(&opts))
            .await
            .map_err(|e| Error::local("bring the local cluster up", e))?
    }

    /// [`LocalCluster::down`] on a blocking thread, for async callers.
    #[allow(clippy::result_large_err)]
    pub async fn down_async(self) -> Result<()> {
        tokio::task::spawn_blocking(move || self.down())
            .await
            .map_err(|e| Error::local("bring the local cluster down", e))?
    }

    /// Loads the cluster with `prefix` from its state file under `state_root`, if any.
    pub fn load(state_root: &Path, prefix: &str) -> Result<Option<Self>> {
        Self::read_state(&cluster_dir(state_root, prefix))
    }

    /// Tears down the cluster with `prefix` if a state file exists. Returns whether there was one.
    pub fn down_prefix(state_root: &Path, prefix: &str) -> Result<bool> {
        prereq::check(&prereq::cluster_tools(false))?;
        let lock = GlobalLock::take(state_root)?;
        let r = match Self::load(state_root, prefix)? {
            Some(c) => c.teardown().map(|_| true),
            None => match Self::orphan(state_root, prefix) {
                Some(c) => c.teardown().map(|_| true),
                None => Ok(false),
            },
        };
        lock.remove_if_last();
        r
    }

    /// Removes everything the state file lists (tolerating what is already gone), then the state
    /// folder. Errors if something could not be removed (the state file is kept then).
    pub fn down(self) -> Result<()> {
        prereq::check(&prereq::cluster_tools(false))?;
        let lock = GlobalLock::take(&self.state.options.state_root)?;
        let r = self.teardown();
        lock.remove_if_last();
        r
    }

    /// What is wrong with a loaded cluster (empty when it is complete and healthy).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.state.complete {
            p.push("bring-up did not finish (a crashed or killed `cluster up`)".to_string());
        }
        if !Path::new("/sys/class/net")
            .join(&self.state.bridge)
            .exists()
        {
            p.push(format!("bridge {} is missing", self.state.bridge));
        }
        for n in &self.state.nodes {
            if !Path::new("/run/netns").join(&n.netns).exists() {
                p.push(format!(
                    "namespace {} of node {} is missing",
                    n.netns, n.node.name
                ));
            }
            if !Path::new("/sys/class/net").join(&n.veth).exists() {
                p.push(format!(
                    "link {} of node {} is missing",
                    n.veth, n.node.name
                ));
            }
            if self.state.options.ssh {
                match n.sshd_pid {
                    Some(pid) if pid_alive(pid) => {}
                    _ => p.push(format!("sshd of node {} is not running", n.node.name)),
                }
            }
        }
        p
    }

    /// The state as recorded.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// The state folder of this cluster.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The nodes `n1..nN` with their addresses.
    pub fn nodes(&self) -> Vec<Node> {
        self.state.nodes.iter().map(|n| n.node.clone()).collect()
    }

    /// The network namespace of the node named `name`.
    pub fn netns(&self, name: &str) -> Result<&str> {
        Ok(&self.node_state(name)?.netns)
    }

    /// A [`crate::NetnsRemote`] for the node named `name`.
    pub fn remote(&self, name: &str) -> Result<Arc<dyn Remote>> {
        let n = self.node_state(name)?;
        Ok(Arc::new(crate::NetnsRemote::new(
            n.node.clone(),
            n.netns.clone(),
        )))
    }

    /// [`crate::NetnsRemote`]s for every node, in order.
    pub fn remotes(&self) -> Vec<Arc<dyn Remote>> {
        self.state
            .nodes
            .iter()
            .map(|n| {
                Arc::new(crate::NetnsRemote::new(n.node.clone(), n.netns.clone()))
                    as Arc<dyn Remote>
            })
            .collect()
    }

    /// SSH options that reach this cluster's sshds (root, the cluster key, the cluster
    /// known_hosts with strict checking). Errors if the cluster runs no sshd.
    pub fn ssh_options(&self) -> Result<SshOptions> {
        match (&self.state.client_key, &self.state.known_hosts) {
            (Some(key), Some(kh)) if self.state.options.ssh => Ok(SshOptions {
                user: "root".into(),
                port: 22,
                auth: SshAuth::Key(key.clone()),
                host_key_check: HostKeyCheck::KnownHosts(kh.clone()),
                ..SshOptions::default()
            }),
            _ => Err(Error::Invalid {
                action: "get SSH options of the local cluster".into(),
                cause: "it was brought up without --ssh (run `faultline cluster up --ssh`)".into(),
            }),
        }
    }

    /// Connects an [`crate::SshRemote`] to the node named `name` through its sshd.
    pub async fn ssh_remote(&self, name: &str) -> Result<Arc<dyn Remote>> {
        let node = self.node_state(name)?.node.clone();
        let opts = self.ssh_options()?;
        Ok(Arc::new(SshRemote::connect(node, opts).await?))
    }

    fn node_state(&self, name: &str) -> Result<&NodeState> {
        self.state
            .nodes
            .iter()
            .find(|n| n.node.name == name)
            .ok_or_else(|| {
                Error::local(
                    format!("find node {name}"),
                    format!(
                        "the local cluster has nodes n1..n{}",
                        self.state.nodes.len()
                    ),
                )
            })
    }

    /// Namespaces and links that follow this prefix's naming scheme (`<prefix>nI`,
    /// `<prefix>nIh`, `<prefix>br0`) but have no state file (it was deleted, or the state
    /// directory was changed): the prefix is faultline's, so they are adopted for removal.
    fn orphan(state_root: &Path, prefix: &str) -> Option<Self> {
        let node_index = |name: &str, suffix: &str| -> Option<usize> {
            let rest = name
                .strip_prefix(prefix)?
                .strip_prefix('n')?
                .strip_suffix(suffix)?;
            if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            rest.parse().ok()
        };
        let names = |dir: &str| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let netns = names("/run/netns");
        let links = names("/sys/class/net");
        let bridge = format!("{prefix}br0");
        let max = netns
            .iter()
            .filter_map(|n| node_index(n, ""))
            .chain(links.iter().filter_map(|n| node_index(n, "h")))
            .max();
        let has_bridge = links.contains(&bridge);
        if max.is_none() && !has_bridge {
            return None;
        }
        let nodes = (1..=max.unwrap_or(0))
            .map(|i| NodeState {
                node: Node::new(format!("n{i}"), ""),
                netns: format!("{prefix}n{i}"),
                veth: format!("{prefix}n{i}h"),
                sshd_pid: None,
            })
            .collect();
        let options = ClusterOptions {
            prefix: prefix.into(),
            state_root: state_root.into(),
            ..Default::default()
        };
        let state = ClusterState {
            forward_rules: vec![forward_rule(&bridge, prefix)],
            options,
            complete: false,
            bridge,
            bridge_addr: String::new(),
            nodes,
            blackhole: None,
            files: Vec::new(),
            client_key: None,
            known_hosts: None,
        };
        Some(LocalCluster {
            state,
            dir: cluster_dir(state_root, prefix),
        })
    }

    fn read_state(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let state: ClusterState = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::local(format!("read the cluster state {}", path.display()), e)
                })?;
                Ok(Some(LocalCluster {
                    state,
                    dir: dir.to_path_buf(),
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::local(
                format!("read the cluster state {}", path.display()),
                e,
            )),
        }
    }

    fn save(&self) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(&self.state).expect("state serializes");
        (|| {
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        })()
        .map_err(|e| Error::local(format!("write the cluster state {}", path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.77.3.0/24").unwrap();
        assert_eq!(s.host(11).to_string(), "10.77.3.11");
        assert_eq!(s.blackhole(), "10.77.0.0/16");
        assert!(Subnet::parse("8.8.8.0/24").is_err());
        assert!(Subnet::parse("10.0.0.0/8").is_err());
        assert!(Subnet::parse("10.77.0.0").is_err());
    }

    #[test]
    fn plan_names_fit() {
        let o = ClusterOptions {
            prefix: "flt3abcd".into(),
            nodes: 200,
            subnet: "10.77.0.0/24".into(),
            ..Default::default()
        };
        let p = Plan::new(&o).unwrap();
        assert!(p.state.bridge.len() <= 15);
        assert!(
            p.state
                .nodes
                .iter()
                .all(|n| n.veth.len() <= 15 && n.netns.starts_with("flt3abcd"))
        );
        assert_eq!(p.state.nodes[0].node.addr, "10.77.0.11");
        assert!(
            Plan::new(&ClusterOptions {
                prefix: "Bad!".into(),
                ..Default::default()
            })
            .is_err()
        );
    }
}
