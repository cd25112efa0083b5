//! `faultline export RUN_DIR|HISTORY --format jepsen-edn`: a recorded history in another
//! format, streamed op by op, so it can go to Elle, Knossos or any Jepsen tooling (and a
//! Jepsen history to faultline's JSONL).
//!
//! One meaning differs between the formats: Jepsen (and Knossos) record a read whose value
//! is unknown as `:ok` with value nil, while faultline records nil only for a key that holds
//! nothing. From EDN, such a read becomes an `info` read (for a read, which changes nothing,
//! the same constraint: none); to EDN, faultline's reads of nil are counted and named,
//! since Jepsen's tools will take them as unknown.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use history::Format;

use crate::cmd::check::{history_file, sniff};
use crate::exit::{self, user_error};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A stored run directory, a Jepsen run directory or a history file; a relative path
    /// not found here is looked up in the store ($FAULTLINE_STORE or ./store).
    #[arg(value_parser = crate::stored::run_path)]
    pub path: PathBuf,
    /// The format to write: jepsen-edn (Jepsen's history.edn) or jsonl (faultline's).
    #[arg(long, default_value = "jepsen-edn", value_parser = parse_format)]
    pub format: Format,
    /// Write here (replaced whole, never half-written) instead of to stdout.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

pub fn run(args: ExportArgs) -> anyhow::Result<u8> {
    let file = history_file(&args.path)?;
    let from = sniff(&file)?;
    let input =
        std::fs::File::open(&file).with_context(|| format!("failed to open {}", file.display()))?;
    let name = file.display().to_string();
    match &args.out {
        None => {
            let stdout = std::io::stdout().lock();
            export(input, &name, from, args.format, BufWriter::new(stdout))?;
        }
        Some(out) => {
            let dir = out
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::Builder::new()
                .prefix(".faultline-export-")
                .tempfile_in(dir)
                .with_context(|| format!("failed to create a file in {}", dir.display()))?;
            let n = export(
                input,
                &name,
                from,
                args.format,
                BufWriter::new(tmp.as_file()),
            )?;
            tmp.persist(out)
                .with_context(|| format!("failed to write {}", out.display()))?;
            crate::term::note!("faultline export: {n} ops to {}", out.display());
        }
    }
    Ok(exit::VALID)
}

/// Copies every op of `input` (in format `from`) to `out` in format `to`; the ops written.
fn export<W: Write>(
    input: std::fs::File,
    name: &str,
    from: Format,
    to: Format,
    mut out: W,
) -> anyhow::Result<u64> {
    let mut nil_reads = 0u64;
    let n = match to {
        Format::JepsenEdn => pump(input, name, from, |op| {
            if from == Format::Jsonl && is_nil_read(op) {
                nil_reads += 1;
            }
            history::edn_write::write_op(&mut out, op)
        })?,
        Format::Jsonl => {
            let mut w = history::jsonl::Writer::new(&mut out);
            pump(input, name, from, |op| {
                if from == Format::JepsenEdn && is_nil_read(op) {
                    let mut unknown = op.clone();
                    unknown.kind = history::OpType::Info;
                    return w.append(&unknown);
                }
                w.append(op)
            })?
        }
    };
    if nil_reads > 0 {
        crate::term::note!(
            "faultline export: {nil_reads} read(s) of nil: Jepsen's tools take a nil read as \
             a read of unknown value"
        );
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("failed to write the history"))
        }
        _ => Ok(n),
    }
}

/// A completed read that returned nil.
fn is_nil_read(op: &history::Op) -> bool {
    op.kind == history::OpType::Ok && &*op.f == history::vocab::READ && op.value.is_nil()
}

/// Streams the ops of `input` through `each`; the ops it took. A closed pipe (`| head`) ends
/// the copy quietly: it is the reader's choice, not a failure.
fn pump(
    input: std::fs::File,
    name: &str,
    from: Format,
    mut each: impl FnMut(&history::Op) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    let mut n = 0u64;
    let mut failed = None;
    let info = history::stream(input, name, from, |op| match each(&op) {
        Ok(()) => {
            n += 1;
            ControlFlow::Continue(())
        }
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    })
    .map_err(|e| user_error(e.to_string()))?;
    match failed {
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(n),
        Some(e) => return Err(anyhow::Error::new(e).context("failed to write the history")),
        None => {}
    }
    if info.truncated {
        tracing::warn!("{name}: the last op was cut off mid-line and was skipped");
    }
    Ok(n)
}
