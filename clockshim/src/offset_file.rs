//! The offset file: one native-endian `i64` of nanoseconds at offset 0. Shared by the
//! preload library and the `faultline-clock` binary (included by path, so the binary does
//! not link the preload symbols).

use core::sync::atomic::{AtomicI64, Ordering};

/// Size of the offset file: one `i64` (nanoseconds, native endian) at offset 0.
pub const OFFSET_FILE_LEN: usize = 8;

/// Writes `offset_ns` into the offset file at `path` with one aligned atomic 8-byte store
/// through a shared mapping (creating the file, 8 bytes of zero, if it does not exist), so
/// a reading process never sees a torn value. Used by the `faultline-clock set` helper.
///
/// Never truncates an existing file.
pub fn write_offset(path: &std::path::Path, offset_ns: i64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    if file.metadata()?.len() < OFFSET_FILE_LEN as u64 {
        file.set_len(OFFSET_FILE_LEN as u64)?;
    }
    // SAFETY: maps 8 bytes of a file we hold open and at least 8 bytes long; unmapped below.
    unsafe {
        let addr = libc::mmap(
            core::ptr::null_mut(),
            OFFSET_FILE_LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        (*(addr as *const AtomicI64)).store(offset_ns, Ordering::SeqCst);
        libc::munmap(addr, OFFSET_FILE_LEN);
    }
    Ok(())
}

/// Reads the offset currently stored in the file at `path` (for checks and tools).
pub fn read_offset(path: &std::path::Path) -> std::io::Result<i64> {
    let bytes = std::fs::read(path)?;
    let arr: [u8; 8] = bytes
        .get(..OFFSET_FILE_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| std::io::Error::other("offset file shorter than 8 bytes"))?;
    Ok(i64::from_ne_bytes(arr))
}
