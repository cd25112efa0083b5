//! [`Builder`]: hand-built histories for tests and examples, one call per op.
//!
//! ```
//! use history::{build::Builder, OpType, Value};
//! let mut b = Builder::new();
//! b.invoke(0, "add", 1).node("n1");
//! b.complete(0, OpType::Ok, "add", 1);
//! let h = b.build().unwrap();
//! assert_eq!(h.len(), 2);
//! ```

use crate::{History, Op, OpType, PairError, Process, Value};

/// Appends ops with consecutive indices and times 1 ms apart.
#[derive(Default)]
pub struct Builder {
    ops: Vec<Op>,
}

impl Builder {
    pub fn new() -> Self {
        Builder::default()
    }

    fn push(&mut self, process: Process, kind: OpType, f: &str, value: Value) -> &mut Op {
        let index = self.ops.len() as u64;
        self.ops.push(Op {
            index,
            time: Some((index + 1) * 1_000_000),
            process,
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        });
        self.ops.last_mut().expect("just pushed")
    }

    pub fn invoke(&mut self, process: u64, f: &str, value: impl Into<Value>) -> &mut Op {
        self.push(Process::Client(process), OpType::Invoke, f, value.into())
    }

    pub fn complete(
        &mut self,
        process: u64,
        kind: OpType,
        f: &str,
        value: impl Into<Value>,
    ) -> &mut Op {
        self.push(Process::Client(process), kind, f, value.into())
    }

    /// A nemesis op (both ends of a fault are `info`).
    pub fn nemesis(&mut self, f: &str, value: impl Into<Value>) -> &mut Op {
        self.push(Process::Nemesis, OpType::Info, f, value.into())
    }

    /// The index the next op will get.
    pub fn next_index(&self) -> u64 {
        self.ops.len() as u64
    }

    pub fn ops_mut(&mut self) -> &mut Vec<Op> {
        &mut self.ops
    }

    pub fn build(self) -> Result<History, PairError> {
        History::new(self.ops)
    }
}

impl Op {
    /// Sets the node (builder style).
    pub fn node(&mut self, node: &str) -> &mut Op {
        self.node = Some(node.into());
        self
    }

    /// Sets the key (builder style).
    pub fn key(&mut self, key: impl Into<Value>) -> &mut Op {
        self.key = Some(key.into());
        self
    }
}
