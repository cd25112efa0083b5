//! RESP (Redis serialization protocol) subset: incremental command parsing (arrays of bulk
//! strings and inline commands, so pipelining works) and reply encoding.

use bytes::{Buf, Bytes, BytesMut};

use crate::Error;

/// A reply to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Bytes>),
    Array(Vec<Reply>),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }
    pub fn err(s: impl Into<String>) -> Reply {
        Reply::Error(s.into())
    }
    pub fn bulk(s: impl Into<Bytes>) -> Reply {
        Reply::Bulk(Some(s.into()))
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => {
                out.push(b'+');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(s) => {
                out.push(b'-');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Int(i) => {
                out.push(b':');
                out.extend_from_slice(i.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                out.push(b'$');
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(v) => {
                out.push(b'*');
                out.extend_from_slice(v.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for r in v {
                    r.encode(out);
                }
            }
        }
    }
}

const MAX_BULK: usize = 64 << 20;
const MAX_ARGS: usize = 1 << 20;

fn find_crlf(b: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

fn parse_int(b: &[u8]) -> Result<i64, Error> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Protocol(format!("bad integer {:?}", String::from_utf8_lossy(b))))
}

/// Parse one command from the front of `buf`; `Ok(None)` if more bytes are needed.
pub fn parse_command(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, Error> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        // Inline command: words separated by spaces, ended by \n.
        let Some(nl) = buf.iter().position(|&c| c == b'\n') else {
            if buf.len() > MAX_BULK {
                return Err(Error::Protocol("inline command too long".into()));
            }
            return Ok(None);
        };
        let line = buf.split_to(nl + 1).freeze();
        let text = line.slice(..nl);
        let words: Vec<Bytes> = text
            .split(|&c| c == b' ' || c == b'\r' || c == b'\t')
            .filter(|w| !w.is_empty())
            .map(|w| text.slice_ref(w))
            .collect();
        return Ok(Some(words));
    }
    let Some(end) = find_crlf(buf, 1) else {
        return Ok(None);
    };
    let n = parse_int(&buf[1..end])?;
    if n < 0 || n as usize > MAX_ARGS {
        return Err(Error::Protocol(format!("bad array length {n}")));
    }
    // First pass: check that the whole command is there, without consuming.
    let mut pos = end + 2;
    let mut spans = Vec::with_capacity(n as usize);
    for _ in 0..n {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return Err(Error::Protocol("expected bulk string".into()));
        }
        let Some(e) = find_crlf(buf, pos + 1) else {
            return Ok(None);
        };
        let len = parse_int(&buf[pos + 1..e])?;
        if len < 0 || len as usize > MAX_BULK {
            return Err(Error::Protocol(format!("bad bulk length {len}")));
        }
        let start = e + 2;
        let stop = start + len as usize;
        if stop + 2 > buf.len() {
            return Ok(None);
        }
        spans.push((start, stop));
        pos = stop + 2;
    }
    let frame = buf.split_to(pos).freeze();
    Ok(Some(
        spans.into_iter().map(|(a, b)| frame.slice(a..b)).collect(),
    ))
}

/// Parse one reply from the front of `buf` (used by the test/bench client).
pub fn parse_reply(buf: &mut BytesMut) -> Result<Option<Reply>, Error> {
    fn go(b: &[u8], pos: usize) -> Result<Option<(Reply, usize)>, Error> {
        if pos >= b.len() {
            return Ok(None);
        }
        let Some(e) = find_crlf(b, pos + 1) else {
            return Ok(None);
        };
        let line = &b[pos + 1..e];
        let next = e + 2;
        let text = || String::from_utf8_lossy(line).into_owned();
        Ok(Some(match b[pos] {
            b'+' => (Reply::Simple(text()), next),
            b'-' => (Reply::Error(text()), next),
            b':' => (Reply::Int(parse_int(line)?), next),
            b'$' => {
                let n = parse_int(line)?;
                if n < 0 {
                    (Reply::Bulk(None), next)
                } else {
                    let stop = next + n as usize;
                    if stop + 2 > b.len() {
                        return Ok(None);
                    }
                    (
                        Reply::Bulk(Some(Bytes::copy_from_slice(&b[next..stop]))),
                        stop + 2,
                    )
                }
            }
            b'*' => {
                let n = parse_int(line)?;
                let mut v = Vec::new();
                let mut p = next;
                for _ in 0..n.max(0) {
                    match go(b, p)? {
                        Some((r, q)) => {
                            v.push(r);
                            p = q;
                        }
                        None => return Ok(None),
                    }
                }
                (Reply::Array(v), p)
            }
            c => return Err(Error::Protocol(format!("unexpected reply byte {c:#x}"))),
        }))
    }
    match go(buf, 0)? {
        Some((r, n)) => {
            buf.advance(n);
            Ok(Some(r))
        }
        None => Ok(None),
    }
}

/// Encode a command as a RESP array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pipelined_and_partial_commands() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", b"v"]);
        encode_command(&mut out, &[b"GET", b"k"]);
        out.extend_from_slice(b"PING\r\n");
        let mut buf = BytesMut::from(&out[..out.len() - 3]);
        assert_eq!(parse_command(&mut buf).unwrap().unwrap().len(), 3);
        assert_eq!(parse_command(&mut buf).unwrap().unwrap()[1].as_ref(), b"k");
        assert!(parse_command(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&out[out.len() - 3..]);
        assert_eq!(
            parse_command(&mut buf).unwrap().unwrap()[0].as_ref(),
            b"PING"
        );
    }

    #[test]
    fn replies_roundtrip() {
        let r = Reply::Array(vec![
            Reply::bulk("leader"),
            Reply::Int(3),
            Reply::Bulk(None),
            Reply::err("X y"),
        ]);
        let mut out = Vec::new();
        r.encode(&mut out);
        let mut buf = BytesMut::from(&out[..]);
        assert_eq!(parse_reply(&mut buf).unwrap(), Some(r));
        assert!(buf.is_empty());
    }
}
