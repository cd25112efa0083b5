//! Parsing, validation, placeholders and the RESP dialect of system files (no root).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::proto::resp::Reply;
use history::Value;
use workloads::{Invocation, Outcome, Workload};

use super::client::{FileDialect, RoleParser};
use super::spec::{self, Inputs, Loaded, expand};
use crate::proto::router::{Redirect, RespDialect};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/systems")
        .join(name)
}

fn load_text(text: &str, inputs: &Inputs) -> Result<Loaded, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sys.toml");
    std::fs::write(&p, text).unwrap();
    spec::load(&p, inputs).map_err(|e| e.replace(&p.display().to_string(), "sys.toml"))
}

fn leaderkv_text() -> String {
    std::fs::read_to_string(example("leaderkv.toml")).unwrap()
}

#[test]
fn leaderkv_example_validates() {
    let l = spec::load(&example("leaderkv.toml"), &Inputs::default()).unwrap();
    assert_eq!(l.spec.name, "leaderkv");
    assert_eq!(l.sets["mode"], "sync");
    l.check_workloads(&[Workload::Set, Workload::UniqueIds, Workload::Register])
        .unwrap();
}

#[test]
fn postgres_repmgr_example_validates() {
    let l = spec::load(&example("postgres-repmgr.toml"), &Inputs::default()).unwrap();
    assert_eq!(l.spec.process.on_exit, nemesis::ExitPolicy::Restart);
    assert_eq!(l.spec.stages.len(), 2);
    assert_eq!(l.sets["safe"], "true");
    let unsafe_ = Inputs {
        sets: spec::parse_sets(&["safe=false".to_string()]).unwrap(),
        ..Inputs::default()
    };
    let l = spec::load(&example("postgres-repmgr.toml"), &unsafe_).unwrap();
    l.check_workloads(&[Workload::Set, Workload::UniqueIds, Workload::Register])
        .unwrap();
}

#[test]
fn exit_policy_and_pids_command_are_checked_like_the_rest() {
    let t = leaderkv_text().replace(
        "[process]\n",
        "[process]\non_exit = \"restart\"\npids_command = \"cat {dir}/x.pids\"\n",
    );
    let l = load_text(&t, &Inputs::default()).unwrap();
    assert_eq!(l.spec.process.on_exit, nemesis::ExitPolicy::Restart);
    let bad = t.replace("on_exit = \"restart\"", "on_exit = \"respawn\"");
    let e = load_text(&bad, &Inputs::default()).unwrap_err();
    assert!(e.contains("respawn") && e.contains("leave"), "{e}");
    let bad = t.replace("{dir}/x.pids", "{nodedir}/x.pids");
    let e = load_text(&bad, &Inputs::default()).unwrap_err();
    assert!(
        e.contains("process.pids_command: unknown placeholder {nodedir}"),
        "{e}"
    );
}

#[test]
fn redis_sentinel_example_validates() {
    let l = spec::load(&example("redis-sentinel.toml"), &Inputs::default()).unwrap();
    assert_eq!(l.spec.name, "redis-sentinel");
    l.check_workloads(&[Workload::Set, Workload::UniqueIds, Workload::Register])
        .unwrap();
}

#[test]
fn expand_placeholders_and_escapes() {
    let vars = BTreeMap::from([("node", "n1".to_string()), ("ip", "10.0.0.1".into())]);
    let f = |n: &str| vars.get(n).cloned();
    assert_eq!(expand("{node}@{ip}", &f).unwrap(), "n1@10.0.0.1");
    assert_eq!(expand("a {{x}} ${{HOME}}", &f).unwrap(), "a {x} ${HOME}");
    assert_eq!(
        expand("{nod}", &f).unwrap_err(),
        "unknown placeholder {nod}"
    );
    assert!(expand("{node", &f).unwrap_err().contains("unclosed"));
    assert!(expand("a } b", &f).unwrap_err().contains("lone"));
}

