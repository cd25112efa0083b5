//! The shim, preloaded into real programs: the `faultline-clock` witness and, if installed,
//! redis-server (whose `TIME` reads `gettimeofday`). The offset changes while they run.

#[path = "../src/offset_file.rs"]
#[allow(dead_code)]
mod offset_file;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ENV_CLOCK_FILE: &str = "FAULTLINE_CLOCK_FILE";
const SEC: i128 = 1_000_000_000;

fn witness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline-clock"))
}

/// libclockshim.so sits beside the binaries (target/<profile>/) or in its deps/ folder.
fn shim_lib() -> PathBuf {
    let dir = witness().parent().unwrap().to_path_buf();
    let candidates = [
        dir.join("libclockshim.so"),
        dir.join("deps/libclockshim.so"),
    ];
    let lib = candidates.iter().find(|p| p.exists());
    lib.unwrap_or_else(|| panic!("libclockshim.so not built in {}", dir.display()))
        .clone()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clockshim-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// realtime - monotonic of this (unshimmed) process, in ns.
fn baseline() -> i128 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    real - (ts.tv_sec as i128 * SEC + ts.tv_nsec as i128)
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn witness_sees_offset_change_at_runtime() {
    let dir = scratch("witness");
    let file = dir.join("offset");
    offset_file::write_offset(&file, 3600 * SEC as i64).unwrap();
    let child = Command::new(witness())
        .args(["watch", "40", "50"])
        .env("LD_PRELOAD", shim_lib())
        .env(ENV_CLOCK_FILE, &file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let skew = |line: Option<std::io::Result<String>>| -> i128 {
        let line = line.expect("witness ended early").unwrap();
        let mut it = line.split(' ').map(|v| v.parse::<i128>().unwrap());
        let (real, mono) = (it.next().unwrap(), it.next().unwrap());
        real - mono - baseline()
    };
    let first = skew(lines.next());
    assert!(
        (first - 3600 * SEC).abs() < SEC,
        "skew {first} ns, wanted +3600 s"
    );
    offset_file::write_offset(&file, -7200 * SEC as i64).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = first;
    while Instant::now() < deadline {
        last = skew(lines.next());
        if (last + 7200 * SEC).abs() < SEC {
            break;
        }
    }
    assert!(
        (last + 7200 * SEC).abs() < SEC,
        "skew {last} ns after the change, wanted -7200 s"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_file_or_variable_the_clock_is_untouched() {
    let dir = scratch("nofile");
    for file in [Some(dir.join("missing")), None] {
        let mut cmd = Command::new(witness());
        cmd.arg("now").env("LD_PRELOAD", shim_lib());
        match &file {
            Some(f) => cmd.env(ENV_CLOCK_FILE, f),
            None => cmd.env_remove(ENV_CLOCK_FILE),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let seen: f64 = text.trim().parse().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (now - seen).abs() < 5.0,
            "clock moved without a file: {seen} vs {now}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(prog))
            .find(|p| p.is_file())
    })
}

/// Sends RESP `TIME` and returns the server's clock in seconds.
fn redis_time(port: u16) -> Option<f64> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"*1\r\n$4\r\nTIME\r\n").ok()?;
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    while got.iter().filter(|&&b| b == b'\n').count() < 5 {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).ok()?;
    let parts: Vec<&str> = text.split("\r\n").collect();
    let secs: f64 = parts.get(2)?.parse().ok()?;
    let micros: f64 = parts.get(4)?.parse().ok()?;
    Some(secs + micros / 1e6)
}

#[test]
fn redis_server_time_follows_the_offset() {
    let Some(redis) = which("redis-server") else {
        eprintln!("SKIPPED (needs redis-server): redis_server_time_follows_the_offset");
        return;
    };
    let dir = scratch("redis");
    let file = dir.join("offset");
    offset_file::write_offset(&file, 1000 * SEC as i64).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(redis)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .env("LD_PRELOAD", shim_lib())
        .env(ENV_CLOCK_FILE, &file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = None;
    while Instant::now() < deadline && seen.is_none() {
        seen = redis_time(port);
        std::thread::sleep(Duration::from_millis(50));
    }
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let seen = seen.expect("redis-server under the shim did not answer (deadlock?)");
    assert!(
        (seen - now() - 1000.0).abs() < 2.0,
        "redis TIME {seen}, expected now+1000"
    );
    offset_file::write_offset(&file, -500 * SEC as i64).unwrap();
    let seen = redis_time(port).unwrap();
    assert!(
        (seen - now() + 500.0).abs() < 2.0,
        "redis TIME {seen}, expected now-500"
    );
    drop(_child);
    std::fs::remove_dir_all(&dir).unwrap();
}
