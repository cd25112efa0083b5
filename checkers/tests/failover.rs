//! The failover checker and the fault context (`explain`) on hand-built histories.

mod timed;

use checkers::Checker;
use checkers::explain::{Context, faults};
use checkers::failover::Failover;
use checkers::result::kind;
use checkers::set::Set;
use history::{OpType, Validity};
use serde_json::json;
use timed::Timed;

/// Probes of n1..n3 every 100 ms over `[from, to)` ms, answering that `leader` leads `term`.
fn era(t: &mut Timed, from: f64, to: f64, leader: &str, term: i64) {
    let mut s = from;
    while s < to {
        for (p, n) in [(1, "n1"), (2, "n2"), (3, "n3")] {
            let role = if n == leader { "leader" } else { "follower" };
            t.probe_led(
                p,
                n,
                s + p as f64,
                s + p as f64 + 5.0,
                role,
                term,
                Some(leader),
            );
        }
        s += 100.0;
    }
}

/// Writes every 100 ms over `[from, to)` ms acknowledged by `node` (process 10).
fn writes(t: &mut Timed, from: f64, to: f64, node: &str, first: i64) {
    let mut s = from;
    let mut v = first;
    while s < to {
        t.add(10, node, s + 50.0, s + 60.0, v, OpType::Ok);
        s += 100.0;
        v += 1;
    }
}

/// n1 leads until it is cut off at 1000 ms; n2 acks from 2500 ms; healed at 5000 ms.
fn partition_run() -> Timed {
    let mut t = Timed::default();
    era(&mut t, 0.0, 1000.0, "n1", 1);
    writes(&mut t, 0.0, 1000.0, "n1", 0);
    t.nemesis(
        "start-partition",
        1000.0,
        1010.0,
        json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
    );
    // A write stuck on the old leader during the election.
    t.add(11, "n1", 1100.0, 2400.0, 99, OpType::Info);
    era(&mut t, 2000.0, 6000.0, "n2", 2);
    writes(&mut t, 2400.0, 6000.0, "n2", 100);
    t.nemesis(
        "stop-partition",
        5000.0,
        5010.0,
        json!({"n1": [], "n2": [], "n3": []}),
    );
    t
}

#[test]
fn failover_time_unavailability_and_convergence() {
    let h = partition_run().build();
    let r = Failover::default().check(&h);
    assert_eq!(r.valid, Validity::Valid, "{:#?}", r);
    assert_eq!(r.stats["fault_count"], 1);
    let f = &r.stats["faults"][0];
    assert_eq!(f["kind"], "partition");
    assert_eq!(f["leader_before"], "n1");
    assert_eq!(f["new_leader"], "n2");
    // First n2 ack at 2460 ms; the partition started at 1000 ms.
    assert_eq!(f["failover_s"], 1.46);
    assert_eq!(r.stats["failover_s"]["max"], 1.46);
    assert_eq!(r.stats["failover_s"]["median"], 1.46);
    // All three nodes name n2 once each has answered after the heal at 5010 ms.
    assert!(f["converge_s"].as_f64().unwrap() < 0.2, "{f}");
    // No ack between 960 ms and 2460 ms while writes were in flight.
    let gaps = r.stats["unavailable"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["start_s"], 0.96);
    assert_eq!(gaps[0]["end_s"], 2.46);
    assert_eq!(gaps[0]["faults"], json!(["partition"]));
    assert_eq!(r.stats["leader_changes"], 1);
    assert_eq!(r.stats["unnecessary_failovers"], 0);
}

#[test]
fn a_leader_change_without_a_fault_is_unnecessary() {
    let mut t = Timed::default();
    era(&mut t, 0.0, 1000.0, "n1", 1);
    era(&mut t, 1000.0, 2000.0, "n2", 2);
    writes(&mut t, 0.0, 2000.0, "n1", 0);
    let h = t.build();
    let r = Failover::default().check(&h);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.anomalies.len(), 1);
    let a = &r.anomalies[0];
    assert_eq!(a.kind, kind::UNNECESSARY_FAILOVER);
    assert_eq!(a.details["from"], "n1");
    assert_eq!(a.details["to"], "n2");
    assert!(a.explanation.contains("no fault was active"));
    for &i in &a.ops {
        assert_eq!(&*h.ops()[i as usize].f, "leader");
    }
}

#[test]
fn leader_changes_during_or_just_after_a_fault_are_explained() {
    // The partition run changes leader during the fault: nothing unnecessary.
    assert_eq!(
        Failover::default()
            .check(&partition_run().build())
            .anomaly_count,
        0
    );
    // A change 2 s after a (pause) fault healed: within the 5 s grace.
    let mut t = Timed::default();
    era(&mut t, 0.0, 1000.0, "n1", 1);
    t.nemesis(
        "start-pause",
        100.0,
        110.0,
        json!({"id": 1, "nodes": ["n3"]}),
    );
    t.nemesis(
        "stop-pause",
        200.0,
        210.0,
        json!({"id": 1, "nodes": ["n3"]}),
    );
    era(&mut t, 2200.0, 3000.0, "n2", 2);
    let r = Failover::default().check(&t.build());
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
    // With no grace it is unnecessary.
    let strict = Failover {
        grace: 0,
        ..Failover::default()
    };
    assert_eq!(strict.check(&t.build()).anomaly_count, 1);
}

