//! Walking the filter table's INPUT chain for a [`Probe`].

use std::net::IpAddr;

use super::{
    Chain, Decision, Match, MatchKind, PortRange, Probe, Proto, Rule, Ruleset, Target, Verdict,
};

/// Jumps followed before giving up on a ruleset that loops (iptables itself
/// refuses loops, so only a hand-made dump can have one).
const MAX_JUMPS: usize = 1000;

/// TCP flags of the probe's first packet: SYN only.
const SYN: u8 = 0x02;

/// Outcome of one match for the probe.
enum Tri {
    Yes,
    No,
    /// Cannot be told from the outside; the reason.
    Unknown(&'static str),
}

impl Tri {
    fn from_bool(b: bool) -> Self {
        if b { Tri::Yes } else { Tri::No }
    }

    fn negate(self) -> Self {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            unknown => unknown,
        }
    }
}

impl Ruleset {
    /// Follow a NEW connection through the `filter` table's INPUT chain.
    ///
    /// Rules are tried in order; `-j CHAIN` descends and comes back, `-g
    /// CHAIN` descends without coming back, `RETURN` (or the end of a user
    /// chain) goes back to the caller, and the end of INPUT (or a `RETURN`
    /// in it) applies INPUT's policy, ACCEPT when there is no filter table or
    /// no declared policy. Non-terminating targets (`LOG`, `MARK`, ...) are
    /// passed over. A rule with a match that cannot be evaluated is assumed to
    /// apply, and noted in [`Decision::uncertain`] if that changed the path.
    pub fn input_decision(&self, probe: &Probe) -> Decision {
        let mut uncertain = Vec::new();
        let Some(filter) = self.table("filter") else {
            return by_policy(Verdict::Accept, uncertain);
        };
        let Some(input) = filter.chain("INPUT") else {
            return by_policy(Verdict::Accept, uncertain);
        };
        let policy = input.policy.map_or(Verdict::Accept, Verdict::from);

        // Where to go on at the end of the current chain (pushed by `-j`).
        let mut stack: Vec<(&Chain, usize)> = Vec::new();
        let (mut chain, mut pos) = (input, 0);
        let mut jumps = 0;
        loop {
            let Some(rule) = chain.rules.get(pos) else {
                match stack.pop() {
                    Some(back) => (chain, pos) = back,
                    None => return by_policy(policy, uncertain),
                }
                continue;
            };
            pos += 1;
            let Some(assumed) = rule_matches(rule, probe) else {
                continue;
            };
            let decides = !matches!(rule.target, Target::Other(_) | Target::None);
            if decides && !assumed.is_empty() {
                uncertain.push(format!(
                    "line {}: assumed to match ({}): {}",
                    rule.line,
                    assumed.join("; "),
                    rule.text
                ));
            }
            let verdict = match &rule.target {
                Target::Accept => Verdict::Accept,
                Target::Drop => Verdict::Drop,
                Target::Reject => Verdict::Reject,
                Target::Return => {
                    match stack.pop() {
                        Some(back) => (chain, pos) = back,
                        None => return by_policy(policy, uncertain),
                    }
                    continue;
                }
                Target::Jump(name) | Target::Goto(name) => {
                    let Some(next) = filter.chain(name) else {
                        uncertain.push(format!(
                            "line {}: chain {name} does not exist, rule ignored: {}",
                            rule.line, rule.text
                        ));
                        continue;
                    };
                    jumps += 1;
                    if jumps > MAX_JUMPS {
                        uncertain.push(format!(
                            "line {}: more than {MAX_JUMPS} jumps (a loop?), evaluation stopped: {}",
                            rule.line, rule.text
                        ));
                        return by_policy(policy, uncertain);
                    }
                    if matches!(rule.target, Target::Jump(_)) {
                        stack.push((chain, pos));
                    }
                    (chain, pos) = (next, 0);
                    continue;
                }
                Target::Other(name) => {
                    if name == "QUEUE" || name == "NFQUEUE" {
                        uncertain.push(format!(
                            "line {}: packet handed to a userspace program whose verdict is unknown, assumed to continue: {}",
                            rule.line, rule.text
                        ));
                    }
                    continue;
                }
                Target::None => continue,
            };
            return Decision {
                verdict,
                rule: Some(rule.clone()),
                by_policy_of: None,
                uncertain,
            };
        }
    }
}

fn by_policy(verdict: Verdict, uncertain: Vec<String>) -> Decision {
    Decision {
        verdict,
        rule: None,
        by_policy_of: Some("INPUT".to_string()),
        uncertain,
    }
}

/// `None` if the rule does not apply to the probe; otherwise the matches
/// that were assumed to hold (empty when all were certain).
fn rule_matches(rule: &Rule, probe: &Probe) -> Option<Vec<String>> {
    let mut assumed = Vec::new();
    for m in &rule.matches {
        match eval_match(m, probe) {
            Tri::Yes => {}
            Tri::No => return None,
            Tri::Unknown(why) => assumed.push(format!("`{}`: {why}", m.text)),
        }
    }
    Some(assumed)
}

