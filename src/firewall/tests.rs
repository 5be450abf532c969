use std::net::IpAddr;

use proptest::prelude::*;

use super::parse::tokenize;
use super::*;

/// Parse a file of `tests/fixtures/iptables/`.
macro_rules! fixture {
    ($name:literal) => {
        parse(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/iptables/",
            $name
        )))
        .expect($name)
    };
}

const PEER: &str = "198.18.42.12";
const OUTSIDER: &str = "203.0.113.7";
const REJECT_LINE: &str = "-A INPUT -j REJECT --reject-with icmp-host-prohibited";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(rules: &Ruleset, src: &str, dport: u16) -> Decision {
    rules.input_decision(&Probe::tcp(ip(src), dport))
}

/// The decision was taken by the rule at `line` whose text is `text`.
#[track_caller]
fn assert_rule(d: &Decision, verdict: Verdict, line: usize, text: &str) {
    assert_eq!(d.verdict, verdict, "{d}");
    let rule = d
        .rule
        .as_ref()
        .unwrap_or_else(|| panic!("decided by policy: {d}"));
    assert_eq!((rule.line, rule.text.as_str()), (line, text));
    assert_eq!(d.by_policy_of, None);
}

/// The decision was taken by the INPUT policy.
#[track_caller]
fn assert_policy(d: &Decision, verdict: Verdict) {
    assert_eq!(d.verdict, verdict, "{d}");
    assert_eq!(d.rule, None, "{d}");
    assert_eq!(d.by_policy_of.as_deref(), Some("INPUT"));
}

// ---- fixtures -------------------------------------------------------------

#[test]
fn rhel7_default_is_parsed_with_chains_policies_and_positions() {
    let rules = fixture!("rhel7-default.rules");
    assert_eq!(rules.tables.len(), 1);
    let filter = rules.table("filter").unwrap();
    let names: Vec<_> = filter.chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["INPUT", "FORWARD", "OUTPUT"]);
    assert!(
        filter
            .chains
            .iter()
            .all(|c| c.policy == Some(Policy::Accept))
    );
    assert_eq!(rules.input_policy(), Some(Policy::Accept));
    assert!(!rules.is_empty());

    let input = filter.chain("INPUT").unwrap();
    let summary: Vec<_> = input
        .rules
        .iter()
        .map(|r| (r.line, r.index, r.target.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (6, 1, Target::Accept),
            (7, 2, Target::Accept),
            (8, 3, Target::Accept),
            (9, 4, Target::Accept),
            (10, 5, Target::Reject),
        ]
    );
    let reject = &input.rules[4];
    assert_eq!(reject.chain, "INPUT");
    assert_eq!(reject.text, REJECT_LINE);
    assert!(reject.matches.is_empty());
    assert_eq!(
        reject.target_options,
        ["--reject-with", "icmp-host-prohibited"]
    );

    let ssh = &input.rules[3];
    let kinds: Vec<_> = ssh
        .matches
        .iter()
        .map(|m| (m.kind.clone(), m.text.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (MatchKind::Protocol("tcp".into()), "-p tcp"),
            (MatchKind::State(vec!["NEW".into()]), "--state NEW"),
            (
                MatchKind::DestPorts(vec![PortRange {
                    first: 22,
                    last: 22
                }]),
                "--dport 22"
            ),
        ]
    );
    assert_eq!(filter.chain("FORWARD").unwrap().rules[0].line, 11);
}

#[test]
fn leading_bom_is_skipped() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j REJECT\nCOMMIT\n";
    let with_bom = parse(&format!("\u{feff}{text}")).unwrap();
    assert_eq!(with_bom, parse(text).unwrap());
    assert_eq!(with_bom.table("filter").unwrap().chain("INPUT").unwrap().rules[0].line, 3);
}

#[test]
fn rhel7_default_rejects_libvirt_and_accepts_ssh() {
    let rules = fixture!("rhel7-default.rules");
    let d = tcp(&rules, PEER, 16509);
    assert_rule(&d, Verdict::Reject, 10, REJECT_LINE);
    assert!(d.uncertain.is_empty(), "{:?}", d.uncertain);
    assert_eq!(d.rule.as_ref().unwrap().index, 5);
    assert_eq!(d.to_string(), format!("REJECT by line 10: {REJECT_LINE}"));

    let d = tcp(&rules, PEER, 22);
    assert_rule(
        &d,
        Verdict::Accept,
        9,
        "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT",
    );

    let (port, d) = rules.first_blocked(ip(PEER), 49152..=49215).unwrap();
    assert_eq!(port, 49152);
    assert_rule(&d, Verdict::Reject, 10, REJECT_LINE);
}

