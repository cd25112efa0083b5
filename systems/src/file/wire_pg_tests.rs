//! The `postgres` client against a real PostgreSQL 15 started by the test: `initdb` and
//! `postgres` as the `postgres` user (it refuses root) in a temp dir, listening on loopback
//! only, stopped by its pid when the test ends, passed or not.

use std::process::{Child, Command};
use std::time::Duration;

use history::Value;
use workloads::{Client, Invocation, Outcome};

use super::{client_for, example, role_parser};
use crate::file::spec::{self, Inputs};
use crate::file::wire::WireDialect;
use crate::proto::pgwire::PgConn;
use crate::proto::tls::certs::Ca;
use crate::proto::tls::{Access, Credentials, Tls, TlsSpec};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server of the test's own; killed (by pid) and removed on drop.
struct Postgres {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown of the postmaster and its children.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGQUIT);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

fn as_postgres(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
        .arg(format!("{PG_BIN}/{program}"));
    c
}

/// Starts PostgreSQL on 127.0.0.1 (trust authentication), or says why the test is skipped.
fn start() -> Option<Postgres> {
    start_with(None)
}

/// With `secure` (a password and a CA): the `postgres` user's password checked by
/// SCRAM-SHA-256, over TLS only (`hostssl` alone in pg_hba.conf), with a certificate for
/// 127.0.0.1 that the CA signed.
fn start_with(secure: Option<(&str, &Ca)>) -> Option<Postgres> {
    let why = if !control::prereq::is_root() {
        Some("needs root (to run PostgreSQL as the postgres user)".to_string())
    } else if !std::path::Path::new(PG_BIN).join("postgres").exists() {
        Some(format!(
            "{PG_BIN}/postgres not installed (apt-get install postgresql-15)"
        ))
    } else {
        None
    };
    if let Some(why) = why {
        if std::env::var("FAULTLINE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
            panic!("{why} (FAULTLINE_REQUIRE_PRIVILEGED=1)");
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n==== SKIPPED: real PostgreSQL tests: {why} ====\n"
        );
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("faultline-pg-")
        .tempdir()
        .unwrap();
    let data = dir.path().join("data");
    let chown = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(chown.success());
    let mut init = as_postgres("initdb");
    match secure {
        None => init.args(["-A", "trust"]),
        Some((pw, _)) => {
            let f = dir.path().join("pwfile");
            std::fs::write(&f, pw).unwrap();
            let _ = Command::new("chown").arg("postgres").arg(&f).status();
            init.args(["-A", "scram-sha-256", "--pwfile"]).arg(f)
        }
    };
    let init = init
        .args(["-U", "postgres", "-D"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    // A free port: bind, note it, release it (a race with another process is unlikely).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut tls_args = Vec::new();
    if let Some((_, ca)) = secure {
        let pem = ca.issue("postgres", &["127.0.0.1".into()]).unwrap();
        let (cert, key) = (data.join("server.crt"), data.join("server.key"));
        std::fs::write(&cert, pem.cert).unwrap();
        std::fs::write(&key, pem.key).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        let _ = Command::new("chown")
            .arg("postgres")
            .arg(&cert)
            .arg(&key)
            .status();
        let _ = Command::new("chmod").arg("600").arg(&key).status();
        tls_args = vec!["-c".to_string(), "ssl=on".to_string()];
    }
    let log = std::fs::File::create(dir.path().join("pg.log")).unwrap();
    let child = as_postgres("postgres")
        .arg("-D")
        .arg(&data)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(dir.path())
        .args(["-c", "fsync=off"])
        .args(&tls_args)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let pg = Postgres { child, dir, port };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(pg.dir.path().join("pg.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(pg)
}

/// Waits until the server answers a query: it accepts connections while still starting up
/// (57P03), longer on a loaded machine.
async fn wait_ready(pg: &Postgres) {
    let addr = format!("127.0.0.1:{}", pg.port);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        match PgConn::connect(&addr, Duration::from_secs(2)).await {
            Ok(mut c) => match c.query("SELECT 1", Duration::from_secs(2)).await {
                Ok(_) => return,
                Err(e) => last = e.msg,
            },
            Err(e) => last = e.msg,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("PostgreSQL did not become ready within 30 s: {last}");
}

#[tokio::test]
async fn postgres_outcomes_against_a_real_server() {
    let Some(pg) = start() else { return };
    wait_ready(&pg).await;
    let addr = format!("127.0.0.1:{}", pg.port);
    let l = spec::load(&example("postgres-patroni.toml"), &Inputs::default()).unwrap();
    let mut c = client_for(&l, &addr, Duration::from_secs(5));
    // The example's schema (Patroni's post_bootstrap script runs the same statement).
    let schema = "CREATE TABLE s (v bigint PRIMARY KEY); CREATE TABLE ids (id serial PRIMARY KEY); \
                  CREATE TABLE r (k text PRIMARY KEY, v bigint); \
                  CREATE TABLE la (k bigint PRIMARY KEY, v bigint[] NOT NULL)";
    let mut conn = super::super::wire::Link::default();
    let d = WireDialect::new(&l, role_parser(&l, &[("n1", "127.0.0.1", pg.port)]));
    // Before the tables exist: 42P01 undefined_table, a `42` rule: fail.
    let missing = c.invoke(&Invocation::new("add", Value::Int(1))).await;
    assert_eq!(missing.outcome, Outcome::Fail, "{missing:?}");
    assert!(
        missing.error.as_deref().unwrap().starts_with("42P01"),
        "{missing:?}"
    );
    d.exchange(
        &mut conn,
        &addr,
        &super::super::wire::Request::Sql(schema.into()),
        Duration::from_secs(5),
    )
    .await
    .unwrap();

    let add = |v: i64| Invocation::new("add", Value::Int(v));
    assert_eq!(c.invoke(&add(3)).await.outcome, Outcome::Ok);
    assert_eq!(c.invoke(&add(1)).await.outcome, Outcome::Ok);
    // 23505 unique_violation: a rule says fail.
    let dup = c.invoke(&add(3)).await;
    assert_eq!(dup.outcome, Outcome::Fail, "{dup:?}");
    let set = c.invoke(&Invocation::new("read", Value::Nil)).await;
    assert_eq!(set.value, Value::List(vec![Value::Int(1), Value::Int(3)]));
    let a = c.invoke(&Invocation::new("incr", Value::Nil)).await;
    let b = c.invoke(&Invocation::new("incr", Value::Nil)).await;
    assert_eq!((a.value, b.value), (Value::Int(1), Value::Int(2)));

    let r = Invocation::new("read", Value::Nil).key(Value::str("r1"));
    assert_eq!(c.invoke(&r).await.value, Value::Nil, "no row: no value");
    let w = Invocation::new("write", Value::Int(5)).key(Value::str("r1"));
    assert_eq!(c.invoke(&w).await.outcome, Outcome::Ok);
    assert_eq!(c.invoke(&r).await.value, Value::Int(5));
    let cas = |old: i64, new: i64| {
        Invocation::new("cas", Value::List(vec![Value::Int(old), Value::Int(new)]))
            .key(Value::str("r1"))
    };
    assert_eq!(c.invoke(&cas(5, 6)).await.outcome, Outcome::Ok);
    let no = c.invoke(&cas(5, 7)).await;
    assert_eq!(no.outcome, Outcome::Fail, "UPDATE 0: {no:?}");
    assert_eq!(c.invoke(&r).await.value, Value::Int(6));

    // The final state: a row per table, its name and the md5 of its rows in key order.
    let digest = c
        .invoke(&Invocation::new("digest", Value::Nil).on("n1"))
        .await;
    assert_eq!(digest.outcome, Outcome::Ok, "{digest:?}");
    let md5 = |s: &str| Value::str(s);
    assert_eq!(
        digest.value,
        Value::Map(vec![
            (Value::str("s"), md5("e034c70ba2561e846a90e3dbd05a3b39")), // "1,3"
            (Value::str("ids"), md5("05cf281c050be3da4eecf3bc6e8aac1b")), // "1,2"
            (Value::str("r"), md5("c7656e937b1fa8b7bbfd05e9c832ac22")), // "r1=6"
            (Value::str("la"), md5("d41d8cd98f00b204e9800998ecf8427e")), // ""
        ])
    );

    // The leader call: a primary names itself.
    let role = d.probe("n1", &addr, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (role.role.as_str(), role.leader.as_deref()),
        ("leader", Some("n1"))
    );
    assert_eq!(role.term, Some(1));
    let probe = c
        .invoke(&Invocation::new("leader", Value::Nil).on("n1"))
        .await;
    assert_eq!(probe.outcome, Outcome::Ok, "{probe:?}");

    // The server ends the connection mid-statement (57P01, FATAL): no rule matches, so the
    // write is unknown, and the next op reconnects.
    let mut l2 = l.clone();
    l2.ops.insert(
        "write",
        super::super::ops::OpTemplate::Sql("SELECT pg_terminate_backend(pg_backend_pid())".into()),
    );
    let mut c2 = client_for(&l2, &addr, Duration::from_secs(5));
    let killed = c2.invoke(&w).await;
    assert_eq!(killed.outcome, Outcome::Info, "{killed:?}");
    assert!(
        killed.error.as_deref().unwrap().starts_with("57P01"),
        "{killed:?}"
    );
    assert_eq!(c2.invoke(&r).await.value, Value::Int(6), "reconnected");
    // A statement still running at the timeout: info for a write, fail for a read.
    l2.ops.insert(
        "write",
        super::super::ops::OpTemplate::Sql("SELECT pg_sleep(3)".into()),
    );
    l2.ops.insert(
        "read",
        super::super::ops::OpTemplate::Sql("SELECT pg_sleep(3)".into()),
    );
    let mut c3 = client_for(&l2, &addr, Duration::from_millis(300));
    assert_eq!(c3.invoke(&w).await.outcome, Outcome::Info);
    assert_eq!(c3.invoke(&r).await.outcome, Outcome::Fail);
    drop(pg);
    // The server is gone: nothing is sent, so nothing happened.
    let mut c4 = client_for(&l, &addr, Duration::from_secs(1));
    assert_eq!(c4.invoke(&w).await.outcome, Outcome::Fail);
}

#[tokio::test]
async fn scram_over_tls_with_the_right_password_and_ca_only() {
    let (ca, stranger) = (Ca::new("pg test ca").unwrap(), Ca::new("stranger").unwrap());
    let Some(pg) = start_with(Some(("s3cret-pg", &ca))) else {
        return;
    };
    let addr = format!("127.0.0.1:{}", pg.port);
    let files = tempfile::tempdir().unwrap();
    let tls_of = |ca: &Ca, name: &str| {
        std::fs::write(files.path().join(name), &ca.pem.cert).unwrap();
        let spec = TlsSpec {
            ca: Some(name.into()),
            verify: true,
            ..TlsSpec::default()
        };
        Tls::load(&spec, files.path()).unwrap()
    };
    let access = |tls: Option<Tls>, pw: &str| Access {
        tls,
        creds: Credentials {
            password: Some(pw.into()),
            ..Credentials::default()
        },
    };
    let t = Duration::from_secs(5);
    let good = access(Some(tls_of(&ca, "ca.pem")), "s3cret-pg");
    // It accepts connections before it answers queries: wait for an answer.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut c = loop {
        match PgConn::connect_as(&addr, "postgres", "postgres", &good, t).await {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() < deadline && !e.msg.starts_with("auth") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    let rows = c
        .query(
            "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            t,
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![Some("true".to_string())]],
        "the session is encrypted"
    );
    let wrong = access(Some(tls_of(&ca, "ca.pem")), "not-it");
    let e = PgConn::connect_as(&addr, "postgres", "postgres", &wrong, t)
        .await
        .err()
        .unwrap();
    assert!(!e.sent() && e.msg.starts_with("auth: 28P01"), "{e:?}");
    let untrusted = access(Some(tls_of(&stranger, "stranger.pem")), "s3cret-pg");
    let e = PgConn::connect_as(&addr, "postgres", "postgres", &untrusted, t)
        .await
        .err()
        .unwrap();
    assert!(!e.sent() && e.msg.starts_with("tls:"), "{e:?}");
    // Without TLS pg_hba.conf has no entry for the session: refused at the door.
    let plain = access(None, "s3cret-pg");
    let e = PgConn::connect_as(&addr, "postgres", "postgres", &plain, t)
        .await
        .err()
        .unwrap();
    assert!(!e.sent() && e.msg.starts_with("auth: 28000"), "{e:?}");
}
