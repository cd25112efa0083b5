//! The state machine: strings and sets, plus an overlay of records appended but not yet applied
//! (so the leader evaluates CAS/INCR/SADD against the newest state while serving reads from the
//! applied, i.e. committed, state).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::Error;
use crate::codec::{Dec, Enc, Entry, Record};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Bytes),
    Set(HashSet<Bytes>),
}

/// Applied state.
#[derive(Debug, Clone, Default)]
pub struct Store {
    map: HashMap<Bytes, Value>,
}

/// A type error (`WRONGTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

impl Store {
    pub fn apply(&mut self, r: &Record) {
        match r {
            Record::Noop => {}
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
        }
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
            }
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
                t => return Err(Error::Corrupt(format!("unknown value tag {t}"))),
            };
            map.insert(k, v);
        }
        Ok(Store { map })
    }
}

#[derive(Debug)]
enum Pending {
    Str(Bytes),
    Adds(HashSet<Bytes>),
}

/// Effects of log entries after the applied LSN, newest per key.
#[derive(Debug, Default)]
pub struct Overlay {
    map: HashMap<Bytes, (u64, Pending)>,
}

impl Overlay {
    pub fn add(&mut self, e: &Entry) {
        match &e.rec {
            Record::Noop => {}
            Record::Set { key, value } => {
                self.map
                    .insert(key.clone(), (e.lsn, Pending::Str(value.clone())));
            }
            Record::SAdd { key, member } => match self.map.get_mut(key) {
                Some((lsn, Pending::Adds(s))) => {
                    *lsn = e.lsn;
                    s.insert(member.clone());
                }
                _ => {
                    self.map.insert(
                        key.clone(),
                        (e.lsn, Pending::Adds(HashSet::from([member.clone()]))),
                    );
                }
            },
        }
    }

    /// The entry has been applied to the store.
    pub fn applied(&mut self, e: &Entry) {
        let key = match &e.rec {
            Record::Noop => return,
            Record::Set { key, .. } | Record::SAdd { key, .. } => key,
        };
        if let Some((lsn, _)) = self.map.get(key)
            && *lsn <= e.lsn
        {
            self.map.remove(key);
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
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
            Some((_, Pending::Adds(_))) => return Err(WrongType),
            None => {}
        }
        match self.store.get(key) {
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(Value::Set(_)) => Err(WrongType),
            None => Ok(None),
        }
    }

    /// Whether member is in the set at key.
    pub fn is_member(&self, key: &[u8], member: &[u8]) -> Result<bool, WrongType> {
        match self.overlay.map.get(key) {
            Some((_, Pending::Str(_))) => return Err(WrongType),
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
            Some(Value::Str(_)) => Err(WrongType),
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
        s.apply(&Record::Set {
            key: "a".into(),
            value: "1".into(),
        });
        s.apply(&Record::SAdd {
            key: "s".into(),
            member: "x".into(),
        });
        let back = Store::decode(Bytes::from(s.encode())).unwrap();
        assert_eq!(back.get(b"a"), s.get(b"a"));
        let mut o = Overlay::default();
        let e = Entry {
            lsn: 5,
            term: 1,
            rec: Record::SAdd {
                key: "s".into(),
                member: "y".into(),
            },
        };
        o.add(&e);
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
}
