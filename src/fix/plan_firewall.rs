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
//! - nftables (native tables; iptables-nft's and firewalld's are the two above): in
//!   every base chain that drops or rejects, an accept (`ip saddr A tcp dport P accept
//!   comment "migready: ..."`) inserted right before the rule that blocks (`nft insert
//!   rule ... position HANDLE`), or appended to the chain whose end applies a drop
//!   policy (`nft add rule ...`), each with `--echo --handle`: the runner journals the
//!   new rule's handle, and rollback deletes that handle while it carries the comment.
//!   Persisted in the file nftables.service loads (or one it includes), in the same
//!   chain at the same place, when that chain is written there rule for rule as it is
//!   live; else a note says why not.

use super::{refused, status, Edits, Step};
use crate::checks::{id, Ctx, Finding, Status};
use crate::facts::{Firewall, Firewalld, Nft};
use crate::firewall::{self, Decision, Probe};
use crate::firewalld as fwd;
use crate::formats::EditError;
use crate::nftables::{self, By, ChainDecision, Family};
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
    let fix_libvirt = needs(id::FIREWALL_LIBVIRT);
    let fix_migration = needs(id::FIREWALL_MIGRATION);
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
    let port = ctx.libvirt_port();
    let mut wanted: Vec<Wanted> = Vec::new();
    if fix_libvirt {
        // Its own comment under tls: the TCP port's rule may still be there (tcp -> tls),
        // and nftables' undo checks the rule's comment, unique in the chain, with its handle.
        let what = if ctx.transport() == crate::inventory::Transport::Tls { "libvirt-tls" } else { "libvirt" };
        wanted.push(Wanted { what, lo: port, hi: port });
    }
    if fix_migration && lo > hi {
        notes.push(format!("firewall.migration: qemu.conf migration_port_min {lo} is above migration_port_max {hi}; correct qemu.conf by hand"));
    } else if fix_migration {
        wanted.push(Wanted { what: "migration", lo, hi });
    }
    if let Some(cfg) = firewalld {
        plan_firewalld(ctx, cfg, &wanted, &sources, steps, notes);
        plan_nftables(ctx, &wanted, &sources, edits, steps, notes);
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
    legacy_notes(ctx, &wanted, &sources, notes);
    plan_nftables(ctx, &wanted, &sources, edits, steps, notes);
}

