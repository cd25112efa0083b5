//! Workload generators: pure, seeded streams of [`Invocation`]s, one [`Generator`] per
//! client worker. The same seed, worker index and workloads give the same sequence.
//!
//! - `set`: `add` of unique integers (worker `w` of `c` adds `w, w+c, w+2c, ...`); after the
//!   faults are healed, one final `read` of the whole set on every node ([`final_reads`]).
//! - `unique-ids`: `incr` (an auto-increment insert returning the id).
//! - `register`: `read` / `write` / `cas [old new]` on a few keys (`r0`..), small values.
//! - `list-append`: `txn` ops of micro-ops, `[append k v]` of a unique value or `[r k nil]`
//!   (a read of the whole list), Elle's list-append over integer keys: one micro-op each,
//!   or up to [`Generator::max_txn_len`] for systems with transactions. A few keys are
//!   active at a time; each worker moves to the next few after its share of appends, so
//!   lists stay short and every key is read while it grows.

use history::Value;
use history::vocab;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::client::Invocation;

/// A workload that generates client operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    Set,
    UniqueIds,
    Register,
    ListAppend,
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 4] = [
        Workload::Set,
        Workload::UniqueIds,
        Workload::Register,
        Workload::ListAppend,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Set => "set",
            Workload::UniqueIds => "unique-ids",
            Workload::Register => "register",
            Workload::ListAppend => "list-append",
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "set" => Ok(Workload::Set),
            "unique-ids" | "unique_ids" | "ids" => Ok(Workload::UniqueIds),
            "register" | "cas-register" => Ok(Workload::Register),
            "list-append" | "append" => Ok(Workload::ListAppend),
            other => Err(format!(
                "unknown workload {other:?} (known: set, unique-ids, register, list-append; the leader probe always runs)"
            )),
        }
    }
}

/// Parses `set,unique-ids` (the `leader` probe is accepted and ignored: it always runs).
pub fn parse_workloads(s: &str) -> Result<Vec<Workload>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == vocab::LEADER {
            continue;
        }
        let w: Workload = part.parse()?;
        if !out.contains(&w) {
            out.push(w);
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no workload in {s:?} (known: set, unique-ids, register, list-append)"
        ));
    }
    Ok(out)
}

/// Number of keys of the register workload.
pub const REGISTER_KEYS: u64 = 5;
/// Register values are drawn from `0..REGISTER_VALUES`.
pub const REGISTER_VALUES: i64 = 5;

/// Keys of the list-append workload written at a time.
pub const LIST_KEYS: i64 = 3;
/// About how many appends each list-append key gets (from all workers) before the workers
/// move on to fresh keys: short lists keep reads cheap and the version orders many.
pub const APPENDS_PER_KEY: i64 = 64;

/// Mixed into the run's seed so workload draws differ from the nemesis schedule's.
const WORKLOAD_SALT: u64 = 0x776f_726b_6c6f_6164;

/// The operation stream of one client worker.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: ChaCha8Rng,
    workloads: Vec<Workload>,
    next_add: i64,
    stride: i64,
    /// List-append: appends this worker made (its key window is a function of it).
    appends: i64,
    /// List-append: most micro-ops per transaction.
    max_txn_len: usize,
    /// List-append: the share of transactions that only read (none: each micro-op is a read
    /// or an append at even odds).
    read_only: Option<f64>,
}

impl Generator {
    /// Worker `worker` of `concurrency`, drawing from `workloads` (not empty).
    pub fn new(seed: u64, worker: u64, concurrency: u64, workloads: &[Workload]) -> Self {
        let stream = seed ^ WORKLOAD_SALT ^ worker.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Generator {
            rng: ChaCha8Rng::seed_from_u64(stream),
            workloads: workloads.to_vec(),
            next_add: worker as i64,
            stride: concurrency.max(1) as i64,
            appends: 0,
            max_txn_len: 1,
            read_only: None,
        }
    }

