//! Firewall: accept the libvirt port and the qemu.conf migration range from
//! each peer host (and `policy.allowed_sources`) only.
//!
//! - firewalld: a rich rule per source and port range (`rule family="ipv4"
//!   source address="A/32" port port="16509" protocol="tcp" accept`) in the zone
//!   the source's packets land in, added to the runtime and to the permanent
//!   configuration (each only where missing). Rich rules carry no comment:
//!   migready knows its own by their exact text.
//! - iptables / ip6tables (by the source's address family): an ACCEPT inserted
//!   right before the rule that blocks it (or first in INPUT under a DROP
//!   policy), with a `migready:` comment. Where the host persists its rules
//!   (/etc/sysconfig/iptables, /etc/iptables/rules.v4; /etc/sysconfig/ip6tables,
//!   /etc/iptables/rules.v6), the same lines go into that file, before the same
//!   blocking rule.

use super::{refused, status, Edits, Step};
use crate::checks::{Ctx, Finding, Status};
use crate::facts::{Firewall, Firewalld};
use crate::firewalld as fwd;
use crate::firewall::{self, Decision, Probe};
use crate::formats::EditError;
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

/// Longest `--comment` iptables takes (XT_MAX_COMMENT_LEN, 256 with the NUL).
const MAX_COMMENT: usize = 255;

/// The `--comment` of the rule accepting `what` from `name`: `migready: libvirt
/// from cmp1`. `"`, `\` and control characters are dropped (older
/// iptables-restore cannot read an escaped quote, and a newline would end the
/// saved rule's line), and the text is cut to what iptables accepts.
fn rule_comment(what: &str, name: &str) -> String {
    let mut comment: String = format!("{COMMENT} {what} from {name}")
        .chars()
        .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
        .collect();
    if comment.len() > MAX_COMMENT {
        let mut end = MAX_COMMENT;
        while !comment.is_char_boundary(end) {
            end -= 1;
        }
        comment.truncate(end);
    }
    comment
}

pub(super) fn plan(ctx: &Ctx, findings: &[Finding], edits: &mut Edits, steps: &mut Vec<Step>, notes: &mut Vec<String>) {
    let f = ctx.facts();
    let firewalld = f.firewalld_running();
    // Under firewalld a warning can mean "open now, not permanently": fixable too.
    let needs = |id: &str| match status(findings, id) {
        Status::Fail => true,
        Status::Warn => firewalld.is_some(),
        _ => false,
    };
    let fix_libvirt = needs("firewall.libvirt");
    let fix_migration = needs("firewall.migration");
    if !fix_libvirt && !fix_migration {
        return;
    }
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
    let mut wanted: Vec<Wanted> = Vec::new();
    if fix_libvirt {
        wanted.push(Wanted { what: "libvirt", lo: port, hi: port });
    }
    if fix_migration && lo > hi {
        notes.push(format!("firewall.migration: qemu.conf migration_port_min {lo} is above migration_port_max {hi}; correct qemu.conf by hand"));
    } else if fix_migration {
        wanted.push(Wanted { what: "migration", lo, hi });
    }
    if let Some(cfg) = firewalld {
        plan_firewalld(ctx, cfg, &wanted, &sources, steps, notes);
        return;
    }
    if matches!(f.firewalld, Some(Firewalld::Unreadable(_))) || (f.firewalld.is_none() && f.unit("firewalld.service").is_some_and(|u| u.is_active())) {
        notes.push("firewall: firewalld runs but its zones could not be read; nothing changed".into());
        return;
    }
    for ipv6 in [false, true] {
        let fam: Vec<&(String, String, IpAddr)> = sources.iter().filter(|s| s.2.is_ipv6() == ipv6).collect();
        if !fam.is_empty() {
            plan_iptables(ctx, ipv6, &wanted, &fam, edits, steps, notes);
        }
    }
}

struct Wanted {
    what: &'static str,
    lo: u16,
    hi: u16,
}

