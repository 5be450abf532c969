//! Reading `iptables-save` text into a [`Ruleset`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    Chain, Match, MatchKind, Net, ParseError, Policy, PortRange, Rule, Ruleset, Table, Target,
};

/// Match modules whose options are read one by one; any other `-m NAME` is
/// kept whole as [`MatchKind::Module`].
const KNOWN_MODULES: &[&str] = &[
    "tcp",
    "udp",
    "multiport",
    "state",
    "conntrack",
    "comment",
    "addrtype",
    "iprange",
    "pkttype",
];

/// Options that are not module options: they end a [`MatchKind::Module`] group.
const GENERIC_OPTIONS: &[&str] = &[
    "-s",
    "--source",
    "--src",
    "-d",
    "--destination",
    "--dst",
    "-p",
    "--protocol",
    "-i",
    "--in-interface",
    "-o",
    "--out-interface",
    "-f",
    "--fragment",
    "-m",
    "--match",
    "-j",
    "--jump",
    "-g",
    "--goto",
    "-c",
    "--set-counters",
];

/// Parse `iptables-save` (or `ip6tables-save`) output.
///
/// Accepts `# comments`, blank lines, `*table` ... `COMMIT` sections, chain
/// headers `:NAME POLICY [pkts:bytes]` and rules `-A CHAIN ...`, optionally
/// prefixed by `[pkts:bytes]` as `iptables-save -c` prints them. Rule text is
/// split like a shell would (double and single quotes, backslash escapes).
/// Empty text is an empty ruleset. A leading UTF-8 byte order mark (a saved
/// rules file edited on Windows) is skipped.
pub fn parse(text: &str) -> Result<Ruleset, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut tables: Vec<Table> = Vec::new();
    // The table being read, and the line of its `*name` header.
    let mut open: Option<(Table, usize)> = None;

    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| ParseError { line, message };
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(name) = l.strip_prefix('*') {
            let name = name.trim();
            if let Some((table, _)) = &open {
                return Err(err(format!(
                    "table {name} starts before table {} is closed by COMMIT",
                    table.name
                )));
            }
            if name.is_empty() {
                return Err(err("`*` without a table name".into()));
            }
            if tables.iter().any(|t| t.name == name) {
                return Err(err(format!("table {name} appears twice")));
            }
            open = Some((
                Table {
                    name: name.to_string(),
                    chains: Vec::new(),
                },
                line,
            ));
            continue;
        }
        if l == "COMMIT" {
            let Some((mut table, _)) = open.take() else {
                return Err(err("COMMIT outside of a table".into()));
            };
            resolve_jumps(&mut table);
            tables.push(table);
            continue;
        }
        let Some((table, _)) = open.as_mut() else {
            let first = l.split_whitespace().next().unwrap_or(l);
            return Err(err(format!(
                "`{first}` outside of a table (no `*filter` line before it)"
            )));
        };
        if let Some(header) = l.strip_prefix(':') {
            parse_chain_header(header, table).map_err(err)?;
        } else {
            parse_rule_line(strip_counters(l), line, table).map_err(err)?;
        }
    }
    if let Some((table, line)) = open {
        return Err(ParseError {
            line,
            message: format!(
                "table {} is not closed by COMMIT (truncated output?)",
                table.name
            ),
        });
    }
    Ok(Ruleset { tables })
}

/// `[12:3456] -A INPUT ...` -> `-A INPUT ...`.
fn strip_counters(l: &str) -> &str {
    if l.starts_with('[')
        && let Some(end) = l.find(']')
    {
        return l[end + 1..].trim_start();
    }
    l
}

/// `INPUT ACCEPT [0:0]` or `my-chain - [0:0]`.
fn parse_chain_header(header: &str, table: &mut Table) -> Result<(), String> {
    let mut words = header.split_whitespace();
    let name = words.next().ok_or("chain header without a chain name")?;
    let policy = match words.next() {
        Some("ACCEPT") => Some(Policy::Accept),
        Some("DROP") => Some(Policy::Drop),
        Some("-") => None,
        Some(other) => return Err(format!("unknown policy `{other}` for chain {name}")),
        None => return Err(format!("chain header for {name} has no policy")),
    };
    if table.chain(name).is_some() {
        return Err(format!("chain {name} is declared twice"));
    }
    table.chains.push(Chain {
        name: name.to_string(),
        policy,
        rules: Vec::new(),
    });
    Ok(())
}

