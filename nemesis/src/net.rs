//! Network faults as shell commands (pure builders, run on a node through its `Remote`):
//! iptables rules in faultline's own chain, and tc tbf for bandwidth.
//!
//! Every rule lives in the filter-table chain [`CHAIN`], jumped to from the first position of
//! `INPUT`, so healing removes exactly faultline's rules (or flushes and deletes only that
//! chain and its jump) and never touches rules that were there before. Rules match on the
//! source address whatever the connection state, so established connections are cut too.
//! The controller's address never appears in a rule: it keeps its reach to every node.

use control::shell_quote;

/// faultline's chain in the filter table.
pub const CHAIN: &str = "FAULTLINE";

/// The iptables binary and its lock-wait flag.
const IPT: &str = "iptables -w 5";

/// A rule (as given after `iptables -A CHAIN`) that drops everything from `src`.
pub fn drop_from(src: &str) -> Vec<String> {
    vec!["-s".into(), src.into(), "-j".into(), "DROP".into()]
}

/// A rule that drops packets from `src` at random with `probability`.
pub fn random_drop_from(src: &str, probability: f64) -> Vec<String> {
    let p = format!("{:.6}", probability.clamp(0.0, 1.0));
    [
        "-s",
        src,
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        &p,
        "-j",
        "DROP",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn rule_line(op: &str, chain: &str, rule: &[String]) -> String {
    let args: Vec<String> = rule.iter().map(|a| shell_quote(a)).collect();
    format!("{IPT} {op} {} {}", shell_quote(chain), args.join(" "))
}

/// Script: make sure `chain` exists and `INPUT` jumps to it first, then append `rules`.
pub fn apply_script(chain: &str, rules: &[Vec<String>]) -> String {
    let c = shell_quote(chain);
    let mut s = format!(
        "set -e; {IPT} -N {c} 2>/dev/null || true; \
         {IPT} -C INPUT -j {c} 2>/dev/null || {IPT} -I INPUT 1 -j {c}"
    );
    for r in rules {
        s.push_str("; ");
        s.push_str(&rule_line("-A", chain, r));
    }
    s
}

/// Script: delete each of `rules` from `chain` once (rules already gone are fine).
pub fn remove_script(chain: &str, rules: &[Vec<String>]) -> String {
    let mut parts = vec!["true".to_string()];
    for r in rules {
        let check = rule_line("-C", chain, r);
        let del = rule_line("-D", chain, r);
        parts.push(format!("if {check} 2>/dev/null; then {del}; fi"));
    }
    parts.join("; ")
}

/// Script: remove faultline's chain entirely (jump rules, then flush and delete). Nothing
/// else is touched; a missing chain is fine.
pub fn teardown_script(chain: &str) -> String {
    let c = shell_quote(chain);
    format!(
        "for i in 1 2 3 4 5 6 7 8; do {IPT} -D INPUT -j {c} 2>/dev/null || break; done; \
         {IPT} -F {c} 2>/dev/null || true; {IPT} -X {c} 2>/dev/null || true"
    )
}

/// Script printing the interface that holds `addr` (e.g. `eth0`).
pub fn iface_script(addr: &str) -> String {
    format!(
        "ip -o addr show to {} | awk '{{print $2}}' | cut -d@ -f1 | head -n1",
        shell_quote(addr)
    )
}

/// Script: limit `iface`'s egress to `rate_kbit` with a tbf root qdisc.
pub fn tbf_script(iface: &str, rate_kbit: u32) -> String {
    let burst_kbit = (rate_kbit / 8).max(32);
    format!(
        "tc qdisc replace dev {} root tbf rate {}kbit burst {}kbit latency 400ms",
        shell_quote(iface),
        rate_kbit.max(1),
        burst_kbit
    )
}

/// Script: remove the root qdisc of `iface` (back to the kernel default); fine if none.
pub fn tc_remove_script(iface: &str) -> String {
    let i = shell_quote(iface);
    format!("if tc qdisc show dev {i} root | grep -q tbf; then tc qdisc del dev {i} root; fi")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts() {
        let r = drop_from("10.77.0.12");
        assert_eq!(
            apply_script(CHAIN, std::slice::from_ref(&r)),
            "set -e; iptables -w 5 -N FAULTLINE 2>/dev/null || true; iptables -w 5 -C INPUT -j FAULTLINE \
             2>/dev/null || iptables -w 5 -I INPUT 1 -j FAULTLINE; iptables -w 5 -A FAULTLINE -s 10.77.0.12 -j DROP"
        );
        assert!(remove_script(CHAIN, &[r]).contains("-D FAULTLINE -s 10.77.0.12 -j DROP"));
        assert!(random_drop_from("h", 0.25).contains(&"0.250000".to_string()));
        assert!(teardown_script(CHAIN).contains("-X FAULTLINE"));
        assert_eq!(
            tbf_script("eth0", 512),
            "tc qdisc replace dev eth0 root tbf rate 512kbit burst 64kbit latency 400ms"
        );
    }
}
