//! Grudges: who drops packets from whom, as plain data, and pure builders for the partition
//! shapes of Jepsen (`one`, `halves`, `majority-minority`, `majorities-ring`, `bridge`,
//! `isolate`).
//!
//! A grudge maps a node to the set of nodes whose packets it drops: `{"n1": ["n2", "n3"]}`
//! means n1 drops everything from n2 and n3. Nodes with nothing to drop are left out. The
//! controller is never part of a grudge: it keeps its reach to every node.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// A node's name (`n1`), as in histories.
pub type NodeName = String;

/// Who drops packets from whom.
pub type Grudge = BTreeMap<NodeName, BTreeSet<NodeName>>;

/// The partition shapes the builders know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// One random node cut off from all others.
    One,
    /// Two halves (the first has `n/2` nodes) that cannot reach each other.
    Halves,
    /// The largest minority (`(n-1)/2` nodes) against the rest.
    MajorityMinority,
    /// Every node sees a majority, and no two nodes see the same majority.
    MajoritiesRing,
    /// Two halves joined by one bridge node that reaches both.
    Bridge,
    /// The current leader cut off from all others (resolved when the fault starts).
    IsolateLeader,
    /// The current leader and a random minority of the others (the largest minority, leader
    /// included) cut off from the rest: the old leader keeps company it may go on serving.
    LeaderMinority,
    /// A random node that is not the leader cut off from all others.
    IsolateFollower,
}

impl Shape {
    /// Every shape, in a stable order.
    pub const ALL: [Shape; 8] = [
        Shape::One,
        Shape::Halves,
        Shape::MajorityMinority,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::IsolateLeader,
        Shape::LeaderMinority,
        Shape::IsolateFollower,
    ];

    /// The shapes of the fixed-interval random schedule: Jepsen's, and isolate-leader.
    pub const RANDOM: [Shape; 6] = [
        Shape::One,
        Shape::Halves,
        Shape::MajorityMinority,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::IsolateLeader,
    ];

    /// True if the shape is built around the leader, so it is resolved when the fault starts.
    pub fn needs_leader(self) -> bool {
        matches!(
            self,
            Shape::IsolateLeader | Shape::LeaderMinority | Shape::IsolateFollower
        )
    }

    /// The kebab-case name (`majorities-ring`).
    pub fn name(self) -> &'static str {
        match self {
            Shape::One => "one",
            Shape::Halves => "halves",
            Shape::MajorityMinority => "majority-minority",
            Shape::MajoritiesRing => "majorities-ring",
            Shape::Bridge => "bridge",
            Shape::IsolateLeader => "isolate-leader",
            Shape::LeaderMinority => "leader-minority",
            Shape::IsolateFollower => "isolate-follower",
        }
    }

    /// Parses a kebab-case name (`isolate` is accepted for `isolate-leader`).
    pub fn parse(s: &str) -> Option<Shape> {
        let s = s.trim();
        if s == "isolate" {
            return Some(Shape::IsolateLeader);
        }
        Shape::ALL.into_iter().find(|sh| sh.name() == s)
    }

    /// Builds the grudge for this shape over `nodes`; `IsolateLeader` isolates `leader`
    /// (or a random node when there is none).
    pub fn build<R: Rng + ?Sized>(
        self,
        nodes: &[NodeName],
        leader: Option<&str>,
        rng: &mut R,
    ) -> Grudge {
        match self {
            Shape::One => one(nodes, rng),
            Shape::Halves => halves(nodes, rng),
            Shape::MajorityMinority => majority_minority(nodes, rng),
            Shape::MajoritiesRing => majorities_ring(nodes, rng),
            Shape::Bridge => bridge(nodes, rng),
            Shape::IsolateLeader => match leader {
                Some(l) if nodes.iter().any(|n| n == l) => isolate(nodes, l),
                _ => one(nodes, rng),
            },
            Shape::LeaderMinority => match leader {
                Some(l) if nodes.iter().any(|n| n == l) => leader_minority(nodes, l, rng),
                _ => majority_minority(nodes, rng),
            },
            Shape::IsolateFollower => {
                let others: Vec<NodeName> = nodes
                    .iter()
                    .filter(|n| Some(n.as_str()) != leader)
                    .cloned()
                    .collect();
                match shuffled(&others, rng).first() {
                    Some(f) => isolate(nodes, f),
                    None => one(nodes, rng),
                }
            }
        }
    }
}

