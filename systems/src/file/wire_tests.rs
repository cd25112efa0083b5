//! The `postgres` and `http` client sections of system files: parsing and validation, and
//! outcomes against a tiny HTTP server in the test and a real PostgreSQL on loopback (root,
//! started as the `postgres` user in a temp dir, stopped by pid).

use std::path::{Path, PathBuf};
use std::time::Duration;

use history::Value;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use workloads::{Client, Completion, Invocation, Outcome, Workload};

use super::client::RoleParser;
use super::spec::{self, Inputs, Loaded};
use super::wire::{WireClient, WireDialect};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/systems")
        .join(name)
}

fn text_of(name: &str) -> String {
    std::fs::read_to_string(example(name)).unwrap()
}

fn load_text(text: &str) -> Result<Loaded, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sys.toml");
    std::fs::write(&p, text).unwrap();
    spec::load(&p, &Inputs::default()).map_err(|e| e.replace(&p.display().to_string(), "sys.toml"))
}

fn err_of(text: &str) -> String {
    let e = load_text(text).unwrap_err();
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

const ALL: [Workload; 3] = [Workload::Set, Workload::UniqueIds, Workload::Register];

#[test]
fn http_and_postgres_examples_validate() {
    for f in ["etcd.toml", "postgres-patroni.toml"] {
        let l = spec::load(&example(f), &Inputs::default()).unwrap();
        l.check_workloads(&ALL).unwrap();
    }
}

/// Each edit (`from` replaced by `to` in `text`) makes the file fail to load with one line
/// that contains `want`.
fn assert_edit_errors(text: &str, edits: &[(&str, &str, &str)]) {
    for (from, to, want) in edits {
        assert!(text.contains(from), "the example has no {from:?}");
        let e = err_of(&text.replace(from, to));
        assert!(e.contains(want), "{from:?} -> {to:?}: want {want:?}: {e}");
    }
}

#[test]
fn http_section_errors_name_the_key() {
    let etcd = text_of("etcd.toml");
    let e = err_of(&etcd.replace(
        "path = \"/v3/kv/range\"\nbody = { key = \"{key_b64}\" }",
        "body = { key = \"{key_b64}\" }",
    ));
    assert!(
        e.starts_with("sys.toml: client.ops.read: missing key `path`"),
        "{e}"
    );
    assert_edit_errors(
        &etcd,
        &[
            (
                "value = \"{value_b64}\" }\n\n[client.ops.read_set]",
                "value = \"{valu_b64}\" }\n\n[client.ops.read_set]",
                "client.ops.add.body: unknown placeholder {valu_b64} (known here: {value} {value_b64}",
            ),
            (
                "result = \"/header/revision\"",
                "reslt = \"/header/revision\"",
                "client.ops.incr.reslt: unknown key (known: method, path, body, result, decode, require)",
            ),
            (
                "result = \"/header/revision\"",
                "",
                "client.ops.incr: missing key `result`",
            ),
            (
                "result = \"/kvs/*/value\"\ndecode = \"base64\"",
                "result = \"/kvs/*/value\"\ndecode = \"hex\"",
                "client.ops.read_set.decode: \"hex\" is not base64",
            ),
            (
                "status = \"4xx\"",
                "status = \"4yy\"",
                "client.outcome[1].status: \"4yy\" is not a status code",
            ),
            (
                "[[client.outcome]]\nstatus = \"4xx\"",
                "[[client.outcome]]",
                "client.outcome[1]: missing key `status` or `error_prefix`",
            ),
            ("fields = [", "# fields = [", "leader.fields: missing key"),
            // A RESP op in an http file.
            (
                "[client.ops.add]\npath = \"/v3/kv/put\"\nbody = { key = \"cy8v{value_b64}\", value = \"{value_b64}\" }",
                "[client.ops]\nadd = [\"SADD\", \"s\", \"{value}\"]",
                "client.ops.add: the Http protocol takes a table with method, path and body",
            ),
            (
                "protocol = \"http\"",
                "protocol = \"http\"\nuser = \"postgres\"",
                "client.user: only for the postgres protocol",
            ),
        ],
    );
}

#[test]
fn postgres_section_errors_name_the_key() {
    assert_edit_errors(
        &text_of("postgres-patroni.toml"),
        &[
            (
                "WHERE k = '{key}'\"",
                "WHERE k = '{kye}'\"",
                "client.ops.read: unknown placeholder {kye}",
            ),
            (
                "incr = \"INSERT INTO ids DEFAULT VALUES RETURNING id\"",
                "incr = [\"INCR\", \"ids\"]",
                "client.ops.incr: the Postgres protocol takes one SQL string",
            ),
            (
                "incr = \"INSERT INTO ids DEFAULT VALUES RETURNING id\"",
                "incr = \" \"",
                "client.ops.incr: empty SQL",
            ),
            (
                "error_prefix = \"25006\"",
                "status = 503",
                "client.outcome[0].status: only for the http protocol",
            ),
        ],
    );
}

#[test]
fn leader_call_must_match_the_protocol() {
    let pg = text_of("postgres-patroni.toml");
    let start = pg.find("sql = \"\"\"").unwrap();
    let end = pg[start..].find("\"\"\"\nrole_index").unwrap() + start + 4;
    let resp = format!("{}resp = [\"ROLE\"]\n{}", &pg[..start], &pg[end..]);
    let e = err_of(&resp);
    assert!(
        e.contains("leader.resp: the client speaks \"postgres\": its leader call is `sql` (or use `command`)"),
        "{e}"
    );
    let none = format!("{}{}", &pg[..start], &pg[end..]);
    let e = err_of(&none);
    assert!(e.contains("leader: missing key `sql` or `command`"), "{e}");
}

fn role_parser(l: &Loaded, nodes: &[(&str, &str, u16)]) -> RoleParser {
    RoleParser::new(
        l.spec.leader.clone(),
        nodes
            .iter()
            .map(|(n, a, p)| (n.to_string(), a.to_string(), *p))
            .collect(),
    )
}

#[test]
fn etcd_status_learns_member_ids() {
    let l = spec::load(&example("etcd.toml"), &Inputs::default()).unwrap();
    let d = WireDialect::new(
        &l,
        role_parser(&l, &[("n1", "10.0.0.11", 2379), ("n2", "10.0.0.12", 2379)]),
    );
    let status = |me: &str, leader: &str| {
        super::wire::Answer::Json(json!({"header": {"member_id": me}, "leader": leader,
            "raftTerm": "3", "raftAppliedIndex": "9", "raftIndex": "10"}))
    };
    let r = d.role("n1", &status("111", "111")).unwrap();
    assert_eq!(
        (r.role.as_str(), r.leader.as_deref(), r.term),
        ("leader", Some("n1"), Some(3))
    );
    assert_eq!((r.applied, r.committed), (Some(9), Some(10)));
    // n2 names n1 by its member id, learned from n1's own answer.
    let r = d.role("n2", &status("222", "111")).unwrap();
    assert_eq!(
        (r.role.as_str(), r.leader.as_deref()),
        ("follower", Some("n1"))
    );
    // An id nobody claimed (or 0: no leader) names nobody.
    let r = d.role("n2", &status("222", "999")).unwrap();
    assert_eq!(r.leader, None);
}

/// A one-shot HTTP server on loopback: each connection gets the answer `reply` gives for
/// the request's path and body (`None`: read the request, then close without answering).
async fn http_server(
    reply: fn(&str, &str) -> Option<(u16, String)>,
) -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                let (path, body) = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let t = String::from_utf8_lossy(&buf).into_owned();
                    if let Some(i) = t.find("\r\n\r\n") {
                        let len: usize = t
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if t.len() >= i + 4 + len {
                            let path = t.split_whitespace().nth(1).unwrap_or("").to_owned();
                            break (path, t[i + 4..].to_owned());
                        }
                    }
                };
                match reply(&path, &body) {
                    Some((code, b)) => {
                        let r = format!(
                            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\n\r\n{b}",
                            b.len()
                        );
                        let _ = s.write_all(r.as_bytes()).await;
                    }
                    None if path == "/slow" => tokio::time::sleep(Duration::from_secs(5)).await,
                    None => {}
                }
            });
        }
    });
    (addr, task)
}