#[test]
fn unhealed_faults_and_empty_histories() {
    let mut t = Timed::default();
    era(&mut t, 0.0, 500.0, "n1", 1);
    t.nemesis(
        "start-kill",
        100.0,
        110.0,
        json!({"id": 4, "nodes": ["n1"]}),
    );
    let h = t.build();
    let w = faults(&h);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].end, None);
    assert_eq!(w[0].what(), "n1 was killed");
    let r = Failover::default().check(&h);
    assert_eq!(r.stats["faults"][0]["converge_s"], json!(null));
    assert_eq!(r.stats["faults"][0]["failover_s"], json!(null));
    let r = Failover::default().check(&Timed::default().build());
    assert_eq!(r.valid, Validity::Unknown);
}

#[test]
fn heal_all_closes_every_fault_and_stops_match_by_id() {
    let mut t = Timed::default();
    t.nemesis("start-pause", 0.0, 1.0, json!({"id": 1, "nodes": ["n1"]}));
    t.nemesis("start-pause", 2.0, 3.0, json!({"id": 2, "nodes": ["n2"]}));
    t.nemesis("stop-pause", 10.0, 11.0, json!({"id": 2, "nodes": ["n2"]}));
    t.nemesis(
        "start-loss",
        12.0,
        13.0,
        json!({"id": 3, "nodes": ["n1", "n2", "n3"], "probability": 0.2}),
    );
    t.nemesis("heal-all", 20.0, 21.0, json!([]));
    let w = faults(&t.build());
    assert_eq!(w.len(), 3);
    assert_eq!(
        (w[0].end, w[1].end, w[2].end),
        (Some(21_000_000), Some(11_000_000), Some(21_000_000))
    );
    assert_eq!(w[2].what(), "n1..n3 were losing packets");
}

#[test]
fn context_names_the_partition_and_the_next_leader() {
    // A lost write: acked by the cut-off old leader, absent from the final reads.
    let mut t = Timed::default();
    era(&mut t, 0.0, 1000.0, "n1", 1);
    t.nemesis(
        "start-partition",
        1000.0,
        1010.0,
        json!({"n1": ["n2", "n3", "n4", "n5"], "n2": ["n1"], "n3": ["n1"], "n4": ["n1"], "n5": ["n1"]}),
    );
    t.add(10, "n1", 1200.0, 1300.0, 4121, OpType::Ok);
    era(&mut t, 1500.0, 2000.0, "n3", 2);
    t.add(11, "n3", 1700.0, 1710.0, 5, OpType::Ok);
    for (p, n) in [(20, "n1"), (21, "n2"), (22, "n3")] {
        t.read(p, n, 1800.0, 1810.0, &[5]);
    }
    let h = t.build();
    let ctx = Context::new(&h);
    let phrase = ctx.at(1_250_000_000, Some("n1")).unwrap();
    assert_eq!(
        phrase,
        "while n1 was cut off from n2..n5 (partition started 1.000 s); n3 led from 1.508 s"
    );
    assert_eq!(ctx.at(500_000_000, None), None);
    let mut results = vec![Set::default().check(&h)];
    assert_eq!(results[0].anomalies[0].kind, kind::LOST_WRITE);
    ctx.enrich(&h, &mut results);
    let a = &results[0].anomalies[0];
    assert!(
        a.explanation.contains("cut off from n2..n5"),
        "{}",
        a.explanation
    );
    assert_eq!(a.details["context"], phrase);
    // Idempotent.
    let before = a.explanation.clone();
    ctx.enrich(&h, &mut results);
    assert_eq!(results[0].anomalies[0].explanation, before);
}

/// n1 claims to lead (term 1) until 12000 ms, n2 (term 2) from 2000 ms to 15000 ms.
fn late_demotion_probes(t: &mut Timed) {
    let mut s = 0.0;
    while s < 15000.0 {
        let n1 = if s < 12000.0 { "leader" } else { "follower" };
        t.probe_led(1, "n1", s + 1.0, s + 6.0, n1, 1, Some("n1"));
        if s >= 2000.0 {
            t.probe_led(2, "n2", s + 2.0, s + 7.0, "leader", 2, Some("n2"));
        }
        s += 100.0;
    }
}

#[test]
fn an_old_leader_demoted_late_after_a_heal_is_no_unnecessary_failover() {
    // Redis + Sentinel's shape: n1 is cut off at 1000 ms and n2 elected (from 2000 ms); the
    // partition heals at 5000 ms, but n1 goes on claiming until Sentinel demotes it at
    // 12000 ms, past the 5 s grace. The failover happened during the fault; its tail is not
    // a second, unforced one.
    let mut t = Timed::default();
    t.nemesis(
        "start-partition",
        1000.0,
        1010.0,
        json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
    );
    t.nemesis(
        "stop-partition",
        5000.0,
        5010.0,
        json!({"n1": [], "n2": [], "n3": []}),
    );
    late_demotion_probes(&mut t);
    writes(&mut t, 0.0, 1000.0, "n1", 0);
    writes(&mut t, 2500.0, 15000.0, "n2", 100);
    let r = Failover::default().check(&t.build());
    assert_eq!(r.stats["unnecessary_failovers"], 0, "{:#?}", r.anomalies);
    assert_eq!(r.valid, Validity::Valid, "{:#?}", r.anomalies);

    // The same change with no fault at all is still unnecessary.
    let mut t = Timed::default();
    late_demotion_probes(&mut t);
    let r = Failover::default().check(&t.build());
    assert_eq!(r.stats["unnecessary_failovers"], 1, "{:#?}", r.anomalies);
}
