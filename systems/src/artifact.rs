//! Finding the programs faultline ships beside itself (the leaderkv binary, the clock shim
//! and helper): beside the running executable, else where an environment variable says, else
//! built with cargo when running from faultline's source tree.

use std::path::{Path, PathBuf};

use crate::Context;

/// Finds a sibling build artefact: beside the running executable, else `$env_var`, else
/// builds `package` with cargo when running from faultline's source tree.
pub fn locate_artifact(file: &str, env_var: &str, package: &str) -> crate::Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to find the running executable")?;
    let exe_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let beside = exe_dir.join(file);
    if beside.is_file() {
        return Ok(beside);
    }
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(crate::Error::invalid(format!(
            "${env_var} names {}, which is not a file",
            p.display()
        )));
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let profile = exe_dir.file_name().and_then(|s| s.to_str()).unwrap_or("");
    let target_dir = exe_dir.parent();
    if src.join("Cargo.toml").is_file() && matches!(profile, "debug" | "release") {
        if let Some(target_dir) = target_dir {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            eprintln!(
                "faultline: {file} not found beside {}: building it (cargo build -p {package})",
                exe.display()
            );
            let mut cmd = std::process::Command::new(&cargo);
            cmd.current_dir(src)
                .args(["build", "-q", "-p", package, "--target-dir"])
                .arg(target_dir);
            if profile == "release" {
                cmd.arg("--release");
            }
            let status = cmd
                .status()
                .with_context(|| format!("failed to run cargo to build {package}"))?;
            if status.success() && beside.is_file() {
                return Ok(beside);
            }
        }
    }
    // `cargo install` installs programs, not libraries: the shim is copied by hand.
    let install = if file.ends_with(".so") {
        format!("copy target/release/{file} of `cargo build --release -p {package}` there")
    } else {
        format!(
            "`cargo install --locked --path {}` from faultline's source",
            package_dir(package)
        )
    };
    Err(crate::Error::invalid(format!(
        "cannot find {file} beside {}: put it there ({install}, or unpack the release archive \
         of scripts/package.sh, which has it), or set ${env_var} to its path",
        exe.display(),
    )))
}

/// Where a package faultline ships lives in its source tree.
fn package_dir(package: &str) -> String {
    match package {
        "leaderkv" => "targets/leaderkv".into(),
        other => other.into(),
    }
}
