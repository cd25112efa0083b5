//! One module per subcommand; `run` dispatches and returns the process exit code.

pub mod check;
pub mod cluster;
pub mod exec;
pub mod test;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Exec(args) => exec::run(args),
        Command::Test(args) => test::run(args),
    }
}
