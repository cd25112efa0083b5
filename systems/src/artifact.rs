//! Finding the programs faultline ships beside itself (the leaderkv binary, the clock shim
//! and helper): beside the running executable, else where an environment variable says, else
//! built with cargo when running from faultline's source tree.

use std::path::{Path, PathBuf};

use crate::Context;

/// Where an artefact is, short of building it.
enum Found {
    /// A file: beside the executable or at `$env_var`.
    At(PathBuf),
    /// `$env_var` names something that is not a file.
    NotAFile(PathBuf),
    /// Not there, but faultline runs from its source tree: cargo can build it into this
    /// target directory (with `--release` when `release`).
    Buildable {
        target_dir: PathBuf,
        release: bool,
    },
    Missing,
}

fn find(exe: &Path, file: &str, env_var: &str) -> Found {
    let exe_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let beside = exe_dir.join(file);
    if beside.is_file() {
        return Found::At(beside);
    }
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Found::At(p)
        } else {
            Found::NotAFile(p)
        };
    }
    let profile = exe_dir.file_name().and_then(|s| s.to_str()).unwrap_or("");
    match exe_dir.parent() {
        Some(t)
            if Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("Cargo.toml")
                .is_file()
                && matches!(profile, "debug" | "release") =>
        {
            Found::Buildable {
                target_dir: t.to_path_buf(),
                release: profile == "release",
            }
        }
        _ => Found::Missing,
    }
}

/// Whether [`locate_artifact`] would find `file` (beside faultline, at `$env_var`, or built
/// in faultline's source tree), without building anything or saying so.
pub fn artifact_available(file: &str, env_var: &str) -> bool {
    std::env::current_exe().is_ok_and(|exe| {
        matches!(
            find(&exe, file, env_var),
            Found::At(_) | Found::Buildable { .. }
        )
    })
}

/// Finds a sibling build artefact: beside the running executable, else `$env_var`, else
/// builds `package` with cargo when running from faultline's source tree.
pub fn locate_artifact(file: &str, env_var: &str, package: &str) -> crate::Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to find the running executable")?;
    let beside = exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join(file);
    match find(&exe, file, env_var) {
        Found::At(p) => return Ok(p),
        Found::NotAFile(p) => {
            return Err(crate::Error::invalid(format!(
                "${env_var} names {}, which is not a file",
                p.display()
            )));
        }
        Found::Buildable {
            target_dir,
            release,
        } => {
            let src = Path::new(env!("CARGO_MANIFEST_DIR"));
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            eprintln!(
                "faultline: {file} not found beside {}: building it (cargo build -p {package})",
                exe.display()
            );
            let mut cmd = std::process::Command::new(&cargo);
            cmd.current_dir(src)
                .args(["build", "-q", "-p", package, "--target-dir"])
                .arg(target_dir);
            if release {
                cmd.arg("--release");
            }
            let status = cmd
                .status()
                .with_context(|| format!("failed to run cargo to build {package}"))?;
            if status.success() && beside.is_file() {
                return Ok(beside);
            }
        }
        Found::Missing => {}
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
