//! The leader as the probe sees it, published once: [`LeaderView`] holds each node's latest
//! answer and is read by the nemesis (leader targets, the failover-aware episodes), by the
//! clients (routing hints) and by the progress display.

use std::collections::BTreeMap;
use std::sync::Arc;

use history::vocab;
use tokio::sync::watch;

use crate::grudge::NodeName;

/// What the leader probe saw last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Nodes whose latest answer claims the lead, with the term they gave, if any.
    pub leaders: Vec<(NodeName, Option<i64>)>,
    /// Nodes whose latest probe got an answer.
    pub answering: usize,
}

impl Observation {
    /// The claimant of the highest term (the first, when terms are not reported).
    pub fn leader(&self) -> Option<(NodeName, Option<i64>)> {
        self.leaders
            .iter()
            .max_by_key(|(_, t)| t.unwrap_or(i64::MIN))
            .cloned()
    }

    /// True if a node other than `old`'s leader claims to lead (in a newer term, when both
    /// terms are known).
    pub fn has_new_leader(&self, old: Option<&(NodeName, Option<i64>)>) -> bool {
        match old {
            None => !self.leaders.is_empty(),
            Some((old, old_term)) => self.leaders.iter().any(|(n, t)| {
                n != old
                    && match (t, old_term) {
                        (Some(t), Some(o)) => t > o,
                        _ => true,
                    }
            }),
        }
    }

    /// True if exactly one node claims to lead and all `nodes` answer.
    pub fn is_stable(&self, nodes: usize) -> bool {
        self.leaders.len() == 1 && self.answering >= nodes
    }
}

/// Where the nemesis learns who leads: the runner's leader probe.
pub trait LeaderWatch: Send + Sync {
    fn observe(&self) -> Observation;
}

/// Each node's latest probe answer: (role, term).
pub type Answers = BTreeMap<NodeName, (String, Option<i64>)>;

/// Each node's latest answer to the leader probe: its role and term; a node whose probe got
/// no answer has none. Cheap to clone; every clone sees the same view.
#[derive(Clone, Debug)]
pub struct LeaderView {
    tx: Arc<watch::Sender<Answers>>,
}

impl Default for LeaderView {
    fn default() -> Self {
        LeaderView {
            tx: Arc::new(watch::Sender::new(BTreeMap::new())),
        }
    }
}

impl LeaderView {
    /// Records `node`'s latest probe answer (`None`: it did not answer).
    pub fn set(&self, node: &str, answer: Option<(String, Option<i64>)>) {
        self.tx.send_modify(|v| match answer {
            Some(a) => {
                v.insert(node.to_owned(), a);
            }
            None => {
                v.remove(node);
            }
        });
    }

    /// Records `node` as the leader before the probe runs (the leader `ready` found).
    pub fn assume(&self, node: &str) {
        self.set(node, Some((vocab::ROLE_LEADER.to_owned(), None)));
    }

    /// Who claims the lead and how many nodes answer.
    pub fn observe(&self) -> Observation {
        let v = self.tx.borrow();
        Observation {
            leaders: v
                .iter()
                .filter(|(_, (role, _))| role == vocab::ROLE_LEADER)
                .map(|(n, (_, term))| (n.clone(), *term))
                .collect(),
            answering: v.len(),
        }
    }

    /// The claimant of the highest term, if any node claims the lead.
    pub fn leader(&self) -> Option<NodeName> {
        self.observe().leader().map(|(n, _)| n)
    }

    /// A receiver woken on every change.
    pub fn subscribe(&self) -> watch::Receiver<Answers> {
        self.tx.subscribe()
    }
}

impl LeaderWatch for LeaderView {
    fn observe(&self) -> Observation {
        LeaderView::observe(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_term_leads_and_silence_removes_a_claim() {
        let v = LeaderView::default();
        let w = v.clone();
        assert_eq!(w.leader(), None);
        v.assume("n1");
        assert_eq!(w.leader().as_deref(), Some("n1"));
        v.set("n1", Some(("leader".into(), Some(3))));
        v.set("n2", Some(("leader".into(), Some(4))));
        v.set("n3", Some(("follower".into(), Some(4))));
        assert_eq!(w.leader().as_deref(), Some("n2"));
        assert_eq!(w.observe().answering, 3);
        assert!(!w.observe().is_stable(3));
        v.set("n2", None);
        assert_eq!(w.leader().as_deref(), Some("n1"));
        assert_eq!(w.observe().answering, 2);
        v.set("n1", Some(("follower".into(), Some(4))));
        assert_eq!(w.leader(), None);
    }
}
