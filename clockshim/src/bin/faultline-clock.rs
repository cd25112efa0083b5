//! `faultline-clock`: the clock nemesis's helper and witness.
//!
//! ```text
//! faultline-clock now                      print CLOCK_REALTIME as "<secs>.<nanos>"
//! faultline-clock watch COUNT INTERVAL_MS  print "<realtime_ns> <monotonic_ns>" COUNT times
//! faultline-clock set FILE OFFSET_NS       store the shim offset (atomic 8-byte store)
//! faultline-clock get FILE                 print the shim offset
//! faultline-clock bench COUNT             time COUNT clock_gettime calls, print ns/call
//! faultline-clock bump DELTA_MS            clock_settime(CLOCK_REALTIME, now + DELTA_MS)
//! ```
//!
//! `now` and `watch` read the clock through libc's `clock_gettime`, so under
//! `LD_PRELOAD=libclockshim.so` they show the skewed clock: a witness that the shim works.
//! `bump` sets the host's real clock (root; stop NTP first) and is how VMs are skewed.

#[path = "../offset_file.rs"]
mod offset_file;

use std::process::ExitCode;

fn read_clock(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec pointer; goes through the PLT (and so through a preloaded shim).
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

fn bump(delta_ms: i64) -> std::io::Result<()> {
    let total = read_clock(libc::CLOCK_REALTIME) + delta_ms as i128 * 1_000_000;
    let ts = libc::timespec {
        tv_sec: total.div_euclid(1_000_000_000) as libc::time_t,
        tv_nsec: total.rem_euclid(1_000_000_000) as _,
    };
    // SAFETY: valid timespec.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or_else(usage);
    let num = |i: usize| -> Result<i64, String> {
        arg(i)?
            .parse::<i64>()
            .map_err(|e| format!("bad number {:?}: {e}", args[i]))
    };
    match arg(1)? {
        "now" => {
            let ns = read_clock(libc::CLOCK_REALTIME);
            println!(
                "{}.{:09}",
                ns.div_euclid(1_000_000_000),
                ns.rem_euclid(1_000_000_000)
            );
        }
        "watch" => {
            let count = num(2)?.clamp(0, 1_000_000);
            let interval = num(3)?.clamp(0, 3_600_000) as u64;
            for i in 0..count {
                if i > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(interval));
                }
                let real = read_clock(libc::CLOCK_REALTIME);
                let mono = read_clock(libc::CLOCK_MONOTONIC);
                println!("{real} {mono}");
            }
        }
        "set" => {
            let path = std::path::Path::new(arg(2)?);
            offset_file::write_offset(path, num(3)?)
                .map_err(|e| format!("failed to write offset file {}: {e}", path.display()))?;
        }
        "get" => {
            let path = std::path::Path::new(arg(2)?);
            let v = offset_file::read_offset(path)
                .map_err(|e| format!("failed to read offset file {}: {e}", path.display()))?;
            println!("{v}");
        }
        "bench" => {
            let count = num(2)?.clamp(1, 100_000_000);
            let start = std::time::Instant::now();
            let mut sink = 0i128;
            for _ in 0..count {
                sink ^= read_clock(libc::CLOCK_REALTIME);
            }
            let per_call = start.elapsed().as_nanos() as f64 / count as f64;
            println!(
                "{per_call:.1} ns per clock_gettime(CLOCK_REALTIME) (checksum {})",
                sink & 1
            );
        }
        "bump" => bump(num(2)?).map_err(|e| format!("failed to set the clock: {e}"))?,
        _ => return Err(usage()),
    }
    Ok(())
}

fn usage() -> String {
    "usage: faultline-clock now | watch COUNT INTERVAL_MS | set FILE OFFSET_NS | get FILE | bench COUNT | bump DELTA_MS"
        .to_string()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline-clock: {e}");
            ExitCode::from(2)
        }
    }
}
