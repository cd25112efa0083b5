//! The dependency graph of a list-append history (on petgraph): write-write, write-read and
//! read-write dependencies from the version orders, process order and real-time order; its
//! strongly connected components; and in each, the shortest cycle of the strongest class
//! (G0, G1c, G-single, G2-item, then their process and real-time variants).

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::{EdgeFiltered, EdgeRef};

use history::OpType;

use super::txns::{Id, Interner, Mop, Txn, Versions, external_prefix};

/// Why one txn must come before another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dep {
    /// Appended the value right before the other's, on `key`.
    Ww { key: Id, value: Id, next: Id },
    /// The other read `key` ending in `value`, which this one appended.
    Wr { key: Id, value: Id },
    /// This one read `key` without `next` (appended by the other right after what it saw).
    Rw { key: Id, next: Id },
    /// The same process ran this one first.
    Process,
    /// This one completed before the other began.
    Realtime,
}

impl Dep {
    pub fn bit(self) -> u8 {
        match self {
            Dep::Ww { .. } => WW,
            Dep::Wr { .. } => WR,
            Dep::Rw { .. } => RW,
            Dep::Process => PROCESS,
            Dep::Realtime => REALTIME,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dep::Ww { .. } => "ww",
            Dep::Wr { .. } => "wr",
            Dep::Rw { .. } => "rw",
            Dep::Process => "process",
            Dep::Realtime => "realtime",
        }
    }
}

pub const WW: u8 = 1;
pub const WR: u8 = 2;
pub const RW: u8 = 4;
pub const PROCESS: u8 = 8;
pub const REALTIME: u8 = 16;

/// Nodes are txn positions.
pub type Graph = DiGraph<u32, Dep, u32>;

