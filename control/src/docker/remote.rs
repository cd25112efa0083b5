//! [`DockerRemote`]: one container of a Docker cluster, reached through the Engine API
//! (bollard): commands are execs, files move as tar archives. Network commands
//! ([`Remote::run_net`]: iptables, tc) run on the controller inside the container's network
//! namespace, so the image needs no network tools.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::remote::{Exec, ExecOutput, Node, Remote};

/// One node: a running container.
#[derive(Clone)]
pub struct DockerRemote {
    pub(crate) docker: Docker,
    pub(crate) node: Node,
    /// The container's name.
    pub(crate) container: String,
    /// The host pid of the container's first process (its namespaces are the node's).
    pub(crate) pid: u32,
}

impl std::fmt::Debug for DockerRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRemote")
            .field("node", &self.node)
            .field("container", &self.container)
            .field("pid", &self.pid)
            .finish()
    }
}

impl DockerRemote {
    /// The container's name.
    pub fn container(&self) -> &str {
        &self.container
    }

    fn fail(&self, action: &str, cause: impl std::fmt::Display) -> Error {
        Error::Node {
            node: self.node.name.clone(),
            addr: self.node.addr.clone(),
            action: action.to_owned(),
            cause: format!("{cause} (container {})", self.container),
        }
    }

    fn timed_out(&self, cmd: &Exec) -> Error {
        Error::Timeout {
            node: self.node.name.clone(),
            addr: self.node.addr.clone(),
            command: cmd.to_shell(),
            timeout: cmd.timeout,
        }
    }

    async fn exec_in_container(&self, cmd: &Exec) -> Result<ExecOutput> {
        let line = cmd.to_command_line(true);
        let what = || format!("run `{}`", cmd.to_shell());
        let created = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    cmd: Some(vec!["sh".to_string(), "-c".to_string(), line]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(cmd.stdin.is_some()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.fail(&what(), e))?;
        let started = self
            .docker
            .start_exec(&created.id, None::<StartExecOptions>)
            .await
            .map_err(|e| self.fail(&what(), e))?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(self.fail(&what(), "the exec started detached"));
        };
        if let Some(bytes) = &cmd.stdin {
            input
                .write_all(bytes)
                .await
                .map_err(|e| self.fail(&what(), format!("failed to write stdin: {e}")))?;
            input
                .shutdown()
                .await
                .map_err(|e| self.fail(&what(), format!("failed to close stdin: {e}")))?;
        }
        drop(input);
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|e| self.fail(&what(), e))? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    stdout.extend_from_slice(&message)
                }
                LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                LogOutput::StdIn { .. } => {}
            }
        }
        let status = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| self.fail(&what(), e))?
            .exit_code
            .unwrap_or(-1);
        Ok(ExecOutput {
            status: status as i32,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

#[async_trait]
impl Remote for DockerRemote {
    fn node(&self) -> &Node {
        &self.node
    }

    async fn run(&self, cmd: &Exec) -> Result<ExecOutput> {
        // A timed-out exec goes on in the container: wrap it so that the node kills it too.
        let mut bounded = cmd.clone();
        let secs = cmd.timeout.as_secs().max(1);
        bounded.argv = [
            "timeout".to_string(),
            "-s".into(),
            "KILL".into(),
            secs.to_string(),
        ]
        .into_iter()
        .chain(cmd.argv.iter().cloned())
        .collect();
        let began = std::time::Instant::now();
        match tokio::time::timeout(
            cmd.timeout + Duration::from_secs(2),
            self.exec_in_container(&bounded),
        )
        .await
        {
            // `timeout` ends a command it had to SIGKILL with 128 + 9.
            Ok(Ok(out)) if out.status == 137 && began.elapsed() >= cmd.timeout => {
                Err(self.timed_out(cmd))
            }
            Ok(r) => r,
            Err(_) => Err(self.timed_out(cmd)),
        }
    }

    async fn run_net(&self, cmd: &Exec) -> Result<ExecOutput> {
        let line = cmd.to_command_line(true);
        let mut child = tokio::process::Command::new("nsenter");
        child
            .arg(format!("--net=/proc/{}/ns/net", self.pid))
            .args(["sh", "-c", &line])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        match tokio::time::timeout(cmd.timeout, child.output()).await {
            Ok(Ok(o)) => Ok(ExecOutput {
                status: o.status.code().unwrap_or(128 + 9),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            }),
            Ok(Err(e)) => Err(self.fail(
                &format!("run `{}` in the node's network namespace", cmd.to_shell()),
                format!("cannot run nsenter: {e}"),
            )),
            Err(_) => Err(self.timed_out(cmd)),
        }
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<()> {
        let action = format!("copy {} to {remote}", local.display());
        let (dir, name) =
            split_path(remote).ok_or_else(|| self.fail(&action, "not a file path"))?;
        let data = tokio::fs::read(local)
            .await
            .map_err(|e| self.fail(&action, format!("cannot read {}: {e}", local.display())))?;
        let mode = std::fs::metadata(local)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o644);
        self.run(&Exec::new("mkdir").args(["-p", dir]))
            .await
            .and_then(|o| {
                if o.success() {
                    Ok(())
                } else {
                    Err(self.fail(&action, format!("mkdir -p {dir}: {}", o.stderr.trim())))
                }
            })?;
        let archive = one_file_tar(name, &data, mode).map_err(|e| self.fail(&action, e))?;
        self.docker
            .upload_to_container(
                &self.container,
                Some(UploadToContainerOptions {
                    path: dir.to_owned(),
                    ..Default::default()
                }),
                bollard::body_full(archive.into()),
            )
            .await
            .map_err(|e| self.fail(&action, e))
    }

    async fn download(&self, remote: &str, local: &Path) -> Result<()> {
        let action = format!("copy {remote} to {}", local.display());
        let mut stream = self.docker.download_from_container(
            &self.container,
            Some(DownloadFromContainerOptions {
                path: remote.to_owned(),
            }),
        );
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            archive.extend_from_slice(&chunk.map_err(|e| self.fail(&action, e))?);
        }
        let data = first_file_of_tar(&archive).map_err(|e| self.fail(&action, e))?;
        tokio::fs::write(local, data)
            .await
            .map_err(|e| self.fail(&action, format!("cannot write {}: {e}", local.display())))
    }
}

/// `/a/b/c` -> (`/a/b`, `c`).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let (dir, name) = path.rsplit_once('/')?;
    if name.is_empty() {
        return None;
    }
    Some((if dir.is_empty() { "/" } else { dir }, name))
}

/// A tar archive holding one regular file.
fn one_file_tar(name: &str, data: &[u8], mode: u32) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)?;
    b.into_inner()
}

/// The contents of the first regular file of a tar archive.
fn first_file_of_tar(archive: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut a = tar::Archive::new(archive);
    for entry in a.entries().map_err(|e| format!("bad archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("bad archive: {e}"))?;
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| format!("bad archive: {e}"))?;
            return Ok(data);
        }
    }
    Err("not a regular file".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_and_a_file_survives_a_tar_round_trip() {
        assert_eq!(split_path("/a/b/c"), Some(("/a/b", "c")));
        assert_eq!(split_path("/c"), Some(("/", "c")));
        assert_eq!(split_path("/a/"), None);
        let t = one_file_tar("x", b"hello", 0o755).unwrap();
        assert_eq!(first_file_of_tar(&t).unwrap(), b"hello");
        assert!(first_file_of_tar(b"").is_err());
    }
}
