//! Client protocols spoken by hand (no driver crates: no TLS, protoc or gRPC stack), shared by
//! the built-in systems and by system files. Each client's error says whether the request
//! may have reached the server (`may_have_applied` / `sent`): the one thing an op's record
//! needs to be `fail` (certainly not done) or `info` (maybe done).
//!
//! - [`error`]: [`error::WireError`], the one error of every client, and its [`error::Delivery`].
//! - [`resp`]: a small async RESP (Redis protocol) connection.
//! - [`router`]: where a client's op goes (redirects, the probe's leader, read routes).
//! - [`resp_client`]: the leader-following RESP client (sessions, transactions).
//! - [`values`]: completion values from RESP replies.
//! - [`http`]: HTTP/1.1 requests and base64 (etcd's v3 JSON gateway, Patroni's REST API).
//! - [`pgwire`]: the PostgreSQL simple-query protocol.
//! - [`tls`]: TLS configurations, secrets and credentials, shared by every client.

pub mod error;
pub mod http;
pub mod pgwire;
pub mod resp;
pub mod resp_client;
pub mod router;
pub mod tls;
pub mod values;
