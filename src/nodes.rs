//! How the controller reaches the nodes, shared by `faultline exec` and `faultline test`: a
//! local cluster through its namespaces (the default), the same cluster through its per-node
//! sshds (`--ssh`, to run the SSH path exactly as against VMs), or real hosts listed in a
//! nodes file over SSH (`--nodes-file`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use control::cluster::LocalCluster;
use control::{HostKeyCheck, Node, Remote, SshAuth, SshOptions, SshRemote};

use crate::exit::{control_err, user_error};

/// How the command line reaches the nodes: the local cluster (default), its sshds, Docker
/// containers, or real hosts over SSH, with the SSH options.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SshArgs {
    /// Real hosts: a nodes file (`NAME ADDRESS` or `ADDRESS` per line), reached over SSH.
    #[arg(long)]
    pub nodes_file: Option<PathBuf>,
    /// Local cluster: go through the nodes' sshd instead of entering their namespaces.
    #[arg(long, conflicts_with = "nodes_file")]
    pub ssh: bool,
    /// Run the nodes as Docker containers (one per node, on a network of their own) instead
    /// of network namespaces.
    #[arg(long, conflicts_with_all = ["nodes_file", "ssh"])]
    pub docker: bool,
    /// The containers' image (with --docker; default: faultline's own node image, built
    /// from this machine's programs when the engine lacks it).
    #[arg(long, requires = "docker")]
    pub image: Option<String>,
    /// SSH user (default: $USER).
    #[arg(long)]
    pub ssh_user: Option<String>,
    /// SSH port.
    #[arg(long, default_value_t = 22)]
    pub ssh_port: u16,
    /// SSH private key (default: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa).
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// Authenticate with the ssh-agent only.
    #[arg(long, conflicts_with = "ssh_key")]
    pub ssh_agent: bool,
    /// known_hosts file to check host keys against (default ~/.ssh/known_hosts).
    #[arg(long)]
    pub known_hosts: Option<PathBuf>,
    /// Do not check host keys (insecure: anyone on the path can impersonate the nodes).
    #[arg(long)]
    pub insecure_skip_host_key_check: bool,
    /// Connection attempts per node (backoff between them) before reporting it unreachable.
    #[arg(long, default_value_t = 5)]
    pub ssh_connect_attempts: u32,
    /// Run everything on the nodes through `sudo -n` (a login user that is not root).
    #[arg(long)]
    pub ssh_sudo: bool,
}

impl Default for SshArgs {
    fn default() -> Self {
        crate::spec::clap_defaults()
    }
}

impl SshArgs {
    /// Options for the hosts of `--nodes-file`.
    pub fn host_options(&self) -> SshOptions {
        let mut opts = SshOptions {
            port: self.ssh_port,
            connect_attempts: self.ssh_connect_attempts,
            sudo: self.ssh_sudo,
            ..SshOptions::default()
        };
        if let Some(u) = &self.ssh_user {
            opts.user = u.clone();
        }
        if let Some(k) = &self.ssh_key {
            opts.auth = SshAuth::Key(k.clone());
        } else if self.ssh_agent {
            opts.auth = SshAuth::Agent;
        }
        if let Some(kh) = &self.known_hosts {
            opts.host_key_check = HostKeyCheck::KnownHosts(kh.clone());
        }
        if self.insecure_skip_host_key_check {
            opts.host_key_check = HostKeyCheck::InsecureSkip;
        }
        opts
    }

    /// Options for the sshds of a local cluster brought up with `--ssh` (its own key and
    /// known_hosts).
    pub fn cluster_options(&self, c: &LocalCluster) -> anyhow::Result<SshOptions> {
        let mut opts = c.ssh_options().map_err(control_err)?;
        opts.connect_attempts = self.ssh_connect_attempts;
        if self.insecure_skip_host_key_check {
            opts.host_key_check = HostKeyCheck::InsecureSkip;
        }
        Ok(opts)
    }

    /// The nodes of `--nodes-file` (a bad file is the user's error).
    pub fn host_nodes(&self) -> anyhow::Result<Option<Vec<Node>>> {
        self.nodes_file
            .as_ref()
            .map(|f| control::nodes::read(f).map_err(|e| user_error(e.to_string())))
            .transpose()
    }
}

/// Connects to every node over SSH at once; the first failure (with the node it names) wins.
pub async fn connect_all(
    nodes: &[Node],
    opts: &SshOptions,
) -> anyhow::Result<Vec<Arc<dyn Remote>>> {
    let tasks: Vec<_> = nodes
        .iter()
        .map(|n| tokio::spawn(SshRemote::connect(n.clone(), opts.clone())))
        .collect();
    let mut remotes = Vec::with_capacity(tasks.len());
    for t in tasks {
        let r = t
            .await
            .map_err(|e| anyhow::anyhow!("failed to connect over SSH: {e}"))?
            .map_err(control_err)?;
        remotes.push(Arc::new(r) as Arc<dyn Remote>);
    }
    Ok(remotes)
}

