//! The native history format: one JSON object per line, Jepsen's field names.
//!
//! [`Reader`] streams ops from any `BufRead` without holding the text: one line buffer is
//! reused. A last line cut off mid-object (a controller killed while writing) ends the stream
//! quietly and sets [`Reader::truncated`]. [`Writer`] flushes every op as it is written, so a
//! crash leaves a readable prefix.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, Write};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::{Op, OpType, Process, ReadError, Value};

/// Shares one allocation per distinct `f` and node name across millions of ops. Histories
/// use a handful of names, so a short list scanned in order beats hashing every lookup.
#[derive(Default)]
pub(crate) struct Interner {
    /// Each name with its [`tag`], so that most misses cost one integer comparison.
    names: Vec<(u64, Arc<str>)>,
}

/// A name's length and first bytes in one word: equal tags mean equal names up to 7 bytes.
fn tag(b: &[u8]) -> u64 {
    // A loop rather than copy_from_slice, which becomes a call to memcpy.
    let head = b[..b.len().min(7)]
        .iter()
        .rev()
        .fold(0u64, |w, &byte| (w << 8) | u64::from(byte));
    head | (b.len().min(255) as u64) << 56
}

impl Interner {
    pub(crate) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.find(s.as_bytes()) {
            return a;
        }
        let a: Arc<str> = s.into();
        // Past a few hundred distinct names, stop interning rather than scan a long list.
        if self.names.len() < 256 {
            self.names.push((tag(s.as_bytes()), a.clone()));
        }
        a
    }

    /// As [`Interner::get`] for raw bytes: validates UTF-8 only for a name not seen before.
    pub(crate) fn get_bytes(&mut self, b: &[u8]) -> Option<Arc<str>> {
        match self.find(b) {
            Some(a) => Some(a),
            None => Some(self.get(std::str::from_utf8(b).ok()?)),
        }
    }

    fn find(&self, b: &[u8]) -> Option<Arc<str>> {
        let t = tag(b);
        self.names
            .iter()
            .find(|(at, a)| *at == t && (b.len() <= 7 || a.as_bytes() == b))
            .map(|(_, a)| a.clone())
    }
}

#[derive(Deserialize)]
struct RawOp<'a> {
    index: Option<u64>,
    time: Option<u64>,
    process: RawProcess,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(default)]
    key: Option<Value>,
    #[serde(default)]
    value: Value,
    #[serde(default, borrow)]
    node: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<Value>,
}

struct RawProcess(Process);

