use super::*;

const KNOWN: &[&str] = &["nova.compute", "libvirt.listen", "firewall.migration"];
const HOME: &str = "/home/tester";

fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/inventory"
    ))
    .join(name)
}

/// Parses `text` as `/etc/migready/inv.toml` with `$HOME` = [`HOME`].
fn parse(text: &str) -> Result<Inventory, InventoryError> {
    parse_with_home(
        text,
        Path::new("/etc/migready/inv.toml"),
        KNOWN,
        Some(Path::new(HOME)),
    )
}

/// The error for `text`, displayed, with the path `inv.toml`.
fn parse_err(text: &str) -> String {
    parse_with_home(text, Path::new("inv.toml"), KNOWN, Some(Path::new(HOME)))
        .expect_err("inventory should be rejected")
        .to_string()
}

/// Loads a fixture that must fail; checks position, message and Display.
fn assert_fixture_error(name: &str, line: usize, column: usize, message: &str) {
    let path = fixture(name);
    let err = load_with_home(&path, KNOWN, Some(Path::new(HOME)))
        .expect_err(&format!("{name} should be rejected"));
    assert_eq!(
        (err.line, err.column, err.message.as_str()),
        (line, column, message),
        "{name}"
    );
    assert_eq!(err.path, path);
    assert_eq!(
        err.to_string(),
        format!("{}:{line}:{column}: {message}", path.display())
    );
}

fn host(inventory: &Inventory, name: &str) -> HostSpec {
    inventory
        .hosts
        .iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("host {name} missing"))
        .clone()
}

#[test]
fn full_inventory() {
    let text = r#"
[defaults]
user = "stack"
port = 2200
identity_file = "~/.ssh/id_ed25519"
known_hosts = "/etc/migready/known_hosts"
connect_timeout = 15
command_timeout = 90
accept_new_host_keys = true

[[hosts]]
name = "compute01"
address = "192.0.2.11"
nova_release = "mitaka"

[[hosts]]
name = "compute02"
transport = "tcp"

[policy]
auth_tcp = "sasl"
transport = "tls"
libvirt_port = 16514
allowed_sources = ["192.0.2.0/24", "2001:db8::/64", "198.51.100.7"]
keep_tcp = true

[checks]
skip = ["nova.compute", "libvirt.listen", "nova.compute"]
"#;
    let inventory = parse(text).unwrap();
    assert_eq!(inventory.path, Path::new("/etc/migready/inv.toml"));
    assert_eq!(
        inventory.hosts,
        vec![
            HostSpec {
                name: "compute01".into(),
                address: "192.0.2.11".into(),
                port: 2200,
                user: "stack".into(),
                identity_file: Some(PathBuf::from("/home/tester/.ssh/id_ed25519")),
                known_hosts: PathBuf::from("/etc/migready/known_hosts"),
                accept_new_host_keys: true,
                connect_timeout: Duration::from_secs(15),
                command_timeout: Duration::from_secs(90),
                nova_release: Some(NovaRelease::MITAKA),
                transport: None,
                line: 11,
                groups: Vec::new(),
                ssh: SshOptions::default(),
            },
            HostSpec {
                name: "compute02".into(),
                address: "compute02".into(),
                port: 2200,
                user: "stack".into(),
                identity_file: Some(PathBuf::from("/home/tester/.ssh/id_ed25519")),
                known_hosts: PathBuf::from("/etc/migready/known_hosts"),
                accept_new_host_keys: true,
                connect_timeout: Duration::from_secs(15),
                command_timeout: Duration::from_secs(90),
                nova_release: None,
                transport: Some(Transport::Tcp),
                line: 16,
                groups: Vec::new(),
                ssh: SshOptions::default(),
            },
        ]
    );
    assert_eq!(
        inventory.policy,
        Policy {
            auth_tcp: AuthTcp::Sasl,
            transport: Transport::Tls,
            libvirt_port: 16514,
            allowed_sources: vec![
                "192.0.2.0/24".into(),
                "2001:db8::/64".into(),
                "198.51.100.7".into()
            ],
            keep_tcp: true,
        }
    );
    // Duplicates in skip are dropped, order kept.
    assert_eq!(inventory.skip, vec!["nova.compute", "libvirt.listen"]);
}

#[test]
fn built_in_defaults() {
    let inventory = parse("[[hosts]]\nname = \"compute01\"\n").unwrap();
    assert_eq!(
        inventory.hosts,
        vec![HostSpec {
            name: "compute01".into(),
            address: "compute01".into(),
            port: 22,
            user: "root".into(),
            identity_file: None,
            known_hosts: PathBuf::from("/home/tester/.ssh/known_hosts"),
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
            nova_release: None,
            transport: None,
            line: 1,
            groups: Vec::new(),
            ssh: SshOptions::default(),
        }]
    );
    assert_eq!(inventory.policy, Policy::default());
    assert_eq!(inventory.policy.transport, Transport::Tcp);
    assert_eq!(inventory.policy.auth_tcp.as_str(), "none");
    assert_eq!(inventory.policy.libvirt_port, 16509);
    assert!(inventory.skip.is_empty());
}

