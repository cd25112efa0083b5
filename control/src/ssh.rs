//! [`SshRemote`]: a [`Remote`] over SSH on the `ssh2` crate (libssh2).
//!
//! Private-key or ssh-agent authentication, a user name and a port ([`SshOptions`]). Host keys
//! are checked against a known_hosts file by default; an unknown key is an [`Error::HostKey`]
//! that says how to trust it; [`HostKeyCheck::InsecureSkip`] turns the check off explicitly.
//! Connecting retries with exponential backoff. Sessions are pooled per remote and reused across
//! commands; every blocking libssh2 call runs on `tokio::task::spawn_blocking`, never on a tokio
//! worker thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ssh2::{CheckResult, HashType, HostKeyType, KnownHostFileKind, Session};

use crate::error::{Error, Result};
use crate::remote::{Exec, ExecOutput, Node, Remote, shell_quote};

mod connect;
use connect::*;

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshAuth {
    /// A private key file (OpenSSH or PEM format; the public key is read from `<key>.pub` if present).
    Key(PathBuf),
    /// The identities of the running ssh-agent (`SSH_AUTH_SOCK`).
    Agent,
    /// The agent if `SSH_AUTH_SOCK` is set, then `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    Auto,
}

/// Host key verification policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// Check against this known_hosts file (default: `~/.ssh/known_hosts`).
    KnownHosts(PathBuf),
    /// No check (`--insecure-skip-host-key-check`). Logs a warning once per connection.
    InsecureSkip,
}

/// Connection options of an [`SshRemote`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// Login user (default: `$USER`, else `root`).
    pub user: String,
    /// TCP port (default 22).
    pub port: u16,
    pub auth: SshAuth,
    pub host_key_check: HostKeyCheck,
    /// Timeout of one TCP connect + handshake attempt.
    pub connect_timeout: Duration,
    /// Connect attempts before giving up (backoff 100 ms, doubling, capped at 2 s).
    pub connect_attempts: u32,
    /// At most this many sessions are opened to the node at once (concurrent commands).
    pub max_sessions: usize,
    /// Run every command, upload and download through `sudo -n` (a login user that is not
    /// root but may sudo without a password, as Jepsen's nodes usually have).
    pub sudo: bool,
}

impl Default for SshOptions {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        SshOptions {
            user: std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "root".into()),
            port: 22,
            auth: SshAuth::Auto,
            host_key_check: HostKeyCheck::KnownHosts(home.join(".ssh/known_hosts")),
            connect_timeout: Duration::from_secs(10),
            connect_attempts: 5,
            max_sessions: 8,
            sudo: false,
        }
    }
}

/// A [`Remote`] over SSH. Cheap to share: hold it as `Arc<dyn Remote>`.
///
/// Keeps up to [`SshOptions::max_sessions`] sessions to its node; a command takes an idle
/// session (or opens one), runs in a channel of it, and gives it back, so sequential commands
/// reuse one session. A session that fails is dropped and the command that found it broken
/// is retried once on a fresh session, provided the command had not started.
pub struct SshRemote {
    node: Node,
    opts: SshOptions,
    idle: Arc<Mutex<Vec<Session>>>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for SshRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRemote")
            .field("node", &self.node)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Drop for SshRemote {
    /// Closing a session talks to the server (blocking): done on a thread of its own, so
    /// dropping a remote on a tokio worker never blocks it.
    fn drop(&mut self) {
        let sessions = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        if !sessions.is_empty() {
            let _ = std::thread::Builder::new()
                .name("ssh-close".into())
                .spawn(move || drop(sessions));
        }
    }
}

impl SshRemote {
    /// Connects to `node` (with retries) and checks the host key and authentication, so errors
    /// surface here rather than at the first command. The session is kept for later commands.
    pub async fn connect(node: Node, opts: SshOptions) -> Result<Self> {
        let (n, o) = (node.clone(), opts.clone());
        let sess = tokio::task::spawn_blocking(move || connect_with_retries(&n, &o))
            .await
            .map_err(|e| Error::node(&node, "connect", e))??;
        Ok(SshRemote {
            slots: Arc::new(tokio::sync::Semaphore::new(opts.max_sessions.max(1))),
            node,
            opts,
            idle: Arc::new(Mutex::new(vec![sess])),
        })
    }

    /// The options this remote connects with.
    pub fn options(&self) -> &SshOptions {
        &self.opts
    }

