//! Inline SVG plots sharing one time axis: the timeline (fault windows, each node's role,
//! dual-leader windows), latency (a sample of points by outcome, plus per-bucket p50/p99 of
//! every op) and throughput (completions per second by outcome, per bucket).

use std::fmt::Write;

use checkers::dual_leader::{LeaderRun, Probe, dual_windows};
use checkers::explain::FaultWindow;

use crate::escape;

/// Plot width and the left margin for labels (px).
pub const WIDTH: f64 = 1200.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;

/// Colour of a fault kind (used for its shading everywhere).
pub fn fault_colour(kind: &str) -> &'static str {
    match kind {
        "partition" => "#f4a261",
        "pause" => "#8ecae6",
        "kill" => "#e76f51",
        "clock" => "#b5838d",
        "loss" => "#a8dadc",
        "bandwidth" => "#cdb4db",
        "member" => "#6d597a",
        _ => "#cccccc",
    }
}

/// Maps nanoseconds to x pixels.
#[derive(Clone, Copy, Debug)]
pub struct Axis {
    pub t_max: u64,
}

impl Axis {
    pub fn x(&self, t: u64) -> f64 {
        let span = self.t_max.max(1) as f64;
        LEFT + (t.min(self.t_max) as f64 / span) * (WIDTH - LEFT - RIGHT)
    }

    /// Tick marks and labels in seconds along the bottom at `y`.
    fn ticks(&self, out: &mut String, top: f64, y: f64) {
        let secs = self.t_max as f64 / 1e9;
        let raw = (secs / 10.0).max(1e-3);
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(raw);
        let mut t = 0.0;
        while t <= secs + 1e-9 {
            let x = self.x((t * 1e9) as u64);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{y}" stroke="#eee"/><text x="{x:.1}" y="{:.0}" class="tick" text-anchor="middle">{}s</text>"##,
                y + 14.0,
                trim(t)
            );
            t += step;
        }
    }
}

