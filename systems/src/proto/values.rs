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
        (vocab::READ, false, Reply::Array(items)) => {
            let mut out = Vec::new();
            for it in items.as_deref().unwrap_or_default() {
                out.push(Value::Int(it.as_int()?));
            }
            Some(Value::List(out))
        }
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
        (vocab::TXN, _, Reply::Array(Some(items))) if op.mops().count() > 1 => {
            txn_replies(op, items)
        }
        (vocab::TXN, _, Reply::Int(_)) if !op.is_read() => Some(op.value.clone()),
        (vocab::TXN, _, Reply::Array(items)) if op.is_read() => {
            let mut out = Vec::new();
            for it in items.as_deref().unwrap_or_default() {
                out.push(Value::Int(it.as_int()?));
            }
            txn_read(op, out)
        }
        (vocab::LEADER, _, r) => Some(role_value(&role(r)?)),
        _ => None,
    }
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
            ("r", Reply::Array(list)) => {
                let mut l = Vec::new();
                for it in list.as_deref().unwrap_or_default() {
                    l.push(Value::Int(it.as_int()?));
                }
                Value::List(l)
            }
            _ => return None,
        };
        out.push(Value::List(vec![Value::str(f), k.clone(), v]));
    }
    Some(Value::List(out))
}

/// The completion value of a single-read `txn` that read `list`: `[[r k list]]`.
pub fn txn_read(op: &Invocation, list: Vec<Value>) -> Option<Value> {
    let (f, k, _) = crate::file::client::txn_mop(op)?;
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
