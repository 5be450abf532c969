//! `firewall.libvirt` and `firewall.migration`: a new TCP connection from each
//! peer host reaches the libvirt port and every port of the QEMU migration
//! range, i.e. is accepted by the INPUT path before any REJECT/DROP rule or a
//! DROP policy. The inventory's `policy.allowed_sources` are probed too; with no
//! peers and no allowed sources, a documentation address stands for "any remote host".
//!
//! Every firewall on the host judges: iptables (iptables-save, legacy or nf_tables
//! variant), native nftables tables (every filter base chain at input; iptables-nft's
//! tables are judged once, from iptables-save) and firewalld's zones. A connection is
//! accepted only if all of them accept it.

use super::{Ctx, Outcome, Status};
use crate::facts::{Firewall, Firewalld, HostFacts, Nft};
use crate::firewall::Verdict;
use crate::firewalld::{self as fwd, Config};
use crate::nftables::{self, By, ChainDecision, Skip};
use std::net::IpAddr;

/// A documentation address (RFC 5737) standing for "any remote host".
const ANY_REMOTE: &str = "203.0.113.1";

pub fn libvirt(ctx: &Ctx) -> Outcome {
    let port = ctx.libvirt_port();
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
    let mut sources = ctx.peer_sources();
    for cidr in &ctx.policy.allowed_sources {
        if let Ok(ip) = cidr.split('/').next().unwrap_or("").parse::<IpAddr>() {
            sources.push((format!("allowed source {cidr}"), ip));
        }
    }
    if sources.is_empty() {
        sources.push(("any remote host".into(), ANY_REMOTE.parse().unwrap()));
    }
    let out = judge(ctx, lo, hi, what, extra, &sources);
    if out.status != Status::Pass {
        return out;
    }
    // Accepted from the peers: say too whether it is from any address as well.
    let mut out = match reach_from_outside(ctx, lo, hi) {
        Reach::Any { why, .. } => Outcome { message: format!("{}, and from any address ({why})", out.message), ..out },
        _ => out,
    };
    // Accepted now, by migready's rules: are they brought back at boot?
    let tag = if what == "libvirt" && ctx.transport() == crate::inventory::Transport::Tls { "libvirt-tls" } else { what };
    let lost = unpersisted(ctx.facts(), tag);
    if !lost.is_empty() {
        out.status = Status::Warn;
        out.message.push_str(&format!("; but {}: lost at the next boot", lost.join("; ")));
    }
    out
}

