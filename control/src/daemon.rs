//! Daemon helpers on any [`Remote`] (Jepsen's `start-daemon!` / `stop-daemon!`): start a program
//! detached with a pidfile and a log file, signal it, kill it, ask whether it runs.
//!
//! A program started by [`start_daemon`] runs in its own session (`setsid`), so its pid is also
//! its process-group id and [`signal`] reaches its children too. Programs that daemonize
//! themselves and write their own pidfile are supported with [`DaemonSpec::self_pidfile`].

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::remote::{Exec, Remote, shell_quote};

/// What to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonSpec {
    /// Program path (or name on `PATH`).
    pub binary: String,
    pub args: Vec<String>,
    /// Where the pid is kept (written by us, or by the program if `self_pidfile`).
    pub pidfile: String,
    /// stdout and stderr are appended here.
    pub logfile: String,
    /// Working directory.
    pub chdir: Option<String>,
    /// Extra environment (e.g. `LD_PRELOAD` of the clock shim).
    pub env: Vec<(String, String)>,
    /// Run through sudo (ignored when the remote runs as root).
    pub sudo: bool,
    /// The program daemonizes itself and writes `pidfile` (e.g. `redis-server --daemonize yes
    /// --pidfile ...`): we run it in the foreground and wait for the pidfile.
    pub self_pidfile: bool,
    /// How long the program may take to start (with `self_pidfile`, how long it may run in
    /// the foreground); [`START_WAIT`] when not given.
    pub start_timeout: Option<Duration>,
}

impl DaemonSpec {
    pub fn new(
        binary: impl Into<String>,
        pidfile: impl Into<String>,
        logfile: impl Into<String>,
    ) -> Self {
        DaemonSpec {
            binary: binary.into(),
            pidfile: pidfile.into(),
            logfile: logfile.into(),
            ..Default::default()
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

/// A signal to send to a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Term,
    Kill,
    /// Pause (SIGSTOP).
    Stop,
    /// Resume (SIGCONT).
    Cont,
    Hup,
    Int,
    Usr1,
    Usr2,
}

impl Signal {
    /// The name `kill -s` takes (`TERM`, `KILL`, `STOP`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
        }
    }
}

/// How long [`start_daemon`] waits for the pidfile to appear.
pub const START_WAIT: Duration = Duration::from_secs(10);

/// Shell snippet: `PID` = pid in the pidfile if that process is alive (and not a zombie), else
/// exit 1. The pid is the digits of the file's first line: a plain pidfile, or a multi-line
/// one such as PostgreSQL's `postmaster.pid` (pid, data directory, start time, port, ...).
fn live_pid_script(pidfile: &str) -> String {
    let pf = shell_quote(pidfile);
    format!(
        "[ -r {pf} ] || exit 1; PID=$(head -n 1 {pf} | tr -dc 0-9); [ -n \"$PID\" ] || exit 1; \
         [ -d /proc/$PID ] || exit 1; \
         case \"$(sed -n 's/^State:[[:space:]]*\\([A-Z]\\).*/\\1/p' /proc/$PID/status 2>/dev/null)\" in Z) exit 1;; esac"
    )
}

