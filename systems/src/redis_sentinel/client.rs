//! The Sentinel-aware client: asks a Sentinel for the primary, follows failovers, and maps each
//! workload op to Redis commands and their replies to completions.

use super::*;

/// Spreads clients over the Sentinels they ask first.
pub(crate) static NEXT_SENTINEL: AtomicUsize = AtomicUsize::new(0);

/// A Sentinel-aware client: discovers the primary through Sentinel and follows failovers.
pub struct RedisClient {
    /// (name, addr) of every node, in order.
    pub(crate) nodes: Vec<(String, String)>,
    pub(crate) names: HashMap<String, String>,
    /// The primary Sentinel named last, with its connection.
    pub(crate) primary: Option<(String, Option<Conn>)>,
    /// Connections of node-directed ops.
    pub(crate) direct: HashMap<String, Conn>,
    pub(crate) sentinel: usize,
    pub(crate) timeout: Duration,
}

impl RedisClient {
    pub fn new(nodes: &[Node], timeout: Duration) -> Self {
        RedisClient {
            nodes: nodes
                .iter()
                .map(|n| (n.name.clone(), n.addr.clone()))
                .collect(),
            names: nodes
                .iter()
                .map(|n| (n.addr.clone(), n.name.clone()))
                .collect(),
            primary: None,
            direct: HashMap::new(),
            sentinel: NEXT_SENTINEL.fetch_add(1, Ordering::Relaxed),
            timeout,
        }
    }

    /// Asks the Sentinels, starting with this client's, which node is the primary.
    async fn discover(&mut self) -> Result<String, String> {
        let n = self.nodes.len().max(1);
        let t = self.timeout.min(Duration::from_secs(1));
        let mut last = String::from("no sentinel");
        for i in 0..n {
            let (sname, saddr) = self.nodes[(self.sentinel + i) % n].clone();
            let addr = format!("{saddr}:{SENTINEL_PORT}");
            let r = match Conn::connect(&addr, t).await {
                Ok(mut c) => {
                    c.call(
                        &[
                            b"SENTINEL",
                            b"get-master-addr-by-name",
                            MASTER_NAME.as_bytes(),
                        ],
                        t,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match r {
                Ok(Reply::Array(Some(a))) if !a.is_empty() => {
                    let ip = a[0].as_str().unwrap_or_default();
                    match self.names.get(ip) {
                        Some(name) => {
                            self.sentinel = (self.sentinel + i) % n;
                            return Ok(name.clone());
                        }
                        None => last = format!("sentinel on {sname} named unknown {ip}"),
                    }
                }
                Ok(r) => last = format!("sentinel on {sname}: {r:?}"),
                Err(e) => last = format!("sentinel on {sname}: {}", e.msg),
            }
        }
        self.sentinel = (self.sentinel + 1) % n;
        Err(format!("no sentinel named a primary ({last})"))
    }

    fn addr(&self, node: &str) -> Option<String> {
        self.nodes
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, a)| format!("{a}:{REDIS_PORT}"))
    }
}

pub(crate) fn int_arg(op: &Invocation, v: &Value) -> Result<Vec<u8>, String> {
    v.as_int()
        .map(|i| i.to_string().into_bytes())
        .ok_or_else(|| format!("{} needs an integer value", op.f))
}

/// The command for an invocation, or why it cannot be sent.
pub(crate) fn command(op: &Invocation) -> Result<Vec<Vec<u8>>, String> {
    let key = || -> Result<Vec<u8>, String> {
        match &op.key {
            Some(Value::Str(s)) => Ok(s.as_bytes().to_vec()),
            Some(other) => Ok(other.to_string().into_bytes()),
            None => Err(format!("{} needs a key", op.f)),
        }
    };
    Ok(match (op.f, op.key.is_some()) {
        ("add", _) => vec![b"SADD".to_vec(), SET_KEY.to_vec(), int_arg(op, &op.value)?],
        ("read", false) => vec![b"SMEMBERS".to_vec(), SET_KEY.to_vec()],
        ("incr" | "generate" | "insert", _) => vec![b"INCR".to_vec(), IDS_KEY.to_vec()],
        ("read", true) => vec![b"GET".to_vec(), key()?],
        ("write", _) => vec![b"SET".to_vec(), key()?, int_arg(op, &op.value)?],
        ("cas", _) => {
            let pair = op.value.as_list().filter(|l| l.len() == 2);
            let pair = pair.ok_or("cas needs [old new]")?;
            vec![
                b"EVAL".to_vec(),
                CAS_SCRIPT.to_vec(),
                b"1".to_vec(),
                key()?,
                int_arg(op, &pair[0])?,
                int_arg(op, &pair[1])?,
            ]
        }
        ("leader", _) => vec![b"ROLE".to_vec()],
        (f, _) => return Err(format!("redis-sentinel cannot do {f}")),
    })
}

/// The value of an `ok` completion, or `None` when the reply makes no sense for the op: as
/// for every Redis-like store ([`router::ok_value`]), but the set read sorted, the Lua
/// compare-and-set's bulk `OK` taken, and the leader answer with the replication offset.
pub(crate) fn ok_value(
    op: &Invocation,
    r: &Reply,
    node: &str,
    names: &HashMap<String, String>,
) -> Option<Value> {
    match (op.f, op.key.is_some(), r) {
        ("write" | "cas", _, r) if r.as_str() == Some("OK") => Some(op.value.clone()),
        ("leader", _, r) => {
            let role = parse_role(r, node, names)?;
            let mut v = role_value(&role);
            if let Value::Map(m) = &mut v {
                let offset = role.applied.map(Value::Int).unwrap_or(Value::Nil);
                m.push((Value::str("offset"), offset));
            }
            Some(v)
        }
        ("read", false, _) => match router::ok_value(op, r, |_| None)? {
            Value::List(mut out) => {
                out.sort_by_key(|v| v.as_int());
                Some(Value::List(out))
            }
            v => Some(v),
        },
        _ => router::ok_value(op, r, |_| None),
    }
}

#[async_trait]
impl Client for RedisClient {
    async fn open(&mut self, _node: &str) {}

