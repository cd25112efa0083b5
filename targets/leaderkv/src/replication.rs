//! Log replication: the leader streams LSN-ordered records to followers (pipelined batches,
//! snapshots for new or far-behind followers), followers check log continuity and terms, apply
//! committed records in order and acknowledge durable progress; the leader advances the commit
//! LSN according to the replication mode.

use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::codec::{Entry, Msg};
use crate::config::{Bug, Mode};
use crate::core::{Core, Role, SnapJob};
use crate::state::Store;

/// Records per append message.
const MAX_BATCH: u64 = 2048;
/// Records sent but not yet confirmed, per follower.
const MAX_INFLIGHT: u64 = 16_384;

/// Snapshot content received from a leader, decoded outside the lock.
pub struct IncomingSnapshot {
    pub term: u64,
    pub lsn: u64,
    pub last_term: u64,
    pub commit: u64,
    pub echo: u64,
    pub store: Store,
}

impl Core {
    /// Send whatever each follower is missing.
    pub fn replicate_all(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        for i in self.others() {
            self.replicate(i, false);
        }
    }

    /// Send the next batch to follower `i`; with `heartbeat`, send something even if empty.
    pub fn replicate(&mut self, i: usize, heartbeat: bool) {
        let now = Instant::now();
        let base = self.log.base_lsn;
        let last = self.log.last_lsn();
        // The seeded bug: a follower behind the log's start is sent the log from there on,
        // as if nothing were missing in between.
        let resume =
            self.peers[i].next <= base && !self.peers[i].empty && self.bug(Bug::ResumeTruncated);
        if resume {
            self.peers[i].next = base + 1;
        }
        let p = &self.peers[i];
        // A follower with no data at all joins from a snapshot once there is data (at cluster
        // formation, when the state is still empty, the log is streamed instead).
        let need_snap = p.next <= base || (p.empty && !self.store.is_empty());
        if need_snap && p.snap_until.is_none_or(|t| now >= t) {
            self.queue_snapshot(i, now);
        }
        let p = &self.peers[i];
        let in_flight = (p.next - 1).saturating_sub(p.recv);
        let mut prev = p.next - 1;
        let mut entries = Vec::new();
        // Entries only once the follower answered in this term (so a new, empty one gets a
        // snapshot rather than the whole log).
        if !need_snap && p.last_resp.is_some() && p.next <= last && in_flight <= MAX_INFLIGHT {
            entries = self.log.range(p.next, last.min(prev + MAX_BATCH));
        } else if !heartbeat {
            return;
        } else if need_snap {
            prev = base;
        } else if in_flight > 0 {
            prev = p.recv.max(base);
        }
        let prev = prev.clamp(base, last);
        let n = entries.len() as u64;
        let msg = Msg::Append {
            term: self.term,
            prev_lsn: prev,
            prev_term: self.log.term_at(prev).unwrap_or(0),
            commit: self.commit,
            echo: self.now_echo(),
            resume: resume && prev == base,
            entries,
        };
        if n > 0 {
            self.peers[i].next = prev + n + 1;
        }
        self.send(i, msg);
    }

    fn queue_snapshot(&mut self, i: usize, now: Instant) {
        let wait = (self.cfg.election_timeout * 2).max(Duration::from_secs(2));
        self.peers[i].snap_until = Some(now + wait);
        // The state is the applied one, so its position is the applied LSN; the seeded bug
        // labels it with the log's end, taken a moment later.
        let lsn = if self.bug(Bug::SnapshotPosition) {
            self.log.last_lsn()
        } else {
            self.applied
        };
        info!(follower = %self.cfg.peers[i].id, lsn, "sending snapshot");
        self.snap_jobs.push(SnapJob {
            peer: i,
            term: self.term,
            lsn,
            last_term: self.log.term_at(lsn).unwrap_or(self.log.base_term),
            commit: self.commit,
            store: self.store.clone(),
        });
    }

    fn append_resp(&self, to: usize, term: u64, success: bool, hint: u64, echo: u64) {
        self.send(
            to,
            Msg::AppendResp {
                term,
                success,
                match_lsn: if success { self.matched } else { 0 },
                durable_lsn: if success {
                    self.durable.min(self.matched)
                } else {
                    0
                },
                last_lsn: hint,
                echo,
                empty: self.log.last_lsn() == 0,
            },
        );
    }

