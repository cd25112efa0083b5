//! docs/schedule.md documents the schedule format: its examples parse, validate against their
//! nodes, and together use every fault kind, partition form and clock mode, so the page
//! cannot drift from the format.

use std::collections::BTreeSet;

use nemesis::{ClockAction, Fault, FaultKind, Partition, Schedule};

/// The fenced blocks of `lang` in the page.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}");
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match &mut cur {
            None if line.trim() == open => cur = Some(String::new()),
            Some(b) if line.trim() == "```" => {
                out.push(std::mem::take(b));
                cur = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn the_documented_examples_parse_and_cover_the_format() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schedule.md"),
    )
    .unwrap();
    let toml = blocks(&page, "toml");
    let json = blocks(&page, "json");
    assert_eq!((toml.len(), json.len()), (1, 1));
    let mut kinds = BTreeSet::new();
    let (mut shape, mut isolate, mut grudge, mut bump, mut strobe) = (0, 0, 0, 0, 0);
    for text in toml.iter().chain(&json) {
        let s = Schedule::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        s.validate(&s.nodes).unwrap();
        for f in &s.faults {
            kinds.insert(f.fault.kind());
            match &f.fault {
                Fault::Partition { partition } => match partition {
                    Partition::Shape(_) => shape += 1,
                    Partition::Isolate(_) => isolate += 1,
                    Partition::Grudge(_) => grudge += 1,
                },
                Fault::Clock { action, .. } => match action {
                    ClockAction::Bump { .. } => bump += 1,
                    ClockAction::Strobe { .. } => strobe += 1,
                },
                _ => {}
            }
        }
    }
    let all: BTreeSet<FaultKind> = FaultKind::ALL.into_iter().collect();
    assert_eq!(kinds, all);
    assert!(shape > 0 && isolate > 0 && grudge > 0 && bump > 0 && strobe > 0);
}
