//! The effectful layer against recording remotes (no root): which commands a partition, a
//! loss fault and a `clock_settime` bump (the VM path) run on which node, in which order,
//! and that the state file is written ahead and emptied by healing.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use control::{Exec, ExecOutput, Node, Remote};
use nemesis::{
    ClockAction, ClockMode, ClusterNemesis, Fault, Nemesis, NemesisConfig, NemesisOp, Partition,
    StateFile, Target,
};

#[derive(Debug)]
struct Recorder {
    node: Node,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

#[async_trait]
impl Remote for Recorder {
    fn node(&self) -> &Node {
        &self.node
    }
    async fn run(&self, cmd: &Exec) -> control::Result<ExecOutput> {
        let line = cmd.argv.last().cloned().unwrap_or_default();
        self.log
            .lock()
            .unwrap()
            .push((self.node.name.clone(), line.clone()));
        let stdout = if line.contains("is-active") {
            "chrony\n".to_string()
        } else {
            String::new()
        };
        Ok(ExecOutput {
            status: 0,
            stdout,
            stderr: String::new(),
        })
    }
    async fn upload(&self, _: &Path, _: &str) -> control::Result<()> {
        Ok(())
    }
    async fn download(&self, _: &str, _: &Path) -> control::Result<()> {
        Ok(())
    }
}

type Log = Arc<Mutex<Vec<(String, String)>>>;

fn cluster(n: usize, clock: ClockMode, state: &Path) -> (ClusterNemesis, Log) {
    let log: Log = Arc::default();
    let remotes: Vec<Arc<dyn Remote>> = (1..=n)
        .map(|i| {
            Arc::new(Recorder {
                node: Node::new(format!("n{i}"), format!("10.0.0.{i}")),
                log: log.clone(),
            }) as Arc<dyn Remote>
        })
        .collect();
    let nem = ClusterNemesis::new(NemesisConfig {
        remotes,
        clock,
        state_path: state.into(),
        seed: 5,
        system: None,
    })
    .unwrap();
    (nem, log)
}

fn take(log: &Log) -> Vec<(String, String)> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test]
async fn partition_rules_go_to_the_grudging_nodes_and_are_removed_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let (nem, log) = cluster(3, ClockMode::Unsupported, &state);
    let rec = nem
        .invoke(NemesisOp::Start(Fault::Partition {
            partition: Partition::Isolate("n1".into()),
        }))
        .await
        .unwrap();
    assert_eq!(
        rec.value(),
        serde_json::json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
    );
    assert_eq!(
        StateFile::open(&state).unwrap().pending().len(),
        3,
        "recorded ahead, one entry per node"
    );
    let cmds = take(&log);
    let on = |n: &str| {
        cmds.iter()
            .filter(|(m, _)| m == n)
            .map(|(_, c)| c.clone())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        on("n1").contains("-A FAULTLINE -s 10.0.0.2 -j DROP") && on("n1").contains("-s 10.0.0.3")
    );
    assert!(on("n1").contains("-I INPUT 1 -j FAULTLINE"));
    assert!(
        on("n2").contains("-A FAULTLINE -s 10.0.0.1 -j DROP") && !on("n2").contains("10.0.0.3")
    );
    nem.invoke(NemesisOp::Stop(rec.id)).await.unwrap();
    let cmds = take(&log);
    assert_eq!(cmds.len(), 3);
    assert!(cmds.iter().all(|(_, c)| c.contains("-D FAULTLINE")));
    assert!(!state.exists());
}

#[tokio::test]
async fn loss_rules_name_every_peer_with_the_probability() {
    let dir = tempfile::tempdir().unwrap();
    let (nem, log) = cluster(3, ClockMode::Unsupported, &dir.path().join("s.json"));
    let rec = nem
        .invoke(NemesisOp::Start(Fault::Loss {
            target: Target::Nodes(vec!["n3".into()]),
            probability: 0.25,
        }))
        .await
        .unwrap();
    assert_eq!(rec.value()["nodes"], serde_json::json!(["n3"]));
    let cmds = take(&log);
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0].0, "n3");
    for peer in ["10.0.0.1", "10.0.0.2"] {
        assert!(cmds[0].1.contains(&format!(
            "-s {peer} -m statistic --mode random --probability 0.250000 -j DROP"
        )));
    }
    nem.heal_all().await.unwrap();
    assert!(
        take(&log)
            .iter()
            .any(|(n, c)| n == "n3" && c.contains("-D FAULTLINE"))
    );
    assert!(nem.active_ids().await.is_empty());
}

#[tokio::test]
async fn settime_bump_stops_ntp_first_and_restores_both() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let clock = ClockMode::Settime {
        helper: "/opt/fl/faultline-clock".into(),
    };
    let (nem, log) = cluster(2, clock, &state);
    let rec = nem
        .invoke(NemesisOp::Start(Fault::Clock {
            target: Target::Nodes(vec!["n2".into()]),
            action: ClockAction::Bump { delta_ms: 1500 },
        }))
        .await
        .unwrap();
    assert_eq!(rec.clock_offset_ms, Some(1500));
    let cmds: Vec<String> = take(&log)
        .into_iter()
        .map(|(n, c)| format!("{n}: {c}"))
        .collect();
    assert_eq!(cmds.len(), 3, "{cmds:#?}");
    assert!(cmds[0].starts_with("n2: ") && cmds[0].contains("is-active"));
    assert!(cmds[1].contains("systemctl stop"));
    assert_eq!(cmds[2], "n2: /opt/fl/faultline-clock bump 1500");
    let pending = StateFile::open(&state).unwrap().pending().to_vec();
    assert_eq!(pending.len(), 1);
    nem.invoke(NemesisOp::Stop(rec.id)).await.unwrap();
    let cmds: Vec<String> = take(&log).into_iter().map(|(_, c)| c).collect();
    assert_eq!(cmds[0], "/opt/fl/faultline-clock bump -1500");
    assert!(cmds[1].contains("systemctl start chrony"));
    assert!(!state.exists());
}

#[tokio::test]
async fn faults_needing_the_system_or_a_clock_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let (nem, _log) = cluster(3, ClockMode::Unsupported, &state);
    let err = nem
        .invoke(NemesisOp::Start(Fault::Pause {
            target: Target::One,
        }))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("failed to "), "{err}");
    let err = nem
        .invoke(NemesisOp::Start(Fault::Clock {
            target: Target::All,
            action: ClockAction::Bump { delta_ms: 5 },
        }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("clock"), "{err}");
    let err = nem
        .invoke(NemesisOp::Start(Fault::Kill {
            target: Target::Nodes(vec!["n9".into()]),
        }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("n9"), "{err}");
    assert!(!state.exists(), "refused faults leave nothing to heal");
    assert!(nem.active_ids().await.is_empty());
}
