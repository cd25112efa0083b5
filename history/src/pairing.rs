//! [`Pairer`]: matches completions to invocations one op at a time, so that checkers can
//! stream a history they never hold whole. [`History::new`](crate::History::new) uses it too.

use std::collections::HashMap;

use crate::{Op, OpType, PairError, Process};

/// What one op meant for the pairing.
#[derive(Debug, PartialEq)]
pub enum Event<T> {
    /// It opened an operation (an invocation, or the first half of a nemesis op).
    Opened,
    /// It completed the operation opened at `invoke_pos`, which stored `payload`.
    Completed { invoke_pos: u64, payload: T },
}

/// Pairs ops as they come; `T` is whatever the caller keeps from each invocation.
#[derive(Debug)]
pub struct Pairer<T> {
    open: HashMap<Process, (u64, u64, T)>,
    pos: u64,
}

impl<T> Default for Pairer<T> {
    fn default() -> Self {
        Pairer {
            open: HashMap::new(),
            pos: 0,
        }
    }
}

impl<T> Pairer<T> {
    /// Feeds the next op. `keep` is called on invocations to make what completion returns.
    pub fn push(&mut self, op: &Op, keep: impl FnOnce(&Op) -> T) -> Result<Event<T>, PairError> {
        let pos = self.pos;
        self.pos += 1;
        let opens = match (op.process, op.kind) {
            (_, OpType::Invoke) => true,
            // The nemesis logs both ends of a fault as `info`: the first opens, the next closes.
            (Process::Nemesis, _) => !self.open.contains_key(&op.process),
            _ => false,
        };
        if opens {
            if let Some((_, pending, _)) = self.open.get(&op.process) {
                if op.process != Process::Nemesis {
                    return Err(PairError::DoubleInvoke {
                        index: op.index,
                        pending: *pending,
                        process: op.process,
                    });
                }
            }
            self.open.insert(op.process, (pos, op.index, keep(op)));
            return Ok(Event::Opened);
        }
        match self.open.remove(&op.process) {
            Some((invoke_pos, _, payload)) => Ok(Event::Completed {
                invoke_pos,
                payload,
            }),
            None => Err(PairError::Orphan {
                index: op.index,
                process: op.process,
                kind: op.kind,
            }),
        }
    }

    /// Invocations still open (never completed), with what was kept from them.
    pub fn into_open(self) -> impl Iterator<Item = (u64, T)> {
        self.open.into_values().map(|(pos, _, t)| (pos, t))
    }
}
