//! `faultline-nemesis-probe`: small network probes for the nemesis tests, run inside a
//! node's namespace, and `hold`, a controller stand-in that applies faults and then waits to
//! be killed (the SIGKILL test).
//!
//! ```text
//! echo-server ADDR PORT                  TCP server echoing lines (until killed)
//! connect ADDR PORT TIMEOUT_MS           one round trip; exit 0 if echoed, 1 if not
//! stream ADDR PORT COUNT INTERVAL_MS     one connection, COUNT round trips: "O|T <unix_ms>"
//! udp-recv ADDR PORT IDLE_MS MAX_MS      count datagrams until IDLE_MS of silence; print it
//! udp-send ADDR PORT COUNT GAP_US        send COUNT datagrams
//! hold PREFIX STATE_ROOT NEMESIS_STATE CLOCK_DIR SHIM_LIB PIDFILE SCHEDULE
//! signals                                install `Interrupts`, print READY; on the first
//!                                        signal print HEALING and "heal" for 20 s
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn sock(args: &[String], i: usize) -> Result<SocketAddr, String> {
    let a = args.get(i).ok_or("missing address")?;
    let p = args.get(i + 1).ok_or("missing port")?;
    format!("{a}:{p}")
        .parse()
        .map_err(|e| format!("bad address {a}:{p}: {e}"))
}

fn num(args: &[String], i: usize) -> Result<u64, String> {
    let s = args.get(i).ok_or_else(|| format!("missing argument {i}"))?;
    s.parse().map_err(|e| format!("bad number {s}: {e}"))
}

fn echo_server(addr: SocketAddr) -> Result<(), String> {
    let l = TcpListener::bind(addr).map_err(|e| format!("failed to listen on {addr}: {e}"))?;
    for conn in l.incoming() {
        let Ok(conn) = conn else { continue };
        std::thread::spawn(move || {
            let Ok(mut w) = conn.try_clone() else { return };
            for line in BufReader::new(conn).lines() {
                let Ok(line) = line else { return };
                if writeln!(w, "{line}").is_err() {
                    return;
                }
            }
        });
    }
    Ok(())
}

fn round_trip(s: &mut TcpStream, r: &mut BufReader<TcpStream>) -> bool {
    let mut line = String::new();
    writeln!(s, "p").is_ok() && r.read_line(&mut line).map(|n| n > 0).unwrap_or(false)
}

fn connect(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let Ok(rs) = s.try_clone() else { return false };
    round_trip(&mut s, &mut BufReader::new(rs))
}

fn stream(addr: SocketAddr, count: u64, interval: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(interval))
        .map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
    for _ in 0..count {
        let t = Instant::now();
        let ok = round_trip(&mut s, &mut r);
        println!("{} {}", if ok { "O" } else { "T" }, unix_ms());
        std::thread::sleep(interval.saturating_sub(t.elapsed()));
    }
    Ok(())
}

fn udp_recv(addr: SocketAddr, idle: Duration, max: Duration) -> Result<(), String> {
    let s = UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    s.set_read_timeout(Some(idle)).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut count = 0u64;
    let mut buf = [0u8; 64];
    println!("ready");
    while start.elapsed() < max {
        match s.recv(&mut buf) {
            Ok(_) => count += 1,
            Err(_) if count > 0 => break,
            Err(_) => {}
        }
    }
    println!("{count}");
    Ok(())
}

fn udp_send(addr: SocketAddr, count: u64, gap: Duration) -> Result<(), String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    for i in 0..count {
        s.send_to(&i.to_be_bytes(), addr)
            .map_err(|e| format!("send: {e}"))?;
        std::thread::sleep(gap);
    }
    Ok(())
}

/// Applies the schedule's faults (all at once, ignoring times), prints READY, then sleeps
/// until killed: a controller that dies with faults active.
fn hold(args: &[String]) -> Result<(), String> {
    use nemesis::{
        ClockMode, ClusterNemesis, Nemesis, NemesisConfig, NemesisOp, PidfileSystem, Schedule,
    };
    use std::path::PathBuf;
    use std::sync::Arc;
    let get = |i: usize| {
        args.get(i)
            .cloned()
            .ok_or_else(|| format!("missing argument {i}"))
    };
    let (prefix, root, state, clock_dir, lib, pidfile, schedule) = (
        get(2)?,
        get(3)?,
        get(4)?,
        get(5)?,
        get(6)?,
        get(7)?,
        get(8)?,
    );
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let cluster = control::LocalCluster::load(std::path::Path::new(&root), &prefix)
            .map_err(|e| e.to_string())?
            .ok_or("no such cluster")?;
        let mut system = PidfileSystem::default();
        for n in cluster.nodes() {
            system.specs.insert(
                n.name.clone(),
                control::DaemonSpec::new("true", pidfile.clone(), "/dev/null"),
            );
        }
        let nem = ClusterNemesis::new(NemesisConfig {
            remotes: cluster.remotes(),
            clock: ClockMode::Shim {
                dir: PathBuf::from(clock_dir),
                lib: PathBuf::from(lib),
            },
            state_path: PathBuf::from(state),
            seed: 1,
            system: Some(Arc::new(system)),
        })
        .map_err(|e| e.to_string())?;
        let schedule =
            Schedule::load(std::path::Path::new(&schedule)).map_err(|e| e.to_string())?;
        for f in schedule.faults {
            let rec = nem
                .invoke(NemesisOp::Start(f.fault))
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("applied {} {}", rec.f(), rec.value());
        }
        println!("READY");
        tokio::time::sleep(Duration::from_secs(600)).await;
        Ok::<(), String>(())
    })
}

/// The runner's signal protocol in miniature: the first SIGINT/SIGTERM starts a (slow)
/// heal, a second one exits at once with 130.
fn signals() -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut int = nemesis::Interrupts::install().map_err(|e| e.to_string())?;
        println!("READY");
        tokio::time::timeout(Duration::from_secs(60), int.wait())
            .await
            .map_err(|_| "no signal came")?;
        println!("HEALING {}", int.triggered());
        tokio::time::sleep(Duration::from_secs(20)).await;
        println!("HEALED");
        Ok(())
    })
}

fn run(args: &[String]) -> Result<bool, String> {
    match args.get(1).map(String::as_str) {
        Some("echo-server") => echo_server(sock(args, 2)?).map(|_| true),
        Some("connect") => Ok(connect(
            sock(args, 2)?,
            Duration::from_millis(num(args, 4)?),
        )),
        Some("stream") => stream(
            sock(args, 2)?,
            num(args, 4)?.min(100_000),
            Duration::from_millis(num(args, 5)?),
        )
        .map(|_| true),
        Some("udp-recv") => udp_recv(
            sock(args, 2)?,
            Duration::from_millis(num(args, 4)?),
            Duration::from_millis(num(args, 5)?),
        )
        .map(|_| true),
        Some("udp-send") => udp_send(
            sock(args, 2)?,
            num(args, 4)?.min(1_000_000),
            Duration::from_micros(num(args, 5)?),
        )
        .map(|_| true),
        Some("hold") => hold(args).map(|_| true),
        Some("signals") => signals().map(|_| true),
        _ => Err(
            "usage: faultline-nemesis-probe echo-server|connect|stream|udp-recv|udp-send|hold ..."
                .into(),
        ),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("faultline-nemesis-probe: {e}");
            ExitCode::from(2)
        }
    }
}
