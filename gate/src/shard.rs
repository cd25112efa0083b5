//! Gates bigger than one machine: `faultline gate --shard K/N` runs every N-th run of the
//! expanded matrix (round robin, so every shard gets a share of every cell), and writes what
//! it found as a [`ShardFile`]; `faultline gate merge` reads the shards' files back, checks
//! that together they are the whole gate exactly once, and puts the runs back in the
//! unsplit gate's order, so its JUnit, summary and exit code are the unsplit gate's.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::config::RunSpec;
use crate::outcome::{RunOutcome, Verdict};

/// The file name a shard writes into its `--out` directory.
pub const FILE: &str = "gate.json";

/// Shard `k` of `n` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: u32,
    pub n: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("bad shard {s:?}: write K/N with 1 <= K <= N, e.g. 2/3");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

impl Shard {
    /// The runs of this shard, with their index in the whole gate.
    pub fn select(self, specs: Vec<RunSpec>) -> Vec<(usize, RunSpec)> {
        specs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 % self.n == self.k - 1)
            .collect()
    }
}

/// One run as a shard stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRun {
    /// Its place in the whole gate.
    pub index: usize,
    pub name: String,
    pub seed: u64,
    pub verdict: String,
    pub exit: Option<i32>,
    pub run_dir: Option<PathBuf>,
    pub results: Option<Json>,
    pub duration_s: f64,
}

/// A fingerprint of a whole gate: every run's name, seed and arguments, in order (FNV-1a,
/// hex). Shards of one gate share it; shards of gates whose configs differ do not, even with
/// as many runs.
pub fn fingerprint(specs: &[RunSpec]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator no argument holds, so ["ab","c"] and ["a","bc"] differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for s in specs {
        eat(s.name.as_bytes());
        eat(&s.seed.to_le_bytes());
        for a in &s.args {
            eat(a.as_bytes());
        }
    }
    format!("{h:016x}")
}

/// What one shard (or an unsplit gate) ran and found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardFile {
    pub version: u32,
    /// [`fingerprint`] of the whole gate the shard belongs to.
    pub gate: String,
    /// None for an unsplit gate.
    pub shard: Option<Shard>,
    /// Runs of the whole gate (all shards).
    pub total: usize,
    pub max_regression_pct: f64,
    pub runs: Vec<StoredRun>,
}

impl ShardFile {
    pub fn new(
        gate: String,
        shard: Option<Shard>,
        total: usize,
        max_regression_pct: f64,
        runs: &[(usize, RunOutcome)],
    ) -> ShardFile {
        ShardFile {
            version: 1,
            gate,
            shard,
            total,
            max_regression_pct,
            runs: runs
                .iter()
                .map(|(index, o)| StoredRun {
                    index: *index,
                    name: o.name.clone(),
                    seed: o.seed,
                    verdict: o.verdict.as_str().to_owned(),
                    exit: o.exit,
                    run_dir: o.run_dir.clone(),
                    results: o.results.clone(),
                    duration_s: o.duration.as_secs_f64(),
                })
                .collect(),
        }
    }
}