fn eval_match(m: &Match, probe: &Probe) -> Tri {
    let result = match &m.kind {
        MatchKind::Protocol(name) => Tri::from_bool(match name.as_str() {
            "all" | "0" => true,
            "tcp" | "6" => probe.proto == Proto::Tcp,
            "udp" | "17" => probe.proto == Proto::Udp,
            _ => false,
        }),
        MatchKind::Source(nets) => Tri::from_bool(nets.iter().any(|n| n.contains(probe.src))),
        MatchKind::Destination(nets) => {
            let same_family: Vec<_> = nets
                .iter()
                .filter(|n| n.addr.is_ipv4() == probe.src.is_ipv4())
                .collect();
            if same_family.is_empty() {
                Tri::No
            } else if same_family.iter().any(|n| n.is_any()) {
                Tri::Yes
            } else {
                Tri::Unknown("destination address of this host not known")
            }
        }
        MatchKind::InInterface(name) => match name.as_str() {
            // A remote peer's traffic never arrives on loopback.
            "lo" => Tri::No,
            "+" => Tri::Yes,
            _ => Tri::Unknown("incoming interface unknown"),
        },
        MatchKind::OutInterface(_) => Tri::Unknown("outgoing interface on the INPUT path"),
        // The first packet of a connection is not a later fragment.
        MatchKind::Fragment => Tri::No,
        MatchKind::DestPorts(ranges) => Tri::from_bool(in_ranges(ranges, probe.dport)),
        MatchKind::SourcePorts(ranges) => source_port(ranges),
        MatchKind::AnyPorts(ranges) => {
            if in_ranges(ranges, probe.dport) {
                Tri::Yes
            } else {
                source_port(ranges)
            }
        }
        MatchKind::State(states) => Tri::from_bool(states.iter().any(|s| s == "NEW")),
        MatchKind::TcpFlags { mask, comp } => {
            Tri::from_bool(probe.proto == Proto::Tcp && SYN & mask == *comp)
        }
        MatchKind::AddrType { dst, types } => addr_type(*dst, types),
        MatchKind::SrcRange { first, last } => {
            Tri::from_bool(in_ip_range(probe.src, *first, *last))
        }
        MatchKind::DstRange { .. } => Tri::Unknown("destination address of this host not known"),
        MatchKind::PktType(t) => match t.as_str() {
            "unicast" => Tri::Yes,
            "broadcast" | "multicast" => Tri::No,
            _ => Tri::Unknown("packet type not evaluated"),
        },
        MatchKind::Module { name, args } => module(name, args),
        MatchKind::Unknown { .. } => Tri::Unknown("option not evaluated"),
    };
    if m.negated { result.negate() } else { result }
}

fn in_ranges(ranges: &[PortRange], port: u16) -> bool {
    ranges.iter().any(|r| r.contains(port))
}

/// The peer's source port is ephemeral and unknown: a source-port match is
/// taken as not matching, unless it covers every unprivileged port
/// (1024:65535), in which case it is probably meant for exactly such clients.
fn source_port(ranges: &[PortRange]) -> Tri {
    let mut next = 1024u32;
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.first);
    for r in sorted {
        if u32::from(r.first) <= next && u32::from(r.last) >= next {
            next = u32::from(r.last) + 1;
        }
    }
    if next > u32::from(u16::MAX) {
        Tri::Unknown("source port of the peer is ephemeral, assumed unprivileged")
    } else {
        Tri::No
    }
}

/// The probe's destination is a unicast address of this host; its source
/// is a remote unicast address.
fn addr_type(dst: bool, types: &[String]) -> Tri {
    let mut unknown = false;
    for t in types {
        match (dst, t.as_str()) {
            (true, "LOCAL" | "UNICAST") | (false, "UNICAST") => return Tri::Yes,
            (
                _,
                "LOCAL" | "BROADCAST" | "MULTICAST" | "ANYCAST" | "BLACKHOLE" | "UNREACHABLE"
                | "PROHIBIT" | "THROW" | "NAT" | "XRESOLVE" | "UNSPEC",
            ) => {}
            _ => unknown = true,
        }
    }
    if unknown {
        Tri::Unknown("address type not evaluated")
    } else {
        Tri::No
    }
}

fn in_ip_range(ip: IpAddr, first: IpAddr, last: IpAddr) -> bool {
    match (ip, first, last) {
        (IpAddr::V4(ip), IpAddr::V4(a), IpAddr::V4(b)) => (a..=b).contains(&ip),
        (IpAddr::V6(ip), IpAddr::V6(a), IpAddr::V6(b)) => (a..=b).contains(&ip),
        _ => false,
    }
}

/// A match module kept whole (`-m set`, `-m limit`, ...).
fn module(name: &str, args: &[String]) -> Tri {
    // `--opt` present and not negated.
    let has = |opt: &str| {
        args.iter()
            .enumerate()
            .any(|(i, a)| a == opt && (i == 0 || args[i - 1] != "!"))
    };
    match name {
        // `--set` records the source and always matches.
        "recent" if has("--set") => Tri::Yes,
        "recent" => Tri::Unknown("recent-list state unknown"),
        // A packet for a local address is not being bridged.
        "physdev" if has("--physdev-is-bridged") => Tri::No,
        "physdev" => Tri::Unknown("bridge port unknown"),
        // IPv6 extension headers a plain TCP SYN does not carry; these
        // matches fail when the header is absent, negated or not.
        "rt" | "frag" | "hbh" | "dst" => Tri::No,
        "limit" | "hashlimit" => Tri::Unknown("rate-limit state unknown"),
        "set" => Tri::Unknown("ipset membership unknown"),
        _ => Tri::Unknown("match module not evaluated"),
    }
}
