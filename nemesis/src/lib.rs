//! `nemesis`: faults as data and their application through the `control` crate.
//!
//! - [`grudge`]: [`Grudge`] (who drops packets from whom) and the pure partition builders
//!   (`one`, `halves`, `majority_minority`, `majorities_ring`, `bridge`, `isolate`).
//! - [`fault`]: [`Fault`], [`Target`], [`FaultKind`], and [`FaultRecord`], the plain-data
//!   value of a nemesis op in the history.
//! - [`schedule`]: [`Schedule`] (seeded generation, JSON/TOML files) and the command-line
//!   helper [`parse_kinds`].
//! - [`duration`]: [`parse_duration`], the one duration syntax of flags and files.
//! - [`state`]: the write-ahead state file of faults applied and not yet healed.
//! - [`nemesis`]: the [`Nemesis`] trait and [`ClusterNemesis`], which applies faults through
//!   one `control::Remote` per node.
//! - [`net`]: iptables (faultline's own chain) and tc tbf command builders.
//! - [`clock`]: [`ClockMode`] (LD_PRELOAD shim on local clusters, `clock_settime` helper on
//!   VMs), the shim offset files and [`shim_env`].
//! - [`system`]: [`SystemControl`], what the nemesis needs from the system (pids, kill,
//!   start, leader, whether it runs), [`PidfileSystem`], and [`ExitPolicy`].
//! - [`heal`]: [`heal_from_state_file`] (run at every start), [`HealGuard`] (heals on drop
//!   and panic), [`Interrupts`] (first SIGINT/SIGTERM heals, second exits).
//! - [`driver`]: [`run_schedule`], which plays a schedule against a nemesis and reports each
//!   op as a [`NemesisEvent`] for the history.
//! - [`episode`]: the failover-aware nemesis as plain data: the seeded [`Planner`] draws
//!   [`Episode`]s (leader-aimed and composite fault scripts that wait on the leader probe).
//! - [`leader`]: [`LeaderView`], the leader as the probe sees it, published once for the
//!   nemesis, the clients and the progress display; [`LeaderWatch`], how the nemesis reads it.
//! - [`adaptive`]: [`run_adaptive`], which plays them, timed by a [`LeaderWatch`], and
//!   records the schedule it played.
//! - [`error`]: [`Error`] ("failed to X: cause").

pub mod adaptive;
mod apply;
pub mod clock;
pub mod driver;
pub mod duration;
pub mod episode;
pub mod error;
pub mod fault;
pub mod grudge;
pub mod heal;
pub mod leader;
#[allow(clippy::module_inception)]
pub mod nemesis;
pub mod net;
pub mod schedule;
pub mod state;
pub mod system;

pub use adaptive::{Played, run_adaptive};
pub use clock::{ClockMode, prepare_shim_files, shim_env};
pub use driver::{NemesisEvent, run_schedule};
pub use duration::{BadDuration, format_duration, parse_duration};
pub use episode::{AdaptiveOptions, Episode, Planner, Step, Until};
pub use error::{Error, Result};
pub use fault::{ClockAction, Fault, FaultKind, FaultRecord, Partition, Phase, Target};
pub use grudge::{Grudge, NodeName, Shape};
pub use heal::{HealAll, HealGuard, HealReport, Interrupts, heal_from_state_file};
pub use leader::{LeaderView, LeaderWatch, Observation};
pub use nemesis::{ClusterNemesis, Nemesis, NemesisConfig, NemesisOp};
pub use schedule::{GenerateOptions, Schedule, ScheduledFault, parse_kinds};
pub use state::{HealAction, PendingHeal, StateFile, default_state_path};
pub use system::{ExitPolicy, PidfileSystem, SystemControl};
