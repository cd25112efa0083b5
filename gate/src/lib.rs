//! `gate`: the pure logic behind `faultline gate`, `replay` and `shrink` (the binary runs the
//! child processes and reads the store; everything here is data in, data out).
//!
//! - [`config`]: `gate.toml` and the short form, expanded into one [`config::RunSpec`] per run.
//! - [`outcome`]: what one run left behind ([`outcome::RunOutcome`], its [`outcome::Verdict`]).
//! - [`junit`], [`summary`]: JUnit XML and a Markdown summary of the runs.
//! - [`baseline`]: failover-time and unavailability regressions against an earlier run.
//! - [`replay`]: the argument rewriting of runs stored before specs, the schedule pinned to
//!   the nodes a run hit, and the nemesis-op comparison behind `faultline replay`.
//! - [`shard`]: a gate split over machines (`--shard K/N`) and merged back whole.
//! - [`shrink`]: delta debugging over a fault schedule (reproduction is a callback).

pub mod baseline;
pub mod config;
pub mod junit;
pub mod outcome;
pub mod replay;
pub mod shard;
pub mod shrink;
pub mod summary;
