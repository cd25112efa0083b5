//! The history writer: one thread owns `history.jsonl` and receives every op over a bounded
//! channel (workers, the leader probe and the nemesis send them), numbers them in arrival
//! order and writes them to the file as soon as no more are waiting (one `write` per backlog,
//! at most 64 KiB held), so a killed controller leaves a readable prefix of everything sent
//! before the writer fell idle. It also keeps the live counters the progress display shows.

use history::vocab;
use std::fs::File;
use std::io::BufWriter;
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
}

/// A cheap handle to send ops to the writer.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::SyncSender<Op>,
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

/// The most the writer holds before writing, even with more ops waiting (its buffer).
const BATCH_BYTES: usize = 64 * 1024;

/// Ops waiting for the writer before a sender waits too: the writer appends about a million
/// ops a second, so only a stalled disk fills this, and then the workload slows down with it
/// instead of piling the history up in memory (64 Ki ops are a few MB).
const QUEUE_OPS: usize = 64 * 1024;

/// Updates the live counters for one op.
fn count(c: &Counters, op: &Op) {
    if op.is_client() && &*op.f != vocab::LEADER {
        match op.kind {
            OpType::Invoke => {
                let t = op.time.unwrap_or(1).max(1);
                let _ = c
                    .first_op_ns
                    .compare_exchange(0, t, Ordering::Relaxed, Ordering::Relaxed);
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
    let (tx, rx) = mpsc::sync_channel::<Op>(QUEUE_OPS);
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let handle = std::thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || {
            let mut w = history::jsonl::Writer::new(BufWriter::with_capacity(BATCH_BYTES, file));
            let mut index = 0u64;
            let mut first_error = None;
            let mut next = None;
            while let Some(mut op) = next.take().or_else(|| rx.recv().ok()) {
                op.index = index;
                index += 1;
                if first_error.is_none() {
                    if let Err(e) = w.append(&op) {
                        first_error = Some(e);
                    }
                }
                c.ops_written.store(index, Ordering::Relaxed);
                count(&c, &op);
                // More ops already waiting: batch them (the buffer writes itself out when
                // full); otherwise write what is held now.
                next = rx.try_recv().ok();
                if next.is_none() && first_error.is_none() {
                    if let Err(e) = w.flush() {
                        first_error = Some(e);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_written_in_order_and_readable_while_the_run_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (rec, handle) = start(File::create(&path).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        let v = Value::Int(t * 100_000 + i);
                        rec.record(
                            Process::Client(t as u64),
                            OpType::Invoke,
                            "add",
                            None,
                            v.clone(),
                            Some("n1"),
                            None,
                        );
                        rec.record(
                            Process::Client(t as u64),
                            OpType::Ok,
                            "add",
                            None,
                            v,
                            Some("n1"),
                            None,
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Everything sent is in the file once the writer is idle, before the run ends.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while rec.counters.ops_written.load(Ordering::Relaxed) < 40_000 && Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 40_000);
        drop(rec);
        assert_eq!(handle.join().unwrap(), 40_000);
        let (h, _) = history::load(&path, None).unwrap();
        assert_eq!(h.len(), 40_000);
        for (i, op) in h.ops().iter().enumerate() {
            assert_eq!(op.index, i as u64);
        }
        assert_eq!(rec_counts(&text), (20_000, 20_000));
    }

    fn rec_counts(text: &str) -> (usize, usize) {
        (
            text.matches("\"type\":\"invoke\"").count(),
            text.matches("\"type\":\"ok\"").count(),
        )
    }
}
