//! How a file's client reaches the system: `[client] tls`, `user`, `password`, `token`, and
//! what `[generate]` made for the run ([`RunSecrets`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Generate, Loaded};
use crate::proto::tls::certs::Ca;
use crate::proto::tls::{Access, Credentials, Tls, TlsSpec};

/// Where `[generate]`'s files go on a node, under its `{dir}`.
pub const NODE_TLS_DIR: &str = "tls";

/// The CA, certificates and password made for one run, in a private temporary directory
/// (mode 700) removed when this is dropped.
pub struct RunSecrets {
    dir: tempfile::TempDir,
    tls: bool,
    /// The generated password, when `[generate] password` is on.
    pub password: Option<String>,
}

impl std::fmt::Debug for RunSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSecrets")
            .field("dir", &self.dir.path())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("failed to write {}: {e}", path.display()))
}

/// 32 random characters from the OS (not from the run's seed: the seed is printed).
fn random_password() -> Result<String, String> {
    let mut raw = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut raw))
        .map_err(|e| format!("failed to read /dev/urandom: {e}"))?;
    // URL-safe base64 without padding: safe in configs, shells and URLs.
    Ok(crate::proto::http::b64(&raw)
        .replace('+', "-")
        .replace('/', "_"))
}

impl RunSecrets {
    /// Makes what `g` asks for, for `nodes` (name, address); `None` when it asks nothing.
    pub fn make(g: &Generate, nodes: &[(String, String)]) -> Result<Option<RunSecrets>, String> {
        if !g.tls && !g.password {
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix("faultline-secrets-")
            .tempdir()
            .map_err(|e| {
                format!("failed to make a private directory for the run's secrets: {e}")
            })?;
        let at = |name: &str| dir.path().join(name);
        if g.tls {
            let ca = Ca::new("faultline test CA")?;
            write_private(&at("ca.pem"), &ca.pem.cert)?;
            let client = ca.issue("faultline client", &[])?;
            write_private(&at("client.pem"), &client.cert)?;
            write_private(&at("client.key"), &client.key)?;
            for (name, addr) in nodes {
                let pem = ca.issue(name, &[addr.clone(), name.clone(), "localhost".into()])?;
                write_private(&at(&format!("{name}.pem")), &pem.cert)?;
                write_private(&at(&format!("{name}.key")), &pem.key)?;
            }
        }
        let password = if g.password {
            let pw = random_password()?;
            write_private(&at("password"), &pw)?;
            Some(pw)
        } else {
            None
        };
        Ok(Some(RunSecrets {
            dir,
            tls: g.tls,
            password,
        }))
    }

    /// The files `node` gets: (local path, name under `{dir}/tls/`).
    pub fn files_for(&self, node: &str) -> Vec<(PathBuf, &'static str)> {
        let at = |name: &str| self.dir.path().join(name);
        let mut out = Vec::new();
        if self.tls {
            out.push((at("ca.pem"), "ca.pem"));
            out.push((at(&format!("{node}.pem")), "node.pem"));
            out.push((at(&format!("{node}.key")), "node.key"));
            out.push((at("client.pem"), "client.pem"));
            out.push((at("client.key"), "client.key"));
        }
        if self.password.is_some() {
            out.push((at("password"), "password"));
        }
        out
    }

    /// The client's TLS when `[generate] tls` is on: the CA, and the client certificate.
    fn client_tls(&self) -> Option<TlsSpec> {
        let at = |name: &str| Some(self.dir.path().join(name).display().to_string());
        self.tls.then(|| TlsSpec {
            ca: at("ca.pem"),
            cert: at("client.pem"),
            key: at("client.key"),
            verify: true,
            server_name: None,
        })
    }
}

/// The node-level placeholders `[generate]` adds for a node whose `{dir}` is `dir`.
pub fn generated_vars(g: &Generate, dir: &str) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let at = |name: &str| format!("{dir}/{NODE_TLS_DIR}/{name}");
    if g.tls {
        for (k, f) in [
            ("tls.ca", "ca.pem"),
            ("tls.cert", "node.pem"),
            ("tls.key", "node.key"),
            ("tls.client_cert", "client.pem"),
            ("tls.client_key", "client.key"),
        ] {
            v.insert(k.to_owned(), at(f));
        }
    }
    if g.password {
        v.insert("auth.password_file".to_owned(), at("password"));
    }
    v
}

impl Loaded {
    /// The client's TLS and credentials: `[client]`'s, with what `run` generated filling
    /// what it leaves out. Errors name the key and the file or variable.
    pub fn access(&self, run: Option<&RunSecrets>) -> Result<Access, String> {
        let c = &self.spec.client;
        let base = self.path.parent().unwrap_or(Path::new("."));
        let generated = run.and_then(RunSecrets::client_tls);
        let tls = match (&c.tls, generated) {
            (Some(t), Some(g)) => Some(TlsSpec {
                ca: t.ca.clone().or(g.ca),
                cert: t
                    .cert
                    .clone()
                    .or(if t.key.is_none() { g.cert } else { None }),
                key: t
                    .key
                    .clone()
                    .or(if t.cert.is_none() { g.key } else { None }),
                ..t.clone()
            }),
            (t, g) => t.clone().or(g),
        };
        if self.protocol == crate::file::ops::Protocol::Http
            && tls.as_ref().is_some_and(|t| t.server_name.is_some())
        {
            return Err("client.tls.server_name: not supported with the http protocol (the certificate must name the address dialled)".into());
        }
        let tls = match tls {
            Some(t) => Some(Tls::load(&t, base).map_err(|e| format!("client.tls: {e}"))?),
            None => None,
        };
        let password = match &c.password {
            Some(s) => Some(
                s.reveal(base)
                    .map_err(|e| format!("client.password: {e}"))?,
            ),
            None => run.and_then(|r| r.password.clone()),
        };
        let token = match &c.token {
            Some(s) => Some(s.reveal(base).map_err(|e| format!("client.token: {e}"))?),
            None => None,
        };
        let user = c.user.clone();
        Ok(Access {
            tls,
            creds: Credentials {
                user,
                password,
                token,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_private_and_named_per_node() {
        let g = Generate {
            tls: true,
            password: true,
        };
        let nodes = [("n1".to_string(), "10.0.0.1".to_string())];
        let r = RunSecrets::make(&g, &nodes).unwrap().unwrap();
        let files = r.files_for("n1");
        assert_eq!(files.len(), 6);
        for (p, _) in &files {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(p).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600, "{}", p.display());
        }
        let pw = r.password.clone().unwrap();
        assert_eq!(pw.len(), 32);
        assert!(
            pw.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!(!format!("{r:?}").contains(&pw));
        let dir = r.dir.path().to_owned();
        drop(r);
        assert!(!dir.exists(), "removed with the run");
        let v = generated_vars(&g, "/d/n1");
        assert_eq!(v["tls.cert"], "/d/n1/tls/node.pem");
        assert_eq!(v["auth.password_file"], "/d/n1/tls/password");
        assert!(
            RunSecrets::make(&Generate::default(), &nodes)
                .unwrap()
                .is_none()
        );
    }
}
