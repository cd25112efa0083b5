//! The state machine: strings, sets and lists, each key stamped with the time it was last
//! written (its `updated_at`), plus an overlay of records appended but not yet applied (so the
//! leader evaluates CAS/INCR/SADD against the newest state while serving reads from the
//! applied, i.e. committed, state).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::Error;
use crate::codec::{Dec, Enc, Entry, Record};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Bytes),
    Set(HashSet<Bytes>),
    List(Vec<Bytes>),
}

/// Applied state.
#[derive(Debug, Clone, Default)]
pub struct Store {
    map: HashMap<Bytes, Value>,
    /// When each key was last written, in ms since the epoch: the time the write was
    /// evaluated at (the leader's, carried in the log; see [`Store::apply`]).
    stamps: HashMap<Bytes, u64>,
}

/// A type error (`WRONGTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

impl Store {
    /// Applies a record evaluated at `at_ms` (the entry's time, or in statement mode the time
    /// the statement is evaluated at): the key it writes is stamped with it. A statement is
    /// evaluated against this state; one that is refused here changes nothing.
    pub fn apply(&mut self, r: &Record, at_ms: u64) {
        if let Record::Stmt { args } = r {
            for row in self.statement_rows(args) {
                self.apply(&row, at_ms);
            }
            return;
        }
        if let Some(key) = r.key() {
            self.stamps.insert(key.clone(), at_ms);
        }
        match r {
            Record::Noop | Record::Stmt { .. } => {}
            Record::Set { key, value } => {
                self.map.insert(key.clone(), Value::Str(value.clone()));
            }
            Record::SAdd { key, member } => match self.map.get_mut(key) {
                Some(Value::Set(s)) => {
                    s.insert(member.clone());
                }
                _ => {
                    self.map
                        .insert(key.clone(), Value::Set(HashSet::from([member.clone()])));
                }
            },
            Record::RPush { key, value } => match self.map.get_mut(key) {
                Some(Value::List(l)) => l.push(value.clone()),
                _ => {
                    self.map
                        .insert(key.clone(), Value::List(vec![value.clone()]));
                }
            },
        }
    }

    /// The row records of statement `args` evaluated on this state alone.
    fn statement_rows(&self, args: &[Bytes]) -> Vec<Record> {
        let overlay = Overlay::default();
        let view = View {
            store: self,
            overlay: &overlay,
        };
        statement_rows(&view, args)
    }

    /// Each key with a fingerprint of its value and its stamp, sorted by key: two nodes that
    /// applied the same records hold the same list (`DIGEST`).
    pub fn digest(&self) -> Vec<(Bytes, u32)> {
        let mut out: Vec<(Bytes, u32)> = self
            .map
            .iter()
            .map(|(k, v)| {
                let mut buf = Vec::new();
                let mut e = Enc(&mut buf);
                e.u64(self.stamps.get(k).copied().unwrap_or(0));
                match v {
                    Value::Str(s) => e.bytes(s),
                    Value::Set(s) => {
                        let mut members: Vec<&Bytes> = s.iter().collect();
                        members.sort();
                        for m in members {
                            e.bytes(m);
                        }
                    }
                    Value::List(l) => l.iter().for_each(|x| e.bytes(x)),
                }
                (k.clone(), crate::codec::checksum(&buf))
            })
            .collect();
        out.sort();
        out
    }

    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.map.get(key)
    }

    pub fn into_sorted(self) -> std::collections::BTreeMap<Bytes, Value> {
        self.map.into_iter().collect()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        let mut e = Enc(&mut v);
        e.u64(self.map.len() as u64);
        for (k, val) in &self.map {
            e.bytes(k);
            match val {
                Value::Str(s) => {
                    e.u8(0);
                    e.bytes(s);
                }
                Value::Set(s) => {
                    e.u8(1);
                    e.u64(s.len() as u64);
                    for m in s {
                        e.bytes(m);
                    }
                }
                Value::List(l) => {
                    e.u8(2);
                    e.u64(l.len() as u64);
                    for x in l {
                        e.bytes(x);
                    }
                }
            }
        }
        e.u64(self.stamps.len() as u64);
        for (k, at) in &self.stamps {
            e.bytes(k);
            e.u64(*at);
        }
        v
    }

    pub fn decode(data: Bytes) -> Result<Store, Error> {
        let mut d = Dec::new(data);
        let n = d.u64()?;
        let mut map = HashMap::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            let k = d.bytes()?;
            let v = match d.u8()? {
                0 => Value::Str(d.bytes()?),
                1 => {
                    let m = d.u64()?;
                    let mut s = HashSet::with_capacity(m.min(1 << 20) as usize);
                    for _ in 0..m {
                        s.insert(d.bytes()?);
                    }
                    Value::Set(s)
                }
                2 => {
                    let m = d.u64()?;
                    let mut l = Vec::with_capacity(m.min(1 << 20) as usize);
                    for _ in 0..m {
                        l.push(d.bytes()?);
                    }
                    Value::List(l)
                }
                t => return Err(Error::Corrupt(format!("unknown value tag {t}"))),
            };
            map.insert(k, v);
        }
        let n = d.u64()?;
        let mut stamps = HashMap::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            let k = d.bytes()?;
            stamps.insert(k, d.u64()?);
        }
        Ok(Store { map, stamps })
    }
}

