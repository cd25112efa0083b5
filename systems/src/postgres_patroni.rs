//! The `postgres-patroni` system: PostgreSQL 15 managed by Patroni on an etcd DCS, from the
//! OS packages (`postgresql-15`, `patroni`, `etcd-server`).
//!
//! Deploy: on every node an etcd member (the DCS, `super::etcd` under `<node>/dcs`) and a
//! Patroni (REST API on 8008, PostgreSQL on 5432 on the node's address, data dir in the node's
//! directory) started as the `postgres` user (PostgreSQL refuses root), with a config
//! generated per test: `ttl 10`, `loop_wait 1`, `retry_timeout 3`, trust authentication on the
//! cluster subnet, `synchronous_mode` from `--synchronous` (off: asynchronous replication).
//!
//! Faults: `kill` SIGKILLs Patroni and PostgreSQL's process group (a node crash of the
//! database; etcd keeps running) and restarts Patroni; `pause` stops both; partitions cut all
//! three. The clock shim is not applied (Patroni is Python, PostgreSQL C: the shim could reach
//! them, but this recipe does not set it up yet).
//!
//! Client: the PostgreSQL simple-query protocol (trust auth, no TLS) spoken by hand. It finds
//! the primary with Patroni's `GET /primary` (200 only on the leader) and stays there until an
//! error. `set` is `INSERT INTO s` / `SELECT v FROM s`; `unique-ids` is
//! `INSERT INTO ids DEFAULT VALUES RETURNING id` on a serial column.
//!
//! Leader probe: Patroni's `GET /patroni` (its role, recorded as `patroni` in the history;
//! the probe fails when Patroni does not answer), then one SQL statement on the node:
//! `pg_is_in_recovery()` (false: it accepts writes, a `leader`), the timeline (the term: the
//! current WAL file's on a primary, the WAL receiver's on a replica), the WAL position, and
//! the host the WAL receiver streams from (the leader a replica follows).

use crate::{bail, err};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::Context;
use async_trait::async_trait;
use control::{DaemonSpec, Exec, Node, Remote, shell_quote};
use history::Value;
use nemesis::{NodeName, SystemControl};
use workloads::{Client, Completion, Invocation};

use super::daemon::{self, node_dir};
use super::etcd::{self, Etcd};
use super::proto::error::WireError;
use super::proto::http;
use super::proto::pgwire::PgConn;
use super::proto::router::role_value;
use super::thirdparty::{require_programs, write_file};
use super::{RoleInfo, System};

mod client;
use client::*;

const PG_PORT: u16 = 5432;
const REST_PORT: u16 = 8008;
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS s (v bigint PRIMARY KEY); \
                      CREATE TABLE IF NOT EXISTS ids (id serial PRIMARY KEY)";

/// How to deploy PostgreSQL with Patroni.
#[derive(Debug, Clone)]
pub struct Options {
    pub base_dir: String,
    /// Patroni's `synchronous_mode`.
    pub synchronous: bool,
    pub install: bool,
}

/// PostgreSQL + Patroni + etcd on a set of nodes.
pub struct PostgresPatroni {
    nodes: Vec<Node>,
    opts: Options,
    dcs: Etcd,
    control: Arc<Control>,
}

/// The nemesis' handle: Patroni (pidfile) and PostgreSQL (its postmaster.pid).
#[derive(Debug)]
pub struct Control {
    base_dir: String,
    specs: std::collections::BTreeMap<String, DaemonSpec>,
    pub leader: nemesis::LeaderView,
}

