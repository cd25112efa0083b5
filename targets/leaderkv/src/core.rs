//! The node's protocol state (one per node, behind a mutex): role, term, log, applied state,
//! and the transitions shared by election and replication. Never blocks on the network; disk
//! work other than the small metadata file is queued for the flusher.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use tracing::{info, warn};

use crate::codec::{Entry, Msg, Record};
use crate::config::{Bug, Config};
use crate::state::{Overlay, Store};
use crate::storage::{self, Log, Recovered};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// Published on every commit advance and role/term change; client connections wait on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub term: u64,
    pub leader: bool,
    pub commit: u64,
}

/// The leader's view of one follower.
#[derive(Debug, Clone)]
pub struct PeerState {
    /// Next LSN to send.
    pub next: u64,
    /// Highest LSN the follower confirmed to hold (matching ours).
    pub recv: u64,
    /// Highest LSN the follower confirmed to hold durably.
    pub durable: u64,
    /// Latest echo (our send time) the follower answered in this term: the lease.
    pub lease_echo: u64,
    pub last_resp: Option<Instant>,
    pub last_progress: Instant,
    pub empty: bool,
    pub snap_until: Option<Instant>,
    /// Semi-sync: (our durable LSN, when) the first time this follower was seen behind it;
    /// cleared when it reaches that LSN.
    pub lag_since: Option<(u64, Instant)>,
}

/// A snapshot to encode and send outside the lock.
pub struct SnapJob {
    pub peer: usize,
    pub term: u64,
    pub lsn: u64,
    pub last_term: u64,
    pub commit: u64,
    pub store: Store,
}

pub struct Core {
    pub cfg: Arc<Config>,
    pub term: u64,
    pub voted_for: Option<usize>,
    pub role: Role,
    pub leader: Option<usize>,
    pub log: Log,
    pub store: Store,
    pub overlay: Overlay,
    pub applied: u64,
    pub commit: u64,
    pub durable: u64,
    pub snapshot_lsn: u64,
    pub election_deadline: Instant,
    pub last_leader_contact: Option<Instant>,
    /// Follower: highest LSN known to match the current leader's log.
    pub matched: u64,
    pub votes: BTreeSet<usize>,
    pub prevoting: bool,
    pub peers: Vec<PeerState>,
    pub term_start: u64,
    pub leader_since: u64,
    pub sync_follower: Option<usize>,
    pub next_heartbeat: Instant,
    pub senders: Vec<Option<mpsc::Sender<Msg>>>,
    pub blocked: HashSet<usize>,
    pub progress: watch::Sender<Progress>,
    pub repl_kick: Arc<Notify>,
    pub flush_kick: Arc<Condvar>,
    pub local_counters: HashMap<Bytes, i64>,
    pub snap_jobs: Vec<SnapJob>,
    pub compacting: bool,
    pub want_compact: bool,
    pub failed: Option<String>,
    /// Test hook: added to the wall clock (only the `wall-clock-lease` bug reads it).
    pub clock_skew_ns: i64,
    /// A new member joining a running cluster (the data dir's `join` mark): it neither votes
    /// nor stands for election until it has caught up with a leader. A member that forgot
    /// its log and its votes could otherwise elect a leader lacking committed records, or
    /// vote twice in one term.
    pub joining: bool,
    rng: u64,
    t0: Instant,
}

impl Core {
    pub fn new(
        cfg: Arc<Config>,
        rec: &mut Recovered,
        senders: Vec<Option<mpsc::Sender<Msg>>>,
        progress: watch::Sender<Progress>,
        repl_kick: Arc<Notify>,
        flush_kick: Arc<Condvar>,
    ) -> Result<Core, crate::Error> {
        let now = Instant::now();
        let mut store = Store::default();
        let mut snapshot_lsn = 0;
        if let Some(s) = &rec.snapshot {
            store = Store::decode(s.data.clone())?;
            snapshot_lsn = s.lsn;
        }
        let log = std::mem::replace(&mut rec.log, Log::new(0, 0));
        let mut overlay = Overlay::default();
        for lsn in snapshot_lsn + 1..=log.last_lsn() {
            if let Some(e) = log.get(lsn) {
                overlay.add(&store, e);
            }
        }
        let n = cfg.peers.len();
        let seed =
            now.elapsed().as_nanos() as u64 ^ (std::process::id() as u64) << 32 ^ cfg.me as u64;
        let mut c = Core {
            term: rec.term,
            voted_for: rec.voted_for,
            role: Role::Follower,
            leader: None,
            durable: log.last_lsn(),
            log,
            store,
            overlay,
            applied: snapshot_lsn,
            commit: snapshot_lsn,
            snapshot_lsn,
            election_deadline: now,
            last_leader_contact: None,
            matched: 0,
            votes: BTreeSet::new(),
            prevoting: false,
            peers: vec![PeerState::new(0, now); n],
            term_start: 0,
            leader_since: 0,
            sync_follower: None,
            next_heartbeat: now,
            senders,
            blocked: HashSet::new(),
            progress,
            repl_kick,
            flush_kick,
            local_counters: HashMap::new(),
            snap_jobs: Vec::new(),
            compacting: false,
            want_compact: false,
            failed: None,
            clock_skew_ns: 0,
            joining: storage::joining(&cfg.data_dir),
            rng: seed | 1,
            t0: now,
            cfg,
        };
        c.reset_election_timer();
        Ok(c)
    }

