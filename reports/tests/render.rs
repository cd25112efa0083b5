//! The report of the synthetic run: the verdict and every anomaly show, markup from the
//! history is escaped, and a big history is aggregated.

use checkers::Checker;
use checkers::dual_leader::DualLeader;
use checkers::explain::Context;
use checkers::failover::Failover;
use checkers::set::Set;
use checkers::unique_ids::UniqueIds;
use history::History;
use reports::{RunData, escape, render, sample};
use serde_json::json;

fn results(h: &History) -> serde_json::Value {
    let mut rs = vec![
        Set::default().check(h),
        UniqueIds::default().check(h),
        DualLeader::default().check(h),
        Failover::default().check(h),
    ];
    Context::new(h).enrich(h, &mut rs);
    let mut j = checkers::result::results_json(&rs);
    j["detection"] = checkers::result::detection(h, &rs);
    j
}

fn page(client_ops: usize, hostile: bool) -> (String, serde_json::Value) {
    let h = History::new(sample::demo(client_ops, hostile)).unwrap();
    let res = results(&h);
    let run = RunData {
        name: "demo <run>".into(),
        history: &h,
        results: res.clone(),
        test: Some(
            json!({"seed": 42, "argv": ["faultline", "test", "--seed", "42", "--bug", "no step down"]}),
        ),
        node_logs: vec![("n1".into(), "nodes/n1/leaderkv.log".into())],
    };
    (render(&run), res)
}

#[test]
fn escape_covers_markup_and_quotes() {
    assert_eq!(
        escape(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn the_demo_run_has_every_anomaly_class() {
    let (_, res) = page(4000, false);
    assert_eq!(res["valid"], false);
    let types: Vec<&str> = res["anomaly_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for k in [
        "lost-write",
        "reused-key",
        "dual-leader",
        "split-brain-writes",
    ] {
        assert!(types.contains(&k), "{k} missing from {types:?}");
    }
    assert!(!types.contains(&"unnecessary-failover"), "{types:?}");
    let lost = &res["set"]["anomalies"][0]["explanation"];
    assert!(
        lost.as_str()
            .unwrap()
            .contains("n1 was cut off from n2..n5"),
        "{lost}"
    );
}

#[test]
fn page_shows_verdict_anomalies_seed_and_command() {
    let (html, res) = page(4000, false);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(">INVALID<"));
    for t in res["anomaly_types"].as_array().unwrap() {
        let t = t.as_str().unwrap();
        assert!(html.contains(&format!("data-kind=\"{t}\"")), "{t}");
    }
    assert!(html.contains("<code id=\"seed\">42</code>"));
    assert!(html.contains("faultline test --seed 42 --bug &#39;no step down&#39;"));
    assert!(html.contains("href=\"nodes/n1/leaderkv.log\""));
    // Every op an anomaly links to has a row.
    for cap in html.split("href=\"#op-").skip(1) {
        let i: String = cap.chars().take_while(|c| c.is_ascii_digit()).collect();
        assert!(html.contains(&format!("id=\"op-{i}\"")), "op {i}");
    }
    // Self-contained.
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
}

#[test]
fn markup_from_the_history_renders_as_text() {
    let (html, _) = page(2000, true);
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "a raw script tag");
    assert!(!lower.contains("<img"), "a raw img tag");
    assert!(!lower.contains("<b>key"), "a raw b tag");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("demo &lt;run&gt;"));
}

#[test]
fn big_histories_are_sampled_and_say_so() {
    let (html, _) = page(200_000, false);
    assert!(html.contains("a sample: every"), "sampling not announced");
    assert!(html.len() < 3_000_000, "{} bytes", html.len());
}

/// The 1,000,000-op figure in docs/report.md: `cargo test -p reports --release --test render
/// -- --ignored --nocapture`.
#[test]
#[ignore]
fn million_ops() {
    let ops = sample::demo(1_000_000, false);
    let n = ops.len();
    let h = History::new(ops).unwrap();
    let t = std::time::Instant::now();
    let res = results(&h);
    let checked = t.elapsed();
    let t = std::time::Instant::now();
    let html = render(&RunData {
        name: "big".into(),
        history: &h,
        results: res,
        test: None,
        node_logs: vec![],
    });
    println!(
        "{n} ops: checkers {checked:?}, render {:?}, {} bytes",
        t.elapsed(),
        html.len()
    );
}

