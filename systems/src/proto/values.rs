//! The value of an `ok` completion from a RESP reply, for every workload's op (sets,
//! ids, registers, list-append transactions, the leader probe).

use history::Value;
use history::vocab;
use workloads::Invocation;

use crate::RoleInfo;
use crate::proto::resp::Reply;

/// The value of an `ok` completion for the workloads' ops, as Redis-like stores answer them:
/// `add` any integer; the set `read` an array of integers; `incr` an integer; the register
/// `read` a bulk string (nil: no value); `write`/`cas` `+OK`; `leader` what `role` makes of it.
pub fn ok_value(
    op: &Invocation,
    r: &Reply,
    role: impl Fn(&Reply) -> Option<RoleInfo>,
) -> Option<Value> {
    match (op.f, op.key.is_some(), r) {
        (vocab::ADD, _, Reply::Int(_)) => Some(op.value.clone()),
        (vocab::READ, false, Reply::Array(items)) => ints(items).map(Value::List),
        (vocab::INCR | vocab::GENERATE | vocab::INSERT, _, Reply::Int(i)) => Some(Value::Int(*i)),
        (vocab::READ, true, Reply::Bulk(None)) => Some(Value::Nil),
        (vocab::READ, true, Reply::Bulk(Some(b))) => {
            let s = std::str::from_utf8(b).ok()?;
            Some(
                s.parse::<i64>()
                    .map(Value::Int)
                    .unwrap_or_else(|_| Value::str(s)),
            )
        }
        (vocab::WRITE | vocab::CAS, _, Reply::Simple(s)) if s == "OK" => Some(op.value.clone()),
        // Several micro-ops: the commit's array of their replies; one: its own reply.
        (vocab::TXN, _, Reply::Array(Some(items))) if op.mops().count() > 1 => {
            txn_replies(op, items)
        }
        (vocab::TXN, _, r) => txn_replies(op, std::slice::from_ref(r)),
        (vocab::LEADER, _, r) => Some(role_value(&role(r)?)),
        (vocab::DIGEST, _, Reply::Array(Some(items))) => {
            let texts: Option<Vec<String>> = items.iter().map(text).collect();
            digest_pairs(texts?)
        }
        (vocab::DIGEST, _, r) => Some(whole_digest(text(r)?)),
        _ => None,
    }
}

/// A string, bulk or integer reply as text.
fn text(r: &Reply) -> Option<String> {
    match r {
        Reply::Int(i) => Some(i.to_string()),
        r => r.as_str().map(str::to_owned),
    }
}

/// A digest answer of `[key, hash, key, hash, ...]` as a map (`None`: an odd count).
pub fn digest_pairs(texts: Vec<String>) -> Option<Value> {
    if texts.len() % 2 != 0 {
        return None;
    }
    let mut it = texts.into_iter();
    let mut pairs = Vec::new();
    while let (Some(k), Some(h)) = (it.next(), it.next()) {
        pairs.push((Value::str(&k), Value::str(&h)));
    }
    Some(Value::Map(pairs))
}

/// A digest answer of one fingerprint of the whole state, as a map of one key, `*`.
pub fn whole_digest(hash: String) -> Value {
    Value::Map(vec![(Value::str("*"), Value::str(&hash))])
}

/// The completion value of a transaction of several micro-ops from its commit's replies, one
/// per micro-op: an append's any integer, a read's array of integers. `None` when they do not
/// match (an error among them: the transaction may have partly happened).
fn txn_replies(op: &Invocation, items: &[Reply]) -> Option<Value> {
    if items.len() != op.mops().count() {
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for ((f, k, v), r) in op.mops().zip(items) {
        let v = match (f, r) {
            (vocab::APPEND, Reply::Int(_)) => v.clone(),
            ("r", Reply::Array(list)) => Value::List(ints(list)?),
            _ => return None,
        };
        out.push(Value::List(vec![Value::str(f), k.clone(), v]));
    }
    Some(Value::List(out))
}

/// The integers of an array reply (nil: none); `None` when an element is no integer.
fn ints(items: &Option<Vec<Reply>>) -> Option<Vec<Value>> {
    items
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|it| it.as_int().map(Value::Int))
        .collect()
}

/// The completion value of a single-read `txn` that read `list`: `[[r k list]]`.
pub fn txn_read(op: &Invocation, list: Vec<Value>) -> Option<Value> {
    let (f, k, _) = op.single_mop()?;
    Some(Value::List(vec![Value::List(vec![
        Value::str(f),
        k.clone(),
        Value::List(list),
    ])]))
}

