//! `control`: how faultline reaches nodes.
//!
//! - [`remote`]: the [`Remote`] trait (async `run`/`exec`/`upload`/`download`, object safe, held
//!   as `Arc<dyn Remote>`), [`Node`], the command builder [`Exec`] (timeout, sudo, stdin, env,
//!   cwd) and [`ExecOutput`].
//! - [`ssh`]: [`SshRemote`] on the `ssh2` crate (key or agent auth, known_hosts checking, connect
//!   retries, a small pool of reused sessions, blocking calls on blocking threads).
//! - [`netns`]: [`NetnsRemote`], commands inside a local node's network namespace.
//! - [`daemon`]: start/signal/kill/stop/is-running for programs on any remote ([`DaemonSpec`],
//!   [`Signal`]).
//! - [`cluster`]: [`LocalCluster`], a cluster of network namespaces on a bridge of this machine,
//!   optionally with an sshd per node; its state file makes `down` and a later `up` clean up
//!   after a crashed run.
//! - [`docker`]: [`DockerCluster`], one Docker container per node on a network of its own,
//!   through the Engine API; [`DockerRemote`] reaches a node; the default node image.
//! - [`nodes`]: reading a nodes file (`name address` per line) for real hosts.
//! - [`prereq`]: root/tool checks with the Debian package to install, and the skip-or-fail
//!   helper for privileged tests.
//! - [`error`]: [`Error`] ("failed to X on node N (addr): cause").

pub mod cluster;
pub mod daemon;
pub mod docker;
pub mod error;
pub mod netns;
pub mod nodes;
pub mod prereq;
pub mod remote;
pub mod ssh;

pub use cluster::{ClusterOptions, ClusterState, LocalCluster};
pub use daemon::{
    DaemonSpec, Signal, is_running, kill_daemon, running_pid, signal, start_daemon, stop_daemon,
};
pub use docker::{DockerCluster, DockerOptions, DockerRemote};
pub use error::{Error, Result};
pub use netns::NetnsRemote;
pub use remote::{Exec, ExecOutput, Node, Remote, shell_quote};
pub use ssh::{HostKeyCheck, SshAuth, SshOptions, SshRemote};
