use super::*;

fn fixture(name: &str) -> HostFacts {
    let path = format!("{}/tests/fixtures/facts/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    HostFacts::parse_bytes(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn bookworm_socket_host() {
    let f = fixture("bookworm-socket");
    assert_eq!(f.uid, Some(0));
    assert_eq!(f.hostname.as_deref(), Some("cmp1"));
    assert_eq!(f.libvirt_version, Some(Version(9, 0, 0)));
    assert_eq!(f.qemu_version.map(|v| (v.0, v.1)), Some((7, 2)));
    assert_eq!(f.daemon_mode(), DaemonMode::Socket);
    assert!(f.unit("libvirtd.socket").unwrap().is_enabled());
    assert_eq!(f.env_files.len(), 1);
    assert_eq!(f.env_files[0].path, "/etc/default/libvirtd");
    // The unit's own Environment= gives `--timeout 120`; no env file overrides it.
    let (args, source) = f.daemon_args("libvirtd");
    assert_eq!(args, vec!["--timeout", "120"]);
    assert_eq!(source.as_deref(), Some("libvirtd.service Environment="));
    assert!(f.host_uuid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(f.machine_types.iter().any(|m| m.starts_with("pc-i440fx-7.2")));
    assert!(f.listens_on(22) && !f.listens_on(16509));
    assert!(matches!(f.iptables, Some(Firewall::Rules(ref r)) if r.is_empty()));
    assert_eq!(f.detected_nova_release(), Some(NovaRelease(26)));
    assert_eq!(f.migration_ports().0..=f.migration_ports().1, 49152..=49215);
    assert!(f.nova_conf.as_ref().unwrap().text().lines().count() > 8000);
    assert!(f.nova_option("libvirt", "live_migration_tunnelled").is_none());
    assert_eq!(f.nova_option("DEFAULT", "compute_driver").map(|v| v.0).as_deref(), Some("libvirt.LibvirtDriver"));
    assert!(f.mem_available_kib.unwrap() > 0 && f.instances_free_bytes.unwrap() > 0);
}

#[test]
fn trixie_socket_host() {
    let f = fixture("trixie-socket");
    assert_eq!(f.libvirt_version.map(|v| v.0), Some(11));
    assert_eq!(f.qemu_version.map(|v| v.0), Some(10));
    assert_eq!(f.daemon_mode(), DaemonMode::Socket);
    assert_eq!(f.detected_nova_release(), Some(NovaRelease(31)));
}

#[test]
fn traditional_host_with_rhel_firewall() {
    let f = fixture("bookworm-traditional-reject");
    assert_eq!(f.daemon_mode(), DaemonMode::Traditional);
    assert_eq!(f.env_files[0].path, "/etc/sysconfig/libvirtd");
    // CentOS 7 style: no Environment= default, and the stock sysconfig file sets nothing.
    assert_eq!(f.daemon_args("libvirtd").0, Vec::<String>::new());
    assert_eq!(f.persisted_rules, vec!["/etc/sysconfig/iptables"]);
    let Some(Firewall::Rules(rules)) = &f.iptables else { panic!("no iptables") };
    let d = rules.input_decision(&firewall::Probe::tcp("198.18.42.11".parse().unwrap(), 16509));
    assert_eq!(d.verdict, firewall::Verdict::Reject);
}

#[test]
fn missing_everything_is_a_fact_too() {
    let f = HostFacts::parse("@@MIGREADY@@ id 0 MAo= -\n@@MIGREADY@@ libvirtd_conf 127 - -\n").unwrap();
    assert_eq!(f.daemon_mode(), DaemonMode::Absent);
    assert!(f.libvirtd_conf.is_none() && f.nova_conf.is_none());
    assert_eq!(f.instances_path, "/var/lib/nova/instances");
}

#[test]
fn small_parsers() {
    assert_eq!(Version::find("libvirtd (libvirt) 11.3.0"), Some(Version(11, 3, 0)));
    assert_eq!(Version::find("QEMU emulator version 7.2"), Some(Version(7, 2, 0)));
    assert_eq!(
        parse_ss("LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\nLISTEN 0 128 [::]:16509 [::]:*\nLISTEN 0 5 *:80 *:*\n")
            .iter()
            .map(|x| x.1)
            .collect::<Vec<_>>(),
        vec![22, 16509, 80]
    );
    assert_eq!(parse_getent("198.18.42.11 STREAM cmp1\n198.18.42.11 DGRAM\n"), vec!["198.18.42.11".parse::<IpAddr>().unwrap()]);
    assert_eq!(parse_ip_addr("2: eth0    inet 198.18.42.11/24 brd 198.18.42.255 scope global eth0\\       valid_lft forever"), vec!["198.18.42.11".parse::<IpAddr>().unwrap()]);
}

/// Facts script output (sized records) of one file record.
fn sized(name: &str, content: &[u8]) -> Vec<u8> {
    let mut out = format!("@@MIGREADY-SIZED@@ id 0 2 0\n@@MIGREADY-SIZED@@ {name} 0 {} 0\n@@MIGREADY-DATA@@\n0\n", content.len()).into_bytes();
    out.extend_from_slice(content);
    out
}

#[test]
fn config_files_with_a_bom_or_latin1_bytes() {
    let bytes = b"\xef\xbb\xbflisten_tcp = 1\n# caf\xe9\nauth_tcp = \"none\"\n";
    let f = HostFacts::parse_bytes(&sized("libvirtd_conf", bytes)).unwrap();
    let conf = f.libvirtd_conf.as_ref().unwrap();
    // The first line is read past the BOM; the latin-1 comment is kept as its bytes.
    assert_eq!(HostFacts::conf_value(Some(conf), "listen_tcp").map(|v| v.0), Some(Value::Int(1)));
    assert_eq!(HostFacts::conf_value(Some(conf), "auth_tcp").map(|v| v.1).as_deref(), Some("/etc/libvirt/libvirtd.conf:3: auth_tcp = \"none\""));
    assert_eq!(crate::formats::bytes::encode(conf.text()), bytes);
    let mut doc = conf.doc.clone();
    doc.set("listen_tcp", Value::Int(0)).unwrap();
    assert_eq!(crate::formats::bytes::encode(&doc.to_string()), b"\xef\xbb\xbflisten_tcp = 0\n# caf\xe9\nauth_tcp = \"none\"\n");

    let f = HostFacts::parse_bytes(&sized("nova_conf", b"\xef\xbb\xbf[libvirt]\n# \xfc\nlive_migration_tunnelled = true\n")).unwrap();
    assert_eq!(f.nova_option("libvirt", "live_migration_tunnelled").map(|v| v.0).as_deref(), Some("true"));
}

#[test]
fn symlinked_config_files() {
    let mut r = crate::checks::testutil::raw("bookworm-traditional-reject");
    let set = |r: &mut RawFacts, name: &str, status: i32, out: &str| {
        r.records.insert(name.into(), Record { status, stdout: out.into(), stderr: String::new() });
    };
    set(&mut r, "link:libvirtd_conf", 0, "/srv/config/libvirt/libvirtd.conf\n");
    set(&mut r, "link:envfile:libvirtd.service:/etc/sysconfig/libvirtd", 0, "/etc/sysconfig/libvirtd.local\n");
    set(&mut r, "link:persist:/etc/sysconfig/iptables", 0, "/etc/iptables/iptables.rules\n");
    // readlink -f failed (a loop), printed nothing, or the link resolves to itself.
    set(&mut r, "link:nova_conf", 1, "");
    set(&mut r, "link:qemu_conf", 0, "");
    set(&mut r, "link:nova_compute_conf", 0, "/etc/nova/nova-compute.conf\n");
    let f = HostFacts::from_raw(r);
    let conf = f.libvirtd_conf.as_ref().unwrap();
    assert_eq!((conf.path.as_str(), conf.real_path.as_deref()), ("/etc/libvirt/libvirtd.conf", Some("/srv/config/libvirt/libvirtd.conf")));
    let env = f.env_files[0].file.as_ref().unwrap();
    assert_eq!(env.real_path.as_deref(), Some("/etc/sysconfig/libvirtd.local"));
    assert_eq!(f.real_path("/etc/sysconfig/iptables"), Some("/etc/iptables/iptables.rules"));
    assert_eq!(f.real_path("/etc/libvirt/libvirtd.conf"), Some("/srv/config/libvirt/libvirtd.conf"));
    assert!(f.nova_conf.as_ref().unwrap().real_path.is_none());
    assert!(f.qemu_conf.as_ref().unwrap().real_path.is_none());
    assert_eq!(f.symlinks.len(), 3, "{:?}", f.symlinks);
    // Plain files: no link records, no real path.
    let f = fixture("bookworm-traditional-reject");
    assert!(f.libvirtd_conf.unwrap().real_path.is_none() && f.symlinks.is_empty());
}
