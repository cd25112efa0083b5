//! A dependency cycle drawn as SVG: the transactions of a list-append anomaly on a circle, an
//! arrow per edge coloured and labelled by its kind (ww, wr, rw, process, realtime), in the
//! order the checker's explanation walks them.

use std::fmt::Write as _;

use serde_json::Value as Json;

use crate::escape;

/// One edge of a cycle as the checker lists it (`details.cycle`).
struct Edge {
    from: u64,
    to: u64,
    kind: String,
    process: Option<u64>,
}

/// The colour of an edge kind; the legend repeats them.
fn colour(kind: &str) -> &'static str {
    match kind {
        "ww" => "#c0392b",
        "wr" => "#2471a3",
        "rw" => "#d68910",
        "process" => "#616a6b",
        "realtime" => "#1e8449",
        _ => "#000000",
    }
}

/// The SVG of an anomaly's `details.cycle`, if it has one.
pub(crate) fn svg(details: &Json) -> Option<String> {
    let edges: Vec<Edge> = details
        .get("cycle")?
        .as_array()?
        .iter()
        .filter_map(|e| {
            Some(Edge {
                from: e.get("from")?.as_u64()?,
                to: e.get("to")?.as_u64()?,
                kind: e.get("edge")?.as_str()?.to_owned(),
                process: e.get("process").and_then(Json::as_u64),
            })
        })
        .collect();
    if edges.is_empty() {
        return None;
    }
    // The cycle's txns in the order it visits them.
    let nodes: Vec<(u64, Option<u64>)> = edges.iter().map(|e| (e.from, e.process)).collect();
    let n = nodes.len();
    let radius = (40.0 + 22.0 * n as f64).min(170.0);
    let (w, h) = (2.0 * radius + 200.0, 2.0 * radius + 90.0);
    let (cx, cy) = (w / 2.0, radius + 45.0);
    let at = |i: usize| {
        let a = -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * i as f64 / n as f64;
        (cx + radius * a.cos(), cy + radius * a.sin())
    };
    let pos = |t: u64| nodes.iter().position(|(x, _)| *x == t).map(at);
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"cycle\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-label=\"dependency cycle\">"
    );
    out.push_str("<defs>");
    for kind in ["ww", "wr", "rw", "process", "realtime"] {
        let _ = write!(
            out,
            "<marker id=\"arrow-{kind}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"{}\"/></marker>",
            colour(kind)
        );
    }
    out.push_str("</defs>");
    for e in &edges {
        let (Some((x1, y1)), Some((x2, y2))) = (pos(e.from), pos(e.to)) else {
            continue;
        };
        // Stop short of the node circles; bend a little so two-txn cycles show both arrows.
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        let (sx, sy, ex, ey) = (
            x1 + ux * 24.0,
            y1 + uy * 24.0,
            x2 - ux * 24.0,
            y2 - uy * 24.0,
        );
        let (mx, my) = ((sx + ex) / 2.0 - uy * 18.0, (sy + ey) / 2.0 + ux * 18.0);
        let kind = if colour(&e.kind) == "#000000" {
            "ww"
        } else {
            e.kind.as_str()
        };
        let _ = write!(
            out,
            "<path d=\"M{sx:.1},{sy:.1} Q{mx:.1},{my:.1} {ex:.1},{ey:.1}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" marker-end=\"url(#arrow-{kind})\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"{}\" text-anchor=\"middle\">{}</text>",
            colour(&e.kind),
            mx - uy * 4.0,
            my + ux * 4.0,
            colour(&e.kind),
            escape(&e.kind)
        );
    }
    for (i, (t, process)) in nodes.iter().enumerate() {
        let (x, y) = at(i);
        let _ = write!(
            out,
            "<a href=\"#op-{t}\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"22\" fill=\"#fdfefe\" stroke=\"#17202a\"/><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">T{t}</text></a>",
            y + 4.0
        );
        if let Some(p) = process {
            let _ = write!(
                out,
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#616a6b\" text-anchor=\"middle\">process {p}</text>",
                y + 36.0
            );
        }
    }
    out.push_str("</svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_cycle_is_drawn_with_each_edge_and_txn() {
        let d = json!({"cycle": [
            {"from": 12, "to": 7, "edge": "rw", "process": 3},
            {"from": 7, "to": 12, "edge": "process", "process": 3},
        ]});
        let s = super::svg(&d).unwrap();
        assert!(s.starts_with("<svg class=\"cycle\""));
        assert_eq!(s.matches("<circle").count(), 2);
        assert_eq!(
            s.matches("stroke-width=\"2\"").count(),
            2,
            "one arrow per edge"
        );
        for t in [
            "T12",
            "T7",
            ">rw<",
            ">process<",
            "href=\"#op-12\"",
            "process 3",
        ] {
            assert!(s.contains(t), "{t} missing: {s}");
        }
        assert!(super::svg(&json!({})).is_none());
        assert!(super::svg(&json!({"cycle": []})).is_none());
    }
}
