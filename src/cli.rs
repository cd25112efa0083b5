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
    /// Quiet: no progress or log lines on stderr (results and errors still show).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log lines on stderr: -v info, -vv debug, -vvv trace (RUST_LOG, when set, wins).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The values the command line's enumerated flags take, for their `--help`: each from the
/// one list the code uses, so the help cannot drift from what is accepted.
pub mod values {
    fn join(names: impl IntoIterator<Item = &'static str>) -> String {
        names.into_iter().collect::<Vec<_>>().join(", ")
    }

    pub fn systems() -> String {
        format!(
            "The system under test, one of: {} (`faultline system list` says what each is)",
            join(systems::registry::Builtin::ALL.map(|b| b.name()))
        )
    }

    pub fn workloads() -> String {
        format!(
            "Workloads, comma-separated, of: {} (the leader probe always runs)",
            join(workloads::Workload::ALL.map(|w| w.name()))
        )
    }

    pub fn nemeses() -> String {
        format!(
            "Faults, comma-separated, of: {}; or none",
            join(nemesis::FaultKind::ALL.map(|k| k.name()))
        )
    }

    pub fn bugs() -> String {
        format!(
            "A seeded bug, passed through (repeatable). leaderkv's: {}; a system file's \
             `{{bug_flags}}` passes any",
            join(systems::registry::LEADERKV_BUGS.map(|b| b.name))
        )
    }

    pub fn formats() -> String {
        format!(
            "The history's format, one of: {}; guessed from its first bytes when left out",
            join(history::Format::ALL.map(|f| f.name()))
        )
    }

    pub fn consistency() -> String {
        format!(
            "The consistency model list-append histories are checked against, one of: {}",
            join(checkers::list_append::Consistency::ALL.map(|c| c.name()))
        )
    }

    pub fn models() -> String {
        format!(
            "What to check the history against, one of: {}; inferred from the ops' functions \
             when left out",
            join(checkers::suite::Model::ALL.map(|m| m.name()))
        )
    }
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
    /// Write a run's history as Jepsen EDN (for Elle, Knossos) or as faultline's JSONL.
    Export(cmd::export::ExportArgs),
    /// Heal what a killed run left on the nodes (rules, paused processes, clock offsets).
    Heal(cmd::heal::HealArgs),
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
    /// Check a system file, schedule, gate config or nodes file without touching a cluster.
    Validate(cmd::validate::ValidateArgs),
    /// Measure detection power: leaderkv with each seeded bug and the correct build, N seeds.
    Power(cmd::power::PowerArgs),
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, ValueEnum};

    fn help(sub: &str) -> String {
        let mut cmd = super::Cli::command();
        cmd.find_subcommand_mut(sub)
            .expect("subcommand")
            .render_long_help()
            .to_string()
    }

    #[test]
    fn help_lists_every_value_of_the_enumerated_flags() {
        let test = help("test");
        for b in systems::registry::Builtin::ALL {
            assert!(test.contains(b.name()), "--system misses {}", b.name());
        }
        for w in workloads::Workload::ALL {
            assert!(test.contains(w.name()), "--workload misses {}", w.name());
        }
        for k in nemesis::FaultKind::ALL {
            assert!(test.contains(k.name()), "--nemesis misses {}", k.name());
        }
        for bug in systems::registry::LEADERKV_BUGS {
            assert!(test.contains(bug.name), "--bug misses {}", bug.name);
        }
        let check = help("check");
        for f in history::Format::ALL {
            assert!(check.contains(f.name()), "--format misses {}", f.name());
            assert_eq!(f.name().parse::<history::Format>(), Ok(f));
        }
        for m in checkers::suite::Model::ALL {
            assert!(check.contains(m.name()), "--model misses {}", m.name());
        }
    }

    /// The bug list the help, `power` and the e2e matrices use is leaderkv's own.
    #[test]
    fn leaderkv_bugs_are_the_binarys_bugs() {
        let ours: Vec<&str> = systems::registry::LEADERKV_BUGS
            .iter()
            .map(|b| b.name)
            .collect();
        let theirs: Vec<&str> = leaderkv::config::Bug::value_variants()
            .iter()
            .map(|b| b.name())
            .collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn quiet_and_verbose_are_global_and_exclusive() {
        use clap::Parser;
        let c = super::Cli::try_parse_from(["faultline", "check", "h.jsonl", "-vv"]).unwrap();
        assert_eq!((c.quiet, c.verbose), (false, 2));
        let c = super::Cli::try_parse_from(["faultline", "-q", "check", "h.jsonl"]).unwrap();
        assert!(c.quiet);
        assert!(super::Cli::try_parse_from(["faultline", "-q", "-v", "check", "h"]).is_err());
    }
}
