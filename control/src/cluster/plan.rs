//! The validated plan of a cluster: names that fit the kernel's limits, a private subnet.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::remote::Node;

use super::*;

/// Whether a cluster may have `prefix`: 1 to 8 characters among a-z, 0-9 and `-` (it goes
/// into interface names, and into paths: never `/` or `..`).
pub fn valid_prefix(prefix: &str) -> bool {
    (1..=8).contains(&prefix.len())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The validated plan of a cluster.
pub(crate) struct Plan {
    pub(crate) state: ClusterState,
    pub(crate) subnet: Subnet,
}

impl Plan {
    pub(crate) fn new(opts: &ClusterOptions) -> Result<Self> {
        let bad = |cause: String| Error::Invalid {
            action: "bring the local cluster up".into(),
            cause,
        };
        if !valid_prefix(&opts.prefix) {
            return Err(bad(format!(
                "bad prefix `{}`: use 1 to 8 characters among a-z, 0-9 and `-`",
                opts.prefix
            )));
        }
        let subnet = Subnet::parse(&opts.subnet).map_err(bad)?;
        if opts.nodes == 0 || opts.nodes > 200 {
            return Err(bad(format!("bad node count {}: use 1 to 200", opts.nodes)));
        }
        let bridge = format!("{}br0", opts.prefix);
        let nodes = (1..=opts.nodes)
            .map(|i| NodeState {
                node: Node::new(format!("n{i}"), subnet.host(10 + i as u32).to_string()),
                netns: format!("{}n{i}", opts.prefix),
                veth: format!("{}n{i}h", opts.prefix),
                sshd_pid: None,
            })
            .collect();
        let state = ClusterState {
            options: opts.clone(),
            complete: false,
            bridge,
            bridge_addr: subnet.host(1).to_string(),
            nodes,
            blackhole: None,
            forward_rules: Vec::new(),
            files: Vec::new(),
            client_key: None,
            known_hosts: None,
        };
        Ok(Plan { state, subnet })
    }
}

/// An IPv4 subnet of length 16..=24.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subnet {
    pub(super) base: u32,
    pub(super) len: u32,
}

impl Subnet {
    pub(super) fn parse(s: &str) -> std::result::Result<Self, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("bad subnet `{s}`: expected CIDR like 10.77.0.0/24"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("bad subnet `{s}`: `{ip}` is not an IPv4 address"))?;
        let len: u32 = len
            .parse()
            .map_err(|_| format!("bad subnet `{s}`: bad prefix length"))?;
        if !(16..=24).contains(&len) {
            return Err(format!(
                "bad subnet `{s}`: the prefix length must be 16 to 24"
            ));
        }
        let mask = u32::MAX << (32 - len);
        let base = u32::from(ip) & mask;
        let o = Ipv4Addr::from(base).octets();
        if !(o[0] == 10
            || (o[0] == 172 && (16..32).contains(&o[1]))
            || (o[0] == 192 && o[1] == 168))
        {
            return Err(format!(
                "bad subnet `{s}`: use a private range (10/8, 172.16/12, 192.168/16)"
            ));
        }
        Ok(Subnet { base, len })
    }

    pub(crate) fn host(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + i)
    }

    pub(crate) fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.base), self.len)
    }

    /// The /16 around the subnet.
    pub(super) fn blackhole(&self) -> String {
        format!("{}/16", Ipv4Addr::from(self.base & 0xffff_0000))
    }
}
