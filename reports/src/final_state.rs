//! The nodes' final state once faults and writes were over (the `divergence` checker's
//! `final_state` and `final_digests`): each node's last whole-set read and its state digest,
//! one row per node, diverged nodes marked.

use std::fmt::Write;

use serde_json::Value as Json;

use crate::escape;

/// Writes the section (nothing without a final read or digest); returns the ops it links to.
pub(crate) fn section(out: &mut String, results: &Json) -> Vec<u64> {
    let stats = &results["divergence"]["stats"];
    let sets = stats["final_state"].as_array();
    let digests = stats["final_digests"].as_array();
    if sets.is_none() && digests.is_none() {
        return Vec::new();
    }
    let mut linked = Vec::new();
    out.push_str("<h2 id=\"final-state\">Final state per node</h2>");
    if let Some(rows) = sets {
        let reference: Vec<&str> = stats["reference_nodes"]
            .as_array()
            .map(|v| v.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let _ = write!(
            out,
            "<p class=\"muted\">Each node's last whole-set read after the last fault and write, \
             compared with what most nodes hold ({}).</p>",
            escape(&reference.join(", "))
        );
        out.push_str("<table><tr><th>node</th><th>elements</th><th>lacks</th><th>has in excess</th><th>read</th><th></th></tr>");
        for r in rows {
            let n = |k: &str| r[k].as_u64().unwrap_or(0);
            let cells = [n("elements"), n("missing"), n("extra")];
            let diverged = n("missing") > 0 || n("extra") > 0;
            row(out, r, &cells, "read_op", diverged, &mut linked);
        }
        out.push_str("</table>");
    }
    if let Some(rows) = digests {
        out.push_str(
            "<p class=\"muted\">Each node's state digest (every key with a fingerprint of its \
             value), compared key by key with what most nodes hold.</p>",
        );
        out.push_str("<table><tr><th>node</th><th>keys</th><th>keys that differ</th><th>digest</th><th></th></tr>");
        for r in rows {
            let n = |k: &str| r[k].as_u64().unwrap_or(0);
            let diverged = n("differing_keys") > 0;
            row(
                out,
                r,
                &[n("keys"), n("differing_keys")],
                "digest_op",
                diverged,
                &mut linked,
            );
        }
        out.push_str("</table>");
    }
    linked
}

/// One node's row: its name, `cells`, a link to the op at `op_key`, the diverged mark.
fn row(
    out: &mut String,
    r: &Json,
    cells: &[u64],
    op_key: &str,
    diverged: bool,
    linked: &mut Vec<u64>,
) {
    let op = r[op_key].as_u64().unwrap_or(0);
    linked.push(op);
    let _ = write!(
        out,
        "<tr class=\"{}\"><td>{}</td>",
        if diverged { "diverged" } else { "same" },
        escape(r["node"].as_str().unwrap_or("?")),
    );
    for c in cells {
        let _ = write!(out, "<td>{c}</td>");
    }
    let _ = write!(
        out,
        "<td><a href=\"#op-{op}\">op {op}</a></td><td>{}</td></tr>",
        if diverged { "<b>diverged</b>" } else { "" }
    );
}
