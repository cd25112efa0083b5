//! The [`Client`] trait: one logical client of the system under test.

use async_trait::async_trait;
use history::Value;
use history::vocab;

/// One operation to perform (the `invoke` line of the history, minus bookkeeping).
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// `add`, `read`, `incr`, `write`, `cas`, `leader`.
    pub f: &'static str,
    /// The register key (`register` workload); `None` for single-key workloads.
    pub key: Option<Value>,
    pub value: Value,
    /// Ask this node specifically (final reads, leader probes); `None`: the client routes
    /// (writes and linearizable reads go to the leader it knows).
    pub node: Option<String>,
}

impl Invocation {
    pub fn new(f: &'static str, value: Value) -> Self {
        Invocation {
            f,
            key: None,
            value,
            node: None,
        }
    }

    pub fn key(mut self, key: impl Into<Value>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn on(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// True for ops without side effects (a read that times out can be recorded `fail`): reads,
    /// and transactions of reads only.
    pub fn is_read(&self) -> bool {
        vocab::is_read(self.f) || (self.f == vocab::TXN && self.mops().all(|m| m.0 == "r"))
    }

    /// The one micro-op of a `txn` of one micro-op.
    pub fn single_mop(&self) -> Option<(&str, &Value, &Value)> {
        let mut mops = self.mops();
        let first = mops.next()?;
        mops.next().is_none().then_some(first)
    }

    /// A `txn`'s micro-ops as `(f, key, value)`; none for other ops or malformed ones.
    pub fn mops(&self) -> impl Iterator<Item = (&str, &Value, &Value)> {
        let items = match (&self.value, self.f) {
            (Value::List(items), vocab::TXN) => items.as_slice(),
            _ => &[],
        };
        items.iter().filter_map(|m| match m.as_list()? {
            [f, k, v] => Some((f.as_str()?, k, v)),
            _ => None,
        })
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It took effect.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Unknown: it may take effect at any later time, or never.
    Info,
}

/// The completion of an [`Invocation`].
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub outcome: Outcome,
    /// The result (`ok`), else usually the invocation's value.
    pub value: Value,
    /// What the client saw on `fail`/`info`.
    pub error: Option<String>,
    /// The node that answered (or that was asked, when none answered).
    pub node: Option<String>,
}

impl Completion {
    pub fn ok(value: Value, node: &str) -> Self {
        Completion {
            outcome: Outcome::Ok,
            value,
            error: None,
            node: Some(node.to_owned()),
        }
    }

    pub fn fail(value: Value, node: &str, error: impl Into<String>) -> Self {
        Completion {
            outcome: Outcome::Fail,
            value,
            error: Some(error.into()),
            node: Some(node.to_owned()),
        }
    }

    /// An op not sent to any node (the client had nowhere to send it): `fail`, no node.
    pub fn unsent(value: Value, error: impl Into<String>) -> Self {
        Completion {
            outcome: Outcome::Fail,
            value,
            error: Some(error.into()),
            node: None,
        }
    }

    pub fn info(value: Value, node: &str, error: impl Into<String>) -> Self {
        Completion {
            outcome: Outcome::Info,
            value,
            error: Some(error.into()),
            node: Some(node.to_owned()),
        }
    }
}

/// Where a client sends reads (ops without side effects) that name no node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReadFrom {
    /// Where writes go: the leader.
    #[default]
    Leader,
    /// The nodes that do not lead, in turn.
    Followers,
    /// Every node in turn, the leader too.
    Any,
}

impl ReadFrom {
    pub const ALL: [ReadFrom; 3] = [ReadFrom::Leader, ReadFrom::Followers, ReadFrom::Any];

    pub fn name(self) -> &'static str {
        match self {
            ReadFrom::Leader => "leader",
            ReadFrom::Followers => "followers",
            ReadFrom::Any => "any",
        }
    }
}

impl std::str::FromStr for ReadFrom {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ReadFrom::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown read route {s:?} (one of leader, followers, any)"))
    }
}

/// How a client is made: its op timeout and where its reads go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    pub timeout: std::time::Duration,
    pub read_from: ReadFrom,
}

impl ClientOptions {
    /// Reads from the leader, like writes.
    pub fn new(timeout: std::time::Duration) -> Self {
        ClientOptions {
            timeout,
            read_from: ReadFrom::Leader,
        }
    }
}

/// A client of the system under test. Object safe; one per worker. `invoke` never returns
/// an error: every failure is a [`Completion`] with the right [`Outcome`].
#[async_trait]
pub trait Client: Send {
    /// Prepares to talk to the system, starting with `node` (connections may be lazy).
    async fn open(&mut self, node: &str);
    /// Performs one operation.
    async fn invoke(&mut self, op: &Invocation) -> Completion;
    /// Drops connections.
    async fn close(&mut self);
}