    /// Makes `share` of the list-append transactions read-only, the others write at least
    /// once. A test of reads served elsewhere than writes (`--read-from followers`) sends
    /// half its transactions there so; with even odds per micro-op, transactions of four
    /// micro-ops are read-only only once in sixteen.
    pub fn read_only_share(mut self, share: f64) -> Self {
        self.read_only = Some(share.clamp(0.0, 1.0));
        self
    }

    /// List-append transactions of 1 to `n` micro-ops (Elle's default is 4); 1 for systems
    /// without transactions.
    pub fn max_txn_len(mut self, n: usize) -> Self {
        self.max_txn_len = n.max(1);
        self
    }

    /// The next invocation.
    pub fn next_op(&mut self) -> Invocation {
        let w = if self.workloads.len() == 1 {
            self.workloads[0]
        } else {
            self.workloads[self.rng.random_range(0..self.workloads.len())]
        };
        match w {
            Workload::Set => {
                let v = self.next_add;
                self.next_add += self.stride;
                Invocation::new(vocab::ADD, Value::Int(v))
            }
            Workload::UniqueIds => Invocation::new(vocab::INCR, Value::Nil),
            Workload::Register => {
                let key = format!("r{}", self.rng.random_range(0..REGISTER_KEYS));
                let roll = self.rng.random_range(0..4u8);
                let val = |rng: &mut ChaCha8Rng| Value::Int(rng.random_range(0..REGISTER_VALUES));
                match roll {
                    0 | 1 => Invocation::new(vocab::READ, Value::Nil).key(Value::str(&key)),
                    2 => {
                        let x = val(&mut self.rng);
                        Invocation::new(vocab::WRITE, x).key(Value::str(&key))
                    }
                    _ => {
                        let old = val(&mut self.rng);
                        let new = val(&mut self.rng);
                        Invocation::new(vocab::CAS, Value::List(vec![old, new]))
                            .key(Value::str(&key))
                    }
                }
            }
            Workload::ListAppend => {
                let len = if self.max_txn_len > 1 {
                    self.rng.random_range(1..=self.max_txn_len)
                } else {
                    1
                };
                // None: each micro-op at even odds; Some: all reads, or at least one append.
                let reads = self.read_only.map(|p| self.rng.random_bool(p));
                let writer = match reads {
                    Some(false) => Some(self.rng.random_range(0..len)),
                    _ => None,
                };
                let mops = (0..len)
                    .map(|i| {
                        let append = match reads {
                            None => self.rng.random_bool(0.5),
                            Some(true) => false,
                            Some(false) => writer == Some(i) || self.rng.random_bool(0.5),
                        };
                        Value::List(self.micro_op(append))
                    })
                    .collect();
                Invocation::new(vocab::TXN, Value::List(mops))
            }
        }
    }
}

impl Generator {
    /// One list-append micro-op: an append of a unique value or a read, on a key of this
    /// worker's window.
    fn micro_op(&mut self, append: bool) -> Vec<Value> {
        // This worker's share of a window's appends: the windows of all workers advance
        // together when they run at about the same rate.
        let share = (APPENDS_PER_KEY * LIST_KEYS / self.stride).max(1);
        let window = self.appends / share;
        let key = Value::Int(window * LIST_KEYS + self.rng.random_range(0..LIST_KEYS));
        if append {
            self.appends += 1;
            let v = self.next_add;
            self.next_add += self.stride;
            vec![Value::str(vocab::APPEND), key, Value::Int(v)]
        } else {
            vec![Value::str("r"), key, Value::Nil]
        }
    }
}

