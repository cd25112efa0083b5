//! The `etcd` system: an etcd cluster (Raft) from the OS package `etcd-server`, probed and
//! driven through etcd's v3 HTTP/JSON gateway with a tiny HTTP/1.1 client of our own (no TLS,
//! no protoc, no gRPC stack).
//!
//! Deploy: one `etcd` per node (`--pre-vote`, `--initial-cluster` of every node, its own data
//! dir, client port 2379 and peer port 2380 on the node's cluster address), as a foreground
//! daemon with a pidfile; `pause`/`kill` hit it, a restart keeps the data dir. The clock shim
//! cannot reach etcd (a Go program reads the clock through the vDSO): `faultline test`
//! refuses the `clock` nemesis for etcd (see `registry::Builtin::capabilities`).
//!
//! Workloads: `register` is `/v3/kv/range` (linearizable: the default, not `serializable`),
//! `/v3/kv/put`, and compare-and-set as a `/v3/kv/txn` comparing the value; `set` is one key
//! per element under the prefix `set/` and a range read of the prefix. Requests go to any
//! member (etcd forwards proposals to the leader); a client moves to the next member after
//! a connection error or timeout. An HTTP error on a write may have taken effect (`info`),
//! a refused connection did not (`fail`); reads are `fail` on error.
//!
//! Leader probe: `/v3/maintenance/status` (leader member id, `raftTerm`, committed and applied
//! index) with member ids mapped to node names by `/v3/cluster/member/list`. A node that says
//! it leads counts as `leader` only when a linearizable read it serves confirms that a quorum
//! still follows it (see [`probe`]); else it is `unconfirmed-leader`.

use crate::err;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Context;
use async_trait::async_trait;
use control::{DaemonSpec, Node, Remote};
use history::Value;
use nemesis::SystemControl;
use serde_json::{Value as Json, json};
use workloads::{Client, Completion, Invocation};

use super::daemon::{self, Control, node_dir};
use super::proto::error::WireError;
use super::proto::http::{b64, post, unb64};
use super::proto::router::role_value;
use super::thirdparty::require_programs;
use super::{RoleInfo, System, unknown_unless_read};

const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
const SET_PREFIX: &str = "set/";

/// How to deploy etcd.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory on each node under which `<node>/` holds the data dir and logs.
    pub base_dir: String,
    /// Install missing packages (`--install`).
    pub install: bool,
}

/// etcd on a set of nodes.
pub struct Etcd {
    nodes: Vec<Node>,
    opts: Options,
    control: Arc<Control>,
    /// Member id (decimal, as the gateway prints it) -> node name.
    members: Arc<Mutex<HashMap<String, String>>>,
}

impl Etcd {
    pub fn new(nodes: Vec<Node>, opts: Options, leader: nemesis::LeaderView) -> Self {
        let cluster: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}=http://{}:{PEER_PORT}", n.name, n.addr))
            .collect();
        let cluster = cluster.join(",");
        let token = format!(
            "faultline-{}",
            opts.base_dir
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
        );
        let daemons = daemon::per_node(&nodes, &opts.base_dir, None, |n, dir| {
            let client = format!("http://{}:{CLIENT_PORT}", n.addr);
            let peer = format!("http://{}:{PEER_PORT}", n.addr);
            let args = vec![
                "--name".to_string(),
                n.name.clone(),
                "--data-dir".into(),
                format!("{dir}/data"),
                "--listen-client-urls".into(),
                client.clone(),
                "--advertise-client-urls".into(),
                client,
                "--listen-peer-urls".into(),
                peer.clone(),
                "--initial-advertise-peer-urls".into(),
                peer,
                "--initial-cluster".into(),
                cluster.clone(),
                "--initial-cluster-state".into(),
                "new".into(),
                "--initial-cluster-token".into(),
                token.clone(),
                "--pre-vote".into(),
            ];
            DaemonSpec::new("etcd", format!("{dir}/etcd.pid"), format!("{dir}/etcd.log")).args(args)
        });
        Etcd {
            nodes,
            opts,
            control: Arc::new(Control::new(daemons, leader)),
            members: Arc::default(),
        }
    }

    fn addr(&self, node: &str) -> Option<String> {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| format!("{}:{CLIENT_PORT}", n.addr))
    }
}

