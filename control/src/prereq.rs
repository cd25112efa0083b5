//! Prerequisites of the local cluster (root, `ip`, `iptables`, `sshd`, `ssh-keygen`), with the
//! Debian package that provides each, and the shared skip-or-fail helper for privileged tests.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Environment variable: when `1`, privileged tests fail instead of skipping (CI sets it).
pub const REQUIRE_PRIVILEGED_ENV: &str = "FAULTLINE_REQUIRE_PRIVILEGED";

/// A tool the local cluster needs and the Debian package that ships it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub name: &'static str,
    pub package: &'static str,
}

/// `ip`, from iproute2.
pub const IP: Tool = Tool {
    name: "ip",
    package: "iproute2",
};
/// `iptables`.
pub const IPTABLES: Tool = Tool {
    name: "iptables",
    package: "iptables",
};
/// `sshd`, from openssh-server.
pub const SSHD: Tool = Tool {
    name: "sshd",
    package: "openssh-server",
};
/// `ssh-keygen`, from openssh-client.
pub const SSH_KEYGEN: Tool = Tool {
    name: "ssh-keygen",
    package: "openssh-client",
};
/// `setsid`, from util-linux (daemon helpers).
pub const SETSID: Tool = Tool {
    name: "setsid",
    package: "util-linux",
};

/// True when the effective uid is 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Where a tool is: `$FAULTLINE_TOOL_<NAME>` (upper case, `-` as `_`, e.g.
/// `FAULTLINE_TOOL_SSHD=/opt/openssh/sbin/sshd`) when set, else [`which`]. `None` when the
/// override names no executable or the tool is not installed.
pub fn tool_path(name: &str) -> Option<PathBuf> {
    let var = format!(
        "FAULTLINE_TOOL_{}",
        name.to_ascii_uppercase().replace('-', "_")
    );
    match std::env::var_os(&var) {
        Some(p) => {
            let p = PathBuf::from(p);
            is_executable(&p).then_some(p)
        }
        None => which(name),
    }
}

/// Finds an executable on `PATH`, then in /usr/sbin and /sbin (root tools live there and a
/// non-root `PATH` often lacks them).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Checks root and the tools; the error is one line naming the first thing missing and the
/// Debian package that provides it ([`Error::Missing`]).
pub fn check(tools: &[Tool]) -> Result<()> {
    if !is_root() {
        return Err(Error::Missing {
            what: "root privileges".into(),
            hint: "the local cluster creates network namespaces; run as root (e.g. with sudo)"
                .into(),
        });
    }
    for t in tools {
        if tool_path(t.name).is_none() {
            return Err(Error::Missing {
                what: format!("`{}`", t.name),
                hint: format!(
                    "install the Debian package `{}` (apt-get install {})",
                    t.package, t.package
                ),
            });
        }
    }
    Ok(())
}

/// The tools a local cluster needs (`with_ssh`: also sshd and ssh-keygen).
pub fn cluster_tools(with_ssh: bool) -> Vec<Tool> {
    let mut v = vec![IP, IPTABLES, SETSID];
    if with_ssh {
        v.push(SSHD);
        v.push(SSH_KEYGEN);
    }
    v
}

/// For tests that need root and the cluster tools. Returns true when the test may run.
/// Otherwise: panics if `FAULTLINE_REQUIRE_PRIVILEGED=1` (CI), else prints a loud
/// `SKIPPED (needs root): ...` line to stderr and returns false.
pub fn privileged_or_skip(test: &str, with_ssh: bool) -> bool {
    match check(&cluster_tools(with_ssh)) {
        Ok(()) => true,
        Err(e) => {
            if std::env::var(REQUIRE_PRIVILEGED_ENV).as_deref() == Ok("1") {
                panic!(
                    "{test}: {e} ({REQUIRE_PRIVILEGED_ENV}=1, so this fails instead of skipping)"
                );
            }
            // Straight to the stderr handle: the test harness captures `eprintln!` of passing
            // tests, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n==== SKIPPED (needs root): {test}: {e} ====\n"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_is_one_line_with_the_package() {
        let t = Tool {
            name: "faultline-no-such-tool",
            package: "some-package",
        };
        let e = check(&[t]).unwrap_err().to_string();
        assert_eq!(e.lines().count(), 1);
        if is_root() {
            assert!(
                e.contains("`faultline-no-such-tool`")
                    && e.contains("apt-get install some-package"),
                "{e}"
            );
        } else {
            assert!(e.contains("root"), "{e}");
        }
        assert!(which("sh").is_some());
    }
}
