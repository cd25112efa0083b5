//! The system file's model (serde, unknown keys refused), its validation and placeholder
//! expansion. Every error is one line: the file, the key and the problem; `faultline test`
//! exits 254 on them before it touches any node.

use crate::err;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ops::{HttpTemplate, OpTemplate, Protocol};

mod access;
mod capabilities;
mod client;
mod placeholders;
pub mod roles;
mod validate;
pub use access::{NODE_TLS_DIR, RunSecrets, generated_vars};
pub use client::{ClientSpec, OPS, Ops, Rule, SessionSpec, TransactionSpec};
pub use placeholders::{NODE_VARS, expand};
use placeholders::{artifact_name, known_list};
pub use roles::{Assignment, RoleNodes, RoleSpec};
pub use validate::status_matcher;

/// A system described in a TOML file (see docs/own-system.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The system's name (runs, reports).
    pub name: String,
    /// The port the system listens on (`{port}`); the client's and readiness port by default.
    pub port: u16,
    /// Values of `{set.KEY}` when `--set KEY=VALUE` does not give one.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Files copied to each node: local path (relative to the TOML file) -> remote path.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Text files written on each node, placeholders expanded: remote path -> content.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    pub commands: Commands,
    pub process: Process,
    #[serde(default)]
    pub ready: Ready,
    pub leader: Leader,
    #[serde(default)]
    pub logs: Logs,
    pub client: ClientSpec,
    /// Named node groups with commands of their own ([`roles`]).
    #[serde(default)]
    pub roles: BTreeMap<String, RoleSpec>,
    /// Deploy order: each stage's roles are set up, started and ready before the next's.
    #[serde(default)]
    pub stages: Vec<Vec<String>>,
    /// Programs every node needs, and the OS packages that provide them.
    #[serde(default)]
    pub requires: Requires,
    /// Faults the system cannot take (a fault kind -> why): refused before anything is
    /// deployed.
    #[serde(default)]
    pub unsupported: BTreeMap<String, String>,
    /// How the system runs on `--docker`.
    #[serde(default)]
    pub docker: DockerSection,
    /// Certificates and a password made for each run.
    #[serde(default)]
    pub generate: Generate,
}

/// `[generate]`: secrets faultline makes for each run, so a file can deploy its system with
/// TLS and authentication on without shipping keys. Kept in a private temporary directory on
/// the controller and under `{dir}/tls/` on the nodes (mode 600), removed with the run;
/// never written to the run directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// A CA, a certificate per node (its IP and name) and a client certificate:
    /// `{tls.ca}`, `{tls.cert}`, `{tls.key}`, `{tls.client_cert}`, `{tls.client_key}`. The
    /// client trusts the CA and presents the client certificate unless `[client] tls` says
    /// otherwise.
    #[serde(default)]
    pub tls: bool,
    /// A random password: `{auth.password}` in `[configs]` (nowhere else: commands show up
    /// in error messages), `{auth.password_file}` anywhere. The client uses it unless
    /// `[client] password` is given.
    #[serde(default)]
    pub password: bool,
}

/// `[docker]`: the image the system's nodes run on `--docker` (`--image` overrides it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSection {
    pub image: Option<String>,
}

/// What a node must have installed: checked on every node before its setup, with one line
/// naming the packages when something is missing (installed with `--install`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// Programs: names looked up on `PATH`, or absolute paths.
    #[serde(default)]
    pub programs: Vec<String>,
    /// The OS packages (apt) that provide them.
    #[serde(default)]
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commands {
    /// Run once per node after the files are in place (in `{dir}`).
    pub setup: Option<String>,
    /// The system's process: kept running by faultline under `process.pidfile`.
    pub start: String,
    /// Run before the process is killed at teardown (graceful stop).
    pub stop: Option<String>,
    /// Run at teardown after the stop (and before a new setup) to remove what the system left
    /// outside `{dir}` (faultline removes `{dir}` itself).
    pub wipe: Option<String>,
    /// The membership fault: run after the node's processes are killed, to remove it from
    /// the cluster (wipe its data, tell the others it left). Without it the system refuses
    /// the `member` fault.
    pub leave: Option<String>,
    /// The membership fault's end: run before `start` to have the removed node join as a new
    /// member (take a base backup, mark its data dir as joining). Optional: a start on an
    /// empty data dir may be the whole join.
    pub join: Option<String>,
    /// Time limit of setup, stop and wipe commands, seconds.
    #[serde(default = "default_command_timeout")]
    pub timeout_s: u64,
}