#[test]
fn unknown_placeholder_names_key_and_placeholder() {
    let t = leaderkv_text().replace("--id {node}", "--id {nodename}");
    let e = load_text(&t, &Inputs::default()).unwrap_err();
    assert!(
        e.starts_with("sys.toml: commands.start: unknown placeholder {nodename}"),
        "{e}"
    );
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
fn set_values_come_from_defaults_or_the_command_line() {
    let t = leaderkv_text().replace("mode = \"sync\"", "");
    let e = load_text(&t, &Inputs::default()).unwrap_err();
    assert!(
        e.contains("{set.mode}") && e.contains("--set mode=VALUE"),
        "{e}"
    );
    let inputs = Inputs {
        bugs: vec!["local-counter".into(), "no-fencing".into()],
        sets: spec::parse_sets(&["mode=async".to_string()]).unwrap(),
        ..Inputs::default()
    };
    let l = load_text(&leaderkv_text(), &inputs).unwrap();
    assert_eq!(l.sets["mode"], "async");
    assert_eq!(l.bug_flags(), "--bug local-counter --bug no-fencing");
    let vars = BTreeMap::from([("dir".to_string(), "/d".to_string())]);
    assert_eq!(
        l.render("{dir} --mode {set.mode} x", &vars).unwrap(),
        "/d --mode async x"
    );
    assert!(spec::parse_sets(&["novalue".to_string()]).is_err());
}

#[test]
fn malformed_files_give_one_line_with_key_and_line() {
    // Unknown key.
    let t = leaderkv_text().replace("[process]\n", "[process]\npidfiel = \"x\"\n");
    let e = load_text(&t, &Inputs::default()).unwrap_err();
    assert!(e.starts_with("sys.toml:") && e.contains("pidfiel"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    // Missing key.
    let t = leaderkv_text().replace("start = ", "# start = ");
    let e = load_text(&t, &Inputs::default()).unwrap_err();
    assert!(
        e.contains("missing field `start`") && e.contains("[commands]"),
        "{e}"
    );
    // Not TOML.
    let e = load_text("name = ", &Inputs::default()).unwrap_err();
    assert!(e.starts_with("sys.toml:1:"), "{e}");
    // Missing pidfile.
    let t = leaderkv_text().replace("pidfile = \"{dir}/leaderkv.pid\"", "");
    let e = load_text(&t, &Inputs::default()).unwrap_err();
    assert!(e.contains("process: missing key `pidfile`"), "{e}");
}

#[test]
fn unsupported_protocols_and_outcomes_are_refused() {
    let t = leaderkv_text().replace("protocol = \"resp\"", "protocol = \"postgres\"");
    let e = load_text(&t, &Inputs::default()).unwrap_err();
    assert!(
        e.contains("client.ops.add: the Postgres protocol takes one SQL string"),
        "{e}"
    );
    let t = leaderkv_text().replace("outcome = \"info\"", "outcome = \"ok\"");
    let e = load_text(&t, &Inputs::default()).unwrap_err();
    assert!(
        e.contains("client.outcome[0].outcome: an error cannot be ok"),
        "{e}"
    );
    let t = leaderkv_text().replace("redirect = \"next\"", "redirect = \"elsewhere\"");
    let e = load_text(&t, &Inputs::default()).unwrap_err();
    assert!(e.contains("client.outcome[2].redirect"), "{e}");
    let t = leaderkv_text().replace(
        "read = [\"GET\", \"{key}\"]",
        "read = [\"GET\", \"{value}\"]",
    );
    let e = load_text(&t, &Inputs::default()).unwrap_err();
    assert!(
        e.contains("client.ops.read[1]: unknown placeholder {value}"),
        "{e}"
    );
}

#[test]
fn workloads_need_their_ops() {
    let t = leaderkv_text().replace("cas = [", "# cas = [");
    let l = load_text(&t, &Inputs::default()).unwrap();
    l.check_workloads(&[Workload::Set]).unwrap();
    let e = l.check_workloads(&[Workload::Register]).unwrap_err();
    assert!(e.contains("register workload needs client.ops.cas"), "{e}");
}

fn dialect(l: &Loaded) -> FileDialect {
    FileDialect::new(
        l,
        RoleParser::new(
            l.spec.leader.clone(),
            vec![
                ("n1".into(), "10.0.0.11".into(), 7000),
                ("n2".into(), "10.0.0.12".into(), 7000),
            ],
        ),
    )
}

#[test]
fn ops_expand_their_templates() {
    let l = spec::load(&example("leaderkv.toml"), &Inputs::default()).unwrap();
    let d = dialect(&l);
    let s = |argv: Vec<Vec<u8>>| -> Vec<String> {
        argv.into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    };
    let add = Invocation::new("add", Value::Int(7));
    assert_eq!(s(d.command(&add).unwrap()), ["SADD", "s", "7"]);
    let read = Invocation::new("read", Value::Nil);
    assert_eq!(s(d.command(&read).unwrap()), ["SMEMBERS", "s"]);
    let get = Invocation::new("read", Value::Nil).key(Value::str("k1"));
    assert_eq!(s(d.command(&get).unwrap()), ["GET", "k1"]);
    let cas = Invocation::new("cas", Value::List(vec![Value::Int(1), Value::Int(2)]))
        .key(Value::str("k1"));
    assert_eq!(s(d.command(&cas).unwrap()), ["CAS", "k1", "1", "2"]);
    let incr = Invocation::new("incr", Value::Nil);
    assert_eq!(s(d.command(&incr).unwrap()), ["INCR", "ids"]);
    let leader = Invocation::new("leader", Value::Nil).on("n1");
    assert_eq!(s(d.command(&leader).unwrap()), ["ROLE"]);
}

#[test]
fn outcome_rules_first_match_and_info_by_default() {
    let l = spec::load(&example("leaderkv.toml"), &Inputs::default()).unwrap();
    let d = dialect(&l);
    let w = Invocation::new("write", Value::Int(1)).key(Value::str("k"));
    assert_eq!(
        d.on_error(&w, "MOVED n2 10.0.0.12:7000"),
        (Outcome::Fail, Redirect::Follow)
    );
    assert_eq!(
        d.on_error(&w, "NOLEADER no leader known (term 3)"),
        (Outcome::Fail, Redirect::Next)
    );
    assert_eq!(
        d.on_error(&w, "UNCERTAIN timed out"),
        (Outcome::Info, Redirect::Stay)
    );
    assert_eq!(
        d.on_error(&w, "CASMISMATCH current value differs"),
        (Outcome::Fail, Redirect::Stay)
    );
    // Nothing matches: it may have happened.
    assert_eq!(
        d.on_error(&w, "OOM out of memory"),
        (Outcome::Info, Redirect::Stay)
    );

    // `ops` restricts a rule.
    let t = leaderkv_text().replace(
        "[[client.outcome]]\nerror_prefix = \"UNCERTAIN\"",
        "[[client.outcome]]\nerror_prefix = \"\"\nops = [\"read\", \"read_set\"]\noutcome = \"fail\"\n\n[[client.outcome]]\nerror_prefix = \"UNCERTAIN\"",
    );
    let l = load_text(&t, &Inputs::default()).unwrap();
    let d = dialect(&l);
    let r = Invocation::new("read", Value::Nil);
    assert_eq!(d.on_error(&r, "OOM"), (Outcome::Fail, Redirect::Stay));
    assert_eq!(d.on_error(&w, "OOM"), (Outcome::Info, Redirect::Stay));
}

#[test]
fn leader_replies_by_index() {
    let l = spec::load(&example("leaderkv.toml"), &Inputs::default()).unwrap();
    let d = dialect(&l);
    let bulk = |s: &str| Reply::Bulk(Some(s.as_bytes().to_vec()));
    let role = Reply::Array(Some(vec![
        bulk("follower"),
        Reply::Int(4),
        bulk("n2"),
        bulk("10.0.0.12:7000"),
        Reply::Int(10),
        Reply::Int(9),
        Reply::Int(9),
        bulk("n1"),
    ]));
    let op = Invocation::new("leader", Value::Nil).on("n1");
    let v = d.ok_value(&op, &role).unwrap();
    assert_eq!(v.get("role").and_then(Value::as_str), Some("follower"));
    assert_eq!(v.get("term").and_then(Value::as_int), Some(4));
    assert_eq!(v.get("leader").and_then(Value::as_str), Some("n2"));

    // Redis: ROLE is ["master", offset, replicas] or ["slave", ip, port, state, offset];
    // a replica names its primary by IP.
    let mut leader = l.spec.leader.clone();
    leader.leader_values = vec!["master".into()];
    leader.term_index = None;
    leader.leader_index = Some(1);
    leader.applied_index = None;
    leader.committed_index = None;
    let p = RoleParser::new(
        leader,
        vec![
            ("n1".into(), "10.0.0.11".into(), 6379),
            ("n2".into(), "10.0.0.12".into(), 6379),
        ],
    );
    let master = Reply::Array(Some(vec![
        bulk("master"),
        Reply::Int(100),
        Reply::Array(Some(vec![])),
    ]));
    let r = p.parse(Some("n1"), &master).unwrap();
    assert_eq!(
        (r.role.as_str(), r.leader.as_deref()),
        ("leader", Some("n1"))
    );
    let slave = Reply::Array(Some(vec![
        bulk("slave"),
        bulk("10.0.0.11"),
        Reply::Int(6379),
        bulk("connected"),
        Reply::Int(100),
    ]));
    let r = p.parse(Some("n2"), &slave).unwrap();
    assert_eq!(
        (r.role.as_str(), r.leader.as_deref()),
        ("follower", Some("n1"))
    );
    assert!(p.parse(Some("n2"), &Reply::Simple("OK".into())).is_none());
}

#[test]
fn shell_braces_must_be_doubled() {
    let t = leaderkv_text().replace("[process]", "[commands.x]\n[process]");
    assert!(load_text(&t, &Inputs::default()).is_err());
    let f = |_: &str| None;
    let e = expand("a || { echo no; }", &f).unwrap_err();
    assert!(
        e.contains("`{ echo no; }` is no placeholder") && e.contains("`{{`"),
        "{e}"
    );
}

#[test]
fn leader_command_output_by_fields_or_lines() {
    let t = leaderkv_text().replace(
        "resp = [\"ROLE\"]",
        "command = \"redis-cli -h {ip} -p {port} ROLE\"\nsplit = \"lines\"",
    );
    let l = load_text(&t, &Inputs::default()).unwrap();
    let p = RoleParser::new(
        l.spec.leader.clone(),
        vec![("n1".into(), "10.0.0.11".into(), 7000)],
    );
    // redis-cli prints one element per line; an empty leader id stays an empty line.
    let r = p
        .parse_output(Some("n2"), "follower\n4\n\n\n10\n9\n9\nn2\n")
        .unwrap();
    assert_eq!(
        (r.role.as_str(), r.term, r.leader),
        ("follower", Some(4), None)
    );
    assert_eq!((r.applied, r.committed), (Some(9), Some(9)));
    let r = p.parse_output(Some("n1"), "leader\n5\nn1\n").unwrap();
    assert_eq!(
        (r.role.as_str(), r.leader.as_deref()),
        ("leader", Some("n1"))
    );

    // Whitespace fields (the default), a leader named by IP.
    let mut leader = l.spec.leader.clone();
    leader.split = None;
    let p = RoleParser::new(leader, vec![("n1".into(), "10.0.0.11".into(), 7000)]);
    let r = p.parse_output(Some("n3"), "follower 7 10.0.0.11").unwrap();
    assert_eq!(r.leader.as_deref(), Some("n1"));
    assert!(p.parse_output(Some("n3"), "").is_none());

    // Not both, not neither.
    let both = leaderkv_text().replace("resp = [\"ROLE\"]", "resp = [\"ROLE\"]\ncommand = \"x\"");
    let e = load_text(&both, &Inputs::default()).unwrap_err();
    assert!(
        e.contains("leader: give one of `resp`, `command`, not 2"),
        "{e}"
    );
    let neither = leaderkv_text().replace("resp = [\"ROLE\"]", "");
    let e = load_text(&neither, &Inputs::default()).unwrap_err();
    assert!(e.contains("leader: missing key `resp` or `command`"), "{e}");
}

#[test]
fn unused_set_keys_are_refused() {
    let inputs = Inputs {
        bugs: Vec::new(),
        sets: spec::parse_sets(&["mdoe=async".to_string()]).unwrap(),
        ..Inputs::default()
    };
    let e = load_text(&leaderkv_text(), &inputs).unwrap_err();
    assert_eq!(
        e,
        "sys.toml: --set mdoe: the file has no {set.mdoe} placeholder (it has: mode, replication)"
    );
}

#[test]
fn bugs_need_bug_flags() {
    let inputs = Inputs {
        bugs: vec!["local-counter".into()],
        sets: BTreeMap::new(),
        ..Inputs::default()
    };
    load_text(&leaderkv_text(), &inputs).unwrap();
    let t = leaderkv_text().replace(" {bug_flags}\"", "\"");
    let e = load_text(&t, &inputs).unwrap_err();
    assert!(
        e.starts_with("sys.toml: --bug local-counter: the file has no {bug_flags} placeholder"),
        "{e}"
    );
}

#[test]
fn requires_names_programs_and_their_packages() {
    let with = |req: &str| leaderkv_text().replace("[process]\n", &format!("{req}\n[process]\n"));
    let l = load_text(
        &with("[requires]\nprograms = [\"sh\"]\npackages = [\"dash\"]"),
        &Inputs::default(),
    )
    .unwrap();
    assert_eq!(l.spec.requires.programs, ["sh"]);
    let e = load_text(&with("[requires]\nprograms = [\"sh\"]"), &Inputs::default()).unwrap_err();
    assert!(e.contains("requires.packages: missing"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn postgres_patroni_example_kills_postgres_with_patroni() {
    let l = spec::load(&example("postgres-patroni.toml"), &Inputs::default()).unwrap();
    assert!(
        l.spec
            .process
            .pids_command
            .as_deref()
            .is_some_and(|c| c.contains("postmaster.pid")),
        "{:?}",
        l.spec.process
    );
    assert!(l.spec.requires.packages.contains(&"patroni".to_string()));
    l.check_workloads(&[Workload::Set, Workload::UniqueIds, Workload::Register])
        .unwrap();
}

#[test]
fn a_file_names_the_image_its_nodes_run_on_docker() {
    let text = format!(
        "{}\n[docker]\nimage = \"mydb:candidate\"\n",
        leaderkv_text()
    );
    let l = load_text(&text, &Inputs::default()).unwrap();
    assert_eq!(l.spec.docker.image.as_deref(), Some("mydb:candidate"));
    assert_eq!(
        load_text(&leaderkv_text(), &Inputs::default())
            .unwrap()
            .spec
            .docker
            .image,
        None
    );
    let e = load_text(
        &format!("{}\n[docker]\nimgae = \"x\"\n", leaderkv_text()),
        &Inputs::default(),
    )
    .unwrap_err();
    assert!(e.contains("imgae"), "{e}");
}