#[test]
fn host_keys_override_defaults() {
    let text = r#"
[[hosts]]
name = "compute01"
user = "ops"
port = 2222
identity_file = "/keys/c1"
known_hosts = "/keys/known_c1"
connect_timeout = 3
command_timeout = 300
accept_new_host_keys = false

[[hosts]]
name = "compute02"

# [defaults] after the hosts still applies to them.
[defaults]
user = "stack"
port = 2200
identity_file = "/keys/default"
known_hosts = "/keys/known_default"
connect_timeout = 20
command_timeout = 30
accept_new_host_keys = true
"#;
    let inventory = parse(text).unwrap();
    let c1 = host(&inventory, "compute01");
    assert_eq!(c1.user, "ops");
    assert_eq!(c1.port, 2222);
    assert_eq!(c1.identity_file, Some(PathBuf::from("/keys/c1")));
    assert_eq!(c1.known_hosts, PathBuf::from("/keys/known_c1"));
    assert_eq!(c1.connect_timeout, Duration::from_secs(3));
    assert_eq!(c1.command_timeout, Duration::from_secs(300));
    assert!(!c1.accept_new_host_keys);

    let c2 = host(&inventory, "compute02");
    assert_eq!(c2.user, "stack");
    assert_eq!(c2.port, 2200);
    assert_eq!(c2.identity_file, Some(PathBuf::from("/keys/default")));
    assert_eq!(c2.known_hosts, PathBuf::from("/keys/known_default"));
    assert_eq!(c2.connect_timeout, Duration::from_secs(20));
    assert_eq!(c2.command_timeout, Duration::from_secs(30));
    assert!(c2.accept_new_host_keys);
}

#[test]
fn address_defaults_to_name() {
    let text = "[[hosts]]\nname = \"compute01\"\n[[hosts]]\nname = \"compute02\"\naddress = \"10.0.0.2\"\n";
    let inventory = parse(text).unwrap();
    assert_eq!(host(&inventory, "compute01").address, "compute01");
    assert_eq!(host(&inventory, "compute02").address, "10.0.0.2");
}

#[test]
fn tilde_expansion() {
    let text = r#"
[defaults]
identity_file = "~/.ssh/id_rsa"
[[hosts]]
name = "a"
known_hosts = "~/kh"
[[hosts]]
name = "b"
identity_file = "~"
"#;
    let inventory = parse(text).unwrap();
    let a = host(&inventory, "a");
    assert_eq!(
        a.identity_file,
        Some(PathBuf::from("/home/tester/.ssh/id_rsa"))
    );
    assert_eq!(a.known_hosts, PathBuf::from("/home/tester/kh"));
    let b = host(&inventory, "b");
    assert_eq!(b.identity_file, Some(PathBuf::from("/home/tester")));
    assert_eq!(
        b.known_hosts,
        PathBuf::from("/home/tester/.ssh/known_hosts")
    );
}

#[test]
fn tilde_errors() {
    assert_eq!(
        parse_err("[defaults]\nidentity_file = \"~bob/.ssh/id\"\n"),
        r#"inv.toml:2:17: defaults.identity_file: cannot expand "~bob/.ssh/id": only "~" and "~/" are supported"#
    );
    let no_home = |text: &str| {
        parse_with_home(text, Path::new("inv.toml"), KNOWN, None)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        no_home("[[hosts]]\nname = \"a\"\nknown_hosts = \"~/kh\"\n"),
        r#"inv.toml:3:15: hosts[0].known_hosts: cannot expand "~/kh": $HOME is not set"#
    );
    // The default known_hosts needs $HOME too; the error points at the host.
    assert_eq!(
        no_home("\n[[hosts]]\nname = \"a\"\n"),
        r#"inv.toml:2:1: known_hosts: default "~/.ssh/known_hosts": cannot expand "~/.ssh/known_hosts": $HOME is not set"#
    );
    // Without ~ nothing needs $HOME.
    let inventory = parse_with_home(
        "[[hosts]]\nname = \"a\"\nknown_hosts = \"/kh\"\n",
        Path::new("inv.toml"),
        KNOWN,
        None,
    )
    .unwrap();
    assert_eq!(inventory.hosts[0].known_hosts, PathBuf::from("/kh"));
}

#[test]
fn relative_paths_resolve_against_inventory_dir() {
    let text = r#"
[defaults]
known_hosts = "known_hosts"
[[hosts]]
name = "a"
identity_file = "keys/a"
[[hosts]]
name = "b"
identity_file = "../shared/b"
"#;
    let inventory = parse(text).unwrap();
    let a = host(&inventory, "a");
    assert_eq!(a.identity_file, Some(PathBuf::from("/etc/migready/keys/a")));
    assert_eq!(a.known_hosts, PathBuf::from("/etc/migready/known_hosts"));
    let b = host(&inventory, "b");
    assert_eq!(
        b.identity_file,
        Some(PathBuf::from("/etc/migready/../shared/b"))
    );

    // An inventory named without a directory resolves against the current
    // directory, i.e. the path stays relative.
    let inventory = parse_with_home(text, Path::new("inv.toml"), KNOWN, None).unwrap();
    assert_eq!(
        host(&inventory, "a").identity_file,
        Some(PathBuf::from("keys/a"))
    );
}

