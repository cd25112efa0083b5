//! `leader.command`: the leader probe as a command run on each node (its output parsed like
//! a client reply), and the client wrapper that answers `leader` ops with it.

use super::*;

/// Where and how a node's leader command runs: (remote, rendered command, `{dir}`).
type NodeCommand = (Arc<dyn Remote>, String, String);

/// `leader.command`: run on a node, its output parsed by index.
#[derive(Clone)]
pub(crate) struct LeaderCommand {
    pub(crate) nodes: Arc<BTreeMap<String, NodeCommand>>,
    pub(crate) parser: RoleParser,
}

impl LeaderCommand {
    pub(crate) async fn role(&self, node: &str, timeout: Duration) -> crate::Result<RoleInfo> {
        let (remote, cmd, dir) = self
            .nodes
            .get(node)
            .with_context(|| format!("no node {node}"))?;
        let out = remote
            .run(&Exec::sh(cmd.clone()).cwd(dir.clone()).timeout(timeout))
            .await
            .with_context(|| format!("the leader command `{cmd}` could not run on {node}"))?;
        if !out.success() {
            bail!(
                "the leader command failed on {node} (exit {}): {}",
                out.status,
                out.stderr.trim()
            );
        }
        self.parser
            .parse_output(Some(node), &out.stdout)
            .with_context(|| format!("bad leader command output from {node}: {:?}", out.stdout))
    }
}

/// A client whose `leader` probes run the leader command instead of a client call.
pub(crate) struct CommandLeader {
    pub(crate) inner: Box<dyn Client>,
    pub(crate) probe: LeaderCommand,
    pub(crate) timeout: Duration,
}

#[async_trait]
impl Client for CommandLeader {
    async fn open(&mut self, node: &str) {
        self.inner.open(node).await
    }

    async fn invoke(&mut self, op: &Invocation) -> workloads::Completion {
        if op.f != "leader" {
            return self.inner.invoke(op).await;
        }
        let node = op.node.clone().unwrap_or_default();
        match self.probe.role(&node, self.timeout).await {
            Ok(r) => workloads::Completion::ok(crate::proto::router::role_value(&r), &node),
            Err(e) => workloads::Completion::fail(op.value.clone(), &node, format!("{e:#}")),
        }
    }

    async fn close(&mut self) {
        self.inner.close().await
    }
}
