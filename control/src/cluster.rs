//! [`LocalCluster`]: a cluster of network namespaces on a Linux bridge of this machine.
//!
//! Node `nI` lives in the namespace `<prefix>nI` (default prefix `fl-`, so `fl-n1`), attached by
//! a veth pair (`<prefix>nIh` on the host, `eth0` inside) to the bridge `<prefix>br0`, which holds
//! the subnet's first address (default subnet 10.77.0.0/24: bridge 10.77.0.1, node I at
//! 10.77.0.(10+I)), so the controller on the host reaches every node directly. A blackhole
//! route for the subnet's /16 keeps every packet for a cluster address on this machine.
//! With `ssh`, every node runs its own `sshd` on its address, port 22, with a host key and an
//! authorized client key generated for the cluster, and a known_hosts file listing every node.
//!
//! Every resource is written to the state file (`<state_root>/<prefix>/cluster.json`) *before*
//! it is created, so `down` (or the next `up`) removes exactly what a crashed run made, and
//! nothing else.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::prereq;
use crate::remote::{Node, Remote};
use crate::ssh::{HostKeyCheck, SshAuth, SshOptions, SshRemote};

/// Default namespace/link name prefix.
pub const DEFAULT_PREFIX: &str = "fl-";
/// Default subnet.
pub const DEFAULT_SUBNET: &str = "10.77.0.0/24";
/// Default directory holding one state folder per cluster prefix.
pub const DEFAULT_STATE_ROOT: &str = "/run/faultline";
/// Environment variable overriding [`DEFAULT_STATE_ROOT`].
pub const STATE_ROOT_ENV: &str = "FAULTLINE_STATE_DIR";

/// Options of [`LocalCluster::up`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterOptions {
    /// Number of nodes (`n1..nN`), 1..=200.
    pub nodes: usize,
    /// IPv4 subnet, a /24 or larger (`10.77.0.0/24`).
    pub subnet: String,
    /// Name prefix of namespaces and links (at most 8 characters).
    pub prefix: String,
    /// Run an sshd per node.
    pub ssh: bool,
    /// Where state folders live (default [`DEFAULT_STATE_ROOT`], or `$FAULTLINE_STATE_DIR`).
    pub state_root: PathBuf,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 5,
            subnet: DEFAULT_SUBNET.into(),
            prefix: DEFAULT_PREFIX.into(),
            ssh: false,
            state_root: default_state_root(),
        }
    }
}

/// [`DEFAULT_STATE_ROOT`] unless `$FAULTLINE_STATE_DIR` is set.
pub fn default_state_root() -> PathBuf {
    std::env::var_os(STATE_ROOT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_ROOT))
}

/// One node of the local cluster as recorded in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub node: Node,
    /// Network namespace name.
    pub netns: String,
    /// Host side of the veth pair.
    pub veth: String,
    /// pid of this node's sshd, once started.
    pub sshd_pid: Option<u32>,
}

/// The state file: everything the cluster made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub options: ClusterOptions,
    /// Set once `up` finished.
    pub complete: bool,
    pub bridge: String,
    pub bridge_addr: String,
    pub nodes: Vec<NodeState>,
    /// The blackhole route of the subnet's /16 (e.g. `10.77.0.0/16`) when it is faultline's
    /// (tagged `proto 77`; removed by the last cluster using it), `None` when someone else's
    /// route for that /16 was there already.
    pub blackhole: Option<String>,
    /// iptables FORWARD rules this cluster inserted (as `iptables` argument lists without -I/-D).
    pub forward_rules: Vec<Vec<String>>,
    /// Files and directories this cluster created (removed on `down`).
    pub files: Vec<PathBuf>,
    /// Client private key (with `ssh`).
    pub client_key: Option<PathBuf>,
    /// known_hosts listing every node's host key (with `ssh`).
    pub known_hosts: Option<PathBuf>,
}

/// A local cluster that is up (or being brought up).
#[derive(Debug, Clone)]
pub struct LocalCluster {
    state: ClusterState,
    dir: PathBuf,
}

/// Environment hook for tests: `netns` or `sshd` makes `up` stop after that stage (printing
/// `faultline-test: paused at STAGE` on stderr) and sleep, so a test can SIGKILL it half-way.
pub const PAUSE_HOOK_ENV: &str = "FAULTLINE_TEST_UP_PAUSE";

const STATE_FILE: &str = "cluster.json";

