//! Which node a client's op goes to: the node it names, else as the [`Route`] says (the
//! node the client settled on, moved by [`Redirect`]s; the leader the probe sees; the
//! followers), with reads routed on their own as `--read-from` says. Shared by the RESP client
//! ([`super::resp_client`]) and the file systems' `postgres` and `http` clients.

use std::collections::HashMap;

use workloads::{Invocation, ReadFrom};

pub use super::resp_client::{RespDialect, RoutingClient};
pub use super::values::{ok_value, role_value, txn_read};

/// Where a routed op (one without a fixed node) goes after an error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// The same node.
    Stay,
    /// The node named by the error's second word (`MOVED n2 ...`); the next node if that
    /// names no node.
    Follow,
    /// The next node.
    Next,
}

/// Where a router sends ops that name no node.
#[derive(Clone, Debug, Default)]
pub enum Route {
    /// The node the client settled on, moved by redirects and connection failures.
    #[default]
    Redirects,
    /// The node the leader probe sees lead; none known: the op is not sent (it fails as
    /// [`NO_LEADER`]). Never a follower, so a follower's stale read is never taken for the
    /// leader's.
    Leader(nemesis::LeaderView),
    /// Any node but the one the probe sees lead (reads from replicas, said explicitly).
    Followers(nemesis::LeaderView),
}

/// The error of an op a `leader` route did not send: no leader known.
pub const NO_LEADER: &str = "no leader known: not sent";

/// Where a client's ops go: the node an op names, else as its [`Route`] says.
pub struct Router {
    order: Vec<String>,
    addrs: HashMap<String, String>,
    current: usize,
    route: Route,
    /// Where reads that name no node go, and who leads (`leader`: where they go;
    /// `followers`: whom they avoid); without a view, reads go where writes go.
    reads: ReadFrom,
    read_view: Option<nemesis::LeaderView>,
    /// The node after the last read's, in `order`: reads go round the nodes.
    read_next: usize,
}

impl Router {
    /// A router over the nodes `addrs` (name, `host:port`), in that order, starting at the
    /// first.
    pub fn new(addrs: Vec<(String, String)>) -> Self {
        Router {
            order: addrs.iter().map(|(n, _)| n.clone()).collect(),
            addrs: addrs.into_iter().collect(),
            current: 0,
            route: Route::Redirects,
            reads: ReadFrom::Leader,
            read_view: None,
            read_next: 0,
        }
    }

    /// Sends reads that name no node as `reads` says, `view` saying who leads. `leader`: only
    /// to the node the probe sees lead, whatever the route of writes (a node that settled a
    /// client after a failover may be a follower answering stale reads; none known: the read
    /// is not sent); `followers`: round the others; `any`: round every node.
    pub fn reads(&mut self, reads: ReadFrom, view: nemesis::LeaderView) {
        self.reads = reads;
        self.read_view = Some(view);
    }

    /// Whether errors and failed connections of `op` move where routed ops go: ops that name
    /// no node, but not reads sent where reads go (they never move where writes go).
    pub fn moves_with(&self, op: &Invocation) -> bool {
        op.node.is_none() && !self.routes_read(op)
    }

    /// Whether `op` goes where reads go rather than where writes go.
    pub fn routes_read(&self, op: &Invocation) -> bool {
        op.node.is_none() && self.read_view.is_some() && op.is_read()
    }

    /// The node `view` sees lead, when it is one of this router's nodes.
    fn leader_of(&self, view: &nemesis::LeaderView) -> Option<String> {
        view.leader().filter(|l| self.addrs.contains_key(l))
    }

    /// The node a read goes to.
    fn read_target(&mut self) -> Option<String> {
        let view = self.read_view.as_ref()?;
        if self.reads == ReadFrom::Leader {
            return self.leader_of(view);
        }
        let leader = view.leader();
        let n = self.order.len();
        for i in 0..n {
            let at = (self.read_next + i) % n;
            let node = &self.order[at];
            if self.reads == ReadFrom::Followers && Some(node) == leader.as_ref() {
                continue;
            }
            self.read_next = at + 1;
            return Some(node.clone());
        }
        None
    }

    /// Routes ops that name no node as `route` says.
    pub fn route(&mut self, route: Route) {
        self.route = route;
    }

    /// The next node.
    pub fn rotate(&mut self) {
        if !self.order.is_empty() {
            self.current = (self.current + 1) % self.order.len();
        }
    }

    /// Settles on `node`; false (and no move) when it is none of the nodes.
    pub fn go_to(&mut self, node: &str) -> bool {
        match self.order.iter().position(|n| n == node) {
            Some(i) => {
                self.current = i;
                true
            }
            None => false,
        }
    }

    /// Settles on `node`, or the next node when it is none of the nodes.
    pub fn follow(&mut self, node: &str) {
        if !self.go_to(node) {
            self.rotate();
        }
    }

    /// The node `op` goes to: its own node, else as the route says; `None` when the route
    /// names none (`leader` with no leader known, `followers` with no follower).
    pub fn target(&mut self, op: &Invocation) -> Option<String> {
        if let Some(n) = &op.node {
            return Some(n.clone());
        }
        if self.routes_read(op) {
            return self.read_target();
        }
        match &self.route {
            Route::Redirects => self.order.get(self.current).cloned(),
            Route::Leader(view) => self.leader_of(view),
            Route::Followers(view) => {
                let leader = view.leader();
                for _ in 0..self.order.len() {
                    let n = &self.order[self.current];
                    if Some(n) != leader.as_ref() {
                        return Some(n.clone());
                    }
                    self.rotate();
                }
                None
            }
        }
    }

