//! Firewall: an ACCEPT for the libvirt port and for the qemu.conf migration
//! range, from each peer host (and `policy.allowed_sources`), inserted right
//! before the rule that blocks it (or first in INPUT under a DROP policy).
//! Rules carry a `migready:` comment. Where the host persists its rules
//! (/etc/sysconfig/iptables, /etc/iptables/rules.v4), the same lines go into
//! that file, before the same blocking rule.

use super::{status, Edits, Step};
use crate::checks::{Ctx, Finding, Status};
use crate::facts::Firewall;
use crate::firewall::{self, Decision, Probe};
use std::net::IpAddr;

/// Comment prefix that marks migready's own rules.
pub const COMMENT: &str = "migready:";

struct Insert {
    chain: String,
    position: usize,
    /// The text of the rule it goes before (None: first in INPUT, DROP policy).
    before: Option<String>,
    args: Vec<String>,
    why: String,
}

fn source_arg(src: &str) -> String {
    if src.contains('/') {
        src.to_string()
    } else if src.contains(':') {
        format!("{src}/128")
    } else {
        format!("{src}/32")
    }
}

fn quote_rule_arg(a: &str) -> String {
    if a.contains(' ') || a.is_empty() { format!("\"{a}\"") } else { a.to_string() }
}

pub(super) fn plan(ctx: &Ctx, findings: &[Finding], edits: &mut Edits, steps: &mut Vec<Step>, notes: &mut Vec<String>) {
    let f = ctx.facts();
    let fix_libvirt = status(findings, "firewall.libvirt") == Status::Fail;
    let fix_migration = status(findings, "firewall.migration") == Status::Fail;
    if !fix_libvirt && !fix_migration {
        return;
    }
    if f.unit("firewalld.service").is_some_and(|u| u.is_active()) {
        notes.push("firewall: firewalld runs; open the ports with firewall-cmd --permanent (not done by migready)".into());
        return;
    }
    let Some(Firewall::Rules(rules)) = &f.iptables else {
        notes.push("firewall: iptables-save not readable; nothing changed".into());
        return;
    };
    // Sources: the peers, then the inventory's allowed sources.
    let mut sources: Vec<(String, String, IpAddr)> =
        ctx.peer_sources().into_iter().map(|(name, a)| (name, source_arg(&a.to_string()), a)).collect();
    for cidr in &ctx.policy.allowed_sources {
        if let Ok(ip) = cidr.split('/').next().unwrap_or("").parse::<IpAddr>() {
            sources.push((cidr.clone(), source_arg(cidr), ip));
        }
    }
    let (lo, hi, _) = f.migration_ports();
    let port = ctx.policy.libvirt_port;
    let mut wanted: Vec<(&str, String, u16)> = Vec::new();
    if fix_libvirt {
        wanted.push(("libvirt", port.to_string(), port));
    }
    if fix_migration {
        wanted.push(("migration", if lo == hi { lo.to_string() } else { format!("{lo}:{hi}") }, lo));
    }
    let mut inserts: Vec<Insert> = Vec::new();
    for (what, dport, probe_port) in &wanted {
        for (name, src_arg, ip) in &sources {
            if !ip.is_ipv4() {
                notes.push(format!("firewall: {what} from {name} ({ip}) is IPv6; open it with ip6tables by hand"));
                continue;
            }
            let blocked: Option<Decision> = if *what == "migration" {
                rules.first_blocked(*ip, lo..=hi).map(|(_, d)| d)
            } else {
                let d = rules.input_decision(&Probe::tcp(*ip, *probe_port));
                (!d.is_accept()).then_some(d)
            };
            let Some(d) = blocked else { continue };
            let (chain, position, before) = match &d.rule {
                Some(r) => (r.chain.clone(), r.index, Some(r.text.clone())),
                None => ("INPUT".to_string(), 1, None),
            };
            let args: Vec<String> = [
                "-s", src_arg, "-p", "tcp", "-m", "tcp", "--dport", dport, "-m", "comment", "--comment",
                &format!("{COMMENT} {what} from {name}"), "-j", "ACCEPT",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let why = format!("accept {what} TCP {} from {name} before {}", dport.replace(':', "-"), d);
            inserts.push(Insert { chain, position, before, args, why });
        }
    }
    if inserts.is_empty() {
        return;
    }
    // Rules inserted at the same position end up in reverse order; insert the
    // last first so the final order matches the plan.
    for ins in inserts.iter().rev() {
        steps.push(Step::FirewallInsert { ipv6: false, chain: ins.chain.clone(), position: ins.position, args: ins.args.clone(), why: ins.why.clone() });
    }
    // Persist.
    let persist = f.persisted_rules.iter().find(|p| p.as_str() == "/etc/sysconfig/iptables" || p.as_str() == "/etc/iptables/rules.v4");
    let Some(path) = persist else {
        notes.push("firewall: nothing on this host persists iptables rules (no /etc/sysconfig/iptables or /etc/iptables/rules.v4): the new rules are lost at reboot".into());
        return;
    };
    let Some(text) = f.raw.ok(&format!("persist:{path}")) else { return };
    match persist_edit(text, &inserts) {
        Ok(new) => edits.edit(path, Some(text), "persist the new rules", |_| new),
        Err(why) => notes.push(format!("firewall: {path} not updated: {why}")),
    }
}

/// Insert `-A` lines for `inserts` into a saved ruleset, each before the line of
/// the rule it must precede (or before the first INPUT rule under a DROP policy).
fn persist_edit(text: &str, inserts: &[Insert]) -> Result<String, String> {
    let saved = firewall::parse(text).map_err(|e| format!("cannot parse it: {e}"))?;
    let filter = saved.table("filter").ok_or("it has no *filter table")?;
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    // line number (1-based) -> lines to insert before it
    let mut at: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for ins in inserts {
        let rule_text = format!("-A {} {}", ins.chain, ins.args.iter().map(|a| quote_rule_arg(a)).collect::<Vec<_>>().join(" "));
        let line = match &ins.before {
            Some(before) => filter
                .chains
                .iter()
                .flat_map(|c| &c.rules)
                .find(|r| &r.text == before)
                .map(|r| r.line)
                .ok_or_else(|| format!("the rule `{before}` is not in it (the live rules differ from the saved ones)"))?,
            None => filter
                .chain("INPUT")
                .and_then(|c| c.rules.first().map(|r| r.line))
                .or_else(|| text.lines().enumerate().skip_while(|(_, l)| l.trim() != "*filter").find(|(_, l)| l.trim() == "COMMIT").map(|(i, _)| i + 1))
                .ok_or("no place for INPUT rules in it")?,
        };
        at.entry(line).or_default().push(rule_text + "\n");
    }
    for (line, new) in at.into_iter().rev() {
        let idx = line - 1;
        for (k, l) in new.into_iter().enumerate() {
            lines.insert(idx + k, l);
        }
    }
    Ok(lines.concat())
}