impl LocalCluster {
    /// Brings a cluster up. If a cluster with the same prefix exists, keeps it when it is complete,
    /// healthy and has the same options; otherwise (half-built, stale, different options) tears it
    /// down and builds a fresh one. Blocking (runs `ip`, `sshd`...): from async code, call it
    /// inside `tokio::task::spawn_blocking`.
    pub fn up(opts: &ClusterOptions) -> Result<Self> {
        let plan = Plan::new(opts)?;
        prereq::check(&prereq::cluster_tools(opts.ssh))?;
        let _lock = GlobalLock::take(&opts.state_root)?;
        let dir = cluster_dir(&opts.state_root, &opts.prefix);
        if let Some(old) = Self::read_state(&dir)? {
            if old.state.complete && old.state.options == *opts && old.problems().is_empty() {
                return Ok(old);
            }
            tracing::info!(
                "rebuilding the half-built or stale local cluster {}",
                dir.display()
            );
            old.teardown()?;
        } else if let Some(orphan) = Self::orphan(&opts.state_root, &opts.prefix) {
            tracing::warn!(
                "removing namespaces and links named {}* left without a state file",
                opts.prefix
            );
            orphan.teardown()?;
        }
        let mut c = LocalCluster {
            state: plan.state,
            dir,
        };
        c.build(&plan.subnet)?;
        Ok(c)
    }

