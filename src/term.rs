//! Text from outside (a history's node names and values, a file's contents) on its way to
//! the terminal: control characters escaped, so a crafted history cannot move the cursor,
//! clear the screen or rewrite the verdict line the user reads. And `-q`: whether progress
//! and log lines are shown at all ([`note!`]).

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// `-q`: progress and log lines off (results on stdout and errors still show).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A progress or log line on stderr, unless `-q` was given.
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::term::quiet() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use note;

/// `text` with every control character (C0, DEL, C1) written as `\u{..}`; tabs and
/// newlines too, as a line the program prints is one line.
pub fn safe(text: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control();
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        assert_eq!(safe("n1"), "n1");
        assert_eq!(safe("café ✓"), "café ✓");
        let evil = "n1\u{1b}[2K\rverdict: VALID\u{9b}31m\u{7f}";
        let shown = safe(evil);
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(shown, "n1\\u{1b}[2K\\u{d}verdict: VALID\\u{9b}31m\\u{7f}");
    }
}
