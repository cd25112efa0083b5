//! `faultline check`: run checkers over a recorded history or a stored run.
//!
//! The `set` and `unique-ids` checkers stream the file (memory grows with the number of
//! distinct elements, not with the text); the linearizability models need the whole history.

use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use checkers::CheckResult;
use checkers::set::{Set, SetState};
use checkers::unique_ids::{UniqueIds, UniqueIdsState};
use history::{Format, Value, edn};

use crate::exit::{self, user_error};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A history file (JSONL or Jepsen EDN) or a stored run directory.
    pub path: PathBuf,
    /// The file's format; guessed from its first bytes when left out.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// What to check the history against; inferred from the ops' functions when left out.
    #[arg(long, value_enum)]
    pub model: Option<Model>,
    /// The register's initial value (JSON or EDN: 0, "x", {"x":0,"y":0}); default nil.
    #[arg(long)]
    pub initial: Option<String>,
    /// Time budget for the linearizability search, e.g. 30s, 500ms; past it: unknown.
    #[arg(long, default_value = "60s", value_parser = nemesis::parse_duration)]
    pub budget: Duration,
    /// Print the results object as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Model {
    Register,
    CasRegister,
    MultiRegister,
    Kv,
    Set,
    UniqueIds,
}

impl Model {
    fn streams(self) -> bool {
        matches!(self, Model::Set | Model::UniqueIds)
    }
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

/// Where the history of `path` is: the file itself, or `history.jsonl` in a run directory.
fn history_file(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_dir() {
        let h = path.join("history.jsonl");
        if !h.is_file() {
            return Err(user_error(format!(
                "{} is a directory without history.jsonl: give a history file or a stored run directory",
                path.display()
            )));
        }
        return Ok(h);
    }
    if !path.exists() {
        return Err(user_error(format!(
            "{}: no such file (give a history file or a stored run directory)",
            path.display()
        )));
    }
    Ok(path.to_owned())
}

fn sniff(path: &Path) -> anyhow::Result<Format> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut f = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let n = f
        .read(&mut head)
        .with_context(|| format!("failed to read {}", path.display()))?;
    Ok(Format::sniff(&head[..n]))
}

/// A history read error is the user's to fix (exit 254); an IO error is ours (255).
fn read_error(e: history::ReadError) -> anyhow::Error {
    match e {
        history::ReadError::Io { .. } => anyhow::Error::new(e),
        other => user_error(other.to_string()),
    }
}

/// Which functions a history uses, to infer what to check.
#[derive(Default, Debug)]
struct Census {
    adds: bool,
    ids: bool,
    register: bool,
    txn: bool,
    kv: bool,
    ops: u64,
}

impl Census {
    fn observe(&mut self, op: &history::Op) {
        self.ops += 1;
        if !op.is_client() {
            return;
        }
        match &*op.f {
            "add" => self.adds = true,
            "generate" | "insert" | "incr" => self.ids = true,
            "write" | "cas" => self.register = true,
            "txn" => self.txn = true,
            "get" | "put" | "append" => self.kv = true,
            _ => {}
        }
    }

    fn models(&self) -> Vec<Model> {
        let mut m = Vec::new();
        if self.adds {
            m.push(Model::Set);
        }
        if self.ids {
            m.push(Model::UniqueIds);
        }
        if self.register {
            m.push(Model::CasRegister);
        }
        if self.txn {
            m.push(Model::MultiRegister);
        }
        if self.kv {
            m.push(Model::Kv);
        }
        m
    }
}

/// One streaming pass: the set and unique-ids checkers plus a census of functions.
fn stream(
    file: &Path,
    format: Format,
    set: &Set,
    ids: &UniqueIds,
) -> anyhow::Result<(CheckResult, CheckResult, Census, bool)> {
    let input = File::open(file).with_context(|| format!("failed to open {}", file.display()))?;
    let name = file.display().to_string();
    let mut s = SetState::new(set);
    let mut u = UniqueIdsState::new(ids);
    let mut census = Census::default();
    let mut pairing = None;
    let info = history::stream(input, &name, format, |op| {
        census.observe(&op);
        match s.observe(&op).and_then(|()| u.observe(&op)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                pairing = Some(e);
                ControlFlow::Break(())
            }
        }
    })
    .map_err(read_error)?;
    if let Some(e) = pairing {
        return Err(user_error(format!("{name}: {e}")));
    }
    let truncated = info.truncated;
    Ok((s.finish(), u.finish(), census, truncated))
}

