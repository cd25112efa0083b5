//! The first run and installing faultline elsewhere: README's quick start is two commands
//! and CI runs the second; the first, in a fresh clone, sets up, builds and gets a verdict;
//! faultline installed outside its source tree (as `cargo install` or the release archive
//! lay it out: programs side by side in one directory) finds leaderkv beside itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Down, artifacts, text};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The commands of README's quick start block.
fn quick_start() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("## Quick start")
        .nth(1)
        .expect("README has a quick start")
        .split("\n## ")
        .next()
        .unwrap();
    let block = section
        .split("```sh\n")
        .nth(1)
        .expect("a sh block")
        .split("```")
        .next()
        .unwrap();
    block
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_quick_start_is_two_commands_and_ci_runs_the_second() {
    let cmds = quick_start();
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let last = ci
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap();
    assert_eq!(
        last.trim(),
        cmds[1],
        ".ci/run must end with README's test command"
    );
    // Both are scripts of the repository, run from its root.
    for c in &cmds {
        let script = c.split_whitespace().next().unwrap();
        assert!(
            root().join(script).is_file(),
            "{script} is not in the repository"
        );
    }
    // One package list: every group the scripts install is defined there.
    let list = std::fs::read_to_string(root().join("scripts/packages.txt")).unwrap();
    for g in ["build", "run", "test"] {
        assert!(list.lines().any(|l| l.starts_with(&format!("{g}:"))), "{g}");
    }
    let o = Command::new(root().join("scripts/setup.sh"))
        .arg("nonsense")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
}