    /// Runs `f` with a session on a blocking thread; retries once on a fresh session when `f`
    /// reports that the session was broken before anything ran.
    async fn with_session<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Session) -> std::result::Result<T, SessErr> + Send + Sync + 'static,
    {
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|e| Error::node(&self.node, "get a session", e))?;
        let (node, opts, idle) = (self.node.clone(), self.opts.clone(), self.idle.clone());
        let n2 = self.node.clone();
        tokio::task::spawn_blocking(move || {
            let mut fresh = false;
            loop {
                let pooled = idle.lock().expect("pool").pop();
                let sess = match pooled {
                    Some(s) => s,
                    None => {
                        fresh = true;
                        connect_with_retries(&node, &opts)?
                    }
                };
                match f(&sess) {
                    Ok(v) => {
                        idle.lock().expect("pool").push(sess);
                        return Ok(v);
                    }
                    // Broken before the command started: reconnect once.
                    Err(SessErr::Stale(_)) if !fresh => continue,
                    Err(SessErr::Stale(e)) => {
                        return Err(Error::node(&node, "open a channel", e));
                    }
                    Err(SessErr::Done(e, keep)) => {
                        if keep {
                            idle.lock().expect("pool").push(sess);
                        }
                        return Err(*e);
                    }
                }
            }
        })
        .await
        .map_err(|e| Error::node(&n2, "run a blocking SSH task", e))?
    }
}

/// Outcome of a session operation that failed.
enum SessErr {
    /// The session could not open a channel: nothing ran, retry on a new session.
    Stale(ssh2::Error),
    /// A final error; `bool`: the session is still usable.
    Done(Box<Error>, bool),
}

impl SessErr {
    fn done(e: Error, keep: bool) -> Self {
        SessErr::Done(Box::new(e), keep)
    }
}

#[async_trait]
impl Remote for SshRemote {
    fn node(&self) -> &Node {
        &self.node
    }