#[test]
fn accept_appended_after_reject_is_never_reached() {
    let rules = fixture!("rhel7-libvirt-after-reject.rules");
    let d = tcp(&rules, PEER, 16509);
    assert_rule(&d, Verdict::Reject, 10, REJECT_LINE);
    let late = &rules.table("filter").unwrap().chain("INPUT").unwrap().rules[5];
    assert_eq!((late.line, late.index), (11, 6));
    assert_eq!(late.text, "-A INPUT -p tcp -m tcp --dport 16509 -j ACCEPT");
}

#[test]
fn accept_inserted_before_reject_wins_and_keeps_its_comment() {
    let rules = fixture!("rhel7-libvirt-before-reject.rules");
    let d = tcp(&rules, PEER, 16509);
    let text = r#"-A INPUT -p tcp -m state --state NEW -m tcp --dport 16509 -m comment --comment "migready: libvirt 16509 from peers" -j ACCEPT"#;
    assert_rule(&d, Verdict::Accept, 10, text);
    let rule = d.rule.unwrap();
    assert_eq!(
        rule.comment.as_deref(),
        Some("migready: libvirt 16509 from peers")
    );
    assert_eq!(rule.index, 5);
    assert_eq!(
        rule.matches.len(),
        3,
        "the comment is not a match: {:?}",
        rule.matches
    );
    // Other ports still hit the REJECT, now one line further down.
    assert_rule(&tcp(&rules, PEER, 16510), Verdict::Reject, 11, REJECT_LINE);
}

#[test]
fn drop_policy_with_only_ssh_allowed() {
    let rules = fixture!("drop-policy-ssh-only.rules");
    assert_eq!(rules.input_policy(), Some(Policy::Drop));
    assert!(!rules.is_empty());
    let d = tcp(&rules, PEER, 16509);
    assert_policy(&d, Verdict::Drop);
    assert!(d.uncertain.is_empty());
    assert_eq!(d.to_string(), "DROP by policy of INPUT");
    assert_rule(
        &tcp(&rules, PEER, 22),
        Verdict::Accept,
        9,
        "-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT",
    );
    let (port, d) = rules.first_blocked(ip(PEER), 49152..=49215).unwrap();
    assert_eq!(port, 49152);
    assert_policy(&d, Verdict::Drop);
}

#[test]
fn accept_restricted_to_peer_sources() {
    let rules = fixture!("peer-restricted.rules");
    assert_rule(
        &tcp(&rules, PEER, 16509),
        Verdict::Accept,
        10,
        "-A INPUT -s 198.18.42.12/32 -p tcp -m tcp --dport 16509 -j ACCEPT",
    );
    assert_rule(
        &tcp(&rules, "198.18.42.13", 16509),
        Verdict::Accept,
        11,
        "-A INPUT -s 198.18.42.13/32 -p tcp -m tcp --dport 16509 -j ACCEPT",
    );
    assert_rule(
        &tcp(&rules, "198.18.42.14", 16509),
        Verdict::Reject,
        12,
        REJECT_LINE,
    );
    assert_rule(
        &tcp(&rules, OUTSIDER, 16509),
        Verdict::Reject,
        12,
        REJECT_LINE,
    );
}

#[test]
fn migration_range_opened_with_multiport() {
    let rules = fixture!("migration-multiport.rules");
    assert!(rules.first_blocked(ip(PEER), 49152..=49215).is_none());
    let d = tcp(&rules, PEER, 49200);
    let rule = d.rule.as_ref().unwrap();
    assert_eq!((d.verdict, rule.line), (Verdict::Accept, 10));
    assert_eq!(
        rule.comment.as_deref(),
        Some("libvirt and qemu migration from compute peers")
    );
    assert!(rule.matches.iter().any(|m| m.kind
        == MatchKind::DestPorts(vec![
            PortRange {
                first: 16509,
                last: 16509
            },
            PortRange {
                first: 49152,
                last: 49215
            },
        ])));
    assert_eq!(tcp(&rules, PEER, 16509).verdict, Verdict::Accept);
    // Just outside the range, and from outside the peer network.
    assert_rule(&tcp(&rules, PEER, 49216), Verdict::Reject, 11, REJECT_LINE);
    let (port, d) = rules.first_blocked(ip(OUTSIDER), 49152..=49215).unwrap();
    assert_eq!(port, 49152);
    assert_rule(&d, Verdict::Reject, 11, REJECT_LINE);
}

#[test]
fn migration_range_opened_with_tcp_dport_range() {
    let rules = fixture!("migration-tcp-range.rules");
    assert!(rules.first_blocked(ip(PEER), 49152..=49215).is_none());
    assert_rule(
        &tcp(&rules, PEER, 49215),
        Verdict::Accept,
        11,
        "-A INPUT -p tcp -m state --state NEW -m tcp --dport 49152:49215 -j ACCEPT",
    );
    assert_rule(&tcp(&rules, PEER, 49151), Verdict::Reject, 12, REJECT_LINE);
}

