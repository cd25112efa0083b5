//! Hand-built list-append histories, one per anomaly class, each beside its valid twin.

use history::build::Builder;
use history::{OpType, Validity, Value};

use super::{Consistency, ListAppend};
use crate::Checker;

/// Micro-ops from text: `a x 1` appends 1 to x; `r x 1 2` read x as [1 2]; `r x` an unknown
/// read (an invocation's).
fn mops(text: &str, done: bool) -> Value {
    Value::List(
        text.split(';')
            .map(|m| {
                let w: Vec<&str> = m.split_whitespace().collect();
                let key = Value::Str(w[1].into());
                match w[0] {
                    "a" => Value::List(vec![
                        "append".into(),
                        key,
                        Value::Int(w[2].parse().unwrap()),
                    ]),
                    "r" => {
                        let list = if done {
                            Value::List(
                                w[2..]
                                    .iter()
                                    .map(|x| Value::Int(x.parse().unwrap()))
                                    .collect(),
                            )
                        } else {
                            Value::Nil
                        };
                        Value::List(vec!["r".into(), key, list])
                    }
                    other => panic!("{other}"),
                }
            })
            .collect(),
    )
}

/// A history script: `+P text` invokes txn `text` on process P, `-P ok|fail|info` completes
/// it (with the text's reads as written).
fn history(script: &[&str]) -> history::History {
    let mut b = Builder::new();
    let mut open: std::collections::HashMap<u64, String> = Default::default();
    for line in script {
        let (head, rest) = line.split_at(1);
        let (p, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let p: u64 = p.parse().unwrap();
        match head {
            "+" => {
                b.invoke(p, "txn", mops(text, false));
                open.insert(p, text.to_owned());
            }
            "-" => {
                let t = open.remove(&p).unwrap();
                let kind = match text {
                    "ok" => OpType::Ok,
                    "fail" => OpType::Fail,
                    _ => OpType::Info,
                };
                b.complete(p, kind, "txn", mops(&t, kind == OpType::Ok));
            }
            _ => panic!("{line}"),
        }
    }
    b.build().unwrap()
}

fn check(c: Consistency, script: &[&str]) -> (Validity, Vec<&'static str>, String) {
    let r = ListAppend {
        consistency: c,
        ..ListAppend::default()
    }
    .check(&history(script));
    let text = r
        .anomalies
        .iter()
        .map(|a| a.explanation.clone())
        .collect::<Vec<_>>()
        .join("\n");
    (r.valid, r.anomaly_types(), text)
}

use Consistency::*;

#[test]
fn a_serial_history_is_valid_under_every_model() {
    let h = [
        "+0 a x 1",
        "-0 ok",
        "+1 r x 1;a x 2",
        "-1 ok",
        "+0 r x 1 2",
        "-0 ok",
    ];
    for c in Consistency::ALL {
        let (v, kinds, _) = check(c, &h);
        assert_eq!((v, kinds), (Validity::Valid, vec![]), "{c:?}");
    }
}

#[test]
fn g0_write_cycle() {
    // x says T1 before T2, y says T2 before T1: only writes in the cycle.
    let h = [
        "+0 a x 1;a y 1",
        "+1 a x 2;a y 2",
        "-0 ok",
        "-1 ok",
        "+2 r x 1 2;r y 2 1",
        "-2 ok",
    ];
    let (v, kinds, text) = check(ReadCommitted, &h);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["G0"]), "{text}");
    assert!(text.contains("(ww)"), "{text}");
    // Consistent orders: valid.
    let h = [
        "+0 a x 1;a y 1",
        "+1 a x 2;a y 2",
        "-0 ok",
        "-1 ok",
        "+2 r x 1 2;r y 1 2",
        "-2 ok",
    ];
    assert_eq!(check(ReadCommitted, &h).0, Validity::Valid);
}

#[test]
fn g1c_circular_information_flow() {
    let h = ["+0 a x 1;r y 1", "+1 a y 1;r x 1", "-0 ok", "-1 ok"];
    let (v, kinds, text) = check(ReadCommitted, &h);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["G1c"]), "{text}");
    // T1 saw nothing of y: T1 before T2, no cycle.
    let h = ["+0 a x 1;r y", "+1 a y 1;r x 1", "-0 ok", "-1 ok"];
    assert_eq!(check(ReadCommitted, &h).0, Validity::Valid);
}

#[test]
fn g_single_read_skew_and_snapshot_isolation() {
    // T1 misses T2's x but sees T2's y.
    let h = [
        "+0 r x;r y 1",
        "+1 a x 1;a y 1",
        "-1 ok",
        "-0 ok",
        "+2 r x 1",
        "-2 ok",
    ];
    let (v, kinds, text) = check(SnapshotIsolation, &h);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["G-single"]), "{text}");
    assert!(text.contains("(rw)") && text.contains("(wr)"), "{text}");
    // Read committed allows it.
    assert_eq!(check(ReadCommitted, &h).0, Validity::Valid);
}