fn default_command_timeout() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// Where the pid of the process that pause/kill target is kept.
    pub pidfile: Option<String>,
    /// A process name (not supported: see [`Spec::validate`]).
    pub name: Option<String>,
    /// More pidfiles whose processes are paused and killed with the main one (a failover
    /// agent beside its database); `start` must bring them back after a kill.
    #[serde(default)]
    pub also: Vec<String>,
    /// A command printing more pids (whitespace-separated) paused and killed with the main
    /// one: the processes of a cgroup, the children of a process.
    pub pids_command: Option<String>,
    /// The start command daemonizes itself and writes `pidfile` (e.g. `redis-server
    /// --daemonize yes --pidfile ...`); otherwise faultline runs it in the background and
    /// writes the pidfile.
    #[serde(default)]
    pub daemonizes: bool,
    /// When the process exits and no `kill` fault did it: `leave` it down, or `restart` it
    /// (run `start` again). Recorded in the history either way.
    #[serde(default)]
    pub on_exit: nemesis::ExitPolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// The node is ready when this port accepts connections (default: the client's port).
    pub port: Option<u16>,
    /// The node is ready when this command exits 0 on it.
    pub command: Option<String>,
    /// How long a node may take to become ready after its start, seconds.
    #[serde(default = "default_ready_timeout")]
    pub timeout_s: u64,
    /// How long the whole cluster may take, after the last stage, until one leader is known
    /// to every serving node, seconds.
    #[serde(default = "default_cluster_timeout")]
    pub cluster_timeout_s: u64,
}

// Not derived: a file without `[ready]` gets the same limits as one with an empty `[ready]`.
impl Default for Ready {
    fn default() -> Self {
        Ready {
            port: None,
            command: None,
            timeout_s: default_ready_timeout(),
            cluster_timeout_s: default_cluster_timeout(),
        }
    }
}

fn default_ready_timeout() -> u64 {
    20
}

fn default_cluster_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leader {
    /// A client call whose reply is an array describing the node's role (`["ROLE"]`).
    #[serde(default)]
    pub resp: Vec<String>,
    /// Or (protocol `postgres`) a query whose first row's columns are the fields.
    pub sql: Option<String>,
    /// Or (protocol `http`) a request (method, path, body) whose JSON answer gives the
    /// fields at the JSON pointers of `fields`.
    pub http: Option<toml::Value>,
    /// JSON pointers of the `http` call's fields, in index order.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Or a command run on each node whose output says (fields by index, like the reply).
    pub command: Option<String>,
    /// How the command's output splits into fields: `whitespace` (default) or `lines`.
    pub split: Option<String>,
    /// Index of the role element in the reply.
    #[serde(default)]
    pub role_index: usize,
    /// Role values meaning "this node leads".
    #[serde(default = "default_leader_values")]
    pub leader_values: Vec<String>,
    /// Role values meaning "election in progress" (others mean follower).
    #[serde(default)]
    pub candidate_values: Vec<String>,
    /// Index of the term (an integer), if the system has terms.
    pub term_index: Option<usize>,
    /// Index of the element naming who this node thinks leads: a node name, its IP or
    /// `IP:PORT`. A leader that names nobody names itself.
    pub leader_index: Option<usize>,
    /// Index of the last applied record (the convergence wait), if known.
    pub applied_index: Option<usize>,
    /// Index of the last committed record, if known.
    pub committed_index: Option<usize>,
    /// Index of the node's own id, for systems that name the leader by an id of their own
    /// (etcd's member id): faultline learns each node's id from its answers, resolves the
    /// leader field through them, and a node whose leader field is its own id leads.
    pub id_index: Option<usize>,
    /// `read_set`: a node's claim to lead counts only when it then serves that client op and
    /// still claims the same role and term (a linearizable read confirms that a quorum still
    /// follows it); otherwise its role is `unconfirmed-leader`. Raft and Paxos leaders cut
    /// off from the majority go on saying "leader" until a timer fires.
    pub confirm: Option<String>,
}

fn default_leader_values() -> Vec<String> {
    vec!["leader".into()]
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    /// Files collected from each node into the run (by their base name).
    #[serde(default)]
    pub files: Vec<String>,
}

/// What the command line gives the file: `--bug` flags and `--set KEY=VALUE` pairs.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub bugs: Vec<String>,
    pub sets: BTreeMap<String, String>,
    /// `--read-from`: the `{read_from}` placeholder.
    pub read_from: workloads::ReadFrom,
}