    /// Accept (or not) a message from a leader: term fencing and leader tracking.
    /// Returns the term to answer with, or None if the message was rejected.
    fn accept_leader(&mut self, from: usize, term: u64, echo: u64) -> Option<u64> {
        let stale = term < self.term;
        if stale && !(self.bug(Bug::NoFencing) && self.role == Role::Follower) {
            self.append_resp(from, self.term, false, self.log.last_lsn(), echo);
            return None;
        }
        if term > self.term && self.role == Role::Leader && self.bug(Bug::NoStepDown) {
            return None;
        }
        if stale {
            // no-fencing: follow whoever sends records, whatever their term.
            if self.leader != Some(from) {
                self.leader = Some(from);
                self.matched = 0;
            }
        } else if term > self.term || self.role != Role::Follower || self.leader != Some(from) {
            if term == self.term && self.role == Role::Leader {
                return None;
            }
            self.become_follower(term, Some(from));
        }
        self.last_leader_contact = Some(Instant::now());
        self.reset_election_timer();
        Some(if stale { term } else { self.term })
    }

    pub fn on_append(&mut self, from: usize, m: AppendArgs) {
        let AppendArgs {
            term,
            mut prev_lsn,
            prev_term,
            commit,
            echo,
            resume,
            mut entries,
        } = m;
        let Some(reply_term) = self.accept_leader(from, term, echo) else {
            return;
        };
        let base = self.log.base_lsn;
        if prev_lsn < base {
            // The start of the batch is covered by our snapshot (committed, so it matches).
            let skip = (base - prev_lsn) as usize;
            if skip > entries.len() {
                self.append_resp(from, reply_term, false, self.log.last_lsn(), echo);
                return;
            }
            entries.drain(..skip);
            prev_lsn = base;
        } else {
            let last = self.log.last_lsn();
            let ok = prev_lsn <= last && self.log.term_at(prev_lsn) == Some(prev_term);
            if !ok && resume && prev_lsn > last && self.bug(Bug::ResumeTruncated) {
                self.skip_to(prev_lsn, prev_term);
            } else if !ok {
                let hint = if prev_lsn > last {
                    last
                } else if prev_lsn == base && base > 0 {
                    // Our snapshot is from another history: start over from a new one.
                    self.reset_empty();
                    0
                } else {
                    prev_lsn - 1
                };
                self.append_resp(from, reply_term, false, hint, echo);
                return;
            }
        }
        let n = entries.len() as u64;
        let mut appended = false;
        for e in entries {
            if e.lsn <= self.log.last_lsn() {
                if self.log.term_at(e.lsn) == Some(e.term) {
                    continue;
                }
                self.truncate_after(e.lsn - 1);
            }
            self.overlay.add(&self.store, &e);
            self.log.append(e);
            appended = true;
        }
        if appended {
            self.flush_kick.notify_one();
        }
        self.matched = self.matched.max(prev_lsn + n);
        let c = commit.min(self.matched);
        if c > self.commit {
            self.commit = c;
            self.apply_committed();
            self.publish();
        }
        self.check_joined(from, commit);
        self.append_resp(from, reply_term, true, self.log.last_lsn(), echo);
    }

    /// A joining member that has applied everything the leader had committed becomes a full
    /// member; in this term it counts as having voted for that leader (it follows it).
    fn check_joined(&mut self, leader: usize, leader_commit: u64) {
        if !self.joining || self.applied < leader_commit || self.applied == 0 {
            return;
        }
        self.joining = false;
        if self.voted_for.is_none() {
            self.voted_for = Some(leader);
        }
        self.persist_meta();
        if let Err(e) = crate::storage::joined(&self.cfg.data_dir) {
            warn!("{e}");
        }
        info!(
            applied = self.applied,
            "joined the cluster: caught up with the leader"
        );
    }

    /// The `resume-truncated` bug on a follower: carry on from `lsn` (where the leader's log
    /// now starts) with the state as it is, leaving out every record in between.
    fn skip_to(&mut self, lsn: u64, term: u64) {
        warn!(
            from = self.applied + 1,
            to = lsn,
            "resuming from the leader's log start without a snapshot (seeded bug)"
        );
        self.restart_log_at(lsn, term);
    }

    /// An empty log based at `lsn` (term `term`), with the state as applied up to there: a
    /// snapshot just installed, or the bug's state without what it skipped.
    fn restart_log_at(&mut self, lsn: u64, term: u64) {
        self.log.reset(lsn, term);
        self.flush_kick.notify_one();
        self.overlay.clear();
        self.applied = lsn;
        self.commit = lsn;
        self.durable = lsn;
        self.publish();
    }

    pub fn on_append_resp(&mut self, from: usize, r: AppendRespArgs) {
        if r.term > self.term {
            if self.role == Role::Leader && self.bug(Bug::NoStepDown) {
                return;
            }
            info!(term = r.term, "saw a newer term; stepping down");
            self.become_follower(r.term, None);
            self.reset_election_timer();
            return;
        }
        if self.role != Role::Leader || r.term < self.term {
            return;
        }
        let now = Instant::now();
        let p = &mut self.peers[from];
        p.last_resp = Some(now);
        p.lease_echo = p.lease_echo.max(r.echo);
        if r.success {
            if r.match_lsn > p.recv {
                p.recv = r.match_lsn;
                p.last_progress = now;
            }
            p.durable = p.durable.max(r.durable_lsn);
            if p.next <= r.match_lsn {
                p.next = r.match_lsn + 1;
            }
            p.empty = r.empty;
            if !r.empty {
                p.snap_until = None;
            }
        } else {
            p.empty = r.empty;
            if r.last_lsn + 1 < p.next {
                p.next = r.last_lsn + 1;
                p.last_progress = now;
            }
            p.recv = p.recv.min(r.last_lsn);
            p.durable = p.durable.min(r.last_lsn);
        }
        self.advance_commit();
        self.replicate(from, false);
    }

