//! firewalld: its zones as `firewall-cmd --list-all-zones` prints them (runtime
//! or `--permanent`), the port definitions of the services they name, and
//! whether a new TCP connection from a peer would be accepted.
//!
//! Where a packet lands: the zone one of whose sources holds the peer's address
//! (the longest prefix wins), else the zone the receiving interface is bound
//! to, else the default zone. In that zone (firewalld's nftables/iptables
//! chain order): rich rules with a negative priority, in priority order; then
//! rich rules that reject or drop; then what the zone allows (ports, services,
//! protocols, rich rules that accept); then rich rules with a positive
//! priority; then the zone's target (`default` and `%%REJECT%%` reject, `DROP`
//! drops, `ACCEPT` accepts). Policies (firewalld >= 0.9) and direct rules are
//! not evaluated. What cannot be told from the outside (ipset and MAC sources,
//! destination addresses, source ports) is listed in the decision's
//! `uncertain`.

#[cfg(test)]
mod tests;

use crate::firewall::{Net, PortRange, Verdict, parse_net};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// Why a text could not be read as `firewall-cmd --list-all-zones` output (the same
/// line-and-message error as for `iptables-save`).
pub use crate::firewall::ParseError;

/// `16509/tcp`, `49152-49215/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub range: PortRange,
    pub tcp: bool,
    pub udp: bool,
}

impl PortSpec {
    /// `16509/tcp` or `49152-49215/tcp` (also `sctp`, `dccp`: neither TCP nor UDP).
    pub fn parse(s: &str) -> Option<PortSpec> {
        let (ports, proto) = s.split_once('/')?;
        Some(PortSpec { range: parse_ports(ports)?, tcp: proto == "tcp", udp: proto == "udp" })
    }

    fn covers_tcp(&self, port: u16) -> bool {
        self.tcp && self.range.contains(port)
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = if self.tcp { "tcp" } else if self.udp { "udp" } else { "other" };
        if self.range.first == self.range.last {
            write!(f, "{}/{proto}", self.range.first)
        } else {
            write!(f, "{}-{}/{proto}", self.range.first, self.range.last)
        }
    }
}

/// `16509` or `49152-49215`.
fn parse_ports(s: &str) -> Option<PortRange> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (first, last) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (first <= last).then_some(PortRange { first, last })
}

/// One zone as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    /// 1-based line of the zone's header in the listing.
    pub line: usize,
    /// Marked `(default...)` in the listing.
    pub is_default: bool,
    /// Marked `(... active)`: it has an interface or a source bound.
    pub active: bool,
    /// `default`, `ACCEPT`, `DROP`, `%%REJECT%%`.
    pub target: String,
    pub interfaces: Vec<String>,
    /// As listed: addresses/networks, `ipset:NAME`, MAC addresses.
    pub sources: Vec<String>,
    pub services: Vec<String>,
    pub ports: Vec<PortSpec>,
    pub protocols: Vec<String>,
    pub rich_rules: Vec<RichRule>,
}

/// `firewall-cmd [--permanent] --list-all-zones`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones {
    pub zones: Vec<Zone>,
}

