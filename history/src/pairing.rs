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
    open: Open<T>,
    pos: u64,
}

impl<T> Default for Pairer<T> {
    fn default() -> Self {
        Pairer {
            open: Open {
                dense: Vec::new(),
                sparse: HashMap::new(),
                nemesis: None,
            },
            pos: 0,
        }
    }
}

/// The open invocation of each process: client numbers are small and dense in practice, so
/// they index a vector; huge ones go to a map.
#[derive(Debug)]
struct Open<T> {
    dense: Vec<Option<(u64, u64, T)>>,
    sparse: HashMap<u64, (u64, u64, T)>,
    nemesis: Option<(u64, u64, T)>,
}

const DENSE_LIMIT: u64 = 1 << 20;

impl<T> Open<T> {
    fn slot(&mut self, p: Process) -> Option<&mut Option<(u64, u64, T)>> {
        match p {
            Process::Nemesis => Some(&mut self.nemesis),
            Process::Client(c) if c < DENSE_LIMIT => {
                let c = c as usize;
                if c >= self.dense.len() {
                    self.dense.resize_with(c + 1, || None);
                }
                Some(&mut self.dense[c])
            }
            Process::Client(_) => None,
        }
    }

    fn contains_key(&mut self, p: &Process) -> bool {
        self.get(p).is_some()
    }

    fn get(&mut self, p: &Process) -> Option<&(u64, u64, T)> {
        match *p {
            Process::Client(c) if c >= DENSE_LIMIT => self.sparse.get(&c),
            _ => self.slot(*p).and_then(|s| s.as_ref()),
        }
    }

    fn insert(&mut self, p: Process, v: (u64, u64, T)) {
        match self.slot(p) {
            Some(s) => *s = Some(v),
            None => {
                if let Process::Client(c) = p {
                    self.sparse.insert(c, v);
                }
            }
        }
    }

    fn remove(&mut self, p: &Process) -> Option<(u64, u64, T)> {
        match *p {
            Process::Client(c) if c >= DENSE_LIMIT => self.sparse.remove(&c),
            _ => self.slot(*p).and_then(Option::take),
        }
    }

    fn into_values(self) -> impl Iterator<Item = (u64, u64, T)> {
        self.dense
            .into_iter()
            .flatten()
            .chain(self.sparse.into_values())
            .chain(self.nemesis)
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
