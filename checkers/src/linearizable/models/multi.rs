//! `multi-register`: several named registers changed by transactions, Knossos' model for
//! `:f :txn` ops whose value is a list of micro-ops `[[:read :x v] [:write :y 2] ...]`.
//!
//! An `ok` completion carries the values its reads saw; an `info` txn keeps only its writes
//! (its reads are unknown). Register names and values are interned; a state is one value id
//! per register. Registers absent from the initial map start as nil.

use history::vocab;
use history::{Op, Value};

use crate::linearizable::model::{Codec, Interner, Model};

/// One micro-op of a transaction; slots and values are interned ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Micro {
    /// A read and the value it returned (None: unknown, always legal).
    Read(u32, Option<u32>),
    Write(u32, u32),
}

/// The multi-register over interned register names and values.
#[derive(Debug, Clone)]
pub struct MultiRegister {
    names: Interner,
    values: Interner,
    /// Initial value id per slot (the slots named by the initial map come first).
    initial: Vec<u32>,
    nil_read_is_unknown: bool,
}

impl MultiRegister {
    /// `initial` is a map from register name to value (nil or an empty map: all nil).
    pub fn new(initial: &Value, nil_read_is_unknown: bool) -> Result<Self, String> {
        let mut m = MultiRegister {
            names: Interner::default(),
            values: Interner::default(),
            initial: Vec::new(),
            nil_read_is_unknown,
        };
        m.values.intern(&Value::Nil);
        match initial {
            Value::Nil => {}
            Value::Map(pairs) => {
                for (k, v) in pairs {
                    let slot = m.slot(k);
                    let id = m.values.intern(v);
                    m.initial[slot as usize] = id;
                }
            }
            other => {
                return Err(format!(
                    "the multi-register model's initial value must be a map of register to value, got {other}"
                ));
            }
        }
        Ok(m)
    }

    fn slot(&mut self, name: &Value) -> u32 {
        let slot = self.names.intern(name);
        if slot as usize >= self.initial.len() {
            // Value id 0 is nil.
            self.initial.push(0);
        }
        slot
    }
}

impl Model for MultiRegister {
    type State = Box<[u32]>;
    type Input = Box<[Micro]>;
    type Output = ();

    fn init(&self) -> Box<[u32]> {
        self.initial.clone().into_boxed_slice()
    }

    fn step(&self, state: &Box<[u32]>, input: &Box<[Micro]>, _: &()) -> Option<Box<[u32]>> {
        let mut next: Option<Box<[u32]>> = None;
        for m in input.iter() {
            let now = next.as_deref().unwrap_or(state);
            match *m {
                Micro::Read(slot, Some(v)) => {
                    if now.get(slot as usize).copied().unwrap_or(0) != v {
                        return None;
                    }
                }
                Micro::Read(_, None) => {}
                Micro::Write(slot, v) => {
                    let s = next.get_or_insert_with(|| state.clone());
                    if let Some(cell) = s.get_mut(slot as usize) {
                        *cell = v;
                    }
                }
            }
        }
        Some(next.unwrap_or_else(|| state.clone()))
    }
}

impl Codec for MultiRegister {
    fn encode(
        &mut self,
        invoke: &Op,
        ok: Option<&Op>,
    ) -> Result<Option<(Box<[Micro]>, ())>, String> {
        if &*invoke.f != vocab::TXN {
            return Err(format!(
                "op {}: the multi-register model has no operation {:?} (expected txn)",
                invoke.index, invoke.f
            ));
        }
        let value = match ok {
            Some(done) if !done.value.is_nil() => &done.value,
            _ => &invoke.value,
        };
        let bad = || {
            format!(
                "op {}: a txn takes a list of [f register value] micro-ops, got {value}",
                invoke.index
            )
        };
        let micros = value.as_list().ok_or_else(bad)?;
        let mut out = Vec::with_capacity(micros.len());
        for m in micros {
            let Some([f, name, v]) = m.as_list() else {
                return Err(bad());
            };
            match f.as_str() {
                Some(vocab::READ | "r") => {
                    let unknown = ok.is_none() || (v.is_nil() && self.nil_read_is_unknown);
                    if unknown {
                        continue;
                    }
                    let slot = self.slot(name);
                    out.push(Micro::Read(slot, Some(self.values.intern(v))));
                }
                Some(vocab::WRITE | "w") => {
                    let slot = self.slot(name);
                    out.push(Micro::Write(slot, self.values.intern(v)));
                }
                _ => return Err(bad()),
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        Ok(Some((out.into_boxed_slice(), ())))
    }

    fn state_value(&self, state: &Box<[u32]>) -> Value {
        Value::Map(
            state
                .iter()
                .enumerate()
                .map(|(slot, &v)| (self.names.value(slot as u32), self.values.value(v)))
                .collect(),
        )
    }
}
