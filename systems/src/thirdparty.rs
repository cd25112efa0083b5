//! Glue shared by the third-party systems (installed from the OS packages on the nodes,
//! configured and started by faultline): how
//! `faultline test` builds them, and the small node helpers they share (check that programs
//! are installed, install them, write a config file).
//!
//! - [`build`]: the system for `faultline test`.

use crate::bail;
use std::sync::Arc;
use std::time::Duration;

use crate::Context;
use control::{Exec, Node, Remote, shell_quote};

use super::registry::Builtin;
use super::{System, etcd};

/// Options of the third-party systems, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory on each node under which `<node>/` is the node's directory.
    pub base_dir: String,
    /// Install missing programs with the OS package manager (`--install`).
    pub install: bool,
}

/// The third-party system `which` on `nodes`.
pub fn build(
    which: Builtin,
    nodes: Vec<Node>,
    opts: &Options,
    leader: nemesis::LeaderView,
) -> crate::Result<Arc<dyn System>> {
    Ok(match which {
        Builtin::Etcd => Arc::new(etcd::Etcd::new(
            nodes,
            etcd::Options {
                base_dir: opts.base_dir.clone(),
                install: opts.install,
            },
            leader,
        )),
        Builtin::Leaderkv | Builtin::RedisSentinel | Builtin::PostgresPatroni => {
            bail!("{which} is its system file, not a recipe")
        }
    })
}

/// Checks that `programs` are installed on `node`; when they are not, installs `packages`
/// with apt-get if `install`, else says which packages to install.
pub async fn require_programs(
    node: &dyn Remote,
    programs: &[&str],
    packages: &[&str],
    install: bool,
) -> crate::Result<()> {
    let name = &node.node().name;
    let check = programs
        .iter()
        .map(|p| format!("command -v {} >/dev/null", shell_quote(p)))
        .collect::<Vec<_>>()
        .join(" && ");
    let out = node
        .run(&Exec::sh(check.clone()).timeout(Duration::from_secs(10)))
        .await
        .with_context(|| format!("failed to look for {} on {name}", programs.join(", ")))?;
    if out.success() {
        return Ok(());
    }
    let apt = format!("apt-get install -y {}", packages.join(" "));
    if !install {
        return Err(crate::Error::invalid(format!(
            "{} not installed on {name}: install the OS package(s) {} on the nodes (`{apt}`), \
             or pass --install",
            programs.join(" / "),
            packages.join(", "),
        )));
    }
    // The local cluster's nodes share the controller's file system, and their network
    // namespaces have no route out: install from the controller. Over SSH, on the node.
    let script =
        format!("export DEBIAN_FRONTEND=noninteractive; {apt} || (apt-get update && {apt})");
    let local = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .context("failed to run apt-get")?;
    if !local.status.success() {
        bail!(
            "failed to install {} ({apt}): {}",
            packages.join(", "),
            String::from_utf8_lossy(&local.stderr).trim()
        );
    }
    let out = node
        .run(&Exec::sh(check).timeout(Duration::from_secs(10)))
        .await?;
    if !out.success() {
        bail!(
            "{} still missing on {name} after `{apt}` on the controller (a remote node needs the packages itself)",
            programs.join(" / ")
        );
    }
    Ok(())
}

/// Writes `content` to `path` on `node`.
pub async fn write_file(node: &dyn Remote, path: &str, content: &str) -> crate::Result<()> {
    node.exec(&Exec::sh(format!(
        "printf %s {} > {}",
        shell_quote(content),
        shell_quote(path)
    )))
    .await
    .with_context(|| format!("failed to write {path} on {}", node.node().name))?;
    Ok(())
}
