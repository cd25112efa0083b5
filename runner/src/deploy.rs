//! The phases around the workload: heal what an earlier controller left, deploy the system
//! stage by stage until one leader is known, and at the end collect every node's logs and
//! remove the system.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use control::Remote;
use systems::System;

use crate::store::{RunDir, RunLog};

/// Heals the faults a controller killed earlier left behind (from the nemesis state file).
/// Failures are logged: a stale state file must not stop a new run.
pub(crate) async fn heal_leftovers(
    system: &dyn System,
    remotes: &[Arc<dyn Remote>],
    state_path: &Path,
    log: &RunLog,
) {
    let by_name: BTreeMap<String, Arc<dyn Remote>> = remotes
        .iter()
        .map(|r| (r.node().name.clone(), r.clone()))
        .collect();
    let resolve = move |n: &str| by_name.get(n).cloned();
    match nemesis::heal_from_state_file(state_path, &resolve, Some(system.control().as_ref())).await
    {
        Ok(r) if !r.healed.is_empty() => log.line(&format!(
            "healed {} fault(s) a previous run left behind",
            r.healed.len()
        )),
        Ok(_) => {}
        Err(e) => log.line(&format!("warning: failed to heal leftovers: {e}")),
    }
}

/// Sets up and starts `system` on every node, stage by stage (a stage's nodes are set up
/// and started, each waiting until it is ready, before the next stage's, so a standby can
/// clone a primary that runs), then waits until one leader is known to every node. Returns
/// the leader.
pub(crate) async fn deploy(
    system: &Arc<dyn System>,
    remotes: &[Arc<dyn Remote>],
) -> systems::Result<String> {
    for stage in system.stages() {
        let in_stage: Vec<Arc<dyn Remote>> = remotes
            .iter()
            .filter(|r| stage.contains(&r.node().name))
            .cloned()
            .collect();
        let sys = system.clone();
        on_every_node(&in_stage, move |r| {
            let sys = sys.clone();
            async move {
                sys.setup(r.as_ref()).await?;
                sys.start(r.as_ref()).await
            }
        })
        .await?;
    }
    system.ready(system.ready_timeout()).await
}

/// Runs `f` on every node at once; the first error, after all have ended.
async fn on_every_node<F, Fut>(remotes: &[Arc<dyn Remote>], f: F) -> systems::Result<()>
where
    F: Fn(Arc<dyn Remote>) -> Fut,
    Fut: std::future::Future<Output = systems::Result<()>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for r in remotes {
        set.spawn(f(r.clone()));
    }
    let mut first = None;
    while let Some(res) = set.join_next().await {
        let res = res
            .map_err(|e| systems::Error::msg(format!("a node task failed: {e}")))
            .and_then(|r| r);
        if let Err(e) = res {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Downloads the system's logs into `nodes/<node>/` and removes the system from every node.
/// Failures are logged, never returned: they must not mask the run's own outcome.
pub(crate) async fn collect_and_teardown(
    system: &dyn System,
    remotes: &[Arc<dyn Remote>],
    run_dir: &RunDir,
    log: &RunLog,
) {
    collect(system, remotes, run_dir, log, true).await
}

/// Downloads the system's logs into `nodes/<node>/`, leaving it running.
pub(crate) async fn collect_logs(
    system: &dyn System,
    remotes: &[Arc<dyn Remote>],
    run_dir: &RunDir,
    log: &RunLog,
) {
    collect(system, remotes, run_dir, log, false).await
}

async fn collect(
    system: &dyn System,
    remotes: &[Arc<dyn Remote>],
    run_dir: &RunDir,
    log: &RunLog,
    teardown: bool,
) {
    for r in remotes {
        let name = r.node().name.clone();
        let dir = match run_dir.node_dir(&name) {
            Ok(d) => d,
            Err(e) => {
                log.line(&format!("warning: {e:#}"));
                continue;
            }
        };
        for (remote_path, local) in system.log_files(&name) {
            if let Err(e) = r.download(&remote_path, &dir.join(&local)).await {
                log.line(&format!(
                    "warning: failed to collect {remote_path} from {name}: {e}"
                ));
            }
        }
        if !teardown {
            continue;
        }
        if let Err(e) = system.teardown(r.as_ref()).await {
            log.line(&format!("warning: failed to tear down {name}: {e:#}"));
        }
    }
}
