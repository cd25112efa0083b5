//! The history writer: one thread owns `history.jsonl` and receives every op over a channel
//! (workers, the leader probe and the nemesis send them), numbers them in arrival order and
//! writes + flushes each at once, so a killed controller leaves a readable prefix. It also
//! keeps the live counters the progress display shows.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use history::{Op, OpType, Process, Value};

/// Live figures of a run, for the progress display and the summary.
#[derive(Debug, Default)]
pub struct Counters {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    pub ops_written: AtomicU64,
    /// Time of the first client op (ns since start; 0 = none yet).
    pub first_op_ns: AtomicU64,
    /// Faults active now (`partition`, `pause`, ...).
    pub faults: Mutex<Vec<String>>,
    /// The leader the probe saw last.
    pub leader: Mutex<Option<String>>,
}

impl Counters {
    pub fn fault_text(&self) -> String {
        let f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_empty() {
            "none".into()
        } else {
            f.join("+")
        }
    }

    pub fn leader_text(&self) -> String {
        self.leader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "?".into())
    }
}

/// A cheap handle to send ops to the writer.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Op>,
    t0: Instant,
    pub counters: Arc<Counters>,
}

impl Recorder {
    /// Nanoseconds since the test started.
    pub fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    pub fn start(&self) -> Instant {
        self.t0
    }

    /// Records one op (its time is taken now).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        process: Process,
        kind: OpType,
        f: &str,
        key: Option<Value>,
        value: Value,
        node: Option<&str>,
        error: Option<String>,
    ) {
        let op = Op {
            index: 0,
            time: Some(self.now()),
            process,
            kind,
            f: f.into(),
            key,
            value,
            node: node.map(Into::into),
            error: error.map(|e| Value::Str(e.into())),
        };
        // The writer only goes away at the end of the run, after every sender.
        let _ = self.tx.send(op);
    }
}

/// The writer thread; `join` returns how many ops it wrote, or the first write error.
pub struct WriterHandle {
    handle: std::thread::JoinHandle<std::io::Result<u64>>,
}

impl WriterHandle {
    pub fn join(self) -> std::io::Result<u64> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the history writer panicked")))
    }
}

/// Starts the writer on `file`. The run's clock starts now.
pub fn start(file: File) -> (Recorder, WriterHandle) {
    let (tx, rx) = mpsc::channel::<Op>();
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let handle = std::thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || {
            let mut w = history::jsonl::Writer::new(file);
            let mut index = 0u64;
            let mut first_error = None;
            for mut op in rx {
                op.index = index;
                index += 1;
                if first_error.is_none() {
                    if let Err(e) = w.write(&op) {
                        first_error = Some(e);
                    }
                }
                c.ops_written.store(index, Ordering::Relaxed);
                if op.is_client() && &*op.f != "leader" {
                    match op.kind {
                        OpType::Invoke => {
                            let t = op.time.unwrap_or(1).max(1);
                            let _ = c.first_op_ns.compare_exchange(
                                0,
                                t,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            );
                        }
                        OpType::Ok => {
                            c.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        OpType::Fail => {
                            c.fail.fetch_add(1, Ordering::Relaxed);
                        }
                        OpType::Info => {
                            c.info.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(index),
            }
        })
        .expect("failed to start the history writer thread");
    (
        Recorder {
            tx,
            t0: Instant::now(),
            counters,
        },
        WriterHandle { handle },
    )
}