/// The number of nodes that makes a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Every node drops packets from every node outside its own component. Nodes that are in
/// no component are untouched and nobody drops them.
pub fn complete_grudge(components: &[Vec<NodeName>]) -> Grudge {
    let all: BTreeSet<&NodeName> = components.iter().flatten().collect();
    let mut g = Grudge::new();
    for comp in components {
        let mine: BTreeSet<&NodeName> = comp.iter().collect();
        let others: BTreeSet<NodeName> = all.difference(&mine).map(|n| (*n).clone()).collect();
        if others.is_empty() {
            continue;
        }
        for n in comp {
            g.entry(n.clone())
                .or_default()
                .extend(others.iter().cloned());
        }
    }
    g
}

fn shuffled<R: Rng + ?Sized>(nodes: &[NodeName], rng: &mut R) -> Vec<NodeName> {
    let mut v = nodes.to_vec();
    v.sort();
    v.dedup();
    v.shuffle(rng);
    v
}

/// `node` cut off from all other nodes (both directions).
pub fn isolate(nodes: &[NodeName], node: &str) -> Grudge {
    let rest: Vec<NodeName> = nodes
        .iter()
        .filter(|n| n.as_str() != node)
        .cloned()
        .collect();
    if rest.len() == nodes.len() {
        return Grudge::new();
    }
    complete_grudge(&[vec![node.to_string()], rest])
}

/// `leader` and `(n-1)/2 - 1` random others (the largest minority with the leader in it)
/// cut off from the rest.
pub fn leader_minority<R: Rng + ?Sized>(nodes: &[NodeName], leader: &str, rng: &mut R) -> Grudge {
    let mut rest: Vec<NodeName> = shuffled(nodes, rng)
        .into_iter()
        .filter(|n| n != leader)
        .collect();
    let company = (rest.len() / 2).saturating_sub(1);
    let mut side: Vec<NodeName> = rest.drain(..company).collect();
    side.push(leader.to_string());
    complete_grudge(&[side, rest])
}

/// A star around `center`: every other node reaches only `center`, and `cut` (if any)
/// reaches nobody. Only `center` can gather votes from a majority.
pub fn star(nodes: &[NodeName], center: &str, cut: Option<&str>) -> Grudge {
    let mut g = Grudge::new();
    for n in nodes {
        if n == center {
            if let Some(c) = cut.filter(|c| *c != center) {
                g.entry(n.clone()).or_default().insert(c.to_string());
            }
            continue;
        }
        let reach_center = Some(n.as_str()) != cut;
        let drops: BTreeSet<NodeName> = nodes
            .iter()
            .filter(|m| *m != n && !(reach_center && m.as_str() == center))
            .cloned()
            .collect();
        if !drops.is_empty() {
            g.insert(n.clone(), drops);
        }
    }
    g
}

/// The node a grudge cuts off from every other node, if exactly one is.
pub fn isolated(g: &Grudge, nodes: &[NodeName]) -> Option<NodeName> {
    let mut cut = nodes
        .iter()
        .filter(|n| g.get(*n).is_some_and(|d| d.len() + 1 >= nodes.len()));
    match (cut.next(), cut.next()) {
        (Some(n), None) => Some(n.clone()),
        _ => None,
    }
}

/// One random node cut off from all others.
pub fn one<R: Rng + ?Sized>(nodes: &[NodeName], rng: &mut R) -> Grudge {
    let v = shuffled(nodes, rng);
    match v.first() {
        Some(n) => isolate(&v, n),
        None => Grudge::new(),
    }
}

/// Two random halves (`n/2` and the rest) that cannot reach each other.
pub fn halves<R: Rng + ?Sized>(nodes: &[NodeName], rng: &mut R) -> Grudge {
    let v = shuffled(nodes, rng);
    let (a, b) = v.split_at(v.len() / 2);
    complete_grudge(&[a.to_vec(), b.to_vec()])
}

/// A random minority of `(n-1)/2` nodes (the largest there is) against the majority.
pub fn majority_minority<R: Rng + ?Sized>(nodes: &[NodeName], rng: &mut R) -> Grudge {
    let v = shuffled(nodes, rng);
    let (a, b) = v.split_at(v.len().saturating_sub(1) / 2);
    complete_grudge(&[a.to_vec(), b.to_vec()])
}

