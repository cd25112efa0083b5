//! A list-append history as transactions: each client txn with its micro-ops, outcome and
//! times; per key, who appended each value and the version order the reads reveal; and the
//! anomalies that need no cycle (Elle's G1a, G1b, internal, duplicate elements, incompatible
//! orders, unexpected elements, lost appends).

use std::collections::HashMap;

use history::{OpType, Process, Value, vocab};

/// A key or an element, interned.
pub type Id = u32;

/// One micro-op of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Mop {
    Append {
        key: Id,
        value: Id,
    },
    /// The list read (None: not known, as in an invocation or an `info` txn).
    Read {
        key: Id,
        list: Option<Vec<Id>>,
    },
}

/// One client transaction.
#[derive(Debug, Clone)]
pub struct Txn {
    /// Index (`op.index`) of the invocation and of the completion (None: never completed).
    pub invoke: u64,
    pub complete: Option<u64>,
    pub process: u64,
    pub outcome: OpType,
    pub mops: Vec<Mop>,
}

impl Txn {
    /// `T<invocation index>`: how an explanation names it.
    pub fn label(&self) -> String {
        format!("T{} (process {})", self.invoke, self.process)
    }
}

/// Keys and elements back to their values.
#[derive(Default)]
pub struct Interner {
    ids: HashMap<Value, Id, foldhash::fast::RandomState>,
    values: Vec<Value>,
}

impl Interner {
    pub fn id(&mut self, v: &Value) -> Id {
        if let Some(i) = self.ids.get(v) {
            return *i;
        }
        let i = self.values.len() as Id;
        self.values.push(v.clone());
        self.ids.insert(v.clone(), i);
        i
    }

    pub fn value(&self, id: Id) -> &Value {
        &self.values[id as usize]
    }
}

/// Why a history is not a list-append history.
#[derive(Debug)]
pub struct NotListAppend(pub String);

/// Kept from each client `txn` invocation: its index, process and value.
type Kept = (u64, u64, Value);

/// The txns of a history fed one op at a time (`faultline check` streams a file through it,
/// never holding the history; a whole history is fed the same way). Each `txn` op's value is
/// a list of `[f key value]` micro-ops with `f` `append` or `r` (Elle's shape, in EDN or
/// JSON).
#[derive(Default)]
pub struct Stream {
    pairer: history::pairing::Pairer<Option<Kept>>,
    pub names: Interner,
    txns: Vec<Txn>,
    /// Set at the first op that is not list-append (the rest is then ignored).
    pub error: Option<NotListAppend>,
}

impl Stream {
    pub fn observe(&mut self, op: &history::Op) -> Result<(), history::PairError> {
        let keep = |o: &history::Op| match o.process {
            Process::Client(p) if &*o.f == vocab::TXN => Some((o.index, p, o.value.clone())),
            _ => None,
        };
        let event = self.pairer.push(op, keep)?;
        if self.error.is_some() {
            return Ok(());
        }
        if let history::pairing::Event::Completed {
            payload: Some((index, process, value)),
            ..
        } = event
        {
            let done = Some((op.index, op.kind, &op.value));
            match txn(index, process, &value, done, &mut self.names) {
                Ok(t) => self.txns.push(t),
                Err(e) => {
                    self.error = Some(e);
                    self.txns = Vec::new();
                }
            }
        }
        Ok(())
    }

    /// The txns, in invocation order, those never completed as `info`.
    pub fn finish(mut self) -> Result<(Vec<Txn>, Interner), NotListAppend> {
        if let Some(e) = self.error {
            return Err(e);
        }
        for (index, process, value) in self.pairer.into_open().filter_map(|(_, kept)| kept) {
            let t = txn(index, process, &value, None, &mut self.names)?;
            self.txns.push(t);
        }
        self.txns.sort_unstable_by_key(|t| t.invoke);
        Ok((self.txns, self.names))
    }
}

