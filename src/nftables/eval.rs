//! Walking the base chains a new inbound TCP connection passes.

use super::{By, Chain, ChainDecision, Decision, Expr, Hook, Rule, Ruleset, Skip, Stmt, Table};
use crate::firewall::{Probe, Proto, Verdict};
use std::net::IpAddr;

/// Paths followed in one base chain before giving up (each expression not understood
/// doubles them).
const MAX_LEAVES: usize = 64;
/// Jumps followed on one path (the kernel refuses loops; a hand-made listing may not).
const MAX_JUMPS: usize = 1000;
/// TCP flag bits.
const FIN: u64 = 0x01;
const SYN: u64 = 0x02;
const RST: u64 = 0x04;
const PSH: u64 = 0x08;
const ACK: u64 = 0x10;
const URG: u64 = 0x20;
const ECN: u64 = 0x40;
const CWR: u64 = 0x80;

/// Outcome of one expression for the probe.
#[derive(Debug, Clone, PartialEq)]
enum Tri {
    Yes,
    No,
    /// Cannot be told; why.
    Unknown(String),
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }

    fn negate(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            u => u,
        }
    }

    /// Any of several (a set's elements).
    fn any(items: impl IntoIterator<Item = Tri>) -> Tri {
        let mut unknown = None;
        for t in items {
            match t {
                Tri::Yes => return Tri::Yes,
                Tri::No => {}
                Tri::Unknown(w) => unknown = unknown.or(Some(w)),
            }
        }
        unknown.map_or(Tri::No, Tri::Unknown)
    }

    /// All of several (a concatenation's parts).
    fn all(items: impl IntoIterator<Item = Tri>) -> Tri {
        let mut unknown = None;
        for t in items {
            match t {
                Tri::No => return Tri::No,
                Tri::Yes => {}
                Tri::Unknown(w) => unknown = unknown.or(Some(w)),
            }
        }
        unknown.map_or(Tri::Yes, Tri::Unknown)
    }
}

/// What a field of the probe holds.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Port(u16),
    /// The peer's source port: ephemeral, not known.
    SourcePort,
    Addr(IpAddr),
    /// A symbolic value: protocol names, `new`, an interface name...
    Name(&'static str, u64),
    Iface(String),
    /// Some interface, not known which; never loopback (a remote peer's packets).
    RemoteIface,
    /// TCP flags (after a mask, when one is applied).
    Flags(u64),
    Tuple(Vec<Val>),
    /// The header or field does not exist for this packet: every match on it fails.
    Absent,
    Unknown(String),
}

pub(super) fn decide(rs: &Ruleset, skip: &Skip, probe: &Probe, iface: Option<&str>) -> Decision {
    let mut bases: Vec<(usize, &Table, &Chain, &Hook)> = Vec::new();
    for t in rs.judged(skip, probe.src) {
        for c in &t.chains {
            if let Some(h) = &c.hook
                && h.kind == "filter"
                && (h.hook == "input" || h.hook == "prerouting")
            {
                bases.push((bases.len(), t, c, h));
            }
        }
    }
    bases.sort_by_key(|(i, _, _, h)| (h.hook != "prerouting", h.prio, *i));
    Decision { chains: bases.into_iter().map(|(_, t, c, h)| chain_decision(t, c, h, probe, iface)).collect() }
}

/// One path's end in a base chain.
struct Leaf {
    verdict: Option<Verdict>,
    by: By,
}

#[derive(Clone)]
struct St<'a> {
    chain: &'a Chain,
    pos: usize,
    stmt: usize,
    stack: Vec<(&'a Chain, usize)>,
    jumps: usize,
}

struct Walk<'a> {
    table: &'a Table,
    hook: &'a Hook,
    probe: &'a Probe,
    iface: Option<&'a str>,
    leaves: Vec<Leaf>,
    /// Rules whose expressions were not understood (both ways followed).
    forked: Vec<String>,
    /// Why a path ended without a known verdict.
    unknown: Vec<String>,
    notes: Vec<String>,
}

/// What one statement does to the walk.
enum Step<'a> {
    Pass,
    NoMatch,
    Unknown(String),
    Verdict(&'a Stmt),
    /// Ends the path without a known verdict (queue, an xtables target...).
    Opaque(String),
}

