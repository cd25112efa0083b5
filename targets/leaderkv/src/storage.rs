//! Durable state on local disk: the replication log (in memory plus an append-only file written
//! by a group-commit flusher), term/vote metadata and snapshots.
//!
//! Files in the data dir: `log` (header `LKVLOG01`, base LSN, base term, then frames
//! `[len u32][checksum u32][entry]`), `meta` (term, voted-for), `snapshot` (LSN, term, state).
//! `meta` and `snapshot` are replaced atomically (write temp, fsync, rename, fsync dir).
//! `join` (empty), when present, marks a node that joins a running cluster as a new member
//! (as PostgreSQL's `standby.signal` marks a standby): it neither votes nor stands for
//! election until it has caught up with a leader, then removes the file.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::Error;
use crate::codec::{Dec, Enc, Entry, checksum};

const LOG_MAGIC: &[u8; 8] = b"LKVLOG01";
const HEADER_LEN: u64 = 24;

/// A pending disk operation, executed in order by the flusher.
#[derive(Debug)]
pub enum DiskOp {
    /// Append encoded frames.
    Append(Vec<u8>),
    /// Cut the file to this length.
    Truncate(u64),
    /// Replace the whole file with these bytes (header included).
    Rewrite(Vec<u8>),
}

/// The replication log: entries after `base_lsn` (whose term is `base_term`).
pub struct Log {
    pub base_lsn: u64,
    pub base_term: u64,
    entries: VecDeque<Entry>,
    offsets: VecDeque<u64>,
    file_len: u64,
    ops: Vec<DiskOp>,
    /// Bumped whenever durable data is cut (truncate or reset), so that the flusher does not
    /// report durability of a batch taken before the cut.
    pub epoch: u64,
}

fn header(base_lsn: u64, base_term: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN as usize);
    v.extend_from_slice(LOG_MAGIC);
    v.extend_from_slice(&base_lsn.to_le_bytes());
    v.extend_from_slice(&base_term.to_le_bytes());
    v
}

fn frame(out: &mut Vec<u8>, e: &Entry) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    Enc(out).entry(e);
    let len = (out.len() - start - 8) as u32;
    let sum = checksum(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&sum.to_le_bytes());
}

impl Log {
    pub fn new(base_lsn: u64, base_term: u64) -> Log {
        Log {
            base_lsn,
            base_term,
            entries: VecDeque::new(),
            offsets: VecDeque::new(),
            file_len: HEADER_LEN,
            ops: vec![DiskOp::Rewrite(header(base_lsn, base_term))],
            epoch: 0,
        }
    }

    pub fn last_lsn(&self) -> u64 {
        self.base_lsn + self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries.back().map_or(self.base_term, |e| e.term)
    }

    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Term of the entry at `lsn`, if the log knows it (the base counts).
    pub fn term_at(&self, lsn: u64) -> Option<u64> {
        if lsn == self.base_lsn {
            Some(self.base_term)
        } else {
            self.get(lsn).map(|e| e.term)
        }
    }

    pub fn get(&self, lsn: u64) -> Option<&Entry> {
        if lsn <= self.base_lsn {
            return None;
        }
        self.entries.get((lsn - self.base_lsn - 1) as usize)
    }

    /// Entries in `from..=to` (clamped to what the log holds).
    pub fn range(&self, from: u64, to: u64) -> Vec<Entry> {
        let from = from.max(self.base_lsn + 1);
        let to = to.min(self.last_lsn());
        if from > to {
            return Vec::new();
        }
        let a = (from - self.base_lsn - 1) as usize;
        let b = (to - self.base_lsn) as usize;
        self.entries.range(a..b).cloned().collect()
    }

    pub fn append(&mut self, e: Entry) {
        debug_assert_eq!(e.lsn, self.last_lsn() + 1);
        let buf = match self.ops.last_mut() {
            Some(DiskOp::Append(b)) => b,
            _ => {
                self.ops.push(DiskOp::Append(Vec::with_capacity(4096)));
                match self.ops.last_mut() {
                    Some(DiskOp::Append(b)) => b,
                    _ => unreachable!(),
                }
            }
        };
        let before = buf.len();
        frame(buf, &e);
        self.offsets.push_back(self.file_len);
        self.file_len += (buf.len() - before) as u64;
        self.entries.push_back(e);
    }

    /// Drop every entry after `lsn` (the unreplicated suffix of a deposed leader, or a
    /// conflicting suffix on a follower).
    pub fn truncate_after(&mut self, lsn: u64) {
        if lsn >= self.last_lsn() {
            return;
        }
        let keep = (lsn.max(self.base_lsn) - self.base_lsn) as usize;
        let Some(&cut) = self.offsets.get(keep) else {
            return;
        };
        self.entries.truncate(keep);
        self.offsets.truncate(keep);
        self.file_len = cut;
        self.ops.push(DiskOp::Truncate(cut));
        self.epoch += 1;
    }

