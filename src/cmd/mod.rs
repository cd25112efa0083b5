//! One module per subcommand; `run` dispatches and returns the process exit code.

pub mod check;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check(args) => check::run(args),
    }
}
