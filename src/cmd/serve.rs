//! `faultline serve [--store DIR] [--bind 127.0.0.1:8080]`: a small read-only web UI over the
//! run store. `/` lists the runs (name, time, verdict, anomaly classes, links to the report
//! and files); any other path serves a file inside the store. Paths are percent-decoded,
//! and opened beneath the store one component at a time (`openat` with `O_NOFOLLOW`): no
//! `..`, no symlink (in or out), nothing but a regular file, else a 404, and no window
//! between checking a path and opening it. Files are streamed (64 KiB at a time, never
//! whole in memory) with single `Range: bytes=` requests answered 206; a request's head must
//! arrive within 30 s, and a download may take as long as the reader keeps reading (each
//! write may stall 60 s at most). GET and HEAD only; binds to loopback unless told
//! otherwise. A hand-written HTTP/1.1 server on tokio (one request per connection), enough
//! for a browser and curl.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use reports::escape;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The run store.
    #[arg(long, default_value = "store", env = crate::stored::STORE_ENV)]
    pub store: PathBuf,
    /// Address to listen on (loopback by default; anything else exposes the store).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
}

pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let store = args
        .store
        .canonicalize()
        .with_context(|| format!("failed to open the store {}", args.store.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the runtime")?;
    rt.block_on(async move {
        let listener = TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("failed to bind {}", args.bind))?;
        if !args.bind.ip().is_loopback() {
            tracing::warn!("serving {} on {}, not loopback", store.display(), args.bind);
        }
        crate::term::note!(
            "faultline: serving {} at http://{}/",
            store.display(),
            listener.local_addr()?
        );
        serve(listener, store).await
    })?;
    Ok(crate::exit::VALID)
}

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, store: PathBuf) -> anyhow::Result<()> {
    loop {
        let (conn, _) = listener.accept().await.context("failed to accept")?;
        let store = store.clone();
        tokio::spawn(async move {
            let _ = handle(conn, &store).await;
        });
    }
}

/// How long a request's head may take to arrive, and one write of the answer may stall.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const WRITE_STALL: Duration = Duration::from_secs(60);
const CHUNK: usize = 64 * 1024;

/// What to send back: a page made in memory, or an open file (a range of it).
enum Body {
    Bytes(Vec<u8>),
    File {
        file: std::fs::File,
        start: u64,
        len: u64,
        total: u64,
        partial: bool,
    },
}

async fn read_head(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).await?;
        if n == 0 || buf.len() > 16 * 1024 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

async fn write_all(conn: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_STALL, conn.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn handle(mut conn: TcpStream, store: &Path) -> std::io::Result<()> {
    let buf = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut conn)).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    };
    let head = String::from_utf8_lossy(&buf);
    let mut lines = head.lines();
    let mut words = lines.next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let range = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("range")
            .then(|| v.trim().to_owned())
    });
    let (status, ctype, body) = match method {
        "GET" | "HEAD" => respond(store, target, range.as_deref()).await,
        _ => (
            405,
            "text/plain",
            Body::Bytes(b"method not allowed\n".to_vec()),
        ),
    };
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        _ => "Bad Request",
    };
    let (len, extra) = match &body {
        Body::Bytes(b) => (b.len() as u64, String::new()),
        Body::File {
            start,
            len,
            total,
            partial,
            ..
        } => (
            *len,
            if *partial {
                format!(
                    "Accept-Ranges: bytes\r\nContent-Range: bytes {start}-{}/{total}\r\n",
                    start + len - 1
                )
            } else {
                "Accept-Ranges: bytes\r\n".into()
            },
        ),
    };
    let header = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\n{extra}X-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:\r\nConnection: close\r\n\r\n"
    );
    write_all(&mut conn, header.as_bytes()).await?;
    if method != "HEAD" {
        match body {
            Body::Bytes(b) => write_all(&mut conn, &b).await?,
            Body::File {
                file, start, len, ..
            } => {
                use tokio::io::AsyncSeekExt;
                let mut f = tokio::fs::File::from_std(file);
                f.seek(std::io::SeekFrom::Start(start)).await?;
                let mut left = len;
                let mut chunk = vec![0u8; CHUNK];
                while left > 0 {
                    let want = (left as usize).min(CHUNK);
                    let n = f.read(&mut chunk[..want]).await?;
                    if n == 0 {
                        break; // the file shrank: the client sees a short body
                    }
                    write_all(&mut conn, &chunk[..n]).await?;
                    left -= n as u64;
                }
            }
        }
    }
    conn.shutdown().await
}

