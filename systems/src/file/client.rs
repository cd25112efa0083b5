//! The RESP dialect of a system file: op commands from `[client.ops]`, error replies mapped by
//! `[[client.outcome]]` rules (first match wins, unmatched errors `info`), and the leader call
//! of `[leader]` read by element index.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::proto::resp::Reply;
use history::Value;
use workloads::{Invocation, Outcome};

use super::ops::OpTemplate;
use super::spec::{Leader, Loaded, Rule, expand};
use crate::RoleInfo;
use crate::proto::router::{self, Redirect, RespDialect};

/// How to read a node's answer to the leader call.
#[derive(Debug, Clone)]
pub struct RoleParser {
    pub leader: Leader,
    /// Node names with their IPs and `IP:PORT`s (to resolve who a node says leads).
    pub nodes: Vec<(String, String, u16)>,
    /// Ids the nodes gave for themselves (`id_index`) -> node name.
    pub ids: Arc<Mutex<BTreeMap<String, String>>>,
}

impl RoleParser {
    pub fn new(leader: Leader, nodes: Vec<(String, String, u16)>) -> Self {
        RoleParser {
            leader,
            nodes,
            ids: Arc::default(),
        }
    }

    /// The role of `node` from its reply to the leader call (an array).
    pub fn parse(&self, node: Option<&str>, r: &Reply) -> Option<RoleInfo> {
        let Reply::Array(Some(items)) = r else {
            return None;
        };
        let fields: Vec<Option<String>> = items
            .iter()
            .map(|it| {
                it.as_str()
                    .map(str::to_owned)
                    .or_else(|| it.as_int().map(|i| i.to_string()))
            })
            .collect();
        self.parse_fields(node, &fields)
    }

    /// The role of `node` from the output of the leader command: fields split on whitespace,
    /// or one per line with `split = "lines"`.
    pub fn parse_output(&self, node: Option<&str>, out: &str) -> Option<RoleInfo> {
        let fields: Vec<Option<String>> = if self.leader.split.as_deref() == Some("lines") {
            out.lines().map(|l| Some(l.trim().to_owned())).collect()
        } else {
            out.split_whitespace().map(|f| Some(f.to_owned())).collect()
        };
        self.parse_fields(node, &fields)
    }

    /// The role from the answer's fields (by the `[leader]` indices).
    pub fn parse_fields(&self, node: Option<&str>, items: &[Option<String>]) -> Option<RoleInfo> {
        let l = &self.leader;
        let get = |i: Option<usize>| i.and_then(|i| items.get(i)).and_then(|f| f.as_deref());
        let raw = get(Some(l.role_index))?;
        let own = get(l.id_index).filter(|s| !s.is_empty());
        if let (Some(id), Some(n)) = (own, node) {
            self.ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_owned(), n.to_owned());
        }
        let self_led = own.is_some() && get(l.leader_index) == own;
        let role = if self_led || l.leader_values.iter().any(|v| v == raw) {
            "leader"
        } else if l.candidate_values.iter().any(|v| v == raw) {
            "candidate"
        } else {
            "follower"
        };
        // A number names no node (Redis's primary answers its replication offset there),
        // unless the nodes are named so; with ids, only a known id names a node.
        let named = get(l.leader_index)
            .filter(|s| !s.is_empty())
            .map(|s| (s, self.resolve(s)))
            .filter(|(s, r)| {
                let node = self.nodes.iter().any(|n| n.0 == *r);
                node || (l.id_index.is_none() && s.parse::<i64>().is_err())
            })
            .map(|(_, r)| r);
        let leader = match (named, role) {
            (Some(n), _) => Some(n),
            (None, "leader") => node.map(str::to_owned),
            (None, _) => None,
        };
        let int = |i: Option<usize>| get(i).and_then(|s| s.parse::<i64>().ok());
        Some(RoleInfo {
            role: role.to_owned(),
            term: int(l.term_index),
            leader,
            applied: int(l.applied_index),
            committed: int(l.committed_index),
        })
    }

    /// A node name for a name, IP or `IP:PORT` (as given when it matches no node).
    fn resolve(&self, s: &str) -> String {
        for (name, ip, port) in &self.nodes {
            if s == name || s == ip || s == format!("{ip}:{port}") {
                return name.clone();
            }
        }
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.get(s).cloned().unwrap_or_else(|| s.to_owned())
    }
}

/// The dialect of a system file's `resp` client.
pub struct FileDialect {
    ops: BTreeMap<&'static str, Vec<String>>,
    session: Option<Vec<String>>,
    transaction: Option<(Vec<String>, Vec<String>)>,
    leader_call: Vec<String>,
    rules: Vec<Rule>,
    sets: BTreeMap<String, String>,
    role: RoleParser,
}

impl FileDialect {
    pub fn new(loaded: &Loaded, role: RoleParser) -> Self {
        let mut ops = BTreeMap::new();
        for (name, _, _) in super::spec::OPS {
            if let Some(OpTemplate::Argv(argv)) = loaded.op(name) {
                ops.insert(*name, argv.clone());
            }
        }
        FileDialect {
            ops,
            session: loaded.spec.client.session.as_ref().map(|s| s.wrap.clone()),
            transaction: (loaded.spec.client.transactions.as_ref())
                .map(|t| (t.begin.clone(), t.commit.clone())),
            leader_call: loaded.spec.leader.resp.clone(),
            rules: loaded.spec.client.outcome.clone(),
            sets: loaded.sets.clone(),
            role,
        }
    }

