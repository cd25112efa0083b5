//! Client protocols spoken by hand (no driver crates: no TLS, protoc or gRPC stack), shared by
//! the built-in systems and by system files.
//!
//! - [`http`]: HTTP/1.1 requests and base64 (etcd's v3 JSON gateway, Patroni's REST API).
//! - [`pgwire`]: the PostgreSQL simple-query protocol.

pub mod http;
pub mod pgwire;
