//! The built-in systems, listed once: their names, which command-line options apply to each,
//! and the system file that defines each (`faultline system show NAME`). What each can run
//! is its file's: the ops it defines and the faults its `[unsupported]` refuses.

use std::fmt;
use std::str::FromStr;

/// A system `faultline test --system` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    Leaderkv,
    RedisSentinel,
    Etcd,
    PostgresPatroni,
}

/// A seeded bug of leaderkv: its `--bug` value, the anomaly class faultline's test must
/// find, and the `faultline test` arguments of the workload the bug lives in (none: the
/// default workloads find it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeededBug {
    pub name: &'static str,
    pub class: &'static str,
    pub args: &'static [&'static str],
}

/// The workload follower reads are tested with: list-append, reads from followers.
pub const FOLLOWER_READS: &[&str] = &["--workload", "list-append", "--read-from", "followers"];

/// leaderkv's seeded bugs, in the order of its `Bug` enum (targets/leaderkv/README.md).
pub const LEADERKV_BUGS: [SeededBug; 11] = [
    SeededBug {
        name: "ack-before-replicate",
        class: "lost-write",
        args: &[],
    },
    SeededBug {
        name: "no-fencing",
        class: "dual-leader",
        args: &[],
    },
    SeededBug {
        name: "local-counter",
        class: "reused-key",
        args: &[],
    },
    SeededBug {
        name: "elect-stale",
        class: "lost-write",
        args: &[],
    },
    SeededBug {
        name: "no-step-down",
        class: "dual-leader",
        args: &[],
    },
    SeededBug {
        name: "ignore-session",
        class: "G-single-process",
        args: FOLLOWER_READS,
    },
    SeededBug {
        name: "read-uncommitted",
        class: "G-single-process",
        args: FOLLOWER_READS,
    },
    SeededBug {
        name: "resume-truncated",
        class: "divergence",
        args: &[],
    },
    SeededBug {
        name: "snapshot-position",
        class: "divergence",
        args: &[],
    },
    SeededBug {
        name: "wall-clock-lease",
        class: "dual-leader",
        args: &[],
    },
    SeededBug {
        name: "replica-clock",
        class: "divergence",
        args: &[],
    },
];

/// An option of `faultline test` that only some systems honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemOption {
    /// `--mode` (leaderkv's replication mode).
    Mode,
    /// `--bug` (seeded bugs: leaderkv, and system files with `bug_flags`).
    Bug,
    /// `--down-after` (Sentinel's failure detector).
    DownAfter,
    /// `--synchronous` (Patroni's synchronous mode).
    Synchronous,
    /// `--install` (install missing OS packages on the nodes).
    Install,
    /// `--secure` (deploy with TLS and authentication on).
    Secure,
}

impl SystemOption {
    /// The flag, as the command line spells it.
    pub fn flag(self) -> &'static str {
        match self {
            SystemOption::Mode => "--mode",
            SystemOption::Bug => "--bug",
            SystemOption::DownAfter => "--down-after",
            SystemOption::Synchronous => "--synchronous",
            SystemOption::Install => "--install",
            SystemOption::Secure => "--secure",
        }
    }
}

/// The values of the options that systems defined by a file take as settings.
#[derive(Debug, Clone)]
pub struct OptionValues {
    /// `--mode`.
    pub mode: String,
    /// `--synchronous`.
    pub synchronous: bool,
    /// `--down-after`.
    pub down_after: std::time::Duration,
}

impl Builtin {
    /// Every built-in system, the default first.
    pub const ALL: [Builtin; 4] = [
        Builtin::Leaderkv,
        Builtin::RedisSentinel,
        Builtin::Etcd,
        Builtin::PostgresPatroni,
    ];

