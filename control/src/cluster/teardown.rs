//! Taking a cluster down: everything the state file records, by pid and by name.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::*;

impl LocalCluster {
    pub(super) fn node_dir(&self, name: &str) -> PathBuf {
        self.dir.join("nodes").join(name)
    }

    /// Removes everything recorded; caller holds the global lock.
    pub(super) fn teardown(self) -> Result<()> {
        let st = &self.state;
        // 1. Every process in our namespaces (sshd, daemons started on nodes), by pid.
        for n in &st.nodes {
            if let Some(pid) = n.sshd_pid {
                if pid_in_netns(pid, &n.netns) {
                    kill9(pid);
                }
            }
            if Path::new("/run/netns").join(&n.netns).exists() {
                if let Ok(out) = run("list processes", "ip", &["netns", "pids", &n.netns], None) {
                    for pid in out.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
                        kill9(pid);
                    }
                }
            }
        }
        // 2. Namespaces (their eth0 and so the host-side veth go with them), links, bridge.
        let mut batch = String::new();
        for n in &st.nodes {
            if Path::new("/run/netns").join(&n.netns).exists() {
                batch += &format!("netns del {}\n", n.netns);
            }
        }
        for n in &st.nodes {
            if Path::new("/sys/class/net").join(&n.veth).exists() {
                batch += &format!("link del {}\n", n.veth);
            }
        }
        if Path::new("/sys/class/net").join(&st.bridge).exists() {
            batch += &format!("link del {}\n", st.bridge);
        }
        if !batch.is_empty() {
            // -force: go on after an error (something vanished meanwhile); checked below.
            let _ = run(
                "remove namespaces and links",
                "ip",
                &["-force", "-batch", "-"],
                Some(batch.as_bytes()),
            );
        }
        // 3. iptables rules we inserted (each at most once per insert; delete until gone).
        for rule in &st.forward_rules {
            for _ in 0..8 {
                let mut a = vec!["-w".to_string(), "-D".into(), "FORWARD".into()];
                a.extend(rule.iter().cloned());
                if run_owned("remove the forwarding rule", "iptables", &a, None).is_err() {
                    break;
                }
            }
        }
        // 4. Shared things, last one out: the blackhole route and /run/sshd.
        let root = &st.options.state_root;
        for bh in faultline_blackholes()? {
            let used = siblings_use(root, &st.options.prefix, |s| {
                Subnet::parse(&s.options.subnet)
                    .map(|n| n.blackhole())
                    .ok()
                    .as_deref()
                    == Some(&bh)
            });
            if !used {
                run(
                    "remove the blackhole route",
                    "ip",
                    &["route", "del", "blackhole", &bh, "proto", BLACKHOLE_PROTO],
                    None,
                )?;
            }
        }
        for f in &st.files {
            if !siblings_use(root, &st.options.prefix, |s| s.files.contains(f)) {
                if f.is_dir() {
                    let _ = std::fs::remove_dir(f);
                } else {
                    let _ = std::fs::remove_file(f);
                }
            }
        }
        // 5. Verify, then forget.
        let mut left = Vec::new();
        for n in &st.nodes {
            if Path::new("/run/netns").join(&n.netns).exists() {
                left.push(format!("namespace {}", n.netns));
            }
            if Path::new("/sys/class/net").join(&n.veth).exists() {
                left.push(format!("link {}", n.veth));
            }
        }
        if Path::new("/sys/class/net").join(&st.bridge).exists() {
            left.push(format!("bridge {}", st.bridge));
        }
        if !left.is_empty() {
            return Err(Error::local(
                "bring the local cluster down",
                format!("could not remove {}", left.join(", ")),
            ));
        }
        std::fs::remove_dir_all(&self.dir)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| Error::local(format!("remove {}", self.dir.display()), e))
    }
}
