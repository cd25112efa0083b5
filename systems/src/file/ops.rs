//! `[client.ops]` templates by protocol: a RESP argv, one SQL statement (`postgres`), or an
//! HTTP request (`http`: method, path, body, and where the answer's value is). Each is read
//! from the TOML value the file gives, with one-line errors naming the key.

use serde_json::Value as Json;

/// The client protocols a system file can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Resp,
    Postgres,
    Http,
}

impl Protocol {
    pub fn parse(s: &str) -> Result<Protocol, String> {
        match s {
            "resp" => Ok(Protocol::Resp),
            "postgres" => Ok(Protocol::Postgres),
            "http" => Ok(Protocol::Http),
            p => Err(format!(
                "protocol {p:?} is not supported (supported: resp, postgres, http)"
            )),
        }
    }

    /// What one op of this protocol is written as (for errors).
    fn shape(self) -> &'static str {
        match self {
            Protocol::Resp => "an array of strings (the command's argv)",
            Protocol::Postgres => "one SQL string",
            Protocol::Http => "a table with method, path and body",
        }
    }
}

/// One op's template.
#[derive(Debug, Clone, PartialEq)]
pub enum OpTemplate {
    /// RESP: the command's arguments.
    Argv(Vec<String>),
    /// postgres: one SQL statement (or several separated by `;`: the last one's rows count).
    Sql(String),
    Http(HttpTemplate),
}

/// An HTTP request template and how to read its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTemplate {
    /// `POST` unless given.
    pub method: String,
    pub path: String,
    pub body: Option<Body>,
    /// A JSON pointer to the op's value in the answer (`*` steps into every array element):
    /// the id of `incr`, the value of the register `read`, the elements of the set `read`.
    pub result: Option<String>,
    /// The values `result` finds are base64 (etcd's gateway encodes keys and values so).
    pub base64: bool,
    /// A JSON pointer that must be `true` in a 2xx answer, else the op did not happen (`fail`):
    /// e.g. `/succeeded` of etcd's compare-and-set transaction.
    pub require: Option<String>,
}

/// A request body: text sent as written, or JSON built from a TOML table.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Text(String),
    /// Strings inside are templates (no braces to double: only values are expanded).
    Json(Json),
}

const HTTP_KEYS: &[&str] = &["method", "path", "body", "result", "decode", "require"];

impl OpTemplate {
    /// Reads `key`'s value as an op of `proto`.
    pub fn from_toml(proto: Protocol, key: &str, v: &toml::Value) -> Result<OpTemplate, String> {
        let wrong = || format!("{key}: the {proto:?} protocol takes {}", proto.shape());
        match (proto, v) {
            (Protocol::Resp, toml::Value::Array(items)) => {
                if items.is_empty() {
                    return Err(format!("{key}: empty command"));
                }
                let argv = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(wrong)?;
                Ok(OpTemplate::Argv(argv))
            }
            (Protocol::Postgres, toml::Value::String(s)) => {
                if s.trim().is_empty() {
                    return Err(format!("{key}: empty SQL"));
                }
                Ok(OpTemplate::Sql(s.clone()))
            }
            (Protocol::Http, toml::Value::Table(_)) => {
                HttpTemplate::from_toml(key, v, HTTP_KEYS).map(OpTemplate::Http)
            }
            _ => Err(wrong()),
        }
    }

    /// Every template string in it (for placeholder checks).
    pub fn strings(&self) -> Vec<&str> {
        match self {
            OpTemplate::Argv(a) => a.iter().map(String::as_str).collect(),
            OpTemplate::Sql(s) => vec![s.as_str()],
            OpTemplate::Http(h) => h.strings(),
        }
    }
}