fn not_found() -> (u16, &'static str, Body) {
    (
        404,
        "text/plain; charset=utf-8",
        Body::Bytes(b"not found\n".to_vec()),
    )
}

async fn respond(store: &Path, target: &str, range: Option<&str>) -> (u16, &'static str, Body) {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == "/" || path.is_empty() {
        let store = store.to_path_buf();
        let page = tokio::task::spawn_blocking(move || index(&store))
            .await
            .unwrap_or_default();
        return (
            200,
            "text/html; charset=utf-8",
            Body::Bytes(page.into_bytes()),
        );
    }
    let Some(parts) = url_parts(path) else {
        return not_found();
    };
    let store_owned = store.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || open_beneath(&store_owned, &parts))
        .await
        .ok()
        .flatten();
    let Some((file, total)) = opened else {
        return not_found();
    };
    let ctype = content_type(Path::new(path));
    match range.map(|r| byte_range(r, total)) {
        None => (
            200,
            ctype,
            Body::File {
                file,
                start: 0,
                len: total,
                total,
                partial: false,
            },
        ),
        Some(Some((start, len))) => (
            206,
            ctype,
            Body::File {
                file,
                start,
                len,
                total,
                partial: true,
            },
        ),
        Some(None) => (
            416,
            "text/plain; charset=utf-8",
            Body::Bytes(
                format!("bad or unsatisfiable range (the file has {total} bytes)\n").into_bytes(),
            ),
        ),
    }
}

/// The components of a URL path inside the store: percent-decoded, no `..`, no NUL, no
/// backslash.
pub fn url_parts(url_path: &str) -> Option<Vec<String>> {
    let decoded = percent_decode(url_path)?;
    if decoded.contains('\0') {
        return None;
    }
    let mut parts = Vec::new();
    for part in decoded.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if part == ".." || part.contains('\\') {
            return None;
        }
        parts.push(part.to_owned());
    }
    (!parts.is_empty()).then_some(parts)
}

/// Opens `parts` beneath `store` one component at a time, refusing symlinks anywhere: the
/// file opened is the one checked. Returns it and its length when it is a regular file.
pub fn open_beneath(store: &Path, parts: &[String]) -> Option<(std::fs::File, u64)> {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let root = CString::new(store.as_os_str().as_bytes()).ok()?;
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: a NUL-terminated path; the fd, when valid, is owned below.
    let fd = unsafe { libc::open(root.as_ptr(), flags | libc::O_DIRECTORY) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
    for (i, part) in parts.iter().enumerate() {
        let name = CString::new(part.as_bytes()).ok()?;
        let last = i + 1 == parts.len();
        let f = if last {
            flags | libc::O_NONBLOCK
        } else {
            flags | libc::O_DIRECTORY
        };
        // SAFETY: `dir` is an open directory fd and `name` is NUL-terminated.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), f) };
        if fd < 0 {
            return None;
        }
        // SAFETY: as above.
        dir = unsafe { OwnedFd::from_raw_fd(fd) };
    }
    let file = std::fs::File::from(dir);
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta.len()))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against a file of `total` bytes: (start, length), or
/// None when it is malformed, asks for several ranges, or lies past the end.
pub fn byte_range(spec: &str, total: u64) -> Option<(u64, u64)> {
    let r = spec.strip_prefix("bytes=")?.trim();
    if r.contains(',') {
        return None;
    }
    let (a, b) = r.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || total == 0 {
                return None;
            }
            (total.saturating_sub(n), total - 1)
        }
        (a, "") => (a.parse().ok()?, total.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(total.checked_sub(1)?),
        ),
    };
    (start <= end && start < total).then(|| (start, end - start + 1))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

