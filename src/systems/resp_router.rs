//! A RESP client that follows the leader, shared by leaderkv's built-in client and by systems
//! described in a file (`--system-file`, protocol `resp`). What differs between systems is a
//! [`RespDialect`]: the command for an op, the value of a successful reply, and what an error
//! reply means (outcome, and where to send the next op).
//!
//! Connection errors are classified here, the same for every system: a connection refused
//! before sending is `fail`; a reset or timeout after sending is `info` (for reads, which
//! change nothing, `fail`). A successful reply that makes no sense for the op is `fail` for
//! reads and `info` otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use history::Value;
use workloads::resp::{Conn, Reply};
use workloads::{Client, Completion, Invocation, Outcome};

use super::RoleInfo;

/// Where a routed op (one without a fixed node) goes after an error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// The same node.
    Stay,
    /// The node named by the error's second word (`MOVED n2 ...`); the next node if that
    /// names no node.
    Follow,
    /// The next node.
    Next,
}

/// What one system's RESP client says and how it reads replies.
pub trait RespDialect: Send + Sync {
    /// The command for an invocation, or why it cannot be sent (the op ends `fail`).
    fn command(&self, op: &Invocation) -> Result<Vec<Vec<u8>>, String>;
    /// The value of an `ok` completion, or `None` when the reply makes no sense for the op.
    fn ok_value(&self, op: &Invocation, r: &Reply) -> Option<Value>;
    /// The outcome of an error reply (`err` without its leading `-`) and where to go next.
    fn on_error(&self, op: &Invocation, err: &str) -> (Outcome, Redirect);
}

/// The value of an `ok` completion for the workloads' ops, as Redis-like stores answer them:
/// `add` any integer; the set `read` an array of integers; `incr` an integer; the register
/// `read` a bulk string (nil: no value); `write`/`cas` `+OK`; `leader` what `role` makes of it.
pub fn ok_value(
    op: &Invocation,
    r: &Reply,
    role: impl Fn(&Reply) -> Option<RoleInfo>,
) -> Option<Value> {
    match (op.f, op.key.is_some(), r) {
        ("add", _, Reply::Int(_)) => Some(op.value.clone()),
        ("read", false, Reply::Array(items)) => {
            let mut out = Vec::new();
            for it in items.as_deref().unwrap_or_default() {
                out.push(Value::Int(it.as_int()?));
            }
            Some(Value::List(out))
        }
        ("incr" | "generate" | "insert", _, Reply::Int(i)) => Some(Value::Int(*i)),
        ("read", true, Reply::Bulk(None)) => Some(Value::Nil),
        ("read", true, Reply::Bulk(Some(b))) => {
            let s = std::str::from_utf8(b).ok()?;
            Some(
                s.parse::<i64>()
                    .map(Value::Int)
                    .unwrap_or_else(|_| Value::str(s)),
            )
        }
        ("write" | "cas", _, Reply::Simple(s)) if s == "OK" => Some(op.value.clone()),
        ("leader", _, r) => Some(role_value(&role(r)?)),
        _ => None,
    }
}

/// The value of a `leader` probe's `ok` completion.
pub fn role_value(role: &RoleInfo) -> Value {
    Value::Map(vec![
        (Value::str("role"), Value::str(&role.role)),
        (
            Value::str("term"),
            role.term.map(Value::Int).unwrap_or(Value::Nil),
        ),
        (
            Value::str("leader"),
            role.leader.as_deref().map(Value::str).unwrap_or(Value::Nil),
        ),
    ])
}

/// A RESP client that follows the leader: error replies redirect it as its dialect says,
/// connection failures and timeouts make it try the next node.
pub struct RoutingClient<D> {
    order: Vec<String>,
    addrs: HashMap<String, String>,
    conns: HashMap<String, Conn>,
    current: usize,
    timeout: Duration,
    dialect: D,
    /// When set, routed ops go to the node this names (the leader probe's latest view).
    leader_hint: Option<Arc<Mutex<Option<String>>>>,
}

