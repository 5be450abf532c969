use super::*;

/// The fixture home (tests/fixtures/ssh_config/home) copied to a temporary
/// directory with the permissions ssh wants (a checkout's may be group-writable).
pub(crate) fn fixture_home() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(to).unwrap();
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&fixtures().join("home"), dir.path());
    dir
}

pub(crate) fn fixtures() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ssh_config"
    ))
    .to_path_buf()
}

fn parse(text: &str) -> SshConfig {
    SshConfig::parse_str(
        text,
        Path::new("/home/u/.ssh/config"),
        Some(Path::new("/home/u")),
    )
    .unwrap()
}

fn parse_err(text: &str) -> (usize, usize, String) {
    let e = SshConfig::parse_str(
        text,
        Path::new("/home/u/.ssh/config"),
        Some(Path::new("/home/u")),
    )
    .unwrap_err();
    (e.line, e.column, e.message)
}

/// The first argument of a key's value for `names`, as written.
fn first(
    config: &SshConfig,
    names: &[&str],
    key: for<'a> fn(&Settings<'a>) -> Option<&'a Opt>,
) -> Option<String> {
    let found = config.lookup(names);
    key(&found).map(|opt| opt.args[0].text.clone())
}

#[test]
fn lines_split_like_ssh() {
    let split = |line: &str| {
        split_line(line).unwrap().map(|(k, c, args)| {
            (
                k,
                c,
                args.into_iter()
                    .map(|a| (a.text, a.column))
                    .collect::<Vec<_>>(),
            )
        })
    };
    assert_eq!(split("   # comment"), None);
    assert_eq!(split(""), None);
    assert_eq!(split("\t \r"), None);
    assert_eq!(
        split("Port 22"),
        Some(("Port".into(), 1, vec![("22".into(), 6)]))
    );
    assert_eq!(
        split("  Port=22"),
        Some(("Port".into(), 3, vec![("22".into(), 8)]))
    );
    assert_eq!(
        split("Port = 22 # why"),
        Some(("Port".into(), 1, vec![("22".into(), 8)]))
    );
    assert_eq!(
        split("Host a b\t!c"),
        Some((
            "Host".into(),
            1,
            vec![("a".into(), 6), ("b".into(), 8), ("!c".into(), 10)]
        ))
    );
    assert_eq!(
        split(r#"IdentityFile "~/my key" 'x y'z a\ b"#),
        Some((
            "IdentityFile".into(),
            1,
            vec![
                ("~/my key".into(), 14),
                ("x yz".into(), 25),
                ("a b".into(), 32)
            ]
        ))
    );
    // A # inside a word is not a comment; an escaped quote is a quote.
    assert_eq!(
        split(r#"HostName a#b \"q"#).unwrap().2,
        vec![("a#b".into(), 10), ("\"q".into(), 14)]
    );
    assert_eq!(
        split(r#"User "" x"#).unwrap().2,
        vec![(String::new(), 6), ("x".into(), 9)]
    );
    assert_eq!(
        split_line("IdentityFile \"abc").unwrap_err(),
        (14, "unterminated \" quote".to_string())
    );
    // Columns count characters.
    assert_eq!(
        split("User é x").unwrap().2,
        vec![("é".into(), 6), ("x".into(), 8)]
    );
}

#[test]
fn patterns_match_like_ssh() {
    for (pattern, name, matches) in [
        ("*", "anything", true),
        ("*", "", true),
        ("cmp?", "cmp1", true),
        ("cmp?", "cmp10", false),
        ("cmp*", "CMP10", true),
        ("CMP*", "cmp10", true),
        ("*.example.net", "a.example.net", true),
        ("*.example.net", "example.net", false),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "aXbY", false),
        ("198.18.48.*", "198.18.48.11", true),
        ("198.18.4?.1*", "198.18.48.11", true),
        ("**x", "yyx", true),
        ("", "", true),
        ("", "a", false),
    ] {
        assert_eq!(pattern_matches(pattern, name), matches, "{pattern} {name}");
    }
    // No exponential backtracking; Include globs are case-sensitive.
    assert!(!pattern_matches(&"*a".repeat(40), &("a".repeat(80) + "b")));
    assert!(pattern_matches("é*", "É-x") == false && pattern_matches("é?", "éx"));
    assert!(
        glob_matches("*.conf", "a.conf")
            && !glob_matches("*.conf", "A.CONF")
            && !glob_matches("*.conf", "a.conf~")
    );
    let host = |patterns: &[&str], names: &[&str]| {
        host_line_matches(
            &patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            names,
        )
    };
    assert!(host(&["cmp*"], &["cmp1"]));
    assert!(host(&["a", "cmp*"], &["cmp1"]));
    assert!(!host(&["cmp*", "!cmp9"], &["cmp9"]));
    assert!(!host(&["!cmp9", "cmp*"], &["cmp9"]));
    // A negation alone selects nothing.
    assert!(!host(&["!cmp9"], &["cmp1"]));
    // Name or address: either matches, a negation on either excludes.
    assert!(host(&["192.0.2.*"], &["cmp1", "192.0.2.11"]));
    assert!(!host(&["cmp*", "!192.0.2.11"], &["cmp1", "192.0.2.11"]));
}

#[test]
fn hops_parse_and_validate() {
    let hop = |user: Option<&str>, host: &str, port: Option<u16>| HopSpec {
        user: user.map(String::from),
        host: host.into(),
        port,
    };
    assert_eq!(parse_jumps("none").unwrap(), vec![]);
    assert_eq!(parse_jumps("NONE").unwrap(), vec![]);
    assert_eq!(
        parse_jumps("bastion").unwrap(),
        vec![hop(None, "bastion", None)]
    );
    assert_eq!(
        parse_jumps("ops@bastion:2222,relay.example.net,ssh://u@[2001:db8::1]:22,2001:db8::2,[2001:db8::3],192.0.2.7:22").unwrap(),
        vec![
            hop(Some("ops"), "bastion", Some(2222)),
            hop(None, "relay.example.net", None),
            hop(Some("u"), "2001:db8::1", Some(22)),
            hop(None, "2001:db8::2", None),
            hop(None, "2001:db8::3", None),
            hop(None, "192.0.2.7", Some(22)),
        ]
    );
    assert_eq!(
        hop(Some("ops"), "2001:db8::1", Some(22)).to_string(),
        "ops@[2001:db8::1]:22"
    );
    assert_eq!(hop(None, "bastion", None).to_string(), "bastion");
    for (value, message) in [
        ("", "must not be empty (\"none\": no jump host)"),
        (
            "a,,b",
            "jump host 2 \"\": empty entry (two commas in a row, or a leading or trailing comma)",
        ),
        (
            "a,",
            "jump host 2 \"\": empty entry (two commas in a row, or a leading or trailing comma)",
        ),
        (
            "bastion:0",
            "jump host 1 \"bastion:0\": port \"0\": expected an integer in 1..=65535",
        ),
        (
            "bastion:70000",
            "jump host 1 \"bastion:70000\": port \"70000\": expected an integer in 1..=65535",
        ),
        (
            "bastion:",
            "jump host 1 \"bastion:\": port \"\": expected an integer in 1..=65535",
        ),
        (
            "o;ps@bastion",
            "jump host 1 \"o;ps@bastion\": user: ';' is not allowed in a user name (letters, digits, '.', '_' and '-' only)",
        ),
        (
            "@bastion",
            "jump host 1 \"@bastion\": user: must not be empty",
        ),
        ("ops@", "jump host 1 \"ops@\": must not be empty"),
        (
            "bas tion",
            "jump host 1 \"bas tion\": a space is not allowed in a host name (letters, digits, '-' and '.' only)",
        ),
        (
            "$(reboot)",
            "jump host 1 \"$(reboot)\": '$' is not allowed in a host name (letters, digits, '-' and '.' only)",
        ),
        (
            "[2001:db8::1",
            "jump host 1 \"[2001:db8::1\": an address in brackets must end with ']'",
        ),
        (
            "[2001:db8::1]22",
            "jump host 1 \"[2001:db8::1]22\": expected ':PORT' after ']'",
        ),
        (
            "fe80::1%eth0",
            "jump host 1 \"fe80::1%eth0\": IPv6 zone ids (\"%eth0\") are not supported; use an address that is not link-local, or a host name",
        ),
    ] {
        assert_eq!(parse_jumps(value).unwrap_err(), message, "{value}");
    }
}

#[test]
fn times_convert_like_ssh() {
    assert_eq!(convtime("10"), Some(10));
    assert_eq!(convtime("10s"), Some(10));
    assert_eq!(convtime("1m30s"), Some(90));
    assert_eq!(convtime("1M"), Some(60));
    assert_eq!(convtime("1h1"), Some(3601));
    assert_eq!(convtime("2d"), Some(172_800));
    assert_eq!(convtime("1w"), Some(604_800));
    for bad in ["", "s", "1x", "-1", "1.5", "99999999999999999999", "1 m"] {
        assert_eq!(convtime(bad), None, "{bad}");
    }
}

#[test]
fn first_obtained_value_wins_and_identity_files_add_up() {
    let config = parse(
        "User top\nHost cmp*\n  User ops\n  IdentityFile a\nHost *\n  User other\n  IdentityFile b\n  IdentityFile a\n  Port 2222\n",
    );
    let found = config.lookup(&["cmp1"]);
    // Options before the first Host line apply to every host.
    assert_eq!(found.user.unwrap().args[0].text, "top");
    assert_eq!(
        found
            .identity_files
            .iter()
            .map(|o| o.args[0].text.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "a"]
    );
    assert_eq!(found.port.unwrap().args[0].text, "2222");
    assert_eq!(
        found.port.unwrap().at,
        At {
            file: 0,
            line: 9,
            column: 3
        }
    );
    let found = config.lookup(&["other"]);
    assert_eq!(found.identity_files.len(), 2);
    // Keywords are case-insensitive; ProxyJump and ProxyCommand share one slot.
    let config = parse("host x\n  PROXYCOMMAND none\n  proxyjump b\n");
    assert_eq!(config.lookup(&["x"]).proxy.unwrap().key, Key::ProxyCommand);
    assert_eq!(
        jumps(&config, config.lookup(&["x"]).proxy.unwrap()).unwrap(),
        vec![]
    );
}

#[test]
fn match_blocks_are_skipped_but_match_all_applies() {
    let config = parse(
        "Match host x\n  User m\nHost x\n  Port 1\nMatch all\n  User all\nMatch user y exec true\n  Port 2\n",
    );
    assert_eq!(first(&config, &["x"], |s| s.user).as_deref(), Some("all"));
    assert_eq!(first(&config, &["x"], |s| s.port).as_deref(), Some("1"));
    assert_eq!(first(&config, &["z"], |s| s.port), None);
}

#[test]
fn structural_errors_are_positioned() {
    assert_eq!(
        parse_err("Host\n"),
        (1, 1, "Host needs at least one pattern".to_string())
    );
    assert_eq!(
        parse_err("# x\n  Port\n"),
        (2, 3, "Port needs a value".to_string())
    );
    assert_eq!(
        parse_err("Host a\n  User \"x\n"),
        (2, 8, "unterminated \" quote".to_string())
    );
    assert_eq!(
        parse_err("Include\n"),
        (1, 1, "Include needs at least one file".to_string())
    );
    // Unknown keywords and their values are none of migready's business.
    let config = parse("ForwardAgent yes\nServerAliveInterval\nSendEnv LANG LC_*\n");
    assert!(config.lookup(&["x"]).user.is_none());
}

#[test]
fn values_are_validated_with_their_position() {
    let config = parse(
        "Host *\n  Port 0\n  User \"a b\"\n  HostName %h.example.net\n  ConnectTimeout 0\n  StrictHostKeyChecking maybe\n",
    );
    let found = config.lookup(&["cmp1"]);
    let e = port(&config, found.port.unwrap()).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (2, 8, "Port \"0\": expected an integer in 1..=65535")
    );
    let e = user(&config, found.user.unwrap()).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (
            3,
            8,
            "User \"a b\": a space is not allowed in a user name (letters, digits, '.', '_' and '-' only)"
        )
    );
    assert_eq!(
        host_name(&config, found.host_name.unwrap(), "cmp1").unwrap(),
        "cmp1.example.net"
    );
    let e = host_name(&config, found.host_name.unwrap(), "a_b").unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (
            4,
            12,
            "HostName \"a_b.example.net\": '_' is not allowed in a host name (letters, digits, '-' and '.' only)"
        )
    );
    let e = connect_timeout(&config, found.connect_timeout.unwrap(), 86_400).unwrap_err();
    assert_eq!(e.line, 5);
    assert!(
        e.message
            .starts_with("ConnectTimeout \"0\": expected a number of seconds in 1..=86400"),
        "{}",
        e.message
    );
    let e = accept_new(&config, found.strict.unwrap()).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (
            6,
            25,
            "StrictHostKeyChecking \"maybe\": expected yes, ask, accept-new or no"
        )
    );
    assert_eq!(e.path, Path::new("/home/u/.ssh/config"));
}

