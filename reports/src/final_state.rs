//! The nodes' final state: what each node's last read held once faults and writes were over
//! (the `divergence` checker's `final_state`), one row per node, diverged nodes marked.

use std::fmt::Write;

use serde_json::Value as Json;

use crate::escape;

/// Writes the section (nothing without a judged comparison); returns the reads it links to.
pub(crate) fn section(out: &mut String, results: &Json) -> Vec<u64> {
    let stats = &results["divergence"]["stats"];
    let Some(rows) = stats["final_state"].as_array() else {
        return Vec::new();
    };
    let mut linked = Vec::new();
    let reference: Vec<&str> = stats["reference_nodes"]
        .as_array()
        .map(|v| v.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    out.push_str("<h2 id=\"final-state\">Final state per node</h2><p class=\"muted\">Each node's last whole-set read after the last fault and write. ");
    let _ = write!(
        out,
        "Compared with what most nodes hold ({}).</p>",
        escape(&reference.join(", "))
    );
    out.push_str("<table><tr><th>node</th><th>elements</th><th>lacks</th><th>has in excess</th><th>read</th><th></th></tr>");
    for r in rows {
        let node = r["node"].as_str().unwrap_or("?");
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let diverged = n("missing") > 0 || n("extra") > 0;
        let op = r["read_op"].as_u64().unwrap_or(0);
        linked.push(op);
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"#op-{op}\">op {op}</a></td><td>{}</td></tr>",
            if diverged { "diverged" } else { "same" },
            escape(node),
            n("elements"),
            n("missing"),
            n("extra"),
            if diverged { "<b>diverged</b>" } else { "" }
        );
    }
    out.push_str("</table>");
    linked
}
