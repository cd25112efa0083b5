//! The `redis-sentinel` system: Redis (asynchronous replication) with Sentinel failover,
//! from the OS packages (`redis-server`, `redis-sentinel`).
//!
//! Deploy: on every node a `redis-server` (n1 the first primary, the others `replicaof` n1;
//! persistence off: `save ""`, no AOF) and a `redis-sentinel` (`monitor mymaster n1 6379
//! <majority>`, `down-after-milliseconds` from `--down-after`, `failover-timeout`), both with
//! configs generated per test into the node's own directory (Sentinel rewrites its config)
//! and bound to the node's cluster address. Both run as foreground daemons with pidfiles;
//! the clock shim is in both environments.
//!
//! Faults: `pause`/`kill` hit `redis-server` only (the node's Sentinel keeps running and
//! keeps voting, as when the database process crashes or stalls); partitions cut both.
//! A killed `redis-server` restarts with its generated config, i.e. as the replica or primary
//! it was configured as, and empty (no persistence).
//!
//! Client: asks a Sentinel `SENTINEL get-master-addr-by-name mymaster`, sends writes there,
//! and asks again after a connection error or `-READONLY` (so it follows failovers the way
//! Sentinel-aware client libraries do). Ops aimed at a node (final reads, probes) go to that
//! node's `redis-server`. `set` is `SADD`/`SMEMBERS s`, `unique-ids` is `INCR ids`,
//! `register` is `GET`/`SET`/a Lua compare-and-set.
//!
//! Leader probe: `ROLE` on each `redis-server`: `master` is a leader, `slave` a follower
//! naming its primary. Redis has no term of its own: `term` is null (Sentinel's epoch lives
//! in the sentinels, not in the node that answers ROLE).

use crate::bail;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::Context;
use crate::proto::resp::{Conn, Reply};
use async_trait::async_trait;
use control::{DaemonSpec, Node, Remote};
use history::Value;
use nemesis::{ClockMode, PidfileSystem, SystemControl};
use workloads::{Client, Completion, Invocation};

use super::daemon::{self, Control, node_dir};
use super::proto::router::{self, role_value};
use super::thirdparty::{require_programs, write_file};
use super::{RoleInfo, System, unknown_unless_read};

mod client;
use client::*;

const REDIS_PORT: u16 = 6379;
const SENTINEL_PORT: u16 = 26379;
const MASTER_NAME: &str = "mymaster";
const SET_KEY: &[u8] = b"s";
const IDS_KEY: &[u8] = b"ids";
/// Compare-and-set of the register workload: `-CASMISMATCH` when the value differs.
const CAS_SCRIPT: &[u8] = b"if redis.call('GET', KEYS[1]) == ARGV[1] then \
    redis.call('SET', KEYS[1], ARGV[2]) return 'OK' \
    else return redis.error_reply('CASMISMATCH') end";

/// How to deploy Redis with Sentinel.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory on each node under which `<node>/` holds configs, pidfiles and logs.
    pub base_dir: String,
    pub clock: ClockMode,
    /// Sentinel's `down-after-milliseconds`.
    pub down_after: Duration,
    /// Sentinel's `failover-timeout`.
    pub failover_timeout: Duration,
    /// Install missing packages (`--install`).
    pub install: bool,
}

/// Redis + Sentinel on a set of nodes.
pub struct RedisSentinel {
    nodes: Vec<Node>,
    opts: Options,
    control: Arc<Control>,
    sentinels: PidfileSystem,
}

impl RedisSentinel {
    pub fn new(nodes: Vec<Node>, opts: Options, leader: nemesis::LeaderView) -> Self {
        // Both in the node's directory with its generated config, the clock shim in both.
        let both = |program: &'static str, name: &'static str| {
            daemon::per_node(&nodes, &opts.base_dir, Some(&opts.clock), |_, dir| {
                DaemonSpec::new(
                    program,
                    format!("{dir}/{name}.pid"),
                    format!("{dir}/{name}.stdout.log"),
                )
                .args([format!("{dir}/{name}.conf")])
            })
        };
        let (servers, sentinels) = (
            both("redis-server", "redis"),
            both("redis-sentinel", "sentinel"),
        );
        RedisSentinel {
            control: Arc::new(Control::new(servers, leader)),
            sentinels,
            nodes,
            opts,
        }
    }

    fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    fn redis_conf(&self, n: &Node, dir: &str) -> String {
        let mut c = format!(
            "bind {addr}\nport {REDIS_PORT}\nprotected-mode no\ndaemonize no\n\
             dir {dir}\nlogfile {dir}/redis.log\nsave \"\"\nappendonly no\n\
             repl-diskless-sync no\n",
            addr = n.addr
        );
        let first = &self.nodes[0];
        if n.name != first.name {
            c.push_str(&format!("replicaof {} {REDIS_PORT}\n", first.addr));
        }
        c
    }

