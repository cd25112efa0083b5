//! Opening a history file: format detection and reading into a [`History`].

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::str::FromStr;

use crate::{History, Op, ReadError, Value, edn, jsonl};

/// The on-disk formats faultline reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// faultline's own: one JSON op per line.
    Jsonl,
    /// Jepsen's `history.edn`, Knossos and Porcupine data files.
    JepsenEdn,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "jepsen-edn" | "edn" => Ok(Format::JepsenEdn),
            other => Err(format!(
                "unknown history format {other:?} (expected jsonl or jepsen-edn)"
            )),
        }
    }
}

impl Format {
    /// Every format, as `--format` names them.
    pub const ALL: [Format; 2] = [Format::Jsonl, Format::JepsenEdn];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::JepsenEdn => "jepsen-edn",
        }
    }

    /// Guesses from the first significant bytes: a JSON object starts `{"`, anything else
    /// (`[`, `(`, `;`, `{:`) is EDN.
    pub fn sniff(head: &[u8]) -> Format {
        let mut it = head.iter().copied().filter(|c| !c.is_ascii_whitespace());
        match (it.next(), it.next()) {
            (Some(b'{'), Some(b'"')) | (Some(b'{'), Some(b'}')) => Format::Jsonl,
            _ => Format::JepsenEdn,
        }
    }
}

/// A reader of ops in some format: an iterator that stops after the first error, and can
/// say afterwards whether the input ended mid-op.
pub trait OpSource: Iterator<Item = Result<Op, ReadError>> {
    fn truncated(&self) -> bool;
}

impl<R: BufRead> OpSource for jsonl::Reader<R> {
    fn truncated(&self) -> bool {
        jsonl::Reader::truncated(self)
    }
}

impl<R: std::io::Read> OpSource for edn::Reader<R> {
    fn truncated(&self) -> bool {
        edn::Reader::truncated(self)
    }
}

/// A reader for `format` over `input`; `name` labels errors.
pub fn reader<'a, R: BufRead + 'a>(input: R, name: &str, format: Format) -> Box<dyn OpSource + 'a> {
    match format {
        Format::Jsonl => Box::new(jsonl::Reader::new(input, name)),
        Format::JepsenEdn => Box::new(edn::Reader::new(input, name)),
    }
}

/// Yields `next()` until the first error or the end, then nothing: the readers' shared
/// `Iterator::next`.
pub(crate) fn fused<T>(
    done: &mut bool,
    next: impl FnOnce() -> Result<Option<T>, ReadError>,
) -> Option<Result<T, ReadError>> {
    if *done {
        return None;
    }
    let item = next().transpose();
    if !matches!(item, Some(Ok(_))) {
        *done = true;
    }
    item
}

/// What reading a file produced besides the ops.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadInfo {
    /// The file ended mid-op; that partial op was skipped.
    pub truncated: bool,
}

/// Reads a whole history file. `format` None guesses it from the content.
pub fn load(path: &Path, format: Option<Format>) -> Result<(History, LoadInfo), ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Open {
        path: path.to_owned(),
        source,
    })?;
    load_reader(
        BufReader::with_capacity(1 << 20, file),
        &path.display().to_string(),
        format,
    )
}

/// As [`load`], from any buffered reader; `name` labels errors.
pub fn load_reader<R: BufRead>(
    mut input: R,
    name: &str,
    format: Option<Format>,
) -> Result<(History, LoadInfo), ReadError> {
    let format = match format {
        Some(f) => f,
        None => {
            let head = input.fill_buf().map_err(|source| ReadError::Io {
                path: name.to_owned(),
                source,
            })?;
            Format::sniff(&head[..head.len().min(4096)])
        }
    };
    let mut source = reader(input, name, format);
    let ops = source.by_ref().collect::<Result<Vec<Op>, _>>()?;
    let truncated = source.truncated();
    let history = History::new(ops).map_err(|source| ReadError::Pairing {
        path: name.to_owned(),
        source,
    })?;
    Ok((history, LoadInfo { truncated }))
}

/// Reads ops on background threads and hands them to `each` on this one, in file order, so
/// that parsing and checking use every core. `each` may stop the stream early with
/// `ControlFlow::Break`. JSONL parses in blocks on several threads; EDN on one.
pub fn stream<R: std::io::Read + Send>(
    input: R,
    name: &str,
    format: Format,
    each: impl FnMut(Op) -> std::ops::ControlFlow<()>,
) -> Result<LoadInfo, ReadError> {
    match format {
        Format::Jsonl => {
            // The caller's thread is busy with `each`; parse on the other cores, at least two
            // so that one huge line (a read of a whole set) does not stall the rest.
            let workers = std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 4);
            crate::chunked::stream(input, name, workers, crate::chunked::BLOCK, each)
        }
        Format::JepsenEdn => stream_sequential(input, name, format, each),
    }
}

/// A parse thread and a consume thread: for formats whose records cannot be found without
/// parsing (EDN ops span lines).
fn stream_sequential<R: std::io::Read + Send>(
    input: R,
    name: &str,
    format: Format,
    mut each: impl FnMut(Op) -> std::ops::ControlFlow<()>,
) -> Result<LoadInfo, ReadError> {
    use std::ops::ControlFlow;
    use std::sync::mpsc::sync_channel;

    const BATCH: usize = 4096;
    const BIG_LIST: usize = 10_000;
    let (tx, rx) = sync_channel::<Result<Vec<Op>, ReadError>>(2);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let input = BufReader::with_capacity(1 << 20, input);
            let mut batch = Vec::with_capacity(BATCH);
            let mut source = reader(input, name, format);
            for op in source.by_ref() {
                let big = match op {
                    Ok(op) => {
                        let big = matches!(&op.value, Value::List(l) if l.len() >= BIG_LIST);
                        batch.push(op);
                        big
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return false;
                    }
                };
                // A read of a whole set can hold millions of elements: send it on its own,
                // so that only a couple of them are ever in memory at once.
                if (batch.len() == BATCH || big)
                    && tx
                        .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                        .is_err()
                {
                    return false;
                }
            }
            let _ = tx.send(Ok(std::mem::take(&mut batch)));
            source.truncated()
        });
        for batch in rx.iter() {
            for op in batch? {
                if each(op) == ControlFlow::Break(()) {
                    // Dropping the receiver stops the producer at its next send.
                    drop(rx);
                    return Ok(LoadInfo {
                        truncated: producer.join().unwrap_or(false),
                    });
                }
            }
        }
        Ok(LoadInfo {
            truncated: producer.join().unwrap_or(false),
        })
    })
}
