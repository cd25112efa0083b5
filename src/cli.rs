//! Command-line definition (clap derive). Each subcommand's arguments live beside its
//! implementation in `cmd/<name>.rs`.

use clap::{Parser, Subcommand};

use crate::cmd;

#[derive(Debug, Parser)]
#[command(
    name = "faultline",
    version,
    about = "Jepsen-style fault injection for leader-based replicated systems"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a recorded history (JSONL or Jepsen EDN) or a stored run.
    Check(cmd::check::CheckArgs),
    /// Manage a local cluster of network namespaces (needs root): up, status, down.
    Cluster(cmd::cluster::ClusterArgs),
    /// Run a command on a node (or `all`) of the local cluster or of a nodes file.
    Exec(cmd::exec::ExecArgs),
    /// Deploy a system, run workloads under faults, record, check and store the run.
    Test(cmd::test::TestArgs),
    /// Render RUN_DIR/report.html, the self-contained HTML fault report of a stored run.
    Report(cmd::report::ReportArgs),
    /// Serve the run store's reports and files over HTTP (loopback by default).
    Serve(cmd::serve::ServeArgs),
    /// Run a matrix of tests over seeds; JUnit + Markdown; exit 0 only if every run is valid.
    Gate(cmd::gate::GateArgs),
    /// Run a stored test again with its seed, options and recorded fault schedule.
    Replay(cmd::replay::ReplayArgs),
    /// Shrink a failing run's fault schedule to the smallest one that still fails.
    Shrink(cmd::shrink::ShrinkArgs),
    /// The built-in systems (list) and the system file describing each (show NAME).
    System(cmd::system::SystemArgs),
    /// Measure detection power: leaderkv with each seeded bug and the correct build, N seeds.
    Power(cmd::power::PowerArgs),
}
