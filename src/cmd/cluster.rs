//! `faultline cluster up|status|down`: a local cluster of network namespaces (see
//! `control::cluster`), or with `--docker` of containers (`control::docker`). A thin layer
//! over `control::LocalCluster` and `control::DockerCluster`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use control::Remote;
use control::cluster::{self, ClusterOptions, LocalCluster};

use crate::exit;
use crate::exit::control_err;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub action: ClusterAction,
    /// Name prefix of the cluster's namespaces and links (several clusters may coexist).
    #[arg(long, global = true, default_value = cluster::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Directory of the clusters' state files.
    #[arg(long, global = true, env = cluster::STATE_ROOT_ENV, default_value = cluster::DEFAULT_STATE_ROOT)]
    pub state_dir: PathBuf,
    /// Docker containers (one per node, on a network of their own) instead of namespaces.
    #[arg(long, global = true)]
    pub docker: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// Create (or repair) the cluster: namespaces n1..nN on a bridge, optionally an sshd per node.
    Up {
        /// Number of nodes.
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// IPv4 subnet (16 to 24 bits); the bridge takes .1, node I takes .(10+I).
        #[arg(long, default_value = cluster::DEFAULT_SUBNET)]
        subnet: String,
        /// Run an sshd on every node, with a generated host key and client key.
        #[arg(long, conflicts_with = "docker")]
        ssh: bool,
        /// The containers' image (with --docker; default: faultline's own node image).
        #[arg(long, requires = "docker")]
        image: Option<String>,
    },
    /// Show the cluster's nodes and whether it is healthy (exit 0 if up and healthy, else 1).
    Status {
        /// Print the state as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove every namespace, link, route, process and file the cluster made.
    Down,
}

pub fn run(args: ClusterArgs) -> anyhow::Result<u8> {
    if args.docker {
        return docker(args);
    }
    match args.action {
        ClusterAction::Up {
            nodes, subnet, ssh, ..
        } => {
            let opts = ClusterOptions {
                nodes,
                subnet,
                prefix: args.prefix,
                ssh,
                state_root: args.state_dir,
            };
            let c = LocalCluster::up(&opts).map_err(control_err)?;
            print_nodes(&c);
            Ok(exit::VALID)
        }
        ClusterAction::Status { json } => {
            let c = LocalCluster::load(&args.state_dir, &args.prefix).map_err(control_err)?;
            let Some(c) = c else {
                if json {
                    println!("null");
                }
                crate::term::note!(
                    "no local cluster with prefix {} (state in {})",
                    args.prefix,
                    args.state_dir.display()
                );
                return Ok(1);
            };
            let problems = c.problems();
            if json {
                let mut v =
                    serde_json::to_value(c.state()).context("failed to serialize the state")?;
                v["problems"] = serde_json::json!(problems);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_nodes(&c);
                for p in &problems {
                    println!("problem: {p}");
                }
                if !problems.is_empty() {
                    println!(
                        "run `faultline cluster up` to repair it, or `faultline cluster down` to remove it"
                    );
                }
            }
            Ok(if problems.is_empty() { 0 } else { 1 })
        }
        ClusterAction::Down => {
            let had =
                LocalCluster::down_prefix(&args.state_dir, &args.prefix).map_err(control_err)?;
            // The nodes' directories a test left (`--leave-running`, a killed run): the
            // namespaces share this file system, and nothing runs there any more.
            // Only a prefix a cluster can have: never `..` or `/`.
            let dirs = crate::nodes::base_dir(&args.prefix);
            if cluster::valid_prefix(&args.prefix) && std::path::Path::new(&dirs).exists() {
                std::fs::remove_dir_all(&dirs)
                    .with_context(|| format!("failed to remove {dirs}"))?;
            }
            if had {
                crate::term::note!("local cluster {} removed", args.prefix);
            } else {
                crate::term::note!(
                    "no local cluster with prefix {}: nothing to remove",
                    args.prefix
                );
            }
            Ok(exit::VALID)
        }
    }
}

/// `cluster ... --docker`: the containers of the prefix, through the Engine API.
fn docker(args: ClusterArgs) -> anyhow::Result<u8> {
    use control::docker::{DockerCluster, DockerOptions, image::default_image};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    rt.block_on(async move {
        match args.action {
            ClusterAction::Up {
                nodes,
                subnet,
                image,
                ..
            } => {
                let c = DockerCluster::up(&DockerOptions {
                    nodes,
                    prefix: args.prefix,
                    subnet,
                    image: image.unwrap_or_else(default_image),
                })
                .await
                .map_err(control_err)?;
                print_containers(&c);
                Ok(exit::VALID)
            }
            ClusterAction::Status { json } => {
                let c = DockerCluster::load(&args.prefix).await.map_err(control_err)?;
                let Some(c) = c else {
                    if json {
                        println!("null");
                    }
                    crate::term::note!(
                        "no running Docker cluster with prefix {} (`faultline cluster up --docker` makes one)",
                        args.prefix
                    );
                    return Ok(1);
                };
                if json {
                    let nodes: Vec<serde_json::Value> = c
                        .remotes
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "name": r.node().name,
                                "addr": r.node().addr,
                                "container": r.container(),
                            })
                        })
                        .collect();
                    let v = serde_json::json!({
                        "prefix": c.prefix, "network": c.network, "image": c.image, "nodes": nodes,
                    });
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    print_containers(&c);
                }
                Ok(exit::VALID)
            }
            ClusterAction::Down => {
                let (containers, networks) =
                    DockerCluster::down(&args.prefix).await.map_err(control_err)?;
                crate::term::note!(
                    "Docker cluster {}: removed {containers} container(s) and {networks} network(s)",
                    args.prefix
                );
                Ok(exit::VALID)
            }
        }
    })
}

fn print_containers(c: &control::DockerCluster) {
    println!(
        "Docker cluster {} (network {}, image {})",
        c.prefix, c.network, c.image
    );
    for r in &c.remotes {
        println!(
            "{}\t{}\tcontainer {}",
            r.node().name,
            r.node().addr,
            r.container()
        );
    }
}

fn print_nodes(c: &LocalCluster) {
    let st = c.state();
    println!(
        "local cluster {} ({}, bridge {} {})",
        st.options.prefix, st.options.subnet, st.bridge, st.bridge_addr
    );
    for n in &st.nodes {
        println!("{}\t{}\tnetns {}", n.node.name, n.node.addr, n.netns);
    }
    if let (Some(key), Some(kh)) = (&st.client_key, &st.known_hosts) {
        let first = st
            .nodes
            .first()
            .map(|n| n.node.addr.as_str())
            .unwrap_or("ADDR");
        println!(
            "ssh: ssh -i {} -o UserKnownHostsFile={} root@{first}",
            key.display(),
            kh.display()
        );
    }
}
