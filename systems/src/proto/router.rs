//! A RESP client that follows the leader, shared by leaderkv's built-in client and by systems
//! described in a file (`--system-file`, protocol `resp`). What differs between systems is a
//! [`RespDialect`]: the command for an op, the value of a successful reply, and what an error
//! reply means (outcome, and where to send the next op). Which node a routed op goes to is a
//! [`Router`], shared with the file systems' `postgres` and `http` clients.
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
use crate::proto::tls::Access;
use async_trait::async_trait;
use history::Value;
use workloads::{Client, Completion, Invocation, Outcome, ReadFrom};

use crate::{RoleInfo, unknown_unless_read};

/// One command's words.
type Argv = Vec<Vec<u8>>;

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

/// The value of an `ok` completion for the workloads' ops, as Redis-like stores answer them:
/// `add` any integer; the set `read` an array of integers; `incr` an integer; the register
/// `read` a bulk string (nil: no value); `write`/`cas` `+OK`; `leader` what `role` makes of it.
pub fn ok_value(
    op: &Invocation,
    r: &Reply,
    role: impl Fn(&Reply) -> Option<RoleInfo>,
) -> Option<Value> {
    match (op.f, op.key.is_some(), r) {
        (vocab::ADD, _, Reply::Int(_)) => Some(op.value.clone()),
        (vocab::READ, false, Reply::Array(items)) => {
            let mut out = Vec::new();
            for it in items.as_deref().unwrap_or_default() {
                out.push(Value::Int(it.as_int()?));
            }
            Some(Value::List(out))
        }
        (vocab::INCR | vocab::GENERATE | vocab::INSERT, _, Reply::Int(i)) => Some(Value::Int(*i)),
        (vocab::READ, true, Reply::Bulk(None)) => Some(Value::Nil),
        (vocab::READ, true, Reply::Bulk(Some(b))) => {
            let s = std::str::from_utf8(b).ok()?;
            Some(
                s.parse::<i64>()
                    .map(Value::Int)
                    .unwrap_or_else(|_| Value::str(s)),
            )
        }
        (vocab::WRITE | vocab::CAS, _, Reply::Simple(s)) if s == "OK" => Some(op.value.clone()),
        (vocab::TXN, _, Reply::Array(Some(items))) if op.mops().count() > 1 => {
            txn_replies(op, items)
        }
        (vocab::TXN, _, Reply::Int(_)) if !op.is_read() => Some(op.value.clone()),
        (vocab::TXN, _, Reply::Array(items)) if op.is_read() => {
            let mut out = Vec::new();
            for it in items.as_deref().unwrap_or_default() {
                out.push(Value::Int(it.as_int()?));
            }
            txn_read(op, out)
        }
        (vocab::LEADER, _, r) => Some(role_value(&role(r)?)),
        _ => None,
    }
}

