//! The `postgres` and `http` clients of a system file: each op's SQL or request from
//! `[client.ops]`, its answer read into the op's value, and every error mapped to an outcome.
//!
//! Outcomes, in order:
//! - no connection, or the request was never written: `fail` (nothing reached the server);
//! - the exchange broke after the request was written (reset, timeout, a dropped
//!   connection): `info` for anything that writes, `fail` for reads (they change nothing);
//! - the server answered an error (a PostgreSQL error response, a non-2xx HTTP status): the
//!   file's `[[client.outcome]]` rules, `info` when none matches;
//! - a success whose `require` pointer is not `true` (or a `cas` statement that changed no
//!   row): `fail`, the system said it did not do it;
//! - a success that makes no sense for the op: `fail` for reads, `info` otherwise.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use history::{Value, vocab};
use serde_json::Value as Json;
use workloads::{Client, Completion, Invocation, Outcome};

use super::client::{FileDialect, OpVars, RoleParser, classify};
use super::ops::{HttpTemplate, OpTemplate, select};
use super::spec::{Loaded, Rule, expand};
use crate::proto::error::WireError;
use crate::proto::http::{HttpClient, Response, unb64};
use crate::proto::pgwire::PgConn;
use crate::proto::router::{NO_LEADER, Redirect, Route, Router, role_value};
use crate::proto::tls::Access;
use crate::{RoleInfo, unknown_unless_read};

/// What a system file's `postgres` or `http` client says and how it reads answers.
pub struct WireDialect {
    ops: BTreeMap<&'static str, OpTemplate>,
    rules: Vec<Rule>,
    sets: BTreeMap<String, String>,
    role: RoleParser,
    leader_sql: Option<String>,
    leader_http: Option<HttpTemplate>,
    /// `[leader] confirm`: a claim counts only when the claimant serves this read.
    confirm: bool,
    fields: Vec<String>,
    user: String,
    database: String,
    /// TLS and credentials.
    access: Arc<Access>,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Sql(String),
    Http {
        method: String,
        path: String,
        body: Option<Vec<u8>>,
    },
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The last statement's rows and command tag.
    Rows(Vec<Vec<Option<String>>>, String),
    /// A 2xx answer's body as JSON.
    Json(Json),
}

impl WireDialect {
    pub fn new(loaded: &Loaded, role: RoleParser) -> Self {
        let s = &loaded.spec;
        WireDialect {
            ops: loaded.ops.clone(),
            rules: s.client.outcome.clone(),
            sets: loaded.sets.clone(),
            role,
            leader_sql: s.leader.sql.clone(),
            leader_http: loaded.leader_http.clone(),
            confirm: s.leader.confirm.is_some(),
            fields: s.leader.fields.clone(),
            user: s.client.user.clone().unwrap_or_else(|| "postgres".into()),
            database: s
                .client
                .database
                .clone()
                .unwrap_or_else(|| "postgres".into()),
            access: Arc::new(Access::plain()),
        }
    }

    /// Reaches the nodes with `access`'s TLS and credentials.
    pub fn with_access(mut self, access: Arc<Access>) -> Self {
        self.access = access;
        self
    }

    /// An HTTP client (its own pool) whose connects give up after `timeout`.
    pub fn http_client(&self, timeout: Duration) -> Result<HttpClient, WireError> {
        HttpClient::new(&self.access, timeout).map_err(WireError::not_sent)
    }

    /// The request of an invocation (`leader`: the leader call), or why it cannot be sent.
    pub fn request(&self, op: &Invocation) -> Result<Request, String> {
        let name = FileDialect::op_name(op);
        if name == "leader" {
            let common = |tpl: &str| {
                expand(tpl, &|n: &str| {
                    n.strip_prefix("set.")
                        .and_then(|k| self.sets.get(k).cloned())
                        .or_else(|| n.strip_prefix("env.").and_then(|v| std::env::var(v).ok()))
                })
            };
            return match (&self.leader_sql, &self.leader_http) {
                (Some(q), _) => Ok(Request::Sql(common(q)?)),
                (None, Some(h)) => http_request(h, &common),
                (None, None) => Err("the system file has no leader call".into()),
            };
        }
        let tpl = self
            .ops
            .get(name)
            .ok_or_else(|| format!("the system file defines no client.ops.{name}"))?;
        let vars = OpVars::new(op, name, &self.sets)?;
        match tpl {
            OpTemplate::Sql(q) => Ok(Request::Sql(vars.expand(q)?)),
            OpTemplate::Http(h) => http_request(h, &|t| vars.expand(t)),
            OpTemplate::Argv(_) => Err("a RESP command in a non-RESP client".into()),
        }
    }

