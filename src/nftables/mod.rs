//! Native nftables: the ruleset as `nft -j list ruleset` prints it (the JSON schema of
//! libnftables-json(5)), the rule texts of `nft -a list ruleset` for evidence, and
//! whether a new TCP connection from a peer is accepted.
//!
//! A packet for this host passes every base chain of type `filter` hooked at
//! `prerouting` and then at `input`, in priority order, of every table of its family
//! (`inet`, and `ip` for IPv4 or `ip6` for IPv6). An `accept` ends only the base chain
//! it happens in: the next base chain sees the packet too, so an accept in one table
//! does not bypass a drop in another. The connection is accepted only if every base
//! chain lets it through ([`Ruleset::decide`]).
//!
//! Inside a chain rules run in order; `jump` comes back, `goto` does not, `return` (or
//! the end of a regular chain) goes back to the caller, and the end of the base chain
//! applies its policy. An expression this code does not understand is never assumed to
//! match or not: both ways are followed, and when they end differently the verdict is
//! unknown and the rule is named ([`ChainDecision::unknown`]).
//!
//! Tables made by other tools are left to those tools' evaluators: `ip`/`ip6` tables
//! named like iptables' (`filter`, `raw`, `mangle`, ...) when `iptables-save` is the
//! nf_tables variant (its rules show there), and firewalld's table when firewalld's
//! zones are judged ([`Owner`], [`Skip`]).

mod conf;
mod eval;
mod json;
#[cfg(test)]
mod tests;

use crate::firewall::Verdict;
use std::fmt;
use std::net::IpAddr;

pub use conf::{insert_lines, locate_chain, ConfChain, ConfStmt};
pub use json::parse_json;

/// An nftables address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Arp,
    Bridge,
    Netdev,
}

impl Family {
    pub fn parse(s: &str) -> Option<Family> {
        Some(match s {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            "arp" => Family::Arp,
            "bridge" => Family::Bridge,
            "netdev" => Family::Netdev,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }

    /// Whether a packet from `src` to this host passes this family's hooks.
    pub fn sees(self, src: IpAddr) -> bool {
        match self {
            Family::Inet => true,
            Family::Ip => src.is_ipv4(),
            Family::Ip6 => src.is_ipv6(),
            _ => false,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a table, as far as it can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Written with nft (or nftables.conf): judged here.
    Native,
    /// iptables-nft's (`ip filter` with chain INPUT, xt compat expressions...).
    IptablesNft,
    /// firewalld's (`inet firewalld`; `ip`/`ip6 firewalld` before firewalld 0.9).
    Firewalld,
}

/// The whole ruleset: its tables in listing order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ruleset {
    pub tables: Vec<Table>,
    /// nft's version, from the listing's metainfo.
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub family: Family,
    pub name: String,
    pub handle: u64,
    pub chains: Vec<Chain>,
    pub sets: Vec<Set>,
}

/// A base chain's hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// `filter`, `nat`, `route`.
    pub kind: String,
    /// `input`, `prerouting`, `forward`, ...
    pub hook: String,
    pub prio: i64,
    /// `accept` unless `policy drop`.
    pub policy_drop: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub name: String,
    pub handle: u64,
    /// `None` for a regular chain (reached by jump or goto only).
    pub hook: Option<Hook>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub handle: u64,
    pub stmts: Vec<Stmt>,
    pub comment: Option<String>,
    /// The rule as `nft -a list ruleset` prints it (without `# handle N`), when known.
    pub text: Option<String>,
}

/// A named set or map.
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    pub name: String,
    /// Elements (a map's are `[key, value]` pairs, as [`Expr::List`]).
    pub elems: Vec<Expr>,
    /// Elements come and go at runtime (`dynamic`, or a timeout).
    pub dynamic: bool,
    pub is_map: bool,
}

/// A value or an expression on either side of a match.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(u64),
    Str(String),
    Bool(bool),
    /// A JSON array: flag lists (`["established", "related"]`), map pairs.
    List(Vec<Expr>),
    /// An anonymous set `{ ... }`.
    Set(Vec<Expr>),
    /// `@name`.
    SetRef(String),
    Prefix { addr: String, len: u32 },
    Range(Box<Expr>, Box<Expr>),
    Concat(Vec<Expr>),
    Payload { protocol: String, field: String },
    Meta(String),
    Ct { key: String, dir: Option<String> },
    /// `a & b` (bitmask); the operands.
    And(Box<Expr>, Box<Expr>),
    /// A verdict inside a map (`vmap`).
    Verdict(Box<Stmt>),
    /// Anything else (fib, socket, osf, numgen, raw payloads...): not understood.
    Other(serde_json::Value),
}

