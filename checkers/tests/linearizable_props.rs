//! Property tests: histories of a simulated correct register (or cas-register), with random
//! concurrency and crashes, are linearizable; the same histories with one stale read injected
//! are not, and the anomaly names the injected read.

use checkers::linearizable::{Linearizable, ModelKind};
use checkers::{Checker, Validity};
use history::{History, Op, OpType, Process, Value};
use proptest::prelude::*;

const SLOTS: usize = 4;

/// What a client slot is doing.
#[derive(Clone, Debug)]
enum Slot {
    Idle,
    /// Invoked op (f, key, value); `effect` is Some(result value) once it took effect.
    Pending {
        f: &'static str,
        key: usize,
        value: Value,
        effect: Option<Value>,
    },
}

/// An op that crashed (ended info) before taking effect; it may still take effect later.
#[derive(Clone, Debug)]
struct Ghost {
    f: &'static str,
    key: usize,
    value: Value,
}

struct Sim {
    cas: bool,
    regs: Vec<Value>,
    slots: Vec<Slot>,
    process: Vec<u64>,
    next_process: u64,
    next_value: i64,
    ghosts: Vec<Ghost>,
    ops: Vec<Op>,
}

fn op(process: u64, kind: OpType, f: &str, key: usize, value: Value) -> Op {
    Op {
        index: 0,
        time: None,
        process: Process::Client(process),
        kind,
        f: f.into(),
        key: Some(Value::str(&format!("k{key}"))),
        value,
        node: None,
        error: None,
    }
}