#[test]
fn migration_range_opened_partially() {
    let rules = fixture!("migration-partial.rules");
    let (port, d) = rules.first_blocked(ip(PEER), 49152..=49215).unwrap();
    assert_eq!(port, 49201);
    assert_rule(&d, Verdict::Reject, 12, REJECT_LINE);
    assert!(rules.first_blocked(ip(PEER), 49152..=49200).is_none());
}

#[test]
fn empty_text_accepts_by_policy() {
    let rules = fixture!("empty.rules");
    assert!(rules.tables.is_empty());
    assert!(rules.is_empty());
    assert_eq!(rules.input_policy(), None);
    let d = tcp(&rules, PEER, 16509);
    assert_policy(&d, Verdict::Accept);
    assert!(rules.first_blocked(ip(PEER), 49152..=49215).is_none());
}

#[test]
fn filter_table_without_rules_accepts_by_policy() {
    let rules = fixture!("filter-no-rules.rules");
    assert!(rules.is_empty());
    assert_eq!(rules.input_policy(), Some(Policy::Accept));
    assert_policy(&tcp(&rules, PEER, 16509), Verdict::Accept);
}

#[test]
fn drop_policy_without_rules_is_not_empty() {
    let rules = parse("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n").unwrap();
    assert!(!rules.is_empty());
    assert_policy(&tcp(&rules, PEER, 16509), Verdict::Drop);
}

#[test]
fn only_other_tables_means_input_accepts() {
    let rules = parse("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.1\nCOMMIT\n").unwrap();
    assert!(rules.is_empty());
    assert_policy(&tcp(&rules, PEER, 16509), Verdict::Accept);
}

#[test]
fn ufw_user_chains_with_return() {
    let rules = fixture!("ufw.rules");
    let d = tcp(&rules, PEER, 16509);
    assert_rule(
        &d,
        Verdict::Accept,
        100,
        "-A ufw-user-input -s 198.18.42.0/24 -p tcp -m tcp --dport 16509 -j ACCEPT",
    );
    assert_eq!(d.rule.as_ref().unwrap().chain, "ufw-user-input");
    assert_eq!(d.rule.as_ref().unwrap().index, 2);
    // `--dst-type LOCAL -j RETURN` is certain for a connection to this host.
    assert!(d.uncertain.is_empty(), "{:?}", d.uncertain);
    assert!(rules.first_blocked(ip(PEER), 49152..=49215).is_none());

    // Not allowed: falls through every ufw chain (LOG is not terminating)
    // to the DROP policy.
    let d = tcp(&rules, OUTSIDER, 16509);
    assert_policy(&d, Verdict::Drop);
    assert!(d.uncertain.is_empty(), "{:?}", d.uncertain);
    assert_rule(
        &tcp(&rules, OUTSIDER, 22),
        Verdict::Accept,
        99,
        "-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT",
    );
    // SMB is sent to ufw-skip-to-policy-input, which drops.
    assert_rule(
        &tcp(&rules, OUTSIDER, 445),
        Verdict::Drop,
        95,
        "-A ufw-skip-to-policy-input -j DROP",
    );
}

#[test]
fn firewalld_zones_with_goto() {
    let rules = fixture!("firewalld-rhel7.rules");
    let d = tcp(&rules, PEER, 16509);
    assert_rule(
        &d,
        Verdict::Accept,
        63,
        "-A IN_public_allow -p tcp -m tcp --dport 16509 -m conntrack --ctstate NEW -j ACCEPT",
    );
    assert_eq!(d.uncertain.len(), 1, "{:?}", d.uncertain);
    assert!(
        d.uncertain[0]
            .starts_with("line 56: assumed to match (`-i eth0`: incoming interface unknown)"),
        "{}",
        d.uncertain[0]
    );

    // The migration range is not open: IN_public ends, -g returns straight
    // to INPUT (past INPUT_ZONES), INVALID does not match, REJECT does.
    let (port, d) = rules.first_blocked(ip(PEER), 49152..=49215).unwrap();
    assert_eq!(port, 49152);
    assert_rule(&d, Verdict::Reject, 33, REJECT_LINE);
    assert_eq!(d.rule.as_ref().unwrap().index, 7);
}

