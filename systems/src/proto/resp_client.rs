//! A RESP client that follows the leader, shared by leaderkv's built-in client and by systems
//! described in a file (`--system-file`, protocol `resp`). What differs between systems is a
//! [`RespDialect`]: the command for an op, the value of a successful reply, and what an error
//! reply means (outcome, and where to send the next op); where an op goes is the [`Router`]'s.
//! With a dialect's session wrap every op carries the client's position; with its
//! transaction commands a transaction of several micro-ops is one pipelined exchange.
//!
//! Connection errors are classified here, the same for every system: a connection refused
//! before sending is `fail`; a reset or timeout after sending is `info` (for reads, which
//! change nothing, `fail`). A successful reply that makes no sense for the op is `fail` for
//! reads and `info` otherwise.

use history::vocab;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::proto::resp::{Conn, Reply};
use crate::proto::router::{NO_LEADER, Redirect, Route, Router};
use crate::proto::tls::Access;
use crate::unknown_unless_read;
use async_trait::async_trait;
use history::Value;
use workloads::{Client, Completion, Invocation, Outcome, ReadFrom};

/// One command's words.
type Argv = Vec<Vec<u8>>;

/// What one system's RESP client says and how it reads replies.
pub trait RespDialect: Send + Sync {
    /// The command for an invocation, or why it cannot be sent (the op ends `fail`).
    fn command(&self, op: &Invocation) -> Result<Vec<Vec<u8>>, String>;
    /// The value of an `ok` completion, or `None` when the reply makes no sense for the op.
    fn ok_value(&self, op: &Invocation, r: &Reply) -> Option<Value>;
    /// The outcome of an error reply (`err` without its leading `-`) and where to go next.
    fn on_error(&self, op: &Invocation, err: &str) -> (Outcome, Redirect);
    /// The words put before every op's command to carry the client's session position
    /// (`{session}` in them), when the system has sessions; its replies are then
    /// `[position, reply]`.
    fn session_wrap(&self) -> Option<&[String]> {
        None
    }
    /// The commands that open and run a transaction of several micro-ops (`MULTI`, `EXEC`),
    /// when the system has them; `commit`'s answer is an array of the micro-ops' replies.
    fn transaction(&self) -> Option<(&[String], &[String])> {
        None
    }
}

/// A RESP client that follows the leader: error replies redirect it as its dialect says,
/// connection failures and timeouts make it try the next node.
pub struct RoutingClient<D> {
    router: Router,
    conns: HashMap<String, Conn>,
    timeout: Duration,
    dialect: D,
    access: Arc<Access>,
    /// The highest session position the system answered (with a `session_wrap`).
    position: i64,
}

impl<D: RespDialect> RoutingClient<D> {
    /// A client of the nodes `addrs` (name, `host:port`), in that order.
    pub fn with_dialect(addrs: Vec<(String, String)>, timeout: Duration, dialect: D) -> Self {
        RoutingClient {
            router: Router::new(addrs),
            conns: HashMap::new(),
            timeout,
            dialect,
            access: Arc::new(Access::plain()),
            position: 0,
        }
    }

    /// Sends reads that name no node as `reads` says.
    pub fn reads(mut self, reads: ReadFrom, view: nemesis::LeaderView) -> Self {
        self.router.reads(reads, view);
        self
    }

    /// The commands of `op`, the last one's answer being the op's: one command, or for a
    /// transaction of several micro-ops the system's `begin`, each micro-op's command and
    /// `commit`. The last is wrapped with the session position when the system has sessions
    /// (then true).
    fn commands(&self, op: &Invocation) -> Result<(Vec<Argv>, bool), String> {
        if op.f != vocab::TXN || op.mops().count() < 2 {
            let (c, wrapped) = self.wrapped(self.dialect.command(op)?, op.f != vocab::LEADER)?;
            return Ok((vec![c], wrapped));
        }
        let Some((begin, commit)) = self.dialect.transaction() else {
            return Err(format!(
                "{} (the system file has no [client.transactions])",
                crate::file::client::SINGLE_MOP
            ));
        };
        let words = |w: &[String]| w.iter().map(|a| a.clone().into_bytes()).collect();
        let mut cmds = vec![words(begin)];
        for (f, k, v) in op.mops() {
            let one = Invocation::new(
                vocab::TXN,
                Value::List(vec![Value::List(vec![Value::str(f), k.clone(), v.clone()])]),
            );
            cmds.push(self.dialect.command(&one)?);
        }
        let (c, wrapped) = self.wrapped(words(commit), true)?;
        cmds.push(c);
        Ok((cmds, wrapped))
    }