/// One statement of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Match { op: String, left: Expr, right: Expr },
    Accept,
    Drop,
    Reject,
    Return,
    Continue,
    Jump(String),
    Goto(String),
    /// Handed to a userspace program: its verdict is not known.
    Queue,
    /// `KEY vmap { K : VERDICT, ... }` (or a named verdict map).
    Vmap { key: Expr, data: Expr },
    /// A rate limit, quota or connection count: matches depending on state.
    Stateful(&'static str),
    /// Does not change where the packet goes (counter, log, mark setting...).
    Nop,
    /// iptables-nft's compat expression (an xtables match or target).
    Xt { target: bool, name: String },
    /// Anything else: not understood.
    Other(serde_json::Value),
}

/// Tables not to judge here: their rules are judged by another evaluator.
#[derive(Debug, Clone, Default)]
pub struct Skip {
    /// Tables iptables-save (the nf_tables variant) lists for IPv4: an iptables-nft
    /// table of that name is judged from iptables-save.
    pub iptables_nft_v4: Vec<String>,
    /// The same for ip6tables-save.
    pub iptables_nft_v6: Vec<String>,
    /// firewalld's zones are judged.
    pub firewalld: bool,
}

impl Skip {
    pub fn skips(&self, t: &Table) -> bool {
        match t.owner() {
            Owner::Native => false,
            Owner::Firewalld => self.firewalld,
            Owner::IptablesNft => match t.family {
                Family::Ip => self.iptables_nft_v4.contains(&t.name),
                Family::Ip6 => self.iptables_nft_v6.contains(&t.name),
                _ => false,
            },
        }
    }
}

/// Names iptables-nft gives its tables and built-in chains.
const XT_TABLES: &[&str] = &["filter", "nat", "mangle", "raw", "security"];
const XT_CHAINS: &[&str] = &["INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"];

impl Table {
    /// Who made this table.
    pub fn owner(&self) -> Owner {
        if self.name == "firewalld" && matches!(self.family, Family::Inet | Family::Ip | Family::Ip6) {
            return Owner::Firewalld;
        }
        let xt_exprs = self.chains.iter().flat_map(|c| &c.rules).flat_map(|r| &r.stmts).any(|s| matches!(s, Stmt::Xt { .. }));
        let xt_names = XT_TABLES.contains(&self.name.as_str())
            && self.chains.iter().any(|c| c.hook.is_some())
            && self.chains.iter().filter(|c| c.hook.is_some()).all(|c| XT_CHAINS.contains(&c.name.as_str()));
        if matches!(self.family, Family::Ip | Family::Ip6) && (xt_exprs || xt_names) {
            return Owner::IptablesNft;
        }
        Owner::Native
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// `inet filter`.
    pub fn id(&self) -> String {
        format!("{} {}", self.family, self.name)
    }
}

impl Rule {
    /// The rule's text for evidence: as nft prints it, else its comment.
    pub fn describe(&self) -> String {
        match (&self.text, &self.comment) {
            (Some(t), _) => t.clone(),
            (None, Some(c)) => format!("comment \"{c}\""),
            (None, None) => "(rule text not listed)".into(),
        }
    }
}

/// What decided in one base chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    /// A rule: the chain it is in (the base chain or one jumped to), its handle and text.
    Rule { chain: String, handle: u64, text: String },
    /// The base chain's policy, applied when the walk ended in `ended_in` (the base
    /// chain itself, or a chain reached by goto).
    Policy { ended_in: String },
    /// The walk could not be finished (a loop, too many unknown rules).
    Unfinished(String),
}

