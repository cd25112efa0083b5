//! Placeholders: the fixed node-level names, the expansion of `{name}` in a template, and
//! how an unknown placeholder is reported.

/// Placeholders of node-level strings (commands, remote paths, configs, logs); each role
/// adds its own ([`super::roles::role_vars`]).
pub const NODE_VARS: &[&str] = &[
    "node",
    "node_index",
    "role",
    "ip",
    "port",
    "peers",
    "dir",
    "data_dir",
    "bug_flags",
    "read_from",
    "first_node",
    "first_ip",
    "quorum",
];

/// Expands `{name}` placeholders in `tpl` with `lookup`; `{{` and `}}` stand for braces.
/// Errors name the first placeholder `lookup` does not know (or a stray brace).
pub fn expand(tpl: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(tpl.len());
    let mut rest = tpl;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let c = &rest[i..];
        if c.starts_with("{{") || c.starts_with("}}") {
            out.push_str(&c[..1]);
            rest = &c[2..];
        } else if c.starts_with('}') {
            return Err("a lone `}` (write `}}` for a brace)".into());
        } else {
            let Some(end) = c.find('}') else {
                return Err("an unclosed `{` (write `{{` for a brace)".into());
            };
            let name = &c[1..end];
            let word = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-');
            if name.is_empty() || !name.chars().all(word) {
                let near: String = c.chars().take(20).collect();
                return Err(format!(
                    "`{near}` is no placeholder (write `{{{{` and `}}}}` for literal braces)"
                ));
            }
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => return Err(format!("unknown placeholder {{{name}}}")),
            }
            rest = &c[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn artifact_name(name: &str) -> bool {
    name.strip_prefix("artifact.")
        .is_some_and(|n| !n.is_empty() && !n.contains('/'))
}

pub(super) fn known_list(vars: &[&str]) -> String {
    let mut v: Vec<String> = vars
        .iter()
        .map(|v| match *v {
            "artifact.*" => "{artifact.NAME}".to_owned(),
            v => format!("{{{v}}}"),
        })
        .collect();
    v.push("{set.KEY}".into());
    v.push("{env.VAR}".into());
    v.join(" ")
}
