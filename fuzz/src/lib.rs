//! A small fuzzing harness on stable Rust: each target's corpus (`fuzz/corpus/<target>/`)
//! is read, mutated at random (bit flips, byte insertions and deletions, splices of corpus
//! pieces, truncations, repeated brackets and digits), and fed to the target for a time
//! budget; a panic fails the run with the input saved to `target/fuzz-failures/` and the
//! seed to replay it. No coverage guidance (cargo-fuzz needs a nightly compiler): the
//! mutations aim at what readers get wrong (nesting, escapes, numbers, truncation).
//!
//! - `FAULTLINE_FUZZ_SECS`: seconds per target (default 3: a short run in every test run).
//! - `FAULTLINE_FUZZ_SEED`: the seed (default: from the clock; printed either way).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub target: String,
    pub seed: u64,
    pub inputs: u64,
}

/// The corpus of `target`: every file under `fuzz/corpus/<target>/`.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// One mutation of `input`, drawing pieces from `corpus`.
pub fn mutate(input: &[u8], corpus: &[Vec<u8>], rng: &mut ChaCha8Rng) -> Vec<u8> {
    const INTERESTING: &[&[u8]] = &[
        b"\\u",
        b"\\ud83d",
        b"\\",
        b"\"",
        b"[",
        b"{",
        b"(",
        b"#{",
        b"#_",
        b"#tag ",
        b"]",
        b"}",
        b"99999999999999999999",
        b"-9223372036854775809",
        b"1e999",
        b"NaN",
        b"\0",
        b"\xef\xbb\xbf",
        b"\n",
        b"\r\n",
        b":index",
        b"\"index\":",
        b"-",
        b"0x",
        b"1.5M",
        b"\\newline",
        b"nil",
        b"{{",
        b"}}",
        b"{node}",
        b"=",
        b"\"\"\"",
        b"'''",
    ];
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = out.len();
        match rng.random_range(0..9) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..=len);
                out.insert(i, rng.random());
            }
            2 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(16));
                out.drain(i..i + n);
            }
            3 => {
                let i = rng.random_range(0..=len);
                let piece = INTERESTING[rng.random_range(0..INTERESTING.len())];
                out.splice(i..i, piece.iter().copied());
            }
            4 if !corpus.is_empty() => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() {
                    let a = rng.random_range(0..other.len());
                    let b = rng.random_range(a..=other.len().min(a + 256));
                    let i = rng.random_range(0..=len);
                    out.splice(i..i, other[a..b].iter().copied());
                }
            }
            5 if len > 0 => out.truncate(rng.random_range(0..len)),
            6 => {
                // Deep nesting, long digit runs: what recursion and number parsing meet.
                let piece = INTERESTING[rng.random_range(0..12)];
                let n = rng.random_range(1..2000);
                let i = rng.random_range(0..=len);
                let rep: Vec<u8> = piece
                    .iter()
                    .copied()
                    .cycle()
                    .take(piece.len() * n)
                    .collect();
                out.splice(i..i, rep);
            }
            7 if len > 1 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(0..len);
                out.swap(i, j);
            }
            _ => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..64);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                out.splice(i..i, bytes);
            }
        }
    }
    out
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Feeds `target`'s corpus, then mutations of it, to `f` for the time budget. Panics (the
/// test fails) on the first input that made `f` panic, after saving it under
/// `target/fuzz-failures/`.
pub fn run(target: &str, f: impl Fn(&[u8])) -> Report {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    run_saving_to(target, &dir, f)
}

/// [`run`], saving a failing input under `failures`.
pub fn run_saving_to(target: &str, failures: &Path, f: impl Fn(&[u8])) -> Report {
    let secs = env_u64("FAULTLINE_FUZZ_SECS").unwrap_or(3);
    let seed = env_u64("FAULTLINE_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!("fuzz {target}: seed {seed} (FAULTLINE_FUZZ_SEED={seed} replays it), {secs} s");
    let corpus = corpus(target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ is empty");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut inputs = 0u64;
    let mut next = corpus.iter().cloned();
    loop {
        let input = match next.next() {
            Some(c) => c,
            None if Instant::now() >= deadline => break,
            None => {
                let base = &corpus[rng.random_range(0..corpus.len())];
                mutate(base, &corpus, &mut rng)
            }
        };
        inputs += 1;
        if catch_unwind(AssertUnwindSafe(|| f(&input))).is_err() {
            let _ = std::fs::create_dir_all(failures);
            let path = failures.join(format!("{target}-{seed}-{inputs}"));
            let _ = std::fs::write(&path, &input);
            panic!(
                "fuzz {target}: input {inputs} panicked (seed {seed}); saved to {}",
                path.display()
            );
        }
    }
    eprintln!("fuzz {target}: {inputs} inputs, no panic");
    Report {
        target: target.into(),
        seed,
        inputs,
    }
}
