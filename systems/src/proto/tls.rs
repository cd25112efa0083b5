//! TLS and credentials for every client protocol. [`TlsSpec`] is what a system file says
//! (`tls = { ca = ..., cert = ..., key = ..., verify = true }`); [`Tls`] is it loaded once
//! into a rustls client configuration shared by every connection. [`Secret`] is a password
//! or token given literally, by environment variable or by file: read when a client is
//! built, never printed (its `Debug` and `Serialize` say where it comes from, not what it
//! is), so it cannot reach `test.json`, a log or the report.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A client's TLS as a system file writes it. Paths are on the controller.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM file of the CA(s) to verify servers against; without it, the system's roots are
    /// not consulted: `verify = false` must be said explicitly.
    pub ca: Option<String>,
    /// PEM certificate chain presented to servers that ask for one (mutual TLS).
    pub cert: Option<String>,
    /// PEM private key of `cert`.
    pub key: Option<String>,
    /// Verify the server's certificate and name (default true). `false` encrypts without
    /// knowing who answers: for test clusters with throwaway certificates only.
    #[serde(default = "yes")]
    pub verify: bool,
    /// The name to expect in servers' certificates (default: the address dialled, an IP
    /// or host name).
    pub server_name: Option<String>,
}

fn yes() -> bool {
    true
}

/// A loaded client TLS configuration, cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// rustls with *ring*: it builds with a C compiler alone (aws-lc-rs wants cmake and more),
/// and rustls deprecates it only for lacking post-quantum key exchange, which a test
/// cluster's throwaway certificates do not need.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes *ring* the process's default rustls provider (reqwest builds its plain clients
/// with the default too); once, and harmless when one is already installed.
pub(crate) fn install_default_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = CryptoProvider::install_default((*provider()).clone());
    });
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("failed to read the {what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "failed to read the {what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

impl Tls {
    /// Loads the files `spec` names (relative paths from `base`). Errors name the file and
    /// the cause.
    pub fn load(spec: &TlsSpec, base: &Path) -> Result<Tls, String> {
        let path = |p: &str| base.join(p);
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("failed to set up TLS: {e}"))?;
        let builder = if spec.verify {
            let ca = spec.ca.as_deref().ok_or(
                "tls: give `ca` (the PEM file of the CA that signed the servers' certificates), or verify = false to skip verification",
            )?;
            let mut roots = RootCertStore::empty();
            for c in read_certs(&path(ca), "CA file")? {
                roots
                    .add(c)
                    .map_err(|e| format!("failed to use the CA file {ca}: {e}"))?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
        };
        let config =
            match (&spec.cert, &spec.key) {
                (Some(cert), Some(key)) => {
                    let chain = read_certs(&path(cert), "client certificate")?;
                    let key = PrivateKeyDer::from_pem_file(path(key)).map_err(|e| {
                        format!("failed to read the client key {}: {e}", path(key).display())
                    })?;
                    builder
                        .with_client_auth_cert(chain, key)
                        .map_err(|e| format!("failed to use the client certificate {cert}: {e}"))?
                }
                (None, None) => builder.with_no_client_auth(),
                _ => return Err(
                    "tls: `cert` and `key` go together (a client certificate and its private key)"
                        .into(),
                ),
            };
        Ok(Tls {
            config: Arc::new(config),
            server_name: spec.server_name.clone(),
        })
    }

    /// The rustls configuration (for HTTP clients built on it).
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// The name a server at `host` must prove: the configured one, else `host`.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, String> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_owned())
            .map_err(|e| format!("bad TLS server name {name}: {e}"))
    }

    /// The TLS handshake over `tcp` with the server at `host`.
    pub async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = self
            .server_name(host)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
    }
}

/// `verify = false`: any certificate, any name. Signatures are still checked, so the
/// handshake is a real one with whoever answers.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A password or token: `"literal"`, `{ env = "VAR" }` or `{ file = "path" }`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Secret {
    Literal(String),
    Env { env: String },
    File { file: String },
}

