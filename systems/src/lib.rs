//! Systems under test: a deploy recipe ([`System`]) plus a [`workloads::Client`].
//!
//! - [`artifact`]: the programs faultline ships beside itself (leaderkv, the clock shim).
//! - [`file`]: a system described in a TOML file (`--system-file`); every built-in system
//!   (leaderkv, redis-sentinel, etcd, postgres-patroni) is its embedded file (`registry`).
//! - [`proto`]: the wire protocols the clients speak (RESP and its leader-following router,
//!   HTTP, PostgreSQL).
//! - [`daemon`]: node directories, pidfile daemons and the nemesis' handle on them, and the
//!   prepare/start/kill/remove steps, with the same error messages everywhere.
//! - [`Error`]: the one error type (invalid request vs failure) and its [`Context`].
//! - [`registry`]: the built-in systems listed once ([`registry::Builtin`]): names, the
//!   options each honours, the system file that defines each.
//! - [`packages`]: the OS packages a system requires on its nodes, checked and installed.

mod error;

pub mod artifact;
pub mod daemon;
pub mod file;
pub mod packages;
pub mod proto;
pub mod registry;

pub use error::{Context, Error, Result};
pub(crate) use error::{bail, err};

use history::vocab;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use control::Remote;
use nemesis::SystemControl;

/// The completion of `op` on `node` when the system may or may not have done it (an
/// exchange that broke after the request may have reached the server, `may_have_applied`; a
/// success answer that makes no sense for the op): `info`, but `fail` for reads, which change
/// nothing, and when the request never reached the server.
pub fn unknown_unless_read(
    op: &workloads::Invocation,
    node: &str,
    may_have_applied: bool,
    why: impl Into<String>,
) -> workloads::Completion {
    if op.is_read() || !may_have_applied {
        workloads::Completion::fail(op.value.clone(), node, why)
    } else {
        workloads::Completion::info(op.value.clone(), node, why)
    }
}

/// The node names of `nodes`, in order.
pub fn names(nodes: &[control::Node]) -> Vec<String> {
    nodes.iter().map(|n| n.name.clone()).collect()
}

/// What the leader probe learned from one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleInfo {
    /// `leader`, `follower` or `candidate`.
    pub role: String,
    pub term: Option<i64>,
    /// Who this node believes leads.
    pub leader: Option<String>,
    /// The last record applied to what reads see (for the convergence wait), if known.
    pub applied: Option<i64>,
    /// The last record known committed, if known.
    pub committed: Option<i64>,
}

/// A deploy recipe for one system on a set of nodes (reached through `Remote`s).
#[async_trait]
pub trait System: Send + Sync {
    /// The system's name (`leaderkv`).
    fn name(&self) -> &str;
    /// Installs the system on a node (binary, directories), removing what an earlier run left.
    async fn setup(&self, node: &dyn Remote) -> crate::Result<()>;
    /// Starts the system's process on a node.
    async fn start(&self, node: &dyn Remote) -> crate::Result<()>;
    /// SIGKILLs the system's process on a node.
    async fn kill(&self, node: &dyn Remote) -> crate::Result<()>;
    /// Stops the system and removes its files from a node (after log collection).
    async fn teardown(&self, node: &dyn Remote) -> crate::Result<()>;
    /// Files on a node worth keeping with the run (remote path, local file name).
    fn log_files(&self, node: &str) -> Vec<(String, String)>;
    /// Pause/resume/kill/restart targets and leader lookup for the nemesis.
    fn control(&self) -> Arc<dyn SystemControl>;
    /// Asks one node who leads (the leader probe), within `timeout`.
    async fn role(&self, node: &str, timeout: Duration) -> crate::Result<RoleInfo>;
    /// A new client of the system: its op timeout, where its reads go.
    fn client(&self, opts: workloads::ClientOptions) -> Box<dyn workloads::Client>;
    /// The nodes clients, the leader probe and the final reads address, in order.
    fn nodes(&self) -> Vec<String>;

    /// Whether a client reads a node's whole state as a digest (op `digest`), compared across
    /// nodes at the end of every run.
    fn reads_digest(&self) -> bool {
        false
    }

    /// The deploy order: each stage's nodes are set up and started (and ready) before the
    /// next stage's. Every node of the cluster is in one stage.
    fn stages(&self) -> Vec<Vec<String>> {
        vec![self.nodes()]
    }

    /// How long the cluster may take, after the last stage, until one leader is known to
    /// every node ([`System::ready`]).
    fn ready_timeout(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// The node that leads now, as the nodes say: the self-declared leader of the highest
    /// term among those that answer within `timeout`.
    #[allow(dead_code)] // discovery for callers without a running probe (replay, shrink)
    async fn primary(&self, timeout: Duration) -> Option<String> {
        let mut best: Option<(i64, String)> = None;
        for n in self.nodes() {
            if let Ok(r) = self.role(&n, timeout).await {
                if r.role == vocab::ROLE_LEADER {
                    let t = r.term.unwrap_or(0);
                    if best.as_ref().is_none_or(|(bt, _)| t > *bt) {
                        best = Some((t, n));
                    }
                }
            }
        }
        best.map(|(_, n)| n)
    }

    /// Waits until one node leads and every node answers and names it, within `limit`.
    async fn ready(&self, limit: Duration) -> crate::Result<String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut last = String::from("no node answered");
        loop {
            let mut leaders = Vec::new();
            let mut views = Vec::new();
            let mut all = true;
            for n in self.nodes() {
                match self.role(&n, Duration::from_millis(500)).await {
                    Ok(r) => {
                        if r.role == vocab::ROLE_LEADER {
                            leaders.push(n.clone());
                        }
                        views.push(r.leader.clone());
                    }
                    Err(e) => {
                        all = false;
                        last = format!("{n}: {e:#}");
                    }
                }
            }
            if all && leaders.len() == 1 && views.iter().all(|v| v.as_deref() == Some(&leaders[0]))
            {
                return Ok(leaders.remove(0));
            }
            if all {
                last = format!("leaders {leaders:?}, views {views:?}");
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "the system was not ready within {limit:?} (one leader known to every node): {last}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
