//! End-to-end tests of third-party systems deployed with TLS and authentication on (root;
//! local clusters `flk1-` 10.77.106.0/24 ...): `--system NAME --secure`, whose files
//! (examples/systems/*-tls.toml) make a CA, certificates and a password per run. Without root or the system's programs they print
//! `SKIPPED` unless `FAULTLINE_REQUIRE_PRIVILEGED=1`.
//!
//! - Redis Sentinel, TLS everywhere and a password: still loses acknowledged writes when the
//!   primary is isolated; the run directory holds no private key and not the password.
//! - etcd, TLS with client-certificate authentication: valid under partitions and kills.
//! - PostgreSQL + Patroni, hostssl with SCRAM passwords only (replication included): a
//!   decided verdict with the primary isolated, writes acknowledged over TLS; no key in the
//!   run directory.
//! - A wrong password, or a CA that did not sign the servers' certificates: exit 255 with
//!   one line naming the node and the cause, before any workload starts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use common::{Cluster, files_containing, ready_or_skip};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/systems")
        .join(name)
}

/// The run directory of the latest run in `c`'s store.
fn latest(c: &Cluster) -> PathBuf {
    std::fs::canonicalize(c.store.path().join("latest")).expect("a stored run")
}

fn assert_no_secrets(run: &Path, secrets: &[&str]) {
    for s in ["PRIVATE KEY"].iter().chain(secrets) {
        let found = files_containing(run, s.as_bytes());
        assert!(found.is_empty(), "{s:?} found in {found:?}");
    }
}

