//! The nemesis's side of the history, and the supervisor that watches each node's main
//! process between the nemesis's ops.
//!
//! [`NemesisLog`] writes the nemesis ops and knows whether one is open (its invocation
//! written, its completion not yet) and which nodes a `kill` fault holds down. Nemesis ops
//! pair by alternation, so the supervisor's own ops (`process-exit`, `process-restart`, each
//! an invocation and a completion) are written only while no nemesis op is open; and a
//! process a `kill` fault stopped has not exited by itself.
//!
//! [`supervise`] polls a node's main process. When it is gone and no fault explains it (a
//! system that fenced itself, a crash), it records `process-exit`, then follows the system's
//! [`ExitPolicy`]: leave the node down, or start it again (retried until it runs) and record
//! `process-restart`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use control::Remote;
use history::{OpType, Process, Value, vocab};
use nemesis::{ExitPolicy, FaultKind, NemesisEvent, Phase, SystemControl};
use serde_json::json;
use tokio::sync::watch;

use crate::recorder::Recorder;
use crate::store::RunLog;

/// Writes the nemesis's ops, and the supervisor's between them.
pub struct NemesisLog {
    rec: Recorder,
    state: Mutex<State>,
    /// Exits recorded, and restarts done, over the run.
    pub exits: AtomicU64,
    pub restarts: AtomicU64,
}

#[derive(Default)]
struct State {
    /// A nemesis op's invocation is written and its completion is not.
    open: bool,
    /// Bumped by every nemesis invocation: a liveness check begun at an older generation
    /// may have seen a fault at work.
    generation: u64,
    /// Nodes a `kill` fault stopped and has not restarted.
    killed: BTreeSet<String>,
}

