//! leaderkv: faultline's reference leader-based replicated key-value store. A standalone
//! program (it depends on no faultline crate) that the harness deploys and tests from outside.
//!
//! Module map:
//! - [`config`]: command-line flags, replication [`config::Mode`]s and what the log carries
//!   ([`config::Replication`]: rows or statements), seeded [`config::Bug`]s.
//! - [`resp`]: the RESP subset spoken to clients (pipelined parsing, reply encoding).
//! - [`codec`]: binary encoding of log records, peer messages and snapshots.
//! - [`storage`]: the durable log (group-committed by a flusher), term/vote metadata, snapshots.
//! - [`state`]: the state machine (strings, sets, lists, each key's write time) and the overlay
//!   of not-yet-applied records.
//! - [`core`]: per-node protocol state and the transitions shared by the modules below.
//! - [`election`]: failure detection, pre-vote, votes, terms, leader lease, semi-sync choice.
//! - [`replication`]: log shipping, snapshots for new/behind followers, commit by mode.
//! - [`writes`]: what a write command makes of the state (row records and reply), for the
//!   leader and for every node applying a statement.
//! - [`commands`]: client commands, `ROLE`, `INFO` and `DIGEST`.
//! - [`txn`]: `MULTI`/`EXEC` transactions of reads and writes, run at once.
//! - [`net`]: the peer transport (same port as clients, distinguished by magic bytes).
//! - [`server`]: client connections with pipelining and write acknowledgement.
//! - [`node`]: a running node and its test hooks (partition, campaign, kill).
//! - [`client`]: a small pipelining RESP client for tests and the benchmark.

pub mod client;
pub mod codec;
pub mod commands;
pub mod config;
pub mod core;
pub mod election;
pub mod net;
pub mod node;
pub mod replication;
pub mod resp;
pub mod server;
pub mod state;
pub mod storage;
pub mod txn;
pub mod writes;

pub use config::{Args, Bug, Config, Mode, Replication};
pub use node::{Node, Status};
pub use resp::Reply;

/// Errors of the leaderkv library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("failed to {0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}
