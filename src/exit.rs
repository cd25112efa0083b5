//! Exit codes, as Jepsen's: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 harness error.

/// The history (or run) was checked and found valid.
pub const VALID: u8 = 0;
/// Anomalies were found.
pub const INVALID: u8 = 1;
/// The checkers could not decide (time budget, missing data).
pub const UNKNOWN: u8 = 2;
/// Bad command line, bad input file, missing prerequisite the user must fix.
pub const BAD_ARGS: u8 = 254;
/// The harness itself failed.
pub const HARNESS: u8 = 255;

/// An error the user caused (bad flag, malformed file, missing tool): exit 254, not 255.
#[derive(Debug)]
pub struct UserError(pub String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Shorthand: `return Err(user_error(format!(...)))`.
pub fn user_error(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}

/// Maps a control error to anyhow, marking the user's errors (missing tool, bad option) for 254.
pub fn control_err(e: control::Error) -> anyhow::Error {
    if e.is_user_error() {
        user_error(e.to_string())
    } else {
        anyhow::Error::new(e)
    }
}

/// Maps an error chain to an exit code: a [`UserError`] or an invalid [`systems::Error`]
/// anywhere in it means 254.
pub fn code_for(err: &anyhow::Error) -> u8 {
    let invalid = |e: &(dyn std::error::Error + 'static)| {
        e.downcast_ref::<UserError>().is_some()
            || e.downcast_ref::<systems::Error>()
                .is_some_and(systems::Error::is_invalid)
    };
    if err.chain().any(invalid) {
        BAD_ARGS
    } else {
        HARNESS
    }
}

/// The exit code for a verdict.
pub fn for_validity(v: history::Validity) -> u8 {
    match v {
        history::Validity::Valid => VALID,
        history::Validity::Invalid => INVALID,
        history::Validity::Unknown => UNKNOWN,
    }
}