/// The verdict of one base chain for a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainDecision {
    pub family: Family,
    pub table: String,
    /// The base chain.
    pub chain: String,
    pub hook: String,
    pub prio: i64,
    /// `None`: unknown (it depends on rules not understood).
    pub verdict: Option<Verdict>,
    pub by: By,
    /// Why unknown: the rules not understood on the way, with what was not understood.
    pub unknown: Vec<String>,
    /// Caveats that did not change the verdict (a dynamic set's snapshot...).
    pub notes: Vec<String>,
}

impl ChainDecision {
    pub fn is_accept(&self) -> bool {
        self.verdict == Some(Verdict::Accept)
    }

    pub fn is_blocked(&self) -> bool {
        matches!(self.verdict, Some(Verdict::Drop | Verdict::Reject))
    }

    /// Where the rule that decides lives, or where the walk ended under the policy.
    pub fn deciding_chain(&self) -> &str {
        match &self.by {
            By::Rule { chain, .. } => chain,
            By::Policy { ended_in } => ended_in,
            By::Unfinished(_) => &self.chain,
        }
    }
}

impl fmt::Display for ChainDecision {
    /// `DROP by policy of chain input (table inet filter)`,
    /// `REJECT by rule handle 7 in chain input (table inet filter): tcp dport 16509 reject`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = format!("table {} {}", self.family, self.table);
        match self.verdict {
            None => write!(f, "verdict unknown in chain {} ({table}): {}", self.chain, self.unknown.join("; ")),
            Some(v) => match &self.by {
                By::Rule { chain, handle, text } if *chain == self.chain => write!(f, "{v} by rule handle {handle} in chain {chain} ({table}): {text}"),
                By::Rule { chain, handle, text } => {
                    write!(f, "{v} by rule handle {handle} in chain {chain} (reached from base chain {}, {table}): {text}", self.chain)
                }
                By::Policy { ended_in } if *ended_in == self.chain => write!(f, "{v} by policy of chain {} ({table})", self.chain),
                By::Policy { ended_in } => write!(f, "{v} by policy of chain {} at the end of chain {ended_in} (goto, {table})", self.chain),
                By::Unfinished(why) => write!(f, "{v} in chain {} ({table}): {why}", self.chain),
            },
        }
    }
}

/// The verdict of every base chain a probe passes, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub chains: Vec<ChainDecision>,
}

impl Decision {
    /// Accept (every chain accepts), blocked (some chain drops or rejects for sure) or
    /// unknown (`None`).
    pub fn verdict(&self) -> Option<Verdict> {
        if let Some(b) = self.blocking() {
            return b.verdict;
        }
        if self.chains.iter().all(|c| c.is_accept()) { Some(Verdict::Accept) } else { None }
    }

    pub fn is_accept(&self) -> bool {
        self.verdict() == Some(Verdict::Accept)
    }

    /// The first base chain that certainly drops or rejects.
    pub fn blocking(&self) -> Option<&ChainDecision> {
        self.chains.iter().find(|c| c.is_blocked())
    }

    /// The base chains whose verdict is unknown.
    pub fn unknown(&self) -> impl Iterator<Item = &ChainDecision> {
        self.chains.iter().filter(|c| c.verdict.is_none())
    }

    /// True when no base chain of the family filters: nothing to judge.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }
}

impl Ruleset {
    /// The ruleset from `nft -j list ruleset`, with the rule texts of `nft -a list ruleset`
    /// where that listing is given.
    pub fn parse(json: &str, listing: Option<&str>) -> Result<Ruleset, String> {
        let mut r = parse_json(json)?;
        if let Some(text) = listing {
            r.attach_texts(text);
        }
        Ok(r)
    }

