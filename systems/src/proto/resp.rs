//! A small async RESP2 connection: send one command, read one reply. Errors say whether the
//! request may have reached the server ([`RespError::may_have_applied`]): a refused or timed
//! out connect did not send anything, a reset or timeout after sending might have.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

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

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    /// Nothing was sent.
    #[error("failed to connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("failed to connect to {addr}: timed out after {after:?}")]
    ConnectTimeout { addr: String, after: Duration },
    /// The request may have been (partly) sent.
    #[error("failed to talk to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("no reply from {addr} within {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("bad reply from {addr}: {what}")]
    Protocol { addr: String, what: String },
}

impl RespError {
    /// False only when the request definitely never left this machine.
    pub fn may_have_applied(&self) -> bool {
        !matches!(
            self,
            RespError::Connect { .. } | RespError::ConnectTimeout { .. }
        )
    }

    /// A short text for the history's `error` field.
    pub fn short(&self) -> String {
        match self {
            RespError::Connect { source, .. } => format!("connect: {}", source.kind()),
            RespError::ConnectTimeout { .. } => "connect timeout".into(),
            RespError::Io { source, .. } => format!("io: {}", source.kind()),
            RespError::Timeout { .. } => "timeout".into(),
            RespError::Protocol { what, .. } => format!("protocol: {what}"),
        }
    }
}

/// One connection.
pub struct Conn {
    addr: String,
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("addr", &self.addr).finish()
    }
}

impl Conn {
    /// Connects within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Conn, RespError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(RespError::ConnectTimeout {
                    addr: addr.into(),
                    after: timeout,
                });
            }
            Ok(Err(source)) => {
                return Err(RespError::Connect {
                    addr: addr.into(),
                    source,
                });
            }
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        Ok(Conn {
            addr: addr.into(),
            rd: BufReader::with_capacity(64 * 1024, r),
            wr: w,
            buf: Vec::with_capacity(256),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one command and reads its reply, within `timeout`. After an error the
    /// connection must be dropped (the stream may be out of step).
    pub async fn call(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Reply, RespError> {
        encode(&mut self.buf, args);
        let addr = self.addr.clone();
        let fut = async {
            self.wr
                .write_all(&self.buf)
                .await
                .map_err(|source| RespError::Io {
                    addr: addr.clone(),
                    source,
                })?;
            read_reply(&mut self.rd, &addr, 0).await
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(RespError::Timeout {
                addr: self.addr.clone(),
                after: timeout,
            }),
        }
    }
}

/// Appends `args` as a RESP array of bulk strings.
pub fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
    use std::io::Write;
    buf.clear();
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
    rd: &'a mut BufReader<OwnedReadHalf>,
    addr: &'a str,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, RespError>> + Send + 'a>> {
    Box::pin(async move {
        let io = |source| RespError::Io {
            addr: addr.into(),
            source,
        };
        let proto = |what: String| RespError::Protocol {
            addr: addr.into(),
            what,
        };
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
        assert!(matches!(e, RespError::Timeout { .. }));
        assert!(e.may_have_applied());
        server.await.unwrap();
        // Nothing listens there any more: refused before sending.
        let e = Conn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(!e.may_have_applied());
    }
}
