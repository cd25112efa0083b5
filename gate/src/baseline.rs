//! Failover regressions against a baseline run: failover time and unavailability may not
//! grow by more than the configured percentage (the `failover` checker's summaries).

use std::path::Path;

use serde_json::Value as Json;

/// The figures compared, as paths into `results.json`.
const METRICS: [(&str, &str, &str); 3] = [
    ("failover median", "failover_s", "median"),
    ("failover max", "failover_s", "max"),
    ("unavailable total", "unavailable_s", "total"),
];

/// Growth below this many seconds is noise, whatever the percentage.
const NOISE_S: f64 = 0.25;

#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    pub metric: &'static str,
    pub baseline: f64,
    pub current: f64,
    pub allowed_pct: f64,
}

/// Reads `results.json` from a run directory or the file itself.
pub fn load(path: &Path) -> Result<Json, String> {
    let file = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_owned()
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("failed to read the baseline {}: {e}", file.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("the baseline {} is not a results.json: {e}", file.display()))
}

fn metric(results: &Json, key: &str, field: &str) -> Option<f64> {
    results["failover"]["stats"][key][field].as_f64()
}

/// The median over runs of each metric (runs that lack it are left out).
pub fn aggregate(runs: &[&Json]) -> Vec<(&'static str, Option<f64>)> {
    METRICS
        .iter()
        .map(|&(name, key, field)| {
            let mut v: Vec<f64> = runs.iter().filter_map(|r| metric(r, key, field)).collect();
            v.sort_by(f64::total_cmp);
            (name, (!v.is_empty()).then(|| v[(v.len() - 1) / 2]))
        })
        .collect()
}

/// Metrics that grew past the allowance. A metric missing on either side is not compared.
pub fn compare(baseline: &Json, runs: &[&Json], allowed_pct: f64) -> Vec<Regression> {
    let base = aggregate(&[baseline]);
    let now = aggregate(runs);
    base.into_iter()
        .zip(now)
        .filter_map(|((metric, b), (_, c))| {
            let (b, c) = (b?, c?);
            (c > b * (1.0 + allowed_pct / 100.0) && c - b > NOISE_S).then_some(Regression {
                metric,
                baseline: b,
                current: c,
                allowed_pct,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results(median: f64, max: f64, total: f64) -> Json {
        json!({"failover": {"stats": {"failover_s": {"median": median, "max": max},
            "unavailable_s": {"total": total}}}})
    }

    #[test]
    fn flags_growth_past_the_allowance_only() {
        let base = results(2.0, 3.0, 4.0);
        let (a, b, c) = (
            results(2.2, 3.1, 6.0),
            results(2.4, 3.2, 5.5),
            results(2.1, 9.0, 5.0),
        );
        let regs = compare(&base, &[&a, &b, &c], 25.0);
        // median of medians 2.2 (+10%): fine; median of maxes 3.2: fine; median total 5.5 (+37%): regression
        assert_eq!(regs.len(), 1, "{regs:?}");
        assert_eq!(regs[0].metric, "unavailable total");
        assert_eq!(regs[0].current, 5.5);
        // Tiny absolute growth is noise even at a large percentage.
        let regs = compare(&results(0.1, 0.1, 0.1), &[&results(0.2, 0.2, 0.2)], 25.0);
        assert!(regs.is_empty());
        // Missing figures are not compared.
        assert!(compare(&json!({}), &[&a], 25.0).is_empty());
    }
}