    pub fn me(&self) -> usize {
        self.cfg.me
    }

    pub fn bug(&self, b: Bug) -> bool {
        self.cfg.bug(b)
    }

    /// The leader-lease clock: monotonic nanoseconds since start (never 0). With the
    /// `wall-clock-lease` bug, the wall clock (plus the test hook's skew), which jumps when
    /// the clock is set.
    pub fn now_echo(&self) -> u64 {
        if self.bug(Bug::WallClockLease) {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128);
            return (wall + self.clock_skew_ns as i128).max(1) as u64;
        }
        self.t0.elapsed().as_nanos() as u64 + 1
    }

    /// The wall clock in ms since the epoch (plus the test hook's skew): the time of a write.
    pub fn wall_ms(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i128);
        (wall + (self.clock_skew_ns / 1_000_000) as i128).max(0) as u64
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    pub fn reset_election_timer(&mut self) {
        let t = self.cfg.election_timeout.as_millis() as u64;
        let jitter = self.rand() % t.max(1);
        self.election_deadline = Instant::now() + Duration::from_millis(t + jitter);
    }

    /// Send a message to a peer (dropped if partitioned by the test hook or the queue is full).
    pub fn send(&self, to: usize, msg: Msg) {
        if to == self.me() || self.blocked.contains(&to) {
            return;
        }
        if let Some(Some(tx)) = self.senders.get(to) {
            let _ = tx.try_send(msg);
        }
    }

    pub fn others(&self) -> impl Iterator<Item = usize> + use<> {
        let me = self.me();
        (0..self.cfg.peers.len()).filter(move |&i| i != me)
    }

    pub fn persist_meta(&mut self) {
        if let Err(e) = storage::save_meta(&self.cfg.data_dir, self.term, self.voted_for) {
            // A node that cannot persist its term must not take part in elections.
            self.failed = Some(e.to_string());
            panic!("failed to persist term and vote: {e}");
        }
    }

    pub fn publish(&self) {
        let p = Progress {
            term: self.term,
            leader: self.role == Role::Leader,
            commit: self.commit,
        };
        self.progress.send_if_modified(|old| {
            if *old != p {
                *old = p;
                true
            } else {
                false
            }
        });
    }

    /// Adopt a term (durably) if it is newer.
    pub fn observe_term(&mut self, term: u64) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.matched = 0;
            self.persist_meta();
        }
    }

    pub fn become_follower(&mut self, term: u64, leader: Option<usize>) {
        self.observe_term(term);
        if self.role != Role::Follower || self.leader != leader {
            info!(term = self.term, leader = ?leader.map(|l| &self.cfg.peers[l].id), from = self.role.name(), "now follower");
        }
        if self.role == Role::Leader {
            self.sync_follower = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.prevoting = false;
        self.publish();
    }

    pub fn become_leader(&mut self) {
        info!(
            term = self.term,
            last_lsn = self.log.last_lsn(),
            "elected leader"
        );
        let now = Instant::now();
        self.role = Role::Leader;
        self.leader = Some(self.me());
        self.prevoting = false;
        let next = self.log.last_lsn() + 1;
        for p in self.peers.iter_mut() {
            *p = PeerState::new(next, now);
        }
        self.leader_since = self.now_echo();
        self.sync_follower = None;
        self.append(Record::Noop);
        self.term_start = self.log.last_lsn();
        self.next_heartbeat = now;
        self.publish();
        self.tick_leader(now);
    }

    /// Append a record in the current term; returns its LSN.
    pub fn append(&mut self, rec: Record) -> u64 {
        let e = Entry {
            lsn: self.log.last_lsn() + 1,
            term: self.term,
            ts_ms: self.wall_ms(),
            rec,
        };
        let lsn = e.lsn;
        self.overlay.add(&self.store, &e);
        self.log.append(e);
        self.flush_kick.notify_one();
        self.repl_kick.notify_one();
        if self.role == Role::Leader {
            self.advance_commit();
        }
        lsn
    }

    /// Apply entries up to the commit LSN.
    pub fn apply_committed(&mut self) {
        let upto = self.commit.min(self.log.last_lsn());
        while self.applied < upto {
            let lsn = self.applied + 1;
            let Some(e) = self.log.get(lsn) else { break };
            let at_ms = match e.rec {
                // Seeded bug: the statement's time is this node's clock, not the leader's.
                Record::Stmt { .. } if self.cfg.bug(Bug::ReplicaClock) => self.wall_ms(),
                _ => e.ts_ms,
            };
            self.store.apply(&e.rec, at_ms);
            self.overlay.applied(e);
            self.applied = lsn;
        }
        if self.log.len() > 2 * self.cfg.retained_log
            && !self.compacting
            && self.applied > self.log.base_lsn
        {
            self.want_compact = true;
        }
    }

    /// Drop the log after `lsn`; if applied state included dropped entries, rebuild it.
    pub fn truncate_after(&mut self, lsn: u64) {
        if lsn >= self.log.last_lsn() {
            return;
        }
        warn!(
            from = lsn + 1,
            to = self.log.last_lsn(),
            "discarding log suffix"
        );
        self.log.truncate_after(lsn);
        self.durable = self.durable.min(lsn);
        self.commit = self.commit.min(lsn);
        if self.applied > lsn {
            self.rebuild_state();
        }
        self.overlay.clear();
        for l in self.applied + 1..=self.log.last_lsn() {
            if let Some(e) = self.log.get(l) {
                self.overlay.add(&self.store, e);
            }
        }
    }

    /// Recompute the applied state from the snapshot on disk and the log (after a rollback of
    /// applied entries, possible in async mode); without a usable snapshot, start empty and let
    /// the leader send one.
    fn rebuild_state(&mut self) {
        let snap = storage::open_snapshot(&self.cfg.data_dir);
        let target = self.commit.min(self.log.last_lsn());
        match snap {
            Some(s)
                if s.lsn <= target
                    && s.lsn >= self.log.base_lsn
                    && self.log.term_at(s.lsn) == Some(s.term) =>
            {
                match Store::decode(s.data) {
                    Ok(store) => {
                        self.store = store;
                        self.applied = s.lsn;
                    }
                    Err(e) => {
                        warn!("snapshot unreadable ({e}); resetting");
                        self.reset_empty();
                    }
                }
            }
            // The whole log is still there: replay it from the start.
            _ if self.log.base_lsn == 0 => {
                self.store = Store::default();
                self.applied = 0;
            }
            _ => self.reset_empty(),
        }
        self.apply_committed();
        info!(applied = self.applied, "rebuilt state after rollback");
    }

    /// Forget everything (data included): the leader will send a snapshot.
    pub fn reset_empty(&mut self) {
        warn!("dropping all local data to resynchronise from a snapshot");
        self.log.reset(0, 0);
        self.store = Store::default();
        self.overlay.clear();
        self.applied = 0;
        self.commit = 0;
        self.durable = 0;
        self.snapshot_lsn = 0;
        self.matched = 0;
    }

    /// Majority-th newest answer time: the leader's lease started then (None if no majority).
    pub fn lease_start(&self) -> Option<u64> {
        let mut v: Vec<u64> = self.others().map(|i| self.peers[i].lease_echo).collect();
        v.push(self.now_echo());
        v.sort_unstable_by(|a, b| b.cmp(a));
        let x = v[self.cfg.majority() - 1];
        (x >= self.leader_since && x > 0).then_some(x)
    }

    pub fn lease_valid(&self) -> bool {
        match self.lease_start() {
            Some(s) => self.now_echo().saturating_sub(s) < self.cfg.lease.as_nanos() as u64,
            None => false,
        }
    }

    /// Whether the leader may answer linearizable reads now.
    pub fn can_read(&self) -> bool {
        self.role == Role::Leader
            && self.commit >= self.term_start
            && (self.lease_valid() || self.bug(Bug::NoFencing) || self.bug(Bug::NoStepDown))
    }

    pub fn leader_addr(&self) -> Option<(&str, std::net::SocketAddr)> {
        self.leader
            .map(|l| (self.cfg.peers[l].id.as_str(), self.cfg.peers[l].addr))
    }
}

impl PeerState {
    pub fn new(next: u64, now: Instant) -> PeerState {
        PeerState {
            next,
            recv: 0,
            durable: 0,
            lease_echo: 0,
            last_resp: None,
            last_progress: now,
            empty: false,
            snap_until: None,
            lag_since: None,
        }
    }
}