#[test]
fn openstack_compute_with_neutron_and_libvirt_chains() {
    let rules = fixture!("openstack-compute.rules");
    assert_eq!(
        rules
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["raw", "filter"]
    );
    let filter = rules.table("filter").unwrap();
    assert!(filter.chain("neutron-openvswi-INPUT").is_some());
    assert!(filter.chain("nova-compute-INPUT").is_some());
    let first = &filter.chain("INPUT").unwrap().rules[0];
    assert_eq!(first.target, Target::Jump("LIBVIRT_INP".into()));

    let libvirt_rule = r#"-A INPUT -s 198.18.42.0/24 -p tcp -m multiport --dports 16514,49152:49215,5900:6923 -m state --state NEW -m comment --comment "200 nova_libvirt ipv4" -j ACCEPT"#;
    let drop_rule =
        r#"-A INPUT -m state --state NEW -m comment --comment "999 drop all ipv4" -j DROP"#;

    // The migration range is open to the internal network; the neutron
    // per-port chain (physdev, bridged) is not on the path of a peer.
    assert!(rules.first_blocked(ip(PEER), 49152..=49215).is_none());
    let d = tcp(&rules, PEER, 49152);
    assert_rule(&d, Verdict::Accept, 46, libvirt_rule);
    assert!(d.uncertain.is_empty(), "{:?}", d.uncertain);
    assert_eq!(
        d.rule.unwrap().comment.as_deref(),
        Some("200 nova_libvirt ipv4")
    );

    // TLS 16514 is open, plain TCP 16509 is not.
    assert_rule(&tcp(&rules, PEER, 16514), Verdict::Accept, 46, libvirt_rule);
    let d = tcp(&rules, PEER, 16509);
    assert_rule(&d, Verdict::Drop, 49, drop_rule);
    assert!(
        d.uncertain.is_empty(),
        "LOG under -m limit is not terminating: {:?}",
        d.uncertain
    );
    assert_rule(&tcp(&rules, OUTSIDER, 49152), Verdict::Drop, 49, drop_rule);
}

#[test]
fn rhel7_ip6tables_default() {
    let rules = fixture!("rhel7-default-ip6.rules");
    let peer6 = "2001:db8:42::12";
    assert_rule(
        &tcp(&rules, peer6, 16509),
        Verdict::Reject,
        11,
        "-A INPUT -j REJECT --reject-with icmp6-adm-prohibited",
    );
    assert_eq!(tcp(&rules, peer6, 22).verdict, Verdict::Accept);
    // `-d fe80::/64 -p udp ...` is out on the protocol, not assumed.
    assert!(tcp(&rules, peer6, 546).uncertain.is_empty());
    let udp = rules.input_decision(&Probe {
        proto: Proto::Udp,
        src: ip(peer6),
        dport: 546,
    });
    assert_eq!(udp.verdict, Verdict::Accept);
    assert_eq!(udp.uncertain.len(), 1);
    assert!(
        udp.uncertain[0].contains("`-d fe80::/64`: destination address"),
        "{}",
        udp.uncertain[0]
    );
}

// ---- parse errors ---------------------------------------------------------

#[test]
fn rule_before_any_table_is_an_error() {
    let err = parse("# Generated by iptables-save\n-A INPUT -j ACCEPT\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(
        err.to_string(),
        "line 2: `-A` outside of a table (no `*filter` line before it)"
    );
}

#[test]
fn unterminated_quote_is_an_error_on_its_line() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n\n-A INPUT -m comment --comment \"open libvirt -j ACCEPT\nCOMMIT\n";
    let err = parse(text).unwrap_err();
    assert_eq!(
        err,
        ParseError {
            line: 5,
            message: "unterminated double quote".into()
        }
    );
    assert_eq!(err.to_string(), "line 5: unterminated double quote");
}

#[test]
fn other_parse_errors_name_their_line() {
    let cases = [
        (
            "*filter\n:INPUT REJECT [0:0]\nCOMMIT\n",
            2,
            "unknown policy `REJECT` for chain INPUT",
        ),
        (
            "*filter\n:INPUT\nCOMMIT\n",
            2,
            "chain header for INPUT has no policy",
        ),
        (
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n",
            1,
            "table filter is not closed by COMMIT (truncated output?)",
        ),
        ("COMMIT\n", 1, "COMMIT outside of a table"),
        (
            "*filter\n*nat\n",
            2,
            "table nat starts before table filter is closed by COMMIT",
        ),
        (
            "*filter\nCOMMIT\n*filter\nCOMMIT\n",
            3,
            "table filter appears twice",
        ),
        (
            "*filter\n:INPUT ACCEPT\n:INPUT ACCEPT\nCOMMIT\n",
            3,
            "chain INPUT is declared twice",
        ),
        (
            "*filter\n-I INPUT 1 -j ACCEPT\nCOMMIT\n",
            2,
            "unexpected `-I` (expected `-A`, `:chain` or COMMIT)",
        ),
        ("*filter\n-A\nCOMMIT\n", 2, "`-A` without a chain name"),
        (
            "*filter\n-A INPUT -p tcp --dport\nCOMMIT\n",
            2,
            "option --dport needs a value",
        ),
        (
            "*filter\n-A INPUT -p tcp 22 -j ACCEPT\nCOMMIT\n",
            2,
            "unexpected argument `22`",
        ),
        (
            "*filter\n-A INPUT ! -j ACCEPT\nCOMMIT\n",
            2,
            "`!` before `-j`",
        ),
        (
            "*filter\n-A INPUT -j\nCOMMIT\n",
            2,
            "option -j needs a value",
        ),
    ];
    for (text, line, message) in cases {
        let err = parse(text).unwrap_err();
        assert_eq!(
            (err.line, err.message.as_str()),
            (line, message),
            "{text:?}"
        );
    }
}

