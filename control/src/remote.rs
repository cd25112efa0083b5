//! The [`Remote`] trait and its vocabulary: [`Node`], [`Exec`] (a command with timeout and sudo),
//! [`ExecOutput`].

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default timeout of an [`Exec`] when none is set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A node of the system under test: a short name (`n1`) and the address the controller and the
/// other nodes reach it at (an IP address for local clusters; an IP or host name for VMs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Node {
    /// Name used in histories, grudges and logs, e.g. `n1`.
    pub name: String,
    /// Address (IP or DNS name, without port).
    pub addr: String,
}

impl Node {
    pub fn new(name: impl Into<String>, addr: impl Into<String>) -> Self {
        Node {
            name: name.into(),
            addr: addr.into(),
        }
    }

    /// The address as an IP, when it is one (always the case on a local cluster).
    pub fn ip(&self) -> Option<IpAddr> {
        self.addr.parse().ok()
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.addr)
    }
}

/// A command to run on a node. Build it with [`Exec::new`] / [`Exec::sh`] and the setters:
///
/// ```
/// use std::time::Duration;
/// let cmd = control::Exec::new("iptables").args(["-S", "INPUT"]).sudo(true).timeout(Duration::from_secs(5));
/// assert_eq!(cmd.to_shell(), "iptables -S INPUT");
/// ```
///
/// The argv is quoted for a POSIX shell on the node ([`Exec::to_shell`]); `Exec::sh` runs a
/// script through `sh -c` verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// Program and arguments (unquoted).
    pub argv: Vec<String>,
    /// Run as root: `sudo -n` unless the remote already runs as root.
    pub sudo: bool,
    /// Killed (and reported as [`Error::Timeout`]) after this long. Defaults to [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Bytes written to the command's stdin (then EOF). `None`: stdin is empty.
    pub stdin: Option<Vec<u8>>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Working directory on the node.
    pub cwd: Option<String>,
}

impl Exec {
    /// A program and no arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Exec {
            argv: vec![program.into()],
            sudo: false,
            timeout: DEFAULT_TIMEOUT,
            stdin: None,
            env: Vec::new(),
            cwd: None,
        }
    }

    /// A program with arguments from a slice-like argv (must be non-empty).
    pub fn argv<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut it = argv.into_iter();
        let first = it
            .next()
            .map(Into::into)
            .unwrap_or_else(|| "true".to_string());
        Exec::new(first).args(it)
    }

    /// A shell script run as `sh -c SCRIPT`.
    pub fn sh(script: impl Into<String>) -> Self {
        Exec::new("sh").arg("-c").arg(script)
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.argv.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn sudo(mut self, yes: bool) -> Self {
        self.sudo = yes;
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// The argv quoted for a POSIX shell (no env, cwd or sudo): what error messages show.
    pub fn to_shell(&self) -> String {
        self.argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The full shell command line: `cd DIR && env K=V ... ARGV`, wrapped in `sudo -n` when
    /// `sudo` is set and `as_root` is false. Remotes that go through a shell use this.
    pub fn to_command_line(&self, as_root: bool) -> String {
        let mut inner = String::new();
        if let Some(dir) = &self.cwd {
            inner.push_str("cd ");
            inner.push_str(&shell_quote(dir));
            inner.push_str(" && ");
        }
        if !self.env.is_empty() {
            inner.push_str("env");
            for (k, v) in &self.env {
                inner.push(' ');
                inner.push_str(&shell_quote(&format!("{k}={v}")));
            }
            inner.push(' ');
        }
        inner.push_str(&self.to_shell());
        if self.sudo && !as_root {
            format!("sudo -n -- sh -c {}", shell_quote(&inner))
        } else {
            inner
        }
    }
}

/// Quotes one word for a POSIX shell (`'...'` with embedded quotes escaped; plain words as is).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutput {
    /// Exit status; 128+N when the command was killed by signal N.
    pub status: i32,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// A way to run commands on one node and move files to and from it.
///
/// Implementations: [`crate::SshRemote`] (real hosts or a local cluster's sshd) and
/// [`crate::NetnsRemote`] (a local cluster node's network namespace). All methods are async
/// and never block tokio's worker threads. The trait is object safe: hold nodes as
/// `Arc<dyn Remote>`.
///
/// Implementors provide [`Remote::run`]; callers usually use [`Remote::exec`], which turns a
/// non-zero exit into [`Error::NonZeroExit`] carrying the command, node and stderr.
#[async_trait]
pub trait Remote: Send + Sync + fmt::Debug {
    /// The node this remote reaches.
    fn node(&self) -> &Node;

    /// Runs `cmd` and returns its output whatever its exit status. Errors only when the command
    /// could not be run or finished ([`Error::Timeout`], connection failures, ...).
    async fn run(&self, cmd: &Exec) -> Result<ExecOutput>;

    /// Copies the local file `local` to `remote` on the node (created or truncated).
    async fn upload(&self, local: &Path, remote: &str) -> Result<()>;

    /// Copies the file `remote` on the node to the local path `local` (created or truncated).
    async fn download(&self, remote: &str, local: &Path) -> Result<()>;

    /// Runs `cmd` in the node's network namespace with the controller's network tools
    /// (iptables, tc, ip). Where the node's own commands have them (a namespace of this
    /// machine, a host over SSH) that is [`Remote::run`]; a container's image need not.
    async fn run_net(&self, cmd: &Exec) -> Result<ExecOutput> {
        self.run(cmd).await
    }

    /// Runs `cmd`; a non-zero exit status is an [`Error::NonZeroExit`].
    async fn exec(&self, cmd: &Exec) -> Result<ExecOutput> {
        let out = self.run(cmd).await?;
        exited_zero(self.node(), cmd, out)
    }

    /// [`Remote::run_net`]; a non-zero exit status is an [`Error::NonZeroExit`].
    async fn exec_net(&self, cmd: &Exec) -> Result<ExecOutput> {
        let out = self.run_net(cmd).await?;
        exited_zero(self.node(), cmd, out)
    }

    /// `exec(Exec::sh(script))`, returning stdout.
    async fn sh(&self, script: &str) -> Result<String> {
        Ok(self.exec(&Exec::sh(script)).await?.stdout)
    }
}

/// `out`, or the [`Error::NonZeroExit`] it is.
fn exited_zero(node: &Node, cmd: &Exec, out: ExecOutput) -> Result<ExecOutput> {
    if out.success() {
        Ok(out)
    } else {
        Err(Error::NonZeroExit {
            node: node.name.clone(),
            addr: node.addr.clone(),
            command: cmd.to_shell(),
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let e = Exec::new("echo")
            .arg("a b")
            .env("X", "1")
            .cwd("/tmp")
            .sudo(true);
        assert_eq!(e.to_command_line(true), "cd /tmp && env X=1 echo 'a b'");
        assert_eq!(
            e.to_command_line(false),
            r"sudo -n -- sh -c 'cd /tmp && env X=1 echo '\''a b'\'''"
        );
    }
}
