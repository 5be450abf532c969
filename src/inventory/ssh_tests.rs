//! ssh_config and proxy_jump in the inventory: precedence (the inventory, then
//! ssh_config's first value, then migready's defaults), jump host resolution and
//! errors naming the file and line they come from.

use super::ssh_config::tests::{fixture_home, fixtures};
use super::*;

const KNOWN: &[&str] = &["nova.compute"];

/// Loads `text` as `<home>/inv.toml` with `$HOME` = `home`.
fn load_in(home: &Path, text: &str) -> Result<Inventory, InventoryError> {
    let path = home.join("inv.toml");
    std::fs::write(&path, text).unwrap();
    load_with_home(&path, KNOWN, Some(home))
}

fn host<'a>(inv: &'a Inventory, name: &str) -> &'a HostSpec {
    inv.hosts.iter().find(|h| h.name == name).unwrap()
}

#[test]
fn ssh_config_fills_what_the_inventory_does_not_say() {
    let home = fixture_home();
    let h = home.path();
    // The default file is ~/.ssh/config.
    let inv = load_in(
        h,
        "[[hosts]]\nname = \"cmp1\"\n\n[[hosts]]\nname = \"cmp2\"\nuser = \"stack\"\n\n[[hosts]]\nname = \"cmp9\"\n\n\
         [[hosts]]\nname = \"other\"\naddress = \"192.0.2.99\"\n",
    )
    .unwrap();
    let cmp1 = host(&inv, "cmp1");
    assert_eq!(cmp1.address, "192.0.2.11");
    assert_eq!((cmp1.user.as_str(), cmp1.port), ("ops", 22));
    assert_eq!(cmp1.connect_timeout, Duration::from_secs(90));
    assert_eq!(cmp1.known_hosts, h.join(".ssh/known_hosts.included"));
    assert!(
        cmp1.accept_new_host_keys,
        "StrictHostKeyChecking no: unknown keys are accepted (changed ones never)"
    );
    assert_eq!(cmp1.identity_file, None);
    assert_eq!(
        cmp1.ssh.identity_files,
        [h.join(".ssh/id_ops_192.0.2.11"), h.join(".ssh/id_ed25519")]
    );
    assert_eq!(
        cmp1.ssh.jumps,
        [Jump {
            name: "bastion".into(),
            address: "bastion.example.net".into(),
            port: 2200,
            user: "jump".into(),
            identity_files: vec![h.join(".ssh/bastion key"), h.join(".ssh/id_ed25519")],
            known_hosts: h.join(".ssh/known_hosts.bastion"),
            accept_new_host_keys: true,
        }]
    );
    // The inventory's user wins; %r in IdentityFile is the user that is used.
    let cmp2 = host(&inv, "cmp2");
    assert_eq!(
        (cmp2.user.as_str(), cmp2.port, cmp2.address.as_str()),
        ("stack", 2222, "192.0.2.12")
    );
    assert_eq!(
        cmp2.ssh.identity_files[0],
        h.join(".ssh/id_stack_192.0.2.12")
    );
    // Excluded by `!cmp9`, then `ProxyJump none`.
    let cmp9 = host(&inv, "cmp9");
    assert_eq!(
        (cmp9.user.as_str(), cmp9.address.as_str()),
        ("fallback", "cmp9")
    );
    assert!(cmp9.ssh.jumps.is_empty());
    // An inventory address is kept (HostName does not replace it).
    assert_eq!(host(&inv, "other").address, "192.0.2.99");
}

