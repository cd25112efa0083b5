use super::*;
use crate::schedule::parse_kinds;
use std::collections::BTreeSet;
use std::time::Duration;

fn planner(kinds: &str, nodes: usize, seed: u64) -> Planner {
    let nodes = (1..=nodes).map(|i| format!("n{i}")).collect();
    Planner::new(
        seed,
        AdaptiveOptions::new(parse_kinds(kinds).unwrap(), nodes, Duration::from_secs(5)),
    )
}

fn kinds_started(e: &Episode) -> BTreeSet<FaultKind> {
    e.steps
        .iter()
        .filter_map(|s| match s {
            Step::Start { fault, .. } => Some(fault.kind()),
            Step::StartStar { .. } => Some(FaultKind::Partition),
            _ => None,
        })
        .collect()
}

#[test]
fn episodes_are_seeded_and_stop_what_they_start() {
    let draw = |seed| {
        let mut p = planner("partition,pause,kill", 5, seed);
        (0..30)
            .map(|_| p.next_episode().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
    for e in draw(7).iter().chain(&draw(9)) {
        let mut open = BTreeSet::new();
        for s in &e.steps {
            match s {
                Step::Start { slot, .. } | Step::StartStar { slot, .. } => {
                    assert!(open.insert(*slot), "{e:?}")
                }
                Step::Stop { slot } => assert!(open.remove(slot), "{e:?}"),
                _ => {}
            }
        }
        assert!(open.is_empty(), "{} leaves {open:?} running", e.name);
        assert!(
            matches!(
                e.steps[e.steps.len() - 2],
                Step::Await {
                    until: Until::Stable,
                    ..
                }
            ),
            "{e:?} must end by waiting for one leader"
        );
    }
}

#[test]
fn most_episodes_aim_at_the_leader_and_every_kind_shows_up() {
    let mut p = planner("partition,pause,kill", 5, 1);
    let (mut aimed, mut names) = (0, BTreeSet::new());
    let n = 400;
    for _ in 0..n {
        let e = p.next_episode().unwrap();
        names.insert(e.name);
        let at_leader = e.steps.iter().any(|s| match s {
            Step::StartStar { .. } => true,
            Step::Start { fault, .. } => match fault {
                Fault::Partition {
                    partition: Partition::Shape(s),
                } => s.needs_leader(),
                f => f.target().is_some_and(|t| t.is_dynamic()),
            },
            _ => false,
        });
        aimed += at_leader as usize;
    }
    assert!(
        aimed * 10 >= n * 7,
        "only {aimed} of {n} aimed at the leader"
    );
    for want in [
        "isolate-leader",
        "leader-minority",
        "stale-leader-race",
        "stale-bridge-follower",
        "stale-bridge-leader",
        "flapping",
        "lagging-follower",
        "lagging-follower-swap",
        "swizzle",
        "pause-leader",
        "kill-leader",
        "random",
    ] {
        assert!(names.contains(want), "no {want} in {names:?}");
    }
}

#[test]
fn only_the_kinds_asked_for() {
    for kinds in ["partition", "pause", "kill", "clock", "loss,bandwidth"] {
        let allowed: BTreeSet<FaultKind> = parse_kinds(kinds).unwrap().into_iter().collect();
        let mut p = planner(kinds, 3, 3);
        for _ in 0..100 {
            let e = p.next_episode().unwrap();
            assert!(
                kinds_started(&e).is_subset(&allowed),
                "{kinds}: {} started {:?}",
                e.name,
                kinds_started(&e)
            );
        }
    }
    assert!(planner("none", 3, 1).next_episode().is_none());
    // A single node has no one to fail over to: only random faults.
    let mut p = planner("partition,kill", 1, 1);
    for _ in 0..20 {
        assert_eq!(p.next_episode().unwrap().name, "random");
    }
}

#[test]
fn flapping_follows_the_measured_detection_time() {
    let mut p = planner("partition", 5, 11);
    p.observe_failover(1000);
    p.observe_failover(3000);
    p.observe_failover(2000);
    assert_eq!(p.detection_ms(), Some(2000));
    let mut seen = false;
    for _ in 0..200 {
        let e = p.next_episode().unwrap();
        if e.name != "flapping" {
            continue;
        }
        seen = true;
        let on: Vec<u64> = e
            .steps
            .windows(2)
            .filter_map(|w| match w {
                [Step::Start { .. }, Step::Sleep { ms }] => Some(*ms),
                _ => None,
            })
            .collect();
        assert!(on.len() >= 3, "{e:?}");
        assert!(on.iter().all(|ms| (1000..=3000).contains(ms)), "{on:?}");
    }
    assert!(seen);
}

#[test]
fn each_round_plays_every_kind_once_those_with_a_node_behind_first() {
    let behind = [
        "stale-bridge-follower",
        "stale-bridge-leader",
        "stale-leader-race",
        "lagging-follower",
        "lagging-follower-swap",
    ];
    let family = |n: &str| {
        n.trim_end_matches("-swap")
            .trim_end_matches("-follower")
            .trim_end_matches("-leader")
            .to_owned()
    };
    let mut firsts = BTreeSet::new();
    for seed in 0..50 {
        let mut p = planner("partition,pause,kill", 5, seed);
        // 10 kinds with these faults on 5 nodes: two whole rounds.
        for _ in 0..2 {
            let round: Vec<&str> = (0..10).map(|_| p.next_episode().unwrap().name).collect();
            assert!(
                round[..3].iter().all(|n| behind.contains(n)),
                "seed {seed}: {round:?}"
            );
            assert!(
                round[3..].iter().all(|n| !behind.contains(n)),
                "seed {seed}: {round:?}"
            );
            let kinds: BTreeSet<String> = round.iter().map(|n| family(n)).collect();
            assert_eq!(kinds.len(), 10, "seed {seed}: a kind repeats in {round:?}");
            firsts.insert(round[0]);
        }
    }
    assert!(
        firsts.len() >= 3,
        "the first episode varies with the seed: {firsts:?}"
    );
}

#[test]
fn with_clocks_and_partitions_the_skewed_isolated_leader_comes_with_the_first_composites() {
    let first = [
        "stale-bridge-follower",
        "stale-bridge-leader",
        "stale-leader-race",
        "lagging-follower",
        "lagging-follower-swap",
        "skew-isolate-leader",
    ];
    for seed in 0..50 {
        let mut p = planner("partition,pause,kill,clock", 5, seed);
        // 11 kinds: the four composites first, in an order drawn from the seed.
        let round: Vec<Episode> = (0..11).map(|_| p.next_episode().unwrap()).collect();
        let names: Vec<&str> = round.iter().map(|e| e.name).collect();
        assert!(
            names[..4].iter().all(|n| first.contains(n)),
            "seed {seed}: {names:?}"
        );
        assert!(
            names[..4].contains(&"skew-isolate-leader"),
            "seed {seed}: {names:?}"
        );
        assert!(
            names[4..].iter().all(|n| !first.contains(n)),
            "seed {seed}: {names:?}"
        );
        // The clock goes back (by at least 4 s) before the leader is cut off, and both heal.
        let skew = round
            .iter()
            .find(|e| e.name == "skew-isolate-leader")
            .unwrap();
        match (&skew.steps[0], &skew.steps[2]) {
            (
                Step::Start {
                    fault:
                        Fault::Clock {
                            action: ClockAction::Bump { delta_ms },
                            ..
                        },
                    ..
                },
                Step::Start {
                    fault: Fault::Partition { .. },
                    ..
                },
            ) => assert!(*delta_ms <= -4000, "seed {seed}: {delta_ms}"),
            other => panic!("seed {seed}: {other:?}"),
        }
        let stops = skew
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Stop { .. }))
            .count();
        assert_eq!(stops, 2);
    }
    // Without partitions the clock episode is a plain skew, in the rest of the round.
    let mut p = planner("clock", 3, 1);
    let names: Vec<&str> = (0..2).map(|_| p.next_episode().unwrap().name).collect();
    assert!(names.contains(&"skew-leader"), "{names:?}");
}

#[test]
fn a_replaced_follower_leaves_and_joins_again_sometimes_into_a_failover() {
    let mut names = BTreeSet::new();
    for seed in 0..40 {
        let mut p = planner("partition,member", 5, seed);
        for _ in 0..12 {
            let e = p.next_episode().unwrap();
            if !e.name.starts_with("replace-follower") {
                continue;
            }
            names.insert(e.name);
            assert!(
                matches!(
                    &e.steps[0],
                    Step::Start {
                        slot: 0,
                        fault: Fault::Member {
                            target: Target::Follower
                        }
                    }
                ),
                "{e:?}"
            );
            let stops = e
                .steps
                .iter()
                .filter(|s| matches!(s, Step::Stop { .. }))
                .count();
            let starts = e
                .steps
                .iter()
                .filter(|s| matches!(s, Step::Start { .. }))
                .count();
            assert_eq!(starts, stops, "every fault it starts is stopped: {e:?}");
        }
    }
    assert_eq!(
        names,
        BTreeSet::from(["replace-follower", "replace-follower-failover"])
    );
    // Not on two nodes: removing one leaves no majority.
    let mut p = planner("member", 2, 1);
    let e = p.next_episode().unwrap();
    assert_eq!(e.name, "random");
}
