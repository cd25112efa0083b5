//! The effectful layer: the [`Nemesis`] trait (Jepsen-style: setup, invoke a start or stop,
//! heal everything, teardown) and [`ClusterNemesis`], which applies faults through one
//! `Arc<dyn Remote>` per node, so it works the same on a local cluster and on VMs over SSH.
//!
//! Every fault is recorded in the state file (with what undoes it on each node) before it is
//! applied; if applying fails on any node, what was applied is undone and the start fails.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use control::Remote;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::clock::{self, ClockMode};
use crate::error::{Error, Result};
use crate::fault::{ClockAction, Fault, FaultRecord, Partition, Phase};
use crate::grudge::{self, Grudge, NodeName};
use crate::heal::{HealAll, execute_heal, teardown_chain};
use crate::net;
use crate::state::{HealAction, PendingHeal, StateFile};
use crate::system::SystemControl;

/// A nemesis operation: start a fault, or stop the fault instance with this id.
#[derive(Debug, Clone, PartialEq)]
pub enum NemesisOp {
    Start(Fault),
    Stop(u64),
}

/// A nemesis, as in Jepsen: set up once, invoke operations (each completes with what it
/// did), heal everything, tear down.
#[async_trait]
pub trait Nemesis: Send + Sync {
    /// Prepares the nodes (shim offset files at 0, no stale faultline chain).
    async fn setup(&self) -> Result<()>;
    /// Starts or stops a fault; the record says exactly what was done.
    async fn invoke(&self, op: NemesisOp) -> Result<FaultRecord>;
    /// Stops every active fault and heals whatever the state file still lists. Idempotent.
    async fn heal_all(&self) -> Result<Vec<FaultRecord>>;
    /// Heals everything and removes faultline's traces from the nodes.
    async fn teardown(&self) -> Result<()>;
}

/// How to build a [`ClusterNemesis`].
#[derive(Debug, Clone)]
pub struct NemesisConfig {
    /// One remote per node (its `node()` gives the name and address).
    pub remotes: Vec<Arc<dyn Remote>>,
    pub clock: ClockMode,
    /// The write-ahead state file ([`crate::state::default_state_path`] by default).
    pub state_path: PathBuf,
    /// Seed of the nemesis's own random choices (targets, shapes resolved at start).
    pub seed: u64,
    /// The system's processes (pause, kill, leader); `None`: those faults are refused.
    pub system: Option<Arc<dyn SystemControl>>,
}

pub(crate) struct Strobe {
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
    pub(crate) handle: tokio::task::JoinHandle<()>,
}

pub(crate) struct Active {
    pub(crate) start: FaultRecord,
    pub(crate) heals: Vec<PendingHeal>,
    pub(crate) strobe: Option<Strobe>,
    /// Shim mode: nanoseconds this fault added to each node's base offset.
    pub(crate) shim_delta_ns: i64,
}

pub(crate) struct Inner {
    next_id: u64,
    rng: ChaCha8Rng,
    active: BTreeMap<u64, Active>,
}

/// Applies faults to a cluster through its remotes.
pub struct ClusterNemesis {
    pub(crate) remotes: BTreeMap<NodeName, Arc<dyn Remote>>,
    pub(crate) names: Vec<NodeName>,
    pub(crate) clock: ClockMode,
    pub(crate) system: Option<Arc<dyn SystemControl>>,
    pub(crate) state: Arc<Mutex<StateFile>>,
    /// Shim mode: each node's offset from clock bumps (strobes add theirs on top).
    pub(crate) base_ns: Arc<Mutex<BTreeMap<NodeName, i64>>>,
    pub(crate) inner: tokio::sync::Mutex<Inner>,
}

impl std::fmt::Debug for ClusterNemesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNemesis")
            .field("nodes", &self.names)
            .field("clock", &self.clock)
            .finish()
    }
}