impl Wanted {
    /// `16509` or `49152-49215`.
    fn ports(&self) -> String {
        if self.lo == self.hi { self.lo.to_string() } else { format!("{}-{}", self.lo, self.hi) }
    }
}

/// Rich rules in the zone each source's packets land in, runtime and permanent
/// (no `--reload`: that would drop other runtime-only changes).
fn plan_firewalld(ctx: &Ctx, cfg: &fwd::Config, wanted: &[Wanted], sources: &[(String, String, IpAddr)], steps: &mut Vec<Step>, notes: &mut Vec<String>) {
    let f = ctx.facts();
    // Per zone, in plan order: (zone, runtime rules, permanent rules, what they accept).
    type ZoneRules = (String, Vec<String>, Vec<String>, Vec<String>);
    let mut zones: Vec<ZoneRules> = Vec::new();
    for w in wanted {
        for (name, src_arg, ip) in sources {
            let land = cfg.landing(*ip, &f.interfaces);
            let rule = fwd::accept_rule(src_arg, &w.ports());
            let deny = |d: &fwd::ZoneDecision, which: &str| {
                format!(
                    "firewall: {} TCP {} from {name} ({ip}) is refused by {which} firewalld zone {}'s {}; an accepting rich rule would not help, not changed",
                    w.what,
                    w.ports(),
                    land.zone,
                    d.by
                )
            };
            let runtime = match cfg.first_blocked(&cfg.runtime, &land.zone, *ip, w.lo..=w.hi) {
                Some((_, d)) if d.by_deny_rule() => {
                    notes.push(deny(&d, "the runtime"));
                    continue;
                }
                b => b.is_some(),
            };
            let permanent = match &cfg.permanent {
                Ok(p) => match cfg.first_blocked(p, &land.zone, *ip, w.lo..=w.hi) {
                    Some((_, d)) if d.by_deny_rule() => {
                        notes.push(deny(&d, "the permanent"));
                        false
                    }
                    b => b.is_some(),
                },
                Err(e) => {
                    notes.push(format!("firewall: firewalld's permanent configuration not read ({e}); {} from {name} opened until the next reload only", w.what));
                    false
                }
            };
            if !runtime && !permanent {
                continue;
            }
            let i = match zones.iter().position(|z| z.0 == land.zone) {
                Some(i) => i,
                None => {
                    zones.push((land.zone.clone(), Vec::new(), Vec::new(), Vec::new()));
                    zones.len() - 1
                }
            };
            let z = &mut zones[i];
            if runtime {
                z.1.push(rule.clone());
            }
            if permanent {
                z.2.push(rule);
            }
            z.3.push(format!("{} TCP {} from {name}", w.what, w.ports()));
        }
    }
    for (zone, runtime, permanent, what) in zones {
        let accept = what.join(", ");
        if !runtime.is_empty() {
            steps.push(Step::FirewalldRich { zone: zone.clone(), permanent: false, rules: runtime, why: format!("accept {accept} in firewalld zone {zone}, now") });
        }
        if !permanent.is_empty() {
            steps.push(Step::FirewalldRich {
                zone: zone.clone(),
                permanent: true,
                rules: permanent,
                why: "the same in the permanent configuration (kept across reload and reboot)".into(),
            });
        }
    }
}

