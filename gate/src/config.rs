//! `gate.toml`: what to run. A matrix of systems/options x workloads x nemeses x seeds.
//!
//! ```toml
//! [gate]
//! runs = 3                      # seeds per cell: seed_base, seed_base + 1, ...
//! seed_base = 1
//! args = ["--time-limit", "30s", "--nodes", "3"]   # passed to every run
//! max_regression_pct = 25       # with --baseline: allowed growth of failover/unavailability
//!
//! [[matrix]]
//! name = "leaderkv-sync"
//! args = ["--system", "leaderkv", "--mode", "sync"]
//! workloads = ["set,unique-ids", "register"]
//! nemeses = ["partition", "partition,pause,kill"]
//! ```

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    #[serde(default)]
    pub gate: GateSection,
    #[serde(default)]
    pub matrix: Vec<Cell>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSection {
    #[serde(default = "default_runs")]
    pub runs: u64,
    #[serde(default = "default_seed_base")]
    pub seed_base: u64,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "default_regression")]
    pub max_regression_pct: f64,
}

impl Default for GateSection {
    fn default() -> Self {
        GateSection {
            runs: default_runs(),
            seed_base: default_seed_base(),
            args: Vec::new(),
            max_regression_pct: default_regression(),
        }
    }
}

fn default_runs() -> u64 {
    3
}
fn default_seed_base() -> u64 {
    1
}
fn default_regression() -> f64 {
    25.0
}

/// One row of the matrix: a system with its options, crossed with workloads and nemeses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    pub name: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub workloads: Vec<String>,
    #[serde(default)]
    pub nemeses: Vec<String>,
}

/// One `faultline test` to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// `<cell>/<workload>/<nemesis>/seed-<n>`: the JUnit test case name.
    pub name: String,
    pub args: Vec<String>,
    pub seed: u64,
}

impl GateConfig {
    pub fn load(path: &Path) -> Result<GateConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
        GateConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<GateConfig, String> {
        let cfg: GateConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        if cfg.matrix.is_empty() {
            return Err("no [[matrix]] entry: nothing to run (see docs/ci.md)".into());
        }
        if cfg.gate.runs == 0 {
            return Err("[gate] runs must be at least 1".into());
        }
        for c in &cfg.matrix {
            for a in &c.args {
                if matches!(a.as_str(), "--seed" | "--store") {
                    return Err(format!(
                        "matrix entry {:?}: {a} is set by the gate; remove it from args",
                        c.name
                    ));
                }
            }
        }
        Ok(cfg)
    }

    /// A config with one cell from the short form `gate --runs N -- TEST-ARGS...`.
    pub fn short(runs: u64, seed_base: u64, args: Vec<String>) -> GateConfig {
        GateConfig {
            gate: GateSection {
                runs,
                seed_base,
                ..GateSection::default()
            },
            matrix: vec![Cell {
                name: "test".into(),
                args,
                workloads: Vec::new(),
                nemeses: Vec::new(),
            }],
        }
    }

    /// Every run, in a stable order: cells, then workloads, then nemeses, then seeds.
    pub fn expand(&self) -> Vec<RunSpec> {
        let mut out = Vec::new();
        let opt = |v: &Vec<String>| -> Vec<Option<String>> {
            if v.is_empty() {
                vec![None]
            } else {
                v.iter().cloned().map(Some).collect()
            }
        };
        for cell in &self.matrix {
            for w in opt(&cell.workloads) {
                for n in opt(&cell.nemeses) {
                    for i in 0..self.gate.runs {
                        let seed = self.gate.seed_base + i;
                        let mut args = self.gate.args.clone();
                        args.extend(cell.args.iter().cloned());
                        let mut name = cell.name.clone();
                        if let Some(w) = &w {
                            args.extend(["--workload".into(), w.clone()]);
                            name += &format!("/{w}");
                        }
                        if let Some(n) = &n {
                            args.extend(["--nemesis".into(), n.clone()]);
                            name += &format!("/{n}");
                        }
                        name += &format!("/seed-{seed}");
                        out.push(RunSpec { name, args, seed });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_the_matrix_in_order() {
        let cfg = GateConfig::parse(
            r#"
[gate]
runs = 2
seed_base = 10
args = ["--time-limit", "30s"]

[[matrix]]
name = "kv"
args = ["--system", "leaderkv"]
workloads = ["set", "register"]
nemeses = ["partition"]
"#,
        )
        .unwrap();
        let runs = cfg.expand();
        assert_eq!(runs.len(), 4);
        assert_eq!(runs[0].name, "kv/set/partition/seed-10");
        assert_eq!(runs[3].name, "kv/register/partition/seed-11");
        assert_eq!(
            runs[0].args,
            [
                "--time-limit",
                "30s",
                "--system",
                "leaderkv",
                "--workload",
                "set",
                "--nemesis",
                "partition"
            ]
        );
        assert_eq!(runs[1].seed, 11);
    }

    #[test]
    fn rejects_bad_configs_with_the_reason() {
        assert!(
            GateConfig::parse("[gate]\nruns = 2\n")
                .unwrap_err()
                .contains("no [[matrix]]")
        );
        assert!(
            GateConfig::parse("[[matrix]]\nname = \"a\"\nargs = [\"--seed\", \"1\"]\n")
                .unwrap_err()
                .contains("set by the gate")
        );
        assert!(
            GateConfig::parse("[[matrix]]\nname = \"a\"\nbogus = 1\n")
                .unwrap_err()
                .contains("bogus")
        );
    }
}