    /// The value of a successful answer: `Err(Some(why))` when the answer says the op did not
    /// happen, `Err(None)` when it makes no sense for the op.
    pub fn ok_value(&self, op: &Invocation, a: &Answer) -> Result<Value, Option<String>> {
        let name = FileDialect::op_name(op);
        match a {
            Answer::Rows(rows, tag) => rows_value(op, name, rows, tag),
            Answer::Json(j) => {
                let Some(OpTemplate::Http(h)) = self.ops.get(name) else {
                    return Err(None);
                };
                json_value(op, name, h, j)
            }
        }
    }

    /// The outcome of an error answer and where a routed client goes next.
    pub fn on_error(
        &self,
        op: &Invocation,
        text: &str,
        status: Option<u16>,
    ) -> (Outcome, Redirect) {
        classify(&self.rules, FileDialect::op_name(op), text, status)
    }

    /// The role of `node` from its answer to the leader call.
    pub fn role(&self, node: &str, a: &Answer) -> Option<RoleInfo> {
        let fields: Vec<Option<String>> = match a {
            Answer::Rows(rows, _) => rows.first()?.clone(),
            Answer::Json(j) => self
                .fields
                .iter()
                .map(|p| select(j, p).first().and_then(|v| field_text(v)))
                .collect(),
        };
        self.role.parse_fields(Some(node), &fields)
    }

    /// Sends `req` to `addr`, over `conn` (postgres: opened when `None`, dropped when broken).
    pub async fn exchange(
        &self,
        conn: &mut Link,
        addr: &str,
        req: &Request,
        timeout: Duration,
    ) -> Result<Answer, WireError> {
        match req {
            Request::Sql(q) => {
                let pg = &mut conn.pg;
                if pg.is_none() {
                    let c =
                        PgConn::connect_as(addr, &self.user, &self.database, &self.access, timeout)
                            .await;
                    *pg = Some(c?);
                }
                let c = pg.as_mut().expect("connected above");
                match c.query_tagged(q, timeout).await {
                    Ok((rows, tag)) => Ok(Answer::Rows(rows, tag)),
                    Err(e) => {
                        if e.broken {
                            *pg = None;
                        }
                        Err(e)
                    }
                }
            }
            Request::Http { method, path, body } => {
                if conn.http.is_none() {
                    conn.http = Some(self.http_client(timeout)?);
                }
                let http = conn.http.as_ref().expect("made above");
                let r = http
                    .request(method, addr, path, body.as_deref(), timeout)
                    .await?;
                if (200..300).contains(&r.status) {
                    Ok(Answer::Json(r.json()))
                } else {
                    Err(WireError::answered(None, error_text(&r), false).with_status(r.status))
                }
            }
        }
    }

    /// Asks `node` (at `addr`) who leads, on a connection of its own.
    pub async fn probe(
        &self,
        node: &str,
        addr: &str,
        timeout: Duration,
    ) -> Result<RoleInfo, String> {
        self.probe_on(&mut Link::default(), node, addr, timeout)
            .await
    }

    /// Asks `node` (at `addr`) who leads, over `conn` (postgres: opened when `None`), with
    /// the `confirm` read when the file asks for one.
    pub async fn probe_on(
        &self,
        conn: &mut Link,
        node: &str,
        addr: &str,
        timeout: Duration,
    ) -> Result<RoleInfo, String> {
        let req = self.request(&Invocation::new("leader", Value::Nil))?;
        let a = self
            .exchange(conn, addr, &req, timeout)
            .await
            .map_err(|f| failure_text(&f))?;
        let mut first = self
            .role(node, &a)
            .ok_or_else(|| format!("bad leader answer from {node}: {a:?}"))?;
        if self.confirm && first.role == "leader" {
            // The claim, the read, the claim again: the node led (in that term) while a
            // quorum answered it. A failed read or a changed claim proves nothing.
            let read = self.request(&Invocation::new("read", Value::Nil))?;
            let confirmed = self.exchange(conn, addr, &read, timeout).await.is_ok()
                && match self.exchange(conn, addr, &req, timeout).await {
                    Ok(a) => self
                        .role(node, &a)
                        .is_some_and(|again| again.role == "leader" && again.term == first.term),
                    Err(_) => false,
                };
            if !confirmed {
                first.role = "unconfirmed-leader".into();
            }
        }
        Ok(first)
    }
}

/// A client's way to one node: its PostgreSQL connection (opened when needed, dropped when
/// broken), or the HTTP pool (shared by every node of the client).
#[derive(Default)]
pub struct Link {
    pg: Option<PgConn>,
    http: Option<HttpClient>,
}

