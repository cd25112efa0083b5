//! Client commands evaluated against the node state: writes on the leader (appended to the log),
//! reads (linearizable on the leader, possibly stale elsewhere), ROLE and INFO.

use std::fmt::Write as _;

use bytes::Bytes;

use crate::codec::Record;
use crate::config::{Bug, FollowerReads, Mode, Replication};
use crate::core::{Core, Role};
use crate::resp::Reply;
use crate::state::{Value, View, WrongType};
use crate::writes::{self, wrongtype};

/// What the connection must do with a command.
pub enum Outcome {
    /// Answer now.
    Now(Reply),
    /// Answer `reply` once LSN `lsn` (appended in `term`) is committed; `-UNCERTAIN` if that
    /// cannot be confirmed.
    Wait { lsn: u64, term: u64, reply: Reply },
    /// A read that must wait (for leadership to be confirmed, or for a session position to
    /// be applied); retry later. The reason is the error if it never can be answered.
    Retry(&'static str),
}

/// Why a leader read waits.
pub const NOT_CONFIRMED: &str = "TRYAGAIN leadership not confirmed";
/// Why a read with a session position waits.
pub const BEHIND_SESSION: &str = "TRYAGAIN session position not applied here yet";

/// Command classes, for pipelining: writes are appended at once, reads wait for earlier writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Write,
    Read,
    Other,
}

pub(crate) fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

pub fn classify(args: &[Bytes]) -> Class {
    match args.first().map(|a| upper(a)).as_deref() {
        Some("SET" | "CAS" | "SADD" | "INCR" | "RPUSH") => Class::Write,
        Some("GET" | "SMEMBERS" | "LRANGE") => Class::Read,
        // `SESSION <lsn> CMD ...` is CMD's kind.
        Some("SESSION") if args.len() > 2 => classify(&args[2..]),
        _ => Class::Other,
    }
}

fn wrong_args(cmd: &str) -> Outcome {
    Outcome::Now(Reply::err(format!(
        "ERR wrong number of arguments for '{}' command",
        cmd.to_lowercase()
    )))
}

impl Core {
    /// The error for a write sent to a node that is not the leader.
    pub fn redirect(&self) -> Reply {
        match self.leader_addr() {
            Some((id, addr)) if self.role != Role::Leader => {
                Reply::err(format!("MOVED {id} {addr}"))
            }
            _ => Reply::err(format!("NOLEADER no leader known (term {})", self.term)),
        }
    }

    pub fn execute(&mut self, args: &[Bytes]) -> Outcome {
        let Some(name) = args.first() else {
            return Outcome::Now(Reply::err("ERR empty command"));
        };
        let cmd = upper(name);
        let a = &args[1..];
        match cmd.as_str() {
            "PING" => Outcome::Now(match a {
                [] => Reply::Simple("PONG".into()),
                [m] => Reply::Bulk(Some(m.clone())),
                _ => return wrong_args(&cmd),
            }),
            "ECHO" if a.len() == 1 => Outcome::Now(Reply::Bulk(Some(a[0].clone()))),
            "ROLE" | "INFO" => {
                // A leader that was paused past its lease may be asked before its timer
                // runs: it checks the lease first, so it never answers as a stale leader.
                if self.role == Role::Leader {
                    self.tick_leader(std::time::Instant::now());
                }
                Outcome::Now(if cmd == "ROLE" {
                    self.role_reply()
                } else {
                    Reply::bulk(self.info())
                })
            }
            "COMMAND" => Outcome::Now(Reply::Array(vec![])),
            // The applied state's fingerprint, key by key: [key1, hash1, key2, hash2, ...].
            "DIGEST" if a.is_empty() => Outcome::Now(Reply::Array(
                self.store
                    .digest()
                    .into_iter()
                    .flat_map(|(k, h)| [Reply::Bulk(Some(k)), Reply::bulk(format!("{h:08x}"))])
                    .collect(),
            )),
            "SELECT" | "CLIENT" | "QUIT" => Outcome::Now(Reply::ok()),
            "GET" | "SMEMBERS" if a.len() != 1 => wrong_args(&cmd),
            "LRANGE" if a.len() != 3 => wrong_args(&cmd),
            "GET" | "SMEMBERS" | "LRANGE" => self.read(&cmd, a),
            "SET" | "CAS" | "SADD" | "INCR" | "RPUSH" => self.write(&cmd, a),
            "SESSION" => self.session(a),
            _ => Outcome::Now(Reply::err(format!(
                "ERR unknown command '{}'",
                String::from_utf8_lossy(name)
            ))),
        }
    }

