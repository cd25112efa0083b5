//! Node configuration: command-line flags, replication modes and seeded bugs.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::Error;

/// When the leader acknowledges a write to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Ack after a majority (leader included) has the record durably (fsynced).
    Sync,
    /// Ack after the leader and one designated synchronous follower have it durably;
    /// a lagging or failed synchronous follower is replaced by the most up-to-date other one.
    #[value(name = "semi-sync")]
    SemiSync,
    /// Ack after the leader appended the record locally; followers catch up later.
    Async,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::SemiSync => "semi-sync",
            Mode::Async => "async",
        }
    }
}

/// What the log carries for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Replication {
    /// Its effect: the records it makes (a key's new value, a member added).
    Row,
    /// The command itself, with the leader's time: every node evaluates it again.
    Statement,
}

impl Replication {
    pub fn name(self) -> &'static str {
        match self {
            Replication::Row => "row",
            Replication::Statement => "statement",
        }
    }
}

/// Seeded bugs, each off by default (`--bug NAME`, repeatable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Bug {
    /// Ack writes as soon as they are appended locally, even in `sync` mode.
    AckBeforeReplicate,
    /// Terms are not fencing tokens: no leader lease, followers accept replication
    /// from leaders of older terms.
    NoFencing,
    /// `INCR` ids come from a node-local counter that is not carried in the log.
    LocalCounter,
    /// Voters grant votes without checking that the candidate is at least as up to date.
    ElectStale,
    /// A leader never steps down: neither on lease expiry nor on seeing a higher term.
    NoStepDown,
    /// Followers ignore a read's session position (`SESSION <lsn> ...`) and answer from
    /// whatever they have applied: a client may not see its own writes.
    IgnoreSession,
    /// Followers answer reads from every record they have received, committed or not (and
    /// truncated again if a new leader's log lacks them), while reporting their applied,
    /// committed position.
    ReadUncommitted,
    /// A follower further behind than the leader's retained log resumes from where the log
    /// now starts instead of installing a snapshot (a replica pointed at the oldest WAL
    /// segment or binlog still there): the records in between never reach it.
    ResumeTruncated,
    /// A snapshot for a new or far-behind follower is labelled with the end of the leader's
    /// log (taken after the state was copied) instead of the position of the state it holds:
    /// the follower skips the records in between.
    SnapshotPosition,
    /// The leader lease is measured with the wall clock instead of the monotonic one: a
    /// leader whose clock is set back keeps leading (and answering as leader) past the lease,
    /// while a new leader is elected ("the leader and the lock").
    WallClockLease,
    /// In statement mode a node evaluates a statement's time (the `updated_at` every write
    /// stamps its key with) with its own clock instead of the leader's time logged with it
    /// (MySQL's `SYSDATE()` under statement-based replication): no two nodes hold the same
    /// state. Turns statement mode on.
    ReplicaClock,
}

impl Bug {
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeReplicate => "ack-before-replicate",
            Bug::NoFencing => "no-fencing",
            Bug::LocalCounter => "local-counter",
            Bug::ElectStale => "elect-stale",
            Bug::NoStepDown => "no-step-down",
            Bug::IgnoreSession => "ignore-session",
            Bug::ReadUncommitted => "read-uncommitted",
            Bug::ResumeTruncated => "resume-truncated",
            Bug::SnapshotPosition => "snapshot-position",
            Bug::WallClockLease => "wall-clock-lease",
            Bug::ReplicaClock => "replica-clock",
        }
    }
}

/// Command-line flags of the `leaderkv` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "leaderkv",
    about = "faultline's reference leader-based replicated key-value store"
)]
pub struct Args {
    /// This node's id; must appear in --peers.
    #[arg(long)]
    pub id: String,
    /// Address to listen on (clients and peers share it). Defaults to this node's --peers address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// All cluster members, this node included: `n1=10.77.0.11:7000,n2=10.77.0.12:7000,...`.
    /// Must be the same on every node.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Directory for the durable log, metadata and snapshots (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Log file (appended to). Without it, logs go to stderr.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Replication mode.
    #[arg(long, value_enum, default_value = "sync")]
    pub mode: Mode,
    /// What the log carries for a write: its effect (`row`) or the command (`statement`).
    #[arg(long, value_enum, default_value = "row")]
    pub replication: Replication,
    /// Failure-detection timeout: a follower that hears nothing from a leader for a random
    /// time in [T, 2T] starts an election.
    #[arg(long, default_value_t = 1000)]
    pub election_timeout_ms: u64,
    /// Heartbeat interval of the leader.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// Leader lease: a leader that has not heard from a majority within this time steps down.
    /// Must be below the election timeout (default: 3/4 of it).
    #[arg(long)]
    pub lease_ms: Option<u64>,
    /// How long a write waits for replication before it is answered `-UNCERTAIN`.
    #[arg(long, default_value_t = 2000)]
    pub write_timeout_ms: u64,
    /// Semi-sync: a synchronous follower silent or lagging this long is replaced.
    #[arg(long, default_value_t = 300)]
    pub semi_sync_timeout_ms: u64,
    /// Records the log keeps beyond the latest snapshot; a follower further behind re-snapshots.
    /// Small on purpose (PostgreSQL keeps no extra WAL by default): a follower away for about a
    /// second under load needs a snapshot, so that path is exercised by every outage, even at
    /// the few hundred writes per second of a debug build on a loaded machine.
    #[arg(long, default_value_t = 250)]
    pub retained_log: u64,
    /// Seeded bug to enable (repeatable).
    #[arg(long = "bug", value_enum)]
    pub bugs: Vec<Bug>,
    /// Reads on a node that is not the leader: `stale` answers from local (possibly stale)
    /// state, `redirect` refuses them like writes (`-MOVED`/`-NOLEADER`).
    #[arg(long, value_enum, default_value = "stale")]
    pub follower_reads: FollowerReads,
}