#[test]
fn load_reads_file_and_resolves_against_its_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.toml");
    std::fs::write(
        &path,
        "[defaults]\nknown_hosts = \"kh\"\n[[hosts]]\nname = \"compute01\"\nidentity_file = \"id\"\n",
    )
    .unwrap();
    let inventory = load(&path, KNOWN).unwrap();
    assert_eq!(inventory.path, path);
    assert_eq!(inventory.hosts.len(), 1);
    assert_eq!(inventory.hosts[0].known_hosts, dir.path().join("kh"));
    assert_eq!(
        inventory.hosts[0].identity_file,
        Some(dir.path().join("id"))
    );
}

#[test]
fn parse_str_public_api() {
    let inventory = parse_str(
        "[defaults]\nknown_hosts = \"/kh\"\n[[hosts]]\nname = \"c1\"\n",
        Path::new("/srv/inv.toml"),
        KNOWN,
    )
    .unwrap();
    assert_eq!(inventory.hosts[0].name, "c1");
    let err = parse_str("bogus = 1\n", Path::new("/srv/inv.toml"), KNOWN).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"/srv/inv.toml:1:1: unknown key "bogus" at top level"#
    );
}

#[test]
fn empty_inventories_are_valid() {
    for text in [
        "",
        "# nothing\n",
        "hosts = []\n",
        "[defaults]\nuser = \"ops\"\n",
        "[checks]\n[policy]\n",
    ] {
        let inventory = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!(inventory.hosts.is_empty(), "{text:?}");
        assert!(inventory.skip.is_empty());
        assert_eq!(inventory.policy, Policy::default());
    }
}

#[test]
fn inline_host_tables_are_accepted() {
    let text = "\nhosts = [\n  { name = \"a\" },\n  { name = \"b\", port = 2222 },\n]\n";
    let inventory = parse(text).unwrap();
    assert_eq!(inventory.hosts.len(), 2);
    assert_eq!(inventory.hosts[0].line, 3);
    assert_eq!(inventory.hosts[1].port, 2222);
    assert_eq!(inventory.hosts[1].line, 4);
    assert_eq!(
        parse_err("hosts = [{ name = \"a\" }, 1]\n"),
        "inv.toml:1:26: hosts[1]: expected a table, found integer 1"
    );
    assert_eq!(
        parse_err("hosts = [{ name = \"a\", usr = \"x\" }]\n"),
        r#"inv.toml:1:24: unknown key "usr" in hosts[0]"#
    );
}

#[test]
fn nova_release_values() {
    let release = |value: &str| {
        parse(&format!(
            "[[hosts]]\nname = \"a\"\nnova_release = {value}\n"
        ))
        .map(|inv| inv.hosts[0].nova_release)
    };
    assert_eq!(release("\"mitaka\"").unwrap(), Some(NovaRelease::MITAKA));
    assert_eq!(release("\"Newton\"").unwrap(), Some(NovaRelease::NEWTON));
    assert_eq!(release("\"2023.1\"").unwrap(), Some(NovaRelease(27)));
    assert_eq!(release("\"26\"").unwrap(), Some(NovaRelease(26)));
    assert_eq!(release("13").unwrap(), Some(NovaRelease(13)));
    assert_eq!(
        parse_err("[[hosts]]\nname = \"a\"\nnova_release = 5\n"),
        "inv.toml:3:16: hosts[0].nova_release: unknown nova release 5 (expected a name such as \
         \"mitaka\", a year such as \"2023.1\", or a major version in 9..=99)"
    );
    assert_eq!(
        parse_err("[[hosts]]\nname = \"a\"\nnova_release = -13\n"),
        "inv.toml:3:16: hosts[0].nova_release: unknown nova release -13 (expected a name such as \
         \"mitaka\", a year such as \"2023.1\", or a major version in 9..=99)"
    );
    assert_eq!(
        parse_err("[[hosts]]\nname = \"a\"\nnova_release = true\n"),
        "inv.toml:3:16: hosts[0].nova_release: expected a release name or major version, found boolean true"
    );
}

