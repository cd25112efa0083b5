//! A synthetic run for demonstrations, tests and benchmarks of the report: five nodes, a set
//! workload with `incr` ids, leader probes every 100 ms, and a partition that cuts the leader
//! n1 off at 8 s while n1 (a leader that never steps down) keeps acknowledging writes; n3 is
//! elected at 9.5 s; the partition heals at 14 s; final reads on all nodes at 19 s.
//!
//! It holds a lost write (every add n1 acknowledged while cut off), a reused id (n3's counter
//! restarts below n1's), a proven dual-leader window (9.5 s to 14 s) with split-brain writes.
//! `hostile` adds values, keys and errors that contain `<script>` markup.

use history::{Op, OpType, Process, Value};

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const NODES: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn op(time: u64, process: Process, kind: OpType, f: &str, value: Value, node: Option<&str>) -> Op {
    Op {
        index: 0,
        time: Some(time),
        process,
        kind,
        f: f.into(),
        key: None,
        value,
        node: node.map(Into::into),
        error: None,
    }
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Value::str(k), v.clone()))
            .collect(),
    )
}

fn list(nodes: &[&str]) -> Value {
    Value::List(nodes.iter().map(|n| Value::str(n)).collect())
}

/// About `client_ops` client ops (invocations and completions) plus probes and faults, in
/// time order with consecutive indices.
pub fn demo(client_ops: usize, hostile: bool) -> Vec<Op> {
    let mut ops: Vec<Op> = Vec::with_capacity(client_ops + 2000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Leader probes, one process per node (0..4).
    for (i, &n) in NODES.iter().enumerate() {
        let p = Process::Client(i as u64);
        let mut t = i as u64 * 7 * MS;
        while t < 19 * S {
            let (role, term, leader) = match (n, t) {
                ("n1", t) if t < 14 * S => ("leader", 1, Some("n1")),
                (_, t) if t < 8 * S => ("follower", 1, Some("n1")),
                ("n3", t) if t >= 9_500 * MS => ("leader", 2, Some("n3")),
                (_, t) if t >= 9_500 * MS => ("follower", 2, Some("n3")),
                _ => ("candidate", 2, None),
            };
            ops.push(op(t, p, OpType::Invoke, "leader", Value::Nil, Some(n)));
            let leader = leader.map_or(Value::Nil, Value::str);
            let answer = map(&[
                ("role", Value::str(role)),
                ("term", Value::Int(term)),
                ("leader", leader),
            ]);
            ops.push(op(t + 2 * MS, p, OpType::Ok, "leader", answer, Some(n)));
            t += 100 * MS;
        }
    }
    // Faults.
    let nem = Process::Nemesis;
    let grudge = map(&[
        ("n1", list(&["n2", "n3", "n4", "n5"])),
        ("n2", list(&["n1"])),
        ("n3", list(&["n1"])),
        ("n4", list(&["n1"])),
        ("n5", list(&["n1"])),
    ]);
    let part = map(&[("partition", Value::str("isolate n1"))]);
    ops.push(op(8 * S, nem, OpType::Info, "start-partition", part, None));
    ops.push(op(
        8 * S + 3 * MS,
        nem,
        OpType::Info,
        "start-partition",
        grudge,
        None,
    ));
    let stop = map(&[("id", Value::Int(1))]);
    ops.push(op(14 * S, nem, OpType::Info, "stop-partition", stop, None));
    ops.push(op(
        14 * S + 2 * MS,
        nem,
        OpType::Info,
        "stop-partition",
        Value::Nil,
        None,
    ));
    // Clients (processes from 20 on): adds, and every 10th op an incr. Enough clients that
    // each waits for its previous op.
    let pairs = (client_ops / 2).max(10) as u64;
    let clients = (pairs * 4 * MS / (18 * S)).max(5);
    let period = 18 * S * clients / pairs;
    let mut acked: Vec<i64> = Vec::new();
    let mut id_n1 = 0i64;
    let mut id_n3: Option<i64> = None;
    let mut process: Vec<u64> = (20..20 + clients).collect();
    let mut next_process = 20 + clients;
    let mut v = 0i64;
    for (c, client) in process.iter_mut().enumerate() {
        let mut t = c as u64 * period / clients;
        while t < 18 * S {
            let lat = MS + rng.next() % (4 * MS);
            let p = Process::Client(*client);
            let incr = v % 10 == 9;
            let (node, outcome) = match t {
                t if t < 8 * S => ("n1", OpType::Ok),
                t if t < 9_500 * MS => ("n1", OpType::Info),
                t if t < 14 * S && c == 0 => ("n1", OpType::Ok),
                t if t < 14 * S && c == 1 => ("n1", OpType::Fail),
                _ => ("n3", OpType::Ok),
            };
            let outcome = if incr && node == "n1" && t >= 8 * S && id_n3.is_some() {
                OpType::Fail // one reused id is enough
            } else {
                outcome
            };
            let (f, value, result) = if incr {
                let id = if node == "n1" {
                    id_n1 += 1;
                    id_n1
                } else {
                    // n3's counter starts where its log ended: at n1's last id.
                    let next = id_n3.map_or(id_n1, |i| i + 1).max(1);
                    id_n3 = Some(next);
                    next
                };
                ("incr", Value::Nil, Value::Int(id))
            } else {
                ("add", Value::Int(v), Value::Int(v))
            };
            v += 1;
            ops.push(op(t, p, OpType::Invoke, f, value.clone(), Some(node)));
            let mut done = op(t + lat, p, outcome, f, result, Some(node));
            if outcome == OpType::Ok && f == "add" && !(node == "n1" && t >= 8 * S) {
                acked.extend(value.as_int());
            }
            if outcome != OpType::Ok {
                done.value = value;
                done.error = Some(Value::str(if hostile {
                    "timeout <script>alert('err')</script>"
                } else {
                    "timeout"
                }));
            }
            ops.push(done);
            if outcome == OpType::Info {
                *client = next_process;
                next_process += 1;
            }
            t += period.max(lat + MS / 100);
        }
    }
    if hostile {
        let p = Process::Client(10);
        let x = Value::str("<script>alert(\"x\")</script>");
        let mut i = op(3 * S, p, OpType::Invoke, "add", x.clone(), Some("n1"));
        i.key = Some(Value::str("<b>key</b>"));
        ops.push(i);
        ops.push(op(3 * S + MS, p, OpType::Ok, "add", x.clone(), Some("n1")));
        // A value nobody added, so that an anomaly cites the markup.
        let y = Value::str("<img src=x onerror=alert(1)>");
        ops.push(op(4 * S, p, OpType::Invoke, "add", y.clone(), Some("n1")));
        ops.push(op(4 * S + MS, p, OpType::Fail, "add", y, Some("n1")));
    }
    // Final reads.
    let mut final_set: Vec<Value> = acked.iter().map(|&x| Value::Int(x)).collect();
    if hostile {
        // The acknowledged `<script>` add is left out of the final reads: a lost write whose
        // explanation must show the markup as text.
        final_set.push(Value::str("<img src=x onerror=alert(1)>"));
    }
    for (i, &n) in NODES.iter().enumerate() {
        let p = Process::Client(5 + i as u64);
        ops.push(op(19 * S, p, OpType::Invoke, "read", Value::Nil, Some(n)));
        let set = Value::List(final_set.clone());
        ops.push(op(19 * S + 50 * MS, p, OpType::Ok, "read", set, Some(n)));
    }
    ops.sort_by_key(|o| o.time);
    for (i, o) in ops.iter_mut().enumerate() {
        o.index = i as u64;
    }
    ops
}
