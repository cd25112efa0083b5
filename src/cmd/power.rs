//! `faultline power`: how much a green gate is worth on this machine with these flags. Runs
//! the bundled leaderkv with each seeded bug, and the correct build, over N seeds with the
//! `faultline test` arguments given after `--`, and prints per build how often the bug was
//! caught with its anomaly class, the median time to detection, false alarms and harness
//! errors.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::{Value as Json, json};

use crate::child::{self, RunOutcome, Verdict};
use crate::exit::user_error;

pub use systems::registry::LEADERKV_BUGS as BUGS;

/// The correct build's row name.
const CORRECT: &str = "correct";

#[derive(Debug, Args)]
pub struct PowerArgs {
    /// Seeds per build.
    #[arg(long, default_value_t = 10)]
    pub runs: u64,
    /// The first seed (seeds are consecutive).
    #[arg(long, default_value_t = 1)]
    pub seed_base: u64,
    /// Builds to run, comma-separated: `correct` and the seeded bugs (default: all).
    #[arg(long)]
    pub builds: Option<String>,
    /// Where the runs are stored.
    #[arg(long, default_value = "store", env = crate::stored::STORE_ENV)]
    pub store: PathBuf,
    /// Print the table as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// `faultline test` arguments for every run, after `--` (not --bug, --seed, --store).
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

/// One build's row.
#[derive(Debug, Default)]
struct Row {
    build: String,
    expects: Option<&'static str>,
    runs: u64,
    /// Runs that found the expected class (bugs), or stayed valid (the correct build).
    caught: u64,
    /// Invalid runs of the correct build.
    false_alarms: u64,
    /// Runs that ended in a harness error (exit 255 or killed), with the first line of why.
    errors: Vec<String>,
    /// Seconds from the test's start until one anomaly of the expected class had all its proof.
    detect_s: Vec<f64>,
    /// Every class seen, with the number of runs that saw it.
    classes: std::collections::BTreeMap<String, u64>,
    missed_seeds: Vec<u64>,
}

impl Row {
    fn add(&mut self, o: &RunOutcome) {
        self.runs += 1;
        let types = o.anomaly_types();
        for t in &types {
            *self.classes.entry(t.clone()).or_default() += 1;
        }
        if o.verdict == Verdict::Error {
            let why = o
                .run_dir
                .as_ref()
                .and_then(|d| std::fs::read_to_string(d.join("faultline.log")).ok())
                .and_then(|log| {
                    log.lines()
                        .rev()
                        .find(|l| l.contains("error"))
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| format!("exit {:?}", o.exit));
            self.errors.push(format!("seed {}: {why}", o.seed));
        }
        match self.expects {
            Some(class) => {
                if o.verdict == Verdict::Invalid && types.iter().any(|t| t == class) {
                    self.caught += 1;
                    if let Some(t) = o
                        .results
                        .as_ref()
                        .and_then(|r| r["detection"][class]["proven_s"].as_f64())
                    {
                        self.detect_s.push(t);
                    }
                } else {
                    self.missed_seeds.push(o.seed);
                }
            }
            None => match o.verdict {
                Verdict::Valid => self.caught += 1,
                Verdict::Invalid => {
                    self.false_alarms += 1;
                    self.missed_seeds.push(o.seed);
                }
                _ => self.missed_seeds.push(o.seed),
            },
        }
    }

    fn median_detect_s(&self) -> Option<f64> {
        let mut v = self.detect_s.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }

    fn json(&self) -> Json {
        json!({
            "build": self.build,
            "expects": self.expects.unwrap_or("valid"),
            "runs": self.runs,
            "caught": self.caught,
            "false_alarms": self.false_alarms,
            "harness_errors": self.errors,
            "median_detection_s": self.median_detect_s(),
            "classes": self.classes,
            "missed_seeds": self.missed_seeds,
        })
    }
}

type Build = (String, Option<&'static systems::registry::SeededBug>);

fn builds(arg: Option<&str>) -> anyhow::Result<Vec<Build>> {
    let all: Vec<Build> = std::iter::once((CORRECT.to_owned(), None))
        .chain(BUGS.iter().map(|b| (b.name.to_owned(), Some(b))))
        .collect();
    let Some(list) = arg else { return Ok(all) };
    list.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            all.iter().find(|(b, _)| b == w).cloned().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|(b, _)| b.as_str()).collect();
                user_error(format!(
                    "unknown build {w:?} in --builds (known: {})",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

/// The system-load figure printed with the table: the 1-minute load average.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn run(args: PowerArgs) -> anyhow::Result<u8> {
    if args.runs == 0 {
        return Err(user_error("--runs must be at least 1"));
    }
    for a in &args.test_args {
        let flag = a.split('=').next().unwrap_or(a);
        if ["--bug", "--seed", "--store", "--system", "--system-file"].contains(&flag) {
            return Err(user_error(format!(
                "{flag} is set by faultline power itself; leave it out of the test arguments"
            )));
        }
    }
    let builds = builds(args.builds.as_deref())?;
    std::fs::create_dir_all(&args.store)
        .with_context(|| format!("failed to create the store {}", args.store.display()))?;
    let load_before = load_average();
    let mut rows = Vec::new();
    let total = builds.len() as u64 * args.runs;
    let mut done = 0;
    for (build, bug) in builds {
        let mut row = Row {
            build: build.clone(),
            expects: bug.map(|b| b.class),
            ..Row::default()
        };
        let mut test_args = args.test_args.clone();
        if let Some(bug) = bug {
            test_args.extend(["--bug".to_owned(), build.clone()]);
            // The workload the bug lives in, unless the arguments name one.
            if !test_args.iter().any(|a| a.starts_with("--workload")) {
                test_args.extend(bug.args.iter().map(|a| (*a).to_owned()));
            }
        }
        test_args.extend(["--name".to_owned(), format!("power-{build}")]);
        for seed in args.seed_base..args.seed_base + args.runs {
            done += 1;
            crate::term::note!("faultline power: [{done}/{total}] {build}, seed {seed}");
            let o = child::run_test(&build, &test_args, seed, &args.store)?;
            crate::term::note!(
                "faultline power: {build} seed {seed}: {} {:?} in {:.0} s",
                o.verdict.as_str(),
                o.anomaly_types(),
                o.duration.as_secs_f64()
            );
            row.add(&o);
        }
        rows.push(row);
    }
    let load_after = load_average();
    let table = json!({
        "runs_per_build": args.runs,
        "seeds": [args.seed_base, args.seed_base + args.runs - 1],
        "test_args": args.test_args,
        "load_average": [load_before, load_after],
        "builds": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    let path = args.store.join("power.json");
    runner::store::write_file(&path, serde_json::to_string_pretty(&table)?.as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&table)?);
    } else {
        print_table(&rows, &args, load_before, load_after);
    }
    Ok(0)
}

fn print_table(rows: &[Row], args: &PowerArgs, load_before: Option<f64>, load_after: Option<f64>) {
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.1}"));
    println!(
        "detection power: seeds {}..{}, faultline test {}; load average {} -> {}",
        args.seed_base,
        args.seed_base + args.runs - 1,
        if args.test_args.is_empty() {
            "(defaults)".to_owned()
        } else {
            args.test_args.join(" ")
        },
        load(load_before),
        load(load_after),
    );
    println!(
        "{:<22} {:<12} {:>8} {:>9} {:>7} {:>6}  classes seen",
        "build", "expects", "caught", "median", "false", "errors"
    );
    for r in rows {
        let classes: Vec<String> = r.classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        println!(
            "{:<22} {:<12} {:>8} {:>9} {:>7} {:>6}  {}",
            r.build,
            r.expects.unwrap_or("valid"),
            format!("{}/{}", r.caught, r.runs),
            r.median_detect_s()
                .map_or("-".into(), |s| format!("{s:.1} s")),
            r.false_alarms,
            r.errors.len(),
            if classes.is_empty() {
                "-".to_owned()
            } else {
                classes.join(", ")
            }
        );
    }
    for r in rows {
        if !r.missed_seeds.is_empty() {
            println!("{}: missed seeds {:?}", r.build, r.missed_seeds);
        }
        for e in &r.errors {
            println!("{}: harness error, {e}", r.build);
        }
    }
    println!("stored: {}", args.store.join("power.json").display());
}