    async fn run(&self, cmd: &Exec) -> Result<ExecOutput> {
        let as_root = self.opts.user == "root";
        let inner = cmd.clone().sudo(false).to_command_line(true);
        // The node enforces the timeout too (kills the command's process group), so a timed-out
        // command does not linger; daemons that called setsid are not in that group.
        let secs = cmd.timeout.as_secs_f64().ceil().max(1.0) as u64;
        // Plain argv (no cwd/env, not a shell builtin): let `timeout` exec it directly, one
        // process less per command.
        const BUILTINS: &[&str] = &[
            "cd", "exit", "export", "set", "unset", "ulimit", "umask", "source", ".", "exec",
            "trap", "eval", "read", "wait", "shift", "return", "alias", "type", "command", "hash",
            "times",
        ];
        let plain = cmd.cwd.is_none()
            && cmd.env.is_empty()
            && cmd.argv.first().is_some_and(|p| {
                !p.is_empty() && !BUILTINS.contains(&p.as_str()) && !p.contains('=')
            });
        let timed = if plain {
            format!("timeout -k 1 {secs} {inner}")
        } else {
            format!("timeout -k 1 {secs} sh -c {}", shell_quote(&inner))
        };
        let line = if (cmd.sudo || self.opts.sudo) && !as_root {
            format!("sudo -n -- sh -c {}", shell_quote(&timed))
        } else {
            timed
        };
        let node = self.node.clone();
        let cmd = cmd.clone();
        self.with_session(move |sess| {
            let started = Instant::now();
            let deadline = cmd.timeout + Duration::from_secs(2);
            sess.set_timeout(deadline.as_millis().min(u32::MAX as u128) as u32);
            let mut ch = sess.channel_session().map_err(SessErr::Stale)?;
            let timed_out = |e: &ssh2::Error| {
                matches!(e.code(), ssh2::ErrorCode::Session(-9)) || started.elapsed() >= cmd.timeout
            };
            let fail = |e: ssh2::Error| {
                if timed_out(&e) {
                    SessErr::done(timeout_err(&node, &cmd), false)
                } else {
                    SessErr::done(
                        Error::node(&node, format!("run `{}`", cmd.to_shell()), e),
                        false,
                    )
                }
            };
            let fail_io = |e: std::io::Error| {
                if started.elapsed() >= cmd.timeout {
                    SessErr::done(timeout_err(&node, &cmd), false)
                } else {
                    SessErr::done(
                        Error::node(&node, format!("run `{}`", cmd.to_shell()), e),
                        false,
                    )
                }
            };
            ch.exec(&line).map_err(fail)?;
            if let Some(data) = &cmd.stdin {
                // A command that does not read stdin may close it: not an error.
                let _ = ch.write_all(data);
            }
            ch.send_eof().map_err(fail)?;
            let mut out = Vec::new();
            let mut err = Vec::new();
            ch.read_to_end(&mut out).map_err(fail_io)?;
            ch.stderr().read_to_end(&mut err).map_err(fail_io)?;
            ch.wait_close().map_err(fail)?;
            let mut status = ch.exit_status().map_err(fail)?;
            if let Ok(sig) = ch.exit_signal() {
                if let Some(name) = sig.exit_signal {
                    status = 128 + signal_number(&name);
                }
            }
            // `timeout` exits 124 (TERM worked) or dies of KILL one second later.
            if (status == 124 || status == 137) && started.elapsed() >= cmd.timeout {
                return Err(SessErr::done(timeout_err(&node, &cmd), true));
            }
            Ok(ExecOutput {
                status,
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
            })
        })
        .await
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<()> {
        let node = self.node.clone();
        let local = local.to_path_buf();
        let remote = remote.to_string();
        let opts = self.opts.clone();
        self.with_session(move |sess| {
            let action = format!("upload {} to {remote}", local.display());
            let mut file = std::fs::File::open(&local)
                .map_err(|e| SessErr::done(Error::node(&node, &action, e), true))?;
            sess.set_timeout(0);
            let mut ch = sess.channel_session().map_err(SessErr::Stale)?;
            let fail = |e: ssh2::Error| SessErr::done(Error::node(&node, &action, e), false);
            ch.exec(&sudo_line(&opts, format!("cat > {}", shell_quote(&remote))))
                .map_err(fail)?;
            std::io::copy(&mut file, &mut ch)
                .map_err(|e| SessErr::done(Error::node(&node, &action, e), false))?;
            ch.send_eof().map_err(fail)?;
            let mut err = String::new();
            let _ = ch.stderr().read_to_string(&mut err);
            ch.wait_close().map_err(fail)?;
            match ch.exit_status().map_err(fail)? {
                0 => Ok(()),
                st => Err(SessErr::done(
                    Error::node(&node, &action, format!("exit status {st}: {}", err.trim())),
                    true,
                )),
            }
        })
        .await
    }

    async fn download(&self, remote: &str, local: &Path) -> Result<()> {
        let node = self.node.clone();
        let local = local.to_path_buf();
        let remote = remote.to_string();
        let opts = self.opts.clone();
        self.with_session(move |sess| {
            let action = format!("download {remote} to {}", local.display());
            sess.set_timeout(0);
            let mut ch = sess.channel_session().map_err(SessErr::Stale)?;
            let fail = |e: ssh2::Error| SessErr::done(Error::node(&node, &action, e), false);
            ch.exec(&sudo_line(&opts, format!("cat {}", shell_quote(&remote))))
                .map_err(fail)?;
            ch.send_eof().map_err(fail)?;
            let mut file = std::fs::File::create(&local)
                .map_err(|e| SessErr::done(Error::node(&node, &action, e), false))?;
            let copied = std::io::copy(&mut ch, &mut file);
            let mut err = String::new();
            let _ = ch.stderr().read_to_string(&mut err);
            let closed = ch.wait_close();
            let status = ch.exit_status();
            let result = match (copied, closed, status) {
                (Err(e), _, _) => Err(SessErr::done(Error::node(&node, &action, e), false)),
                (_, Err(e), _) | (_, _, Err(e)) => Err(fail(e)),
                (Ok(_), Ok(()), Ok(0)) => file
                    .flush()
                    .map_err(|e| SessErr::done(Error::node(&node, &action, e), true)),
                (Ok(_), Ok(()), Ok(st)) => Err(SessErr::done(
                    Error::node(&node, &action, format!("exit status {st}: {}", err.trim())),
                    true,
                )),
            };
            if result.is_err() {
                let _ = std::fs::remove_file(&local);
            }
            result
        })
        .await
    }
}

/// Number of a signal named in an SSH exit-signal message (`KILL`, `TERM`, ...).
/// `line` wrapped in `sudo -n` when the options ask for it and the login user is not root.
fn sudo_line(opts: &SshOptions, line: String) -> String {
    if opts.sudo && opts.user != "root" {
        format!("sudo -n -- sh -c {}", shell_quote(&line))
    } else {
        line
    }
}

fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "USR1" => 10,
        "USR2" => 12,
        _ => 127,
    }
}

fn timeout_err(node: &Node, cmd: &Exec) -> Error {
    Error::Timeout {
        node: node.name.clone(),
        addr: node.addr.clone(),
        command: cmd.to_shell(),
        timeout: cmd.timeout,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_no_pad() {
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(super::base64(b"fo"), "Zm8");
        assert_eq!(super::base64(b"f"), "Zg");
    }
}
