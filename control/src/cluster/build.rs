//! Bringing a cluster up: namespaces, veths, the bridge, addresses, routes, firewall rules
//! and per-node sshd, each recorded in the state file before it is made.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::prereq;

use super::*;

impl LocalCluster {
    pub(super) fn build(&mut self, subnet: &Subnet) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::local(format!("create {}", self.dir.display()), e))?;
        // Intent first: every resource is in the state file before it exists.
        // The blackhole route is tagged `proto 77`: any such route is faultline's; the last
        // cluster using its /16 removes it. A route for that /16 of someone else's is left alone.
        let blackhole = subnet.blackhole();
        let bh_exists = route_exists(&blackhole, false)?;
        if !bh_exists || route_exists(&blackhole, true)? {
            self.state.blackhole = Some(blackhole.clone());
        }
        let rule = forward_rule(&self.state.bridge, &self.state.options.prefix);
        self.state.forward_rules = vec![rule.clone()];
        self.save()?;

        if !bh_exists {
            run(
                "add the blackhole route",
                "ip",
                &[
                    "route",
                    "add",
                    "blackhole",
                    &blackhole,
                    "proto",
                    BLACKHOLE_PROTO,
                ],
                None,
            )?;
        }
        let exact = run(
            "inspect routes",
            "ip",
            &["-4", "route", "show", "exact", &subnet.cidr()],
            None,
        )?;
        if !exact.trim().is_empty() {
            return Err(Error::Invalid {
                action: "bring the local cluster up".into(),
                cause: format!(
                    "the subnet {} is already in use on this machine (`{}`); choose another --subnet",
                    subnet.cidr(),
                    exact.trim()
                ),
            });
        }
        let mut batch = String::new();
        for n in &self.state.nodes {
            batch += &format!("netns add {}\n", n.netns);
        }
        let br = &self.state.bridge;
        batch += &format!("link add {br} type bridge\n");
        batch += &format!("link set {br} up\n");
        batch += &format!(
            "addr add {}/{} dev {br}\n",
            self.state.bridge_addr, subnet.len
        );
        for n in &self.state.nodes {
            batch += &format!(
                "link add {} type veth peer name eth0 netns {}\n",
                n.veth, n.netns
            );
            batch += &format!("link set {} master {br} up\n", n.veth);
        }
        run(
            "create namespaces and links",
            "ip",
            &["-batch", "-"],
            Some(batch.as_bytes()),
        )?;
        pause_hook("netns");
        let mut iptables_args = vec!["-w".to_string(), "-I".into(), "FORWARD".into(), "1".into()];
        iptables_args.extend(rule.iter().cloned());
        run_owned(
            "allow forwarding on the cluster bridge",
            "iptables",
            &iptables_args,
            None,
        )?;

        let results: Vec<Result<String>> = std::thread::scope(|s| {
            let hs: Vec<_> = self
                .state
                .nodes
                .iter()
                .map(|n| {
                    let batch = format!(
                        "link set lo up\naddr add {}/{} dev eth0\nlink set eth0 up\n",
                        n.node.addr, subnet.len
                    );
                    s.spawn(move || {
                        run(
                            &format!("configure the namespace {}", n.netns),
                            "ip",
                            &["-n", &n.netns, "-batch", "-"],
                            Some(batch.as_bytes()),
                        )
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        for r in results {
            r?;
        }
        if self.state.options.ssh {
            self.start_sshds()?;
        }
        pause_hook("sshd");
        self.state.complete = true;
        self.save()
    }

    pub(super) fn start_sshds(&mut self) -> Result<()> {
        let sshd = prereq::tool_path("sshd").expect("checked");
        // Privilege separation directory sshd insists on.
        let run_sshd = PathBuf::from("/run/sshd");
        if !run_sshd.exists()
            || siblings_use(
                &self.state.options.state_root,
                &self.state.options.prefix,
                |s| s.files.contains(&run_sshd),
            )
        {
            self.state.files.push(run_sshd.clone());
        }
        let key = self.dir.join("id_ed25519");
        let kh = self.dir.join("known_hosts");
        self.state.client_key = Some(key.clone());
        self.state.known_hosts = Some(kh.clone());
        self.save()?;
        if !run_sshd.exists() {
            std::fs::create_dir_all(&run_sshd).map_err(|e| Error::local("create /run/sshd", e))?;
            let _ = std::fs::set_permissions(
                &run_sshd,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            );
        }
        // Keys: the client key and one host key per node, generated in parallel.
        let mut keys = vec![key.clone()];
        for n in &self.state.nodes {
            keys.push(self.node_dir(&n.node.name).join("ssh_host_ed25519_key"));
        }
        for n in &self.state.nodes {
            let d = self.node_dir(&n.node.name);
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::local(format!("create {}", d.display()), e))?;
        }
        let results: Vec<Result<String>> = std::thread::scope(|s| {
            let hs: Vec<_> = keys
                .iter()
                .map(|k| {
                    s.spawn(move || {
                        let _ = std::fs::remove_file(k);
                        let _ = std::fs::remove_file(k.with_extension("pub"));
                        let ks = k.to_string_lossy().to_string();
                        run(
                            "generate an SSH key",
                            "ssh-keygen",
                            &[
                                "-q",
                                "-t",
                                "ed25519",
                                "-N",
                                "",
                                "-C",
                                "faultline-cluster",
                                "-f",
                                &ks,
                            ],
                            None,
                        )
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        for r in results {
            r?;
        }
        let read_pub = |p: &Path| -> Result<String> {
            let pubp = PathBuf::from(format!("{}.pub", p.display()));
            std::fs::read_to_string(&pubp)
                .map(|s| s.trim().to_string())
                .map_err(|e| Error::local(format!("read {}", pubp.display()), e))
        };
        let authorized = self.dir.join("authorized_keys");
        write_file(&authorized, &format!("{}\n", read_pub(&key)?))?;
        let mut known = String::new();
        for (n, hk) in self.state.nodes.iter().zip(&keys[1..]) {
            let pubkey = read_pub(hk)?;
            let mut w = pubkey.split_whitespace();
            known += &format!(
                "{} {} {}\n",
                n.node.addr,
                w.next().unwrap_or(""),
                w.next().unwrap_or("")
            );
        }
        write_file(&kh, &known)?;
        // Configs, then every sshd at once.
        let mut children = Vec::new();
        for (n, hk) in self.state.nodes.iter().zip(&keys[1..]) {
            let d = self.node_dir(&n.node.name);
            let cfg = d.join("sshd_config");
            write_file(
                &cfg,
                &sshd_config(&n.node.addr, hk, &d.join("sshd.pid"), &authorized),
            )?;
            let child =
                std::process::Command::new(prereq::tool_path("ip").unwrap_or_else(|| "ip".into()))
                    .args(["netns", "exec", &n.netns])
                    .arg(&sshd)
                    .arg("-f")
                    .arg(&cfg)
                    .arg("-E")
                    .arg(d.join("sshd.log"))
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| Error::local(format!("start sshd of node {}", n.node.name), e))?;
            children.push(child);
        }
        let mut errors = Vec::new();
        for (n, child) in self.state.nodes.iter().zip(children) {
            let out = child
                .wait_with_output()
                .map_err(|e| Error::local(format!("start sshd of node {}", n.node.name), e))?;
            if !out.status.success() {
                let log = std::fs::read_to_string(self.node_dir(&n.node.name).join("sshd.log"))
                    .unwrap_or_default();
                errors.push(format!(
                    "node {} ({}): {}{}",
                    n.node.name,
                    n.node.addr,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    log.trim()
                ));
            }
        }
        // Record pids, then wait for every sshd to accept connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        let dirs: Vec<PathBuf> = self
            .state
            .nodes
            .iter()
            .map(|n| self.node_dir(&n.node.name))
            .collect();
        for (n, d) in self.state.nodes.iter_mut().zip(&dirs) {
            let pidfile = d.join("sshd.pid");
            loop {
                if let Some(pid) = std::fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    n.sshd_pid = Some(pid);
                    break;
                }
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.save()?;
        if !errors.is_empty() {
            return Err(Error::local("start sshd", errors.join("; ")));
        }
        for n in &self.state.nodes {
            let addr = SocketAddr::new(n.node.addr.parse().expect("ip"), 22);
            loop {
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::local(
                        format!("start sshd of node {}", n.node.name),
                        format!(
                            "nothing listens on {addr} after 10 s; see {}",
                            self.node_dir(&n.node.name).join("sshd.log").display()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }
}