/// Parses `--set KEY=VALUE` arguments.
pub fn parse_sets(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return Err(format!("--set {a:?}: expected KEY=VALUE"));
        };
        if k.is_empty() {
            return Err(format!("--set {a:?}: empty KEY"));
        }
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// A loaded, validated system file.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub spec: Spec,
    /// The file, as given.
    pub path: PathBuf,
    /// `{set.KEY}` values: the file's defaults overridden by `--set`.
    pub sets: BTreeMap<String, String>,
    pub bugs: Vec<String>,
    /// Where the test's clients read (`{read_from}`: a system may serve follower reads only
    /// when asked to).
    pub read_from: workloads::ReadFrom,
    /// `[files]` resolved: local file -> remote path template ([`Loaded::resolve_files`]).
    pub local_files: Vec<(PathBuf, String)>,
    pub protocol: Protocol,
    /// `[client.ops]` read in the protocol's form.
    pub ops: BTreeMap<&'static str, OpTemplate>,
    /// `[leader.http]` read.
    pub leader_http: Option<HttpTemplate>,
}

/// Reads and validates a system file.
pub fn load(path: &Path, inputs: &Inputs) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(path, &text, inputs)
}

/// Validates the system file `text`, read from `path` (named in errors; relative `[files]`
/// are resolved against its directory).
pub fn parse(path: &Path, text: &str, inputs: &Inputs) -> Result<Loaded, String> {
    let file = path.display();
    let spec: Spec = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_owned();
        match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                let at = text.lines().nth(line - 1).unwrap_or("").trim();
                format!("{file}:{line}: {msg} (at `{at}`)")
            }
            None => format!("{file}: {msg}"),
        }
    })?;
    let mut sets = spec.defaults.clone();
    sets.extend(inputs.sets.clone());
    let mut loaded = Loaded {
        spec,
        path: path.to_path_buf(),
        sets,
        bugs: inputs.bugs.clone(),
        read_from: inputs.read_from,
        local_files: Vec::new(),
        protocol: Protocol::Resp,
        ops: BTreeMap::new(),
        leader_http: None,
    };
    loaded.compile().map_err(|e| format!("{file}: {e}"))?;
    loaded.validate().map_err(|e| format!("{file}: {e}"))?;
    loaded
        .check_inputs(inputs)
        .map_err(|e| format!("{file}: {e}"))?;
    Ok(loaded)
}

impl Loaded {
    /// Finds the local files of `[files]`: `{artifact.NAME}` located like leaderkv's binary,
    /// `{env.VAR}` and `{set.KEY}` expanded, relative paths taken from the file's directory.
    /// Errors are the user's (exit 254).
    pub fn resolve_files(&mut self) -> crate::Result<()> {
        let file = self.path.display().to_string();
        let base = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut files = Vec::new();
        for (local, remote) in &self.spec.files {
            let err = std::cell::RefCell::new(None);
            let lookup = |name: &str| -> Option<String> {
                if let Some(a) = name.strip_prefix("artifact.") {
                    let var = format!("FAULTLINE_{}_BIN", a.to_uppercase().replace('-', "_"));
                    return match crate::artifact::locate_artifact(a, &var, a) {
                        Ok(p) => Some(p.display().to_string()),
                        Err(e) => {
                            *err.borrow_mut() = Some(e);
                            None
                        }
                    };
                }
                self.common(name)
            };
            let path = match expand(local, &lookup) {
                Ok(p) => p,
                Err(e) => {
                    return Err(match err.into_inner() {
                        Some(e) => e.context(format!("{file}: files.{local:?}")),
                        None => crate::Error::invalid(format!("{file}: files.{local:?}: {e}")),
                    });
                }
            };
            let path = base.join(path);
            if !path.is_file() {
                return Err(crate::Error::invalid(format!(
                    "{file}: files.{local:?}: {} is not a file",
                    path.display()
                )));
            }
            files.push((path, remote.clone()));
        }
        self.local_files = files;
        Ok(())
    }

    /// The value of a placeholder shared by every context (`set.*`, `env.*`).
    fn common(&self, name: &str) -> Option<String> {
        if let Some(k) = name.strip_prefix("set.") {
            return self.sets.get(k).cloned();
        }
        if let Some(v) = name.strip_prefix("env.") {
            return std::env::var(v).ok();
        }
        None
    }

