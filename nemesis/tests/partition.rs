//! Partitions on a real local cluster (root): every shape blocks exactly the pairs its grudge
//! names and nothing else, the controller keeps its reach, established connections are cut,
//! and healing restores full reach and leaves the rules that were there before untouched.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use control::{Exec, Remote};
use nemesis::grudge::{self, Grudge};
use nemesis::{
    ClockMode, ClusterNemesis, Fault, Nemesis, NemesisConfig, NemesisOp, Partition, Shape,
    SystemControl,
};

#[derive(Debug)]
struct FixedLeader(String);

#[async_trait]
impl SystemControl for FixedLeader {
    async fn pids(&self, _: &dyn Remote) -> nemesis::Result<Vec<u32>> {
        Ok(vec![])
    }
    async fn kill(&self, _: &dyn Remote) -> nemesis::Result<()> {
        Ok(())
    }
    async fn start(&self, _: &dyn Remote) -> nemesis::Result<()> {
        Ok(())
    }
    async fn leader(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

fn nemesis_for(tc: &common::TestCluster, state: PathBuf) -> ClusterNemesis {
    ClusterNemesis::new(NemesisConfig {
        remotes: tc.cluster.remotes(),
        clock: ClockMode::Unsupported,
        state_path: state,
        seed: 7,
        system: Some(Arc::new(FixedLeader("n3".into()))),
    })
    .unwrap()
}

/// Checks every ordered pair against the grudge; a pair that should be reachable but failed
/// the short probe is retried with a long timeout (the machine may be busy).
async fn assert_matrix(tc: &common::TestCluster, g: &Grudge, label: &str) {
    let m: BTreeMap<(String, String), bool> = tc.matrix(400).await;
    for ((a, b), ok) in m {
        let blocked = grudge::cuts(g, &a, &b);
        let ok = if !ok && !blocked {
            tc.reaches(&a, &b, 3000).await
        } else {
            ok
        };
        assert_eq!(
            ok, !blocked,
            "{label}: {a} -> {b} reachable={ok}, grudge {g:?}"
        );
    }
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_shapes_block_exactly_their_grudge_and_heal() {
    let Some(tc) = common::up(
        "partition_shapes_block_exactly_their_grudge_and_heal",
        "fln4a-",
        "10.77.41.0/24",
        5,
    )
    .await
    else {
        return;
    };
    tc.start_echo_servers().await;
    let names = tc.names();
    // A rule of the user's own, which healing must leave alone.
    let n1 = tc.remote("n1");
    n1.exec(&Exec::new("iptables").args([
        "-w",
        "5",
        "-A",
        "INPUT",
        "-s",
        "192.0.2.99",
        "-j",
        "DROP",
    ]))
    .await
    .unwrap();
    let before: BTreeMap<String, String> = {
        let mut m = BTreeMap::new();
        for n in &names {
            m.insert(n.clone(), tc.iptables_rules(n).await);
        }
        m
    };
    let state = tc.dir.path().join("nemesis-state.json");
    let nem = nemesis_for(&tc, state.clone());
    nem.setup().await.unwrap();
    assert_matrix(&tc, &Grudge::new(), "before any fault").await;

    let mut partitions: Vec<(String, Partition)> = Shape::ALL
        .iter()
        .map(|s| (s.name().to_string(), Partition::Shape(*s)))
        .collect();
    partitions.push(("isolate n2".into(), Partition::Isolate("n2".into())));
    for (label, partition) in partitions {
        let rec = nem
            .invoke(NemesisOp::Start(Fault::Partition {
                partition: partition.clone(),
            }))
            .await
            .unwrap();
        let g = rec.grudge.clone().expect("a partition records its grudge");
        assert_eq!(rec.f(), "start-partition");
        assert_eq!(rec.value(), serde_json::json!(g));
        match partition {
            Partition::Shape(Shape::IsolateLeader) => assert_eq!(g, grudge::isolate(&names, "n3")),
            Partition::Isolate(n) => assert_eq!(g, grudge::isolate(&names, &n)),
            _ => {}
        }
        assert!(
            state.exists(),
            "the fault is in the state file while active"
        );
        assert_matrix(&tc, &g, &label).await;
        for n in &names {
            assert!(
                common::host_round_trip(&tc.addr(n), Duration::from_secs(3)).await,
                "{label}: the controller lost its reach to {n}"
            );
        }
        assert!(
            tc.iptables_rules("n1")
                .await
                .contains("-A INPUT -s 192.0.2.99/32 -j DROP")
        );
        let stop = nem.invoke(NemesisOp::Stop(rec.id)).await.unwrap();
        assert_eq!(stop.f(), "stop-partition");
        assert!(!state.exists(), "healed faults leave the state file");
        assert_matrix(&tc, &Grudge::new(), &format!("after healing {label}")).await;
    }

    // Established connections are cut: a stream n1 -> n2 stops while n1 is isolated.
    let r = tc.remote("n1");
    let cmd = Exec::new(common::probe())
        .args([
            "stream".to_string(),
            tc.addr("n2"),
            common::PORT.to_string(),
            "30".into(),
            "100".into(),
        ])
        .timeout(Duration::from_secs(30));
    let stream = tokio::spawn(async move { r.exec(&cmd).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let t_start = unix_ms();
    let g = grudge::isolate(&names, "n1");
    let rec = nem
        .invoke(NemesisOp::Start(Fault::Partition {
            partition: Partition::Grudge(g),
        }))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let t_stop = unix_ms();
    nem.invoke(NemesisOp::Stop(rec.id)).await.unwrap();
    let out = stream.await.unwrap().unwrap().stdout;
    let samples: Vec<(bool, u128)> = out
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, t)| (k == "O", t.parse().unwrap()))
        })
        .collect();
    let ok_before = samples.iter().filter(|(ok, t)| *ok && *t < t_start).count();
    let ok_during = samples
        .iter()
        .filter(|(ok, t)| *ok && *t > t_start + 300 && *t + 50 < t_stop)
        .count();
    let during = samples
        .iter()
        .filter(|(_, t)| *t > t_start + 300 && *t + 50 < t_stop)
        .count();
    assert!(
        ok_before >= 3,
        "the stream did not flow before the partition:\n{out}"
    );
    assert!(
        during >= 4 && ok_during == 0,
        "the established stream kept flowing during the partition:\n{out}"
    );

    nem.teardown().await.unwrap();
    for n in &names {
        assert_eq!(
            tc.iptables_rules(n).await,
            before[n],
            "{n}: rules differ after teardown"
        );
    }
    assert!(!state.exists());
}