/// One txn from its invocation and completion (index, type, value).
fn txn(
    invoke: u64,
    process: u64,
    inv_value: &Value,
    done: Option<(u64, OpType, &Value)>,
    names: &mut Interner,
) -> Result<Txn, NotListAppend> {
    let outcome = done.map_or(OpType::Info, |d| d.1);
    // The completion says what was read; the invocation what was meant.
    let source = match done {
        Some((_, OpType::Ok, v)) => v,
        _ => inv_value,
    };
    let Value::List(items) = source else {
        return Err(NotListAppend(format!(
            "op {invoke}: a txn's value is a list of micro-ops, got {source}"
        )));
    };
    let mut mops = Vec::with_capacity(items.len());
    for m in items {
        let (f, key, value) = match m {
            Value::List(parts) => match parts.as_slice() {
                [Value::Str(f), k, v] => (&**f, k, v),
                _ => {
                    return Err(NotListAppend(format!(
                        "op {invoke}: a micro-op is [f key value], got {m}"
                    )));
                }
            },
            _ => {
                return Err(NotListAppend(format!(
                    "op {invoke}: a micro-op is [f key value], got {m}"
                )));
            }
        };
        let key = names.id(key);
        match f {
            "append" => mops.push(Mop::Append {
                key,
                value: names.id(value),
            }),
            "r" => {
                let list = match (outcome, value) {
                    (OpType::Ok, Value::List(xs)) => Some(xs.iter().map(|x| names.id(x)).collect()),
                    // Elle's reading: an ok read of nil is an empty list.
                    (OpType::Ok, Value::Nil) => Some(Vec::new()),
                    (OpType::Ok, other) => {
                        return Err(NotListAppend(format!(
                            "op {invoke}: a read returns a list, got {other}"
                        )));
                    }
                    _ => None,
                };
                mops.push(Mop::Read { key, list })
            }
            other => {
                return Err(NotListAppend(format!(
                    "op {invoke}: micro-op {other:?} is neither append nor r (is this a list-append history?)"
                )));
            }
        }
    }
    Ok(Txn {
        invoke,
        complete: done.map(|d| d.0),
        process,
        outcome,
        mops,
    })
}

/// A finding that needs no cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Plain {
    pub kind: &'static str,
    /// Positions in the txn list of the txns that show it.
    pub txns: Vec<usize>,
    pub text: String,
}

/// What the reads say about each key.
pub struct Versions {
    /// (key, value) -> the txn that appended it (None when two txns did: not attributable).
    pub writer: HashMap<(Id, Id), Option<usize>, foldhash::fast::RandomState>,
    /// key -> the values in the order the longest read shows (only keys whose reads agree).
    pub order: HashMap<Id, Vec<Id>, foldhash::fast::RandomState>,
    /// (key, value) -> its position in `order[key]`.
    pub position: HashMap<(Id, Id), usize, foldhash::fast::RandomState>,
    pub plain: Vec<Plain>,
}

/// The list a read of `key` at micro-op `at` of `t` saw from other txns: what it returned
/// less the txn's own earlier appends to `key`, which must be its tail (None: they are not,
/// an `internal` anomaly).
pub fn external_prefix<'a>(t: &Txn, at: usize, key: Id, list: &'a [Id]) -> Option<&'a [Id]> {
    let own: Vec<Id> = t.mops[..at]
        .iter()
        .filter_map(|m| match m {
            Mop::Append { key: k, value } if *k == key => Some(*value),
            _ => None,
        })
        .collect();
    if own.len() > list.len() || list[list.len() - own.len()..] != own[..] {
        return None;
    }
    Some(&list[..list.len() - own.len()])
}

