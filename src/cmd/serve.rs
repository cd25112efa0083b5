//! `faultline serve [--store DIR] [--bind 127.0.0.1:8080]`: a small read-only web UI over the
//! run store. `/` lists the runs (name, time, verdict, anomaly classes, links to the report
//! and files); any other path serves a file inside the store. Paths are percent-decoded,
//! joined to the store and canonicalized; anything that resolves outside the store (`..`,
//! encoded `%2e%2e`, symlinks out) or is not a regular file is a 404. GET and HEAD only;
//! binds to loopback unless told otherwise. A hand-written HTTP/1.1 server on tokio (one
//! request per connection), enough for a browser and curl.

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
    #[arg(long, default_value = "store", env = "FAULTLINE_STORE")]
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
        eprintln!(
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
            let _ = tokio::time::timeout(Duration::from_secs(30), handle(conn, &store)).await;
        });
    }
}

async fn handle(mut conn: TcpStream, store: &Path) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).await?;
        if n == 0 || buf.len() > 16 * 1024 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, ctype, body) = match method {
        "GET" | "HEAD" => respond(store, target).await,
        _ => (405, "text/plain", b"method not allowed\n".to_vec()),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Bad Request",
    };
    let header = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(header.as_bytes()).await?;
    if method != "HEAD" {
        conn.write_all(&body).await?;
    }
    conn.shutdown().await
}

fn not_found() -> (u16, &'static str, Vec<u8>) {
    (404, "text/plain; charset=utf-8", b"not found\n".to_vec())
}

async fn respond(store: &Path, target: &str) -> (u16, &'static str, Vec<u8>) {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == "/" || path.is_empty() {
        let store = store.to_path_buf();
        let page = tokio::task::spawn_blocking(move || index(&store))
            .await
            .unwrap_or_default();
        return (200, "text/html; charset=utf-8", page.into_bytes());
    }
    let Some(file) = resolve(store, path) else {
        return not_found();
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => (200, content_type(&file), bytes),
        Err(_) => not_found(),
    }
}

/// The regular file inside `store` that the URL path names, if any.
pub fn resolve(store: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    if decoded.contains('\0') {
        return None;
    }
    let mut p = store.to_path_buf();
    for part in decoded.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if part == ".." || part.contains('\\') {
            return None;
        }
        p.push(part);
    }
    let real = p.canonicalize().ok()?;
    (real.starts_with(store) && real.is_file()).then_some(real)
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
