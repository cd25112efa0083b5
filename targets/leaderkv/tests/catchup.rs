//! Catching up after an outage and joining mid-run: the two seeded bugs of snapshot
//! installation, each shown in a small deterministic scenario with its correct twin. Both bugs
//! leave a follower that has applied everything the leader committed (by LSN) and yet holds a
//! different state: only comparing the nodes' data shows it.

mod common;

use std::time::Duration;

use common::Cluster;
use leaderkv::{Bug, Mode};

/// A follower is down while the leader writes 600 records and compacts its log (50 kept):
/// how many of the 600 keys does it hold once it is back and caught up?
async fn away_longer_than_the_log(bugs: &[Bug]) -> (usize, u64) {
    let mut c = Cluster::new(3, 3, Mode::Sync, bugs, 50).await;
    let l = c.wait_leader().await;
    let f = (l + 1) % 3;
    c.kill(f).await;
    let acked = c.write_many(l, "b", 600).await;
    assert_eq!(acked.len(), 600);
    c.wait_until("leader compaction", Duration::from_secs(10), |c| {
        c.node(l).status().snapshot_lsn > 100
    })
    .await;
    c.start(f).await;
    c.wait_caught_up(Duration::from_secs(10)).await;
    let held = c.node(f).dump().len();
    let snap = c.node(f).status().snapshot_lsn;
    assert_eq!(c.node(l).dump().len(), 600, "the leader has every write");
    c.shutdown().await;
    (held, snap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_truncated_skips_what_the_log_no_longer_has() {
    let (held, snap) = away_longer_than_the_log(&[]).await;
    assert_eq!(held, 600, "a correct follower reinstalls a snapshot");
    assert!(snap > 0, "from a snapshot");
    let (held, _) = away_longer_than_the_log(&[Bug::ResumeTruncated]).await;
    assert!(
        held < 600,
        "with the bug the follower resumes past records it never got: {held} of 600"
    );
}

/// n3 joins empty while the leader holds records it has not committed (n2 is cut off, so no
/// majority): does n3 end up with the records that commit once n2 is back?
async fn join_during_uncommitted_writes(bugs: &[Bug]) -> bool {
    let mut c = Cluster::new(3, 2, Mode::Sync, bugs, 50_000).await;
    let l = c.wait_leader_among(&[0, 1], Duration::from_secs(10)).await;
    let other = 1 - l;
    let pre = c.write_many(l, "pre", 200).await;
    assert_eq!(pre.len(), 200);
    c.isolate(other);
    // Written, not committed: the writes hang (and time out) while n2 is away.
    let addr = c.addrs[l];
    let pending = tokio::spawn(async move {
        let mut cl = leaderkv::client::Client::connect(addr)
            .await
            .expect("connect");
        let cmds: Vec<Vec<&[u8]>> = (0..20)
            .map(|_| vec![&b"SET"[..], &b"inflight"[..], &b"1"[..]])
            .collect();
        let _ = cl.pipeline(&cmds).await;
    });
    c.wait_until("the in-flight records", Duration::from_secs(5), |c| {
        let s = c.node(l).status();
        s.last_lsn > s.commit
    })
    .await;
    // Only the joining node is unblocked towards the leader: it gets the snapshot first.
    c.start(2).await;
    c.wait_until("n3 seeded", Duration::from_secs(10), |c| {
        c.node(2).status().snapshot_lsn > 0
    })
    .await;
    c.heal();
    c.wait_caught_up(Duration::from_secs(10)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), pending).await;
    let leader_has = c.node(l).dump().contains_key(&b"inflight"[..]);
    let joined_has = c.node(2).dump().contains_key(&b"inflight"[..]);
    assert!(leader_has, "the in-flight write committed once n2 was back");
    c.shutdown().await;
    joined_has
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_position_makes_a_joining_follower_skip_records() {
    assert!(
        join_during_uncommitted_writes(&[]).await,
        "a correct join replays the records after the snapshot's position"
    );
    assert!(
        !join_during_uncommitted_writes(&[Bug::SnapshotPosition]).await,
        "with the bug the joining follower never gets the in-flight records"
    );
}

/// Records committed by the leader and n_f while n_o was cut off; then n_f is wiped and the
/// leader dies. Does n_o (which lacks the records) get elected with the wiped node's vote?
/// With the `join` mark (how faultline's membership fault re-adds a node) the wiped node does
/// not vote until it has caught up; without it, it votes like a member that forgot everything.
async fn wiped_member_votes(mark: bool) -> (Option<usize>, bool) {
    let mut c = Cluster::new(3, 3, Mode::Sync, &[], 50_000).await;
    let l = c.wait_leader().await;
    let (o, f) = ((l + 1) % 3, (l + 2) % 3);
    c.isolate(o);
    let acked = c.write_many(l, "k", 100).await;
    assert_eq!(acked.len(), 100, "committed by the leader and n_f");
    c.kill(f).await;
    let dir = c.dir(f);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    if mark {
        std::fs::File::create(dir.join("join")).unwrap();
    }
    c.kill(l).await;
    c.heal();
    c.start(f).await;
    tokio::time::sleep(Duration::from_millis(8 * common::ELECTION_MS)).await;
    let leaders = c.leaders();
    let elected = leaders.first().copied();
    let mut has_all = true;
    if elected.is_none() {
        // The old leader comes back: it has the records and is elected; the joiner catches up.
        c.start(l).await;
        let nl = c.wait_leader().await;
        assert_eq!(nl, l, "only the old leader has every record");
        c.wait_caught_up(Duration::from_secs(10)).await;
        let d = c.node(f).dump();
        has_all = acked.iter().all(|k| d.contains_key(k.as_bytes()));
        assert!(
            !c.dir(f).join("join").exists(),
            "the mark is gone once caught up"
        );
    }
    c.shutdown().await;
    (elected, has_all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_does_not_vote_until_caught_up() {
    let (elected, has_all) = wiped_member_votes(true).await;
    assert_eq!(
        elected, None,
        "no leader without the records can be elected"
    );
    assert!(
        has_all,
        "the joined member caught up with every committed record"
    );
    let (elected, _) = wiped_member_votes(false).await;
    assert!(
        elected.is_some(),
        "without the mark the wiped member elects the node that lacks the records"
    );
}
