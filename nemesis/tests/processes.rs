//! Pause/resume and kill/restart on a real local cluster (root), and the heal-on-drop guard.

mod common;

use std::sync::Arc;
use std::time::Duration;

use nemesis::{
    ClockMode, ClusterNemesis, Fault, HealGuard, Nemesis, NemesisConfig, NemesisOp, PidfileSystem,
    Target,
};

fn on(n: &str) -> Target {
    Target::Nodes(vec![n.to_string()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_kill_restart_and_guard() {
    let Some(tc) = common::up(
        "pause_resume_kill_restart_and_guard",
        "fln4b-",
        "10.77.42.0/24",
        3,
    )
    .await
    else {
        return;
    };
    tc.start_echo_servers().await;
    let mut system = PidfileSystem::default();
    for n in tc.names() {
        system.specs.insert(n.clone(), tc.echo_spec(&n));
    }
    // n3 has a companion process (a failover agent beside its database) in `also`: paused
    // and killed with the daemon.
    let mut companion = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let agent = companion.id();
    tc.track(agent);
    let agent_pidfile = tc.dir.path().join("n3-agent.pid");
    std::fs::write(&agent_pidfile, format!("{agent}\n")).unwrap();
    system
        .also
        .insert("n3".into(), vec![agent_pidfile.display().to_string()]);
    // And one more that a command lists (as `cat .../cgroup.procs` would), with a header line.
    let mut listed_child = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let listed = listed_child.id();
    tc.track(listed);
    system
        .pids_command
        .insert("n3".into(), format!("echo PID; echo {listed}"));
    let state = tc.dir.path().join("nemesis-state.json");
    let nem = Arc::new(
        ClusterNemesis::new(NemesisConfig {
            remotes: tc.cluster.remotes(),
            clock: ClockMode::Unsupported,
            state_path: state.clone(),
            seed: 1,
            system: Some(Arc::new(system)),
        })
        .unwrap(),
    );
    nem.setup().await.unwrap();

    // Pause: the process is stopped and does not answer; resume brings it back.
    let pid = common::read_pid(&tc.pidfile("n1"));
    let rec = nem
        .invoke(NemesisOp::Start(Fault::Pause { target: on("n1") }))
        .await
        .unwrap();
    assert_eq!(
        (rec.f().as_str(), rec.nodes.clone()),
        ("start-pause", vec!["n1".to_string()])
    );
    assert_eq!(common::proc_state(pid), Some('T'));
    assert!(
        !common::host_round_trip(&tc.addr("n1"), Duration::from_millis(800)).await,
        "a paused server answered"
    );
    assert!(!tc.reaches("n2", "n1", 800).await);
    assert!(state.exists());
    nem.invoke(NemesisOp::Stop(rec.id)).await.unwrap();
    assert_ne!(common::proc_state(pid), Some('T'));
    assert!(
        common::host_round_trip(&tc.addr("n1"), Duration::from_secs(3)).await,
        "resume did not bring it back"
    );
    assert!(tc.reaches("n2", "n1", 3000).await);
    assert!(!state.exists());

    // Kill and restart.
    let old = common::read_pid(&tc.pidfile("n2"));
    let rec = nem
        .invoke(NemesisOp::Start(Fault::Kill { target: on("n2") }))
        .await
        .unwrap();
    assert_eq!(rec.f(), "start-kill");
    assert!(
        common::proc_state(old).is_none_or(|s| s == 'Z'),
        "killed process still runs"
    );
    assert!(!common::host_round_trip(&tc.addr("n2"), Duration::from_millis(500)).await);
    nem.invoke(NemesisOp::Stop(rec.id)).await.unwrap();
    let new = common::read_pid(&tc.pidfile("n2"));
    tc.track(new);
    assert_ne!(old, new);
    let mut back = false;
    for _ in 0..40 {
        if common::host_round_trip(&tc.addr("n2"), Duration::from_millis(500)).await {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "restarted server does not answer");

    // The guard heals on drop: a pause left active is resumed when the guard goes.
    let pid3 = common::read_pid(&tc.pidfile("n3"));
    nem.invoke(NemesisOp::Start(Fault::Pause { target: on("n3") }))
        .await
        .unwrap();
    assert_eq!(common::proc_state(pid3), Some('T'));
    assert_eq!(
        common::proc_state(agent),
        Some('T'),
        "the companion is paused too"
    );
    assert_eq!(
        common::proc_state(listed),
        Some('T'),
        "the listed process is paused too"
    );
    let guard = HealGuard::new(nem.clone());
    drop(guard);
    assert_ne!(
        common::proc_state(pid3),
        Some('T'),
        "the guard did not resume the paused process"
    );
    assert!(!state.exists());
    assert_ne!(
        common::proc_state(agent),
        Some('T'),
        "the companion is resumed too"
    );
    assert_ne!(common::proc_state(listed), Some('T'));

    // Kill takes the companion with the daemon.
    let rec = nem
        .invoke(NemesisOp::Start(Fault::Kill { target: on("n3") }))
        .await
        .unwrap();
    assert!(
        common::proc_state(agent).is_none_or(|s| s == 'Z'),
        "the companion still runs after the kill"
    );
    assert!(
        common::proc_state(listed).is_none_or(|s| s == 'Z'),
        "the listed process still runs after the kill"
    );
    let _ = companion.wait();
    let _ = listed_child.wait();
    nem.invoke(NemesisOp::Stop(rec.id)).await.unwrap();
    tc.track(common::read_pid(&tc.pidfile("n3")));
    nem.teardown().await.unwrap();
}
