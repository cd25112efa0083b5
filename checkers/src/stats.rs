//! The `stats` checker: outcome counts per function, latency quantiles, throughput.
//! Like Jepsen's, it is invalid when some client function never succeeded at all: a
//! workload whose reads all failed proves nothing about the writes.

use std::collections::BTreeMap;

use serde_json::json;

use history::{History, OpType};

use crate::result::{DEFAULT_LIMIT, kind};
use crate::{Anomaly, CheckResult, Checker};

#[derive(Clone, Debug, Default)]
pub struct Stats;

#[derive(Default)]
struct PerF {
    ok: u64,
    fail: u64,
    info: u64,
    latencies_ns: Vec<u64>,
    first_invoke: Option<u64>,
}

impl Checker for Stats {
    fn name(&self) -> &'static str {
        "stats"
    }

    fn check(&self, history: &History) -> CheckResult {
        let mut per_f: BTreeMap<&str, PerF> = BTreeMap::new();
        for (_, inv, done) in history.client_pairs() {
            let e = per_f.entry(&inv.f).or_default();
            e.first_invoke.get_or_insert(inv.index);
            match done.map(|d| d.kind) {
                Some(OpType::Ok) => e.ok += 1,
                Some(OpType::Fail) => e.fail += 1,
                _ => e.info += 1,
            }
            if let (Some(d), Some(t0)) = (done, inv.time) {
                if let Some(t1) = d.time {
                    e.latencies_ns.push(t1.saturating_sub(t0));
                }
            }
        }
        let mut r = CheckResult::new("stats");
        let mut by_f = serde_json::Map::new();
        for (f, mut e) in per_f {
            e.latencies_ns.sort_unstable();
            let q = |p: f64| -> Option<f64> {
                let n = e.latencies_ns.len();
                (n > 0).then(|| e.latencies_ns[((n - 1) as f64 * p).round() as usize] as f64 / 1e6)
            };
            by_f.insert(
                f.to_owned(),
                json!({
                    "ok": e.ok, "fail": e.fail, "info": e.info,
                    "latency_ms": { "p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": q(1.0) },
                }),
            );
            if e.ok == 0 {
                r.push(
                    Anomaly {
                        kind: kind::NEVER_OK,
                        ops: e.first_invoke.into_iter().collect(),
                        explanation: format!(
                            "no {f} op succeeded ({} failed, {} unknown): the run says nothing about what {f} should have shown",
                            e.fail, e.info
                        ),
                        details: json!({ "f": f }),
                    },
                    DEFAULT_LIMIT,
                );
            }
        }
        let span = history
            .ops()
            .iter()
            .filter_map(|o| o.time)
            .fold(None, |acc: Option<(u64, u64)>, t| {
                Some(acc.map_or((t, t), |(a, b)| (a.min(t), b.max(t))))
            });
        let ok: u64 = by_f.values().filter_map(|v| v["ok"].as_u64()).sum();
        if let Some((a, b)) = span {
            let secs = (b - a) as f64 / 1e9;
            r.stat("duration_s", secs);
            if secs > 0.0 {
                r.stat("ok_per_s", ok as f64 / secs);
            }
        }
        r.stat("by_f", serde_json::Value::Object(by_f));
        r.stat("ops", history.len() as u64);
        r
    }
}
