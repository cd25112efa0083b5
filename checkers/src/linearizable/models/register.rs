//! `register` and `cas-register`: one value per key; `read`, `write` and (for cas-register)
//! `cas [old new]`, which takes effect only when the register holds `old`.
//!
//! States are interned value ids (`u32`). A read whose result is unknown constrains nothing
//! and is dropped before the search: an `info` read, and with `nil_read_is_unknown` an `ok`
//! read of nil (Knossos' rule). Without that option a read of nil means "holds nothing".

use history::vocab;
use history::{Op, Value};

use crate::linearizable::model::{Codec, Interner, Model, effective_value};

/// A register operation's call, with values as interned ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterInput {
    Read,
    Write(u32),
    Cas(u32, u32),
}

/// The sequential register over interned values.
#[derive(Debug, Clone)]
pub struct Register {
    interner: Interner,
    initial: u32,
    allow_cas: bool,
    nil_read_is_unknown: bool,
}

impl Register {
    pub fn new(initial: &Value, allow_cas: bool, nil_read_is_unknown: bool) -> Self {
        let mut interner = Interner::default();
        let initial = interner.intern(initial);
        Register {
            interner,
            initial,
            allow_cas,
            nil_read_is_unknown,
        }
    }

    fn name(&self) -> &'static str {
        if self.allow_cas {
            "cas-register"
        } else {
            "register"
        }
    }
}

impl Model for Register {
    type State = u32;
    type Input = RegisterInput;
    /// A read's result (None for writes and cas).
    type Output = Option<u32>;

    fn init(&self) -> u32 {
        self.initial
    }

    #[inline]
    fn step(&self, state: &u32, input: &RegisterInput, output: &Option<u32>) -> Option<u32> {
        match *input {
            RegisterInput::Read => match *output {
                Some(v) if v != *state => None,
                _ => Some(*state),
            },
            RegisterInput::Write(v) => Some(v),
            RegisterInput::Cas(old, new) => (old == *state).then_some(new),
        }
    }
}

impl Codec for Register {
    fn encode(
        &mut self,
        invoke: &Op,
        ok: Option<&Op>,
    ) -> Result<Option<(RegisterInput, Option<u32>)>, String> {
        let value = effective_value(invoke, ok);
        match &*invoke.f {
            vocab::READ => {
                let Some(done) = ok else { return Ok(None) };
                if done.value.is_nil() && self.nil_read_is_unknown {
                    return Ok(None);
                }
                Ok(Some((
                    RegisterInput::Read,
                    Some(self.interner.intern(&done.value)),
                )))
            }
            vocab::WRITE => Ok(Some((
                RegisterInput::Write(self.interner.intern(value)),
                None,
            ))),
            vocab::CAS if self.allow_cas => match value.as_list() {
                Some([old, new]) => {
                    let (old, new) = (self.interner.intern(old), self.interner.intern(new));
                    Ok(Some((RegisterInput::Cas(old, new), None)))
                }
                _ => Err(format!(
                    "op {}: a cas takes [old new], got {value}",
                    invoke.index
                )),
            },
            f => Err(format!(
                "op {}: the {} model has no operation {f:?} (expected read, write{})",
                invoke.index,
                self.name(),
                if self.allow_cas { " or cas" } else { "" }
            )),
        }
    }

    fn state_value(&self, state: &u32) -> Value {
        self.interner.value(*state)
    }
}
