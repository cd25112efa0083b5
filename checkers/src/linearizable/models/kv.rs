//! `kv`: one string value per key (Porcupine's key-value model): `get` returns the value
//! (a missing key reads as ""), `put` replaces it, `append` concatenates to it.
//!
//! States are ids of interned strings. Appends make new strings during the search, so the
//! interner sits behind a `RefCell`, and the result of each (state, suffix) pair is memoised:
//! a string is built once, however often the search revisits that append.

use std::cell::RefCell;
use std::collections::HashMap;

use history::{Op, Value};

use crate::linearizable::model::{Codec, Model, effective_value};

/// A kv operation's call; strings are interned ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvInput {
    Get,
    Put(u32),
    Append(u32),
}

#[derive(Debug, Default)]
struct Strings {
    ids: HashMap<Box<str>, u32>,
    strings: Vec<Box<str>>,
    appended: HashMap<(u32, u32), u32>,
}

impl Strings {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn append(&mut self, state: u32, suffix: u32) -> u32 {
        if let Some(&id) = self.appended.get(&(state, suffix)) {
            return id;
        }
        let joined = format!(
            "{}{}",
            self.strings.get(state as usize).map_or("", |s| s),
            self.strings.get(suffix as usize).map_or("", |s| s)
        );
        let id = self.intern(&joined);
        self.appended.insert((state, suffix), id);
        id
    }
}

/// The sequential string store of one key.
#[derive(Debug)]
pub struct Kv {
    strings: RefCell<Strings>,
    empty: u32,
}

impl Default for Kv {
    fn default() -> Self {
        let mut strings = Strings::default();
        let empty = strings.intern("");
        Kv {
            strings: RefCell::new(strings),
            empty,
        }
    }
}

impl Model for Kv {
    type State = u32;
    type Input = KvInput;
    /// A get's result (None for put and append).
    type Output = Option<u32>;

    fn init(&self) -> u32 {
        self.empty
    }

    #[inline]
    fn step(&self, state: &u32, input: &KvInput, output: &Option<u32>) -> Option<u32> {
        match *input {
            KvInput::Get => match *output {
                Some(v) if v != *state => None,
                _ => Some(*state),
            },
            KvInput::Put(v) => Some(v),
            KvInput::Append(v) if v == self.empty => Some(*state),
            KvInput::Append(v) => Some(self.strings.borrow_mut().append(*state, v)),
        }
    }
}

/// The text of a kv value: a string, or "" for nil (a missing key); None for anything else.
fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Nil => Some(""),
        Value::Str(s) => Some(s),
        _ => None,
    }
}

impl Codec for Kv {
    fn encode(&mut self, invoke: &Op, ok: Option<&Op>) -> Result<Option<(KvInput, Option<u32>)>, String> {
        let value = effective_value(invoke, ok);
        let Some(s) = text(value) else {
            return Err(format!(
                "op {}: the kv model holds strings, got {value}",
                invoke.index
            ));
        };
        let strings = self.strings.get_mut();
        match &*invoke.f {
            "get" | "read" => Ok(ok.map(|done| {
                let s = text(&done.value).unwrap_or(s);
                (KvInput::Get, Some(strings.intern(s)))
            })),
            "put" | "write" => Ok(Some((KvInput::Put(strings.intern(s)), None))),
            "append" => Ok(Some((KvInput::Append(strings.intern(s)), None))),
            f => Err(format!(
                "op {}: the kv model has no operation {f:?} (expected get, put or append)",
                invoke.index
            )),
        }
    }

    fn state_value(&self, state: &u32) -> Value {
        let strings = self.strings.borrow();
        Value::str(strings.strings.get(*state as usize).map_or("", |s| s))
    }
}