    /// The name `--system` takes.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Leaderkv => "leaderkv",
            Builtin::RedisSentinel => "redis-sentinel",
            Builtin::Etcd => "etcd",
            Builtin::PostgresPatroni => "postgres-patroni",
        }
    }

    /// One line on what it is.
    pub fn about(self) -> &'static str {
        match self {
            Builtin::Leaderkv => {
                "faultline's reference leader-based store, with seeded failover bugs (built from this repository)"
            }
            Builtin::RedisSentinel => {
                "Redis with asynchronous replication, failover by Sentinel (Debian packages redis-server, redis-sentinel)"
            }
            Builtin::Etcd => {
                "an etcd (Raft) cluster over its HTTP/JSON gateway (Debian package etcd-server)"
            }
            Builtin::PostgresPatroni => {
                "PostgreSQL 15 managed by Patroni on etcd (Debian packages postgresql-15, patroni, etcd-server)"
            }
        }
    }

    /// The options of `faultline test` it honours (what it can run is its file's: the ops
    /// it defines, the faults its `[unsupported]` refuses).
    pub fn options(self) -> &'static [SystemOption] {
        use SystemOption::*;
        match self {
            Builtin::Leaderkv => &[Mode, Bug],
            Builtin::RedisSentinel => &[DownAfter, Install, Secure],
            Builtin::Etcd => &[Install, Secure],
            Builtin::PostgresPatroni => &[Synchronous, Install, Secure],
        }
    }

    /// Why it cannot run with `options` given, if it cannot.
    pub fn check(self, options: &[SystemOption]) -> Result<(), String> {
        for o in options {
            if !self.options().contains(o) {
                let takers: Vec<&str> = Builtin::ALL
                    .iter()
                    .filter(|b| b.options().contains(o))
                    .map(|b| b.name())
                    .collect();
                return Err(format!(
                    "{} does not apply to {self} (only to {}): leave it out",
                    o.flag(),
                    takers.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The `{set.KEY}` values a system that is its file takes from the options it honours.
    pub fn settings(self, o: &OptionValues) -> std::collections::BTreeMap<String, String> {
        let set = |k: &str, v: String| (k.to_owned(), v);
        match self {
            Builtin::Leaderkv => [set("mode", o.mode.clone())].into(),
            Builtin::RedisSentinel => {
                // Sentinel's failover timeout follows its failure detector, 10 s at least.
                let failover = (o.down_after * 10).max(std::time::Duration::from_secs(10));
                [
                    set("down_after_ms", o.down_after.as_millis().to_string()),
                    set("failover_timeout_ms", failover.as_millis().to_string()),
                ]
                .into()
            }
            Builtin::PostgresPatroni => [set("synchronous", o.synchronous.to_string())].into(),
            Builtin::Etcd => Default::default(),
        }
    }

    /// Its system file, parsed and validated with `inputs` (its settings, `--bug`s); with
    /// `secure`, the one that deploys it with TLS and authentication on (`--secure`).
    pub fn file(
        self,
        inputs: &crate::file::spec::Inputs,
        secure: bool,
    ) -> Result<crate::file::spec::Loaded, String> {
        let (name, text) = match self.secure_file() {
            Some(f) if secure => f,
            _ => self.system_file(),
        };
        let path = std::path::Path::new("(built in)").join(name);
        crate::file::spec::parse(&path, text, inputs)
    }

    /// The system file that defines it, as shipped in examples/systems/ (and a starting point
    /// for a file of one's own: `faultline system show NAME`).
    pub fn system_file(self) -> (&'static str, &'static str) {
        match self {
            Builtin::Leaderkv => (
                "leaderkv.toml",
                include_str!("../../examples/systems/leaderkv.toml"),
            ),
            Builtin::RedisSentinel => (
                "redis-sentinel.toml",
                include_str!("../../examples/systems/redis-sentinel.toml"),
            ),
            Builtin::Etcd => (
                "etcd.toml",
                include_str!("../../examples/systems/etcd.toml"),
            ),
            Builtin::PostgresPatroni => (
                "postgres-patroni.toml",
                include_str!("../../examples/systems/postgres-patroni.toml"),
            ),
        }
    }
}

impl Builtin {
    /// The system file that deploys it with TLS and authentication on, with certificates
    /// and a password made for each run (`--secure`), as shipped in examples/systems/.
    pub fn secure_file(self) -> Option<(&'static str, &'static str)> {
        match self {
            Builtin::Leaderkv => None,
            Builtin::RedisSentinel => Some((
                "redis-sentinel-tls.toml",
                include_str!("../../examples/systems/redis-sentinel-tls.toml"),
            )),
            Builtin::Etcd => Some((
                "etcd-tls.toml",
                include_str!("../../examples/systems/etcd-tls.toml"),
            )),
            Builtin::PostgresPatroni => Some((
                "postgres-patroni-tls.toml",
                include_str!("../../examples/systems/postgres-patroni-tls.toml"),
            )),
        }
    }
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Builtin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Builtin::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
                format!(
                    "unknown system {s:?} (known: {}; or describe your own with --system-file)",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nemesis::FaultKind;
    use workloads::Workload;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known() {
        for b in Builtin::ALL {
            assert_eq!(b.name().parse::<Builtin>(), Ok(b));
        }
        let e = "redis".parse::<Builtin>().unwrap_err();
        assert!(
            e.contains("leaderkv, redis-sentinel, etcd, postgres-patroni"),
            "{e}"
        );
    }

    fn file_of(b: Builtin) -> crate::file::spec::Loaded {
        b.file(&Default::default(), false)
            .unwrap_or_else(|e| panic!("{b}: {e}"))
    }

    #[test]
    fn secure_files_validate_and_generate_what_they_use() {
        for b in Builtin::ALL {
            let Some((name, _)) = b.secure_file() else {
                assert!(!b.options().contains(&SystemOption::Secure), "{b}");
                continue;
            };
            assert!(b.options().contains(&SystemOption::Secure), "{b}");
            let f = b
                .file(&Default::default(), true)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(f.spec.generate.tls, "{name}");
            assert_eq!(f.spec.name, format!("{b}-tls"));
        }
    }

    #[test]
    fn options_and_faults_a_system_does_not_take_are_refused() {
        assert!(
            Builtin::Leaderkv
                .check(&[SystemOption::Mode, SystemOption::Bug])
                .is_ok()
        );
        assert!(
            file_of(Builtin::Leaderkv)
                .check_faults(&FaultKind::ALL)
                .is_ok()
        );
        let e = file_of(Builtin::Etcd)
            .check_faults(&[FaultKind::Partition, FaultKind::Clock])
            .unwrap_err();
        assert!(e.contains("etcd cannot take the clock fault: "), "{e}");
        assert!(e.contains("vDSO"), "{e}");
        assert!(
            Builtin::PostgresPatroni
                .check(&[SystemOption::Synchronous])
                .is_ok()
        );
        let e = file_of(Builtin::PostgresPatroni)
            .check_faults(&[FaultKind::Clock])
            .unwrap_err();
        assert!(e.contains("clock shim"), "{e}");
        let e = Builtin::Etcd.check(&[SystemOption::Mode]).unwrap_err();
        assert_eq!(
            e,
            "--mode does not apply to etcd (only to leaderkv): leave it out"
        );
        let e = Builtin::Leaderkv
            .check(&[SystemOption::Install])
            .unwrap_err();
        assert!(
            e.contains("only to redis-sentinel, etcd, postgres-patroni"),
            "{e}"
        );
        assert!(
            Builtin::RedisSentinel
                .check(&[SystemOption::DownAfter])
                .is_ok()
        );
        // Redis and leaderkv take every fault, membership included (their files say how a
        // node leaves); Patroni's refuses the clock only.
        assert!(
            file_of(Builtin::RedisSentinel)
                .check_faults(&FaultKind::ALL)
                .is_ok()
        );
        let patroni = file_of(Builtin::PostgresPatroni);
        assert!(patroni.check_faults(&[FaultKind::Member]).is_ok());
        let e = patroni.check_faults(&[FaultKind::Clock]).unwrap_err();
        assert!(e.contains("clock shim"), "{e}");
        assert!(
            file_of(Builtin::Leaderkv)
                .check_faults(&FaultKind::ALL)
                .is_ok()
        );
    }

    /// Every workload on every built-in system, but list-append on etcd (its lists would
    /// need keys composed of two placeholders, which base64 placeholders cannot join).
    #[test]
    fn every_builtin_runs_every_workload_but_etcd_lists() {
        let all = Workload::ALL;
        for b in Builtin::ALL {
            let lacking = if b == Builtin::Etcd {
                vec![Workload::ListAppend]
            } else {
                vec![]
            };
            let runs: Vec<Workload> = all.into_iter().filter(|w| !lacking.contains(w)).collect();
            assert_eq!(file_of(b).supported(&all), (runs, lacking), "{b}");
        }
    }

    #[test]
    fn every_builtin_ships_a_system_file_that_loads() {
        for b in Builtin::ALL {
            let (name, text) = b.system_file();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            crate::file::spec::load(&p, &crate::file::spec::Inputs::default())
                .unwrap_or_else(|e| panic!("{b}: {name}: {e}"));
        }
    }
}
