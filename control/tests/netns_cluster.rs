//! A local cluster without sshd: bring-up, commands in every namespace, connectivity between
//! nodes over the bridge, host-to-node reachability, timeout, errors, daemons, teardown.

mod common;

use std::time::Duration;

use control::cluster::LocalCluster;
use control::{DaemonSpec, Error, Exec, Signal};

const PREFIX: &str = "flt1-";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_cluster_exec_daemons_down() {
    if !control::prereq::privileged_or_skip("netns_cluster_exec_daemons_down", false) {
        return;
    }
    let before = common::ours(&common::net_snapshot(), PREFIX);
    let _guard = common::DownGuard(PREFIX.into());
    let opts = common::opts(PREFIX, "10.77.1.0/24", 3, false);
    let o = opts.clone();
    let cluster = LocalCluster::up_async(o.clone()).await.unwrap();
    assert_eq!(cluster.nodes().len(), 3);
    assert!(cluster.problems().is_empty(), "{:?}", cluster.problems());

    // `up` again on a healthy cluster keeps it.
    let o = opts.clone();
    let again = LocalCluster::up_async(o.clone()).await.unwrap();
    assert_eq!(again.state(), cluster.state());

    for r in cluster.remotes() {
        let out = r
            .exec(&Exec::new("ip").args(["-4", "-o", "addr", "show", "dev", "eth0"]))
            .await
            .unwrap();
        assert!(out.stdout.contains(&r.node().addr), "{}", out.stdout);
        // Every node reaches every other node over the bridge.
        for other in cluster.nodes() {
            // Nothing listens on port 9: a reachable node answers with a reset at once.
            let out = r
                .run(
                    &Exec::new("bash")
                        .args(["-c", &format!("exec 3<>/dev/tcp/{}/9", other.addr)])
                        .timeout(Duration::from_secs(5)),
                )
                .await
                .unwrap();
            assert!(
                out.stderr.contains("Connection refused"),
                "{} cannot reach {}: {}",
                r.node(),
                other,
                out.stderr
            );
        }
    }
    let n1 = cluster.remote("n1").unwrap();
    // Non-zero exit: an error naming command, node and stderr.
    let err = n1
        .exec(&Exec::sh("echo oops >&2; exit 3"))
        .await
        .unwrap_err();
    assert_eq!(err.exit_status(), Some(3));
    let msg = err.to_string();
    assert!(
        msg.contains("n1") && msg.contains("10.77.1.11") && msg.contains("oops"),
        "{msg}"
    );
    // Timeout.
    let t0 = std::time::Instant::now();
    let err = n1
        .exec(
            &Exec::new("sleep")
                .arg("10")
                .timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    // stdin.
    let out = n1.exec(&Exec::new("cat").stdin("hello")).await.unwrap();
    assert_eq!(out.stdout, "hello");

    // Daemons.
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("sleep.pid").to_string_lossy().to_string();
    let logfile = dir.path().join("sleep.log").to_string_lossy().to_string();
    let spec = DaemonSpec::new("sleep", &pidfile, &logfile).args(["300"]);
    let pid = control::start_daemon(n1.as_ref(), &spec).await.unwrap();
    assert!(control::is_running(n1.as_ref(), &pidfile).await.unwrap());
    assert_eq!(
        control::start_daemon(n1.as_ref(), &spec).await.unwrap(),
        pid,
        "already running"
    );
    control::signal(n1.as_ref(), &pidfile, Signal::Stop)
        .await
        .unwrap();
    assert_eq!(wait_state(pid, |c| c == 'T'), 'T');
    control::signal(n1.as_ref(), &pidfile, Signal::Cont)
        .await
        .unwrap();
    assert_ne!(wait_state(pid, |c| c != 'T'), 'T');
    control::stop_daemon(n1.as_ref(), &pidfile, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(!control::is_running(n1.as_ref(), &pidfile).await.unwrap());
    assert!(
        control::signal(n1.as_ref(), &pidfile, Signal::Term)
            .await
            .is_err()
    );

    // A daemon left running is killed by `down`.
    let pid2 = control::start_daemon(n1.as_ref(), &spec).await.unwrap();
    cluster.down_async().await.unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!std::path::Path::new(&format!("/proc/{pid2}")).exists() || proc_state(pid2) == 'Z');
    let after = common::ours(&common::net_snapshot(), PREFIX);
    assert_eq!(before, after);
}

/// A cluster whose state file vanished (deleted, or another --state-dir): its namespaces, links
/// and processes follow the prefix's naming scheme, so `down` and `up` still remove them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_without_state_are_removed() {
    if !control::prereq::privileged_or_skip("orphans_without_state_are_removed", false) {
        return;
    }
    const P: &str = "flt3-";
    let before = common::ours(&common::net_snapshot(), P);
    let _guard = common::DownGuard(P.into());
    let opts = common::opts(P, "10.77.3.0/24", 2, false);
    let cluster = LocalCluster::up_async(opts.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("s.pid").to_string_lossy().to_string();
    let spec = DaemonSpec::new(
        "sleep",
        &pidfile,
        dir.path().join("s.log").to_string_lossy(),
    )
    .args(["300"]);
    let pid = control::start_daemon(cluster.remote("n2").unwrap().as_ref(), &spec)
        .await
        .unwrap();
    std::fs::remove_file(cluster.dir().join("cluster.json")).unwrap();
    assert!(LocalCluster::load(&opts.state_root, P).unwrap().is_none());

    // `up` adopts and removes them, then builds a fresh cluster.
    let again = LocalCluster::up_async(opts.clone()).await.unwrap();
    assert!(again.problems().is_empty(), "{:?}", again.problems());
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        matches!(proc_state(pid), '?' | 'Z'),
        "the orphan's daemon survived"
    );
    std::fs::remove_file(again.dir().join("cluster.json")).unwrap();
    // `down` too.
    assert!(LocalCluster::down_prefix(&opts.state_root, P).unwrap());
    assert_eq!(common::ours(&common::net_snapshot(), P), before);
    assert!(!LocalCluster::down_prefix(&opts.state_root, P).unwrap());
}

/// Signals are delivered asynchronously: poll the state for up to 2 s.
fn wait_state(pid: u32, ok: impl Fn(char) -> bool) -> char {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let c = proc_state(pid);
        if ok(c) || std::time::Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn proc_state(pid: u32) -> char {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    s.rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next())
        .unwrap_or('?')
}
