//! Opening an authenticated session: connection retries with backoff, the host key check
//! against known_hosts, and key/agent authentication.

use super::*;

/// Connects, retrying transient failures (refused, unreachable, handshake) with backoff.
/// Host key and authentication failures are not retried.
pub(crate) fn connect_with_retries(node: &Node, opts: &SshOptions) -> Result<Session> {
    let attempts = opts.connect_attempts.max(1);
    let mut backoff = Duration::from_millis(100);
    let mut last = None;
    for attempt in 1..=attempts {
        match connect_once(node, opts) {
            Ok(s) => return Ok(s),
            Err(e @ Error::Connect { .. }) => {
                tracing::debug!("connect attempt {attempt}/{attempts} to {node} failed: {e}");
                last = Some(e);
                if attempt < attempts {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
            Err(e) => return Err(e),
        }
    }
    let e = last.expect("at least one attempt");
    match e {
        Error::Connect { node, addr, cause } => Err(Error::Connect {
            node,
            addr,
            cause: format!("{cause} (after {attempts} attempts)"),
        }),
        e => Err(e),
    }
}

pub(crate) fn connect_once(node: &Node, opts: &SshOptions) -> Result<Session> {
    let hostport = format!("{}:{}", node.addr, opts.port);
    let conn_err = |cause: String| Error::Connect {
        node: node.name.clone(),
        addr: hostport.clone(),
        cause,
    };
    let addrs: Vec<SocketAddr> = (node.addr.as_str(), opts.port)
        .to_socket_addrs()
        .map_err(|e| conn_err(format!("cannot resolve the address: {e}")))?
        .collect();
    let mut tcp = None;
    let mut why = String::from("no address");
    for a in &addrs {
        match TcpStream::connect_timeout(a, opts.connect_timeout) {
            Ok(t) => {
                tcp = Some(t);
                break;
            }
            Err(e) => why = format!("TCP connect to {a}: {e}"),
        }
    }
    let tcp = tcp.ok_or_else(|| conn_err(why))?;
    let _ = tcp.set_nodelay(true);
    let mut sess =
        Session::new().map_err(|e| conn_err(format!("cannot create an SSH session: {e}")))?;
    sess.set_tcp_stream(tcp);
    sess.set_timeout(opts.connect_timeout.as_millis().min(u32::MAX as u128) as u32);
    sess.handshake()
        .map_err(|e| conn_err(format!("SSH handshake: {e}")))?;
    check_host_key(&sess, node, opts, &hostport)?;
    authenticate(&sess, node, opts, &hostport)?;
    sess.set_timeout(0);
    Ok(sess)
}

pub(crate) fn key_type_names(t: HostKeyType) -> (&'static str, &'static str) {
    match t {
        HostKeyType::Rsa => ("ssh-rsa", "rsa"),
        HostKeyType::Dss => ("ssh-dss", "dsa"),
        HostKeyType::Ecdsa256 => ("ecdsa-sha2-nistp256", "ecdsa"),
        HostKeyType::Ecdsa384 => ("ecdsa-sha2-nistp384", "ecdsa"),
        HostKeyType::Ecdsa521 => ("ecdsa-sha2-nistp521", "ecdsa"),
        HostKeyType::Ed25519 => ("ssh-ed25519", "ed25519"),
        HostKeyType::Unknown => ("unknown", "ed25519,ecdsa,rsa"),
    }
}

pub(crate) fn check_host_key(
    sess: &Session,
    node: &Node,
    opts: &SshOptions,
    hostport: &str,
) -> Result<()> {
    let hk_err = |cause: String| Error::HostKey {
        node: node.name.clone(),
        addr: hostport.to_string(),
        cause,
    };
    let (key, ktype) = sess
        .host_key()
        .ok_or_else(|| hk_err("the server sent no host key".into()))?;
    let (tname, scan) = key_type_names(ktype);
    let fp = sess
        .host_key_hash(HashType::Sha256)
        .map(|h| format!("SHA256:{}", base64(h)))
        .unwrap_or_default();
    let path = match &opts.host_key_check {
        HostKeyCheck::InsecureSkip => {
            tracing::warn!(
                "host key of {node} not checked ({tname} {fp}): --insecure-skip-host-key-check"
            );
            return Ok(());
        }
        HostKeyCheck::KnownHosts(p) => p,
    };
    let mut kh = sess
        .known_hosts()
        .map_err(|e| hk_err(format!("cannot use known_hosts: {e}")))?;
    if path.exists() {
        kh.read_file(path, KnownHostFileKind::OpenSSH)
            .map_err(|e| hk_err(format!("cannot read {}: {e}", path.display())))?;
    }
    let host_pattern = if opts.port == 22 {
        node.addr.clone()
    } else {
        format!("[{}]:{}", node.addr, opts.port)
    };
    match kh.check_port(&node.addr, opts.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::NotFound => Err(hk_err(format!(
            "its host key ({tname} {fp}) is unknown: {} has no entry for {host_pattern}. \
             If that fingerprint is right, trust the key with \
             `ssh-keyscan -p {} -t {scan} {} >> {}`, or pass --insecure-skip-host-key-check to skip the check",
            path.display(),
            opts.port,
            node.addr,
            path.display()
        ))),
        CheckResult::Mismatch => Err(hk_err(format!(
            "its host key ({tname} {fp}) does NOT match the one recorded for {host_pattern} in {}: \
             the host was reinstalled, or someone is intercepting the connection. If the change is \
             expected, remove the old entry with `ssh-keygen -f {} -R '{host_pattern}'` and trust the new key",
            path.display(),
            path.display()
        ))),
        CheckResult::Failure => Err(hk_err(format!(
            "checking against {} failed",
            path.display()
        ))),
    }
}

pub(crate) fn authenticate(
    sess: &Session,
    node: &Node,
    opts: &SshOptions,
    hostport: &str,
) -> Result<()> {
    let auth_err = |cause: String| Error::Auth {
        node: node.name.clone(),
        addr: hostport.to_string(),
        user: opts.user.clone(),
        cause,
    };
    let try_key = |key: &Path| -> std::result::Result<(), String> {
        if !key.exists() {
            return Err(format!("the key file {} does not exist", key.display()));
        }
        let pubkey = PathBuf::from(format!("{}.pub", key.display()));
        let pubkey = pubkey.exists().then_some(pubkey);
        match sess.userauth_pubkey_file(&opts.user, pubkey.as_deref(), key, None) {
            Ok(()) if sess.authenticated() => Ok(()),
            Ok(()) => Err(format!("the server refused the key {}", key.display())),
            Err(e) => Err(format!(
                "the server refused the key {} ({e})",
                key.display()
            )),
        }
    };
    let try_agent = || -> std::result::Result<(), String> {
        if std::env::var_os("SSH_AUTH_SOCK").is_none() {
            return Err("no ssh-agent (SSH_AUTH_SOCK is not set)".into());
        }
        match sess.userauth_agent(&opts.user) {
            Ok(()) if sess.authenticated() => Ok(()),
            Ok(()) => Err("the server refused every ssh-agent identity".into()),
            Err(e) => Err(format!("the server refused every ssh-agent identity ({e})")),
        }
    };
    let result = match &opts.auth {
        SshAuth::Key(k) => try_key(k),
        SshAuth::Agent => try_agent(),
        SshAuth::Auto => {
            let mut why = Vec::new();
            let mut ok = false;
            if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                match try_agent() {
                    Ok(()) => ok = true,
                    Err(e) => why.push(e),
                }
            }
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            for k in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                if ok {
                    break;
                }
                let p = home.join(".ssh").join(k);
                if p.exists() {
                    match try_key(&p) {
                        Ok(()) => ok = true,
                        Err(e) => why.push(e),
                    }
                }
            }
            if ok {
                Ok(())
            } else if why.is_empty() {
                Err("no ssh-agent and no key in ~/.ssh (pass --ssh-key)".into())
            } else {
                Err(why.join("; "))
            }
        }
    };
    result.map_err(|c| {
        auth_err(format!(
            "{c}; is the public key in ~{}/.ssh/authorized_keys on the node?",
            opts.user
        ))
    })
}

/// Standard base64 without padding (OpenSSH fingerprint style).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=c.len() {
            s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}
