//! Parallel JSONL parsing for [`crate::stream`]: parsing is most of the cost of checking a big
//! history, and JSONL lines are independent, so blocks of whole lines parse on several threads.
//!
//! A reader thread cuts the input into blocks of about [`BLOCK`] bytes that end at a line
//! boundary (a longer line makes a longer block) and deals them round-robin to the workers;
//! the caller's thread takes the parsed blocks back in the same round-robin order, so ops
//! arrive in file order. Only the line numbers and default indices depend on what came before;
//! workers count them from the block's start and the caller shifts them. Channels are bounded,
//! so a handful of blocks are in memory at once, never the whole text.

use std::io::Read;
use std::ops::ControlFlow;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::jsonl::{Interner, Line, parse_line};
use crate::{LoadInfo, Op, ReadError};

/// Target size of a block of text. Big enough that channel hand-offs are rare (~20 k ops),
/// small enough that the blocks in flight stay a few MB.
pub(crate) const BLOCK: usize = 2 << 20;

/// Raw text cut at a line boundary.
struct Block {
    text: Vec<u8>,
    /// The input ends with this block (its last line may lack a newline: truncated).
    last: bool,
    /// Reading failed after `text`.
    io: Option<std::io::Error>,
}

/// One block's ops and how it ended.
struct Parsed {
    ops: Vec<Op>,
    /// Positions in `ops` of ops whose line gave no index (they get their history position).
    unindexed: Vec<usize>,
    /// Lines in the block, blank ones included.
    lines: u64,
    /// The first op that gave an index: (its index, its line in the block).
    first_indexed: Option<(u64, u64)>,
    /// The last index an op of the block gave.
    last_indexed: Option<u64>,
    end: End,
    last: bool,
}

/// What an op whose `index` does not increase is told.
pub(crate) fn index_order(index: u64, before: u64) -> String {
    format!(
        "index {index} after index {before}: indexes must increase (each op once, in the order written)"
    )
}

enum End {
    Complete,
    /// The last line was cut off mid-object.
    Truncated,
    /// Line `line` (counted from the block's start, 1-based) is not an op.
    Syntax {
        line: u64,
        message: String,
    },
    Io(std::io::Error),
}

/// Streams the ops of JSONL `input` to `each` in file order, parsing on `workers` threads.
pub(crate) fn stream<R: Read + Send>(
    input: R,
    name: &str,
    workers: usize,
    block: usize,
    mut each: impl FnMut(Op) -> ControlFlow<()>,
) -> Result<LoadInfo, ReadError> {
    let workers = workers.max(1);
    std::thread::scope(|scope| {
        let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(workers * 2);
        let mut to_workers = Vec::new();
        let mut from_workers = Vec::new();
        let mut recycle = Vec::new();
        for _ in 0..workers {
            let (btx, brx) = sync_channel::<Block>(1);
            let (ptx, prx) = sync_channel::<Parsed>(1);
            let (rtx, rrx) = sync_channel::<Vec<Op>>(2);
            let spare = spare_tx.clone();
            scope.spawn(move || work(brx, ptx, rrx, spare));
            to_workers.push(btx);
            from_workers.push(prx);
            recycle.push(rtx);
        }
        drop(spare_tx);
        scope.spawn(move || split(input, block, to_workers, spare_rx));

        let mut info = LoadInfo::default();
        let (mut line_base, mut position) = (0u64, 0u64);
        let mut last_indexed: Option<u64> = None;
        for w in (0..workers).cycle() {
            // A worker only hangs up after the last block, which ends this loop first.
            let Ok(mut parsed) = from_workers[w].recv() else {
                break;
            };
            // Each block checked its own order; across blocks, its first index against the
            // last one before it.
            if let (Some((index, line)), Some(before)) = (parsed.first_indexed, last_indexed) {
                if index <= before {
                    return Err(ReadError::Syntax {
                        path: name.to_owned(),
                        line: line_base + line,
                        message: index_order(index, before),
                    });
                }
            }
            last_indexed = parsed.last_indexed.or(last_indexed);
            for &i in &parsed.unindexed {
                parsed.ops[i].index = position + i as u64;
            }
            position += parsed.ops.len() as u64;
            for op in parsed.ops.drain(..) {
                if each(op) == ControlFlow::Break(()) {
                    // Returning drops the receivers, which stops every thread at its next send.
                    return Ok(info);
                }
            }
            let _ = recycle[w].try_send(parsed.ops);
            match parsed.end {
                End::Complete => {}
                End::Truncated => info.truncated = true,
                End::Syntax { line, message } => {
                    return Err(ReadError::Syntax {
                        path: name.to_owned(),
                        line: line_base + line,
                        message,
                    });
                }
                End::Io(source) => {
                    return Err(ReadError::Io {
                        path: name.to_owned(),
                        source,
                    });
                }
            }
            line_base += parsed.lines;
            if parsed.last {
                break;
            }
        }
        Ok(info)
    })
}

