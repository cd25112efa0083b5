//! `clockshim`: faultline's LD_PRELOAD shim that skews the wall clock of one process tree.
//!
//! Modules: this file (the preloaded functions) and `offset_file` (writing and reading the
//! offset file; shared with the binary by path). It exports `clock_gettime`, `gettimeofday`, `time` and
//! `timespec_get`; the binary `faultline-clock` (src/bin) writes the offset file, bumps a
//! host clock with `clock_settime` (for VMs) and doubles as a witness program that prints
//! what the clock reads.
//!
//! How it works: the environment variable [`ENV_CLOCK_FILE`] (`FAULTLINE_CLOCK_FILE`) names a
//! file whose first 8 bytes are a native-endian `i64` offset in nanoseconds. On the first
//! clock call the shim opens and maps that file `MAP_SHARED` read-only, so a write by the
//! nemesis (an aligned 8-byte atomic store through its own shared mapping, see
//! [`write_offset`]) is seen by every process of the tree at once, without a restart.
//! `CLOCK_REALTIME` and `CLOCK_REALTIME_COARSE` (and `gettimeofday`, `time`,
//! `timespec_get(TIME_UTC)`) are shifted by the offset; every other clock passes through.
//!
//! Rules the shim keeps, because breaking them is what makes Debian's libfaketime deadlock
//! redis-server at start (jemalloc calls `clock_gettime` from inside libfaketime's init):
//! it never allocates, never calls back into libc's clock functions (real time comes from
//! the raw `clock_gettime` syscall), never uses `dlsym`, and never panics across FFI. The
//! file is opened and mapped with raw syscalls too.
//!
//! Limits, said plainly:
//! - Statically linked programs and Go programs (etcd, for one) read the clock through the
//!   vDSO or raw syscalls and never call libc's `clock_gettime`: an LD_PRELOAD shim does
//!   **not** skew them. Per-process skew for them needs vDSO patching or a real VM/host
//!   whose clock is set with `clock_settime` (the `faultline-clock bump` helper).
//! - glibc-internal calls that bypass the PLT are not seen (the exported functions above are
//!   overridden separately for that reason).
//! - The file must exist (at least 8 bytes) when the process first reads the clock; if the
//!   variable is unset or the file is missing or short, the offset is 0 for the life of
//!   the process. Writers must never truncate the file (a mapped page past EOF faults).
//! - Real time comes from a syscall rather than the vDSO: each call costs a syscall
//!   (a few hundred nanoseconds instead of tens).

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

mod offset_file;
pub use offset_file::{read_offset, write_offset};

/// Environment variable naming the offset file.
pub const ENV_CLOCK_FILE: &str = "FAULTLINE_CLOCK_FILE";
const ENV_CLOCK_FILE_C: &[u8] = b"FAULTLINE_CLOCK_FILE\0";

pub use offset_file::OFFSET_FILE_LEN;

const NANOS_PER_SEC: i128 = 1_000_000_000;
/// `STATE` values: 0 = not initialised yet, 1 = no file (offset 0), else the mapping address.
const UNINIT: usize = 0;
const NO_FILE: usize = 1;
static STATE: AtomicUsize = AtomicUsize::new(UNINIT);

/// Maps the offset file (once; racing threads agree through a compare-exchange).
fn init() -> usize {
    // SAFETY: getenv does not touch clocks or allocate; the name is NUL-terminated.
    let path = unsafe { libc::getenv(ENV_CLOCK_FILE_C.as_ptr() as *const c_char) };
    let mapped = if path.is_null() {
        NO_FILE
    } else {
        map_file(path)
    };
    match STATE.compare_exchange(UNINIT, mapped, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => mapped,
        Err(current) => {
            if mapped > NO_FILE {
                // SAFETY: we own this mapping; another thread's mapping won.
                unsafe { libc::syscall(libc::SYS_munmap, mapped as *mut c_void, OFFSET_FILE_LEN) };
            }
            current
        }
    }
}

/// Opens and maps `path` with raw syscalls; `NO_FILE` on any failure.
fn map_file(path: *const c_char) -> usize {
    // SAFETY: raw syscalls with valid arguments; every result is checked.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path,
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return NO_FILE;
        }
        let mut st: libc::stat = core::mem::zeroed();
        let ok = libc::syscall(libc::SYS_fstat, fd, &mut st as *mut libc::stat) == 0
            && st.st_size >= OFFSET_FILE_LEN as libc::off_t;
        let mut addr: libc::c_long = -1;
        if ok {
            addr = libc::syscall(
                libc::SYS_mmap,
                core::ptr::null_mut::<c_void>(),
                OFFSET_FILE_LEN,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0 as libc::off_t,
            );
        }
        libc::syscall(libc::SYS_close, fd);
        // mmap's raw syscall returns -errno (in -4095..-1) on failure.
        if !ok || (-4095..0).contains(&addr) || addr == 0 {
            return NO_FILE;
        }
        addr as usize
    }
}