#[test]
fn type_errors() {
    let cases = [
        (
            "[defaults]\nport = 22.5\n",
            "inv.toml:2:8: defaults.port: expected an integer in 1..=65535, found float 22.5",
        ),
        (
            "[defaults]\nport = 0\n",
            "inv.toml:2:8: defaults.port: expected an integer in 1..=65535, found integer 0",
        ),
        (
            "[defaults]\nport = -22\n",
            "inv.toml:2:8: defaults.port: expected an integer in 1..=65535, found integer -22",
        ),
        (
            "[defaults]\nuser = 0\n",
            "inv.toml:2:8: defaults.user: expected a string, found integer 0",
        ),
        (
            "[defaults]\nuser = \"\"\n",
            "inv.toml:2:8: defaults.user: must not be empty",
        ),
        (
            "[defaults]\nidentity_file = \"\"\n",
            "inv.toml:2:17: defaults.identity_file: must not be empty",
        ),
        (
            "[defaults]\nknown_hosts = [\"a\"]\n",
            "inv.toml:2:15: defaults.known_hosts: expected a string, found array",
        ),
        (
            "[defaults]\ncommand_timeout = 86401\n",
            "inv.toml:2:19: defaults.command_timeout: expected a number of seconds in 1..=86400, found integer 86401",
        ),
        (
            "[defaults]\ncommand_timeout = 1.5\n",
            "inv.toml:2:19: defaults.command_timeout: expected a number of seconds in 1..=86400, found float 1.5",
        ),
        (
            "[defaults]\nconnect_timeout = \"10\"\n",
            "inv.toml:2:19: defaults.connect_timeout: expected a number of seconds in 1..=86400, found string \"10\"",
        ),
        (
            "defaults = 1\n",
            "inv.toml:1:12: defaults: expected a table ([defaults]), found integer 1",
        ),
        (
            "checks = []\n",
            "inv.toml:1:10: checks: expected a table ([checks]), found array",
        ),
        (
            "[[policy]]\n",
            "inv.toml:1:1: policy: expected a table ([policy]), found array of tables",
        ),
        (
            "hosts = \"compute01\"\n",
            "inv.toml:1:9: hosts: expected an array of tables ([[hosts]]), found string \"compute01\"",
        ),
        (
            "[[hosts]]\nname = 1\n",
            "inv.toml:2:8: hosts[0].name: expected a string, found integer 1",
        ),
        (
            "[[hosts]]\nname = \"compute 01\"\n",
            "inv.toml:2:8: hosts[0].name: \"compute 01\": a space is not allowed in a host name (letters, digits, '-' and '.' only)",
        ),
        (
            "[[hosts]]\nname = \"a\"\naddress = \"\"\n",
            "inv.toml:3:11: hosts[0].address: must not be empty",
        ),
        (
            "[[hosts]]\nname = \"a\"\n[[hosts.sub]]\n",
            "inv.toml:3:9: unknown key \"sub\" in hosts[0]",
        ),
        (
            "[checks]\nskip = \"nova.compute\"\n",
            "inv.toml:2:8: checks.skip: expected an array of strings, found string \"nova.compute\"",
        ),
        (
            "[checks]\nskip = [\"nova.compute\", 1]\n",
            "inv.toml:2:25: checks.skip[1]: expected a string, found integer 1",
        ),
        (
            "[policy]\nauth_tcp = 1\n",
            "inv.toml:2:12: policy.auth_tcp: expected a string, found integer 1",
        ),
        (
            "[policy]\nauth_tcp = \"SASL\"\n",
            "inv.toml:2:12: policy.auth_tcp: expected \"none\" or \"sasl\", found \"SASL\"",
        ),
        (
            "[policy]\ntransport = \"TLS\"\n",
            "inv.toml:2:13: policy.transport: expected \"tcp\" or \"tls\", found \"TLS\"",
        ),
        (
            "[policy]\ntransport = 1\n",
            "inv.toml:2:13: policy.transport: expected a string, found integer 1",
        ),
        (
            "[[hosts]]\nname = \"a\"\ntransport = \"ssh\"\n",
            "inv.toml:3:13: hosts[0].transport: expected \"tcp\" or \"tls\", found \"ssh\"",
        ),
        (
            "[policy]\nlibvirt_port = 65536\n",
            "inv.toml:2:16: policy.libvirt_port: expected an integer in 1..=65535, found integer 65536",
        ),
        (
            "[policy]\nallowed_sources = \"10.0.0.0/8\"\n",
            "inv.toml:2:19: policy.allowed_sources: expected an array of strings, found string \"10.0.0.0/8\"",
        ),
        (
            "[policy]\nallowed_sources = [10]\n",
            "inv.toml:2:20: policy.allowed_sources[0]: expected a string, found integer 10",
        ),
        (
            "[policy]\nallowed_sources = [\"compute01\"]\n",
            "inv.toml:2:20: policy.allowed_sources[0]: expected an IPv4/IPv6 address or CIDR, found \"compute01\"",
        ),
        (
            "defaults.usr = 1\n",
            "inv.toml:1:10: unknown key \"usr\" in [defaults]",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_err(text), expected, "{text:?}");
    }
}

