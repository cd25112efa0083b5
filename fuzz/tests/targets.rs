//! The fuzz targets: every reader of outside input must answer with a value or an error,
//! never a panic or an abort, whatever bytes it gets.

use std::path::Path;

#[test]
fn jsonl_history_reader() {
    fuzz::run("jsonl", |bytes| {
        for op in history::jsonl::Reader::new(bytes, "fuzz.jsonl") {
            if op.is_err() {
                break;
            }
        }
        let _ = history::stream(bytes, "fuzz.jsonl", history::Format::Jsonl, |_| {
            std::ops::ControlFlow::Continue(())
        });
        // The whole load: sniffing, pairing, the history built.
        let _ = history::load_reader(bytes, "fuzz.jsonl", None);
    });
}

#[test]
fn edn_history_reader() {
    fuzz::run("edn", |bytes| {
        for op in history::edn::Reader::new(bytes, "fuzz.edn") {
            if op.is_err() {
                break;
            }
        }
        let _ = history::load_reader(bytes, "fuzz.edn", Some(history::Format::JepsenEdn));
    });
}

#[test]
fn schedule_file_parser() {
    fuzz::run("schedule", |bytes| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let _ = nemesis::Schedule::parse(text);
        }
    });
}

#[test]
fn system_file_parser() {
    fuzz::run("system-file", |bytes| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let _ = systems::file::spec::parse(
                Path::new("fuzz.toml"),
                text,
                &systems::file::spec::Inputs::default(),
            );
        }
    });
}

#[test]
fn gate_config_parser() {
    fuzz::run("gate-config", |bytes| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let _ = gate::config::GateConfig::parse(text);
        }
    });
}

/// The harness itself: a target that panics on some inputs fails the run (and saves one).
#[test]
#[should_panic(expected = "panicked (seed")]
fn a_panicking_target_fails_the_run() {
    let saved = tempfile::tempdir().unwrap();
    fuzz::run_saving_to("edn", saved.path(), |bytes| {
        assert!(!bytes.contains(&b'{'), "a brace")
    });
}
