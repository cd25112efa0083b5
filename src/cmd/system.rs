//! `faultline system list` and `faultline system show NAME`: the built-in systems, what each
//! can run and which options it honours, and the system file describing each, printed so a
//! user can copy it as the start of a file of their own.

use clap::{Args, Subcommand};
use systems::registry::Builtin;

use crate::exit::{self, user_error};

#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub action: SystemAction,
}

#[derive(Debug, Subcommand)]
pub enum SystemAction {
    /// The built-in systems, what each cannot run and the options each honours.
    List,
    /// Print the system file that describes a built-in system (a starting point for
    /// `--system-file`).
    Show {
        /// leaderkv, redis-sentinel, etcd or postgres-patroni.
        name: String,
    },
}

pub fn run(args: SystemArgs) -> anyhow::Result<u8> {
    match args.action {
        SystemAction::List => {
            for b in Builtin::ALL {
                println!("{b}\n  {}", b.about());
                let opts: Vec<&str> = b.options().iter().map(|o| o.flag()).collect();
                if !opts.is_empty() {
                    println!("  options: {}", opts.join(" "));
                }
                let file = b
                    .file(&Default::default(), false)
                    .map_err(|e| anyhow::anyhow!("failed to read the file of {b}: {e}"))?;
                let (_, unsupported) = file.supported(&workloads::Workload::ALL);
                let cannot: Vec<&str> = unsupported
                    .iter()
                    .map(|w| w.name())
                    .chain(file.unsupported_faults().iter().map(|k| k.name()))
                    .collect();
                if !cannot.is_empty() {
                    println!("  cannot run: {}", cannot.join(", "));
                }
                println!("  system file: faultline system show {b}");
            }
            Ok(exit::VALID)
        }
        SystemAction::Show { name } => {
            let b: Builtin = name.parse().map_err(user_error)?;
            let (file, text) = b.system_file();
            crate::term::note!(
                "faultline: {file}, the system file for {b} (save it and run it with --system-file)"
            );
            print!("{text}");
            Ok(exit::VALID)
        }
    }
}