impl Zones {
    /// Parse the listing. Zone headers start in column 0; their settings are
    /// indented `key: values` lines; rich rules follow `rich rules:`, one per
    /// (more deeply) indented line.
    pub fn parse(text: &str) -> Result<Zones, ParseError> {
        let mut zones: Vec<Zone> = Vec::new();
        let mut in_rich = false;
        for (i, l) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| ParseError { line, message };
            if l.trim().is_empty() {
                in_rich = false;
                continue;
            }
            if !l.starts_with([' ', '\t']) {
                let (name, marks) = match l.split_once(" (") {
                    Some((n, m)) => (n.trim(), m.trim_end().trim_end_matches(')')),
                    None => (l.trim(), ""),
                };
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return Err(err(format!("expected a zone name, found `{l}`")));
                }
                let marks: Vec<&str> = marks.split(',').map(str::trim).collect();
                zones.push(Zone {
                    name: name.to_string(),
                    line,
                    is_default: marks.contains(&"default"),
                    active: marks.contains(&"active"),
                    target: "default".into(),
                    interfaces: Vec::new(),
                    sources: Vec::new(),
                    services: Vec::new(),
                    ports: Vec::new(),
                    protocols: Vec::new(),
                    rich_rules: Vec::new(),
                });
                in_rich = false;
                continue;
            }
            let Some(zone) = zones.last_mut() else {
                return Err(err("indented line before any zone name".into()));
            };
            let body = l.trim();
            if in_rich && body.starts_with("rule") {
                let rule = RichRule::parse(body).map_err(|e| err(format!("zone {}: rich rule `{body}`: {e}", zone.name)))?;
                zone.rich_rules.push(rule);
                continue;
            }
            let Some((key, value)) = body.split_once(':') else {
                return Err(err(format!("zone {}: expected `key: value`, found `{body}`", zone.name)));
            };
            let words = || value.split_whitespace().map(str::to_string).collect::<Vec<_>>();
            in_rich = false;
            match key.trim() {
                "target" => zone.target = value.trim().to_string(),
                "interfaces" => zone.interfaces = words(),
                "sources" => zone.sources = words(),
                "services" => zone.services = words(),
                "protocols" => zone.protocols = words(),
                "ports" => {
                    zone.ports = value
                        .split_whitespace()
                        .map(|p| PortSpec::parse(p).ok_or_else(|| err(format!("zone {}: bad port `{p}`", zone.name))))
                        .collect::<Result<_, _>>()?
                }
                "rich rules" => {
                    in_rich = true;
                    // Some versions print the first rule on the same line.
                    if value.trim().starts_with("rule") {
                        let rule = RichRule::parse(value.trim()).map_err(|e| err(format!("zone {}: rich rule: {e}", zone.name)))?;
                        zone.rich_rules.push(rule);
                    }
                }
                _ => {} // icmp-blocks, masquerade, forward, priorities...: not about inbound TCP
            }
        }
        if zones.is_empty() {
            return Err(ParseError { line: 1, message: "no zone in the listing".into() });
        }
        Ok(Zones { zones })
    }

    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }

    /// The zone marked `(default)`, if the listing marks one.
    pub fn marked_default(&self) -> Option<&Zone> {
        self.zones.iter().find(|z| z.is_default)
    }
}

/// Address family of a rich rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// What a rich rule's `source`/`destination` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrMatch {
    Net(Net),
    Mac(String),
    Ipset(String),
}

/// `source [NOT] address=...` (or `mac=`, `ipset=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleAddr {
    pub negated: bool,
    pub what: AddrMatch,
}

/// The element of a rich rule: what traffic it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// No element: every packet of the family/source.
    All,
    Service(String),
    Port(PortSpec),
    Protocol(String),
    SourcePort(PortSpec),
    /// icmp-block, icmp-type, masquerade, forward-port, tcp-mss-clamp...:
    /// never about a new inbound TCP connection.
    Other(String),
}

/// What a rich rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject,
    Drop,
    /// `mark`, or only `log`/`audit`: no verdict.
    None,
}

/// One rich rule (`man firewalld.richlanguage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichRule {
    /// As listed.
    pub text: String,
    pub family: Option<Family>,
    pub priority: i32,
    pub source: Option<RuleAddr>,
    pub destination: Option<RuleAddr>,
    pub element: Element,
    pub action: Action,
}