fn href(rel: &str) -> String {
    let mut out = String::new();
    for b in rel.bytes() {
        if b.is_ascii_alphanumeric() || b"-_./~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    escape(&out)
}

/// The run directories of the store: `<test>/<timestamp>/` holding a history or results.
fn runs(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(tests) = std::fs::read_dir(store) else {
        return out;
    };
    for t in tests.flatten() {
        let Ok(ft) = t.file_type() else { continue };
        if !ft.is_dir() {
            continue; // `latest` is a symlink
        }
        let Ok(stamps) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for s in stamps.flatten() {
            let p = s.path();
            if p.join("history.jsonl").is_file() || p.join("results.json").is_file() {
                out.push(p);
            }
        }
    }
    out.sort_by(|a, b| b.file_name().cmp(&a.file_name()).then(a.cmp(b)));
    out
}

/// The index page.
pub fn index(store: &Path) -> String {
    let mut rows = String::new();
    for dir in runs(store).into_iter().take(2000) {
        let rel = dir
            .strip_prefix(store)
            .unwrap_or(&dir)
            .to_string_lossy()
            .into_owned();
        let results: Option<Json> = std::fs::read(dir.join("results.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let (verdict, kinds) = match &results {
            Some(r) => (
                match r.get("valid") {
                    Some(Json::Bool(true)) => "valid",
                    Some(Json::Bool(false)) => "invalid",
                    _ => "unknown",
                },
                r.get("anomaly_types")
                    .and_then(Json::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Json::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
            ),
            None => ("not checked", String::new()),
        };
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let links: Vec<String> = files
            .iter()
            .map(|f| {
                format!(
                    "<a href=\"/{}\">{}</a>",
                    href(&format!("{rel}/{f}")),
                    escape(f)
                )
            })
            .collect();
        let (test, time) = rel.rsplit_once('/').unwrap_or((&rel, ""));
        let report = if files.iter().any(|f| f == "report.html") {
            format!(
                "<a href=\"/{}\">report</a>",
                href(&format!("{rel}/report.html"))
            )
        } else {
            "<span class=\"m\">no report (faultline report DIR)</span>".into()
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{report}</td><td>{}</td></tr>",
            escape(test),
            escape(time),
            escape(verdict),
            escape(verdict),
            escape(&kinds),
            links.join(" ")
        ));
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"6\">No runs in this store yet.</td></tr>".into();
    }
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>faultline runs</title><style>body{{font:14px system-ui,sans-serif;margin:16px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:3px 8px;text-align:left}}.invalid{{color:#d00;font-weight:600}}.valid{{color:#2a9d8f}}.unknown{{color:#e9a23b}}.m{{color:#666}}</style></head><body><h1>faultline runs</h1><p class=\"m\">{}</p><table><tr><th>test</th><th>time</th><th>verdict</th><th>anomalies</th><th>report</th><th>files</th></tr>{rows}</table></body></html>\n",
        escape(&store.display().to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        assert_eq!(byte_range("bytes=0-3", 10), Some((0, 4)));
        assert_eq!(byte_range("bytes=4-", 10), Some((4, 6)));
        assert_eq!(byte_range("bytes=-3", 10), Some((7, 3)));
        assert_eq!(byte_range("bytes=-30", 10), Some((0, 10)));
        assert_eq!(byte_range("bytes=5-99", 10), Some((5, 5)));
        for bad in [
            "bytes=10-",
            "bytes=4-2",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=x-",
            "bytes=-0",
        ] {
            assert_eq!(byte_range(bad, 10), None, "{bad}");
        }
        assert_eq!(byte_range("bytes=0-", 0), None);
    }

    #[test]
    fn opens_regular_files_beneath_the_store_and_no_link() {
        let root = tempfile::tempdir().unwrap();
        let store = root.path().join("store");
        std::fs::create_dir_all(store.join("run")).unwrap();
        std::fs::write(store.join("run/h.jsonl"), "x").unwrap();
        std::fs::write(root.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), store.join("run/out")).unwrap();
        std::os::unix::fs::symlink(store.join("run/h.jsonl"), store.join("run/in")).unwrap();
        std::os::unix::fs::symlink(store.join("run"), store.join("latest")).unwrap();
        let parts = |p: &str| url_parts(p).unwrap();
        assert_eq!(
            open_beneath(&store, &parts("/run/h.jsonl")).map(|(_, n)| n),
            Some(1)
        );
        for p in ["/run/out", "/run/in", "/latest/h.jsonl", "/run", "/nope"] {
            assert!(open_beneath(&store, &parts(p)).is_none(), "{p}");
        }
        assert!(url_parts("/run/../secret").is_none());
        assert!(url_parts("/%2e%2e/secret").is_none());
    }

    #[test]
    fn fuzzed_paths_open_nothing_outside_the_store() {
        let root = tempfile::tempdir().unwrap();
        let store = root.path().join("store");
        std::fs::create_dir_all(store.join("run")).unwrap();
        std::fs::write(store.join("run/report.html"), "in").unwrap();
        std::fs::write(root.path().join("secret"), "out").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), store.join("run/link")).unwrap();
        fuzz::run("serve-path", |bytes| {
            let url = String::from_utf8_lossy(bytes);
            let path = url.split(['?', '#']).next().unwrap_or("");
            if let Some(parts) = url_parts(path) {
                if let Some((mut f, _)) = open_beneath(&store, &parts) {
                    let mut text = String::new();
                    let _ = std::io::Read::read_to_string(&mut f, &mut text);
                    assert_ne!(text, "out", "{url:?} escaped the store");
                }
            }
        });
    }
}