#[test]
fn the_inventory_wins_per_host_then_defaults() {
    let home = fixture_home();
    let h = home.path();
    let inv = load_in(
        h,
        "[defaults]\nuser = \"root\"\nport = 22\nknown_hosts = \"/etc/migready/known_hosts\"\nidentity_file = \"/etc/migready/key\"\n\
         accept_new_host_keys = false\nconnect_timeout = 5\nproxy_jump = \"none\"\n\n\
         [[hosts]]\nname = \"cmp1\"\n\n\
         [[hosts]]\nname = \"cmp2\"\naddress = \"198.18.42.12\"\nport = 2022\nproxy_jump = \"ops@relay:2200,bastion\"\n",
    )
    .unwrap();
    let cmp1 = host(&inv, "cmp1");
    assert_eq!(
        (
            cmp1.address.as_str(),
            cmp1.user.as_str(),
            cmp1.port,
            cmp1.connect_timeout,
            cmp1.accept_new_host_keys
        ),
        ("192.0.2.11", "root", 22, Duration::from_secs(5), false)
    );
    assert_eq!(cmp1.known_hosts, Path::new("/etc/migready/known_hosts"));
    assert_eq!(
        cmp1.identity_file.as_deref(),
        Some(Path::new("/etc/migready/key"))
    );
    assert!(
        cmp1.ssh.identity_files.is_empty(),
        "identity_file replaces IdentityFile"
    );
    assert!(
        cmp1.ssh.jumps.is_empty(),
        "proxy_jump = \"none\" wins over ProxyJump"
    );

    let cmp2 = host(&inv, "cmp2");
    assert_eq!((cmp2.address.as_str(), cmp2.port), ("198.18.42.12", 2022));
    let jumps: Vec<(&str, &str, u16, &str)> = cmp2
        .ssh
        .jumps
        .iter()
        .map(|j| (j.name.as_str(), j.address.as_str(), j.port, j.user.as_str()))
        .collect();
    // relay: as written; bastion: its ssh_config (HostName, User, Port).
    assert_eq!(
        jumps,
        [
            ("ops@relay:2200", "relay", 2200, "ops"),
            ("bastion", "bastion.example.net", 2200, "jump")
        ]
    );
    for jump in &cmp2.ssh.jumps {
        // The inventory's keys, known_hosts and host key checking apply to the jump hosts too.
        assert_eq!(jump.identity_files, [PathBuf::from("/etc/migready/key")]);
        assert_eq!(jump.known_hosts, Path::new("/etc/migready/known_hosts"));
        assert!(!jump.accept_new_host_keys);
    }
}

#[test]
fn a_jump_host_without_a_user_logs_in_as_the_host_does() {
    let home = tempfile::tempdir().unwrap();
    let inv = load_in(
        home.path(),
        "[defaults]\nuser = \"ops\"\nproxy_jump = \"relay,root@[2001:db8::1]:22\"\n\n[[hosts]]\nname = \"cmp1\"\n",
    )
    .unwrap();
    let jumps = &host(&inv, "cmp1").ssh.jumps;
    assert_eq!((jumps[0].user.as_str(), jumps[0].port), ("ops", 22));
    assert_eq!(
        (
            jumps[1].user.as_str(),
            jumps[1].address.as_str(),
            jumps[1].name.as_str()
        ),
        ("root", "2001:db8::1", "root@[2001:db8::1]:22")
    );
    assert_eq!(jumps[0].known_hosts, home.path().join(".ssh/known_hosts"));
}

#[test]
fn the_first_jump_hosts_own_proxy_jump_is_followed() {
    let home = fixture_home();
    let inv = load_in(
        home.path(),
        "[[hosts]]\nname = \"inner\"\n\n[[hosts]]\nname = \"far\"\n",
    )
    .unwrap();
    // inner -> ProxyJump outer; outer -> ProxyJump bastion: bastion, outer, inner.
    let names: Vec<&str> = host(&inv, "inner")
        .ssh
        .jumps
        .iter()
        .map(|j| j.name.as_str())
        .collect();
    assert_eq!(names, ["bastion", "outer"]);
    // Written user and port win over the hop's ssh_config.
    let far = &host(&inv, "far").ssh.jumps;
    assert_eq!(
        (far[0].user.as_str(), far[0].address.as_str(), far[0].port),
        ("alice", "bastion.example.net", 22)
    );
    assert_eq!(
        (far[1].user.as_str(), far[1].address.as_str(), far[1].port),
        ("fallback", "2001:db8::7", 2022)
    );
}

#[test]
fn ssh_config_can_be_another_file_or_none() {
    let home = fixture_home();
    let h = home.path();
    let other = h.join("other_config");
    std::fs::write(&other, "Host cmp1\n  User from-other\n").unwrap();
    let inv = load_in(
        h,
        "[defaults]\nssh_config = \"other_config\"\n\n[[hosts]]\nname = \"cmp1\"\n",
    )
    .unwrap();
    assert_eq!(host(&inv, "cmp1").user, "from-other");
    assert_eq!(
        host(&inv, "cmp1").address,
        "cmp1",
        "~/.ssh/config is not read then"
    );
    let inv = load_in(
        h,
        "[defaults]\nssh_config = \"\"\n\n[[hosts]]\nname = \"cmp1\"\n",
    )
    .unwrap();
    let cmp1 = host(&inv, "cmp1");
    assert_eq!(
        (cmp1.user.as_str(), cmp1.address.as_str(), cmp1.ssh.clone()),
        ("root", "cmp1", SshOptions::default())
    );
    // A file the inventory names must exist.
    let e = load_in(h, "[defaults]\nssh_config = \"missing\"\n").unwrap_err();
    assert_eq!((e.line, e.column), (2, 14));
    assert_eq!(
        e.message,
        format!(
            "defaults.ssh_config: {}: no such file",
            h.join("missing").display()
        )
    );
    // Only in [defaults].
    let e = load_in(h, "[[hosts]]\nname = \"a\"\nssh_config = \"\"\n").unwrap_err();
    assert_eq!(e.message, "unknown key \"ssh_config\" in hosts[0]");
}