impl<'de> Deserialize<'de> for RawProcess {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawProcess;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a client number or \"nemesis\"")
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawProcess, E> {
                Ok(RawProcess(Process::Client(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawProcess, E> {
                u64::try_from(v)
                    .map(|v| RawProcess(Process::Client(v)))
                    .map_err(|_| E::custom(format!("process must not be negative, got {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawProcess, E> {
                if v == "nemesis" {
                    Ok(RawProcess(Process::Nemesis))
                } else {
                    Err(E::custom(format!(
                        "process must be a client number or \"nemesis\", got {v:?}"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Streams ops from JSONL text.
pub struct Reader<R> {
    input: R,
    path: String,
    line: u64,
    position: u64,
    /// The last index an op gave (they must increase).
    last_index: Option<u64>,
    buf: Vec<u8>,
    names: Interner,
    /// Where the parser puts the op it read (at most one).
    parsed: Vec<Op>,
    truncated: bool,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    /// `path` only names the input in error messages.
    pub fn new(input: R, path: impl Into<String>) -> Self {
        Reader {
            input,
            path: path.into(),
            line: 0,
            position: 0,
            last_index: None,
            buf: Vec::with_capacity(256),
            names: Interner::default(),
            parsed: Vec::with_capacity(1),
            truncated: false,
            done: false,
        }
    }

    /// Whether the input ended in a partial line that was skipped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn syntax(&self, message: String) -> ReadError {
        ReadError::Syntax {
            path: self.path.clone(),
            line: self.line,
            message,
        }
    }

    fn next_op(&mut self) -> Result<Option<Op>, ReadError> {
        let io = |path: &str, source| ReadError::Io {
            path: path.to_owned(),
            source,
        };
        loop {
            // Parse in place when the whole line is in the reader's buffer (the common case);
            // copy only lines that straddle a refill.
            let available = self.input.fill_buf().map_err(|e| io(&self.path, e))?;
            if available.is_empty() {
                return Ok(None);
            }
            let parsed = if let Some(nl) = memchr::memchr(b'\n', available) {
                let parsed = parse_line(&available[..nl], true, &mut self.names, &mut self.parsed);
                self.input.consume(nl + 1);
                parsed
            } else {
                self.buf.clear();
                self.input
                    .read_until(b'\n', &mut self.buf)
                    .map_err(|e| io(&self.path, e))?;
                let complete = self.buf.last() == Some(&b'\n');
                parse_line(&self.buf, complete, &mut self.names, &mut self.parsed)
            };
            self.line += 1;
            match parsed {
                Ok(Line::Blank) => continue,
                Ok(Line::Truncated) => {
                    // The writer was cut off mid-line: everything before it is intact.
                    self.truncated = true;
                    return Ok(None);
                }
                Ok(Line::Op(has_index)) => {
                    let mut op = self.parsed.pop();
                    if let Some(op) = op.as_mut() {
                        if !has_index {
                            op.index = self.position;
                        } else {
                            if let Some(before) = self.last_index.filter(|&b| op.index <= b) {
                                return Err(
                                    self.syntax(crate::chunked::index_order(op.index, before))
                                );
                            }
                            self.last_index = Some(op.index);
                        }
                    }
                    self.position += 1;
                    return Ok(op);
                }
                Err(msg) => return Err(self.syntax(msg)),
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum Line {
    Blank,
    Truncated,
    /// An op, now the last in the output; whether the line gave its index.
    Op(bool),
}

/// The first integer literal of a JSON text (outside strings) too large for a u64.
fn integer_beyond_u64(text: &[u8]) -> Option<String> {
    let (mut i, mut in_str) = (0, false);
    while i < text.len() {
        let b = text[i];
        if in_str {
            match b {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        if b.is_ascii_digit() {
            let start = i;
            while i < text.len() && text[i].is_ascii_digit() {
                i += 1;
            }
            let fraction = matches!(text.get(i), Some(b'.' | b'e' | b'E'));
            let after_point = start > 0 && matches!(text[start - 1], b'.' | b'e' | b'E' | b'+');
            let digits = std::str::from_utf8(&text[start..i]).unwrap_or("");
            let neg = start > 0 && text[start - 1] == b'-';
            // serde_json reads what fits an i64 (negative) or a u64 exactly, the rest as f64.
            let exact = if neg {
                format!("-{digits}").parse::<i64>().is_ok()
            } else {
                digits.parse::<u64>().is_ok()
            };
            if !fraction && !after_point && !exact {
                return Some(format!("{}{digits}", if neg { "-" } else { "" }));
            }
            continue;
        }
        i += 1;
    }
    None
}

/// Parses one line (without its newline), pushing its op onto `out`; `complete` says whether
/// a newline ended it, i.e. whether a parse failure is an error or a cut-off last line.
pub(crate) fn parse_line(
    line: &[u8],
    complete: bool,
    names: &mut Interner,
    out: &mut Vec<Op>,
) -> Result<Line, String> {
    let text = trim_ascii(line);
    if text.is_empty() {
        return Ok(Line::Blank);
    }
    if let Some(has_index) = crate::fastjson::parse(text, names, out) {
        return Ok(Line::Op(has_index));
    }
    if let Some(n) = integer_beyond_u64(text) {
        // serde_json would read it as a float, equal to its neighbours (2^64 and 2^64+1).
        return Err(format!(
            "the integer {n} does not fit in 64 bits (faultline compares integers exactly, as 64-bit)"
        ));
    }
    let raw: RawOp<'_> = match serde_json::from_slice(text) {
        Ok(raw) => raw,
        Err(_) if !complete => return Ok(Line::Truncated),
        Err(e) => {
            return Err(format!(
                "not a history op: {e} (expected one JSON object per line with process, type, f, value)"
            ));
        }
    };
    let Some(kind) = OpType::parse(&raw.kind) else {
        return Err(format!(
            "unknown op type {:?} (expected invoke, ok, fail or info)",
            raw.kind
        ));
    };
    out.push(Op {
        index: raw.index.unwrap_or(0),
        time: raw.time,
        process: raw.process.0,
        kind,
        f: names.get(&raw.f),
        key: raw.key,
        value: raw.value,
        node: raw.node.map(|n| names.get(&n)),
        error: raw.error,
    });
    Ok(Line::Op(raw.index.is_some()))
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Op, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut done = self.done;
        let item = crate::load::fused(&mut done, || self.next_op());
        self.done = done;
        item
    }
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Appends ops as JSON lines, flushing each one.
pub struct Writer<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            line: Vec::with_capacity(256),
        }
    }

    /// Writes one op as one line and flushes it to the underlying writer.
    pub fn write(&mut self, op: &Op) -> std::io::Result<()> {
        self.append(op)?;
        self.out.flush()
    }

    /// Writes one op as one line without flushing: for a buffered `W` whose owner flushes
    /// when it falls idle (one syscall per backlog rather than per op).
    pub fn append(&mut self, op: &Op) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, op)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn integers_beyond_64_bits_are_refused_not_rounded() {
        let line =
            |v: &str| format!(r#"{{"index":0,"type":"ok","process":0,"f":"add","value":{v}}}"#);
        let mut names = Interner::default();
        for big in [
            "18446744073709551616",
            "[1,18446744073709551617]",
            "-9223372036854775809",
        ] {
            let mut out = Vec::new();
            let e = parse_line(line(big).as_bytes(), true, &mut names, &mut out).unwrap_err();
            assert!(e.contains("does not fit in 64 bits"), "{big}: {e}");
        }
        for fine in [
            "18446744073709551615",
            "-9223372036854775808",
            "1.8446744073709552e19",
            "\"18446744073709551616\"",
        ] {
            let mut out = Vec::new();
            assert!(
                parse_line(line(fine).as_bytes(), true, &mut names, &mut out).is_ok(),
                "{fine}"
            );
        }
    }

    use super::*;

    const TEXT: &str = r#"{"index":0,"time":1200345,"process":3,"type":"invoke","f":"add","value":17,"node":"n2"}
{"index":1,"time":1502210,"process":3,"type":"ok","f":"add","value":17,"node":"n2"}
{"index":2,"time":2000000,"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n2","n3"]}}
"#;

    fn read(text: &str) -> (Vec<Result<Op, ReadError>>, bool) {
        let mut r = Reader::new(text.as_bytes(), "h.jsonl");
        let ops: Vec<_> = r.by_ref().collect();
        (ops, r.truncated())
    }

    #[test]
    fn reads_and_writes_back_identically() {
        let (ops, truncated) = read(TEXT);
        assert!(!truncated);
        let mut w = Writer::new(Vec::new());
        for op in &ops {
            w.write(op.as_ref().unwrap()).unwrap();
        }
        assert_eq!(String::from_utf8(w.into_inner()).unwrap(), TEXT);
    }

    #[test]
    fn truncated_last_line_is_not_an_error() {
        let cut = &TEXT[..TEXT.len() - 20];
        let (ops, truncated) = read(cut);
        assert!(truncated);
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|o| o.is_ok()));
    }

    #[test]
    fn malformed_line_names_the_line() {
        let bad = "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{\"process\":1,\"type\":\"okay\",\"f\":\"read\"}\n";
        let (ops, _) = read(bad);
        let err = ops.into_iter().find_map(|o| o.err()).unwrap().to_string();
        assert!(
            err.starts_with("h.jsonl:2: unknown op type \"okay\""),
            "{err}"
        );
        let (ops, _) = read("{\"process\":1,\n");
        let err = ops.into_iter().find_map(|o| o.err()).unwrap().to_string();
        assert!(err.starts_with("h.jsonl:1: not a history op"), "{err}");
    }
}
