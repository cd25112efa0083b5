//! The default node image, [`default_image`]: a root file system faultline assembles from
//! this machine's own programs (a shell, coreutils, util-linux's `setsid`, procps, and Redis
//! when installed) and the shared libraries `ldd` names for them, imported into the engine
//! (`POST /images/create?fromSrc=-`). No registry is needed: an empty engine gets the image
//! at the first `--docker` run. The system's own binary (leaderkv) is copied in at deploy,
//! as on any node.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::prereq::which;

/// The repository of the default image; its tag is [`default_image`]'s.
pub const DEFAULT_REPO: &str = "faultline-node";

/// The image `--docker` uses unless `--image` names another: faultline's version and a
/// digest of what goes in, so a faultline that puts in more builds a new one.
pub fn default_image() -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in REQUIRED
        .iter()
        .chain(OPTIONAL)
        .chain(&[RUST_RUNTIME])
        .flat_map(|p| p.bytes().chain([0]))
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{DEFAULT_REPO}:{}-{:08x}",
        env!("CARGO_PKG_VERSION"),
        h as u32
    )
}

/// Programs every node needs: what the system files' commands and the nemesis run there.
const REQUIRED: &[&str] = &[
    "sh", "sleep", "timeout", "setsid", "env", "rm", "mkdir", "cat", "chmod", "ls", "cp", "mv",
    "ln", "tr", "grep", "sed", "awk", "cut", "head", "tail", "sort", "uniq", "wc", "xargs", "find",
    "date", "touch", "readlink", "dirname", "basename", "id", "true", "false", "printf", "tee",
    "test", "stat", "kill", "ps", "sync", "nohup", "expr", "seq", "hostname",
];

/// Stands in the image's digest for the libraries of faultline's own executable, which the
/// image carries for the Rust programs run in it.
const RUST_RUNTIME: &str = "rust-runtime-libraries";

/// Programs taken when this machine has them (Redis with Sentinel, etcd run on the image then).
const OPTIONAL: &[&str] = &["redis-server", "redis-sentinel", "redis-cli", "etcd"];

fn local(action: &str, cause: impl std::fmt::Display) -> Error {
    Error::Local {
        action: action.into(),
        cause: cause.to_string(),
    }
}

/// Makes sure `image` is in the engine: the default image is built when missing; another
/// image must be there (built or pulled by the user).
pub async fn ensure(docker: &Docker, image: &str) -> Result<()> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    if image != default_image() {
        return Err(Error::Invalid {
            action: format!("use the image {image}"),
            cause: "the engine does not have it: build it (`docker build -t ...`) or pull it \
                    first, or leave out --image for faultline's own"
                .into(),
        });
    }
    build_default(docker).await
}

/// Assembles the default image's root file system and imports it.
pub async fn build_default(docker: &Docker) -> Result<()> {
    let image = default_image();
    let action = format!("build the image {image}");
    let archive = tokio::task::spawn_blocking(rootfs)
        .await
        .map_err(|e| local(&action, e))?
        .map_err(|e| local(&action, e))?;
    let tag = image.split_once(':').map_or("latest", |(_, t)| t);
    let mut progress = docker.create_image(
        Some(CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(DEFAULT_REPO.into()),
            tag: Some(tag.into()),
            ..Default::default()
        }),
        Some(bollard::body_full(archive.into())),
        None,
    );
    while let Some(step) = progress.next().await {
        let step = step.map_err(|e| local(&action, e))?;
        if let Some(e) = step.error_detail.and_then(|d| d.message) {
            return Err(local(&action, e));
        }
    }
    Ok(())
}

/// The libraries (and the loader) `ldd` names for `program`.
fn libraries(program: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    let out = std::process::Command::new("ldd")
        .arg(program)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    // A static program: ldd says so and exits 1.
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect())
}

/// The root file system, as a tar archive.
fn rootfs() -> std::result::Result<Vec<u8>, String> {
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    let mut programs = Vec::new();
    for p in REQUIRED {
        let path = which(p).ok_or_else(|| format!("`{p}` is not on this machine's PATH"))?;
        programs.push((p.to_string(), path));
    }
    for p in OPTIONAL {
        if let Some(path) = which(p) {
            programs.push((p.to_string(), path));
        }
    }
    for (_, path) in &programs {
        files.extend(libraries(path)?);
    }
    // What a Rust program links (libgcc_s for unwinding, libm): the programs copied in at
    // deploy (leaderkv) and the clock shim preloaded into every process are built as
    // faultline is, so its own libraries are theirs. No program above needs libgcc_s, so
    // without this the image ran leaderkv only when Redis happened to bring it along.
    if let Ok(me) = std::env::current_exe() {
        files.extend(libraries(&me)?);
    }
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(true);
    let dir = |b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        b.append_data(&mut h, path, std::io::empty())
    };
    let io = |e: std::io::Error| format!("cannot assemble the image: {e}");
    for d in ["usr/bin", "tmp", "etc", "var/tmp", "root"] {
        dir(&mut b, d, if d.ends_with("tmp") { 0o1777 } else { 0o755 }).map_err(io)?;
    }
    // Every program under /usr/bin, by the name it is called by; /bin and /sbin lead there
    // as on Debian's merged /usr.
    for (name, path) in &programs {
        b.append_path_with_name(path, format!("usr/bin/{name}"))
            .map_err(io)?;
    }
    for (link, to) in [("bin", "usr/bin"), ("sbin", "usr/bin")] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, link, to).map_err(io)?;
    }
    for f in &files {
        let rel = f.strip_prefix("/").unwrap_or(f);
        b.append_path_with_name(f, rel).map_err(io)?;
    }
    for (path, text) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, text.as_bytes()).map_err(io)?;
    }
    b.into_inner().map_err(io)
}