/// The reader thread: cuts `input` into blocks of whole lines and deals them out in turn.
fn split<R: Read>(
    mut input: R,
    block: usize,
    workers: Vec<SyncSender<Block>>,
    spare: Receiver<Vec<u8>>,
) {
    let mut carry: Vec<u8> = Vec::new();
    for w in (0..workers.len()).cycle() {
        let mut text = spare.try_recv().unwrap_or_default();
        text.clear();
        text.reserve(block.max(carry.len()) + 4096);
        // The carried-over start of a line comes first; the line boundary search below looks
        // only at newly read text, so a long line is scanned once.
        text.append(&mut carry);
        let mut searched = text.len();
        let mut io = None;
        let mut last = false;
        let cut = loop {
            // Never zero: a read of 0 bytes means the end of the input.
            let want = block.saturating_sub(text.len()).max(block / 4).max(1) as u64;
            match (&mut input).take(want).read_to_end(&mut text) {
                Ok(0) => {
                    last = true;
                    break text.len();
                }
                Ok(_) if text.len() < block => continue,
                Ok(_) => {
                    if let Some(nl) = memchr::memrchr(b'\n', &text[searched..]) {
                        break searched + nl + 1;
                    }
                    // No line ends here yet: a line longer than a block; read on.
                    searched = text.len();
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    io = Some(e);
                    last = true;
                    break text.len();
                }
            }
        };
        carry.extend_from_slice(&text[cut..]);
        text.truncate(cut);
        if workers[w].send(Block { text, last, io }).is_err() || last {
            return;
        }
    }
}

/// A worker thread: parses each block it is dealt.
fn work(
    blocks: Receiver<Block>,
    out: SyncSender<Parsed>,
    recycled: Receiver<Vec<Op>>,
    spare: SyncSender<Vec<u8>>,
) {
    let mut names = Interner::default();
    for block in blocks {
        let ops = recycled.try_recv().unwrap_or_default();
        let parsed = parse_block(&block.text, block.last, ops, &mut names);
        let parsed = match block.io {
            Some(e) if matches!(parsed.end, End::Complete | End::Truncated) => Parsed {
                end: End::Io(e),
                ..parsed
            },
            _ => parsed,
        };
        let _ = spare.try_send(block.text);
        if out.send(parsed).is_err() {
            return;
        }
    }
}

/// Parses the lines of one block. Only the last block's last line may lack its newline.
fn parse_block(text: &[u8], last: bool, mut ops: Vec<Op>, names: &mut Interner) -> Parsed {
    ops.clear();
    let mut unindexed = Vec::new();
    let mut lines = 0u64;
    let (mut first_indexed, mut last_indexed) = (None, None);
    let mut rest = text;
    let mut end = End::Complete;
    while !rest.is_empty() {
        let (line, complete) = match memchr::memchr(b'\n', rest) {
            Some(nl) => {
                let line = &rest[..nl];
                rest = &rest[nl + 1..];
                (line, true)
            }
            None => (std::mem::take(&mut rest), false),
        };
        lines += 1;
        match parse_line(line, complete, names, &mut ops) {
            Ok(Line::Blank) => {}
            Ok(Line::Truncated) => {
                end = End::Truncated;
                break;
            }
            Ok(Line::Op(has_index)) => {
                let at = ops.len() - 1;
                if !has_index {
                    ops[at].index = at as u64;
                    unindexed.push(at);
                } else {
                    let index = ops[at].index;
                    if let Some(before) = last_indexed.filter(|&b| index <= b) {
                        end = End::Syntax {
                            line: lines,
                            message: index_order(index, before),
                        };
                        break;
                    }
                    first_indexed.get_or_insert((index, lines));
                    last_indexed = Some(index);
                }
            }
            Err(message) => {
                end = End::Syntax {
                    line: lines,
                    message,
                };
                break;
            }
        }
    }
    Parsed {
        ops,
        unindexed,
        lines,
        first_indexed,
        last_indexed,
        end,
        last,
    }
}

#[cfg(test)]
mod tests;
