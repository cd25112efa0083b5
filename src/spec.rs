//! The test spec: what `faultline test` runs, defined once, as its flags (clap) and as data
//! (serde). A run stores it in `test.json` under `spec`, with the seed it drew and its paths
//! made absolute; `faultline test --spec RUN/test.json` runs that test again, so replay and
//! shrink re-run a stored test from data instead of rewriting its command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use control::cluster;

use crate::nodes::SshArgs;

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestArgs {
    /// Run the test a stored spec describes (a run's test.json); only --seed, --schedule,
    /// --store, --time-limit and --json may be given with it, and override it.
    #[arg(long, value_name = "TEST_JSON")]
    #[serde(skip)]
    pub spec: Option<PathBuf>,
    #[arg(long, default_value = "leaderkv", help = crate::cli::values::systems())]
    pub system: String,
    /// A system described in a TOML file (docs/own-system.md), instead of --system.
    #[arg(long, conflicts_with = "system")]
    pub system_file: Option<PathBuf>,
    /// A value for the system file's `{set.KEY}` placeholders (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Number of nodes of the local cluster (brought up if it is not up).
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    #[arg(long, default_value = "set,unique-ids", help = crate::cli::values::workloads())]
    pub workload: String,
    #[arg(long, default_value = "partition,pause,kill,clock,member", help = crate::cli::values::nemeses())]
    pub nemesis: String,
    /// Where client reads go: `leader` (like writes), `followers` (in turn, every node but the
    /// one that leads) or `any` (every node in turn). Reads from followers are checked
    /// against strong-session-serializable (a process sees its own order, other processes'
    /// writes may arrive late) instead of strict-serializable.
    #[arg(long, default_value = "leader", value_parser = ["leader", "followers", "any"])]
    pub read_from: String,
    /// How long the workload runs (faults included).
    #[arg(long, default_value = "60s", value_parser = nemesis::parse_duration)]
    #[serde(with = "nemesis::duration::text")]
    pub time_limit: Duration,
    /// Client workers.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Total client ops per second (default: as fast as the system answers).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seed of the workload and the fault schedule (random when left out; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long = "bug", value_name = "BUG", help = crate::cli::values::bugs())]
    pub bugs: Vec<String>,
    /// Replication mode.
    #[arg(long, default_value = "sync", value_parser = ["sync", "semi-sync", "async"])]
    pub mode: String,
    /// How faults are timed: `adaptive` aims most faults at the leader and holds each until
    /// the system fails over; `interval` starts a random fault every other interval.
    #[arg(long, default_value = "adaptive", value_parser = ["adaptive", "interval"])]
    pub nemesis_mode: String,
    /// Adaptive: the longest quiet time between episodes and the length of faults not aimed
    /// at the leader. Interval: quiet time before each fault, and each fault's length.
    #[arg(long, default_value = "5s", value_parser = nemesis::parse_duration)]
    #[serde(with = "nemesis::duration::text")]
    pub nemesis_interval: Duration,
    /// Adaptive: the longest a leader-aimed fault holds while waiting for a new leader.
    #[arg(long, default_value = "60s", value_parser = nemesis::parse_duration)]
    #[serde(with = "nemesis::duration::text")]
    pub fault_max: Duration,
    /// Adaptive: the longest wait, after healing, for one leader again before the next fault.
    #[arg(long, default_value = "30s", value_parser = nemesis::parse_duration)]
    #[serde(with = "nemesis::duration::text")]
    pub settle_max: Duration,
    /// Play this fault schedule (JSON or TOML, e.g. a run's schedule.json) instead.
    #[arg(long)]
    pub schedule: Option<PathBuf>,
    /// Where runs are stored.
    #[arg(long, default_value = "store", env = crate::stored::STORE_ENV)]
    pub store: PathBuf,
    /// Longest wait, after healing, for the cluster to converge before the final reads.
    #[arg(long, default_value = "10s", value_parser = nemesis::parse_duration)]
    #[serde(with = "nemesis::duration::text")]
    pub recovery_wait: Duration,
    /// Workload time before the first fault can start.
    #[arg(long, default_value = "2s", value_parser = nemesis::parse_duration)]
    #[serde(with = "nemesis::duration::text")]
    pub warmup: Duration,
    /// Client op timeout (an op with no answer by then ends `info`).
    #[arg(long, default_value = "3s", value_parser = nemesis::parse_duration)]
    #[serde(with = "nemesis::duration::text")]
    pub op_timeout: Duration,
    /// Time budget of the linearizability check (register workload).
    #[arg(long, default_value = "60s", value_parser = nemesis::parse_duration)]
    #[serde(with = "nemesis::duration::text")]
    pub check_budget: Duration,
    /// Test name (the store folder); default `<system>-<workloads>`.
    #[arg(long)]
    pub name: Option<String>,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    #[serde(skip)]
    pub json: bool,
    /// Keep the system running after the final reads (every fault healed) and print how to
    /// reach each node; `faultline cluster down` removes it (local cluster or --docker).
    #[arg(long)]
    #[serde(skip)]
    pub leave_running: bool,
    /// Sentinel's down-after-milliseconds (redis-sentinel).
    #[arg(long, default_value = "1s", value_parser = nemesis::parse_duration)]
    #[serde(with = "nemesis::duration::text")]
    pub down_after: Duration,
    /// Install a third-party system's missing OS packages with apt-get.
    #[arg(long)]
    pub install: bool,
    /// Patroni's synchronous mode (postgres-patroni; default asynchronous replication).
    #[arg(long)]
    pub synchronous: bool,
    /// Deploy with TLS and authentication on, with certificates and a password made for the
    /// run (redis-sentinel, etcd, postgres-patroni: their examples/systems/*-tls.toml).
    #[arg(long)]
    pub secure: bool,
    /// Local cluster name prefix.
    #[arg(long, default_value = cluster::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Local cluster subnet (when this command brings it up).
    #[arg(long, default_value = cluster::DEFAULT_SUBNET)]
    pub subnet: String,
    /// Directory of local clusters' state files.
    #[arg(long, env = cluster::STATE_ROOT_ENV, default_value = cluster::DEFAULT_STATE_ROOT)]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub reach: SshArgs,
}

