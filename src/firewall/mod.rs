//! Would the host's iptables INPUT path accept a new inbound connection?
//!
//! [`parse`] reads the text of `iptables-save` (or `ip6tables-save`) into a
//! [`Ruleset`] that keeps, for every rule, its chain, its 1-based position in
//! the chain (as `iptables -I CHAIN N` counts) and its line in the input, so a
//! later fix can say where an ACCEPT rule has to go.
//!
//! [`Ruleset::input_decision`] walks the `filter` table's INPUT chain for a
//! [`Probe`] (a NEW connection from a remote peer to a local port), following
//! `-j`/`-g` into user chains and `RETURN` back out, and answers with a
//! [`Decision`]: the verdict, the rule that gave it (or the chain policy) and
//! the assumptions made on the way. Matches that cannot be decided from the
//! outside (the incoming interface, this host's destination address, ipset
//! membership, rate limits, unknown modules) are assumed to match, and each
//! rule whose outcome rested on such an assumption is listed in
//! [`Decision::uncertain`].
//!
//! Use the IPv4 ruleset (`iptables-save`) for IPv4 peers and the IPv6 one
//! (`ip6tables-save`) for IPv6 peers: an address match of the other family
//! never matches. Only the `filter` table is evaluated; `raw`, `mangle` and
//! `security` are parsed but not consulted.

mod eval;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

pub use parse::parse;
pub(crate) use parse::join as save_join;
pub(crate) use parse::parse_net;

/// Why a text could not be read (`iptables-save` output; firewalld listings too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line of the input where the problem is.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

/// Parse of one `iptables-save` dump: its tables in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ruleset {
    /// Tables (`*filter`, `*nat`, ...) as they appear in the input.
    pub tables: Vec<Table>,
}

/// One `*NAME` ... `COMMIT` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Table name without the `*`, e.g. `filter`.
    pub name: String,
    /// Chains in the order they were declared (or first used).
    pub chains: Vec<Chain>,
}

/// A built-in or user-defined chain with its rules in evaluation order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    /// Chain name, e.g. `INPUT` or `ufw-before-input`.
    pub name: String,
    /// Policy of a built-in chain; `None` for user chains (`:name - [0:0]`).
    pub policy: Option<Policy>,
    /// Rules in order; `rules[i].index == i + 1`.
    pub rules: Vec<Rule>,
}

/// Policy of a built-in chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Policy {
    /// `ACCEPT`
    Accept,
    /// `DROP`
    Drop,
}

/// One `-A CHAIN ...` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// 1-based line in the parsed text.
    pub line: usize,
    /// The rule as written, from `-A` on (a `[pkts:bytes]` prefix is dropped).
    pub text: String,
    /// Chain the rule is appended to.
    pub chain: String,
    /// 1-based position in the chain, as `iptables -I CHAIN index` counts.
    pub index: usize,
    /// Conditions, all of which must hold for the rule to apply.
    pub matches: Vec<Match>,
    /// What happens when the rule applies.
    pub target: Target,
    /// Tokens after the target name, e.g. `["--reject-with", "icmp-host-prohibited"]`.
    pub target_options: Vec<String>,
    /// Text of `-m comment --comment "..."`, unquoted.
    pub comment: Option<String>,
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    /// Preceded by `!`.
    pub negated: bool,
    /// What is tested.
    pub kind: MatchKind,
    /// The tokens the condition was read from, e.g. `! --dport 22`.
    pub text: String,
}

