//! Hand-built histories with explicit times (ms), for the dual-leader and failover tests:
//! ops are added in any order and sorted by time (stable) when built.

#![allow(dead_code)]

use history::{History, Op, OpType, Process, Value};

pub fn v(j: serde_json::Value) -> Value {
    serde_json::from_value(j).expect("a value")
}

#[derive(Default)]
pub struct Timed {
    ops: Vec<Op>,
}

fn op(time_ms: f64, process: Process, kind: OpType, f: &str, value: Value) -> Op {
    Op {
        index: 0,
        time: Some((time_ms * 1e6) as u64),
        process,
        kind,
        f: f.into(),
        key: None,
        value,
        node: None,
        error: None,
    }
}

impl Timed {
    /// A leader probe of `node` by process `p`, answered with `role` and `term` (a leader
    /// names itself, others name no leader).
    pub fn probe(
        &mut self,
        p: u64,
        node: &str,
        t0: f64,
        t1: f64,
        role: &str,
        term: i64,
    ) -> &mut Self {
        let leader = (role == "leader").then_some(node);
        self.probe_led(p, node, t0, t1, role, term, leader)
    }

    /// A leader probe answered with `role`, `term` and the leader `node` believes in.
    #[allow(clippy::too_many_arguments)]
    pub fn probe_led(
        &mut self,
        p: u64,
        node: &str,
        t0: f64,
        t1: f64,
        role: &str,
        term: i64,
        leader: Option<&str>,
    ) -> &mut Self {
        let c = Process::Client(p);
        let mut i = op(t0, c, OpType::Invoke, "leader", Value::Nil);
        i.node = Some(node.into());
        let mut d = op(
            t1,
            c,
            OpType::Ok,
            "leader",
            v(serde_json::json!({"role": role, "term": term, "leader": leader})),
        );
        d.node = Some(node.into());
        self.ops.push(i);
        self.ops.push(d);
        self
    }

    /// A probe answered with `value` (role, term, leader, applied, committed ...).
    pub fn probe_value(
        &mut self,
        p: u64,
        node: &str,
        t0: f64,
        t1: f64,
        value: serde_json::Value,
    ) -> &mut Self {
        let c = Process::Client(p);
        let mut i = op(t0, c, OpType::Invoke, "leader", Value::Nil);
        i.node = Some(node.into());
        let mut d = op(t1, c, OpType::Ok, "leader", v(value));
        d.node = Some(node.into());
        self.ops.push(i);
        self.ops.push(d);
        self
    }

    /// A probe that got no answer.
    pub fn probe_failed(&mut self, p: u64, node: &str, t0: f64, t1: f64) -> &mut Self {
        let c = Process::Client(p);
        let mut i = op(t0, c, OpType::Invoke, "leader", Value::Nil);
        i.node = Some(node.into());
        let mut d = op(t1, c, OpType::Fail, "leader", Value::Nil);
        d.node = Some(node.into());
        self.ops.push(i);
        self.ops.push(d);
        self
    }

    /// A write (`add value`) sent to `node`, ending with `kind`.
    pub fn add(
        &mut self,
        p: u64,
        node: &str,
        t0: f64,
        t1: f64,
        value: i64,
        kind: OpType,
    ) -> &mut Self {
        let c = Process::Client(p);
        let mut i = op(t0, c, OpType::Invoke, "add", Value::Int(value));
        i.node = Some(node.into());
        let mut d = op(t1, c, kind, "add", Value::Int(value));
        d.node = Some(node.into());
        self.ops.push(i);
        self.ops.push(d);
        self
    }

    /// A list-append transaction of one micro-op (`["append", 0, value]`) answered by `node`.
    pub fn append(&mut self, p: u64, node: &str, t0: f64, t1: f64, value: i64) -> &mut Self {
        let c = Process::Client(p);
        let mop = v(serde_json::json!([["append", 0, value]]));
        let mut i = op(t0, c, OpType::Invoke, "txn", mop.clone());
        i.node = Some(node.into());
        let mut d = op(t1, c, OpType::Ok, "txn", mop);
        d.node = Some(node.into());
        self.ops.push(i);
        self.ops.push(d);
        self
    }

    /// A final read of the whole set from `node`.
    pub fn read(&mut self, p: u64, node: &str, t0: f64, t1: f64, values: &[i64]) -> &mut Self {
        let c = Process::Client(p);
        let mut i = op(t0, c, OpType::Invoke, "read", Value::Nil);
        i.node = Some(node.into());
        let mut d = op(
            t1,
            c,
            OpType::Ok,
            "read",
            Value::List(values.iter().map(|&x| Value::Int(x)).collect()),
        );
        d.node = Some(node.into());
        self.ops.push(i);
        self.ops.push(d);
        self
    }

    /// A final digest of `node`: its keys with their fingerprints.
    pub fn digest(
        &mut self,
        p: u64,
        node: &str,
        t0: f64,
        t1: f64,
        keys: &[(&str, &str)],
    ) -> &mut Self {
        let c = Process::Client(p);
        let mut i = op(t0, c, OpType::Invoke, "digest", Value::Nil);
        i.node = Some(node.into());
        let map = keys
            .iter()
            .map(|(k, h)| (Value::str(k), Value::str(h)))
            .collect();
        let mut d = op(t1, c, OpType::Ok, "digest", Value::Map(map));
        d.node = Some(node.into());
        self.ops.push(i);
        self.ops.push(d);
        self
    }

    /// Both ends of a nemesis step (`start-partition` ...) at `t0` and `t1`.
    pub fn nemesis(&mut self, f: &str, t0: f64, t1: f64, value: serde_json::Value) -> &mut Self {
        self.ops
            .push(op(t0, Process::Nemesis, OpType::Info, f, Value::Nil));
        self.ops
            .push(op(t1, Process::Nemesis, OpType::Info, f, v(value)));
        self
    }

    pub fn build(&self) -> History {
        let mut ops = self.ops.clone();
        ops.sort_by_key(|o| o.time);
        for (i, o) in ops.iter_mut().enumerate() {
            o.index = i as u64;
        }
        History::new(ops).expect("a well-paired history")
    }
}
