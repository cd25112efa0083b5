//! A tiny HTTP/1.1 client (one connection per request, no TLS, plain or chunked bodies) and
//! standard base64, as etcd's v3 JSON gateway and Patroni's REST API need them. Shared by the
//! built-in `etcd` and `postgres-patroni` systems and by system files speaking `http`.

use std::time::Duration;

use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::WireError;

/// A whole HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON: `null` when empty, a JSON string of the text when it is not JSON.
    pub fn json(&self) -> Json {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            Json::Null
        } else {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&self.body).into_owned()))
        }
    }
}

/// POSTs `body` as JSON to `http://addr{path}` and returns the status and the parsed JSON
/// body, within `timeout`.
pub async fn post(
    addr: &str,
    path: &str,
    body: &Json,
    timeout: Duration,
) -> Result<(u16, Json), WireError> {
    let r = request(
        "POST",
        addr,
        path,
        Some(body.to_string().as_bytes()),
        timeout,
    )
    .await?;
    Ok((r.status, r.json()))
}

/// GETs `http://addr{path}` and returns the status and the parsed JSON body.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> Result<(u16, Json), WireError> {
    let r = request("GET", addr, path, None, timeout).await?;
    Ok((r.status, r.json()))
}

/// One request (`Content-Type: application/json` when there is a body, `Connection: close`)
/// within `timeout`. Errors before the request was written are `unsent`.
pub async fn request(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Response, WireError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(WireError::not_sent("connect timeout")),
        Ok(Err(e)) => return Err(WireError::not_sent(format!("connect: {}", e.kind()))),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let body = body.unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let exchange = async {
        stream
            .write_all(&req)
            .await
            .map_err(|e| WireError::may_have_applied(format!("io: {}", e.kind())))?;
        let mut buf = Vec::new();
        stream
            .read_to_end(&mut buf)
            .await
            .map_err(|e| WireError::may_have_applied(format!("io: {}", e.kind())))?;
        Ok::<_, WireError>(buf)
    };
    let buf = match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => return Err(WireError::may_have_applied("timeout")),
        Ok(r) => r?,
    };
    parse_response(&buf).map_err(WireError::may_have_applied)
}

/// Status and body of a whole HTTP/1.1 response (plain or chunked).
pub fn parse_response(buf: &[u8]) -> Result<Response, String> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("truncated response")?;
    let head = std::str::from_utf8(&buf[..split]).map_err(|_| "bad response head")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let raw = &buf[split + 4..];
    let body = if chunked { dechunk(raw)? } else { raw.to_vec() };
    Ok(Response { status, body })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size = std::str::from_utf8(&raw[..eol]).map_err(|_| "bad chunk size")?;
        let size = size.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| "bad chunk size")?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what etcd's gateway `bytes` fields are).
pub fn b64(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Decodes standard base64 (padding optional).
pub fn unb64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for ch in s.bytes().filter(|&b| b != b'=') {
        let v = B64.iter().position(|&x| x == ch)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "set/17", "r0"] {
            assert_eq!(unb64(&b64(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64(b"set/"), "c2V0Lw==");
    }

    #[test]
    fn responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"a\":\"1\"}";
        let r = parse_response(plain).unwrap();
        assert_eq!((r.status, r.json()), (200, json!({"a": "1"})));
        let chunked =
            b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n5\r\n:\"1\"}\r\n0\r\n\r\n";
        let r = parse_response(chunked).unwrap();
        assert_eq!((r.status, r.json()), (503, json!({"a": "1"})));
        let text = parse_response(b"HTTP/1.1 404 Not Found\r\n\r\nno such key").unwrap();
        assert_eq!(text.json(), json!("no such key"));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }
}
