//! Which checkers a run gets: per workload (set, unique-ids, cas-register linearizability),
//! always `stats`, and the leader checkers (`dual-leader`, `failover`) over the probes; then
//! every anomaly's explanation gets its fault context (`checkers::explain`).

use std::time::Duration;

use checkers::{CheckResult, Checker};
use history::{History, Op};
use workloads::Workload;

/// Runs the checkers for `workloads` over `history`.
pub fn check(history: &History, workloads: &[Workload], budget: Duration) -> Vec<CheckResult> {
    let mixed = workloads.contains(&Workload::Register) && workloads.len() > 1;
    let mut results = Vec::new();
    for w in workloads {
        let r = match w {
            Workload::Set => {
                let c = checkers::set::Set::default();
                if mixed {
                    // Register reads carry a key; the set's reads do not.
                    subset(history, |op| op.key.is_none()).map(|h| c.check(&h))
                } else {
                    Ok(c.check(history))
                }
            }
            Workload::UniqueIds => Ok(checkers::unique_ids::UniqueIds::default().check(history)),
            Workload::Register => {
                let c = checkers::linearizable::Linearizable::new(
                    checkers::linearizable::ModelKind::CasRegister,
                )
                .with_nil_read_is_unknown(false)
                .with_budget(budget);
                let regf = |op: &Op| {
                    !op.is_client()
                        || (op.key.is_some() && matches!(&*op.f, "read" | "write" | "cas"))
                };
                subset(history, regf).map(|h| c.check(&h))
            }
        };
        results.push(r.unwrap_or_else(|e| CheckResult::unknown("history", e)));
    }
    results.push(checkers::dual_leader::DualLeader::default().check(history));
    results.push(checkers::failover::Failover::default().check(history));
    results.push(checkers::stats::Stats.check(history));
    checkers::explain::enrich(history, &mut results);
    results
}

/// The ops of `history` that `keep` accepts, as a history of their own (indices kept).
fn subset(history: &History, keep: impl Fn(&Op) -> bool) -> Result<History, String> {
    let ops: Vec<Op> = history.ops().iter().filter(|o| keep(o)).cloned().collect();
    History::new(ops).map_err(|e| format!("failed to pair ops: {e}"))
}
