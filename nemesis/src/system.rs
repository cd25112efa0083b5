//! [`SystemControl`]: what the nemesis needs from the system under test to pause, kill and
//! restart it, and to find its leader; [`PidfileSystem`], an implementation on control's
//! daemon helpers (one daemon per node, known by its pidfile); [`ExitPolicy`], what the
//! runner does when a process exits that no fault killed.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use control::{DaemonSpec, Exec, Remote};

use crate::error::{Error, Result};
use crate::grudge::NodeName;

/// The system's processes on a node, as the nemesis sees them.
#[async_trait]
pub trait SystemControl: Send + Sync + std::fmt::Debug {
    /// Pids of the system's processes on the node (paused with SIGSTOP, resumed with
    /// SIGCONT; a pid that leads a process group is signalled as the whole group).
    async fn pids(&self, remote: &dyn Remote) -> Result<Vec<u32>>;
    /// SIGKILLs the system's processes on the node.
    async fn kill(&self, remote: &dyn Remote) -> Result<()>;
    /// Starts the system on the node again (after a kill).
    async fn start(&self, remote: &dyn Remote) -> Result<()>;
    /// Removes the node from the cluster by the system's own procedure: its processes
    /// stopped and its data wiped, so that [`SystemControl::join`] brings it back as a new
    /// member. Systems that cannot say how refuse.
    async fn leave(&self, remote: &dyn Remote) -> Result<()> {
        Err(Error::other(
            format!("remove {} from the cluster", remote.node().name),
            "the system does not say how a node leaves and joins",
        ))
    }
    /// Adds the node (removed by [`SystemControl::leave`]) again as a new member: the
    /// system's join procedure (a snapshot of the leader, then its log from there), then its
    /// start.
    async fn join(&self, remote: &dyn Remote) -> Result<()> {
        Err(Error::other(
            format!("add {} to the cluster", remote.node().name),
            "the system does not say how a node leaves and joins",
        ))
    }
    /// The node that currently leads, if known (for `leader` targets and `isolate-leader`).
    async fn leader(&self) -> Option<NodeName> {
        None
    }
    /// Whether the node's main process runs; `None` when this system cannot tell (then the
    /// runner does not watch it).
    async fn running(&self, _remote: &dyn Remote) -> Result<Option<bool>> {
        Ok(None)
    }
    /// What the runner does when the main process exits without a `kill` fault.
    fn on_exit(&self) -> ExitPolicy {
        ExitPolicy::Leave
    }
}

/// What the runner does when a node's main process exits by itself (a system that fences
/// itself, a crash): it always records a `process-exit` op in the history; then it leaves
/// the node down, or starts it again (`process-restart`), as a supervisor would.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitPolicy {
    /// Leave it down.
    #[default]
    Leave,
    /// Run the system's start again (retried until it succeeds or the run ends).
    Restart,
}

/// One daemon per node, started with control's `start_daemon` from a [`DaemonSpec`].
#[derive(Debug, Clone, Default)]
pub struct PidfileSystem {
    /// The daemon of each node.
    pub specs: BTreeMap<NodeName, DaemonSpec>,
    /// More pidfiles per node whose processes are paused and killed with the daemon (a
    /// failover agent beside its database: repmgrd beside postgres). The daemon's start is
    /// what brings them back after a kill.
    pub also: BTreeMap<NodeName, Vec<String>>,
    /// A command per node that prints more pids (separated by whitespace) to pause and kill
    /// with the daemon: the processes of a cgroup (`cat .../cgroup.procs`), a process's
    /// children. Run on the node at each fault, so it sees the processes of that moment.
    pub pids_command: BTreeMap<NodeName, String>,
    /// What happens when a daemon exits by itself.
    pub on_exit: ExitPolicy,
    /// Per node, the command that removes it after its processes are killed (wipes its
    /// data); a system without one cannot take the membership fault.
    pub leave: BTreeMap<NodeName, String>,
    /// Per node, a command run before the start that has it join as a new member (none:
    /// the start alone joins an empty node).
    pub join: BTreeMap<NodeName, String>,
}

impl PidfileSystem {
    fn also_of(&self, remote: &dyn Remote) -> &[String] {
        self.also
            .get(&remote.node().name)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The pids `pids_command` prints on the node now (none without one).
    async fn listed(&self, remote: &dyn Remote) -> Result<Vec<u32>> {
        let Some(cmd) = self.pids_command.get(&remote.node().name) else {
            return Ok(Vec::new());
        };
        let out = remote
            .exec(&Exec::sh(cmd.clone()).timeout(Duration::from_secs(10)))
            .await
            .map_err(|e| Error::remote(&remote.node().name, "list the processes to target", e))?;
        Ok(parse_pids(&out.stdout))
    }

    fn spec(&self, remote: &dyn Remote) -> Result<&DaemonSpec> {
        let name = &remote.node().name;
        self.specs.get(name).ok_or_else(|| {
            Error::other(
                format!("find the daemon of {name}"),
                "no spec for this node",
            )
        })
    }
}

#[async_trait]
impl SystemControl for PidfileSystem {
    async fn pids(&self, remote: &dyn Remote) -> Result<Vec<u32>> {
        let spec = self.spec(remote)?;
        let read = |pidfile: String| async move {
            control::running_pid(remote, &pidfile, spec.sudo)
                .await
                .map_err(|e| Error::remote(&remote.node().name, "read the daemon's pid", e))
        };
        let mut pids: Vec<u32> = read(spec.pidfile.clone()).await?.into_iter().collect();
        for f in self.also_of(remote) {
            pids.extend(read(f.clone()).await?);
        }
        for p in self.listed(remote).await? {
            if !pids.contains(&p) {
                pids.push(p);
            }
        }
        Ok(pids)
    }