    fn sentinel_conf(&self, n: &Node, dir: &str) -> String {
        format!(
            "bind {addr}\nport {SENTINEL_PORT}\nprotected-mode no\ndaemonize no\n\
             dir {dir}\nlogfile {dir}/sentinel.log\n\
             sentinel monitor {MASTER_NAME} {first} {REDIS_PORT} {q}\n\
             sentinel down-after-milliseconds {MASTER_NAME} {da}\n\
             sentinel failover-timeout {MASTER_NAME} {ft}\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            addr = n.addr,
            first = self.nodes[0].addr,
            q = self.quorum(),
            da = self.opts.down_after.as_millis(),
            ft = self.opts.failover_timeout.as_millis(),
        )
    }

    /// Node name by IP address.
    fn names_by_addr(&self) -> HashMap<String, String> {
        self.nodes
            .iter()
            .map(|n| (n.addr.clone(), n.name.clone()))
            .collect()
    }

    /// Every Sentinel monitors the expected primary and knows every replica and every other
    /// Sentinel (so a failover can get its quorum and majority).
    async fn sentinels_ready(&self, leader: &str) -> Result<(), String> {
        let want = self.nodes.len() - 1;
        let leader_addr = self
            .node(leader)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        for n in &self.nodes {
            let t = Duration::from_millis(500);
            let addr = format!("{}:{SENTINEL_PORT}", n.addr);
            let mut c = Conn::connect(&addr, t)
                .await
                .map_err(|e| format!("sentinel on {}: {e}", n.name))?;
            let r = c
                .call(&[b"SENTINEL", b"MASTER", MASTER_NAME.as_bytes()], t)
                .await
                .map_err(|e| format!("sentinel on {}: {e}", n.name))?;
            let fields = pairs(&r);
            let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
            let slaves: usize = get("num-slaves").parse().unwrap_or(0);
            let others: usize = get("num-other-sentinels").parse().unwrap_or(0);
            if get("ip") != leader_addr || slaves < want || others < want {
                return Err(format!(
                    "sentinel on {} sees primary {}, {slaves} replica(s), {others} other sentinel(s)",
                    n.name,
                    get("ip")
                ));
            }
        }
        Ok(())
    }
}

/// A flat `[k1, v1, k2, v2, ...]` reply as a map.
fn pairs(r: &Reply) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if let Reply::Array(Some(items)) = r {
        for kv in items.chunks(2) {
            if let [k, v] = kv {
                if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                    m.insert(k.to_owned(), v.to_owned());
                }
            }
        }
    }
    m
}

#[async_trait]
impl System for RedisSentinel {
    fn name(&self) -> &str {
        "redis-sentinel"
    }

    fn nodes(&self) -> Vec<String> {
        super::names(&self.nodes)
    }

    async fn setup(&self, node: &dyn Remote) -> crate::Result<()> {
        require_programs(
            node,
            &["redis-server", "redis-sentinel"],
            &["redis-server", "redis-sentinel"],
            self.opts.install,
        )
        .await?;
        let n = daemon::member(&self.nodes, node)?;
        let dir = node_dir(&self.opts.base_dir, &n.name);
        let _ = self.sentinels.kill(node).await;
        let _ = SystemControl::kill(self.control.as_ref(), node).await;
        daemon::prepare_dir(node, &dir, |d| format!("rm -rf {d} && mkdir -p {d}")).await?;
        write_file(
            node,
            &format!("{dir}/redis.conf"),
            &self.redis_conf(&n, &dir),
        )
        .await?;
        write_file(
            node,
            &format!("{dir}/sentinel.conf"),
            &self.sentinel_conf(&n, &dir),
        )
        .await?;
        Ok(())
    }

    async fn start(&self, node: &dyn Remote) -> crate::Result<()> {
        daemon::start(self.control.as_ref(), node, "redis-server").await?;
        daemon::start(&self.sentinels, node, "redis-sentinel").await
    }

    async fn kill(&self, node: &dyn Remote) -> crate::Result<()> {
        daemon::kill(self.control.as_ref(), node, "redis-server").await
    }

    async fn teardown(&self, node: &dyn Remote) -> crate::Result<()> {
        let _ = self.sentinels.kill(node).await;
        let _ = System::kill(self, node).await;
        daemon::remove_dir(node, &node_dir(&self.opts.base_dir, &node.node().name)).await
    }

    fn log_files(&self, node: &str) -> Vec<(String, String)> {
        daemon::logs(
            &node_dir(&self.opts.base_dir, node),
            &[
                "redis.log",
                "sentinel.log",
                "redis.stdout.log",
                "sentinel.stdout.log",
                "redis.conf",
                "sentinel.conf",
            ],
        )
    }

    fn control(&self) -> Arc<dyn SystemControl> {
        self.control.clone()
    }

    async fn role(&self, node: &str, timeout: Duration) -> crate::Result<RoleInfo> {
        let n = self.node(node).with_context(|| format!("no node {node}"))?;
        let addr = format!("{}:{REDIS_PORT}", n.addr);
        let mut c = Conn::connect(&addr, timeout).await?;
        let r = c.call(&[b"ROLE"], timeout).await?;
        parse_role(&r, node, &self.names_by_addr())
            .with_context(|| format!("bad ROLE reply from {node}: {r:?}"))
    }