fn trim(t: f64) -> String {
    let s = format!("{t:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn shade(out: &mut String, axis: &Axis, faults: &[FaultWindow], top: f64, height: f64) {
    for f in faults {
        let x0 = axis.x(f.start);
        let x1 = axis.x(f.end.unwrap_or(axis.t_max)).max(x0 + 1.0);
        let _ = write!(
            out,
            r#"<rect x="{x0:.1}" y="{top}" width="{:.1}" height="{height}" fill="{}" opacity="0.3"><title>{}</title></rect>"#,
            x1 - x0,
            fault_colour(&f.kind),
            escape(&format!(
                "{}: {} ({:.3} s to {})",
                f.kind,
                f.what(),
                f.start as f64 / 1e9,
                f.end.map_or("the end (never healed)".into(), |e| format!(
                    "{:.3} s",
                    e as f64 / 1e9
                ))
            ))
        );
    }
}

/// The run's timeline: one row per node with its leadership runs (pale: possible extent,
/// solid: proven), its answered probes as a thin line, fault windows shaded behind, and
/// proven dual-leader windows in red.
pub fn timeline(
    axis: &Axis,
    nodes: &[String],
    probes: &[Probe],
    runs: &[LeaderRun],
    faults: &[FaultWindow],
) -> String {
    let row = 26.0;
    let top = 24.0;
    let height = top + row * nodes.len().max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="plot" width="{WIDTH}" height="{:.0}" viewBox="0 0 {WIDTH} {:.0}" role="img" aria-label="timeline">"#,
        height + 24.0,
        height + 24.0
    );
    shade(&mut out, axis, faults, 0.0, height);
    for f in faults {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="12" class="tick">{}</text>"#,
            axis.x(f.start) + 2.0,
            escape(&f.kind)
        );
    }
    axis.ticks(&mut out, top, height);
    let y_of = |node: &str| {
        nodes
            .iter()
            .position(|n| n == node)
            .map(|i| top + row * i as f64)
    };
    for (i, n) in nodes.iter().enumerate() {
        let y = top + row * i as f64;
        let _ = write!(
            out,
            r#"<text x="4" y="{:.0}" class="label">{}</text>"#,
            y + row * 0.6,
            escape(n)
        );
    }
    // Probe coverage: where each node answered at all (follower or leader).
    let mut i = 0;
    while i < probes.len() {
        let node = &probes[i].node;
        let mut j = i;
        while j < probes.len() && probes[j].node == *node {
            j += 1;
        }
        if let Some(y) = y_of(node) {
            let (s, e) = (probes[i].start, probes[j - 1].end);
            let _ = write!(
                out,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-width="1"/>"##,
                axis.x(s),
                y + row / 2.0,
                axis.x(e),
                y + row / 2.0
            );
        }
        i = j;
    }
    for r in runs {
        let Some(y) = y_of(&r.node) else { continue };
        let (x0, x1) = (axis.x(r.seen_from()), axis.x(r.seen_to()));
        let term = r.term.map(|t| format!(" term {t}")).unwrap_or_default();
        let _ = write!(
            out,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#9bbcf0"><title>{}</title></rect>"##,
            y + 4.0,
            (x1 - x0).max(1.5),
            row - 8.0,
            escape(&format!(
                "{} leader{term}, seen {:.3}..{:.3} s",
                r.node,
                r.seen_from() as f64 / 1e9,
                r.seen_to() as f64 / 1e9
            ))
        );
        if let Some((s, e)) = r.proven() {
            let (p0, p1) = (axis.x(s), axis.x(e));
            let _ = write!(
                out,
                r##"<rect x="{p0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#1d4ed8"/>"##,
                y + 6.0,
                (p1 - p0).max(1.0),
                row - 12.0
            );
        }
    }
    let (windows, _) = dual_windows(runs);
    for w in windows.iter().take(2000) {
        let (x0, x1) = (axis.x(w.start), axis.x(w.end));
        for r in [&runs[w.a], &runs[w.b]] {
            if let Some(y) = y_of(&r.node) {
                let _ = write!(
                    out,
                    r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#d00" stroke-width="2"><title>dual leader {:.3}..{:.3} s</title></rect>"##,
                    x0 - 1.0,
                    y + 1.0,
                    (x1 - x0).max(1.0) + 2.0,
                    row - 2.0,
                    w.start as f64 / 1e9,
                    w.end as f64 / 1e9
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// Outcome of one client op, for the latency and throughput plots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    Info,
}

pub const OUTCOMES: [(Outcome, &str, &str); 3] = [
    (Outcome::Ok, "ok", "#2a9d8f"),
    (Outcome::Fail, "fail", "#e63946"),
    (Outcome::Info, "info", "#f4a261"),
];

/// A client op's completion time, latency and outcome.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub start: u64,
    pub latency: u64,
    pub outcome: Outcome,
}

fn log_y(lat_ns: u64, lo: f64, hi: f64, top: f64, h: f64) -> f64 {
    let v = (lat_ns.max(1) as f64).log10().clamp(lo, hi);
    top + h - (v - lo) / (hi - lo).max(1e-9) * h
}

/// Latency scatter (points: every `stride`-th op) with p50/p99 lines per bucket from all ops.
pub fn latency(
    axis: &Axis,
    points: &[Point],
    stride: usize,
    pcts: &[(u64, Option<(u64, u64)>)],
    faults: &[FaultWindow],
) -> String {
    let (top, h) = (10.0, 260.0);
    let max = points.iter().map(|p| p.latency).max().unwrap_or(1).max(1);
    let min = points.iter().map(|p| p.latency).min().unwrap_or(1).max(1);
    let (lo, hi) = (
        (min as f64).log10().floor(),
        (max as f64)
            .log10()
            .ceil()
            .max((min as f64).log10().floor() + 1.0),
    );
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="plot" width="{WIDTH}" height="{:.0}" viewBox="0 0 {WIDTH} {:.0}" role="img" aria-label="latency">"#,
        top + h + 30.0,
        top + h + 30.0
    );
    shade(&mut out, axis, faults, top, h);
    axis.ticks(&mut out, top, top + h);
    let mut e = lo;
    while e <= hi {
        let y = log_y(10f64.powf(e) as u64, lo, hi, top, h);
        let ms = 10f64.powf(e) / 1e6;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.0}" y2="{y:.1}" stroke="#eee"/><text x="{:.0}" y="{:.1}" class="tick" text-anchor="end">{} ms</text>"##,
            WIDTH - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            trim(ms)
        );
        e += 1.0;
    }
    for (o, _, colour) in OUTCOMES {
        let mut d = String::new();
        for p in points
            .iter()
            .step_by(stride.max(1))
            .filter(|p| p.outcome == o)
        {
            let _ = write!(
                d,
                "M{:.1} {:.1}h0",
                axis.x(p.start),
                log_y(p.latency, lo, hi, top, h)
            );
        }
        if !d.is_empty() {
            let _ = write!(
                out,
                r#"<path d="{d}" stroke="{colour}" stroke-width="3" stroke-linecap="round" opacity="0.6"/>"#
            );
        }
    }
    for (k, colour) in [(0usize, "#333"), (1, "#7b2cbf")] {
        let pts: Vec<String> = pcts
            .iter()
            .filter_map(|(t, q)| {
                let q = (*q)?;
                let v = if k == 0 { q.0 } else { q.1 };
                Some(format!("{:.1},{:.1}", axis.x(*t), log_y(v, lo, hi, top, h)))
            })
            .collect();
        if !pts.is_empty() {
            let _ = write!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
                pts.join(" ")
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Completions per second by outcome, per bucket (`counts[b] = [ok, fail, info]`).
pub fn throughput(
    axis: &Axis,
    counts: &[[u64; 3]],
    bucket_ns: u64,
    faults: &[FaultWindow],
) -> String {
    let (top, h) = (10.0, 180.0);
    let per_s = |c: u64| c as f64 * 1e9 / bucket_ns.max(1) as f64;
    let max = counts
        .iter()
        .flat_map(|c| c.iter().copied())
        .max()
        .map_or(1.0, per_s)
        .max(1.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="plot" width="{WIDTH}" height="{:.0}" viewBox="0 0 {WIDTH} {:.0}" role="img" aria-label="throughput">"#,
        top + h + 30.0,
        top + h + 30.0
    );
    shade(&mut out, axis, faults, top, h);
    axis.ticks(&mut out, top, top + h);
    for frac in [0.0, 0.5, 1.0] {
        let y = top + h - frac * h;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.0}" y2="{y:.1}" stroke="#eee"/><text x="{:.0}" y="{:.1}" class="tick" text-anchor="end">{:.0}/s</text>"##,
            WIDTH - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            max * frac
        );
    }
    for (k, (_, _, colour)) in OUTCOMES.iter().enumerate() {
        if counts.iter().all(|c| c[k] == 0) {
            continue;
        }
        let pts: Vec<String> = counts
            .iter()
            .enumerate()
            .map(|(b, c)| {
                let t = (b as u64 * bucket_ns).saturating_add(bucket_ns / 2);
                format!("{:.1},{:.1}", axis.x(t), top + h - per_s(c[k]) / max * h)
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
            pts.join(" ")
        );
    }
    out.push_str("</svg>");
    out
}