/// Split `rule family="ipv4" source NOT address="1.2.3.4"` into words and
/// `key=value` pairs (value unquoted).
fn rich_tokens(s: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            out.push((key, None));
            continue;
        }
        chars.next();
        let mut value = String::new();
        match chars.peek().copied() {
            Some(q @ ('"' | '\'')) => {
                chars.next();
                loop {
                    match chars.next() {
                        Some(c) if c == q => break,
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated quote after {key}=")),
                    }
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((key, Some(value)));
    }
    Ok(out)
}

impl RichRule {
    pub fn parse(text: &str) -> Result<RichRule, String> {
        let toks = rich_tokens(text)?;
        let mut it = toks.into_iter().peekable();
        match it.next() {
            Some((w, None)) if w == "rule" => {}
            _ => return Err("does not start with `rule`".into()),
        }
        let mut rule = RichRule {
            text: text.trim().to_string(),
            family: None,
            priority: 0,
            source: None,
            destination: None,
            element: Element::All,
            action: Action::None,
        };
        // Attributes of the current element, for `port port=.. protocol=..` etc.
        let attrs = |it: &mut std::iter::Peekable<std::vec::IntoIter<(String, Option<String>)>>| {
            let mut a: BTreeMap<String, String> = BTreeMap::new();
            while let Some((_, Some(_))) = it.peek() {
                let (k, v) = it.next().unwrap();
                a.insert(k, v.unwrap());
            }
            a
        };
        while let Some((word, value)) = it.next() {
            match (word.as_str(), value) {
                ("family", Some(v)) => {
                    rule.family = Some(match v.as_str() {
                        "ipv4" => Family::Ipv4,
                        "ipv6" => Family::Ipv6,
                        other => return Err(format!("unknown family `{other}`")),
                    })
                }
                ("priority", Some(v)) => rule.priority = v.parse().map_err(|_| format!("bad priority `{v}`"))?,
                (which @ ("source" | "destination"), None) => {
                    let negated = matches!(it.peek(), Some((w, None)) if w == "NOT");
                    if negated {
                        it.next();
                    }
                    let a = attrs(&mut it);
                    let what = if let Some(addr) = a.get("address") {
                        AddrMatch::Net(parse_net(addr).ok_or_else(|| format!("bad {which} address `{addr}`"))?)
                    } else if let Some(mac) = a.get("mac") {
                        AddrMatch::Mac(mac.clone())
                    } else if let Some(set) = a.get("ipset") {
                        AddrMatch::Ipset(set.clone())
                    } else {
                        return Err(format!("{which} without address, mac or ipset"));
                    };
                    let ra = Some(RuleAddr { negated, what });
                    if which == "source" { rule.source = ra } else { rule.destination = ra }
                }
                ("service", None) => {
                    let a = attrs(&mut it);
                    rule.element = Element::Service(a.get("name").cloned().ok_or("service without name")?);
                }
                (kind @ ("port" | "source-port"), None) => {
                    let a = attrs(&mut it);
                    let (p, proto) = (a.get("port").ok_or("port without port=")?, a.get("protocol").ok_or("port without protocol=")?);
                    let spec = PortSpec::parse(&format!("{p}/{proto}")).ok_or_else(|| format!("bad port `{p}`"))?;
                    rule.element = if kind == "port" { Element::Port(spec) } else { Element::SourcePort(spec) };
                }
                ("protocol", None) => {
                    let a = attrs(&mut it);
                    rule.element = Element::Protocol(a.get("value").cloned().ok_or("protocol without value=")?);
                }
                ("accept", None) => rule.action = Action::Accept,
                ("reject", None) => rule.action = Action::Reject,
                ("drop", None) => rule.action = Action::Drop,
                ("log" | "audit" | "limit" | "mark" | "nflog", None) => {
                    attrs(&mut it);
                }
                (other, None) => {
                    attrs(&mut it);
                    rule.element = Element::Other(other.to_string());
                }
                (k, Some(_)) => return Err(format!("unexpected `{k}=`")),
            }
        }
        Ok(rule)
    }

    /// Whether this rule applies to a new TCP connection from `src` to `port`:
    /// Some(true/false), with a caveat when it had to assume something.
    fn applies(&self, src: IpAddr, port: u16, services: &BTreeMap<String, Vec<PortSpec>>) -> (bool, Option<String>) {
        let fam_ok = match self.family {
            Some(Family::Ipv4) => src.is_ipv4(),
            Some(Family::Ipv6) => src.is_ipv6(),
            None => true,
        };
        if !fam_ok {
            return (false, None);
        }
        let mut caveat = None;
        if let Some(s) = &self.source {
            match &s.what {
                AddrMatch::Net(n) => {
                    if n.contains(src) == s.negated {
                        return (false, None);
                    }
                }
                AddrMatch::Mac(_) | AddrMatch::Ipset(_) => {
                    caveat = Some(format!("assumed to match (source membership unknown): {}", self.text));
                }
            }
        }
        if self.destination.is_some() {
            caveat = Some(format!("assumed to match (destination address): {}", self.text));
        }
        let hit = match &self.element {
            Element::All => true,
            Element::Port(p) => p.covers_tcp(port),
            Element::Protocol(p) => p == "tcp" || p == "6",
            Element::Service(name) => match services.get(name) {
                Some(ports) => ports.iter().any(|p| p.covers_tcp(port)),
                None => {
                    return (false, Some(format!("service {name} not defined on the host: {}", self.text)));
                }
            },
            Element::SourcePort(_) => {
                return (false, Some(format!("assumed not to match (source port): {}", self.text)));
            }
            Element::Other(_) => false,
        };
        (hit, if hit { caveat } else { None })
    }
}

/// Service definitions (`<port protocol="tcp" port="16509"/>`) from the XML
/// files, as `grep -H '' FILE...` prints them (`PATH:LINE`). A service's
/// `<include service="..."/>` is followed.
pub fn parse_services(grep_output: &str) -> BTreeMap<String, Vec<PortSpec>> {
    use regex::Regex;
    use std::sync::LazyLock;
    static PORT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"<port\s+(?:protocol="([a-z]+)"\s+port="([0-9-]+)"|port="([0-9-]+)"\s+protocol="([a-z]+)")"#).unwrap()
    });
    static INCLUDE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"<include\s+service="([^"]+)""#).unwrap());
    let mut ports: BTreeMap<String, Vec<PortSpec>> = BTreeMap::new();
    let mut includes: Vec<(String, String)> = Vec::new();
    for l in grep_output.lines() {
        let Some((path, text)) = l.split_once(".xml:") else { continue };
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        let entry = ports.entry(name.clone()).or_default();
        for c in PORT.captures_iter(text) {
            let (proto, p) = match (c.get(1), c.get(2)) {
                (Some(proto), Some(p)) => (proto.as_str(), p.as_str()),
                _ => (&c[4], &c[3]),
            };
            if let Some(spec) = PortSpec::parse(&format!("{p}/{proto}")) {
                entry.push(spec);
            }
        }
        for c in INCLUDE.captures_iter(text) {
            includes.push((name.clone(), c[1].to_string()));
        }
    }
    for (svc, inc) in includes {
        let extra = ports.get(&inc).cloned().unwrap_or_default();
        ports.entry(svc).or_default().extend(extra);
    }
    ports
}

/// A network on one of the host's interfaces (`ip -o addr show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceNet {
    pub iface: String,
    pub net: Net,
}

