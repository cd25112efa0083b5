//! The PostgreSQL client: follows the primary Patroni names and maps each workload op to SQL and
//! its rows to completions.

use super::*;

pub(crate) static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A client that follows the primary Patroni names.
pub struct PgClient {
    pub(crate) nodes: Vec<(String, String)>,
    pub(crate) primary: Option<(String, PgConn)>,
    pub(crate) direct: Option<(String, PgConn)>,
    pub(crate) start: usize,
    pub(crate) timeout: Duration,
}

impl PgClient {
    /// The node whose Patroni answers `GET /primary` with 200.
    async fn discover(&mut self) -> Result<(String, String), String> {
        let n = self.nodes.len().max(1);
        let t = self.timeout.min(Duration::from_secs(1));
        for i in 0..n {
            let (name, addr) = self.nodes[(self.start + i) % n].clone();
            if let Ok((200, _)) = http::get(&format!("{addr}:{REST_PORT}"), "/primary", t).await {
                return Ok((name, addr));
            }
        }
        self.start = (self.start + 1) % n;
        Err("no Patroni says it is the primary".into())
    }
}

pub(crate) fn sql(op: &Invocation) -> Result<String, String> {
    Ok(match (op.f, op.key.is_some()) {
        ("add", false) => format!(
            "INSERT INTO s (v) VALUES ({})",
            op.value.as_int().ok_or("add needs an integer")?
        ),
        ("read", false) => "SELECT v FROM s ORDER BY v".into(),
        ("incr" | "generate" | "insert", _) => "INSERT INTO ids DEFAULT VALUES RETURNING id".into(),
        ("leader", _) => String::new(),
        (f, _) => return Err(format!("postgres-patroni cannot do {f}")),
    })
}

pub(crate) fn ok_value(op: &Invocation, rows: &[Vec<Option<String>>]) -> Option<Value> {
    match op.f {
        "add" => Some(op.value.clone()),
        "read" => {
            let mut out = Vec::new();
            for r in rows {
                out.push(Value::Int(r.first()?.as_deref()?.parse().ok()?));
            }
            Some(Value::List(out))
        }
        _ => Some(Value::Int(rows.first()?.first()?.as_deref()?.parse().ok()?)),
    }
}

#[async_trait]
impl Client for PgClient {
    async fn open(&mut self, _node: &str) {}

    async fn invoke(&mut self, op: &Invocation) -> Completion {
        let q = match sql(op) {
            Ok(q) => q,
            Err(e) => {
                let at = op.node.clone().unwrap_or_default();
                return Completion::fail(op.value.clone(), &at, e);
            }
        };
        if op.f == "leader" {
            let at = op.node.clone().unwrap_or_default();
            let Some((_, addr)) = self.nodes.iter().find(|(n, _)| *n == at).cloned() else {
                return Completion::fail(op.value.clone(), &at, "unknown node");
            };
            return match probe(&addr, &at, &self.nodes, self.timeout).await {
                Ok((r, patroni)) => {
                    let mut v = role_value(&r);
                    if let Value::Map(m) = &mut v {
                        m.insert(0, (Value::str("patroni"), Value::str(&patroni)));
                    }
                    Completion::ok(v, &at)
                }
                Err(e) => Completion::fail(op.value.clone(), &at, e.msg),
            };
        }
        let routed = op.node.is_none();
        let slot = if routed {
            &mut self.primary
        } else {
            &mut self.direct
        };
        let want = op.node.clone();
        if slot
            .as_ref()
            .is_some_and(|(n, _)| want.as_ref().is_some_and(|w| w != n))
        {
            *slot = None;
        }
        if slot.is_none() {
            let (name, addr) = match &want {
                Some(w) => match self.nodes.iter().find(|(n, _)| n == w).cloned() {
                    Some(x) => x,
                    None => return Completion::fail(op.value.clone(), w, "unknown node"),
                },
                None => match self.discover().await {
                    Ok(x) => x,
                    Err(e) => return Completion::fail(op.value.clone(), "", e),
                },
            };
            match PgConn::connect(&format!("{addr}:{PG_PORT}"), self.timeout).await {
                Ok(c) => {
                    let slot = if routed {
                        &mut self.primary
                    } else {
                        &mut self.direct
                    };
                    *slot = Some((name, c));
                }
                Err(e) => return Completion::fail(op.value.clone(), &name, e.msg),
            }
        }
        let slot = if routed {
            &mut self.primary
        } else {
            &mut self.direct
        };
        let (target, conn) = slot.as_mut().expect("connected above");
        let target = target.clone();
        match conn.query(&q, self.timeout).await {
            Ok(rows) => match ok_value(op, &rows) {
                Some(v) => Completion::ok(v, &target),
                None => Completion::info(op.value.clone(), &target, "unexpected rows"),
            },
            Err(e) => {
                // An error response ends the statement (the connection stays usable); an
                // exchange that broke does not.
                let definite = !e.sent()
                    || op.is_read()
                    || matches!(
                        e.code.as_deref(),
                        Some("25006" | "23505" | "42P01" | "57P03")
                    );
                if e.code.is_none() || e.code.as_deref() == Some("25006") {
                    *slot = None;
                }
                if definite {
                    Completion::fail(op.value.clone(), &target, e.msg)
                } else {
                    Completion::info(op.value.clone(), &target, e.msg)
                }
            }
        }
    }

    async fn close(&mut self) {
        self.primary = None;
        self.direct = None;
    }
}