    /// The `[client.ops]` name of an invocation.
    pub fn op_name(op: &Invocation) -> &'static str {
        match (op.f, op.key.is_some()) {
            ("read", false) => "read_set",
            ("read", true) => "read",
            ("incr" | "generate" | "insert", _) => "incr",
            ("add", _) => "add",
            ("write", _) => "write",
            ("cas", _) => "cas",
            ("leader", _) => "leader",
            ("digest", _) => "digest",
            ("txn", _) => match op.single_mop() {
                Some(("append", _, _)) => "append",
                Some(("r", _, _)) => "read_list",
                _ => "",
            },
            _ => "",
        }
    }
}

/// The placeholders of one invocation's template: `{key}`, `{value}` or `{old}`/`{new}`,
/// each also base64-encoded as `{NAME_b64}`, and `{set.KEY}`, `{env.VAR}`.
pub struct OpVars<'a> {
    vars: BTreeMap<String, String>,
    sets: &'a BTreeMap<String, String>,
}

impl<'a> OpVars<'a> {
    pub fn new(
        op: &Invocation,
        name: &str,
        sets: &'a BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut vars = BTreeMap::new();
        if let Some(k) = &op.key {
            vars.insert("key", text(k));
        }
        if op.f == history::vocab::TXN {
            let (_, k, v) = op.single_mop().ok_or(SINGLE_MOP)?;
            vars.insert("key", text(k));
            vars.insert("value", text(v));
        } else if name == "cas" {
            let pair = op.value.as_list().filter(|l| l.len() == 2);
            let pair = pair.ok_or("cas needs [old new]")?;
            vars.insert("old", text(&pair[0]));
            vars.insert("new", text(&pair[1]));
        } else {
            vars.insert("value", text(&op.value));
        }
        let vars = vars
            .into_iter()
            .flat_map(|(k, v)| {
                let b = crate::proto::http::b64(v.as_bytes());
                [(format!("{k}_b64"), b), (k.to_owned(), v)]
            })
            .collect();
        Ok(OpVars { vars, sets })
    }

    pub fn expand(&self, tpl: &str) -> Result<String, String> {
        expand(tpl, &|n: &str| {
            if let Some(v) = self.vars.get(n) {
                return Some(v.clone());
            }
            if let Some(k) = n.strip_prefix("set.") {
                return self.sets.get(k).cloned();
            }
            n.strip_prefix("env.").and_then(|v| std::env::var(v).ok())
        })
    }
}

/// Why a transaction of several micro-ops cannot go as one op's command.
pub const SINGLE_MOP: &str =
    "this client runs transactions of one micro-op (an append or a read) only";

pub fn text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        v => v.as_int().map(|i| i.to_string()).unwrap_or(v.to_string()),
    }
}

impl RespDialect for FileDialect {
    fn command(&self, op: &Invocation) -> Result<Vec<Vec<u8>>, String> {
        let name = Self::op_name(op);
        if name.is_empty() && op.f == history::vocab::TXN {
            return Err(SINGLE_MOP.into());
        }
        let argv = if name == "leader" {
            &self.leader_call
        } else {
            self.ops
                .get(name)
                .ok_or_else(|| format!("the system file defines no client.ops.{name}"))?
        };
        let vars = OpVars::new(op, name, &self.sets)?;
        argv.iter()
            .map(|a| vars.expand(a).map(String::into_bytes))
            .collect()
    }

    fn ok_value(&self, op: &Invocation, r: &Reply) -> Option<Value> {
        router::ok_value(op, r, |r| self.role.parse(op.node.as_deref(), r))
    }

    fn on_error(&self, op: &Invocation, err: &str) -> (Outcome, Redirect) {
        classify(&self.rules, Self::op_name(op), err, None)
    }

    fn session_wrap(&self) -> Option<&[String]> {
        self.session.as_deref()
    }

    fn transaction(&self) -> Option<(&[String], &[String])> {
        self.transaction
            .as_ref()
            .map(|(b, c)| (b.as_slice(), c.as_slice()))
    }
}

/// What an error means by the file's `[[client.outcome]]` rules: the first rule whose
/// conditions all hold (op, `error_prefix` of `err`, `status` range) decides; an error no
/// rule matches is `info`, because it may have taken effect.
pub fn classify(rules: &[Rule], op: &str, err: &str, status: Option<u16>) -> (Outcome, Redirect) {
    let rule = rules.iter().find(|r| {
        (r.ops.is_empty() || r.ops.iter().any(|o| o == op))
            && r.error_prefix.as_deref().is_none_or(|p| err.starts_with(p))
            && r.status.as_ref().is_none_or(|st| {
                status.is_some_and(|s| {
                    super::spec::status_matcher(st).is_ok_and(|range| range.contains(&s))
                })
            })
    });
    let Some(rule) = rule else {
        return (Outcome::Info, Redirect::Stay);
    };
    let outcome = if rule.outcome == "fail" {
        Outcome::Fail
    } else {
        Outcome::Info
    };
    let redirect = match rule.redirect.as_deref() {
        Some("next") => Redirect::Next,
        Some("follow") => Redirect::Follow,
        _ => Redirect::Stay,
    };
    (outcome, redirect)
}
