//! The `[client]` section: the protocol, one template per workload op, sessions,
//! transactions and what each error means.

use serde::Deserialize;

use crate::proto::tls::{Secret, TlsSpec};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// `resp` (Redis protocol), `postgres` (PostgreSQL wire protocol) or `http` (HTTP/JSON).
    pub protocol: String,
    /// Default: the top-level `port`.
    pub port: Option<u16>,
    /// The user: postgres (default `postgres`), RESP (an ACL user, with `password`), http
    /// (basic authentication, with `password`).
    pub user: Option<String>,
    /// The password (RESP `AUTH`, http basic): `"text"`, `{ env = "VAR" }` or
    /// `{ file = "path" }`; never written to the run directory.
    pub password: Option<Secret>,
    /// http: a bearer token, given like `password`.
    pub token: Option<Secret>,
    /// TLS: `{ ca = "ca.pem", cert = "client.pem", key = "client.key", verify = true }`
    /// (paths relative to this file). Without it the client speaks plain TCP, unless
    /// `[generate] tls` is on.
    pub tls: Option<TlsSpec>,
    /// postgres: the database (default `postgres`).
    pub database: Option<String>,
    /// Where ops without a fixed node go: `redirects` or `any` (default: the node the client
    /// settled on, moved by `redirect` rules and connection errors), `leader` (only the node
    /// the leader probe sees lead; none known: the op is not sent and fails; for systems
    /// whose followers answer stale reads) or `followers` (any node but the leader).
    #[serde(default)]
    pub route: Option<String>,
    /// resp: sessions, for reads from followers that see the client's own writes (DDIA's
    /// read-after-write by log position): `wrap` is put before every op's command with
    /// `{session}` the client's position (the highest it has seen, 0 at first), and the
    /// answer is `[position, reply]`.
    #[serde(default)]
    pub session: Option<SessionSpec>,
    /// resp: transactions of several micro-ops (list-append): `begin`, then each micro-op's
    /// command (`append`, `read_list`), then `commit`, whose answer is an array of their
    /// replies (Redis's and leaderkv's `MULTI` ... `EXEC`). Without it, transactions are
    /// single micro-ops.
    #[serde(default)]
    pub transactions: Option<TransactionSpec>,
    #[serde(default)]
    pub ops: Ops,
    /// Outcome rules for error replies, first match wins; an unmatched error is `info`.
    #[serde(default)]
    pub outcome: Vec<Rule>,
}

/// `[client.session]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// The words before each op's command, e.g. `["SESSION", "{session}"]`.
    pub wrap: Vec<String>,
}

/// `[client.transactions]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionSpec {
    /// The command that opens a transaction, e.g. `["MULTI"]`.
    pub begin: Vec<String>,
    /// The command that runs it, e.g. `["EXEC"]`.
    pub commit: Vec<String>,
}

/// The template of each workload op, in the protocol's form ([`OpTemplate`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ops {
    /// set workload: add `{value}`.
    pub add: Option<toml::Value>,
    /// set workload: read every element (integers).
    pub read_set: Option<toml::Value>,
    /// unique-ids workload: a new id (an integer).
    pub incr: Option<toml::Value>,
    /// register workload: read `{key}` (none: nil).
    pub read: Option<toml::Value>,
    /// register workload: write `{value}` to `{key}`.
    pub write: Option<toml::Value>,
    /// register workload: `{key}` from `{old}` to `{new}`.
    pub cas: Option<toml::Value>,
    /// list-append workload: append `{value}` to the list at `{key}`.
    pub append: Option<toml::Value>,
    /// list-append workload: the whole list at `{key}` (integers, oldest first).
    pub read_list: Option<toml::Value>,
    /// Every run, at the end: this node's whole state as key/fingerprint pairs (RESP: a flat
    /// array `[key, hash, ...]`; postgres: rows of key and hash), or one fingerprint of it
    /// all. Read on every node once they have caught up; nodes that differ have diverged.
    pub digest: Option<toml::Value>,
}

/// What an error means. A rule matches when every condition it gives holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The error text starts with this; `""` matches every error. RESP: the error reply
    /// without its `-`; postgres: `SQLSTATE: message`; http: the JSON body's `error` or
    /// `message` string, else the body's text.
    pub error_prefix: Option<String>,
    /// http: the status (`503`) or class (`"5xx"`) of a non-2xx answer.
    pub status: Option<toml::Value>,
    /// `fail` (it certainly did not happen) or `info` (it may have).
    pub outcome: String,
    /// Where the client sends its next op: `stay` (default), `next` node, or `follow` the
    /// node named by the error's second word.
    #[serde(default)]
    pub redirect: Option<String>,
    /// Only for these ops (default: all).
    #[serde(default)]
    pub ops: Vec<String>,
}

/// Op names of `[client.ops]`, the workload that needs them, and their placeholders (each
/// also as `{NAME_b64}`, base64 of its text, for etcd-like JSON APIs).
pub const OPS: &[(&str, &str, &[&str])] = &[
    ("add", "set", &["value", "value_b64"]),
    ("read_set", "set", &[]),
    ("incr", "unique-ids", &[]),
    ("read", "register", &["key", "key_b64"]),
    (
        "write",
        "register",
        &["key", "key_b64", "value", "value_b64"],
    ),
    (
        "cas",
        "register",
        &["key", "key_b64", "old", "old_b64", "new", "new_b64"],
    ),
    (
        "append",
        "list-append",
        &["key", "key_b64", "value", "value_b64"],
    ),
    ("read_list", "list-append", &["key", "key_b64"]),
    // No workload needs it: when defined, every run reads it from every node at the end.
    ("digest", "final-state", &[]),
];