/// `value` as a TOML basic string, escaped.
fn toml_str(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const NAME_CHARS: &str = "is not allowed in a host name (letters, digits, '-' and '.' only)";
const USER_CHARS: &str = "is not allowed in a user name (letters, digits, '.', '_' and '-' only)";

/// Host names that could reach a shell, an option parser, a libvirt URI or a
/// firewall comment are refused at load, at the value's position.
#[test]
fn hostile_host_names_are_refused() {
    let long_label = "a".repeat(64);
    let long_name = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(62),
    ]
    .join(".");
    assert_eq!(long_name.len(), 254);
    let cases: Vec<(&str, String)> = vec![
        ("cmp'1", format!(r"'\'' {NAME_CHARS}")),
        ("cmp1;reboot", format!("';' {NAME_CHARS}")),
        ("$(reboot)", format!("'$' {NAME_CHARS}")),
        ("`reboot`", format!("'`' {NAME_CHARS}")),
        ("cmp\"1", format!("'\"' {NAME_CHARS}")),
        ("cmp\\1", format!(r"'\\' {NAME_CHARS}")),
        ("cmp1 cmp2", format!("a space {NAME_CHARS}")),
        ("cmp\t1", format!("U+0009 {NAME_CHARS}")),
        ("cmp1\nreboot", format!("U+000A {NAME_CHARS}")),
        ("cmp1\u{a0}", format!("U+00A0 {NAME_CHARS}")),
        ("çmp1", format!("'ç' (U+00E7) {NAME_CHARS}")),
        ("компьютер", format!("'к' (U+043A) {NAME_CHARS}")),
        ("cmp_1", format!("'_' {NAME_CHARS}")),
        ("cmp1/x", format!("'/' {NAME_CHARS}")),
        ("fd42::1", format!("':' {NAME_CHARS}")),
        (
            "-oProxyCommand",
            r#"label "-oProxyCommand" starts or ends with '-'"#.into(),
        ),
        ("-cmp1", r#"label "-cmp1" starts or ends with '-'"#.into()),
        (
            "cmp1-.example.com",
            r#"label "cmp1-" starts or ends with '-'"#.into(),
        ),
        (
            "cmp1..example.com",
            "empty label in host name (a leading or trailing dot, or two dots in a row)".into(),
        ),
        (
            "cmp1.",
            "empty label in host name (a leading or trailing dot, or two dots in a row)".into(),
        ),
        (
            ".cmp1",
            "empty label in host name (a leading or trailing dot, or two dots in a row)".into(),
        ),
        (
            &long_label,
            format!("label \"{long_label}\" is 64 characters long, more than 63"),
        ),
        (
            &long_name,
            "host name is 254 characters long, more than 253".into(),
        ),
        (
            "192.0.2.256",
            "looks like an IPv4 address but is not one".into(),
        ),
        ("10.1", "looks like an IPv4 address but is not one".into()),
    ];
    for (value, reason) in cases {
        let text = format!("[[hosts]]\nname = {}\n", toml_str(value));
        assert_eq!(
            parse_err(&text),
            format!("inv.toml:2:8: hosts[0].name: {value:?}: {reason}"),
            "{value:?}"
        );
    }
    // Also when the value is written with an escape, and in an inline table.
    assert_eq!(
        parse_err("hosts = [{ name = \"cmp\\u0027\" }]\n"),
        format!(r#"inv.toml:1:19: hosts[0].name: "cmp'": '\'' {NAME_CHARS}"#)
    );
}

#[test]
fn bad_addresses_are_refused() {
    let cases: Vec<(&str, String)> = vec![
        ("fe80::1%eth0", "IPv6 zone ids (\"%eth0\") are not supported; use an address that is not link-local, or a host name".into()),
        ("[fe80::1%eth0]", "IPv6 zone ids (\"%eth0\") are not supported; use an address that is not link-local, or a host name".into()),
        ("[fd42::1", "an address in brackets must end with ']'".into()),
        ("[compute01]", "not an IPv6 address inside the brackets".into()),
        ("[192.0.2.11]", "not an IPv6 address inside the brackets".into()),
        ("fd42::1::2", "not a valid IPv6 address (':' is only allowed in IPv6 addresses)".into()),
        ("192.0.2.11:22", "not a valid IPv6 address (':' is only allowed in IPv6 addresses)".into()),
        ("192.0.2.300", "looks like an IPv4 address but is not one".into()),
        ("$(reboot)", format!("'$' {NAME_CHARS}")),
        ("cmp1;reboot", format!("';' {NAME_CHARS}")),
        ("cmp'1", format!(r"'\'' {NAME_CHARS}")),
        ("cmp\"1", format!("'\"' {NAME_CHARS}")),
        ("192.0.2.11 -oProxyCommand=x", format!("a space {NAME_CHARS}")),
        ("-oProxyCommand=x", format!("'=' {NAME_CHARS}")),
        ("-cmp1", r#"label "-cmp1" starts or ends with '-'"#.into()),
        ("ñ.example.com", format!("'ñ' (U+00F1) {NAME_CHARS}")),
        ("root@cmp1", format!("'@' {NAME_CHARS}")),
    ];
    for (value, reason) in cases {
        let text = format!("[[hosts]]\nname = \"a\"\naddress = {}\n", toml_str(value));
        assert_eq!(
            parse_err(&text),
            format!("inv.toml:3:11: hosts[0].address: {value:?}: {reason}"),
            "{value:?}"
        );
    }
}

#[test]
fn bad_users_are_refused() {
    let cases: Vec<(&str, String)> = vec![
        ("-oProxyCommand=x", format!("'=' {USER_CHARS}")),
        ("-root", "a user name must not start with '-'".into()),
        ("root;reboot", format!("';' {USER_CHARS}")),
        ("ro'ot", format!(r"'\'' {USER_CHARS}")),
        ("ro\"ot", format!("'\"' {USER_CHARS}")),
        ("$(id)", format!("'$' {USER_CHARS}")),
        ("`id`", format!("'`' {USER_CHARS}")),
        ("the admin", format!("a space {USER_CHARS}")),
        ("üser", format!("'ü' (U+00FC) {USER_CHARS}")),
        ("root@cmp1", format!("'@' {USER_CHARS}")),
        ("DOMAIN\\user", format!(r"'\\' {USER_CHARS}")),
    ];
    for (value, reason) in cases {
        let expected = format!("defaults.user: {value:?}: {reason}");
        assert_eq!(
            parse_err(&format!("[defaults]\nuser = {}\n", toml_str(value))),
            format!("inv.toml:2:8: {expected}"),
            "{value:?}"
        );
        let expected = format!("hosts[0].user: {value:?}: {reason}");
        assert_eq!(
            parse_err(&format!(
                "[[hosts]]\nname = \"a\"\nuser = {}\n",
                toml_str(value)
            )),
            format!("inv.toml:3:8: {expected}"),
            "{value:?}"
        );
    }
}

#[test]
fn bad_ports_are_refused() {
    for (port, found) in [
        ("0", "integer 0"),
        ("65536", "integer 65536"),
        ("70000", "integer 70000"),
        ("-1", "integer -1"),
        ("\"22\"", "string \"22\""),
        ("22.0", "float 22"),
        ("true", "boolean true"),
    ] {
        assert_eq!(
            parse_err(&format!("[[hosts]]\nname = \"a\"\nport = {port}\n")),
            format!("inv.toml:3:8: hosts[0].port: expected an integer in 1..=65535, found {found}"),
        );
        assert_eq!(
            parse_err(&format!("[policy]\nlibvirt_port = {port}\n")),
            format!(
                "inv.toml:2:16: policy.libvirt_port: expected an integer in 1..=65535, found {found}"
            ),
        );
    }
}

#[test]
fn zone_ids_in_allowed_sources_are_explained() {
    assert_eq!(
        parse_err("[policy]\nallowed_sources = [\"fe80::1%eth0\"]\n"),
        r#"inv.toml:2:20: policy.allowed_sources[0]: expected an IPv4/IPv6 address or CIDR, found "fe80::1%eth0" (IPv6 zone ids are not supported)"#
    );
}

/// What the checks above refuse must not catch ordinary names and addresses.
#[test]
fn valid_names_addresses_users_and_ports_load() {
    let label63 = "a".repeat(63);
    let name253 = [
        label63.clone(),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(name253.len(), 253);
    let hosts: Vec<(String, &str, &str, &str, u16)> = vec![
        // (name, address as written, address loaded, user, port)
        ("compute01".into(), "192.0.2.11", "192.0.2.11", "root", 22),
        (
            "Compute-02.example.com".into(),
            "compute-02.example.com",
            "compute-02.example.com",
            "stack",
            1,
        ),
        (
            "cmp3".into(),
            "fd42:42::13",
            "fd42:42::13",
            "nova_user",
            65535,
        ),
        (
            "cmp4".into(),
            "[fd42:42::14]",
            "fd42:42::14",
            "ops.team-1",
            2222,
        ),
        ("cmp5".into(), "[::1]", "::1", "_svc", 22),
        (
            "cmp6".into(),
            "2001:db8::ffff:192.0.2.6",
            "2001:db8::ffff:192.0.2.6",
            "A1",
            22,
        ),
        ("192.0.2.7".into(), "localhost", "localhost", "u", 22),
        ("1cmp".into(), "x", "x", "a.", 22),
        (label63.clone(), "a-b.c", "a-b.c", "root", 22),
        (name253.clone(), "0.0.0.0", "0.0.0.0", "root", 22),
    ];
    let mut text = String::new();
    for (name, address, _, user, port) in &hosts {
        text.push_str(&format!(
            "[[hosts]]\nname = {}\naddress = {}\nuser = {}\nport = {port}\n",
            toml_str(name),
            toml_str(address),
            toml_str(user)
        ));
    }
    let inventory = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inventory.hosts.len(), hosts.len());
    for (spec, (name, _, address, user, port)) in inventory.hosts.iter().zip(&hosts) {
        assert_eq!(
            (
                &spec.name,
                spec.address.as_str(),
                spec.user.as_str(),
                spec.port
            ),
            (name, *address, *user, *port)
        );
    }
    // A name without an address is the address; an FQDN too.
    let inventory = parse("[[hosts]]\nname = \"cmp1.region-1.example.com\"\n").unwrap();
    assert_eq!(inventory.hosts[0].address, "cmp1.region-1.example.com");
}

#[test]
fn duplicate_names_are_case_insensitive() {
    assert_eq!(
        parse_err("[[hosts]]\nname = \"compute01\"\n[[hosts]]\nname = \"Compute01\"\n"),
        r#"inv.toml:4:8: duplicate host name "Compute01" (first defined at line 2)"#
    );
}

#[test]
fn unknown_check_id_without_known_checks() {
    let err = parse_with_home(
        "[checks]\nskip = [\"x\"]\n",
        Path::new("inv.toml"),
        &[],
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"inv.toml:2:9: checks.skip[0]: unknown check id "x""#
    );
}

#[test]
fn error_display() {
    let err = InventoryError {
        path: PathBuf::from("inv.toml"),
        line: 0,
        column: 0,
        message: "cannot read inventory: gone".into(),
    };
    assert_eq!(err.to_string(), "inv.toml: cannot read inventory: gone");
    let err = InventoryError {
        line: 3,
        column: 1,
        ..err
    };
    assert_eq!(err.to_string(), "inv.toml:3:1: cannot read inventory: gone");
}

#[test]
fn missing_file() {
    let path = fixture("does-not-exist.toml");
    let err = load(&path, KNOWN).unwrap_err();
    assert_eq!((err.line, err.column), (0, 0));
    assert_eq!(err.path, path);
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot read inventory: no such file or directory (os error 2)",
            path.display()
        )
    );
}

#[test]
fn example_file_loads() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/inventory.example.toml"
    ));
    let inventory = load_with_home(path, &["nova.compute"], Some(Path::new(HOME)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inventory.hosts.len(), 2);
    let c1 = host(&inventory, "compute01");
    assert_eq!(c1.address, "192.0.2.11");
    assert_eq!(c1.nova_release, Some(NovaRelease::MITAKA));
    assert_eq!(
        c1.identity_file,
        Some(PathBuf::from("/home/tester/.ssh/id_ed25519"))
    );
    let c2 = host(&inventory, "compute02");
    assert_eq!(c2.user, "ops");
    assert_eq!(c2.port, 2222);
    assert_eq!(
        c2.identity_file,
        Some(path.parent().unwrap().join("keys/compute02"))
    );
    assert!(c2.accept_new_host_keys);
    let jumps: Vec<(&str, &str, u16)> = c2
        .ssh
        .jumps
        .iter()
        .map(|j| (j.address.as_str(), j.user.as_str(), j.port))
        .collect();
    assert_eq!(jumps, [("bastion.example.net", "ops", 22)]);
    assert!(c1.ssh.jumps.is_empty());
    assert_eq!(inventory.skip, vec!["nova.compute"]);
    assert_eq!(inventory.policy, Policy::default());

    // Every key the loader accepts appears (uncommented) in the example.
    let text = std::fs::read_to_string(path).unwrap();
    for key in DEFAULTS_KEYS
        .iter()
        .chain(HOST_KEYS)
        .chain(CHECKS_KEYS)
        .chain(POLICY_KEYS)
    {
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("{key} = "))),
            "{key} missing from the example"
        );
    }
}

