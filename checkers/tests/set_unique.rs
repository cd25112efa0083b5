//! The set and unique-ids checkers on hand-built histories and on simulated correct systems
//! (always valid), and the same simulations with one injected fault (always invalid, and the
//! anomaly names the injected op).

use std::collections::BTreeSet;

use checkers::result::kind;
use checkers::set::Set;
use checkers::unique_ids::UniqueIds;
use checkers::{CheckResult, Checker, Validity};
use history::build::Builder;
use history::{History, Op, OpType, Value};
use proptest::prelude::*;

fn set_check(h: &History) -> CheckResult {
    Set::default().check(h)
}

fn ints(v: &[i64]) -> Value {
    Value::List(v.iter().map(|&i| Value::Int(i)).collect())
}

#[test]
fn acked_add_missing_from_final_read_is_lost() {
    let mut b = Builder::new();
    b.invoke(0, "add", 1).node("n1");
    b.complete(0, OpType::Ok, "add", 1).node("n1");
    b.invoke(1, "add", 2);
    b.complete(1, OpType::Ok, "add", 2);
    b.invoke(2, "read", Value::Nil);
    b.complete(2, OpType::Ok, "read", ints(&[1])).node("n3");
    let r = set_check(&b.build().unwrap());
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.anomalies.len(), 1);
    let a = &r.anomalies[0];
    assert_eq!(a.kind, kind::LOST_WRITE);
    assert_eq!(a.ops, vec![2, 3, 5]);
    assert!(
        a.explanation.contains("add 2 was acknowledged"),
        "{}",
        a.explanation
    );
    assert!(a.explanation.contains("on n3"), "{}", a.explanation);
}

#[test]
fn a_flood_of_one_class_is_counted_but_crowds_no_other_out() {
    // A read holding 5,000 elements nobody added, then an acknowledged add that the last
    // read lacks: both classes listed (at most the limit of each), all counted.
    let mut b = Builder::new();
    b.invoke(0, "add", 1);
    b.complete(0, OpType::Ok, "add", 1);
    b.invoke(1, "read", Value::Nil);
    let flood: Vec<i64> = (1..=5001).collect();
    b.complete(1, OpType::Ok, "read", ints(&flood));
    b.invoke(0, "add", 9_999);
    b.complete(0, OpType::Ok, "add", 9_999);
    b.invoke(2, "read", Value::Nil);
    b.complete(2, OpType::Ok, "read", ints(&[1]));
    let r = set_check(&b.build().unwrap());
    let count = |k: &str| r.anomalies.iter().filter(|a| a.kind == k).count();
    assert_eq!(count(kind::UNEXPECTED), checkers::result::DEFAULT_LIMIT);
    assert_eq!(count(kind::LOST_WRITE), 1);
    assert_eq!(r.anomaly_count, 5_000 + 1);
    assert_eq!(r.anomaly_types(), vec![kind::LOST_WRITE, kind::UNEXPECTED]);
    // Listed in history order, the earliest of each class.
    let idx: Vec<u64> = r.anomalies.iter().map(|a| a.ops[0]).collect();
    assert!(idx.windows(2).all(|w| w[0] <= w[1]), "{idx:?}");
}

#[test]
fn concurrent_read_may_miss_an_add_and_info_adds_may_vanish() {
    let mut b = Builder::new();
    b.invoke(0, "add", 1);
    b.invoke(2, "read", Value::Nil); // concurrent with the add: may miss it
    b.complete(0, OpType::Ok, "add", 1);
    b.complete(2, OpType::Ok, "read", ints(&[]));
    b.invoke(1, "add", 2);
    b.complete(1, OpType::Info, "add", 2); // unknown: may never have happened
    b.invoke(3, "add", 3);
    b.complete(3, OpType::Info, "add", 3); // unknown, and it did happen: recovered
    b.invoke(4, "read", Value::Nil);
    b.complete(4, OpType::Ok, "read", ints(&[1, 3]));
    let r = set_check(&b.build().unwrap());
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
    assert_eq!(r.stats["recovered"], 1);
    assert_eq!(r.stats["stable"], 2);
}

#[test]
fn unexpected_duplicated_and_failed_adds() {
    let mut b = Builder::new();
    b.invoke(0, "add", 1);
    b.complete(0, OpType::Fail, "add", 1);
    b.invoke(4, "read", Value::Nil);
    b.complete(4, OpType::Ok, "read", ints(&[1, 9, 9]));
    let r = set_check(&b.build().unwrap());
    assert_eq!(r.valid, Validity::Invalid);
    let kinds: BTreeSet<_> = r.anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, BTreeSet::from([kind::UNEXPECTED, kind::DUPLICATED]));
    assert_eq!(r.anomaly_count, 3, "{r:?}");
}