pub(crate) const CMD_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClusterNemesis {
    /// A nemesis over `cfg.remotes`. Opens the state file (keeping what it lists: call
    /// [`crate::heal::heal_from_state_file`] first at startup).
    pub fn new(cfg: NemesisConfig) -> Result<ClusterNemesis> {
        let state = StateFile::open(&cfg.state_path)?;
        let remotes: BTreeMap<NodeName, Arc<dyn Remote>> = cfg
            .remotes
            .iter()
            .map(|r| (r.node().name.clone(), r.clone()))
            .collect();
        Ok(ClusterNemesis {
            names: remotes.keys().cloned().collect(),
            remotes,
            clock: cfg.clock,
            system: cfg.system,
            state: Arc::new(Mutex::new(state)),
            base_ns: Arc::new(Mutex::new(BTreeMap::new())),
            inner: tokio::sync::Mutex::new(Inner {
                next_id: 1,
                rng: ChaCha8Rng::seed_from_u64(cfg.seed),
                active: BTreeMap::new(),
            }),
        })
    }

    /// Node names, sorted.
    pub fn nodes(&self) -> &[NodeName] {
        &self.names
    }

    /// The clock mode.
    pub fn clock_mode(&self) -> &ClockMode {
        &self.clock
    }

    /// Ids of the faults active now.
    pub async fn active_ids(&self) -> Vec<u64> {
        self.inner.lock().await.active.keys().copied().collect()
    }

    pub(crate) fn remote(&self, node: &str) -> Result<Arc<dyn Remote>> {
        self.remotes.get(node).cloned().ok_or_else(|| {
            Error::other(
                format!("find node {node}"),
                format!("the cluster has {}", self.names.join(", ")),
            )
        })
    }

    pub(crate) fn addr(&self, node: &str) -> Result<String> {
        Ok(self.remote(node)?.node().addr.clone())
    }

    pub(crate) fn system(&self, what: &str) -> Result<Arc<dyn SystemControl>> {
        self.system
            .clone()
            .ok_or_else(|| Error::other(what, "the nemesis was given no system to act on"))
    }

    pub(crate) fn pending(&self, id: u64, node: &str, action: HealAction) -> Result<PendingHeal> {
        Ok(PendingHeal {
            id,
            node: node.to_string(),
            addr: self.addr(node)?,
            action,
        })
    }

    /// Runs `f` on every node of `nodes` concurrently; the errors, by node.
    pub(crate) async fn on_nodes<F, Fut>(&self, nodes: &[NodeName], f: F) -> Vec<String>
    where
        F: Fn(NodeName, Arc<dyn Remote>) -> Fut,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let mut set = tokio::task::JoinSet::new();
        let mut errors = Vec::new();
        for n in nodes {
            match self.remote(n) {
                Ok(r) => {
                    set.spawn(f(n.clone(), r));
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        while let Some(res) = set.join_next().await {
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e.to_string()),
                Err(e) => errors.push(format!("a nemesis task failed: {e}")),
            }
        }
        errors
    }

    pub(crate) fn record_ahead(&self, heals: &[PendingHeal]) -> Result<()> {
        lock(&self.state).add(heals.iter().cloned())
    }

    fn forget(&self, healed: &[PendingHeal]) -> Result<()> {
        lock(&self.state).remove_where(|p| healed.contains(p))
    }

    /// Undoes `heals` (and the shim delta / strobe of an active fault); removes from the state
    /// file what was undone. Errors list what was not.
    async fn undo(
        &self,
        heals: &[PendingHeal],
        strobe: Option<Strobe>,
        shim_delta_ns: i64,
    ) -> Result<()> {
        if let Some(s) = strobe {
            let _ = s.stop.send(true);
            let _ = s.handle.await;
        }
        // Resume first: a stopped process cannot be restarted or answer.
        let mut ordered: Vec<&PendingHeal> = heals.iter().collect();
        ordered.sort_by_key(|e| !matches!(e.action, HealAction::Resume { .. }));
        let mut done = Vec::new();
        let mut errors = Vec::new();
        let system = self.system.clone();
        for e in ordered {
            let res = match &e.action {
                HealAction::ClockShim { file } => {
                    let base = {
                        let mut b = lock(&self.base_ns);
                        let v = b.entry(e.node.clone()).or_insert(0);
                        *v -= shim_delta_ns;
                        *v
                    };
                    clock::write_offset(std::path::Path::new(file), base)
                }
                _ => {
                    let remote = self.remote(&e.node).ok();
                    execute_heal(e, remote.as_deref(), system.as_deref()).await
                }
            };
            match res {
                Ok(()) => done.push(e.clone()),
                Err(err) => errors.push(err.to_string()),
            }
        }
        self.forget(&done)?;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Heal {
                count: errors.len(),
                errors,
            })
        }
    }

    async fn start(&self, fault: Fault) -> Result<FaultRecord> {
        let mut inner = self.inner.lock().await;
        let needs_leader = matches!(
            &fault,
            Fault::Partition {
                partition: Partition::Shape(s)
            } if s.needs_leader()
        ) || fault.target().is_some_and(|t| t.is_dynamic());
        let leader = match (&self.system, needs_leader) {
            (Some(s), true) => s.leader().await,
            _ => None,
        };
        let id = inner.next_id;
        inner.next_id += 1;
        let mut record = FaultRecord {
            id,
            kind: fault.kind(),
            phase: Phase::Start,
            nodes: vec![],
            grudge: None,
            clock_offset_ms: None,
            fault: fault.clone(),
            errors: vec![],
        };
        let mut active = Active {
            start: record.clone(),
            heals: vec![],
            strobe: None,
            shim_delta_ns: 0,
        };
        let applied = match &fault {
            Fault::Partition { partition } => {
                let g: Grudge = match partition {
                    Partition::Grudge(g) => g.clone(),
                    Partition::Isolate(n) => {
                        if !self.remotes.contains_key(n) {
                            return Err(Error::other(format!("isolate {n}"), "no such node"));
                        }
                        grudge::isolate(&self.names, n)
                    }
                    Partition::Shape(s) => s.build(&self.names, leader.as_deref(), &mut inner.rng),
                };
                grudge::validate(&g, &self.names)
                    .map_err(|e| Error::other("start a partition", e))?;
                record.nodes = g.keys().cloned().collect();
                record.grudge = Some(g.clone());
                record.fault = Fault::Partition {
                    partition: Partition::Grudge(g.clone()),
                };
                let mut plan = Vec::new();
                for (n, drops) in &g {
                    let rules: Vec<Vec<String>> = drops
                        .iter()
                        .map(|d| self.addr(d).map(|a| net::drop_from(&a)))
                        .collect::<Result<_>>()?;
                    plan.push((n.clone(), rules));
                }
                self.apply_rules(id, plan, &mut active).await
            }
            Fault::Loss {
                target,
                probability,
            } => {
                let nodes = self.resolve(target, leader.as_deref(), &mut inner.rng)?;
                record.nodes = nodes.clone();
                let mut plan = Vec::new();
                for n in &nodes {
                    let rules = self
                        .names
                        .iter()
                        .filter(|p| *p != n)
                        .map(|p| {
                            self.addr(p)
                                .map(|a| net::random_drop_from(&a, *probability))
                        })
                        .collect::<Result<_>>()?;
                    plan.push((n.clone(), rules));
                }
                self.apply_rules(id, plan, &mut active).await
            }
            Fault::Bandwidth { target, rate_kbit } => {
                let nodes = self.resolve(target, leader.as_deref(), &mut inner.rng)?;
                record.nodes = nodes.clone();
                self.apply_bandwidth(id, &nodes, *rate_kbit, &mut active)
                    .await
            }
            Fault::Pause { target } => {
                let nodes = self.resolve(target, leader.as_deref(), &mut inner.rng)?;
                record.nodes = nodes.clone();
                self.apply_pause(id, &nodes, &mut active).await
            }
            // A kill is restarted on stop; a node that left the cluster joins it again.
            Fault::Kill { target } | Fault::Member { target } => {
                let leaves = matches!(fault, Fault::Member { .. });
                let nodes = self.resolve(target, leader.as_deref(), &mut inner.rng)?;
                record.nodes = nodes.clone();
                let system = self.system(if leaves {
                    "remove a node"
                } else {
                    "kill the system"
                })?;
                let heal = if leaves {
                    HealAction::Join
                } else {
                    HealAction::Restart
                };
                active.heals = nodes
                    .iter()
                    .map(|n| self.pending(id, n, heal.clone()))
                    .collect::<Result<_>>()?;
                self.record_ahead(&active.heals)?;
                let errors = self
                    .on_nodes(&nodes, |_, r| {
                        let s = system.clone();
                        async move {
                            if leaves {
                                s.leave(r.as_ref()).await
                            } else {
                                s.kill(r.as_ref()).await
                            }
                        }
                    })
                    .await;
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors)
                }
            }
            Fault::Clock { target, action } => {
                let nodes = self.resolve(target, leader.as_deref(), &mut inner.rng)?;
                record.nodes = nodes.clone();
                record.clock_offset_ms = Some(match action {
                    ClockAction::Bump { delta_ms } | ClockAction::Strobe { delta_ms, .. } => {
                        *delta_ms
                    }
                });
                self.apply_clock(id, &nodes, action, &mut active).await
            }
        };
        if let Fault::Pause { target }
        | Fault::Kill { target }
        | Fault::Member { target }
        | Fault::Clock { target, .. }
        | Fault::Loss { target, .. }
        | Fault::Bandwidth { target, .. } = &mut record.fault
        {
            *target = crate::fault::Target::Nodes(record.nodes.clone());
        }
        match applied {
            Ok(()) => {
                active.start = record.clone();
                inner.active.insert(id, active);
                Ok(record)
            }
            Err(errors) => {
                let undo = self
                    .undo(&active.heals, active.strobe.take(), active.shim_delta_ns)
                    .await;
                let mut cause = errors.join("; ");
                if let Err(e) = undo {
                    cause.push_str(&format!(" (and undoing it: {e})"));
                }
                Err(Error::other(
                    format!(
                        "start {} (fault {id})",
                        record.f().trim_start_matches("start-")
                    ),
                    cause,
                ))
            }
        }
    }

    fn resolve(
        &self,
        target: &crate::fault::Target,
        leader: Option<&str>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<NodeName>> {
        let nodes = target.resolve(&self.names, leader, rng);
        if let Some(n) = nodes.iter().find(|n| !self.remotes.contains_key(*n)) {
            return Err(Error::other(
                format!("target node {n}"),
                format!("the cluster has {}", self.names.join(", ")),
            ));
        }
        if nodes.is_empty() {
            return Err(Error::other(
                "choose target nodes",
                "the target names no node",
            ));
        }
        Ok(nodes)
    }

    async fn stop(&self, id: u64) -> Result<FaultRecord> {
        let mut inner = self.inner.lock().await;
        let Some(mut active) = inner.active.remove(&id) else {
            return Err(Error::other(
                format!("stop fault {id}"),
                "no such active fault",
            ));
        };
        let mut record = active.start.clone();
        record.phase = Phase::Stop;
        match self
            .undo(&active.heals, active.strobe.take(), active.shim_delta_ns)
            .await
        {
            Ok(()) => Ok(record),
            Err(e) => Err(Error::other(
                format!("stop {} (fault {id})", record.kind.name()),
                e,
            )),
        }
    }
}