// One fixture per error class; positions are 1-based line:column.

#[test]
fn fixture_syntax_error() {
    assert_fixture_error(
        "syntax_error.toml",
        6,
        18,
        "toml syntax error: invalid basic string, expected `\"`",
    );
}

#[test]
fn fixture_duplicate_key() {
    assert_fixture_error(
        "duplicate_key.toml",
        3,
        1,
        r#"toml syntax error: duplicate key "name""#,
    );
}

#[test]
fn fixture_unknown_top_level_key() {
    assert_fixture_error(
        "unknown_top_level_key.toml",
        2,
        1,
        r#"unknown key "host" at top level"#,
    );
}

#[test]
fn fixture_unknown_key_in_defaults() {
    assert_fixture_error(
        "unknown_key_defaults.toml",
        3,
        1,
        r#"unknown key "usr" in [defaults]"#,
    );
}

#[test]
fn fixture_unknown_key_in_host() {
    assert_fixture_error(
        "unknown_key_host.toml",
        6,
        1,
        r#"unknown key "adress" in hosts[1]"#,
    );
}

#[test]
fn fixture_unknown_key_in_policy() {
    assert_fixture_error(
        "unknown_key_policy.toml",
        3,
        1,
        r#"unknown key "listen" in [policy]"#,
    );
}