impl NemesisLog {
    pub fn new(rec: Recorder) -> Arc<Self> {
        Arc::new(NemesisLog {
            rec,
            state: Mutex::new(State::default()),
            exits: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes one end of a nemesis op (and keeps the progress display's active faults).
    pub fn record(&self, ev: NemesisEvent) {
        let mut st = self.state();
        let (f, value, error) = match ev {
            NemesisEvent::Invoke { f, value } => {
                st.open = true;
                st.generation += 1;
                (f, value, None)
            }
            NemesisEvent::Complete { f, value, records } => {
                st.open = false;
                for r in records
                    .iter()
                    .filter(|r| matches!(r.kind, FaultKind::Kill | FaultKind::Member))
                {
                    for n in &r.nodes {
                        match r.phase {
                            Phase::Start => st.killed.insert(n.clone()),
                            Phase::Stop => st.killed.remove(n),
                        };
                    }
                }
                self.active_faults(&f);
                (f, value, None)
            }
            NemesisEvent::Fail { f, value, error } => {
                st.open = false;
                (f, value, Some(error))
            }
        };
        // Under the lock: the supervisor's ops never fall between an invocation and its
        // completion.
        self.write(&f, value, error);
    }

    fn write(&self, f: &str, value: serde_json::Value, error: Option<String>) {
        let value = serde_json::from_value::<Value>(value).unwrap_or(Value::Nil);
        self.rec
            .record(Process::Nemesis, OpType::Info, f, None, value, None, error);
    }

    fn active_faults(&self, f: &str) {
        let mut active = self
            .rec
            .counters
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match vocab::parse_nemesis_f(f) {
            Some((vocab::Phase::Start, k)) => active.push(k.to_owned()),
            Some((vocab::Phase::Stop, k)) => {
                if let Some(i) = active.iter().position(|a| a == k) {
                    active.remove(i);
                }
            }
            None if f == vocab::HEAL_ALL => active.clear(),
            None => {}
        }
    }

    /// The current generation, if no nemesis op is open and no kill holds `node` down.
    fn quiet(&self, node: &str) -> Option<u64> {
        let st = self.state();
        (!st.open && !st.killed.contains(node)).then_some(st.generation)
    }

    fn killed(&self, node: &str) -> bool {
        self.state().killed.contains(node)
    }

    /// Writes `f` as an invocation and its completion if no nemesis op is open (and, with
    /// `generation`, none began since it was read and no kill holds `node`). True if written.
    fn pair_if_quiet(
        &self,
        generation: Option<u64>,
        node: &str,
        f: &str,
        value: serde_json::Value,
    ) -> bool {
        let st = self.state();
        let stale = generation.is_some_and(|g| g != st.generation || st.killed.contains(node));
        if st.open || stale {
            return false;
        }
        self.write(f, value.clone(), None);
        self.write(f, value, None);
        true
    }
}

/// How often a node's main process is checked: each check is a command on the node (an
/// `ip netns exec` or an SSH channel), so not more often than a restart needs.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Watches `remote`'s main process every `interval` until `stop`; see the module docs.
pub async fn supervise(
    log: Arc<NemesisLog>,
    control: Arc<dyn SystemControl>,
    remote: Arc<dyn Remote>,
    run_log: Arc<RunLog>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let policy = control.on_exit();
    let name = remote.node().name.clone();
    let policy_name = match policy {
        ExitPolicy::Leave => "leave",
        ExitPolicy::Restart => "restart",
    };
    // Recorded as exited and not yet seen running again.
    let mut down = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(generation) = log.quiet(&name) else {
            continue;
        };
        let running = match control.running(remote.as_ref()).await {
            Ok(Some(r)) => r,
            Ok(None) => return, // this system cannot tell
            Err(_) => continue, // unreachable right now: no evidence either way
        };
        if running || down {
            down &= !running;
            continue;
        }
        let value = json!({"node": name, "on_exit": policy_name});
        if !log.pair_if_quiet(Some(generation), &name, vocab::PROCESS_EXIT, value) {
            continue;
        }
        down = true;
        log.exits.fetch_add(1, Ordering::Relaxed);
        run_log.line(&format!(
            "{name}: the system's process exited and no fault killed it (on_exit = {policy_name})"
        ));
        if policy == ExitPolicy::Restart
            && restart(&log, control.as_ref(), &remote, &run_log, &mut stop).await
        {
            down = false;
        }
    }
}

/// Starts the node again, retrying until it runs, a kill fault takes it over, or `stop`.
/// True when it was started (and `process-restart` recorded).
async fn restart(
    log: &NemesisLog,
    control: &dyn SystemControl,
    remote: &Arc<dyn Remote>,
    run_log: &RunLog,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let name = &remote.node().name;
    let mut attempts = 0u32;
    loop {
        if *stop.borrow() || log.killed(name) {
            return false;
        }
        if log.quiet(name).is_some() {
            attempts += 1;
            match control.start(remote.as_ref()).await {
                Ok(()) => break,
                Err(e) => run_log.line(&format!(
                    "warning: {name}: restart {attempts} failed (retrying): {e}"
                )),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return false,
        }
    }
    let value = json!({"node": name, "attempts": attempts});
    while !log.pair_if_quiet(None, name, vocab::PROCESS_RESTART, value.clone()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    log.restarts.fetch_add(1, Ordering::Relaxed);
    run_log.line(&format!("{name}: started again"));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    use async_trait::async_trait;
    use control::{Exec, ExecOutput, Node};
    use history::History;
    use nemesis::{Fault, FaultRecord, Target};

    #[derive(Debug)]
    struct Quiet(Node);

    #[async_trait]
    impl Remote for Quiet {
        fn node(&self) -> &Node {
            &self.0
        }
        async fn run(&self, _: &Exec) -> control::Result<ExecOutput> {
            unreachable!("the fake system never runs commands")
        }
        async fn upload(&self, _: &Path, _: &str) -> control::Result<()> {
            Ok(())
        }
        async fn download(&self, _: &str, _: &Path) -> control::Result<()> {
            Ok(())
        }
    }

    /// One process, alive or not; `start` brings it back after `fail_starts` failures.
    #[derive(Debug)]
    struct Fake {
        alive: AtomicBool,
        starts: AtomicU64,
        fail_starts: u64,
        policy: ExitPolicy,
    }

    #[async_trait]
    impl SystemControl for Fake {
        async fn pids(&self, _: &dyn Remote) -> nemesis::Result<Vec<u32>> {
            Ok(vec![])
        }
        async fn kill(&self, _: &dyn Remote) -> nemesis::Result<()> {
            self.alive.store(false, Ordering::SeqCst);
            Ok(())
        }
        async fn start(&self, _: &dyn Remote) -> nemesis::Result<()> {
            if self.starts.fetch_add(1, Ordering::SeqCst) < self.fail_starts {
                return Err(nemesis::Error::other("start", "not yet"));
            }
            self.alive.store(true, Ordering::SeqCst);
            Ok(())
        }
        async fn running(&self, _: &dyn Remote) -> nemesis::Result<Option<bool>> {
            Ok(Some(self.alive.load(Ordering::SeqCst)))
        }
        fn on_exit(&self) -> ExitPolicy {
            self.policy
        }
    }

    #[tokio::test]
    async fn a_refused_restart_is_the_supervisors_to_retry_only_when_the_system_says_so() {
        let entry = nemesis::PendingHeal {
            id: 1,
            node: "n1".into(),
            addr: "10.0.0.1".into(),
            action: nemesis::HealAction::Restart,
        };
        let remote = Quiet(Node::new("n1", "10.0.0.1"));
        for (policy, healed) in [(ExitPolicy::Restart, true), (ExitPolicy::Leave, false)] {
            let fake = Fake {
                alive: AtomicBool::new(false),
                starts: AtomicU64::new(0),
                fail_starts: 1,
                policy,
            };
            let r = nemesis::heal::execute_heal(&entry, Some(&remote), Some(&fake)).await;
            assert_eq!(r.is_ok(), healed, "{policy:?}: {r:?}");
        }
    }

    struct Run {
        log: Arc<NemesisLog>,
        fake: Arc<Fake>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
        writer: crate::recorder::WriterHandle,
        path: std::path::PathBuf,
        _dir: tempfile::TempDir,
    }

    fn start(policy: ExitPolicy, fail_starts: u64) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (rec, writer) = crate::recorder::start(std::fs::File::create(&path).unwrap());
        let log = NemesisLog::new(rec);
        let fake = Arc::new(Fake {
            alive: AtomicBool::new(true),
            starts: AtomicU64::new(0),
            fail_starts,
            policy,
        });
        let (stop, stop_rx) = watch::channel(false);
        let run_log = Arc::new(RunLog::new(None, Box::new(|_| {})).unwrap());
        let task = tokio::spawn(supervise(
            log.clone(),
            fake.clone(),
            Arc::new(Quiet(Node::new("n1", "10.0.0.1"))),
            run_log,
            Duration::from_millis(10),
            stop_rx,
        ));
        Run {
            log,
            fake,
            stop,
            task,
            writer,
            path,
            _dir: dir,
        }
    }

    impl Run {
        /// Stops the supervisor and returns the history it wrote (pairing checked).
        async fn finish(self) -> Vec<(String, serde_json::Value)> {
            self.stop.send(true).unwrap();
            self.task.await.unwrap();
            drop(self.log);
            self.writer.join().unwrap();
            let (h, _) = history::load(&self.path, Some(history::Format::Jsonl)).unwrap();
            let h: &History = &h;
            h.ops()
                .iter()
                .map(|op| (op.f.to_string(), serde_json::to_value(&op.value).unwrap()))
                .collect()
        }
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    fn kill_record(phase: Phase) -> FaultRecord {
        FaultRecord {
            id: 1,
            kind: FaultKind::Kill,
            phase,
            nodes: vec!["n1".into()],
            grudge: None,
            clock_offset_ms: None,
            fault: Fault::Kill {
                target: Target::Nodes(vec!["n1".into()]),
            },
            errors: vec![],
        }
    }

    #[tokio::test]
    async fn an_exit_no_fault_explains_is_recorded_and_restarted_until_it_runs() {
        let run = start(ExitPolicy::Restart, 2);
        settle().await;
        run.fake.alive.store(false, Ordering::SeqCst);
        // Two failed starts, one second apart, then it runs.
        tokio::time::sleep(Duration::from_millis(2400)).await;
        assert!(run.fake.alive.load(Ordering::SeqCst));
        assert_eq!(run.fake.starts.load(Ordering::SeqCst), 3);
        let ops = run.finish().await;
        let fs: Vec<&str> = ops.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fs,
            [
                vocab::PROCESS_EXIT,
                vocab::PROCESS_EXIT,
                vocab::PROCESS_RESTART,
                vocab::PROCESS_RESTART
            ]
        );
        assert_eq!(ops[0].1, json!({"node": "n1", "on_exit": "restart"}));
        assert_eq!(ops[2].1, json!({"node": "n1", "attempts": 3}));
    }

    #[tokio::test]
    async fn left_down_it_is_recorded_once() {
        let run = start(ExitPolicy::Leave, 0);
        settle().await;
        run.fake.alive.store(false, Ordering::SeqCst);
        settle().await;
        settle().await;
        assert_eq!(run.fake.starts.load(Ordering::SeqCst), 0);
        let ops = run.finish().await;
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert_eq!(ops[0].1["on_exit"], "leave");
    }

    #[tokio::test]
    async fn a_kill_fault_is_not_an_exit_and_nothing_falls_inside_a_nemesis_op() {
        let run = start(ExitPolicy::Restart, 0);
        settle().await;
        let ev = |f: &str| (f.to_string(), json!({"nodes": ["n1"]}));
        // The kill's invocation is written; the process dies before its completion.
        let (f, value) = ev("start-kill");
        run.log.record(NemesisEvent::Invoke { f, value });
        run.fake.alive.store(false, Ordering::SeqCst);
        settle().await;
        let (f, value) = ev("start-kill");
        run.log.record(NemesisEvent::Complete {
            f,
            value,
            records: vec![kill_record(Phase::Start)],
        });
        settle().await;
        // The kill holds it down: no exit, no restart.
        assert_eq!(run.fake.starts.load(Ordering::SeqCst), 0);
        let (f, value) = ev("stop-kill");
        run.log.record(NemesisEvent::Invoke { f, value });
        run.fake.alive.store(true, Ordering::SeqCst);
        let (f, value) = ev("stop-kill");
        run.log.record(NemesisEvent::Complete {
            f,
            value,
            records: vec![kill_record(Phase::Stop)],
        });
        settle().await;
        // Later it dies by itself: that is an exit.
        run.fake.alive.store(false, Ordering::SeqCst);
        settle().await;
        let ops = run.finish().await;
        let fs: Vec<&str> = ops.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fs,
            [
                "start-kill",
                "start-kill",
                "stop-kill",
                "stop-kill",
                vocab::PROCESS_EXIT,
                vocab::PROCESS_EXIT,
                vocab::PROCESS_RESTART,
                vocab::PROCESS_RESTART
            ]
        );
    }
}