fn parse_rule_line(l: &str, line: usize, table: &mut Table) -> Result<(), String> {
    let tokens = tokenize(l)?;
    match tokens.first().map(String::as_str) {
        Some("-A" | "--append") => {}
        Some(other) => {
            return Err(format!(
                "unexpected `{other}` (expected `-A`, `:chain` or COMMIT)"
            ));
        }
        None => return Ok(()),
    }
    let chain_name = tokens.get(1).ok_or("`-A` without a chain name")?;
    let body = parse_rule_body(&tokens[2..])?;
    let chain = match table.chains.iter().position(|c| &c.name == chain_name) {
        Some(pos) => &mut table.chains[pos],
        None => {
            // Not declared by a header: iptables-save always declares, but
            // hand-written files may not. Create it without a policy.
            table.chains.push(Chain {
                name: chain_name.clone(),
                policy: None,
                rules: Vec::new(),
            });
            table.chains.last_mut().expect("just pushed")
        }
    };
    chain.rules.push(Rule {
        line,
        text: l.to_string(),
        chain: chain_name.clone(),
        index: chain.rules.len() + 1,
        matches: body.matches,
        target: body.target,
        target_options: body.target_options,
        comment: body.comment,
    });
    Ok(())
}

/// `-j NAME` is a jump when NAME is a chain of the table: decided once the
/// whole table is read.
fn resolve_jumps(table: &mut Table) {
    let names: Vec<String> = table.chains.iter().map(|c| c.name.clone()).collect();
    for rule in table.chains.iter_mut().flat_map(|c| c.rules.iter_mut()) {
        if let Target::Other(name) = &rule.target
            && names.contains(name)
        {
            rule.target = Target::Jump(name.clone());
        }
    }
}

/// Split a line into words like a POSIX shell: whitespace separates words,
/// `"..."` keeps spaces (with `\"`, `\\`, `\$` and `` \` `` escapes), `'...'`
/// keeps everything literally, and a backslash outside quotes escapes the
/// next character. Quoted parts join adjacent text into one word.
pub(super) fn tokenize(s: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    tokens.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err("unterminated double quote".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            None => return Err("unterminated double quote".into()),
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                        },
                        Some(other) => word.push(other),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err("unterminated single quote".into()),
                        Some('\'') => break,
                        Some(other) => word.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().unwrap_or('\\'));
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        tokens.push(word);
    }
    Ok(tokens)
}

/// Quote a word the way iptables-save does, if it needs it: in double quotes,
/// `\` and `"` escaped, when it is empty or holds whitespace or a quote.
pub(crate) fn quote(word: &str) -> String {
    if !word.is_empty() && !word.contains(|c: char| c.is_whitespace() || "\"'\\".contains(c)) {
        return word.to_string();
    }
    let escaped = word.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// Words as a saved rule's line: each [`quote`]d, separated by spaces.
pub(crate) fn join(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

struct RuleBody {
    matches: Vec<Match>,
    target: Target,
    target_options: Vec<String>,
    comment: Option<String>,
}

/// A `-m NAME` whose options are kept whole.
struct ModuleGroup {
    /// Index of the `-m` token.
    start: usize,
    name: String,
    args: Vec<String>,
}

/// Reads the tokens of one rule.
struct Cursor<'a> {
    tokens: &'a [String],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let token = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some(token)
    }

    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    /// The argument of `option`.
    fn value(&mut self, option: &str) -> Result<&'a str, String> {
        self.next()
            .ok_or_else(|| format!("option {option} needs a value"))
    }

    /// The argument of a negatable option, accepting the old `--opt ! value`
    /// spelling of negation.
    fn negatable_value(&mut self, option: &str, negated: &mut bool) -> Result<&'a str, String> {
        let value = self.value(option)?;
        if value == "!" {
            *negated = !*negated;
            return self.value(option);
        }
        Ok(value)
    }

    /// Arguments of an option this code does not know: every following token
    /// up to the next option or `!`.
    fn unknown_args(&mut self) -> Vec<String> {
        let mut args = Vec::new();
        while let Some(token) = self.peek() {
            if token == "!" || (token.starts_with('-') && token.len() > 1) {
                break;
            }
            args.push(token.to_string());
            self.pos += 1;
        }
        args
    }
}

