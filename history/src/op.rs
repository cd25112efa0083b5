//! One recorded operation and the small enums around it.

use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::Value;

/// What an op line says about its operation: the call, or one of three outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpType {
    Invoke,
    /// Took effect.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Unknown: may or may not have taken effect, at any time after the invocation.
    Info,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<OpType> {
        Some(match s {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        })
    }

    pub fn is_completion(self) -> bool {
        self != OpType::Invoke
    }
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who performed an op: a numbered client process or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

/// One line of a history. Field names follow Jepsen's (`type` is [`Op::kind`] here).
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// Position in the history, 0-based; unique and increasing.
    pub index: u64,
    /// Nanoseconds since the test started (controller's monotonic clock), when recorded.
    pub time: Option<u64>,
    pub process: Process,
    pub kind: OpType,
    /// The operation's function: `add`, `read`, `write`, `cas`, `start-partition`, ...
    pub f: Arc<str>,
    /// The key of a multi-key workload (Porcupine's `:key`), when the op names one.
    pub key: Option<Value>,
    pub value: Value,
    /// The node the client talked to, when known.
    pub node: Option<Arc<str>>,
    /// The error the client saw, for `fail`/`info` completions.
    pub error: Option<Value>,
}

impl Op {
    pub fn is_invoke(&self) -> bool {
        self.kind == OpType::Invoke
    }

    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Client(_))
    }

    /// `time` in seconds, for messages ("at 12.3 s").
    pub fn time_s(&self) -> Option<f64> {
        self.time.map(|t| t as f64 / 1e9)
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = 5
            + usize::from(self.time.is_some())
            + usize::from(self.key.is_some())
            + usize::from(self.node.is_some())
            + usize::from(self.error.is_some());
        let mut st = s.serialize_struct("Op", n)?;
        st.serialize_field("index", &self.index)?;
        if let Some(t) = self.time {
            st.serialize_field("time", &t)?;
        }
        st.serialize_field("process", &self.process)?;
        st.serialize_field("type", self.kind.as_str())?;
        st.serialize_field("f", &*self.f)?;
        if let Some(k) = &self.key {
            st.serialize_field("key", k)?;
        }
        st.serialize_field("value", &self.value)?;
        if let Some(n) = &self.node {
            st.serialize_field("node", &**n)?;
        }
        if let Some(e) = &self.error {
            st.serialize_field("error", e)?;
        }
        st.end()
    }
}

/// A checker's verdict. Merging takes the worst: Invalid > Unknown > Valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Validity {
    #[default]
    Valid,
    Unknown,
    Invalid,
}

impl Validity {
    /// The worse of the two verdicts.
    pub fn merge(self, other: Validity) -> Validity {
        fn rank(v: Validity) -> u8 {
            match v {
                Validity::Valid => 0,
                Validity::Unknown => 1,
                Validity::Invalid => 2,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As in Jepsen's results: `true`, `false` or `"unknown"`.
impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_takes_the_worst() {
        use Validity::*;
        assert_eq!(Valid.merge(Unknown), Unknown);
        assert_eq!(Unknown.merge(Invalid), Invalid);
        assert_eq!(Invalid.merge(Valid), Invalid);
        assert_eq!(Valid.merge(Valid), Valid);
    }

    #[test]
    fn op_serialises_with_jepsen_names() {
        let op = Op {
            index: 2,
            time: Some(2_000_000),
            process: Process::Nemesis,
            kind: OpType::Info,
            f: "start-partition".into(),
            key: None,
            value: Value::Nil,
            node: None,
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            r#"{"index":2,"time":2000000,"process":"nemesis","type":"info","f":"start-partition","value":null}"#
        );
    }
}