/// Jepsen's majorities ring: the nodes in a random ring; each node sees the window of
/// `majority(n)` consecutive ring nodes of which it is the middle, and drops the rest. Every
/// node sees a majority and no two nodes see the same one (for n >= 3). Not symmetric: with
/// an even window, a node may drop a peer that does not drop it.
pub fn majorities_ring<R: Rng + ?Sized>(nodes: &[NodeName], rng: &mut R) -> Grudge {
    let v = shuffled(nodes, rng);
    let n = v.len();
    let m = majority(n);
    let mut g = Grudge::new();
    if n < 3 {
        return g;
    }
    for start in 0..n {
        let window: BTreeSet<NodeName> = (0..m).map(|k| v[(start + k) % n].clone()).collect();
        let center = v[(start + m / 2) % n].clone();
        let drops: BTreeSet<NodeName> =
            v.iter().filter(|x| !window.contains(*x)).cloned().collect();
        if !drops.is_empty() {
            g.insert(center, drops);
        }
    }
    g
}

/// Two halves that cannot reach each other, joined by one bridge node that reaches both and
/// that nobody drops.
pub fn bridge<R: Rng + ?Sized>(nodes: &[NodeName], rng: &mut R) -> Grudge {
    let v = shuffled(nodes, rng);
    if v.len() < 3 {
        return Grudge::new();
    }
    let (a, rest) = v.split_at(v.len() / 2);
    complete_grudge(&[a.to_vec(), rest[1..].to_vec()])
}

/// True when a TCP connection between `a` and `b` is cut by the grudge (either side drops
/// the other's packets).
pub fn cuts(g: &Grudge, a: &str, b: &str) -> bool {
    let drops = |x: &str, y: &str| g.get(x).is_some_and(|s| s.contains(y));
    drops(a, b) || drops(b, a)
}

/// The nodes `n` sees (itself included) under the grudge.
pub fn visible(g: &Grudge, nodes: &[NodeName], n: &str) -> BTreeSet<NodeName> {
    nodes
        .iter()
        .filter(|m| m.as_str() == n || !g.get(n).is_some_and(|s| s.contains(*m)))
        .cloned()
        .collect()
}