#[async_trait]
impl Nemesis for ClusterNemesis {
    async fn setup(&self) -> Result<()> {
        clock::prepare_shim_files(&self.clock, self.names.iter().map(String::as_str))?;
        let errors = self
            .on_nodes(&self.names, |_, r| async move {
                teardown_chain(r.as_ref()).await
            })
            .await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::other("set up the nemesis", errors.join("; ")))
        }
    }

    async fn invoke(&self, op: NemesisOp) -> Result<FaultRecord> {
        match op {
            NemesisOp::Start(f) => self.start(f).await,
            NemesisOp::Stop(id) => self.stop(id).await,
        }
    }

    async fn heal_all(&self) -> Result<Vec<FaultRecord>> {
        let ids: Vec<u64> = self
            .inner
            .lock()
            .await
            .active
            .keys()
            .rev()
            .copied()
            .collect();
        let mut records = Vec::new();
        let mut errors = Vec::new();
        for id in ids {
            match self.stop(id).await {
                Ok(r) => records.push(r),
                Err(e) => errors.push(e.to_string()),
            }
        }
        // Whatever the state file still lists (failed heals, faults of an earlier run).
        let leftovers: Vec<PendingHeal> = lock(&self.state).pending().to_vec();
        if !leftovers.is_empty() {
            if let Err(e) = self.undo(&leftovers, None, 0).await {
                errors.push(e.to_string());
            }
        }
        if let ClockMode::Shim { .. } = &self.clock {
            lock(&self.base_ns).clear();
            for n in &self.names {
                if let Err(e) = clock::write_offset(&self.clock.shim_file(n).expect("shim mode"), 0)
                {
                    errors.push(e.to_string());
                }
            }
        }
        if errors.is_empty() {
            Ok(records)
        } else {
            Err(Error::Heal {
                count: errors.len(),
                errors,
            })
        }
    }

    async fn teardown(&self) -> Result<()> {
        let healed = Nemesis::heal_all(self).await;
        let errors = self
            .on_nodes(&self.names, |_, r| async move {
                teardown_chain(r.as_ref()).await
            })
            .await;
        healed?;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::other("tear down the nemesis", errors.join("; ")))
        }
    }
}

#[async_trait]
impl HealAll for ClusterNemesis {
    async fn heal_all(&self) -> Result<()> {
        Nemesis::heal_all(self).await.map(|_| ())
    }
}
