//! The PostgreSQL client of the `postgres-patroni` system and of system files speaking
//! `postgres`: tokio-postgres (password authentication by SCRAM-SHA-256 or md5, TLS on rustls
//! with `sslmode=require` when the access has TLS), the simple-query protocol, rows as text.
//!
//! The record's distinction: a failure to connect, to set up TLS or to authenticate sent no
//! statement (`not_sent`: the op failed); once a statement was handed to the connection, a
//! broken connection or a timeout may have applied it; an error response is the server's
//! answer, with its SQLSTATE (a FATAL one also ends the connection).

use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::{WireError, chain, connect_kind};
use super::tls::{Access, host_of};

/// One PostgreSQL connection (its connection task ends when this is dropped).
pub struct PgConn {
    client: Client,
}

/// Rows of text columns (NULL as `None`).
pub type Rows = Vec<Vec<Option<String>>>;

impl PgConn {
    /// Connects as `postgres` to the database `postgres`, plain and without a password.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<PgConn, WireError> {
        Self::connect_as(addr, "postgres", "postgres", &Access::plain(), timeout).await
    }

    /// Connects as `user` to `database` with `access`'s TLS and password.
    pub async fn connect_as(
        addr: &str,
        user: &str,
        database: &str,
        access: &Access,
        timeout: Duration,
    ) -> Result<PgConn, WireError> {
        let (host, port) = match addr.rsplit_once(':') {
            Some((_, p)) => (host_of(addr), p.parse::<u16>().ok()),
            None => (addr, None),
        };
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(host)
            .port(port.unwrap_or(5432))
            .user(user)
            .dbname(database)
            .application_name("faultline")
            .connect_timeout(timeout);
        if let Some(pw) = &access.creds.password {
            cfg.password(pw);
        }
        let refused = |e: tokio_postgres::Error| {
            let why = match e.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => chain(&e),
            };
            let kind = match connect_kind(&why) {
                // 28000 invalid_authorization_specification, 28P01 invalid_password
                "connect" if why.starts_with("28") => "auth",
                k => k,
            };
            let short = format!("{kind}: {why}");
            tracing::debug!(addr, %why, "PostgreSQL refused the connection");
            WireError::not_sent(short).with_detail(format!("failed to connect to {addr}: {why}"))
        };
        tracing::debug!(addr, tls = access.tls.is_some(), "connecting to PostgreSQL");
        let connect = async {
            match &access.tls {
                Some(tls) => {
                    cfg.ssl_mode(SslMode::Require);
                    let (client, conn) = cfg
                        .connect(MakeRustlsConnect::new((*tls.config()).clone()))
                        .await
                        .map_err(refused)?;
                    tokio::spawn(conn);
                    Ok(client)
                }
                None => {
                    cfg.ssl_mode(SslMode::Disable);
                    let (client, conn) = cfg.connect(NoTls).await.map_err(refused)?;
                    tokio::spawn(conn);
                    Ok(client)
                }
            }
        };
        match tokio::time::timeout(timeout, connect).await {
            Err(_) => Err(WireError::not_sent("connect timeout").with_detail(format!(
                "failed to connect to {addr}: timed out after {timeout:?}"
            ))),
            Ok(r) => r.map(|client| PgConn { client }),
        }
    }

    /// Runs `sql`; returns the rows (text columns, NULL as `None`) of its last statement.
    pub async fn query(&mut self, sql: &str, timeout: Duration) -> Result<Rows, WireError> {
        self.query_tagged(sql, timeout).await.map(|(rows, _)| rows)
    }

    /// Runs `sql`; returns the rows of its last statement and how many rows that statement
    /// changed or returned, as text (the count of the command tag: `UPDATE 0` is `0`).
    pub async fn query_tagged(
        &mut self,
        sql: &str,
        timeout: Duration,
    ) -> Result<(Rows, String), WireError> {
        let answer = match tokio::time::timeout(timeout, self.client.simple_query(sql)).await {
            Err(_) => return Err(WireError::may_have_applied("timeout")),
            Ok(r) => r.map_err(|e| failed(&e))?,
        };
        let (mut rows, mut tag) = (Vec::new(), String::new());
        for m in answer {
            match m {
                SimpleQueryMessage::RowDescription(_) => rows.clear(),
                SimpleQueryMessage::Row(r) => {
                    rows.push((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect());
                }
                SimpleQueryMessage::CommandComplete(n) => tag = n.to_string(),
                _ => {}
            }
        }
        Ok((rows, tag))
    }
}

/// A statement that failed after it was handed to the connection: the server's error, or
/// a broken exchange that may have applied it.
fn failed(e: &tokio_postgres::Error) -> WireError {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code().to_owned();
            let fatal = matches!(db.severity(), "FATAL" | "PANIC");
            let mut w = WireError::answered(
                Some(code.clone()),
                format!("{code}: {}", db.message()),
                fatal,
            );
            w.broken |= e.is_closed();
            w
        }
        None => WireError::may_have_applied(format!("io: {}", chain(e))),
    }
}