/// Checks a grudge names only known nodes and never makes a node drop itself.
pub fn validate(g: &Grudge, nodes: &[NodeName]) -> Result<(), String> {
    let known: BTreeSet<&str> = nodes.iter().map(String::as_str).collect();
    for (n, drops) in g {
        if !known.contains(n.as_str()) {
            return Err(format!("grudge names unknown node {n}"));
        }
        for d in drops {
            if !known.contains(d.as_str()) {
                return Err(format!("grudge of {n} names unknown node {d}"));
            }
            if d == n {
                return Err(format!("grudge makes {n} drop itself"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn nodes(n: usize) -> Vec<NodeName> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// Every node's component under a symmetric two-sided grudge.
    fn sides(g: &Grudge, ns: &[NodeName]) -> BTreeSet<BTreeSet<NodeName>> {
        ns.iter().map(|n| visible(g, ns, n)).collect()
    }

    fn symmetric(g: &Grudge) -> bool {
        g.iter()
            .all(|(a, ds)| ds.iter().all(|b| g.get(b).is_some_and(|s| s.contains(a))))
    }

    #[test]
    fn shapes_on_3_5_7_nodes() {
        for n in [3usize, 5, 7] {
            let ns = nodes(n);
            for seed in 0..20u64 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let g = one(&ns, &mut rng);
                validate(&g, &ns).unwrap();
                assert!(symmetric(&g));
                let sizes: Vec<usize> = sides(&g, &ns).iter().map(BTreeSet::len).collect();
                assert_eq!(
                    sizes.iter().copied().collect::<BTreeSet<_>>(),
                    [1, n - 1].into()
                );

                let g = halves(&ns, &mut rng);
                validate(&g, &ns).unwrap();
                assert!(symmetric(&g));
                let s = sides(&g, &ns);
                assert_eq!(s.len(), 2);
                assert_eq!(s.iter().map(BTreeSet::len).sum::<usize>(), n);
                assert!(s.iter().any(|c| c.len() == n / 2));

                let g = majority_minority(&ns, &mut rng);
                assert!(symmetric(&g));
                let s = sides(&g, &ns);
                let mut lens: Vec<usize> = s.iter().map(BTreeSet::len).collect();
                lens.sort();
                assert_eq!(lens, vec![(n - 1) / 2, n - (n - 1) / 2]);
                assert!(lens[1] >= majority(n));

                let g = bridge(&ns, &mut rng);
                validate(&g, &ns).unwrap();
                assert!(symmetric(&g));
                let bridges: Vec<&NodeName> = ns
                    .iter()
                    .filter(|x| visible(&g, &ns, x).len() == n)
                    .collect();
                assert_eq!(bridges.len(), 1, "exactly one node sees everyone: {g:?}");
                assert!(!g.contains_key(bridges[0]));
                assert!(g.values().all(|d| !d.contains(bridges[0])));
                // The others split into two halves that do not see each other.
                let others: Vec<NodeName> =
                    ns.iter().filter(|x| *x != bridges[0]).cloned().collect();
                for a in &others {
                    let v = visible(&g, &ns, a);
                    assert!(v.contains(bridges[0]) && v.len() < n);
                }

                let g = isolate(&ns, "n2");
                assert_eq!(g["n2"].len(), n - 1);
                assert!(
                    ns.iter()
                        .filter(|x| *x != "n2")
                        .all(|x| g[x] == BTreeSet::from(["n2".to_string()]))
                );
                assert!(isolate(&ns, "nope").is_empty());
            }
        }
    }

    #[test]
    fn majorities_ring_every_node_sees_a_distinct_majority() {
        for n in [3usize, 5, 7] {
            let ns = nodes(n);
            for seed in 0..20u64 {
                let g = majorities_ring(&ns, &mut ChaCha8Rng::seed_from_u64(seed));
                validate(&g, &ns).unwrap();
                let views: Vec<BTreeSet<NodeName>> =
                    ns.iter().map(|x| visible(&g, &ns, x)).collect();
                for (x, v) in ns.iter().zip(&views) {
                    assert_eq!(v.len(), majority(n), "{x} sees {v:?} in {g:?}");
                    assert!(v.contains(x));
                }
                let distinct: BTreeSet<&BTreeSet<NodeName>> = views.iter().collect();
                assert_eq!(distinct.len(), n, "two nodes see the same majority: {g:?}");
            }
        }
    }

    #[test]
    fn builders_are_deterministic_for_a_seed_and_vary_across_seeds() {
        let ns = nodes(5);
        let build = |seed| Shape::Halves.build(&ns, None, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(build(7), build(7));
        let distinct: BTreeSet<Grudge> = (0..30).map(build).collect();
        assert!(distinct.len() > 1);
        let g = Shape::IsolateLeader.build(&ns, Some("n4"), &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(g, isolate(&ns, "n4"));
    }

    #[test]
    fn cuts_and_shape_names() {
        let ns = nodes(3);
        let g = isolate(&ns, "n1");
        assert!(cuts(&g, "n1", "n2") && cuts(&g, "n3", "n1") && !cuts(&g, "n2", "n3"));
        for s in Shape::ALL {
            assert_eq!(Shape::parse(s.name()), Some(s));
        }
        assert_eq!(Shape::parse("isolate"), Some(Shape::IsolateLeader));
        assert_eq!(
            serde_json::to_string(&Shape::MajoritiesRing).unwrap(),
            "\"majorities-ring\""
        );
        assert!(
            validate(
                &BTreeMap::from([("n1".into(), BTreeSet::from(["n1".into()]))]),
                &ns
            )
            .is_err()
        );
    }

    #[test]
    fn star_leaves_only_the_center_a_majority() {
        let ns = nodes(5);
        let g = star(&ns, "n1", Some("n2"));
        validate(&g, &ns).unwrap();
        assert!(symmetric(&g));
        assert_eq!(
            visible(&g, &ns, "n1"),
            ["n1", "n3", "n4", "n5"].map(String::from).into()
        );
        assert_eq!(visible(&g, &ns, "n2"), ["n2"].map(String::from).into());
        for leaf in ["n3", "n4", "n5"] {
            assert_eq!(
                visible(&g, &ns, leaf),
                [leaf, "n1"].map(String::from).into()
            );
        }
        // Without a node to cut, every leaf still reaches only the center.
        let g = star(&ns, "n3", None);
        assert!(symmetric(&g));
        assert_eq!(visible(&g, &ns, "n3").len(), 5);
        assert_eq!(
            visible(&g, &ns, "n1"),
            ["n1", "n3"].map(String::from).into()
        );
        assert_eq!(isolated(&isolate(&ns, "n4"), &ns), Some("n4".to_string()));
        assert_eq!(
            isolated(&halves(&ns, &mut ChaCha8Rng::seed_from_u64(1)), &ns),
            None
        );
    }

    #[test]
    fn leader_minority_and_isolate_follower() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for n in [3, 5, 7] {
            let ns = nodes(n);
            let g = Shape::LeaderMinority.build(&ns, Some("n2"), &mut rng);
            let side = visible(&g, &ns, "n2");
            assert_eq!(side.len(), (n - 1) / 2, "{n} nodes: {g:?}");
            assert!(symmetric(&g));
            let g = Shape::IsolateFollower.build(&ns, Some("n2"), &mut rng);
            let cut = isolated(&g, &ns).unwrap();
            assert_ne!(cut, "n2");
        }
    }
}
