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

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::remote::{Node, Remote};
use crate::ssh::SshOptions;

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
    /// The blackhole route (e.g. `10.77.0.0/16`) if this cluster added it.
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

impl LocalCluster {
    /// Brings a cluster up. If a cluster with the same prefix exists, keeps it when it is complete,
    /// healthy and has the same options; otherwise (half-built, stale, different options) tears it
    /// down and builds a fresh one. Blocking (runs `ip`, `sshd`...): from async code, call it
    /// inside `tokio::task::spawn_blocking`.
    pub fn up(opts: &ClusterOptions) -> Result<Self> {
        Err(Error::local(
            "bring the local cluster up",
            format!("not implemented yet ({})", opts.prefix),
        ))
    }

    /// Loads the cluster with `prefix` from its state file under `state_root`, if any.
    pub fn load(state_root: &std::path::Path, prefix: &str) -> Result<Option<Self>> {
        let _ = (state_root, prefix);
        Ok(None)
    }

    /// Removes everything the state file lists (tolerating what is already gone), then the state.
    pub fn down(self) -> Result<()> {
        Ok(())
    }

    /// The state as recorded.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// The state folder of this cluster.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The nodes `n1..nN` with their addresses.
    pub fn nodes(&self) -> Vec<Node> {
        self.state.nodes.iter().map(|n| n.node.clone()).collect()
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
        Err(Error::local(
            "get SSH options",
            "the cluster was brought up without --ssh",
        ))
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
}