    /// `SESSION <lsn> CMD ...`: CMD, answered once this node has applied `lsn` (the position
    /// of the client's last write or read), as `[position, CMD's reply]`; the position is this
    /// node's applied LSN for a read, the write's LSN for a write. Errors are CMD's, unwrapped.
    fn session(&mut self, a: &[Bytes]) -> Outcome {
        let Some(pos) = a.first().and_then(|p| position(p)) else {
            return Outcome::Now(Reply::err(
                "ERR SESSION takes a log position (an integer) and a command",
            ));
        };
        let inner = &a[1..];
        // DIGEST reads the applied state like a read (it is no read in a transaction).
        let class = match classify(inner) {
            Class::Other if inner.first().is_some_and(|c| upper(c) == "DIGEST") => Class::Read,
            c => c,
        };
        match class {
            Class::Read => {
                if self.behind(pos) {
                    return Outcome::Retry(BEHIND_SESSION);
                }
                match self.execute(inner) {
                    Outcome::Now(r @ Reply::Error(_)) => Outcome::Now(r),
                    Outcome::Now(r) => Outcome::Now(positioned(self.applied, r)),
                    other => other,
                }
            }
            Class::Write => match self.execute(inner) {
                Outcome::Now(r @ Reply::Error(_)) => Outcome::Now(r),
                Outcome::Now(r) => Outcome::Now(positioned(self.log.last_lsn(), r)),
                Outcome::Wait { lsn, term, reply } => Outcome::Wait {
                    lsn,
                    term,
                    reply: positioned(lsn, reply),
                },
                retry => retry,
            },
            Class::Other => Outcome::Now(Reply::err("ERR SESSION wraps a read or a write command")),
        }
    }

    /// Whether a read with session position `pos` must wait: this node has not applied it
    /// (a follower with the `ignore-session` bug never waits).
    pub(crate) fn behind(&self, pos: u64) -> bool {
        let ignore = self.role != Role::Leader && self.bug(Bug::IgnoreSession);
        self.applied < pos && !ignore
    }

    /// `reply` for records up to `lsn`: now when they are committed, or when they include
    /// writes and writes are acknowledged unconfirmed (async mode, `ack-before-replicate`);
    /// else once they commit.
    pub(crate) fn when_committed(&self, lsn: u64, reply: Reply, writes: bool) -> Outcome {
        let unconfirmed = self.cfg.mode == Mode::Async || self.bug(Bug::AckBeforeReplicate);
        if lsn <= self.commit || (writes && unconfirmed) {
            return Outcome::Now(reply);
        }
        Outcome::Wait {
            lsn,
            term: self.term,
            reply,
        }
    }

    fn read(&mut self, cmd: &str, a: &[Bytes]) -> Outcome {
        if self.role == Role::Leader && !self.can_read() {
            return Outcome::Retry(NOT_CONFIRMED);
        }
        if self.role != Role::Leader && self.cfg.follower_reads == FollowerReads::Redirect {
            return Outcome::Now(self.redirect());
        }
        // Seeded bug: a follower serves the received log's tail, committed or not.
        let newest = self.role != Role::Leader && self.bug(Bug::ReadUncommitted);
        Outcome::Now(self.read_value(cmd, a, newest))
    }