fn canned(path: &str, body: &str) -> Option<(u16, String)> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let key = v["key"].as_str().unwrap_or("");
    match path {
        // put: value "9" (OQ==) is refused by a "leader changed" 503, "8" (OA==) by a 400,
        // "7" (Nw==) breaks the connection after the request.
        "/v3/kv/put" => match v["value"].as_str() {
            Some("OQ==") => Some((
                503,
                r#"{"error":"etcdserver: leader changed","code":14}"#.into(),
            )),
            Some("OA==") => Some((400, r#"{"error":"bad request","code":3}"#.into())),
            Some("Nw==") => None,
            _ => Some((200, r#"{"header":{"revision":"42"}}"#.into())),
        },
        "/v3/kv/range" if key == "cy8v" => Some((
            200,
            json!({"kvs": [{"value": "Mw=="}, {"value": "MQ=="}]}).to_string(),
        )),
        "/v3/kv/range" if key == "cjE=" => {
            Some((200, json!({"kvs": [{"value": "NQ=="}]}).to_string()))
        }
        "/v3/kv/range" => Some((503, r#"{"error":"etcdserver: request timed out"}"#.into())),
        "/v3/kv/txn" => {
            let old = v["compare"][0]["value"].as_str().unwrap_or("");
            Some((200, json!({"succeeded": old == "NQ=="}).to_string()))
        }
        "/v3/maintenance/status" => Some((200, status_leading())),
        "/moved" => Some((302, "elsewhere".into())),
        "/slow" => None,
        _ => Some((404, "no such path".into())),
    }
}

fn client_for(l: &Loaded, addr: &str, timeout: Duration) -> WireClient {
    let d = WireDialect::new(l, role_parser(l, &[("n1", "127.0.0.1", 0)]));
    WireClient::new(
        std::sync::Arc::new(d),
        vec![("n1".into(), addr.into())],
        timeout,
    )
}

fn outcome(c: &Completion) -> (Outcome, Value) {
    (c.outcome, c.value.clone())
}

#[tokio::test]
async fn http_outcomes_against_a_server() {
    let l = spec::load(&example("etcd.toml"), &Inputs::default()).unwrap();
    let (addr, server) = http_server(canned).await;
    let mut c = client_for(&l, &addr, Duration::from_millis(500));
    let add = |v: i64| Invocation::new("add", Value::Int(v));
    let ok = c.invoke(&add(3)).await;
    assert_eq!(outcome(&ok), (Outcome::Ok, Value::Int(3)));
    // 503 on a write: it may have been proposed (info); 400: refused (fail).
    let c503 = c.invoke(&add(9)).await;
    assert_eq!(c503.outcome, Outcome::Info, "{c503:?}");
    assert!(
        c503.error
            .as_deref()
            .unwrap()
            .contains("HTTP 503: etcdserver: leader changed")
    );
    assert_eq!(c.invoke(&add(8)).await.outcome, Outcome::Fail);
    // The connection dropped after the request was sent: unknown.
    let dropped = c.invoke(&add(7)).await;
    assert_eq!(dropped.outcome, Outcome::Info, "{dropped:?}");
    // Reads.
    let set = c.invoke(&Invocation::new("read", Value::Nil)).await;
    assert_eq!(
        outcome(&set),
        (Outcome::Ok, Value::List(vec![Value::Int(1), Value::Int(3)]))
    );
    let r1 = Invocation::new("read", Value::Nil).key(Value::str("r1"));
    assert_eq!(outcome(&c.invoke(&r1).await), (Outcome::Ok, Value::Int(5)));
    let r2 = Invocation::new("read", Value::Nil).key(Value::str("r2"));
    assert_eq!(
        c.invoke(&r2).await.outcome,
        Outcome::Fail,
        "a read error is a failed read"
    );
    let id = c.invoke(&Invocation::new("incr", Value::Nil)).await;
    assert_eq!(outcome(&id), (Outcome::Ok, Value::Int(42)));
    // cas: `require` decides.
    let cas = |old: i64| {
        Invocation::new("cas", Value::List(vec![Value::Int(old), Value::Int(6)]))
            .key(Value::str("r1"))
    };
    assert_eq!(c.invoke(&cas(5)).await.outcome, Outcome::Ok);
    let no = c.invoke(&cas(4)).await;
    assert_eq!(no.outcome, Outcome::Fail, "{no:?}");
    assert!(no.error.unwrap().contains("/succeeded is not true"));
    // An unclassified error (a 302 matches no rule) is info.
    let mut l404 = l.clone();
    if let Some(super::ops::OpTemplate::Http(h)) = l404.ops.get_mut("write") {
        h.path = "/moved".into();
    }
    let mut c404 = client_for(&l404, &addr, Duration::from_millis(500));
    let w = Invocation::new("write", Value::Int(1)).key(Value::str("r1"));
    assert_eq!(c404.invoke(&w).await.outcome, Outcome::Info);
    server.abort();
    // Nothing listens: the request was never sent, so it did not happen.
    let _ = server.await;
    let refused = c.invoke(&add(3)).await;
    assert_eq!(refused.outcome, Outcome::Fail, "{refused:?}");
}

#[tokio::test]
async fn http_timeout_after_sending_is_info() {
    let mut l = spec::load(&example("etcd.toml"), &Inputs::default()).unwrap();
    if let Some(super::ops::OpTemplate::Http(h)) = l.ops.get_mut("add") {
        h.path = "/slow".into();
    }
    if let Some(super::ops::OpTemplate::Http(h)) = l.ops.get_mut("read_set") {
        h.path = "/slow".into();
    }
    let (addr, server) = http_server(canned).await;
    let mut c = client_for(&l, &addr, Duration::from_millis(300));
    let t = c.invoke(&Invocation::new("add", Value::Int(1))).await;
    assert_eq!(t.outcome, Outcome::Info, "{t:?}");
    assert_eq!(t.error.as_deref(), Some("timeout"));
    let r = c.invoke(&Invocation::new("read", Value::Nil)).await;
    assert_eq!(
        r.outcome,
        Outcome::Fail,
        "a read that timed out changed nothing"
    );
    server.abort();
}

#[path = "wire_pg_tests.rs"]
mod pg;

/// etcd's status of member 111 naming itself leader.
fn status_leading() -> String {
    json!({"header": {"member_id": "111"}, "leader": "111", "raftTerm": "3",
        "raftAppliedIndex": "9", "raftIndex": "10"})
    .to_string()
}

/// A leader cut off from the majority: it still says so, but its linearizable reads time out.
fn cut_off(path: &str, _body: &str) -> Option<(u16, String)> {
    match path {
        "/v3/maintenance/status" => Some((200, status_leading())),
        _ => Some((503, r#"{"error":"etcdserver: request timed out"}"#.into())),
    }
}

#[tokio::test]
async fn a_leader_claim_counts_only_when_confirmed() {
    let l = spec::load(&example("etcd.toml"), &Inputs::default()).unwrap();
    assert_eq!(l.spec.leader.confirm.as_deref(), Some("read_set"));
    let d = WireDialect::new(&l, role_parser(&l, &[("n1", "127.0.0.1", 0)]));
    let (addr, task) = http_server(canned).await;
    let r = d.probe("n1", &addr, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        (r.role.as_str(), r.leader.as_deref()),
        ("leader", Some("n1"))
    );
    task.abort();
    let (addr, task) = http_server(cut_off).await;
    let r = d.probe("n1", &addr, Duration::from_secs(2)).await.unwrap();
    assert_eq!(r.role, "unconfirmed-leader");
    // The leader probe the run records (a client's `leader` op) confirms the same way: it
    // once sent the status alone, and the history showed a cut-off leader as a second one.
    let mut c = client_for(&l, &addr, Duration::from_secs(2));
    let probe = Invocation::new("leader", Value::Nil).on(String::from("n1"));
    let done = c.invoke(&probe).await;
    assert_eq!(done.outcome, Outcome::Ok, "{done:?}");
    assert_eq!(
        done.value.get("role"),
        Some(&Value::str("unconfirmed-leader")),
        "{done:?}"
    );
    task.abort();
    // Without `confirm` the same claim counts.
    let mut l2 = l.clone();
    l2.spec.leader.confirm = None;
    let d = WireDialect::new(&l2, role_parser(&l2, &[("n1", "127.0.0.1", 0)]));
    let (addr, task) = http_server(cut_off).await;
    let r = d.probe("n1", &addr, Duration::from_secs(2)).await.unwrap();
    assert_eq!(r.role, "leader");
    task.abort();
}

#[test]
fn confirm_errors_name_the_key() {
    let etcd = text_of("etcd.toml");
    assert_edit_errors(
        &etcd,
        &[(
            "confirm = \"read_set\"",
            "confirm = \"incr\"",
            "leader.confirm: \"incr\" is not read_set",
        )],
    );
    // Without the read it names (the file then serves no set workload, which is allowed).
    let start = etcd.find("[client.ops.read_set]").unwrap();
    let end = start + etcd[start..].find("\n\n").unwrap();
    let e = err_of(&format!("{}{}", &etcd[..start], &etcd[end..]));
    assert!(
        e.contains("leader.confirm: names client.ops.read_set, which the file does not define"),
        "{e}"
    );
}

#[test]
fn unsupported_faults_name_a_fault_kind_and_a_reason() {
    let etcd = text_of("etcd.toml");
    assert_edit_errors(
        &etcd,
        &[
            (
                "\nclock = \"etcd is a Go program",
                "\nclok = \"etcd is a Go program",
                "unsupported.clok: not a fault kind (known: partition, pause, kill, clock, loss, bandwidth, member)",
            ),
            (
                "\nclock = \"etcd is a Go program, which reads the clock through the vDSO and ignores faultline's LD_PRELOAD clock shim (skew it on VMs instead)\"",
                "\nclock = \" \"",
                "unsupported.clock: say why",
            ),
        ],
    );
}