pub fn versions(txns: &[Txn], names: &Interner) -> Versions {
    let hasher = foldhash::fast::RandomState::default;
    let mut writer: HashMap<(Id, Id), Option<usize>, _> = HashMap::with_hasher(hasher());
    // The last append of each txn to each key (for intermediate reads).
    let mut last_append: HashMap<(usize, Id), Id, _> = HashMap::with_hasher(hasher());
    for (i, t) in txns.iter().enumerate() {
        for m in &t.mops {
            if let Mop::Append { key, value } = m {
                writer
                    .entry((*key, *value))
                    .and_modify(|w| *w = None)
                    .or_insert(Some(i));
                last_append.insert((i, *key), *value);
            }
        }
    }
    let v = |id: Id| names.value(id).to_string();
    let mut plain = Vec::new();
    let mut longest: HashMap<Id, (usize, &[Id]), _> = HashMap::with_hasher(hasher());
    let mut incompatible: HashMap<Id, bool, _> = HashMap::with_hasher(hasher());
    for (i, t) in txns.iter().enumerate() {
        if t.outcome != OpType::Ok {
            continue;
        }
        for (at, m) in t.mops.iter().enumerate() {
            let Mop::Read {
                key,
                list: Some(list),
            } = m
            else {
                continue;
            };
            let mut seen =
                std::collections::HashSet::with_capacity_and_hasher(list.len(), hasher());
            if let Some(d) = list.iter().find(|x| !seen.insert(**x)) {
                plain.push(Plain {
                    kind: super::kind::DUPLICATE_ELEMENTS,
                    txns: vec![i],
                    text: format!(
                        "{} read key {} and saw {} twice: an append applied twice, or a list that is not one",
                        t.label(),
                        v(*key),
                        v(*d)
                    ),
                });
            }
            if external_prefix(t, at, *key, list).is_none() {
                plain.push(Plain {
                    kind: super::kind::INTERNAL,
                    txns: vec![i],
                    text: format!(
                        "{} read key {} after appending to it itself, and the read does not end with its own appends: {}",
                        t.label(),
                        v(*key),
                        show(list, names)
                    ),
                });
            }
            for x in list {
                match writer.get(&(*key, *x)) {
                    None => plain.push(Plain {
                        kind: crate::result::kind::UNEXPECTED,
                        txns: vec![i],
                        text: format!(
                            "{} read key {} and saw {}, which no txn appended to it",
                            t.label(),
                            v(*key),
                            v(*x)
                        ),
                    }),
                    Some(Some(w)) if txns[*w].outcome == OpType::Fail => plain.push(Plain {
                        kind: super::kind::G1A,
                        txns: vec![*w, i],
                        text: format!(
                            "{} read key {} and saw {}, appended by {}, which failed: an aborted read",
                            t.label(),
                            v(*key),
                            v(*x),
                            txns[*w].label()
                        ),
                    }),
                    _ => {}
                }
            }
            if let Some(last) = list.last() {
                if let Some(Some(w)) = writer.get(&(*key, *last)) {
                    if *w != i && last_append.get(&(*w, *key)) != Some(last) {
                        plain.push(Plain {
                            kind: super::kind::G1B,
                            txns: vec![*w, i],
                            text: format!(
                                "{} read key {} ending in {}, which {} appended before appending to it again: an intermediate read",
                                t.label(),
                                v(*key),
                                v(*last),
                                txns[*w].label()
                            ),
                        });
                    }
                }
            }
            match longest.get(key) {
                None => {
                    longest.insert(*key, (i, list));
                }
                Some((j, other)) => {
                    let (short, long) = if other.len() >= list.len() {
                        (&list[..], *other)
                    } else {
                        (*other, &list[..])
                    };
                    if long[..short.len()] != *short {
                        if !incompatible.insert(*key, true).unwrap_or(false) {
                            plain.push(Plain {
                                kind: super::kind::INCOMPATIBLE_ORDER,
                                txns: vec![*j, i],
                                text: format!(
                                    "{} and {} read key {} as {} and {}: neither is a prefix of the other, so the list's order is not one order",
                                    txns[*j].label(),
                                    t.label(),
                                    v(*key),
                                    show(other, names),
                                    show(list, names)
                                ),
                            });
                        }
                    } else if list.len() > other.len() {
                        longest.insert(*key, (i, list));
                    }
                }
            }
        }
    }
    let mut order = HashMap::with_hasher(hasher());
    let mut position = HashMap::with_hasher(hasher());
    for (key, (_, list)) in longest {
        if incompatible.contains_key(&key) {
            continue;
        }
        for (p, x) in list.iter().enumerate() {
            position.insert((key, *x), p);
        }
        order.insert(key, list.to_vec());
    }
    Versions {
        writer,
        order,
        position,
        plain,
    }
}

/// `[1 2 3]`, or its ends when long.
pub fn show(list: &[Id], names: &Interner) -> String {
    let item = |x: &Id| names.value(*x).to_string();
    if list.len() <= 8 {
        let xs: Vec<String> = list.iter().map(item).collect();
        return format!("[{}]", xs.join(" "));
    }
    let head: Vec<String> = list[..3].iter().map(item).collect();
    let tail: Vec<String> = list[list.len() - 3..].iter().map(item).collect();
    format!(
        "[{} ... {}] ({} elements)",
        head.join(" "),
        tail.join(" "),
        list.len()
    )
}