    /// The answer to a read (arguments checked) from the applied state, or with `newest` from
    /// every record appended (the applied state plus the overlay): what a transaction on the
    /// leader sees, and what the `read-uncommitted` bug serves on followers. Sets are always
    /// read applied (no transaction reads them).
    pub(crate) fn read_value(&self, cmd: &str, a: &[Bytes], newest: bool) -> Reply {
        let key = &a[0];
        let view = View {
            store: &self.store,
            overlay: &self.overlay,
        };
        if cmd == "LRANGE" {
            let (Some(start), Some(stop)) = (int_arg(&a[1]), int_arg(&a[2])) else {
                return Reply::err("ERR value is not an integer or out of range");
            };
            let list = if newest {
                view.list(key)
            } else {
                match self.store.get(key) {
                    None => Ok(Vec::new()),
                    Some(Value::List(l)) => Ok(l.clone()),
                    Some(_) => Err(WrongType),
                }
            };
            return match list {
                Ok(l) => Reply::Array(
                    range(l.len(), start, stop)
                        .map(|i| Reply::Bulk(Some(l[i].clone())))
                        .collect(),
                ),
                Err(WrongType) => wrongtype(),
            };
        }
        if cmd == "GET" && newest {
            return match view.string(key) {
                Ok(v) => Reply::Bulk(v),
                Err(WrongType) => wrongtype(),
            };
        }
        let v = self.store.get(key);
        match (cmd, v) {
            ("GET", None) => Reply::Bulk(None),
            ("GET", Some(Value::Str(s))) => Reply::Bulk(Some(s.clone())),
            ("SMEMBERS", None) => Reply::Array(vec![]),
            ("SMEMBERS", Some(Value::Set(s))) => {
                let mut m: Vec<&Bytes> = s.iter().collect();
                m.sort();
                Reply::Array(
                    m.into_iter()
                        .map(|x| Reply::Bulk(Some(x.clone())))
                        .collect(),
                )
            }
            _ => wrongtype(),
        }
    }

    fn write(&mut self, cmd: &str, a: &[Bytes]) -> Outcome {
        if !writes::arity_ok(cmd, a) {
            return wrong_args(cmd);
        }
        if self.role != Role::Leader {
            return Outcome::Now(self.redirect());
        }
        let counter = (cmd == "INCR" && self.bug(Bug::LocalCounter)).then(|| {
            // Seeded bug: a node-local counter, never carried in the log.
            let c = self.local_counters.entry(a[0].clone()).or_insert(0);
            *c += 1;
            *c
        });
        let view = View {
            store: &self.store,
            overlay: &self.overlay,
        };
        let (rec, reply) = match writes::eval(&view, cmd, a, counter) {
            Ok(done) => done,
            Err(refused) => return Outcome::Now(refused),
        };
        // Statement mode logs the command itself (once, if it changes anything): every node
        // evaluates it again when it applies it.
        let rec = match self.cfg.replication {
            Replication::Statement if !rec.is_empty() => vec![Record::Stmt {
                args: std::iter::once(Bytes::from(cmd.to_owned()))
                    .chain(a.iter().cloned())
                    .collect(),
            }],
            _ => rec,
        };
        let mut lsn = self.log.last_lsn();
        for r in rec {
            lsn = self.append(r);
        }
        self.when_committed(lsn, reply, true)
    }

    /// `ROLE`: [role, term, leader_id, leader_addr, last_lsn, applied_lsn, commit_lsn, node_id].
    pub fn role_reply(&self) -> Reply {
        let (lid, laddr) = match self.leader_addr() {
            Some((id, addr)) => (id.to_string(), addr.to_string()),
            None => (String::new(), String::new()),
        };
        Reply::Array(vec![
            Reply::bulk(self.role.name()),
            Reply::Int(self.term as i64),
            Reply::bulk(lid),
            Reply::bulk(laddr),
            Reply::Int(self.log.last_lsn() as i64),
            Reply::Int(self.applied as i64),
            Reply::Int(self.commit as i64),
            Reply::bulk(self.cfg.id().to_string()),
        ])
    }

