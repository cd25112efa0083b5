//! The checkers a run gets: its workloads' models in the one suite `check` and `report`
//! also use (`checkers::suite`), with the leader checkers and `stats`.

use std::time::Duration;

use checkers::CheckResult;
use checkers::suite::{Model, Suite};
use history::History;
use workloads::Workload;

/// The model a workload's history is checked against.
pub fn model(w: Workload) -> Model {
    match w {
        Workload::Set => Model::Set,
        Workload::UniqueIds => Model::UniqueIds,
        Workload::Register => Model::CasRegister,
    }
}

/// Runs the checkers for `workloads` over `history`.
pub fn check(history: &History, workloads: &[Workload], budget: Duration) -> Vec<CheckResult> {
    Suite::for_run(workloads.iter().map(|&w| model(w)).collect())
        .with_budget(budget)
        .run(history)
}