#[test]
fn stale_read_is_an_anomaly_only_when_reads_must_be_linearizable() {
    let mut b = Builder::new();
    b.invoke(0, "add", 1);
    b.complete(0, OpType::Ok, "add", 1);
    b.invoke(1, "read", Value::Nil);
    b.complete(1, OpType::Ok, "read", ints(&[])); // a lagging follower
    b.invoke(1, "read", Value::Nil);
    b.complete(1, OpType::Ok, "read", ints(&[1]));
    let h = b.build().unwrap();
    let r = set_check(&h);
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.stats["stale"], 1);
    let strict = Set {
        linearizable: true,
        ..Set::default()
    };
    let r = strict.check(&h);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.anomalies[0].kind, kind::STALE_READ);
}

#[test]
fn no_successful_read_is_unknown_not_valid() {
    let mut b = Builder::new();
    b.invoke(0, "add", 1);
    b.complete(0, OpType::Ok, "add", 1);
    b.invoke(1, "read", Value::Nil);
    b.complete(1, OpType::Fail, "read", Value::Nil);
    let r = set_check(&b.build().unwrap());
    assert_eq!(r.valid, Validity::Unknown);
    assert!(r.reason.unwrap().contains("no read"));
}

#[test]
fn reused_id_names_both_ops() {
    let mut b = Builder::new();
    b.invoke(0, "incr", Value::Nil);
    b.complete(0, OpType::Ok, "incr", 1).node("n1");
    b.invoke(0, "incr", Value::Nil);
    b.complete(0, OpType::Ok, "incr", 2).node("n1");
    b.invoke(1, "incr", Value::Nil);
    b.complete(1, OpType::Info, "incr", Value::Nil);
    b.invoke(2, "incr", Value::Nil);
    b.complete(2, OpType::Ok, "incr", 2).node("n3");
    let r = UniqueIds::default().check(&b.build().unwrap());
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.anomalies[0].kind, kind::REUSED_KEY);
    assert_eq!(r.anomalies[0].ops, vec![2, 3, 6, 7]);
    assert!(r.anomalies[0].explanation.contains("by n1"));
    assert!(r.anomalies[0].explanation.contains("by n3"));
    assert_eq!(r.stats["unique"], 2);
}

#[test]
fn no_ids_is_unknown() {
    let mut b = Builder::new();
    b.invoke(0, "incr", Value::Nil);
    b.complete(0, OpType::Fail, "incr", Value::Nil);
    let r = UniqueIds::default().check(&b.build().unwrap());
    assert_eq!(r.valid, Validity::Unknown);
}

/// A correct set (or id generator) driven by random choices: each op takes effect at one
/// instant between its invocation and completion; some end `info` (applied or not), some
/// adds `fail` (never applied). Reads return the state at their effect instant.
struct Sim {
    ops: Vec<Op>,
    set: BTreeSet<i64>,
    next_value: i64,
    next_id: i64,
    next_process: u64,
}

#[derive(Clone)]
struct InFlight {
    process: u64,
    f: &'static str,
    value: Value,
    applied: Option<Value>,
}

impl Sim {
    fn run(choices: &[u8], f_write: &'static str) -> History {
        let mut sim = Sim {
            ops: Vec::new(),
            set: BTreeSet::new(),
            next_value: 0,
            next_id: 1,
            next_process: 4,
        };
        let mut slots: Vec<Option<InFlight>> = vec![None; 4];
        let mut procs: Vec<u64> = (0..4).collect();
        for (i, &c) in choices.iter().enumerate() {
            let slot = (c as usize) % slots.len();
            match slots[slot].take() {
                None => {
                    let (f, value) = if c % 5 == 0 && f_write == "add" {
                        ("read", Value::Nil)
                    } else if f_write == "add" {
                        sim.next_value += 1;
                        ("add", Value::Int(sim.next_value))
                    } else {
                        (f_write, Value::Nil)
                    };
                    sim.push(procs[slot], OpType::Invoke, f, value.clone());
                    slots[slot] = Some(InFlight {
                        process: procs[slot],
                        f,
                        value,
                        applied: None,
                    });
                }
                Some(mut op) if op.applied.is_none() && c % 3 != 0 => {
                    op.applied = Some(sim.apply(&op));
                    slots[slot] = Some(op);
                }
                Some(op) => {
                    let roll = choices.get(i + 1).copied().unwrap_or(0);
                    sim.finish(op, roll, &mut procs[slot]);
                }
            }
        }
        // Drain: complete everything, then final reads.
        for (slot, op) in slots.iter_mut().enumerate() {
            if let Some(mut op) = op.take() {
                if op.applied.is_none() {
                    op.applied = Some(sim.apply(&op));
                }
                sim.finish(op, 1, &mut procs[slot]);
            }
        }
        if f_write == "add" {
            for p in 0..2u64 {
                let process = 100 + p;
                sim.push(process, OpType::Invoke, "read", Value::Nil);
                let v = Value::List(sim.set.iter().map(|&x| Value::Int(x)).collect());
                sim.push(process, OpType::Ok, "read", v);
            }
        }
        History::new(sim.ops).expect("the simulation pairs its ops")
    }