/// What a non-leader does with GET/SMEMBERS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FollowerReads {
    Stale,
    Redirect,
}

/// A cluster member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: String,
    pub addr: SocketAddr,
}

/// Validated configuration of one node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Index of this node in `peers` (sorted by id).
    pub me: usize,
    pub peers: Vec<Peer>,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub mode: Mode,
    pub replication: Replication,
    pub election_timeout: Duration,
    pub heartbeat: Duration,
    pub lease: Duration,
    pub write_timeout: Duration,
    pub semi_sync_timeout: Duration,
    pub retained_log: u64,
    pub bugs: BTreeSet<Bug>,
    pub follower_reads: FollowerReads,
}

impl Config {
    pub fn from_args(a: &Args) -> Result<Config, Error> {
        let mut peers = Vec::new();
        for p in &a.peers {
            let (id, addr) = p
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("peer {p:?} is not ID=HOST:PORT")))?;
            let addr: SocketAddr = addr
                .parse()
                .map_err(|e| Error::Config(format!("peer {p:?}: bad address: {e}")))?;
            peers.push(Peer {
                id: id.to_string(),
                addr,
            });
        }
        peers.sort_by(|x, y| x.id.cmp(&y.id));
        peers.dedup_by(|x, y| x.id == y.id);
        if peers.len() > u16::MAX as usize {
            return Err(Error::Config("too many peers".into()));
        }
        let me = peers
            .iter()
            .position(|p| p.id == a.id)
            .ok_or_else(|| Error::Config(format!("--id {} is not in --peers", a.id)))?;
        if a.heartbeat_ms == 0 || a.election_timeout_ms <= a.heartbeat_ms {
            return Err(Error::Config(
                "--election-timeout-ms must exceed --heartbeat-ms > 0".into(),
            ));
        }
        let lease_ms = a.lease_ms.unwrap_or(a.election_timeout_ms * 3 / 4);
        if lease_ms >= a.election_timeout_ms {
            return Err(Error::Config(
                "--lease-ms must be below --election-timeout-ms".into(),
            ));
        }
        Ok(Config {
            me,
            listen: a.listen.unwrap_or(peers[me].addr),
            peers,
            data_dir: a.data_dir.clone(),
            mode: a.mode,
            replication: if a.bugs.contains(&Bug::ReplicaClock) {
                Replication::Statement
            } else {
                a.replication
            },
            election_timeout: Duration::from_millis(a.election_timeout_ms),
            heartbeat: Duration::from_millis(a.heartbeat_ms),
            lease: Duration::from_millis(lease_ms),
            write_timeout: Duration::from_millis(a.write_timeout_ms),
            semi_sync_timeout: Duration::from_millis(a.semi_sync_timeout_ms),
            retained_log: a.retained_log.max(1),
            bugs: a.bugs.iter().copied().collect(),
            follower_reads: a.follower_reads,
        })
    }

    pub fn bug(&self, b: Bug) -> bool {
        self.bugs.contains(&b)
    }

    pub fn id(&self) -> &str {
        &self.peers[self.me].id
    }

    /// Identifies the cluster (its member list) on peer connections, so that a node never takes
    /// messages from another cluster that happens to reach its address.
    pub fn cluster_id(&self) -> u32 {
        let mut s = String::new();
        for p in &self.peers {
            s.push_str(&format!("{}={},", p.id, p.addr));
        }
        crate::codec::checksum(s.as_bytes())
    }

    pub fn majority(&self) -> usize {
        self.peers.len() / 2 + 1
    }
}
