//! `workloads`: what clients do to a system under test, independent of the system.
//!
//! - [`client`]: the [`Client`] trait systems implement (`open` on a node, `invoke` an
//!   [`Invocation`], `close`), and [`Completion`] with its [`Outcome`] (ok / fail / info).
//! - [`generator`]: [`Workload`] (set, unique-ids, register) and [`Generator`], a pure,
//!   seeded stream of invocations per client, plus the final reads of the set workload.
//! - [`resp`]: a small async RESP (Redis protocol) connection with errors that say whether a
//!   request may have reached the server ([`resp::RespError::may_have_applied`]).
//!
//! The rule every client follows: anything that may have taken effect completes as `info`,
//! never `fail`.

pub mod client;
pub mod generator;
pub mod resp;

pub use client::{Client, Completion, Invocation, Outcome};
pub use generator::{Generator, Workload, parse_workloads};
