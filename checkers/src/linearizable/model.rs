//! The model side of the checker: a sequential specification ([`Model`]) kept apart from the
//! tester (as stateright does), and the [`Codec`] that turns history ops into the model's
//! compact inputs once, before the search.
//!
//! Models never see [`Value`]s on the hot path: a codec interns the values of one partition
//! into small integers ([`Interner`]) so that states are cheap to clone, hash and compare.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use history::{Op, Value};

/// A sequential specification: a start state and a transition per (input, output) pair.
pub trait Model {
    /// What the object holds between operations; keys the search's cache with the set of
    /// operations linearized so far.
    type State: Clone + Eq + Hash;
    /// An operation's call (what the client asked for).
    type Input;
    /// An operation's result (what the client was told).
    type Output;

    fn init(&self) -> Self::State;

    /// The state after applying `input` to `state`, if the object could have answered
    /// `output`; None if that answer is impossible from `state`.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;
}

/// Turns history ops into a [`Model`]'s inputs and outputs, and states back into values.
///
/// One codec instance serves one partition (one key), so its interner stays small.
pub trait Codec: Model {
    /// Encodes one client operation. `ok` is its `ok` completion, or None when the op may or
    /// may not have taken effect (`info`, or no completion). Returns `Ok(None)` for an op that
    /// constrains nothing (a read whose value is unknown) and `Err(reason)` for an op the
    /// model cannot interpret (an unknown `f`, a cas whose value is not a pair, ...).
    #[allow(clippy::type_complexity)]
    fn encode(
        &mut self,
        invoke: &Op,
        ok: Option<&Op>,
    ) -> Result<Option<(Self::Input, Self::Output)>, String>;

    /// The state as a history value, for explanations.
    fn state_value(&self, state: &Self::State) -> Value;
}

/// Distinct values of one partition, numbered from 0 in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: HashMap<Value, u32>,
    values: Vec<Value>,
}

impl Interner {
    /// The id of `value`, cloning it only the first time it is seen.
    pub fn intern(&mut self, value: &Value) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.clone());
        self.ids.insert(value.clone(), id);
        id
    }

    /// The id of a value already seen, without interning it.
    pub fn get(&self, value: &Value) -> Option<u32> {
        self.ids.get(value).copied()
    }

    /// The value behind `id` (Nil for an id this interner never handed out).
    pub fn value(&self, id: u32) -> Value {
        self.values.get(id as usize).cloned().unwrap_or(Value::Nil)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The value an op carries for the model: the `ok` completion's when there is one (reads
/// carry their result only there), else the invocation's.
pub fn effective_value<'a>(invoke: &'a Op, ok: Option<&'a Op>) -> &'a Value {
    match ok {
        Some(c) if !c.value.is_nil() => &c.value,
        _ => &invoke.value,
    }
}

/// The rustc hasher: one multiply per word, fast for the small states models use.
#[derive(Default)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

/// A `HashMap` builder with [`Fx`], for the small integer keys of the hot path.
pub type FxBuild = BuildHasherDefault<Fx>;
