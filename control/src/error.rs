//! The error type of the control plane. Every message reads "failed to X on node N (addr): cause"
//! (or "failed to X: cause" when no node is involved), so a user sees which node, which address
//! and what failed without reading a backtrace.

use std::time::Duration;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while controlling nodes or a local cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command ran and exited with a non-zero status (or was killed by a signal).
    #[error("failed to run `{command}` on node {node} ({addr}): exit status {status}{}", fmt_stderr(.stderr))]
    NonZeroExit {
        node: String,
        addr: String,
        command: String,
        /// Exit status; 128+N when killed by signal N.
        status: i32,
        stdout: String,
        stderr: String,
    },
    /// The command did not finish within its timeout (it was killed).
    #[error("failed to run `{command}` on node {node} ({addr}): timed out after {timeout:?}")]
    Timeout {
        node: String,
        addr: String,
        command: String,
        timeout: Duration,
    },
    /// TCP connect / SSH handshake failed (after the configured retries).
    #[error("failed to connect to node {node} ({addr}): {cause}")]
    Connect {
        node: String,
        addr: String,
        cause: String,
    },
    /// The node's host key is unknown or does not match known_hosts. `cause` says how to fix it.
    #[error("failed to verify the host key of node {node} ({addr}): {cause}")]
    HostKey {
        node: String,
        addr: String,
        cause: String,
    },
    /// The server refused our key / agent identities.
    #[error("failed to authenticate as {user} on node {node} ({addr}): {cause}")]
    Auth {
        node: String,
        addr: String,
        user: String,
        cause: String,
    },
    /// Any other failure of an action on a node (spawning, transfer, channel errors, ...).
    #[error("failed to {action} on node {node} ({addr}): {cause}")]
    Node {
        node: String,
        addr: String,
        action: String,
        cause: String,
    },
    /// A prerequisite of the local cluster is missing: one line naming it and its Debian package.
    #[error("missing {what}: {hint}")]
    Missing {
        /// What is missing, e.g. "`ip` (iproute2)" or "root privileges".
        what: String,
        /// How to get it, e.g. "install the Debian package `iproute2`".
        hint: String,
    },
    /// A bad option (prefix, subnet, node count, unknown node): the user's to fix.
    #[error("failed to {action}: {cause}")]
    Invalid { action: String, cause: String },
    /// A local-cluster or local-host operation failed.
    #[error("failed to {action}: {cause}")]
    Local { action: String, cause: String },
}

fn fmt_stderr(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        let s: String = s.chars().take(2000).collect();
        format!(": {s}")
    }
}

impl Error {
    /// Shorthand for [`Error::Local`].
    pub fn local(action: impl Into<String>, cause: impl ToString) -> Self {
        Error::Local {
            action: action.into(),
            cause: cause.to_string(),
        }
    }

    /// Shorthand for [`Error::Node`].
    pub fn node(node: &crate::Node, action: impl Into<String>, cause: impl ToString) -> Self {
        Error::Node {
            node: node.name.clone(),
            addr: node.addr.clone(),
            action: action.into(),
            cause: cause.to_string(),
        }
    }

    /// True for errors a user fixes by installing something or running as root
    /// (the CLI maps them to exit 254).
    pub fn is_missing_prerequisite(&self) -> bool {
        matches!(self, Error::Missing { .. })
    }

    /// True for errors the user fixes (missing prerequisite or bad option): exit 254.
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Missing { .. } | Error::Invalid { .. })
    }

    /// The exit status when this is a [`Error::NonZeroExit`].
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            Error::NonZeroExit { status, .. } => Some(*status),
            _ => None,
        }
    }
}
