//! The one error of every wire client (RESP, HTTP, PostgreSQL): where the request got to,
//! which is what an op's record needs (`fail`: certainly not done; `info`: maybe done), the
//! short text for the history, and what the server said when it answered.

/// Where a failed exchange left the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// It never left this machine (refused or timed-out connect): nothing was done.
    NotSent,
    /// It may have reached the server, and no answer came (reset, timeout, a garbled reply):
    /// it may have applied.
    MayHaveApplied,
    /// The server answered with an error ([`WireError::code`]): what that means for the op
    /// is the protocol's and the caller's to say (a PostgreSQL error aborts the statement; a
    /// failed COMMIT may or may not have committed).
    Answered,
}

/// A failed exchange with a server.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{detail}")]
pub struct WireError {
    pub delivery: Delivery,
    /// Short, for the history's `error` field: `connect: ConnectionRefused`, `timeout`,
    /// `42P01: relation "s" does not exist`.
    pub msg: String,
    /// Long, for logs and error lines: with the address.
    pub detail: String,
    /// The server's error code when it answered (a SQLSTATE).
    pub code: Option<String>,
    /// The HTTP status when the server answered with one.
    pub status: Option<u16>,
    /// The connection cannot be used again.
    pub broken: bool,
}

impl WireError {
    /// The request never left.
    pub fn not_sent(msg: impl Into<String>) -> Self {
        Self::new(Delivery::NotSent, msg.into())
    }

    /// The exchange broke after the request may have reached the server.
    pub fn may_have_applied(msg: impl Into<String>) -> Self {
        Self::new(Delivery::MayHaveApplied, msg.into())
    }

    /// With the long text `detail` (the address, the cause) for logs and error lines.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The server answered with the error `code`: `msg`.
    pub fn answered(code: Option<String>, msg: impl Into<String>, broken: bool) -> Self {
        let msg = msg.into();
        WireError {
            delivery: Delivery::Answered,
            detail: msg.clone(),
            msg,
            code,
            status: None,
            broken,
        }
    }

    fn new(delivery: Delivery, msg: String) -> Self {
        WireError {
            delivery,
            detail: msg.clone(),
            msg,
            code: None,
            status: None,
            broken: true,
        }
    }

    /// With the HTTP `status` the server answered.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The server answered with an error (a code or a status) rather than the exchange
    /// failing.
    pub fn is_answer(&self) -> bool {
        self.code.is_some() || self.status.is_some()
    }

    /// The request may have reached the server (answered or not): a write may have taken
    /// effect unless the protocol says the answer rules it out.
    pub fn sent(&self) -> bool {
        self.delivery != Delivery::NotSent
    }
}

/// The short prefix of a failed connect, from its cause (the error chain as one line):
/// `tls` when the handshake is what failed (a certificate refused, a TLS alert), else
/// `connect`. Callers add what their protocol says on top (PostgreSQL's `auth`).
pub fn connect_kind(why: &str) -> &'static str {
    if why.contains("certificate") || why.contains("TLS") || why.contains("tls") {
        "tls"
    } else {
        "connect"
    }
}

/// An error and the causes beneath it, as one line (`a: b: c`, a cause its parent already
/// quotes left out).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_decides_what_an_op_may_have_done() {
        let e = WireError::not_sent("connect: ConnectionRefused")
            .with_detail("failed to connect to a:1");
        assert!(!e.sent() && e.broken);
        assert_eq!(e.to_string(), "failed to connect to a:1");
        assert_eq!(e.msg, "connect: ConnectionRefused");
        let e = WireError::may_have_applied("timeout");
        assert_eq!(e.to_string(), "timeout");
        assert!(e.sent() && e.delivery == Delivery::MayHaveApplied);
        let e = WireError::answered(Some("42P01".into()), "42P01: no table", false);
        assert!(e.sent() && e.delivery == Delivery::Answered && !e.broken);
        assert_eq!(e.to_string(), "42P01: no table");
    }
}
