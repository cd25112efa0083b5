//! `faultline check`: run checkers over a recorded history or a stored run.
//!
//! The checkers are the suite `test` and `report` run (`checkers::suite`), inferred from the
//! ops' functions: the models, and `dual-leader`/`failover` when the history has leader
//! probes. The `set` and `unique-ids` checkers stream the file (memory grows with the number
//! of distinct elements, not with the text); the rest need the whole history, as does the
//! fault context when the history has nemesis ops.

use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use checkers::CheckResult;
use checkers::list_append::{self, ListAppend};
use checkers::set::{Set, SetState};
use checkers::suite::{Census, Model, Suite};
use checkers::unique_ids::{UniqueIds, UniqueIdsState};
use history::{Format, Value, edn};

use crate::exit::{self, user_error};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A history file (JSONL or Jepsen EDN), a stored run directory or a Jepsen run
    /// directory (its history.edn); a relative path not found here is looked up in the store
    /// ($FAULTLINE_STORE or ./store): `faultline check latest`.
    #[arg(value_parser = crate::stored::run_path)]
    pub path: PathBuf,
    #[arg(long, value_parser = parse_format, help = crate::cli::values::formats())]
    pub format: Option<Format>,
    #[arg(long, help = crate::cli::values::models())]
    pub model: Option<Model>,
    /// The register's initial value (JSON or EDN: 0, "x", {"x":0,"y":0}); default nil.
    #[arg(long)]
    pub initial: Option<String>,
    /// Time budget for the linearizability search, e.g. 30s, 500ms; past it: unknown.
    #[arg(long, default_value = "60s", value_parser = nemesis::parse_duration)]
    pub budget: Duration,
    /// Default: strict-serializable; for a faultline run that read from followers, the
    /// model the run was checked against (strong-session-serializable).
    #[arg(long, help = crate::cli::values::consistency())]
    pub consistency: Option<checkers::list_append::Consistency>,
    /// Print the results object as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

/// The history file a run directory holds: faultline's `history.jsonl`, or Jepsen's
/// `history.edn` (a Jepsen store's `store/<test>/<time>/`).
pub const RUN_HISTORIES: [&str; 2] = ["history.jsonl", "history.edn"];

/// Where the history of `path` is: the file itself, or the history of a run directory.
pub(crate) fn history_file(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_dir() {
        return RUN_HISTORIES
            .iter()
            .map(|name| path.join(name))
            .find(|h| h.is_file())
            .ok_or_else(|| {
                let jepsen = path.join("test.jepsen").is_file();
                user_error(format!(
                    "{} is a directory without {}: give a history file, a faultline run \
                     directory or a Jepsen run directory{}",
                    path.display(),
                    RUN_HISTORIES.join(" or "),
                    if jepsen {
                        " (this one has only test.jepsen: write its history.edn with \
                         `lein run -m jepsen.cli ...` from Jepsen 0.3, or jepsen.store/load then \
                         spit :history)"
                    } else {
                        ""
                    }
                ))
            });
    }
    if !path.exists() {
        return Err(user_error(format!(
            "{}: no such file (give a history file or a stored run directory)",
            path.display()
        )));
    }
    Ok(path.to_owned())
}

pub(crate) fn sniff(path: &Path) -> anyhow::Result<Format> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut f = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let n = f
        .read(&mut head)
        .with_context(|| format!("failed to read {}", path.display()))?;
    if head[..n].starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(user_error(format!(
            "{}: starts with a UTF-8 byte-order mark (EF BB BF), which JSON Lines and EDN do not allow; remove it: sed -i '1s/^\\xEF\\xBB\\xBF//' FILE",
            path.display()
        )));
    }
    Ok(Format::sniff(&head[..n]))
}

/// A history read error is the user's to fix (exit 254); an IO error is ours (255).
fn read_error(e: history::ReadError) -> anyhow::Error {
    match e {
        history::ReadError::Io { .. } => anyhow::Error::new(e),
        other => user_error(other.to_string()),
    }
}

/// What one streaming pass found.
struct Streamed {
    set: CheckResult,
    ids: CheckResult,
    /// When list-append was asked for or could be inferred.
    list_append: Option<CheckResult>,
    census: Census,
    truncated: bool,
}

