//! A controller SIGKILLed while a partition, a pause and a clock offset are active leaves
//! them in the state file; the next start heals all three from it (root).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use control::Remote;
use nemesis::grudge;
use nemesis::{
    ClockAction, Fault, Partition, Schedule, ScheduledFault, Target, heal_from_state_file,
};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_controller_faults_are_healed_by_the_next_start() {
    let Some(tc) = common::up(
        "sigkilled_controller_faults_are_healed_by_the_next_start",
        "fln4e-",
        "10.77.45.0/24",
        3,
    )
    .await
    else {
        return;
    };
    tc.start_echo_servers().await;
    let names = tc.names();
    let clean_rules = tc.iptables_rules("n1").await;
    let state = tc.dir.path().join("nemesis-state.json");
    let clock_dir = tc.dir.path().join("clock");
    let lib = common::clockshim_lib();
    let g = grudge::isolate(&names, "n1");
    let schedule = Schedule {
        seed: None,
        nodes: names.clone(),
        faults: vec![
            ScheduledFault {
                start_ms: 0,
                end_ms: 60_000,
                fault: Fault::Partition {
                    partition: Partition::Grudge(g.clone()),
                },
                episode: None,
            },
            ScheduledFault {
                start_ms: 0,
                end_ms: 60_000,
                fault: Fault::Pause {
                    target: Target::Nodes(vec!["n2".into()]),
                },
                episode: None,
            },
            ScheduledFault {
                start_ms: 0,
                end_ms: 60_000,
                fault: Fault::Clock {
                    target: Target::Nodes(vec!["n3".into()]),
                    action: ClockAction::Bump { delta_ms: 5000 },
                },
                episode: None,
            },
        ],
    };
    let schedule_path = tc.dir.path().join("schedule.toml");
    schedule.save(&schedule_path).unwrap();

    let child = Command::new(common::probe())
        .arg("hold")
        .arg(&tc.prefix)
        .arg(control::cluster::default_state_root())
        .arg(&state)
        .arg(&clock_dir)
        .arg(&lib)
        .arg(tc.pidfile("n2"))
        .arg(&schedule_path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim() == "READY" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the controller stand-in applied its faults");

    // All three faults are active.
    let paused = common::read_pid(&tc.pidfile("n2"));
    let offset_file = clock_dir.join("n3.offset");
    assert_eq!(common::proc_state(paused), Some('T'));
    assert_eq!(
        nemesis::clock::read_offset(&offset_file).unwrap(),
        5_000_000_000
    );
    assert!(!tc.reaches("n3", "n1", 400).await, "n1 should be isolated");
    assert!(state.exists());

    // SIGKILL the controller: nothing heals.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(
        common::proc_state(paused),
        Some('T'),
        "a SIGKILLed controller cannot heal"
    );
    assert!(!tc.reaches("n3", "n1", 400).await);
    assert_eq!(
        nemesis::clock::read_offset(&offset_file).unwrap(),
        5_000_000_000
    );

    // The next start heals everything from the state file.
    let cluster = tc.cluster.clone();
    let resolve = move |n: &str| -> Option<Arc<dyn Remote>> { cluster.remote(n).ok() };
    let report = heal_from_state_file(&state, &resolve, None).await.unwrap();
    assert!(report.healed.len() >= 3, "{report:?}");
    assert!(report.failed.is_empty());
    assert!(!state.exists(), "healed: the state file is gone");
    assert_ne!(
        common::proc_state(paused),
        Some('T'),
        "the paused process was resumed"
    );
    assert_eq!(nemesis::clock::read_offset(&offset_file).unwrap(), 0);
    let m = tc.matrix(400).await;
    for ((a, b), ok) in m {
        let ok = ok || tc.reaches(&a, &b, 3000).await;
        assert!(ok, "{a} -> {b} still cut after healing");
    }
    for n in &names {
        assert!(
            !tc.iptables_rules(n).await.contains("FAULTLINE"),
            "{n} keeps faultline's chain"
        );
    }
    assert_eq!(tc.iptables_rules("n1").await, clean_rules);
    // Healing again is a no-op.
    let again = heal_from_state_file(&state, &resolve, None).await.unwrap();
    assert!(again.healed.is_empty());
}
