//! A small async RESP2 connection: send one command, read one reply. Errors say whether the
//! request may have reached the server ([`WireError::sent`]): a refused or timed out connect
//! did not send anything, a reset or timeout after sending might have.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::error::WireError;
use super::tls::{Access, Io, host_of};

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    /// An error reply, without the leading `-`.
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Reply::Simple(s) => Some(s),
            Reply::Bulk(Some(b)) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            _ => self.as_str().and_then(|s| s.parse().ok()),
        }
    }
}

/// The errors of a RESP exchange: a refused or timed-out connect sent nothing; a reset, a
/// timeout or a garbled reply after sending may have applied.
fn connect_failed(addr: &str, source: std::io::Error) -> WireError {
    WireError::not_sent(format!("connect: {}", source.kind()))
        .with_detail(format!("failed to connect to {addr}: {source}"))
}

fn connect_timeout(addr: &str, after: Duration) -> WireError {
    WireError::not_sent("connect timeout").with_detail(format!(
        "failed to connect to {addr}: timed out after {after:?}"
    ))
}

fn io_failed(addr: &str, source: std::io::Error) -> WireError {
    WireError::may_have_applied(format!("io: {}", source.kind()))
        .with_detail(format!("failed to talk to {addr}: {source}"))
}

fn no_reply(addr: &str, after: Duration) -> WireError {
    WireError::may_have_applied("timeout")
        .with_detail(format!("no reply from {addr} within {after:?}"))
}

fn bad_reply(addr: &str, what: String) -> WireError {
    WireError::may_have_applied(format!("protocol: {what}"))
        .with_detail(format!("bad reply from {addr}: {what}"))
}

/// One connection, plain or TLS.
pub struct Conn {
    addr: String,
    /// Reads go through the buffer, writes straight to the stream.
    rd: BufReader<Box<dyn Io>>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("addr", &self.addr).finish()
    }
}

impl Conn {
    /// Connects within `timeout`, plain and without credentials.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Conn, WireError> {
        Self::connect_with(addr, &Access::plain(), timeout).await
    }

    /// Connects within `timeout`: TCP, the TLS handshake when `access` has TLS, then `AUTH`
    /// when it has a password (with the user too: an ACL user). A failure at any of these
    /// sent no command: it is `not_sent`, with a detail naming the cause (`WRONGPASS ...`,
    /// an unknown certificate issuer).
    pub async fn connect_with(
        addr: &str,
        access: &Access,
        timeout: Duration,
    ) -> Result<Conn, WireError> {
        let open = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|source| connect_failed(addr, source))?;
            let _ = stream.set_nodelay(true);
            let stream = access.wrap(host_of(addr), stream).await.map_err(|e| {
                WireError::not_sent(format!("tls: {e}"))
                    .with_detail(format!("failed to set up TLS with {addr}: {e}"))
            })?;
            let mut c = Conn {
                addr: addr.into(),
                rd: BufReader::with_capacity(64 * 1024, stream),
                buf: Vec::with_capacity(256),
            };
            if let Some(pw) = &access.creds.password {
                let mut args: Vec<&[u8]> = vec![b"AUTH"];
                if let Some(u) = &access.creds.user {
                    args.push(u.as_bytes());
                }
                args.push(pw.as_bytes());
                let refused = |why: String| {
                    WireError::not_sent(format!("auth: {why}"))
                        .with_detail(format!("failed to authenticate to {addr}: {why}"))
                };
                match c.call(&args, timeout).await {
                    Ok(Reply::Simple(_)) => {}
                    Ok(Reply::Error(e)) => return Err(refused(e)),
                    Ok(r) => return Err(refused(format!("unexpected reply {r:?}"))),
                    Err(e) => return Err(refused(e.to_string())),
                }
            }
            Ok(c)
        };
        match tokio::time::timeout(timeout, open).await {
            Err(_) => Err(connect_timeout(addr, timeout)),
            Ok(r) => r,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one command and reads its reply, within `timeout`. After an error the
    /// connection must be dropped (the stream may be out of step).
    pub async fn call(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Reply, WireError> {
        let mut replies = self.pipeline(&[args], timeout).await?;
        Ok(replies.pop().expect("one reply per command"))
    }

    /// Sends the commands in one write and reads their replies, in order, within `timeout`
    /// (a transaction's `MULTI` ... `EXEC` in one round trip). After an error the connection
    /// must be dropped.
    pub async fn pipeline(
        &mut self,
        cmds: &[&[&[u8]]],
        timeout: Duration,
    ) -> Result<Vec<Reply>, WireError> {
        self.buf.clear();
        for args in cmds {
            encode_more(&mut self.buf, args);
        }
        let addr = self.addr.clone();
        let fut = async {
            let wr = self.rd.get_mut();
            wr.write_all(&self.buf)
                .await
                .map_err(|source| io_failed(&addr, source))?;
            // A TLS stream holds what it encrypted until flushed.
            wr.flush()
                .await
                .map_err(|source| io_failed(&addr, source))?;
            let mut replies = Vec::with_capacity(cmds.len());
            for _ in cmds {
                replies.push(read_reply(&mut self.rd, &addr, 0).await?);
            }
            Ok(replies)
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(no_reply(&self.addr, timeout)),
        }
    }
}

/// Writes `args` as a RESP array of bulk strings into `buf` (cleared first).
pub fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.clear();
    encode_more(buf, args);
}

