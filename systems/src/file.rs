//! A system described in a TOML file (`faultline test --system-file FILE`): files to upload,
//! commands to set up, start, stop and wipe a node, the pidfile the pause/kill faults target,
//! readiness, the leader call, logs, and a client in a protocol faultline speaks (RESP,
//! PostgreSQL, HTTP/JSON) with outcome rules. See docs/own-system.md.
//!
//! - [`spec`]: the file's model, validation (one-line errors, exit 254) and placeholders.
//! - [`ops`]: `[client.ops]` templates by protocol (argv, SQL, HTTP request).
//! - [`client`]: the RESP dialect, the outcome rules and the leader answer's parser.
//! - [`wire`]: the `postgres` and `http` clients.
//! - `system`: [`FileSystem`] as a [`crate::System`]: deploy, kill, the leader probe, clients.

pub mod client;
mod command_leader;
pub mod ops;
pub mod spec;
mod system;
pub mod wire;

use crate::{bail, err};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Context;
use crate::proto::resp::Conn;
use crate::proto::tls::Access;
use async_trait::async_trait;
use control::{DaemonSpec, Exec, Node, Remote};
use nemesis::{ClockMode, PidfileSystem};
use workloads::{Client, Invocation};

use self::client::RoleParser;
use self::command_leader::LeaderCommand;
use self::ops::Protocol;
use self::spec::{Loaded, RunSecrets};
use self::wire::WireDialect;
use super::RoleInfo;
use super::daemon::{self, Control};

/// Where node directories go, and the clock fault's mechanism.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory on each node under which `<node>/` is the node's `{dir}`.
    pub base_dir: String,
    pub clock: ClockMode,
    /// The nodes' remotes (the leader command runs through them).
    pub remotes: Vec<Arc<dyn Remote>>,
    /// Install the packages of `[requires]` that are missing (`--install`).
    pub install: bool,
}

/// What a node of a system file runs, rendered (`faultline validate`): every placeholder
/// resolved as a run would, without touching the node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodePlan {
    pub node: String,
    pub addr: String,
    pub role: String,
    /// `(what, command)`: setup, start, stop, wipe, the leader command, the pids command
    /// and the companions of `[process] also`, in that order, as far as the file has them.
    pub commands: Vec<(String, String)>,
    /// Local file -> where it is uploaded.
    pub uploads: Vec<(String, String)>,
    /// `[configs]`: path and content; a config holding the run's password shows
    /// `{auth.password}` unexpanded.
    pub configs: Vec<(String, String)>,
}

/// A system file's system on a set of nodes.
pub struct FileSystem {
    loaded: Loaded,
    nodes: Vec<Node>,
    opts: Options,
    /// Local file -> remote path template.
    files: Vec<(PathBuf, String)>,
    /// Which node has which role; the deploy stages; the serving nodes.
    assign: spec::Assignment,
    control: Arc<Control>,
    role: RoleParser,
    /// What `[generate]` made for this run (removed when the system is dropped).
    secrets: Option<RunSecrets>,
    /// How clients and probes reach the nodes: TLS and credentials.
    access: Arc<Access>,
}

