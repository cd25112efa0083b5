//! Healing that cannot be skipped: undoing one recorded action ([`execute_heal`]), healing
//! everything a killed controller left in the state file ([`heal_from_state_file`], call it
//! at every start), a guard that heals on drop and on panic ([`HealGuard`]), and the signal
//! helper ([`Interrupts`]: the first SIGINT/SIGTERM asks the run to heal and tear down, a
//! second one exits at once, leaving the state file for the next start).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use control::Remote;

use crate::apply::{On, shell};
use crate::clock;
use crate::error::{Error, Result};
use crate::net;
use crate::state::{HealAction, PendingHeal, StateFile};
use crate::system::{SystemControl, signal_pids};

const HEAL_TIMEOUT: Duration = Duration::from_secs(30);

async fn sh(remote: &dyn Remote, what: &str, script: String) -> Result<String> {
    shell(remote, On::Node, what, script, HEAL_TIMEOUT).await
}

/// [`sh`] for network commands (iptables, tc): see [`Remote::run_net`].
async fn net_sh(remote: &dyn Remote, what: &str, script: String) -> Result<String> {
    shell(remote, On::Network, what, script, HEAL_TIMEOUT).await
}

/// Undoes one recorded action on its node. Idempotent: undoing what is already undone is
/// fine. `remote` may be `None` for actions that need no node (shim offset files live on
/// the controller). `Restart` needs `system`.
pub async fn execute_heal(
    entry: &PendingHeal,
    remote: Option<&dyn Remote>,
    system: Option<&dyn SystemControl>,
) -> Result<()> {
    let need = |what: &str| {
        remote.ok_or_else(|| {
            Error::other(
                format!("{what} on {}", entry.node),
                "no way to reach the node",
            )
        })
    };
    match &entry.action {
        HealAction::ClockShim { file } => clock::write_offset(Path::new(file), 0),
        HealAction::Iptables { chain, rules } => {
            let r = need("remove iptables rules")?;
            net_sh(
                r,
                "remove faultline's iptables rules",
                net::remove_script(chain, rules),
            )
            .await
            .map(|_| ())
        }
        HealAction::Resume { pids } => {
            let r = need("resume processes")?;
            signal_pids(r, pids, "CONT", true).await
        }
        HealAction::Restart | HealAction::Join => {
            let joining = entry.action == HealAction::Join;
            let what = if joining {
                "have the node join again"
            } else {
                "restart the system"
            };
            let r = need(what)?;
            let s = system.ok_or_else(|| {
                Error::other(
                    format!("{what} on {}", entry.node),
                    "the system is not known here",
                )
            })?;
            let started = if joining {
                s.join(r).await
            } else {
                s.start(r).await
            };
            match started {
                // A supervised system (`on_exit = restart`) is started again by the runner's
                // supervisor, every second, until it runs: a start it refuses now (a fenced
                // former primary waiting for a new one) is no failed heal. The supervisor
                // records the exit and the restart in the history.
                Err(e) if s.on_exit() == crate::system::ExitPolicy::Restart => {
                    tracing::warn!("{e}; the supervisor will start it again");
                    Ok(())
                }
                other => other,
            }
        }
        HealAction::ClockSettime {
            helper,
            undo_ms,
            ntp_services,
        } => {
            let r = need("restore the clock")?;
            if let Some(ms) = undo_ms.filter(|ms| *ms != 0) {
                sh(r, "undo a clock bump", clock::bump_script(helper, ms)).await?;
            }
            sh(r, "start NTP again", clock::start_ntp_script(ntp_services))
                .await
                .map(|_| ())
        }
        HealAction::TcRoot { iface } => {
            let r = need("remove the tbf qdisc")?;
            net_sh(r, "remove the tbf qdisc", net::tc_remove_script(iface))
                .await
                .map(|_| ())
        }
    }
}

/// Removes faultline's whole iptables chain on a node (nothing else).
pub async fn teardown_chain(remote: &dyn Remote) -> Result<()> {
    net_sh(
        remote,
        "remove faultline's iptables chain",
        net::teardown_script(net::CHAIN),
    )
    .await
    .map(|_| ())
}

/// What [`heal_from_state_file`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealReport {
    /// Entries healed.
    pub healed: Vec<PendingHeal>,
    /// Entries that could not be healed (kept in the state file), with the reason.
    pub failed: Vec<(PendingHeal, String)>,
}