/// What a [`Match`] tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MatchKind {
    /// `-p NAME`: protocol name or number, lower-cased.
    Protocol(String),
    /// `-s`: source networks (any of them).
    Source(Vec<Net>),
    /// `-d`: destination networks (any of them).
    Destination(Vec<Net>),
    /// `-i`: incoming interface (`+` is a wildcard suffix).
    InInterface(String),
    /// `-o`: outgoing interface.
    OutInterface(String),
    /// `-f`: second and later fragments.
    Fragment,
    /// `--dport` / `--dports`.
    DestPorts(Vec<PortRange>),
    /// `--sport` / `--sports`.
    SourcePorts(Vec<PortRange>),
    /// multiport `--ports`: source or destination port.
    AnyPorts(Vec<PortRange>),
    /// `-m state --state` / `-m conntrack --ctstate`, upper-cased.
    State(Vec<String>),
    /// `--tcp-flags MASK COMP` (`--syn` is `FIN,SYN,RST,ACK SYN`), as bits.
    TcpFlags {
        /// Flags examined.
        mask: u8,
        /// Flags that must be set among those examined.
        comp: u8,
    },
    /// `-m addrtype --src-type` (`dst == false`) or `--dst-type`, upper-cased.
    AddrType {
        /// Tests the destination address.
        dst: bool,
        /// Address types, any of which matches.
        types: Vec<String>,
    },
    /// `-m iprange --src-range FIRST-LAST`.
    SrcRange {
        /// First address of the range.
        first: IpAddr,
        /// Last address of the range.
        last: IpAddr,
    },
    /// `-m iprange --dst-range FIRST-LAST`.
    DstRange {
        /// First address of the range.
        first: IpAddr,
        /// Last address of the range.
        last: IpAddr,
    },
    /// `-m pkttype --pkt-type TYPE`, lower-cased.
    PktType(String),
    /// A whole match module this code does not look into (`-m set`,
    /// `-m limit`, `-m recent`, `-m physdev`, ...), with all its tokens.
    Module {
        /// Module name after `-m`.
        name: String,
        /// Tokens after the name, `!` included.
        args: Vec<String>,
    },
    /// An option not understood (or a value not parsed) in a known module.
    Unknown {
        /// Module loaded with `-m` before the option, if any.
        module: Option<String>,
        /// The option, e.g. `--ctstatus`.
        option: String,
        /// Its arguments.
        args: Vec<String>,
    },
}

/// An address with a netmask, as in `-s 198.18.42.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Net {
    /// Address as written.
    pub addr: IpAddr,
    /// Netmask, same family as `addr` (`/24` is `255.255.255.0`).
    pub mask: IpAddr,
}

/// An inclusive port range; a single port has `first == last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PortRange {
    /// Lowest port.
    pub first: u16,
    /// Highest port.
    pub last: u16,
}

/// What a rule does when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Target {
    /// `-j ACCEPT`
    Accept,
    /// `-j DROP`
    Drop,
    /// `-j REJECT` (options in [`Rule::target_options`]).
    Reject,
    /// `-j RETURN`
    Return,
    /// `-j CHAIN` to a chain of the same table: come back after it.
    Jump(String),
    /// `-g CHAIN`: continue in CHAIN, do not come back.
    Goto(String),
    /// Any other target (`LOG`, `MARK`, `CT`, ...): evaluation continues.
    Other(String),
    /// No target at all: the rule only counts packets.
    None,
}

/// Transport protocol of a [`Probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Proto {
    /// TCP: the probe is the SYN of a new connection.
    Tcp,
    /// UDP: the first datagram of a new flow.
    Udp,
}

/// A NEW connection from remote address `src` (ephemeral source port) to
/// local port `dport` on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Probe {
    /// Transport protocol.
    pub proto: Proto,
    /// Address of the remote peer.
    pub src: IpAddr,
    /// Destination port on this host.
    pub dport: u16,
}

impl Probe {
    /// A new TCP connection from `src` to local port `dport`.
    pub fn tcp(src: IpAddr, dport: u16) -> Self {
        Probe {
            proto: Proto::Tcp,
            src,
            dport,
        }
    }
}

/// Final fate of a probe on the INPUT path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Verdict {
    /// Accepted.
    Accept,
    /// Silently dropped (by a rule or a DROP policy).
    Drop,
    /// Rejected with an ICMP error or TCP reset.
    Reject,
}

