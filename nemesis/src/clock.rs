//! Clock faults. Two mechanisms ([`ClockMode`]):
//!
//! - `Shim` (local clusters: namespaces share one kernel clock): every node's processes run
//!   under faultline's LD_PRELOAD shim (`libclockshim.so`, crate `clockshim`) with
//!   `FAULTLINE_CLOCK_FILE` naming that node's offset file; the nemesis changes the node's
//!   clock with one atomic 8-byte store into the file (on the controller's file system,
//!   which the namespaces share). Start the system with [`shim_env`] in its environment.
//!   **Statically linked programs and Go programs (etcd) are not skewed by a preload shim**:
//!   they read the clock through the vDSO or raw syscalls.
//! - `Settime` (VMs): the `faultline-clock` helper (from the `clockshim` crate, uploaded to
//!   the node) calls `clock_settime`; NTP services are stopped first and restarted when the
//!   fault is healed, and each bump is undone by the opposite bump.

use std::path::{Path, PathBuf};

use control::shell_quote;

use crate::error::{Error, Result};

/// Variable the shim reads (same as `clockshim::ENV_CLOCK_FILE`).
pub const ENV_CLOCK_FILE: &str = "FAULTLINE_CLOCK_FILE";

/// How clock faults are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockMode {
    /// Clock faults are refused (the error says why).
    Unsupported,
    /// LD_PRELOAD shim; offset files `<dir>/<node>.offset` on the controller's file system.
    Shim { dir: PathBuf, lib: PathBuf },
    /// `clock_settime` through the helper at this path on every node.
    Settime { helper: String },
}

impl ClockMode {
    /// The offset file of `node` (shim mode).
    pub fn shim_file(&self, node: &str) -> Option<PathBuf> {
        match self {
            ClockMode::Shim { dir, .. } => Some(dir.join(format!("{node}.offset"))),
            _ => None,
        }
    }
}

/// Creates every node's offset file at offset 0 (shim mode; nothing otherwise). Call it
/// before the system starts: the shim maps its file when the process first reads the clock,
/// and a process that found no file keeps offset 0 for its whole life.
pub fn prepare_shim_files<'a>(
    mode: &ClockMode,
    nodes: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    for n in nodes {
        if let Some(file) = mode.shim_file(n) {
            write_offset(&file, 0)?;
        }
    }
    Ok(())
}

/// Environment for a system process on `node` so that the shim skews it (empty unless shim
/// mode): `LD_PRELOAD` and `FAULTLINE_CLOCK_FILE`. Put it in the `DaemonSpec`'s env.
pub fn shim_env(mode: &ClockMode, node: &str) -> Vec<(String, String)> {
    match (mode, mode.shim_file(node)) {
        (ClockMode::Shim { lib, .. }, Some(file)) => vec![
            ("LD_PRELOAD".into(), lib.display().to_string()),
            (ENV_CLOCK_FILE.into(), file.display().to_string()),
        ],
        _ => vec![],
    }
}

/// Stores `offset_ns` in the shim offset file with one aligned atomic store through a shared
/// mapping (creating the 8-byte file if needed; never truncating), so readers never see a
/// torn value.
pub fn write_offset(path: &Path, offset_ns: i64) -> Result<()> {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicI64, Ordering};
    let what = || format!("write clock offset file {}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(what(), e))?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(what(), e))?;
    let len = file.metadata().map_err(|e| Error::io(what(), e))?.len();
    if len < 8 {
        file.set_len(8).map_err(|e| Error::io(what(), e))?;
    }
    // SAFETY: maps the first 8 bytes of a file we hold open and that is at least 8 bytes
    // long; the mapping is page aligned, so the AtomicI64 is aligned; unmapped right after.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            8,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(Error::io(what(), std::io::Error::last_os_error()));
        }
        (*(addr as *const AtomicI64)).store(offset_ns, Ordering::SeqCst);
        libc::munmap(addr, 8);
    }
    Ok(())
}

/// Reads the shim offset file (0 if it does not exist).
pub fn read_offset(path: &Path) -> Result<i64> {
    match std::fs::read(path) {
        Ok(b) if b.len() >= 8 => Ok(i64::from_ne_bytes(b[..8].try_into().expect("8 bytes"))),
        Ok(_) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io(
            format!("read clock offset file {}", path.display()),
            e,
        )),
    }
}

/// NTP services stopped before a `clock_settime` bump (whichever exist).
pub const NTP_SERVICES: [&str; 6] = [
    "chrony",
    "chronyd",
    "ntp",
    "ntpsec",
    "systemd-timesyncd",
    "openntpd",
];

/// Script: stop every active NTP service and print the names of those it stopped.
pub fn stop_ntp_script() -> String {
    format!(
        "for s in {}; do if systemctl is-active --quiet $s 2>/dev/null; then systemctl stop $s && echo $s; fi; done; true",
        NTP_SERVICES.join(" ")
    )
}

/// Script: start `services` again.
pub fn start_ntp_script(services: &[String]) -> String {
    let mut s = "true".to_string();
    for svc in services {
        s.push_str(&format!("; systemctl start {} || true", shell_quote(svc)));
    }
    s
}

/// Script: bump the node's real clock by `delta_ms` with the helper.
pub fn bump_script(helper: &str, delta_ms: i64) -> String {
    format!("{} bump {delta_ms}", shell_quote(helper))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_file_round_trip_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let mode = ClockMode::Shim {
            dir: dir.path().to_path_buf(),
            lib: "/x/libclockshim.so".into(),
        };
        let f = mode.shim_file("n1").unwrap();
        assert_eq!(read_offset(&f).unwrap(), 0);
        write_offset(&f, -7).unwrap();
        assert_eq!(read_offset(&f).unwrap(), -7);
        let env = shim_env(&mode, "n1");
        assert_eq!(
            env[0],
            ("LD_PRELOAD".to_string(), "/x/libclockshim.so".to_string())
        );
        assert_eq!(env[1].1, f.display().to_string());
        assert!(shim_env(&ClockMode::Unsupported, "n1").is_empty());
    }
}