/// Heals every fault the state file at `path` lists (left by a controller that was killed),
/// removing each entry once healed, and removes faultline's iptables chain on every node
/// that had rules. `resolve` gives the remote of a node by name (e.g.
/// `|n| cluster.remote(n).ok()`); `system` restarts killed processes if given (otherwise
/// those entries are dropped with a warning: the next deploy starts the system anyway).
/// Entries that fail stay in the file, and the error lists them.
pub async fn heal_from_state_file(
    path: &Path,
    resolve: &(dyn Fn(&str) -> Option<Arc<dyn Remote>> + Send + Sync),
    system: Option<&dyn SystemControl>,
) -> Result<HealReport> {
    let mut state = StateFile::open(path)?;
    let mut report = HealReport::default();
    let entries: Vec<PendingHeal> = state.pending().to_vec();
    // Resume before anything else: a stopped process cannot be restarted or killed cleanly.
    let mut ordered = entries.clone();
    ordered.sort_by_key(|e| !matches!(e.action, HealAction::Resume { .. }));
    let mut chains = std::collections::BTreeMap::new();
    for e in ordered {
        let remote = resolve(&e.node);
        let res = if matches!(e.action, HealAction::Restart | HealAction::Join) && system.is_none()
        {
            tracing::warn!(
                "{} was killed (or removed) by a nemesis and is not restarted here",
                e.node
            );
            Ok(())
        } else {
            execute_heal(&e, remote.as_deref(), system).await
        };
        if matches!(e.action, HealAction::Iptables { .. }) {
            if let Some(r) = &remote {
                chains.insert(e.node.clone(), r.clone());
            }
        }
        match res {
            Ok(()) => {
                state.remove_where(|p| *p == e)?;
                report.healed.push(e);
            }
            Err(err) => report.failed.push((e, err.to_string())),
        }
    }
    for r in chains.values() {
        if let Err(e) = teardown_chain(r.as_ref()).await {
            tracing::warn!("{e}");
        }
    }
    if report.failed.is_empty() {
        Ok(report)
    } else {
        Err(Error::Heal {
            count: report.failed.len(),
            errors: report
                .failed
                .iter()
                .map(|(e, why)| format!("{} on {}: {why}", e.id, e.node))
                .collect(),
        })
    }
}

/// Something that can heal everything it applied.
#[async_trait::async_trait]
pub trait HealAll: Send + Sync {
    async fn heal_all(&self) -> Result<()>;
}

/// Heals on drop (including unwinding from a panic) unless [`HealGuard::disarm`]ed after an
/// explicit heal. Healing runs on a thread of its own with its own tokio runtime, so the
/// guard works inside and outside async code.
pub struct HealGuard {
    target: Option<Arc<dyn HealAll>>,
}

impl HealGuard {
    pub fn new(target: Arc<dyn HealAll>) -> Self {
        HealGuard {
            target: Some(target),
        }
    }

    /// Heals now (async) and disarms the guard.
    pub async fn heal(mut self) -> Result<()> {
        match self.target.take() {
            Some(t) => t.heal_all().await,
            None => Ok(()),
        }
    }

    /// No healing on drop (the caller healed already).
    pub fn disarm(mut self) {
        self.target = None;
    }
}

impl Drop for HealGuard {
    fn drop(&mut self) {
        let Some(target) = self.target.take() else {
            return;
        };
        if std::thread::panicking() {
            eprintln!("faultline: panic while faults were active: healing them");
        }
        let run = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => rt.block_on(target.heal_all()),
                Err(e) => Err(Error::io("start a runtime to heal faults", e)),
            }
        });
        match run.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("faultline: healing on drop failed (the state file keeps the rest): {e}")
            }
            Err(_) => {
                eprintln!("faultline: healing on drop panicked (the state file keeps the rest)")
            }
        }
    }
}

/// SIGINT/SIGTERM handling for a run with faults. The first signal sets the flag
/// ([`Interrupts::wait`] returns, [`Interrupts::triggered`] turns true): the runner stops the
/// workload, heals every fault and tears down. A second signal exits at once with status 130
/// without healing (the state file lets the next start heal).
#[derive(Debug, Clone)]
pub struct Interrupts {
    rx: tokio::sync::watch::Receiver<bool>,
}

impl Interrupts {
    /// Installs the handlers (inside a tokio runtime).
    pub fn install() -> Result<Interrupts> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| Error::io("install a SIGINT handler", e))?;
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Error::io("install a SIGTERM handler", e))?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut count = 0u32;
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                count += 1;
                if count == 1 {
                    eprintln!(
                        "faultline: interrupted: healing faults and tearing down (signal again to exit at once)"
                    );
                    let _ = tx.send(true);
                } else {
                    eprintln!(
                        "faultline: second signal: exiting without healing; the next faultline start heals from the state file"
                    );
                    std::process::exit(130);
                }
            }
        });
        Ok(Interrupts { rx })
    }

    /// A flag that is never raised (tests, library use without signals).
    pub fn never() -> Interrupts {
        let (tx, rx) = tokio::sync::watch::channel(false);
        std::mem::forget(tx);
        Interrupts { rx }
    }

    /// True once the first signal arrived.
    pub fn triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits for the first signal.
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|v| *v).await;
    }
}