#[derive(Debug)]
enum Pending {
    Str(Bytes),
    Adds(HashSet<Bytes>),
    /// Appends on top of the store's list (or of nothing), with their LSNs, oldest first.
    Pushes(Vec<(u64, Bytes)>),
}

/// Effects of log entries after the applied LSN, newest per key.
#[derive(Debug, Default)]
pub struct Overlay {
    map: HashMap<Bytes, (u64, Pending)>,
}

impl Overlay {
    /// Adds the effect of entry `e`, appended after everything in `store` and in this overlay
    /// (a statement is evaluated against that newest view).
    pub fn add(&mut self, store: &Store, e: &Entry) {
        if let Record::Stmt { args } = &e.rec {
            let rows = statement_rows(
                &View {
                    store,
                    overlay: self,
                },
                args,
            );
            for rec in rows {
                self.add_row(e.lsn, &rec);
            }
            return;
        }
        self.add_row(e.lsn, &e.rec);
    }

    fn add_row(&mut self, lsn: u64, rec: &Record) {
        match rec {
            Record::Noop | Record::Stmt { .. } => {}
            Record::Set { key, value } => {
                self.map
                    .insert(key.clone(), (lsn, Pending::Str(value.clone())));
            }
            Record::SAdd { key, member } => match self.map.get_mut(key) {
                Some((at, Pending::Adds(s))) => {
                    *at = lsn;
                    s.insert(member.clone());
                }
                _ => {
                    self.map.insert(
                        key.clone(),
                        (lsn, Pending::Adds(HashSet::from([member.clone()]))),
                    );
                }
            },
            Record::RPush { key, value } => match self.map.get_mut(key) {
                Some((at, Pending::Pushes(l))) => {
                    *at = lsn;
                    l.push((lsn, value.clone()));
                }
                _ => {
                    self.map.insert(
                        key.clone(),
                        (lsn, Pending::Pushes(vec![(lsn, value.clone())])),
                    );
                }
            },
        }
    }

