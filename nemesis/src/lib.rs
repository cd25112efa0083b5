//! `nemesis`: faults as data and their application through the `control` crate.
//!
//! - [`grudge`]: [`Grudge`] (who drops packets from whom) and the pure partition builders
//!   (`one`, `halves`, `majority_minority`, `majorities_ring`, `bridge`, `isolate`).
//! - [`fault`]: [`Fault`], [`Target`], [`FaultKind`], and [`FaultRecord`], the plain-data
//!   value of a nemesis op in the history.
//! - [`schedule`]: [`Schedule`] (seeded generation, JSON/TOML files) and the command-line
//!   helpers [`parse_kinds`] and [`parse_duration`].
//! - [`state`]: the write-ahead state file of faults applied and not yet healed.
//! - [`error`]: [`Error`] ("failed to X: cause").

pub mod error;
pub mod fault;
pub mod grudge;
pub mod schedule;
pub mod state;

pub use error::{Error, Result};
pub use fault::{ClockAction, Fault, FaultKind, FaultRecord, Partition, Phase, Target};
pub use grudge::{Grudge, NodeName, Shape};
pub use schedule::{GenerateOptions, Schedule, ScheduledFault, parse_duration, parse_kinds};
pub use state::{HealAction, PendingHeal, StateFile, default_state_path};
