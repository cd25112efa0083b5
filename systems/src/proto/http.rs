//! The HTTP client of etcd's v3 JSON gateway, Patroni's REST API and system files speaking
//! `http`: reqwest on rustls, one [`HttpClient`] per system with keep-alive connections
//! reused per node, TLS (a CA, a client certificate) and basic or bearer authentication from
//! an [`Access`]. Also standard base64, which the gateway's `bytes` fields are.
//!
//! What an op's record needs survives the pool: a request that failed to connect (refused,
//! timed out, a TLS handshake refused) was never sent (`fail`); hyper resends a request
//! only when the pooled connection closed before any of it was written; any other failure
//! may have reached the server (`info` for writes).

use std::time::Duration;

use serde_json::Value as Json;

use super::error::{WireError, chain, connect_kind};
use super::tls::Access;

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

/// An HTTP client of one system's nodes; cheap to clone (clones share the pool).
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
    scheme: &'static str,
    basic: Option<(String, String)>,
    bearer: Option<String>,
}

impl HttpClient {
    /// A client that connects within `connect_timeout`, with `access`'s TLS (`https`) and
    /// credentials (basic with a user and password, bearer with a token).
    pub fn new(access: &Access, connect_timeout: Duration) -> Result<HttpClient, String> {
        super::tls::install_default_provider();
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none());
        let scheme = match &access.tls {
            Some(t) => {
                b = b.tls_backend_preconfigured((*t.config()).clone());
                "https"
            }
            None => "http",
        };
        let inner = b
            .build()
            .map_err(|e| format!("failed to build the HTTP client: {}", chain(&e)))?;
        let c = &access.creds;
        let basic = match (&c.user, &c.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (None, Some(p)) => Some((String::new(), p.clone())),
            _ => None,
        };
        Ok(HttpClient {
            inner,
            scheme,
            basic,
            bearer: c.token.clone(),
        })
    }

    /// Plain HTTP, no credentials.
    pub fn plain(connect_timeout: Duration) -> HttpClient {
        HttpClient::new(&Access::plain(), connect_timeout).expect("a plain client builds")
    }

    /// One request to `addr` (`host:port`) within `timeout` (`Content-Type:
    /// application/json` when there is a body).
    pub async fn request(
        &self,
        method: &str,
        addr: &str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Response, WireError> {
        let url = format!("{}://{addr}{path}", self.scheme);
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| WireError::not_sent(format!("bad HTTP method {method:?}")))?;
        let mut req = self.inner.request(m, &url).timeout(timeout);
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        if let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(t);
        }
        let failed = |e: reqwest::Error| {
            let why = chain(&e);
            if e.is_connect() || e.is_builder() {
                let short = format!("{}: {why}", connect_kind(&why));
                WireError::not_sent(short).with_detail(format!("failed to connect to {url}: {why}"))
            } else if e.is_timeout() {
                WireError::may_have_applied("timeout")
                    .with_detail(format!("no answer from {url} within {timeout:?}"))
            } else {
                WireError::may_have_applied(format!("io: {why}"))
                    .with_detail(format!("failed to talk to {url}: {why}"))
            }
        };
        let r = req.send().await.map_err(failed)?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(failed)?;
        Ok(Response {
            status,
            body: body.to_vec(),
        })
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
    use crate::proto::tls::Credentials;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A keep-alive HTTP/1.1 server on loopback that answers every request with its
    /// `Authorization` header, chunked; counts the connections it accepted.
    async fn echo_auth_server() -> (String, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let conns = Arc::new(AtomicUsize::new(0));
        let counted = conns.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        let auth = head
                            .lines()
                            .find_map(|l| l.strip_prefix("authorization: "))
                            .unwrap_or("none")
                            .to_owned();
                        let body = format!("{{\"auth\":\"{auth}\"}}");
                        let (a, b) = body.split_at(body.len() / 2);
                        let r = format!(
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                            a.len(),
                            b.len()
                        );
                        if s.write_all(r.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, conns)
    }

    #[tokio::test]
    async fn keeps_connections_alive_reads_chunks_and_sends_credentials() {
        let (addr, conns) = echo_auth_server().await;
        let t = Duration::from_secs(5);
        let basic = Access {
            tls: None,
            creds: Credentials {
                user: Some("app".into()),
                password: Some("pw".into()),
                token: None,
            },
        };
        let c = HttpClient::new(&basic, t).unwrap();
        for _ in 0..5 {
            let r = c.request("GET", &addr, "/", None, t).await.unwrap();
            // base64("app:pw")
            assert_eq!(r.json(), serde_json::json!({"auth": "Basic YXBwOnB3"}));
        }
        assert_eq!(
            conns.load(Ordering::SeqCst),
            1,
            "one connection for five requests"
        );
        let bearer = Access {
            tls: None,
            creds: Credentials {
                token: Some("tok".into()),
                ..Credentials::default()
            },
        };
        let r = HttpClient::new(&bearer, t)
            .unwrap()
            .request("POST", &addr, "/", Some(b"{}"), t)
            .await
            .unwrap();
        assert_eq!(r.json(), serde_json::json!({"auth": "Bearer tok"}));
        let r = HttpClient::plain(t)
            .request("GET", &addr, "/", None, t)
            .await
            .unwrap();
        assert_eq!(r.json(), serde_json::json!({"auth": "none"}));
    }

    #[tokio::test]
    async fn a_refused_connect_was_not_sent() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let e = HttpClient::plain(Duration::from_secs(1))
            .request("POST", &addr, "/", Some(b"{}"), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(!e.sent(), "{e:?}");
        assert!(e.msg.starts_with("connect:"), "{e:?}");
    }

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "set/17", "r0"] {
            assert_eq!(unb64(&b64(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64(b"set/"), "c2V0Lw==");
    }
}