    async fn invoke(&mut self, op: &Invocation) -> Completion {
        let args = match command(op) {
            Ok(a) => a,
            Err(e) => {
                let at = op.node.clone().unwrap_or_default();
                return Completion::fail(op.value.clone(), &at, e);
            }
        };
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let routed = op.node.is_none();
        // Where to send it, and a connection there.
        let target = match &op.node {
            Some(n) => n.clone(),
            None => match &self.primary {
                Some((p, _)) => p.clone(),
                None => match self.discover().await {
                    Ok(p) => {
                        self.primary = Some((p.clone(), None));
                        p
                    }
                    Err(e) => return Completion::fail(op.value.clone(), "", e),
                },
            },
        };
        let Some(addr) = self.addr(&target) else {
            return Completion::fail(op.value.clone(), &target, "unknown node");
        };
        let slot = if routed {
            self.primary.as_mut().map(|(_, c)| c).expect("set above")
        } else {
            // A direct connection, kept in `direct`.
            if !self.direct.contains_key(&target) {
                match Conn::connect(&addr, self.timeout).await {
                    Ok(c) => {
                        self.direct.insert(target.clone(), c);
                    }
                    Err(e) => return Completion::fail(op.value.clone(), &target, e.msg),
                }
            }
            let conn = self.direct.get_mut(&target).expect("just inserted");
            let r = conn.call(&argv, self.timeout).await;
            return match r {
                Err(e) => {
                    self.direct.remove(&target);
                    unknown_unless_read(op, &target, e.sent(), e.msg)
                }
                Ok(Reply::Error(e)) => Completion::fail(op.value.clone(), &target, e),
                Ok(r) => match ok_value(op, &r, &target, &self.names) {
                    Some(v) => Completion::ok(v, &target),
                    None => {
                        unknown_unless_read(op, &target, true, format!("unexpected reply {r:?}"))
                    }
                },
            };
        };
        if slot.is_none() {
            match Conn::connect(&addr, self.timeout).await {
                Ok(c) => *slot = Some(c),
                Err(e) => {
                    // Ask the Sentinels again next time.
                    self.primary = None;
                    return Completion::fail(op.value.clone(), &target, e.msg);
                }
            }
        }
        let conn = slot.as_mut().expect("just connected");
        match conn.call(&argv, self.timeout).await {
            Err(e) => {
                self.primary = None;
                unknown_unless_read(op, &target, e.sent(), e.msg)
            }
            Ok(Reply::Error(e)) => {
                // -READONLY (a demoted primary), -LOADING, -MASTERDOWN ...: rejected, not
                // applied. Anything but a compare-and-set mismatch sends us to the Sentinels.
                if !e.contains("CASMISMATCH") {
                    self.primary = None;
                }
                Completion::fail(op.value.clone(), &target, e)
            }
            Ok(r) => match ok_value(op, &r, &target, &self.names) {
                Some(v) => Completion::ok(v, &target),
                None => unknown_unless_read(op, &target, true, format!("unexpected reply {r:?}")),
            },
        }
    }

    async fn close(&mut self) {
        self.primary = None;
        self.direct.clear();
    }
}
