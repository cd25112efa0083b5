//! What one `faultline test` run left behind, as the gate, replay and shrink see it: its
//! verdict (from the exit code), its stored results and report.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value as Json;

/// The verdict of one run, as the gate sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
    /// The run could not be carried out (bad arguments, harness error, killed).
    Error,
}

impl Verdict {
    pub fn from_exit(code: Option<i32>) -> Verdict {
        match code {
            Some(0) => Verdict::Valid,
            Some(1) => Verdict::Invalid,
            Some(2) => Verdict::Unknown,
            _ => Verdict::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::Error => "error",
        }
    }
}

/// What one run left behind.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub name: String,
    pub seed: u64,
    pub verdict: Verdict,
    pub exit: Option<i32>,
    pub run_dir: Option<PathBuf>,
    /// `results.json`, when the run got that far.
    pub results: Option<Json>,
    pub duration: Duration,
}

impl RunOutcome {
    pub fn anomaly_types(&self) -> Vec<String> {
        self.results.as_ref().map(anomaly_types).unwrap_or_default()
    }

    /// One line per anomaly (its explanation), the first `limit` of them.
    pub fn anomaly_lines(&self, limit: usize) -> Vec<String> {
        let Some(Json::Object(results)) = &self.results else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, r) in results {
            for a in r["anomalies"].as_array().into_iter().flatten() {
                if out.len() == limit {
                    return out;
                }
                out.push(format!(
                    "{} [{name}]: {}",
                    a["type"].as_str().unwrap_or("?"),
                    a["explanation"].as_str().unwrap_or("")
                ));
            }
        }
        out
    }

    /// The run's HTML report, when it wrote one.
    pub fn report(&self) -> Option<PathBuf> {
        self.run_dir
            .as_ref()
            .map(|d| d.join("report.html"))
            .filter(|p| p.is_file())
    }
}

/// The anomaly classes a `results.json` names.
pub fn anomaly_types(results: &Json) -> Vec<String> {
    results["anomaly_types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
