//! One module per subcommand; `run` dispatches and returns the process exit code.

pub mod check;
pub mod cluster;
pub mod exec;
pub mod export;
pub mod gate;
pub mod heal;
pub mod power;
pub mod replay;
pub mod report;
pub mod serve;
pub mod shrink;
pub mod system;
pub mod test;
pub mod validate;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Exec(args) => exec::run(args),
        Command::Export(args) => export::run(args),
        Command::Test(args) => test::run(args),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Heal(args) => heal::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Shrink(args) => shrink::run(args),
        Command::Power(args) => power::run(args),
        Command::System(args) => system::run(args),
        Command::Validate(args) => validate::run(args),
    }
}