/// Builds the graph over `txns` with the edge kinds of `mask`.
pub fn build(txns: &[Txn], v: &Versions, mask: u8) -> Graph {
    let mut g = Graph::with_capacity(txns.len(), txns.len() * 3);
    for i in 0..txns.len() {
        g.add_node(i as u32);
    }
    let n = |i: usize| NodeIndex::new(i);
    let committed = |t: &Txn| t.outcome != OpType::Fail;
    if mask & WW != 0 {
        for (key, order) in &v.order {
            for pair in order.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                if let (Some(Some(wa)), Some(Some(wb))) =
                    (v.writer.get(&(*key, a)), v.writer.get(&(*key, b)))
                {
                    if wa != wb && committed(&txns[*wa]) && committed(&txns[*wb]) {
                        g.add_edge(
                            n(*wa),
                            n(*wb),
                            Dep::Ww {
                                key: *key,
                                value: a,
                                next: b,
                            },
                        );
                    }
                }
            }
        }
    }
    if mask & (WR | RW) != 0 {
        for (i, t) in txns.iter().enumerate() {
            if t.outcome != OpType::Ok {
                continue;
            }
            for (at, m) in t.mops.iter().enumerate() {
                let Mop::Read {
                    key,
                    list: Some(list),
                } = m
                else {
                    continue;
                };
                let Some(seen) = external_prefix(t, at, *key, list) else {
                    continue;
                };
                let Some(order) = v.order.get(key) else {
                    continue;
                };
                if mask & WR != 0 {
                    if let Some(last) = seen.last() {
                        if let Some(Some(w)) = v.writer.get(&(*key, *last)) {
                            if *w != i && committed(&txns[*w]) {
                                g.add_edge(
                                    n(*w),
                                    n(i),
                                    Dep::Wr {
                                        key: *key,
                                        value: *last,
                                    },
                                );
                            }
                        }
                    }
                }
                if mask & RW != 0 {
                    // The version right after what it saw, if the order knows it.
                    if let Some(next) = order.get(seen.len()) {
                        if order[..seen.len()] == *seen {
                            if let Some(Some(w)) = v.writer.get(&(*key, *next)) {
                                if *w != i && committed(&txns[*w]) {
                                    g.add_edge(
                                        n(i),
                                        n(*w),
                                        Dep::Rw {
                                            key: *key,
                                            next: *next,
                                        },
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if mask & PROCESS != 0 {
        let mut last: std::collections::HashMap<u64, usize> = Default::default();
        for (i, t) in txns.iter().enumerate() {
            if t.outcome == OpType::Fail {
                continue;
            }
            if let Some(p) = last.insert(t.process, i) {
                g.add_edge(n(p), n(i), Dep::Process);
            }
        }
    }
    if mask & REALTIME != 0 {
        realtime(txns, &mut g);
    }
    g
}

/// Real-time edges, transitively reduced as Elle does: when a txn begins, an edge from each
/// txn of the frontier (completed, and not known to precede another completed one).
fn realtime(txns: &[Txn], g: &mut Graph) {
    // (index, is_completion, txn), in history order.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(txns.len() * 2);
    for (i, t) in txns.iter().enumerate() {
        if t.outcome == OpType::Fail {
            continue;
        }
        events.push((t.invoke, false, i));
        if let (Some(c), OpType::Ok) = (t.complete, t.outcome) {
            events.push((c, true, i));
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<usize> = Vec::new();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); txns.len()];
    for (_, done, i) in events {
        if !done {
            preds[i] = frontier.clone();
            for p in &frontier {
                g.add_edge(NodeIndex::new(*p), NodeIndex::new(i), Dep::Realtime);
            }
        } else {
            let before = std::mem::take(&mut preds[i]);
            frontier.retain(|f| !before.contains(f));
            frontier.push(i);
        }
    }
}

/// One cycle: its edges in order, each closing on the next's source.
#[derive(Debug, Clone)]
pub struct Cycle {
    pub edges: Vec<(usize, usize, Dep)>,
}

impl Cycle {
    pub fn count(&self, bit: u8) -> usize {
        self.edges.iter().filter(|e| e.2.bit() & bit != 0).count()
    }
}

/// The shortest path from `from` to `to` over edges in `mask` (BFS), as edge ids.
fn path(
    g: &Graph,
    from: NodeIndex<u32>,
    to: NodeIndex<u32>,
    mask: u8,
) -> Option<Vec<EdgeIndex<u32>>> {
    if from == to {
        return Some(Vec::new());
    }
    let mut came: Vec<Option<EdgeIndex<u32>>> = vec![None; g.node_count()];
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(u) = queue.pop_front() {
        for e in g.edges(u) {
            let w = e.target();
            if e.weight().bit() & mask == 0 || w == from || came[w.index()].is_some() {
                continue;
            }
            came[w.index()] = Some(e.id());
            if w == to {
                let mut out = vec![e.id()];
                let mut at = u;
                while at != from {
                    let back = came[at.index()].expect("on the path");
                    out.push(back);
                    at = g.edge_endpoints(back).expect("edge").0;
                }
                out.reverse();
                return Some(out);
            }
            queue.push_back(w);
        }
    }
    None
}

/// A cycle's edges with their txns (a local graph's nodes carry the txn position).
fn cycle_of(g: &Graph, edges: Vec<EdgeIndex<u32>>) -> Cycle {
    Cycle {
        edges: edges
            .into_iter()
            .map(|e| {
                let (a, b) = g.edge_endpoints(e).expect("edge");
                (g[a] as usize, g[b] as usize, g[e])
            })
            .collect(),
    }
}

/// A shortest cycle through some component of the edges of `mask`, if any.
fn any_cycle(g: &Graph, mask: u8) -> Option<Cycle> {
    let sub = EdgeFiltered::from_fn(g, |e| e.weight().bit() & mask != 0);
    let best = kosaraju_scc(&sub).into_iter().find(|c| c.len() > 1)?;
    let mut shortest: Option<Vec<EdgeIndex<u32>>> = None;
    for &start in best.iter().take(64) {
        for e in g.edges(start).filter(|e| e.weight().bit() & mask != 0) {
            if let Some(mut p) = path(g, e.target(), start, mask) {
                p.insert(0, e.id());
                if shortest.as_ref().is_none_or(|s| p.len() < s.len()) {
                    shortest = Some(p);
                }
            }
        }
        if shortest.as_ref().is_some_and(|s| s.len() <= 2) {
            break;
        }
    }
    shortest.map(|p| cycle_of(g, p))
}

/// A cycle with exactly one rw edge (the rest in `mask`, without rw), if any: for each rw edge
/// u -> v, a path back from v to u. At most `tries` rw edges are tried.
fn single_rw(g: &Graph, mask: u8, tries: usize) -> Option<Cycle> {
    let rest = mask & !RW;
    let mut best: Option<Vec<EdgeIndex<u32>>> = None;
    for e in g
        .edge_references()
        .filter(|e| e.weight().bit() == RW)
        .take(tries)
    {
        if let Some(mut p) = path(g, e.target(), e.source(), rest) {
            p.insert(0, e.id());
            if best.as_ref().is_none_or(|b| p.len() < b.len()) {
                best = Some(p);
            }
        }
    }
    best.map(|p| cycle_of(g, p))
}

/// The component `comp` of `g` as a graph of its own (its nodes carry the txn positions).
fn local(g: &Graph, comp: &[NodeIndex<u32>]) -> Graph {
    let mut map = std::collections::HashMap::with_capacity(comp.len());
    let mut l = Graph::with_capacity(comp.len(), comp.len() * 4);
    for n in comp {
        map.insert(*n, l.add_node(g[*n]));
    }
    for n in comp {
        for e in g.edges(*n) {
            if let Some(t) = map.get(&e.target()) {
                l.add_edge(map[n], *t, *e.weight());
            }
        }
    }
    l
}

/// The strongest anomaly in one strongly connected component, with its cycle. Tiers are
/// tried in order (dependencies alone, then with process order, then with real time) and
/// within a tier G0, G1c, G-single, G2-item; `tiers` says which tiers the model proscribes.
pub fn classify(
    g: &Graph,
    comp: &[NodeIndex<u32>],
    tiers: &[(u8, &'static [&'static str; 4])],
    tries: usize,
) -> Option<(&'static str, Cycle)> {
    let l = local(g, comp);
    for (extra, names) in tiers {
        if let Some(c) = any_cycle(&l, WW | extra) {
            return Some((names[0], c));
        }
        if let Some(c) = any_cycle(&l, WW | WR | extra) {
            return Some((names[1], c));
        }
        if let Some(c) = single_rw(&l, WW | WR | RW | extra, tries) {
            return Some((names[2], c));
        }
        if let Some(c) = any_cycle(&l, WW | WR | RW | extra) {
            let name = if c.count(RW) == 1 { names[2] } else { names[3] };
            return Some((name, c));
        }
    }
    None
}

/// Which session guarantee a cycle through process order breaks, if it is one of the two
/// narrow patterns: `read-your-writes` (a process's txns lead to a read that misses the
/// first one's append: process edges, then one rw back) or `monotonic-reads` (a read saw a
/// write, a later read of the same process did not: wr, process edges, then rw back).
pub fn session_pattern(c: &Cycle) -> Option<&'static str> {
    let kinds: Vec<u8> = c.edges.iter().map(|e| e.2.bit()).collect();
    let n = kinds.len();
    // Rotations: the pattern may start anywhere in the cycle.
    for start in 0..n {
        let k: Vec<u8> = (0..n).map(|i| kinds[(start + i) % n]).collect();
        let processes = k.iter().take_while(|b| **b == PROCESS).count();
        if processes >= 1 && processes == n - 1 && k[n - 1] == RW {
            return Some("read-your-writes");
        }
        if n >= 3 && k[0] == WR && k[n - 1] == RW && k[1..n - 1].iter().all(|b| *b == PROCESS) {
            return Some("monotonic-reads");
        }
    }
    None
}

/// The shortest cycle through a process-order edge of the component that `keep` accepts
/// (at most `tries` process edges are tried), named by its anti-dependencies with the
/// `-process` suffix.
pub fn session_cycle(
    g: &Graph,
    comp: &[NodeIndex<u32>],
    keep: &dyn Fn(&Cycle) -> bool,
    tries: usize,
) -> Option<(&'static str, Cycle)> {
    let l = local(g, comp);
    let mask = WW | WR | RW | PROCESS;
    let mut best: Option<Cycle> = None;
    for e in l
        .edge_references()
        .filter(|e| e.weight().bit() == PROCESS)
        .take(tries)
    {
        if let Some(mut p) = path(&l, e.target(), e.source(), mask) {
            p.insert(0, e.id());
            let c = cycle_of(&l, p);
            if keep(&c) && best.as_ref().is_none_or(|b| c.edges.len() < b.edges.len()) {
                best = Some(c);
            }
        }
    }
    let c = best?;
    Some((session_name(&c), c))
}

/// A process-order cycle's class, by its dependencies: G0-process (writes only),
/// G1c-process (no anti-dependency), G-single-process (one), G2-item-process (more).
pub fn session_name(c: &Cycle) -> &'static str {
    let names = &super::kind::PROCESS;
    match (c.count(RW), c.count(WR)) {
        (0, 0) => names[0],
        (0, _) => names[1],
        (1, _) => names[2],
        _ => names[3],
    }
}

/// The components of `g` with a cycle (more than one txn). Kosaraju's, whose depth-first
/// searches are iterative: Tarjan's in petgraph recurses, and real-time and process order
/// make paths as long as the history (a million deep overflowed the stack).
/// The cyclic components, earliest first (by their first txn), so that anomalies listed up
/// to a limit are the first ones the history shows.
pub fn components(g: &Graph) -> Vec<Vec<NodeIndex<u32>>> {
    let mut comps: Vec<Vec<NodeIndex<u32>>> = kosaraju_scc(g)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    comps.sort_by_key(|c| c.iter().min().copied());
    comps
}

/// One sentence per edge of `c`.
pub fn explain(c: &Cycle, txns: &[Txn], names: &Interner) -> Vec<String> {
    let v = |id: Id| names.value(id).to_string();
    c.edges
        .iter()
        .map(|(a, b, d)| {
            let (ta, tb) = (txns[*a].label(), txns[*b].label());
            match d {
                Dep::Ww { key, value, next } => format!(
                    "{ta} appended {} to key {} right before {tb} appended {} (ww)",
                    v(*value),
                    v(*key),
                    v(*next)
                ),
                Dep::Wr { key, value } => format!(
                    "{tb} read key {} ending in {}, which {ta} appended (wr)",
                    v(*key),
                    v(*value)
                ),
                Dep::Rw { key, next } => format!(
                    "{ta} read key {} without {}, which {tb} appended next (rw)",
                    v(*key),
                    v(*next)
                ),
                Dep::Process => format!(
                    "{ta} came before {tb} in process {} (process)",
                    txns[*a].process
                ),
                Dep::Realtime => format!(
                    "{ta} completed (op {}) before {tb} began (op {}) (realtime)",
                    txns[*a].complete.unwrap_or_default(),
                    txns[*b].invoke
                ),
            }
        })
        .collect()
}