    /// The entry has been applied to the store.
    pub fn applied(&mut self, e: &Entry) {
        let Some(key) = e.rec.key() else { return };
        match self.map.get_mut(key) {
            Some((lsn, _)) if *lsn <= e.lsn => {
                self.map.remove(key);
            }
            // Appends are not idempotent: the applied ones leave the overlay one by one.
            Some((_, Pending::Pushes(l))) => l.retain(|(at, _)| *at > e.lsn),
            _ => {}
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// The row records statement `args` (`[command, key, args...]`) makes on `view`: none when it
/// is malformed or refused there.
fn statement_rows(view: &View, args: &[Bytes]) -> Vec<Record> {
    let Some((cmd, a)) = args.split_first() else {
        return Vec::new();
    };
    let cmd = crate::commands::upper(cmd);
    if a.is_empty() || !crate::writes::arity_ok(&cmd, a) {
        return Vec::new();
    }
    crate::writes::eval(view, &cmd, a, None).map_or_else(|_| Vec::new(), |(rows, _)| rows)
}

/// The newest view: store plus overlay.
pub struct View<'a> {
    pub store: &'a Store,
    pub overlay: &'a Overlay,
}

impl View<'_> {
    /// Current string value of key (None if absent).
    pub fn string(&self, key: &[u8]) -> Result<Option<Bytes>, WrongType> {
        match self.overlay.map.get(key) {
            Some((_, Pending::Str(s))) => return Ok(Some(s.clone())),
            Some((_, Pending::Adds(_) | Pending::Pushes(_))) => return Err(WrongType),
            None => {}
        }
        match self.store.get(key) {
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(Value::Set(_) | Value::List(_)) => Err(WrongType),
            None => Ok(None),
        }
    }

    /// The list at key, appends not yet applied included (empty if absent).
    pub fn list(&self, key: &[u8]) -> Result<Vec<Bytes>, WrongType> {
        let mut out = match self.store.get(key) {
            Some(Value::List(l)) => l.clone(),
            Some(_) => return Err(WrongType),
            None => Vec::new(),
        };
        match self.overlay.map.get(key) {
            Some((_, Pending::Pushes(l))) => out.extend(l.iter().map(|(_, v)| v.clone())),
            Some(_) => return Err(WrongType),
            None => {}
        }
        Ok(out)
    }

    /// Whether member is in the set at key.
    pub fn is_member(&self, key: &[u8], member: &[u8]) -> Result<bool, WrongType> {
        match self.overlay.map.get(key) {
            Some((_, Pending::Str(_) | Pending::Pushes(_))) => return Err(WrongType),
            Some((_, Pending::Adds(s))) if s.contains(member) => return Ok(true),
            Some((_, Pending::Adds(_))) => {
                // Adds on top of the store's set (or of nothing).
                return match self.store.get(key) {
                    Some(Value::Set(s)) => Ok(s.contains(member)),
                    _ => Ok(false),
                };
            }
            None => {}
        }
        match self.store.get(key) {
            Some(Value::Set(s)) => Ok(s.contains(member)),
            Some(Value::Str(_) | Value::List(_)) => Err(WrongType),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_roundtrip_and_overlay() {
        let mut s = Store::default();
        s.apply(
            &Record::Set {
                key: "a".into(),
                value: "1".into(),
            },
            1,
        );
        s.apply(
            &Record::SAdd {
                key: "s".into(),
                member: "x".into(),
            },
            1,
        );
        let back = Store::decode(Bytes::from(s.encode())).unwrap();
        assert_eq!(back.get(b"a"), s.get(b"a"));
        let mut o = Overlay::default();
        let e = Entry {
            lsn: 5,
            term: 1,
            ts_ms: 1,
            rec: Record::SAdd {
                key: "s".into(),
                member: "y".into(),
            },
        };
        o.add(&s, &e);
        let v = View {
            store: &s,
            overlay: &o,
        };
        assert_eq!(v.is_member(b"s", b"y"), Ok(true));
        assert_eq!(v.is_member(b"s", b"x"), Ok(true));
        assert_eq!(v.string(b"s"), Err(WrongType));
        o.applied(&e);
        assert!(o.map.is_empty());
    }

    #[test]
    fn list_appends_leave_the_overlay_one_by_one() {
        let push = |lsn, v: &str| Entry {
            lsn,
            term: 1,
            ts_ms: 1,
            rec: Record::RPush {
                key: "l".into(),
                value: Bytes::from(v.to_owned()),
            },
        };
        let mut s = Store::default();
        let mut o = Overlay::default();
        let es = [push(1, "a"), push(2, "b"), push(3, "c")];
        for e in &es {
            o.add(&s, e);
        }
        let list = |s: &Store, o: &Overlay| {
            View {
                store: s,
                overlay: o,
            }
            .list(b"l")
            .unwrap()
        };
        assert_eq!(list(&s, &o), ["a", "b", "c"]);
        s.apply(&es[0].rec, 1);
        o.applied(&es[0]);
        assert_eq!(list(&s, &o), ["a", "b", "c"], "nothing twice, nothing lost");
        s.apply(&es[1].rec, 1);
        o.applied(&es[1]);
        s.apply(&es[2].rec, 1);
        o.applied(&es[2]);
        assert!(o.map.is_empty());
        assert_eq!(list(&s, &o), ["a", "b", "c"]);
        let back = Store::decode(Bytes::from(s.encode())).unwrap();
        assert_eq!(back.get(b"l"), s.get(b"l"));
        let v = View {
            store: &s,
            overlay: &o,
        };
        assert_eq!(v.string(b"l"), Err(WrongType));
    }
}
