use super::certs::Ca;
use super::*;
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn put(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.path().join(name), text).unwrap();
        name.to_owned()
    }
}

/// A one-connection TLS echo server for `ca`'s certificate of 127.0.0.1; with
/// `client_ca`, it demands a client certificate signed by it.
async fn server(ca: &Ca, client_ca: Option<&Ca>) -> std::net::SocketAddr {
    let pem = ca.issue("server", &["127.0.0.1".into()]).unwrap();
    let chain = CertificateDer::pem_slice_iter(pem.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).unwrap();
    let b = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = match client_ca {
        Some(c) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(c.pem.cert.as_bytes()).unwrap())
                .unwrap();
            b.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .unwrap(),
            )
        }
        None => b.with_no_client_auth(),
    };
    let cfg = b.with_single_cert(chain, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut t) = acceptor.accept(s).await {
                    let mut b = [0u8; 4];
                    if t.read_exact(&mut b).await.is_ok() {
                        let _ = t.write_all(&b).await;
                        let _ = t.flush().await;
                    }
                }
            });
        }
    });
    addr
}

async fn echo(tls: &Tls, addr: std::net::SocketAddr) -> Result<Vec<u8>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut t = tls
        .connect("127.0.0.1", tcp)
        .await
        .map_err(|e| e.to_string())?;
    t.write_all(b"ping").await.map_err(|e| e.to_string())?;
    let mut b = vec![0u8; 4];
    t.read_exact(&mut b).await.map_err(|e| e.to_string())?;
    Ok(b)
}

#[tokio::test]
async fn verifies_against_the_ca_and_refuses_a_stranger() {
    let (ca, other) = (Ca::new("test ca").unwrap(), Ca::new("other ca").unwrap());
    let f = Files::new();
    let addr = server(&ca, None).await;
    let good = TlsSpec {
        ca: Some(f.put("ca.pem", &ca.pem.cert)),
        ..TlsSpec::default()
    };
    let tls = Tls::load(
        &TlsSpec {
            verify: true,
            ..good
        },
        f.dir.path(),
    )
    .unwrap();
    assert_eq!(echo(&tls, addr).await.unwrap(), b"ping");
    let wrong = TlsSpec {
        ca: Some(f.put("other.pem", &other.pem.cert)),
        verify: true,
        ..TlsSpec::default()
    };
    let e = echo(&Tls::load(&wrong, f.dir.path()).unwrap(), addr)
        .await
        .unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // The certificate is for 127.0.0.1: another expected name is refused.
    let named = TlsSpec {
        ca: Some("ca.pem".into()),
        verify: true,
        server_name: Some("db.example".into()),
        ..TlsSpec::default()
    };
    let e = echo(&Tls::load(&named, f.dir.path()).unwrap(), addr)
        .await
        .unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");
    // verify = false: any certificate.
    let blind = TlsSpec {
        verify: false,
        ..TlsSpec::default()
    };
    assert_eq!(
        echo(&Tls::load(&blind, f.dir.path()).unwrap(), addr)
            .await
            .unwrap(),
        b"ping"
    );
}

#[tokio::test]
async fn presents_a_client_certificate_when_the_server_demands_one() {
    let ca = Ca::new("test ca").unwrap();
    let f = Files::new();
    let addr = server(&ca, Some(&ca)).await;
    let client = ca.issue("client", &[]).unwrap();
    let with = TlsSpec {
        ca: Some(f.put("ca.pem", &ca.pem.cert)),
        cert: Some(f.put("c.pem", &client.cert)),
        key: Some(f.put("c.key", &client.key)),
        verify: true,
        server_name: None,
    };
    assert_eq!(
        echo(&Tls::load(&with, f.dir.path()).unwrap(), addr)
            .await
            .unwrap(),
        b"ping"
    );
    let without = TlsSpec {
        cert: None,
        key: None,
        ..with.clone()
    };
    // TLS 1.3: the client learns of the refusal on its first read.
    assert!(
        echo(&Tls::load(&without, f.dir.path()).unwrap(), addr)
            .await
            .is_err()
    );
}

#[test]
fn bad_specs_say_what_to_fix() {
    let f = Files::new();
    let e = Tls::load(
        &TlsSpec {
            verify: true,
            ..TlsSpec::default()
        },
        f.dir.path(),
    )
    .unwrap_err();
    assert!(
        e.contains("give `ca`") && e.contains("verify = false"),
        "{e}"
    );
    let e = Tls::load(
        &TlsSpec {
            ca: Some("missing.pem".into()),
            verify: true,
            ..TlsSpec::default()
        },
        f.dir.path(),
    )
    .unwrap_err();
    assert!(
        e.starts_with("failed to read the CA file") && e.contains("missing.pem"),
        "{e}"
    );
    let e = Tls::load(
        &TlsSpec {
            ca: Some(f.put("junk.pem", "not pem")),
            verify: true,
            ..TlsSpec::default()
        },
        f.dir.path(),
    )
    .unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = Tls::load(
        &TlsSpec {
            cert: Some("c.pem".into()),
            verify: false,
            ..TlsSpec::default()
        },
        f.dir.path(),
    )
    .unwrap_err();
    assert!(e.contains("go together"), "{e}");
}

#[test]
fn secrets_are_read_but_never_shown() {
    let f = Files::new();
    f.put("pw", "s3cret-from-file\n");
    let lit: Secret = serde_json::from_str(r#""hunter2""#).unwrap();
    let file: Secret = serde_json::from_str(r#"{"file": "pw"}"#).unwrap();
    let env: Secret = serde_json::from_str(r#"{"env": "FAULTLINE_TEST_NO_SUCH_VAR"}"#).unwrap();
    assert_eq!(lit.reveal(f.dir.path()).unwrap(), "hunter2");
    assert_eq!(file.reveal(f.dir.path()).unwrap(), "s3cret-from-file");
    let e = env.reveal(f.dir.path()).unwrap_err();
    assert!(e.contains("FAULTLINE_TEST_NO_SUCH_VAR is not set"), "{e}");
    for s in [&lit, &file, &env] {
        let shown = format!("{s:?} {}", serde_json::to_string(s).unwrap());
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
    let c = Credentials {
        user: Some("app".into()),
        password: Some("hunter2".into()),
        token: Some("tok".into()),
    };
    let shown = format!("{c:?}");
    assert!(
        shown.contains("app") && !shown.contains("hunter2") && !shown.contains("tok\""),
        "{shown}"
    );
}