#[test]
fn strict_host_key_checking_never_accepts_a_changed_key() {
    // accept_new only says whether an unknown key may be recorded; the
    // transport refuses a changed key whatever it says.
    for (value, accept) in [
        ("yes", false),
        ("ask", false),
        ("accept-new", true),
        ("no", true),
        ("off", true),
        ("Yes", false),
    ] {
        let config = parse(&format!("StrictHostKeyChecking {value}\n"));
        assert_eq!(
            accept_new(&config, config.lookup(&["x"]).strict.unwrap()).unwrap(),
            accept,
            "{value}"
        );
    }
}

#[test]
fn paths_expand_tokens() {
    let config = parse(
        "IdentityFile ~/.ssh/id_%r@%h:%p_%n_%%\nIdentityFile %d/k\nIdentityFile none\nIdentityFile ~/.ssh/%x\nIdentityFile ~bob/k\n",
    );
    let found = config.lookup(&["cmp1"]);
    let tokens = Tokens {
        host: "192.0.2.11",
        original: "cmp1",
        remote_user: "ops",
        port: 2222,
    };
    let expand = |i: usize| path(&config, found.identity_files[i], &tokens);
    assert_eq!(
        expand(0).unwrap().unwrap(),
        Path::new("/home/u/.ssh/id_ops@192.0.2.11:2222_cmp1_%")
    );
    assert_eq!(expand(1).unwrap().unwrap(), Path::new("/home/u/k"));
    assert_eq!(expand(2).unwrap(), None);
    let e = expand(3).unwrap_err();
    assert_eq!((e.line, e.column), (4, 14));
    assert_eq!(
        e.message,
        "IdentityFile \"~/.ssh/%x\": unknown token %x (known: %d %h %i %n %p %r %u %%)"
    );
    assert_eq!(
        expand(4).unwrap_err().message,
        "IdentityFile \"~bob/k\": only \"~\" and \"~/\" are supported"
    );
    let uid = nix::unistd::getuid().as_raw();
    let config = parse("IdentityFile /k/%i\n");
    assert_eq!(
        path(&config, config.lookup(&["x"]).identity_files[0], &tokens)
            .unwrap()
            .unwrap(),
        PathBuf::from(format!("/k/{uid}"))
    );
}