impl Control {
    fn spec(&self, remote: &dyn Remote) -> nemesis::Result<&DaemonSpec> {
        let name = &remote.node().name;
        self.specs.get(name).ok_or_else(|| {
            nemesis::Error::other(format!("find Patroni on {name}"), "no spec for this node")
        })
    }
    /// The postmaster's pid (it leads its own process group), if it runs.
    async fn postmaster(&self, remote: &dyn Remote) -> Option<u32> {
        let dir = node_dir(&self.base_dir, &remote.node().name);
        let out = remote
            .run(&Exec::sh(format!(
                "p=$(head -1 {}/pgdata/postmaster.pid 2>/dev/null) && kill -0 \"$p\" 2>/dev/null && echo \"$p\"",
                shell_quote(&dir)
            )))
            .await
            .ok()?;
        out.stdout.trim().parse().ok()
    }
}

#[async_trait]
impl SystemControl for Control {
    async fn pids(&self, remote: &dyn Remote) -> nemesis::Result<Vec<u32>> {
        let spec = self.spec(remote)?;
        let mut pids: Vec<u32> = control::running_pid(remote, &spec.pidfile, false)
            .await
            .map_err(|e| nemesis::Error::remote(&remote.node().name, "read Patroni's pid", e))?
            .into_iter()
            .collect();
        pids.extend(self.postmaster(remote).await);
        Ok(pids)
    }
    async fn kill(&self, remote: &dyn Remote) -> nemesis::Result<()> {
        let spec = self.spec(remote)?;
        let pm = self.postmaster(remote).await;
        control::kill_daemon(remote, &spec.pidfile)
            .await
            .map_err(|e| nemesis::Error::remote(&remote.node().name, "kill Patroni", e))?;
        if let Some(pm) = pm {
            let _ = remote
                .run(&Exec::sh(format!(
                    "kill -9 -- -{pm} 2>/dev/null; kill -9 {pm} 2>/dev/null; true"
                )))
                .await;
        }
        Ok(())
    }
    async fn start(&self, remote: &dyn Remote) -> nemesis::Result<()> {
        let spec = self.spec(remote)?;
        control::start_daemon(remote, spec)
            .await
            .map(|_| ())
            .map_err(|e| nemesis::Error::remote(&remote.node().name, "start Patroni", e))
    }
    async fn leader(&self) -> Option<NodeName> {
        self.leader.leader()
    }
}

impl PostgresPatroni {
    pub fn new(nodes: Vec<Node>, opts: Options, leader: nemesis::LeaderView) -> Self {
        let patroni = daemon::per_node(&nodes, &opts.base_dir, None, |_, dir| {
            DaemonSpec::new(
                "setpriv",
                format!("{dir}/patroni.pid"),
                format!("{dir}/patroni.log"),
            )
            .args([
                "--reuid=postgres".to_string(),
                "--regid=postgres".into(),
                "--init-groups".into(),
                "patroni".into(),
                format!("{dir}/patroni.yml"),
            ])
        });
        let dcs = Etcd::new(
            nodes.clone(),
            etcd::Options {
                base_dir: format!("{}/dcs", opts.base_dir.trim_end_matches('/')),
                install: opts.install,
            },
            // The DCS's own leader is not the database's: a view of its own.
            nemesis::LeaderView::default(),
        );
        PostgresPatroni {
            control: Arc::new(Control {
                base_dir: opts.base_dir.clone(),
                specs: patroni.specs,
                leader,
            }),
            nodes,
            opts,
            dcs,
        }
    }