/// The current offset in nanoseconds (0 without a file).
#[inline]
fn offset_ns() -> i64 {
    let mut state = STATE.load(Ordering::Acquire);
    if state == UNINIT {
        state = init();
    }
    if state <= NO_FILE {
        return 0;
    }
    // SAFETY: `state` is the address of a live, page-aligned, 8-byte readable shared mapping
    // that is never unmapped once published.
    unsafe { (*(state as *const AtomicI64)).load(Ordering::Relaxed) }
}

/// The real wall clock from the raw syscall; `None` if it failed (errno is set).
#[inline]
fn raw_clock(clock: libc::clockid_t, ts: *mut libc::timespec) -> c_int {
    // SAFETY: the kernel validates `ts`; failures come back as -1 with errno set.
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, ts) as c_int }
}

/// Adds `offset` nanoseconds to `ts`, normalised (no overflow: i128 arithmetic).
#[inline]
fn shift(ts: &mut libc::timespec, offset: i64) {
    if offset == 0 {
        return;
    }
    let total = ts.tv_sec as i128 * NANOS_PER_SEC + ts.tv_nsec as i128 + offset as i128;
    ts.tv_sec = total.div_euclid(NANOS_PER_SEC) as libc::time_t;
    ts.tv_nsec = total.rem_euclid(NANOS_PER_SEC) as _;
}

fn is_realtime(clock: libc::clockid_t) -> bool {
    clock == libc::CLOCK_REALTIME || clock == libc::CLOCK_REALTIME_COARSE
}

/// Skewed wall clock into a timespec; returns 0 or -1 (errno set).
#[inline]
fn skewed_realtime(ts: &mut libc::timespec) -> c_int {
    let rc = raw_clock(libc::CLOCK_REALTIME, ts);
    if rc == 0 {
        shift(ts, offset_ns());
    }
    rc
}

/// `clock_gettime(2)`: realtime clocks shifted by the offset, others unchanged.
///
/// # Safety
/// Same contract as libc's `clock_gettime`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_gettime(clock: libc::clockid_t, ts: *mut libc::timespec) -> c_int {
    let rc = raw_clock(clock, ts);
    if rc == 0 && is_realtime(clock) && !ts.is_null() {
        // SAFETY: the kernel just wrote a valid timespec there.
        shift(unsafe { &mut *ts }, offset_ns());
    }
    rc
}

/// `gettimeofday(2)`, shifted. The obsolete timezone argument is zero-filled.
///
/// # Safety
/// Same contract as libc's `gettimeofday`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gettimeofday(tv: *mut libc::timeval, tz: *mut c_void) -> c_int {
    if !tz.is_null() {
        // SAFETY: caller passes a `struct timezone` (two ints) or NULL.
        unsafe { core::ptr::write_bytes(tz as *mut u8, 0, 2 * core::mem::size_of::<c_int>()) };
    }
    if tv.is_null() {
        return 0;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let rc = skewed_realtime(&mut ts);
    if rc == 0 {
        // SAFETY: caller passes a valid timeval.
        unsafe {
            (*tv).tv_sec = ts.tv_sec;
            (*tv).tv_usec = (ts.tv_nsec / 1000) as libc::suseconds_t;
        }
    }
    rc
}

/// `time(2)`, shifted.
///
/// # Safety
/// Same contract as libc's `time`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn time(out: *mut libc::time_t) -> libc::time_t {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if skewed_realtime(&mut ts) != 0 {
        return -1;
    }
    if !out.is_null() {
        // SAFETY: caller passes a valid time_t pointer or NULL.
        unsafe { *out = ts.tv_sec };
    }
    ts.tv_sec
}

/// C11 `timespec_get`, shifted for `TIME_UTC` (the only base glibc supports).
///
/// # Safety
/// Same contract as libc's `timespec_get`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn timespec_get(ts: *mut libc::timespec, base: c_int) -> c_int {
    const TIME_UTC: c_int = 1;
    if base != TIME_UTC || ts.is_null() {
        return 0;
    }
    // SAFETY: caller passes a valid timespec.
    if skewed_realtime(unsafe { &mut *ts }) == 0 {
        base
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_normalises_both_directions() {
        let mut ts = libc::timespec {
            tv_sec: 10,
            tv_nsec: 900_000_000,
        };
        shift(&mut ts, 200_000_000);
        assert_eq!((ts.tv_sec, ts.tv_nsec), (11, 100_000_000));
        shift(&mut ts, -1_200_000_000);
        assert_eq!((ts.tv_sec, ts.tv_nsec), (9, 900_000_000));
        shift(&mut ts, i64::MIN);
        assert!(ts.tv_nsec >= 0 && ts.tv_nsec < 1_000_000_000);
    }

    #[test]
    fn write_and_read_offset_round_trip_without_truncating() {
        let dir = std::env::temp_dir().join(format!("clockshim-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("offset");
        write_offset(&path, -5_000_000_000).unwrap();
        assert_eq!(read_offset(&path).unwrap(), -5_000_000_000);
        write_offset(&path, 42).unwrap();
        assert_eq!(read_offset(&path).unwrap(), 42);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
