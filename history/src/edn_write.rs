//! Writing a history as Jepsen's `history.edn`: one op map per line, as Jepsen stores it, so
//! Elle, Knossos or any Clojure reader takes what faultline recorded.
//!
//! Types, functions and the nemesis process are keywords; map keys are keywords when they
//! can be (Jepsen's maps are keyword-keyed; the EDN reader reads keywords back as strings,
//! so a history round-trips); every other string stays a string.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::op::{Op, Process};
use crate::value::Value;

/// Writes `op` as one EDN map and a newline.
pub fn write_op(out: &mut impl Write, op: &Op) -> io::Result<()> {
    let mut s = String::with_capacity(96);
    s.push_str("{:index ");
    let _ = write!(s, "{}", op.index);
    if let Some(t) = op.time {
        let _ = write!(s, ", :time {t}");
    }
    s.push_str(", :type :");
    s.push_str(op.kind.as_str());
    s.push_str(", :process ");
    match op.process {
        Process::Client(p) => {
            let _ = write!(s, "{p}");
        }
        Process::Nemesis => s.push_str(":nemesis"),
    }
    s.push_str(", :f ");
    keyword_or_string(&mut s, &op.f);
    if let Some(k) = &op.key {
        s.push_str(", :key ");
        value(&mut s, k);
    }
    s.push_str(", :value ");
    value(&mut s, &op.value);
    if let Some(n) = &op.node {
        s.push_str(", :node ");
        string(&mut s, n);
    }
    if let Some(e) = &op.error {
        s.push_str(", :error ");
        value(&mut s, e);
    }
    s.push_str("}\n");
    out.write_all(s.as_bytes())
}

/// `v` as EDN text.
pub fn value_text(v: &Value) -> String {
    let mut s = String::new();
    value(&mut s, v);
    s
}

fn value(s: &mut String, v: &Value) {
    match v {
        Value::Nil => s.push_str("nil"),
        Value::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(s, "{i}");
        }
        // `{:?}` always has a `.` or an exponent, which EDN needs to read a float back as one.
        Value::Float(f) => {
            let _ = write!(s, "{f:?}");
        }
        Value::Str(t) => string(s, t),
        Value::List(items) => {
            s.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                value(s, x);
            }
            s.push(']');
        }
        Value::Map(pairs) => {
            s.push('{');
            for (i, (k, x)) in pairs.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                match k {
                    Value::Str(t) => keyword_or_string(s, t),
                    other => value(s, other),
                }
                s.push(' ');
                value(s, x);
            }
            s.push('}');
        }
    }
}

/// `:name` when `name` is a keyword EDN reads back as itself, else a string.
fn keyword_or_string(s: &mut String, name: &str) {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || "*+!-_?<>=".contains(c));
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "*+!-_?<>=.#:'".contains(c));
    if first_ok && rest_ok && !name.ends_with(':') && !name.contains("::") {
        s.push(':');
        s.push_str(name);
    } else {
        string(s, name);
    }
}

fn string(s: &mut String, t: &str) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::OpType;
    use std::sync::Arc;

    fn op(process: Process, kind: OpType, f: &str, value: Value) -> Op {
        Op {
            index: 3,
            time: Some(1_500),
            process,
            kind,
            f: Arc::from(f),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    fn text(o: &Op) -> String {
        let mut v = Vec::new();
        write_op(&mut v, o).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn ops_are_jepsen_maps() {
        let o = op(
            Process::Client(7),
            OpType::Ok,
            "cas",
            Value::List(vec![Value::Int(1), Value::Int(2)]),
        );
        assert_eq!(
            text(&o),
            "{:index 3, :time 1500, :type :ok, :process 7, :f :cas, :value [1 2]}\n"
        );
        let mut n = op(
            Process::Nemesis,
            OpType::Info,
            "start-partition",
            Value::Str("n1 \"x\"\n\u{1}".into()),
        );
        n.error = Some(Value::Str("timeout".into()));
        n.node = Some(Arc::from("n1"));
        assert_eq!(
            text(&n),
            "{:index 3, :time 1500, :type :info, :process :nemesis, :f :start-partition, \
             :value \"n1 \\\"x\\\"\\n\\u0001\", :node \"n1\", :error \"timeout\"}\n"
        );
    }

    #[test]
    fn values_keep_their_types() {
        assert_eq!(value_text(&Value::Float(1.0)), "1.0");
        assert_eq!(value_text(&Value::Float(-2.5e300)), "-2.5e300");
        assert_eq!(value_text(&Value::Nil), "nil");
        let m = Value::Map(vec![
            (Value::Str("x".into()), Value::Int(1)),
            (Value::Str("has space".into()), Value::Bool(true)),
            (Value::Int(4), Value::List(vec![])),
        ]);
        assert_eq!(value_text(&m), "{:x 1, \"has space\" true, 4 []}");
    }
}
