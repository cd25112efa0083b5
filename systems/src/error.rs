//! The one error type of the systems crate: a message that reads "failed to X: cause" and
//! whether the user must change something (an invalid request: exit 254) or the system or
//! its nodes failed (exit 255).

use std::fmt::Display;

/// What went wrong deploying, driving or probing a system.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Error {
    msg: String,
    invalid: bool,
}

/// `Result` with the systems [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The system, a node or the harness failed (exit 255).
    pub fn msg(msg: impl Into<String>) -> Self {
        Error {
            msg: msg.into(),
            invalid: false,
        }
    }

    /// A request the user must change: a bad system file, a missing program (exit 254).
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error {
            msg: msg.into(),
            invalid: true,
        }
    }

    /// Whether the user must change the request (exit 254) rather than retry.
    pub fn is_invalid(&self) -> bool {
        self.invalid
    }

    /// This error as the cause of `ctx` ("ctx: cause"), keeping whether it is invalid.
    pub fn context(self, ctx: impl Display) -> Self {
        Error {
            msg: format!("{ctx}: {}", self.msg),
            invalid: self.invalid,
        }
    }
}

/// The message of `e` and of each error below it, joined with ": " (what `anyhow` prints
/// with `{:#}`), so no cause is lost when a foreign error becomes an [`Error`].
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let part = s.to_string();
        if !msg.ends_with(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        cur = s.source();
    }
    msg
}

macro_rules! from_errors {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::msg(chain(&e))
            }
        }
    )*};
}

from_errors!(
    control::Error,
    nemesis::Error,
    std::io::Error,
    serde_json::Error,
    toml::de::Error,
    history::ReadError,
    crate::proto::error::WireError,
);

/// `anyhow::Context` for the systems [`Error`]: wrap a failure, or a missing value, with
/// what was being done.
pub trait Context<T> {
    /// Wraps the error (or `None`) with `ctx`.
    fn context(self, ctx: impl Display) -> Result<T>;
    /// Wraps the error (or `None`) with the message `f` makes, made only on failure.
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, ctx: impl Display) -> Result<T> {
        self.map_err(|e| e.into().context(ctx))
    }
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, ctx: impl Display) -> Result<T> {
        self.ok_or_else(|| Error::msg(ctx.to_string()))
    }
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.ok_or_else(|| Error::msg(f().to_string()))
    }
}

/// `return Err(Error::msg(format!(...)))`.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error::msg(format!($($arg)*)))
    };
}
pub(crate) use bail;

/// `Error::msg(format!(...))`.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::Error::msg(format!($($arg)*))
    };
}
pub(crate) use err;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_foreign_error_keeps_its_causes_and_context_keeps_invalidity() {
        let e = Error::from(std::io::Error::other("disk full")).context("failed to write x");
        assert_eq!(e.to_string(), "failed to write x: disk full");
        assert!(!e.is_invalid());
        assert_eq!(
            chain(&Outer(std::io::Error::other("inner"))),
            "outer: inner"
        );
        let e = Error::invalid("no such program").context("n1");
        assert!(e.is_invalid());
        assert_eq!(e.to_string(), "n1: no such program");
        let none: Option<u8> = None;
        assert_eq!(
            none.context("no node n9").unwrap_err().to_string(),
            "no node n9"
        );
    }
}
