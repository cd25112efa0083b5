//! A cluster of Docker containers, one per node, on a user-defined bridge network of its own,
//! through the Docker Engine API ([bollard]). Every container and the network carry the
//! label `faultline.cluster=<prefix>`, so `down` (and the next `up`) find and remove all of
//! them, also after a controller was SIGKILLed: the engine is the state file.
//!
//! - [`DockerCluster`]: up (removing what an earlier run left), status, down.
//! - [`remote`]: [`DockerRemote`], a node as a [`crate::Remote`] (execs, tar copies, network
//!   commands from the controller inside the container's network namespace).
//! - [`image`]: the default node image, assembled from this machine's programs.

pub mod image;
pub mod remote;

use std::collections::HashMap;
use std::sync::Arc;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};

pub use remote::DockerRemote;

use crate::cluster::ClusterOptions;
use crate::cluster::plan::Plan;
use crate::error::{Error, Result};
use crate::remote::{Node, Remote};

/// The label every container and network of a cluster carries (value: the prefix).
pub const LABEL: &str = "faultline.cluster";

/// A directory of the controller's that every container of `prefix` sees at the same path
/// (a bind mount): the clock shim and its offset files live there, so the nemesis skews a
/// container's processes as it does a namespace's.
pub fn shared_dir(prefix: &str) -> std::path::PathBuf {
    std::path::Path::new("/tmp/faultline-docker").join(prefix)
}

/// What to bring up.
#[derive(Debug, Clone)]
pub struct DockerOptions {
    pub nodes: usize,
    /// Names: containers `<prefix>n1`.., the network `<prefix>net`.
    pub prefix: String,
    /// The network's subnet; node i gets host 10 + i, as on a local cluster.
    pub subnet: String,
    /// The image every node runs.
    pub image: String,
}

/// A running cluster of containers.
#[derive(Debug, Clone)]
pub struct DockerCluster {
    pub prefix: String,
    pub network: String,
    /// The image its containers run.
    pub image: String,
    pub remotes: Vec<DockerRemote>,
}

fn local(action: &str, cause: impl std::fmt::Display) -> Error {
    Error::Local {
        action: action.into(),
        cause: cause.to_string(),
    }
}

/// The Docker Engine, answering: one line naming the problem when it is not.
pub async fn connect() -> Result<Docker> {
    let not_running = |e: &dyn std::fmt::Display| Error::Missing {
        what: "a running Docker Engine".into(),
        hint: format!(
            "cannot reach it ({e}; DOCKER_HOST or /var/run/docker.sock): install docker.io \
             and start it (`systemctl start docker`), or leave out --docker"
        ),
    };
    let docker = Docker::connect_with_local_defaults().map_err(|e| not_running(&e))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| not_running(&e))?;
    docker.ping().await.map_err(|e| not_running(&e))?;
    Ok(docker)
}

fn label_filter(prefix: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL}={prefix}")])])
}