    /// `INFO`: the replication section, Redis style.
    pub fn info(&self) -> String {
        let mut s = String::from("# Replication\r\n");
        let (lid, laddr) = match self.leader_addr() {
            Some((id, addr)) => (id.to_string(), addr.to_string()),
            None => (String::new(), String::new()),
        };
        let reads = match (self.role, self.cfg.follower_reads) {
            (Role::Leader, _) => "linearizable",
            (_, FollowerReads::Stale) => "stale",
            (_, FollowerReads::Redirect) => "redirect",
        };
        let bugs: Vec<&str> = self.cfg.bugs.iter().map(|b| b.name()).collect();
        let _ = write!(
            s,
            "role:{}\r\nnode_id:{}\r\nterm:{}\r\nleader_id:{}\r\nleader_addr:{}\r\nmode:{}\r\nreplication:{}\r\nreads:{}\r\n\
             last_lsn:{}\r\napplied_lsn:{}\r\ncommit_lsn:{}\r\ndurable_lsn:{}\r\nlog_base_lsn:{}\r\n\
             snapshot_lsn:{}\r\nlease_valid:{}\r\nbugs:{}\r\n",
            self.role.name(),
            self.cfg.id(),
            self.term,
            lid,
            laddr,
            self.cfg.mode.name(),
            self.cfg.replication.name(),
            reads,
            self.log.last_lsn(),
            self.applied,
            self.commit,
            self.durable,
            self.log.base_lsn,
            self.snapshot_lsn,
            (self.role == Role::Leader && self.lease_valid()) as u8,
            bugs.join(","),
        );
        if self.role == Role::Leader {
            let sync = self
                .sync_follower
                .map_or("", |i| self.cfg.peers[i].id.as_str());
            let _ = write!(s, "sync_follower:{sync}\r\n");
            let now = std::time::Instant::now();
            let connected = self
                .others()
                .filter(|&i| {
                    self.peers[i]
                        .last_resp
                        .is_some_and(|t| now.duration_since(t) < self.cfg.election_timeout)
                })
                .count();
            let _ = write!(s, "connected_followers:{connected}\r\n");
            for (n, i) in self.others().enumerate() {
                let p = &self.peers[i];
                let _ = write!(
                    s,
                    "follower{n}:id={},addr={},match_lsn={},durable_lsn={},lag={}\r\n",
                    self.cfg.peers[i].id,
                    self.cfg.peers[i].addr,
                    p.recv,
                    p.durable,
                    self.log.last_lsn().saturating_sub(p.recv),
                );
            }
        }
        s
    }
}

/// A session position (`SESSION <lsn> ...`).
pub(crate) fn position(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `[position, reply]`: a reply with the session position it leaves the client at.
pub(crate) fn positioned(lsn: u64, reply: Reply) -> Reply {
    Reply::Array(vec![Reply::Int(lsn as i64), reply])
}

fn int_arg(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The indices LRANGE `start stop` selects from a list of `len`, as Redis reads them
/// (negative from the end, clamped, empty when start is past stop).
fn range(len: usize, start: i64, stop: i64) -> std::ops::Range<usize> {
    let len = len as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, stop) = (norm(start), norm(stop).min(len - 1));
    if start > stop || start >= len {
        0..0
    } else {
        start as usize..stop as usize + 1
    }
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn lrange_indices_as_redis() {
        assert_eq!(range(5, 0, -1), 0..5);
        assert_eq!(range(5, 1, 2), 1..3);
        assert_eq!(range(5, -2, -1), 3..5);
        assert_eq!(range(5, 3, 100), 3..5);
        assert_eq!(range(5, 4, 2), 0..0);
        assert_eq!(range(5, 7, 9), 0..0);
        assert_eq!(range(0, 0, -1), 0..0);
        assert_eq!(range(5, -100, 0), 0..1);
    }
}
