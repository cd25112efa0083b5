//! P-compositionality: a history is linearizable iff each per-key sub-history is, so the
//! checker splits client ops by key and searches each part on its own (a search's cost grows
//! exponentially with concurrency, so many small parts beat one big one).
//!
//! Here too the Knossos rules are applied: nemesis ops are ignored and `fail` ops (which
//! definitely did not take effect) are dropped; `info` ops and invocations that never
//! completed keep no return position (they may take effect at any later point, or never).

use std::collections::HashMap;

use history::{History, OpType, Value};

/// The client ops of one key, by history position.
#[derive(Debug, Clone)]
pub struct Part<'h> {
    /// `op.key`, or None for ops without one (and for every op when not splitting).
    pub key: Option<&'h Value>,
    /// (invocation position, position of the `ok` completion if it completed ok).
    pub ops: Vec<(u32, Option<u32>)>,
}

/// The parts, in order of each key's first invocation, and what was left out.
#[derive(Debug, Default)]
pub struct Split<'h> {
    pub parts: Vec<Part<'h>>,
    /// Ops dropped because they failed.
    pub failed: u64,
    /// Ops kept that may or may not have taken effect.
    pub indefinite: u64,
}

/// Splits the client ops of `history` by `op.key` (or keeps them together if not `by_key`).
pub fn split(history: &History, by_key: bool) -> Split<'_> {
    let mut out = Split::default();
    let mut index: HashMap<Option<&Value>, usize> = HashMap::new();
    for (pos, invoke, completion) in history.client_pairs() {
        let ret = match completion {
            Some(c) if c.kind == OpType::Fail => {
                out.failed += 1;
                continue;
            }
            Some(c) if c.kind == OpType::Ok => history.partner(pos).map(|p| p as u32),
            _ => {
                out.indefinite += 1;
                None
            }
        };
        let key = if by_key { invoke.key.as_ref() } else { None };
        let part = *index.entry(key).or_insert_with(|| {
            out.parts.push(Part {
                key,
                ops: Vec::new(),
            });
            out.parts.len() - 1
        });
        out.parts[part].ops.push((pos as u32, ret));
    }
    out
}