/// `--no-install` names what is missing and installs nothing: a package that cannot be
/// installed is reported, not attempted.
#[test]
fn setup_without_install_names_what_is_missing() {
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("==== SKIPPED: not a Debian system ====");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    std::fs::copy(root().join("scripts/setup.sh"), scripts.join("setup.sh")).unwrap();
    std::fs::write(
        scripts.join("packages.txt"),
        "build: coreutils faultline-no-such-package\nrun: coreutils\ntest: coreutils\n",
    )
    .unwrap();
    let o = Command::new("bash")
        .arg(scripts.join("setup.sh"))
        .args(["build", "--no-install"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(254), "{err}");
    assert!(
        err.contains("missing Debian packages: faultline-no-such-package"),
        "{err}"
    );
    assert!(
        !err.contains("coreutils"),
        "installed packages are not missing: {err}"
    );
    let o = Command::new("bash")
        .arg(scripts.join("setup.sh"))
        .arg("run")
        .env("FAULTLINE_NO_INSTALL", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A directory laid out as `cargo install --root DIR` (or the release archive) leaves it:
/// faultline and leaderkv side by side, far from the source tree.
fn installed(dir: &Path, with_leaderkv: bool) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(common::BIN, bin.join("faultline")).unwrap();
    if with_leaderkv {
        std::fs::copy(&artifacts().0, bin.join("leaderkv")).unwrap();
    }
    bin.join("faultline")
}

#[test]
fn an_installed_faultline_finds_leaderkv_beside_itself() {
    if !common::ready_or_skip(
        "an_installed_faultline_finds_leaderkv",
        &["ip", "iptables"],
        "iproute2 iptables",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("elsewhere");
    std::fs::create_dir(&work).unwrap();
    let _down = Down("flq1-");
    let run = |exe: &Path| {
        Command::new(exe)
            .current_dir(&work)
            .env_remove("FAULTLINE_LEADERKV_BIN")
            .env_remove("FAULTLINE_CLOCKSHIM_LIB")
            .env_remove("FAULTLINE_STORE")
            .args([
                "test",
                "--nodes",
                "3",
                "--time-limit",
                "5s",
                "--prefix",
                "flq1-",
            ])
            .args(["--subnet", "10.77.115.0/24"])
            .output()
            .unwrap()
    };
    // Without leaderkv beside it: one line saying where to put it, before any cluster.
    let bare = installed(&dir.path().join("bare"), false);
    let o = run(&bare);
    assert_eq!(o.status.code(), Some(254), "{}", text(&o));
    assert!(
        text(&o).contains("cannot find leaderkv beside"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("cargo install --locked --path targets/leaderkv"),
        "{}",
        text(&o)
    );

    let exe = installed(&dir.path().join("full"), true);
    let o = run(&exe);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("verdict: VALID"), "{}", text(&o));
    // Stored where it ran, as the README says.
    assert!(work.join("store/latest/results.json").is_file());
}

/// README's first command, as a new user runs it: in a fresh clone, it finds the packages
/// it needs (installing any that are missing), builds faultline in release mode and runs the
/// default test to a verdict (default flags but the cluster's name and subnet, so it can run
/// beside the rest of the suite, and 20 s instead of 60: the verdict is what is checked here,
/// detection power is test_e2e's).
#[test]
fn the_readme_first_command_in_a_fresh_clone_gets_a_verdict() {
    if !common::ready_or_skip(
        "the_readme_first_command_in_a_fresh_clone",
        &["ip", "iptables", "git"],
        "iproute2 iptables git",
    ) {
        return;
    }
    if !root().join(".git").exists() {
        eprintln!(
            "==== SKIPPED: {} is not a git checkout ====",
            root().display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("faultline");
    let o = Command::new("git")
        .args(["clone", "-q", "--no-hardlinks"])
        .arg(root())
        .arg(&clone)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let _down = Down("flq2-");
    let first = &quick_start()[0];
    let mut cmd = Command::new("bash");
    cmd.current_dir(&clone)
        .arg("-c")
        .arg(format!("{first} --prefix flq2- --subnet 10.77.116.0/24"));
    // What the test harness set for itself is not the user's environment.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME")
            || k.starts_with("FAULTLINE_")
            || k == "RUST_LOG"
        {
            cmd.env_remove(&k);
        }
    }
    let o = cmd.output().unwrap();
    let out = text(&o);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{out}");
    assert!(out.contains("verdict: "), "{out}");
    assert!(out.contains("faultline test: seed "), "{out}");
    assert!(clone.join("target/release/faultline").is_file());
    assert!(clone.join("store/latest/results.json").is_file(), "{out}");
}

/// The release archive's layout, unpacked anywhere: faultline finds leaderkv and the clock
/// shim beside itself (a clock fault included), with no variable pointing at them.
#[test]
fn the_release_archive_runs_where_it_is_unpacked() {
    if !common::ready_or_skip(
        "the_release_archive_runs",
        &["ip", "iptables", "tar"],
        "iproute2 iptables tar",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // This build's programs, as scripts/package.sh finds them in a target directory.
    let built = dir.path().join("built");
    std::fs::create_dir(&built).unwrap();
    let (kv, shim) = artifacts();
    let exe_dir = Path::new(common::BIN).parent().unwrap();
    for (from, name) in [
        (PathBuf::from(common::BIN), "faultline"),
        (kv.clone(), "leaderkv"),
        (shim.clone(), "libclockshim.so"),
        (
            shim.parent().unwrap().join("faultline-clock"),
            "faultline-clock",
        ),
    ] {
        let from = if from.is_file() {
            from
        } else {
            exe_dir.join(name)
        };
        std::fs::copy(&from, built.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    let out = dir.path().join("dist");
    let o = Command::new(root().join("scripts/package.sh"))
        .arg(&out)
        .env("FAULTLINE_PACKAGE_FROM", &built)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let archive = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    let unpacked = dir.path().join("opt");
    std::fs::create_dir(&unpacked).unwrap();
    let o = Command::new("tar")
        .args(["-C", unpacked.to_str().unwrap(), "-xzf", &archive])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let top = std::fs::read_dir(&unpacked)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for f in [
        "faultline",
        "leaderkv",
        "libclockshim.so",
        "faultline-clock",
        "README.md",
        "docs/first-run.md",
        "scripts/setup.sh",
        "examples/systems/leaderkv.toml",
    ] {
        assert!(top.join(f).exists(), "{f} is not in the archive");
    }
    let _down = Down("flq3-");
    let o = Command::new(top.join("faultline"))
        .current_dir(dir.path())
        .env_remove("FAULTLINE_LEADERKV_BIN")
        .env_remove("FAULTLINE_CLOCKSHIM_LIB")
        .env_remove("FAULTLINE_STORE")
        .args([
            "test",
            "--nodes",
            "3",
            "--time-limit",
            "8s",
            "--nemesis",
            "partition,clock",
        ])
        .args(["--prefix", "flq3-", "--subnet", "10.77.117.0/24"])
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    assert!(text(&o).contains("verdict: "), "{}", text(&o));
}