    /// Install a snapshot from the leader (its file is already written).
    pub fn on_snapshot(&mut self, from: usize, s: IncomingSnapshot) {
        let Some(reply_term) = self.accept_leader(from, s.term, s.echo) else {
            return;
        };
        let have = s.lsn <= self.log.last_lsn() && self.log.term_at(s.lsn) == Some(s.last_term);
        if !have {
            info!(lsn = s.lsn, "installing snapshot");
            self.store = s.store;
            self.snapshot_lsn = s.lsn;
            self.restart_log_at(s.lsn, s.last_term);
        }
        self.matched = self.matched.max(s.lsn);
        let c = s.commit.min(self.matched);
        if c > self.commit {
            self.commit = c;
            self.apply_committed();
            self.publish();
        }
        self.check_joined(from, s.commit);
        self.append_resp(from, reply_term, true, self.log.last_lsn(), s.echo);
    }

    /// The flusher made everything up to `last` durable (if no cut happened since `epoch`).
    pub fn on_flushed(&mut self, epoch: u64, last: u64) {
        if epoch != self.log.epoch {
            return;
        }
        let d = last.min(self.log.last_lsn());
        if d <= self.durable {
            return;
        }
        self.durable = d;
        match (self.role, self.leader) {
            (Role::Leader, _) => self.advance_commit(),
            (_, Some(l)) if self.matched > 0 => {
                self.append_resp(l, self.term, true, self.log.last_lsn(), 0);
            }
            _ => {}
        }
    }

    /// Leader: move the commit LSN according to the replication mode.
    pub fn advance_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let new = match self.cfg.mode {
            Mode::Async => self.log.last_lsn(),
            Mode::Sync => {
                let mut v: Vec<u64> = self.others().map(|i| self.peers[i].durable).collect();
                v.push(self.durable);
                v.sort_unstable_by(|a, b| b.cmp(a));
                v[self.cfg.majority() - 1]
            }
            Mode::SemiSync => match self.sync_follower {
                Some(s) => self.durable.min(self.peers[s].durable),
                None if self.cfg.peers.len() == 1 => self.durable,
                None => self.commit,
            },
        };
        // Only records of the current term are committed by counting (older ones with them).
        if new > self.commit && new >= self.term_start {
            self.commit = new;
            self.apply_committed();
            self.publish();
        }
    }
}

/// Fields of [`Msg::Append`].
pub struct AppendArgs {
    pub term: u64,
    pub prev_lsn: u64,
    pub prev_term: u64,
    pub commit: u64,
    pub echo: u64,
    pub resume: bool,
    pub entries: Vec<Entry>,
}

/// Fields of [`Msg::AppendResp`].
pub struct AppendRespArgs {
    pub term: u64,
    pub success: bool,
    pub match_lsn: u64,
    pub durable_lsn: u64,
    pub last_lsn: u64,
    pub echo: u64,
    pub empty: bool,
}

impl Core {
    /// Dispatch a peer message (snapshots are handled by [`Core::on_snapshot`]).
    pub fn on_msg(&mut self, from: usize, msg: Msg) {
        if from >= self.cfg.peers.len() || from == self.me() || self.blocked.contains(&from) {
            return;
        }
        match msg {
            Msg::Vote {
                term,
                last_lsn,
                last_term,
                pre,
                force,
            } => self.on_vote(from, term, last_lsn, last_term, pre, force),
            Msg::VoteResp { term, granted, pre } => self.on_vote_resp(from, term, granted, pre),
            Msg::Append {
                term,
                prev_lsn,
                prev_term,
                commit,
                echo,
                resume,
                entries,
            } => self.on_append(
                from,
                AppendArgs {
                    term,
                    prev_lsn,
                    prev_term,
                    commit,
                    echo,
                    resume,
                    entries,
                },
            ),
            Msg::AppendResp {
                term,
                success,
                match_lsn,
                durable_lsn,
                last_lsn,
                echo,
                empty,
            } => self.on_append_resp(
                from,
                AppendRespArgs {
                    term,
                    success,
                    match_lsn,
                    durable_lsn,
                    last_lsn,
                    echo,
                    empty,
                },
            ),
            Msg::Snapshot { .. } => {}
        }
    }
}