    /// Checks a template's placeholders against `vars` (plus `set.*`, `env.*`).
    fn check(&self, key: &str, tpl: &str, vars: &[&str]) -> Result<(), String> {
        let bad = std::cell::RefCell::new(None);
        let lookup = |name: &str| -> Option<String> {
            if vars.contains(&name) || (vars.contains(&"artifact.*") && artifact_name(name)) {
                return Some(String::new());
            }
            if let Some(v) = self.common(name) {
                return Some(v);
            }
            bad.borrow_mut().get_or_insert_with(|| name.to_owned());
            None
        };
        match expand(tpl, &lookup) {
            Ok(_) => Ok(()),
            Err(e) => {
                let bad = bad.borrow().clone();
                let hint = match bad.as_deref() {
                    Some(n) if n.starts_with("set.") => format!(
                        " (no value: pass --set {}=VALUE or add it to [defaults])",
                        &n[4..]
                    ),
                    Some(n) if n.starts_with("env.") => {
                        format!(" (environment variable {} is not set)", &n[4..])
                    }
                    _ => format!(" (known here: {})", known_list(vars)),
                };
                Err(format!("{key}: {e}{hint}"))
            }
        }
    }

    /// Every template of the file (for what the command line passes in).
    fn templates(&self) -> Vec<&str> {
        let s = &self.spec;
        let c = &s.commands;
        let mut t: Vec<&str> = vec![&c.start];
        t.extend(s.files.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]));
        t.extend(s.configs.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]));
        t.extend(
            [&c.setup, &c.stop, &c.wipe]
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
        t.extend(s.process.pidfile.as_deref());
        t.extend(s.process.also.iter().map(String::as_str));
        t.extend(s.process.pids_command.as_deref());
        t.extend(s.ready.command.as_deref());
        for r in s.roles.values() {
            t.extend(
                [&r.setup, &r.start, &r.stop, &r.wipe]
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            );
            t.extend(r.ready.as_ref().and_then(|r| r.command.as_deref()));
        }
        t.extend(s.leader.command.as_deref());
        t.extend(s.leader.resp.iter().map(String::as_str));
        t.extend(s.leader.sql.as_deref());
        t.extend(self.leader_http.iter().flat_map(HttpTemplate::strings));
        t.extend(s.logs.files.iter().map(String::as_str));
        for op in self.ops.values() {
            t.extend(op.strings());
        }
        t
    }

    /// Refuses `--set KEY` the file never uses and `--bug` without `{bug_flags}`: typos that
    /// would silently test something else.
    fn check_inputs(&self, inputs: &Inputs) -> Result<(), String> {
        let templates = self.templates();
        let mut used: Vec<&str> = templates
            .iter()
            .flat_map(|t| t.split("{set.").skip(1))
            .filter_map(|rest| rest.split_once('}').map(|(k, _)| k))
            .collect();
        used.sort_unstable();
        used.dedup();
        for k in inputs.sets.keys() {
            if !used.contains(&k.as_str()) {
                let has = if used.is_empty() {
                    "none".to_owned()
                } else {
                    used.join(", ")
                };
                return Err(format!(
                    "--set {k}: the file has no {{set.{k}}} placeholder (it has: {has})"
                ));
            }
        }
        if !inputs.bugs.is_empty() && !templates.iter().any(|t| t.contains("{bug_flags}")) {
            return Err(format!(
                "--bug {}: the file has no {{bug_flags}} placeholder, so the bug would not \
                 reach the system",
                inputs.bugs.join(", --bug ")
            ));
        }
        Ok(())
    }

    /// The template of a `[client.ops]` op.
    pub fn op(&self, name: &str) -> Option<&OpTemplate> {
        self.ops.get(name)
    }

    /// Expands a node-level template with `vars` (validated: cannot fail on a known key).
    pub fn render(&self, tpl: &str, vars: &BTreeMap<String, String>) -> crate::Result<String> {
        expand(tpl, &|n| vars.get(n).cloned().or_else(|| self.common(n)))
            .map_err(|e| err!("{}: {e} in {tpl:?}", self.path.display()))
    }

    /// The client port.
    pub fn client_port(&self) -> u16 {
        self.spec.client.port.unwrap_or(self.spec.port)
    }

    /// `{bug_flags}`: `--bug B` for each `--bug`, shell-quoted.
    pub fn bug_flags(&self) -> String {
        self.bugs
            .iter()
            .map(|b| format!("--bug {}", control::shell_quote(b)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn op_names() -> String {
    OPS.iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
