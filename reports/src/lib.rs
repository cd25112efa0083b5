//! The HTML fault report of a stored run: one self-contained page (inline CSS and SVG, no
//! script, no network) that tells a reader what happened, when, on which node, and why it is
//! a bug. Pure: data in, text out.
//!
//! - [`render`]: the page for a [`RunData`] (history, `results.json`, `test.json`, node logs).
//! - [`plot`]: the inline SVG plots (timeline with fault windows, node roles and dual-leader
//!   windows; latency; throughput), sharing one time axis.
//! - `anomalies`: time to detection and each anomaly class with the ops it cites.
//! - `cycle`: a list-append anomaly's dependency cycle drawn as SVG.
//! - `final_state`: each node's final read compared with the others (divergence per node).
//! - [`sample`]: a synthetic run with a lost write, a reused id and a dual-leader window,
//!   for demonstrations, tests and benchmarks.
//! - [`escape`]: the one HTML escaper; every value from the history, the results or the
//!   test options goes through it.
//!
//! Big histories are aggregated: throughput and latency percentiles per time bucket from
//! every op, and a sample of at most [`MAX_POINTS`] latency points; the page says so.

pub mod plot;
pub mod sample;

use history::vocab;
use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value as Json;

use checkers::dual_leader::{leader_runs, observe};
use checkers::explain::faults;
use history::{History, Op, OpType};

use plot::{Axis, OUTCOMES, Outcome, Point};

mod anomalies;
mod cycle;
mod final_state;
use anomalies::*;

/// Most latency points drawn; beyond, every k-th op is drawn.
pub const MAX_POINTS: usize = 20_000;
/// Time buckets of the throughput and percentile plots.
pub const BUCKETS: usize = 300;
/// Most ops listed in the "cited ops" table.
pub const MAX_CITED: usize = 3000;

/// Everything the report shows about one run.
#[derive(Clone, Debug)]
pub struct RunData<'a> {
    /// The run's name (its directory in the store).
    pub name: String,
    pub history: &'a History,
    /// `results.json`: `valid`, `anomaly_types`, one object per checker.
    pub results: Json,
    /// `test.json`, when the run has one (seed, command line, options).
    pub test: Option<Json>,
    /// (label, relative link) of each node log.
    pub node_logs: Vec<(String, String)>,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1260px;padding:16px;color:#222}