/// Loads an inventory with one host `name` and `[defaults] ssh_config` =
/// the fixture `bad/<file>`; returns the error.
fn bad(file: &str, name: &str) -> InventoryError {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join(file);
    std::fs::copy(fixtures().join("bad").join(file), &config).unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let text = format!(
        "[defaults]\nssh_config = \"{}\"\n\n[[hosts]]\nname = \"{name}\"\n",
        config.display()
    );
    let e = load_in(home.path(), &text).unwrap_err();
    assert_eq!(e.path, config, "{e}");
    e
}

#[test]
fn ssh_config_errors_name_file_line_and_host() {
    let e = bad("port.conf", "cmp1");
    assert_eq!((e.line, e.column), (3, 10));
    assert!(e.to_string().ends_with(&format!("port.conf:3:10: Port \"70000\": expected an integer in 1..=65535 (ssh_config, for host \"cmp1\" at {}:4)", e.path.with_file_name("inv.toml").display())), "{e}");
    let e = bad("quote.conf", "cmp1");
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (2, 18, "unterminated \" quote")
    );
    let e = bad("proxycommand.conf", "cmp1");
    assert_eq!((e.line, e.column), (2, 3));
    assert!(
        e.message
            .starts_with("ProxyCommand: migready cannot run a proxy command; use ProxyJump"),
        "{e}"
    );
    let e = bad("hostname.conf", "cmp1");
    assert_eq!((e.line, e.column), (2, 11));
    assert!(
        e.message
            .starts_with("HostName \"cmp_1.example.net\": '_' is not allowed in a host name"),
        "{e}"
    );
    let e = bad("jump.conf", "cmp1");
    assert_eq!((e.line, e.column), (2, 15));
    assert!(
        e.message
            .starts_with("ProxyJump: jump host 1 \"ops@bastion:0\": port \"0\""),
        "{e}"
    );
    let e = bad("strict.conf", "cmp1");
    assert_eq!((e.line, e.column), (2, 27));
    let e = bad("token.conf", "cmp1");
    assert_eq!((e.line, e.column), (2, 18));
    assert!(
        e.message
            .starts_with("IdentityFile \"~/.ssh/id_%C\": unknown token %C"),
        "{e}"
    );
    let e = bad("loop.conf", "cmp1");
    assert_eq!((e.line, e.column), (6, 5));
    assert!(
        e.message
            .starts_with("ProxyJump: ProxyJump loop: relay is reached through bastion again"),
        "{e}"
    );
    // A value no host uses is not checked.
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("port.conf");
    std::fs::copy(fixtures().join("bad/port.conf"), &config).unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let text = format!(
        "[defaults]\nssh_config = \"{}\"\n\n[[hosts]]\nname = \"other\"\n\n[[hosts]]\nname = \"cmp1\"\nport = 22\n",
        config.display()
    );
    assert!(load_in(home.path(), &text).is_ok());
}

#[test]
fn proxy_jump_in_the_inventory_is_validated_at_load() {
    let home = tempfile::tempdir().unwrap();
    let e = load_in(
        home.path(),
        "[[hosts]]\nname = \"cmp1\"\nproxy_jump = \"ops@bastion:99999\"\n",
    )
    .unwrap_err();
    assert_eq!((e.line, e.column), (3, 14));
    assert_eq!(
        e.message,
        "hosts[0].proxy_jump: jump host 1 \"ops@bastion:99999\": port \"99999\": expected an integer in 1..=65535"
    );
    let e = load_in(home.path(), "[defaults]\nproxy_jump = \"\"\n").unwrap_err();
    assert_eq!(
        e.message,
        "defaults.proxy_jump: must not be empty (\"none\": no jump host)"
    );
    let e = load_in(home.path(), "[defaults]\nproxy_jump = 22\n").unwrap_err();
    assert_eq!(
        e.message,
        "defaults.proxy_jump: expected a string, found integer 22"
    );
    let hops = vec!["j"; MAX_JUMPS + 1].join(",");
    let e = load_in(
        home.path(),
        &format!("[defaults]\nproxy_jump = \"{hops}\"\n"),
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        format!("defaults.proxy_jump: more than {MAX_JUMPS} jump hosts")
    );
}

#[test]
fn no_home_means_no_default_ssh_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(
        &path,
        "[defaults]\nknown_hosts = \"/k\"\n\n[[hosts]]\nname = \"cmp1\"\n",
    )
    .unwrap();
    let inv = load_with_home(&path, KNOWN, None).unwrap();
    assert_eq!(inv.hosts[0].address, "cmp1");
}