fn http_request(
    h: &HttpTemplate,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Request, String> {
    let (method, path, body) = h.render(expand)?;
    Ok(Request::Http { method, path, body })
}

fn failure_text(f: &WireError) -> String {
    match f.status {
        Some(s) => format!("HTTP {s}: {}", f.msg),
        None => f.msg.clone(),
    }
}

/// The text `error_prefix` matches in an HTTP error answer: the JSON body's `error` or
/// `message` string, else the body's text.
pub fn error_text(r: &Response) -> String {
    let j = r.json();
    for k in ["error", "message"] {
        if let Some(s) = j.get(k).and_then(Json::as_str) {
            return s.to_owned();
        }
    }
    let text = String::from_utf8_lossy(&r.body);
    text.trim().chars().take(300).collect()
}

/// A JSON leaf as a field's text (`null`, arrays and objects: none).
fn field_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A text the system returned as the op's value: an integer when it reads as one.
fn scalar(s: &str) -> Value {
    s.parse::<i64>()
        .map(Value::Int)
        .unwrap_or_else(|_| Value::str(s))
}

fn rows_value(
    op: &Invocation,
    name: &str,
    rows: &[Vec<Option<String>>],
    tag: &str,
) -> Result<Value, Option<String>> {
    let first = || {
        rows.first()
            .and_then(|r| r.first())
            .and_then(|c| c.as_deref())
    };
    match name {
        "add" | "write" => Ok(op.value.clone()),
        "cas" => {
            // A compare-and-set statement says it happened by a row (RETURNING) or by its
            // tag's count (`UPDATE 1`); `UPDATE 0` means the comparison failed.
            let count = tag.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok());
            if !rows.is_empty() || count.is_some_and(|n| n > 0) {
                Ok(op.value.clone())
            } else {
                Err(Some(format!("cas changed no row ({tag})")))
            }
        }
        "read_set" => rows
            .iter()
            .map(|r| {
                r.first()
                    .and_then(|c| c.as_deref())
                    .and_then(|c| c.parse().ok())
                    .map(Value::Int)
            })
            .collect::<Option<Vec<_>>>()
            .map(Value::List)
            .ok_or(None),
        "incr" => first()
            .and_then(|c| c.parse().ok())
            .map(Value::Int)
            .ok_or(None),
        "read" => Ok(first().map(scalar).unwrap_or(Value::Nil)),
        "append" => Ok(op.value.clone()),
        // Rows of key and hash, or one cell: the whole state's hash.
        "digest" => match rows.first().map(Vec::len) {
            Some(1) if rows.len() == 1 => Ok(crate::proto::values::whole_digest(
                first().unwrap_or_default().to_owned(),
            )),
            _ => rows
                .iter()
                .flat_map(|r| [r.first(), r.get(1)])
                .map(|c| c.and_then(|c| c.clone()))
                .collect::<Option<Vec<String>>>()
                .and_then(crate::proto::values::digest_pairs)
                .ok_or(None),
        },
        // One row holding an array (`{1,2,3}`), or a row per element, in list order.
        "read_list" => {
            let ints = |cells: &mut dyn Iterator<Item = Option<&str>>| {
                cells
                    .map(|c| c.and_then(|c| c.trim().parse().ok()).map(Value::Int))
                    .collect::<Option<Vec<_>>>()
            };
            let list = match first() {
                Some(a) if rows.len() == 1 && a.starts_with('{') => {
                    let inner = a.trim_start_matches('{').trim_end_matches('}');
                    ints(&mut inner.split(',').filter(|c| !c.is_empty()).map(Some))
                }
                _ => ints(&mut rows.iter().map(|r| r.first().and_then(|c| c.as_deref()))),
            };
            list.and_then(|l| crate::proto::router::txn_read(op, l))
                .ok_or(None)
        }
        _ => Err(None),
    }
}

fn json_value(
    op: &Invocation,
    name: &str,
    h: &HttpTemplate,
    j: &Json,
) -> Result<Value, Option<String>> {
    if let Some(p) = &h.require {
        if select(j, p).first() != Some(&&Json::Bool(true)) {
            return Err(Some(format!("{p} is not true in {j}")));
        }
    }
    let found = h
        .result
        .as_deref()
        .map(|p| select(j, p))
        .unwrap_or_default();
    let leaf = |v: &Json| -> Option<Value> {
        match v {
            Json::Null => Some(Value::Nil),
            Json::Number(n) => n.as_i64().map(Value::Int),
            Json::String(s) if h.base64 => String::from_utf8(unb64(s)?).ok().map(|s| scalar(&s)),
            Json::String(s) => Some(scalar(s)),
            _ => None,
        }
    };
    // Every value found, each an integer (else the answer makes no sense for the op).
    let ints = || -> Result<Vec<Value>, Option<String>> {
        found
            .iter()
            .map(|v| match leaf(v) {
                Some(Value::Int(i)) => Ok(Value::Int(i)),
                _ => Err(None),
            })
            .collect()
    };
    match name {
        "add" | "write" | "cas" | "append" => Ok(op.value.clone()),
        "read_list" => crate::proto::router::txn_read(op, ints()?).ok_or(None),
        "read_set" => {
            let mut out = ints()?;
            out.sort_by_key(|v| v.as_int());
            Ok(Value::List(out))
        }
        "incr" => match found.first().and_then(|v| leaf(v)) {
            Some(Value::Int(i)) => Ok(Value::Int(i)),
            _ => Err(None),
        },
        "read" => match found.first() {
            None => Ok(Value::Nil),
            Some(v) => leaf(v).ok_or(None),
        },
        // The value at `result`: one fingerprint of the node's whole state.
        "digest" => match found.as_slice() {
            [v] => field_text(v)
                .map(crate::proto::values::whole_digest)
                .ok_or(None),
            _ => Err(None),
        },
        _ => Err(None),
    }
}