    /// `args` after the session wrap, when the system has sessions and `wrap` holds.
    fn wrapped(&self, mut args: Argv, wrap: bool) -> Result<(Argv, bool), String> {
        match self.dialect.session_wrap() {
            Some(words) if wrap => {
                let pos = self.position.to_string();
                let mut out: Vec<Vec<u8>> = words
                    .iter()
                    .map(|w| {
                        crate::file::spec::expand(w, &|n| (n == "session").then(|| pos.clone()))
                            .map(String::into_bytes)
                    })
                    .collect::<Result<_, _>>()?;
                out.append(&mut args);
                Ok((out, true))
            }
            _ => Ok((args, false)),
        }
    }

    /// Connects with TLS and credentials as `access` says.
    pub fn access(mut self, access: Arc<Access>) -> Self {
        self.access = access;
        self
    }

    /// Routes ops that name no node as `route` says.
    pub fn route(mut self, route: Route) -> Self {
        self.router.route(route);
        self
    }
}

#[async_trait]
impl<D: RespDialect> Client for RoutingClient<D> {
    async fn open(&mut self, node: &str) {
        self.router.follow(node);
    }

    async fn invoke(&mut self, op: &Invocation) -> Completion {
        let Some(target) = self.router.target(op) else {
            return Completion::unsent(op.value.clone(), NO_LEADER);
        };
        let (cmds, wrapped) = match self.commands(op) {
            Ok(a) => a,
            Err(e) => return Completion::fail(op.value.clone(), &target, e),
        };
        let Some(addr) = self.router.addr(&target) else {
            return Completion::fail(op.value.clone(), &target, "unknown node");
        };
        let routed = self.router.moves_with(op);
        if !self.conns.contains_key(&target) {
            match Conn::connect_with(&addr, &self.access, self.timeout).await {
                Ok(c) => {
                    self.conns.insert(target.clone(), c);
                }
                Err(e) => {
                    if routed {
                        self.router.rotate();
                    }
                    return Completion::fail(op.value.clone(), &target, e.msg);
                }
            }
        }
        let conn = self.conns.get_mut(&target).expect("just inserted");
        let argvs: Vec<Vec<&[u8]>> = cmds
            .iter()
            .map(|c| c.iter().map(Vec::as_slice).collect())
            .collect();
        let argvs: Vec<&[&[u8]]> = argvs.iter().map(Vec::as_slice).collect();
        let reply = conn
            .pipeline(&argvs, self.timeout)
            .await
            .map(|mut replies| {
                let last = replies.pop().expect("one reply per command");
                // A transaction's command refused before it ran: the commit says so too
                // (Redis's EXECABORT), naming the first refusal.
                match (
                    last,
                    replies.into_iter().find_map(|r| match r {
                        Reply::Error(e) => Some(e),
                        _ => None,
                    }),
                ) {
                    (Reply::Error(e), Some(first)) => Reply::Error(format!("{e} ({first})")),
                    (_, Some(first)) => Reply::Error(first),
                    (last, None) => last,
                }
            });
        let reply = match reply {
            Ok(Reply::Array(Some(mut pair))) if wrapped && pair.len() == 2 => {
                match pair[0].as_int() {
                    Some(p) => {
                        self.position = self.position.max(p);
                        Ok(pair.pop().expect("two items"))
                    }
                    None => Ok(Reply::Array(Some(pair))),
                }
            }
            other => other,
        };
        match reply {
            Err(e) => {
                self.conns.remove(&target);
                if routed {
                    self.router.rotate();
                }
                unknown_unless_read(op, &target, e.sent(), e.msg)
            }
            Ok(Reply::Error(e)) => {
                let (outcome, redirect) = self.dialect.on_error(op, &e);
                if routed {
                    self.router.redirect(redirect, &e);
                }
                match outcome {
                    Outcome::Fail => Completion::fail(op.value.clone(), &target, e),
                    // An error reply is never `ok`: a rule that says so means "unknown".
                    Outcome::Info | Outcome::Ok => Completion::info(op.value.clone(), &target, e),
                }
            }
            Ok(r) => match self.dialect.ok_value(op, &r) {
                Some(v) => Completion::ok(v, &target),
                None => unknown_unless_read(op, &target, true, format!("unexpected reply {r:?}")),
            },
        }
    }

    async fn close(&mut self) {
        self.conns.clear();
    }
}