impl Secret {
    /// The secret's text (a file's content without its trailing newline). Errors name the
    /// variable or file, never the value.
    pub fn reveal(&self, base: &Path) -> Result<String, String> {
        match self {
            Secret::Literal(s) => Ok(s.clone()),
            Secret::Env { env } => std::env::var(env).map_err(|_| {
                format!("failed to read a secret: the environment variable {env} is not set")
            }),
            Secret::File { file } => {
                let p = base.join(file);
                std::fs::read_to_string(&p)
                    .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                    .map_err(|e| format!("failed to read a secret from {}: {e}", p.display()))
            }
        }
    }

    fn source(&self) -> String {
        match self {
            Secret::Literal(_) => "<literal>".into(),
            Secret::Env { env } => format!("<env {env}>"),
            Secret::File { file } => format!("<file {file}>"),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.source())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source())
    }
}

/// Who a client is to the server: a user and password (RESP `AUTH`, HTTP basic, PostgreSQL),
/// or a bearer token (HTTP). Both optional.
#[derive(Clone, Default, PartialEq)]
pub struct Credentials {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// How a client reaches a server beyond TCP: TLS (none: plain) and who it is.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub tls: Option<Tls>,
    pub creds: Credentials,
}

/// A connected stream, plain or TLS.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

impl Access {
    /// Plain TCP, no credentials.
    pub fn plain() -> Access {
        Access::default()
    }

    /// `tcp` as this access wants it: wrapped in TLS for the server at `host` (a failed
    /// handshake is an error naming the cause: an unknown issuer, a name mismatch, a
    /// refused client certificate), or as it is.
    pub async fn wrap(&self, host: &str, tcp: TcpStream) -> std::io::Result<Box<dyn Io>> {
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(t) => Ok(Box::new(t.connect(host, tcp).await?)),
        }
    }
}

/// The host part of `host:port` (`[v6]:port` too).
pub fn host_of(addr: &str) -> &str {
    let h = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    h.trim_start_matches('[').trim_end_matches(']')
}

/// A test CA and certificates made with rcgen, for unit tests of the clients and for
/// `[tls] generate` runs.
pub mod certs {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };

    /// PEM texts of one certificate and its key.
    pub struct Pem {
        pub cert: String,
        pub key: String,
    }

    /// A CA that signs server and client certificates.
    pub struct Ca {
        pub pem: Pem,
        issuer: Issuer<'static, KeyPair>,
    }

    impl Ca {
        /// A new self-signed CA named `name`.
        pub fn new(name: &str) -> Result<Ca, String> {
            let key = KeyPair::generate().map_err(|e| format!("failed to make a key: {e}"))?;
            let mut p = CertificateParams::new(Vec::<String>::new())
                .map_err(|e| format!("failed to make a CA: {e}"))?;
            p.distinguished_name.push(DnType::CommonName, name);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let cert = p
                .self_signed(&key)
                .map_err(|e| format!("failed to make a CA: {e}"))?;
            let pem = Pem {
                cert: cert.pem(),
                key: key.serialize_pem(),
            };
            Ok(Ca {
                pem,
                issuer: Issuer::new(p, key),
            })
        }

        /// A certificate for `names` (IP addresses become IP SANs), good for servers and
        /// clients both (etcd's peers are both).
        pub fn issue(&self, common_name: &str, names: &[String]) -> Result<Pem, String> {
            let key = KeyPair::generate().map_err(|e| format!("failed to make a key: {e}"))?;
            let mut p = CertificateParams::new(Vec::<String>::new())
                .map_err(|e| format!("failed to make a certificate: {e}"))?;
            p.distinguished_name.push(DnType::CommonName, common_name);
            for n in names {
                p.subject_alt_names
                    .push(match n.parse::<std::net::IpAddr>() {
                        Ok(ip) => SanType::IpAddress(ip),
                        Err(_) => SanType::DnsName(
                            n.clone()
                                .try_into()
                                .map_err(|e| format!("bad certificate name {n}: {e}"))?,
                        ),
                    });
            }
            p.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            let cert = p
                .signed_by(&key, &self.issuer)
                .map_err(|e| format!("failed to sign a certificate: {e}"))?;
            Ok(Pem {
                cert: cert.pem(),
                key: key.serialize_pem(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
