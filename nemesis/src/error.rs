//! [`Error`]: every failure of the nemesis, reading "failed to X: cause".

use crate::grudge::NodeName;

/// Errors of the nemesis crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A schedule or command-line value is wrong (the message says what).
    #[error("{0}")]
    Schedule(String),
    /// Local file I/O (state file, clock offset files, schedules).
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A command on a node failed.
    #[error("failed to {what} on {node}: {source}")]
    Remote {
        node: NodeName,
        what: String,
        #[source]
        source: Box<control::Error>,
    },
    /// Something else went wrong on a node or in the nemesis.
    #[error("failed to {what}: {cause}")]
    Other { what: String, cause: String },
    /// Healing left some faults in place; they stay in the state file.
    #[error("failed to heal {count} fault(s): {}", .errors.join("; "))]
    Heal { count: usize, errors: Vec<String> },
}

impl Error {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub fn remote(node: &str, what: impl Into<String>, source: control::Error) -> Self {
        Error::Remote {
            node: node.to_string(),
            what: what.into(),
            source: Box::new(source),
        }
    }

    pub fn other(what: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        Error::Other {
            what: what.into(),
            cause: cause.to_string(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
