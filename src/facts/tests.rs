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
    assert!(f.nova.files[0].text().lines().count() > 8000);
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
    assert!(f.libvirtd_conf.is_none() && f.nova.is_empty());
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
    assert!(f.nova.files[0].real_path.is_none());
    assert_eq!(f.nova.files[1].real_path, None, "a link to itself");
    assert!(f.qemu_conf.as_ref().unwrap().real_path.is_none());
    assert_eq!(f.symlinks.len(), 3, "{:?}", f.symlinks);
    // Plain files: no link records, no real path.
    let f = fixture("bookworm-traditional-reject");
    assert!(f.libvirtd_conf.unwrap().real_path.is_none() && f.symlinks.is_empty());
}

/// The real facts script's Nova part, with a given command line and a temporary
/// directory for /etc: the files come back in oslo.config's order.
fn nova_files_of(root: &std::path::Path, args: &[&str], source: &str) -> HostFacts {
    let d = root.display().to_string();
    let quoted: Vec<String> = args.iter().map(|a| crate::shell::quote(&a.replace('@', &d))).collect();
    let script = SCRIPT
        .replace(
            "fact nova_args_source printf '%s' \"${novasrc:-none}\"",
            &format!("printf '%s\\n' {} >\"$t/novaargs\"\nnovasrc='{source}'\nfact nova_args_source printf '%s' \"${{novasrc:-none}}\"", quoted.join(" ")),
        )
        .replace("for d in /etc/nova /etc; do", &format!("for d in {d}/etc/nova {d}/etc; do"));
    assert_eq!(script.matches(&format!("for d in {d}/etc/nova")).count(), 2, "the script's Nova lines changed");
    let out = std::process::Command::new("sh").arg("-c").arg(&script).stdin(std::process::Stdio::null()).output().expect("sh");
    HostFacts::parse_bytes(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn nova_files_in_oslo_config_order() {
    let dir = tempfile::tempdir().unwrap();
    let r = std::fs::canonicalize(dir.path()).unwrap();
    let d = r.display().to_string();
    let w = |p: &str, t: &str| {
        let p = r.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    };
    w("etc/nova/nova.conf", "[DEFAULT]\nhost = from-nova-conf\ninstances_path = /srv/a\n[libvirt]\nlive_migration_inbound_addr = 10.0.0.1\n");
    w("etc/nova-compute.conf", "[libvirt]\nvirt_type = qemu\n");
    w("etc/nova/nova.conf.d/2.conf", "[libvirt]\nlive_migration_inbound_addr = 10.0.0.2\n");
    w("etc/nova/nova.conf.d/10.conf", "[DEFAULT]\ninstances_path = /srv/ten\n");
    w("etc/nova/nova.conf.d/notes.txt", "[DEFAULT]\nhost = ignored\n");
    w("other/a.conf", "[DEFAULT]\nhost = from-a\n");
    w("other/d/x.conf", "[libvirt]\nlive_migration_inbound_addr = 10.0.0.9\n");
    let at = |p: &str| p.replace(&d, "@");
    let paths = |f: &HostFacts| f.nova.files.iter().map(|c| at(&c.path)).collect::<Vec<_>>();

    // No --config-file and no --config-dir (RDO's unit): the defaults, files first
    // (nova-compute.conf found in /etc), then the directories' *.conf, sorted.
    let f = nova_files_of(&r, &["/usr/bin/python3", "/usr/bin/nova-compute"], "pid 42 nova-compute.service");
    assert_eq!(paths(&f), ["@/etc/nova/nova.conf", "@/etc/nova-compute.conf", "@/etc/nova/nova.conf.d/10.conf", "@/etc/nova/nova.conf.d/2.conf"]);
    assert_eq!(f.nova.source, nova_conf::Source::Process { pid: 42, unit: "nova-compute.service".into() });
    let (v, ev) = f.nova_option("libvirt", "live_migration_inbound_addr").unwrap();
    assert_eq!((v.as_str(), at(&ev).as_str()), ("10.0.0.2", "@/etc/nova/nova.conf.d/2.conf:2: live_migration_inbound_addr = 10.0.0.2"));
    assert_eq!(f.instances_path, "/srv/ten", "instances_path: the last file's");
    assert!(f.nova.evidence().contains("(order from nova-compute's command line (pid 42, nova-compute.service); later files win)"), "{}", f.nova.evidence());

    // --config-file given, no --config-dir: the default directories first, then the
    // command line in its order.
    let f = nova_files_of(&r, &["nova-compute", "--config-file=@/etc/nova/nova.conf", "--config-file", "@/other/a.conf", "--log-file=/x"], "ExecStart nova-compute.service");
    assert_eq!(paths(&f), ["@/etc/nova/nova.conf.d/10.conf", "@/etc/nova/nova.conf.d/2.conf", "@/etc/nova/nova.conf", "@/other/a.conf"]);
    assert_eq!(f.nova_option("libvirt", "live_migration_inbound_addr").unwrap().0, "10.0.0.1", "nova.conf is read after the directory");
    assert_eq!(f.nova.get("DEFAULT", "host").map(|(c, e)| (at(&c.path), e.line)), Some(("@/other/a.conf".into(), 2)));
    assert_eq!(f.instances_path, "/srv/a");
    // A key set nowhere goes to the last file read (the real /etc/nova/nova.conf is not
    // among these); a key set goes to the file that decides it.
    assert_eq!(f.nova.file_for("libvirt", "live_migration_tunnelled").map(|c| at(&c.path)).as_deref(), Some("@/other/a.conf"));
    assert_eq!(f.nova.file_for("DEFAULT", "instances_path").map(|c| at(&c.path)).as_deref(), Some("@/etc/nova/nova.conf"));

    // --config-dir given: read where it stands; a missing --config-file is named.
    let f = nova_files_of(&r, &["nova-compute", "--config-dir", "@/other/d", "--config-file=@/etc/nova/nova.conf", "--config-file=@/nope.conf"], "ExecStart nova-compute.service");
    assert_eq!(paths(&f), ["@/other/d/x.conf", "@/etc/nova/nova.conf"]);
    assert_eq!(f.nova.missing.iter().map(|(p, _)| at(p)).collect::<Vec<_>>(), ["@/nope.conf"]);
    assert!(f.nova.evidence().contains("nope.conf cannot be read"), "{}", f.nova.evidence());
    assert_eq!(f.nova.dirs.iter().map(|p| at(p)).collect::<Vec<_>>(), ["@/other/d"]);

    // A wrapper, nova-compute not running: the defaults, and said so. No unit: the same.
    let f = nova_files_of(&r, &[], "wrapper nova-compute.service /etc/init.d/nova-compute");
    assert_eq!(paths(&f).len(), 4);
    assert!(f.nova.evidence().contains("nova-compute is not running and nova-compute.service starts it through /etc/init.d/nova-compute"), "{}", f.nova.evidence());
    let f = nova_files_of(&r, &[], "none");
    assert!(f.nova.evidence().contains("no nova-compute unit found"), "{}", f.nova.evidence());
}
