//! The regression gate: run a matrix of `faultline test` configurations, say yes or no, and
//! hand over the smallest failing case.
//!
//! - [`config`]: `gate.toml` and the short form, expanded into one [`config::RunSpec`] per run.
//! - [`child`]: runs one `faultline test` as a child process and reads its stored results.
//! - [`junit`], [`summary`]: JUnit XML and a Markdown summary of the runs.
//! - [`baseline`]: failover-time and unavailability regressions against an earlier run.
//! - [`replay`]: the argument rewriting and nemesis-op comparison behind `faultline replay`.
//! - [`stored`]: a stored run read back (arguments, seed, schedule, history, results).
//! - [`shrink`]: delta debugging over a fault schedule (pure; reproduction is a callback).

pub mod baseline;
pub mod child;
pub mod config;
pub mod junit;
pub mod replay;
pub mod shrink;
pub mod stored;
pub mod summary;
