//! Roles and stages of a system file: named node groups with commands of their own (a
//! primary and its standbys, a witness, a DCS member), the order in which they are deployed,
//! and the placeholders that name a role's nodes. Validated twice: what the file alone says
//! when it is loaded, and the assignment of nodes to roles once the cluster's size is known.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{NODE_VARS, Ready, Spec};

/// The role every node has in a file without `[roles]`.
pub const DEFAULT_ROLE: &str = "node";

/// A named group of nodes and what differs for them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Which nodes: 1-based positions in the cluster (`[1]`, `[2, 3]`), or `"rest"` (every
    /// node no other role takes).
    pub nodes: RoleNodes,
    /// Whether clients and the leader probe address its nodes (a witness or a monitor does
    /// not serve data). Faults hit its nodes either way.
    #[serde(default = "yes")]
    pub serves: bool,
    /// Replace `commands.setup`, `.start`, `.stop`, `.wipe` for the role's nodes.
    pub setup: Option<String>,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub wipe: Option<String>,
    /// Replaces `[ready]` for the role's nodes.
    pub ready: Option<Ready>,
}

fn yes() -> bool {
    true
}

/// The nodes of a role.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RoleNodes {
    Positions(Vec<usize>),
    Named(String),
}

/// The placeholders a role adds, for role `r`: its first node's name and address, its nodes'
/// `name=ip:port` list, its node names and how many there are.
pub fn role_vars(role: &str) -> [String; 5] {
    [
        format!("first.{role}"),
        format!("first_ip.{role}"),
        format!("peers.{role}"),
        format!("nodes.{role}"),
        format!("count.{role}"),
    ]
}

impl Spec {
    /// The role names, the implicit one when the file has none.
    pub fn role_names(&self) -> Vec<String> {
        if self.roles.is_empty() {
            vec![DEFAULT_ROLE.to_owned()]
        } else {
            self.roles.keys().cloned().collect()
        }
    }

    /// Every placeholder of node-level strings: the fixed ones and each role's.
    pub fn node_vars(&self) -> Vec<String> {
        let mut v: Vec<String> = NODE_VARS.iter().map(|s| (*s).to_owned()).collect();
        v.extend(super::generated_vars(&self.generate, "").into_keys());
        for r in self.role_names() {
            v.extend(role_vars(&r));
        }
        v
    }