impl HttpTemplate {
    /// Reads an HTTP request table; `allowed` limits its keys (the leader call has no result).
    pub fn from_toml(key: &str, v: &toml::Value, allowed: &[&str]) -> Result<HttpTemplate, String> {
        let Some(t) = v.as_table() else {
            return Err(format!(
                "{key}: expected a table with method, path and body"
            ));
        };
        for k in t.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(format!(
                    "{key}.{k}: unknown key (known: {})",
                    allowed.join(", ")
                ));
            }
        }
        let text = |k: &str| -> Result<Option<String>, String> {
            match t.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{key}.{k}: expected a string")),
            }
        };
        let path = text("path")?.ok_or_else(|| {
            format!("{key}: missing key `path` (the request path, e.g. \"/v3/kv/put\")")
        })?;
        if !path.starts_with('/') {
            return Err(format!("{key}.path: {path:?} does not start with `/`"));
        }
        let method = text("method")?.unwrap_or_else(|| "POST".into());
        if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "{key}.method: {method:?} is no HTTP method (GET, POST, PUT, ...)"
            ));
        }
        let body = match t.get("body") {
            None => None,
            Some(toml::Value::String(s)) => Some(Body::Text(s.clone())),
            Some(v @ toml::Value::Table(_)) => Some(Body::Json(to_json(v))),
            Some(_) => {
                return Err(format!(
                    "{key}.body: expected a string (sent as written) or a table (sent as JSON)"
                ));
            }
        };
        let base64 = match text("decode")?.as_deref() {
            None => false,
            Some("base64") => true,
            Some(d) => return Err(format!("{key}.decode: {d:?} is not base64")),
        };
        let result = text("result")?;
        let require = text("require")?;
        for (k, p) in [("result", &result), ("require", &require)] {
            if let Some(p) = p {
                if !p.is_empty() && !p.starts_with('/') {
                    return Err(format!(
                        "{key}.{k}: {p:?} is no JSON pointer (write \"/a/b\", \"/list/*/field\")"
                    ));
                }
            }
        }
        Ok(HttpTemplate {
            method,
            path,
            body,
            result,
            base64,
            require,
        })
    }

    pub fn strings(&self) -> Vec<&str> {
        let mut out = vec![self.path.as_str()];
        match &self.body {
            Some(Body::Text(s)) => out.push(s),
            Some(Body::Json(j)) => json_strings(j, &mut out),
            None => {}
        }
        out
    }

    /// The method, path and body with placeholders expanded by `expand`.
    pub fn render(
        &self,
        expand: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<(String, String, Option<Vec<u8>>), String> {
        let body = match &self.body {
            None => None,
            Some(Body::Text(s)) => Some(expand(s)?.into_bytes()),
            Some(Body::Json(j)) => Some(render_json(j, expand)?.to_string().into_bytes()),
        };
        Ok((self.method.clone(), expand(&self.path)?, body))
    }
}

fn to_json(v: &toml::Value) -> Json {
    match v {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => Json::from(*f),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            Json::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

fn json_strings<'a>(j: &'a Json, out: &mut Vec<&'a str>) {
    match j {
        Json::String(s) => out.push(s),
        Json::Array(a) => a.iter().for_each(|v| json_strings(v, out)),
        Json::Object(o) => o.values().for_each(|v| json_strings(v, out)),
        _ => {}
    }
}

fn render_json(j: &Json, expand: &dyn Fn(&str) -> Result<String, String>) -> Result<Json, String> {
    Ok(match j {
        Json::String(s) => Json::String(expand(s)?),
        Json::Array(a) => Json::Array(
            a.iter()
                .map(|v| render_json(v, expand))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(o) => Json::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, expand)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// What a JSON pointer finds in `j`: `*` steps into every element of an array (or value of an
/// object); `""` is the whole document. Missing steps find nothing.
pub fn select<'a>(j: &'a Json, pointer: &str) -> Vec<&'a Json> {
    let mut cur = vec![j];
    for step in pointer.split('/').skip(1) {
        let step = step.replace("~1", "/").replace("~0", "~");
        let mut next = Vec::new();
        for v in cur {
            match (v, step.as_str()) {
                (Json::Array(a), "*") => next.extend(a.iter()),
                (Json::Object(o), "*") => next.extend(o.values()),
                (Json::Array(a), i) => next.extend(i.parse::<usize>().ok().and_then(|i| a.get(i))),
                (Json::Object(o), k) => next.extend(o.get(k)),
                _ => {}
            }
        }
        cur = next;
    }
    cur
}