#[test]
fn g2_item_write_skew_is_allowed_by_snapshot_isolation_only() {
    let h = [
        "+0 r x;a y 1",
        "+1 r y;a x 1",
        "-0 ok",
        "-1 ok",
        "+2 r x 1;r y 1",
        "-2 ok",
    ];
    let (v, kinds, text) = check(Serializable, &h);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["G2-item"]), "{text}");
    assert_eq!(check(SnapshotIsolation, &h).0, Validity::Valid);
}

#[test]
fn g1a_aborted_read_and_g1b_intermediate_read() {
    let h = ["+0 a x 1", "-0 fail", "+1 r x 1", "-1 ok"];
    let (v, kinds, _) = check(ReadCommitted, &h);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["G1a"]));
    let h = ["+0 a x 1", "-0 info", "+1 r x 1", "-1 ok"];
    assert_eq!(
        check(ReadCommitted, &h).0,
        Validity::Valid,
        "an info append may have happened"
    );
    let h = ["+0 a x 1;a x 2", "+1 r x 1", "-0 ok", "-1 ok"];
    let (v, kinds, text) = check(ReadCommitted, &h);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["G1b"]), "{text}");
    let h = ["+0 a x 1;a x 2", "+1 r x 1 2", "-0 ok", "-1 ok"];
    assert_eq!(check(ReadCommitted, &h).0, Validity::Valid);
}

#[test]
fn broken_lists_whatever_the_model() {
    let dup = ["+0 a x 1", "-0 ok", "+1 r x 1 1", "-1 ok"];
    let (v, kinds, _) = check(ReadCommitted, &dup);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["duplicate-elements"]));
    let orders = [
        "+0 a x 1",
        "+1 a x 2",
        "-0 ok",
        "-1 ok",
        "+2 r x 1 2",
        "-2 ok",
        "+3 r x 2 1",
        "-3 ok",
    ];
    let (v, kinds, _) = check(ReadCommitted, &orders);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["incompatible-order"]));
    let internal = ["+0 a x 1", "-0 ok", "+1 a x 2;r x 1", "-1 ok"];
    let (v, kinds, _) = check(ReadCommitted, &internal);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["internal"]));
    let own = ["+0 a x 1", "-0 ok", "+1 a x 2;r x 1 2", "-1 ok"];
    assert_eq!(check(ReadCommitted, &own).0, Validity::Valid);
    let garbage = ["+0 a x 1", "-0 ok", "+1 r x 1 9", "-1 ok"];
    let (v, kinds, _) = check(ReadCommitted, &garbage);
    assert_eq!((v, kinds), (Validity::Invalid, vec!["unexpected"]));
}

#[test]
fn real_time_stale_read_and_lost_append() {
    // T2 began after T1's append was acknowledged and missed it; T3 saw it.
    let stale = ["+0 a x 1", "-0 ok", "+1 r x", "+2 r x 1", "-1 ok", "-2 ok"];
    let (v, kinds, text) = check(StrictSerializable, &stale);
    assert_eq!(
        (v, kinds),
        (Validity::Invalid, vec!["G-single-realtime"]),
        "{text}"
    );
    assert!(text.contains("(realtime)"), "{text}");
    assert_eq!(check(Serializable, &stale).0, Validity::Valid);
    // Nobody ever sees it, though a read began after it was acknowledged.
    let lost = ["+0 a x 1", "-0 ok", "+1 r x", "-1 ok"];
    let (v, kinds, text) = check(StrictSerializable, &lost);
    assert_eq!(
        (v, kinds),
        (Validity::Invalid, vec!["lost-append"]),
        "{text}"
    );
    assert_eq!(check(Serializable, &lost).0, Validity::Valid);
}

