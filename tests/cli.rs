//! The command line without hosts: usage errors, inventory errors, listing checks.

use std::process::Command;

mod common;

fn migready(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_migready")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_inventory_names_file_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, "[defaults]\nuser = \"root\"\n\n[[hosts]]\nname = \"a\"\nport = \"22\"\n").unwrap();
    let (code, stdout, stderr) = migready(&["doctor", "-i", inv.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains(&format!("{}:6:8: hosts[0].port", inv.display())), "{stderr}");
}

/// A hostile value anywhere in the inventory stops the run before any host is
/// contacted, the valid hosts before it included.
#[test]
fn hostile_inventory_value_exits_2_and_contacts_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    for (host, key) in [
        ("name = \"cmp2';reboot;'\"", "hosts[1].name"),
        ("name = \"cmp2$(reboot)\"", "hosts[1].name"),
        ("name = \"cmp2\"\naddress = \"-oProxyCommand=reboot\"", "hosts[1].address"),
        ("name = \"cmp2\"\nuser = \"root`reboot`\"", "hosts[1].user"),
    ] {
        let inv = dir.path().join("bad.toml");
        std::fs::write(
            &inv,
            format!(
                "[defaults]\nconnect_timeout = 1\n\n[[hosts]]\nname = \"cmp1\"\naddress = \"127.0.0.1\"\nport = {port}\n\n[[hosts]]\n{host}\n"
            ),
        )
        .unwrap();
        let line = 10 + host.lines().count() - 1;
        let (code, stdout, stderr) = migready(&["doctor", "--mesh", "none", "-i", inv.to_str().unwrap()]);
        assert_eq!(code, 2, "{host}: {stderr}");
        assert!(stdout.is_empty(), "{host}: {stdout}");
        let col = host.lines().last().unwrap().find('=').unwrap() + 3;
        assert!(stderr.starts_with(&format!("error: {}:{line}:{col}: {key}: ", inv.display())), "{host}: {stderr}");
        for command in [&["fix", "--dry-run"][..], &["validate", "--mesh", "none"]] {
            let (code, _, stderr) = migready(&[command, &["-i", inv.to_str().unwrap()]].concat());
            assert_eq!(code, 2, "{command:?} {host}: {stderr}");
            assert!(stderr.contains(&format!("{}:{line}:{col}: {key}: ", inv.display())), "{command:?} {host}: {stderr}");
        }
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a host was contacted: {other:?}"),
    }
}

#[test]
fn unknown_skip_id_and_missing_file_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, "[checks]\nskip = [\"libvirt.nope\"]\n").unwrap();
    let (code, _, stderr) = migready(&["doctor", "-i", inv.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains(":2:9: checks.skip[0]: unknown check id \"libvirt.nope\""), "{stderr}");
    let (code, _, stderr) = migready(&["doctor", "-i", "/nonexistent/inv.toml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/inv.toml"), "{stderr}");
}

