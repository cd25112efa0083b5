//! Binary encoding of log records, peer messages and snapshots (little-endian, length-prefixed).

use bytes::Bytes;

use crate::Error;

/// One logical replication record: the change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Written by a new leader at the start of its term.
    Noop,
    /// The key's new string value (SET, CAS and INCR all produce this).
    Set { key: Bytes, value: Bytes },
    /// A member added to the set at key.
    SAdd { key: Bytes, member: Bytes },
    /// An element appended to the list at key (RPUSH).
    RPush { key: Bytes, value: Bytes },
    /// A write command itself (statement mode: `[command, key, args...]`), evaluated again by
    /// every node that applies it, at the entry's time.
    Stmt { args: Vec<Bytes> },
}

impl Record {
    /// The key the record writes (none for `Noop`).
    pub fn key(&self) -> Option<&Bytes> {
        match self {
            Record::Noop => None,
            Record::Set { key, .. } | Record::SAdd { key, .. } | Record::RPush { key, .. } => {
                Some(key)
            }
            Record::Stmt { args } => args.get(1),
        }
    }
}

/// A log entry: a record with its position (LSN) and the term of the leader that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub lsn: u64,
    pub term: u64,
    /// The leader's wall clock when it logged the record, in ms since the epoch: the time of
    /// the write (a binlog event's timestamp), which every node stamps the key with.
    pub ts_ms: u64,
    pub rec: Record,
}

/// Messages between nodes. Every message is one-way; replies are messages too.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A vote request. `pre` asks "would you vote for me?" without changing anybody's term.
    Vote {
        term: u64,
        last_lsn: u64,
        last_term: u64,
        pre: bool,
        force: bool,
    },
    VoteResp {
        term: u64,
        granted: bool,
        pre: bool,
    },
    /// Replication (and heartbeat when `entries` is empty).
    Append {
        term: u64,
        prev_lsn: u64,
        prev_term: u64,
        commit: u64,
        /// Leader-local send time, echoed back for the leader lease.
        echo: u64,
        /// `prev_lsn` is where the leader's log starts and the follower is behind it: sent
        /// only by the `resume-truncated` bug (a correct leader sends a snapshot instead).
        resume: bool,
        entries: Vec<Entry>,
    },
    /// Answer to Append (or unsolicited progress after an fsync, with `echo == 0`).
    AppendResp {
        term: u64,
        success: bool,
        /// Highest LSN known to match the leader's log.
        match_lsn: u64,
        /// Highest LSN known to match and be durable on this follower.
        durable_lsn: u64,
        /// The follower's last LSN (a hint on failure).
        last_lsn: u64,
        echo: u64,
        /// The follower has no data at all (a new node): send it a snapshot.
        empty: bool,
    },
    /// A full snapshot of the state at `lsn`.
    Snapshot {
        term: u64,
        lsn: u64,
        last_term: u64,
        commit: u64,
        echo: u64,
        data: Bytes,
    },
}

pub struct Enc<'a>(pub &'a mut Vec<u8>);

impl Enc<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    pub fn record(&mut self, r: &Record) {
        match r {
            Record::Noop => self.u8(0),
            Record::Set { key, value } => {
                self.u8(1);
                self.bytes(key);
                self.bytes(value);
            }
            Record::SAdd { key, member } => {
                self.u8(2);
                self.bytes(key);
                self.bytes(member);
            }
            Record::RPush { key, value } => {
                self.u8(3);
                self.bytes(key);
                self.bytes(value);
            }
            Record::Stmt { args } => {
                self.u8(4);
                self.u32(args.len() as u32);
                for a in args {
                    self.bytes(a);
                }
            }
        }
    }
    pub fn entry(&mut self, e: &Entry) {
        self.u64(e.lsn);
        self.u64(e.term);
        self.u64(e.ts_ms);
        self.record(&e.rec);
    }
    pub fn msg(&mut self, m: &Msg) {
        match m {
            Msg::Vote {
                term,
                last_lsn,
                last_term,
                pre,
                force,
            } => {
                self.u8(1);
                self.u64(*term);
                self.u64(*last_lsn);
                self.u64(*last_term);
                self.u8(*pre as u8);
                self.u8(*force as u8);
            }
            Msg::VoteResp { term, granted, pre } => {
                self.u8(2);
                self.u64(*term);
                self.u8(*granted as u8);
                self.u8(*pre as u8);
            }
            Msg::Append {
                term,
                prev_lsn,
                prev_term,
                commit,
                echo,
                resume,
                entries,
            } => {
                self.u8(3);
                for v in [*term, *prev_lsn, *prev_term, *commit, *echo] {
                    self.u64(v);
                }
                self.u8(*resume as u8);
                self.u32(entries.len() as u32);
                for e in entries {
                    self.entry(e);
                }
            }
            Msg::AppendResp {
                term,
                success,
                match_lsn,
                durable_lsn,
                last_lsn,
                echo,
                empty,
            } => {
                self.u8(4);
                for v in [*term, *match_lsn, *durable_lsn, *last_lsn, *echo] {
                    self.u64(v);
                }
                self.u8(*success as u8);
                self.u8(*empty as u8);
            }
            Msg::Snapshot {
                term,
                lsn,
                last_term,
                commit,
                echo,
                data,
            } => {
                self.u8(5);
                for v in [*term, *lsn, *last_term, *commit, *echo] {
                    self.u64(v);
                }
                self.bytes(data);
            }
        }
    }
}