fn parse_initial(text: &str) -> anyhow::Result<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    // EDN: wrap it as the value of an op and read it back.
    let probe = format!("{{:process 0 :type :invoke :f :read :value {text}}}");
    let mut r = edn::Reader::new(probe.as_bytes(), "--initial");
    match r.next() {
        Some(Ok(op)) => Ok(op.value),
        _ => Err(user_error(format!(
            "--initial {text:?} is neither JSON nor EDN (examples: 0, nil, \"x\", {{\"x\":0,\"y\":0}})"
        ))),
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let file = history_file(&args.path)?;
    let format = match args.format {
        Some(f) => f,
        None => sniff(&file)?,
    };
    let initial = args.initial.as_deref().map(parse_initial).transpose()?;
    let set = Set::default();
    let ids = UniqueIds::default();
    let (set_result, ids_result, census, truncated) = stream(&file, format, &set, &ids)?;
    if truncated {
        tracing::warn!(
            "{}: the last op was cut off mid-line and was skipped",
            file.display()
        );
    }
    let models = match args.model {
        Some(m) => vec![m],
        None => census.models(),
    };
    if models.is_empty() {
        return Err(user_error(format!(
            "{}: found no ops to check (no add, generate/insert/incr, read/write/cas, txn or get/put/append); pass --model to say what to check",
            file.display()
        )));
    }
    let mut results = Vec::new();
    for &m in &models {
        match m {
            Model::Set => results.push(set_result.clone()),
            Model::UniqueIds => results.push(ids_result.clone()),
            _ => {}
        }
    }
    let needs_history = models.iter().any(|m| !m.streams());
    if needs_history {
        let (history, _) = history::load(&file, Some(format)).map_err(read_error)?;
        for &m in models.iter().filter(|m| !m.streams()) {
            results.push(linearizable(
                m,
                &history,
                initial.clone(),
                format,
                args.budget,
            )?);
        }
    }
    let verdict = checkers::result::merge_validity(&results);
    if args.json {
        let mut out = checkers::result::results_json(&results);
        out["history"] = serde_json::json!({
            "path": file.display().to_string(),
            "ops": census.ops,
            "truncated": truncated,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_human(&file, census.ops, &results, verdict);
    }
    Ok(exit::for_validity(verdict))
}

fn linearizable(
    model: Model,
    history: &history::History,
    initial: Option<Value>,
    format: Format,
    budget: Duration,
) -> anyhow::Result<CheckResult> {
    use checkers::Checker;
    use checkers::linearizable::{Linearizable, ModelKind};
    let kind = match model {
        Model::Register => ModelKind::Register,
        Model::CasRegister => ModelKind::CasRegister,
        Model::MultiRegister => ModelKind::MultiRegister,
        Model::Kv => ModelKind::Kv,
        Model::Set | Model::UniqueIds => unreachable!("streaming models are checked in stream()"),
    };
    let mut checker = Linearizable::new(kind)
        // Jepsen/Knossos record reads as nil when the value is unknown; faultline records nil
        // only for a key that holds nothing.
        .with_nil_read_is_unknown(format == Format::JepsenEdn)
        .with_budget(budget);
    if let Some(v) = initial {
        checker = checker.with_initial(v);
    }
    Ok(checker.check(history))
}

fn print_human(file: &Path, ops: u64, results: &[CheckResult], verdict: history::Validity) {
    println!("{} ({ops} ops)", file.display());
    for r in results {
        let detail = match (r.valid, &r.reason) {
            (history::Validity::Unknown, Some(reason)) => reason.clone(),
            _ if r.anomaly_count > 0 => format!(
                "{} anomal{} ({})",
                r.anomaly_count,
                if r.anomaly_count == 1 { "y" } else { "ies" },
                r.anomaly_types().join(", ")
            ),
            _ => String::new(),
        };
        println!("  {:<14} {:<8} {detail}", r.checker, r.valid.as_str());
    }
    for r in results {
        for a in &r.anomalies {
            let ops: Vec<String> = a.ops.iter().map(u64::to_string).collect();
            println!(
                "\n{} [{}] {}\n  ops: {}",
                a.kind,
                r.checker,
                a.explanation,
                ops.join(", ")
            );
        }
        let unlisted = r.anomaly_count - r.anomalies.len() as u64;
        if unlisted > 0 {
            println!(
                "\n... and {unlisted} more {} anomalies (see --json)",
                r.checker
            );
        }
    }
    let types: Vec<&str> = {
        let mut t: Vec<&str> = results.iter().flat_map(|r| r.anomaly_types()).collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    if types.is_empty() {
        println!("\nverdict: {}", verdict.as_str().to_uppercase());
    } else {
        println!(
            "\nverdict: {} ({})",
            verdict.as_str().to_uppercase(),
            types.join(", ")
        );
    }
}