/// The value of a `leader` probe's `ok` completion.
pub fn role_value(role: &RoleInfo) -> Value {
    let mut m = vec![
        (Value::str("role"), Value::str(&role.role)),
        (
            Value::str("term"),
            role.term.map(Value::Int).unwrap_or(Value::Nil),
        ),
        (
            Value::str("leader"),
            role.leader.as_deref().map(Value::str).unwrap_or(Value::Nil),
        ),
    ];
    // The replication indices, when the system reports them: the convergence checker reads
    // whether a follower catches up after the faults.
    for (k, v) in [("applied", role.applied), ("committed", role.committed)] {
        if let Some(v) = v {
            m.push((Value::str(k), Value::Int(v)));
        }
    }
    Value::Map(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(mops: &[(&str, i64, Option<i64>)]) -> Invocation {
        Invocation::new(
            vocab::TXN,
            Value::List(
                mops.iter()
                    .map(|(f, k, v)| {
                        Value::List(vec![
                            Value::str(f),
                            Value::Int(*k),
                            v.map(Value::Int).unwrap_or(Value::Nil),
                        ])
                    })
                    .collect(),
            ),
        )
    }

    fn bulks(xs: &[i64]) -> Reply {
        Reply::Array(Some(
            xs.iter()
                .map(|x| Reply::Bulk(Some(x.to_string().into_bytes())))
                .collect(),
        ))
    }

    #[test]
    fn txn_values_from_single_replies_and_a_commits_array() {
        let no_role = |_: &Reply| None;
        let append = txn(&[("append", 1, Some(5))]);
        assert_eq!(
            ok_value(&append, &Reply::Int(3), no_role),
            Some(append.value.clone())
        );
        let read = txn(&[("r", 1, None)]);
        let want = |xs: Vec<Value>| {
            Value::List(vec![Value::List(vec![
                Value::str("r"),
                Value::Int(1),
                Value::List(xs),
            ])])
        };
        assert_eq!(
            ok_value(&read, &bulks(&[4, 5]), no_role),
            Some(want(vec![Value::Int(4), Value::Int(5)]))
        );
        assert_eq!(
            ok_value(&read, &Reply::Array(None), no_role),
            Some(want(vec![]))
        );
        // A reply of the wrong shape makes no sense for the op.
        assert_eq!(ok_value(&read, &Reply::Int(1), no_role), None);
        assert_eq!(ok_value(&append, &bulks(&[1]), no_role), None);
        // Several micro-ops: one reply each, in order; an error among them: no value.
        let both = txn(&[("append", 1, Some(6)), ("r", 1, None)]);
        let r = Reply::Array(Some(vec![Reply::Int(1), bulks(&[6])]));
        assert_eq!(
            ok_value(&both, &r, no_role),
            Some(Value::List(vec![
                Value::List(vec![Value::str("append"), Value::Int(1), Value::Int(6)]),
                Value::List(vec![
                    Value::str("r"),
                    Value::Int(1),
                    Value::List(vec![Value::Int(6)]),
                ]),
            ]))
        );
        let r = Reply::Array(Some(vec![Reply::Error("WRONGTYPE".into()), bulks(&[6])]));
        assert_eq!(ok_value(&both, &r, no_role), None);
    }

    #[test]
    fn digests_are_maps_of_key_and_hash() {
        let no_role = |_: &Reply| None;
        let digest = Invocation::new(vocab::DIGEST, Value::Nil);
        let bulk = |s: &str| Reply::Bulk(Some(s.as_bytes().to_vec()));
        let pairs = Reply::Array(Some(vec![
            bulk("ids"),
            bulk("0a1b"),
            bulk("s"),
            bulk("ff00"),
        ]));
        assert_eq!(
            ok_value(&digest, &pairs, no_role),
            Some(Value::Map(vec![
                (Value::str("ids"), Value::str("0a1b")),
                (Value::str("s"), Value::str("ff00")),
            ]))
        );
        // One hash of it all (Redis's DEBUG DIGEST) is the key `*`.
        assert_eq!(
            ok_value(&digest, &Reply::Simple("9f3c".into()), no_role),
            Some(Value::Map(vec![(Value::str("*"), Value::str("9f3c"))]))
        );
        // An odd count is no digest.
        let odd = Reply::Array(Some(vec![bulk("ids")]));
        assert_eq!(ok_value(&digest, &odd, no_role), None);
    }
}