#[test]
fn proxy_command_is_refused_where_it_applies() {
    let config =
        parse("Host legacy\n  ProxyCommand ssh -W %h:%p bastion\nHost *\n  ProxyJump bastion\n");
    let e = jumps(&config, config.lookup(&["legacy"]).proxy.unwrap()).unwrap_err();
    assert_eq!((e.line, e.column), (2, 3));
    assert_eq!(
        e.message,
        "ProxyCommand: migready cannot run a proxy command; use ProxyJump (or proxy_jump in the inventory)"
    );
    assert_eq!(
        jumps(&config, config.lookup(&["other"]).proxy.unwrap()).unwrap()[0].host,
        "bastion"
    );
    let config = parse("ProxyJump a, b\n");
    let e = jumps(&config, config.lookup(&["x"]).proxy.unwrap()).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (
            1,
            14,
            "ProxyJump takes one value (hops separated by commas, no spaces)"
        )
    );
}

#[test]
fn the_fixture_reads_as_ssh_reads_it() {
    let home = fixture_home();
    let h = home.path();
    let config = SshConfig::load(&h.join(".ssh/config"), Some(h), false).unwrap();
    // Main file, then the globbed includes in order (never.inc is read, never applies).
    let names: Vec<String> = config
        .files
        .iter()
        .map(|f| f.strip_prefix(h).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            ".ssh/config",
            ".ssh/config.d/never.inc",
            ".ssh/config.d/10-example.conf",
            ".ssh/config.d/20-timeouts.conf"
        ]
    );

    let get = |names: &[&str]| {
        let f = config.lookup(names);
        let arg = |o: Option<&Opt>| o.map(|o| o.args[0].text.clone());
        (
            arg(f.host_name),
            arg(f.user),
            arg(f.port),
            arg(f.proxy),
            arg(f.connect_timeout),
            arg(f.known_hosts),
            arg(f.strict),
            f.identity_files
                .iter()
                .map(|o| o.args[0].text.clone())
                .collect::<Vec<_>>(),
        )
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        get(&["cmp1"]),
        (
            s("192.0.2.11"),
            s("ops"),
            None,
            s("bastion"),
            s("1m30s"),
            s("~/.ssh/known_hosts.included"),
            s("no"),
            vec![
                "~/.ssh/id_%r_%h".to_string(),
                "%d/.ssh/id_ed25519".to_string()
            ]
        )
    );
    assert_eq!(get(&["cmp2"]).2, s("2222"));
    // cmp9 is excluded from `cmp?`; cmp8 is not, and `cmp?` comes first.
    assert_eq!(
        (get(&["cmp9"]).1, get(&["cmp9"]).3),
        (s("fallback"), s("none"))
    );
    assert_eq!(get(&["cmp8"]).3, s("bastion"));
    // The included file's `Host *.example.net` applies within it; `Match exec` never.
    assert_eq!(get(&["www.example.net"]).1, s("example-user"));
    assert_eq!(get(&["slow1"]).4, s("1m30s"));
    let bastion = get(&["bastion"]);
    assert_eq!(
        (bastion.0, bastion.1, bastion.2, bastion.5, bastion.6),
        (
            s("bastion.example.net"),
            s("jump"),
            s("2200"),
            s("~/.ssh/known_hosts.bastion"),
            s("accept-new")
        )
    );
    assert_eq!(bastion.7, ["~/.ssh/bastion key", "%d/.ssh/id_ed25519"]);
    // never.inc applies to the host its block selects, and to no other.
    assert_eq!(
        (
            get(&["nothing-matches-this"]).1,
            get(&["nothing-matches-this"]).2
        ),
        (s("never"), s("1"))
    );
    assert_eq!(get(&["zzz"]).2, None);
}