/// The flags that may be given with `--spec`; each overrides the stored value.
pub const SPEC_OVERRIDES: [&str; 5] = ["--seed", "--schedule", "--store", "--time-limit", "--json"];

/// The values a group of flags takes when none is given, from its one clap definition.
pub(crate) fn clap_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults"));
    T::from_arg_matches(&cmd.get_matches_from(["defaults"]))
        .expect("every flag of the group has a default")
}

impl Default for TestArgs {
    fn default() -> Self {
        clap_defaults()
    }
}

impl TestArgs {
    /// The test `--spec` names, with the overrides of the command line: `raw` is the
    /// command line after `test`. Anything else given with `--spec` is refused.
    pub fn with_spec(self, raw: &[String]) -> Result<TestArgs, String> {
        let Some(path) = self.spec.clone() else {
            return Ok(self);
        };
        let given: Vec<&str> = raw
            .iter()
            .filter(|a| a.starts_with("--"))
            .map(|a| a.split('=').next().unwrap_or(a))
            .collect();
        if let Some(bad) = given
            .iter()
            .find(|f| **f != "--spec" && !SPEC_OVERRIDES.contains(f))
        {
            return Err(format!(
                "{bad} cannot be given with --spec (the spec says it; only {} may override it): \
                 edit the spec or leave --spec out",
                SPEC_OVERRIDES.join(", ")
            ));
        }
        let mut spec = read(&path)?;
        let has = |f: &str| given.contains(&f);
        if has("--seed") {
            spec.seed = self.seed;
        }
        if has("--schedule") {
            spec.schedule = self.schedule;
        }
        if has("--store") {
            spec.store = self.store;
        }
        if has("--time-limit") {
            spec.time_limit = self.time_limit;
        }
        spec.json = self.json;
        Ok(spec)
    }

