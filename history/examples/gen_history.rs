//! Writes a synthetic JSONL history for benchmarks: `gen_history OPS PATH [--lose N]`.
//!
//! Half the ops (minus the final reads) are `add`/`incr` invocations and completions from 50
//! clients, interleaved; then 5 final reads of the whole set, one per node. `--lose N` drops
//! N acknowledged adds from the final reads so the checker has something to find.

use std::fs::File;
use std::io::BufWriter;

use history::jsonl::Writer;
use history::{Op, OpType, Process, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gen_history OPS PATH [--lose N]");
        std::process::exit(254);
    }
    let total: u64 = args[1].parse().expect("OPS must be a number");
    let lose: usize = match args.get(3).map(String::as_str) {
        Some("--lose") => args[4].parse().expect("N must be a number"),
        _ => 0,
    };
    let file = File::create(&args[2]).expect("failed to create the output file");
    let mut w = Writer::new(BufWriter::with_capacity(1 << 20, file));
    let nodes: Vec<std::sync::Arc<str>> = (1..=5).map(|i| format!("n{i}").into()).collect();
    let clients = 50u64;
    let final_reads = 5u64;
    let pairs = (total - 2 * final_reads) / 2;
    let mut index = 0u64;
    let mut added = Vec::with_capacity(pairs as usize);
    let mut emit =
        |w: &mut Writer<_>, process, kind, f: &str, value: Value, node: &std::sync::Arc<str>| {
            let op = Op {
                index,
                time: Some(index * 10_000),
                process: Process::Client(process),
                kind,
                f: f.into(),
                key: None,
                value,
                node: Some(node.clone()),
                error: None,
            };
            index += 1;
            w.append(&op).expect("failed to write");
        };
    // Clients run in rounds: 50 invocations, then their 50 completions.
    let mut i = 0u64;
    let mut next_id = 0i64;
    while i < pairs {
        let round = clients.min(pairs - i);
        for c in 0..round {
            let n = &nodes[(c % 5) as usize];
            let (f, v) = if (i + c) % 5 == 4 {
                ("incr", Value::Nil)
            } else {
                ("add", Value::Int((i + c) as i64))
            };
            emit(&mut w, c, OpType::Invoke, f, v, n);
        }
        for c in 0..round {
            let n = &nodes[(c % 5) as usize];
            if (i + c) % 5 == 4 {
                next_id += 1;
                emit(&mut w, c, OpType::Ok, "incr", Value::Int(next_id), n);
            } else {
                let v = (i + c) as i64;
                added.push(v);
                emit(&mut w, c, OpType::Ok, "add", Value::Int(v), n);
            }
        }
        i += round;
    }
    let kept: Vec<Value> = added.iter().skip(lose).map(|&v| Value::Int(v)).collect();
    let all = Value::List(kept);
    for r in 0..final_reads {
        let n = &nodes[r as usize];
        emit(&mut w, 1000 + r, OpType::Invoke, "read", Value::Nil, n);
        emit(&mut w, 1000 + r, OpType::Ok, "read", all.clone(), n);
    }
    w.flush().expect("failed to write");
    eprintln!(
        "wrote {index} ops ({} adds, {} lost) to {}",
        added.len(),
        lose.min(added.len()),
        args[2]
    );
}
