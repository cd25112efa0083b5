//! The tasks that talk to the system: client workers (one per `--concurrency`), the leader
//! probe (one process per node, every 100 ms), and the set workload's final reads.

use history::vocab;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use history::{OpType, Process, Value};
use tokio::sync::watch;
use workloads::{Client, Completion, Generator, Invocation, Outcome};

use super::recorder::Recorder;
use systems::System;

/// Hands out process numbers: a client whose op ended `info` continues as a new process.
#[derive(Debug)]
pub struct Processes(AtomicU64);

impl Processes {
    pub fn starting_at(n: u64) -> Self {
        Processes(AtomicU64::new(n))
    }
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// Performs one op as `process`: records the invocation, invokes, records the completion.
pub async fn perform(
    rec: &Recorder,
    client: &mut dyn Client,
    process: u64,
    op: &Invocation,
) -> Completion {
    rec.record(
        Process::Client(process),
        OpType::Invoke,
        op.f,
        op.key.clone(),
        op.value.clone(),
        op.node.as_deref(),
        None,
    );
    let c = client.invoke(op).await;
    let kind = match c.outcome {
        Outcome::Ok => OpType::Ok,
        Outcome::Fail => OpType::Fail,
        Outcome::Info => OpType::Info,
    };
    rec.record(
        Process::Client(process),
        kind,
        op.f,
        op.key.clone(),
        c.value.clone(),
        c.node.as_deref(),
        c.error.clone(),
    );
    c
}

/// What every worker shares: the recorder, the process numbering, pacing and the stop flag.
#[derive(Clone)]
pub struct Shared {
    pub rec: Recorder,
    pub processes: Arc<Processes>,
    pub interval: Option<Duration>,
    pub stop: watch::Receiver<bool>,
}

/// One client worker: ops from its generator until `stop`, paced to `interval` if given.
pub async fn worker(
    shared: Shared,
    mut client: Box<dyn Client>,
    mut generator: Generator,
    first_process: u64,
    first_node: String,
) {
    let Shared {
        rec,
        processes,
        interval,
        stop,
    } = shared;
    client.open(&first_node).await;
    let mut process = first_process;
    let mut tick = interval.map(|i| {
        let mut t = tokio::time::interval(i);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        if *stop.borrow() {
            break;
        }
        if let Some(t) = tick.as_mut() {
            let mut stop2 = stop.clone();
            tokio::select! {
                _ = t.tick() => {}
                _ = stop2.wait_for(|s| *s) => break,
            }
        }
        let op = generator.next_op();
        let c = perform(&rec, client.as_mut(), process, &op).await;
        if c.outcome == Outcome::Info {
            process = processes.next();
        } else if c.outcome == Outcome::Fail {
            // Back off a little while there is no leader, so a failover is not a busy loop.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    client.close().await;
}

/// The leader probe of one node: `leader` ops every `every` until `stop` (a probe that got no
/// answer ends `fail`, so the process never changes).
#[allow(clippy::too_many_arguments)]
pub async fn probe(
    rec: Recorder,
    mut client: Box<dyn Client>,
    node: String,
    process: u64,
    every: Duration,
    leader: nemesis::LeaderView,
    stop: watch::Receiver<bool>,
) {
    let op = Invocation::new(vocab::LEADER, Value::Nil).on(node.clone());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut s = stop.clone();
        tokio::select! {
            _ = tick.tick() => {}
            _ = s.wait_for(|v| *v) => break,
        }
        let c = perform(&rec, client.as_mut(), process, &op).await;
        let view = match c.outcome {
            Outcome::Ok => Some((
                c.value
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                c.value.get("term").and_then(Value::as_int),
            )),
            _ => None,
        };
        leader.set(&node, view);
    }
    client.close().await;
}

/// Waits (within `limit`) until the cluster has converged: every node answers, one leader
/// that all name, and every node that reports an applied index has applied the same one, at
/// least what the leader has committed, in two rounds in a row (200 ms apart) with the same
/// indices. One round is not enough: a leader elected a moment ago reports the commit index
/// of the previous term until its first record commits, and the followers it has not yet
/// sent its log to look caught up against it. Returns the leader, or why it did not converge.
pub async fn converge(system: &dyn System, limit: Duration) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last;
    let mut previous: Option<(String, Vec<Option<i64>>)> = None;
    loop {
        let mut roles = Vec::new();
        last = String::new();
        for n in system.nodes() {
            match system.role(&n, Duration::from_millis(500)).await {
                Ok(r) => roles.push((n, r)),
                Err(e) => last = format!("{n} does not answer: {e:#}"),
            }
        }
        let mut now = None;
        if last.is_empty() {
            let leaders: Vec<_> = roles
                .iter()
                .filter(|(_, r)| r.role == vocab::ROLE_LEADER)
                .collect();
            if leaders.len() == 1 {
                let (ln, lr) = leaders[0];
                let all_name = roles.iter().all(|(_, r)| r.leader.as_deref() == Some(ln));
                let applied: Vec<Option<i64>> = roles.iter().map(|(_, r)| r.applied).collect();
                let mut known = applied.iter().flatten();
                let first = known.next().copied();
                let same = known.all(|a| Some(*a) == first);
                let caught_up = same && first.unwrap_or(0) >= lr.committed.unwrap_or(0);
                if all_name && caught_up {
                    let state = (ln.clone(), applied);
                    if previous.as_ref() == Some(&state) {
                        return Ok(ln.clone());
                    }
                    now = Some(state);
                    last = format!("leader {ln}; every node caught up, checking it holds");
                } else {
                    last = format!("leader {ln}; not every node names it or has caught up");
                }
            } else {
                last = format!("{} nodes claim to lead", leaders.len());
            }
        }
        previous = now;
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Final reads of `f` (the set's `read`, the `digest`): one on every node (retried a few
/// times when a node does not answer; each try is its own op).
pub async fn final_reads(
    rec: &Recorder,
    system: &dyn System,
    processes: &Processes,
    f: &'static str,
    timeout: Duration,
) -> usize {
    let mut ok = 0;
    for op in workloads::generator::final_reads(f, system.nodes().iter().map(String::as_str)) {
        let mut client = system.client(workloads::ClientOptions::new(timeout));
        for attempt in 0..5 {
            let process = processes.next();
            let c = perform(rec, client.as_mut(), process, &op).await;
            if c.outcome == Outcome::Ok {
                ok += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
        client.close().await;
    }
    ok
}
