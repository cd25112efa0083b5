//! The run store: `<store>/<test-name>/<timestamp>/` with `test.json`,
//! `history.jsonl`, `schedule.json`, `results.json`, `faultline.log` and `nodes/<node>/`;
//! `<store>/latest` points at the newest run.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use systems::Context;

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `<store>/<name>/<timestamp>/` (and `nodes/`), and points `<store>/latest` at it.
    pub fn create(store: &Path, name: &str) -> systems::Result<RunDir> {
        let stamp = timestamp(SystemTime::now());
        let mut path = store.join(name).join(&stamp);
        let mut n = 1;
        while path.exists() {
            path = store.join(name).join(format!("{stamp}-{n}"));
            n += 1;
        }
        fs::create_dir_all(path.join("nodes"))
            .with_context(|| format!("failed to create the run directory {}", path.display()))?;
        let latest = store.join("latest");
        let rel = path.strip_prefix(store).unwrap_or(&path).to_path_buf();
        let tmp = store.join(format!(".latest.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&rel, &tmp)
            .and_then(|()| fs::rename(&tmp, &latest))
            .with_context(|| format!("failed to point {} at the run", latest.display()))?;
        Ok(RunDir { path })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn node_dir(&self, node: &str) -> systems::Result<PathBuf> {
        let d = self.path.join("nodes").join(node);
        fs::create_dir_all(&d).with_context(|| format!("failed to create {}", d.display()))?;
        Ok(d)
    }

    /// Writes pretty JSON to `name` in the run directory.
    pub fn write_json(&self, name: &str, value: &serde_json::Value) -> systems::Result<()> {
        let p = self.file(name);
        let text = serde_json::to_string_pretty(value)?;
        write_file(&p, (text + "\n").as_bytes())
            .with_context(|| format!("failed to write {}", p.display()))
    }
}

/// Writes `bytes` to `path` without following a link there: a new file beside it (mode
/// 644), renamed over `path`. A symlink planted at `path` (a downloaded run directory) is
/// replaced, never written through.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".faultline-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `YYYYmmddTHHMMSS.mmmZ` (UTC), sortable and free of `:`.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// `faultline.log`: the run's own log lines, also shown on stderr (through `show`).
pub struct RunLog {
    file: Mutex<Option<File>>,
    t0: Instant,
    show: Box<dyn Fn(&str) + Send + Sync>,
}

impl RunLog {
    pub fn new(
        path: Option<&Path>,
        show: Box<dyn Fn(&str) + Send + Sync>,
    ) -> systems::Result<RunLog> {
        let file = match path {
            Some(p) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("failed to open {}", p.display()))?,
            ),
            None => None,
        };
        Ok(RunLog {
            file: Mutex::new(file),
            t0: Instant::now(),
            show,
        })
    }

    /// Attaches the log file once the run directory exists.
    pub fn attach(&self, path: &Path) -> systems::Result<()> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
        Ok(())
    }

    pub fn line(&self, msg: &str) {
        let text = self.write(msg);
        (self.show)(&text);
    }

    /// Writes `msg` to the log file only (what the caller prints itself, such as the final
    /// error line).
    pub fn record(&self, msg: &str) {
        self.write(msg);
    }

    fn write(&self, msg: &str) -> String {
        let text = format!("[{:8.3}s] {msg}", self.t0.elapsed().as_secs_f64());
        if let Some(f) = self.file.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = writeln!(f, "{text}");
        }
        text
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_link_planted_at_the_path_is_replaced_not_written_through() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let out = d.path().join("report.html");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_file(&out, b"<html>").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&out).unwrap(), "<html>");
        // No temporary file is left beside it.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);
    }

    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(timestamp(t), "20231114T221320.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000.000Z");
    }

    #[test]
    fn run_dirs_and_latest() {
        let d = tempfile::tempdir().unwrap();
        let a = RunDir::create(d.path(), "t").unwrap();
        let b = RunDir::create(d.path(), "t").unwrap();
        assert_ne!(a.path, b.path);
        assert!(b.path.join("nodes").is_dir());
        let latest = fs::canonicalize(d.path().join("latest")).unwrap();
        assert_eq!(latest, fs::canonicalize(&b.path).unwrap());
    }
}
