//! The `leaderkv` system: deploy recipe (upload the binary, start one process per node with a
//! per-test config and data dir, kill, pause through pidfiles) and its RESP client.
//!
//! Error replies are classified as leaderkv's README says: `-UNCERTAIN` may have taken effect
//! (`info`); every other error reply (`-MOVED`, `-NOLEADER`, `-CASMISMATCH`, `-TRYAGAIN`,
//! `-ERR`) definitely did not (`fail`). A connection refused before sending is `fail`; a reset
//! or timeout after sending is `info` (for reads, which change nothing, `fail`).

use history::vocab;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::Context;
use crate::proto::resp::{Conn, Reply};
use async_trait::async_trait;
use control::{DaemonSpec, Exec, Node, Remote};
use history::Value;
use nemesis::{ClockMode, SystemControl};
use workloads::{Client, Invocation, Outcome};

use super::daemon::{self, Control, node_dir};
use super::proto::router::{self, Redirect, RespDialect, RoutingClient};
use super::{RoleInfo, System};

/// The set workload's key and the unique-ids counter's key.
const SET_KEY: &[u8] = b"s";
const IDS_KEY: &[u8] = b"ids";

/// How to deploy leaderkv.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `leaderkv` binary on the controller.
    pub binary: PathBuf,
    /// `sync`, `semi-sync` or `async`.
    pub mode: String,
    /// `--bug` flags passed through.
    pub bugs: Vec<String>,
    pub port: u16,
    /// Directory on each node under which `<node>/` holds the binary, data and logs.
    pub base_dir: String,
    /// Clock fault mechanism (its shim environment goes into each process).
    pub clock: ClockMode,
    /// Extra leaderkv arguments (timeouts).
    pub extra_args: Vec<String>,
}

/// leaderkv on a set of nodes.
pub struct Leaderkv {
    nodes: Vec<Node>,
    opts: Options,
    control: Arc<Control>,
}

impl Leaderkv {
    pub fn new(nodes: Vec<Node>, opts: Options, leader: nemesis::LeaderView) -> Self {
        let peers: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}={}:{}", n.name, n.addr, opts.port))
            .collect();
        let peers = peers.join(",");
        let daemons = daemon::per_node(&nodes, &opts.base_dir, Some(&opts.clock), |n, dir| {
            let mut args = vec![
                "--id".to_string(),
                n.name.clone(),
                "--peers".into(),
                peers.clone(),
                "--listen".into(),
                format!("{}:{}", n.addr, opts.port),
                "--data-dir".into(),
                format!("{dir}/data"),
                "--log-file".into(),
                format!("{dir}/leaderkv.log"),
                "--mode".into(),
                opts.mode.clone(),
            ];
            for b in &opts.bugs {
                args.push("--bug".into());
                args.push(b.clone());
            }
            args.extend(opts.extra_args.iter().cloned());
            DaemonSpec::new(
                format!("{dir}/leaderkv"),
                format!("{dir}/leaderkv.pid"),
                format!("{dir}/stdout.log"),
            )
            .args(args)
        });
        Leaderkv {
            nodes,
            opts,
            control: Arc::new(Control::new(daemons, leader)),
        }
    }

    fn addrs(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), format!("{}:{}", n.addr, self.opts.port)))
            .collect()
    }

    fn addr(&self, node: &str) -> Option<String> {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| format!("{}:{}", n.addr, self.opts.port))
    }
}

#[async_trait]
impl System for Leaderkv {
    fn name(&self) -> &str {
        "leaderkv"
    }

    fn nodes(&self) -> Vec<String> {
        super::names(&self.nodes)
    }

    async fn setup(&self, node: &dyn Remote) -> crate::Result<()> {
        let name = &node.node().name;
        let dir = node_dir(&self.opts.base_dir, name);
        // Whatever an earlier run left (a process, a data dir) goes first.
        let _ = SystemControl::kill(self.control.as_ref(), node).await;
        daemon::prepare_dir(node, &dir, |d| format!("rm -rf {d} && mkdir -p {d}/data")).await?;
        let bin = format!("{dir}/leaderkv");
        node.upload(&self.opts.binary, &bin)
            .await
            .with_context(|| format!("failed to upload leaderkv to {name}"))?;
        node.exec(&Exec::new("chmod").args(["755", &bin]))
            .await
            .with_context(|| format!("failed to make {bin} executable on {name}"))?;
        Ok(())
    }

    async fn start(&self, node: &dyn Remote) -> crate::Result<()> {
        daemon::start(self.control.as_ref(), node, "leaderkv").await
    }

    async fn kill(&self, node: &dyn Remote) -> crate::Result<()> {
        daemon::kill(self.control.as_ref(), node, "leaderkv").await
    }

    async fn teardown(&self, node: &dyn Remote) -> crate::Result<()> {
        // SIGKILL works on stopped (paused) processes too.
        let _ = System::kill(self, node).await;
        daemon::remove_dir(node, &node_dir(&self.opts.base_dir, &node.node().name)).await
    }

    fn log_files(&self, node: &str) -> Vec<(String, String)> {
        daemon::logs(
            &node_dir(&self.opts.base_dir, node),
            &["leaderkv.log", "stdout.log"],
        )
    }

    fn control(&self) -> Arc<dyn SystemControl> {
        self.control.clone()
    }