    /// [`LocalCluster::up`] on a blocking thread, for async callers.
    #[allow(clippy::result_large_err)]
    pub async fn up_async(opts: ClusterOptions) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::up(&opts))
            .await
            .map_err(|e| Error::local("bring the local cluster up", e))?
    }

    /// [`LocalCluster::down`] on a blocking thread, for async callers.
    #[allow(clippy::result_large_err)]
    pub async fn down_async(self) -> Result<()> {
        tokio::task::spawn_blocking(move || self.down())
            .await
            .map_err(|e| Error::local("bring the local cluster down", e))?
    }

    /// Loads the cluster with `prefix` from its state file under `state_root`, if any.
    pub fn load(state_root: &Path, prefix: &str) -> Result<Option<Self>> {
        Self::read_state(&cluster_dir(state_root, prefix))
    }

    /// Tears down the cluster with `prefix` if a state file exists. Returns whether there was one.
    pub fn down_prefix(state_root: &Path, prefix: &str) -> Result<bool> {
        prereq::check(&prereq::cluster_tools(false))?;
        let lock = GlobalLock::take(state_root)?;
        let r = match Self::load(state_root, prefix)? {
            Some(c) => c.teardown().map(|_| true),
            None => match Self::orphan(state_root, prefix) {
                Some(c) => c.teardown().map(|_| true),
                None => Ok(false),
            },
        };
        lock.remove_if_last();
        r
    }

    /// Removes everything the state file lists (tolerating what is already gone), then the state
    /// folder. Errors if something could not be removed (the state file is kept then).
    pub fn down(self) -> Result<()> {
        prereq::check(&prereq::cluster_tools(false))?;
        let lock = GlobalLock::take(&self.state.options.state_root)?;
        let r = self.teardown();
        lock.remove_if_last();
        r
    }

    /// What is wrong with a loaded cluster (empty when it is complete and healthy).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.state.complete {
            p.push("bring-up did not finish (a crashed or killed `cluster up`)".to_string());
        }
        if !Path::new("/sys/class/net")
            .join(&self.state.bridge)
            .exists()
        {
            p.push(format!("bridge {} is missing", self.state.bridge));
        }
        for n in &self.state.nodes {
            if !Path::new("/run/netns").join(&n.netns).exists() {
                p.push(format!(
                    "namespace {} of node {} is missing",
                    n.netns, n.node.name
                ));
            }
            if !Path::new("/sys/class/net").join(&n.veth).exists() {
                p.push(format!(
                    "link {} of node {} is missing",
                    n.veth, n.node.name
                ));
            }
            if self.state.options.ssh {
                match n.sshd_pid {
                    Some(pid) if pid_alive(pid) => {}
                    _ => p.push(format!("sshd of node {} is not running", n.node.name)),
                }
            }
        }
        p
    }

    /// The state as recorded.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// The state folder of this cluster.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The nodes `n1..nN` with their addresses.
    pub fn nodes(&self) -> Vec<Node> {
        self.state.nodes.iter().map(|n| n.node.clone()).collect()
    }

    /// The network namespace of the node named `name`.
    pub fn netns(&self, name: &str) -> Result<&str> {
        Ok(&self.node_state(name)?.netns)
    }

    /// A [`crate::NetnsRemote`] for the node named `name`.
    pub fn remote(&self, name: &str) -> Result<Arc<dyn Remote>> {
        let n = self.node_state(name)?;
        Ok(Arc::new(crate::NetnsRemote::new(
            n.node.clone(),
            n.netns.clone(),
        )))
    }

    /// [`crate::NetnsRemote`]s for every node, in order.
    pub fn remotes(&self) -> Vec<Arc<dyn Remote>> {
        self.state
            .nodes
            .iter()
            .map(|n| {
                Arc::new(crate::NetnsRemote::new(n.node.clone(), n.netns.clone()))
                    as Arc<dyn Remote>
            })
            .collect()
    }

    /// SSH options that reach this cluster's sshds (root, the cluster key, the cluster
    /// known_hosts with strict checking). Errors if the cluster runs no sshd.
    pub fn ssh_options(&self) -> Result<SshOptions> {
        match (&self.state.client_key, &self.state.known_hosts) {
            (Some(key), Some(kh)) if self.state.options.ssh => Ok(SshOptions {
                user: "root".into(),
                port: 22,
                auth: SshAuth::Key(key.clone()),
                host_key_check: HostKeyCheck::KnownHosts(kh.clone()),
                ..SshOptions::default()
            }),
            _ => Err(Error::Invalid {
                action: "get SSH options of the local cluster".into(),
                cause: "it was brought up without --ssh (run `faultline cluster up --ssh`)".into(),
            }),
        }
    }

    /// Connects an [`crate::SshRemote`] to the node named `name` through its sshd.
    pub async fn ssh_remote(&self, name: &str) -> Result<Arc<dyn Remote>> {
        let node = self.node_state(name)?.node.clone();
        let opts = self.ssh_options()?;
        Ok(Arc::new(SshRemote::connect(node, opts).await?))
    }

    fn node_state(&self, name: &str) -> Result<&NodeState> {
        self.state
            .nodes
            .iter()
            .find(|n| n.node.name == name)
            .ok_or_else(|| {
                Error::local(
                    format!("find node {name}"),
                    format!(
                        "the local cluster has nodes n1..n{}",
                        self.state.nodes.len()
                    ),
                )
            })
    }

    /// Namespaces and links that follow this prefix's naming scheme (`<prefix>nI`,
    /// `<prefix>nIh`, `<prefix>br0`) but have no state file (it was deleted, or the state
    /// directory was changed): the prefix is faultline's, so they are adopted for removal.
    fn orphan(state_root: &Path, prefix: &str) -> Option<Self> {
        let node_index = |name: &str, suffix: &str| -> Option<usize> {
            let rest = name
                .strip_prefix(prefix)?
                .strip_prefix('n')?
                .strip_suffix(suffix)?;
            if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            rest.parse().ok()
        };
        let names = |dir: &str| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let netns = names("/run/netns");
        let links = names("/sys/class/net");
        let bridge = format!("{prefix}br0");
        let max = netns
            .iter()
            .filter_map(|n| node_index(n, ""))
            .chain(links.iter().filter_map(|n| node_index(n, "h")))
            .max();
        let has_bridge = links.contains(&bridge);
        if max.is_none() && !has_bridge {
            return None;
        }
        let nodes = (1..=max.unwrap_or(0))
            .map(|i| NodeState {
                node: Node::new(format!("n{i}"), ""),
                netns: format!("{prefix}n{i}"),
                veth: format!("{prefix}n{i}h"),
                sshd_pid: None,
            })
            .collect();
        let options = ClusterOptions {
            prefix: prefix.into(),
            state_root: state_root.into(),
            ..Default::default()
        };
        let state = ClusterState {
            forward_rules: vec![forward_rule(&bridge, prefix)],
            options,
            complete: false,
            bridge,
            bridge_addr: String::new(),
            nodes,
            blackhole: None,
            files: Vec::new(),
            client_key: None,
            known_hosts: None,
        };
        Some(LocalCluster {
            state,
            dir: cluster_dir(state_root, prefix),
        })
    }

    fn read_state(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let state: ClusterState = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::local(format!("read the cluster state {}", path.display()), e)
                })?;
                Ok(Some(LocalCluster {
                    state,
                    dir: dir.to_path_buf(),
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::local(
                format!("read the cluster state {}", path.display()),
                e,
            )),
        }
    }

    fn save(&self) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(&self.state).expect("state serializes");
        (|| {
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        })()
        .map_err(|e| Error::local(format!("write the cluster state {}", path.display()), e))
    }

    fn build(&mut self, subnet: &Subnet) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::local(format!("create {}", self.dir.display()), e))?;
        // Intent first: every resource is in the state file before it exists.
        // The blackhole route is tagged `proto 77`: any such route is faultline's; the last
        // cluster using its /16 removes it. A route for that /16 of someone else's is left alone.
        let blackhole = subnet.blackhole();
        let bh_exists = route_exists(&blackhole, false)?;
        if !bh_exists || route_exists(&blackhole, true)? {
            self.state.blackhole = Some(blackhole.clone());
        }
        let rule = forward_rule(&self.state.bridge, &self.state.options.prefix);
        self.state.forward_rules = vec![rule.clone()];
        self.save()?;

        if !bh_exists {
            run(
                "add the blackhole route",
                "ip",
                &[
                    "route",
                    "add",
                    "blackhole",
                    &blackhole,
                    "proto",
                    BLACKHOLE_PROTO,
                ],
                None,
            )?;
        }
        let exact = run(
            "inspect routes",
            "ip",
            &["-4", "route", "show", "exact", &subnet.cidr()],
            None,
        )?;
        if !exact.trim().is_empty() {
            return Err(Error::Invalid {
                action: "bring the local cluster up".into(),
                cause: format!(
                    "the subnet {} is already in use on this machine (`{}`); choose another --subnet",
                    subnet.cidr(),
                    exact.trim()
                ),
            });
        }
        let mut batch = String::new();
        for n in &self.state.nodes {
            batch += &format!("netns add {}\n", n.netns);
        }
        let br = &self.state.bridge;
        batch += &format!("link add {br} type bridge\n");
        batch += &format!("link set {br} up\n");
        batch += &format!(
            "addr add {}/{} dev {br}\n",
            self.state.bridge_addr, subnet.len
        );
        for n in &self.state.nodes {
            batch += &format!(
                "link add {} type veth peer name eth0 netns {}\n",
                n.veth, n.netns
            );
            batch += &format!("link set {} master {br} up\n", n.veth);
        }
        run(
            "create namespaces and links",
            "ip",
            &["-batch", "-"],
            Some(batch.as_bytes()),
        )?;
        pause_hook("netns");
        let mut iptables_args = vec!["-w".to_string(), "-I".into(), "FORWARD".into(), "1".into()];
        iptables_args.extend(rule.iter().cloned());
        run_owned(
            "allow forwarding on the cluster bridge",
            "iptables",
            &iptables_args,
            None,
        )?;

        let results: Vec<Result<String>> = std::thread::scope(|s| {
            let hs: Vec<_> = self
                .state
                .nodes
                .iter()
                .map(|n| {
                    let batch = format!(
                        "link set lo up\naddr add {}/{} dev eth0\nlink set eth0 up\n",
                        n.node.addr, subnet.len
                    );
                    s.spawn(move || {
                        run(
                            &format!("configure the namespace {}", n.netns),
                            "ip",
                            &["-n", &n.netns, "-batch", "-"],
                            Some(batch.as_bytes()),
                        )
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        for r in results {
            r?;
        }
        if self.state.options.ssh {
            self.start_sshds()?;
        }
        pause_hook("sshd");
        self.state.complete = true;
        self.save()
    }

    fn start_sshds(&mut self) -> Result<()> {
        let sshd = prereq::tool_path("sshd").expect("checked");
        // Privilege separation directory sshd insists on.
        let run_sshd = PathBuf::from("/run/sshd");
        if !run_sshd.exists()
            || siblings_use(
                &self.state.options.state_root,
                &self.state.options.prefix,
                |s| s.files.contains(&run_sshd),
            )
        {
            self.state.files.push(run_sshd.clone());
        }
        let key = self.dir.join("id_ed25519");
        let kh = self.dir.join("known_hosts");
        self.state.client_key = Some(key.clone());
        self.state.known_hosts = Some(kh.clone());
        self.save()?;
        if !run_sshd.exists() {
            std::fs::create_dir_all(&run_sshd).map_err(|e| Error::local("create /run/sshd", e))?;
            let _ = std::fs::set_permissions(
                &run_sshd,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            );
        }
        // Keys: the client key and one host key per node, generated in parallel.
        let mut keys = vec![key.clone()];
        for n in &self.state.nodes {
            keys.push(self.node_dir(&n.node.name).join("ssh_host_ed25519_key"));
        }
        for n in &self.state.nodes {
            let d = self.node_dir(&n.node.name);
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::local(format!("create {}", d.display()), e))?;
        }
        let results: Vec<Result<String>> = std::thread::scope(|s| {
            let hs: Vec<_> = keys
                .iter()
                .map(|k| {
                    s.spawn(move || {
                        let _ = std::fs::remove_file(k);
                        let _ = std::fs::remove_file(k.with_extension("pub"));
                        let ks = k.to_string_lossy().to_string();
                        run(
                            "generate an SSH key",
                            "ssh-keygen",
                            &[
                                "-q",
                                "-t",
                                "ed25519",
                                "-N",
                                "",
                                "-C",
                                "faultline-cluster",
                                "-f",
                                &ks,
                            ],
                            None,
                        )
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        for r in results {
            r?;
        }
        let read_pub = |p: &Path| -> Result<String> {
            let pubp = PathBuf::from(format!("{}.pub", p.display()));
            std::fs::read_to_string(&pubp)
                .map(|s| s.trim().to_string())
                .map_err(|e| Error::local(format!("read {}", pubp.display()), e))
        };
        let authorized = self.dir.join("authorized_keys");
        write_file(&authorized, &format!("{}\n", read_pub(&key)?))?;
        let mut known = String::new();
        for (n, hk) in self.state.nodes.iter().zip(&keys[1..]) {
            let pubkey = read_pub(hk)?;
            let mut w = pubkey.split_whitespace();
            known += &format!(
                "{} {} {}\n",
                n.node.addr,
                w.next().unwrap_or(""),
                w.next().unwrap_or("")
            );
        }
        write_file(&kh, &known)?;
        // Configs, then every sshd at once.
        let mut children = Vec::new();
        for (n, hk) in self.state.nodes.iter().zip(&keys[1..]) {
            let d = self.node_dir(&n.node.name);
            let cfg = d.join("sshd_config");
            write_file(
                &cfg,
                &sshd_config(&n.node.addr, hk, &d.join("sshd.pid"), &authorized),
            )?;
            let child =
                std::process::Command::new(prereq::tool_path("ip").unwrap_or_else(|| "ip".into()))
                    .args(["netns", "exec", &n.netns])
                    .arg(&sshd)
                    .arg("-f")
                    .arg(&cfg)
                    .arg("-E")
                    .arg(d.join("sshd.log"))
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| Error::local(format!("start sshd of node {}", n.node.name), e))?;
            children.push(child);
        }
        let mut errors = Vec::new();
        for (n, child) in self.state.nodes.iter().zip(children) {
            let out = child
                .wait_with_output()
                .map_err(|e| Error::local(format!("start sshd of node {}", n.node.name), e))?;
            if !out.status.success() {
                let log = std::fs::read_to_string(self.node_dir(&n.node.name).join("sshd.log"))
                    .unwrap_or_default();
                errors.push(format!(
                    "node {} ({}): {}{}",
                    n.node.name,
                    n.node.addr,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    log.trim()
                ));
            }
        }
        // Record pids, then wait for every sshd to accept connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        let dirs: Vec<PathBuf> = self
            .state
            .nodes
            .iter()
            .map(|n| self.node_dir(&n.node.name))
            .collect();
        for (n, d) in self.state.nodes.iter_mut().zip(&dirs) {
            let pidfile = d.join("sshd.pid");
            loop {
                if let Some(pid) = std::fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    n.sshd_pid = Some(pid);
                    break;
                }
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.save()?;
        if !errors.is_empty() {
            return Err(Error::local("start sshd", errors.join("; ")));
        }
        for n in &self.state.nodes {
            let addr = SocketAddr::new(n.node.addr.parse().expect("ip"), 22);
            loop {
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::local(
                        format!("start sshd of node {}", n.node.name),
                        format!(
                            "nothing listens on {addr} after 10 s; see {}",
                            self.node_dir(&n.node.name).join("sshd.log").display()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }

    fn node_dir(&self, name: &str) -> PathBuf {
        self.dir.join("nodes").join(name)
    }

    /// Removes everything recorded; caller holds the global lock.
    fn teardown(self) -> Result<()> {
        let st = &self.state;
        // 1. Every process in our namespaces (sshd, daemons started on nodes), by pid.
        for n in &st.nodes {
            if let Some(pid) = n.sshd_pid {
                if pid_in_netns(pid, &n.netns) {
                    kill9(pid);
                }
            }
            if Path::new("/run/netns").join(&n.netns).exists() {
                if let Ok(out) = run("list processes", "ip", &["netns", "pids", &n.netns], None) {
                    for pid in out.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
                        kill9(pid);
                    }
                }
            }
        }
        // 2. Namespaces (their eth0 and so the host-side veth go with them), links, bridge.
        let mut batch = String::new();
        for n in &st.nodes {
            if Path::new("/run/netns").join(&n.netns).exists() {
                batch += &format!("netns del {}\n", n.netns);
            }
        }
        for n in &st.nodes {
            if Path::new("/sys/class/net").join(&n.veth).exists() {
                batch += &format!("link del {}\n", n.veth);
            }
        }
        if Path::new("/sys/class/net").join(&st.bridge).exists() {
            batch += &format!("link del {}\n", st.bridge);
        }
        if !batch.is_empty() {
            // -force: go on after an error (something vanished meanwhile); checked below.
            let _ = run(
                "remove namespaces and links",
                "ip",
                &["-force", "-batch", "-"],
                Some(batch.as_bytes()),
            );
        }
        // 3. iptables rules we inserted (each at most once per insert; delete until gone).
        for rule in &st.forward_rules {
            for _ in 0..8 {
                let mut a = vec!["-w".to_string(), "-D".into(), "FORWARD".into()];
                a.extend(rule.iter().cloned());
                if run_owned("remove the forwarding rule", "iptables", &a, None).is_err() {
                    break;
                }
            }
        }
        // 4. Shared things, last one out: the blackhole route and /run/sshd.
        let root = &st.options.state_root;
        for bh in faultline_blackholes()? {
            let used = siblings_use(root, &st.options.prefix, |s| {
                Subnet::parse(&s.options.subnet)
                    .map(|n| n.blackhole())
                    .ok()
                    .as_deref()
                    == Some(&bh)
            });
            if !used {
                run(
                    "remove the blackhole route",
                    "ip",
                    &["route", "del", "blackhole", &bh, "proto", BLACKHOLE_PROTO],
                    None,
                )?;
            }
        }
        for f in &st.files {
            if !siblings_use(root, &st.options.prefix, |s| s.files.contains(f)) {
                if f.is_dir() {
                    let _ = std::fs::remove_dir(f);
                } else {
                    let _ = std::fs::remove_file(f);
                }
            }
        }
        // 5. Verify, then forget.
        let mut left = Vec::new();
        for n in &st.nodes {
            if Path::new("/run/netns").join(&n.netns).exists() {
                left.push(format!("namespace {}", n.netns));
            }
            if Path::new("/sys/class/net").join(&n.veth).exists() {
                left.push(format!("link {}", n.veth));
            }
        }
        if Path::new("/sys/class/net").join(&st.bridge).exists() {
            left.push(format!("bridge {}", st.bridge));
        }
        if !left.is_empty() {
            return Err(Error::local(
                "bring the local cluster down",
                format!("could not remove {}", left.join(", ")),
            ));
        }
        std::fs::remove_dir_all(&self.dir)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| Error::local(format!("remove {}", self.dir.display()), e))
    }
}

/// The validated plan of a cluster.
struct Plan {
    state: ClusterState,
    subnet: Subnet,
}

impl Plan {
    fn new(opts: &ClusterOptions) -> Result<Self> {
        let bad = |cause: String| Error::Invalid {
            action: "bring the local cluster up".into(),
            cause,
        };
        if opts.prefix.is_empty()
            || opts.prefix.len() > 8
            || !opts
                .prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(bad(format!(
                "bad prefix `{}`: use 1 to 8 characters among a-z, 0-9 and `-`",
                opts.prefix
            )));
        }
        let subnet = Subnet::parse(&opts.subnet).map_err(bad)?;
        if opts.nodes == 0 || opts.nodes > 200 {
            return Err(bad(format!("bad node count {}: use 1 to 200", opts.nodes)));
        }
        let bridge = format!("{}br0", opts.prefix);
        let nodes = (1..=opts.nodes)
            .map(|i| NodeState {
                node: Node::new(format!("n{i}"), subnet.host(10 + i as u32).to_string()),
                netns: format!("{}n{i}", opts.prefix),
                veth: format!("{}n{i}h", opts.prefix),
                sshd_pid: None,
            })
            .collect();
        let state = ClusterState {
            options: opts.clone(),
            complete: false,
            bridge,
            bridge_addr: subnet.host(1).to_string(),
            nodes,
            blackhole: None,
            forward_rules: Vec::new(),
            files: Vec::new(),
            client_key: None,
            known_hosts: None,
        };
        Ok(Plan { state, subnet })
    }
}

/// An IPv4 subnet of length 16..=24.
#[derive(Debug, Clone, Copy)]
struct Subnet {
    base: u32,
    len: u32,
}

impl Subnet {
    fn parse(s: &str) -> std::result::Result<Self, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("bad subnet `{s}`: expected CIDR like 10.77.0.0/24"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("bad subnet `{s}`: `{ip}` is not an IPv4 address"))?;
        let len: u32 = len
            .parse()
            .map_err(|_| format!("bad subnet `{s}`: bad prefix length"))?;
        if !(16..=24).contains(&len) {
            return Err(format!(
                "bad subnet `{s}`: the prefix length must be 16 to 24"
            ));
        }
        let mask = u32::MAX << (32 - len);
        let base = u32::from(ip) & mask;
        let o = Ipv4Addr::from(base).octets();
        if !(o[0] == 10
            || (o[0] == 172 && (16..32).contains(&o[1]))
            || (o[0] == 192 && o[1] == 168))
        {
            return Err(format!(
                "bad subnet `{s}`: use a private range (10/8, 172.16/12, 192.168/16)"
            ));
        }
        Ok(Subnet { base, len })
    }

    fn host(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + i)
    }

    fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.base), self.len)
    }

    /// The /16 around the subnet.
    fn blackhole(&self) -> String {
        format!("{}/16", Ipv4Addr::from(self.base & 0xffff_0000))
    }
}

fn cluster_dir(root: &Path, prefix: &str) -> PathBuf {
    let p = prefix.trim_end_matches('-');
    root.join(if p.is_empty() { prefix } else { p })
}

/// True if another cluster's state under `root` (not `prefix`) satisfies `f`.
fn siblings_use(root: &Path, prefix: &str, f: impl Fn(&ClusterState) -> bool) -> bool {
    let Ok(rd) = std::fs::read_dir(root) else {
        return false;
    };
    rd.flatten().any(|e| {
        std::fs::read(e.path().join(STATE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<ClusterState>(&b).ok())
            .is_some_and(|s| s.options.prefix != prefix && f(&s))
    })
}

fn forward_rule(bridge: &str, prefix: &str) -> Vec<String> {
    [
        "-i",
        bridge,
        "-o",
        bridge,
        "-m",
        "comment",
        "--comment",
        &format!("faultline cluster {prefix}"),
        "-j",
        "ACCEPT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Routing protocol number that marks faultline's blackhole routes.
const BLACKHOLE_PROTO: &str = "77";

/// True if a route for exactly `cidr` exists (`ours`: a blackhole tagged [`BLACKHOLE_PROTO`]).
fn route_exists(cidr: &str, ours: bool) -> Result<bool> {
    let mut args = vec!["-4", "route", "show", "exact", cidr];
    if ours {
        args.extend(["type", "blackhole", "proto", BLACKHOLE_PROTO]);
    }
    let out = run("inspect routes", "ip", &args, None)?;
    Ok(!out.trim().is_empty())
}

/// Every blackhole route tagged as faultline's.
fn faultline_blackholes() -> Result<Vec<String>> {
    let out = run(
        "inspect routes",
        "ip",
        &[
            "-4",
            "route",
            "show",
            "type",
            "blackhole",
            "proto",
            BLACKHOLE_PROTO,
        ],
        None,
    )?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect())
}

fn sshd_config(addr: &str, hostkey: &Path, pidfile: &Path, authorized: &Path) -> String {
    let sftp = [
        "/usr/lib/openssh/sftp-server",
        "/usr/libexec/openssh/sftp-server",
        "/usr/libexec/sftp-server",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("internal-sftp");
    format!(
        "# generated by faultline for a local cluster node\n\
         ListenAddress {addr}:22\n\
         HostKey {}\n\
         PidFile {}\n\
         AuthorizedKeysFile {}\n\
         StrictModes no\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         UseDNS no\n\
         PrintMotd no\n\
         MaxSessions 100\n\
         MaxStartups 100:30:200\n\
         LogLevel ERROR\n\
         # bash reads ~/.bashrc for every command run by sshd unless SHLVL says it is nested;\n\
         # a heavy .bashrc (pyenv init, ...) would cost each exec hundreds of milliseconds.\n\
         SetEnv SHLVL=1\n\
         Subsystem sftp {sftp}\n",
        hostkey.display(),
        pidfile.display(),
        authorized.display()
    )
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::local(format!("write {}", path.display()), e))
}

fn pause_hook(stage: &str) {
    if std::env::var(PAUSE_HOOK_ENV).as_deref() == Ok(stage) {
        eprintln!("faultline-test: paused at {stage}");
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn pid_alive(pid: u32) -> bool {
    // A zombie is not alive.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, r)| !r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// True if `pid` runs in the network namespace mounted at /run/netns/`netns` (so it is ours).
fn pid_in_netns(pid: u32, netns: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(format!("/proc/{pid}/ns/net"));
    let b = std::fs::metadata(Path::new("/run/netns").join(netns));
    matches!((a, b), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev())
}

fn kill9(pid: u32) {
    // SAFETY: plain syscall on a pid we verified belongs to one of our namespaces.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// Runs a local command; errors carry the command and its stderr.
fn run(action: &str, prog: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
    let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run_owned(action, prog, &owned, stdin)
}

fn run_owned(action: &str, prog: &str, args: &[String], stdin: Option<&[u8]>) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let path = prereq::tool_path(prog).unwrap_or_else(|| PathBuf::from(prog));
    let mut child = Command::new(&path)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::local(action, format!("cannot run {prog}: {e}")))?;
    if let (Some(mut w), Some(data)) = (child.stdin.take(), stdin) {
        let _ = w.write_all(data);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::local(action, e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::local(
            action,
            format!(
                "`{prog} {}` exited with {}: {}",
                args.join(" "),
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

/// An exclusive lock on `<state_root>/lock` (flock), serialising `up`/`down` of all clusters so
/// shared resources (the blackhole route, /run/sshd) are counted right.
struct GlobalLock {
    _file: std::fs::File,
    root: PathBuf,
}

impl GlobalLock {
    fn take(root: &Path) -> Result<Self> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let path = root.join("lock");
        let mut attempts = 0;
        loop {
            attempts += 1;
            std::fs::create_dir_all(root)
                .map_err(|e| Error::local(format!("create {}", root.display()), e))?;
            let file = match std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
            {
                Ok(f) => f,
                // The last `down` removed the directory between our create and open: again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 100 => continue,
                Err(e) => return Err(Error::local(format!("open {}", path.display()), e)),
            };
            // SAFETY: flock on a descriptor we own; released when the file is closed.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if r != 0 {
                return Err(Error::local(
                    format!("lock {}", path.display()),
                    std::io::Error::last_os_error(),
                ));
            }
            // The last `down` unlinks the lock file: retry if ours is no longer the one at `path`.
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if same {
                return Ok(GlobalLock {
                    _file: file,
                    root: root.to_path_buf(),
                });
            }
        }
    }

    /// Removes the lock file and the state root when no cluster state is left (while locked).
    fn remove_if_last(&self) {
        let only_lock = std::fs::read_dir(&self.root)
            .map(|rd| rd.flatten().all(|e| e.file_name() == "lock"))
            .unwrap_or(false);
        if only_lock {
            let _ = std::fs::remove_file(self.root.join("lock"));
            let _ = std::fs::remove_dir(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.77.3.0/24").unwrap();
        assert_eq!(s.host(11).to_string(), "10.77.3.11");
        assert_eq!(s.blackhole(), "10.77.0.0/16");
        assert!(Subnet::parse("8.8.8.0/24").is_err());
        assert!(Subnet::parse("10.0.0.0/8").is_err());
        assert!(Subnet::parse("10.77.0.0").is_err());
    }

    #[test]
    fn plan_names_fit() {
        let o = ClusterOptions {
            prefix: "flt3abcd".into(),
            nodes: 200,
            subnet: "10.77.0.0/24".into(),
            ..Default::default()
        };
        let p = Plan::new(&o).unwrap();
        assert!(p.state.bridge.len() <= 15);
        assert!(
            p.state
                .nodes
                .iter()
                .all(|n| n.veth.len() <= 15 && n.netns.starts_with("flt3abcd"))
        );
        assert_eq!(p.state.nodes[0].node.addr, "10.77.0.11");
        assert!(
            Plan::new(&ClusterOptions {
                prefix: "Bad!".into(),
                ..Default::default()
            })
            .is_err()
        );
    }
}