/// One streaming pass: the set, unique-ids and list-append checkers plus a census of
/// functions. List-append keeps its txns, interned, not the history.
fn stream(
    file: &Path,
    format: Format,
    set: &Set,
    ids: &UniqueIds,
    list_append: Option<&ListAppend>,
) -> anyhow::Result<Streamed> {
    let input = File::open(file).with_context(|| format!("failed to open {}", file.display()))?;
    let name = file.display().to_string();
    let mut s = SetState::new(set);
    let mut u = UniqueIdsState::new(ids);
    let mut census = Census::default();
    let mut pairing = None;
    let mut la = list_append.map(|_| list_append::txns::Stream::default());
    let info = history::stream(input, &name, format, |op| {
        census.observe(&op);
        let la_step = |la: &mut Option<list_append::txns::Stream>| match la {
            Some(l) => l.observe(&op),
            None => Ok(()),
        };
        match s
            .observe(&op)
            .and_then(|()| u.observe(&op))
            .and_then(|()| la_step(&mut la))
        {
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
    Ok(Streamed {
        set: s.finish(),
        ids: u.finish(),
        list_append: list_append.zip(la).map(|(c, l)| c.finish(l)),
        census,
        truncated: info.truncated,
    })
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

/// A history that is not a regular file (a pipe, `<(...)`, a FIFO) can be read only once,
/// and `check` reads its input more than once: copied to a private temporary file first.
fn spooled(file: PathBuf) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    let meta =
        std::fs::metadata(&file).with_context(|| format!("failed to read {}", file.display()))?;
    if meta.is_file() {
        return Ok((file, None));
    }
    let dir = tempfile::Builder::new()
        .prefix("faultline-check-")
        .tempdir()
        .context("failed to make a temporary directory for the history stream")?;
    let name = file
        .file_name()
        .map(|n| n.to_owned())
        .unwrap_or_else(|| "history".into());
    let copy = dir.path().join(name);
    let mut from =
        File::open(&file).with_context(|| format!("failed to open {}", file.display()))?;
    let mut to =
        File::create(&copy).with_context(|| format!("failed to create {}", copy.display()))?;
    std::io::copy(&mut from, &mut to)
        .with_context(|| format!("failed to read {}", file.display()))?;
    Ok((copy, Some(dir)))
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let (file, _spool) = spooled(history_file(&args.path)?)?;
    let format = match args.format {
        Some(f) => f,
        None => sniff(&file)?,
    };
    let initial = args.initial.as_deref().map(parse_initial).transpose()?;
    let consistency = args
        .consistency
        .unwrap_or_else(|| crate::run_report::run_consistency(&args.path));
    let set = Set::default();
    let ids = UniqueIds::default();
    let la = ListAppend {
        consistency,
        ..ListAppend::default()
    };
    let wants_la = matches!(args.model, None | Some(Model::ListAppend));
    let Streamed {
        set: set_result,
        ids: ids_result,
        list_append: la_result,
        census,
        truncated,
    } = stream(&file, format, &set, &ids, wants_la.then_some(&la))?;
    if truncated {
        tracing::warn!(
            "{}: the last op was cut off mid-line and was skipped",
            file.display()
        );
    }
    let suite = Suite {
        models: match args.model {
            Some(m) => vec![m],
            None => census.models(),
        },
        leader: census.leader,
        // Counts and latencies belong to a run's report, not to a verdict.
        stats: false,
        budget: args.budget,
        initial,
        // Jepsen/Knossos record reads as nil when the value is unknown; faultline records
        // nil only for a key that holds nothing.
        nil_read_is_unknown: format == Format::JepsenEdn,
        consistency,
    };
    if suite.models.is_empty() && !suite.leader {
        return Err(user_error(format!(
            "{}: found no ops to check (no add, generate/insert/incr, read/write/cas, txn, get/put/append or leader); pass --model to say what to check",
            file.display()
        )));
    }
    let mut streamed = vec![set_result, ids_result];
    streamed.extend(la_result);
    let results = if suite.needs_history(&census) {
        let (history, _) = history::load(&file, Some(format)).map_err(read_error)?;
        suite.run_with(&history, streamed)
    } else {
        suite.streamed_only(streamed)
    };
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

fn print_human(file: &Path, ops: u64, results: &[CheckResult], verdict: history::Validity) {
    println!(
        "{} ({ops} ops)",
        crate::term::safe(&file.display().to_string())
    );
    for r in results {
        let detail = match (r.valid, &r.reason) {
            (history::Validity::Unknown, Some(reason)) => crate::term::safe(reason).into_owned(),
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
                crate::term::safe(&a.explanation),
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
