//! The divergence checker on hand-built histories: a node whose final read lacks elements the
//! others hold is `divergence` (named, with what it lacks and since which op), so is one with
//! elements the others lack; agreeing nodes, reads during the workload or before the last
//! fault, and a single node read are not.

mod timed;

use checkers::Checker;
use checkers::divergence::Divergence;
use checkers::result::kind;
use history::{OpType, Validity};
use serde_json::json;
use timed::Timed;

/// Adds 1..=10 on n1 (10 ms apart), a partition healed at 200 ms, then final reads of
/// `finals` (node, elements) from 300 ms on.
fn run(finals: &[(&str, &[i64])]) -> Timed {
    let mut t = Timed::default();
    for i in 1..=10 {
        t.add(
            i as u64,
            "n1",
            i as f64 * 10.0,
            i as f64 * 10.0 + 5.0,
            i,
            OpType::Ok,
        );
    }
    t.nemesis("start-partition", 20.0, 21.0, json!({"n3": ["n1", "n2"]}));
    t.nemesis("stop-partition", 199.0, 200.0, json!(null));
    for (k, (node, els)) in finals.iter().enumerate() {
        let s = 300.0 + 10.0 * k as f64;
        t.read(100 + k as u64, node, s, s + 5.0, els);
    }
    t
}

const ALL: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

#[test]
fn a_node_lacking_what_the_others_hold_has_diverged() {
    let lacking: &[i64] = &[1, 2, 3, 7, 8, 9, 10];
    let h = run(&[("n1", ALL), ("n2", ALL), ("n3", lacking)]).build();
    let r = Divergence::default().check(&h);
    assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    assert_eq!(r.anomaly_types(), [kind::DIVERGENCE]);
    assert_eq!(r.anomalies.len(), 1);
    let a = &r.anomalies[0];
    assert_eq!(a.details["node"], "n3");
    assert_eq!(a.details["reference_nodes"], json!(["n1", "n2"]));
    assert_eq!(a.details["missing"], 3);
    assert_eq!(a.details["extra"], 0);
    assert_eq!(a.details["missing_sample"], json!([4, 5, 6]));
    // Since the add of 4, the earliest one n3 lacks.
    let add4 = h
        .ops()
        .iter()
        .find(|o| o.is_invoke() && &*o.f == "add" && o.value.as_int() == Some(4))
        .unwrap();
    assert_eq!(a.details["since_op"], add4.index);
    assert!(a.ops.contains(&add4.index));
    assert!(a.explanation.contains("n3"), "{}", a.explanation);
    assert!(a.explanation.contains("lacks 3"), "{}", a.explanation);
    assert_eq!(r.stats["final_state"].as_array().unwrap().len(), 3);
}

#[test]
fn a_node_holding_what_the_others_lack_has_diverged_too() {
    let more: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 99];
    let h = run(&[("n1", ALL), ("n2", more), ("n3", ALL)]).build();
    let r = Divergence::default().check(&h);
    assert_eq!(r.anomaly_types(), [kind::DIVERGENCE]);
    assert_eq!(r.anomalies[0].details["node"], "n2");
    assert_eq!(r.anomalies[0].details["extra"], 1);
    assert_eq!(r.anomalies[0].details["extra_sample"], json!([99]));
}

#[test]
fn agreeing_nodes_are_valid_whatever_the_order_of_elements() {
    let shuffled: &[i64] = &[10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    let h = run(&[("n1", ALL), ("n2", shuffled), ("n3", ALL)]).build();
    let r = Divergence::default().check(&h);
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
    assert_eq!(r.stats["judged"], true);
    assert_eq!(r.stats["nodes_read"], 3);
}

#[test]
fn only_reads_after_the_last_add_and_fault_count() {
    // A stale read on n3 during the partition, then n3 caught up: valid.
    let mut t = run(&[("n1", ALL), ("n2", ALL), ("n3", ALL)]);
    t.read(90, "n3", 100.0, 105.0, &[1, 2]);
    let r = Divergence::default().check(&t.build());
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
    // Final reads followed by another fault: they are not final, nothing is judged.
    let mut t = run(&[("n1", ALL), ("n3", &[1])]);
    t.nemesis("start-kill", 400.0, 401.0, json!(["n2"]));
    let r = Divergence::default().check(&t.build());
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.stats["judged"], false);
}