/// The whole gate from its shards: every shard of one split exactly once, every run once,
/// in the unsplit order. Also the `max_regression_pct` they ran with.
pub fn merge(files: &[(String, ShardFile)]) -> Result<(Vec<RunOutcome>, f64), String> {
    let Some((first_name, first)) = files.first() else {
        return Err("no shard to merge: give the --out directories of the shards".into());
    };
    let n = first.shard.map_or(1, |s| s.n);
    let mut seen = vec![false; n as usize];
    let mut runs: Vec<Option<RunOutcome>> = vec![None; first.total];
    for (name, f) in files {
        if f.version != 1 {
            return Err(format!("{name}: version {} is not 1", f.version));
        }
        let s = f.shard.unwrap_or(Shard { k: 1, n: 1 });
        if s.n != n || f.total != first.total || f.gate != first.gate {
            return Err(format!(
                "{name} is shard {}/{} of gate {} ({} runs), {first_name} of gate {} split {n} \
                 ways ({} runs): merge the shards of one gate (same config, same seeds)",
                s.k, s.n, f.gate, f.total, first.gate, first.total
            ));
        }
        if std::mem::replace(&mut seen[s.k as usize - 1], true) {
            return Err(format!("{name}: shard {}/{n} is given twice", s.k));
        }
        for r in &f.runs {
            let slot = runs.get_mut(r.index).ok_or_else(|| {
                format!(
                    "{name}: run {} is beyond the gate's {} runs",
                    r.index, f.total
                )
            })?;
            if slot.is_some() {
                return Err(format!(
                    "{name}: run {} ({}) is in two shards",
                    r.index, r.name
                ));
            }
            let verdict = match r.verdict.as_str() {
                "valid" => Verdict::Valid,
                "invalid" => Verdict::Invalid,
                "unknown" => Verdict::Unknown,
                "error" => Verdict::Error,
                other => return Err(format!("{name}: run {}: unknown verdict {other:?}", r.name)),
            };
            *slot = Some(RunOutcome {
                name: r.name.clone(),
                seed: r.seed,
                verdict,
                exit: r.exit,
                run_dir: r.run_dir.clone(),
                results: r.results.clone(),
                duration: Duration::from_secs_f64(r.duration_s.max(0.0)),
            });
        }
    }
    if let Some(k) = seen.iter().position(|s| !s) {
        return Err(format!(
            "shard {}/{n} is missing: merge every shard's --out directory",
            k + 1
        ));
    }
    let missing: Vec<usize> = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_none())
        .map(|(i, _)| i)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} run(s) of the gate are in no shard (runs {:?}): a shard stopped early",
            missing.len(),
            missing
        ));
    }
    Ok((
        runs.into_iter().flatten().collect(),
        first.max_regression_pct,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(i: usize) -> RunSpec {
        RunSpec {
            name: format!("c/seed-{i}"),
            args: vec![],
            seed: i as u64,
        }
    }

    fn outcome(name: &str, v: Verdict) -> RunOutcome {
        RunOutcome {
            name: name.into(),
            seed: 1,
            verdict: v,
            exit: Some(0),
            run_dir: None,
            results: None,
            duration: Duration::from_millis(1500),
        }
    }

    #[test]
    fn shards_partition_the_runs_round_robin() {
        let specs: Vec<RunSpec> = (0..7).map(spec).collect();
        let mut all: Vec<usize> = Vec::new();
        for k in 1..=3 {
            let s: Shard = format!("{k}/3").parse().unwrap();
            let mine: Vec<usize> = s
                .select(specs.clone())
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            assert!(mine.len() >= 2 && mine.len() <= 3, "{mine:?}");
            all.extend(mine);
        }
        all.sort_unstable();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn merge_restores_the_unsplit_order_and_refuses_gaps_and_doubles() {
        let names = ["a", "b", "c", "d", "e"];
        let file = |k: u32| {
            let runs: Vec<(usize, RunOutcome)> = (0..5)
                .filter(|i| *i as u32 % 2 == k - 1)
                .map(|i| {
                    (
                        i,
                        outcome(
                            names[i],
                            if i == 3 {
                                Verdict::Invalid
                            } else {
                                Verdict::Valid
                            },
                        ),
                    )
                })
                .collect();
            (
                format!("s{k}"),
                ShardFile::new("g1".into(), Some(Shard { k, n: 2 }), 5, 25.0, &runs),
            )
        };
        // Through JSON, as the files travel.
        let trip = |(n, f): (String, ShardFile)| {
            (
                n,
                serde_json::from_str::<ShardFile>(&serde_json::to_string(&f).unwrap()).unwrap(),
            )
        };
        let (runs, pct) = merge(&[trip(file(2)), trip(file(1))]).unwrap();
        assert_eq!(pct, 25.0);
        let got: Vec<(&str, Verdict)> = runs.iter().map(|r| (r.name.as_str(), r.verdict)).collect();
        assert_eq!(
            got,
            [
                ("a", Verdict::Valid),
                ("b", Verdict::Valid),
                ("c", Verdict::Valid),
                ("d", Verdict::Invalid),
                ("e", Verdict::Valid)
            ]
        );
        assert_eq!(runs[0].duration, Duration::from_millis(1500));
        assert!(
            merge(&[file(1)])
                .unwrap_err()
                .contains("shard 2/2 is missing")
        );
        assert!(
            merge(&[file(1), file(1)])
                .unwrap_err()
                .contains("given twice")
        );
        let mut short = file(2);
        short.1.runs.pop();
        assert!(
            merge(&[file(1), short])
                .unwrap_err()
                .contains("in no shard")
        );
        let mut other = file(2);
        other.1.total = 6;
        assert!(
            merge(&[file(1), other])
                .unwrap_err()
                .contains("merge the shards of one gate")
        );
        let mut other = file(2);
        other.1.gate = "g2".into();
        assert!(
            merge(&[file(1), other])
                .unwrap_err()
                .contains("merge the shards of one gate")
        );
        // The fingerprint sees seeds and arguments, and where one argument ends.
        let spec = |args: &[&str], seed| RunSpec {
            name: "c/seed-1".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            seed,
        };
        let fp = |s: RunSpec| fingerprint(&[s]);
        assert_eq!(fp(spec(&["--a"], 1)), fp(spec(&["--a"], 1)));
        assert_ne!(fp(spec(&["--a"], 1)), fp(spec(&["--a"], 2)));
        assert_ne!(fp(spec(&["ab", "c"], 1)), fp(spec(&["a", "bc"], 1)));
        assert!(merge(&[]).is_err());
    }
}