/// `2: eth0    inet 198.18.42.11/24 brd ... scope global eth0`.
pub fn parse_ip_addr(text: &str) -> Vec<IfaceNet> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            it.next()?;
            let iface = it.next()?.split('@').next()?.to_string();
            it.find(|w| *w == "inet" || *w == "inet6")?;
            Some(IfaceNet { iface, net: parse_net(it.next()?)? })
        })
        .collect()
}

/// A /32 or /128 on an interface (a point-to-point or an anycast address): no network.
fn is_host_route(n: &Net) -> bool {
    n.prefix_len() == Some(if n.addr.is_ipv4() { 32 } else { 128 })
}

/// firewalld as the facts show it.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--list-all-zones`: what applies now.
    pub runtime: Zones,
    /// `--permanent --list-all-zones`: what applies after a reload or reboot.
    pub permanent: Result<Zones, String>,
    /// `DefaultZone=` of /etc/firewalld/firewalld.conf, if set.
    pub conf_default_zone: Option<String>,
    /// `FirewallBackend=` of /etc/firewalld/firewalld.conf, if set.
    pub backend: Option<String>,
    pub services: BTreeMap<String, Vec<PortSpec>>,
}

/// Where a peer's packets land, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    pub zone: String,
    /// `source 198.18.42.0/24`, `interface eth0`, `default zone`.
    pub via: String,
    pub uncertain: Vec<String>,
}