    async fn role(&self, node: &str, timeout: Duration) -> crate::Result<RoleInfo> {
        let addr = self.addr(node).with_context(|| format!("no node {node}"))?;
        let mut c = Conn::connect(&addr, timeout).await?;
        let r = c.call(&[b"ROLE"], timeout).await?;
        parse_role(&r).with_context(|| format!("bad ROLE reply from {node}: {r:?}"))
    }

    fn client(&self, timeout: Duration) -> Box<dyn Client> {
        Box::new(LeaderkvClient::new(self.addrs(), timeout))
    }
}

fn parse_role(r: &Reply) -> Option<RoleInfo> {
    let Reply::Array(Some(items)) = r else {
        return None;
    };
    if items.len() < 8 {
        return None;
    }
    let leader = items[2]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Some(RoleInfo {
        role: items[0].as_str()?.to_owned(),
        term: items[1].as_int(),
        leader,
        applied: items[5].as_int(),
        committed: items[6].as_int(),
    })
}

/// A leaderkv client that follows the leader: `-MOVED` names it, `-NOLEADER` and timeouts
/// make it try the next node.
pub type LeaderkvClient = RoutingClient<Dialect>;

impl LeaderkvClient {
    pub fn new(addrs: Vec<(String, String)>, timeout: Duration) -> Self {
        RoutingClient::with_dialect(addrs, timeout, Dialect)
    }
}

/// leaderkv's commands and error replies (see the module docs).
pub struct Dialect;

impl RespDialect for Dialect {
    fn command(&self, op: &Invocation) -> Result<Vec<Vec<u8>>, String> {
        command(op)
    }

    fn ok_value(&self, op: &Invocation, r: &Reply) -> Option<Value> {
        router::ok_value(op, r, parse_role)
    }

    fn on_error(&self, _op: &Invocation, err: &str) -> (Outcome, Redirect) {
        match err.split_whitespace().next().unwrap_or("") {
            "UNCERTAIN" => (Outcome::Info, Redirect::Stay),
            "MOVED" => (Outcome::Fail, Redirect::Follow),
            "NOLEADER" => (Outcome::Fail, Redirect::Next),
            _ => (Outcome::Fail, Redirect::Stay),
        }
    }
}

fn int_bytes(v: &Value) -> Option<Vec<u8>> {
    v.as_int().map(|i| i.to_string().into_bytes())
}

/// The command for an invocation, or why it cannot be sent.
fn command(op: &Invocation) -> Result<Vec<Vec<u8>>, String> {
    let key = || -> Result<Vec<u8>, String> {
        match &op.key {
            Some(Value::Str(s)) => Ok(s.as_bytes().to_vec()),
            Some(other) => Ok(other.to_string().into_bytes()),
            None => Err(format!("{} needs a key", op.f)),
        }
    };
    let int = |v: &Value| int_bytes(v).ok_or_else(|| format!("{} needs an integer value", op.f));
    Ok(match (op.f, op.key.is_some()) {
        (vocab::ADD, _) => vec![b"SADD".to_vec(), SET_KEY.to_vec(), int(&op.value)?],
        (vocab::READ, false) => vec![b"SMEMBERS".to_vec(), SET_KEY.to_vec()],
        (vocab::INCR, _) | (vocab::GENERATE, _) | (vocab::INSERT, _) => {
            vec![b"INCR".to_vec(), IDS_KEY.to_vec()]
        }
        (vocab::READ, true) => vec![b"GET".to_vec(), key()?],
        (vocab::WRITE, _) => vec![b"SET".to_vec(), key()?, int(&op.value)?],
        (vocab::CAS, _) => {
            let pair = op.value.as_list().filter(|l| l.len() == 2);
            let pair = pair.ok_or("cas needs [old new]")?;
            vec![b"CAS".to_vec(), key()?, int(&pair[0])?, int(&pair[1])?]
        }
        (vocab::LEADER, _) => vec![b"ROLE".to_vec()],
        (f, _) => return Err(format!("leaderkv cannot do {f}")),
    })
}

/// Finds a sibling build artefact: beside the running executable, else `$env_var`, else
/// builds `package` with cargo when running from faultline's source tree.
pub fn locate_artifact(file: &str, env_var: &str, package: &str) -> crate::Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to find the running executable")?;
    let exe_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let beside = exe_dir.join(file);
    if beside.is_file() {
        return Ok(beside);
    }
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(crate::Error::invalid(format!(
            "${env_var} names {}, which is not a file",
            p.display()
        )));
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let profile = exe_dir.file_name().and_then(|s| s.to_str()).unwrap_or("");
    let target_dir = exe_dir.parent();
    if src.join("Cargo.toml").is_file() && matches!(profile, "debug" | "release") {
        if let Some(target_dir) = target_dir {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            eprintln!(
                "faultline: {file} not found beside {}: building it (cargo build -p {package})",
                exe.display()
            );
            let mut cmd = std::process::Command::new(&cargo);
            cmd.current_dir(src)
                .args(["build", "-q", "-p", package, "--target-dir"])
                .arg(target_dir);
            if profile == "release" {
                cmd.arg("--release");
            }
            let status = cmd
                .status()
                .with_context(|| format!("failed to run cargo to build {package}"))?;
            if status.success() && beside.is_file() {
                return Ok(beside);
            }
        }
    }
    Err(crate::Error::invalid(format!(
        "cannot find {file}: build it with `cargo build -p {package}` (it goes beside the faultline binary) or set ${env_var} to its path"
    )))
}