    fn pairs(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), n.addr.clone()))
            .collect()
    }

    fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    fn config(&self, n: &Node, dir: &str) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|m| format!("{}:2379", m.addr))
            .collect();
        format!(
            r#"scope: faultline
name: {name}
restapi:
  listen: {addr}:{REST_PORT}
  connect_address: {addr}:{REST_PORT}
etcd3:
  hosts: {hosts}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
    synchronous_mode: {sync}
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_log_hints: "on"
  initdb:
    - encoding: UTF8
    - auth: trust
  pg_hba:
    - local all all trust
    - host replication all 0.0.0.0/0 trust
    - host all all 0.0.0.0/0 trust
postgresql:
  listen: {addr}:{PG_PORT}
  connect_address: {addr}:{PG_PORT}
  data_dir: {dir}/pgdata
  bin_dir: {PG_BIN}
  pgpass: {dir}/pgpass
  authentication:
    replication:
      username: replicator
      password: faultline
    superuser:
      username: postgres
      password: faultline
    rewind:
      username: postgres
      password: faultline
  parameters:
    unix_socket_directories: '{dir}'
  pg_hba:
    - local all all trust
    - host replication all 0.0.0.0/0 trust
    - host all all 0.0.0.0/0 trust
"#,
            name = n.name,
            addr = n.addr,
            hosts = hosts.join(","),
            sync = self.opts.synchronous,
        )
    }

    /// Creates the tables on the primary.
    async fn schema(&self, leader: &str) -> crate::Result<()> {
        let n = self.node(leader).context("no such node")?;
        let mut c = PgConn::connect(&format!("{}:{PG_PORT}", n.addr), Duration::from_secs(3))
            .await
            .map_err(|e| err!("failed to connect to {leader}: {}", e.msg))?;
        c.query(SCHEMA, Duration::from_secs(10))
            .await
            .map_err(|e| err!("failed to create the tables on {leader}: {}", e.msg))?;
        Ok(())
    }
}

#[async_trait]
impl System for PostgresPatroni {
    fn name(&self) -> &str {
        "postgres-patroni"
    }

    fn nodes(&self) -> Vec<String> {
        super::names(&self.nodes)
    }

    async fn setup(&self, node: &dyn Remote) -> crate::Result<()> {
        require_programs(
            node,
            &["patroni", "setpriv", &format!("{PG_BIN}/postgres")],
            &["patroni", "postgresql-15"],
            self.opts.install,
        )
        .await?;
        let n = daemon::member(&self.nodes, node)?;
        let dir = node_dir(&self.opts.base_dir, &n.name);
        let _ = SystemControl::kill(self.control.as_ref(), node).await;
        let base = shell_quote(&self.opts.base_dir);
        daemon::prepare_dir(node, &dir, |d| {
            format!("rm -rf {d} && mkdir -p {d} && chown postgres:postgres {d} && chmod 755 {base}")
        })
        .await?;
        self.dcs.setup(node).await?;
        write_file(node, &format!("{dir}/patroni.yml"), &self.config(&n, &dir)).await?;
        node.exec(&Exec::sh(format!(
            "chown postgres:postgres {d}/patroni.yml && touch {d}/patroni.log && chown postgres:postgres {d}/patroni.log",
            d = shell_quote(&dir)
        )))
        .await?;
        Ok(())
    }

    async fn start(&self, node: &dyn Remote) -> crate::Result<()> {
        self.dcs.start(node).await?;
        daemon::start(self.control.as_ref(), node, "Patroni").await
    }

    async fn kill(&self, node: &dyn Remote) -> crate::Result<()> {
        daemon::kill(self.control.as_ref(), node, "Patroni").await
    }

    async fn teardown(&self, node: &dyn Remote) -> crate::Result<()> {
        let _ = System::kill(self, node).await;
        let _ = self.dcs.teardown(node).await;
        daemon::remove_dir(node, &node_dir(&self.opts.base_dir, &node.node().name)).await
    }

    fn log_files(&self, node: &str) -> Vec<(String, String)> {
        let dir = node_dir(&self.opts.base_dir, node);
        let mut v = daemon::logs(&dir, &["patroni.log", "patroni.yml"]);
        v.extend(
            self.dcs
                .log_files(node)
                .into_iter()
                .map(|(r, l)| (r, format!("dcs-{l}"))),
        );
        v
    }

    fn control(&self) -> Arc<dyn SystemControl> {
        self.control.clone()
    }

    async fn role(&self, node: &str, timeout: Duration) -> crate::Result<RoleInfo> {
        let n = self.node(node).with_context(|| format!("no node {node}"))?;
        probe(&n.addr, node, &self.pairs(), timeout)
            .await
            .map(|(r, _)| r)
            .map_err(|e| err!("{node}: {}", e.msg))
    }

