//! The one checker suite of `test`, `check` and `report`: what a census infers, that the
//! leader checkers run when the history has probes, and that each finds what it should.

mod timed;

use checkers::CheckResult;
use checkers::suite::{Census, Model, Suite};
use history::{OpType, Validity};
use timed::Timed;

/// n1 and n2 both provably lead from 160 to 250 ms; add 7 is acknowledged by n2 and lost.
fn split_brain() -> history::History {
    let mut t = Timed::default();
    for s in [0.0, 100.0, 200.0, 300.0] {
        t.probe(1, "n1", s, s + 10.0, "leader", 1);
    }
    t.probe(2, "n2", 150.0, 160.0, "leader", 2);
    t.probe(2, "n2", 250.0, 260.0, "leader", 2);
    t.add(3, "n1", 170.0, 180.0, 1, OpType::Ok);
    t.add(4, "n2", 190.0, 200.0, 7, OpType::Ok);
    t.nemesis(
        "start-partition",
        120.0,
        130.0,
        serde_json::json!({"n1": ["n2"], "n2": ["n1"]}),
    );
    t.read(3, "n1", 400.0, 410.0, &[1]);
    t.build()
}

fn names(r: &[CheckResult]) -> Vec<&'static str> {
    r.iter().map(|r| r.checker).collect()
}

fn invalid(r: &[CheckResult]) -> Vec<&'static str> {
    r.iter()
        .filter(|r| r.valid == Validity::Invalid)
        .map(|r| r.checker)
        .collect()
}

#[test]
fn a_census_infers_the_models_and_the_leader_checkers() {
    let h = split_brain();
    let c = Census::of(&h);
    assert_eq!(c.models(), vec![Model::Set]);
    assert!(c.leader && c.nemesis);
    let s = Suite::inferred(&c);
    assert!(s.leader && s.needs_history(&c));
    let r = s.run(&h);
    assert_eq!(
        names(&r),
        [
            "set",
            "dual-leader",
            "failover",
            "convergence",
            "divergence",
            "stats"
        ]
    );
    assert_eq!(invalid(&r), ["set", "dual-leader"]);
    // The fault context is added to every anomaly.
    let lost = &r[0].anomalies[0];
    assert!(lost.explanation.contains("7"), "{}", lost.explanation);
}

#[test]
fn without_probes_there_are_no_leader_checkers_and_a_set_streams() {
    let mut t = Timed::default();
    t.add(0, "n1", 0.0, 1.0, 1, OpType::Ok);
    t.read(0, "n1", 2.0, 3.0, &[]);
    let h = t.build();
    let c = Census::of(&h);
    let s = Suite {
        stats: false,
        ..Suite::inferred(&c)
    };
    assert!(!s.leader && !s.needs_history(&c));
    assert_eq!(invalid(&s.run(&h)), ["set"]);
}

#[test]
fn streamed_results_are_reused_not_recomputed() {
    let h = split_brain();
    let s = Suite::for_run(vec![Model::Set]);
    let r = s.run_with(&h, vec![CheckResult::unknown("set", "streamed")]);
    assert_eq!(r[0].reason.as_deref(), Some("streamed"));
    let only = s.streamed_only(vec![CheckResult::unknown("set", "x")]);
    assert_eq!(names(&only), ["set"]);
}
