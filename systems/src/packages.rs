//! The OS packages a system needs on its nodes (`[requires]` of a system file): check that
//! its programs are installed and, with `--install`, install the missing packages.

use crate::bail;
use std::time::Duration;

use crate::Context;
use control::{Exec, Remote, shell_quote};

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
