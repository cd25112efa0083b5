//! A running node: the listener, peer links, ticker, replication kicker, the group-commit
//! flusher thread, and test hooks (partition, campaign, kill, inspect).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::AbortHandle;
use tracing::{Instrument, error, info};

use crate::Error;
use crate::codec::Msg;
use crate::config::Config;
use crate::core::{Core, Progress, Role, SnapJob};
use crate::state::Value;
use crate::storage::{self, LogFile, SnapshotFile};

/// State shared by a node's tasks.
pub struct Shared {
    pub cfg: Arc<Config>,
    core: Mutex<Core>,
    flush_cv: Arc<Condvar>,
    repl_kick: Arc<Notify>,
    pub progress: watch::Receiver<Progress>,
    killed: AtomicBool,
    stopping: AtomicBool,
    /// A snapshot from the leader is being installed.
    pub installing: AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn track(&self, h: AbortHandle) {
        let mut t = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() > 64 {
            t.retain(|h| !h.is_finished());
        }
        t.push(h);
    }
}

/// A snapshot of a node's replication status (the ROLE fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: String,
    pub role: Role,
    pub term: u64,
    pub leader: Option<String>,
    pub last_lsn: u64,
    pub applied: u64,
    pub commit: u64,
    pub snapshot_lsn: u64,
}

/// Handle to a running node.
pub struct Node {
    shared: Arc<Shared>,
    flusher: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
}