fn chain_decision(t: &Table, c: &Chain, h: &Hook, probe: &Probe, iface: Option<&str>) -> ChainDecision {
    let mut w = Walk { table: t, hook: h, probe, iface, leaves: Vec::new(), forked: Vec::new(), unknown: Vec::new(), notes: Vec::new() };
    w.run(St { chain: c, pos: 0, stmt: 0, stack: Vec::new(), jumps: 0 });
    let first = w.leaves.first();
    let all = |f: fn(Option<Verdict>) -> bool| w.leaves.iter().all(|l| f(l.verdict));
    let verdict = if all(|v| v == Some(Verdict::Accept)) {
        Some(Verdict::Accept)
    } else if all(|v| matches!(v, Some(Verdict::Drop | Verdict::Reject))) {
        first.and_then(|l| l.verdict)
    } else {
        None
    };
    let mut unknown = Vec::new();
    if verdict.is_none() {
        unknown.extend(w.unknown.iter().cloned());
        unknown.extend(w.forked.iter().cloned());
        dedup(&mut unknown);
    }
    dedup(&mut w.notes);
    ChainDecision {
        family: t.family,
        table: t.name.clone(),
        chain: c.name.clone(),
        hook: h.hook.clone(),
        prio: h.prio,
        verdict,
        by: first.map_or(By::Unfinished("no path".into()), |l| l.by.clone()),
        unknown,
        notes: w.notes,
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen: Vec<String> = Vec::new();
    v.retain(|s| {
        if seen.contains(s) {
            false
        } else {
            seen.push(s.clone());
            true
        }
    });
}

fn rule_at(chain: &Chain, rule: &Rule) -> String {
    format!("rule handle {} in chain {} ({})", rule.handle, chain.name, rule.describe())
}

impl<'a> Walk<'a> {
    fn leaf(&mut self, verdict: Option<Verdict>, by: By) {
        self.leaves.push(Leaf { verdict, by });
    }

    fn policy(&mut self, ended_in: &Chain) {
        let v = if self.hook.policy_drop { Verdict::Drop } else { Verdict::Accept };
        self.leaf(Some(v), By::Policy { ended_in: ended_in.name.clone() });
    }

    fn run(&mut self, mut st: St<'a>) {
        'rules: loop {
            if self.leaves.len() >= MAX_LEAVES {
                let why = format!("more than {MAX_LEAVES} ways through rules not understood; not followed further");
                self.unknown.push(why.clone());
                self.leaf(None, By::Unfinished(why));
                return;
            }
            let Some(rule) = st.chain.rules.get(st.pos) else {
                match st.stack.pop() {
                    Some((c, p)) => {
                        (st.chain, st.pos, st.stmt) = (c, p, 0);
                        continue;
                    }
                    None => return self.policy(st.chain),
                }
            };
            while let Some(s) = rule.stmts.get(st.stmt) {
                st.stmt += 1;
                match self.step(s) {
                    Step::Pass => {}
                    Step::NoMatch => break,
                    Step::Unknown(why) => {
                        // Both ways: the rest of this rule (it matched), and the next rule.
                        self.forked.push(format!("{}: {why}", rule_at(st.chain, rule)));
                        self.run(st.clone());
                        break;
                    }
                    Step::Opaque(why) => {
                        let at = rule_at(st.chain, rule);
                        self.unknown.push(format!("{at}: {why}"));
                        return self.leaf(None, By::Unfinished(format!("{at}: {why}")));
                    }
                    Step::Verdict(v) => {
                        let by = || By::Rule { chain: st.chain.name.clone(), handle: rule.handle, text: rule.describe() };
                        match v {
                            Stmt::Accept => return self.leaf(Some(Verdict::Accept), by()),
                            Stmt::Drop => return self.leaf(Some(Verdict::Drop), by()),
                            Stmt::Reject => return self.leaf(Some(Verdict::Reject), by()),
                            Stmt::Continue => break,
                            Stmt::Return => {
                                match st.stack.pop() {
                                    Some((c, p)) => (st.chain, st.pos, st.stmt) = (c, p, 0),
                                    None => return self.policy(st.chain),
                                }
                                continue 'rules;
                            }
                            Stmt::Jump(name) | Stmt::Goto(name) => {
                                let Some(next) = self.table.chain(name) else {
                                    let why = format!("{}: chain {name} is not listed", rule_at(st.chain, rule));
                                    self.unknown.push(why.clone());
                                    return self.leaf(None, By::Unfinished(why));
                                };
                                st.jumps += 1;
                                if st.jumps > MAX_JUMPS {
                                    let why = format!("{}: more than {MAX_JUMPS} jumps (a loop?)", rule_at(st.chain, rule));
                                    self.unknown.push(why.clone());
                                    return self.leaf(None, By::Unfinished(why));
                                }
                                if matches!(v, Stmt::Jump(_)) {
                                    st.stack.push((st.chain, st.pos + 1));
                                }
                                (st.chain, st.pos, st.stmt) = (next, 0, 0);
                                continue 'rules;
                            }
                            _ => unreachable!("step() gives verdict statements only"),
                        }
                    }
                }
            }
            st.pos += 1;
            st.stmt = 0;
        }
    }

    fn step(&mut self, s: &'a Stmt) -> Step<'a> {
        match s {
            Stmt::Match { op, left, right } => match self.matches(op, left, right) {
                Tri::Yes => Step::Pass,
                Tri::No => Step::NoMatch,
                Tri::Unknown(why) => Step::Unknown(why),
            },
            Stmt::Accept | Stmt::Drop | Stmt::Reject | Stmt::Return | Stmt::Continue | Stmt::Jump(_) | Stmt::Goto(_) => Step::Verdict(s),
            Stmt::Queue => Step::Opaque("the packet is queued to a userspace program, whose verdict is unknown".into()),
            Stmt::Vmap { key, data } => self.vmap(key, data),
            Stmt::Stateful(what) => Step::Unknown(format!("{what}: whether it matches depends on the traffic")),
            Stmt::Nop => Step::Pass,
            Stmt::Xt { target: true, name } => Step::Opaque(format!("iptables-nft target {name} (xt compat expression) not understood")),
            Stmt::Xt { target: false, name } => Step::Unknown(format!("iptables-nft match {name} (xt compat expression) not understood")),
            Stmt::Other(v) => Step::Unknown(format!("expression {} not understood", short_json(v))),
        }
    }

    fn vmap(&mut self, key: &Expr, data: &'a Expr) -> Step<'a> {
        let val = self.value(key);
        let elems: &'a [Expr] = match data {
            Expr::Set(e) => e,
            Expr::SetRef(name) => match self.table.set(name) {
                Some(s) => {
                    if s.dynamic {
                        self.notes.push(format!("map @{name} changes at runtime; judged by its elements now"));
                    }
                    &s.elems
                }
                None => return Step::Opaque(format!("map @{name} is not listed")),
            },
            _ => return Step::Opaque("verdict map not understood".into()),
        };
        for e in elems {
            let Expr::List(pair) = e else { return Step::Opaque("verdict map element not understood".into()) };
            let [k, Expr::Verdict(v)] = pair.as_slice() else { return Step::Opaque("verdict map element not understood".into()) };
            match self.member(&val, k) {
                Tri::Yes => return Step::Verdict(v),
                Tri::No => {}
                Tri::Unknown(why) => return Step::Opaque(format!("verdict map: {why}")),
            }
        }
        Step::NoMatch
    }

    fn matches(&mut self, op: &str, left: &Expr, right: &Expr) -> Tri {
        let val = self.value(left);
        if let Val::Absent = val {
            return Tri::No;
        }
        // `tcp flags syn` (op `in`): any of those bits set; `== syn`: exactly those.
        if let (Val::Flags(f), "in") = (&val, op) {
            return bits(right).map_or_else(|| Tri::Unknown("tcp flags not understood".into()), |b| Tri::from_bool(f & b != 0));
        }
        match op {
            "==" | "in" => self.member(&val, right),
            "!=" => self.member(&val, right).negate(),
            "<" | ">" | "<=" | ">=" => {
                let (Val::Port(p), Expr::Num(n)) = (&val, right) else {
                    return Tri::Unknown(format!("comparison `{op}` on {} not understood", describe_val(&val)));
                };
                let (p, n) = (u64::from(*p), *n);
                Tri::from_bool(match op {
                    "<" => p < n,
                    ">" => p > n,
                    "<=" => p <= n,
                    _ => p >= n,
                })
            }
            _ => Tri::Unknown(format!("operator `{op}` not understood")),
        }
    }

    /// What the probe holds in the field `e` names.
    fn value(&self, e: &Expr) -> Val {
        let p = self.probe;
        let v4 = p.src.is_ipv4();
        let tcp = p.proto == Proto::Tcp;
        let (l4, l4num) = if tcp { ("tcp", 6) } else { ("udp", 17) };
        match e {
            Expr::Payload { protocol, field } => match protocol.as_str() {
                "tcp" | "udp" | "th" | "udplite" | "sctp" | "dccp" => {
                    if protocol != "th" && protocol != l4 {
                        return Val::Absent;
                    }
                    match field.as_str() {
                        "dport" => Val::Port(p.dport),
                        "sport" => Val::SourcePort,
                        "flags" if tcp => Val::Flags(SYN),
                        f => Val::Unknown(format!("{protocol} {f} not evaluated")),
                    }
                }
                "ip" if !v4 => Val::Absent,
                "ip6" if v4 => Val::Absent,
                "ip" | "ip6" => match field.as_str() {
                    "saddr" => Val::Addr(p.src),
                    "daddr" => Val::Unknown("the destination address (this host's) is not evaluated".into()),
                    "protocol" | "nexthdr" => Val::Name(l4, l4num),
                    "version" => Val::Name(if v4 { "4" } else { "6" }, if v4 { 4 } else { 6 }),
                    f => Val::Unknown(format!("{protocol} {f} not evaluated")),
                },
                "icmp" | "icmpv6" | "igmp" | "esp" | "ah" | "comp" | "arp" | "gre" | "vlan" => Val::Absent,
                other => Val::Unknown(format!("{other} {field} not evaluated")),
            },
            Expr::Meta(key) => match key.as_str() {
                "l4proto" => Val::Name(l4, l4num),
                "nfproto" => if v4 { Val::Name("ipv4", 2) } else { Val::Name("ipv6", 10) },
                "protocol" => if v4 { Val::Name("ip", 0x0800) } else { Val::Name("ip6", 0x86dd) },
                "iifname" | "iif" => match self.iface {
                    Some(i) => Val::Iface(i.to_string()),
                    None => Val::RemoteIface,
                },
                "pkttype" => Val::Name("host", 0),
                k => Val::Unknown(format!("meta {k} not evaluated")),
            },
            Expr::Ct { key, .. } => match key.as_str() {
                "state" => Val::Name("new", 8),
                "direction" => Val::Name("original", 0),
                k => Val::Unknown(format!("ct {k} not evaluated")),
            },
            Expr::Concat(parts) => Val::Tuple(parts.iter().map(|e| self.value(e)).collect()),
            Expr::And(a, mask) => match (self.value(a), bits(mask)) {
                (Val::Flags(f), Some(m)) => Val::Flags(f & m),
                (Val::Absent, _) => Val::Absent,
                _ => Val::Unknown("bitmask expression not understood".into()),
            },
            Expr::Other(v) => Val::Unknown(format!("expression {} not understood", short_json(v))),
            other => Val::Unknown(format!("{other:?} not understood as a field")),
        }
    }

    /// Whether `val` is (one of) `right`.
    fn member(&mut self, val: &Val, right: &Expr) -> Tri {
        match (val, right) {
            (Val::Absent, _) => Tri::No,
            (Val::Unknown(why), _) => Tri::Unknown(why.clone()),
            (_, Expr::Set(items) | Expr::List(items)) => {
                let items: Vec<Tri> = items.iter().map(|i| self.member(val, i)).collect();
                Tri::any(items)
            }
            (_, Expr::SetRef(name)) => {
                let Some(set) = self.table.set(name) else { return Tri::Unknown(format!("set @{name} is not listed")) };
                if set.dynamic {
                    self.notes.push(format!("set @{name} changes at runtime; judged by its elements now"));
                }
                if set.is_map {
                    return Tri::Unknown(format!("map @{name} used as a set"));
                }
                let items: Vec<Tri> = set.elems.iter().map(|i| self.member(val, i)).collect();
                Tri::any(items)
            }
            (Val::SourcePort, r) => {
                // The peer's port is ephemeral: a match that holds (or fails) for every
                // unprivileged port is decided, anything else is not.
                let t: Vec<Tri> = [1024u16, 32768, 45000, 60999, 65535].iter().map(|p| self.member(&Val::Port(*p), r)).collect();
                if t.iter().all(|x| *x == Tri::Yes) {
                    Tri::Yes
                } else if t.iter().all(|x| *x == Tri::No) {
                    Tri::No
                } else {
                    Tri::Unknown("the peer's source port is ephemeral, not known".into())
                }
            }
            (Val::Port(p), Expr::Num(n)) => Tri::from_bool(u64::from(*p) == *n),
            (Val::Port(p), Expr::Str(s)) => match service(s) {
                Some(n) => Tri::from_bool(*p == n),
                None => Tri::Unknown(format!("service name {s} not known")),
            },
            (Val::Port(p), Expr::Range(a, b)) => match (num(a), num(b)) {
                (Some(a), Some(b)) => Tri::from_bool((a..=b).contains(&u64::from(*p))),
                _ => Tri::Unknown("port range not understood".into()),
            },
            (Val::Addr(ip), Expr::Str(s)) => match s.parse::<IpAddr>() {
                Ok(a) => Tri::from_bool(a == *ip),
                Err(_) => Tri::Unknown(format!("address {s} not understood")),
            },
            (Val::Addr(ip), Expr::Prefix { addr, len }) => match addr.parse::<IpAddr>() {
                Ok(a) => Tri::from_bool(in_prefix(*ip, a, *len)),
                Err(_) => Tri::Unknown(format!("prefix {addr}/{len} not understood")),
            },
            (Val::Addr(ip), Expr::Range(a, b)) => match (a.as_ref(), b.as_ref()) {
                (Expr::Str(a), Expr::Str(b)) => match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
                    (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) => Tri::from_bool(matches!(ip, IpAddr::V4(i) if (a..=b).contains(i))),
                    (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) => Tri::from_bool(matches!(ip, IpAddr::V6(i) if (a..=b).contains(i))),
                    _ => Tri::Unknown("address range not understood".into()),
                },
                _ => Tri::Unknown("address range not understood".into()),
            },
            (Val::Name(name, _), Expr::Str(s)) => Tri::from_bool(s.eq_ignore_ascii_case(name) || alias(name) == Some(s.as_str())),
            (Val::Name(_, n0), Expr::Num(n)) => Tri::from_bool(n0 == n),
            (Val::RemoteIface, Expr::Str(s)) if s == "lo" => Tri::No,
            (Val::RemoteIface, _) => Tri::Unknown("the interface the peer's packets arrive on is not known".into()),
            (Val::Iface(i), Expr::Str(s)) => Tri::from_bool(match s.strip_suffix('*') {
                Some(prefix) => i.starts_with(prefix),
                None => i == s,
            }),
            (Val::Flags(f), r) => match bits(r) {
                Some(b) => Tri::from_bool(*f == b),
                None => Tri::Unknown("tcp flags not understood".into()),
            },
            (Val::Tuple(vals), Expr::Concat(parts)) if vals.len() == parts.len() => {
                let t: Vec<Tri> = vals.iter().zip(parts).map(|(v, p)| self.member(v, p)).collect();
                Tri::all(t)
            }
            (v, Expr::Other(j)) => Tri::Unknown(format!("{} compared with {} not understood", describe_val(v), short_json(j))),
            (v, r) => Tri::Unknown(format!("{} compared with {r:?} not understood", describe_val(v))),
        }
    }
}

