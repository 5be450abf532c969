//! Ansible inventories (INI and YAML), the TOML pointing at one, format
//! detection and `--limit`, over fixture files.

use super::*;

const HOME: &str = "/home/tester";

fn dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/inventory/ansible")).to_path_buf()
}

fn load_fixture(name: &str) -> Result<Inventory, InventoryError> {
    load_with_home(&dir().join(name), &[], Some(Path::new(HOME)))
}

fn host<'a>(inv: &'a Inventory, name: &str) -> &'a HostSpec {
    inv.hosts.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name}"))
}

/// (address, user, port, identity_file, groups) of a host.
fn conn(inv: &Inventory, name: &str) -> (String, String, u16, Option<PathBuf>, Vec<String>) {
    let h = host(inv, name);
    (h.address.clone(), h.user.clone(), h.port, h.identity_file.clone(), h.groups.clone())
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn kolla_multinode() {
    let inv = load_fixture("multinode").unwrap();
    assert_eq!(inv.format, Format::AnsibleIni);
    let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "control01", "control02", "control03", "network01", "network02", "compute01", "compute02", "compute03",
            "compute04", "monitoring01", "localhost"
        ]
    );
    let control = strings(&["baremetal", "common", "control", "ironic-conductor", "iscsid", "nova", "tls-backend"]);
    // [all:vars] user, [baremetal:vars] port.
    assert_eq!(conn(&inv, "control01"), ("control01".into(), "root".into(), 2200, None, control.clone()));
    assert_eq!(conn(&inv, "control02").0, "192.0.2.2");
    // Quoted, and a comment after the host's variables.
    assert_eq!(conn(&inv, "control03"), ("192.0.2.3".into(), "kolla".into(), 2200, None, control));
    // Both spellings set: ansible_ssh_host wins, as in Ansible's ssh plugin.
    assert_eq!(conn(&inv, "network02").0, "192.0.2.22");
    // A range; the host's own variables beat [compute:vars], whose port beats its
    // parent's ([baremetal:vars]); a relative key is next to the inventory.
    let compute = strings(&["baremetal", "common", "compute", "iscsid", "nova-compute"]);
    for h in ["compute01", "compute02", "compute03"] {
        assert_eq!(
            conn(&inv, h),
            (h.to_string(), "stack".into(), 2222, Some(dir().join("keys/compute")), compute.clone()),
            "{h}"
        );
    }
    // host:port is a host variable: it beats [compute:vars].
    assert_eq!(conn(&inv, "compute04"), ("compute04.example.org".into(), "nova".into(), 2200, None, compute));
    assert_eq!(conn(&inv, "monitoring01").2, 2200);
    // ansible_connection is not used: migready reaches every host over SSH.
    assert_eq!(conn(&inv, "localhost"), ("localhost".into(), "root".into(), 22, None, strings(&["deployment"])));
    assert_eq!(host(&inv, "compute01").line, 22);
    // The empty group [storage] is known (to --limit).
    assert!(inv.groups.contains(&"storage".to_string()));
    assert!(inv.groups.contains(&"all".to_string()) && inv.groups.contains(&"ungrouped".to_string()));
}

#[test]
fn yaml_inventory() {
    let inv = load_fixture("hosts.yml").unwrap();
    assert_eq!(inv.format, Format::AnsibleYaml);
    let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["deploy", "ctl01", "ctl02", "cmp01", "cmp02", "cmp03", "gpu01"]);
    assert_eq!(conn(&inv, "deploy"), ("192.0.2.1".into(), "root".into(), 22, None, vec![]));
    assert_eq!(conn(&inv, "ctl01"), ("192.0.2.10".into(), "root".into(), 22, None, strings(&["control", "nova"])));
    assert_eq!(conn(&inv, "ctl02").0, "ctl02");
    for h in ["cmp01", "cmp02"] {
        assert_eq!(conn(&inv, h), (h.to_string(), "stack".into(), 2222, None, strings(&["compute", "nova"])));
    }
    assert_eq!(
        conn(&inv, "cmp03"),
        ("cmp03".into(), "root".into(), 2200, Some(PathBuf::from("/home/tester/.ssh/cmp03")), strings(&["compute", "nova"]))
    );
    // A child group inherits its parents' variables; brackets leave an IPv6 address.
    assert_eq!(
        conn(&inv, "gpu01"),
        ("2001:db8::5".into(), "root".into(), 2222, None, strings(&["compute", "compute_gpu", "nova"]))
    );
}