/// The nodes a test runs on and how it reaches them.
pub struct Targets {
    pub nodes: Vec<Node>,
    pub remotes: Vec<Arc<dyn Remote>>,
    /// The nemesis state file (what a killed controller left is healed from it next time).
    pub state_path: PathBuf,
    /// `netns`, `ssh` (a local cluster's sshds), `docker` or `hosts` (a nodes file).
    pub via: &'static str,
    /// The nodes share the controller's file system and kernel clock (a local cluster).
    pub local: bool,
    /// A directory of the controller's that the nodes see at the same path (containers).
    pub shared_dir: Option<PathBuf>,
}

/// What `faultline test` needs of the cluster.
pub struct ClusterWanted<'a> {
    pub nodes: usize,
    pub prefix: &'a str,
    pub subnet: &'a str,
    pub state_dir: &'a std::path::Path,
    pub store: &'a std::path::Path,
}

/// Reaches the nodes of a test: the hosts of `--nodes-file` over SSH, or the local cluster
/// (brought up, or rebuilt when it is broken or differs from what is wanted) through its
/// namespaces or, with `--ssh`, its sshds.
pub async fn test_targets(
    ssh: &SshArgs,
    want: &ClusterWanted<'_>,
    log: &dyn Fn(&str),
) -> anyhow::Result<Targets> {
    use control::cluster::ClusterOptions;
    let state_override = std::env::var_os(nemesis::state::STATE_FILE_ENV).map(PathBuf::from);
    if let Some(nodes) = ssh.host_nodes()? {
        log(&format!(
            "connecting to {} host(s) over SSH: {}",
            nodes.len(),
            nodes
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let remotes = connect_all(&nodes, &ssh.host_options()).await?;
        let state_path =
            state_override.unwrap_or_else(|| outside_state_path(want.store, want.prefix, "hosts"));
        return Ok(Targets {
            nodes,
            remotes,
            state_path,
            via: "hosts",
            local: false,
            shared_dir: None,
        });
    }
    if !control::prereq::is_root() {
        return Err(user_error(
            "faultline test needs root to run on the local cluster or containers (network namespaces, iptables): run it with sudo, or pass --nodes-file for real hosts",
        ));
    }
    if ssh.docker {
        return docker_targets(ssh, want, log, state_override).await;
    }
    let existing = LocalCluster::load(want.state_dir, want.prefix).map_err(control_err)?;
    let cluster = match existing {
        Some(c)
            if c.problems().is_empty()
                && c.nodes().len() == want.nodes
                && (!ssh.ssh || c.ssh_options().is_ok()) =>
        {
            c
        }
        _ => {
            log(&format!(
                "bringing up the local cluster {}* ({} nodes, {}{})",
                want.prefix,
                want.nodes,
                want.subnet,
                if ssh.ssh { ", an sshd per node" } else { "" }
            ));
            LocalCluster::up_async(ClusterOptions {
                nodes: want.nodes,
                subnet: want.subnet.to_string(),
                prefix: want.prefix.to_string(),
                ssh: ssh.ssh,
                state_root: want.state_dir.to_path_buf(),
            })
            .await
            .map_err(control_err)?
        }
    };
    local_targets(&cluster, ssh, state_override).await
}

/// The nodes of a local cluster, through its namespaces or, with `--ssh`, its sshds.
async fn local_targets(
    cluster: &LocalCluster,
    ssh: &SshArgs,
    state_override: Option<PathBuf>,
) -> anyhow::Result<Targets> {
    let nodes = cluster.nodes();
    let state_path = state_override.unwrap_or_else(|| cluster.dir().join("nemesis-state.json"));
    let (remotes, via) = if ssh.ssh {
        let opts = ssh.cluster_options(cluster)?;
        (connect_all(&nodes, &opts).await?, "ssh")
    } else {
        (cluster.remotes(), "netns")
    };
    Ok(Targets {
        nodes,
        remotes,
        state_path,
        via,
        local: true,
        shared_dir: None,
    })
}

/// The nodes as Docker containers: the running cluster of `want.prefix` when it has the
/// wanted size and image, else a new one (removing what an earlier one left).
async fn docker_targets(
    reach: &SshArgs,
    want: &ClusterWanted<'_>,
    log: &dyn Fn(&str),
    state_override: Option<PathBuf>,
) -> anyhow::Result<Targets> {
    use control::docker::{DockerCluster, DockerOptions, image::default_image};
    let image = reach.image.clone().unwrap_or_else(default_image);
    let existing = DockerCluster::load(want.prefix)
        .await
        .map_err(control_err)?;
    let cluster = match existing {
        Some(c) if c.remotes.len() == want.nodes && c.image == image => c,
        _ => {
            log(&format!(
                "bringing up {} Docker containers {}n* ({image}, {})",
                want.nodes, want.prefix, want.subnet
            ));
            DockerCluster::up(&DockerOptions {
                nodes: want.nodes,
                prefix: want.prefix.to_string(),
                subnet: want.subnet.to_string(),
                image,
            })
            .await
            .map_err(control_err)?
        }
    };
    let state_path =
        state_override.unwrap_or_else(|| outside_state_path(want.store, want.prefix, "docker"));
    Ok(Targets {
        nodes: cluster.nodes(),
        remotes: cluster.remotes(),
        state_path,
        via: "docker",
        local: false,
        shared_dir: Some(control::docker::shared_dir(want.prefix)),
    })
}

/// Where a test puts the nodes' directories (`<base>/<node>/`, a node's `{dir}`).
pub fn base_dir(prefix: &str) -> String {
    format!("/tmp/faultline-nodes/{prefix}")
}

/// The nemesis state file of nodes that are not a local cluster (`via`: `hosts` or
/// `docker`): on the controller, beside the runs, where no root is needed to write it.
fn outside_state_path(store: &std::path::Path, prefix: &str, via: &str) -> PathBuf {
    store.join(".nemesis").join(format!("{prefix}{via}.json"))
}

/// The nodes of a test that may have run, as they are now, brought up by no one: the hosts
/// of `--nodes-file`, the Docker cluster or the local cluster of `prefix`. None when there
/// is no such cluster. For `faultline heal`, which must not make what it heals.
pub async fn existing_targets(
    ssh: &SshArgs,
    prefix: &str,
    state_dir: &std::path::Path,
    store: &std::path::Path,
) -> anyhow::Result<Option<Targets>> {
    let state_override = std::env::var_os(nemesis::state::STATE_FILE_ENV).map(PathBuf::from);
    if let Some(nodes) = ssh.host_nodes()? {
        let remotes = connect_all(&nodes, &ssh.host_options()).await?;
        return Ok(Some(Targets {
            nodes,
            remotes,
            state_path: state_override
                .unwrap_or_else(|| outside_state_path(store, prefix, "hosts")),
            via: "hosts",
            local: false,
            shared_dir: None,
        }));
    }
    if !control::prereq::is_root() {
        return Err(user_error(
            "healing a local cluster or containers needs root (network namespaces, iptables): run it with sudo, or pass --nodes-file for real hosts",
        ));
    }
    if ssh.docker {
        let Some(c) = control::docker::DockerCluster::load(prefix)
            .await
            .map_err(control_err)?
        else {
            return Ok(None);
        };
        return Ok(Some(Targets {
            nodes: c.nodes(),
            remotes: c.remotes(),
            state_path: state_override
                .unwrap_or_else(|| outside_state_path(store, prefix, "docker")),
            via: "docker",
            local: false,
            shared_dir: Some(control::docker::shared_dir(prefix)),
        }));
    }
    let Some(cluster) = LocalCluster::load(state_dir, prefix).map_err(control_err)? else {
        return Ok(None);
    };
    local_targets(&cluster, ssh, state_override).await.map(Some)
}

/// Copies a program of the controller's to `remote_path` on every node, executable.
pub async fn upload_executable(
    remotes: &[Arc<dyn Remote>],
    local: &std::path::Path,
    remote_path: &str,
) -> anyhow::Result<()> {
    let dir = std::path::Path::new(remote_path)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/".into());
    for r in remotes {
        r.run(&control::Exec::new("mkdir").args(["-p", &dir]))
            .await
            .map_err(control_err)?;
        r.upload(local, remote_path).await.map_err(control_err)?;
        r.run(&control::Exec::new("chmod").args(["755", remote_path]))
            .await
            .map_err(control_err)?;
    }
    Ok(())
}

/// After teardown (which removed every node's own directory): removes the clock helper and
/// the directories that held the nodes' directories, if empty (never anything else).
pub async fn remove_base_dir(targets: &Targets, base_dir: &str) {
    if targets.local {
        let base = std::path::Path::new(base_dir);
        for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(entry.path());
        }
        let _ = std::fs::remove_dir(base);
        return;
    }
    let q = control::shell_quote(base_dir);
    let script = format!(
        "rm -f {q}/faultline-clock; for d in {q}/*/ {q}; do rmdir \"$d\" 2>/dev/null; done; true"
    );
    for r in &targets.remotes {
        let _ = r.run(&control::Exec::sh(&script)).await;
    }
}