    /// The spec a run stores: with the seed it drew and every path absolute (a replay runs
    /// from anywhere).
    pub fn stored(&self, seed: u64) -> serde_json::Value {
        let mut s = self.clone();
        s.seed = Some(seed);
        s.spec = None;
        let abs = |p: &mut Option<PathBuf>| {
            if let Some(x) = p.as_mut() {
                *x = absolute(x);
            }
        };
        abs(&mut s.system_file);
        abs(&mut s.schedule);
        abs(&mut s.reach.nodes_file);
        abs(&mut s.reach.ssh_key);
        abs(&mut s.reach.known_hosts);
        s.store = absolute(&s.store);
        s.state_dir = absolute(&s.state_dir);
        serde_json::to_value(&s).unwrap_or_default()
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Reads a spec: a run's `test.json` (its `spec`) or a bare spec.
fn read(path: &Path) -> Result<TestArgs, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("failed to read the spec {}: {e}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    if let Some(spec) = v.get_mut("spec") {
        v = spec.take();
    } else if v.get("argv").is_some() {
        return Err(format!(
            "{}: a test.json from before specs were stored has no `spec`: rerun it with \
             `faultline replay RUN_DIR`, which reads its command line",
            path.display()
        ));
    }
    serde_json::from_value(v).map_err(|e| format!("{}: bad spec: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `faultline test`'s flags as a command of their own.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TestArgs,
    }

    fn raw(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn a_stored_spec_reads_back_as_the_same_test() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Cli::parse_from(raw(
            "x --workload register --nemesis kill,clock --time-limit 1500ms --bug no-fencing \
             --concurrency 3 --rate 50 --nodes-file n.txt --ssh-user u --down-after 250ms",
        ))
        .args;
        a.name = Some("t".into());
        let stored = serde_json::json!({ "argv": ["faultline"], "spec": a.stored(7) });
        let p = dir.path().join("test.json");
        std::fs::write(&p, stored.to_string()).unwrap();
        let back = Cli::parse_from(raw(&format!("x --spec {}", p.display())))
            .args
            .with_spec(&raw(&format!("--spec {}", p.display())))
            .unwrap();
        assert_eq!(back.seed, Some(7));
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(a.stored(7)).unwrap()
        );
        assert_eq!(back.time_limit, Duration::from_millis(1500));
        assert_eq!(back.down_after, Duration::from_millis(250));
        assert!(back.reach.nodes_file.unwrap().is_absolute());
        assert_eq!(back.bugs, ["no-fencing"]);

        // Overrides the command line gives; nothing else.
        let o = Cli::parse_from(raw(&format!(
            "x --spec {} --seed 9 --time-limit 3s",
            p.display()
        )))
        .args
        .with_spec(&raw(&format!(
            "--spec {} --seed 9 --time-limit=3s",
            p.display()
        )))
        .unwrap();
        assert_eq!((o.seed, o.time_limit), (Some(9), Duration::from_secs(3)));
        assert_eq!(o.workload, "register");
        let e = Cli::parse_from(raw(&format!("x --spec {} --nodes 3", p.display())))
            .args
            .with_spec(&raw(&format!("--spec {} --nodes 3", p.display())))
            .unwrap_err();
        assert!(e.starts_with("--nodes cannot be given with --spec"), "{e}");
    }

    #[test]
    fn a_bad_or_old_spec_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("test.json");
        let spec = |text: &str| {
            std::fs::write(&p, text).unwrap();
            TestArgs {
                spec: Some(p.clone()),
                ..TestArgs::default()
            }
            .with_spec(&[])
            .unwrap_err()
        };
        assert!(spec(r#"{"argv": ["faultline", "test"]}"#).contains("from before specs"));
        assert!(spec(r#"{"spec": {"nodez": 3}}"#).contains("unknown field `nodez`"));
        assert!(spec(r#"{"spec": {"time_limit": "-1s"}}"#).contains("bad duration"));
        assert!(spec("{").contains("not JSON"));
    }
}
