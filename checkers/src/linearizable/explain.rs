//! Turning a failed search into an [`Anomaly`] a person can follow: the op that could not be
//! linearized, the model states it could not be applied to, the ops concurrent with it, and
//! the shortest failing prefix of the history (everything up to that op's completion).

use serde_json::{Value as Json, json};

use history::{History, Op, Value};

use crate::result::{Anomaly, kind};

/// How many concurrent ops an anomaly lists.
const MAX_CONCURRENT: usize = 32;

/// What the search found, in history terms.
pub struct Failure<'a> {
    pub model: &'static str,
    pub key: Option<&'a Value>,
    /// History positions of the failing op's invocation and completion.
    pub invoke: usize,
    pub completion: usize,
    /// The model states the op could not be applied to.
    pub states: Vec<Value>,
    /// (invocation, completion) positions of the other ops of the same part.
    pub part_ops: &'a [(u32, Option<u32>)],
}

/// "process 3 read 2", "process 1 cas [0 1]", for messages.
pub fn describe(invoke: &Op, completion: Option<&Op>) -> String {
    let value = match completion {
        Some(c) if !c.value.is_nil() => &c.value,
        _ => &invoke.value,
    };
    let kind = completion.map_or("info", |c| c.kind.as_str());
    format!("process {} {} {} ({kind})", invoke.process, invoke.f, value)
}

fn list(values: &[Value]) -> String {
    let shown: Vec<String> = values.iter().map(Value::to_string).collect();
    shown.join(", ")
}

/// Builds the anomaly for one non-linearizable part.
pub fn anomaly(history: &History, f: &Failure<'_>) -> Anomaly {
    let ops = history.ops();
    let (Some(inv), Some(done)) = (ops.get(f.invoke), ops.get(f.completion)) else {
        return Anomaly {
            kind: kind::NONLINEARIZABLE,
            ops: Vec::new(),
            explanation: format!("the {} history is not linearizable", f.model),
            details: Json::Null,
        };
    };
    // Ops of the same key whose interval overlaps the failing op's.
    let mut concurrent: Vec<u64> = Vec::new();
    let mut concurrent_total = 0usize;
    for &(i, r) in f.part_ops {
        let (i, r) = (i as usize, r.map(|r| r as usize));
        let overlaps = i < f.completion && r.is_none_or(|r| r > f.invoke);
        if i == f.invoke || !overlaps {
            continue;
        }
        concurrent_total += 1;
        if concurrent.len() < MAX_CONCURRENT {
            concurrent.push(ops[i].index);
        }
    }
    let mut proof: Vec<u64> = vec![inv.index, done.index];
    proof.extend(concurrent.iter().copied());
    proof.sort_unstable();
    proof.dedup();

    let key = f.key.map(|k| format!(" key {k}")).unwrap_or_default();
    let first_index = ops.first().map_or(0, |o| o.index);
    let what = describe(inv, Some(done));
    let states = list(&f.states);
    let shown: Vec<String> = f
        .part_ops
        .iter()
        .filter(|(i, _)| concurrent.contains(&ops[*i as usize].index))
        .take(3)
        .map(|&(i, _)| {
            let i = i as usize;
            let done = history.partner(i).and_then(|p| ops.get(p));
            format!("op {}, {}", ops[i].index, describe(&ops[i], done))
        })
        .collect();
    let more = if concurrent_total > shown.len() {
        ", ..."
    } else {
        ""
    };
    let concurrency = match concurrent_total {
        0 => "no op ran concurrently with it".to_owned(),
        1 => format!("1 op ran concurrently with it: {}", shown.join("; ")),
        n => format!(
            "{n} ops ran concurrently with it: {}{more}",
            shown.join("; ")
        ),
    };
    let explanation = format!(
        "{model}{key}: op {a}..{b}, {what}, cannot be linearized. Whatever order the earlier \
         ops take effect in ({concurrency}), the {model} is in state {states} when this op \
         would have to take effect, and the op is impossible from there. The shortest \
         non-linearizable prefix of the history is ops {first_index}..={b} ({n} ops).",
        model = f.model,
        a = inv.index,
        b = done.index,
        n = f.completion + 1,
        states = if f.states.len() == 1 {
            states
        } else {
            format!("one of {{{states}}}")
        },
    );
    let details = json!({
        "model": f.model,
        "key": f.key.map(Value::to_json),
        "op": done,
        "invoke": inv,
        "states": f.states.iter().map(Value::to_json).collect::<Vec<_>>(),
        "concurrent": concurrent,
        "concurrent_count": concurrent_total,
        "prefix": { "first": first_index, "last": done.index, "ops": f.completion + 1 },
    });
    Anomaly {
        kind: kind::NONLINEARIZABLE,
        ops: proof,
        explanation,
        details,
    }
}