/// ACCEPT rules in iptables (or ip6tables) before the rule that blocks, and in
/// the file that persists that family's rules.
fn plan_iptables(ctx: &Ctx, ipv6: bool, wanted: &[Wanted], sources: &[&(String, String, IpAddr)], edits: &mut Edits, steps: &mut Vec<Step>, notes: &mut Vec<String>) {
    let f = ctx.facts();
    let (save, files): (&str, [&str; 2]) =
        if ipv6 { ("ip6tables-save", ["/etc/sysconfig/ip6tables", "/etc/iptables/rules.v6"]) } else { ("iptables-save", ["/etc/sysconfig/iptables", "/etc/iptables/rules.v4"]) };
    let rules = match if ipv6 { &f.ip6tables } else { &f.iptables } {
        Some(Firewall::Rules(r)) => r,
        Some(Firewall::Unreadable(why)) => {
            notes.push(format!("firewall: {save} not readable ({why}); nothing changed for {} peers", if ipv6 { "IPv6" } else { "IPv4" }));
            return;
        }
        None => {
            notes.push(format!("firewall: {save} was not run; nothing changed"));
            return;
        }
    };
    let mut inserts: Vec<Insert> = Vec::new();
    for w in wanted {
        let dport = w.ports().replace('-', ":");
        for (name, src_arg, ip) in sources {
            let blocked: Option<Decision> = if w.lo != w.hi {
                rules.first_blocked(*ip, w.lo..=w.hi).map(|(_, d)| d)
            } else {
                let d = rules.input_decision(&Probe::tcp(*ip, w.lo));
                (!d.is_accept()).then_some(d)
            };
            let Some(d) = blocked else { continue };
            let (chain, position, before) = match &d.rule {
                Some(r) => (r.chain.clone(), r.index, Some(r.text.clone())),
                None => ("INPUT".to_string(), 1, None),
            };
            let args: Vec<String> = [
                "-s", src_arg, "-p", "tcp", "-m", "tcp", "--dport", &dport, "-m", "comment", "--comment",
                &rule_comment(w.what, name), "-j", "ACCEPT",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let why = format!("accept {} TCP {} from {name} before {}", w.what, w.ports(), d);
            inserts.push(Insert { chain, position, before, args, why });
        }
    }
    if inserts.is_empty() {
        return;
    }
    // Rules inserted at the same position end up in reverse order; insert the
    // last first so the final order matches the plan.
    for ins in inserts.iter().rev() {
        steps.push(Step::FirewallInsert { ipv6, chain: ins.chain.clone(), position: ins.position, args: ins.args.clone(), why: ins.why.clone() });
    }
    // Persist.
    let Some(path) = f.persisted_rules.iter().find(|p| files.contains(&p.as_str())) else {
        notes.push(format!(
            "firewall: nothing on this host persists {} rules (no {} or {}): the new rules are lost at reboot",
            if ipv6 { "ip6tables" } else { "iptables" },
            files[0],
            files[1]
        ));
        return;
    };
    let Some(text) = f.raw.ok(&format!("persist:{path}")) else { return };
    if let Err(e) = edits.edit(path, Some(text), "persist the new rules", |cur| persist_edit(cur, &inserts)) {
        notes.push(refused("firewall", path, None, e));
    }
}

/// Insert `-A` lines for `inserts` into a saved ruleset, each before the line of
/// the rule it must precede (or before the first INPUT rule under a DROP policy).
fn persist_edit(text: &str, inserts: &[Insert]) -> Result<String, EditError> {
    let saved = firewall::parse(text).map_err(|e| EditError::new(Some(e.line), format!("cannot parse it: {}", e.message)))?;
    let filter = saved.table("filter").ok_or_else(|| EditError::new(None, "it has no *filter table"))?;
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    // line number (1-based) -> lines to insert before it
    let mut at: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for ins in inserts {
        let rule_text = format!("-A {} {}", ins.chain, firewall::save_join(&ins.args));
        let line = match &ins.before {
            Some(before) => filter
                .chains
                .iter()
                .flat_map(|c| &c.rules)
                .find(|r| &r.text == before)
                .map(|r| r.line)
                .ok_or_else(|| EditError::new(None, format!("the rule `{before}` is not in it (the live rules differ from the saved ones)")))?,
            None => filter
                .chain("INPUT")
                .and_then(|c| c.rules.first().map(|r| r.line))
                .or_else(|| text.lines().enumerate().skip_while(|(_, l)| l.trim() != "*filter").find(|(_, l)| l.trim() == "COMMIT").map(|(i, _)| i + 1))
                .ok_or_else(|| EditError::new(None, "no place for INPUT rules in it"))?,
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
