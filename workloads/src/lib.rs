//! `workloads`: what clients do to a system under test, independent of the system.
//!
//! - [`client`]: the [`Client`] trait systems implement (`open` on a node, `invoke` an
//!   [`Invocation`], `close`), and [`Completion`] with its [`Outcome`] (ok / fail / info).
//!   [`ClientOptions`] say where reads go ([`ReadFrom`]).
//! - [`generator`]: [`Workload`] (set, unique-ids, register, list-append) and [`Generator`], a pure,
//!   seeded stream of invocations per client, plus the final reads of the set workload.
//!
//! The rule every client follows: anything that may have taken effect completes as `info`,
//! never `fail`.

pub mod client;
pub mod generator;

pub use client::{Client, ClientOptions, Completion, Invocation, Outcome, ReadFrom};
pub use generator::{Generator, Workload, parse_workloads};