/// The verdict for a probe and what gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Accept, drop or reject.
    pub verdict: Verdict,
    /// The rule that decided; `None` when a chain policy decided.
    pub rule: Option<Rule>,
    /// Chain whose policy decided (always `INPUT`) when `rule` is `None`.
    pub by_policy_of: Option<String>,
    /// Rules whose outcome was assumed because some of their matches cannot
    /// be evaluated from the outside, and other caveats; one line each, e.g.
    /// ``line 14: assumed to match (`-i eth0`: incoming interface unknown): -A ...``.
    pub uncertain: Vec<String>,
}

impl Decision {
    /// True when the probe is accepted.
    pub fn is_accept(&self) -> bool {
        self.verdict == Verdict::Accept
    }
}

impl Ruleset {
    /// The table called `name` (`filter`, `nat`, ...).
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// True when nothing filters: no `filter` table, or one with no rules
    /// and only ACCEPT policies.
    pub fn is_empty(&self) -> bool {
        self.table("filter").is_none_or(|t| {
            t.chains
                .iter()
                .all(|c| c.rules.is_empty() && c.policy.is_none_or(|p| p == Policy::Accept))
        })
    }

    /// Policy of the `filter` table's INPUT chain, if the dump declares one.
    pub fn input_policy(&self) -> Option<Policy> {
        self.table("filter")?.chain("INPUT")?.policy
    }

    /// The first port of `ports` that a new TCP connection from `src` cannot
    /// reach, with the decision that blocks it; `None` if all are accepted.
    pub fn first_blocked(
        &self,
        src: IpAddr,
        ports: std::ops::RangeInclusive<u16>,
    ) -> Option<(u16, Decision)> {
        ports
            .map(|port| (port, self.input_decision(&Probe::tcp(src, port))))
            .find(|(_, d)| !d.is_accept())
    }
}

impl Table {
    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

impl Net {
    /// True when `ip` is of the same family and inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, self.mask, ip) {
            (IpAddr::V4(a), IpAddr::V4(m), IpAddr::V4(i)) => {
                let m = u32::from(m);
                u32::from(a) & m == u32::from(i) & m
            }
            (IpAddr::V6(a), IpAddr::V6(m), IpAddr::V6(i)) => {
                let m = u128::from(m);
                u128::from(a) & m == u128::from(i) & m
            }
            _ => false,
        }
    }

    /// Prefix length when the mask is contiguous (`/24`), else `None`.
    pub fn prefix_len(&self) -> Option<u32> {
        let (bits, width) = match self.mask {
            IpAddr::V4(m) => (u128::from(u32::from(m)) << 96, 32),
            IpAddr::V6(m) => (u128::from(m), 128),
        };
        let ones = bits.leading_ones();
        (bits.count_ones() == ones && ones <= width).then_some(ones)
    }

    /// True for `0.0.0.0/0` or `::/0`: every address of the family.
    pub fn is_any(&self) -> bool {
        self.prefix_len() == Some(0)
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix_len() {
            Some(len) => write!(f, "{}/{}", self.addr, len),
            None => write!(f, "{}/{}", self.addr, self.mask),
        }
    }
}

impl PortRange {
    /// True when `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

impl From<Policy> for Verdict {
    fn from(policy: Policy) -> Self {
        match policy {
            Policy::Accept => Verdict::Accept,
            Policy::Drop => Verdict::Drop,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Reject => "REJECT",
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Accept => f.write_str("ACCEPT"),
            Target::Drop => f.write_str("DROP"),
            Target::Reject => f.write_str("REJECT"),
            Target::Return => f.write_str("RETURN"),
            Target::Jump(chain) => write!(f, "-j {chain}"),
            Target::Goto(chain) => write!(f, "-g {chain}"),
            Target::Other(name) => f.write_str(name),
            Target::None => f.write_str("(none)"),
        }
    }
}

/// `REJECT by line 9: -A INPUT -j REJECT ...` or `DROP by policy of INPUT`.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.rule, &self.by_policy_of) {
            (Some(rule), _) => write!(f, "{} by line {}: {}", self.verdict, rule.line, rule.text),
            (None, Some(chain)) => write!(f, "{} by policy of {}", self.verdict, chain),
            (None, None) => write!(f, "{}", self.verdict),
        }
    }
}