#[test]
fn fixture_unknown_key_in_checks() {
    assert_fixture_error(
        "unknown_key_checks.toml",
        2,
        1,
        r#"unknown key "only" in [checks]"#,
    );
}

#[test]
fn fixture_wrong_type() {
    assert_fixture_error(
        "wrong_type_port.toml",
        7,
        8,
        r#"hosts[1].port: expected an integer in 1..=65535, found string "22""#,
    );
    assert_fixture_error(
        "wrong_type_bool.toml",
        2,
        24,
        r#"defaults.accept_new_host_keys: expected a boolean, found string "yes""#,
    );
}

#[test]
fn fixture_port_out_of_range() {
    assert_fixture_error(
        "port_out_of_range.toml",
        2,
        8,
        "defaults.port: expected an integer in 1..=65535, found integer 70000",
    );
}

#[test]
fn fixture_bad_timeouts() {
    assert_fixture_error(
        "negative_timeout.toml",
        2,
        19,
        "defaults.connect_timeout: expected a number of seconds in 1..=86400, found integer -5",
    );
    assert_fixture_error(
        "zero_timeout.toml",
        3,
        19,
        "hosts[0].command_timeout: expected a number of seconds in 1..=86400, found integer 0",
    );
}

#[test]
fn fixture_missing_name() {
    assert_fixture_error(
        "missing_name.toml",
        4,
        3,
        r#"hosts[1]: missing required key "name""#,
    );
}