/// Appends `args` as a RESP array of bulk strings to `buf`.
fn encode_more(buf: &mut Vec<u8>, args: &[&[u8]]) {
    use std::io::Write;
    let _ = write!(buf, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(buf, "${}\r\n", a.len());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

const MAX_DEPTH: usize = 8;
const MAX_BULK: usize = 512 * 1024 * 1024;

fn read_reply<'a>(
    rd: &'a mut BufReader<Box<dyn Io>>,
    addr: &'a str,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, WireError>> + Send + 'a>> {
    Box::pin(async move {
        let io = |source| io_failed(addr, source);
        let proto = |what: String| bad_reply(addr, what);
        let mut line = Vec::with_capacity(64);
        let n = rd.read_until(b'\n', &mut line).await.map_err(io)?;
        if n == 0 {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            )));
        }
        if line.len() < 3 || !line.ends_with(b"\r\n") {
            return Err(proto(format!(
                "bad line {:?}",
                String::from_utf8_lossy(&line)
            )));
        }
        let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        let int = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| proto(format!("bad integer {s:?}")))
        };
        match line[0] {
            b'+' => Ok(Reply::Simple(body)),
            b'-' => Ok(Reply::Error(body)),
            b':' => Ok(Reply::Int(int(&body)?)),
            b'$' => {
                let len = int(&body)?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let len = len as usize;
                if len > MAX_BULK {
                    return Err(proto(format!("bulk of {len} bytes")));
                }
                let mut data = vec![0u8; len + 2];
                rd.read_exact(&mut data).await.map_err(io)?;
                data.truncate(len);
                Ok(Reply::Bulk(Some(data)))
            }
            b'*' => {
                let len = int(&body)?;
                if len < 0 {
                    return Ok(Reply::Array(None));
                }
                if depth >= MAX_DEPTH {
                    return Err(proto("arrays nested too deep".into()));
                }
                let mut items = Vec::with_capacity((len as usize).min(1 << 20));
                for _ in 0..len {
                    items.push(read_reply(rd, addr, depth + 1).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            other => Err(proto(format!("unknown reply type {:?}", other as char))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn round_trip_and_error_kinds() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"*3\r\n$1\r\n1\r\n$-1\r\n:5\r\n")
                .await
                .unwrap();
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"-MOVED n2 10.0.0.2:7000\r\n").await.unwrap();
            let _ = s.read(&mut buf).await.unwrap();
            // no reply: the client times out
            tokio::time::sleep(Duration::from_millis(500)).await;
        });
        let mut c = Conn::connect(&addr, Duration::from_secs(1)).await.unwrap();
        let r = c
            .call(&[b"SMEMBERS", b"s"], Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            r,
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"1".to_vec())),
                Reply::Bulk(None),
                Reply::Int(5)
            ]))
        );
        let r = c
            .call(&[b"SET", b"k", b"v"], Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(r, Reply::Error("MOVED n2 10.0.0.2:7000".into()));
        let e = c
            .call(&[b"GET", b"k"], Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(e.msg, "timeout");
        assert_eq!(e.delivery, crate::proto::error::Delivery::MayHaveApplied);
        server.await.unwrap();
        // Nothing listens there any more: refused before sending.
        let e = Conn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(!e.sent());
        assert!(e.to_string().starts_with("failed to connect to"), "{e}");
    }
}