#[test]
fn page_shows_time_to_detection_per_class() {
    let (html, res) = page(4000, false);
    let d = &res["detection"];
    for k in ["lost-write", "reused-key", "dual-leader"] {
        let first = d[k]["first_s"]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {d}"));
        let proven = d[k]["proven_s"].as_f64().unwrap();
        assert!(first >= 0.0 && first <= proven, "{k}: {d}");
        // The first op cited is one of the class's proving ops.
        let op = d[k]["first_op"].as_u64().unwrap();
        let cited = res
            .as_object()
            .unwrap()
            .values()
            .filter_map(|r| r["anomalies"].as_array())
            .flatten()
            .filter(|a| a["type"] == k)
            .any(|a| {
                a["ops"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|o| o.as_u64() == Some(op))
            });
        assert!(cited, "{k}: op {op} proves no {k}");
    }
    assert!(html.contains("id=\"detection\""));
    assert!(html.contains("<td><code>lost-write</code></td>"));
    // A valid run has nothing to detect.
    let h = History::new(sample::demo(0, false)).unwrap();
    assert_eq!(checkers::result::detection(&h, &[]), json!({}));
}

#[test]
fn page_shows_each_nodes_final_state_and_marks_the_diverged() {
    let h = History::new(sample::demo(200, false)).unwrap();
    let mut res = results(&h);
    res["divergence"] = json!({
        "checker": "divergence", "valid": "invalid", "anomaly_count": 1, "anomalies": [],
        "stats": {
            "judged": true,
            "reference_nodes": ["n1", "n2"],
            "final_state": [
                {"node": "n1", "elements": 10, "missing": 0, "extra": 0, "read_op": 3},
                {"node": "n2", "elements": 10, "missing": 0, "extra": 0, "read_op": 5},
                {"node": "n<3>", "elements": 7, "missing": 3, "extra": 0, "read_op": 7},
            ],
        },
    });
    let run = RunData {
        name: "final".into(),
        history: &h,
        results: res,
        test: None,
        node_logs: vec![],
    };
    let page = render(&run);
    let at = page
        .find("id=\"final-state\"")
        .expect("a final-state section");
    let section = &page[at..at + page[at..].find("</table>").unwrap()];
    assert_eq!(
        section.matches("<tr class=\"diverged\">").count(),
        1,
        "{section}"
    );
    assert_eq!(section.matches("<tr class=\"same\">").count(), 2);
    assert!(section.contains("n&lt;3&gt;"), "escaped: {section}");
    assert!(section.contains("<b>diverged</b>"));
    // Every read it links to is listed among the cited ops.
    for op in [3, 5, 7] {
        assert!(page.contains(&format!("id=\"op-{op}\"")), "op {op} listed");
    }
}

#[test]
fn page_shows_each_nodes_state_digest_and_marks_the_diverged() {
    let h = History::new(sample::demo(200, false)).unwrap();
    let mut res = results(&h);
    res["divergence"] = json!({
        "checker": "divergence", "valid": "invalid", "anomaly_count": 1, "anomalies": [],
        "stats": {
            "judged": true,
            "final_digests": [
                {"node": "n1", "keys": 2, "differing_keys": 0, "digest_op": 4},
                {"node": "n2", "keys": 2, "differing_keys": 2, "digest_op": 6},
            ],
        },
    });
    let run = RunData {
        name: "digests".into(),
        history: &h,
        results: res,
        test: None,
        node_logs: vec![],
    };
    let page = render(&run);
    let at = page
        .find("id=\"final-state\"")
        .expect("a final-state section");
    let section = &page[at..at + page[at..].find("</table>").unwrap()];
    assert!(section.contains("state digest"), "{section}");
    assert_eq!(section.matches("<tr class=\"diverged\">").count(), 1);
    assert!(
        section.contains("<td>n2</td><td>2</td><td>2</td>"),
        "{section}"
    );
    assert!(
        !section.contains("whole-set read"),
        "no set table without set reads"
    );
}