/// The final reads of one op on every node: the set workload's whole-set `read`, the final
/// state check's `digest`.
pub fn final_reads<'a>(
    f: &'static str,
    nodes: impl IntoIterator<Item = &'a str>,
) -> Vec<Invocation> {
    nodes
        .into_iter()
        .map(|n| Invocation::new(f, Value::Nil).on(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ops_and_unique_adds() {
        let ws = [Workload::Set, Workload::UniqueIds, Workload::Register];
        let a: Vec<_> = {
            let mut g = Generator::new(7, 1, 3, &ws);
            (0..200).map(|_| g.next_op()).collect()
        };
        let b: Vec<_> = {
            let mut g = Generator::new(7, 1, 3, &ws);
            (0..200).map(|_| g.next_op()).collect()
        };
        assert_eq!(a, b);
        let c: Vec<_> = {
            let mut g = Generator::new(8, 1, 3, &ws);
            (0..200).map(|_| g.next_op()).collect()
        };
        assert_ne!(a, c);
        // Adds of different workers never collide.
        let mut seen = std::collections::HashSet::new();
        for w in 0..3 {
            let mut g = Generator::new(7, w, 3, &[Workload::Set]);
            for _ in 0..100 {
                let op = g.next_op();
                assert_eq!(op.f, "add");
                assert!(seen.insert(op.value.as_int().unwrap()));
            }
        }
    }

    #[test]
    fn register_ops_are_well_formed() {
        let mut g = Generator::new(1, 0, 1, &[Workload::Register]);
        for _ in 0..500 {
            let op = g.next_op();
            assert!(op.key.is_some());
            match op.f {
                "read" => assert!(op.value.is_nil()),
                "write" => assert!(op.value.as_int().is_some()),
                "cas" => assert_eq!(op.value.as_list().unwrap().len(), 2),
                f => panic!("unexpected f {f}"),
            }
        }
    }

    #[test]
    fn list_append_txns_append_unique_values_to_few_keys_at_a_time() {
        let mut values = std::collections::HashSet::new();
        let mut keys = std::collections::BTreeSet::new();
        let (mut reads, mut appends) = (0, 0);
        for w in 0..4 {
            let mut g = Generator::new(3, w, 4, &[Workload::ListAppend]);
            for _ in 0..2_000 {
                let op = g.next_op();
                assert_eq!(op.f, "txn");
                let mops = op.value.as_list().unwrap();
                assert_eq!(mops.len(), 1);
                let m = mops[0].as_list().unwrap();
                keys.insert(m[1].as_int().unwrap());
                match m[0].as_str().unwrap() {
                    "append" => {
                        appends += 1;
                        assert!(values.insert(m[2].as_int().unwrap()), "unique values");
                        assert!(!op.is_read());
                    }
                    "r" => {
                        reads += 1;
                        assert!(m[2].is_nil());
                        assert!(op.is_read(), "a read-only txn reads");
                    }
                    f => panic!("unexpected micro-op {f}"),
                }
            }
        }
        assert!(
            reads > 3_000 && appends > 3_000,
            "{reads} reads, {appends} appends"
        );
        // ~8,000 appends over windows of LIST_KEYS keys with ~APPENDS_PER_KEY each.
        let expected = appends / APPENDS_PER_KEY;
        assert!(
            (keys.len() as i64 - expected).abs() <= LIST_KEYS * 2,
            "{} keys for {appends} appends",
            keys.len()
        );
    }

    #[test]
    fn list_append_txns_are_up_to_max_long_with_systems_that_have_transactions() {
        let mut g = Generator::new(5, 0, 2, &[Workload::ListAppend]).max_txn_len(4);
        let lens: Vec<usize> = (0..1_000)
            .map(|_| g.next_op().value.as_list().unwrap().len())
            .collect();
        assert!(lens.iter().all(|l| (1..=4).contains(l)));
        for l in 1..=4 {
            assert!(lens.contains(&l), "a txn of {l} micro-ops");
        }
        // Reads-only txns (routed like reads) and mixed ones both occur.
        let mut g = Generator::new(5, 0, 2, &[Workload::ListAppend]).max_txn_len(4);
        let ops: Vec<Invocation> = (0..1_000).map(|_| g.next_op()).collect();
        assert!(ops.iter().any(|o| o.is_read() && o.mops().count() > 1));
        assert!(
            ops.iter()
                .any(|o| !o.is_read() && o.mops().any(|m| m.0 == "r"))
        );
    }

    #[test]
    fn parse() {
        assert_eq!(
            parse_workloads("set,unique-ids,leader").unwrap(),
            vec![Workload::Set, Workload::UniqueIds]
        );
        assert!(parse_workloads("leader").is_err());
        assert!(parse_workloads("bogus").is_err());
    }
}