#[async_trait]
impl System for Etcd {
    fn name(&self) -> &str {
        "etcd"
    }

    fn nodes(&self) -> Vec<String> {
        super::names(&self.nodes)
    }

    async fn setup(&self, node: &dyn Remote) -> crate::Result<()> {
        require_programs(node, &["etcd"], &["etcd-server"], self.opts.install).await?;
        let dir = node_dir(&self.opts.base_dir, &node.node().name);
        let _ = SystemControl::kill(self.control.as_ref(), node).await;
        daemon::prepare_dir(node, &dir, |d| {
            format!("rm -rf {d} && mkdir -p {d} && chmod 700 {d}")
        })
        .await
    }

    async fn start(&self, node: &dyn Remote) -> crate::Result<()> {
        daemon::start(self.control.as_ref(), node, "etcd").await
    }

    async fn kill(&self, node: &dyn Remote) -> crate::Result<()> {
        daemon::kill(self.control.as_ref(), node, "etcd").await
    }

    async fn teardown(&self, node: &dyn Remote) -> crate::Result<()> {
        let _ = System::kill(self, node).await;
        daemon::remove_dir(node, &node_dir(&self.opts.base_dir, &node.node().name)).await
    }

    fn log_files(&self, node: &str) -> Vec<(String, String)> {
        daemon::logs(&node_dir(&self.opts.base_dir, node), &["etcd.log"])
    }

    fn control(&self) -> Arc<dyn SystemControl> {
        self.control.clone()
    }

    async fn role(&self, node: &str, timeout: Duration) -> crate::Result<RoleInfo> {
        let addr = self.addr(node).with_context(|| format!("no node {node}"))?;
        status(&addr, node, &self.members, timeout)
            .await
            .map_err(|e| err!("{node}: {}", e.msg))
    }

    fn client(&self, timeout: Duration) -> Box<dyn Client> {
        Box::new(EtcdClient {
            nodes: self
                .nodes
                .iter()
                .map(|n| (n.name.clone(), format!("{}:{CLIENT_PORT}", n.addr)))
                .collect(),
            members: self.members.clone(),
            current: NEXT_NODE.fetch_add(1, Ordering::Relaxed),
            timeout,
        })
    }
}

