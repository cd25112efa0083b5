//! JUnit XML for CI systems: one test case per run; failures carry the anomaly summary, the
//! seed and the path of the report.

use std::fmt::Write;

use crate::outcome::{RunOutcome, Verdict};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

pub fn render(suite: &str, runs: &[RunOutcome], extra_failures: &[(String, String)]) -> String {
    let failures = runs
        .iter()
        .filter(|r| r.verdict == Verdict::Invalid)
        .count()
        + extra_failures.len();
    let errors = runs
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Error | Verdict::Unknown))
        .count();
    let time: f64 = runs.iter().map(|r| r.duration.as_secs_f64()).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites><testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">",
        escape(suite),
        runs.len() + extra_failures.len()
    );
    for r in runs {
        let _ = write!(
            x,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            escape(suite),
            escape(&r.name),
            r.duration.as_secs_f64()
        );
        let report = r
            .report()
            .map(|p| format!("\nreport: {}", p.display()))
            .unwrap_or_default();
        let rerun = format!("seed {}; rerun with --seed {}", r.seed, r.seed);
        match r.verdict {
            Verdict::Valid => {}
            Verdict::Invalid => {
                let types = r.anomaly_types().join(", ");
                let body = r.anomaly_lines(20).join("\n");
                let _ = write!(
                    x,
                    "\n    <failure message=\"{}\" type=\"anomaly\">{}</failure>\n  ",
                    escape(&format!("anomalies: {types} ({rerun})")),
                    escape(&format!("{body}{report}"))
                );
            }
            Verdict::Unknown | Verdict::Error => {
                let what = if r.verdict == Verdict::Unknown {
                    "the checkers could not decide".to_owned()
                } else {
                    format!("the run failed (exit {:?})", r.exit)
                };
                let _ = write!(
                    x,
                    "\n    <error message=\"{}\" type=\"{}\">{}</error>\n  ",
                    escape(&format!("{what} ({rerun})")),
                    r.verdict.as_str(),
                    escape(&report)
                );
            }
        }
        x.push_str("</testcase>\n");
    }
    for (name, why) in extra_failures {
        let _ = writeln!(
            x,
            "  <testcase classname=\"{}\" name=\"{}\"><failure message=\"{}\" type=\"regression\"/></testcase>",
            escape(suite),
            escape(name),
            escape(why)
        );
    }
    x.push_str("</testsuite></testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome(name: &str, verdict: Verdict, results: serde_json::Value) -> RunOutcome {
        RunOutcome {
            name: name.into(),
            seed: 7,
            verdict,
            exit: Some(match verdict {
                Verdict::Valid => 0,
                Verdict::Invalid => 1,
                Verdict::Unknown => 2,
                Verdict::Error => 255,
            }),
            run_dir: None,
            results: Some(results),
            duration: Duration::from_millis(1500),
        }
    }

    #[test]
    fn failures_carry_anomalies_seed_and_report() {
        let bad = outcome(
            "kv/seed-7",
            Verdict::Invalid,
            serde_json::json!({"valid": false, "anomaly_types": ["lost-write"],
                "set": {"anomalies": [{"type": "lost-write", "explanation": "add 4 <lost>"}]}}),
        );
        let good = outcome(
            "kv/seed-8",
            Verdict::Valid,
            serde_json::json!({"valid": true}),
        );
        let x = render("gate", &[good, bad], &[]);
        assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"0\""), "{x}");
        assert!(
            x.contains("anomalies: lost-write (seed 7; rerun with --seed 7)"),
            "{x}"
        );
        assert!(x.contains("add 4 &lt;lost&gt;"), "{x}");
        assert_eq!(x.matches("<testcase").count(), 2);
    }
}
