//! [`NetnsRemote`]: runs commands inside a local node's network namespace
//! (`ip netns exec NS sh -c ...`). Namespaces share the host's file system, so upload and
//! download are local copies.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::remote::{Exec, ExecOutput, Node, Remote};

/// A [`Remote`] for a node of a local cluster: commands run as root (the caller must be root)
/// inside the network namespace `netns`, in their own process group, killed whole on timeout.
#[derive(Debug, Clone)]
pub struct NetnsRemote {
    node: Node,
    netns: String,
}

impl NetnsRemote {
    /// A remote for `node`, whose commands run in the namespace `netns` (e.g. `fl-n1`).
    pub fn new(node: Node, netns: impl Into<String>) -> Self {
        NetnsRemote {
            node,
            netns: netns.into(),
        }
    }

    /// The network namespace name.
    pub fn netns(&self) -> &str {
        &self.netns
    }
}

/// Converts an exit status to the shell convention (128+N when killed by signal N).
pub(crate) fn status_code(st: std::process::ExitStatus) -> i32 {
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

#[async_trait]
impl Remote for NetnsRemote {
    fn node(&self) -> &Node {
        &self.node
    }

    async fn run(&self, cmd: &Exec) -> Result<ExecOutput> {
        let line = cmd.to_command_line(crate::prereq::is_root());
        let ip = crate::prereq::tool_path("ip").unwrap_or_else(|| "ip".into());
        let mut c = tokio::process::Command::new(ip);
        c.args(["netns", "exec", &self.netns, "sh", "-c", &line])
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = c.spawn().map_err(|e| {
            Error::node(
                &self.node,
                format!("run `{}`", cmd.to_shell()),
                format!("cannot spawn `ip netns exec`: {e}"),
            )
        })?;
        let pid = child.id();
        let mut stdin = child.stdin.take();
        let data = cmd.stdin.clone();
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let work = async {
            let feed = async {
                if let (Some(mut w), Some(d)) = (stdin.take(), data) {
                    // A command that does not read its stdin closes the pipe: not an error.
                    let _ = w.write_all(&d).await;
                    let _ = w.shutdown().await;
                }
            };
            let mut ob = Vec::new();
            let mut eb = Vec::new();
            let (_, r1, r2) =
                tokio::join!(feed, out.read_to_end(&mut ob), err.read_to_end(&mut eb));
            r1.and(r2)?;
            let st = child.wait().await?;
            Ok::<_, std::io::Error>((st, ob, eb))
        };
        match tokio::time::timeout(cmd.timeout, work).await {
            Ok(Ok((st, ob, eb))) => Ok(ExecOutput {
                status: status_code(st),
                stdout: String::from_utf8_lossy(&ob).into_owned(),
                stderr: String::from_utf8_lossy(&eb).into_owned(),
            }),
            Ok(Err(e)) => Err(Error::node(
                &self.node,
                format!("run `{}`", cmd.to_shell()),
                e,
            )),
            Err(_) => {
                if let Some(pid) = pid {
                    // SAFETY: plain syscall; the group is the one we created for this child.
                    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                }
                Err(Error::Timeout {
                    node: self.node.name.clone(),
                    addr: self.node.addr.clone(),
                    command: cmd.to_shell(),
                    timeout: cmd.timeout,
                })
            }
        }
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<()> {
        tokio::fs::copy(local, remote)
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::node(
                    &self.node,
                    format!("upload {} to {remote}", local.display()),
                    e,
                )
            })
    }

    async fn download(&self, remote: &str, local: &Path) -> Result<()> {
        tokio::fs::copy(remote, local)
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::node(
                    &self.node,
                    format!("download {remote} to {}", local.display()),
                    e,
                )
            })
    }
}