/// Starts `spec` detached on `remote` and returns its pid. If the pidfile names a live process
/// already, does nothing and returns that pid (like Jepsen's `:already-running`).
pub async fn start_daemon(remote: &dyn Remote, spec: &DaemonSpec) -> Result<u32> {
    if let Some(pid) = running_pid(remote, &spec.pidfile, spec.sudo).await? {
        return Ok(pid);
    }
    let pf = shell_quote(&spec.pidfile);
    let log = shell_quote(&spec.logfile);
    let mut prog = shell_quote(&spec.binary);
    for a in &spec.args {
        prog.push(' ');
        prog.push_str(&shell_quote(a));
    }
    let mut envs = String::new();
    for (k, v) in &spec.env {
        envs.push_str(&shell_quote(&format!("{k}={v}")));
        envs.push(' ');
    }
    let cd = spec
        .chdir
        .as_deref()
        .map(|d| format!("cd {} && ", shell_quote(d)))
        .unwrap_or_default();
    let script = if spec.self_pidfile {
        format!("rm -f {pf}; {cd}env {envs}{prog} >> {log} 2>&1 < /dev/null")
    } else {
        // setsid -f: forks, new session; the inner sh records its own pid then becomes the program.
        let inner = format!("echo $$ > {pf}; exec {prog}");
        format!(
            "rm -f {pf}; {cd}env {envs}setsid -f sh -c {} >> {log} 2>&1 < /dev/null",
            shell_quote(&inner)
        )
    };
    let wait = spec.start_timeout.unwrap_or(START_WAIT);
    remote
        .exec(&Exec::sh(script).sudo(spec.sudo).timeout(wait))
        .await?;
    let deadline = Instant::now() + wait;
    loop {
        if let Some(pid) = running_pid(remote, &spec.pidfile, spec.sudo).await? {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            let tail = remote
                .run(
                    &Exec::new("tail")
                        .args(["-n", "20", &spec.logfile])
                        .sudo(spec.sudo),
                )
                .await
                .map(|o| o.stdout)
                .unwrap_or_default();
            return Err(Error::node(
                remote.node(),
                format!("start daemon {}", spec.binary),
                format!(
                    "no live process in {} after {:?}; log {} ends with:\n{tail}",
                    spec.pidfile, wait, spec.logfile
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pid in `pidfile` if that process runs (`None` if the file is missing or the process gone).
pub async fn running_pid(remote: &dyn Remote, pidfile: &str, sudo: bool) -> Result<Option<u32>> {
    let script = format!("{}; echo \"$PID\"", live_pid_script(pidfile));
    let out = remote
        .run(&Exec::sh(script).sudo(sudo).timeout(Duration::from_secs(10)))
        .await?;
    if out.status != 0 {
        return Ok(None);
    }
    Ok(out.stdout.trim().parse().ok())
}

/// True if the pidfile names a live process.
pub async fn is_running(remote: &dyn Remote, pidfile: &str) -> Result<bool> {
    Ok(running_pid(remote, pidfile, false).await?.is_some())
}

/// Sends `sig` to the daemon of `pidfile`: to its whole process group when it leads one (as
/// daemons started by [`start_daemon`] do), else to the pid alone. Errors if it does not run.
pub async fn signal(remote: &dyn Remote, pidfile: &str, sig: Signal) -> Result<()> {
    // Process group from /proc (no `ps` needed): the third field after the `(comm)`.
    let script = format!(
        "{}; PGRP=$(sed 's/.*) //' /proc/$PID/stat | cut -d' ' -f3); \
         if [ \"$PGRP\" = \"$PID\" ]; then kill -s {s} -- -\"$PID\" || exit 2; else kill -s {s} \"$PID\" || exit 2; fi",
        live_pid_script(pidfile),
        s = sig.name()
    );
    let cmd = Exec::sh(script).timeout(Duration::from_secs(10));
    let mut out = remote.run(&cmd).await?;
    if out.status == 2 {
        // Not permitted as the login user (a daemon started with sudo): retry through sudo.
        out = remote.run(&cmd.sudo(true)).await?;
    }
    if out.status != 0 {
        return Err(Error::node(
            remote.node(),
            format!("send SIG{} to the daemon of {pidfile}", sig.name()),
            if out.stderr.trim().is_empty() {
                "it is not running".to_string()
            } else {
                out.stderr.trim().to_string()
            },
        ));
    }
    Ok(())
}

/// SIGKILLs the daemon (and its group) if it runs; no error if it does not. Keeps the pidfile.
pub async fn kill_daemon(remote: &dyn Remote, pidfile: &str) -> Result<()> {
    match signal(remote, pidfile, Signal::Kill).await {
        Ok(()) => wait_gone(remote, pidfile, Duration::from_secs(5))
            .await
            .map(|_| ()),
        Err(_) if !is_running(remote, pidfile).await? => Ok(()),
        Err(e) => Err(e),
    }
}

/// Stops the daemon: SIGCONT (a paused process cannot die of SIGTERM), SIGTERM, waits up to
/// `grace`, then SIGKILL; removes the pidfile. No error if it was not running.
pub async fn stop_daemon(remote: &dyn Remote, pidfile: &str, grace: Duration) -> Result<()> {
    if is_running(remote, pidfile).await? {
        let _ = signal(remote, pidfile, Signal::Term).await;
        let _ = signal(remote, pidfile, Signal::Cont).await;
        if !wait_gone(remote, pidfile, grace).await? {
            kill_daemon(remote, pidfile).await?;
        }
    }
    remote.exec(&Exec::new("rm").args(["-f", pidfile])).await?;
    Ok(())
}

/// Polls until the daemon is gone; true if it went within `within`.
async fn wait_gone(remote: &dyn Remote, pidfile: &str, within: Duration) -> Result<bool> {
    let deadline = Instant::now() + within;
    loop {
        if !is_running(remote, pidfile).await? {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pid the snippet finds in `text`, run with `sh` on this machine.
    fn live_pid(text: &str) -> Option<u32> {
        let dir = tempfile::tempdir().unwrap();
        let pf = dir.path().join("x.pid");
        std::fs::write(&pf, text).unwrap();
        let script = format!("{}; echo $PID", live_pid_script(pf.to_str().unwrap()));
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    #[test]
    fn a_pidfile_is_read_by_its_first_line() {
        let me = std::process::id();
        assert_eq!(live_pid(&format!("{me}\n")), Some(me));
        // PostgreSQL's postmaster.pid: the pid, then the data directory, start time, port...
        let pg =
            format!("{me}\n/var/lib/postgresql/15/main\n1733300000\n5432\n/var/run/postgresql\n");
        assert_eq!(live_pid(&pg), Some(me));
        assert_eq!(live_pid(""), None);
        assert_eq!(
            live_pid("\n123\n"),
            None,
            "an empty first line names no process"
        );
    }
}