    pub fn table(&self, family: Family, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.family == family && t.name == name)
    }

    /// Tables that are judged here (not skipped), for a source of this family.
    pub fn judged<'a>(&'a self, skip: &'a Skip, src: IpAddr) -> impl Iterator<Item = &'a Table> + 'a {
        self.tables.iter().filter(move |t| t.family.sees(src) && !skip.skips(t))
    }

    /// Rule texts by handle from `nft -a list ruleset`: each rule line ends with
    /// `# handle N`, inside `table FAMILY NAME {` and `chain NAME {`.
    pub fn attach_texts(&mut self, listing: &str) {
        let (mut table, mut chain): (Option<(Family, String)>, Option<String>) = (None, None);
        for line in listing.lines() {
            let l = line.trim();
            if let Some(rest) = l.strip_prefix("table ") {
                let mut w = rest.split_whitespace();
                if let (Some(fam), Some(name)) = (w.next().and_then(Family::parse), w.next()) {
                    table = Some((fam, name.to_string()));
                    chain = None;
                }
                continue;
            }
            // `chain input { # handle 1`; sets, maps and flowtables hold no rules.
            if let Some(rest) = l.strip_prefix("chain ") {
                chain = rest.split_whitespace().next().map(|s| s.trim_matches('"').to_string());
                continue;
            }
            if ["set ", "map ", "flowtable "].iter().any(|p| l.starts_with(p)) {
                chain = None;
                continue;
            }
            let (Some((fam, tname)), Some(cname)) = (&table, &chain) else { continue };
            let Some((body, handle)) = l.rsplit_once(" # handle ") else { continue };
            let Ok(handle) = handle.trim().parse::<u64>() else { continue };
            let Some(t) = self.tables.iter_mut().find(|t| t.family == *fam && t.name == *tname) else { continue };
            let Some(c) = t.chains.iter_mut().find(|c| c.name == *cname) else { continue };
            if let Some(r) = c.rules.iter_mut().find(|r| r.handle == handle) {
                r.text = Some(body.trim().to_string());
            }
        }
    }

    /// How every base chain a new TCP connection from `src` to `port` passes judges it
    /// (tables in `skip` left out). `iface`: the interface the peer's packets arrive
    /// on, when known.
    pub fn decide(&self, skip: &Skip, src: IpAddr, port: u16, iface: Option<&str>) -> Decision {
        eval::decide(self, skip, &crate::firewall::Probe::tcp(src, port), iface)
    }

    /// The first port of `ports` not certainly accepted, with its decision.
    pub fn first_not_accepted(&self, skip: &Skip, src: IpAddr, ports: std::ops::RangeInclusive<u16>, iface: Option<&str>) -> Option<(u16, Decision)> {
        ports.map(|p| (p, self.decide(skip, src, p, iface))).find(|(_, d)| !d.is_accept())
    }
}

/// The interface a peer's packets arrive on: the one whose network holds its address.
pub fn incoming_iface(src: IpAddr, ifaces: &[crate::firewalld::IfaceNet]) -> Option<&str> {
    let mut best: Option<&crate::firewalld::IfaceNet> = None;
    for i in ifaces.iter().filter(|i| i.net.contains(src) && i.iface != "lo") {
        let len = |n: &crate::firewalld::IfaceNet| n.net.prefix_len().unwrap_or(0);
        if len(i) == if src.is_ipv4() { 32 } else { 128 } {
            continue; // a host route, not a network
        }
        if best.is_none_or(|b| len(i) > len(b)) {
            best = Some(i);
        }
    }
    best.map(|i| i.iface.as_str())
}

/// An nft string literal for a comment: what fix writes (`"migready: ..."`).
pub fn quote_comment(c: &str) -> String {
    format!("\"{c}\"")
}
