use std::path::PathBuf;

/// Why a history file could not be read. Always names the place (file and line) and the
/// problem, so the command line can print it as one line.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("failed to open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}: {source}")]
    Pairing {
        path: String,
        source: crate::history::PairError,
    },
}