/// A gateway number (uint64/int64 are strings in its JSON).
fn num(v: &Json) -> Option<i64> {
    match v {
        Json::String(s) => s.parse().ok(),
        Json::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn id_str(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One node's `/v3/maintenance/status`, with the leader's id named.
async fn status(
    addr: &str,
    node: &str,
    members: &Mutex<HashMap<String, String>>,
    timeout: Duration,
) -> Result<RoleInfo, WireError> {
    let (code, st) = post(addr, "/v3/maintenance/status", &json!({}), timeout).await?;
    if code != 200 {
        return Err(WireError::may_have_applied(format!(
            "status: HTTP {code}: {st}"
        )));
    }
    let me = id_str(&st["header"]["member_id"]).unwrap_or_default();
    let leader_id = id_str(&st["leader"]).filter(|l| l != "0");
    let known = |id: &str| {
        members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    };
    let mut leader = leader_id.as_deref().and_then(known);
    if leader.is_none() && leader_id.is_some() {
        let (code, list) = post(addr, "/v3/cluster/member/list", &json!({}), timeout).await?;
        if code == 200 {
            let mut m = members.lock().unwrap_or_else(|p| p.into_inner());
            for mem in list["members"].as_array().into_iter().flatten() {
                if let (Some(id), Some(name)) = (id_str(&mem["ID"]), mem["name"].as_str()) {
                    if !name.is_empty() {
                        m.insert(id, name.to_owned());
                    }
                }
            }
        }
        leader = leader_id.as_deref().and_then(known);
    }
    let is_leader = leader_id.as_deref() == Some(me.as_str()) && !me.is_empty();
    Ok(RoleInfo {
        role: if is_leader { "leader" } else { "follower" }.into(),
        term: num(&st["raftTerm"]),
        leader: if is_leader {
            Some(node.to_owned())
        } else {
            leader
        },
        applied: num(&st["raftAppliedIndex"]).or_else(|| num(&st["raftIndex"])),
        committed: num(&st["raftIndex"]),
    })
}

/// The leader probe: the node's status, and for a node that says it leads, proof that a
/// quorum still follows it: a linearizable read served by it (etcd's ReadIndex confirms
/// leadership with a heartbeat round) between two statuses naming it leader of the same term.
/// A leader cut off from the majority keeps saying "leader" until its check-quorum timer
/// fires (Raft allows this: it can commit nothing), so an unconfirmed claim is reported as
/// role `unconfirmed-leader` (with `claims: leader`), not `leader`. Returns the role info and
/// the raw claim.
async fn probe(
    addr: &str,
    node: &str,
    members: &Mutex<HashMap<String, String>>,
    timeout: Duration,
) -> Result<(RoleInfo, String), WireError> {
    let mut first = status(addr, node, members, timeout).await?;
    let claim = first.role.clone();
    if first.role != "leader" {
        return Ok((first, claim));
    }
    let read = json!({"key": b64(b"faultline-probe")});
    let confirmed = match post(addr, "/v3/kv/range", &read, timeout).await {
        Ok((200, _)) => match status(addr, node, members, timeout).await {
            Ok(again) => again.role == "leader" && again.term == first.term,
            Err(_) => false,
        },
        _ => false,
    };
    if !confirmed {
        first.role = "unconfirmed-leader".into();
    }
    Ok((first, claim))
}

/// Spreads clients over the members.
static NEXT_NODE: AtomicUsize = AtomicUsize::new(0);

/// An etcd client over the HTTP/JSON gateway.
pub struct EtcdClient {
    nodes: Vec<(String, String)>,
    members: Arc<Mutex<HashMap<String, String>>>,
    current: usize,
    timeout: Duration,
}

fn key_text(op: &Invocation) -> Result<String, String> {
    match &op.key {
        Some(Value::Str(s)) => Ok(s.to_string()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!("{} needs a key", op.f)),
    }
}

fn int_text(op: &Invocation, v: &Value) -> Result<String, String> {
    v.as_int()
        .map(|i| i.to_string())
        .ok_or_else(|| format!("{} needs an integer value", op.f))
}

/// The gateway path and body for an invocation.
fn request(op: &Invocation) -> Result<(&'static str, Json), String> {
    Ok(match (op.f, op.key.is_some()) {
        ("add", _) => {
            let k = format!("{SET_PREFIX}{}", int_text(op, &op.value)?);
            (
                "/v3/kv/put",
                json!({"key": b64(k.as_bytes()), "value": b64(b"1")}),
            )
        }
        ("read", false) => {
            let end = format!("{}0", SET_PREFIX.trim_end_matches('/'));
            (
                "/v3/kv/range",
                json!({"key": b64(SET_PREFIX.as_bytes()), "range_end": b64(end.as_bytes()), "keys_only": true}),
            )
        }
        ("read", true) => (
            "/v3/kv/range",
            json!({"key": b64(key_text(op)?.as_bytes())}),
        ),
        ("write", _) => (
            "/v3/kv/put",
            json!({"key": b64(key_text(op)?.as_bytes()), "value": b64(int_text(op, &op.value)?.as_bytes())}),
        ),
        ("cas", _) => {
            let pair = op.value.as_list().filter(|l| l.len() == 2);
            let pair = pair.ok_or("cas needs [old new]")?;
            let k = b64(key_text(op)?.as_bytes());
            (
                "/v3/kv/txn",
                json!({
                    "compare": [{"key": k, "result": "EQUAL", "target": "VALUE",
                                 "value": b64(int_text(op, &pair[0])?.as_bytes())}],
                    "success": [{"request_put": {"key": k,
                                 "value": b64(int_text(op, &pair[1])?.as_bytes())}}],
                }),
            )
        }
        (f, _) => return Err(format!("etcd cannot do {f}")),
    })
}

/// The `ok` value of a 200 answer, `Err(Some(why))` for a definite failure (a txn whose
/// comparison failed), `Err(None)` for a body that makes no sense.
fn ok_value(op: &Invocation, body: &Json) -> Result<Value, Option<String>> {
    match (op.f, op.key.is_some()) {
        ("add" | "write", _) => Ok(op.value.clone()),
        ("cas", _) => {
            if body["succeeded"] == Json::Bool(true) {
                Ok(op.value.clone())
            } else {
                Err(Some("cas: value differs".into()))
            }
        }
        ("read", false) => {
            let mut out = Vec::new();
            for kv in body["kvs"].as_array().into_iter().flatten() {
                let k = kv["key"].as_str().and_then(unb64).ok_or(None)?;
                let k = String::from_utf8(k).map_err(|_| None)?;
                let v = k
                    .strip_prefix(SET_PREFIX)
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or(None)?;
                out.push(Value::Int(v));
            }
            out.sort_by_key(|v| v.as_int());
            Ok(Value::List(out))
        }
        ("read", true) => match body["kvs"].as_array().and_then(|a| a.first()) {
            None => Ok(Value::Nil),
            Some(kv) => {
                let v = kv["value"].as_str().and_then(unb64).unwrap_or_default();
                let s = String::from_utf8(v).map_err(|_| None)?;
                Ok(s.parse::<i64>()
                    .map(Value::Int)
                    .unwrap_or_else(|_| Value::str(&s)))
            }
        },
        _ => Err(None),
    }
}

#[async_trait]
impl Client for EtcdClient {
    async fn open(&mut self, _node: &str) {}

    async fn invoke(&mut self, op: &Invocation) -> Completion {
        let n = self.nodes.len().max(1);
        let (target, addr) = match &op.node {
            Some(t) => match self.nodes.iter().find(|(name, _)| name == t) {
                Some(x) => x.clone(),
                None => return Completion::fail(op.value.clone(), t, "unknown node"),
            },
            None => self.nodes[self.current % n].clone(),
        };
        let routed = op.node.is_none();
        if op.f == "leader" {
            return match probe(&addr, &target, &self.members, self.timeout).await {
                Ok((r, claim)) => {
                    let mut v = role_value(&r);
                    if let Value::Map(m) = &mut v {
                        m.push((Value::str("claims"), Value::str(&claim)));
                    }
                    Completion::ok(v, &target)
                }
                Err(e) => Completion::fail(op.value.clone(), &target, e.msg),
            };
        }
        let (path, body) = match request(op) {
            Ok(x) => x,
            Err(e) => return Completion::fail(op.value.clone(), &target, e),
        };
        match post(&addr, path, &body, self.timeout).await {
            Err(e) => {
                if routed {
                    self.current = (self.current + 1) % n;
                }
                unknown_unless_read(op, &target, e.sent(), e.msg)
            }
            Ok((200, body)) => match ok_value(op, &body) {
                Ok(v) => Completion::ok(v, &target),
                Err(Some(why)) => Completion::fail(op.value.clone(), &target, why),
                Err(None) => unknown_unless_read(op, &target, true, format!("unexpected {body}")),
            },
            Ok((code, body)) => {
                // etcd's errors (no leader, request timed out, leader changed, ...): a
                // proposal may have been made, so writes are unknown.
                if routed {
                    self.current = (self.current + 1) % n;
                }
                let why = body["error"]
                    .as_str()
                    .or_else(|| body["message"].as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("HTTP {code}"));
                unknown_unless_read(op, &target, true, why)
            }
        }
    }

    async fn close(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_reads_and_cas_answers() {
        let read = Invocation::new("read", Value::Nil);
        let body = json!({"kvs": [{"key": b64(b"set/5")}, {"key": b64(b"set/2")}]});
        assert_eq!(
            ok_value(&read, &body).unwrap(),
            Value::List(vec![Value::Int(2), Value::Int(5)])
        );
        let cas = Invocation::new("cas", Value::List(vec![Value::Int(1), Value::Int(2)])).key("r1");
        assert!(ok_value(&cas, &json!({"succeeded": true})).is_ok());
        assert!(matches!(ok_value(&cas, &json!({})), Err(Some(_))));
        let r = Invocation::new("read", Value::Nil).key("r1");
        assert_eq!(ok_value(&r, &json!({})).unwrap(), Value::Nil);
        let body = json!({"kvs": [{"value": b64(b"3")}]});
        assert_eq!(ok_value(&r, &body).unwrap(), Value::Int(3));
    }
}
