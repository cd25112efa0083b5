//! A streaming reader for Jepsen's `history.edn` and the Knossos/Porcupine data files.
//!
//! Accepts a top-level vector or list of op maps (`[{...} {...}]`), or op maps one after
//! another (`{...}\n{...}`), with `;` comments, commas, maps over several lines, keywords,
//! strings, numbers, `nil`/`true`/`false`, vectors, lists, sets and tagged literals (the tag
//! is dropped: `#jepsen.history.Op{...}` reads as the map). Keywords become strings. The text
//! is read through a fixed buffer; only the op being parsed is held.

use std::io::Read;

use crate::jsonl::Interner;
use crate::{Op, OpType, Process, ReadError, Value};

const CHUNK: usize = 64 * 1024;

/// How deeply forms may nest. A history's ops need a handful of levels (an op map, a
/// transaction, its micro-ops); the limit keeps a crafted file from overflowing the stack.
pub const MAX_DEPTH: usize = 128;

/// Streams ops out of EDN text.
pub struct Reader<R> {
    input: R,
    path: String,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    line: u64,
    /// Inside a top-level `[`/`(`: the closing byte we expect.
    closing: Option<u8>,
    started: bool,
    done: bool,
    truncated: bool,
    position: u64,
    names: Interner,
    /// Forms open around the one being read.
    depth: usize,
    /// The last index an op gave (they must increase).
    last_index: Option<u64>,
}

impl<R: Read> Reader<R> {
    pub fn new(input: R, path: impl Into<String>) -> Self {
        Reader {
            input,
            path: path.into(),
            buf: vec![0; CHUNK].into_boxed_slice(),
            pos: 0,
            len: 0,
            eof: false,
            line: 1,
            closing: None,
            started: false,
            done: false,
            truncated: false,
            position: 0,
            names: Interner::default(),
            depth: 0,
            last_index: None,
        }
    }