    /// Checks the roles and stages as far as the file alone allows.
    pub fn validate_roles(&self) -> Result<(), String> {
        let mut rest = Vec::new();
        for (name, r) in &self.roles {
            let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
            if name.is_empty() || !name.chars().all(word) {
                return Err(format!(
                    "roles.{name}: a role name is letters, digits, - and _"
                ));
            }
            match &r.nodes {
                RoleNodes::Named(s) if s == "rest" => rest.push(name.as_str()),
                RoleNodes::Named(s) => {
                    return Err(format!(
                        "roles.{name}.nodes: {s:?} is neither \"rest\" nor a list of node \
                         positions ([1], [2, 3])"
                    ));
                }
                RoleNodes::Positions(p) if p.is_empty() || p.contains(&0) => {
                    return Err(format!(
                        "roles.{name}.nodes: positions start at 1 and the list is not empty"
                    ));
                }
                RoleNodes::Positions(_) => {}
            }
            if r.start.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(format!("roles.{name}.start: empty command"));
            }
        }
        if rest.len() > 1 {
            return Err(format!(
                "roles: {} all take \"rest\"; one role at most may",
                rest.join(" and ")
            ));
        }
        if !self.roles.is_empty() && !self.roles.values().any(|r| r.serves) {
            return Err(
                "roles: no role serves data (serves = true): clients would have no node".into(),
            );
        }
        if self.stages.is_empty() {
            return Ok(());
        }
        if self.roles.is_empty() {
            return Err(
                "stages: a file without [roles] has one stage; define roles to order them".into(),
            );
        }
        let mut seen = BTreeMap::new();
        for (i, stage) in self.stages.iter().enumerate() {
            if stage.is_empty() {
                return Err(format!("stages[{i}]: an empty stage"));
            }
            for r in stage {
                if !self.roles.contains_key(r) {
                    return Err(format!(
                        "stages[{i}]: no role {r:?} (roles: {})",
                        self.role_names().join(", ")
                    ));
                }
                if let Some(j) = seen.insert(r.clone(), i) {
                    return Err(format!("stages[{i}]: role {r:?} is already in stages[{j}]"));
                }
            }
        }
        if let Some(missing) = self.roles.keys().find(|r| !seen.contains_key(*r)) {
            return Err(format!(
                "stages: role {missing:?} is in no stage (every role is deployed in one)"
            ));
        }
        Ok(())
    }

    /// Command `which` (`setup`, `start`, `stop`, `wipe`) for the nodes of `role`: the
    /// role's override, else the file's `[commands]`.
    pub fn command(&self, role: &str, which: &str) -> Option<&String> {
        let (r, c) = (self.roles.get(role), &self.commands);
        let (own, base) = match which {
            "setup" => (r.and_then(|r| r.setup.as_ref()), c.setup.as_ref()),
            "start" => (r.and_then(|r| r.start.as_ref()), Some(&c.start)),
            "stop" => (r.and_then(|r| r.stop.as_ref()), c.stop.as_ref()),
            "wipe" => (r.and_then(|r| r.wipe.as_ref()), c.wipe.as_ref()),
            "leave" => (None, c.leave.as_ref()),
            "join" => (None, c.join.as_ref()),
            _ => return None,
        };
        own.or(base)
    }

    /// Assigns the cluster's `nodes` (names, in order) to roles, or says why it cannot.
    pub fn assign(&self, nodes: &[String]) -> Result<Assignment, String> {
        let mut role_of: BTreeMap<String, String> = BTreeMap::new();
        if self.roles.is_empty() {
            for n in nodes {
                role_of.insert(n.clone(), DEFAULT_ROLE.to_owned());
            }
        } else {
            for (name, r) in &self.roles {
                if let RoleNodes::Positions(ps) = &r.nodes {
                    for &p in ps {
                        let Some(n) = nodes.get(p - 1) else {
                            return Err(format!(
                                "roles.{name}.nodes: position {p}, but the cluster has {} nodes",
                                nodes.len()
                            ));
                        };
                        if let Some(other) = role_of.insert(n.clone(), name.clone()) {
                            return Err(format!(
                                "roles.{name}.nodes: node {p} ({n}) is already in role {other}"
                            ));
                        }
                    }
                }
            }
            let rest = self
                .roles
                .iter()
                .find(|(_, r)| r.nodes == RoleNodes::Named("rest".into()))
                .map(|(n, _)| n.clone());
            for n in nodes {
                if role_of.contains_key(n) {
                    continue;
                }
                match &rest {
                    Some(r) => {
                        role_of.insert(n.clone(), r.clone());
                    }
                    None => {
                        return Err(format!(
                            "roles: node {n} has no role (give one role nodes = \"rest\", or \
                             run fewer nodes)"
                        ));
                    }
                }
            }
        }
        let order = |role: &str| -> Vec<String> {
            nodes
                .iter()
                .filter(|n| role_of.get(*n).map(String::as_str) == Some(role))
                .cloned()
                .collect()
        };
        let mut members = BTreeMap::new();
        for r in self.role_names() {
            let m = order(&r);
            if m.is_empty() {
                return Err(format!(
                    "roles.{r}: no node of a {}-node cluster is left for it",
                    nodes.len()
                ));
            }
            members.insert(r, m);
        }
        let stages: Vec<Vec<String>> = if self.stages.is_empty() {
            vec![nodes.to_vec()]
        } else {
            self.stages
                .iter()
                .map(|s| {
                    nodes
                        .iter()
                        .filter(|n| s.contains(&role_of[*n]))
                        .cloned()
                        .collect()
                })
                .collect()
        };
        let serving = nodes
            .iter()
            .filter(|n| self.roles.get(&role_of[*n]).is_none_or(|r| r.serves))
            .cloned()
            .collect();
        Ok(Assignment {
            index: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i + 1))
                .collect(),
            role_of,
            members,
            stages,
            serving,
        })
    }
}

/// Which node has which role, and what follows from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Node -> its 1-based position in the cluster.
    pub index: BTreeMap<String, usize>,
    /// Node -> its role.
    pub role_of: BTreeMap<String, String>,
    /// Role -> its nodes, in cluster order.
    pub members: BTreeMap<String, Vec<String>>,
    /// The nodes of each deploy stage, in order.
    pub stages: Vec<Vec<String>>,
    /// The nodes clients and the leader probe address.
    pub serving: Vec<String>,
}