    fn push(&mut self, process: u64, kind: OpType, f: &str, value: Value) {
        let index = self.ops.len() as u64;
        self.ops.push(Op {
            index,
            time: Some(index * 1000),
            process: history::Process::Client(process),
            kind,
            f: f.into(),
            key: None,
            value,
            node: Some("n1".into()),
            error: None,
        });
    }

    fn apply(&mut self, op: &InFlight) -> Value {
        match op.f {
            "add" => {
                self.set.insert(op.value.as_int().unwrap());
                op.value.clone()
            }
            "read" => Value::List(self.set.iter().map(|&x| Value::Int(x)).collect()),
            _ => {
                self.next_id += 1;
                Value::Int(self.next_id - 1)
            }
        }
    }

    /// Completes an op: applied ones end ok (or info); unapplied adds end fail or info.
    fn finish(&mut self, op: InFlight, roll: u8, process: &mut u64) {
        let kind = match (&op.applied, roll % 7) {
            (Some(_), 0) => OpType::Info,
            (Some(_), _) => OpType::Ok,
            (None, 0 | 1) if op.f == "add" => OpType::Fail,
            (None, _) => OpType::Info,
        };
        let value = match (&op.applied, kind, op.f) {
            (Some(v), OpType::Ok, _) => v.clone(),
            (_, _, "add") => op.value.clone(),
            _ => Value::Nil,
        };
        self.push(op.process, kind, op.f, value);
        if kind == OpType::Info {
            *process = self.next_process;
            self.next_process += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn correct_set_is_always_valid(choices in proptest::collection::vec(any::<u8>(), 0..300)) {
        let h = Sim::run(&choices, "add");
        let r = Set { linearizable: true, ..Set::default() }.check(&h);
        prop_assert_ne!(r.valid, Validity::Invalid, "{:?}", r);
    }

    #[test]
    fn a_lost_add_is_always_found(choices in proptest::collection::vec(any::<u8>(), 1..300), pick in any::<usize>()) {
        let h = Sim::run(&choices, "add");
        let acked: Vec<&Op> = h.ops().iter().filter(|o| &*o.f == "add" && o.kind == OpType::Ok).collect();
        prop_assume!(!acked.is_empty());
        let victim = acked[pick % acked.len()].clone();
        // Lose it: drop the element from every read.
        let mut ops = h.into_ops();
        for op in ops.iter_mut().filter(|o| &*o.f == "read" && o.kind == OpType::Ok) {
            if let Value::List(items) = &mut op.value {
                items.retain(|v| v != &victim.value);
            }
        }
        let r = Set::default().check(&History::new(ops).unwrap());
        prop_assert_eq!(r.valid, Validity::Invalid);
        prop_assert!(r.anomalies.iter().any(|a| a.kind == kind::LOST_WRITE && a.ops.contains(&victim.index)), "{:?}", r);
    }

    #[test]
    fn correct_ids_are_always_valid(choices in proptest::collection::vec(any::<u8>(), 0..300)) {
        let h = Sim::run(&choices, "generate");
        let r = UniqueIds::default().check(&h);
        prop_assert_ne!(r.valid, Validity::Invalid, "{:?}", r);
    }

    #[test]
    fn a_duplicated_id_is_always_found(choices in proptest::collection::vec(any::<u8>(), 1..300), a in any::<usize>(), b in any::<usize>()) {
        let h = Sim::run(&choices, "generate");
        let oks: Vec<usize> = h.ops().iter().enumerate().filter(|(_, o)| o.kind == OpType::Ok).map(|(i, _)| i).collect();
        prop_assume!(oks.len() >= 2);
        let (from, to) = (oks[a % oks.len()], oks[b % oks.len()]);
        prop_assume!(from != to);
        let mut ops = h.into_ops();
        ops[to].value = ops[from].value.clone();
        let injected = ops[to].index;
        let r = UniqueIds::default().check(&History::new(ops).unwrap());
        prop_assert_eq!(r.valid, Validity::Invalid);
        prop_assert!(r.anomalies.iter().any(|a| a.kind == kind::REUSED_KEY && a.ops.contains(&injected)), "{:?}", r);
    }
}