/// The completion value of a transaction of several micro-ops from its commit's replies, one
/// per micro-op: an append's any integer, a read's array of integers. `None` when they do not
/// match (an error among them: the transaction may have partly happened).
fn txn_replies(op: &Invocation, items: &[Reply]) -> Option<Value> {
    if items.len() != op.mops().count() {
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for ((f, k, v), r) in op.mops().zip(items) {
        let v = match (f, r) {
            (vocab::APPEND, Reply::Int(_)) => v.clone(),
            ("r", Reply::Array(list)) => {
                let mut l = Vec::new();
                for it in list.as_deref().unwrap_or_default() {
                    l.push(Value::Int(it.as_int()?));
                }
                Value::List(l)
            }
            _ => return None,
        };
        out.push(Value::List(vec![Value::str(f), k.clone(), v]));
    }
    Some(Value::List(out))
}

/// The completion value of a single-read `txn` that read `list`: `[[r k list]]`.
pub fn txn_read(op: &Invocation, list: Vec<Value>) -> Option<Value> {
    let (f, k, _) = crate::file::client::txn_mop(op)?;
    Some(Value::List(vec![Value::List(vec![
        Value::str(f),
        k.clone(),
        Value::List(list),
    ])]))
}

/// The value of a `leader` probe's `ok` completion.
pub fn role_value(role: &RoleInfo) -> Value {
    let mut m = vec![
        (Value::str("role"), Value::str(&role.role)),
        (
            Value::str("term"),
            role.term.map(Value::Int).unwrap_or(Value::Nil),
        ),
        (
            Value::str("leader"),
            role.leader.as_deref().map(Value::str).unwrap_or(Value::Nil),
        ),
    ];
    // The replication indices, when the system reports them: the convergence checker reads
    // whether a follower catches up after the faults.
    for (k, v) in [("applied", role.applied), ("committed", role.committed)] {
        if let Some(v) = v {
            m.push((Value::str(k), Value::Int(v)));
        }
    }
    Value::Map(m)
}

/// Where a router sends ops that name no node.
#[derive(Clone, Debug, Default)]
pub enum Route {
    /// The node the client settled on, moved by redirects and connection failures.
    #[default]
    Redirects,
    /// The node the leader probe sees lead; none known: the op is not sent (it fails as
    /// [`NO_LEADER`]). Never a follower, so a follower's stale read is never taken for the
    /// leader's.
    Leader(nemesis::LeaderView),
    /// Any node but the one the probe sees lead (reads from replicas, said explicitly).
    Followers(nemesis::LeaderView),
}

/// The error of an op a `leader` route did not send: no leader known.
pub const NO_LEADER: &str = "no leader known: not sent";

/// Where a client's ops go: the node an op names, else as its [`Route`] says.
pub struct Router {
    order: Vec<String>,
    addrs: HashMap<String, String>,
    current: usize,
    route: Route,
    /// Where reads that name no node go, and who leads (`leader`: where they go;
    /// `followers`: whom they avoid); without a view, reads go where writes go.
    reads: ReadFrom,
    read_view: Option<nemesis::LeaderView>,
    /// The node after the last read's, in `order`: reads go round the nodes.
    read_next: usize,
}

impl Router {
    /// A router over the nodes `addrs` (name, `host:port`), in that order, starting at the
    /// first.
    pub fn new(addrs: Vec<(String, String)>) -> Self {
        Router {
            order: addrs.iter().map(|(n, _)| n.clone()).collect(),
            addrs: addrs.into_iter().collect(),
            current: 0,
            route: Route::Redirects,
            reads: ReadFrom::Leader,
            read_view: None,
            read_next: 0,
        }
    }

    /// Sends reads that name no node as `reads` says, `view` saying who leads. `leader`: only
    /// to the node the probe sees lead, whatever the route of writes (a node that settled a
    /// client after a failover may be a follower answering stale reads; none known: the read
    /// is not sent); `followers`: round the others; `any`: round every node.
    pub fn reads(&mut self, reads: ReadFrom, view: nemesis::LeaderView) {
        self.reads = reads;
        self.read_view = Some(view);
    }

    /// Whether `op` goes where reads go rather than where writes go.
    pub fn routes_read(&self, op: &Invocation) -> bool {
        op.node.is_none() && self.read_view.is_some() && op.is_read()
    }

    /// The node a read goes to.
    fn read_target(&mut self) -> Option<String> {
        let view = self.read_view.as_ref()?;
        let leader = view.leader();
        if self.reads == ReadFrom::Leader {
            return leader.filter(|l| self.addrs.contains_key(l));
        }
        let n = self.order.len();
        for i in 0..n {
            let at = (self.read_next + i) % n;
            let node = &self.order[at];
            if self.reads == ReadFrom::Followers && Some(node) == leader.as_ref() {
                continue;
            }
            self.read_next = at + 1;
            return Some(node.clone());
        }
        None
    }

    /// Routes ops that name no node as `route` says.
    pub fn route(&mut self, route: Route) {
        self.route = route;
    }

    /// The next node.
    pub fn rotate(&mut self) {
        if !self.order.is_empty() {
            self.current = (self.current + 1) % self.order.len();
        }
    }

    /// Settles on `node`; false (and no move) when it is none of the nodes.
    pub fn go_to(&mut self, node: &str) -> bool {
        match self.order.iter().position(|n| n == node) {
            Some(i) => {
                self.current = i;
                true
            }
            None => false,
        }
    }

    /// Settles on `node`, or the next node when it is none of the nodes.
    pub fn follow(&mut self, node: &str) {
        if !self.go_to(node) {
            self.rotate();
        }
    }

    /// The node `op` goes to: its own node, else as the route says; `None` when the route
    /// names none (`leader` with no leader known, `followers` with no follower).
    pub fn target(&mut self, op: &Invocation) -> Option<String> {
        if let Some(n) = &op.node {
            return Some(n.clone());
        }
        if self.routes_read(op) {
            return self.read_target();
        }
        match &self.route {
            Route::Redirects => self.order.get(self.current).cloned(),
            Route::Leader(view) => view.leader().filter(|l| self.addrs.contains_key(l)),
            Route::Followers(view) => {
                let leader = view.leader();
                for _ in 0..self.order.len() {
                    let n = &self.order[self.current];
                    if Some(n) != leader.as_ref() {
                        return Some(n.clone());
                    }
                    self.rotate();
                }
                None
            }
        }
    }

    /// The address of `node`.
    pub fn addr(&self, node: &str) -> Option<String> {
        self.addrs.get(node).cloned()
    }

    /// Moves after an error answer `err` to a routed op as `redirect` says (`Follow`: to the
    /// node its second word names).
    pub fn redirect(&mut self, redirect: Redirect, err: &str) {
        match redirect {
            Redirect::Stay => {}
            Redirect::Next => self.rotate(),
            Redirect::Follow => match err.split_whitespace().nth(1) {
                Some(l) => self.follow(l),
                None => self.rotate(),
            },
        }
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
            return Err("this system runs transactions of one micro-op only (its file has no [client.transactions])".into());
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
        // A read sent where reads go does not move where writes go.
        let routed = op.node.is_none() && !self.router.routes_read(op);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(
            ["n1", "n2", "n3"]
                .iter()
                .map(|n| (n.to_string(), format!("{n}:7000")))
                .collect(),
        )
    }

    #[test]
    fn routed_ops_follow_redirects() {
        let mut r = router();
        let routed = Invocation::new("write", Value::Int(1));
        let at = |r: &mut Router, op: &Invocation| r.target(op).unwrap();
        assert_eq!(at(&mut r, &routed), "n1");
        r.redirect(Redirect::Follow, "MOVED n3 10.0.0.13:7000");
        assert_eq!(at(&mut r, &routed), "n3");
        r.redirect(Redirect::Next, "NOLEADER");
        assert_eq!(at(&mut r, &routed), "n1");
        // A `Follow` naming no node, or an unknown one, moves to the next node.
        r.redirect(Redirect::Follow, "MOVED");
        assert_eq!(at(&mut r, &routed), "n2");
        r.redirect(Redirect::Follow, "MOVED n9 x");
        assert_eq!(at(&mut r, &routed), "n3");
        r.redirect(Redirect::Stay, "CASMISMATCH x");
        assert_eq!(at(&mut r, &routed), "n3");
        assert_eq!(r.addr("n3").as_deref(), Some("n3:7000"));
        assert_eq!(r.addr("n9"), None);
    }

    #[test]
    fn a_leader_route_never_reaches_a_follower() {
        let mut r = router();
        let view = nemesis::LeaderView::default();
        r.route(Route::Leader(view.clone()));
        let routed = Invocation::new("read", Value::Nil);
        // No leader known: not sent, wherever the router settled before.
        assert_eq!(r.target(&routed), None);
        view.set("n2", Some(("leader".into(), Some(1))));
        view.set("n1", Some(("follower".into(), Some(1))));
        assert_eq!(r.target(&routed).as_deref(), Some("n2"));
        // Redirects and connection failures do not move a leader route.
        r.redirect(Redirect::Next, "NOLEADER");
        r.rotate();
        assert_eq!(r.target(&routed).as_deref(), Some("n2"));
        // The leader stops answering: nowhere to go, never its follower n1.
        view.set("n2", None);
        assert_eq!(r.target(&routed), None);
        // A newer term wins over a stale claim.
        view.set("n2", Some(("leader".into(), Some(1))));
        view.set("n3", Some(("leader".into(), Some(2))));
        assert_eq!(r.target(&routed).as_deref(), Some("n3"));
        // An op aimed at a node still goes there.
        let aimed = Invocation::new("read", Value::Nil).on("n1");
        assert_eq!(r.target(&aimed).as_deref(), Some("n1"));
    }

    #[test]
    fn a_followers_route_skips_the_leader() {
        let mut r = router();
        let view = nemesis::LeaderView::default();
        view.assume("n1");
        r.route(Route::Followers(view.clone()));
        let routed = Invocation::new("read", Value::Nil);
        assert_eq!(r.target(&routed).as_deref(), Some("n2"));
        r.rotate();
        assert_eq!(r.target(&routed).as_deref(), Some("n3"));
        r.rotate();
        assert_eq!(
            r.target(&routed).as_deref(),
            Some("n2"),
            "n1 leads: skipped"
        );
    }

    #[test]
    fn reads_go_where_read_from_says_and_never_move_writes() {
        let view = nemesis::LeaderView::default();
        view.assume("n2");
        let read = Invocation::new(
            "txn",
            Value::List(vec![Value::List(vec![
                Value::str("r"),
                Value::Int(0),
                Value::Nil,
            ])]),
        );
        let write = Invocation::new(
            "txn",
            Value::List(vec![Value::List(vec![
                Value::str("append"),
                Value::Int(0),
                Value::Int(1),
            ])]),
        );
        // Leader: reads only to the probe's leader, writes where the client settled.
        let mut r = router();
        r.reads(ReadFrom::Leader, view.clone());
        assert!(r.routes_read(&read) && !r.routes_read(&write));
        assert_eq!(r.target(&read).as_deref(), Some("n2"));
        assert_eq!(r.target(&write).as_deref(), Some("n1"));
        // Followers: round the others, in turn.
        let mut r = router();
        r.reads(ReadFrom::Followers, view.clone());
        let seen: Vec<String> = (0..4).map(|_| r.target(&read).unwrap()).collect();
        assert_eq!(seen, ["n1", "n3", "n1", "n3"]);
        assert_eq!(r.target(&write).as_deref(), Some("n1"));
        // Any: every node in turn.
        let mut r = router();
        r.reads(ReadFrom::Any, view.clone());
        let seen: Vec<String> = (0..3).map(|_| r.target(&read).unwrap()).collect();
        assert_eq!(seen, ["n1", "n2", "n3"]);
        // No view given: reads go where writes go.
        let mut r = router();
        assert!(!r.routes_read(&read));
        assert_eq!(r.target(&read).as_deref(), Some("n1"));
        // An aimed read goes to its node.
        let mut r = router();
        r.reads(ReadFrom::Leader, view);
        assert_eq!(r.target(&read.clone().on("n3")).as_deref(), Some("n3"));
    }
}
