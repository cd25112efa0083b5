//! What the deploy recipes share: one directory per node under the recipe's base directory,
//! daemons run from it through pidfiles (control's daemon helpers), the nemesis' handle on
//! them, and the steps every recipe takes the same way (prepare the directory, start, kill,
//! remove the directory, name the logs), with the same error messages.

use std::collections::BTreeMap;

use crate::Context;
use async_trait::async_trait;
use control::{DaemonSpec, Exec, Node, Remote, shell_quote};
use nemesis::{ClockMode, NodeName, PidfileSystem, SystemControl};

/// The directory of `node` under `base` (`<base>/<node>`).
pub fn node_dir(base: &str, node: &str) -> String {
    format!("{}/{node}", base.trim_end_matches('/'))
}

/// The node of `nodes` that `remote` reaches.
pub fn member(nodes: &[Node], remote: &dyn Remote) -> crate::Result<Node> {
    let name = &remote.node().name;
    nodes
        .iter()
        .find(|n| n.name == *name)
        .cloned()
        .with_context(|| format!("{name} is not a node of this system"))
}

/// `spec` run in the node directory `dir`, with the clock shim of `clock` (if any) for `node`
/// in its environment.
pub fn in_dir(
    mut spec: DaemonSpec,
    dir: &str,
    node: &str,
    clock: Option<&ClockMode>,
) -> DaemonSpec {
    if let Some(clock) = clock {
        spec.env = nemesis::shim_env(clock, node);
    }
    spec.chdir = Some(dir.to_owned());
    spec
}

/// One daemon a node: `spec(node, its directory)`, run in that directory (see [`in_dir`]).
pub fn per_node(
    nodes: &[Node],
    base_dir: &str,
    clock: Option<&ClockMode>,
    mut spec: impl FnMut(&Node, &str) -> DaemonSpec,
) -> PidfileSystem {
    let mut specs = BTreeMap::new();
    for n in nodes {
        let dir = node_dir(base_dir, &n.name);
        specs.insert(n.name.clone(), in_dir(spec(n, &dir), &dir, &n.name, clock));
    }
    PidfileSystem {
        specs,
        ..PidfileSystem::default()
    }
}

/// The nemesis' handle on a system whose faults hit one pidfile daemon a node: the daemons,
/// and the leader the probe saw last.
#[derive(Debug)]
pub struct Control {
    daemons: PidfileSystem,
    /// Updated by the runner's leader probe.
    pub leader: nemesis::LeaderView,
}

impl Control {
    /// Controls `daemons`; `leader` is updated by the runner's leader probe.
    pub fn new(daemons: PidfileSystem, leader: nemesis::LeaderView) -> Self {
        Control { daemons, leader }
    }
}

#[async_trait]
impl SystemControl for Control {
    async fn pids(&self, remote: &dyn Remote) -> nemesis::Result<Vec<u32>> {
        self.daemons.pids(remote).await
    }
    async fn kill(&self, remote: &dyn Remote) -> nemesis::Result<()> {
        self.daemons.kill(remote).await
    }
    async fn start(&self, remote: &dyn Remote) -> nemesis::Result<()> {
        self.daemons.start(remote).await
    }
    async fn leave(&self, remote: &dyn Remote) -> nemesis::Result<()> {
        self.daemons.leave(remote).await
    }
    async fn join(&self, remote: &dyn Remote) -> nemesis::Result<()> {
        self.daemons.join(remote).await
    }
    async fn leader(&self) -> Option<NodeName> {
        self.leader.leader()
    }
    async fn running(&self, remote: &dyn Remote) -> nemesis::Result<Option<bool>> {
        self.daemons.running(remote).await
    }
    fn on_exit(&self) -> nemesis::ExitPolicy {
        self.daemons.on_exit()
    }
}

/// Starts the daemons `d` on `node`; the error names `what` (`failed to start etcd on n1`).
pub async fn start(d: &dyn SystemControl, node: &dyn Remote, what: &str) -> crate::Result<()> {
    d.start(node)
        .await
        .with_context(failed("start", what, node))
}

/// SIGKILLs the daemons `d` on `node` (stopped, i.e. paused, ones too); the error names `what`.
pub async fn kill(d: &dyn SystemControl, node: &dyn Remote, what: &str) -> crate::Result<()> {
    d.kill(node).await.with_context(failed("kill", what, node))
}

fn failed(verb: &str, what: &str, node: &dyn Remote) -> impl FnOnce() -> String {
    let msg = format!("failed to {verb} {what} on {}", node.node().name);
    || msg
}

/// Runs `script(quoted dir)` on `node`, the shell commands that (re)create the node
/// directory `dir` (`rm -rf {d} && mkdir -p {d} ...`).
pub async fn prepare_dir(
    node: &dyn Remote,
    dir: &str,
    script: impl FnOnce(&str) -> String,
) -> crate::Result<()> {
    node.exec(&Exec::sh(script(&shell_quote(dir))))
        .await
        .with_context(|| format!("failed to prepare {dir} on {}", node.node().name))?;
    Ok(())
}

/// Removes the node directory `dir` from `node`.
pub async fn remove_dir(node: &dyn Remote, dir: &str) -> crate::Result<()> {
    node.exec(&Exec::sh(format!("rm -rf {}", shell_quote(dir))))
        .await
        .with_context(|| format!("failed to remove {dir} on {}", node.node().name))?;
    Ok(())
}

/// The files `names` of the node directory `dir`, kept under their own names.
pub fn logs(dir: &str, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|f| (format!("{dir}/{f}"), f.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_dirs_and_logs() {
        assert_eq!(node_dir("/tmp/x/", "n1"), "/tmp/x/n1");
        assert_eq!(node_dir("/tmp/x", "n2"), "/tmp/x/n2");
        assert_eq!(
            logs("/d", &["a.log", "b.log"]),
            vec![
                ("/d/a.log".to_string(), "a.log".to_string()),
                ("/d/b.log".to_string(), "b.log".to_string())
            ]
        );
    }

    #[test]
    fn daemons_run_in_their_node_directory() {
        let nodes = vec![Node::new("n1", "10.0.0.1"), Node::new("n2", "10.0.0.2")];
        let d = per_node(&nodes, "/b", None, |n, dir| {
            DaemonSpec::new("p", format!("{dir}/p.pid"), format!("{dir}/{}.log", n.name))
        });
        let s = &d.specs["n2"];
        assert_eq!(s.chdir.as_deref(), Some("/b/n2"));
        assert_eq!(s.pidfile, "/b/n2/p.pid");
        assert_eq!(s.logfile, "/b/n2/n2.log");
        assert!(s.env.is_empty());
    }
}
