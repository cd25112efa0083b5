//! The end-to-end check: a 5-node cluster with an sshd per node; a command on every
//! node through both remotes; upload and download over SSH; a daemon started, paused, resumed
//! and killed over SSH; host-key and authentication failures; teardown leaves `ip netns list`
//! and `ip link` as they were.

mod common;

use std::sync::Arc;
use std::time::Duration;

use control::cluster::LocalCluster;
use control::{DaemonSpec, Error, Exec, HostKeyCheck, Remote, Signal, SshAuth, SshRemote};

const PREFIX: &str = "flt2-";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_with_sshd_both_remotes() {
    if !control::prereq::privileged_or_skip("five_nodes_with_sshd_both_remotes", true) {
        return;
    }
    let before = common::net_snapshot();
    let _guard = common::DownGuard(PREFIX.into());
    let opts = common::opts(PREFIX, "10.77.2.0/24", 5, true);
    let cluster = LocalCluster::up_async(opts.clone()).await.unwrap();
    assert!(cluster.problems().is_empty(), "{:?}", cluster.problems());

    // The blackhole route keeps packets for cluster addresses on this machine.
    let routes = std::process::Command::new("ip")
        .args([
            "-4",
            "route",
            "show",
            "exact",
            "10.77.0.0/16",
            "type",
            "blackhole",
        ])
        .output()
        .unwrap();
    assert!(
        !routes.stdout.is_empty(),
        "no blackhole route for 10.77.0.0/16"
    );
    // (Only checked once the route is known to exist: a free address outside the cluster's /24
    // is refused at once, locally.)
    let err = std::net::TcpStream::connect_timeout(
        &"10.77.99.5:22".parse().unwrap(),
        Duration::from_secs(2),
    )
    .unwrap_err();
    assert_ne!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");

    let mut ssh: Vec<Arc<dyn Remote>> = Vec::new();
    for n in cluster.nodes() {
        ssh.push(cluster.ssh_remote(&n.name).await.unwrap());
    }
    // Both remotes reach the same namespace: the address on eth0 is the node's.
    for (netns, over_ssh) in cluster.remotes().iter().zip(&ssh) {
        let cmd = Exec::new("ip").args(["-4", "-o", "addr", "show", "dev", "eth0"]);
        let a = netns.exec(&cmd).await.unwrap();
        let b = over_ssh.exec(&cmd).await.unwrap();
        assert!(a.stdout.contains(&netns.node().addr), "{}", a.stdout);
        assert_eq!(a.stdout, b.stdout);
        let who = over_ssh.exec(&Exec::new("id").arg("-un")).await.unwrap();
        assert_eq!(who.stdout.trim(), "root");
    }
    let n2 = ssh[1].clone();
    // Errors carry command, node and stderr; timeouts are timeouts.
    let err = n2
        .exec(&Exec::sh("echo nope >&2; exit 4"))
        .await
        .unwrap_err();
    assert_eq!(err.exit_status(), Some(4));
    assert!(
        err.to_string().contains("n2") && err.to_string().contains("nope"),
        "{err}"
    );
    let err = n2
        .exec(&Exec::new("sleep").arg("30").timeout(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // The session survives a timeout.
    assert_eq!(
        n2.exec(&Exec::new("cat").stdin("in")).await.unwrap().stdout,
        "in"
    );
    // Concurrent commands on one node open more sessions.
    let futs: Vec<_> = (0..4)
        .map(|i| {
            let r = n2.clone();
            tokio::spawn(async move { r.exec(&Exec::sh(format!("sleep 0.2; echo {i}"))).await })
        })
        .collect();
    for (i, f) in futs.into_iter().enumerate() {
        assert_eq!(f.await.unwrap().unwrap().stdout.trim(), i.to_string());
    }

    // Upload and download.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let remote_path = dir.path().join("on-node.bin").to_string_lossy().to_string();
    n2.upload(&src, &remote_path).await.unwrap();
    let back = dir.path().join("back.bin");
    n2.download(&remote_path, &back).await.unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let err = n2
        .download("/nonexistent/file", &dir.path().join("x"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("n2") && err.to_string().contains("/nonexistent/file"),
        "{err}"
    );
    assert!(!dir.path().join("x").exists());

    // A daemon over SSH: start, pause, resume, kill.
    let pidfile = dir.path().join("d.pid").to_string_lossy().to_string();
    let logfile = dir.path().join("d.log").to_string_lossy().to_string();
    let spec = DaemonSpec::new("sh", &pidfile, &logfile)
        .args(["-c", "while true; do echo tick; sleep 0.05; done"]);
    let pid = control::start_daemon(n2.as_ref(), &spec).await.unwrap();
    // It runs in n2's namespace.
    let ns = std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let n2ns = std::fs::metadata(format!("/run/netns/{}", cluster.netns("n2").unwrap()))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    assert_eq!(ns, n2ns);
    control::signal(n2.as_ref(), &pidfile, Signal::Stop)
        .await
        .unwrap();
    assert_eq!(wait_state(pid, |c| c == 'T'), 'T');
    let len = std::fs::metadata(&logfile).unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        std::fs::metadata(&logfile).unwrap().len(),
        len,
        "a paused daemon writes nothing"
    );
    control::signal(n2.as_ref(), &pidfile, Signal::Cont)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        std::fs::metadata(&logfile).unwrap().len() > len,
        "a resumed daemon writes again"
    );
    control::kill_daemon(n2.as_ref(), &pidfile).await.unwrap();
    assert!(!control::is_running(n2.as_ref(), &pidfile).await.unwrap());

    // A self-daemonizing program (double fork, writes its own pidfile).
    let mut selfd = DaemonSpec::new("sh", &pidfile, &logfile).args([
        "-c",
        &format!("(setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' &) ; exit 0"),
    ]);
    selfd.self_pidfile = true;
    let spid = control::start_daemon(n2.as_ref(), &selfd).await.unwrap();
    assert!(control::is_running(n2.as_ref(), &pidfile).await.unwrap());
    control::stop_daemon(n2.as_ref(), &pidfile, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{spid}/cmdline")).exists() || proc_state(spid) == 'Z'
    );

    // Host key checking: an empty known_hosts is refused with a way to trust the key.
    let node = cluster.nodes()[0].clone();
    let mut o = cluster.ssh_options().unwrap();
    o.connect_attempts = 1;
    let empty = dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    o.host_key_check = HostKeyCheck::KnownHosts(empty.clone());
    let err = SshRemote::connect(node.clone(), o.clone())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::HostKey { .. })
            && msg.contains("ssh-keyscan")
            && msg.contains("10.77.2.11"),
        "{msg}"
    );
    // A wrong recorded key is a mismatch.
    let other = std::fs::read_to_string(cluster.state().known_hosts.as_ref().unwrap()).unwrap();
    let wrong: String = other
        .lines()
        .nth(1)
        .unwrap()
        .replacen("10.77.2.12", "10.77.2.11", 1)
        + "\n";
    std::fs::write(&empty, wrong).unwrap();
    let err = SshRemote::connect(node.clone(), o.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NOT match"), "{err}");
    // The explicit opt-out connects.
    o.host_key_check = HostKeyCheck::InsecureSkip;
    SshRemote::connect(node.clone(), o.clone()).await.unwrap();
    // A refused key names node, address and the failure.
    let stranger = dir.path().join("stranger");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(st.success());
    o.auth = SshAuth::Key(stranger);
    let err = SshRemote::connect(node.clone(), o.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Auth { .. })
            && err.to_string().contains("n1")
            && err.to_string().contains("10.77.2.11"),
        "{err}"
    );

    // ssh-agent authentication: an agent of our own holding the cluster key.
    let sock = dir.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(cluster.state().client_key.as_ref().unwrap())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    // SAFETY: this test binary runs a single test; nothing else reads the environment now.
    unsafe { std::env::set_var("SSH_AUTH_SOCK", &sock) };
    let mut ao = cluster.ssh_options().unwrap();
    ao.auth = SshAuth::Agent;
    let via_agent = SshRemote::connect(cluster.nodes()[2].clone(), ao.clone()).await;
    ao.auth = SshAuth::Auto;
    let via_auto = SshRemote::connect(cluster.nodes()[3].clone(), ao).await;
    let _ = agent.kill();
    let _ = agent.wait();
    let via_agent = via_agent.unwrap();
    assert_eq!(
        via_agent
            .exec(&Exec::new("echo").arg("agent"))
            .await
            .unwrap()
            .stdout,
        "agent\n"
    );
    via_auto.unwrap();

    drop(ssh);
    cluster.down_async().await.unwrap();
    let after = common::net_snapshot();
    assert_eq!(common::ours(&before, PREFIX), common::ours(&after, PREFIX));
    assert!(common::ours(&after, PREFIX).0.is_empty() && common::ours(&after, PREFIX).1.is_empty());
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
