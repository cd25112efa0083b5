//! The op functions (`f`) of faultline's workloads and leader probes, named once: the
//! workloads generate them, the clients translate them, the checkers read them.

/// Set workload: add an element.
pub const ADD: &str = "add";
/// Read the whole set, or a register (with a key).
pub const READ: &str = "read";
/// Register write (with a key).
pub const WRITE: &str = "write";
/// Register compare-and-set `[old new]` (with a key).
pub const CAS: &str = "cas";
/// Unique-ids workload: take the next id (faultline's own clients).
pub const INCR: &str = "incr";
/// Jepsen's unique-ids names.
pub const GENERATE: &str = "generate";
pub const INSERT: &str = "insert";
/// Multi-register transaction of `[:read k v]`/`[:write k v]` micro-ops (Knossos).
pub const TXN: &str = "txn";
/// Porcupine's string store.
pub const GET: &str = "get";
pub const PUT: &str = "put";
pub const APPEND: &str = "append";
/// The final state check: one node's whole state as key/fingerprint pairs (a map), read from
/// every node once the cluster has caught up, to find replicas that disagree.
pub const DIGEST: &str = "digest";
/// The leader probe: a node's own answer of who leads (`{"role", "term", "leader"}`).
pub const LEADER: &str = "leader";

/// A node's role as the probe reports it.
pub const ROLE_LEADER: &str = "leader";
pub const ROLE_FOLLOWER: &str = "follower";
pub const ROLE_CANDIDATE: &str = "candidate";

/// Functions that hand out an id (the unique-ids checker's input).
pub const ID_FS: [&str; 3] = [GENERATE, INSERT, INCR];

/// Functions whose `ok` means the answering node accepted a write (the dual-leader checker's
/// split-brain writes).
pub const WRITE_FS: [&str; 8] = [ADD, WRITE, CAS, INCR, GENERATE, INSERT, APPEND, PUT];

/// Functions that change nothing: a broken exchange of one of them failed, whatever the
/// server saw.
pub fn is_read(f: &str) -> bool {
    matches!(f, READ | GET | LEADER | DIGEST)
}

/// Whether a nemesis op begins or ends a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Start,
    Stop,
}

/// The nemesis op that heals every fault at once (Ctrl-C, the end of a run).
pub const HEAL_ALL: &str = "heal-all";

/// A nemesis-process op recording that a node's main process exited and no fault killed it
/// (`{"node": "n1", "on_exit": "restart"}`); not a fault faultline injected.
pub const PROCESS_EXIT: &str = "process-exit";
/// A nemesis-process op recording that faultline started a node's exited process again
/// (`{"node": "n1"}`).
pub const PROCESS_RESTART: &str = "process-restart";

/// Whether a nemesis-process op records what the system's processes did by themselves
/// (`process-exit`, `process-restart`) rather than a fault faultline injected.
pub fn is_process_event(f: &str) -> bool {
    matches!(f, PROCESS_EXIT | PROCESS_RESTART)
}

/// A nemesis op's function: `start-partition`, `stop-kill`, ...
pub fn nemesis_f(phase: Phase, kind: &str) -> String {
    match phase {
        Phase::Start => format!("start-{kind}"),
        Phase::Stop => format!("stop-{kind}"),
    }
}

/// The phase and fault kind of a nemesis op's function (`start-pause` -> Start, `pause`).
pub fn parse_nemesis_f(f: &str) -> Option<(Phase, &str)> {
    if let Some(k) = f.strip_prefix("start-") {
        Some((Phase::Start, k))
    } else {
        f.strip_prefix("stop-").map(|k| (Phase::Stop, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_functions_round_trip() {
        for phase in [Phase::Start, Phase::Stop] {
            let f = nemesis_f(phase, "partition");
            assert_eq!(parse_nemesis_f(&f), Some((phase, "partition")));
        }
        assert_eq!(parse_nemesis_f(HEAL_ALL), None);
        assert_eq!(parse_nemesis_f(LEADER), None);
    }
}