#[test]
fn redis_sentinel_with_tls_and_a_password_still_loses_writes() {
    let test = "redis_sentinel_with_tls_and_a_password_still_loses_writes";
    if !ready_or_skip(
        test,
        &["redis-server", "redis-sentinel", "redis-cli"],
        "redis-server redis-sentinel redis-tools",
    ) {
        return;
    }
    let c = Cluster::new("flk1-", "10.77.106.0/24").recovery_wait("30s");
    let schedule = common::isolate_leader_schedule(c.store.path(), 1, 1000, 0, 25000);
    let child = common::faultline()
        .args(c.args())
        .args(["--system", "redis-sentinel", "--secure"])
        .args(["--workload", "set", "--seed", "1", "--time-limit", "30s"])
        .args(["--rate", "500", "--schedule", schedule.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The generated password, read from a node while the run is on, to look for it after.
    let pw_file = Path::new("/tmp/faultline-nodes/flk1-/n1/tls/password");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut password = None;
    while password.is_none() && Instant::now() < deadline {
        password = std::fs::read_to_string(pw_file)
            .ok()
            .filter(|p| p.len() >= 16);
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = child.wait_with_output().unwrap();
    let out = common::text(&o);
    let password = password.unwrap_or_else(|| panic!("no generated password seen:\n{out}"));
    let run = latest(&c);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let found = common::anomaly_types(&results);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected anomalies, found {found:?}:\n{out}"
    );
    assert!(found.iter().any(|t| t == "lost-write"), "{found:?}:\n{out}");
    assert_no_secrets(&run, &[&password]);
    assert!(
        !out.contains(&password),
        "the password reached the terminal"
    );
    // The node directories, the generated files with them, are gone.
    assert!(!Path::new("/tmp/faultline-nodes/flk1-/n1").exists());
}

#[test]
fn etcd_with_tls_and_client_certificates_is_valid_under_partitions() {
    let test = "etcd_with_tls_and_client_certificates_is_valid_under_partitions";
    if !ready_or_skip(test, &["etcd"], "etcd-server") {
        return;
    }
    let c = Cluster::new("flk2-", "10.77.107.0/24").recovery_wait("10s");
    let (code, out, results) = c.run(&[
        "--system",
        "etcd",
        "--secure",
        "--workload",
        "register,set",
        "--nemesis",
        "partition,kill",
        "--seed",
        "1",
        "--time-limit",
        "25s",
    ]);
    assert_eq!(
        code,
        0,
        "expected valid, found {:?}:\n{out}",
        common::anomaly_types(&results)
    );
    assert!(out.contains("etcd-tls is ready"), "{out}");
    assert_no_secrets(&latest(&c), &[]);
}

#[test]
fn postgres_patroni_with_tls_and_scram_reaches_a_verdict() {
    let test = "postgres_patroni_with_tls_and_scram_reaches_a_verdict";
    if !ready_or_skip(
        test,
        &["patroni", "etcd", "/usr/lib/postgresql/15/bin/postgres"],
        "patroni postgresql-15 etcd-server",
    ) {
        return;
    }
    let c = Cluster::new("flk4-", "10.77.109.0/24").recovery_wait("30s");
    let schedule = common::isolate_leader_schedule(c.store.path(), 1, 1000, 0, 15000);
    let (code, out, results) = c.run(&[
        "--system",
        "postgres-patroni",
        "--secure",
        "--workload",
        "set,unique-ids",
        "--schedule",
        schedule.to_str().unwrap(),
        "--seed",
        "1",
        "--time-limit",
        "25s",
        "--rate",
        "500",
    ]);
    let found = common::anomaly_types(&results);
    assert!(code == 0 || code == 1, "no verdict (exit {code}):\n{out}");
    assert!(out.contains("postgres-patroni-tls is ready"), "{out}");
    let acked = results["set"]["stats"]["acknowledged"]
        .as_u64()
        .unwrap_or(0);
    assert!(acked > 0, "no write acknowledged over TLS:\n{out}");
    // What the run found is a finding about Patroni's asynchronous replication (lost writes,
    // reused ids, two primaries; once, under CI's load, two primaries on the same timeline:
    // see docs/systems.md), not a failure of this test, which asks for a verdict over TLS.
    eprintln!("postgres-patroni --secure, primary isolated 15 s: exit {code}, anomalies {found:?}");
    assert_no_secrets(&latest(&c), &[]);
}

/// `text` with `from` replaced by `to` (which must be there), written next to the example.
fn variant(dir: &Path, example_name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(example(example_name)).unwrap();
    assert!(text.contains(from), "{from:?} not in {example_name}");
    let p = dir.join(example_name);
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    p
}

#[test]
fn a_wrong_password_or_an_untrusted_ca_stops_the_run_before_the_workload() {
    let test = "a_wrong_password_or_an_untrusted_ca_stops_the_run_before_the_workload";
    if !ready_or_skip(
        test,
        &["redis-server", "redis-sentinel", "redis-cli", "etcd"],
        "redis-server redis-sentinel redis-tools etcd-server",
    ) {
        return;
    }
    let c = Cluster::new("flk3-", "10.77.108.0/24");
    let dir = tempfile::tempdir().unwrap();
    let other = systems::proto::tls::certs::Ca::new("a stranger").unwrap();
    let other_pem = dir.path().join("other-ca.pem");
    std::fs::write(&other_pem, &other.pem.cert).unwrap();
    let client = "[client]\nprotocol = \"resp\"";
    let cases = [
        (
            variant(
                dir.path(),
                "redis-sentinel-tls.toml",
                client,
                "[client]\nprotocol = \"resp\"\npassword = \"not-the-password\"",
            ),
            "WRONGPASS",
        ),
        (
            variant(
                dir.path(),
                "etcd-tls.toml",
                "protocol = \"http\"",
                &format!(
                    "protocol = \"http\"\ntls = {{ ca = \"{}\" }}",
                    other_pem.display()
                ),
            ),
            "UnknownIssuer",
        ),
    ];
    for (file, cause) in cases {
        let (code, out, _) = c.run(&[
            "--system-file",
            file.to_str().unwrap(),
            "--workload",
            "set",
            "--time-limit",
            "10s",
        ]);
        assert_eq!(code, 255, "{}: expected 255:\n{out}", file.display());
        let errors: Vec<&str> = out.lines().filter(|l| l.contains("error:")).collect();
        assert_eq!(errors.len(), 1, "one error line:\n{out}");
        assert!(
            errors[0].contains(cause) && errors[0].contains("node n"),
            "the line names the node and the cause ({cause}): {}",
            errors[0]
        );
        assert!(!out.contains("workload running"), "{out}");
        if let Ok(run) = std::fs::canonicalize(c.store.path().join("latest")) {
            assert_no_secrets(&run, &["not-the-password"]);
        }
    }
}