/// The error of a fixture, displayed relative to the fixture directory.
fn error(name: &str) -> String {
    let err = load_fixture(name).expect_err(name);
    assert_eq!(err.path, dir().join(name));
    err.to_string().replacen(&format!("{}/", dir().display()), "", 1)
}

#[test]
fn errors_name_file_line_and_column() {
    for (name, expected) in [
        (
            "jinja_host.ini",
            r#"jinja_host.ini:3:19: Ansible INI: ansible_host: "{{ hostvars['cmp1'].ansible_host }}" is a Jinja template: migready does not evaluate templates (write the value itself)"#,
        ),
        (
            "jinja_group.yml",
            r#"jinja_group.yml:5:23: Ansible YAML: ansible_user: "{{ lookup('env', 'USER') }}" is a Jinja template: migready does not evaluate templates (write the value itself)"#,
        ),
        // A group's value is reported where it is written, naming the host.
        (
            "bad_port_group.ini",
            r#"bad_port_group.ini:6:14: Ansible INI: ansible_port: "70000": expected an integer in 1..=65535 (group "compute", for host "cmp1" at line 2)"#,
        ),
        (
            "undefined_child.ini",
            r#"undefined_child.ini:6:1: Ansible INI: section [baremetal:children] names group "storage", which is not declared"#,
        ),
        (
            "vars_undeclared.ini",
            r#"vars_undeclared.ini:4:1: Ansible INI: section [storage:vars] is for group "storage", which is not declared ([storage] or [storage:children])"#,
        ),
        (
            "bad_name.ini",
            r#"bad_name.ini:2:1: Ansible INI: host name "cmp_1": '_' is not allowed in a host name (letters, digits, '-' and '.' only)"#,
        ),
        ("unclosed_quote.ini", r#"unclosed_quote.ini:2:1: Ansible INI: no closing quotation (")"#),
        (
            "bad_range.ini",
            r#"bad_range.ini:2:1: Ansible INI: "cmp[01:3]": a zero-padded host range needs begin and end of equal length"#,
        ),
        (
            "bad_user.yml",
            r#"bad_user.yml:4:21: Ansible YAML: ansible_user: "root; reboot": ';' is not allowed in a user name (letters, digits, '.', '_' and '-' only)"#,
        ),
        ("unknown_key.yml", r#"unknown_key.yml:4:7: Ansible YAML: group "compute": unknown key "host" (hosts, vars or children)"#),
        (
            "duplicate_host.ini",
            r#"duplicate_host.ini:3:1: Ansible INI: duplicate host name "CMP1" (first at line 2; names are compared without case)"#,
        ),
    ] {
        assert_eq!(error(name), expected, "{name}");
    }
    let syntax = error("syntax_error.yml");
    assert!(syntax.starts_with("syntax_error.yml:5:1: Ansible YAML: YAML syntax error: "), "{syntax}");
}

#[test]
fn ranges_and_ports() {
    let expand = |p: &str| ansible::expand_host_pattern(p);
    assert_eq!(expand("cmp[01:03]").unwrap(), (strings(&["cmp01", "cmp02", "cmp03"]), None));
    assert_eq!(expand("cmp[1:10:4]").unwrap(), (strings(&["cmp1", "cmp5", "cmp9"]), None));
    assert_eq!(expand("cmp[:2]").unwrap(), (strings(&["cmp0", "cmp1", "cmp2"]), None));
    // Without a leading zero no padding, as Ansible's.
    assert_eq!(expand("cmp[8:10]").unwrap(), (strings(&["cmp8", "cmp9", "cmp10"]), None));
    assert_eq!(expand("node-[a:c].lab").unwrap(), (strings(&["node-a.lab", "node-b.lab", "node-c.lab"]), None));
    assert_eq!(
        expand("r[1:2]n[a:b]:2222").unwrap(),
        (strings(&["r1na", "r1nb", "r2na", "r2nb"]), Some("2222".to_string()))
    );
    assert_eq!(expand("[2001:db8::1]:22").unwrap(), (strings(&["2001:db8::1"]), Some("22".to_string())));
    for bad in ["cmp[3:1]", "cmp[01:3]", "cmp[1:x]", "cmp[1:3", "cmp[1:3:0]", "cmp:ssh", "cmp[0:9999999]", ""] {
        assert!(expand(bad).is_err(), "{bad}");
    }
}

#[test]
fn detects_the_format() {
    use ansible::detect;
    let p = Path::new("inventory");
    assert_eq!(detect(Path::new("x.toml"), "[compute]\ncmp1\n"), Format::Toml);
    assert_eq!(detect(Path::new("x.ini"), "[defaults]\nuser = \"root\"\n"), Format::AnsibleIni);
    assert_eq!(detect(Path::new("x.YAML"), ""), Format::AnsibleYaml);
    for (text, format) in [
        ("# lab\n[defaults]\nuser = \"root\"\n[[hosts]]\nname = \"a\"\n", Format::Toml),
        ("[[hosts]]\nname = \"a\"\n", Format::Toml),
        ("name = \"a\"\n", Format::Toml),
        // TOML with a syntax error in it stays TOML (to name the error).
        ("[defaults]\nuser = \"root\n", Format::Toml),
        ("", Format::Toml),
        ("[compute]\ncmp1\n", Format::AnsibleIni),
        ("[compute]\n", Format::AnsibleIni),
        ("# ungrouped first\ncmp1 ansible_host=192.0.2.1\n", Format::AnsibleIni),
        ("cmp1:2222\n", Format::AnsibleIni),
        ("[nova]\ncmp1\n", Format::AnsibleIni),
        ("[all:vars]\nansible_user = \"root\"\n", Format::AnsibleIni),
        ("---\nall:\n", Format::AnsibleYaml),
        ("all:\n  hosts:\n", Format::AnsibleYaml),
        ("compute: {hosts: {cmp1: }}\n", Format::AnsibleYaml),
        ("{\"all\": {}}\n", Format::AnsibleYaml),
    ] {
        assert_eq!(detect(p, text), format, "{text:?}");
    }
    // Errors say what the file was read as.
    let e = parse_with_home("[defaults]\nuser = \"root\n", p, &[], None).unwrap_err().to_string();
    assert!(e.contains("toml syntax error") && e.contains("read as a TOML inventory"), "{e}");
    let e = parse_with_home("[compute]\ncmp_1\n", p, &[], None).unwrap_err().to_string();
    assert!(e.starts_with("inventory:2:1: Ansible INI: host name \"cmp_1\""), "{e}");
}

#[test]
fn toml_points_at_an_ansible_inventory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir().join("multinode"), tmp.path().join("multinode")).unwrap();
    let toml = tmp.path().join("inventory.toml");
    std::fs::write(
        &toml,
        r#"[defaults]
known_hosts = "kh"
user = "ops"
port = 2022
connect_timeout = 3
ssh_config = ""

[inventory]
ansible = "multinode"

# Wins key by key over the Ansible variables; keeps the Ansible groups.
[[hosts]]
name = "compute01"
port = 22
groups = ["rack1"]

[[hosts]]
name = "extra01"
address = "192.0.2.50"
groups = ["rack1", "compute"]
"#,
    )
    .unwrap();
    let inv = load_with_home(&toml, &[], Some(Path::new(HOME))).unwrap();
    assert_eq!(inv.format, Format::Toml);
    assert_eq!(inv.hosts.len(), 12);
    assert_eq!(inv.hosts.last().unwrap().name, "extra01");
    let c1 = host(&inv, "compute01");
    assert_eq!((c1.port, c1.user.as_str()), (22, "stack"));
    assert_eq!(c1.groups, strings(&["baremetal", "common", "compute", "iscsid", "nova-compute", "rack1"]));
    assert_eq!(c1.identity_file, Some(tmp.path().join("keys/compute")));
    // [defaults] fills what neither names: Ansible's values beat it.
    let l = host(&inv, "localhost");
    assert_eq!((l.user.as_str(), l.port), ("root", 2022));
    assert_eq!(l.known_hosts, tmp.path().join("kh"));
    assert_eq!(l.connect_timeout, Duration::from_secs(3));
    assert_eq!(host(&inv, "extra01").port, 2022);
    assert!(inv.groups.contains(&"rack1".to_string()));

    // --limit over both files' groups.
    let mut limited = inv.clone();
    limited.limit("compute").unwrap();
    let names: Vec<&str> = limited.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["compute01", "compute02", "compute03", "compute04", "extra01"]);
    let mut limited = inv.clone();
    limited.limit("rack1:&nova-compute").unwrap();
    assert_eq!(limited.hosts.len(), 1);

    // The Ansible file must be there and be Ansible.
    std::fs::write(&toml, "[inventory]\nansible = \"missing\"\n").unwrap();
    let e = load_with_home(&toml, &[], None).unwrap_err().to_string();
    assert!(e.contains("inventory.toml:2:11: inventory.ansible: cannot read") && e.contains("missing: no such file"), "{e}");
    std::fs::write(tmp.path().join("other.toml"), "").unwrap();
    std::fs::write(&toml, "[inventory]\nansible = \"other.toml\"\n").unwrap();
    let e = load_with_home(&toml, &[], None).unwrap_err().to_string();
    assert!(e.contains("reads as a TOML inventory, not an Ansible"), "{e}");
    // Its errors name its own file and line.
    std::fs::write(tmp.path().join("bad"), "[compute]\ncmp1 ansible_port=x\n").unwrap();
    std::fs::write(&toml, "[inventory]\nansible = \"bad\"\n").unwrap();
    let e = load_with_home(&toml, &[], None).unwrap_err().to_string();
    assert_eq!(e, format!("{}:2:19: Ansible INI: ansible_port: \"x\": expected an integer in 1..=65535", tmp.path().join("bad").display()));
    std::fs::write(&toml, "[inventory]\nansibel = \"bad\"\n").unwrap();
    let e = load_with_home(&toml, &[], None).unwrap_err().to_string();
    assert!(e.ends_with("inventory.toml:2:1: unknown key \"ansibel\" in [inventory]"), "{e}");
    std::fs::write(&toml, "[[hosts]]\nname = \"a\"\ngroups = [\"bad group\"]\n").unwrap();
    let e = load_with_home(&toml, &[], None).unwrap_err().to_string();
    assert!(e.contains("inventory.toml:3:11: hosts[0].groups: ' ' is not allowed in a group name"), "{e}");
}

