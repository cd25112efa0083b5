//! [`History`]: ops in order, with each invocation paired to its completion.

use crate::pairing::{Event, Pairer};
use crate::{Op, OpType, Process};

const NONE: u32 = u32::MAX;

/// A history whose pairing has been checked: every client completion follows an invocation
/// by the same process, and no process invokes twice without completing.
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Vec<Op>,
    /// For each position, the position of its partner (invocation <-> completion), or NONE.
    partner: Vec<u32>,
}

/// A history whose ops cannot be paired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error(
        "op {index}: process {process} invokes again before its op {pending} completed (a process whose op ended `info` must not invoke again; give the client a new process number)"
    )]
    DoubleInvoke {
        index: u64,
        pending: u64,
        process: Process,
    },
    #[error("op {index}: process {process} completes ({kind}) an op it never invoked")]
    Orphan {
        index: u64,
        process: Process,
        kind: OpType,
    },
    #[error("the history has more than {max} ops, more than one History holds", max = u32::MAX - 1)]
    TooLarge,
}

impl History {
    /// Pairs the ops. Invocations that never complete are allowed (they count as `info`).
    pub fn new(ops: Vec<Op>) -> Result<History, PairError> {
        if ops.len() >= NONE as usize {
            return Err(PairError::TooLarge);
        }
        let mut partner = vec![NONE; ops.len()];
        let mut pairer = Pairer::default();
        for (i, op) in ops.iter().enumerate() {
            if let Event::Completed { invoke_pos, .. } = pairer.push(op, |_| ())? {
                partner[invoke_pos as usize] = i as u32;
                partner[i] = invoke_pos as u32;
            }
        }
        Ok(History { ops, partner })
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn get(&self, pos: usize) -> Option<&Op> {
        self.ops.get(pos)
    }

    /// The position of the op paired with the op at `pos` (its completion or invocation).
    pub fn partner(&self, pos: usize) -> Option<usize> {
        match self.partner.get(pos) {
            Some(&p) if p != NONE => Some(p as usize),
            _ => None,
        }
    }

    /// The completion of the invocation at `pos`, if it completed.
    pub fn completion(&self, pos: usize) -> Option<&Op> {
        if self.ops[pos].kind != OpType::Invoke {
            return None;
        }
        self.partner(pos).map(|p| &self.ops[p])
    }

    /// Each client invocation with its completion (None: never completed, i.e. `info`), in
    /// invocation order, with the invocation's position.
    pub fn client_pairs(&self) -> impl Iterator<Item = (usize, &Op, Option<&Op>)> + '_ {
        self.ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.kind == OpType::Invoke && op.is_client())
            .map(move |(i, op)| (i, op, self.partner(i).map(|p| &self.ops[p])))
    }

    /// Nemesis ops in order.
    pub fn nemesis_ops(&self) -> impl Iterator<Item = &Op> + '_ {
        self.ops.iter().filter(|op| op.process == Process::Nemesis)
    }

    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    fn op(index: u64, process: u64, kind: OpType) -> Op {
        Op {
            index,
            time: None,
            process: Process::Client(process),
            kind,
            f: "read".into(),
            key: None,
            value: Value::Nil,
            node: None,
            error: None,
        }
    }

    #[test]
    fn pairs_interleaved_processes() {
        let h = History::new(vec![
            op(0, 1, OpType::Invoke),
            op(1, 2, OpType::Invoke),
            op(2, 2, OpType::Ok),
            op(3, 1, OpType::Info),
            op(4, 3, OpType::Invoke),
        ])
        .unwrap();
        assert_eq!(h.partner(0), Some(3));
        assert_eq!(h.partner(1), Some(2));
        assert_eq!(h.partner(4), None);
        assert_eq!(h.client_pairs().count(), 3);
    }

    #[test]
    fn rejects_double_invoke_and_orphans() {
        let e = History::new(vec![op(0, 1, OpType::Invoke), op(1, 1, OpType::Invoke)]).unwrap_err();
        assert!(matches!(
            e,
            PairError::DoubleInvoke {
                index: 1,
                pending: 0,
                ..
            }
        ));
        let e = History::new(vec![op(0, 1, OpType::Ok)]).unwrap_err();
        assert!(matches!(e, PairError::Orphan { index: 0, .. }));
    }
}