    /// Forget entries up to `lsn` (covered by a snapshot); rewrites the file.
    pub fn compact(&mut self, lsn: u64) {
        if lsn <= self.base_lsn || lsn > self.last_lsn() {
            return;
        }
        let term = self.term_at(lsn).expect("lsn in log");
        let drop = (lsn - self.base_lsn) as usize;
        self.entries.drain(..drop);
        self.base_lsn = lsn;
        self.base_term = term;
        self.rewrite();
    }

    /// Replace everything by an empty log based at a snapshot.
    pub fn reset(&mut self, base_lsn: u64, base_term: u64) {
        self.entries.clear();
        self.base_lsn = base_lsn;
        self.base_term = base_term;
        self.rewrite();
        self.epoch += 1;
    }

    fn rewrite(&mut self) {
        let mut buf = header(self.base_lsn, self.base_term);
        self.offsets.clear();
        for e in &self.entries {
            self.offsets.push_back(buf.len() as u64);
            frame(&mut buf, e);
        }
        self.file_len = buf.len() as u64;
        self.ops.clear();
        self.ops.push(DiskOp::Rewrite(buf));
    }

    /// Take the queued disk operations for the flusher.
    pub fn take_ops(&mut self) -> Vec<DiskOp> {
        std::mem::take(&mut self.ops)
    }

    pub fn has_ops(&self) -> bool {
        !self.ops.is_empty()
    }
}

/// The log file, owned by the flusher.
pub struct LogFile {
    path: PathBuf,
    file: File,
}

impl LogFile {
    /// Execute operations in order, then fsync once (group commit).
    pub fn exec(&mut self, ops: Vec<DiskOp>) -> std::io::Result<()> {
        for op in ops {
            match op {
                DiskOp::Append(b) => self.file.write_all(&b)?,
                DiskOp::Truncate(len) => {
                    self.file.set_len(len)?;
                    self.file.seek(SeekFrom::Start(len))?;
                }
                DiskOp::Rewrite(b) => {
                    let tmp = self.path.with_extension("tmp");
                    let mut f = File::create(&tmp)?;
                    f.write_all(&b)?;
                    f.sync_all()?;
                    fs::rename(&tmp, &self.path)?;
                    sync_dir(&self.path)?;
                    self.file = OpenOptions::new().append(true).open(&self.path)?;
                }
            }
        }
        self.file.sync_data()
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        File::open(d)?.sync_all()?;
    }
    Ok(())
}

/// Write a file atomically and durably.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{n}"));
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Whether the data dir is marked as joining a running cluster (the `join` file).
pub fn joining(dir: &Path) -> bool {
    dir.join("join").exists()
}

