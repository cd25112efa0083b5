//! [`FileSystem`] as a [`System`]: what the runner calls to deploy, stop and probe the nodes
//! and to open clients.

use crate::err;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::Context;
use crate::proto::resp::Conn;
use async_trait::async_trait;
use control::{Exec, Remote, shell_quote};
use nemesis::SystemControl;
use workloads::{Client, Invocation};

use super::FileSystem;
use super::client::FileDialect;
use super::command_leader::CommandLeader;
use super::ops::Protocol;
use super::spec::NODE_TLS_DIR;
use super::wire::{WireClient, WireDialect};
use crate::daemon;
use crate::proto::router::{RespDialect, Route, RoutingClient};
use crate::{RoleInfo, System};

#[async_trait]
impl System for FileSystem {
    fn name(&self) -> &str {
        &self.loaded.spec.name
    }

    /// The serving nodes: those clients, the probe and the final reads address.
    fn nodes(&self) -> Vec<String> {
        self.assign.serving.clone()
    }

    fn stages(&self) -> Vec<Vec<String>> {
        self.assign.stages.clone()
    }

    fn reads_digest(&self) -> bool {
        self.loaded.op("digest").is_some()
    }

    fn ready_timeout(&self) -> Duration {
        Duration::from_secs(self.loaded.spec.ready.cluster_timeout_s.max(1))
    }

    async fn setup(&self, node: &dyn Remote) -> crate::Result<()> {
        let name = node.node().name.clone();
        let vars = self.vars(&name)?;
        let dir = &vars["dir"];
        let req = &self.loaded.spec.requires;
        if !req.programs.is_empty() {
            let programs: Vec<&str> = req.programs.iter().map(String::as_str).collect();
            let packages: Vec<&str> = req.packages.iter().map(String::as_str).collect();
            crate::packages::require_programs(node, &programs, &packages, self.opts.install)
                .await?;
        }
        // Whatever an earlier run left (a process, files) goes first.
        let _ = control::kill_daemon(node, &self.pidfile(&name)?).await;
        if let Some(w) = self.command_of(&vars, "wipe") {
            if node
                .exec(&Exec::new("test").args(["-d", dir]))
                .await
                .is_ok()
            {
                let _ = self.command(node, "wipe", w).await;
            }
        }
        let data_dir = shell_quote(&vars["data_dir"]);
        daemon::prepare_dir(node, dir, |d| {
            format!("rm -rf {d} && mkdir -p {d} {data_dir}")
        })
        .await?;
        for (local, remote) in &self.files {
            let remote = self.render(remote, &vars)?;
            if let Some(parent) = Path::new(&remote).parent() {
                node.exec(&Exec::new("mkdir").args(["-p", &parent.display().to_string()]))
                    .await
                    .with_context(|| format!("failed to create {} on {name}", parent.display()))?;
            }
            node.upload(local, &remote).await.with_context(|| {
                format!("failed to upload {} to {remote} on {name}", local.display())
            })?;
            let exec = std::fs::metadata(local)
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                .unwrap_or(false);
            if exec {
                node.exec(&Exec::new("chmod").args(["755", &remote]))
                    .await
                    .with_context(|| format!("failed to make {remote} executable on {name}"))?;
            }
        }
        if let Some(secrets) = &self.secrets {
            let tls_dir = format!("{dir}/{NODE_TLS_DIR}");
            node.exec(&Exec::new("mkdir").args(["-p", "-m", "700", &tls_dir]))
                .await
                .with_context(|| format!("failed to create {tls_dir} on {name}"))?;
            for (local, file) in secrets.files_for(&name) {
                let remote = format!("{tls_dir}/{file}");
                node.upload(&local, &remote)
                    .await
                    .with_context(|| format!("failed to upload {remote} to {name}"))?;
                node.exec(&Exec::new("chmod").args(["600", &remote]))
                    .await
                    .with_context(|| format!("failed to make {remote} private on {name}"))?;
            }
        }
        // Configs alone see `{auth.password}`: commands end up in error messages.
        let mut config_vars = vars.clone();
        if let Some(pw) = self.secrets.as_ref().and_then(|s| s.password.clone()) {
            config_vars.insert("auth.password".into(), pw);
        }
        for (path, content_tpl) in &self.loaded.spec.configs {
            let path = self.render(path, &vars)?;
            let content = self.render(content_tpl, &config_vars)?;
            // It holds the password when it does not render without it.
            let secret = config_vars.len() > vars.len() && self.render(content_tpl, &vars).is_err();
            if secret {
                // Never on a command line (ps, error messages): a private file, uploaded.
                let local = tempfile::NamedTempFile::new()
                    .and_then(|mut f| {
                        std::io::Write::write_all(&mut f, content.as_bytes())?;
                        Ok(f)
                    })
                    .map_err(|e| err!("failed to write {path} for {name}: {e}"))?;
                node.exec(&Exec::sh(format!(
                    "mkdir -p \"$(dirname {p})\"",
                    p = shell_quote(&path)
                )))
                .await
                .with_context(|| format!("failed to write {path} on {name}"))?;
                node.upload(local.path(), &path)
                    .await
                    .with_context(|| format!("failed to write {path} on {name}"))?;
                node.exec(&Exec::new("chmod").args(["600", &path]))
                    .await
                    .with_context(|| format!("failed to make {path} private on {name}"))?;
                continue;
            }
            node.exec(&Exec::sh(format!(
                "mkdir -p \"$(dirname {p})\" && printf %s {} > {p}",
                shell_quote(&content),
                p = shell_quote(&path)
            )))
            .await
            .with_context(|| format!("failed to write {path} on {name}"))?;
        }
        if let Some(s) = self.command_of(&vars, "setup") {
            self.command(node, "setup", s).await?;
        }
        Ok(())
    }