    async fn kill(&self, remote: &dyn Remote) -> Result<()> {
        let spec = self.spec(remote)?;
        control::kill_daemon(remote, &spec.pidfile)
            .await
            .map_err(|e| Error::remote(&remote.node().name, "kill the daemon", e))?;
        for f in self.also_of(remote) {
            control::kill_daemon(remote, f).await.map_err(|e| {
                Error::remote(&remote.node().name, format!("kill the process of {f}"), e)
            })?;
        }
        let listed = self.listed(remote).await?;
        signal_pids(remote, &listed, "KILL", true).await
    }

    async fn start(&self, remote: &dyn Remote) -> Result<()> {
        let spec = self.spec(remote)?;
        control::start_daemon(remote, spec)
            .await
            .map(|_| ())
            .map_err(|e| Error::remote(&remote.node().name, "start the daemon", e))
    }

    async fn running(&self, remote: &dyn Remote) -> Result<Option<bool>> {
        let spec = self.spec(remote)?;
        control::running_pid(remote, &spec.pidfile, spec.sudo)
            .await
            .map(|p| Some(p.is_some()))
            .map_err(|e| Error::remote(&remote.node().name, "read the daemon's pid", e))
    }

    fn on_exit(&self) -> ExitPolicy {
        self.on_exit
    }

    async fn leave(&self, remote: &dyn Remote) -> Result<()> {
        let name = remote.node().name.clone();
        let Some(cmd) = self.leave.get(&name) else {
            return Err(Error::other(
                format!("remove {name} from the cluster"),
                "the system defines no leave command",
            ));
        };
        self.kill(remote).await?;
        crate::apply::run_sh(remote, "remove the node (leave)", cmd.clone())
            .await
            .map(|_| ())
    }

    async fn join(&self, remote: &dyn Remote) -> Result<()> {
        if let Some(cmd) = self.join.get(&remote.node().name) {
            crate::apply::run_sh(remote, "prepare the node to join", cmd.clone()).await?;
        }
        self.start(remote).await
    }
}

/// The pids in a command's output: every whitespace-separated word that is a number (a
/// header or a blank line is skipped, not an error).
pub fn parse_pids(text: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .filter(|&p| p > 1)
        .collect();
    pids.dedup();
    pids
}

/// Sends `sig` (`STOP`, `CONT`, ...) to each pid, or to its process group when it leads one.
/// With `tolerant`, processes that are gone are not an error (healing).
pub async fn signal_pids(
    remote: &dyn Remote,
    pids: &[u32],
    sig: &str,
    tolerant: bool,
) -> Result<()> {
    if pids.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let on_err = if tolerant { "true" } else { "exit 1" };
    // SIGSTOP is delivered asynchronously: on a loaded machine the target can run on for a
    // while after `kill` returns. A pause is recorded as in effect only once every process
    // shows state T (bounded: 2 s), so the history never claims a pause that had not begun.
    let wait_stopped = if sig == "STOP" {
        "for P in $ALL; do for _ in $(seq 100); do \
         S=$(sed 's/.*) //' /proc/$P/stat 2>/dev/null | cut -c1); \
         { [ -z \"$S\" ] || [ \"$S\" = T ] || [ \"$S\" = t ] || [ \"$S\" = Z ]; } && break; sleep 0.02; done; done"
    } else {
        "true"
    };
    // Field 5 of /proc/PID/stat (3rd after the command name) is the process group.
    let script = format!(
        "ALL='{}'; for P in $ALL; do G=$(sed 's/.*) //' /proc/$P/stat 2>/dev/null | cut -d' ' -f3); \
         if [ \"$G\" = \"$P\" ]; then kill -s {sig} -- -$P || {on_err}; else kill -s {sig} $P || {on_err}; fi; done; \
         {wait_stopped}",
        list.join(" ")
    );
    remote
        .exec(&Exec::sh(script).timeout(Duration::from_secs(20)))
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::remote(
                &remote.node().name,
                format!("send SIG{sig} to {}", list.join(",")),
                e,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::parse_pids;

    #[test]
    fn pids_are_the_numbers_of_the_output() {
        assert_eq!(parse_pids("12\n 345\t678\n"), vec![12, 345, 678]);
        assert_eq!(parse_pids("PID\n42\n\n"), vec![42]);
        // Never init, nor the whole session (0), whatever a command prints.
        assert_eq!(parse_pids("0 1 -5 7"), vec![7]);
        assert!(parse_pids("").is_empty());
    }
}