h1{font-size:22px;margin:0 0 4px}h3{font-size:15px;margin:14px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.v-valid{background:#2a9d8f}.v-invalid{background:#d00}.v-unknown{background:#e9a23b}
.anomaly{border-left:4px solid #d00;background:#fff6f6;margin:8px 0;padding:6px 10px}
.kind{font-weight:600;font-family:monospace}.muted{color:#666}.tick{font-size:10px;fill:#555}.label{font-size:12px;font-family:monospace}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
pre,code{font-family:ui-monospace,monospace;font-size:12px}pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:420px}
.plot{display:block;border:1px solid #eee;margin:6px 0}.legend span{margin-right:14px}
.sw{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:4px}
tr:target{background:#fff3b0}tr.diverged td{background:#fff0f0}
"#;

fn verdict_of(results: &Json) -> &'static str {
    match results.get("valid") {
        Some(Json::Bool(true)) => "valid",
        Some(Json::Bool(false)) => "invalid",
        _ => "unknown",
    }
}

/// The per-checker result objects of `results.json`.
fn checkers_of(results: &Json) -> Vec<(&str, &Json)> {
    match results {
        Json::Object(m) => m
            .iter()
            .filter(|(_, v)| v.get("anomalies").is_some() || v.get("stats").is_some())
            .map(|(k, v)| (k.as_str(), v))
            .collect(),
        _ => Vec::new(),
    }
}

fn find_op(history: &History, index: u64) -> Option<&Op> {
    let ops = history.ops();
    if let Some(op) = usize::try_from(index).ok().and_then(|i| ops.get(i)) {
        if op.index == index {
            return Some(op);
        }
    }
    ops.binary_search_by_key(&index, |o| o.index)
        .ok()
        .map(|p| &ops[p])
}

fn json_text(v: &Json, max: usize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n... (truncated)");
    }
    s
}

/// The whole page.
pub fn render(run: &RunData) -> String {
    let h = run.history;
    let mut out = String::with_capacity(256 * 1024);
    let verdict = verdict_of(&run.results);
    let t_max = h.ops().iter().filter_map(|o| o.time).max().unwrap_or(0);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — faultline report</title><style>{STYLE}</style></head><body>",
        escape(&run.name)
    );
    let _ = write!(
        out,
        "<h1>{}</h1><p><span class=\"verdict v-{verdict}\" id=\"verdict\">{}</span> {} ops over {:.3} s",
        escape(&run.name),
        verdict.to_uppercase(),
        h.len(),
        t_max as f64 / 1e9
    );
    if let Some(Json::Array(types)) = run.results.get("anomaly_types") {
        if !types.is_empty() {
            let names: Vec<String> = types
                .iter()
                .map(|t| format!("<code>{}</code>", escape(t.as_str().unwrap_or("?"))))
                .collect();
            let _ = write!(out, " — anomalies: {}", names.join(", "));
        }
    }
    out.push_str("</p>");
    detection(&mut out, &run.results);
    let mut cited = anomalies(&mut out, run);
    cited.extend(final_state::section(&mut out, &run.results));
    rerun(&mut out, run);
    plots(&mut out, h, t_max);
    details(&mut out, run);
    cited_ops(&mut out, h, &cited);
    logs(&mut out, run);
    out.push_str("<p class=\"muted\">Generated by faultline. Self-contained: no script, no network.</p></body></html>\n");
    out
}

fn rerun(out: &mut String, run: &RunData) {
    out.push_str("<h2 id=\"rerun\">Seed and re-run</h2>");
    let Some(test) = &run.test else {
        out.push_str("<p class=\"muted\">No test.json: this run was not recorded by <code>faultline test</code>.</p>");
        return;
    };
    let seed = test.get("seed").map(|s| match s {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    });
    let command = match test.get("command").or_else(|| test.get("argv")) {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Array(a)) => Some(
            a.iter()
                .map(|x| shell_word(x.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    };
    let _ = write!(
        out,
        "<p>Seed: <code id=\"seed\">{}</code></p>",
        escape(seed.as_deref().unwrap_or("(not recorded)"))
    );
    match command {
        Some(c) => {
            let _ = write!(
                out,
                "<p>Re-run with:</p><pre id=\"command\">{}</pre>",
                escape(&c)
            );
        }
        None => out.push_str("<p class=\"muted\">The command line was not recorded.</p>"),
    }
    let _ = write!(
        out,
        "<details><summary>test.json</summary><pre>{}</pre></details>",
        escape(&json_text(test, 50_000))
    );
}

fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn plots(out: &mut String, h: &History, t_max: u64) {
    let axis = Axis { t_max };
    let windows = faults(h);
    let obs = observe(h, vocab::LEADER);
    let runs = leader_runs(&obs.probes);
    let mut nodes: BTreeSet<String> = obs.probes.iter().map(|p| p.node.to_string()).collect();
    for f in &windows {
        nodes.extend(f.nodes());
    }
    let nodes: Vec<String> = nodes.into_iter().collect();
    out.push_str("<h2 id=\"timeline\">Timeline</h2><p class=\"legend\">");
    let mut kinds: Vec<&str> = windows.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for k in kinds {
        let _ = write!(
            out,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{} </span>",
            plot::fault_colour(k),
            escape(k)
        );
    }
    out.push_str("<span><i class=\"sw\" style=\"background:#9bbcf0\"></i>leader (possible extent)</span><span><i class=\"sw\" style=\"background:#1d4ed8\"></i>leader (proven)</span><span><i class=\"sw\" style=\"border:2px solid #d00\"></i>dual leader (proven)</span><span>grey line: node answered probes</span></p>");
    if nodes.is_empty() {
        out.push_str("<p class=\"muted\">No leader probes or faults to draw.</p>");
    } else {
        out.push_str(&plot::timeline(&axis, &nodes, &obs.probes, &runs, &windows));
    }
    if !windows.is_empty() {
        out.push_str(
            "<table><tr><th>fault</th><th>what</th><th>from</th><th>to</th><th>ops</th></tr>",
        );
        for f in windows.iter().take(500) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:.3} s</td><td>{}</td><td>{}</td></tr>",
                escape(&f.kind),
                escape(&f.what()),
                f.start as f64 / 1e9,
                f.end.map_or("never healed".into(), |e| format!(
                    "{:.3} s",
                    e as f64 / 1e9
                )),
                f.start_ops
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        out.push_str("</table>");
    }

    // Client ops, aggregated.
    let bucket_ns = (t_max / BUCKETS as u64).max(1);
    let nb = (t_max / bucket_ns) as usize + 1;
    let mut counts = vec![[0u64; 3]; nb];
    let mut lat: Vec<Vec<u64>> = vec![Vec::new(); nb];
    let mut points: Vec<Point> = Vec::new();
    for (_, inv, done) in h.client_pairs() {
        let (Some(t0), Some(d)) = (inv.time, done) else {
            continue;
        };
        let Some(t1) = d.time else { continue };
        let outcome = match d.kind {
            OpType::Ok => Outcome::Ok,
            OpType::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        let b = ((t1 / bucket_ns) as usize).min(nb - 1);
        counts[b][OUTCOMES.iter().position(|o| o.0 == outcome).unwrap_or(0)] += 1;
        let latency = t1.saturating_sub(t0);
        lat[b].push(latency);
        points.push(Point {
            start: t0,
            latency,
            outcome,
        });
    }
    let pcts: Vec<(u64, Option<(u64, u64)>)> = lat
        .iter_mut()
        .enumerate()
        .map(|(b, v)| {
            v.sort_unstable();
            let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
            let t = b as u64 * bucket_ns + bucket_ns / 2;
            (t, (!v.is_empty()).then(|| (q(0.5), q(0.99))))
        })
        .collect();
    let stride = points.len().div_ceil(MAX_POINTS).max(1);
    let shown = points.len().div_ceil(stride);
    out.push_str("<h2 id=\"latency\">Latency</h2><p class=\"legend\">");
    for (_, name, colour) in OUTCOMES {
        let _ = write!(
            out,
            "<span><i class=\"sw\" style=\"background:{colour}\"></i>{name}</span>"
        );
    }
    out.push_str("<span><i class=\"sw\" style=\"background:#333\"></i>p50</span><span><i class=\"sw\" style=\"background:#7b2cbf\"></i>p99</span></p>");
    let _ = write!(
        out,
        "<p class=\"muted\" id=\"sampling\">{} completed client ops; points: {} ({}), by invocation time, log scale; p50/p99 lines per 1/{BUCKETS} of the run from every op.</p>",
        points.len(),
        shown,
        if stride > 1 {
            format!("a sample: every {stride}th op")
        } else {
            "every op".into()
        }
    );
    out.push_str(&plot::latency(&axis, &points, stride, &pcts, &windows));
    let _ = write!(
        out,
        "<h2 id=\"throughput\">Throughput</h2><p class=\"muted\">Completions per second by outcome, in {:.3} s buckets (every op counted).</p>",
        bucket_ns as f64 / 1e9
    );
    out.push_str(&plot::throughput(&axis, &counts, bucket_ns, &windows));
}

fn details(out: &mut String, run: &RunData) {
    out.push_str("<h2 id=\"checkers\">Checkers</h2><table><tr><th>checker</th><th>verdict</th><th>anomalies</th><th>reason</th></tr>");
    let all = checkers_of(&run.results);
    for (name, r) in &all {
        let _ = write!(
            out,
            "<tr><td><a href=\"#checker-{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(name),
            verdict_of(r),
            r.get("anomaly_count").and_then(Json::as_u64).unwrap_or(0),
            escape(r.get("reason").and_then(Json::as_str).unwrap_or(""))
        );
    }
    out.push_str("</table>");
    for (name, r) in &all {
        let _ = write!(
            out,
            "<details id=\"checker-{}\"><summary>{} statistics</summary><pre>{}</pre></details>",
            escape(name),
            escape(name),
            escape(&json_text(r.get("stats").unwrap_or(&Json::Null), 40_000))
        );
    }
}

/// Longest value shown in the cited-ops table (a final read holds the whole set).
const MAX_CELL: usize = 300;

fn cell(v: Option<String>) -> String {
    let mut s = v.unwrap_or_default();
    if s.len() > MAX_CELL {
        let total = s.len();
        let mut cut = MAX_CELL;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(&format!(" … ({total} characters in all)"));
    }
    escape(&s)
}

fn cited_ops(out: &mut String, h: &History, cited: &BTreeSet<u64>) {
    out.push_str("<h2 id=\"ops\">Cited ops</h2>");
    if cited.is_empty() {
        out.push_str("<p class=\"muted\">No anomaly cites any op.</p>");
        return;
    }
    out.push_str("<table><tr><th>index</th><th>time</th><th>process</th><th>type</th><th>f</th><th>key</th><th>value</th><th>node</th><th>error</th></tr>");
    for &i in cited {
        let Some(op) = find_op(h, i) else {
            let _ = write!(
                out,
                "<tr id=\"op-{i}\"><td>{i}</td><td colspan=\"8\">not in the history</td></tr>"
            );
            continue;
        };
        let _ = write!(
            out,
            "<tr id=\"op-{i}\"><td>{i}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            cell(op.time_s().map(|t| format!("{t:.3} s"))),
            cell(Some(op.process.to_string())),
            op.kind,
            escape(&op.f),
            cell(op.key.as_ref().map(|k| k.to_string())),
            cell(Some(op.value.to_string())),
            cell(op.node.as_deref().map(String::from)),
            cell(op.error.as_ref().map(|e| e.to_string()))
        );
    }
    out.push_str("</table>");
}

fn logs(out: &mut String, run: &RunData) {
    out.push_str("<h2 id=\"logs\">Node logs</h2>");
    if run.node_logs.is_empty() {
        out.push_str("<p class=\"muted\">No node logs were stored with this run.</p>");
        return;
    }
    out.push_str("<ul>");
    for (label, href) in &run.node_logs {
        let _ = write!(
            out,
            "<li><a href=\"{}\">{}</a></li>",
            escape(&href_path(href)),
            escape(label)
        );
    }
    out.push_str("</ul>");
}

/// Percent-encodes what a relative link must not carry raw (`#`, `?`, `%`, spaces, quotes).
fn href_path(p: &str) -> String {
    let mut out = String::new();
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-_./~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
