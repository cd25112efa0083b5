//! `kv`: one string value per key (Porcupine's key-value model): `get` returns the value
//! (a missing key reads as ""), `put` replaces it, `append` concatenates to it.
//!
//! States are ids of hash-consed strings: a string made by an append is a node (parent
//! state, appended text) carrying its length and a polynomial hash of its content, so a step
//! never builds or hashes a string. Two nodes with the same content are the same node: on the
//! rare hash and length match, contents are compared in full. Each (state, text) append is
//! memoised. The table grows during the search, so it sits behind a `RefCell`.

use history::vocab;
use std::cell::RefCell;
use std::collections::HashMap;

use history::{Op, Value};

use crate::linearizable::model::{Codec, FxBuild, Model, effective_value};

/// A kv operation's call: `Put` holds a state id, `Append` a text id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvInput {
    Get,
    Put(u32),
    Append(u32),
}

const NIL: u32 = u32::MAX;
/// The Mersenne prime 2^61 - 1, the hash's modulus.
const P: u64 = (1 << 61) - 1;
const BASE: u64 = 0x1f3d_5b79_a2c4_e687 % P;

fn mulmod(a: u64, b: u64) -> u64 {
    let x = u128::from(a) * u128::from(b);
    let r = (x as u64 & P) + (x >> 61) as u64;
    if r >= P { r - P } else { r }
}

/// A text from the history: appended suffixes and the leaves of the string table.
#[derive(Debug)]
struct Text {
    s: Box<str>,
    hash: u64,
    /// BASE^len, to shift a hash left by this text's length.
    shift: u64,
}

/// A string: `parent`'s content followed by `text`'s (a leaf has no parent).
#[derive(Debug, Clone, Copy)]
struct Node {
    parent: u32,
    text: u32,
    len: usize,
    hash: u64,
    /// The next node with the same (hash, len).
    same: u32,
}

#[derive(Debug, Default)]
struct Strings {
    text_ids: HashMap<Box<str>, u32>,
    texts: Vec<Text>,
    nodes: Vec<Node>,
    by_content: HashMap<(u64, usize), u32, FxBuild>,
    appended: HashMap<(u32, u32), u32, FxBuild>,
}

impl Strings {
    fn text(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.text_ids.get(s) {
            return id;
        }
        let (mut hash, mut shift) = (0u64, 1u64);
        for b in s.bytes() {
            hash = (mulmod(hash, BASE) + u64::from(b) + 1) % P;
            shift = mulmod(shift, BASE);
        }
        let id = self.texts.len() as u32;
        self.texts.push(Text {
            s: s.into(),
            hash,
            shift,
        });
        self.text_ids.insert(s.into(), id);
        id
    }

    /// The node holding exactly `s`.
    fn leaf(&mut self, s: &str) -> u32 {
        let text = self.text(s);
        let t = &self.texts[text as usize];
        let (hash, len) = (t.hash, t.s.len());
        self.find_or_add(hash, len, NIL, text)
    }

    fn append(&mut self, state: u32, text: u32) -> u32 {
        if let Some(&id) = self.appended.get(&(state, text)) {
            return id;
        }
        let (Some(n), Some(t)) = (
            self.nodes.get(state as usize),
            self.texts.get(text as usize),
        ) else {
            return state;
        };
        let hash = (mulmod(n.hash, t.shift) + t.hash) % P;
        let len = n.len + t.s.len();
        let id = self.find_or_add(hash, len, state, text);
        self.appended.insert((state, text), id);
        id
    }

    fn find_or_add(&mut self, hash: u64, len: usize, parent: u32, text: u32) -> u32 {
        let first = self.by_content.get(&(hash, len)).copied().unwrap_or(NIL);
        let mut at = first;
        if at != NIL {
            let mut want = if parent == NIL {
                String::new()
            } else {
                self.content(parent)
            };
            want.push_str(&self.texts[text as usize].s);
            while at != NIL {
                if self.content(at) == want {
                    return at;
                }
                at = self.nodes[at as usize].same;
            }
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            parent,
            text,
            len,
            hash,
            same: first,
        });
        self.by_content.insert((hash, len), id);
        id
    }

    fn content(&self, mut node: u32) -> String {
        let mut parts = Vec::new();
        while let Some(n) = self.nodes.get(node as usize) {
            parts.push(n.text);
            node = n.parent;
        }
        parts
            .iter()
            .rev()
            .filter_map(|&t| self.texts.get(t as usize))
            .map(|t| &*t.s)
            .collect()
    }
}

/// The sequential string store of one key.
#[derive(Debug)]
pub struct Kv {
    strings: RefCell<Strings>,
    empty: u32,
    empty_text: u32,
}

impl Default for Kv {
    fn default() -> Self {
        let mut strings = Strings::default();
        let empty = strings.leaf("");
        let empty_text = strings.text("");
        Kv {
            strings: RefCell::new(strings),
            empty,
            empty_text,
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
            KvInput::Append(t) if t == self.empty_text => Some(*state),
            KvInput::Append(t) => Some(self.strings.borrow_mut().append(*state, t)),
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
    fn encode(
        &mut self,
        invoke: &Op,
        ok: Option<&Op>,
    ) -> Result<Option<(KvInput, Option<u32>)>, String> {
        let value = effective_value(invoke, ok);
        let Some(s) = text(value) else {
            return Err(format!(
                "op {}: the kv model holds strings, got {value}",
                invoke.index
            ));
        };
        let strings = self.strings.get_mut();
        match &*invoke.f {
            vocab::GET | vocab::READ => Ok(ok.map(|done| {
                let s = text(&done.value).unwrap_or(s);
                (KvInput::Get, Some(strings.leaf(s)))
            })),
            vocab::PUT | vocab::WRITE => Ok(Some((KvInput::Put(strings.leaf(s)), None))),
            vocab::APPEND => Ok(Some((KvInput::Append(strings.text(s)), None))),
            f => Err(format!(
                "op {}: the kv model has no operation {f:?} (expected get, put or append)",
                invoke.index
            )),
        }
    }

    fn state_value(&self, state: &u32) -> Value {
        Value::str(&self.strings.borrow().content(*state))
    }
}
