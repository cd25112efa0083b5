//! `faultline exec NODE -- CMD...`: run a command on a node (or `all` nodes) to check
//! reachability before a test. Nodes come from the local cluster (through its namespaces, or its
//! sshds with `--ssh`), from a Docker cluster (`--docker`: its containers) or, with
//! `--nodes-file`, from real hosts over SSH.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use control::cluster::{self, LocalCluster};
use control::{Exec, Node, Remote, SshOptions, SshRemote};

use crate::exit::control_err;
use crate::exit::{self, user_error};
use crate::nodes::SshArgs;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Node name (`n1`), or `all` for every node.
    pub node: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub reach: SshArgs,
    /// Local cluster name prefix.
    #[arg(long, default_value = cluster::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Directory of local clusters' state files.
    #[arg(long, env = cluster::STATE_ROOT_ENV, default_value = cluster::DEFAULT_STATE_ROOT)]
    pub state_dir: PathBuf,
    /// Command timeout (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "60s", value_parser = nemesis::parse_duration)]
    pub timeout: Duration,
    /// Run the command through sudo.
    #[arg(long)]
    pub sudo: bool,
}

pub fn run(args: ExecArgs) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("failed to start the async runtime: {e}"))?;
    rt.block_on(run_async(args))
}

async fn run_async(args: ExecArgs) -> anyhow::Result<u8> {
    let cmd = Exec::argv(args.command.clone())
        .timeout(args.timeout)
        .sudo(args.sudo);
    let (nodes, via) = if args.reach.docker {
        docker_targets(&args).await?
    } else {
        targets(&args)?
    };
    let via = Arc::new(via);
    if args.node != "all" {
        let r = via.connect(nodes[0].clone()).await.map_err(control_err)?;
        let out = r.run(&cmd).await.map_err(control_err)?;
        print!("{}", out.stdout);
        eprint!("{}", out.stderr);
        return Ok(out.status.clamp(0, 255) as u8);
    }
    // Every node at once; each reports on its own (an unreachable node does not hide the others).
    let tasks: Vec<_> = nodes
        .into_iter()
        .map(|n| {
            let (cmd, via) = (cmd.clone(), via.clone());
            tokio::spawn(async move {
                let res = match via.connect(n.clone()).await {
                    Ok(r) => r.run(&cmd).await,
                    Err(e) => Err(e),
                };
                (n, res)
            })
        })
        .collect();
    let mut code = exit::VALID;
    for t in tasks {
        let (node, res) = t.await?;
        match res {
            Ok(out) => {
                println!("--- {node}: exit {}", out.status);
                print!("{}", out.stdout);
                eprint!("{}", out.stderr);
                if out.status != 0 && code == exit::VALID {
                    code = 1;
                }
            }
            Err(e) => {
                println!("--- {node}: FAILED");
                eprintln!("faultline: error: {e}");
                code = exit::HARNESS;
            }
        }
    }
    Ok(code)
}

/// How the selected nodes are reached.
enum Via {
    Netns(Box<LocalCluster>),
    Ssh(SshOptions),
    Docker(Box<control::DockerCluster>),
}

impl Via {
    async fn connect(&self, node: Node) -> Result<Arc<dyn Remote>, control::Error> {
        match self {
            Via::Netns(c) => c.remote(&node.name),
            Via::Ssh(opts) => Ok(Arc::new(SshRemote::connect(node, opts.clone()).await?)),
            Via::Docker(c) => c
                .remotes
                .iter()
                .find(|r| r.node().name == node.name)
                .map(|r| Arc::new(r.clone()) as Arc<dyn Remote>)
                .ok_or_else(|| control::Error::Invalid {
                    action: format!("find node {}", node.name),
                    cause: "no such container".into(),
                }),
        }
    }
}

/// The nodes of `all` that `args.node` names (`all`: every one).
fn pick(args: &ExecArgs, nodes: &[Node]) -> anyhow::Result<Vec<Node>> {
    if args.node == "all" {
        return Ok(nodes.to_vec());
    }
    match nodes.iter().find(|n| n.name == args.node) {
        Some(n) => Ok(vec![n.clone()]),
        None => Err(user_error(format!(
            "failed to find node {}: the nodes are {} (or `all`)",
            args.node,
            nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The containers of the Docker cluster of `--prefix` that `args` selects.
async fn docker_targets(args: &ExecArgs) -> anyhow::Result<(Vec<Node>, Via)> {
    let c = control::DockerCluster::load(&args.prefix)
        .await
        .map_err(control_err)?
        .ok_or_else(|| {
            user_error(format!(
                "failed to find a running Docker cluster with prefix {}: run `faultline cluster up --docker` first",
                args.prefix
            ))
        })?;
    Ok((pick(args, &c.nodes())?, Via::Docker(Box::new(c))))
}

/// The nodes `args` selects and how to reach them.
fn targets(args: &ExecArgs) -> anyhow::Result<(Vec<Node>, Via)> {
    let pick = |nodes: &[Node]| pick(args, nodes);
    if let Some(nodes) = args.reach.host_nodes()? {
        return Ok((pick(&nodes)?, Via::Ssh(args.reach.host_options())));
    }
    let c = LocalCluster::load(&args.state_dir, &args.prefix)
        .map_err(control_err)?
        .ok_or_else(|| {
            user_error(format!(
                "failed to find a local cluster with prefix {}: run `faultline cluster up` first, or pass --nodes-file for real hosts",
                args.prefix
            ))
        })?;
    let nodes = pick(&c.nodes())?;
    if args.reach.ssh {
        Ok((nodes, Via::Ssh(args.reach.cluster_options(&c)?)))
    } else {
        if !control::prereq::is_root() {
            return Err(user_error(
                "missing root privileges: entering a node's namespace needs root (run as root, or pass --ssh)",
            ));
        }
        Ok((nodes, Via::Netns(Box::new(c))))
    }
}
