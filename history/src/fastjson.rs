//! A fast path for the JSONL reader: a hand-written parser for the shape faultline itself
//! writes (flat keys; ints, plain strings, null/bools, lists and maps of those). Anything else
//! (escapes, floats, huge integers, duplicate keys) returns `None` and the line goes to
//! serde_json, which also produces the error messages. Both must agree on every line this
//! accepts; a test feeds the same lines to both.

use std::sync::Arc;

use crate::jsonl::Interner;
use crate::{Op, OpType, Process, Value};

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        // Called before every token; faultline writes no whitespace, so one comparison (every
        // JSON whitespace byte is at most b' ') settles the usual case.
        while let Some(&b) = self.s.get(self.i) {
            if b > b' ' || !matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                return;
            }
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    /// The bytes of a string with no escapes, not yet checked to be UTF-8.
    fn raw_str(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        // Most strings here are short keys and names: a plain loop beats a SIMD search.
        let mut end = start;
        loop {
            match *self.s.get(end)? {
                b'"' => break,
                b'\\' => return None,
                _ => end += 1,
            }
        }
        self.i = end + 1;
        Some(&self.s[start..end])
    }

    /// An object key. The op's own keys are told apart by their first letter and compared
    /// whole, which is cheaper than scanning for the closing quote; others take that route.
    fn key(&mut self) -> Option<Field> {
        self.ws();
        let rest = &self.s[self.i..];
        let (guess, key) = match rest.get(1) {
            Some(b'i') => (&INDEX, Field::Index),
            Some(b't') if rest.get(2) == Some(&b'i') => (&TIME, Field::Time),
            Some(b't') => (&TYPE, Field::Type),
            Some(b'p') => (&PROCESS, Field::Process),
            Some(b'f') => (&F, Field::F),
            Some(b'v') => (&VALUE, Field::Value),
            Some(b'n') => (&NODE, Field::Node),
            Some(b'k') => (&KEY, Field::Key),
            Some(b'e') => (&ERROR, Field::Error),
            _ => return self.raw_str().map(Field::of),
        };
        if guess.starts(rest) {
            self.i += guess.quoted.len();
            return Some(key);
        }
        self.raw_str().map(Field::of)
    }

    /// A string with no escapes and valid UTF-8.
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw_str()?).ok()
    }

    fn int(&mut self) -> Option<i64> {
        self.ws();
        self.int_here()
    }

    /// An integer starting exactly here.
    fn int_here(&mut self) -> Option<i64> {
        let neg = self.s.get(self.i) == Some(&b'-');
        if neg {
            self.i += 1;
        }
        let start = self.i;
        let mut n: i64 = 0;
        while let Some(&b) = self.s.get(self.i) {
            if !b.is_ascii_digit() {
                break;
            }
            // At most 18 digits (checked below) cannot overflow an i64; wrapping keeps a longer
            // run from panicking before that check rejects it.
            n = n.wrapping_mul(10).wrapping_add(i64::from(b - b'0'));
            self.i += 1;
        }
        let digits = self.i - start;
        // JSON has no leading zeros: leave "012" to serde_json, which rejects it.
        if digits == 0 || digits > 18 || (digits > 1 && self.s[start] == b'0') {
            return None;
        }
        if matches!(self.s.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(if neg { -n } else { n })
    }

    fn value(&mut self, depth: u8) -> Option<Value> {
        if depth > 32 {
            return None;
        }
        match self.peek()? {
            b'"' => self.str().map(Value::str),
            b'n' => self.word(b"null", Value::Nil),
            b't' => self.word(b"true", Value::Bool(true)),
            b'f' => self.word(b"false", Value::Bool(false)),
            b'[' => {
                self.i += 1;
                // A long list (a read of a whole set) is sized once rather than regrown.
                let rest = &self.s[self.i..];
                let mut items = if rest.len() > 4096 {
                    Vec::with_capacity(memchr::memchr_iter(b',', rest).count() + 1)
                } else {
                    Vec::new()
                };
                if self.eat(b']').is_some() {
                    return Some(Value::List(items));
                }
                loop {
                    // Integers with no spaces around them (how faultline writes the reads of
                    // a whole set, millions of elements) skip the general value dispatch.
                    let item = match self.s.get(self.i) {
                        Some(b'0'..=b'9' | b'-') => Value::Int(self.int_here()?),
                        _ => self.value(depth + 1)?,
                    };
                    items.push(item);
                    if self.s.get(self.i) == Some(&b',') {
                        self.i += 1;
                        continue;
                    }
                    if self.eat(b',').is_none() {
                        self.eat(b']')?;
                        items.shrink_to_fit();
                        return Some(Value::List(items));
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut pairs = Vec::new();
                if self.eat(b'}').is_some() {
                    return Some(Value::Map(pairs));
                }
                loop {
                    let k = self.str()?;
                    self.eat(b':')?;
                    let v = self.value(depth + 1)?;
                    pairs.push((Value::str(k), v));
                    if self.eat(b',').is_none() {
                        self.eat(b'}')?;
                        return Some(Value::Map(pairs));
                    }
                }
            }
            _ => self.int().map(Value::Int),
        }
    }

    fn word(&mut self, w: &[u8], v: Value) -> Option<Value> {
        self.s[self.i..].starts_with(w).then(|| {
            self.i += w.len();
            v
        })
    }
}

/// The keys of an op line; anything else sends the line to serde_json.
#[derive(Clone, Copy)]
enum Field {
    Index,
    Time,
    Process,
    Type,
    F,
    Key,
    Value,
    Node,
    Error,
    Other,
}

impl Field {
    /// A key that was not recognised by its first letter (e.g. spaced or an unknown one).
    fn of(b: &[u8]) -> Field {
        match b {
            b"index" => Field::Index,
            b"time" => Field::Time,
            b"process" => Field::Process,
            b"type" => Field::Type,
            b"f" => Field::F,
            b"key" => Field::Key,
            b"value" => Field::Value,
            b"node" => Field::Node,
            b"error" => Field::Error,
            _ => Field::Other,
        }
    }
}

/// A quoted key as words: a key is recognised with one or two integer comparisons where a
/// slice comparison would call memcmp, several times per line.
struct Lit {
    quoted: &'static [u8],
    /// The first (up to) 8 bytes, little-endian, and the mask of those that count.
    lo: u64,
    mask: u64,
    /// The last 8 bytes, for literals longer than 8.
    hi: u64,
}

const fn word(b: &[u8], from: usize, n: usize) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < n {
        w |= (b[from + i] as u64) << (8 * i);
        i += 1;
    }
    w
}

impl Lit {
    const fn new(quoted: &'static [u8]) -> Lit {
        let n = quoted.len();
        let lo_len = if n < 8 { n } else { 8 };
        Lit {
            quoted,
            lo: word(quoted, 0, lo_len),
            mask: if n < 8 {
                (1u64 << (8 * n)) - 1
            } else {
                u64::MAX
            },
            hi: if n > 8 { word(quoted, n - 8, 8) } else { 0 },
        }
    }

    fn starts(&self, rest: &[u8]) -> bool {
        let n = self.quoted.len();
        let Some(head) = rest.first_chunk::<8>() else {
            return rest.starts_with(self.quoted);
        };
        if u64::from_le_bytes(*head) & self.mask != self.lo {
            return false;
        }
        n <= 8
            || rest
                .get(n - 8..n)
                .and_then(|t| t.first_chunk::<8>())
                .is_some_and(|t| u64::from_le_bytes(*t) == self.hi)
    }
}

const INDEX: Lit = Lit::new(b"\"index\"");
const TIME: Lit = Lit::new(b"\"time\"");
const TYPE: Lit = Lit::new(b"\"type\"");
const PROCESS: Lit = Lit::new(b"\"process\"");
const F: Lit = Lit::new(b"\"f\"");
const VALUE: Lit = Lit::new(b"\"value\"");
const NODE: Lit = Lit::new(b"\"node\"");
const KEY: Lit = Lit::new(b"\"key\"");
const ERROR: Lit = Lit::new(b"\"error\"");

fn op_type(b: &[u8]) -> Option<OpType> {
    Some(match b {
        b"invoke" => OpType::Invoke,
        b"ok" => OpType::Ok,
        b"fail" => OpType::Fail,
        b"info" => OpType::Info,
        _ => return None,
    })
}

/// Parses one op line onto the end of `out` and says whether the line gave its index, or
/// returns `None` (pushing nothing) when the line needs the general parser. Pushing in place
/// spares a copy of the op per layer of return values.
pub(crate) fn parse(line: &[u8], names: &mut Interner, out: &mut Vec<Op>) -> Option<bool> {
    let mut p = P { s: line, i: 0 };
    p.eat(b'{')?;
    let (mut index, mut time, mut process, mut kind) = (None, None, None, None);
    let (mut f, mut key, mut value, mut node, mut error): (Option<Arc<str>>, _, _, _, _) =
        (None, None, None, None, None);
    if p.eat(b'}').is_some() {
        return None;
    }
    loop {
        let k = p.key()?;
        if p.s.get(p.i) == Some(&b':') {
            p.i += 1;
        } else {
            p.eat(b':')?;
        }
        // A repeated key: serde_json decides what that means.
        macro_rules! once {
            ($slot:ident, $e:expr) => {{
                if $slot.is_some() {
                    return None;
                }
                $slot = Some($e);
            }};
        }
        match k {
            Field::Index => once!(index, u64::try_from(p.int()?).ok()?),
            Field::Time => once!(time, u64::try_from(p.int()?).ok()?),
            Field::Process => once!(
                process,
                if p.peek()? == b'"' {
                    (p.raw_str()? == b"nemesis").then_some(Process::Nemesis)?
                } else {
                    Process::Client(u64::try_from(p.int()?).ok()?)
                }
            ),
            Field::Type => once!(kind, op_type(p.raw_str()?)?),
            Field::F => once!(f, names.get_bytes(p.raw_str()?)?),
            Field::Key => once!(key, p.value(0)?),
            Field::Value => once!(value, p.value(0)?),
            Field::Node => once!(
                node,
                if p.peek()? == b'n' {
                    p.word(b"null", Value::Nil)?;
                    None
                } else {
                    Some(names.get_bytes(p.raw_str()?)?)
                }
            ),
            Field::Error => once!(error, p.value(0)?),
            Field::Other => return None,
        }
        if p.s.get(p.i) == Some(&b',') {
            p.i += 1;
            continue;
        }
        if p.eat(b',').is_none() {
            p.eat(b'}')?;
            p.ws();
            if p.i != line.len() {
                return None;
            }
            break;
        }
    }
    let (process, kind, f) = (process?, kind?, f?);
    out.push(Op {
        index: index.unwrap_or(0),
        time,
        process,
        kind,
        f,
        // serde reads `"key": null` as no key; so must we.
        key: key.filter(|k: &Value| !k.is_nil()),
        value: value.unwrap_or(Value::Nil),
        node: node.flatten(),
        error: error.filter(|e: &Value| !e.is_nil()),
    });
    Some(index.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fast(line: &[u8], names: &mut Interner) -> Option<(Op, bool)> {
        let mut out = Vec::new();
        let has_index = parse(line, names, &mut out)?;
        assert_eq!(out.len(), 1);
        out.pop().map(|op| (op, has_index))
    }

    fn serde_parse(line: &str) -> Op {
        let mut r = crate::jsonl::Reader::new(line.as_bytes(), "t");
        r.next().unwrap().unwrap()
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (-1e6f64..1e6).prop_map(Value::Float),
            "[a-z\\\"é ]{0,6}".prop_map(|s| Value::str(&s)),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                prop::collection::vec(("[a-z]{1,3}", inner), 0..4).prop_map(|kv| {
                    // JSON objects have unique keys.
                    let mut seen = std::collections::BTreeSet::new();
                    Value::Map(
                        kv.into_iter()
                            .filter(|(k, _)| seen.insert(k.clone()))
                            .map(|(k, v)| (Value::str(&k), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        /// Whatever the fast path accepts, it reads exactly as serde_json does.
        #[test]
        fn agrees_with_serde(v in value(), k in proptest::option::of(value()), nemesis in any::<bool>(), p in 0u64..1000, t in proptest::option::of(0u64..u64::MAX / 2)) {
            let op = Op {
                index: p * 3,
                time: t,
                process: if nemesis { Process::Nemesis } else { Process::Client(p) },
                kind: OpType::Ok,
                f: "read".into(),
                key: k.filter(|k| !k.is_nil()),
                value: v,
                node: Some("n1".into()),
                error: None,
            };
            let line = serde_json::to_string(&op).unwrap();
            let slow = serde_parse(&line);
            prop_assert_eq!(&slow, &op);
            if let Some((fast, has_index)) = fast(line.as_bytes(), &mut Interner::default()) {
                prop_assert!(has_index);
                prop_assert_eq!(fast, slow);
            }
        }
    }

    #[test]
    fn takes_the_common_shapes() {
        let mut names = Interner::default();
        for line in [
            r#"{"index":0,"time":1200345,"process":3,"type":"invoke","f":"add","value":17,"node":"n2"}"#,
            r#"{"index":2,"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n2","n3"]}}"#,
            r#"{"process":1,"type":"ok","f":"read","value":[1,2,3],"error":null}"#,
        ] {
            let (fast, _) = fast(line.as_bytes(), &mut names).expect(line);
            assert_eq!(fast, serde_parse(line));
        }
        assert!(fast(br#"{"process":1,"type":"ok","f":"r\"ead"}"#, &mut names).is_none());
        // Numbers the fast path leaves to serde_json: leading zeros, floats, 19+ digits.
        for v in ["012", "-01", "1.5", "1e3", "1234567890123456789"] {
            let line = format!(r#"{{"process":1,"type":"ok","f":"read","value":{v}}}"#);
            assert!(fast(line.as_bytes(), &mut names).is_none(), "{v}");
        }
        let (op, _) = fast(
            br#"{"process":1,"type":"ok","f":"read","value":-0}"#,
            &mut names,
        )
        .unwrap();
        assert_eq!(
            op,
            serde_parse(r#"{"process":1,"type":"ok","f":"read","value":-0}"#)
        );
        assert!(
            fast(
                br#"{"process":1,"process":2,"type":"ok","f":"read"}"#,
                &mut names
            )
            .is_none()
        );
    }
}
