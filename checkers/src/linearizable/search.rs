//! The Wing-Gong/Lowe search (as in Porcupine and Knossos' `wgl`), over one partition.
//!
//! Every operation contributes a call entry and a return entry to a doubly linked list in
//! history order; an operation that may or may not have taken effect (`info`, or never
//! completed) returns at +infinity, after every real entry. The search walks the list: at a
//! call it tries to apply the operation to the model; if that works and the pair (set of
//! operations linearized so far, model state) was never seen before, it "lifts" the call and
//! its return out of the list, pushes the old state, and restarts from the head. Reaching a
//! return entry means that operation was not linearized before it returned: backtrack (pop
//! the last lifted call, put it back, and try the next call after it). Reaching a +infinity
//! return means every completed operation is linearized and only uncertain ones remain, which
//! may be left out: the partition is linearizable. Backtracking with an empty stack: it is not.
//!
//! The cache keys are a bitset of linearized operations plus the state; the bitset's hash is
//! kept incrementally (Zobrist: an xor of one random word per operation), and bitsets are
//! stored in one flat arena, so a cache probe allocates nothing.
//!
//! The failing operation reported is the one whose return entry was the furthest into the
//! list among all backtracking points: that return closes the shortest prefix of the history
//! that has no linearization (no partial linearization ever got past it).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::Instant;

use super::model::{Fx, Model};

/// One operation of a partition, encoded for the model.
#[derive(Debug, Clone)]
pub struct Call<I, O> {
    pub input: I,
    pub output: O,
    /// History position of the invocation.
    pub invoke: u32,
    /// History position of the `ok` completion; None when it may never have taken effect.
    pub ret: Option<u32>,
}

/// The encoded operations of one partition for model `M`.
pub type Calls<M> = Vec<Call<<M as Model>::Input, <M as Model>::Output>>;

/// What the search concluded.
#[derive(Debug)]
pub enum Outcome<S> {
    Linearizable,
    /// `op` (an index into the calls) could not be linearized; `states` are the model states
    /// (a few, deduplicated) the search was in when it reached that op's return unapplied.
    NotLinearizable {
        op: usize,
        states: Vec<S>,
    },
    /// The deadline passed first.
    OutOfTime,
}

/// Effort figures, for the result's stats.
#[derive(Debug, Default, Clone, Copy)]
pub struct Effort {
    /// Loop iterations.
    pub steps: u64,
    /// Distinct (linearized set, state) configurations visited.
    pub configurations: u64,
}

/// How many states to keep for the explanation.
const MAX_STATES: usize = 8;
const HEAD: usize = 0;

/// A search in progress over one partition; [`Search::run`] advances it by a bounded number
/// of steps, so that a checker can interleave partitions and stop at the first failure.
pub struct Search<'a, M: Model> {
    model: &'a M,
    calls: &'a [Call<M::Input, M::Output>],
    list: List,
    cache: Cache<M::State>,
    linearized: Vec<u64>,
    hash: u64,
    zobrist: Vec<u64>,
    steps: u64,
    state: M::State,
    stack: Vec<(usize, M::State)>,
    entry: usize,
    deepest: Option<usize>,
    deepest_states: Vec<M::State>,
}

impl<'a, M: Model> Search<'a, M> {
    pub fn new(model: &'a M, calls: &'a [Call<M::Input, M::Output>]) -> Self {
        let list = List::new(calls);
        let words = calls.len().div_ceil(64).max(1);
        let entry = list.next[HEAD];
        Search {
            model,
            calls,
            list,
            cache: Cache::new(words),
            linearized: vec![0u64; words],
            hash: 0,
            zobrist: (0..calls.len() as u64)
                .map(|i| splitmix(i ^ 0x5eed))
                .collect(),
            steps: 0,
            state: model.init(),
            stack: Vec::new(),
            entry,
            deepest: None,
            deepest_states: Vec::new(),
        }
    }

    /// About how many bytes the search holds (its cache, mostly).
    pub fn memory(&self) -> usize {
        self.cache.bytes() + self.stack.capacity() * std::mem::size_of::<(usize, M::State)>()
    }

    pub fn effort(&self) -> Effort {
        Effort {
            steps: self.steps,
            configurations: self.cache.len() as u64,
        }
    }