/// migready's live iptables/ip6tables rules for `what` (commented `migready: WHAT from
/// ...`) that nothing brings back at boot: in no file the host persists that family's
/// rules to (by chain and comment), or the host has no such file. One phrase per family.
fn unpersisted(f: &HostFacts, what: &str) -> Vec<String> {
    let prefix = format!("{} {what} from ", crate::fix::COMMENT);
    let mut out = Vec::new();
    for (live, files, save) in [(&f.iptables, crate::facts::IPTABLES_PERSIST, "iptables"), (&f.ip6tables, crate::facts::IP6TABLES_PERSIST, "ip6tables")] {
        let Some(Firewall::Rules(live)) = live else { continue };
        let ours: Vec<&crate::firewall::Rule> = live
            .table("filter")
            .into_iter()
            .flat_map(|t| &t.chains)
            .flat_map(|c| &c.rules)
            .filter(|r| r.comment.as_deref().is_some_and(|c| c.starts_with(&prefix)))
            .collect();
        if ours.is_empty() {
            continue;
        }
        let Some(path) = f.persisted_rules.iter().find(|p| files.contains(&p.as_str())) else {
            out.push(format!("nothing on this host persists {save} rules (no {} or {}), so migready's {} accept rule(s) for it are live only", files[0], files[1], ours.len()));
            continue;
        };
        let saved = f.raw.ok(&format!("persist:{path}")).and_then(|t| crate::firewall::parse(t).ok());
        let kept = |r: &crate::firewall::Rule| {
            saved.as_ref().and_then(|s| s.table("filter")).is_some_and(|t| t.chains.iter().flat_map(|c| &c.rules).any(|s| s.chain == r.chain && s.comment == r.comment))
        };
        let missing: Vec<String> = ours.iter().filter(|r| !kept(r)).filter_map(|r| r.comment.clone()).collect();
        if !missing.is_empty() {
            out.push(format!("{path} lacks {} (live only)", missing.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")));
        }
    }
    out
}

/// Who besides the peers and `policy.allowed_sources` reaches a port range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Any address: nothing filters it. `why` says what lets it through (no firewall
    /// at all, or the rules accept it); `evidence` the deciding lines.
    Any { why: String, evidence: Vec<String> },
    /// An address outside them is rejected or dropped.
    Filtered { evidence: Vec<String> },
    /// Could not be told (rules not evaluated, firewalld unreadable, ...): why.
    Unknown { why: String, evidence: Vec<String> },
}

/// Addresses standing for "anyone else" (documentation ranges, RFC 5737 and 3849): the
/// first that is no peer's and inside no allowed source.
const OUTSIDERS_V4: &[&str] = &["203.0.113.1", "198.51.100.1", "192.0.2.1"];
const OUTSIDERS_V6: &[&str] = &["2001:db8::1", "2001:db8:ffff::1"];

/// From which sources beyond the peers (and the allow-list) `lo..=hi` is reachable on
/// this host: an address that is neither, judged through every firewall the host has
/// (IPv4 always; IPv6 too when the host has a global IPv6 address), each family alone.
pub fn reach_from_outside(ctx: &Ctx, lo: u16, hi: u16) -> Reach {
    let f = ctx.facts();
    let peers: Vec<IpAddr> = ctx.peer_sources().into_iter().map(|(_, a)| a).collect();
    let allowed: Vec<crate::firewall::Net> = ctx.policy.allowed_sources.iter().filter_map(|c| crate::firewall::parse_net(c)).collect();
    let pick = |list: &[&str]| -> Option<IpAddr> {
        list.iter().filter_map(|a| a.parse::<IpAddr>().ok()).find(|ip| !peers.contains(ip) && !allowed.iter().any(|n| n.contains(*ip)))
    };
    let mut outsiders: Vec<(String, IpAddr)> = Vec::new();
    if let Some(ip) = pick(OUTSIDERS_V4) {
        outsiders.push(("an address outside the peers".into(), ip));
    }
    let global_v6 = f.addresses.iter().any(|a| matches!(a, IpAddr::V6(v) if !v.is_loopback() && (v.segments()[0] & 0xffc0) != 0xfe80));
    if global_v6 && let Some(ip) = pick(OUTSIDERS_V6) {
        outsiders.push(("an address outside the peers".into(), ip));
    }
    if outsiders.is_empty() {
        return Reach::Unknown { why: "every probe address is a peer's or an allowed source".into(), evidence: Vec::new() };
    }
    // Each family on its own: open to anyone over IPv4 is open, whatever IPv6 does.
    let mut open: Vec<String> = Vec::new();
    let mut unknown: Option<String> = None;
    let mut evidence = Vec::new();
    for o in &outsiders {
        let out = judge(ctx, lo, hi, "any", None, std::slice::from_ref(o));
        evidence.push(format!("probed from {}: no peer's address, in no allowed source", o.1));
        evidence.extend(out.evidence);
        match out.status {
            Status::Pass => open.push(o.1.to_string()),
            Status::Fail => {}
            _ => unknown = unknown.or(Some(out.message)),
        }
    }
    if !open.is_empty() {
        let none = matches!(&f.iptables, Some(Firewall::Rules(r)) if r.is_empty())
            && !matches!(&f.ip6tables, Some(Firewall::Rules(r)) if !r.is_empty())
            && [&f.iptables_legacy, &f.ip6tables_legacy].iter().all(|l| !matches!(l, Some(Firewall::Rules(r)) if !r.is_empty()))
            // An empty table (iptables-nft's `ip filter` after iptables -F) filters nothing.
            && f.nft_rules().is_none_or(|r| r.tables.iter().all(|t| t.chains.iter().all(|c| c.rules.is_empty() && c.hook.as_ref().is_none_or(|h| !h.policy_drop))))
            && !matches!(&f.firewalld, Some(Firewalld::Running(_) | Firewalld::Unreadable(_)));
        let why = if none { "nothing filters it: no firewall rules at all".to_string() } else { format!("the firewall rules accept it from {}, which is no peer", open.join(", ")) };
        return Reach::Any { why, evidence };
    }
    match unknown {
        Some(why) => Reach::Unknown { why, evidence },
        None => Reach::Filtered { evidence },
    }
}

/// Judge `lo..=hi` for each of `sources` through every firewall of the host.
fn judge(ctx: &Ctx, lo: u16, hi: u16, what: &str, extra: Option<String>, sources: &[(String, IpAddr)]) -> Outcome {
    let f = ctx.facts();
    let range = if lo == hi { format!("TCP {lo}") } else { format!("TCP {lo}-{hi}") };
    match &f.firewalld {
        Some(Firewalld::Running(cfg)) => return by_firewalld(ctx, cfg, lo, hi, what, &range, sources, extra),
        Some(Firewalld::Unreadable(why)) => {
            return Outcome::warn(format!("firewalld runs but its zones could not be read: {why}")).with_all(extra);
        }
        _ => {}
    }
    let mut evidence: Vec<String> = extra.into_iter().collect();
    // (port, how) -> peers blocked that way, in order.
    let mut blocked: Vec<((u16, String), Vec<String>)> = Vec::new();
    let mut unknown: Vec<((u16, String), Vec<String>)> = Vec::new();
    let mut uncertain = Vec::new();
    let mut unreadable = None;
    let nft_listed = f.nft_rules().is_some_and(|r| !r.tables.is_empty());
    let skip = f.nft_skip();
    for (name, src) in sources {
        let fam = if src.is_ipv4() { "iptables-save" } else { "ip6tables-save" };
        let who = format!("{name} ({src})");
        match f.firewall_for(*src) {
            None => unreadable = Some(format!("{fam} was not run")),
            Some(Firewall::Unreadable(why)) => unreadable = Some(format!("{fam}: {why}")),
            // An empty iptables-save says nothing where nft lists the rules.
            Some(Firewall::Rules(rules)) if rules.tables.is_empty() && nft_listed => {}
            Some(Firewall::Rules(rules)) => iptables_judge(rules, fam, "", *src, lo, hi, &range, &who, &mut blocked, &mut evidence, &mut uncertain),
        }
        if let Some(Firewall::Rules(rules)) = f.legacy_for(*src) {
            let legacy = if src.is_ipv4() { "iptables-legacy-save" } else { "ip6tables-legacy-save" };
            iptables_judge(rules, legacy, " by legacy iptables rules", *src, lo, hi, &range, &who, &mut blocked, &mut evidence, &mut uncertain);
        }
        nft_judge(f, &skip, &who, *src, lo, hi, &range, &mut blocked, &mut unknown, &mut evidence, &mut unreadable);
    }
    uncertain.sort();
    uncertain.dedup();
    evidence.extend(uncertain.iter().map(|u| format!("uncertain: {u}")));
    if firewalld_hides_rules(ctx) {
        return Outcome::warn(format!("firewalld runs: its rules may not show in iptables-save; check {range} with firewall-cmd --list-all"))
            .with_all(evidence);
    }
    if !blocked.is_empty() {
        return Outcome::fail(format!("{} ({what} traffic)", blocked_message(&blocked, &unknown))).with_all(dedup(evidence));
    }
    if !unknown.is_empty() {
        return Outcome::warn(format!("{} ({what} traffic)", unknown_message(&unknown))).with_all(dedup(evidence));
    }
    if let Some(why) = unreadable {
        return Outcome::warn(format!("firewall not evaluated: {why}")).with_all(dedup(evidence));
    }
    let from = sources.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    if !uncertain.is_empty() {
        return Outcome::warn(format!("{range} looks accepted from {from}, but some rules could not be evaluated")).with_all(dedup(evidence));
    }
    Outcome::pass(format!("{range} accepted from {from}")).with_all(dedup(evidence))
}

/// One iptables ruleset (`label`: the command that listed it) for `src` on `lo..=hi`: the
/// first port it blocks, as dropped or rejected `by` (e.g. " by legacy iptables rules";
/// "" for the host's iptables), with `who`, else its decision as evidence.
#[allow(clippy::too_many_arguments)]
fn iptables_judge(
    rules: &crate::firewall::Ruleset,
    label: &str,
    by: &str,
    src: IpAddr,
    lo: u16,
    hi: u16,
    range: &str,
    who: &str,
    blocked: &mut Vec<((u16, String), Vec<String>)>,
    evidence: &mut Vec<String>,
    uncertain: &mut Vec<String>,
) {
    match rules.first_blocked(src, lo..=hi) {
        Some((port, d)) => {
            let how = match d.verdict {
                Verdict::Drop => format!("dropped{by} (connections hang until they time out)"),
                _ => format!("rejected{by} (\"No route to host\")"),
            };
            add_blocked(blocked, port, how, who.to_string());
            evidence.push(format!("{label}: {d}"));
            uncertain.extend(d.uncertain);
        }
        None => {
            let d = rules.input_decision(&crate::firewall::Probe::tcp(src, lo));
            evidence.push(format!("{label}: {range} from {src}: {d}"));
            uncertain.extend(d.uncertain);
        }
    }
}

fn add_blocked(blocked: &mut Vec<((u16, String), Vec<String>)>, port: u16, how: String, who: String) {
    match blocked.iter_mut().find(|(k, _)| *k == (port, how.clone())) {
        Some((_, v)) if !v.contains(&who) => v.push(who),
        Some(_) => {}
        None => blocked.push(((port, how), vec![who])),
    }
}

/// `TCP 16509 from cmp1 (198.18.42.11) is dropped ...; ...`, and what is unknown besides.
fn blocked_message(blocked: &[((u16, String), Vec<String>)], unknown: &[((u16, String), Vec<String>)]) -> String {
    let mut parts: Vec<String> = blocked.iter().map(|((port, how), who)| format!("TCP {port} from {} is {how}", who.join(", "))).collect();
    if !unknown.is_empty() {
        parts.push(unknown_message(unknown));
    }
    parts.join("; ")
}

/// `TCP 16509 from cmp1 (198.18.42.11), ...: nftables verdict unknown in chain ...: why`.
fn unknown_message(unknown: &[((u16, String), Vec<String>)]) -> String {
    unknown.iter().map(|((port, what), who)| format!("TCP {port} from {}: {what}", who.join(", "))).collect::<Vec<_>>().join("; ")
}

/// nftables' judgement of the native tables (those no other evaluator judges) for one
/// source over `lo..=hi`: a block is added to `blocked`, an unknown verdict to `unknown`,
/// the chains that decided to `evidence` (`nft: ...`).
#[allow(clippy::too_many_arguments)]
fn nft_judge(
    f: &HostFacts,
    skip: &Skip,
    who: &str,
    src: IpAddr,
    lo: u16,
    hi: u16,
    range: &str,
    blocked: &mut Vec<((u16, String), Vec<String>)>,
    unknown: &mut Vec<((u16, String), Vec<String>)>,
    evidence: &mut Vec<String>,
    unreadable: &mut Option<String>,
) {
    let rules = match &f.nftables {
        None => return,
        Some(Nft::Unreadable(why)) => {
            *unreadable = Some(why.clone());
            return;
        }
        Some(Nft::Rules(r)) => r,
    };
    let iface = nftables::incoming_iface(src, &f.interfaces);
    match rules.first_not_accepted(skip, src, lo..=hi, iface) {
        Some((port, d)) => {
            if let Some(b) = d.blocking() {
                let how = match b.verdict {
                    Some(Verdict::Drop) => "dropped",
                    _ => "rejected",
                };
                let tail = if how == "dropped" { "connections hang until they time out" } else { "\"Connection refused\" or \"No route to host\"" };
                add_blocked(blocked, port, format!("{how} by nftables chain {} of table {} {} ({tail})", b.deciding_chain(), b.family, b.table), who.to_string());
                evidence.push(format!("nft: TCP {port} from {src}: {b}"));
            } else {
                for u in d.unknown() {
                    let first = u.unknown.first().map_or("", String::as_str);
                    add_blocked(unknown, port, format!("nftables verdict unknown in chain {} of table {} {}: {first}", u.chain, u.family, u.table), who.to_string());
                    evidence.push(format!("nft: TCP {port} from {src}: {u}"));
                }
            }
            notes(&d.chains, evidence);
        }
        None => {
            let d = rules.decide(skip, src, lo, iface);
            for c in &d.chains {
                evidence.push(format!("nft: {range} from {src}: {c}{}", own_rule_nft(c)));
            }
            notes(&d.chains, evidence);
        }
    }
}

fn notes(chains: &[ChainDecision], evidence: &mut Vec<String>) {
    for c in chains {
        evidence.extend(c.notes.iter().map(|n| format!("nft: note: {n} (table {} {})", c.family, c.table)));
    }
}

/// ` (migready's rule)` when the deciding nftables rule carries fix's comment.
fn own_rule_nft(c: &ChainDecision) -> &'static str {
    match &c.by {
        By::Rule { text, .. } if text.contains(&format!("comment \"{}", crate::fix::COMMENT)) => " (migready's rule)",
        _ => "",
    }
}

