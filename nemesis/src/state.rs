//! The unhealed-fault state file. Write-ahead: every fault is recorded, with what undoes it on
//! each node, *before* it is applied, and removed only after it was healed; every change is
//! written to a temporary file and renamed over the old one, so a controller killed at any
//! point leaves either the old or the new list, never a torn one. The next faultline start
//! reads it and heals what is listed ([`crate::heal::heal_from_state_file`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::grudge::NodeName;

/// Environment variable naming the state file (default [`default_state_path`]).
pub const STATE_FILE_ENV: &str = "FAULTLINE_NEMESIS_STATE";

/// `$FAULTLINE_NEMESIS_STATE`, else `<control's state root>/nemesis-state.json`
/// (`/run/faultline/nemesis-state.json` unless `$FAULTLINE_STATE_DIR` says otherwise).
pub fn default_state_path() -> PathBuf {
    std::env::var_os(STATE_FILE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| control::cluster::default_state_root().join("nemesis-state.json"))
}

/// What undoes a fault on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum HealAction {
    /// Delete these rules (argument lists as given to `iptables -A <chain>`) from `chain`.
    Iptables {
        chain: String,
        rules: Vec<Vec<String>>,
    },
    /// SIGCONT these processes (and their process groups when they lead one).
    Resume { pids: Vec<u32> },
    /// Start the system again (needs the system's start: only an in-process heal can).
    Restart,
    /// Have the node join again as a new member (the system's join, then its start: only an
    /// in-process heal can).
    Join,
    /// Set the shim offset file back to 0 (local clusters).
    ClockShim { file: String },
    /// Undo a `clock_settime` bump with the helper (`undo_ms`: the bump to apply; `None` if
    /// unknown, as for an interrupted strobe), then start the NTP services that were stopped.
    ClockSettime {
        helper: String,
        undo_ms: Option<i64>,
        ntp_services: Vec<String>,
    },
    /// Delete the root qdisc faultline put on `iface`.
    TcRoot { iface: String },
}

/// One fault instance on one node, not yet healed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingHeal {
    /// The fault instance (as in [`crate::FaultRecord::id`]).
    pub id: u64,
    pub node: NodeName,
    /// The node's address (for a human reading the file).
    pub addr: String,
    pub action: HealAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
struct StateDoc {
    version: u32,
    /// pid of the controller that wrote it last.
    controller_pid: u32,
    pending: Vec<PendingHeal>,
}

/// The state file, loaded; every change is written through atomically.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    doc: StateDoc,
}

impl StateFile {
    /// Opens (or starts) the state file at `path`; an existing file's entries are kept.
    pub fn open(path: &Path) -> Result<StateFile> {
        let doc = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::other(format!("read nemesis state file {}", path.display()), e)
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateDoc {
                version: 1,
                ..Default::default()
            },
            Err(e) => {
                return Err(Error::io(
                    format!("read nemesis state file {}", path.display()),
                    e,
                ));
            }
        };
        Ok(StateFile {
            path: path.to_path_buf(),
            doc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries not yet healed.
    pub fn pending(&self) -> &[PendingHeal] {
        &self.doc.pending
    }

    pub fn is_empty(&self) -> bool {
        self.doc.pending.is_empty()
    }

    /// Records entries (before the fault is applied) and writes the file.
    pub fn add(&mut self, entries: impl IntoIterator<Item = PendingHeal>) -> Result<()> {
        self.doc.pending.extend(entries);
        self.write()
    }

    /// Removes the entries `keep` rejects (after they were healed) and writes the file.
    pub fn remove_where(&mut self, mut healed: impl FnMut(&PendingHeal) -> bool) -> Result<()> {
        let before = self.doc.pending.len();
        self.doc.pending.retain(|p| !healed(p));
        if self.doc.pending.len() != before {
            self.write()
        } else {
            Ok(())
        }
    }

    /// Forgets every entry (removes the file): for faults known to be gone with their nodes,
    /// e.g. a local cluster that was torn down.
    pub fn clear(&mut self) -> Result<()> {
        self.doc.pending.clear();
        self.write()
    }

    /// Writes the file: a temporary file in the same folder, fsync, rename. An empty list
    /// removes the file.
    fn write(&mut self) -> Result<()> {
        let what = || format!("write nemesis state file {}", self.path.display());
        if self.doc.pending.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(what(), e)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(what(), e))?;
        }
        self.doc.version = 1;
        self.doc.controller_pid = std::process::id();
        let text = serde_json::to_string_pretty(&self.doc).map_err(|e| Error::other(what(), e))?;
        let tmp = self
            .path
            .with_extension(format!("tmp.{}", std::process::id()));
        let res = (|| {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res.map_err(|e| Error::io(what(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, node: &str) -> PendingHeal {
        PendingHeal {
            id,
            node: node.into(),
            addr: "10.0.0.1".into(),
            action: HealAction::Resume { pids: vec![42] },
        }
    }

    #[test]
    fn write_ahead_add_and_remove_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let mut s = StateFile::open(&path).unwrap();
        assert!(s.is_empty());
        s.add([entry(1, "n1"), entry(1, "n2"), entry(2, "n3")])
            .unwrap();
        let again = StateFile::open(&path).unwrap();
        assert_eq!(again.pending().len(), 3);
        s.remove_where(|p| p.id == 1 && p.node == "n1").unwrap();
        assert_eq!(
            StateFile::open(&path).unwrap().pending(),
            &[entry(1, "n2"), entry(2, "n3")]
        );
        s.remove_where(|_| true).unwrap();
        assert!(!path.exists(), "an empty state removes the file");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert!(
            leftovers.is_empty(),
            "no temporary files left: {leftovers:?}"
        );
    }

    #[test]
    fn every_action_round_trips() {
        let actions = vec![
            HealAction::Iptables {
                chain: "FAULTLINE".into(),
                rules: vec![vec!["-s".into(), "10.0.0.2".into()]],
            },
            HealAction::Resume { pids: vec![1, 2] },
            HealAction::Restart,
            HealAction::ClockShim {
                file: "/run/x".into(),
            },
            HealAction::ClockSettime {
                helper: "/usr/local/bin/faultline-clock".into(),
                undo_ms: Some(-5),
                ntp_services: vec!["chrony".into()],
            },
            HealAction::TcRoot {
                iface: "eth0".into(),
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut s = StateFile::open(&path).unwrap();
        s.add(actions.iter().enumerate().map(|(i, a)| PendingHeal {
            id: i as u64,
            node: "n1".into(),
            addr: "a".into(),
            action: a.clone(),
        }))
        .unwrap();
        let back: Vec<HealAction> = StateFile::open(&path)
            .unwrap()
            .pending()
            .iter()
            .map(|p| p.action.clone())
            .collect();
        assert_eq!(back, actions);
    }
}
