//! `faultline validate FILE`: parse and check a system file, a fault schedule, a gate config
//! or a nodes file without touching a cluster, with the messages and exit codes a real run
//! gives. A system file is rendered for every node (placeholders resolved, commands as they
//! would run); a gate config has every run it expands to planned as `faultline test` plans
//! it, so a typo in a matrix cell fails here, not an hour into the gate.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, ValueEnum};
use serde_json::json;

use control::Node;
use control::cluster::{ClusterOptions, LocalCluster};
use systems::file;

use crate::cmd::test::TestArgs;
use crate::exit::{self, control_err, user_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A system file (TOML: docs/own-system.md).
    System,
    /// A fault schedule (JSON or TOML: docs/schedule.md).
    Schedule,
    /// A gate config (TOML: docs/ci.md).
    Gate,
    /// A nodes file (`NAME ADDRESS` or `ADDRESS` per line).
    Nodes,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The file to check.
    pub file: PathBuf,
    /// What the file is; guessed from its content when left out.
    #[arg(long = "as", value_enum)]
    pub kind: Option<Kind>,
    /// The nodes to render a system file for, or to check a schedule's node names against:
    /// a local cluster of N nodes (its names and addresses)...
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// ...or the hosts of a nodes file.
    #[arg(long)]
    pub nodes_file: Option<PathBuf>,
    /// Local cluster subnet the addresses come from.
    #[arg(long, default_value = control::cluster::DEFAULT_SUBNET)]
    pub subnet: String,
    /// A value for a system file's `{set.KEY}` placeholders (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// A seeded bug, for a system file's `{bug_flags}` (repeatable).
    #[arg(long = "bug", value_name = "BUG")]
    pub bugs: Vec<String>,
    /// Print what was checked as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        user_error(format!(
            "failed to read {}: {e} (give a system file, schedule, gate config or nodes file)",
            args.file.display()
        ))
    })?;
    let kind = args.kind.unwrap_or_else(|| guess(&args.file, &text));
    let report = match kind {
        Kind::System => system(&args)?,
        Kind::Schedule => schedule(&args)?,
        Kind::Gate => gate(&args)?,
        Kind::Nodes => {
            let nodes = control::nodes::read(&args.file).map_err(|e| user_error(e.to_string()))?;
            let lines = nodes
                .iter()
                .map(|n| format!("{} {}", n.name, n.addr))
                .collect();
            Report {
                what: format!("nodes file with {} host(s)", nodes.len()),
                lines,
                data: json!(
                    nodes
                        .iter()
                        .map(|n| json!({"name": n.name, "addr": n.addr}))
                        .collect::<Vec<_>>()
                ),
            }
        }
    };
    if args.json {
        let v = json!({
            "file": args.file.display().to_string(),
            "kind": format!("{kind:?}").to_lowercase(),
            "valid": true,
            "what": report.what,
            "detail": report.data,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}: {}: valid", args.file.display(), report.what);
        for l in &report.lines {
            println!("{}", crate::term::safe(l));
        }
    }
    Ok(exit::VALID)
}

struct Report {
    what: String,
    lines: Vec<String>,
    data: serde_json::Value,
}

/// What a file is, from its content: JSON or TOML with `faults` is a schedule, TOML with
/// `[gate]` or `[[matrix]]` a gate config, other TOML a system file, anything else a nodes
/// file.
pub fn guess(path: &Path, text: &str) -> Kind {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "json" || text.trim_start().starts_with('{') {
        return Kind::Schedule;
    }
    match text.parse::<toml::Table>() {
        Ok(t) if t.contains_key("gate") || t.contains_key("matrix") => Kind::Gate,
        Ok(t) if t.contains_key("faults") => Kind::Schedule,
        Ok(_) => Kind::System,
        Err(_) if ext == "toml" => Kind::System,
        Err(_) => Kind::Nodes,
    }
}

/// The nodes a file is checked against: the nodes file's hosts, else the local cluster's.
fn nodes(args: &ValidateArgs) -> anyhow::Result<Vec<Node>> {
    if let Some(f) = &args.nodes_file {
        return control::nodes::read(f).map_err(|e| user_error(e.to_string()));
    }
    LocalCluster::planned_nodes(&ClusterOptions {
        nodes: args.nodes,
        subnet: args.subnet.clone(),
        prefix: control::cluster::DEFAULT_PREFIX.into(),
        ssh: false,
        state_root: PathBuf::new(),
    })
    .map_err(control_err)
}

