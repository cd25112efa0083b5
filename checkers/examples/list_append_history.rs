//! Writes a valid (strict-serializable) list-append history of N transactions as JSONL, for
//! the list-append checker's benchmark: 10 processes, each txn 1 to 4 micro-ops (appends of
//! unique values and whole-list reads) over a window of 8 active keys, each retired after 32
//! appends (Elle's default max-writes-per-key). Transactions take effect at their completion,
//! so the history is valid; `--stale N` makes every N-th read miss the key's last append (a
//! stale read) for an invalid one.
//!
//!   cargo run --release -p checkers --example list_append_history -- 1000000 > h.jsonl

use std::io::{BufWriter, Write};
use std::sync::Arc;

use history::{Op, OpType, Process, Value};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let stale: Option<u64> = match (args.next().as_deref(), args.next()) {
        (Some("--stale"), Some(k)) => k.parse().ok(),
        _ => None,
    };
    let out = std::io::stdout().lock();
    let mut w = history::jsonl::Writer::new(BufWriter::with_capacity(1 << 20, out));
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let processes = 10u64;
    let mut lists: Vec<Vec<i64>> = vec![Vec::new(); 8];
    let mut keys: Vec<i64> = (0..8).collect();
    let mut next_key = 8i64;
    let mut next_value = 1i64;
    let mut index = 0u64;
    let mut reads = 0u64;
    // Each process has one txn in flight: (micro-ops as invoked).
    let mut open: Vec<Option<Vec<(bool, usize, i64)>>> = vec![None; processes as usize];
    let mut emitted = 0u64;
    let op = |index: u64, p: u64, kind: OpType, value: Value| Op {
        index,
        time: Some(index * 1_000),
        process: Process::Client(p),
        kind,
        f: Arc::from("txn"),
        key: None,
        value,
        node: None,
        error: None,
    };
    while emitted < n || open.iter().any(Option::is_some) {
        let p = (next() % processes) as usize;
        match open[p].take() {
            None if emitted < n => {
                let mut mops = Vec::new();
                for _ in 0..1 + next() % 4 {
                    let slot = (next() % 8) as usize;
                    let append = next() % 2 == 0;
                    mops.push((append, slot, if append { next_value } else { 0 }));
                    if append {
                        next_value += 1;
                    }
                }
                let value = Value::List(
                    mops.iter()
                        .map(|(append, slot, v)| {
                            let k = Value::Int(keys[*slot]);
                            if *append {
                                Value::List(vec!["append".into(), k, Value::Int(*v)])
                            } else {
                                Value::List(vec!["r".into(), k, Value::Nil])
                            }
                        })
                        .collect(),
                );
                w.append(&op(index, p as u64, OpType::Invoke, value))
                    .unwrap();
                index += 1;
                emitted += 1;
                open[p] = Some(mops);
            }
            None => {}
            Some(mops) => {
                // Takes effect now, atomically.
                let mut done = Vec::new();
                for (append, slot, v) in &mops {
                    let k = Value::Int(keys[*slot]);
                    if *append {
                        lists[*slot].push(*v);
                        done.push(Value::List(vec!["append".into(), k, Value::Int(*v)]));
                    } else {
                        reads += 1;
                        let l = &lists[*slot];
                        let seen = match stale {
                            Some(every) if reads % every == 0 && !l.is_empty() => &l[..l.len() - 1],
                            _ => &l[..],
                        };
                        done.push(Value::List(vec![
                            "r".into(),
                            k,
                            Value::List(seen.iter().map(|x| Value::Int(*x)).collect()),
                        ]));
                    }
                }
                w.append(&op(index, p as u64, OpType::Ok, Value::List(done)))
                    .unwrap();
                index += 1;
                for slot in 0..8 {
                    if lists[slot].len() >= 32 {
                        lists[slot].clear();
                        keys[slot] = next_key;
                        next_key += 1;
                    }
                }
            }
        }
    }
    w.flush().unwrap();
    let _ = std::io::stderr().flush();
}