impl Assignment {
    /// The role-qualified placeholders' values, with `addr(node)` the node's address and
    /// `port` the system's port.
    pub fn vars(&self, addr: &dyn Fn(&str) -> String, port: u16) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        for (role, nodes) in &self.members {
            let [first, first_ip, peers, names, count] = role_vars(role);
            v.insert(first, nodes[0].clone());
            v.insert(first_ip, addr(&nodes[0]));
            let p: Vec<String> = nodes
                .iter()
                .map(|n| format!("{n}={}:{port}", addr(n)))
                .collect();
            v.insert(peers, p.join(","));
            v.insert(names, nodes.join(","));
            v.insert(count, nodes.len().to_string());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(roles: &str) -> Spec {
        let text = format!(
            "name = \"x\"\nport = 7000\n{roles}\n[commands]\nstart = \"run\"\n[process]\n\
             pidfile = \"{{dir}}/p\"\n[leader]\nresp = [\"ROLE\"]\nrole_index = 0\n\
             leader_values = [\"leader\"]\n[client]\nprotocol = \"resp\"\n"
        );
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn without_roles_every_node_is_one_serving_role_in_one_stage() {
        let s = spec("");
        s.validate_roles().unwrap();
        let a = s.assign(&names(3)).unwrap();
        assert_eq!(a.stages, vec![names(3)]);
        assert_eq!(a.serving, names(3));
        assert_eq!(a.role_of["n2"], DEFAULT_ROLE);
        let v = a.vars(&|n| format!("10.0.0.{}", &n[1..]), 7000);
        assert_eq!(v["first.node"], "n1");
        assert_eq!(
            v["peers.node"],
            "n1=10.0.0.1:7000,n2=10.0.0.2:7000,n3=10.0.0.3:7000"
        );
        assert_eq!(v["count.node"], "3");
    }

    #[test]
    fn roles_take_positions_and_the_rest_and_stages_order_them() {
        let s = spec(
            "stages = [[\"primary\"], [\"standby\", \"witness\"]]\n\
             [roles.primary]\nnodes = [1]\n\
             [roles.standby]\nnodes = \"rest\"\nstart = \"join {first_ip.primary}\"\n\
             [roles.witness]\nnodes = [5]\nserves = false\n",
        );
        s.validate_roles().unwrap();
        let a = s.assign(&names(5)).unwrap();
        assert_eq!(a.members["primary"], ["n1"]);
        assert_eq!(a.members["standby"], ["n2", "n3", "n4"]);
        assert_eq!(a.members["witness"], ["n5"]);
        assert_eq!(
            a.stages,
            vec![vec!["n1".to_string()], names(5)[1..].to_vec()]
        );
        assert_eq!(a.serving, names(4));
        assert_eq!(a.index["n4"], 4);
        assert!(s.node_vars().contains(&"first_ip.primary".to_string()));
        assert_eq!(
            s.command("standby", "start").unwrap(),
            "join {first_ip.primary}"
        );
        assert_eq!(s.command("primary", "start").unwrap(), "run");
        assert_eq!(s.command("primary", "setup"), None);
    }

    #[test]
    fn bad_roles_and_stages_are_one_line_naming_the_key() {
        let bad = |roles: &str| spec(roles).validate_roles().unwrap_err();
        assert!(bad("[roles.a]\nnodes = \"all\"\n").starts_with("roles.a.nodes:"));
        assert!(bad("[roles.a]\nnodes = [0]\n").starts_with("roles.a.nodes:"));
        assert!(
            bad("[roles.a]\nnodes = \"rest\"\n[roles.b]\nnodes = \"rest\"\n")
                .contains("one role at most")
        );
        assert!(bad("[roles.a]\nnodes = \"rest\"\nserves = false\n").contains("no role serves"));
        assert!(bad("stages = [[\"a\"]]\n").starts_with("stages:"));
        assert!(bad("stages = [[\"b\"]]\n[roles.a]\nnodes = \"rest\"\n").contains("no role \"b\""));
        assert!(
            bad("stages = [[\"a\"], [\"a\"]]\n[roles.a]\nnodes = \"rest\"\n")
                .contains("already in stages[0]")
        );
        assert!(
            bad("stages = [[\"a\"]]\n[roles.a]\nnodes = [1]\n[roles.b]\nnodes = \"rest\"\n")
                .contains("role \"b\" is in no stage")
        );
        // Against a cluster.
        let s = spec("[roles.a]\nnodes = [1, 4]\n[roles.b]\nnodes = [2]\n");
        assert!(
            s.assign(&names(3))
                .unwrap_err()
                .contains("position 4, but the cluster has 3")
        );
        assert!(
            s.assign(&names(5))
                .unwrap_err()
                .contains("node n3 has no role")
        );
        let s = spec("[roles.a]\nnodes = [1, 2]\n[roles.b]\nnodes = \"rest\"\n");
        assert!(
            s.assign(&names(2))
                .unwrap_err()
                .contains("roles.b: no node")
        );
        let s = spec("[roles.a]\nnodes = [1, 2]\n[roles.b]\nnodes = [2]\n");
        assert!(
            s.assign(&names(3))
                .unwrap_err()
                .contains("already in role a")
        );
    }
}
