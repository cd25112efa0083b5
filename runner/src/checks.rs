//! The checkers a run gets: its workloads' models in the one suite `check` and `report`
//! also use (`checkers::suite`), with the leader checkers and `stats`.

use std::time::Duration;

use checkers::CheckResult;
use checkers::list_append::Consistency;
use checkers::suite::{Model, Suite};
use history::History;
use workloads::{ReadFrom, Workload};

/// The model a workload's history is checked against.
pub fn model(w: Workload) -> Model {
    match w {
        Workload::Set => Model::Set,
        Workload::UniqueIds => Model::UniqueIds,
        Workload::Register => Model::CasRegister,
        Workload::ListAppend => Model::ListAppend,
    }
}

/// The model list-append transactions are held to when reads go to `reads`: strict
/// serializability from the leader; from followers, real time between processes is given
/// up (a follower may lag) but each process's own order is not (sessions).
pub fn consistency(reads: ReadFrom) -> Consistency {
    match reads {
        ReadFrom::Leader => Consistency::StrictSerializable,
        ReadFrom::Followers | ReadFrom::Any => Consistency::StrongSessionSerializable,
    }
}

/// Runs the checkers for `workloads` over `history`.
pub fn check(
    history: &History,
    workloads: &[Workload],
    reads: ReadFrom,
    budget: Duration,
) -> Vec<CheckResult> {
    let mut suite =
        Suite::for_run(workloads.iter().map(|&w| model(w)).collect()).with_budget(budget);
    suite.consistency = consistency(reads);
    suite.run(history)
}