fn system(args: &ValidateArgs) -> anyhow::Result<Report> {
    let sets = file::spec::parse_sets(&args.sets).map_err(user_error)?;
    let inputs = file::spec::Inputs {
        bugs: args.bugs.clone(),
        sets,
        ..Default::default()
    };
    let mut loaded = file::spec::load(&args.file, &inputs).map_err(user_error)?;
    loaded.resolve_files()?;
    let nodes = nodes(args)?;
    let name = loaded.spec.name.clone();
    let (workloads, _) = loaded.supported(&workloads::Workload::ALL);
    let refused = loaded.unsupported_faults();
    let sys = file::FileSystem::new(
        loaded,
        nodes,
        file::Options {
            base_dir: crate::nodes::base_dir(control::cluster::DEFAULT_PREFIX),
            clock: nemesis::ClockMode::Unsupported,
            remotes: Vec::new(),
            install: false,
        },
        nemesis::LeaderView::default(),
    )?;
    let plan = sys.plan()?;
    let mut lines = vec![
        format!(
            "  workloads: {}",
            workloads
                .iter()
                .map(|w| w.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "  faults refused: {}",
            if refused.is_empty() {
                "none".to_owned()
            } else {
                refused
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    ];
    for n in &plan {
        lines.push(format!("{} ({}, role {}):", n.node, n.addr, n.role));
        for (what, cmd) in &n.commands {
            lines.push(format!("  {what}: {cmd}"));
        }
        for (local, remote) in &n.uploads {
            lines.push(format!("  upload: {local} -> {remote}"));
        }
        for (path, content) in &n.configs {
            lines.push(format!("  config {path}: {} bytes", content.len()));
        }
    }
    Ok(Report {
        what: format!(
            "system file for {name}, rendered for {} node(s)",
            plan.len()
        ),
        lines,
        data: json!({
            "system": name,
            "workloads": workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
            "faults_refused": refused.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "nodes": plan,
        }),
    })
}

fn schedule(args: &ValidateArgs) -> anyhow::Result<Report> {
    let s = nemesis::Schedule::load(&args.file).map_err(|e| user_error(e.to_string()))?;
    let names: Vec<String> = nodes(args)?.into_iter().map(|n| n.name).collect();
    s.validate(&names).map_err(|e| user_error(e.to_string()))?;
    let lines = s
        .faults
        .iter()
        .map(|f| format!("  {}", serde_json::to_string(f).unwrap_or_default()))
        .collect();
    Ok(Report {
        what: format!(
            "fault schedule of {} fault(s) over nodes {}",
            s.faults.len(),
            names.join(",")
        ),
        lines,
        data: serde_json::to_value(&s)?,
    })
}

/// `faultline test`'s flags as a command of their own, to plan a gate's runs.
#[derive(Parser)]
#[command(name = "faultline test")]
struct TestCommand {
    #[command(flatten)]
    args: TestArgs,
}

fn gate(args: &ValidateArgs) -> anyhow::Result<Report> {
    let cfg = gate::config::GateConfig::load(&args.file).map_err(user_error)?;
    let specs = cfg.expand();
    let mut lines = Vec::new();
    for spec in &specs {
        let argv = std::iter::once("faultline test".to_owned()).chain(spec.args.iter().cloned());
        let test = TestCommand::try_parse_from(argv).map_err(|e| {
            let first = e.to_string();
            let first = first
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            user_error(format!(
                "{}: run {}: {first}",
                args.file.display(),
                spec.name
            ))
        })?;
        crate::cmd::test::plan(&test.args).map_err(|e| {
            user_error(format!("{}: run {}: {e:#}", args.file.display(), spec.name))
        })?;
        lines.push(format!(
            "  {} (seed {}): faultline test {}",
            spec.name,
            spec.seed,
            spec.args.join(" ")
        ));
    }
    Ok(Report {
        what: format!("gate config of {} run(s), each planned", specs.len()),
        lines,
        data: json!(
            specs
                .iter()
                .map(|s| json!({"name": s.name, "seed": s.seed, "args": s.args}))
                .collect::<Vec<_>>()
        ),
    })
}