/// Decoder over a shared buffer: byte strings are zero-copy slices of it.
pub struct Dec {
    buf: Bytes,
    pos: usize,
}

fn short() -> Error {
    Error::Corrupt("truncated data".into())
}

impl Dec {
    pub fn new(buf: Bytes) -> Dec {
        Dec { buf, pos: 0 }
    }
    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
    pub fn u8(&mut self) -> Result<u8, Error> {
        let v = *self.buf.get(self.pos).ok_or_else(short)?;
        self.pos += 1;
        Ok(v)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let s = self.buf.get(self.pos..self.pos + N).ok_or_else(short)?;
        self.pos += N;
        Ok(s.try_into().expect("length checked"))
    }
    pub fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    pub fn bool(&mut self) -> Result<bool, Error> {
        Ok(self.u8()? != 0)
    }
    pub fn bytes(&mut self) -> Result<Bytes, Error> {
        let n = self.u32()? as usize;
        if self.pos + n > self.buf.len() {
            return Err(short());
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }
    pub fn record(&mut self) -> Result<Record, Error> {
        Ok(match self.u8()? {
            0 => Record::Noop,
            1 => Record::Set {
                key: self.bytes()?,
                value: self.bytes()?,
            },
            2 => Record::SAdd {
                key: self.bytes()?,
                member: self.bytes()?,
            },
            3 => Record::RPush {
                key: self.bytes()?,
                value: self.bytes()?,
            },
            4 => {
                let n = self.u32()?;
                let args = (0..n).map(|_| self.bytes()).collect::<Result<_, _>>()?;
                Record::Stmt { args }
            }
            t => return Err(Error::Corrupt(format!("unknown record tag {t}"))),
        })
    }
    pub fn entry(&mut self) -> Result<Entry, Error> {
        Ok(Entry {
            lsn: self.u64()?,
            term: self.u64()?,
            ts_ms: self.u64()?,
            rec: self.record()?,
        })
    }
    pub fn msg(&mut self) -> Result<Msg, Error> {
        Ok(match self.u8()? {
            1 => Msg::Vote {
                term: self.u64()?,
                last_lsn: self.u64()?,
                last_term: self.u64()?,
                pre: self.bool()?,
                force: self.bool()?,
            },
            2 => Msg::VoteResp {
                term: self.u64()?,
                granted: self.bool()?,
                pre: self.bool()?,
            },
            3 => {
                let (term, prev_lsn, prev_term, commit, echo) = (
                    self.u64()?,
                    self.u64()?,
                    self.u64()?,
                    self.u64()?,
                    self.u64()?,
                );
                let resume = self.bool()?;
                let n = self.u32()? as usize;
                let mut entries = Vec::with_capacity(n.min(65_536));
                for _ in 0..n {
                    entries.push(self.entry()?);
                }
                Msg::Append {
                    term,
                    prev_lsn,
                    prev_term,
                    commit,
                    echo,
                    resume,
                    entries,
                }
            }
            4 => {
                let (term, match_lsn, durable_lsn, last_lsn, echo) = (
                    self.u64()?,
                    self.u64()?,
                    self.u64()?,
                    self.u64()?,
                    self.u64()?,
                );
                Msg::AppendResp {
                    term,
                    match_lsn,
                    durable_lsn,
                    last_lsn,
                    echo,
                    success: self.bool()?,
                    empty: self.bool()?,
                }
            }
            5 => Msg::Snapshot {
                term: self.u64()?,
                lsn: self.u64()?,
                last_term: self.u64()?,
                commit: self.u64()?,
                echo: self.u64()?,
                data: self.bytes()?,
            },
            t => return Err(Error::Corrupt(format!("unknown message tag {t}"))),
        })
    }
}

/// FNV-1a, used to detect torn or corrupt log frames.
pub fn checksum(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_messages() {
        let e = Entry {
            lsn: 7,
            term: 2,
            ts_ms: 1_765_000_000_123,
            rec: Record::Set {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
            },
        };
        let stmt = Entry {
            lsn: 8,
            term: 2,
            ts_ms: 1_765_000_000_124,
            rec: Record::Stmt {
                args: vec![Bytes::from_static(b"INCR"), Bytes::from_static(b"ids")],
            },
        };
        let msgs = vec![
            Msg::Vote {
                term: 3,
                last_lsn: 9,
                last_term: 2,
                pre: true,
                force: false,
            },
            Msg::Append {
                term: 3,
                prev_lsn: 6,
                prev_term: 2,
                commit: 5,
                echo: 11,
                resume: true,
                entries: vec![e.clone(), stmt],
            },
            Msg::AppendResp {
                term: 3,
                success: true,
                match_lsn: 7,
                durable_lsn: 6,
                last_lsn: 7,
                echo: 11,
                empty: false,
            },
            Msg::Snapshot {
                term: 1,
                lsn: 2,
                last_term: 1,
                commit: 2,
                echo: 0,
                data: Bytes::from_static(b"xyz"),
            },
        ];
        for m in msgs {
            let mut buf = Vec::new();
            Enc(&mut buf).msg(&m);
            let back = Dec::new(Bytes::from(buf)).msg().unwrap();
            assert_eq!(format!("{m:?}"), format!("{back:?}"));
        }
    }
}
