//! Small hand-written histories pinning the checker's semantics: info and fail ops, nil reads,
//! per-key partitions, odd values, the multi-register and kv models, and the time budget.

use std::time::{Duration, Instant};

use checkers::linearizable::{Linearizable, ModelKind};
use checkers::{CheckResult, Checker, Validity};
use history::{Format, History, Value};

/// A history from JSONL lines.
fn jsonl(lines: &[&str]) -> History {
    let text = lines.join("\n");
    history::load_reader(text.as_bytes(), "test", Some(Format::Jsonl))
        .unwrap()
        .0
}

fn run(model: ModelKind, nil_unknown: bool, h: &History) -> CheckResult {
    Linearizable::new(model)
        .with_nil_read_is_unknown(nil_unknown)
        .check(h)
}

const STALE: &[&str] = &[
    r#"{"index":0,"process":0,"type":"invoke","f":"write","key":"a","value":1}"#,
    r#"{"index":1,"process":0,"type":"ok","f":"write","key":"a","value":1}"#,
    r#"{"index":2,"process":0,"type":"invoke","f":"write","key":"a","value":2}"#,
    r#"{"index":3,"process":0,"type":"ok","f":"write","key":"a","value":2}"#,
    r#"{"index":4,"process":1,"type":"invoke","f":"read","key":"a","value":null}"#,
    r#"{"index":5,"process":1,"type":"ok","f":"read","key":"a","value":1}"#,
];

#[test]
fn stale_read_is_invalid_with_explanation() {
    let r = run(ModelKind::Register, false, &jsonl(STALE));
    assert_eq!(r.valid, Validity::Invalid);
    let a = &r.anomalies[0];
    assert_eq!(a.ops, vec![4, 5]);
    assert_eq!(a.details["states"], serde_json::json!([2]));
    assert_eq!(a.details["key"], serde_json::json!("a"));
    assert!(a.explanation.contains("ops 0..=5"), "{}", a.explanation);
    assert!(a.explanation.contains("state 2"), "{}", a.explanation);
}

#[test]
fn other_keys_do_not_interfere() {
    let mut lines = STALE.to_vec();
    lines[0] = r#"{"index":0,"process":0,"type":"invoke","f":"write","key":"b","value":1}"#;
    lines[1] = r#"{"index":1,"process":0,"type":"ok","f":"write","key":"b","value":1}"#;
    let r = run(ModelKind::Register, false, &jsonl(&lines));
    assert_eq!(r.valid, Validity::Invalid, "key a never held 1");
    let a = &r.anomalies[0];
    assert_eq!(a.details["states"], serde_json::json!([2]));
    assert_eq!(r.stats["keys"], 2);
}

#[test]
fn failed_and_info_writes() {
    // A failed write never happened; an info write may happen at any later point, or never.
    let h = jsonl(&[
        r#"{"index":0,"process":0,"type":"invoke","f":"write","value":1}"#,
        r#"{"index":1,"process":0,"type":"fail","f":"write","value":1}"#,
        r#"{"index":2,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":3,"process":1,"type":"ok","f":"read","value":1}"#,
    ]);
    assert_eq!(run(ModelKind::Register, true, &h).valid, Validity::Invalid);
    let h = jsonl(&[
        r#"{"index":0,"process":0,"type":"invoke","f":"write","value":1}"#,
        r#"{"index":1,"process":0,"type":"info","f":"write","value":1}"#,
        r#"{"index":2,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":3,"process":1,"type":"ok","f":"read","value":null}"#,
        r#"{"index":4,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":5,"process":1,"type":"ok","f":"read","value":1}"#,
        r#"{"index":6,"process":1,"type":"invoke","f":"read","value":null}"#,
    ]);
    assert_eq!(run(ModelKind::Register, false, &h).valid, Validity::Valid);
}

#[test]
fn nil_read_option() {
    let h = jsonl(&[
        r#"{"index":0,"process":0,"type":"invoke","f":"write","value":1}"#,
        r#"{"index":1,"process":0,"type":"ok","f":"write","value":1}"#,
        r#"{"index":2,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":3,"process":1,"type":"ok","f":"read","value":null}"#,
    ]);
    assert_eq!(run(ModelKind::Register, true, &h).valid, Validity::Valid);
    let r = run(ModelKind::Register, false, &h);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.anomalies[0].ops, vec![2, 3]);
}

#[test]
fn cas_semantics() {
    let h = jsonl(&[
        r#"{"index":0,"process":0,"type":"invoke","f":"cas","value":[0,5]}"#,
        r#"{"index":1,"process":0,"type":"ok","f":"cas","value":[0,5]}"#,
        r#"{"index":2,"process":0,"type":"invoke","f":"cas","value":[0,6]}"#,
        r#"{"index":3,"process":0,"type":"ok","f":"cas","value":[0,6]}"#,
    ]);
    let c = Linearizable::new(ModelKind::CasRegister).with_initial(Value::Int(0));
    let r = c.check(&h);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.anomalies[0].ops, vec![2, 3]);
    assert_eq!(r.anomalies[0].details["states"], serde_json::json!([5]));
}

