//! Validation of a loaded system file: everything that can be checked without nodes, with
//! one-line errors naming the key.

use super::{Loaded, OPS, op_names};
use crate::file::ops::{HttpTemplate, OpTemplate, Protocol};

impl Loaded {
    /// Validates everything that can be checked without nodes.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.spec;
        if s.name.trim().is_empty() || s.name.contains('/') {
            return Err(format!("name: bad system name {:?}", s.name));
        }
        if s.port == 0 {
            return Err("port: must be above 0".into());
        }
        s.validate_roles()?;
        self.validate_unsupported()?;
        let node_vars = s.node_vars();
        let node: Vec<&str> = node_vars.iter().map(String::as_str).collect();
        let node = &node[..];
        for (local, remote) in &s.files {
            self.check(
                &format!("files.{local:?} (local path)"),
                local,
                &["artifact.*"],
            )?;
            self.check(&format!("files.{local:?}"), remote, node)?;
        }
        for (remote, content) in &s.configs {
            self.check(&format!("configs.{remote:?} (path)"), remote, node)?;
            let mut with_password = node.to_vec();
            if s.generate.password {
                with_password.push("auth.password");
            }
            self.check(&format!("configs.{remote:?}"), content, &with_password)?;
        }
        let c = &s.commands;
        if c.start.trim().is_empty() {
            return Err("commands.start: empty command".into());
        }
        self.check("commands.start", &c.start, node)?;
        for (k, v) in [
            ("commands.setup", &c.setup),
            ("commands.stop", &c.stop),
            ("commands.wipe", &c.wipe),
        ] {
            if let Some(v) = v {
                self.check(k, v, node)?;
            }
        }
        match (&s.process.pidfile, &s.process.name) {
            (Some(p), _) => self.check("process.pidfile", p, node)?,
            (None, Some(_)) => {
                return Err(
                    "process.name: targeting processes by name is not supported: the local \
                     cluster's nodes share one pid namespace, so a name matches every node's \
                     process; give process.pidfile"
                        .into(),
                );
            }
            (None, None) => {
                return Err(
                    "process: missing key `pidfile` (where the pid of the process that \
                     pause/kill target is kept)"
                        .into(),
                );
            }
        }
        for (i, f) in s.process.also.iter().enumerate() {
            self.check(&format!("process.also[{i}]"), f, node)?;
        }
        if !s.requires.programs.is_empty() && s.requires.packages.is_empty() {
            return Err(
                "requires.packages: missing (the OS packages that provide requires.programs, \
                 for the error message and --install)"
                    .into(),
            );
        }
        if let Some(cmd) = &s.process.pids_command {
            self.check("process.pids_command", cmd, node)?;
        }
        if let Some(cmd) = &s.ready.command {
            self.check("ready.command", cmd, node)?;
        }
        for (name, r) in &s.roles {
            for (k, v) in [
                ("setup", &r.setup),
                ("start", &r.start),
                ("stop", &r.stop),
                ("wipe", &r.wipe),
            ] {
                if let Some(v) = v {
                    self.check(&format!("roles.{name}.{k}"), v, node)?;
                }
            }
            if let Some(cmd) = r.ready.as_ref().and_then(|r| r.command.as_ref()) {
                self.check(&format!("roles.{name}.ready.command"), cmd, node)?;
            }
        }
        if s.ready.port == Some(0) {
            return Err("ready.port: must be above 0".into());
        }
        for (i, f) in s.logs.files.iter().enumerate() {
            self.check(&format!("logs.files[{i}]"), f, node)?;
        }
        self.validate_leader()?;
        self.validate_client()
    }

    /// Reads the protocol, the ops and the leader's HTTP call in the protocol's form.
    pub(super) fn compile(&mut self) -> Result<(), String> {
        let cl = &self.spec.client;
        self.protocol =
            Protocol::parse(&cl.protocol).map_err(|e| format!("client.protocol: {e}"))?;
        let o = &cl.ops;
        for (name, v) in [
            ("add", &o.add),
            ("read_set", &o.read_set),
            ("incr", &o.incr),
            ("read", &o.read),
            ("write", &o.write),
            ("cas", &o.cas),
            ("append", &o.append),
            ("read_list", &o.read_list),
            ("digest", &o.digest),
        ] {
            if let Some(v) = v {
                let t = OpTemplate::from_toml(self.protocol, &format!("client.ops.{name}"), v)?;
                self.ops.insert(name, t);
            }
        }
        if let Some(h) = &self.spec.leader.http {
            self.leader_http = Some(HttpTemplate::from_toml(
                "leader.http",
                h,
                &["method", "path", "body"],
            )?);
        }
        Ok(())
    }

    fn validate_leader(&self) -> Result<(), String> {
        let l = &self.spec.leader;
        let calls: Vec<&str> = [
            ("resp", !l.resp.is_empty()),
            ("sql", l.sql.is_some()),
            ("http", l.http.is_some()),
            ("command", l.command.is_some()),
        ]
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(k, _)| k)
        .collect();
        let call = match calls.as_slice() {
            [] => {
                return Err(format!(
                    "leader: missing key `{}` or `command` (a client call like {}, or a \
                     command run on each node, whose reply or output says who leads)",
                    self.leader_call_key(),
                    match self.protocol {
                        Protocol::Resp => "[\"ROLE\"]",
                        Protocol::Postgres => "\"SELECT pg_is_in_recovery()\"",
                        Protocol::Http => "{ path = \"/status\" }",
                    }
                ));
            }
            [one] => *one,
            more => {
                return Err(format!(
                    "leader: give one of `{}`, not {}",
                    more.join("`, `"),
                    more.len()
                ));
            }
        };
        if call != "command" && call != self.leader_call_key() {
            return Err(format!(
                "leader.{call}: the client speaks {:?}: its leader call is `{}` (or use `command`)",
                self.spec.client.protocol,
                self.leader_call_key()
            ));
        }
        if let Some(c) = &l.command {
            let node_vars = self.spec.node_vars();
            let node: Vec<&str> = node_vars.iter().map(String::as_str).collect();
            self.check("leader.command", c, &node)?;
        }
        if let Some(sp) = &l.split {
            if !matches!(sp.as_str(), "whitespace" | "lines") {
                return Err(format!("leader.split: {sp:?} is not whitespace or lines"));
            }
        }
        for (i, a) in l.resp.iter().enumerate() {
            self.check(&format!("leader.resp[{i}]"), a, &[])?;
        }
        if let Some(q) = &l.sql {
            self.check("leader.sql", q, &[])?;
        }
        if let Some(h) = &self.leader_http {
            for t in h.strings() {
                self.check("leader.http", t, &[])?;
            }
            if l.fields.is_empty() {
                return Err(
                    "leader.fields: missing key (the JSON pointers of the answer's fields, \
                     e.g. [\"/role\", \"/term\"]; role_index and the other indices count in it)"
                        .into(),
                );
            }
        } else if !l.fields.is_empty() {
            return Err("leader.fields: only for the `http` leader call".into());
        }
        for (i, f) in l.fields.iter().enumerate() {
            if !f.is_empty() && !f.starts_with('/') {
                return Err(format!(
                    "leader.fields[{i}]: {f:?} is no JSON pointer (write \"/a/b\")"
                ));
            }
        }
        if l.leader_values.is_empty() && l.id_index.is_none() {
            return Err("leader.leader_values: empty (and no id_index)".into());
        }
        if let Some(c) = &l.confirm {
            if c != "read_set" {
                return Err(format!(
                    "leader.confirm: {c:?} is not read_set (the client op that confirms a claim: a read that takes no value)"
                ));
            }
            if self.protocol == Protocol::Resp || l.command.is_some() {
                return Err(
                    "leader.confirm: only with a leader call of the http or postgres protocol"
                        .into(),
                );
            }
            if !self.ops.contains_key("read_set") {
                return Err(
                    "leader.confirm: names client.ops.read_set, which the file does not define"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// The `[leader]` key of a client call in the file's protocol.
    fn leader_call_key(&self) -> &'static str {
        match self.protocol {
            Protocol::Resp => "resp",
            Protocol::Postgres => "sql",
            Protocol::Http => "http",
        }
    }

    fn validate_client(&self) -> Result<(), String> {
        let cl = &self.spec.client;
        if let Some(r) = &cl.route {
            if !matches!(r.as_str(), "redirects" | "any" | "leader" | "followers") {
                return Err(format!(
                    "client.route: {r:?} is not redirects (or any), leader or followers"
                ));
            }
        }
        if cl.port == Some(0) {
            return Err("client.port: must be above 0".into());
        }
        if let Some(t) = &cl.transactions {
            if self.protocol != Protocol::Resp {
                return Err("client.transactions: only for the resp protocol".into());
            }
            for (k, v) in [("begin", &t.begin), ("commit", &t.commit)] {
                if v.is_empty() {
                    return Err(format!(
                        "client.transactions.{k}: empty (e.g. begin = [\"MULTI\"], commit = [\"EXEC\"])"
                    ));
                }
            }
            for op in ["append", "read_list"] {
                if !self.ops.contains_key(op) {
                    return Err(format!(
                        "client.transactions: the file defines no client.ops.{op}, which transactions are made of"
                    ));
                }
            }
        }
        if let Some(sess) = &cl.session {
            if self.protocol != Protocol::Resp {
                return Err("client.session: only for the resp protocol".into());
            }
            if sess.wrap.is_empty() {
                return Err(
                    "client.session.wrap: empty (the words before each command, e.g. [\"SESSION\", \"{session}\"])"
                        .into(),
                );
            }
            for (i, w) in sess.wrap.iter().enumerate() {
                super::expand(w, &|n| (n == "session").then(String::new)).map_err(|e| {
                    format!(
                        "client.session.wrap[{i}]: {e} (the one placeholder here is {{session}})"
                    )
                })?;
            }
        }
        if self.protocol != Protocol::Postgres {
            for (k, v) in [("user", &cl.user), ("database", &cl.database)] {
                if v.is_some() {
                    return Err(format!("client.{k}: only for the postgres protocol"));
                }
            }
        }
        for (op, _, vars) in OPS {
            if let Some(OpTemplate::Http(h)) = self.ops.get(op) {
                if matches!(*op, "read_set" | "incr" | "read" | "read_list" | "digest")
                    && h.result.is_none()
                {
                    return Err(format!(
                        "client.ops.{op}: missing key `result` (the JSON pointer of the value \
                         in the answer, e.g. \"/kvs/0/value\")"
                    ));
                }
            }
            if let Some(t) = self.ops.get(op) {
                let many = t.strings().len() > 1;
                for (i, a) in t.strings().into_iter().enumerate() {
                    let key = if many {
                        format!("client.ops.{op}[{i}]")
                    } else {
                        format!("client.ops.{op}")
                    };
                    let key = match t {
                        OpTemplate::Http(_) if i == 0 => format!("client.ops.{op}.path"),
                        OpTemplate::Http(_) => format!("client.ops.{op}.body"),
                        _ => key,
                    };
                    self.check(&key, a, vars)?;
                }
            }
        }
        for (i, r) in cl.outcome.iter().enumerate() {
            let key = format!("client.outcome[{i}]");
            match r.outcome.as_str() {
                "fail" | "info" => {}
                "ok" => {
                    return Err(format!(
                        "{key}.outcome: an error cannot be ok (use fail or info)"
                    ));
                }
                o => return Err(format!("{key}.outcome: {o:?} is not fail or info")),
            }
            match (&r.error_prefix, &r.status, self.protocol) {
                (_, Some(_), p) if p != Protocol::Http => {
                    return Err(format!("{key}.status: only for the http protocol"));
                }
                (None, None, Protocol::Http) => {
                    return Err(format!("{key}: missing key `status` or `error_prefix`"));
                }
                (None, None, _) => {
                    return Err(format!(
                        "{key}: missing key `error_prefix` (\"\" matches every error)"
                    ));
                }
                (_, Some(st), _) => {
                    status_matcher(st).map_err(|e| format!("{key}.status: {e}"))?;
                }
                _ => {}
            }
            if let Some(d) = &r.redirect {
                if !matches!(d.as_str(), "stay" | "next" | "follow") {
                    return Err(format!("{key}.redirect: {d:?} is not stay, next or follow"));
                }
            }
            for o in &r.ops {
                if !OPS.iter().any(|(n, _, _)| n == o) {
                    return Err(format!(
                        "{key}.ops: unknown op {o:?} (known: {})",
                        op_names()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What a rule's `status` matches: an exact code (`503`) or a class (`"5xx"`), as the
/// range of codes it covers.
pub fn status_matcher(v: &toml::Value) -> Result<std::ops::RangeInclusive<u16>, String> {
    let bad = || format!("{v} is not a status code (503) or class (\"5xx\")");
    match v {
        toml::Value::Integer(i) if (100..=599).contains(i) => Ok(*i as u16..=*i as u16),
        toml::Value::String(s) if s.len() == 3 && s.ends_with("xx") => {
            let c = s[..1].parse::<u16>().map_err(|_| bad())?;
            if (1..=5).contains(&c) {
                Ok(c * 100..=c * 100 + 99)
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}