impl Node {
    /// Recover the data dir, bind the listener and start all tasks (needs a tokio runtime).
    pub async fn start(cfg: Config) -> Result<Node, Error> {
        let cfg = Arc::new(cfg);
        let mut rec = storage::open(&cfg.data_dir)?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| Error::Io(format!("bind {}", cfg.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Io("local addr".into(), e))?;
        let n = cfg.peers.len();
        let mut senders = Vec::with_capacity(n);
        let mut receivers = Vec::with_capacity(n);
        for i in 0..n {
            if i == cfg.me {
                senders.push(None);
                receivers.push(None);
            } else {
                let (tx, rx) = mpsc::channel::<Msg>(4096);
                senders.push(Some(tx));
                receivers.push(Some(rx));
            }
        }
        let flush_cv = Arc::new(Condvar::new());
        let repl_kick = Arc::new(Notify::new());
        let (ptx, prx) = watch::channel(Progress {
            term: rec.term,
            leader: false,
            commit: 0,
        });
        let core = Core::new(
            cfg.clone(),
            &mut rec,
            senders,
            ptx,
            repl_kick.clone(),
            flush_cv.clone(),
        )?;
        info!(
            id = cfg.id(),
            %addr,
            term = core.term,
            last_lsn = core.log.last_lsn(),
            snapshot_lsn = core.snapshot_lsn,
            mode = cfg.mode.name(),
            replication = cfg.replication.name(),
            bugs = ?cfg.bugs,
            "node starting"
        );
        core.publish();
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            core: Mutex::new(core),
            flush_cv,
            repl_kick,
            progress: prx,
            killed: AtomicBool::new(false),
            installing: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let file = rec.file;
        let s2 = shared.clone();
        let span = tracing::info_span!("node", id = cfg.id(), port = cfg.listen.port());
        let span2 = span.clone();
        let flusher = std::thread::Builder::new()
            .name(format!("flush-{}", cfg.id()))
            .spawn(move || span2.in_scope(|| flusher(s2, file)))
            .map_err(|e| Error::Io("spawn flusher".into(), e))?;
        for (i, rx) in receivers.into_iter().enumerate() {
            if let Some(rx) = rx {
                let h = tokio::spawn(
                    crate::net::sender(shared.clone(), i, rx).instrument(span.clone()),
                );
                shared.track(h.abort_handle());
            }
        }
        let h = tokio::spawn(accept_loop(shared.clone(), listener).instrument(span.clone()));
        shared.track(h.abort_handle());
        let h = tokio::spawn(ticker(shared.clone()).instrument(span.clone()));
        shared.track(h.abort_handle());
        let h = tokio::spawn(replicator(shared.clone()).instrument(span));
        shared.track(h.abort_handle());
        Ok(Node {
            shared,
            flusher: Some(flusher),
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn id(&self) -> &str {
        self.shared.cfg.id()
    }

    pub fn status(&self) -> Status {
        let c = self.shared.core();
        Status {
            id: c.cfg.id().to_string(),
            role: c.role,
            term: c.term,
            leader: c.leader.map(|l| c.cfg.peers[l].id.clone()),
            last_lsn: c.log.last_lsn(),
            applied: c.applied,
            commit: c.commit,
            snapshot_lsn: c.snapshot_lsn,
        }
    }

    /// The applied state (for comparing replicas).
    pub fn dump(&self) -> BTreeMap<Bytes, Value> {
        let c = self.shared.core();
        let data = c.store.encode();
        drop(c);
        let store = crate::state::Store::decode(Bytes::from(data)).expect("own encoding");
        store.into_sorted()
    }

    /// Test hook: drop all messages to and from these peers (a network partition).
    pub fn block(&self, ids: &[&str]) {
        let mut c = self.shared.core();
        for (i, p) in self.shared.cfg.peers.iter().enumerate() {
            if ids.contains(&p.id.as_str()) && i != self.shared.cfg.me {
                c.blocked.insert(i);
            }
        }
    }

    /// Test hook: heal every partition of this node.
    pub fn heal(&self) {
        self.shared.core().blocked.clear();
    }

    /// Test hook: set this node's wall clock `ms` ahead (negative: back), as the clock
    /// nemesis does to a process.
    pub fn skew_clock(&self, ms: i64) {
        self.shared.core().clock_skew_ns = ms * 1_000_000;
    }

    /// Test hook: start an election now, bypassing voters' leader stickiness.
    pub fn campaign(&self) {
        let mut c = self.shared.core();
        if c.role != Role::Leader {
            c.start_election(true);
        }
    }

    fn abort_tasks(&self) {
        let t = std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for h in t {
            h.abort();
        }
    }

    /// Crash the node: abort everything; records not yet flushed are lost.
    pub async fn kill(mut self) {
        self.shared.killed.store(true, Ordering::SeqCst);
        self.abort_tasks();
        self.join_flusher().await;
    }

    /// Clean shutdown: stop serving, flush the log, stop.
    pub async fn shutdown(mut self) {
        info!("shutting down");
        self.abort_tasks();
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.join_flusher().await;
    }

    async fn join_flusher(&mut self) {
        self.shared.flush_cv.notify_all();
        if let Some(h) = self.flusher.take() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shared.killed.store(true, Ordering::SeqCst);
        self.abort_tasks();
        self.shared.flush_cv.notify_all();
    }
}

/// Group commit: write all queued log operations, fsync once, report durability.
fn flusher(shared: Arc<Shared>, mut file: LogFile) {
    loop {
        let (ops, epoch, last) = {
            let mut c = shared.core();
            loop {
                if shared.killed.load(Ordering::SeqCst) {
                    return;
                }
                if c.log.has_ops() {
                    break;
                }
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                c = shared
                    .flush_cv
                    .wait_timeout(c, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            (c.log.take_ops(), c.log.epoch, c.log.last_lsn())
        };
        if let Err(e) = file.exec(ops) {
            error!("failed to write the log: {e}; this node stops acknowledging");
            shared.core().failed = Some(e.to_string());
            return;
        }
        shared.core().on_flushed(epoch, last);
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let s = shared.clone();
        let h = tokio::spawn(async move { dispatch(s, sock).await }.in_current_span());
        shared.track(h.abort_handle());
    }
}

/// Tell peer connections (magic first byte 0) from client connections.
async fn dispatch(shared: Arc<Shared>, mut sock: TcpStream) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    match sock.read_buf(&mut buf).await {
        Ok(0) | Err(_) => return,
        Ok(_) => {}
    }
    if buf[0] == 0 {
        crate::net::receiver(shared, sock, buf).await;
    } else {
        crate::server::serve(shared, sock, buf).await;
    }
}

async fn ticker(shared: Arc<Shared>) {
    let mut iv = tokio::time::interval(Duration::from_millis(10));
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        iv.tick().await;
        let (jobs, compact) = {
            let mut c = shared.core();
            c.tick(Instant::now());
            let jobs = std::mem::take(&mut c.snap_jobs);
            let compact = if c.want_compact && !c.compacting {
                c.want_compact = false;
                c.compacting = true;
                let lsn = c.applied;
                Some((
                    lsn,
                    c.log.term_at(lsn).unwrap_or(c.log.base_term),
                    c.store.clone(),
                ))
            } else {
                None
            };
            (jobs, compact)
        };
        for j in jobs {
            tokio::spawn(send_snapshot(shared.clone(), j));
        }
        if let Some((lsn, term, store)) = compact {
            let s = shared.clone();
            tokio::task::spawn_blocking(move || compact_log(s, lsn, term, store));
        }
    }
}

async fn send_snapshot(shared: Arc<Shared>, j: SnapJob) {
    let SnapJob {
        peer,
        term,
        lsn,
        last_term,
        commit,
        store,
    } = j;
    let Ok(data) = tokio::task::spawn_blocking(move || store.encode()).await else {
        return;
    };
    let c = shared.core();
    let echo = c.now_echo();
    c.send(
        peer,
        Msg::Snapshot {
            term,
            lsn,
            last_term,
            commit,
            echo,
            data: Bytes::from(data),
        },
    );
}

/// Write a snapshot of the applied state, then drop log records it covers beyond the
/// retained tail.
fn compact_log(shared: Arc<Shared>, lsn: u64, term: u64, store: crate::state::Store) {
    let data = Bytes::from(store.encode());
    if shared.killed.load(Ordering::SeqCst) {
        // A crashed in-process node must not write into a data dir that may be reused.
        return;
    }
    let res = storage::save_snapshot(&shared.cfg.data_dir, &SnapshotFile { lsn, term, data });
    let mut c = shared.core();
    c.compacting = false;
    if let Err(e) = res {
        error!("failed to write snapshot: {e}");
        return;
    }
    if c.log.term_at(lsn) == Some(term) || c.log.base_lsn == lsn {
        let cut = lsn.min(c.log.last_lsn().saturating_sub(c.cfg.retained_log));
        c.log.compact(cut);
        c.snapshot_lsn = lsn;
        c.flush_kick.notify_one();
        info!(
            snapshot_lsn = lsn,
            log_base = c.log.base_lsn,
            "compacted the log"
        );
    }
}

async fn replicator(shared: Arc<Shared>) {
    let kick = shared.repl_kick.clone();
    loop {
        kick.notified().await;
        shared.core().replicate_all();
    }
}