/// A `postgres` or `http` client that follows the leader like the RESP one: error answers
/// redirect it as the rules say, failed exchanges move it to the next node; `route` may send
/// routed ops only to the leader the probe sees, or only to followers.
pub struct WireClient {
    dialect: Arc<WireDialect>,
    router: Router,
    conns: HashMap<String, Link>,
    timeout: Duration,
}

impl WireClient {
    /// A client of the nodes `addrs` (name, `host:port`), in that order.
    pub fn new(dialect: Arc<WireDialect>, addrs: Vec<(String, String)>, timeout: Duration) -> Self {
        WireClient {
            dialect,
            router: Router::new(addrs),
            conns: HashMap::new(),
            timeout,
        }
    }

    /// Routes ops that name no node as `route` says.
    pub fn route(mut self, route: Route) -> Self {
        self.router.route(route);
        self
    }

    /// Sends reads that name no node as `reads` says.
    pub fn reads(mut self, reads: workloads::ReadFrom, view: nemesis::LeaderView) -> Self {
        self.router.reads(reads, view);
        self
    }
}

impl WireClient {
    /// The leader probe of `target`: the same question, and the same `confirm` read, as the
    /// readiness and convergence waits ask (a claim the file says to confirm is recorded as
    /// `unconfirmed-leader` until confirmed).
    async fn probe(&mut self, op: &Invocation, target: &str) -> Completion {
        let Some(addr) = self.router.addr(target) else {
            return Completion::fail(op.value.clone(), target, "unknown node");
        };
        let link = self.conns.entry(target.to_owned()).or_default();
        let role = self
            .dialect
            .probe_on(link, target, &addr, self.timeout)
            .await;
        match role {
            Ok(r) => Completion::ok(role_value(&r), target),
            Err(e) => Completion::fail(op.value.clone(), target, e),
        }
    }
}

#[async_trait]
impl Client for WireClient {
    async fn open(&mut self, node: &str) {
        self.router.go_to(node);
    }

    async fn invoke(&mut self, op: &Invocation) -> Completion {
        let routed = self.router.moves_with(op);
        let Some(target) = self.router.target(op) else {
            return Completion::unsent(op.value.clone(), NO_LEADER);
        };
        if op.f == vocab::LEADER {
            return self.probe(op, &target).await;
        }
        let req = match self.dialect.request(op) {
            Ok(r) => r,
            Err(e) => return Completion::fail(op.value.clone(), &target, e),
        };
        let Some(addr) = self.router.addr(&target) else {
            return Completion::fail(op.value.clone(), &target, "unknown node");
        };
        let link = self.conns.entry(target.clone()).or_default();
        let answer = self.dialect.exchange(link, &addr, &req, self.timeout).await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) if !e.is_answer() => {
                self.conns.remove(&target);
                if routed {
                    self.router.rotate();
                }
                return unknown_unless_read(op, &target, e.sent(), e.msg);
            }
            Err(e) => {
                let (outcome, redirect) = self.dialect.on_error(op, &e.msg, e.status);
                if routed {
                    self.router.redirect(redirect, &e.msg);
                }
                let text = failure_text(&e);
                return match outcome {
                    Outcome::Fail => Completion::fail(op.value.clone(), &target, text),
                    Outcome::Info | Outcome::Ok => {
                        Completion::info(op.value.clone(), &target, text)
                    }
                };
            }
        };
        match self.dialect.ok_value(op, &answer) {
            Ok(v) => Completion::ok(v, &target),
            Err(Some(why)) => Completion::fail(op.value.clone(), &target, why),
            Err(None) => {
                unknown_unless_read(op, &target, true, format!("unexpected answer {answer:?}"))
            }
        }
    }

    async fn close(&mut self) {
        self.conns.clear();
    }
}