/// What a zone does with one new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDecision {
    pub verdict: Verdict,
    /// `service libvirt (16509/tcp)`, `port 16509/tcp`, `rich rule: rule ...`,
    /// `zone target default`.
    pub by: String,
    pub uncertain: Vec<String>,
}

impl ZoneDecision {
    pub fn is_accept(&self) -> bool {
        self.verdict == Verdict::Accept
    }
    /// Decided by a rich rule that rejects or drops (an accept rule added at
    /// priority 0 would not help).
    pub fn by_deny_rule(&self) -> bool {
        !self.is_accept() && self.by.starts_with("rich rule")
    }
}

impl fmt::Display for ZoneDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by {}", self.verdict, self.by)
    }
}

impl Config {
    /// The default zone: the one the listing marks, else firewalld.conf's, else `public`.
    pub fn default_zone(&self) -> String {
        self.runtime
            .marked_default()
            .map(|z| z.name.clone())
            .or_else(|| self.conf_default_zone.clone())
            .unwrap_or_else(|| "public".into())
    }

    /// The runtime zone a new connection from `src` lands in.
    pub fn landing(&self, src: IpAddr, ifaces: &[IfaceNet]) -> Landing {
        let mut uncertain = Vec::new();
        let mut best: Option<(&Zone, Net)> = None;
        for z in &self.runtime.zones {
            for s in &z.sources {
                match parse_net(s) {
                    Some(n) if n.contains(src) => {
                        if best.is_none_or(|(_, b)| n.prefix_len().unwrap_or(0) > b.prefix_len().unwrap_or(0)) {
                            best = Some((z, n));
                        }
                    }
                    Some(_) => {}
                    None => uncertain.push(format!("zone {} source {s}: membership unknown, assumed not to hold the peer", z.name)),
                }
            }
        }
        if let Some((z, n)) = best {
            return Landing { zone: z.name.clone(), via: format!("source {n}"), uncertain };
        }
        let zone_of = |iface: &str| self.runtime.zones.iter().find(|z| z.interfaces.iter().any(|i| i == iface));
        let default = self.default_zone();
        if let Some(i) = ifaces.iter().find(|i| i.iface != "lo" && i.net.contains(src) && !is_host_route(&i.net)) {
            return match zone_of(&i.iface) {
                Some(z) => Landing { zone: z.name.clone(), via: format!("interface {}", i.iface), uncertain },
                None => Landing { zone: default, via: format!("default zone (interface {} is in no zone)", i.iface), uncertain },
            };
        }
        // Routed through a gateway: the interface is not known from the facts.
        let mut zones: Vec<String> = ifaces
            .iter()
            .filter(|i| i.iface != "lo")
            .map(|i| zone_of(&i.iface).map_or(default.clone(), |z| z.name.clone()))
            .collect();
        zones.sort();
        zones.dedup();
        if zones.len() > 1 {
            uncertain.push(format!("{src} is on no local network; assumed to arrive in the default zone {default} (interfaces are in {})", zones.join(", ")));
        }
        let zone = if zones.len() == 1 { zones.remove(0) } else { default };
        Landing { zone, via: "default zone".into(), uncertain }
    }