    async fn start(&self, node: &dyn Remote) -> crate::Result<()> {
        let name = node.node().name.clone();
        let start = self.start_command(&self.vars(&name)?)?;
        let vars = self.vars(&name)?;
        if let Err(e) = self.control.start(node).await {
            // The process exited before control saw it alive (it waits 10 s for that).
            if control::running_pid(node, &self.pidfile(&name)?, false)
                .await
                .is_ok_and(|p| p.is_none())
            {
                return Err(self.exited(node, &start, &vars).await);
            }
            return Err(crate::Error::from(e).context(format!(
                "the start command failed on node {name}: `{start}`"
            )));
        }
        self.wait_ready(node).await
    }

    async fn kill(&self, node: &dyn Remote) -> crate::Result<()> {
        daemon::kill(self.control.as_ref(), node, self.name()).await
    }

    async fn teardown(&self, node: &dyn Remote) -> crate::Result<()> {
        let name = node.node().name.clone();
        let vars = self.vars(&name)?;
        let mut first_err = None;
        if let Some(s) = self.command_of(&vars, "stop") {
            if let Err(e) = self.command(node, "stop", s).await {
                first_err.get_or_insert(e);
            }
        }
        // SIGKILL works on stopped (paused) processes too.
        let _ = System::kill(self, node).await;
        if let Some(w) = self.command_of(&vars, "wipe") {
            if let Err(e) = self.command(node, "wipe", w).await {
                first_err.get_or_insert(e);
            }
        }
        let dir = &vars["dir"];
        if let Err(e) = node
            .exec(&Exec::sh(format!("rm -rf {}", shell_quote(dir))))
            .await
        {
            first_err
                .get_or_insert(crate::Error::from(e).context(format!("failed to remove {dir}")));
        }
        first_err.map_or(Ok(()), Err)
    }

    fn log_files(&self, node: &str) -> Vec<(String, String)> {
        let Ok(vars) = self.vars(node) else {
            return Vec::new();
        };
        let mut out = vec![(format!("{}/stdout.log", vars["dir"]), "stdout.log".into())];
        for f in &self.loaded.spec.logs.files {
            if let Ok(p) = self.render(f, &vars) {
                let local = Path::new(&p)
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "log".into());
                out.push((p, local));
            }
        }
        out
    }

    fn control(&self) -> Arc<dyn SystemControl> {
        self.control.clone()
    }

    async fn role(&self, node: &str, timeout: Duration) -> crate::Result<RoleInfo> {
        if self.loaded.spec.leader.command.is_some() {
            return self.leader_command()?.role(node, timeout).await;
        }
        let n = self.node(node)?;
        let addr = format!("{}:{}", n.addr, self.loaded.client_port());
        if self.loaded.protocol != Protocol::Resp {
            return WireDialect::new(&self.loaded, self.role.clone())
                .with_access(self.access.clone())
                .probe(node, &addr, timeout)
                .await
                .map_err(|e| err!("{node}: {e}"));
        }
        let dialect = FileDialect::new(&self.loaded, self.role.clone());
        let argv = dialect
            .command(&Invocation::new("leader", history::Value::Nil))
            .map_err(crate::Error::msg)?;
        let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let mut c = Conn::connect_with(&addr, &self.access, timeout).await?;
        let r = c.call(&argv, timeout).await?;
        self.role
            .parse(Some(node), &r)
            .with_context(|| format!("bad leader reply from {node}: {r:?}"))
    }

    fn client(&self, opts: workloads::ClientOptions) -> Box<dyn Client> {
        let timeout = opts.timeout;
        let port = self.loaded.client_port();
        let addrs = self
            .nodes
            .iter()
            .filter(|n| self.assign.serving.contains(&n.name))
            .map(|n| (n.name.clone(), format!("{}:{port}", n.addr)))
            .collect();
        let view = self.control.leader.clone();
        let route = match self.loaded.spec.client.route.as_deref() {
            Some("leader") => Route::Leader(view),
            Some("followers") => Route::Followers(view),
            _ => Route::Redirects,
        };
        let client: Box<dyn Client> = if self.loaded.protocol == Protocol::Resp {
            let dialect = FileDialect::new(&self.loaded, self.role.clone());
            Box::new(
                RoutingClient::with_dialect(addrs, timeout, dialect)
                    .route(route)
                    .reads(opts.read_from, self.control.leader.clone())
                    .access(self.access.clone()),
            )
        } else {
            let dialect = Arc::new(
                WireDialect::new(&self.loaded, self.role.clone()).with_access(self.access.clone()),
            );
            Box::new(
                WireClient::new(dialect, addrs, timeout)
                    .route(route)
                    .reads(opts.read_from, self.control.leader.clone()),
            )
        };
        match self.leader_command() {
            Ok(probe) if self.loaded.spec.leader.command.is_some() => Box::new(CommandLeader {
                inner: client,
                probe,
                timeout,
            }),
            _ => client,
        }
    }
}