#[test]
fn crlf_counters_and_undeclared_chains_are_accepted() {
    let text = "*filter\r\n:INPUT DROP [5:300]\r\n[12:720] -A INPUT -p tcp -m tcp --dport 16509 -j ACCEPT\r\n-A extra -j RETURN\r\nCOMMIT\r\n";
    let rules = parse(text).unwrap();
    let filter = rules.table("filter").unwrap();
    let rule = &filter.chain("INPUT").unwrap().rules[0];
    assert_eq!(rule.text, "-A INPUT -p tcp -m tcp --dport 16509 -j ACCEPT");
    assert_eq!(rule.line, 3);
    assert_eq!(filter.chain("extra").unwrap().policy, None);
    assert_rule(&tcp(&rules, PEER, 16509), Verdict::Accept, 3, &rule.text);
}

// ---- tokenizing -----------------------------------------------------------

#[test]
fn tokenize_like_a_shell() {
    assert_eq!(
        tokenize(r#"-A INPUT -m comment --comment "migready: libvirt 16509 from peers" -j ACCEPT"#)
            .unwrap(),
        [
            "-A",
            "INPUT",
            "-m",
            "comment",
            "--comment",
            "migready: libvirt 16509 from peers",
            "-j",
            "ACCEPT"
        ]
    );
    assert_eq!(
        tokenize(r#"--comment "say \"hi\" \\ there""#).unwrap(),
        ["--comment", r#"say "hi" \ there"#]
    );
    assert_eq!(
        tokenize(r#"a"b c"d 'e "f' g\ h """#).unwrap(),
        ["ab cd", "e \"f", "g h", ""]
    );
    assert_eq!(tokenize("  \t ").unwrap(), Vec::<String>::new());
    assert_eq!(tokenize("'open").unwrap_err(), "unterminated single quote");
    assert_eq!(
        tokenize(r#""open\"#).unwrap_err(),
        "unterminated double quote"
    );
}

/// Quote a word the way iptables-save quotes comments.
fn save_quote(word: &str) -> String {
    format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
}

proptest! {
    #[test]
    fn tokenize_inverts_iptables_save_quoting(words in prop::collection::vec(".*", 0..6)) {
        let line = words.iter().map(|w| save_quote(w)).collect::<Vec<_>>().join(" ");
        prop_assert_eq!(tokenize(&line).unwrap(), words);
    }

    #[test]
    fn comments_survive_a_parse(comment in "[ -~]{0,40}") {
        let text = format!(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m comment --comment {} -j ACCEPT\nCOMMIT\n",
            save_quote(&comment)
        );
        let rules = parse(&text).unwrap();
        let rule = &rules.table("filter").unwrap().chain("INPUT").unwrap().rules[0];
        prop_assert_eq!(rule.comment.as_deref(), Some(comment.as_str()));
        prop_assert_eq!(&rule.target, &Target::Accept);
    }

    #[test]
    fn parse_and_evaluate_never_panic(lines in prop::collection::vec(
        prop_oneof![
            Just("*filter".to_string()),
            Just("COMMIT".to_string()),
            Just(":INPUT DROP [0:0]".to_string()),
            Just(":c - [0:0]".to_string()),
            Just("-A INPUT -j c".to_string()),
            Just("-A c -g INPUT".to_string()),
            Just("-A c -j c".to_string()),
            "-A (INPUT|c) [ -~]{0,30}",
            "[ -~]{0,30}",
        ],
        0..12,
    ), port in any::<u16>()) {
        if let Ok(rules) = parse(&lines.join("\n")) {
            let _ = rules.input_decision(&Probe::tcp(ip(PEER), port));
            let _ = rules.is_empty();
        }
    }

    #[test]
    fn first_blocked_is_the_end_of_the_open_range(first in 49152u16..49215, len in 0u16..80) {
        let last = first.saturating_add(len);
        let text = format!(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport {first}:{last} -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n"
        );
        let rules = parse(&text).unwrap();
        let blocked = rules.first_blocked(ip(PEER), 49152..=49215).map(|(p, _)| p);
        let expected = if first > 49152 { Some(49152) } else if last < 49215 { Some(last + 1) } else { None };
        prop_assert_eq!(blocked, expected);
    }
}

// ---- match semantics ------------------------------------------------------

/// Evaluate a filter table whose INPUT chain is `rules`, ending in REJECT.
fn input(rules: &str) -> Ruleset {
    let text = format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:peers - [0:0]\n{rules}\n-A INPUT -j REJECT\nCOMMIT\n"
    );
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Verdict for a TCP probe to 16509 from PEER, and the number of uncertain notes.
fn verdict_of(rule: &str) -> (Verdict, usize) {
    let d = tcp(&input(rule), PEER, 16509);
    (d.verdict, d.uncertain.len())
}

#[test]
fn protocol_matches() {
    assert_eq!(
        verdict_of("-A INPUT -p tcp -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(verdict_of("-A INPUT -p 6 -j ACCEPT"), (Verdict::Accept, 0));
    assert_eq!(
        verdict_of("-A INPUT -p all -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p udp -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT ! -p tcp -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT ! -p udp -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p sctp -j ACCEPT"),
        (Verdict::Reject, 0)
    );
}

#[test]
fn address_matches() {
    assert_eq!(
        verdict_of("-A INPUT -s 198.18.42.0/24 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT --source 198.18.42.12 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -s 198.18.43.0/24 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT ! -s 198.18.42.0/24 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT ! -s 10.0.0.0/8 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -s 198.18.42.0/255.255.255.0 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -s 10.0.0.1,198.18.42.12 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -s 2001:db8::/32 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    // Old `-s ! addr` spelling.
    assert_eq!(
        verdict_of("-A INPUT -s ! 10.0.0.0/8 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    // The destination is this host, whose address is not part of the probe.
    assert_eq!(
        verdict_of("-A INPUT -d 0.0.0.0/0 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT ! -d 0.0.0.0/0 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -d 198.18.42.11/32 -j ACCEPT"),
        (Verdict::Accept, 1)
    );
    assert_eq!(
        verdict_of("-A INPUT ! -d 198.18.42.11/32 -j ACCEPT"),
        (Verdict::Accept, 1)
    );
    assert_eq!(
        verdict_of("-A INPUT -d fe80::/64 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m iprange --src-range 198.18.42.10-198.18.42.20 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m iprange ! --src-range 198.18.42.10-198.18.42.20 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    // A hostname is not resolved: uncertain.
    assert_eq!(
        verdict_of("-A INPUT -s compute-2.example -j ACCEPT"),
        (Verdict::Accept, 1)
    );
}

#[test]
fn interface_matches() {
    assert_eq!(verdict_of("-A INPUT -i lo -j ACCEPT"), (Verdict::Reject, 0));
    assert_eq!(
        verdict_of("-A INPUT ! -i lo -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    let d = tcp(&input("-A INPUT -i eth1 -j DROP"), PEER, 16509);
    assert_rule(&d, Verdict::Drop, 4, "-A INPUT -i eth1 -j DROP");
    assert_eq!(
        d.uncertain,
        [
            "line 4: assumed to match (`-i eth1`: incoming interface unknown): -A INPUT -i eth1 -j DROP"
        ]
    );
    // An uncertain match on a rule that is out anyway is not noted.
    assert_eq!(
        verdict_of("-A INPUT -i eth1 -p udp -j DROP"),
        (Verdict::Reject, 0)
    );
}

#[test]
fn port_matches() {
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp --dport 16509 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp --destination-port 16000:17000 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp --dport 16510: -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp --dport :16509 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp ! --dport 22 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp ! --dport 16509 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m multiport --dports 22,80,16509 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m multiport ! --dports 22,80 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m multiport --ports 16509 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    // Source ports: the peer's is ephemeral.
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp --sport 53 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp ! --sport 53 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp --sport 40000:50000 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp --sport 1024:65535 -j ACCEPT"),
        (Verdict::Accept, 1)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m multiport --sports 1024:30000,30001: -j ACCEPT"),
        (Verdict::Accept, 1)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m multiport --ports 22,1024:65535 -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m multiport --ports 22,80 -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    // A port name is not resolved: uncertain.
    assert_eq!(
        verdict_of("-A INPUT -p tcp --dport libvirt -j ACCEPT"),
        (Verdict::Accept, 1)
    );
}

#[test]
fn state_matches() {
    assert_eq!(
        verdict_of("-A INPUT -m state --state NEW -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m conntrack --ctstate INVALID -j DROP"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m conntrack ! --ctstate INVALID -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m conntrack --ctstate NEW --ctstatus CONFIRMED -j ACCEPT"),
        (Verdict::Accept, 1)
    );
}

#[test]
fn tcp_flag_matches() {
    assert_eq!(
        verdict_of("-A INPUT -p tcp ! --syn -m state --state NEW -j DROP"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp --syn -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j DROP"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp --tcp-flags ALL SYN -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -p tcp -m tcp --tcp-flags SYN,RST SYN,RST -j DROP"),
        (Verdict::Reject, 0)
    );
    assert_eq!(verdict_of("-A INPUT -f -j DROP"), (Verdict::Reject, 0));
}

#[test]
fn modules_we_cannot_see_into_are_assumed_to_match() {
    let d = tcp(
        &input(
            "-A INPUT -p tcp -m set --match-set compute-peers src -m tcp --dport 16509 -j ACCEPT",
        ),
        PEER,
        16509,
    );
    assert_eq!(d.verdict, Verdict::Accept);
    assert_eq!(
        d.uncertain,
        [
            "line 4: assumed to match (`-m set --match-set compute-peers src`: ipset membership unknown): -A INPUT -p tcp -m set --match-set compute-peers src -m tcp --dport 16509 -j ACCEPT"
        ]
    );
    let rule = d.rule.unwrap();
    assert_eq!(
        rule.matches[1].kind,
        MatchKind::Module {
            name: "set".into(),
            args: vec!["--match-set".into(), "compute-peers".into(), "src".into()]
        }
    );
    assert_eq!(
        verdict_of("-A INPUT -m limit --limit 5/sec -j ACCEPT"),
        (Verdict::Accept, 1)
    );
    assert_eq!(
        verdict_of(
            "-A INPUT -m recent --update --seconds 60 --hitcount 4 --name SSH --rsource -j DROP"
        ),
        (Verdict::Drop, 1)
    );
    assert_eq!(
        verdict_of("-A INPUT -m recent --set --name SSH --rsource -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m mark --mark 0x1/0x1 -j ACCEPT"),
        (Verdict::Accept, 1)
    );
    assert_eq!(
        verdict_of("-A INPUT -m physdev --physdev-in tap1 --physdev-is-bridged -j DROP"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m physdev --physdev-in eth0 -j ACCEPT"),
        (Verdict::Accept, 1)
    );
    // IPv6 extension-header matches never hold for a plain SYN.
    let rules = input(
        "-A INPUT -m rt --rt-type 0 -j DROP\n-A INPUT -m frag --fragmore -j DROP\n-A INPUT -s 2001:db8:42::/48 -j ACCEPT",
    );
    assert_rule(
        &tcp(&rules, "2001:db8:42::12", 16509),
        Verdict::Accept,
        6,
        "-A INPUT -s 2001:db8:42::/48 -j ACCEPT",
    );
    // A negated generic option right after a module group belongs to the rule.
    let rules = input("-A INPUT -m set --match-set compute-peers src ! -s 198.18.42.0/24 -j DROP");
    let rule = &rules.table("filter").unwrap().chain("INPUT").unwrap().rules[0];
    assert_eq!(rule.matches[0].text, "-m set --match-set compute-peers src");
    assert_eq!(
        (rule.matches[1].negated, rule.matches[1].text.as_str()),
        (true, "! -s 198.18.42.0/24")
    );
    assert_eq!(tcp(&rules, PEER, 16509).verdict, Verdict::Reject);
}

#[test]
fn addrtype_and_pkttype() {
    assert_eq!(
        verdict_of("-A INPUT -m addrtype --dst-type LOCAL -j ACCEPT"),
        (Verdict::Accept, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m addrtype --dst-type BROADCAST,MULTICAST -j DROP"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m addrtype ! --dst-type LOCAL -j DROP"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m addrtype --src-type LOCAL -j ACCEPT"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT"),
        (Verdict::Accept, 1)
    );
    assert_eq!(
        verdict_of("-A INPUT -m pkttype --pkt-type broadcast -j DROP"),
        (Verdict::Reject, 0)
    );
    assert_eq!(
        verdict_of("-A INPUT -m pkttype --pkt-type unicast -j ACCEPT"),
        (Verdict::Accept, 0)
    );
}

#[test]
fn non_terminating_targets_continue() {
    let rules = input(
        "-A INPUT -j LOG --log-prefix \"IN: \" --log-level 4\n-A INPUT -j MARK --set-xmark 0x1/0xffffffff\n-A INPUT -p tcp --dport 16509\n-A INPUT -p tcp --dport 16509 -j ACCEPT",
    );
    let chain = rules.table("filter").unwrap().chain("INPUT").unwrap();
    assert_eq!(chain.rules[0].target, Target::Other("LOG".into()));
    assert_eq!(
        chain.rules[0].target_options,
        ["--log-prefix", "IN: ", "--log-level", "4"]
    );
    assert_eq!(chain.rules[2].target, Target::None);
    assert_rule(
        &tcp(&rules, PEER, 16509),
        Verdict::Accept,
        7,
        "-A INPUT -p tcp --dport 16509 -j ACCEPT",
    );
    assert_eq!(
        verdict_of("-A INPUT -j NFQUEUE --queue-num 0"),
        (Verdict::Reject, 1)
    );
}

#[test]
fn jumps_returns_and_gotos() {
    // RETURN goes back to the rule after the jump.
    let rules = input(
        "-A INPUT -j peers\n-A INPUT -p tcp --dport 16509 -j ACCEPT\n-A peers -s 198.18.42.12 -j RETURN\n-A peers -j DROP",
    );
    assert_rule(
        &tcp(&rules, PEER, 16509),
        Verdict::Accept,
        5,
        "-A INPUT -p tcp --dport 16509 -j ACCEPT",
    );
    assert_rule(
        &tcp(&rules, OUTSIDER, 16509),
        Verdict::Drop,
        7,
        "-A peers -j DROP",
    );

    // The end of a chain entered with -g returns past the last -j.
    let text = "*filter\n:INPUT DROP [0:0]\n:a - [0:0]\n:b - [0:0]\n-A INPUT -j a\n-A INPUT -p tcp -j ACCEPT\n-A a -g b\n-A a -j REJECT\n-A b -s 10.0.0.0/8 -j DROP\nCOMMIT\n";
    let rules = parse(text).unwrap();
    assert_rule(
        &tcp(&rules, PEER, 16509),
        Verdict::Accept,
        6,
        "-A INPUT -p tcp -j ACCEPT",
    );
    // -g straight from INPUT: the end of the chain is INPUT's policy.
    let text = "*filter\n:INPUT DROP [0:0]\n:b - [0:0]\n-A INPUT -g b\n-A INPUT -j ACCEPT\n-A b -p udp -j DROP\nCOMMIT\n";
    assert_policy(&tcp(&parse(text).unwrap(), PEER, 16509), Verdict::Drop);
    // RETURN in INPUT applies the policy.
    let text =
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -j RETURN\n-A INPUT -j ACCEPT\nCOMMIT\n";
    assert_policy(&tcp(&parse(text).unwrap(), PEER, 16509), Verdict::Drop);
}

#[test]
fn jump_targets_are_resolved_against_the_table() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j late\n-A INPUT -j LOG\n:late - [0:0]\n-A late -j DROP\nCOMMIT\n";
    let rules = parse(text).unwrap();
    let chain = rules.table("filter").unwrap().chain("INPUT").unwrap();
    assert_eq!(chain.rules[0].target, Target::Jump("late".into()));
    assert_eq!(chain.rules[1].target, Target::Other("LOG".into()));
    assert_rule(&tcp(&rules, PEER, 1), Verdict::Drop, 6, "-A late -j DROP");
}

#[test]
fn loops_and_missing_goto_chains_do_not_hang() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:a - [0:0]\n-A INPUT -j a\n-A a -g a\nCOMMIT\n";
    let d = tcp(&parse(text).unwrap(), PEER, 16509);
    assert_policy(&d, Verdict::Accept);
    assert!(
        d.uncertain.last().unwrap().contains("more than 1000 jumps"),
        "{:?}",
        d.uncertain
    );

    let text = "*filter\n:INPUT DROP [0:0]\n-A INPUT -g nowhere\n-A INPUT -j ACCEPT\nCOMMIT\n";
    let d = tcp(&parse(text).unwrap(), PEER, 16509);
    assert_eq!(d.verdict, Verdict::Accept);
    assert_eq!(
        d.uncertain,
        ["line 3: chain nowhere does not exist, rule ignored: -A INPUT -g nowhere"]
    );
}

#[test]
fn net_display_and_prefix() {
    let rules = input("-A INPUT -s 198.18.42.0/24 -s 10.1.0.0/255.0.255.0 -j ACCEPT");
    let rule = &rules.table("filter").unwrap().chain("INPUT").unwrap().rules[0];
    let nets: Vec<String> = rule
        .matches
        .iter()
        .flat_map(|m| match &m.kind {
            MatchKind::Source(nets) => nets.iter().map(ToString::to_string).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(nets, ["198.18.42.0/24", "10.1.0.0/255.0.255.0"]);
}