#[test]
fn a_single_node_read_proves_nothing() {
    let h = run(&[("n1", &[1])]).build();
    let r = Divergence::default().check(&h);
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.stats["judged"], false);
    assert!(r.stats["why"].as_str().unwrap().contains("1 node"));
}

#[test]
fn a_tie_prefers_the_larger_state_as_the_reference() {
    let h = run(&[("n1", ALL), ("n2", &[1, 2, 3])]).build();
    let r = Divergence::default().check(&h);
    assert_eq!(r.anomalies.len(), 1);
    assert_eq!(r.anomalies[0].details["node"], "n2");
    assert_eq!(r.anomalies[0].details["missing"], 7);
}

/// The set's final reads agree (or there are none); then final digests of `digests`.
fn with_digests(digests: &[(&str, &[(&str, &str)])]) -> Timed {
    let mut t = run(&[("n1", ALL), ("n2", ALL), ("n3", ALL)]);
    for (k, (node, keys)) in digests.iter().enumerate() {
        let s = 400.0 + 10.0 * k as f64;
        t.digest(200 + k as u64, node, s, s + 5.0, keys);
    }
    t
}

#[test]
fn digests_that_differ_in_a_key_name_the_node_and_the_key() {
    let same: &[(&str, &str)] = &[("ids", "0a"), ("s", "1b")];
    let stamped: &[(&str, &str)] = &[("ids", "0a"), ("s", "ff")];
    let h = with_digests(&[("n1", same), ("n2", stamped), ("n3", same)]).build();
    let r = Divergence::default().check(&h);
    assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    assert_eq!(r.anomaly_types(), [kind::DIVERGENCE]);
    assert_eq!(r.anomalies.len(), 1, "{:?}", r.anomalies);
    let a = &r.anomalies[0];
    assert_eq!(a.details["node"], "n2");
    assert_eq!(a.details["keys"], json!(["s"]));
    assert_eq!(a.details["of_keys"], 2);
    assert!(
        a.explanation.contains("s (n2 holds ff, n1, n3 hold 1b)"),
        "{}",
        a.explanation
    );
    assert_eq!(r.stats["digest_nodes_read"], 3);
}

#[test]
fn a_key_missing_on_one_node_is_divergence_and_agreeing_digests_are_valid() {
    let full: &[(&str, &str)] = &[("a", "01"), ("b", "02")];
    let short: &[(&str, &str)] = &[("a", "01")];
    let h = with_digests(&[("n1", full), ("n2", full), ("n3", short)]).build();
    let r = Divergence::default().check(&h);
    assert_eq!(r.anomalies.len(), 1, "{:?}", r.anomalies);
    assert_eq!(r.anomalies[0].details["node"], "n3");
    assert!(r.anomalies[0].explanation.contains("n3 holds nothing"));

    let h = with_digests(&[("n1", full), ("n2", full), ("n3", full)]).build();
    let r = Divergence::default().check(&h);
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
    assert_eq!(r.stats["judged"], true);
    // One fingerprint of the whole state per node (`*`) compares the same way.
    let h = with_digests(&[("n1", &[("*", "aa")]), ("n2", &[("*", "ab")])]).build();
    let r = Divergence::default().check(&h);
    assert_eq!(r.valid, Validity::Invalid, "{r:?}");
}

#[test]
fn a_digest_before_the_last_fault_is_not_compared() {
    let mut t = with_digests(&[]);
    t.digest(300, "n1", 100.0, 105.0, &[("k", "01")]);
    t.digest(301, "n2", 110.0, 115.0, &[("k", "02")]);
    let r = Divergence::default().check(&t.build());
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
}
