//! `firewall.libvirt` and `firewall.migration`: a new TCP connection from each
//! peer host reaches the libvirt port and every port of the QEMU migration
//! range, i.e. is accepted by the INPUT path before any REJECT/DROP rule or a
//! DROP policy. The inventory's `policy.allowed_sources` are probed too; with no
//! peers and no allowed sources, a documentation address stands for "any remote host".

use super::{Ctx, Outcome};
use crate::facts::Firewall;
use crate::firewall::Verdict;
use std::net::IpAddr;

/// A documentation address (RFC 5737) standing for "any remote host".
const ANY_REMOTE: &str = "203.0.113.1";

pub fn libvirt(ctx: &Ctx) -> Outcome {
    let port = ctx.policy.libvirt_port;
    ports(ctx, port, port, "libvirt", None)
}

pub fn migration(ctx: &Ctx) -> Outcome {
    let (lo, hi, ev) = ctx.facts().migration_ports();
    if lo > hi {
        return Outcome::fail(format!("qemu.conf migration_port_min {lo} is above migration_port_max {hi}")).with(ev);
    }
    ports(ctx, lo, hi, "migration", Some(ev))
}

fn ports(ctx: &Ctx, lo: u16, hi: u16, what: &str, extra: Option<String>) -> Outcome {
    let f = ctx.facts();
    let range = if lo == hi { format!("TCP {lo}") } else { format!("TCP {lo}-{hi}") };
    let mut sources = ctx.peer_sources();
    for cidr in &ctx.policy.allowed_sources {
        if let Ok(ip) = cidr.split('/').next().unwrap_or("").parse::<IpAddr>() {
            sources.push((format!("allowed source {cidr}"), ip));
        }
    }
    if sources.is_empty() {
        sources.push(("any remote host".into(), ANY_REMOTE.parse().unwrap()));
    }
    let mut evidence: Vec<String> = extra.into_iter().collect();
    // (port, how) -> peers blocked that way, in order.
    let mut blocked: Vec<((u16, &str), Vec<String>)> = Vec::new();
    let mut uncertain = Vec::new();
    let mut unreadable = None;
    for (name, src) in &sources {
        let fam = if src.is_ipv4() { "iptables-save" } else { "ip6tables-save" };
        match f.firewall_for(*src) {
            None => unreadable = Some(format!("{fam} was not run")),
            Some(Firewall::Unreadable(why)) => unreadable = Some(format!("{fam}: {why}")),
            Some(Firewall::Rules(rules)) => match rules.first_blocked(*src, lo..=hi) {
                Some((port, d)) => {
                    let how = match d.verdict {
                        Verdict::Drop => "dropped (connections hang until they time out)",
                        _ => "rejected (\"No route to host\")",
                    };
                    let who = format!("{name} ({src})");
                    match blocked.iter_mut().find(|(k, _)| *k == (port, how)) {
                        Some((_, v)) => v.push(who),
                        None => blocked.push(((port, how), vec![who])),
                    }
                    evidence.push(format!("{fam}: {d}"));
                    uncertain.extend(d.uncertain);
                }
                None => {
                    let d = rules.input_decision(&crate::firewall::Probe::tcp(*src, lo));
                    evidence.push(format!("{fam}: {range} from {src}: {d}"));
                    uncertain.extend(d.uncertain);
                }
            },
        }
    }
    uncertain.sort();
    uncertain.dedup();
    evidence.extend(uncertain.iter().map(|u| format!("uncertain: {u}")));
    if firewalld_hides_rules(ctx) {
        return Outcome::warn(format!("firewalld runs: its rules may not show in iptables-save; check {range} with firewall-cmd --list-all"))
            .with_all(evidence);
    }
    if !blocked.is_empty() {
        let parts: Vec<String> =
            blocked.iter().map(|((port, how), who)| format!("TCP {port} from {} is {how}", who.join(", "))).collect();
        return Outcome::fail(format!("{} ({what} traffic)", parts.join("; "))).with_all(dedup(evidence));
    }
    if let Some(why) = unreadable {
        return Outcome::warn(format!("firewall not evaluated: {why}")).with_all(dedup(evidence));
    }
    let from = sources.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    if !uncertain.is_empty() {
        return Outcome::warn(format!("{range} looks accepted from {from}, but some rules could not be evaluated")).with_all(evidence);
    }
    Outcome::pass(format!("{range} accepted from {from}")).with_all(evidence)
}

fn firewalld_hides_rules(ctx: &Ctx) -> bool {
    let f = ctx.facts();
    f.unit("firewalld.service").is_some_and(|u| u.is_active())
        && matches!(&f.iptables, Some(Firewall::Rules(r)) if r.is_empty())
}

/// Evidence lines in first-seen order without repeats (peers often hit the same rule).
fn dedup(lines: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}
