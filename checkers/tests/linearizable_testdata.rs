//! The linearizable checker against public histories with verdicts nobody in this project
//! decided: Knossos' cas-register and multi-register data, Porcupine's kv data.

use std::path::{Path, PathBuf};

use checkers::linearizable::{Linearizable, ModelKind};
use checkers::{CheckResult, Checker, Validity};
use history::{History, Value};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata");

fn load(path: &Path) -> History {
    history::load(path, None)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
}

fn edn_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(TESTDATA).join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "edn"))
        .collect();
    files.sort();
    files
}

fn cas_register(initial: Value) -> Linearizable {
    Linearizable::new(ModelKind::CasRegister)
        .with_initial(initial)
        .with_nil_read_is_unknown(true)
}

fn check_file(checker: &Linearizable, path: &Path) -> (History, CheckResult) {
    let h = load(path);
    let r = checker.check(&h);
    (h, r)
}

#[test]
fn knossos_cas_register_good_files_are_valid() {
    let files = edn_files("knossos/cas-register/good");
    assert_eq!(files.len(), 113);
    let checker = cas_register(Value::Int(0));
    for path in files {
        let (_, r) = check_file(&checker, &path);
        assert_eq!(r.valid, Validity::Valid, "{}: {r:?}", path.display());
    }
}

#[test]
fn knossos_cas_register_bad_files_are_invalid() {
    let files = edn_files("knossos/cas-register/bad");
    assert_eq!(files.len(), 7);
    let checker = cas_register(Value::Int(0));
    for path in files {
        let (h, r) = check_file(&checker, &path);
        assert_eq!(r.valid, Validity::Invalid, "{}: {r:?}", path.display());
        let a = &r.anomalies[0];
        assert_eq!(a.kind, checkers::result::kind::NONLINEARIZABLE);
        assert!(!a.ops.is_empty() && !a.explanation.is_empty());
        for i in &a.ops {
            assert!(
                h.ops().iter().any(|o| o.index == *i),
                "{}: op {i}",
                path.display()
            );
        }
    }
}

/// The completion op the anomaly names as failing.
fn failing_op(h: &History, r: &CheckResult) -> history::Op {
    assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    let a = &r.anomalies[0];
    let index = a.details["op"]["index"].as_u64().expect("details.op.index");
    assert!(a.ops.contains(&index), "{a:?}");
    h.ops().iter().find(|o| o.index == index).unwrap().clone()
}

fn assert_fails_at(file: &str, initial: Value, process: u64, value: i64) {
    let path = Path::new(TESTDATA)
        .join("knossos/cas-register/bad")
        .join(file);
    let (h, r) = check_file(&cas_register(initial), &path);
    let op = failing_op(&h, &r);
    assert_eq!(
        op.process,
        history::Process::Client(process),
        "{file}: {op:?}"
    );
    assert_eq!(op.kind, history::OpType::Ok, "{file}: {op:?}");
    assert_eq!(&*op.f, "read", "{file}: {op:?}");
    assert_eq!(op.value, Value::Int(value), "{file}: {op:?}");
    let a = &r.anomalies[0];
    assert!(
        a.explanation.contains(&format!("..{}", op.index)),
        "{}",
        a.explanation
    );
    assert!(
        a.details["states"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{a:?}"
    );
    assert_eq!(a.details["prefix"]["last"].as_u64(), Some(op.index));
}

#[test]
fn knossos_pinned_failing_ops() {
    assert_fails_at("rethink-fail-minimal.edn", Value::Nil, 1, 3);
    assert_fails_at("cas-failure.edn", Value::Int(0), 70, 0);
    assert_fails_at("immediate-failure.edn", Value::Int(0), 1, 3);
}

#[test]
fn knossos_multi_register_is_valid() {
    let path = Path::new(TESTDATA).join("knossos/multi-register/good/multi-register.edn");
    let initial = Value::Map(vec![
        (Value::str("x"), Value::Int(0)),
        (Value::str("y"), Value::Int(0)),
    ]);
    let checker = Linearizable::new(ModelKind::MultiRegister).with_initial(initial);
    let (_, r) = check_file(&checker, &path);
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
}

#[test]
fn porcupine_kv_files() {
    let checker = Linearizable::new(ModelKind::Kv);
    for name in ["c01", "c10", "c50"] {
        for (suffix, expected) in [("ok", Validity::Valid), ("bad", Validity::Invalid)] {
            let path = Path::new(TESTDATA).join(format!("porcupine-kv/{name}-{suffix}.txt"));
            let (_, r) = check_file(&checker, &path);
            assert_eq!(r.valid, expected, "{}: {r:?}", path.display());
        }
    }
}

#[test]
fn nemesis_only_history_is_valid() {
    let path = Path::new(TESTDATA).join("knossos/cas-register/good/mongodb-v0-ack-rollback-.edn");
    let (_, r) = check_file(&cas_register(Value::Int(0)), &path);
    assert_eq!(r.valid, Validity::Valid, "{r:?}");
}