#[test]
fn fixture_empty_name() {
    assert_fixture_error("empty_name.toml", 2, 8, "hosts[0].name: must not be empty");
}

#[test]
fn fixture_duplicate_names() {
    assert_fixture_error(
        "duplicate_names.toml",
        12,
        8,
        r#"duplicate host name "compute01" (first defined at line 4)"#,
    );
}

#[test]
fn fixture_hosts_not_array() {
    assert_fixture_error(
        "hosts_not_array.toml",
        1,
        1,
        "hosts: expected an array of tables ([[hosts]]), found table",
    );
}

#[test]
fn fixture_unknown_check_id() {
    assert_fixture_error(
        "unknown_check_id.toml",
        5,
        25,
        r#"checks.skip[1]: unknown check id "libvirt.tls" (known: nova.compute, libvirt.listen, firewall.migration)"#,
    );
}

#[test]
fn fixture_bad_nova_release() {
    assert_fixture_error(
        "bad_nova_release.toml",
        3,
        16,
        "hosts[0].nova_release: unknown nova release \"havana\" (expected a name such as \"mitaka\", \
         a year such as \"2023.1\", or a major version in 9..=99)",
    );
}

#[test]
fn fixture_bad_auth_tcp() {
    assert_fixture_error(
        "bad_auth_tcp.toml",
        2,
        12,
        r#"policy.auth_tcp: expected "none" or "sasl", found "tls""#,
    );
}

#[test]
fn fixture_bad_cidr() {
    assert_fixture_error(
        "bad_cidr.toml",
        5,
        5,
        r#"policy.allowed_sources[1]: expected an IPv4/IPv6 address or CIDR, found "198.51.100.0/33""#,
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary text never panics, and text errors carry a position
        /// inside the text.
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            if let Err(err) = parse_with_home(&text, Path::new("p.toml"), KNOWN, Some(Path::new(HOME))) {
                prop_assert!(err.line >= 1);
                prop_assert!(err.line <= text.lines().count().max(1) + 1);
                prop_assert!(err.column >= 1);
            }
        }

        /// Inventory-shaped text with random values never panics either.
        #[test]
        fn random_values(
            port in prop_oneof![Just("22".to_string()), "-?[0-9]{1,7}", "\"[a-z0-9]{0,4}\"", Just("true".to_string())],
            name in "\"[a-zA-Z0-9 ~/.-]{0,8}\"",
            release in "\"[a-z0-9.]{0,8}\"",
        ) {
            let text = format!("[[hosts]]\nname = {name}\nport = {port}\nnova_release = {release}\n");
            let _ = parse_with_home(&text, Path::new("p.toml"), KNOWN, Some(Path::new(HOME)));
        }
    }
}

#[test]
fn tls_ca_location() {
    // Default: the directory `migready ca init` writes.
    let inv = parse("").unwrap();
    assert_eq!(inv.tls.ca_cert.as_deref(), Some(Path::new("/home/tester/.config/migready/ca/cacert.pem")));
    assert_eq!(inv.tls.ca_key.as_deref(), Some(Path::new("/home/tester/.config/migready/ca/cakey.pem")));
    // ca_dir, relative to the inventory's directory.
    let inv = parse("[tls]\nca_dir = \"ca\"\n").unwrap();
    assert_eq!(inv.tls.ca_cert.as_deref(), Some(Path::new("/etc/migready/ca/cacert.pem")));
    assert_eq!(inv.tls.ca_key.as_deref(), Some(Path::new("/etc/migready/ca/cakey.pem")));
    // An operator's CA: both files, which must exist.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), "x").unwrap();
    std::fs::write(dir.path().join("k.pem"), "x").unwrap();
    let text = format!("[tls]\nca_cert = \"{0}/c.pem\"\nca_key = \"{0}/k.pem\"\n", dir.path().display());
    let inv = parse(&text).unwrap();
    assert_eq!(inv.tls.ca_cert, Some(dir.path().join("c.pem")));
    assert_eq!(inv.tls.ca_key, Some(dir.path().join("k.pem")));
    for (text, want) in [
        ("[tls]\nca_cert = \"/nonexistent/c.pem\"\n", "inv.toml:2:11: tls: ca_cert and ca_key go together"),
        ("[tls]\nca_dir = \"ca\"\nca_key = \"k\"\n", "inv.toml:3:10: tls: ca_dir, or ca_cert and ca_key, not both"),
        ("[tls]\nca_cert = \"/nonexistent/c.pem\"\nca_key = \"/nonexistent/k.pem\"\n", "inv.toml:2:11: tls.ca_cert: /nonexistent/c.pem is not a file"),
        ("[tls]\nca_dir = 3\n", "inv.toml:2:10: tls.ca_dir: expected a string"),
        ("[tls]\ncadir = \"x\"\n", "inv.toml:2:1: unknown key \"cadir\" in [tls]"),
        ("[tls]\n", "inv.toml:1:1: tls: expected ca_dir, or ca_cert and ca_key"),
    ] {
        let e = parse_err(text);
        assert!(e.starts_with(want), "{text:?}: {e}");
    }
}
