//! The signal protocol (no root needed): the first SIGTERM/SIGINT starts healing, a second
//! one exits at once with status 130.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn send(pid: u32, sig: i32) {
    // SAFETY: plain syscall on the child this test started.
    unsafe { libc::kill(pid as i32, sig) };
}

#[test]
fn first_signal_heals_second_signal_exits() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline-nemesis-probe"))
        .arg("signals")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    send(pid, libc::SIGTERM);
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "HEALING true",
        "the first signal starts the heal"
    );
    let t = Instant::now();
    send(pid, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "the second signal exits at once");
    assert!(t.elapsed() < Duration::from_secs(10));
}
