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
}
