//! `faultline serve` on a loopback port: the index lists the stored run, its report is
//! served, byte ranges are answered, and paths that escape the store (plain,
//! percent-encoded, through a symlink) are 404s, as are symlinks, directories and missing
//! files.

mod stored_run;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A raw GET over 127.0.0.1 (no client-side path normalisation): (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    get_with(port, path, "")
}

/// The same with extra header lines (each ending in \r\n).
fn get_with(port: u16, path: &str, headers: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serves_the_store_and_nothing_outside_it() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::write(root.path().join("secret.txt"), "outside the store").unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.txt"), store.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(root.path(), store.join("up")).unwrap();
    let dir = stored_run::make(&store);
    stored_run::report(&dir);

    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--bind", "127.0.0.1:0", "--store"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server(child);
    let port: u16 = line
        .trim()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    assert!(line.contains("http://127.0.0.1:"), "{line}");

    let (status, index) = get(port, "/");
    assert_eq!(status, 200);
    assert!(
        index.contains("demo") && index.contains(stored_run::STAMP),
        "{index}"
    );
    assert!(index.contains(">invalid<"), "{index}");
    assert!(index.contains("dual-leader") && index.contains("lost-write"));
    let report = format!("/demo/{}/report.html", stored_run::STAMP);
    assert!(index.contains(&format!("href=\"{report}\"")));

    let (status, page) = get(port, &report);
    assert_eq!(status, 200);
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("data-kind=\"dual-leader\""));
    let log_path = format!("/demo/{}/nodes/n1/leaderkv.log", stored_run::STAMP);
    let (status, log) = get(port, &log_path);
    assert_eq!((status, log.contains("started")), (200, true));
    // Ranges: the first bytes, the last bytes, and one past the end.
    let (status, head) = get_with(port, &log_path, "Range: bytes=0-3\r\n");
    assert_eq!((status, head.as_str()), (206, &log[..4]));
    let (status, tail) = get_with(port, &log_path, "Range: bytes=-5\r\n");
    assert_eq!((status, tail.as_str()), (206, &log[log.len() - 5..]));
    let far = format!("Range: bytes={}-\r\n", log.len());
    assert_eq!(get_with(port, &log_path, &far).0, 416);

    for escape in [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/demo/..%2f..%2fsecret.txt",
        "/demo/../../secret.txt",
        "/link.txt",
        "/up/secret.txt",
        "/%2fetc%2fpasswd",
        "//etc/passwd",
        "/demo",
        "/nope.html",
        "/%zz",
    ] {
        let (status, body) = get(port, escape);
        assert_eq!(status, 404, "{escape} gave {status}: {body}");
        assert!(
            !body.contains("outside the store") && !body.contains("root:"),
            "{escape}"
        );
    }
}
