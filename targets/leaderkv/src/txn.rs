//! Transactions, Redis style: `MULTI`, commands (answered `+QUEUED`), `EXEC` (or `DISCARD`).
//! `EXEC` runs the queued reads and writes at once under the node's lock, so nothing else
//! interleaves. On the leader a transaction reads every record appended so far (its own
//! writes included) and is answered once the log up to its last record is committed (a read
//! of a record that never commits makes the transaction `-UNCERTAIN`, as a write would be);
//! on a follower only read-only transactions run, on the applied state. `SESSION <lsn> EXEC`
//! waits for the position first and answers `[position, replies]`.

use bytes::Bytes;

use crate::commands::{BEHIND_SESSION, Class, NOT_CONFIRMED, Outcome, classify, positioned, upper};
use crate::config::{Bug, FollowerReads};
use crate::core::{Core, Role};
use crate::resp::Reply;

/// The commands a connection queued after `MULTI`.
#[derive(Debug, Default)]
pub struct Queue {
    pub cmds: Vec<Vec<Bytes>>,
    /// A command refused while queueing (unknown, or not a read or write): `EXEC` aborts.
    pub refused: bool,
}

impl Queue {
    /// Queues a command, or refuses it (the transaction will abort).
    pub fn push(&mut self, args: Vec<Bytes>) -> Reply {
        if classify(&args) == Class::Other {
            self.refused = true;
            return Reply::err("ERR only reads and writes can be queued in a transaction");
        }
        self.cmds.push(args);
        Reply::Simple("QUEUED".into())
    }

    /// What `EXEC` of this queue is: a write if any command writes.
    pub fn class(&self) -> Class {
        if self.cmds.iter().any(|c| classify(c) == Class::Write) {
            Class::Write
        } else {
            Class::Read
        }
    }
}

impl Core {
    /// `EXEC` (with a session position when wrapped in `SESSION`).
    pub fn exec(&mut self, q: &Queue, session: Option<u64>) -> Outcome {
        if q.refused {
            return Outcome::Now(Reply::err(
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        let writes = q.class() == Class::Write;
        if self.role != Role::Leader {
            if writes || self.cfg.follower_reads == FollowerReads::Redirect {
                return Outcome::Now(self.redirect());
            }
            if session.is_some_and(|pos| self.behind(pos)) {
                return Outcome::Retry(BEHIND_SESSION);
            }
            let newest = self.bug(Bug::ReadUncommitted);
            let replies = q
                .cmds
                .iter()
                .map(|c| self.read_value(&upper(&c[0]), &c[1..], newest))
                .collect();
            return Outcome::Now(at(session, self.applied, Reply::Array(replies)));
        }
        if !self.can_read() {
            return Outcome::Retry(NOT_CONFIRMED);
        }
        if session.is_some_and(|pos| self.behind(pos)) {
            return Outcome::Retry(BEHIND_SESSION);
        }
        let mut replies = Vec::with_capacity(q.cmds.len());
        for c in &q.cmds {
            let r = match classify(c) {
                Class::Write => match self.execute(c) {
                    Outcome::Now(r) | Outcome::Wait { reply: r, .. } => r,
                    Outcome::Retry(why) => Reply::err(why),
                },
                _ => self.read_value(&upper(&c[0]), &c[1..], true),
            };
            replies.push(r);
        }
        let lsn = self.log.last_lsn();
        self.when_committed(lsn, at(session, lsn, Reply::Array(replies)), writes)
    }
}

/// The reply positioned at `lsn` when the transaction came with a session.
fn at(session: Option<u64>, lsn: u64, reply: Reply) -> Reply {
    match session {
        Some(_) => positioned(lsn, reply),
        None => reply,
    }
}