fn describe_val(v: &Val) -> String {
    match v {
        Val::Port(_) => "a port".into(),
        Val::SourcePort => "the source port".into(),
        Val::Addr(_) => "an address".into(),
        Val::Name(n, _) => format!("`{n}`"),
        Val::Iface(i) => format!("interface {i}"),
        Val::RemoteIface => "the incoming interface".into(),
        Val::Flags(_) => "tcp flags".into(),
        Val::Tuple(_) => "a concatenation".into(),
        Val::Absent => "a field the packet does not have".into(),
        Val::Unknown(w) => w.clone(),
    }
}

/// Other spellings nft uses for the same value.
fn alias(name: &str) -> Option<&'static str> {
    match name {
        "ip6" => Some("ipv6"),
        "ipv6" => Some("ip6"),
        _ => None,
    }
}

fn num(e: &Expr) -> Option<u64> {
    match e {
        Expr::Num(n) => Some(*n),
        Expr::Str(s) => service(s).map(u64::from),
        _ => None,
    }
}

/// Ports nft may print by name (`-S`, or older versions).
fn service(s: &str) -> Option<u16> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    Some(match s {
        "ssh" => 22,
        "http" => 80,
        "https" => 443,
        "domain" => 53,
        _ => return None,
    })
}

/// TCP flag names (a string, a list of names, or a number) as bits.
fn bits(e: &Expr) -> Option<u64> {
    match e {
        Expr::Num(n) => Some(*n),
        Expr::Str(s) => Some(match s.as_str() {
            "fin" => FIN,
            "syn" => SYN,
            "rst" => RST,
            "psh" => PSH,
            "ack" => ACK,
            "urg" => URG,
            "ecn" => ECN,
            "cwr" => CWR,
            _ => return None,
        }),
        Expr::List(items) | Expr::Set(items) => items.iter().map(bits).try_fold(0, |acc, b| b.map(|b| acc | b)),
        _ => None,
    }
}

fn in_prefix(ip: IpAddr, net: IpAddr, len: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(i), IpAddr::V4(n)) if len <= 32 => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(i) & m == u32::from(n) & m
        }
        (IpAddr::V6(i), IpAddr::V6(n)) if len <= 128 => {
            let m = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(i) & m == u128::from(n) & m
        }
        _ => false,
    }
}

/// A JSON expression shortened for a message.
fn short_json(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 { format!("{}...", s.chars().take(117).collect::<String>()) } else { s }
}
