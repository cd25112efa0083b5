//! `faultline heal`: undo what a killed run left on the nodes (iptables rules, paused
//! processes, clock offsets and bumps, bandwidth limits) without starting a test, and say
//! what was healed. The nemesis writes every fault to its state file before it applies it,
//! so the file lists whatever a run killed at any moment left; faultline's own iptables chain
//! is also removed on every node, in case the file itself was lost.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use control::Remote;
use control::cluster;
use nemesis::{HealAction, PendingHeal};

use crate::exit;
use crate::nodes::{self, SshArgs};

#[derive(Debug, Args)]
pub struct HealArgs {
    #[command(flatten)]
    pub reach: SshArgs,
    /// Local cluster (or Docker cluster) name prefix.
    #[arg(long, default_value = cluster::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Directory of local clusters' state files.
    #[arg(long, env = cluster::STATE_ROOT_ENV, default_value = cluster::DEFAULT_STATE_ROOT)]
    pub state_dir: PathBuf,
    /// The store the run used (the state file of --nodes-file and --docker runs is there).
    #[arg(long, default_value = "store", env = crate::stored::STORE_ENV)]
    pub store: PathBuf,
    /// Print what was healed as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: HealArgs) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("failed to start the async runtime: {e}"))?;
    rt.block_on(heal(args))
}

/// One line on what undoing `e` did.
pub fn describe(e: &PendingHeal) -> String {
    let what = match &e.action {
        HealAction::Iptables { chain, rules } => {
            format!("removed {} iptables rule(s) from {chain}", rules.len())
        }
        HealAction::Resume { pids } => format!(
            "resumed paused process(es) {}",
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        HealAction::Restart => {
            "left the killed system down (the next test deploys it afresh)".to_owned()
        }
        HealAction::Join => {
            "left the removed node out (the next test deploys it afresh)".to_owned()
        }
        HealAction::ClockShim { file } => format!("reset the clock offset to 0 ({file})"),
        HealAction::ClockSettime { undo_ms, .. } => match undo_ms {
            Some(ms) if *ms != 0 => format!("stepped the clock back by {ms} ms, NTP started"),
            _ => "NTP started again".to_owned(),
        },
        HealAction::TcRoot { iface } => format!("removed the bandwidth limit on {iface}"),
    };
    format!("{}: {what}", e.node)
}

async fn heal(args: HealArgs) -> anyhow::Result<u8> {
    let Some(targets) =
        nodes::existing_targets(&args.reach, &args.prefix, &args.state_dir, &args.store).await?
    else {
        let what = if args.reach.docker {
            "Docker cluster"
        } else {
            "local cluster"
        };
        if args.json {
            println!("{}", json!({"healed": [], "failed": [], "cluster": null}));
        } else {
            println!("no {what} with prefix {}: nothing to heal", args.prefix);
        }
        return Ok(exit::VALID);
    };
    let by_name: BTreeMap<String, Arc<dyn Remote>> = targets
        .remotes
        .iter()
        .map(|r| (r.node().name.clone(), r.clone()))
        .collect();
    let resolve = move |n: &str| by_name.get(n).cloned();
    // What could not be healed stays in the file for the next try, and the error names it.
    let report = nemesis::heal_from_state_file(&targets.state_path, &resolve, None)
        .await
        .with_context(|| format!("failed to heal from {}", targets.state_path.display()))?;
    // The file could have been lost (a store removed): faultline's chain goes anyway.
    let mut swept = Vec::new();
    for r in &targets.remotes {
        match nemesis::heal::teardown_chain(r.as_ref()).await {
            Ok(()) => swept.push(r.node().name.clone()),
            Err(e) => tracing::warn!("{}: {e}", r.node().name),
        }
    }
    let healed: Vec<String> = report.healed.iter().map(describe).collect();
    let failed: Vec<String> = report
        .failed
        .iter()
        .map(|(e, why)| format!("{}: {why}", describe(e)))
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "via": targets.via,
                "state_file": targets.state_path.display().to_string(),
                "healed": healed,
                "failed": failed,
                "chain_removed_on": swept,
            }))?
        );
    } else {
        for l in &healed {
            println!("healed {}", crate::term::safe(l));
        }
        for l in &failed {
            println!("FAILED {}", crate::term::safe(l));
        }
        println!(
            "{} fault(s) healed, {} failed, from {}; faultline's iptables chain removed on {} of {} node(s)",
            healed.len(),
            failed.len(),
            targets.state_path.display(),
            swept.len(),
            targets.remotes.len()
        );
    }
    Ok(
        if failed.is_empty() && swept.len() == targets.remotes.len() {
            exit::VALID
        } else {
            exit::HARNESS
        },
    )
}