#[test]
fn includes_glob_and_nest_and_stop_at_loops() {
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    std::fs::create_dir_all(ssh.join("d")).unwrap();
    std::fs::write(
        ssh.join("config"),
        "Include d/*.conf /nonexistent/x d/missing\nHost x\n  Include ~/.ssh/d/a.conf\n",
    )
    .unwrap();
    std::fs::write(ssh.join("d/b.conf"), "Port 2\n").unwrap();
    std::fs::write(ssh.join("d/a.conf"), "User a\n").unwrap();
    std::fs::write(ssh.join("d/.hidden.conf"), "User hidden\n").unwrap();
    let config = SshConfig::load(&ssh.join("config"), Some(home.path()), false).unwrap();
    assert_eq!(first(&config, &["y"], |s| s.user).as_deref(), Some("a"));
    assert_eq!(first(&config, &["y"], |s| s.port).as_deref(), Some("2"));

    std::fs::write(ssh.join("config"), "Include config\n").unwrap();
    let e = SshConfig::load(&ssh.join("config"), Some(home.path()), false).unwrap_err();
    assert_eq!((e.line, e.column), (1, 1));
    assert_eq!(
        e.message,
        "Include nested more than 16 deep (does a file include itself?)"
    );
}

#[test]
fn unsafe_files_are_refused_and_missing_ones_are_empty() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    assert!(SshConfig::load(&path, None, true).unwrap().items.is_empty());
    assert_eq!(
        SshConfig::load(&path, None, false).unwrap_err().message,
        "cannot read ssh_config: no such file"
    );
    std::fs::write(&path, "User x\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    let e = SshConfig::load(&path, None, true).unwrap_err();
    assert_eq!((e.line, e.column), (0, 0));
    assert!(
        e.message
            .starts_with("bad owner or permissions (owner uid "),
        "{}",
        e.message
    );
    assert!(e.message.contains("mode 664"), "{}", e.message);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(SshConfig::load(&path, None, true).is_ok());
    // A directory is no config.
    assert_eq!(
        SshConfig::load(dir.path(), None, true).unwrap_err().message,
        "cannot read ssh_config: is a directory"
    );
}