impl DockerCluster {
    /// Brings `opts.nodes` containers up on a network of their own, removing first whatever
    /// a cluster of the same prefix left.
    pub async fn up(opts: &DockerOptions) -> Result<DockerCluster> {
        let plan = Plan::new(&ClusterOptions {
            nodes: opts.nodes,
            subnet: opts.subnet.clone(),
            prefix: opts.prefix.clone(),
            ssh: false,
            state_root: std::env::temp_dir(),
        })?;
        let docker = connect().await?;
        down_with(&docker, &opts.prefix).await?;
        image::ensure(&docker, &opts.image).await?;
        let shared = shared_dir(&opts.prefix);
        std::fs::create_dir_all(&shared)
            .map_err(|e| local(&format!("create {}", shared.display()), e))?;
        let network = format!("{}net", opts.prefix);
        let labels = HashMap::from([(LABEL.to_string(), opts.prefix.clone())]);
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(plan.subnet.cidr()),
                        gateway: Some(plan.subnet.host(1).to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(|e| local(&format!("create the network {network}"), e))?;
        let mut remotes = Vec::new();
        for ns in &plan.state.nodes {
            let node = ns.node.clone();
            let name = format!("{}{}", opts.prefix, node.name);
            let up = start_node(
                &docker,
                &name,
                &node,
                &network,
                &opts.image,
                &labels,
                &shared,
            )
            .await;
            let pid = match up {
                Ok(pid) => pid,
                Err(e) => {
                    let _ = down_with(&docker, &opts.prefix).await;
                    return Err(e);
                }
            };
            remotes.push(DockerRemote {
                docker: docker.clone(),
                node,
                container: name,
                pid,
            });
        }
        Ok(DockerCluster {
            prefix: opts.prefix.clone(),
            network,
            image: opts.image.clone(),
            remotes,
        })
    }

    /// The running cluster of `prefix`, if its containers all run.
    pub async fn load(prefix: &str) -> Result<Option<DockerCluster>> {
        let docker = connect().await?;
        let list = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(label_filter(prefix)),
                ..Default::default()
            }))
            .await
            .map_err(|e| local("list the cluster's containers", e))?;
        let mut remotes = Vec::new();
        let mut image = String::new();
        for c in list {
            image = c.image.clone().unwrap_or_default();
            let name = c
                .names
                .and_then(|n| n.first().cloned())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned();
            let Some(node) = name.strip_prefix(prefix).map(str::to_owned) else {
                continue;
            };
            let info = docker
                .inspect_container(&name, None)
                .await
                .map_err(|e| local(&format!("inspect {name}"), e))?;
            let state = info.state.unwrap_or_default();
            let addr = info
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|n| n.get(&format!("{prefix}net")).cloned())
                .and_then(|e| e.ip_address)
                .unwrap_or_default();
            if state.running != Some(true) || addr.is_empty() {
                return Ok(None);
            }
            remotes.push(DockerRemote {
                docker: docker.clone(),
                node: Node::new(node, addr),
                container: name,
                pid: state.pid.unwrap_or(0) as u32,
            });
        }
        if remotes.is_empty() {
            return Ok(None);
        }
        remotes.sort_by_key(|r| {
            r.node
                .name
                .trim_start_matches('n')
                .parse::<u32>()
                .unwrap_or(u32::MAX)
        });
        Ok(Some(DockerCluster {
            prefix: prefix.to_owned(),
            network: format!("{prefix}net"),
            image,
            remotes,
        }))
    }

    /// Removes every container and network labelled with `prefix`; returns how many.
    pub async fn down(prefix: &str) -> Result<(usize, usize)> {
        let docker = connect().await?;
        down_with(&docker, prefix).await
    }

    pub fn nodes(&self) -> Vec<Node> {
        self.remotes.iter().map(|r| r.node.clone()).collect()
    }

    pub fn remotes(&self) -> Vec<Arc<dyn Remote>> {
        self.remotes
            .iter()
            .map(|r| Arc::new(r.clone()) as Arc<dyn Remote>)
            .collect()
    }
}

/// Creates and starts one node's container; returns its first process's host pid.
async fn start_node(
    docker: &Docker,
    name: &str,
    node: &Node,
    network: &str,
    image: &str,
    labels: &HashMap<String, String>,
    shared: &std::path::Path,
) -> Result<u32> {
    let action = format!("start the container {name}");
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(node.addr.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(image.to_owned()),
                hostname: Some(node.name.clone()),
                // The engine's init reaps the daemons the node's commands start (a killed
                // node's pid must vanish, not linger as a zombie); sleep keeps it up.
                cmd: Some(vec!["sleep".into(), "infinity".into()]),
                labels: Some(labels.clone()),
                host_config: Some(HostConfig {
                    init: Some(true),
                    network_mode: Some(network.to_owned()),
                    binds: Some(vec![format!("{0}:{0}", shared.display())]),
                    ..Default::default()
                }),
                networking_config: Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(network.to_owned(), endpoint)])),
                }),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| local(&action, e))?;
    docker
        .start_container(name, None)
        .await
        .map_err(|e| local(&action, e))?;
    let info = docker
        .inspect_container(name, None)
        .await
        .map_err(|e| local(&action, e))?;
    match info.state.and_then(|s| s.pid) {
        Some(pid) if pid > 0 => Ok(pid as u32),
        _ => Err(local(&action, "it is not running after its start")),
    }
}

async fn down_with(docker: &Docker, prefix: &str) -> Result<(usize, usize)> {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(label_filter(prefix)),
            ..Default::default()
        }))
        .await
        .map_err(|e| local("list the cluster's containers", e))?;
    for c in &containers {
        let id = c.id.clone().unwrap_or_default();
        docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| local(&format!("remove the container {id}"), e))?;
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(label_filter(prefix)),
        }))
        .await
        .map_err(|e| local("list the cluster's networks", e))?;
    for n in &networks {
        let id = n.id.clone().unwrap_or_default();
        docker
            .remove_network(&id)
            .await
            .map_err(|e| local(&format!("remove the network {id}"), e))?;
    }
    let shared = shared_dir(prefix);
    if shared.exists() {
        std::fs::remove_dir_all(&shared)
            .map_err(|e| local(&format!("remove {}", shared.display()), e))?;
    }
    Ok((containers.len(), networks.len()))
}
