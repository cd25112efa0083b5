//! The PostgreSQL wire protocol (v3), simple-query flow only, trust authentication, no TLS:
//! enough to run SQL text and read rows as text. Shared by the built-in `postgres-patroni`
//! system and by system files speaking `postgres`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{Delivery, WireError};

/// One PostgreSQL connection speaking the simple-query protocol (trust auth).
pub struct PgConn {
    stream: TcpStream,
}

impl PgConn {
    /// Connects as `postgres` to the database `postgres`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<PgConn, WireError> {
        Self::connect_as(addr, "postgres", "postgres", timeout).await
    }

    /// Connects as `user` to `database`; the server must trust the client (no password).
    pub async fn connect_as(
        addr: &str,
        user: &str,
        database: &str,
        timeout: Duration,
    ) -> Result<PgConn, WireError> {
        let fut = async {
            let mut stream = TcpStream::connect(addr)
                .await
                .map_err(|e| WireError::not_sent(format!("connect: {}", e.kind())))?;
            let _ = stream.set_nodelay(true);
            let mut body = Vec::new();
            body.extend_from_slice(&196608u32.to_be_bytes());
            for (k, v) in [("user", user), ("database", database)] {
                body.extend_from_slice(k.as_bytes());
                body.push(0);
                body.extend_from_slice(v.as_bytes());
                body.push(0);
            }
            body.push(0);
            let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
            msg.extend_from_slice(&body);
            stream
                .write_all(&msg)
                .await
                .map_err(|e| WireError::not_sent(format!("startup: {}", e.kind())))?;
            let mut c = PgConn { stream };
            loop {
                let (t, payload) = c.read_msg(false).await?;
                match t {
                    b'R' if payload.get(..4) == Some(&[0, 0, 0, 0]) => {}
                    b'R' => {
                        return Err(WireError::not_sent(
                            "the server asks for a password (only trust authentication is supported)",
                        ));
                    }
                    b'E' => {
                        // At startup no query was sent: nothing was done, whatever the code.
                        let mut e = error_response(&payload);
                        e.delivery = Delivery::NotSent;
                        return Err(e);
                    }
                    b'Z' => return Ok(c),
                    _ => {}
                }
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(WireError::not_sent("connect timeout")),
            Ok(r) => r,
        }
    }

    async fn read_msg(&mut self, sent: bool) -> Result<(u8, Vec<u8>), WireError> {
        let mut head = [0u8; 5];
        self.stream
            .read_exact(&mut head)
            .await
            .map_err(|e| io(sent, format!("io: {}", e.kind())))?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len.saturating_sub(4)];
        self.stream
            .read_exact(&mut payload)
            .await
            .map_err(|e| io(sent, format!("io: {}", e.kind())))?;
        Ok((head[0], payload))
    }

    /// Runs `sql`; returns the rows (text columns, NULL as `None`) of its last statement.
    pub async fn query(
        &mut self,
        sql: &str,
        timeout: Duration,
    ) -> Result<Vec<Vec<Option<String>>>, WireError> {
        self.query_tagged(sql, timeout).await.map(|(rows, _)| rows)
    }

    /// Runs `sql`; returns the rows of its last statement and that statement's command tag
    /// (`UPDATE 1`, `INSERT 0 1`, `SELECT 3`).
    pub async fn query_tagged(
        &mut self,
        sql: &str,
        timeout: Duration,
    ) -> Result<(Vec<Vec<Option<String>>>, String), WireError> {
        let fut = async {
            let mut msg = vec![b'Q'];
            msg.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
            msg.extend_from_slice(sql.as_bytes());
            msg.push(0);
            self.stream
                .write_all(&msg)
                .await
                .map_err(|e| WireError::may_have_applied(format!("io: {}", e.kind())))?;
            let mut rows = Vec::new();
            let mut tag = String::new();
            let mut err: Option<WireError> = None;
            loop {
                let (t, p) = match self.read_msg(true).await {
                    Ok(m) => m,
                    // A FATAL error response is followed by the server closing the connection:
                    // report the server's error, not the EOF.
                    Err(e) => {
                        return Err(err.map_or(e, |mut err| {
                            err.broken = true;
                            err
                        }));
                    }
                };
                match t {
                    b'T' => rows.clear(),
                    b'D' => rows.push(data_row(&p)),
                    b'C' => {
                        tag = String::from_utf8_lossy(p.strip_suffix(&[0]).unwrap_or(&p))
                            .into_owned();
                    }
                    b'E' => err = Some(error_response(&p)),
                    b'Z' => return err.map_or(Ok((rows, tag)), Err),
                    _ => {}
                }
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(WireError::may_have_applied("timeout")),
            Ok(r) => r,
        }
    }
}

fn data_row(p: &[u8]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    if p.len() < 2 {
        return out;
    }
    let n = u16::from_be_bytes([p[0], p[1]]) as usize;
    let mut i = 2;
    for _ in 0..n {
        let Some(len) = p.get(i..i + 4) else { break };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        i += 4;
        if len < 0 {
            out.push(None);
        } else {
            let end = (i + len as usize).min(p.len());
            out.push(Some(String::from_utf8_lossy(&p[i..end]).into_owned()));
            i = end;
        }
    }
    out
}

/// A failed read or write: before the query was sent nothing was done; after, maybe.
fn io(sent: bool, msg: String) -> WireError {
    if sent {
        WireError::may_have_applied(msg)
    } else {
        WireError::not_sent(msg)
    }
}

fn error_response(p: &[u8]) -> WireError {
    let (mut code, mut msg, mut fatal) = (None, String::new(), false);
    for field in p.split(|&b| b == 0) {
        match field.first() {
            Some(b'C') => code = Some(String::from_utf8_lossy(&field[1..]).into_owned()),
            Some(b'M') => msg = String::from_utf8_lossy(&field[1..]).into_owned(),
            // `V` is the untranslated severity (PostgreSQL 9.6+), `S` the localized one.
            Some(b'V' | b'S') => fatal |= matches!(&field[1..], b"FATAL" | b"PANIC"),
            _ => {}
        }
    }
    WireError::answered(
        code.clone(),
        format!("{}: {msg}", code.as_deref().unwrap_or("?")),
        fatal,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_and_rows() {
        let e = error_response(
            b"SERROR\0VERROR\0C25006\0Mcannot execute INSERT in a read-only transaction\0\0",
        );
        assert_eq!(e.code.as_deref(), Some("25006"));
        assert_eq!(
            e.msg,
            "25006: cannot execute INSERT in a read-only transaction"
        );
        assert!(e.sent() && !e.broken);
        let e = error_response(b"SFATAL\0VFATAL\0C57P01\0Mterminating\0\0");
        assert!(e.broken);
        // Two columns: "17" and NULL.
        let row = [0, 2, 0, 0, 0, 2, b'1', b'7', 0xff, 0xff, 0xff, 0xff];
        assert_eq!(data_row(&row), [Some("17".to_string()), None]);
    }
}
