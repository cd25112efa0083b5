//! Nodes files for real hosts: one node per line, `NAME ADDRESS` or just `ADDRESS` (then the
//! name is the address); blank lines and `#` comments are ignored.

use std::path::Path;

use crate::error::{Error, Result};
use crate::remote::Node;

/// Parses the text of a nodes file.
pub fn parse(text: &str) -> Result<Vec<Node>> {
    let mut nodes: Vec<Node> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let node = match words.as_slice() {
            [addr] => Node::new(*addr, *addr),
            [name, addr] => Node::new(*name, *addr),
            _ => {
                return Err(Error::local(
                    "read the nodes file",
                    format!(
                        "line {}: expected `NAME ADDRESS` or `ADDRESS`, got `{line}`",
                        i + 1
                    ),
                ));
            }
        };
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        let addr_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 255
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        };
        if !name_ok(&node.name) {
            return Err(Error::local(
                "read the nodes file",
                format!(
                    "line {}: bad node name {:?} (letters, digits, `.`, `-` and `_`, at most 64)",
                    i + 1,
                    node.name
                ),
            ));
        }
        if !addr_ok(&node.addr) {
            return Err(Error::local(
                "read the nodes file",
                format!(
                    "line {}: bad address {:?} (a host name or an IP address)",
                    i + 1,
                    node.addr
                ),
            ));
        }
        if nodes.iter().any(|n| n.name == node.name) {
            return Err(Error::local(
                "read the nodes file",
                format!("line {}: node {} listed twice", i + 1, node.name),
            ));
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(Error::local("read the nodes file", "it lists no node"));
    }
    Ok(nodes)
}

/// Reads and parses a nodes file.
pub fn read(path: &Path) -> Result<Vec<Node>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::local(format!("read the nodes file {}", path.display()), e))?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let n = super::parse("# c\nn1 10.0.0.1\n\nhost2.example  # x\n").unwrap();
        assert_eq!(n[0].name, "n1");
        assert_eq!(n[0].addr, "10.0.0.1");
        assert_eq!(n[1].name, "host2.example");
        assert!(super::parse("a b c").is_err());
        assert!(super::parse("").is_err());
        assert!(super::parse("db1 fe80::1\nn2 [::1]:22\n").is_ok());
        for bad in [
            "{\"a\":",
            "n/1 10.0.0.1",
            "n1 $(reboot)",
            "n1 10.0.0.1;x",
            "\u{1b}[2J",
        ] {
            let e = super::parse(bad).unwrap_err().to_string();
            assert!(e.contains("line 1: bad"), "{bad}: {e}");
        }
    }
}
