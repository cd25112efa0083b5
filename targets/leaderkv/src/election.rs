//! Failure detection and leader election: timers, pre-vote, votes by majority for the most
//! up-to-date candidate, terms, leader lease and stickiness.

use std::time::Instant;

use tracing::{info, warn};

use crate::codec::Msg;
use crate::config::{Bug, Mode};
use crate::core::{Core, Role};

impl Core {
    /// Periodic work: election timeouts, heartbeats, lease checks.
    pub fn tick(&mut self, now: Instant) {
        match self.role {
            Role::Leader => self.tick_leader(now),
            Role::Follower | Role::Candidate => {
                if now >= self.election_deadline {
                    if self.joining {
                        self.reset_election_timer();
                    } else {
                        self.start_prevote();
                    }
                }
            }
        }
    }

    fn never_steps_down(&self) -> bool {
        self.bug(Bug::NoFencing) || self.bug(Bug::NoStepDown)
    }

    pub fn tick_leader(&mut self, now: Instant) {
        if !self.never_steps_down() {
            let since = self.lease_start().unwrap_or(0).max(self.leader_since);
            if self.now_echo().saturating_sub(since) > self.cfg.lease.as_nanos() as u64 {
                warn!(
                    term = self.term,
                    "no majority contact within the lease; stepping down"
                );
                self.become_follower(self.term, None);
                self.reset_election_timer();
                return;
            }
        }
        let hb = self.cfg.heartbeat;
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + hb;
            for i in self.others() {
                self.replicate(i, true);
            }
        }
        for i in self.others() {
            let p = &mut self.peers[i];
            if p.next > p.recv + 1 && now.duration_since(p.last_progress) > 3 * hb {
                // Messages in flight were lost (dropped connection): resend from the last
                // confirmed point.
                p.next = p.recv + 1;
                p.last_progress = now;
                self.repl_kick.notify_one();
            }
        }
        if self.cfg.mode == Mode::SemiSync {
            self.check_sync_follower(now);
        }
    }

    /// Pre-vote (without bumping the term) so a node that was cut off does not disrupt a
    /// healthy leader when it comes back.
    pub fn start_prevote(&mut self) {
        self.reset_election_timer();
        self.prevoting = true;
        self.votes.clear();
        self.votes.insert(self.me());
        if self.votes.len() >= self.cfg.majority() {
            self.start_election(false);
            return;
        }
        let m = Msg::Vote {
            term: self.term + 1,
            last_lsn: self.log.last_lsn(),
            last_term: self.log.last_term(),
            pre: true,
            force: false,
        };
        for i in self.others() {
            self.send(i, m.clone());
        }
    }

    /// A real election: bump the term, vote for ourselves, ask everyone. `force` skips the
    /// voters' leader stickiness (used by the campaign test hook).
    pub fn start_election(&mut self, force: bool) {
        self.term += 1;
        self.voted_for = Some(self.me());
        self.persist_meta();
        self.role = Role::Candidate;
        self.leader = None;
        self.prevoting = false;
        self.matched = 0;
        self.votes.clear();
        self.votes.insert(self.me());
        self.reset_election_timer();
        self.publish();
        info!(
            term = self.term,
            last_lsn = self.log.last_lsn(),
            "starting election"
        );
        if self.votes.len() >= self.cfg.majority() {
            self.become_leader();
            return;
        }
        let m = Msg::Vote {
            term: self.term,
            last_lsn: self.log.last_lsn(),
            last_term: self.log.last_term(),
            pre: false,
            force,
        };
        for i in self.others() {
            self.send(i, m.clone());
        }
    }

    pub fn on_vote(
        &mut self,
        from: usize,
        term: u64,
        last_lsn: u64,
        last_term: u64,
        pre: bool,
        force: bool,
    ) {
        if self.joining {
            // Not a voter until caught up: what it would vote with is not its own history.
            self.send(
                from,
                Msg::VoteResp {
                    term: self.term,
                    granted: false,
                    pre,
                },
            );
            return;
        }
        let now = Instant::now();
        let up_to_date = (last_term, last_lsn) >= (self.log.last_term(), self.log.last_lsn())
            || self.bug(Bug::ElectStale);
        let sticky = !force
            && match self.role {
                Role::Leader => self.lease_valid() || self.never_steps_down(),
                _ => self
                    .last_leader_contact
                    .is_some_and(|t| now.duration_since(t) < self.cfg.election_timeout),
            };
        if pre {
            let granted = term > self.term && up_to_date && !sticky;
            // As etcd's raft does: a refused pre-vote carries the voter's own term, so a
            // node that missed an election (cut off from the leader, the only one that
            // would tell it) learns the term and can stand in the next one instead of
            // proposing a stale term forever. A grant echoes the proposed term.
            let term = if granted { term } else { self.term };
            self.send(
                from,
                Msg::VoteResp {
                    term,
                    granted,
                    pre: true,
                },
            );
            return;
        }
        if term < self.term || (term > self.term && sticky) {
            self.send(
                from,
                Msg::VoteResp {
                    term: self.term,
                    granted: false,
                    pre: false,
                },
            );
            return;
        }
        if term > self.term {
            if self.role == Role::Leader && self.bug(Bug::NoStepDown) {
                self.send(
                    from,
                    Msg::VoteResp {
                        term: self.term,
                        granted: false,
                        pre: false,
                    },
                );
                return;
            }
            self.become_follower(term, None);
        }
        let granted = up_to_date && self.voted_for.is_none_or(|v| v == from);
        if granted {
            self.voted_for = Some(from);
            self.persist_meta();
            self.reset_election_timer();
        }
        info!(term, candidate = %self.cfg.peers[from].id, granted, "vote request");
        self.send(
            from,
            Msg::VoteResp {
                term: self.term,
                granted,
                pre: false,
            },
        );
    }

    pub fn on_vote_resp(&mut self, from: usize, term: u64, granted: bool, pre: bool) {
        if pre {
            if self.prevoting && self.role != Role::Leader && term == self.term + 1 && granted {
                self.votes.insert(from);
                if self.votes.len() >= self.cfg.majority() {
                    self.start_election(false);
                }
            } else if !granted && term > self.term && self.role != Role::Leader {
                // Refused for a stale term: adopt the voter's, and propose past it next time.
                self.become_follower(term, None);
            }
            return;
        }
        if term > self.term {
            if self.role == Role::Leader && self.bug(Bug::NoStepDown) {
                return;
            }
            self.become_follower(term, None);
            return;
        }
        if self.role == Role::Candidate && term == self.term && granted {
            self.votes.insert(from);
            if self.votes.len() >= self.cfg.majority() {
                self.become_leader();
            }
        }
    }

    /// Semi-sync: keep one healthy synchronous follower; replace one that lags or is silent.
    fn check_sync_follower(&mut self, now: Instant) {
        let timeout = self.cfg.semi_sync_timeout;
        let durable = self.durable;
        for i in self.others() {
            let p = &mut self.peers[i];
            match p.lag_since {
                Some((target, _)) if p.durable >= target => p.lag_since = None,
                None if p.durable < durable => p.lag_since = Some((durable, now)),
                _ => {}
            }
        }
        let responsive = |c: &Core, i: usize| {
            c.peers[i]
                .last_resp
                .is_some_and(|t| now.duration_since(t) < timeout)
        };
        let healthy = |c: &Core, i: usize| {
            responsive(c, i)
                && c.peers[i]
                    .lag_since
                    .is_none_or(|(_, t)| now.duration_since(t) < timeout)
        };
        if self.sync_follower.is_some_and(|s| healthy(self, s)) {
            return;
        }
        let best = self
            .others()
            .filter(|&i| responsive(self, i) && Some(i) != self.sync_follower)
            .max_by_key(|&i| (self.peers[i].durable, std::cmp::Reverse(i)));
        if let Some(b) = best {
            info!(
                old = ?self.sync_follower.map(|s| &self.cfg.peers[s].id),
                new = %self.cfg.peers[b].id,
                "semi-sync: switching the synchronous follower"
            );
            self.sync_follower = Some(b);
            self.advance_commit();
        }
    }
}