impl FileSystem {
    /// Builds the daemons of a loaded file whose local files were resolved
    /// ([`Loaded::resolve_files`]).
    pub fn new(
        loaded: Loaded,
        nodes: Vec<Node>,
        opts: Options,
        leader: nemesis::LeaderView,
    ) -> crate::Result<Self> {
        let files = loaded.local_files.clone();
        let assign = loaded
            .spec
            .assign(&super::names(&nodes))
            .map_err(|e| crate::Error::invalid(format!("{}: {e}", loaded.path.display())))?;
        // The probe asks the serving nodes only: a witness has no role to report.
        let role = RoleParser::new(
            loaded.spec.leader.clone(),
            nodes
                .iter()
                .filter(|n| assign.serving.contains(&n.name))
                .map(|n| (n.name.clone(), n.addr.clone(), loaded.client_port()))
                .collect(),
        );
        let named: Vec<(String, String)> = nodes
            .iter()
            .map(|n| (n.name.clone(), n.addr.clone()))
            .collect();
        let secrets = RunSecrets::make(&loaded.spec.generate, &named).map_err(crate::Error::msg)?;
        let access = loaded
            .access(secrets.as_ref())
            .map_err(|e| crate::Error::invalid(format!("{}: {e}", loaded.path.display())))?;
        let mut sys = FileSystem {
            loaded,
            nodes,
            opts,
            files,
            assign,
            control: Arc::new(Control::new(PidfileSystem::default(), leader)),
            role,
            secrets,
            access: Arc::new(access),
        };
        let (mut specs, mut also, mut listed) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let (mut leave, mut join) = (BTreeMap::new(), BTreeMap::new());
        for n in &sys.nodes {
            let vars = sys.vars(&n.name)?;
            let p = &sys.loaded.spec.process;
            let pidfile = sys.render(p.pidfile.as_deref().unwrap_or_default(), &vars)?;
            let start = sys.start_command(&vars)?;
            let mut d = DaemonSpec::new("sh", pidfile, format!("{}/stdout.log", vars["dir"]))
                .args(["-c".to_string(), start]);
            d.self_pidfile = p.daemonizes;
            // A start that daemonizes runs in the foreground as long as a setup may.
            let limit = sys.loaded.spec.commands.timeout_s;
            d.start_timeout = p.daemonizes.then(|| Duration::from_secs(limit));
            let d = daemon::in_dir(d, &vars["dir"], &n.name, Some(&sys.opts.clock));
            specs.insert(n.name.clone(), d);
            let companions = p.also.iter().map(|f| sys.render(f, &vars));
            also.insert(n.name.clone(), companions.collect::<crate::Result<_>>()?);
            if let Some(cmd) = &p.pids_command {
                listed.insert(n.name.clone(), sys.render(cmd, &vars)?);
            }
            for (which, into) in [("leave", &mut leave), ("join", &mut join)] {
                if let Some(tpl) = sys.command_of(&vars, which) {
                    into.insert(n.name.clone(), sys.render(tpl, &vars)?.trim().to_owned());
                }
            }
        }
        sys.control = Arc::new(Control::new(
            PidfileSystem {
                specs,
                also,
                pids_command: listed,
                on_exit: sys.loaded.spec.process.on_exit,
                leave,
                join,
            },
            sys.control.leader.clone(),
        ));
        Ok(sys)
    }

    /// What every node would run, rendered (no node is touched).
    pub fn plan(&self) -> crate::Result<Vec<NodePlan>> {
        let mut out = Vec::new();
        for n in &self.nodes {
            let vars = self.vars(&n.name)?;
            let mut commands = Vec::new();
            for which in ["setup", "start", "stop", "wipe", "leave", "join"] {
                if let Some(tpl) = self.command_of(&vars, which) {
                    commands.push((which.to_owned(), self.render(tpl, &vars)?.trim().to_owned()));
                }
            }
            let spec = &self.loaded.spec;
            if let Some(tpl) = &spec.leader.command {
                commands.push(("leader".into(), self.render(tpl, &vars)?));
            }
            if let Some(tpl) = &spec.process.pids_command {
                commands.push(("pids".into(), self.render(tpl, &vars)?));
            }
            for tpl in &spec.process.also {
                commands.push(("also".into(), self.render(tpl, &vars)?));
            }
            let uploads = self
                .files
                .iter()
                .map(|(local, remote)| {
                    Ok((local.display().to_string(), self.render(remote, &vars)?))
                })
                .collect::<crate::Result<_>>()?;
            let mut configs = Vec::new();
            for (path, tpl) in &spec.configs {
                let mut with_secret = vars.clone();
                with_secret.insert("auth.password".into(), "{auth.password}".into());
                configs.push((self.render(path, &vars)?, self.render(tpl, &with_secret)?));
            }
            out.push(NodePlan {
                node: n.name.clone(),
                addr: n.addr.clone(),
                role: vars["role"].clone(),
                commands,
                uploads,
                configs,
            });
        }
        Ok(out)
    }