fn parse_rule_body(tokens: &[String]) -> Result<RuleBody, String> {
    let mut cur = Cursor { tokens, pos: 0 };
    let mut matches = Vec::new();
    let mut comment = None;
    let mut module: Option<String> = None;
    let mut group: Option<ModuleGroup> = None;
    // Index of a pending `!`.
    let mut bang: Option<usize> = None;

    while let Some(token) = cur.next() {
        let at = cur.pos - 1;
        if let Some(g) = group.as_mut() {
            if !GENERIC_OPTIONS.contains(&token) {
                g.args.push(token.to_string());
                continue;
            }
            let mut g = group.take().expect("group is open");
            if g.args.last().is_some_and(|a| a == "!") {
                g.args.pop();
                bang = Some(at - 1);
            }
            let text = join(&tokens[g.start..g.start + 2 + g.args.len()]);
            matches.push(Match {
                negated: false,
                kind: MatchKind::Module {
                    name: g.name,
                    args: g.args,
                },
                text,
            });
        }
        match token {
            "!" => {
                if bang.is_some() {
                    return Err("`!` twice in a row".into());
                }
                bang = Some(at);
                continue;
            }
            "-m" | "--match" => {
                let name = cur.value(token)?;
                if bang.is_some() {
                    return Err(format!("`!` before `{token} {name}`"));
                }
                if !KNOWN_MODULES.contains(&name) {
                    group = Some(ModuleGroup {
                        start: at,
                        name: name.to_string(),
                        args: Vec::new(),
                    });
                }
                module = Some(name.to_string());
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                if bang.is_some() {
                    return Err(format!("`!` before `{token}`"));
                }
                let name = cur.value(token)?;
                let target = match (token, name) {
                    ("-g" | "--goto", chain) => Target::Goto(chain.to_string()),
                    (_, "ACCEPT") => Target::Accept,
                    (_, "DROP") => Target::Drop,
                    (_, "REJECT") => Target::Reject,
                    (_, "RETURN") => Target::Return,
                    (_, other) => Target::Other(other.to_string()),
                };
                return Ok(RuleBody {
                    matches,
                    target,
                    target_options: tokens[cur.pos..].to_vec(),
                    comment,
                });
            }
            "-c" | "--set-counters" => {
                cur.value(token)?;
                cur.value(token)?;
            }
            "--comment" => {
                comment = Some(cur.value(token)?.to_string());
            }
            _ => {
                let start = bang.unwrap_or(at);
                let mut negated = bang.is_some();
                let kind = parse_option(token, module.as_deref(), &mut cur, &mut negated)?;
                matches.push(Match {
                    negated,
                    kind,
                    text: join(&tokens[start..cur.pos]),
                });
            }
        }
        bang = None;
    }
    if let Some(g) = group {
        let text = join(&tokens[g.start..]);
        matches.push(Match {
            negated: false,
            kind: MatchKind::Module {
                name: g.name,
                args: g.args,
            },
            text,
        });
    } else if bang.is_some() {
        return Err("`!` at the end of the rule".into());
    }
    Ok(RuleBody {
        matches,
        target: Target::None,
        target_options: Vec::new(),
        comment,
    })
}

/// One option of the generic set or of a known module, with its arguments.
/// A value that cannot be read becomes [`MatchKind::Unknown`].
fn parse_option(
    option: &str,
    module: Option<&str>,
    cur: &mut Cursor<'_>,
    negated: &mut bool,
) -> Result<MatchKind, String> {
    let unknown = |args: Vec<String>| MatchKind::Unknown {
        module: module.map(str::to_string),
        option: option.to_string(),
        args,
    };
    let kind = match option {
        "-p" | "--protocol" => {
            MatchKind::Protocol(cur.negatable_value(option, negated)?.to_ascii_lowercase())
        }
        "-s" | "--source" | "--src" | "-d" | "--destination" | "--dst" => {
            let value = cur.negatable_value(option, negated)?;
            match value.split(',').map(parse_net).collect::<Option<Vec<_>>>() {
                Some(nets) if matches!(option, "-s" | "--source" | "--src") => {
                    MatchKind::Source(nets)
                }
                Some(nets) => MatchKind::Destination(nets),
                None => unknown(vec![value.to_string()]),
            }
        }
        "-i" | "--in-interface" => {
            MatchKind::InInterface(cur.negatable_value(option, negated)?.to_string())
        }
        "-o" | "--out-interface" => {
            MatchKind::OutInterface(cur.negatable_value(option, negated)?.to_string())
        }
        "-f" | "--fragment" => MatchKind::Fragment,
        "--dport"
        | "--destination-port"
        | "--sport"
        | "--source-port"
        | "--dports"
        | "--destination-ports"
        | "--sports"
        | "--source-ports"
        | "--ports" => {
            let value = cur.negatable_value(option, negated)?;
            match value
                .split(',')
                .map(parse_port_range)
                .collect::<Option<Vec<_>>>()
            {
                None => unknown(vec![value.to_string()]),
                Some(ranges) => match option {
                    "--ports" => MatchKind::AnyPorts(ranges),
                    o if o.starts_with("--d") => MatchKind::DestPorts(ranges),
                    _ => MatchKind::SourcePorts(ranges),
                },
            }
        }
        "--state" | "--ctstate" => {
            let value = cur.negatable_value(option, negated)?;
            MatchKind::State(
                value
                    .split(',')
                    .map(|s| s.trim().to_ascii_uppercase())
                    .collect(),
            )
        }
        "--syn" => MatchKind::TcpFlags {
            mask: 0x17,
            comp: 0x02,
        },
        "--tcp-flags" => {
            let mask = cur.negatable_value(option, negated)?;
            let comp = cur.value(option)?;
            match (tcp_flags(mask), tcp_flags(comp)) {
                (Some(mask), Some(comp)) => MatchKind::TcpFlags { mask, comp },
                _ => unknown(vec![mask.to_string(), comp.to_string()]),
            }
        }
        "--src-type" | "--dst-type" => {
            let value = cur.negatable_value(option, negated)?;
            MatchKind::AddrType {
                dst: option == "--dst-type",
                types: value
                    .split(',')
                    .map(|s| s.trim().to_ascii_uppercase())
                    .collect(),
            }
        }
        "--src-range" | "--dst-range" => {
            let value = cur.negatable_value(option, negated)?;
            match parse_ip_range(value) {
                Some((first, last)) if option == "--src-range" => {
                    MatchKind::SrcRange { first, last }
                }
                Some((first, last)) => MatchKind::DstRange { first, last },
                None => unknown(vec![value.to_string()]),
            }
        }
        "--pkt-type" => {
            MatchKind::PktType(cur.negatable_value(option, negated)?.to_ascii_lowercase())
        }
        o if o.starts_with('-') && o.len() > 1 => unknown(cur.unknown_args()),
        other => return Err(format!("unexpected argument `{other}`")),
    };
    Ok(kind)
}

