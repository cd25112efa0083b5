//! What a write command does: its row records (the effect on the state) and its reply,
//! evaluated against a view of the state. The leader evaluates every write this way; in
//! statement mode every node evaluates each logged statement again when it applies it.

use bytes::Bytes;

use crate::codec::Record;
use crate::resp::Reply;
use crate::state::{View, WrongType};

/// The write commands and whether `a` (the arguments after the command) fits them.
pub fn arity_ok(cmd: &str, a: &[Bytes]) -> bool {
    match cmd {
        "SET" => a.len() == 2,
        "CAS" => a.len() == 3,
        "SADD" | "RPUSH" => a.len() >= 2,
        _ => a.len() == 1,
    }
}

pub(crate) fn wrongtype() -> Reply {
    Reply::err("WRONGTYPE Operation against a key holding the wrong kind of value")
}

/// The records and the reply of write `cmd` (upper case, arity checked) on `view`; `Err` is a
/// refusal that changes nothing. `INCR` counts from `counter` when given (the local-counter
/// bug's node-local value) instead of from the stored one.
pub fn eval(
    view: &View,
    cmd: &str,
    a: &[Bytes],
    counter: Option<i64>,
) -> Result<(Vec<Record>, Reply), Reply> {
    let key = a[0].clone();
    Ok(match cmd {
        "SET" => (
            vec![Record::Set {
                key,
                value: a[1].clone(),
            }],
            Reply::ok(),
        ),
        "CAS" => match view.string(&key) {
            Err(WrongType) => return Err(wrongtype()),
            Ok(cur) if cur.as_deref() != Some(&a[1][..]) => {
                return Err(Reply::err("CASMISMATCH current value differs"));
            }
            Ok(_) => (
                vec![Record::Set {
                    key,
                    value: a[2].clone(),
                }],
                Reply::ok(),
            ),
        },
        "SADD" => {
            let mut recs = Vec::new();
            for m in &a[1..] {
                match view.is_member(&key, m) {
                    Err(WrongType) => return Err(wrongtype()),
                    Ok(true) => {}
                    Ok(false)
                        if recs
                            .iter()
                            .any(|r| matches!(r, Record::SAdd { member, .. } if member == m)) => {}
                    Ok(false) => recs.push(Record::SAdd {
                        key: key.clone(),
                        member: m.clone(),
                    }),
                }
            }
            let n = recs.len() as i64;
            (recs, Reply::Int(n))
        }
        "RPUSH" => {
            let len = match view.list(&key) {
                Err(WrongType) => return Err(wrongtype()),
                Ok(l) => l.len() + a.len() - 1,
            };
            let recs = a[1..]
                .iter()
                .map(|v| Record::RPush {
                    key: key.clone(),
                    value: v.clone(),
                })
                .collect();
            (recs, Reply::Int(len as i64))
        }
        _ => {
            let cur = match view.string(&key) {
                Err(WrongType) => return Err(wrongtype()),
                Ok(None) => 0,
                Ok(Some(s)) => match std::str::from_utf8(&s)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(n) => n,
                    None => return Err(Reply::err("ERR value is not an integer or out of range")),
                },
            };
            let next = match counter {
                Some(c) => c,
                None => cur
                    .checked_add(1)
                    .ok_or_else(|| Reply::err("ERR increment would overflow"))?,
            };
            (
                vec![Record::Set {
                    key,
                    value: Bytes::from(next.to_string()),
                }],
                Reply::Int(next),
            )
        }
    })
}