#[test]
fn session_guarantees_are_process_order_cycles_each_its_own() {
    let invalid = |c, h: &[&str]| {
        let (v, kinds, text) = check(c, h);
        assert_eq!(
            (v, kinds),
            (Validity::Invalid, vec!["G-single-process"]),
            "{c:?}: {text}"
        );
        assert!(text.contains("(process)"), "{text}");
    };
    let valid = |c, h: &[&str]| assert_eq!(check(c, h).0, Validity::Valid, "{c:?}");
    // Read your writes: process 0 appends, then reads without it; someone else sees it.
    let ryw = ["+0 a x 1", "-0 ok", "+0 r x", "+1 r x 1", "-0 ok", "-1 ok"];
    for c in [ReadYourWrites, ConsistentPrefix, StrictSerializable] {
        invalid(c, &ryw);
    }
    valid(MonotonicReads, &ryw);
    valid(Serializable, &ryw);
    // Monotonic reads: process 1 sees 1, then a later read of its own does not.
    let mono = ["+0 a x 1", "+1 r x 1", "-1 ok", "+1 r x", "-1 ok", "-0 ok"];
    for c in [MonotonicReads, ConsistentPrefix] {
        invalid(c, &mono);
    }
    valid(ReadYourWrites, &mono);
    valid(Serializable, &mono);
    // Consistent prefix: process 0 appends to x, then to y; process 1 sees y's, not x's.
    let prefix = [
        "+0 a x 1",
        "-0 ok",
        "+0 a y 1",
        "-0 ok",
        "+1 r y 1;r x",
        "-1 ok",
        "+2 r x 1",
        "-2 ok",
    ];
    invalid(ConsistentPrefix, &prefix);
    valid(ReadYourWrites, &prefix);
    valid(MonotonicReads, &prefix);
    // Read skew between processes is no session anomaly.
    let skew = [
        "+0 r x;r y 1",
        "+1 a x 1;a y 1",
        "-1 ok",
        "-0 ok",
        "+2 r x 1",
        "-2 ok",
    ];
    for c in [ReadYourWrites, MonotonicReads, ConsistentPrefix] {
        valid(c, &skew);
    }
    assert_eq!(check(SnapshotIsolation, &skew).0, Validity::Invalid);
}

/// Strong session serializable: serializable plus each process's own order (what reads from
/// followers with sessions promise), but no real-time order between processes.
#[test]
fn strong_session_serializable_keeps_process_order_not_real_time() {
    let (v, kinds, text) = check(
        StrongSessionSerializable,
        &["+0 a x 1", "-0 ok", "+0 r x", "+1 r x 1", "-0 ok", "-1 ok"],
    );
    assert_eq!((v, kinds), (Validity::Invalid, vec!["G-single-process"]));
    assert!(text.contains("a read-your-writes violation"), "{text}");
    let (v, _, text) = check(
        StrongSessionSerializable,
        &["+0 a x 1", "+1 r x 1", "-1 ok", "+1 r x", "-1 ok", "-0 ok"],
    );
    assert_eq!(v, Validity::Invalid);
    assert!(text.contains("a monotonic-reads violation"), "{text}");
    // A stale read by another process after the append completed: real time only.
    let stale = ["+0 a x 1", "-0 ok", "+1 r x", "-1 ok", "+2 r x 1", "-2 ok"];
    assert_eq!(check(StrongSessionSerializable, &stale).0, Validity::Valid);
    assert_eq!(check(StrictSerializable, &stale).0, Validity::Invalid);
    // Still serializable: write skew is not allowed.
    let skew = [
        "+0 r x;r y;a x 1",
        "+1 r x;r y;a y 1",
        "-0 ok",
        "-1 ok",
        "+2 r x 1;r y 1",
        "-2 ok",
    ];
    assert_eq!(
        check(StrongSessionSerializable, &skew).1,
        vec!["G2-item"],
        "write skew"
    );
    assert_eq!(
        "strong-session-serializable".parse::<Consistency>(),
        Ok(StrongSessionSerializable)
    );
}

/// Streamed op by op (as `faultline check` reads a file), a history gets the verdict and
/// classes it gets whole; a txn never completed counts as `info`.
#[test]
fn streaming_gives_the_whole_history_verdict() {
    let scripts: [&[&str]; 4] = [
        &[
            "+0 a x 1;a y 1",
            "+1 a x 2;a y 2",
            "-0 ok",
            "-1 ok",
            "+2 r x 1 2;r y 2 1",
            "-2 ok",
        ],
        &[
            "+0 r x;a y 1",
            "+1 r y;a x 1",
            "-0 ok",
            "-1 ok",
            "+2 r x 1;r y 1",
            "-2 ok",
        ],
        &["+0 a x 1", "-0 ok", "+0 r x", "+1 r x 1", "-0 ok", "-1 ok"],
        &["+0 a x 1", "+1 r x 1", "-1 ok"],
    ];
    for s in scripts {
        let h = history(s);
        let c = ListAppend::default();
        let whole = c.check(&h);
        let mut st = super::txns::Stream::default();
        for op in h.ops() {
            st.observe(op).unwrap();
        }
        let streamed = c.finish(st);
        assert_eq!(streamed.valid, whole.valid, "{s:?}");
        assert_eq!(streamed.anomaly_types(), whole.anomaly_types(), "{s:?}");
    }
}