/// `198.18.42.0/24`, `198.18.42.12`, `10.0.0.0/255.0.0.255`, `fe80::/64`.
pub(crate) fn parse_net(s: &str) -> Option<Net> {
    let (addr, mask) = match s.split_once('/') {
        Some((addr, mask)) => (addr.parse::<IpAddr>().ok()?, Some(mask)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let mask = match mask {
        None => prefix_mask(addr, width),
        Some(m) if m.contains(['.', ':']) => {
            let m: IpAddr = m.parse().ok()?;
            if m.is_ipv4() != addr.is_ipv4() {
                return None;
            }
            m
        }
        Some(m) => {
            let len: u32 = m.parse().ok()?;
            if len > width {
                return None;
            }
            prefix_mask(addr, len)
        }
    };
    Some(Net { addr, mask })
}

fn prefix_mask(addr: IpAddr, len: u32) -> IpAddr {
    match addr {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::MAX.checked_shl(32 - len).unwrap_or(0))),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(
            u128::MAX.checked_shl(128 - len).unwrap_or(0),
        )),
    }
}

/// `22`, `49152:49215`, `:1023` (from 0), `1024:` (to 65535).
fn parse_port_range(s: &str) -> Option<PortRange> {
    let port = |p: &str, default: u16| {
        if p.is_empty() {
            Some(default)
        } else {
            p.trim().parse::<u16>().ok()
        }
    };
    let (first, last) = match s.split_once(':') {
        Some((a, b)) => (port(a, 0)?, port(b, u16::MAX)?),
        None => {
            let p = s.trim().parse::<u16>().ok()?;
            (p, p)
        }
    };
    (first <= last).then_some(PortRange { first, last })
}

/// `198.18.42.10-198.18.42.20`.
fn parse_ip_range(s: &str) -> Option<(IpAddr, IpAddr)> {
    let (a, b) = s.split_once('-')?;
    let (a, b): (IpAddr, IpAddr) = (a.parse().ok()?, b.parse().ok()?);
    (a.is_ipv4() == b.is_ipv4()).then_some((a, b))
}

/// `FIN,SYN,RST,ACK` as bits (`ALL` and `NONE` accepted).
fn tcp_flags(s: &str) -> Option<u8> {
    s.split(',').try_fold(0u8, |bits, flag| {
        let bit = match flag.trim().to_ascii_uppercase().as_str() {
            "FIN" => 0x01,
            "SYN" => 0x02,
            "RST" => 0x04,
            "PSH" => 0x08,
            "ACK" => 0x10,
            "URG" => 0x20,
            "ALL" => 0x3f,
            "NONE" => 0,
            _ => return None,
        };
        Some(bits | bit)
    })
}