    /// Runs to the end, or for about `max_steps` more steps (then None: call again), or until
    /// `deadline`.
    pub fn run(&mut self, max_steps: u64, deadline: Option<Instant>) -> Option<Outcome<M::State>> {
        let stop = self.steps.saturating_add(max_steps);
        loop {
            self.steps += 1;
            if self.steps & 0xfff == 0 {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Some(Outcome::OutOfTime);
                }
                if self.steps >= stop {
                    return None;
                }
            }
            let entry = self.entry;
            let Some(&e) = self.list.entries.get(entry.wrapping_sub(1)) else {
                // Past the last entry: everything was linearized.
                return Some(Outcome::Linearizable);
            };
            match e {
                Entry::Call { op } => {
                    let call = &self.calls[op];
                    if let Some(next) = self.model.step(&self.state, &call.input, &call.output) {
                        let (word, bit) = (op / 64, 1u64 << (op % 64));
                        self.linearized[word] |= bit;
                        let hash = self.hash ^ self.zobrist[op];
                        if self.cache.insert(hash, &self.linearized, &next) {
                            self.hash = hash;
                            let previous = std::mem::replace(&mut self.state, next);
                            self.stack.push((entry, previous));
                            self.list.lift(entry, op);
                            self.entry = self.list.next[HEAD];
                            continue;
                        }
                        self.linearized[word] &= !bit;
                    }
                    self.entry = self.list.next[entry];
                }
                Entry::Return { infinite: true, .. } => return Some(Outcome::Linearizable),
                Entry::Return { op, .. } => {
                    self.note_failure(entry);
                    let Some((call_entry, previous)) = self.stack.pop() else {
                        let op = match self.deepest.and_then(|d| self.list.entries.get(d - 1)) {
                            Some(Entry::Return { op, .. }) => *op,
                            _ => op,
                        };
                        return Some(Outcome::NotLinearizable {
                            op,
                            states: std::mem::take(&mut self.deepest_states),
                        });
                    };
                    self.state = previous;
                    let lifted = self.list.op_of(call_entry);
                    self.linearized[lifted / 64] &= !(1u64 << (lifted % 64));
                    self.hash ^= self.zobrist[lifted];
                    self.list.unlift(call_entry, lifted);
                    self.entry = self.list.next[call_entry];
                }
            }
        }
    }

    /// Backtracking at return entry `entry`: remember the furthest such point and the states
    /// the model was in there.
    fn note_failure(&mut self, entry: usize) {
        match self.deepest {
            Some(d) if d > entry => {}
            Some(d) if d == entry => {
                if self.deepest_states.len() < MAX_STATES
                    && !self.deepest_states.contains(&self.state)
                {
                    self.deepest_states.push(self.state.clone());
                }
            }
            _ => {
                self.deepest = Some(entry);
                self.deepest_states.clear();
                self.deepest_states.push(self.state.clone());
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Call { op: usize },
    Return { op: usize, infinite: bool },
}

/// The entry list: node 0 is the head sentinel, node `i + 1` is `entries[i]`, and the index
/// one past the last node stands for the end.
struct List {
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Node of each op's return entry.
    ret_node: Vec<usize>,
}

impl List {
    fn new<I, O>(calls: &[Call<I, O>]) -> List {
        let mut events: Vec<(u64, Entry)> = Vec::with_capacity(calls.len() * 2);
        for (op, c) in calls.iter().enumerate() {
            events.push((u64::from(c.invoke) * 2, Entry::Call { op }));
            let (at, infinite) = match c.ret {
                Some(r) => (u64::from(r) * 2 + 1, false),
                None => (u64::MAX - (calls.len() - op) as u64, true),
            };
            events.push((at, Entry::Return { op, infinite }));
        }
        events.sort_by_key(|&(at, _)| at);
        let entries: Vec<Entry> = events.into_iter().map(|(_, e)| e).collect();
        let n = entries.len();
        let mut ret_node = vec![0; calls.len()];
        for (i, e) in entries.iter().enumerate() {
            if let Entry::Return { op, .. } = e {
                ret_node[*op] = i + 1;
            }
        }
        List {
            entries,
            next: (1..=n + 1).collect(),
            prev: (0..=n).map(|i| i.saturating_sub(1)).collect(),
            ret_node,
        }
    }

    fn op_of(&self, node: usize) -> usize {
        match self.entries[node - 1] {
            Entry::Call { op } | Entry::Return { op, .. } => op,
        }
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if let Some(slot) = self.prev.get_mut(n) {
            *slot = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if let Some(slot) = self.prev.get_mut(n) {
            *slot = node;
        }
    }

    /// Takes a call and its return out of the list.
    fn lift(&mut self, call: usize, op: usize) {
        self.unlink(call);
        self.unlink(self.ret_node[op]);
    }

    /// Undoes [`List::lift`] (in reverse order, as dancing links require).
    fn unlift(&mut self, call: usize, op: usize) {
        self.relink(self.ret_node[op]);
        self.relink(call);
    }
}

/// Visited (linearized set, state) pairs: a hash table of chains into flat arenas.
struct Cache<S> {
    words: usize,
    heads: HashMap<u64, u32, BuildHasherDefault<Mixed>>,
    chain: Vec<u32>,
    states: Vec<S>,
    bits: Vec<u64>,
}

const NIL: u32 = u32::MAX;

impl<S: Clone + Eq + Hash> Cache<S> {
    fn new(words: usize) -> Self {
        Cache {
            words,
            heads: HashMap::default(),
            chain: Vec::new(),
            states: Vec::new(),
            bits: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.states.len()
    }

    fn bytes(&self) -> usize {
        self.states.capacity() * std::mem::size_of::<S>()
            + self.bits.capacity() * 8
            + self.chain.capacity() * 4
            + self.heads.capacity() * 16
    }

    /// Adds the pair; false if it was there already.
    fn insert(&mut self, set_hash: u64, set: &[u64], state: &S) -> bool {
        let mut h = Fx::default();
        state.hash(&mut h);
        let key = splitmix(set_hash ^ h.finish().rotate_left(29));
        let new = self.states.len() as u32;
        let head = self.heads.entry(key).or_insert(NIL);
        let mut at = *head;
        while at != NIL {
            let i = at as usize;
            if self.states[i] == *state && self.bits[i * self.words..(i + 1) * self.words] == *set {
                return false;
            }
            at = self.chain[i];
        }
        self.chain.push(*head);
        *head = new;
        self.states.push(state.clone());
        self.bits.extend_from_slice(set);
        true
    }
}

/// For keys that are already well mixed: passes the u64 through.
#[derive(Default)]
struct Mixed(u64);

impl Hasher for Mixed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// SplitMix64's finaliser: a cheap, well-spread bijection on u64.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
