//! How [`ClusterNemesis`] applies each kind of fault on the nodes: iptables rules, tc tbf,
//! SIGSTOP, clock offsets (shim files or `clock_settime`) and clock strobes. Each function
//! records what undoes the fault in the state file *before* it changes anything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use control::{Exec, Remote};

use crate::clock::{self, ClockMode};
use crate::error::{Error, Result};
use crate::fault::ClockAction;
use crate::grudge::NodeName;
use crate::nemesis::{Active, CMD_TIMEOUT, ClusterNemesis, Strobe, lock};
use crate::net;
use crate::state::{HealAction, PendingHeal};
use crate::system::signal_pids;

impl ClusterNemesis {
    pub(crate) async fn apply_rules(
        &self,
        id: u64,
        plan: Vec<(NodeName, Vec<Vec<String>>)>,
        active: &mut Active,
    ) -> std::result::Result<(), Vec<String>> {
        let plan: Vec<_> = plan.into_iter().filter(|(_, r)| !r.is_empty()).collect();
        let heals: Result<Vec<PendingHeal>> = plan
            .iter()
            .map(|(n, rules)| {
                self.pending(
                    id,
                    n,
                    HealAction::Iptables {
                        chain: net::CHAIN.into(),
                        rules: rules.clone(),
                    },
                )
            })
            .collect();
        active.heals = heals.map_err(|e| vec![e.to_string()])?;
        self.record_ahead(&active.heals)
            .map_err(|e| vec![e.to_string()])?;
        let scripts: BTreeMap<NodeName, String> = plan
            .iter()
            .map(|(n, rules)| (n.clone(), net::apply_script(net::CHAIN, rules)))
            .collect();
        let nodes: Vec<NodeName> = scripts.keys().cloned().collect();
        let errors = self
            .on_nodes(&nodes, |n, r| {
                let script = scripts[&n].clone();
                async move {
                    run_net_sh(r.as_ref(), "add iptables rules", script)
                        .await
                        .map(|_| ())
                }
            })
            .await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub(crate) async fn apply_bandwidth(
        &self,
        id: u64,
        nodes: &[NodeName],
        rate_kbit: u32,
        active: &mut Active,
    ) -> std::result::Result<(), Vec<String>> {
        let mut ifaces = BTreeMap::new();
        for n in nodes {
            let r = self.remote(n).map_err(|e| vec![e.to_string()])?;
            let out = run_net_sh(
                r.as_ref(),
                "find the interface",
                net::iface_script(&r.node().addr),
            )
            .await
            .map_err(|e| vec![e.to_string()])?;
            let iface = out.trim().to_string();
            if iface.is_empty() {
                return Err(vec![format!(
                    "failed to find the interface holding {} on {n}",
                    r.node().addr
                )]);
            }
            ifaces.insert(n.clone(), iface);
        }
        active.heals = ifaces
            .iter()
            .map(|(n, i)| self.pending(id, n, HealAction::TcRoot { iface: i.clone() }))
            .collect::<Result<_>>()
            .map_err(|e| vec![e.to_string()])?;
        self.record_ahead(&active.heals)
            .map_err(|e| vec![e.to_string()])?;
        let errors = self
            .on_nodes(nodes, |n, r| {
                let script = net::tbf_script(&ifaces[&n], rate_kbit);
                async move {
                    run_net_sh(r.as_ref(), "add a tbf qdisc", script)
                        .await
                        .map(|_| ())
                }
            })
            .await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub(crate) async fn apply_pause(
        &self,
        id: u64,
        nodes: &[NodeName],
        active: &mut Active,
    ) -> std::result::Result<(), Vec<String>> {
        let system = self
            .system("pause the system")
            .map_err(|e| vec![e.to_string()])?;
        let mut pids = BTreeMap::new();
        for n in nodes {
            let r = self.remote(n).map_err(|e| vec![e.to_string()])?;
            let p = system
                .pids(r.as_ref())
                .await
                .map_err(|e| vec![e.to_string()])?;
            if p.is_empty() {
                return Err(vec![format!(
                    "failed to pause {n}: the system is not running there"
                )]);
            }
            pids.insert(n.clone(), p);
        }
        active.heals = pids
            .iter()
            .map(|(n, p)| self.pending(id, n, HealAction::Resume { pids: p.clone() }))
            .collect::<Result<_>>()
            .map_err(|e| vec![e.to_string()])?;
        self.record_ahead(&active.heals)
            .map_err(|e| vec![e.to_string()])?;
        let errors = self
            .on_nodes(nodes, |n, r| {
                let p = pids[&n].clone();
                async move { signal_pids(r.as_ref(), &p, "STOP", false).await }
            })
            .await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub(crate) async fn apply_clock(
        &self,
        id: u64,
        nodes: &[NodeName],
        action: &ClockAction,
        active: &mut Active,
    ) -> std::result::Result<(), Vec<String>> {
        let one = |e: Error| vec![e.to_string()];
        match &self.clock {
            ClockMode::Unsupported => Err(vec![
                "failed to skew the clock: no clock mechanism configured (local clusters need the clockshim \
                 library, VMs the faultline-clock helper)"
                    .to_string(),
            ]),
            ClockMode::Shim { .. } => {
                active.heals = nodes
                    .iter()
                    .map(|n| {
                        let file = self.clock.shim_file(n).expect("shim mode").display().to_string();
                        self.pending(id, n, HealAction::ClockShim { file })
                    })
                    .collect::<Result<_>>()
                    .map_err(one)?;
                self.record_ahead(&active.heals).map_err(one)?;
                match action {
                    ClockAction::Bump { delta_ms } => {
                        let delta = delta_ms.saturating_mul(1_000_000);
                        active.shim_delta_ns = delta;
                        for n in nodes {
                            let base = {
                                let mut b = lock(&self.base_ns);
                                let v = b.entry(n.clone()).or_insert(0);
                                *v += delta;
                                *v
                            };
                            clock::write_offset(&self.clock.shim_file(n).expect("shim mode"), base).map_err(one)?;
                        }
                        Ok(())
                    }
                    ClockAction::Strobe { delta_ms, period_ms } => {
                        let files: Vec<(NodeName, PathBuf)> =
                            nodes.iter().map(|n| (n.clone(), self.clock.shim_file(n).expect("shim mode"))).collect();
                        active.strobe = Some(spawn_shim_strobe(
                            files,
                            self.base_ns.clone(),
                            delta_ms.saturating_mul(1_000_000),
                            Duration::from_millis((*period_ms).max(1)),
                        ));
                        Ok(())
                    }
                }
            }
            ClockMode::Settime { helper } => {
                let mut services = BTreeMap::new();
                for n in nodes {
                    let r = self.remote(n).map_err(one)?;
                    let out = run_sh(r.as_ref(), "list active NTP services", active_ntp_script()).await.map_err(one)?;
                    services.insert(n.clone(), out.split_whitespace().map(str::to_string).collect::<Vec<_>>());
                }
                let undo_ms = match action {
                    ClockAction::Bump { delta_ms } => Some(-delta_ms),
                    ClockAction::Strobe { .. } => None,
                };
                active.heals = services
                    .iter()
                    .map(|(n, s)| {
                        let action = HealAction::ClockSettime { helper: helper.clone(), undo_ms, ntp_services: s.clone() };
                        self.pending(id, n, action)
                    })
                    .collect::<Result<_>>()
                    .map_err(one)?;
                self.record_ahead(&active.heals).map_err(one)?;
                let mut errors = Vec::new();
                for n in nodes {
                    let r = self.remote(n).map_err(one)?;
                    if let Err(e) = run_sh(r.as_ref(), "stop NTP", clock::stop_ntp_script()).await {
                        errors.push(e.to_string());
                    }
                }
                if !errors.is_empty() {
                    return Err(errors);
                }
                match action {
                    ClockAction::Bump { delta_ms } => {
                        let h = helper.clone();
                        let d = *delta_ms;
                        let errors = self
                            .on_nodes(nodes, |_, r| {
                                let script = clock::bump_script(&h, d);
                                async move { run_sh(r.as_ref(), "bump the clock", script).await.map(|_| ()) }
                            })
                            .await;
                        if errors.is_empty() { Ok(()) } else { Err(errors) }
                    }
                    ClockAction::Strobe { delta_ms, period_ms } => {
                        let remotes: Vec<Arc<dyn Remote>> = nodes.iter().filter_map(|n| self.remote(n).ok()).collect();
                        active.strobe = Some(spawn_settime_strobe(
                            remotes,
                            helper.clone(),
                            *delta_ms,
                            Duration::from_millis((*period_ms).max(1)),
                        ));
                        Ok(())
                    }
                }
            }
        }
    }
}

/// Where a node script runs: among the node's own commands, or in its network namespace with
/// the controller's network tools (iptables, tc, ip: [`Remote::run_net`], for nodes with a
/// file system of their own).
#[derive(Debug, Clone, Copy)]
pub(crate) enum On {
    Node,
    Network,
}

/// Runs `script` on `remote` (`what` names it in errors); its stdout.
pub(crate) async fn shell(
    remote: &dyn Remote,
    on: On,
    what: &str,
    script: String,
    timeout: Duration,
) -> Result<String> {
    let cmd = Exec::sh(script).timeout(timeout);
    let out = match on {
        On::Node => remote.exec(&cmd).await,
        On::Network => remote.exec_net(&cmd).await,
    };
    out.map(|o| o.stdout)
        .map_err(|e| Error::remote(&remote.node().name, what, e))
}

pub(crate) async fn run_sh(remote: &dyn Remote, what: &str, script: String) -> Result<String> {
    shell(remote, On::Node, what, script, CMD_TIMEOUT).await
}

pub(crate) async fn run_net_sh(remote: &dyn Remote, what: &str, script: String) -> Result<String> {
    shell(remote, On::Network, what, script, CMD_TIMEOUT).await
}

pub(crate) fn active_ntp_script() -> String {
    format!(
        "for s in {}; do systemctl is-active --quiet $s 2>/dev/null && echo $s; done; true",
        clock::NTP_SERVICES.join(" ")
    )
}

pub(crate) fn spawn_shim_strobe(
    files: Vec<(NodeName, PathBuf)>,
    base: Arc<Mutex<BTreeMap<NodeName, i64>>>,
    delta_ns: i64,
    period: Duration,
) -> Strobe {
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(async move {
        let mut on = false;
        loop {
            on = !on;
            for (n, f) in &files {
                let b = lock(&base).get(n).copied().unwrap_or(0);
                if let Err(e) = clock::write_offset(f, b + if on { delta_ns } else { 0 }) {
                    tracing::warn!("clock strobe on {n}: {e}");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = rx.wait_for(|v| *v) => break,
            }
        }
        // The stop path writes the base offsets back (ClockShim heal).
    });
    Strobe { stop: tx, handle }
}

pub(crate) fn spawn_settime_strobe(
    remotes: Vec<Arc<dyn Remote>>,
    helper: String,
    delta_ms: i64,
    period: Duration,
) -> Strobe {
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(async move {
        let mut on = false;
        loop {
            let d = if on { -delta_ms } else { delta_ms };
            on = !on;
            for r in &remotes {
                if let Err(e) = run_sh(
                    r.as_ref(),
                    "strobe the clock",
                    clock::bump_script(&helper, d),
                )
                .await
                {
                    tracing::warn!("{e}");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = rx.wait_for(|v| *v) => break,
            }
        }
        if on {
            for r in &remotes {
                if let Err(e) = run_sh(
                    r.as_ref(),
                    "end the clock strobe",
                    clock::bump_script(&helper, -delta_ms),
                )
                .await
                {
                    tracing::warn!("{e}");
                }
            }
        }
    });
    Strobe { stop: tx, handle }
}