    /// The address of `node`.
    pub fn addr(&self, node: &str) -> Option<String> {
        self.addrs.get(node).cloned()
    }

    /// Moves after an error answer `err` to a routed op as `redirect` says (`Follow`: to the
    /// node its second word names).
    pub fn redirect(&mut self, redirect: Redirect, err: &str) {
        match redirect {
            Redirect::Stay => {}
            Redirect::Next => self.rotate(),
            Redirect::Follow => match err.split_whitespace().nth(1) {
                Some(l) => self.follow(l),
                None => self.rotate(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::Value;

    fn router() -> Router {
        Router::new(
            ["n1", "n2", "n3"]
                .iter()
                .map(|n| (n.to_string(), format!("{n}:7000")))
                .collect(),
        )
    }

    #[test]
    fn routed_ops_follow_redirects() {
        let mut r = router();
        let routed = Invocation::new("write", Value::Int(1));
        let at = |r: &mut Router, op: &Invocation| r.target(op).unwrap();
        assert_eq!(at(&mut r, &routed), "n1");
        r.redirect(Redirect::Follow, "MOVED n3 10.0.0.13:7000");
        assert_eq!(at(&mut r, &routed), "n3");
        r.redirect(Redirect::Next, "NOLEADER");
        assert_eq!(at(&mut r, &routed), "n1");
        // A `Follow` naming no node, or an unknown one, moves to the next node.
        r.redirect(Redirect::Follow, "MOVED");
        assert_eq!(at(&mut r, &routed), "n2");
        r.redirect(Redirect::Follow, "MOVED n9 x");
        assert_eq!(at(&mut r, &routed), "n3");
        r.redirect(Redirect::Stay, "CASMISMATCH x");
        assert_eq!(at(&mut r, &routed), "n3");
        assert_eq!(r.addr("n3").as_deref(), Some("n3:7000"));
        assert_eq!(r.addr("n9"), None);
    }

    #[test]
    fn a_leader_route_never_reaches_a_follower() {
        let mut r = router();
        let view = nemesis::LeaderView::default();
        r.route(Route::Leader(view.clone()));
        let routed = Invocation::new("read", Value::Nil);
        // No leader known: not sent, wherever the router settled before.
        assert_eq!(r.target(&routed), None);
        view.set("n2", Some(("leader".into(), Some(1))));
        view.set("n1", Some(("follower".into(), Some(1))));
        assert_eq!(r.target(&routed).as_deref(), Some("n2"));
        // Redirects and connection failures do not move a leader route.
        r.redirect(Redirect::Next, "NOLEADER");
        r.rotate();
        assert_eq!(r.target(&routed).as_deref(), Some("n2"));
        // The leader stops answering: nowhere to go, never its follower n1.
        view.set("n2", None);
        assert_eq!(r.target(&routed), None);
        // A newer term wins over a stale claim.
        view.set("n2", Some(("leader".into(), Some(1))));
        view.set("n3", Some(("leader".into(), Some(2))));
        assert_eq!(r.target(&routed).as_deref(), Some("n3"));
        // An op aimed at a node still goes there.
        let aimed = Invocation::new("read", Value::Nil).on("n1");
        assert_eq!(r.target(&aimed).as_deref(), Some("n1"));
    }

    #[test]
    fn a_followers_route_skips_the_leader() {
        let mut r = router();
        let view = nemesis::LeaderView::default();
        view.assume("n1");
        r.route(Route::Followers(view.clone()));
        let routed = Invocation::new("read", Value::Nil);
        assert_eq!(r.target(&routed).as_deref(), Some("n2"));
        r.rotate();
        assert_eq!(r.target(&routed).as_deref(), Some("n3"));
        r.rotate();
        assert_eq!(
            r.target(&routed).as_deref(),
            Some("n2"),
            "n1 leads: skipped"
        );
    }

    #[test]
    fn reads_go_where_read_from_says_and_never_move_writes() {
        let view = nemesis::LeaderView::default();
        view.assume("n2");
        let read = Invocation::new(
            "txn",
            Value::List(vec![Value::List(vec![
                Value::str("r"),
                Value::Int(0),
                Value::Nil,
            ])]),
        );
        let write = Invocation::new(
            "txn",
            Value::List(vec![Value::List(vec![
                Value::str("append"),
                Value::Int(0),
                Value::Int(1),
            ])]),
        );
        // Leader: reads only to the probe's leader, writes where the client settled.
        let mut r = router();
        r.reads(ReadFrom::Leader, view.clone());
        assert!(r.routes_read(&read) && !r.routes_read(&write));
        assert_eq!(r.target(&read).as_deref(), Some("n2"));
        assert_eq!(r.target(&write).as_deref(), Some("n1"));
        // Followers: round the others, in turn.
        let mut r = router();
        r.reads(ReadFrom::Followers, view.clone());
        let seen: Vec<String> = (0..4).map(|_| r.target(&read).unwrap()).collect();
        assert_eq!(seen, ["n1", "n3", "n1", "n3"]);
        assert_eq!(r.target(&write).as_deref(), Some("n1"));
        // Any: every node in turn.
        let mut r = router();
        r.reads(ReadFrom::Any, view.clone());
        let seen: Vec<String> = (0..3).map(|_| r.target(&read).unwrap()).collect();
        assert_eq!(seen, ["n1", "n2", "n3"]);
        // No view given: reads go where writes go.
        let mut r = router();
        assert!(!r.routes_read(&read));
        assert_eq!(r.target(&read).as_deref(), Some("n1"));
        // An aimed read goes to its node.
        let mut r = router();
        r.reads(ReadFrom::Leader, view);
        assert_eq!(r.target(&read.clone().on("n3")).as_deref(), Some("n3"));
    }
}
