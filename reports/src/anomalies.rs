//! The anomaly sections: time to detection, then each anomaly class by priority with the ops it
//! cites and the faults around them.

use super::*;

/// Time to detection: when each anomaly class first showed (`results.json`'s `detection`).
pub(crate) fn detection(out: &mut String, results: &Json) {
    let Some(Json::Object(classes)) = results.get("detection") else {
        return;
    };
    if classes.is_empty() {
        return;
    }
    out.push_str("<table id=\"detection\"><tr><th>anomaly</th><th>first op of its proof</th><th>proof complete</th></tr>");
    let mut rows: Vec<(&String, &Json)> = classes.iter().collect();
    rows.sort_by(|a, b| {
        let t = |j: &Json| j["first_s"].as_f64().unwrap_or(f64::MAX);
        t(a.1).total_cmp(&t(b.1))
    });
    for (class, d) in rows {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{} (op {})</td><td>{}</td></tr>",
            escape(class),
            d["first_s"]
                .as_f64()
                .map_or("?".into(), |s| format!("{s:.3} s")),
            d["first_op"].as_u64().map_or("?".into(), |i| i.to_string()),
            d["proven_s"]
                .as_f64()
                .map_or("?".into(), |s| format!("{s:.3} s")),
        );
    }
    out.push_str("</table>");
}

/// The order anomaly classes are shown in: safety first.
pub(crate) const PRIORITY: [&str; 10] = [
    "same-term-leaders",
    "split-brain-writes",
    "dual-leader",
    "lost-write",
    "reused-key",
    "nonlinearizable",
    "unexpected",
    "divergence",
    "stuck-follower",
    "unnecessary-failover",
];

/// Anomalies shown in full per class; the rest are folded.
pub(crate) const SHOWN_PER_KIND: usize = 3;

pub(crate) fn one_anomaly(out: &mut String, name: &str, a: &Json, cited: &mut BTreeSet<u64>) {
    let kind = a.get("type").and_then(Json::as_str).unwrap_or("?");
    let expl = a.get("explanation").and_then(Json::as_str).unwrap_or("");
    let ops: Vec<u64> = a
        .get("ops")
        .and_then(Json::as_array)
        .map(|v| v.iter().filter_map(Json::as_u64).collect())
        .unwrap_or_default();
    let _ = write!(
        out,
        "<div class=\"anomaly\" data-kind=\"{}\"><span class=\"kind\">{}</span> <span class=\"muted\">({})</span><p>{}</p>",
        escape(kind),
        escape(kind),
        escape(name),
        escape(expl)
    );
    if let Some(svg) = a.get("details").and_then(crate::cycle::svg) {
        out.push_str(&svg);
    }
    if !ops.is_empty() {
        out.push_str("<p class=\"muted\">ops: ");
        for (i, op) in ops.iter().enumerate().take(60) {
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "<a href=\"#op-{op}\">{op}</a>");
            if cited.len() < MAX_CITED {
                cited.insert(*op);
            }
        }
        if ops.len() > 60 {
            let _ = write!(out, " … ({} in all)", ops.len());
        }
        out.push_str("</p>");
    }
    out.push_str("</div>");
}

/// The anomaly list, grouped by class (a summary table, then the first few of each class in
/// full and the rest folded); returns the op indices it cites.
pub(crate) fn anomalies(out: &mut String, run: &RunData) -> BTreeSet<u64> {
    let mut cited = BTreeSet::new();
    out.push_str("<h2 id=\"anomalies\">Anomalies</h2>");
    let mut groups: Vec<(String, Vec<(&str, &Json)>)> = Vec::new();
    let mut unlisted = Vec::new();
    for (name, r) in checkers_of(&run.results) {
        let list = r.get("anomalies").and_then(Json::as_array);
        for a in list.into_iter().flatten() {
            let kind = a.get("type").and_then(Json::as_str).unwrap_or("?");
            match groups.iter_mut().find(|g| g.0 == kind) {
                Some(g) => g.1.push((name, a)),
                None => groups.push((kind.to_owned(), vec![(name, a)])),
            }
        }
        let count = r.get("anomaly_count").and_then(Json::as_u64).unwrap_or(0);
        let listed = list.map_or(0, Vec::len) as u64;
        if count > listed {
            unlisted.push((name, count - listed));
        }
    }
    if groups.is_empty() {
        out.push_str("<p>None found.</p>");
        return cited;
    }
    let rank = |k: &str| {
        PRIORITY
            .iter()
            .position(|p| *p == k)
            .unwrap_or(PRIORITY.len())
    };
    groups.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then(a.0.cmp(&b.0)));
    out.push_str("<table><tr><th>class</th><th>listed</th><th>found by</th></tr>");
    for (kind, list) in &groups {
        let mut by: Vec<&str> = list.iter().map(|x| x.0).collect();
        by.dedup();
        let _ = write!(
            out,
            "<tr><td><a href=\"#kind-{}\"><code>{}</code></a></td><td>{}</td><td>{}</td></tr>",
            escape(kind),
            escape(kind),
            list.len(),
            escape(&by.join(", "))
        );
    }
    out.push_str("</table>");
    for (name, n) in unlisted {
        let _ = write!(
            out,
            "<p class=\"muted\">{}: {n} more anomalies counted but not listed in results.json.</p>",
            escape(name)
        );
    }
    for (kind, list) in &groups {
        let _ = write!(
            out,
            "<h3 id=\"kind-{}\">{}</h3>",
            escape(kind),
            escape(kind)
        );
        for (name, a) in list.iter().take(SHOWN_PER_KIND) {
            one_anomaly(out, name, a, &mut cited);
        }
        if list.len() > SHOWN_PER_KIND {
            let _ = write!(
                out,
                "<details><summary>{} more {}</summary>",
                list.len() - SHOWN_PER_KIND,
                escape(kind)
            );
            for (name, a) in list.iter().skip(SHOWN_PER_KIND) {
                one_anomaly(out, name, a, &mut cited);
            }
            out.push_str("</details>");
        }
    }
    cited
}
