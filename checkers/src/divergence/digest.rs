//! The final state compared key by key: each node's last `digest` (a map of key to a
//! fingerprint of its value, read once the cluster has caught up) against the fingerprint
//! most nodes hold for that key. It finds what the set's final reads cannot: keys whose values
//! agree while their other columns do not (a write time evaluated on each replica), keys the
//! set workload never touches.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;

use history::{History, OpType, Value, vocab};

use super::{at, final_phase};
use crate::result::kind;
use crate::{Anomaly, CheckResult};

/// Keys named in an anomaly's story and details.
const SAMPLE: usize = 10;

/// One node's final digest.
struct Final {
    index: u64,
    time: Option<u64>,
    keys: BTreeMap<String, String>,
}

/// The key's text in a digest map.
fn text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        v => v.to_string(),
    }
}

/// Compares the nodes' final digests into `result` (stats under `digest_*`, one `divergence`
/// anomaly per node that differs); whether two or more nodes' digests were compared.
pub(super) fn check(history: &History, result: &mut CheckResult, limit: usize) -> bool {
    let start = final_phase(history, |f| vocab::WRITE_FS.contains(&f));
    let mut finals: BTreeMap<Arc<str>, Final> = BTreeMap::new();
    for (pos, invoke, done) in history.client_pairs() {
        let Some(done) = done else { continue };
        if pos < start || *invoke.f != *vocab::DIGEST || done.kind != OpType::Ok {
            continue;
        }
        let (Some(node), Value::Map(pairs)) = (done.node.clone(), &done.value) else {
            continue;
        };
        let keys = pairs.iter().map(|(k, h)| (text(k), text(h))).collect();
        finals.insert(
            node,
            Final {
                index: done.index,
                time: done.time,
                keys,
            },
        );
    }
    if finals.is_empty() {
        return false;
    }
    result.stat("digest_nodes_read", finals.len() as u64);
    if finals.len() < 2 {
        return false;
    }

    // Per key, the fingerprint most nodes hold (ties: a present one, then the smaller text).
    let all_keys: BTreeSet<&String> = finals.values().flat_map(|f| f.keys.keys()).collect();
    let mut reference: BTreeMap<&String, Option<&String>> = BTreeMap::new();
    for k in &all_keys {
        let mut counts: BTreeMap<Option<&String>, usize> = BTreeMap::new();
        for f in finals.values() {
            *counts.entry(f.keys.get(*k)).or_default() += 1;
        }
        let best = counts
            .into_iter()
            .max_by_key(|(h, n)| (*n, h.is_some(), std::cmp::Reverse(*h)))
            .map(|(h, _)| h)
            .unwrap_or_default();
        reference.insert(k, best);
    }
    result.stat("digest_keys", all_keys.len() as u64);

    let mut per_node = Vec::new();
    let mut differing: BTreeMap<&Arc<str>, Vec<&String>> = BTreeMap::new();
    for (node, f) in &finals {
        let keys: Vec<&String> = all_keys
            .iter()
            .filter(|k| f.keys.get(**k) != reference[**k])
            .copied()
            .collect();
        per_node.push(json!({
            "node": &**node,
            "keys": f.keys.len(),
            "differing_keys": keys.len(),
            "digest_op": f.index,
        }));
        if !keys.is_empty() {
            differing.insert(node, keys);
        }
    }
    result.stat("final_digests", per_node);

    for (node, keys) in differing {
        let f = &finals[node];
        let agree = |k: &String| -> Vec<&str> {
            finals
                .iter()
                .filter(|(_, o)| o.keys.get(k) == reference[k])
                .map(|(n, _)| &**n)
                .collect()
        };
        let show = |h: Option<&String>| h.map_or("nothing".to_owned(), |h| h.clone());
        let named: Vec<String> = keys
            .iter()
            .take(SAMPLE)
            .map(|k| {
                format!(
                    "{k} ({node} holds {}, {} hold {})",
                    show(f.keys.get(*k)),
                    agree(k).join(", "),
                    show(reference[*k])
                )
            })
            .collect();
        let more = keys.len().saturating_sub(SAMPLE);
        let story = format!(
            "after the last fault and write, {node}'s state digest ({}) differs from what most \
             nodes hold in {} of {} key(s): {}{}; the replicas disagree for good",
            at(f.index, f.time),
            keys.len(),
            all_keys.len(),
            named.join("; "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
        let mut cited: Vec<u64> = vec![f.index];
        cited.extend(
            keys.first()
                .and_then(|k| agree(k).first().map(|n| finals[*n].index)),
        );
        cited.sort_unstable();
        cited.dedup();
        result.push(
            Anomaly {
                kind: kind::DIVERGENCE,
                ops: cited,
                explanation: story,
                details: json!({
                    "node": &**node,
                    "keys": keys.iter().take(SAMPLE).collect::<Vec<_>>(),
                    "differing_keys": keys.len(),
                    "of_keys": all_keys.len(),
                    "digest": true,
                }),
            },
            limit,
        );
    }
    true
}