    fn node(&self, name: &str) -> crate::Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .with_context(|| format!("no node {name}"))
    }

    /// The node-level placeholders of `node`.
    fn vars(&self, node: &str) -> crate::Result<BTreeMap<String, String>> {
        let n = self.node(node)?;
        let port = self.loaded.spec.port;
        let dir = daemon::node_dir(&self.opts.base_dir, node);
        let peers: Vec<String> = self
            .nodes
            .iter()
            .map(|p| format!("{}={}:{port}", p.name, p.addr))
            .collect();
        let first = self.nodes.first().unwrap_or(n);
        let fixed = [
            ("node", n.name.clone()),
            ("ip", n.addr.clone()),
            ("port", port.to_string()),
            ("peers", peers.join(",")),
            ("data_dir", format!("{dir}/data")),
            ("dir", dir),
            ("bug_flags", self.loaded.bug_flags()),
            ("read_from", self.loaded.read_from.name().to_owned()),
            ("first_node", first.name.clone()),
            ("first_ip", first.addr.clone()),
            ("quorum", (self.nodes.len() / 2 + 1).to_string()),
        ];
        let mut vars: BTreeMap<String, String> =
            fixed.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        vars.insert("node_index".into(), self.assign.index[node].to_string());
        vars.insert("role".into(), self.assign.role_of[node].clone());
        let addr = |m: &str| self.node(m).map(|x| x.addr.clone()).unwrap_or_default();
        vars.extend(self.assign.vars(&addr, port));
        vars.extend(spec::generated_vars(
            &self.loaded.spec.generate,
            &vars["dir"],
        ));
        Ok(vars)
    }

    fn render(&self, tpl: &str, vars: &BTreeMap<String, String>) -> crate::Result<String> {
        self.loaded.render(tpl, vars)
    }

    /// The role's override of command `which` (`setup`, `start`, `stop`, `wipe`), else the
    /// file's, for the node of `vars`.
    fn command_of(&self, vars: &BTreeMap<String, String>, which: &str) -> Option<&String> {
        self.loaded.spec.command(&vars["role"], which)
    }

    /// The readiness check of the node of `vars`: its role's, else the file's.
    fn ready_of(&self, vars: &BTreeMap<String, String>) -> &spec::Ready {
        self.loaded
            .spec
            .roles
            .get(&vars["role"])
            .and_then(|r| r.ready.as_ref())
            .unwrap_or(&self.loaded.spec.ready)
    }

    /// The start command of a node (trimmed: an empty `{bug_flags}` leaves a space).
    fn start_command(&self, vars: &BTreeMap<String, String>) -> crate::Result<String> {
        let tpl = self.command_of(vars, "start").cloned().unwrap_or_default();
        Ok(self.render(&tpl, vars)?.trim().to_owned())
    }

    /// The leader command of every node, rendered, with the remotes to run it through.
    fn leader_command(&self) -> crate::Result<LeaderCommand> {
        let tpl = self
            .loaded
            .spec
            .leader
            .command
            .as_deref()
            .unwrap_or_default();
        let mut nodes = BTreeMap::new();
        for r in &self.opts.remotes {
            let name = r.node().name.clone();
            let vars = self.vars(&name)?;
            nodes.insert(
                name,
                (r.clone(), self.render(tpl, &vars)?, vars["dir"].clone()),
            );
        }
        Ok(LeaderCommand {
            nodes: Arc::new(nodes),
            parser: self.role.clone(),
        })
    }

    fn pidfile(&self, node: &str) -> crate::Result<String> {
        let p = self
            .loaded
            .spec
            .process
            .pidfile
            .as_deref()
            .unwrap_or_default();
        self.render(p, &self.vars(node)?)
    }

    /// Runs one of the file's commands (`what`: `setup`, `stop`, ...) on `node` in its `{dir}`.
    async fn command(&self, node: &dyn Remote, what: &str, tpl: &str) -> crate::Result<()> {
        let name = &node.node().name;
        let vars = self.vars(name)?;
        let cmd = self.render(tpl, &vars)?;
        let timeout = Duration::from_secs(self.loaded.spec.commands.timeout_s.max(1));
        let out = node
            .run(
                &Exec::sh(cmd.clone())
                    .cwd(vars["dir"].clone())
                    .timeout(timeout),
            )
            .await
            .with_context(|| format!("the {what} command `{cmd}` could not run on node {name}"))?;
        if !out.success() {
            let stderr = out.stderr.trim();
            let stderr = if stderr.is_empty() {
                out.stdout.trim()
            } else {
                stderr
            };
            bail!(
                "the {what} command failed on node {name} (exit {}): `{cmd}`: {stderr}",
                out.status
            );
        }
        Ok(())
    }

    /// The error of a start whose process exited: the node, the command and the end of its
    /// output, on one line.
    async fn exited(
        &self,
        node: &dyn Remote,
        start: &str,
        vars: &BTreeMap<String, String>,
    ) -> crate::Error {
        let log = format!("{}/stdout.log", vars["dir"]);
        let tail = node
            .run(&Exec::new("tail").args(["-n", "5", &log]))
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        let tail: Vec<&str> = tail
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        err!(
            "the start command failed on node {}: `{start}`: the process exited; its output \
             ({log}) ends with: {}",
            node.node().name,
            tail.join(" | ")
        )
    }

    /// Waits until `node`'s process is up and ready (port or command), failing fast with the
    /// process's output when it exits.
    /// With TLS or a password, one connection to a node that is ready: a refused password
    /// or certificate will not get better, so it ends the deploy with one line naming the
    /// node and the cause, before any workload starts. Other failures are the probe's.
    async fn check_access(&self, name: &str, ip: &str) -> crate::Result<()> {
        let a = &self.access;
        if a.tls.is_none() && a.creds.password.is_none() && a.creds.token.is_none() {
            return Ok(());
        }
        let addr = format!("{ip}:{}", self.loaded.client_port());
        let res = match self.loaded.protocol {
            Protocol::Resp => Conn::connect_with(&addr, a, Duration::from_secs(5))
                .await
                .map(|_| ()),
            _ => {
                // The leader call, as the probe makes it: TLS, then the credentials.
                let d = WireDialect::new(&self.loaded, self.role.clone()).with_access(a.clone());
                let req = d
                    .request(&Invocation::new("leader", history::Value::Nil))
                    .map_err(crate::Error::msg)?;
                let mut link = self::wire::Link::default();
                d.exchange(&mut link, &addr, &req, Duration::from_secs(5))
                    .await
                    .map(|_| ())
            }
        };
        match res {
            Err(e) if e.msg.starts_with("auth:") || e.msg.starts_with("tls:") => {
                bail!("node {name}: {e}")
            }
            Err(e) if matches!(e.status, Some(401 | 403)) => bail!(
                "node {name}: failed to authenticate to {addr}: HTTP {}: {}",
                e.status.unwrap_or_default(),
                e.msg
            ),
            _ => Ok(()),
        }
    }

    async fn wait_ready(&self, node: &dyn Remote) -> crate::Result<()> {
        let name = node.node().name.clone();
        let vars = self.vars(&name)?;
        let pidfile = self.pidfile(&name)?;
        let start = self.start_command(&vars)?;
        let r = self.ready_of(&vars);
        let limit = Duration::from_secs(r.timeout_s.max(1));
        let deadline = tokio::time::Instant::now() + limit;
        let port = r.port.unwrap_or_else(|| self.loaded.client_port());
        let addr = format!("{}:{port}", vars["ip"]);
        let ready_cmd = match &r.command {
            Some(c) => Some(self.render(c, &vars)?),
            None => None,
        };
        loop {
            if control::running_pid(node, &pidfile, false).await?.is_none() {
                return Err(self.exited(node, &start, &vars).await);
            }
            let ready = match &ready_cmd {
                Some(c) => node
                    .run(&Exec::sh(c.clone()).cwd(vars["dir"].clone()).timeout(limit))
                    .await
                    .is_ok_and(|o| o.success()),
                None => tokio::time::timeout(
                    Duration::from_millis(500),
                    tokio::net::TcpStream::connect(&addr),
                )
                .await
                .is_ok_and(|c| c.is_ok()),
            };
            if ready {
                return self.check_access(&name, &vars["ip"]).await;
            }
            if tokio::time::Instant::now() >= deadline {
                let what = ready_cmd
                    .map(|c| format!("`{c}` did not succeed"))
                    .unwrap_or_else(|| format!("{addr} did not accept connections"));
                bail!("node {name} was not ready within {limit:?} of its start: {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;