    /// Whether the text ended inside an op or before the history's closing bracket (a
    /// writer cut off mid-way); the ops before that point were all returned.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn at_eof(&self) -> bool {
        self.eof && self.pos == self.len
    }

    fn err(&self, message: impl Into<String>) -> ReadError {
        ReadError::Syntax {
            path: self.path.clone(),
            line: self.line,
            message: message.into(),
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, ReadError> {
        if self.pos == self.len {
            if self.eof {
                return Ok(None);
            }
            loop {
                match self.input.read(&mut self.buf) {
                    Ok(0) => {
                        self.eof = true;
                        return Ok(None);
                    }
                    Ok(n) => {
                        self.pos = 0;
                        self.len = n;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(ReadError::Io {
                            path: self.path.clone(),
                            source,
                        });
                    }
                }
            }
        }
        Ok(Some(self.buf[self.pos]))
    }

    fn bump(&mut self) -> Result<Option<u8>, ReadError> {
        let b = self.peek()?;
        if let Some(c) = b {
            self.pos += 1;
            if c == b'\n' {
                self.line += 1;
            }
        }
        Ok(b)
    }

    /// Skips whitespace, commas and comments; returns the next significant byte unread.
    fn skip_ws(&mut self) -> Result<Option<u8>, ReadError> {
        loop {
            match self.peek()? {
                Some(c) if c.is_ascii_whitespace() || c == b',' => {
                    self.bump()?;
                }
                Some(b';') => {
                    while let Some(c) = self.bump()? {
                        if c == b'\n' {
                            break;
                        }
                    }
                }
                other => return Ok(other),
            }
        }
    }

    fn expect_value(&mut self) -> Result<Value, ReadError> {
        match self.read_value()? {
            Some(v) => Ok(v),
            None => Err(self.err("unexpected end of file inside a form")),
        }
    }

    /// Reads one form, or None at a closing delimiter or end of input (both left unread).
    fn read_value(&mut self) -> Result<Option<Value>, ReadError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!(
                "forms nested deeper than {MAX_DEPTH} levels (no history needs that many)"
            )));
        }
        self.depth += 1;
        let v = self.read_form();
        self.depth -= 1;
        v
    }

    fn read_form(&mut self) -> Result<Option<Value>, ReadError> {
        let Some(c) = self.skip_ws()? else {
            return Ok(None);
        };
        match c {
            b']' | b')' | b'}' => Ok(None),
            b'[' | b'(' => {
                self.bump()?;
                let close = if c == b'[' { b']' } else { b')' };
                Ok(Some(Value::List(self.read_seq(close)?)))
            }
            b'{' => {
                self.bump()?;
                self.read_map().map(Some)
            }
            b'"' => {
                self.bump()?;
                self.read_string().map(|s| Some(Value::Str(s.into())))
            }
            b'#' => {
                self.bump()?;
                match self.peek()? {
                    Some(b'{') => {
                        self.bump()?;
                        Ok(Some(Value::List(self.read_seq(b'}')?)))
                    }
                    Some(b'_') => {
                        self.bump()?;
                        self.expect_value()?;
                        self.read_value()
                    }
                    _ => {
                        // A tagged literal: drop the tag, keep the value it tags.
                        self.read_token()?;
                        self.expect_value().map(Some)
                    }
                }
            }
            b'\\' => {
                self.bump()?;
                let c = self.char_literal()?;
                Ok(Some(Value::Str(c.to_string().into())))
            }
            _ => {
                let tok = self.read_token()?;
                if tok.is_empty() {
                    let ch = self.peek()?.map(char::from).unwrap_or(' ');
                    return Err(self.err(format!("unexpected character {ch:?}")));
                }
                Ok(Some(self.atom(tok)?))
            }
        }
    }

    fn read_seq(&mut self, close: u8) -> Result<Vec<Value>, ReadError> {
        let mut out = Vec::new();
        loop {
            if let Some(v) = self.read_value()? {
                out.push(v);
                continue;
            }
            return match self.bump()? {
                Some(c) if c == close => Ok(out),
                Some(c) => Err(self.err(format!(
                    "expected {:?} but found {:?}",
                    close as char, c as char
                ))),
                None => Err(self.err(format!(
                    "unexpected end of file: missing {:?}",
                    close as char
                ))),
            };
        }
    }

    fn read_map(&mut self) -> Result<Value, ReadError> {
        let items = self.read_seq(b'}')?;
        if items.len() % 2 != 0 {
            return Err(self.err("a map has a key without a value"));
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(Value::Map(pairs))
    }

    /// A character literal after its `\\`: `\\a`, `\\newline`, `\\u00e9`, `\\(`.
    fn char_literal(&mut self) -> Result<char, ReadError> {
        // A delimiter right after the backslash is the character itself.
        if let Some(c) = self.peek()? {
            if c.is_ascii_whitespace() || b",()[]{}\";".contains(&c) {
                self.bump()?;
                return Ok(char::from(c));
            }
        }
        let tok = self.read_token()?;
        let mut chars = tok.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => return Ok(c),
            (None, _) => return Err(self.err("a character literal without a character")),
            _ => {}
        }
        Ok(match tok.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "backspace" => '\u{8}',
            "formfeed" => '\u{c}',
            _ => match tok.strip_prefix('u').filter(|h| h.len() == 4) {
                Some(hex) => u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.err(format!("bad character literal \\{tok}")))?,
                None => return Err(self.err(format!("unknown character literal \\{tok}"))),
            },
        })
    }

    /// Four hex digits of a `\\u` escape.
    fn hex4(&mut self) -> Result<u32, ReadError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .bump()?
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.err("a \\u escape needs four hex digits"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    /// A string's text after its opening quote, with EDN's escapes (`\\t \\r \\n \\\\ \\"
    /// \\b \\f \\uXXXX`, surrogate pairs joined); any other escape is an error.
    fn read_string(&mut self) -> Result<String, ReadError> {
        let mut bytes = Vec::new();
        let push = |bytes: &mut Vec<u8>, c: char| {
            let mut b = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        };
        loop {
            match self.bump()? {
                None => return Err(self.err("unexpected end of file inside a string")),
                Some(b'"') => break,
                Some(b'\\') => match self.bump()? {
                    Some(b'n') => bytes.push(b'\n'),
                    Some(b't') => bytes.push(b'\t'),
                    Some(b'r') => bytes.push(b'\r'),
                    Some(b'b') => bytes.push(0x08),
                    Some(b'f') => bytes.push(0x0c),
                    Some(b'\\') => bytes.push(b'\\'),
                    Some(b'"') => bytes.push(b'"'),
                    Some(b'u') => {
                        let hi = self.hex4()?;
                        let code = if (0xD800..0xDC00).contains(&hi) {
                            let pair = (self.bump()?, self.bump()?);
                            if pair != (Some(b'\\'), Some(b'u')) {
                                return Err(self.err("a lone surrogate in a \\u escape"));
                            }
                            let lo = self.hex4()?;
                            if !(0xDC00..0xE000).contains(&lo) {
                                return Err(self.err("a lone surrogate in a \\u escape"));
                            }
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        } else {
                            hi
                        };
                        let c = char::from_u32(code)
                            .ok_or_else(|| self.err("a lone surrogate in a \\u escape"))?;
                        push(&mut bytes, c);
                    }
                    Some(c) => {
                        return Err(self.err(format!(
                            "unknown escape \\{} in a string",
                            char::from(c).escape_default()
                        )));
                    }
                    None => return Err(self.err("unexpected end of file inside a string")),
                },
                Some(c) => bytes.push(c),
            }
        }
        String::from_utf8(bytes).map_err(|_| self.err("a string is not valid UTF-8"))
    }

    fn read_token(&mut self) -> Result<String, ReadError> {
        let mut tok = Vec::new();
        while let Some(c) = self.peek()? {
            if c.is_ascii_whitespace() || b",()[]{}\";".contains(&c) {
                break;
            }
            tok.push(c);
            self.bump()?;
        }
        String::from_utf8(tok).map_err(|_| self.err("a symbol is not valid UTF-8"))
    }

    fn atom(&self, tok: String) -> Result<Value, ReadError> {
        Ok(match tok.as_str() {
            "nil" => Value::Nil,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ if tok.starts_with(':') => Value::Str(tok[1..].into()),
            _ if tok.starts_with(|c: char| c.is_ascii_digit())
                || ((tok.starts_with('-') || tok.starts_with('+')) && tok.len() > 1) =>
            {
                let num = tok.trim_end_matches(['N', 'M']);
                let digits = num.strip_prefix(['-', '+']).unwrap_or(num);
                let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
                if let Ok(i) = num.parse::<i64>() {
                    Value::Int(i)
                } else if integer {
                    // As a float it would compare equal to its neighbours (2^64 and 2^64+1):
                    // refused rather than rounded.
                    return Err(self.err(format!(
                        "the integer {tok} does not fit in 64 bits (faultline compares integers exactly, as 64-bit)"
                    )));
                } else if let Ok(x) = num.parse::<f64>() {
                    Value::Float(x)
                } else {
                    return Err(self.err(format!("bad number {tok:?}")));
                }
            }
            _ => Value::Str(tok.into()),
        })
    }

    fn next_op(&mut self) -> Result<Option<Op>, ReadError> {
        if !self.started {
            self.started = true;
            match self.skip_ws()? {
                Some(c @ (b'[' | b'(')) => {
                    self.bump()?;
                    self.closing = Some(if c == b'[' { b']' } else { b')' });
                }
                Some(b'{') | Some(b'#') | None => {}
                Some(c) => {
                    return Err(self.err(format!(
                        "expected a vector of op maps or op maps, found {:?}",
                        c as char
                    )));
                }
            }
        }
        let line = {
            self.skip_ws()?;
            self.line
        };
        let form = match self.read_value() {
            Ok(form) => form,
            Err(ReadError::Syntax { .. }) if self.at_eof() => {
                self.truncated = true;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let Some(form) = form else {
            match (self.closing, self.bump()?) {
                (Some(close), Some(c)) if c == close => {
                    if let Some(c) = self.skip_ws()? {
                        return Err(self.err(format!(
                            "unexpected {:?} after the history's closing {:?}",
                            c as char, close as char
                        )));
                    }
                    return Ok(None);
                }
                (None, None) => return Ok(None),
                (Some(_), None) => {
                    self.truncated = true;
                    return Ok(None);
                }
                (_, Some(c)) => return Err(self.err(format!("unexpected {:?}", c as char))),
            }
        };
        self.op_from_map(form, line).map(Some)
    }

    fn op_from_map(&mut self, form: Value, line: u64) -> Result<Op, ReadError> {
        let at = |msg: String| ReadError::Syntax {
            path: self.path.clone(),
            line,
            message: msg,
        };
        let Value::Map(pairs) = form else {
            return Err(at(format!("expected an op map, found {form}")));
        };
        let (mut index, mut time, mut process, mut kind, mut f) = (None, None, None, None, None);
        let (mut key, mut value, mut node, mut error) = (None, Value::Nil, None, None);
        for (k, v) in pairs {
            let Value::Str(k) = k else { continue };
            match &*k {
                "index" => index = v.as_int(),
                "time" => time = v.as_int().and_then(|t| u64::try_from(t).ok()),
                "process" => {
                    process = Some(match &v {
                        Value::Int(p) if *p >= 0 => Process::Client(*p as u64),
                        Value::Str(s) if &**s == "nemesis" => Process::Nemesis,
                        other => {
                            return Err(at(format!(
                                "process must be a client number or :nemesis, got {other}"
                            )));
                        }
                    })
                }
                "type" => {
                    let t = v.as_str().and_then(OpType::parse);
                    kind = Some(t.ok_or_else(|| {
                        at(format!(
                            "unknown op type {v} (expected :invoke, :ok, :fail or :info)"
                        ))
                    })?);
                }
                "f" => f = Some(v),
                "key" => key = Some(v),
                "value" => value = v,
                "node" => node = Some(v),
                "error" => error = Some(v),
                _ => {}
            }
        }
        let process = process.ok_or_else(|| at("op has no :process".into()))?;
        let kind = kind.ok_or_else(|| at("op has no :type".into()))?;
        let f = match f {
            Some(Value::Str(s)) => self.names.get(&s),
            Some(other) => self.names.get(&other.to_string()),
            None => return Err(at("op has no :f".into())),
        };
        let node = match node {
            Some(Value::Str(s)) => Some(self.names.get(&s)),
            Some(Value::Nil) | None => None,
            Some(other) => Some(self.names.get(&other.to_string())),
        };
        let given = index.and_then(|i| u64::try_from(i).ok());
        if let Some(i) = given {
            if let Some(before) = self.last_index.filter(|&b| i <= b) {
                return Err(at(crate::chunked::index_order(i, before)));
            }
            self.last_index = Some(i);
        }
        let index = given.unwrap_or(self.position);
        self.position += 1;
        Ok(Op {
            index,
            time,
            process,
            kind,
            f,
            key,
            value,
            node,
            error,
        })
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Op, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut done = self.done;
        let item = crate::load::fused(&mut done, || self.next_op());
        self.done = done;
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Op>, ReadError> {
        Reader::new(text.as_bytes(), "h.edn").collect()
    }

    #[test]
    fn reads_vectors_comments_and_multiline_maps() {
        let ops = read(
            "; a comment\n[{:type :invoke, :f :cas, :value [2 3], :process 7}\n ; mid\n {:type\n :fail,\n :f :cas, :value [2 3] :process 7 :time 12}\n {:process :nemesis :type :info :f :start :value \"a \\\"q\\\"\"}]\n",
        )
        .unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(&*ops[0].f, "cas");
        assert_eq!(
            ops[0].value,
            Value::List(vec![Value::Int(2), Value::Int(3)])
        );
        assert_eq!(ops[1].kind, OpType::Fail);
        assert_eq!(ops[1].time, Some(12));
        assert_eq!(ops[1].index, 1);
        assert_eq!(ops[2].process, Process::Nemesis);
        assert_eq!(ops[2].value, Value::str("a \"q\""));
    }

    #[test]
    fn reads_one_map_per_line_with_keys() {
        let ops = read("{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n{:process 0, :type :ok, :f :append, :key \"0\", :value \"x 0 0 y\"}\n").unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].key, Some(Value::str("0")));
    }

    #[test]
    fn reads_tagged_records_sets_and_nil() {
        let ops = read(
            "(#jepsen.history.Op{:index 5 :process 1 :type :ok :f :read :value #{1 2} :error nil})",
        )
        .unwrap();
        assert_eq!(ops[0].index, 5);
        assert_eq!(
            ops[0].value,
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = read("[{:process 1 :type :invoke :f :read}\n {:process 1 :type :okk :f :read}]")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "h.edn:2: unknown op type \"okk\" (expected :invoke, :ok, :fail or :info)"
        );
        let mut r = Reader::new(
            "[{:process 1 :type :invoke :f :read}\n {:process 1 :ty".as_bytes(),
            "h.edn",
        );
        assert_eq!(r.by_ref().filter(|o| o.is_ok()).count(), 1);
        assert!(r.truncated());
        let err = read("[{:process 1 :type :invoke :f :read :value [1 2}]").unwrap_err();
        assert!(
            err.to_string().starts_with("h.edn:1: expected ']'"),
            "{err}"
        );
    }

    fn value_of(form: &str) -> Result<Value, ReadError> {
        let ops = read(&format!(
            "[{{:process 1 :type :invoke :f :write :value {form}}}]"
        ))?;
        Ok(ops[0].value.clone())
    }

    #[test]
    fn strings_and_characters_decode_per_the_edn_spec() {
        let s = |form: &str| value_of(form).unwrap();
        assert_eq!(s(r#""caf\u00e9""#), Value::Str("café".into()));
        assert_eq!(s(r#""\u00e9""#), s(r#""é""#));
        assert_ne!(s(r#""\u00e9""#), Value::Str("u00e9".into()));
        assert_eq!(s(r#""a\b\f\"\\""#), Value::Str("a\u{8}\u{c}\"\\".into()));
        assert_eq!(s(r#""\ud83d\ude00""#), Value::Str("😀".into()));
        assert_eq!(s(r"\a"), Value::Str("a".into()));
        assert_eq!(s(r"\u00e9"), Value::Str("é".into()));
        assert_eq!(s(r"\newline"), Value::Str("\n".into()));
        assert_eq!(s(r"\formfeed"), Value::Str("\u{c}".into()));
        assert_eq!(
            s(r"[\( \)]"),
            Value::List(vec![Value::Str("(".into()), Value::Str(")".into())])
        );
        for bad in [r#""\q""#, r#""\u12""#, r#""\ud83d""#, r"\nope"] {
            let e = value_of(bad).unwrap_err().to_string();
            assert!(e.starts_with("h.edn:1: "), "{bad}: {e}");
        }
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_not_rounded() {
        assert_eq!(
            value_of("9223372036854775807").unwrap(),
            Value::Int(i64::MAX)
        );
        assert_eq!(
            value_of("-9223372036854775808").unwrap(),
            Value::Int(i64::MIN)
        );
        for big in [
            "18446744073709551616",
            "18446744073709551617N",
            "-99999999999999999999",
        ] {
            let e = value_of(big).unwrap_err().to_string();
            assert!(e.contains("does not fit in 64 bits"), "{big}: {e}");
        }
        assert_eq!(value_of("1.5").unwrap(), Value::Float(1.5));
    }

    #[test]
    fn deep_nesting_is_an_error_naming_the_line_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(3000), "]".repeat(3000));
        let e = value_of(&deep).unwrap_err().to_string();
        assert!(
            e.starts_with("h.edn:1: ") && e.contains("nested deeper"),
            "{e}"
        );
        let tags = format!("{}1", "#x ".repeat(3000));
        assert!(
            value_of(&tags)
                .unwrap_err()
                .to_string()
                .contains("nested deeper")
        );
        let ok = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH - 3),
            "]".repeat(MAX_DEPTH - 3)
        );
        assert!(value_of(&ok).is_ok());
    }

    #[test]
    fn an_index_that_does_not_increase_is_an_error() {
        let e = read("[{:index 1 :process 1 :type :invoke :f :read}\n {:index 1 :process 1 :type :ok :f :read}]")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("h.edn:2: index 1 after index 1"), "{e}");
    }
}
