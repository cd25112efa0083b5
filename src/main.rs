//! `faultline`: the command-line front end. Parsing lives in `cli`, each subcommand in
//! `cmd/<name>.rs`; this file only sets up logging and maps the outcome to an exit code.

mod child;
mod cli;
mod cmd;
mod exit;
mod nodes;
mod run_report;
mod spec;
mod stored;
mod term;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout and usage errors on stderr itself.
            let code = if e.use_stderr() {
                exit::BAD_ARGS
            } else {
                exit::VALID
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    term::set_quiet(cli.quiet);
    init_logging(cli.quiet, cli.verbose);
    match cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = exit::code_for(&err);
            eprintln!("faultline: error: {}", term::safe(&format!("{err:#}")));
            ExitCode::from(code)
        }
    }
}

/// `RUST_LOG` when set; else warnings, `-q` errors only, `-v`.. more.
fn init_logging(quiet: bool, verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}
