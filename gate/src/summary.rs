//! A Markdown summary of a gate, for a CI job summary or a pull-request comment.

use std::fmt::Write;

use crate::baseline::Regression;
use crate::outcome::{RunOutcome, Verdict};

/// Table cells must not break the table: pipes and newlines are escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(runs: &[RunOutcome], regressions: &[Regression], passed: bool) -> String {
    let mut m = String::new();
    let n_ok = runs.iter().filter(|r| r.verdict == Verdict::Valid).count();
    let _ = writeln!(
        m,
        "## faultline gate: {}\n\n{n_ok} of {} runs valid{}.\n",
        if passed { "passed" } else { "FAILED" },
        runs.len(),
        if regressions.is_empty() {
            String::new()
        } else {
            format!(", {} regression(s) against the baseline", regressions.len())
        }
    );
    m.push_str("| run | seed | verdict | anomalies | time | report |\n|---|---|---|---|---|---|\n");
    for r in runs {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {:.1} s | {} |",
            cell(&r.name),
            r.seed,
            r.verdict.as_str(),
            cell(&r.anomaly_types().join(", ")),
            r.duration.as_secs_f64(),
            r.report()
                .map(|p| cell(&p.display().to_string()))
                .unwrap_or_default()
        );
    }
    if !regressions.is_empty() {
        m.push_str("\n| metric | baseline | now | limit |\n|---|---|---|---|\n");
        for g in regressions {
            let _ = writeln!(
                m,
                "| {} | {:.3} s | {:.3} s | +{}% |",
                g.metric, g.baseline, g.current, g.allowed_pct
            );
        }
    }
    let failing: Vec<&RunOutcome> = runs
        .iter()
        .filter(|r| r.verdict != Verdict::Valid)
        .collect();
    if !failing.is_empty() {
        m.push_str("\n### Failing runs\n");
        for r in failing {
            let _ = writeln!(
                m,
                "\n**{}** (seed {}, rerun: `faultline test ... --seed {}`{})",
                cell(&r.name),
                r.seed,
                r.seed,
                r.run_dir
                    .as_ref()
                    .map(|d| format!(", replay: `faultline replay {}`", d.display()))
                    .unwrap_or_default()
            );
            for line in r.anomaly_lines(5) {
                let _ = writeln!(m, "- {}", line.replace('\n', " "));
            }
        }
    }
    m
}