/// Legacy iptables rules (beside the nf_tables variant `iptables` is) that refuse a
/// source: fix changes neither them nor how the host loads them; a note says so.
fn legacy_notes(ctx: &Ctx, wanted: &[Wanted], sources: &[(String, String, IpAddr)], notes: &mut Vec<String>) {
    let f = ctx.facts();
    for w in wanted {
        for (name, _, ip) in sources {
            let Some(Firewall::Rules(rules)) = f.legacy_for(*ip) else { continue };
            if let Some((_, d)) = rules.first_blocked(*ip, w.lo..=w.hi) {
                let save = if ip.is_ipv4() { "iptables-legacy-save" } else { "ip6tables-legacy-save" };
                notes.push(format!(
                    "firewall: {} TCP {} from {name} ({ip}) is refused by legacy iptables rules ({save}: {d}) that this host's iptables (the nf_tables variant) does not show; not changed: remove them or accept the peers with {}",
                    w.what,
                    w.ports(),
                    if ip.is_ipv4() { "iptables-legacy" } else { "ip6tables-legacy" }
                ));
            }
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
        if ipv6 { ("ip6tables-save", crate::facts::IP6TABLES_PERSIST) } else { ("iptables-save", crate::facts::IPTABLES_PERSIST) };
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

/// One accept planned in an nftables chain.
struct NftInsert {
    family: Family,
    table: String,
    chain: String,
    /// Handle of the rule it goes before (None: at the end of the chain).
    before: Option<u64>,
    rule: Vec<String>,
    comment: String,
    why: String,
}

/// A name nft takes as one bare word (tables and chains named otherwise are left alone).
fn nft_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// `migready: libvirt from cmp1 198.18.42.11`: unique in a chain (it names the source),
/// at most 128 bytes, no quotes.
fn nft_comment(what: &str, name: &str, src: &str) -> String {
    if name == src {
        // An allowed source: its address is its name.
        return format!("{COMMENT} {what} from {src}");
    }
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).take(60).collect();
    format!("{COMMENT} {what} from {name} {src}")
}

/// Accepts in every native nftables base chain that blocks a source, and the same
/// lines in the file nftables.service loads.
fn plan_nftables(ctx: &Ctx, wanted: &[Wanted], sources: &[(String, String, IpAddr)], edits: &mut Edits, steps: &mut Vec<Step>, notes: &mut Vec<String>) {
    let f = ctx.facts();
    let rules = match &f.nftables {
        None => return,
        Some(Nft::Unreadable(why)) => {
            notes.push(format!("firewall: nftables not read ({why}); nothing changed in it"));
            return;
        }
        Some(Nft::Rules(r)) => r,
    };
    let skip = f.nft_skip();
    let mut inserts: Vec<NftInsert> = Vec::new();
    for w in wanted {
        for (name, src_arg, ip) in sources {
            let iface = nftables::incoming_iface(*ip, &f.interfaces);
            // Each base chain that does not accept some port of the range, with its
            // decision for the first such port.
            let mut chains: Vec<ChainDecision> = Vec::new();
            for port in w.lo..=w.hi {
                for c in rules.decide(&skip, *ip, port, iface).chains {
                    if !c.is_accept() && !chains.iter().any(|k| (k.family, &k.table, &k.chain) == (c.family, &c.table, &c.chain)) {
                        chains.push(c);
                    }
                }
            }
            let addr = src_arg.strip_suffix(if ip.is_ipv4() { "/32" } else { "/128" }).unwrap_or(src_arg);
            for c in chains {
                let what = format!("{} TCP {} from {name} ({ip})", w.what, w.ports());
                let (chain, before) = match (&c.verdict, &c.by) {
                    (None, _) | (_, By::Unfinished(_)) => {
                        notes.push(format!("firewall: {what}: {c}; nftables not changed there"));
                        continue;
                    }
                    (_, By::Rule { chain, handle, .. }) => (chain.clone(), Some(*handle)),
                    (_, By::Policy { ended_in }) => (ended_in.clone(), None),
                };
                if !nft_word(&c.table) || !nft_word(&chain) {
                    notes.push(format!("firewall: {what}: table {} {} chain {chain}: a name nft needs quoted; not changed", c.family, c.table));
                    continue;
                }
                let comment = nft_comment(w.what, name, addr);
                let live = rules.table(c.family, &c.table).and_then(|t| t.chain(&chain));
                if let Some(r) = live.and_then(|l| l.rules.iter().find(|r| r.comment.as_deref() == Some(comment.as_str()))) {
                    notes.push(format!("firewall: {what}: chain {chain} of table {} {} has migready's rule (handle {}) already, but it does not decide: {c}; not changed", c.family, c.table, r.handle));
                    continue;
                }
                let kw = match (c.family, ip.is_ipv4()) {
                    (Family::Ip6, _) | (Family::Inet, false) => "ip6",
                    _ => "ip",
                };
                let rule: Vec<String> = [kw, "saddr", addr, "tcp", "dport", &w.ports(), "accept"].iter().map(|s| s.to_string()).collect();
                let why = format!("accept {what} before {c}");
                inserts.push(NftInsert { family: c.family, table: c.table.clone(), chain, before, rule, comment, why });
            }
        }
    }
    if inserts.is_empty() {
        return;
    }
    for i in &inserts {
        steps.push(Step::NftRule {
            family: i.family.to_string(),
            table: i.table.clone(),
            chain: i.chain.clone(),
            before: i.before,
            rule: i.rule.clone(),
            comment: i.comment.clone(),
            why: i.why.clone(),
        });
    }
    if let Err(why) = persist_nft(f, rules, &inserts, edits) {
        notes.push(format!("firewall: the new nftables rules are not persisted: {why}; they last until nftables.service restarts or the host reboots"));
    }
}

/// The same rules, at the same places, in the files nftables.service loads.
fn persist_nft(f: &crate::facts::HostFacts, rules: &nftables::Ruleset, inserts: &[NftInsert], edits: &mut Edits) -> Result<(), String> {
    if !f.unit("nftables.service").is_some_and(|u| u.is_enabled()) {
        return Err("nftables.service is not enabled, so nothing loads a ruleset file at boot".into());
    }
    let files = f.nft_files();
    if files.is_empty() {
        return Err("the file nftables.service loads could not be read".into());
    }
    // path -> insertion points (line, indent, statements) in that file's original text.
    let mut at: Vec<(String, Vec<(usize, String, Vec<String>)>)> = Vec::new();
    for i in inserts {
        let conf = nftables::locate_chain(&files, i.family, &i.table, &i.chain)?;
        let live = rules.table(i.family, &i.table).and_then(|t| t.chain(&i.chain)).ok_or_else(|| format!("chain {} is not live", i.chain))?;
        let ours = |r: &nftables::Rule| r.comment.as_deref().is_some_and(|c| c.starts_with(COMMENT));
        if live.rules.len() != conf.rules.len() {
            return Err(format!(
                "chain {} of table {} {} has {} rules live and {} in {}: they differ (rules added or removed since it was loaded{})",
                i.chain,
                i.family,
                i.table,
                live.rules.len(),
                conf.rules.len(),
                conf.path,
                if live.rules.iter().any(ours) { ", migready's among them" } else { "" }
            ));
        }
        let index = match i.before {
            None => None,
            Some(h) => {
                let k = live.rules.iter().position(|r| r.handle == h).ok_or_else(|| format!("rule handle {h} is not live"))?;
                let (lr, cr) = (&live.rules[k], &conf.rules[k]);
                if let Some(v) = verdict_word(lr.text.as_deref().unwrap_or(""))
                    && !cr.text.split_whitespace().any(|w| w == v)
                {
                    return Err(format!("{}:{}: `{}` is not the live rule {} (`{}`)", conf.path, cr.first_line + 1, cr.text, h, lr.describe()));
                }
                Some(k)
            }
        };
        let text = &files.iter().find(|(p, _)| *p == conf.path).expect("located in these files").1;
        let (line, indent) = conf.insertion_point(text, index)?;
        let stmt = format!("{} comment {}", i.rule.join(" "), nftables::quote_comment(&i.comment));
        let entry = match at.iter_mut().position(|(p, _)| *p == conf.path) {
            Some(k) => &mut at[k].1,
            None => {
                at.push((conf.path.clone(), Vec::new()));
                &mut at.last_mut().expect("just pushed").1
            }
        };
        match entry.iter_mut().find(|(l, ind, _)| *l == line && *ind == indent) {
            Some((_, _, v)) => v.push(stmt),
            None => entry.push((line, indent, vec![stmt])),
        }
    }
    for (path, points) in at {
        let text = &files.iter().find(|(p, _)| *p == path).expect("located in these files").1;
        let new = nftables::insert_lines(text, points);
        edits
            .edit(&path, Some(text), "persist the new nftables rules (nftables.service loads this file)", |_| Ok(new))
            .map_err(|e| e.note(&path))?;
    }
    Ok(())
}

/// The verdict word of a rule's text (`drop`, `reject`, `jump`, ...), to check that a
/// file's rule is the live one.
fn verdict_word(text: &str) -> Option<&'static str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    ["drop", "reject", "accept", "jump", "goto", "return", "queue", "vmap"].into_iter().find(|v| words.contains(v))
}
