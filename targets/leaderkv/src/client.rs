//! A small RESP client with pipelining, for tests and the benchmark.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;
use crate::resp::{Reply, encode_command, parse_reply};

pub struct Client {
    sock: TcpStream,
    buf: BytesMut,
    timeout: Duration,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(what.to_string(), e)
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Result<Client, Error> {
        let sock = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
            .await
            .map_err(|_| {
                Error::Io(
                    format!("connect {addr}"),
                    std::io::ErrorKind::TimedOut.into(),
                )
            })?
            .map_err(io("connect"))?;
        let _ = sock.set_nodelay(true);
        Ok(Client {
            sock,
            buf: BytesMut::with_capacity(8192),
            timeout: Duration::from_secs(5),
        })
    }

    /// Send many commands at once and read all replies (in order).
    pub async fn pipeline(&mut self, cmds: &[Vec<&[u8]>]) -> Result<Vec<Reply>, Error> {
        let mut out = Vec::new();
        for c in cmds {
            encode_command(&mut out, c);
        }
        self.sock.write_all(&out).await.map_err(io("send"))?;
        let mut replies = Vec::with_capacity(cmds.len());
        while replies.len() < cmds.len() {
            if let Some(r) = parse_reply(&mut self.buf)? {
                replies.push(r);
                continue;
            }
            let n = tokio::time::timeout(self.timeout, self.sock.read_buf(&mut self.buf))
                .await
                .map_err(|_| Error::Io("read reply".into(), std::io::ErrorKind::TimedOut.into()))?
                .map_err(io("read reply"))?;
            if n == 0 {
                return Err(Error::Io(
                    "read reply".into(),
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
        }
        Ok(replies)
    }

    pub async fn cmd(&mut self, args: &[&str]) -> Result<Reply, Error> {
        let c: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        Ok(self.pipeline(&[c]).await?.remove(0))
    }
}

/// One command on a fresh connection.
pub async fn call(addr: SocketAddr, args: &[&str]) -> Result<Reply, Error> {
    Client::connect(addr).await?.cmd(args).await
}