/// Judge from firewalld's zones: the runtime configuration decides; a port open
/// now but not in the permanent configuration is a warning (it closes at the
/// next `firewall-cmd --reload` or reboot).
#[allow(clippy::too_many_arguments)]
fn by_firewalld(ctx: &Ctx, cfg: &Config, lo: u16, hi: u16, what: &str, range: &str, sources: &[(String, IpAddr)], extra: Option<String>) -> Outcome {
    let f = ctx.facts();
    let mut evidence: Vec<String> = extra.into_iter().collect();
    let mut blocked: Vec<((u16, String), Vec<String>)> = Vec::new();
    let mut not_permanent: Vec<String> = Vec::new();
    let mut uncertain = Vec::new();
    let mut unreadable = None;
    let mut unknown: Vec<((u16, String), Vec<String>)> = Vec::new();
    // nftables tables besides firewalld's own apply too.
    let skip = f.nft_skip();
    for (name, src) in sources {
        nft_judge(f, &skip, &format!("{name} ({src})"), *src, lo, hi, range, &mut blocked, &mut unknown, &mut evidence, &mut unreadable);
        let land = cfg.landing(*src, &f.interfaces);
        uncertain.extend(land.uncertain.iter().cloned());
        let zone = format!("firewalld zone {} ({})", land.zone, land.via);
        let who = format!("{name} ({src})");
        match cfg.first_blocked(&cfg.runtime, &land.zone, *src, lo..=hi) {
            Some((port, d)) => {
                let how = match d.verdict {
                    Verdict::Drop => format!("dropped by firewalld zone {} (connections hang until they time out)", land.zone),
                    _ => format!("rejected by firewalld zone {} (\"No route to host\")", land.zone),
                };
                add_blocked(&mut blocked, port, how, who);
                evidence.push(format!("{zone}: TCP {port} from {src}: {d}"));
                uncertain.extend(d.uncertain);
            }
            None => {
                let d = cfg.decide(&cfg.runtime, &land.zone, *src, lo);
                evidence.push(format!("{zone}: {range} from {src}: {d}{}", own_rule(&d, src, lo, hi)));
                uncertain.extend(d.uncertain);
                match &cfg.permanent {
                    Ok(p) => {
                        if let Some((port, pd)) = cfg.first_blocked(p, &land.zone, *src, lo..=hi) {
                            evidence.push(format!("firewalld permanent zone {}: TCP {port} from {src}: {pd}", land.zone));
                            not_permanent.push(who);
                        }
                    }
                    Err(e) => unreadable = Some(e.clone()),
                }
            }
        }
    }
    if let Some(Firewall::Rules(r)) = f.firewall_for(sources.first().map_or(IpAddr::from([0u8; 4]), |s| s.1))
        && !r.is_empty()
        && r.table("filter").is_none_or(|t| t.chain("INPUT_ZONES").is_none())
    {
        uncertain.push("iptables-save shows rules besides firewalld's; they apply too and are not evaluated here".into());
    }
    uncertain.sort();
    uncertain.dedup();
    evidence = dedup(evidence);
    evidence.extend(uncertain.iter().map(|u| format!("uncertain: {u}")));
    if !blocked.is_empty() {
        return Outcome::fail(format!("{} ({what} traffic)", blocked_message(&blocked, &unknown))).with_all(evidence);
    }
    if !unknown.is_empty() {
        return Outcome::warn(format!("{} ({what} traffic)", unknown_message(&unknown))).with_all(evidence);
    }
    if !not_permanent.is_empty() {
        return Outcome::warn(format!(
            "{range} is accepted from {} now, but not by firewalld's permanent configuration: it closes at the next firewall-cmd --reload or reboot",
            not_permanent.join(", ")
        ))
        .with_all(evidence);
    }
    if let Some(why) = unreadable {
        return Outcome::warn(format!("{range} accepted by firewalld now; permanent configuration not read: {why}")).with_all(evidence);
    }
    let from = sources.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    if !uncertain.is_empty() {
        return Outcome::warn(format!("{range} looks accepted by firewalld from {from}, but some rules could not be evaluated")).with_all(evidence);
    }
    Outcome::pass(format!("{range} accepted by firewalld from {from}")).with_all(evidence)
}

/// ` (migready's rule)` when the deciding rich rule is the one fix adds.
fn own_rule(d: &fwd::ZoneDecision, src: &IpAddr, lo: u16, hi: u16) -> &'static str {
    let ports = if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") };
    if d.by.strip_prefix("rich rule: ") == Some(fwd::accept_rule(&src.to_string(), &ports).as_str()) { " (migready's rule)" } else { "" }
}

fn firewalld_hides_rules(ctx: &Ctx) -> bool {
    let f = ctx.facts();
    f.firewalld.is_none()
        && f.unit("firewalld.service").is_some_and(|u| u.is_active())
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