    /// What zone `zone` of `zones` does with a new TCP connection from `src` to `port`.
    pub fn decide(&self, zones: &Zones, zone: &str, src: IpAddr, port: u16) -> ZoneDecision {
        let Some(z) = zones.zone(zone) else {
            return ZoneDecision { verdict: Verdict::Reject, by: format!("zone {zone} does not exist here"), uncertain: Vec::new() };
        };
        let mut uncertain = Vec::new();
        let verdict_of = |a: &Action| match a {
            Action::Accept => Some(Verdict::Accept),
            Action::Reject => Some(Verdict::Reject),
            Action::Drop => Some(Verdict::Drop),
            Action::None => None,
        };
        let rich = |pred: &dyn Fn(&RichRule) -> bool, uncertain: &mut Vec<String>| -> Option<ZoneDecision> {
            let mut rules: Vec<&RichRule> = z.rich_rules.iter().filter(|r| pred(r)).collect();
            rules.sort_by_key(|r| r.priority);
            for r in rules {
                let Some(v) = verdict_of(&r.action) else { continue };
                let (hit, caveat) = r.applies(src, port, &self.services);
                uncertain.extend(caveat);
                if hit {
                    return Some(ZoneDecision { verdict: v, by: format!("rich rule: {}", r.text), uncertain: Vec::new() });
                }
            }
            None
        };
        let done = |mut d: ZoneDecision, uncertain: Vec<String>| {
            d.uncertain = uncertain;
            d
        };
        if let Some(d) = rich(&|r| r.priority < 0, &mut uncertain) {
            return done(d, uncertain);
        }
        if let Some(d) = rich(&|r| r.priority == 0 && matches!(r.action, Action::Reject | Action::Drop), &mut uncertain) {
            return done(d, uncertain);
        }
        if let Some(p) = z.ports.iter().find(|p| p.covers_tcp(port)) {
            return done(ZoneDecision { verdict: Verdict::Accept, by: format!("port {p}"), uncertain: Vec::new() }, uncertain);
        }
        for s in &z.services {
            match self.services.get(s) {
                Some(ports) => {
                    if let Some(p) = ports.iter().find(|p| p.covers_tcp(port)) {
                        return done(ZoneDecision { verdict: Verdict::Accept, by: format!("service {s} ({p})"), uncertain: Vec::new() }, uncertain);
                    }
                }
                None => uncertain.push(format!("zone {zone}: definition of service {s} not read")),
            }
        }
        if z.protocols.iter().any(|p| p == "tcp" || p == "6") {
            return done(ZoneDecision { verdict: Verdict::Accept, by: "protocol tcp".into(), uncertain: Vec::new() }, uncertain);
        }
        if let Some(d) = rich(&|r| r.priority == 0 && r.action == Action::Accept, &mut uncertain) {
            return done(d, uncertain);
        }
        if let Some(d) = rich(&|r| r.priority > 0, &mut uncertain) {
            return done(d, uncertain);
        }
        let verdict = match z.target.as_str() {
            "ACCEPT" => Verdict::Accept,
            "DROP" => Verdict::Drop,
            _ => Verdict::Reject,
        };
        done(ZoneDecision { verdict, by: format!("zone target {}", z.target), uncertain: Vec::new() }, uncertain)
    }

    /// The first port of `ports` zone `zone` of `zones` does not accept from `src`.
    pub fn first_blocked(&self, zones: &Zones, zone: &str, src: IpAddr, ports: std::ops::RangeInclusive<u16>) -> Option<(u16, ZoneDecision)> {
        ports.map(|p| (p, self.decide(zones, zone, src, p))).find(|(_, d)| !d.is_accept())
    }
}

/// The rich rule migready adds to accept TCP `ports` (`16509`, `49152-49215`)
/// from `source` (an address, which gets /32 or /128, or a CIDR).
pub fn accept_rule(source: &str, ports: &str) -> String {
    let ipv6 = source.contains(':');
    let source = if source.contains('/') {
        source.to_string()
    } else if ipv6 {
        format!("{source}/128")
    } else {
        format!("{source}/32")
    };
    format!(
        "rule family=\"{}\" source address=\"{source}\" port port=\"{ports}\" protocol=\"tcp\" accept",
        if ipv6 { "ipv6" } else { "ipv4" }
    )
}
