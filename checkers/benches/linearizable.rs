//! `cargo bench -p checkers --bench linearizable`: the linearizable checker on the public
//! histories of `testdata/` (parsing excluded: files are loaded once, outside the
//! timed loop). Compare with Porcupine's figures in testdata/README.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use checkers::Checker;
use checkers::linearizable::{Linearizable, ModelKind};
use criterion::{Criterion, criterion_group, criterion_main};
use history::{History, Validity, Value};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata");

fn load(path: &Path) -> History {
    history::load(path, None)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
}

fn knossos_cas_register() -> Vec<(History, Validity)> {
    let mut out = Vec::new();
    for (dir, verdict) in [("good", Validity::Valid), ("bad", Validity::Invalid)] {
        let dir = Path::new(TESTDATA).join("knossos/cas-register").join(dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        out.extend(files.iter().map(|p| (load(p), verdict)));
    }
    out
}

fn benches(c: &mut Criterion) {
    let knossos = knossos_cas_register();
    let cas = Linearizable::new(ModelKind::CasRegister).with_initial(Value::Int(0));
    for (h, verdict) in &knossos {
        assert_eq!(cas.check(h).valid, *verdict);
    }
    c.bench_function("knossos cas-register, 120 files", |b| {
        b.iter(|| {
            for (h, _) in &knossos {
                std::hint::black_box(cas.check(h));
            }
        })
    });

    let kv = Linearizable::new(ModelKind::Kv);
    for name in [
        "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
    ] {
        let h = load(&Path::new(TESTDATA).join(format!("porcupine-kv/{name}.txt")));
        let expected = if name.ends_with("ok") {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        assert_eq!(kv.check(&h).valid, expected, "{name}");
        c.bench_function(&format!("porcupine kv {name}"), |b| {
            b.iter(|| std::hint::black_box(kv.check(&h)))
        });
    }
}

criterion_group! {
    name = linearizable;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(linearizable);