/// The hosts `pattern` leaves of the multinode fixture.
fn limited(pattern: &str) -> Result<Vec<String>, String> {
    let mut inv = load_fixture("multinode").unwrap();
    inv.limit(pattern)?;
    Ok(inv.hosts.into_iter().map(|h| h.name).collect())
}

#[test]
fn limit_patterns() {
    let compute = strings(&["compute01", "compute02", "compute03", "compute04"]);
    assert_eq!(limited("compute").unwrap(), compute);
    assert_eq!(limited("nova-compute").unwrap(), compute);
    assert_eq!(limited("compute02").unwrap(), ["compute02"]);
    assert_eq!(limited("all").unwrap().len(), 11);
    assert_eq!(limited("*").unwrap().len(), 11);
    // Unions, in inventory order whatever the pattern's order.
    assert_eq!(limited("compute04,control01").unwrap(), ["control01", "compute04"]);
    assert_eq!(limited("network:deployment").unwrap(), ["network01", "network02", "localhost"]);
    // Exclusion and intersection, applied after the unions wherever they are written.
    assert_eq!(limited("!compute:baremetal:!control:!network").unwrap(), ["monitoring01"]);
    assert_eq!(limited("baremetal:&nova").unwrap(), ["control01", "control02", "control03"]);
    assert_eq!(limited("&compute").unwrap(), compute);
    assert_eq!(limited("!baremetal").unwrap(), ["localhost"]);
    // Globs over groups and hosts.
    assert_eq!(limited("comp*").unwrap(), compute);
    assert_eq!(limited("*01").unwrap(), ["control01", "network01", "compute01", "monitoring01"]);
    assert_eq!(limited("compute0?:!compute04").unwrap(), ["compute01", "compute02", "compute03"]);
    // A host name with dots.
    assert_eq!(limited(" control02 , localhost ").unwrap(), ["control02", "localhost"]);

    for (pattern, message) in [
        ("computes", r#"--limit "computes": "computes" matches no group and no host of "#),
        ("compute,cmpX", r#"--limit "compute,cmpX": "cmpX" matches no group and no host of "#),
        ("Compute", r#"--limit "Compute": "Compute" matches no group and no host of "#),
        // An empty group exists, but leaves nothing.
        ("storage", r#"--limit "storage": matches no host of "#),
        ("compute:&control", r#"--limit "compute:&control": matches no host of "#),
        ("ungrouped", r#"--limit "ungrouped": matches no host of "#),
        ("", r#"--limit "": no group or host named"#),
        ("compute:!", r#"--limit "compute:!": '&' or '!' without a name after it"#),
        ("~comp.*", r#"--limit "~comp.*": "~comp.*": '~' is not supported"#),
        ("compute[0]", r#"--limit "compute[0]": "compute[0]": '[' is not supported"#),
        ("@retry", r#"--limit "@retry": "@retry": '@' is not supported"#),
    ] {
        let e = limited(pattern).unwrap_err();
        assert!(e.starts_with(message), "{pattern}: {e}");
    }
}

#[test]
fn limit_on_toml_hosts() {
    let mut inv = parse_with_home(
        "[[hosts]]\nname = \"a\"\ngroups = [\"x\"]\n[[hosts]]\nname = \"b\"\n[[hosts]]\nname = \"c\"\ngroups = [\"x\", \"y\"]\n",
        Path::new("inv.toml"),
        &[],
        Some(Path::new(HOME)),
    )
    .unwrap();
    let names = |inv: &Inventory| inv.hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
    let mut by_name = inv.clone();
    by_name.limit("b,c").unwrap();
    assert_eq!(names(&by_name), ["b", "c"]);
    let mut ungrouped = inv.clone();
    ungrouped.limit("ungrouped").unwrap();
    assert_eq!(names(&ungrouped), ["b"]);
    inv.limit("x:!y").unwrap();
    assert_eq!(names(&inv), ["a"]);
}

#[test]
fn yaml_aliases_are_followed_and_bounded() {
    // An alias copies its anchor (Ansible's YAML loader does the same).
    let text = "all:\n  children:\n    a:\n      vars: &v\n        ansible_user: stack\n      hosts:\n        h1:\n    b:\n      vars: *v\n      hosts:\n        h2:\n";
    let r = ansible::read(text, Format::AnsibleYaml).unwrap();
    assert_eq!(r.hosts[1].vars["ansible_user"].text, "stack");
    // Nested aliases that would expand to billions of nodes are refused, quickly.
    let mut bomb = String::from("x0: &a0 {k: v, l: w}\n");
    for i in 1..40 {
        bomb.push_str(&format!("x{i}: &a{i} {{k: *a{}, l: *a{}}}\n", i - 1, i - 1));
    }
    let e = ansible::read(&bomb, Format::AnsibleYaml).unwrap_err();
    assert!(e.message.contains("expands to more than"), "{e:?}");
}

proptest::proptest! {
    /// Any text is an inventory or an error with a position, never a panic; the same
    /// for any --limit pattern.
    #[test]
    fn any_text_parses_or_errs(text in "(\\PC|\n|\t|\\[|\\]|:|=|#|'|\"|\\{|\\}){0,200}", pattern in "(\\PC|:|,|!|&|\\*|\\?){0,20}") {
        for format in [Format::AnsibleIni, Format::AnsibleYaml] {
            if let Err(e) = ansible::read(&text, format) {
                proptest::prop_assert!(e.line <= text.lines().count() + 1, "{e:?}");
            }
        }
        let _ = ansible::detect(Path::new("inventory"), &text);
        let _ = ansible::expand_host_pattern(&text);
        let mut inv = load_fixture("multinode").unwrap();
        let _ = inv.limit(&pattern);
    }
}