    fn client(&self, timeout: Duration) -> Box<dyn Client> {
        Box::new(RedisClient::new(&self.nodes, timeout))
    }

    /// One primary that every replica follows, then every Sentinel knowing the whole
    /// deployment (else the first fault could find Sentinels unable to fail over).
    async fn ready(&self, limit: Duration) -> crate::Result<String> {
        let deadline = tokio::time::Instant::now() + limit;
        let leader = default_ready(self, limit).await?;
        loop {
            match self.sentinels_ready(&leader).await {
                Ok(()) => return Ok(leader),
                Err(why) if tokio::time::Instant::now() >= deadline => {
                    bail!("the sentinels were not ready within {limit:?}: {why}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// One primary that every node answers and names, within `limit`.
async fn default_ready(sys: &RedisSentinel, limit: Duration) -> crate::Result<String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut last = String::new();
        let mut leaders = Vec::new();
        let mut views = Vec::new();
        for n in sys.nodes() {
            match sys.role(&n, Duration::from_millis(500)).await {
                Ok(r) => {
                    if r.role == "leader" {
                        leaders.push(n.clone());
                    }
                    views.push(r.leader);
                }
                Err(e) => last = format!("{n}: {e:#}"),
            }
        }
        if last.is_empty() {
            if leaders.len() == 1 && views.iter().all(|v| v.as_deref() == Some(&leaders[0])) {
                return Ok(leaders.remove(0));
            }
            last = format!("primaries {leaders:?}, views {views:?}");
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("redis was not ready within {limit:?} (one primary every node follows): {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `ROLE` → leader probe answer. `master` leads (and names itself); `slave` follows the node
/// at the address it replicates from; its offset counts as applied only while connected.
fn parse_role(r: &Reply, me: &str, names: &HashMap<String, String>) -> Option<RoleInfo> {
    let Reply::Array(Some(items)) = r else {
        return None;
    };
    match items.first()?.as_str()? {
        "master" => {
            let off = items.get(1)?.as_int();
            Some(RoleInfo {
                role: "leader".into(),
                term: None,
                leader: Some(me.to_owned()),
                applied: off,
                committed: off,
            })
        }
        "slave" => {
            let ip = items.get(1)?.as_str()?;
            let connected = items.get(3).and_then(Reply::as_str) == Some("connected");
            Some(RoleInfo {
                role: "follower".into(),
                term: None,
                leader: names.get(ip).cloned(),
                applied: if connected {
                    items.get(4).and_then(Reply::as_int)
                } else {
                    None
                },
                committed: None,
            })
        }
        other => Some(RoleInfo {
            role: other.to_owned(),
            term: None,
            leader: None,
            applied: None,
            committed: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn role_replies_map_to_leader_and_follower() {
        let names: HashMap<String, String> = [("10.0.0.1".to_string(), "n1".to_string())].into();
        let master = Reply::Array(Some(vec![
            bulk("master"),
            Reply::Int(42),
            Reply::Array(Some(vec![])),
        ]));
        let r = parse_role(&master, "n1", &names).unwrap();
        assert_eq!(r.role, "leader");
        assert_eq!(r.leader.as_deref(), Some("n1"));
        assert_eq!(r.committed, Some(42));
        let slave = Reply::Array(Some(vec![
            bulk("slave"),
            bulk("10.0.0.1"),
            Reply::Int(6379),
            bulk("connected"),
            Reply::Int(40),
        ]));
        let r = parse_role(&slave, "n2", &names).unwrap();
        assert_eq!(r.role, "follower");
        assert_eq!(r.leader.as_deref(), Some("n1"));
        assert_eq!(r.applied, Some(40));
        assert_eq!(r.term, None);
        let syncing = Reply::Array(Some(vec![
            bulk("slave"),
            bulk("10.0.0.1"),
            Reply::Int(6379),
            bulk("sync"),
            Reply::Int(-1),
        ]));
        assert_eq!(parse_role(&syncing, "n2", &names).unwrap().applied, None);
    }

    #[test]
    fn commands_and_values() {
        let add = Invocation::new("add", Value::Int(7));
        assert_eq!(command(&add).unwrap()[0], b"SADD");
        let names = HashMap::new();
        assert_eq!(
            ok_value(&add, &Reply::Int(1), "n1", &names),
            Some(Value::Int(7))
        );
        let read = Invocation::new("read", Value::Nil);
        let r = Reply::Array(Some(vec![bulk("3"), bulk("1")]));
        assert_eq!(
            ok_value(&read, &r, "n1", &names),
            Some(Value::List(vec![Value::Int(1), Value::Int(3)]))
        );
        let cas = Invocation::new("cas", Value::List(vec![Value::Int(1), Value::Int(2)])).key("r0");
        assert_eq!(command(&cas).unwrap()[0], b"EVAL");
        assert!(ok_value(&cas, &Reply::Simple("OK".into()), "n1", &names).is_some());
        assert!(ok_value(&cas, &bulk("OK"), "n1", &names).is_some());
    }
}