impl Sim {
    fn new(cas: bool, keys: usize) -> Sim {
        Sim {
            cas,
            regs: vec![Value::Nil; keys],
            slots: vec![Slot::Idle; SLOTS],
            process: (0..SLOTS as u64).collect(),
            next_process: SLOTS as u64,
            next_value: 1,
            ghosts: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// Applies an op to the registers; returns (took effect, value for the completion).
    fn apply(&mut self, f: &str, key: usize, value: &Value) -> (bool, Value) {
        match f {
            "read" => (true, self.regs[key].clone()),
            "write" => {
                self.regs[key] = value.clone();
                (true, value.clone())
            }
            _ => {
                let [old, new] = value.as_list().unwrap() else {
                    unreachable!()
                };
                if self.regs[key] == *old {
                    self.regs[key] = new.clone();
                    (true, value.clone())
                } else {
                    (false, value.clone())
                }
            }
        }
    }

    fn act(&mut self, slot: usize, a: u8, b: u8) {
        let slot = slot % SLOTS;
        let p = self.process[slot];
        match self.slots[slot].clone() {
            Slot::Idle => {
                let key = usize::from(b) % self.regs.len();
                let (f, value) = match a % if self.cas { 3 } else { 2 } {
                    0 => ("read", Value::Nil),
                    1 => {
                        self.next_value += 1;
                        ("write", Value::Int(self.next_value))
                    }
                    _ => {
                        self.next_value += 1;
                        let old = if b % 2 == 0 {
                            self.regs[key].clone()
                        } else {
                            Value::Int(i64::from(b / 2) % self.next_value)
                        };
                        ("cas", Value::List(vec![old, Value::Int(self.next_value)]))
                    }
                };
                self.ops.push(op(p, OpType::Invoke, f, key, value.clone()));
                self.slots[slot] = Slot::Pending {
                    f,
                    key,
                    value,
                    effect: None,
                };
            }
            Slot::Pending {
                f,
                key,
                value,
                effect: None,
            } => {
                if a % 8 == 0 {
                    // Crash before taking effect: info now, maybe effect later.
                    self.ops.push(op(p, OpType::Info, f, key, value.clone()));
                    self.ghosts.push(Ghost { f, key, value });
                    self.crash(slot);
                } else {
                    let (ok, result) = self.apply(f, key, &value);
                    let effect = Some(if ok { result } else { Value::Bool(false) });
                    self.slots[slot] = Slot::Pending {
                        f,
                        key,
                        value,
                        effect,
                    };
                }
            }
            Slot::Pending {
                f,
                key,
                value,
                effect: Some(result),
            } => {
                let kind = if result == Value::Bool(false) {
                    OpType::Fail
                } else if a % 8 == 1 {
                    OpType::Info
                } else {
                    OpType::Ok
                };
                let shown = if kind == OpType::Fail { value } else { result };
                self.ops.push(op(p, kind, f, key, shown));
                if kind == OpType::Info {
                    self.crash(slot);
                } else {
                    self.slots[slot] = Slot::Idle;
                }
            }
        }
        // Now and then a crashed op takes effect after all.
        if b % 7 == 0 && !self.ghosts.is_empty() {
            let g = self.ghosts.remove(usize::from(a) % self.ghosts.len());
            self.apply(g.f, g.key, &g.value);
        }
    }

    fn crash(&mut self, slot: usize) {
        self.process[slot] = self.next_process;
        self.next_process += 1;
        self.slots[slot] = Slot::Idle;
    }

    fn finish(mut self) -> Vec<Op> {
        for (i, op) in self.ops.iter_mut().enumerate() {
            op.index = i as u64;
        }
        self.ops
    }
}

fn simulate(cas: bool, keys: usize, actions: &[(u8, u8, u8)]) -> Vec<Op> {
    let mut sim = Sim::new(cas, keys);
    for &(slot, a, b) in actions {
        sim.act(usize::from(slot), a, b);
    }
    sim.finish()
}

fn check(model: ModelKind, ops: Vec<Op>) -> checkers::CheckResult {
    let h = History::new(ops).expect("the simulation pairs its ops");
    Linearizable::new(model)
        .with_nil_read_is_unknown(false)
        .check(&h)
}

/// Inserts a read of a value overwritten before the read began; returns the read's
/// invocation and completion indices, or None if the history has no overwritten value.
fn inject_stale_read(ops: &mut Vec<Op>, at: u8, len: u8) -> Option<(u64, u64)> {
    let completion = |ops: &[Op], i: usize| {
        ops.iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, o)| o.process == ops[i].process)
            .map(|(j, o)| (j, o.kind))
    };
    // (w1 position, w2 completion position, w1's value)
    let mut found = None;
    'outer: for w1 in 0..ops.len() {
        if ops[w1].kind != OpType::Invoke || &*ops[w1].f == "read" {
            continue;
        }
        let Some((c1, OpType::Ok)) = completion(ops, w1) else {
            continue;
        };
        for w2 in c1 + 1..ops.len() {
            let same_key = ops[w2].key == ops[w1].key;
            if ops[w2].kind != OpType::Invoke || &*ops[w2].f == "read" || !same_key {
                continue;
            }
            if let Some((c2, OpType::Ok)) = completion(ops, w2) {
                let v1 = match ops[w1].value.as_list() {
                    Some([_, new]) => new.clone(),
                    _ => ops[w1].value.clone(),
                };
                found = Some((w1, c2, v1));
                break 'outer;
            }
        }
    }
    let (w1, c2, v1) = found?;
    let key: usize = ops[w1].key.as_ref()?.as_str()?[1..].parse().ok()?;
    let p = ops.iter().filter_map(|o| match o.process {
        Process::Client(p) => Some(p),
        Process::Nemesis => None,
    });
    let fresh = p.max().unwrap_or(0) + 1;
    let room = ops.len() - c2;
    let inv_at = c2 + 1 + usize::from(at) % room;
    let done_at = inv_at + 1 + usize::from(len) % (ops.len() + 1 - inv_at);
    ops.insert(inv_at, op(fresh, OpType::Invoke, "read", key, Value::Nil));
    ops.insert(done_at, op(fresh, OpType::Ok, "read", key, v1));
    for (i, op) in ops.iter_mut().enumerate() {
        op.index = i as u64;
    }
    Some((inv_at as u64, done_at as u64))
}

fn actions() -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
    prop::collection::vec(any::<(u8, u8, u8)>(), 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn simulated_register_is_linearizable(actions in actions(), keys in 1usize..3) {
        let r = check(ModelKind::Register, simulate(false, keys, &actions));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r);
    }

    #[test]
    fn simulated_cas_register_is_linearizable(actions in actions(), keys in 1usize..3) {
        let r = check(ModelKind::CasRegister, simulate(true, keys, &actions));
        prop_assert_eq!(r.valid, Validity::Valid, "{:?}", r);
    }

    #[test]
    fn stale_read_is_found(
        actions in actions(), keys in 1usize..3, cas: bool, at: u8, len: u8,
    ) {
        let mut ops = simulate(cas, keys, &actions);
        let Some((invoke, done)) = inject_stale_read(&mut ops, at, len) else {
            return Ok(());
        };
        let model = if cas { ModelKind::CasRegister } else { ModelKind::Register };
        let r = check(model, ops);
        prop_assert_eq!(r.valid, Validity::Invalid, "{:?}", r);
        let a = &r.anomalies[0];
        prop_assert!(a.ops.contains(&invoke) && a.ops.contains(&done), "{:?}", a);
        prop_assert_eq!(a.details["op"]["index"].as_u64(), Some(done));
    }
}