impl<D: RespDialect> RoutingClient<D> {
    /// A client of the nodes `addrs` (name, `host:port`), in that order.
    pub fn with_dialect(addrs: Vec<(String, String)>, timeout: Duration, dialect: D) -> Self {
        RoutingClient {
            order: addrs.iter().map(|(n, _)| n.clone()).collect(),
            addrs: addrs.into_iter().collect(),
            conns: HashMap::new(),
            current: 0,
            timeout,
            dialect,
            leader_hint: None,
        }
    }

    /// Sends routed ops to the node `hint` names when it names one (the runner's leader
    /// slot), instead of the node the client last settled on.
    pub fn follow_hint(mut self, hint: Arc<Mutex<Option<String>>>) -> Self {
        self.leader_hint = Some(hint);
        self
    }

    fn rotate(&mut self) {
        if !self.order.is_empty() {
            self.current = (self.current + 1) % self.order.len();
        }
    }

    fn follow(&mut self, node: &str) {
        if let Some(i) = self.order.iter().position(|n| n == node) {
            self.current = i;
        } else {
            self.rotate();
        }
    }
}

#[async_trait]
impl<D: RespDialect> Client for RoutingClient<D> {
    async fn open(&mut self, node: &str) {
        self.follow(node);
    }

    async fn invoke(&mut self, op: &Invocation) -> Completion {
        if op.node.is_none() {
            let hinted = self
                .leader_hint
                .as_ref()
                .and_then(|h| h.lock().unwrap_or_else(|p| p.into_inner()).clone());
            if let Some(l) = hinted {
                if let Some(i) = self.order.iter().position(|n| *n == l) {
                    self.current = i;
                }
            }
        }
        let target = match &op.node {
            Some(n) => n.clone(),
            None => self.order.get(self.current).cloned().unwrap_or_default(),
        };
        let args = match self.dialect.command(op) {
            Ok(a) => a,
            Err(e) => return Completion::fail(op.value.clone(), &target, e),
        };
        let Some(addr) = self.addrs.get(&target).cloned() else {
            return Completion::fail(op.value.clone(), &target, "unknown node");
        };
        if !self.conns.contains_key(&target) {
            match Conn::connect(&addr, self.timeout).await {
                Ok(c) => {
                    self.conns.insert(target.clone(), c);
                }
                Err(e) => {
                    if op.node.is_none() {
                        self.rotate();
                    }
                    return Completion::fail(op.value.clone(), &target, e.short());
                }
            }
        }
        let conn = self.conns.get_mut(&target).expect("just inserted");
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let reply = conn.call(&argv, self.timeout).await;
        let routed = op.node.is_none();
        match reply {
            Err(e) => {
                self.conns.remove(&target);
                if routed {
                    self.rotate();
                }
                if op.is_read() || !e.may_have_applied() {
                    Completion::fail(op.value.clone(), &target, e.short())
                } else {
                    Completion::info(op.value.clone(), &target, e.short())
                }
            }
            Ok(Reply::Error(e)) => {
                let (outcome, redirect) = self.dialect.on_error(op, &e);
                if routed {
                    match redirect {
                        Redirect::Stay => {}
                        Redirect::Next => self.rotate(),
                        Redirect::Follow => match e.split_whitespace().nth(1) {
                            Some(l) => {
                                let l = l.to_owned();
                                self.follow(&l)
                            }
                            None => self.rotate(),
                        },
                    }
                }
                match outcome {
                    Outcome::Fail => Completion::fail(op.value.clone(), &target, e),
                    // An error reply is never `ok`: a rule that says so means "unknown".
                    Outcome::Info | Outcome::Ok => Completion::info(op.value.clone(), &target, e),
                }
            }
            Ok(r) => match self.dialect.ok_value(op, &r) {
                Some(v) => Completion::ok(v, &target),
                None if op.is_read() => {
                    Completion::fail(op.value.clone(), &target, format!("unexpected reply {r:?}"))
                }
                None => {
                    Completion::info(op.value.clone(), &target, format!("unexpected reply {r:?}"))
                }
            },
        }
    }

    async fn close(&mut self) {
        self.conns.clear();
    }
}