/// Removes the `join` mark (durably): the node has caught up and is a full member.
pub fn joined(dir: &Path) -> Result<(), Error> {
    let path = dir.join("join");
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(&path).map_err(|e| Error::Io("remove the join mark".into(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io("remove the join mark".into(), e)),
    }
}

/// Durable term and vote.
pub fn save_meta(dir: &Path, term: u64, voted_for: Option<usize>) -> Result<(), Error> {
    let mut v = Vec::new();
    Enc(&mut v).u64(term);
    Enc(&mut v).u64(voted_for.map_or(u64::MAX, |x| x as u64));
    write_atomic(&dir.join("meta"), &v).map_err(|e| Error::Io("write meta".into(), e))
}

/// A snapshot as stored: state encoded by [`crate::state::Store::encode`].
pub struct SnapshotFile {
    pub lsn: u64,
    pub term: u64,
    pub data: Bytes,
}

pub fn save_snapshot(dir: &Path, s: &SnapshotFile) -> Result<(), Error> {
    let mut v = Vec::with_capacity(s.data.len() + 24);
    Enc(&mut v).u64(s.lsn);
    Enc(&mut v).u64(s.term);
    Enc(&mut v).bytes(&s.data);
    write_atomic(&dir.join("snapshot"), &v).map_err(|e| Error::Io("write snapshot".into(), e))
}

/// Read the snapshot file, if there is a readable one.
pub fn open_snapshot(dir: &Path) -> Option<SnapshotFile> {
    let raw = read_file(&dir.join("snapshot")).ok()??;
    let mut d = Dec::new(Bytes::from(raw));
    Some(SnapshotFile {
        lsn: d.u64().ok()?,
        term: d.u64().ok()?,
        data: d.bytes().ok()?,
    })
}

/// What a node finds in its data dir at start.
pub struct Recovered {
    pub term: u64,
    pub voted_for: Option<usize>,
    pub snapshot: Option<SnapshotFile>,
    pub log: Log,
    pub file: LogFile,
}

fn read_file(p: &Path) -> Result<Option<Vec<u8>>, Error> {
    match File::open(p) {
        Ok(mut f) => {
            let mut v = Vec::new();
            f.read_to_end(&mut v)
                .map_err(|e| Error::Io(format!("read {}", p.display()), e))?;
            Ok(Some(v))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(format!("open {}", p.display()), e)),
    }
}

/// Open (or create) a data dir and recover its state. A torn last log frame is cut off.
pub fn open(dir: &Path) -> Result<Recovered, Error> {
    fs::create_dir_all(dir).map_err(|e| Error::Io(format!("create {}", dir.display()), e))?;
    let (mut term, mut voted_for) = (0, None);
    if let Some(m) = read_file(&dir.join("meta"))? {
        let mut d = Dec::new(Bytes::from(m));
        term = d.u64()?;
        let v = d.u64()?;
        voted_for = (v != u64::MAX).then_some(v as usize);
    }
    let snapshot = match read_file(&dir.join("snapshot"))? {
        Some(s) => {
            let mut d = Dec::new(Bytes::from(s));
            Some(SnapshotFile {
                lsn: d.u64()?,
                term: d.u64()?,
                data: d.bytes()?,
            })
        }
        None => None,
    };
    let path = dir.join("log");
    let mut log = None;
    if let Some(raw) = read_file(&path)?
        && raw.len() as u64 >= HEADER_LEN
        && &raw[..8] == LOG_MAGIC
    {
        let base_lsn = u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes"));
        let base_term = u64::from_le_bytes(raw[16..24].try_into().expect("8 bytes"));
        let mut l = Log::new(base_lsn, base_term);
        l.ops.clear();
        let raw = Bytes::from(raw);
        let mut pos = HEADER_LEN as usize;
        while pos + 8 <= raw.len() {
            let len = u32::from_le_bytes(raw[pos..pos + 4].try_into().expect("4")) as usize;
            let sum = u32::from_le_bytes(raw[pos + 4..pos + 8].try_into().expect("4"));
            let end = pos + 8 + len;
            if end > raw.len() || checksum(&raw[pos + 8..end]) != sum {
                break;
            }
            let e = match Dec::new(raw.slice(pos + 8..end)).entry() {
                Ok(e) if e.lsn == l.last_lsn() + 1 => e,
                _ => break,
            };
            l.offsets.push_back(pos as u64);
            l.entries.push_back(e);
            pos = end;
        }
        l.file_len = pos as u64;
        if (pos as u64) < raw.len() as u64 {
            l.ops.push(DiskOp::Truncate(pos as u64));
        }
        log = Some(l);
    }
    // The snapshot must be covered: the log continues from it or the log is reset to it.
    let mut log = log.unwrap_or_else(|| Log::new(0, 0));
    if let Some(s) = &snapshot
        && (log.base_lsn > s.lsn || log.term_at(s.lsn) != Some(s.term))
    {
        log.reset(s.lsn, s.term);
    }
    if !path.exists() {
        File::create(&path).map_err(|e| Error::Io("create log".into(), e))?;
    }
    let file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| Error::Io("open log".into(), e))?;
    Ok(Recovered {
        term,
        voted_for,
        snapshot,
        log,
        file: LogFile { path, file },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Record;

    fn ent(lsn: u64, term: u64) -> Entry {
        Entry {
            lsn,
            term,
            ts_ms: lsn,
            rec: Record::Set {
                key: Bytes::from("k"),
                value: Bytes::from(format!("{lsn}")),
            },
        }
    }

    #[test]
    fn log_survives_reopen_truncate_and_compact() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = open(dir.path()).unwrap();
        for i in 1..=10 {
            r.log.append(ent(i, 1));
        }
        r.log.truncate_after(7);
        r.log.append(ent(8, 2));
        let ops = r.log.take_ops();
        r.file.exec(ops).unwrap();
        drop(r);
        let mut r = open(dir.path()).unwrap();
        assert_eq!(r.log.last_lsn(), 8);
        assert_eq!(r.log.term_at(8), Some(2));
        assert_eq!(r.log.term_at(7), Some(1));
        r.log.compact(5);
        r.log.append(ent(9, 2));
        let ops = r.log.take_ops();
        r.file.exec(ops).unwrap();
        drop(r);
        let r = open(dir.path()).unwrap();
        assert_eq!((r.log.base_lsn, r.log.last_lsn()), (5, 9));
        assert_eq!(r.log.range(6, 9).len(), 4);
    }
}