#[test]
fn empty_inventory_audits_nothing_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, "# no hosts yet\n").unwrap();
    let (code, stdout, _) = migready(&["doctor", "--format", "json", "-i", inv.to_str().unwrap()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    common::assert_schema(&v);
    assert_eq!(v["hosts"].as_array().unwrap().len(), 0);
    assert_eq!(v["summary"]["fail"], 0);
}

#[test]
fn checks_lists_every_id_once() {
    let (code, stdout, _) = migready(&["checks"]);
    assert_eq!(code, 0);
    let ids: Vec<&str> = stdout.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    for id in ["ssh.connect", "privilege", "facts", "libvirt.mode", "libvirt.listen", "libvirt.auth", "libvirt.host-uuid", "firewall.libvirt",
        "firewall.migration", "nova.flags", "nova.compute", "hypervisor.versions", "net.hostname"]
    {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
}

#[test]
fn usage_error_exits_2() {
    let (code, _, stderr) = migready(&["doctor", "--format", "yaml", "-i", "x"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("yaml"));
}

#[test]
fn errors_escape_control_and_bidi_characters() {
    // The path is echoed in the error: its ESC and U+202E are shown, not obeyed.
    let path = "/nonexistent/\x1b[31mred\u{202e}/inv.toml";
    for cmd in ["doctor", "fix", "validate"] {
        let (code, stdout, stderr) = migready(&[cmd, "-i", path]);
        assert_eq!(code, 2, "{cmd}: {stderr}");
        assert!(stdout.is_empty(), "{cmd}: {stdout}");
        assert!(stderr.contains(r"/nonexistent/\x1b[31mred\u{202e}/inv.toml"), "{cmd}: {stderr:?}");
        assert!(!stderr.contains('\x1b') && !stderr.contains('\u{202e}'), "{cmd}: {stderr:?}");
    }
}

/// An inventory of one host that refuses connections at once (nothing listens on port 1).
fn refusing_host(dir: &std::path::Path) -> std::path::PathBuf {
    let inv = dir.join("inv.toml");
    let known = dir.join("known_hosts");
    std::fs::write(&known, "").unwrap();
    std::fs::write(&inv, format!("[defaults]\nknown_hosts = \"{}\"\n\n[[hosts]]\nname = \"gone\"\naddress = \"127.0.0.1\"\nport = 1\n", known.display())).unwrap();
    inv
}

#[test]
fn fix_without_yes_and_without_a_terminal_is_refused_before_auditing() {
    let dir = tempfile::tempdir().unwrap();
    let inv = refusing_host(dir.path());
    let inv = inv.to_str().unwrap();
    // stdin is not a terminal here: a usage error, exit 2, and nothing audited.
    let (code, stdout, stderr) = migready(&["fix", "-i", inv]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("refusing to change hosts without --yes"), "{stderr}");
    assert!(stdout.is_empty(), "audited anyway: {stdout}");
    // Audited: a host that cannot be reached is exit 1 (README's exit codes), with or without changes.
    for args in [&["fix", "--dry-run", "-i", inv][..], &["fix", "--yes", "-i", inv]] {
        let (code, stdout, stderr) = migready(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        assert!(stdout.contains("== gone: not audited: ") && stdout.contains("nothing to change"), "{args:?}: {stdout}");
    }
    // doctor alike.
    let (code, stdout, _) = migready(&["doctor", "--format", "json", "-i", inv]);
    assert_eq!(code, 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    common::assert_schema(&v);
    assert_eq!(v["hosts"][0]["reached"], false);
    assert_eq!(v["hosts"][0]["checks"][0]["id"], "ssh.connect");
    assert_eq!(v["hosts"][0]["checks"][0]["status"], "fail");
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    let (code, bash, _) = migready(&["completions", "bash"]);
    assert_eq!(code, 0);
    for sub in ["doctor", "fix", "validate", "checks"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    assert!(bash.contains("--dry-run") && bash.contains("--inventory"), "{bash}");
    let (code, zsh, _) = migready(&["completions", "zsh"]);
    assert!(code == 0 && zsh.starts_with("#compdef migready"), "{zsh}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = migready(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let fix = std::fs::read_to_string(dir.path().join("migready-fix.1")).unwrap();
    assert!(fix.starts_with(".ie") && fix.contains("migready\\-fix") && fix.contains("\\-\\-dry\\-run"), "{fix}");
    assert!(dir.path().join("migready.1").exists() && dir.path().join("migready-doctor.1").exists());
}

/// Two hosts that refuse connections at once (nothing listens on ports 1 and 2), so
/// that doctor's mesh and validate's migrations have pairs to report.
fn two_refusing_hosts(dir: &std::path::Path) -> std::path::PathBuf {
    let inv = refusing_host(dir);
    let text = std::fs::read_to_string(&inv).unwrap() + "\n[[hosts]]\nname = \"gone2\"\naddress = \"127.0.0.1\"\nport = 2\n";
    std::fs::write(&inv, text).unwrap();
    inv
}

#[test]
fn one_report_model_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let one = refusing_host(dir.path());
    let two_dir = tempfile::tempdir().unwrap();
    let two = two_refusing_hosts(two_dir.path());
    let junit = dir.path().join("junit.xml");
    let junit_s = junit.to_str().unwrap();
    for inv in [one.to_str().unwrap(), two.to_str().unwrap()] {
        for (cmd, args) in [
            ("doctor", vec!["doctor", "--format", "json", "--junit", junit_s, "-i", inv]),
            ("fix", vec!["fix", "--dry-run", "--format", "json", "--junit", junit_s, "-i", inv]),
            ("fix", vec!["fix", "--yes", "--format", "json", "--junit", junit_s, "-i", inv]),
            ("validate", vec!["validate", "--format", "json", "--junit", junit_s, "-i", inv]),
            ("validate", vec!["validate", "--pairs", "all", "--mesh", "none", "--format", "json", "--junit", junit_s, "-i", inv]),
        ] {
            let _ = std::fs::remove_file(&junit);
            let (code, stdout, stderr) = migready(&args);
            assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {stdout}"));
            common::assert_schema(&v);
            assert_eq!(v["command"], cmd);
            assert_eq!(v["exit_code"], 1);
            assert_eq!(v["hosts"][0]["name"], "gone");
            assert_eq!(v["hosts"][0]["reached"], false);
            assert!(v["summary"]["fail"].as_u64().unwrap() >= 1, "{v}");
            if cmd == "fix" {
                assert_eq!(v["fix"]["changes"]["planned"], 0, "{v}");
                assert!(v["fix"]["hosts"][0]["plan"].is_null(), "{v}");
            }
            if cmd == "validate" && inv == two.to_str().unwrap() {
                // Both directions of the one pair: the migrations are reported, not run.
                let pairs = v["pairs"].as_array().unwrap();
                assert!(pairs.iter().any(|p| p["from"] == "gone" && p["to"] == "gone2"), "{v}");
                assert!(pairs.iter().all(|p| p["checks"].as_array().unwrap().iter().any(|c| c["id"] == "migration.live-block")), "{v}");
            }
            let x = std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("{args:?}: no JUnit file: {e}"));
            assert!(x.contains(&format!("<testsuites name=\"migready {cmd}\"")), "{args:?}: {x}");
            assert!(x.contains("<testcase classname=\"gone\" name=\"ssh.connect\">") && x.contains("<failure"), "{args:?}: {x}");
        }
    }
    // The table output writes the same JUnit file.
    for args in [&["doctor", "--junit", junit_s, "-i"][..], &["fix", "--dry-run", "--junit", junit_s, "-i"], &["validate", "--junit", junit_s, "-i"]] {
        let _ = std::fs::remove_file(&junit);
        let (code, stdout, stderr) = migready(&[args, &[two.to_str().unwrap()]].concat());
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        let x = std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("{args:?}: no JUnit file: {e}"));
        assert!(x.contains("<testcase classname=\"gone2\" name=\"ssh.connect\">"), "{args:?}: {x}");
    }
    // JSON needs someone to have decided: --yes or --dry-run.
    let (code, _, stderr) = migready(&["fix", "--format", "json", "-i", one.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn table_not_on_a_terminal_wraps_to_a_readable_width() {
    let dir = tempfile::tempdir().unwrap();
    let inv = refusing_host(dir.path());
    // A long host name: its rows would be ~140 columns unwrapped.
    let long = format!("{}.example", "a".repeat(60));
    std::fs::write(&inv, std::fs::read_to_string(&inv).unwrap().replace("name = \"gone\"", &format!("name = \"{long}\""))).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_migready")).args(["doctor", "--mesh", "none", "-i", inv.to_str().unwrap()]).env_remove("COLUMNS").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("aaaaaaaa") && text.lines().count() > 3, "{text}");
    for l in text.lines() {
        assert!(l.chars().count() <= 100, "{} columns: {l}", l.chars().count());
    }
}

/// An Ansible inventory is checked like a TOML one: a Jinja template in a value
/// migready uses, a `--limit` that matches nothing, both exit 2 before any host is
/// contacted, naming the file and line, or the pattern; on doctor, fix and validate.
#[test]
fn ansible_inventory_errors_and_empty_limits_exit_2() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/inventory/ansible");
    let jinja = format!("{fixtures}/jinja_host.ini");
    let multinode = format!("{fixtures}/multinode");
    for command in [&["doctor"][..], &["fix", "--dry-run"], &["validate"]] {
        let (code, stdout, stderr) = migready(&[command, &["-i", &jinja]].concat());
        assert_eq!(code, 2, "{command:?}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.starts_with(&format!("error: {jinja}:3:19: Ansible INI: ansible_host: \"{{{{ hostvars")), "{command:?}: {stderr}");
        let (code, _, stderr) = migready(&[command, &["-i", &multinode, "--limit", "compute:&control"]].concat());
        assert_eq!(code, 2, "{command:?}: {stderr}");
        assert_eq!(stderr, format!("error: --limit \"compute:&control\": matches no host of {multinode}\n"));
        let (code, _, stderr) = migready(&[command, &["-i", &multinode, "-l", "computes"]].concat());
        assert_eq!(code, 2, "{command:?}: {stderr}");
        assert!(stderr.contains("\"computes\" matches no group and no host"), "{stderr}");
    }
}

#[test]
fn ca_init_makes_a_ca_whose_key_only_the_owner_reads() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let (code, out, err) = migready(&["ca", "init", "--dir", ca.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("CA certificate: {}/cacert.pem", ca.display())) && out.contains("cakey.pem"), "{out}");
    assert!(!out.contains("PRIVATE KEY") && !err.contains("PRIVATE KEY"));
    assert_eq!(std::fs::metadata(ca.join("cakey.pem")).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(ca.join("cacert.pem")).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    let key = std::fs::read(ca.join("cakey.pem")).unwrap();
    let (code, _, err) = migready(&["ca", "init", "--dir", ca.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("cacert.pem exists: a CA is already there"), "{err}");
    assert_eq!(std::fs::read(ca.join("cakey.pem")).unwrap(), key);
}