    fn client(&self, timeout: Duration) -> Box<dyn Client> {
        Box::new(PgClient {
            nodes: self
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.addr.clone()))
                .collect(),
            primary: None,
            direct: None,
            start: NEXT.fetch_add(1, Ordering::Relaxed),
            timeout,
        })
    }

    async fn ready(&self, limit: Duration) -> crate::Result<String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut last = String::from("nothing answered");
        loop {
            let mut leaders = Vec::new();
            let mut all = true;
            for n in &self.nodes {
                match probe(&n.addr, &n.name, &self.pairs(), Duration::from_secs(1)).await {
                    Ok((r, _)) if r.role == "leader" => leaders.push(n.name.clone()),
                    Ok((r, _)) if r.applied.is_some() => {}
                    Ok(_) => {
                        all = false;
                        last = format!("{} is not streaming yet", n.name);
                    }
                    Err(e) => {
                        all = false;
                        last = format!("{}: {}", n.name, e.msg);
                    }
                }
            }
            if all && leaders.len() == 1 {
                self.schema(&leaders[0]).await?;
                return Ok(leaders.remove(0));
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("Patroni was not ready within {limit:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The leader probe of one node (see the module doc).
async fn probe(
    addr: &str,
    node: &str,
    nodes: &[(String, String)],
    timeout: Duration,
) -> Result<(RoleInfo, String), WireError> {
    let rest = format!("{addr}:{REST_PORT}");
    let (_, st) = http::get(&rest, "/patroni", timeout)
        .await
        .map_err(|e| WireError::not_sent(format!("patroni: {}", e.msg)))?;
    let patroni_role = st["role"].as_str().unwrap_or("").to_owned();
    // Role, timeline and WAL position in one statement, so they describe one instant (Patroni's
    // own view is refreshed once per HA loop and can lag a promotion).
    let mut c = PgConn::connect(&format!("{addr}:{PG_PORT}"), timeout).await?;
    let rows = c
        .query(
            "SELECT pg_is_in_recovery(), \
             (SELECT status FROM pg_stat_wal_receiver), \
             (SELECT sender_host FROM pg_stat_wal_receiver), \
             CASE WHEN pg_is_in_recovery() \
               THEN (SELECT received_tli FROM pg_stat_wal_receiver) \
               ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int \
             END, \
             CASE WHEN pg_is_in_recovery() \
               THEN pg_last_wal_replay_lsn() - '0/0'::pg_lsn \
               ELSE pg_current_wal_lsn() - '0/0'::pg_lsn \
             END",
            timeout,
        )
        .await?;
    let col = |i: usize| rows.first().and_then(|r| r.get(i).cloned().flatten());
    let primary = match col(0).as_deref() {
        Some("f") => true,
        Some("t") => false,
        other => {
            return Err(WireError::may_have_applied(format!(
                "pg_is_in_recovery: {other:?}"
            )));
        }
    };
    let term = col(3).and_then(|t| t.parse::<i64>().ok());
    let lsn = col(4).and_then(|l| l.split('.').next().and_then(|x| x.parse::<i64>().ok()));
    // A replica follows the node its WAL receiver streams from; its replayed position counts
    // only while it streams (a demoted primary on its old timeline replays nothing new).
    let streaming = col(1).as_deref() == Some("streaming");
    let (applied, committed) = if primary {
        (lsn, lsn)
    } else if streaming {
        (lsn, None)
    } else {
        (None, None)
    };
    let leader = if primary {
        Some(node.to_owned())
    } else {
        col(2).and_then(|host| {
            nodes
                .iter()
                .find(|(_, a)| *a == host)
                .map(|(n, _)| n.clone())
        })
    };
    let role = RoleInfo {
        role: if primary { "leader" } else { "follower" }.into(),
        term,
        leader,
        applied,
        committed,
    };
    Ok((role, patroni_role))
}