#[test]
fn uninterpretable_ops_give_unknown() {
    let bad_cas = jsonl(&[
        r#"{"index":0,"process":0,"type":"invoke","f":"cas","value":7}"#,
        r#"{"index":1,"process":0,"type":"ok","f":"cas","value":7}"#,
    ]);
    let r = run(ModelKind::CasRegister, true, &bad_cas);
    assert_eq!(r.valid, Validity::Unknown);
    assert!(r.reason.as_deref().unwrap().contains("[old new]"), "{r:?}");
    // A cas in a plain register, an unknown f, a txn that is not a list, kv ints.
    assert_eq!(
        run(ModelKind::Register, true, &bad_cas).valid,
        Validity::Unknown
    );
    let odd = jsonl(&[
        r#"{"index":0,"process":0,"type":"invoke","f":"txn","value":{"a":1}}"#,
        r#"{"index":1,"process":0,"type":"ok","f":"txn","value":[[1,2,3,4]]}"#,
    ]);
    for m in ModelKind::ALL {
        assert_eq!(run(m, true, &odd).valid, Validity::Unknown, "{m}");
    }
    let r = Linearizable::new(ModelKind::MultiRegister)
        .with_initial(Value::Int(3))
        .check(&odd);
    assert_eq!(r.valid, Validity::Unknown);
}

#[test]
fn model_names_round_trip() {
    for m in ModelKind::ALL {
        assert_eq!(m.name().parse::<ModelKind>(), Ok(m));
    }
    assert!("knossos".parse::<ModelKind>().is_err());
}

#[test]
fn multi_register_txns() {
    let h = jsonl(&[
        r#"{"index":0,"process":0,"type":"invoke","f":"txn","value":[["write","x",1],["write","y",1]]}"#,
        r#"{"index":1,"process":0,"type":"ok","f":"txn","value":[["write","x",1],["write","y",1]]}"#,
        r#"{"index":2,"process":1,"type":"invoke","f":"txn","value":[["read","x",null],["read","y",null]]}"#,
        r#"{"index":3,"process":1,"type":"ok","f":"txn","value":[["read","x",1],["read","y",0]]}"#,
    ]);
    let initial = Value::Map(vec![
        (Value::str("x"), Value::Int(0)),
        (Value::str("y"), Value::Int(0)),
    ]);
    let r = Linearizable::new(ModelKind::MultiRegister)
        .with_initial(initial)
        .check(&h);
    assert_eq!(r.valid, Validity::Invalid, "a txn's writes are atomic");
    assert_eq!(r.anomalies[0].ops, vec![2, 3]);
}

#[test]
fn kv_append_and_missing_keys() {
    let h = jsonl(&[
        r#"{"index":0,"process":0,"type":"invoke","f":"get","key":"a","value":null}"#,
        r#"{"index":1,"process":0,"type":"ok","f":"get","key":"a","value":""}"#,
        r#"{"index":2,"process":0,"type":"invoke","f":"append","key":"a","value":"x"}"#,
        r#"{"index":3,"process":1,"type":"invoke","f":"append","key":"a","value":"y"}"#,
        r#"{"index":4,"process":0,"type":"ok","f":"append","key":"a","value":"x"}"#,
        r#"{"index":5,"process":1,"type":"ok","f":"append","key":"a","value":"y"}"#,
        r#"{"index":6,"process":0,"type":"invoke","f":"get","key":"a","value":null}"#,
        r#"{"index":7,"process":0,"type":"ok","f":"get","key":"a","value":"yx"}"#,
        r#"{"index":8,"process":0,"type":"invoke","f":"put","key":"a","value":"z"}"#,
        r#"{"index":9,"process":0,"type":"ok","f":"put","key":"a","value":"z"}"#,
        r#"{"index":10,"process":0,"type":"invoke","f":"get","key":"a","value":null}"#,
        r#"{"index":11,"process":0,"type":"ok","f":"get","key":"a","value":"yx"}"#,
    ]);
    let r = Linearizable::new(ModelKind::Kv).check(&h);
    assert_eq!(r.valid, Validity::Invalid);
    let a = &r.anomalies[0];
    assert_eq!(a.ops, vec![10, 11]);
    assert_eq!(a.details["states"], serde_json::json!(["z"]));
}

/// Many concurrent writes, then a read of a value nobody wrote: proving it impossible means
/// trying every subset of the writes, far beyond any budget.
fn adversarial(writers: u64) -> History {
    let mut lines = Vec::new();
    let mut i = 0;
    let mut push = |p: u64, kind: &str, f: &str, v: &str| {
        lines.push(format!(
            r#"{{"index":{i},"process":{p},"type":"{kind}","f":"{f}","value":{v}}}"#
        ));
        i += 1;
    };
    for p in 0..writers {
        push(p, "invoke", "write", &p.to_string());
    }
    for p in 0..writers {
        push(writers + p, "invoke", "read", "null");
    }
    for p in 0..writers {
        push(p, "ok", "write", &p.to_string());
    }
    for p in 0..writers {
        push(writers + p, "ok", "read", &((p * 7) % writers).to_string());
    }
    push(0, "invoke", "read", "null");
    push(0, "ok", "read", "-1");
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    jsonl(&refs)
}

#[test]
fn budget_gives_unknown() {
    let h = adversarial(40);
    let started = Instant::now();
    let r = Linearizable::new(ModelKind::Register)
        .with_budget(Duration::from_millis(1))
        .check(&h);
    assert_eq!(r.valid, Validity::Unknown, "{r:?}");
    assert!(
        r.reason.as_deref().unwrap().contains("time budget"),
        "{r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn memory_limit_gives_unknown() {
    let h = adversarial(40);
    let r = Linearizable::new(ModelKind::Register)
        .with_memory_limit(1 << 20)
        .check(&h);
    assert_eq!(r.valid, Validity::Unknown, "{r:?}");
    assert!(
        r.reason.as_deref().unwrap().contains("memory limit"),
        "{r:?}"
    );
}
