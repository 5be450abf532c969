use super::Status::*;
use super::testutil::*;
use super::*;

fn stock() -> Fleet {
    Fleet::new(vec![
        ("cmp1", "198.18.42.11", raw("bookworm-socket")),
        ("cmp2", "198.18.42.12", raw("trixie-socket")),
        ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject")),
    ])
}

fn assert_finding(f: &Finding, status: Status, needle: &str) {
    assert_eq!(f.status, status, "{}: {} {:?}", f.id, f.message, f.evidence);
    assert!(f.message.contains(needle), "{}: {:?} lacks {:?}", f.id, f.message, needle);
}

#[test]
fn every_check_has_an_id_and_runs() {
    let fleet = stock();
    let ids: Vec<_> = fleet.findings(0).iter().map(|f| f.id).collect();
    assert_eq!(ids, super::ids());
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
}

#[test]
fn stock_socket_host() {
    let fleet = stock();
    assert_finding(&fleet.finding(0, "ssh.connect"), Pass, "connected");
    assert_finding(&fleet.finding(0, "privilege"), Pass, "root");
    assert_finding(&fleet.finding(0, "libvirt.mode"), Pass, "socket activation");
    let listen = fleet.finding(0, "libvirt.listen");
    assert_finding(&listen, Fail, "libvirtd-tcp.socket is not enabled");
    assert!(listen.message.contains("nothing listens on TCP 16509"));
    assert_finding(&fleet.finding(0, "libvirt.auth"), Fail, "auth_tcp is \"sasl\"");
    assert_finding(&fleet.finding(0, "libvirt.host-uuid"), Pass, "unique");
    assert_finding(&fleet.finding(0, "firewall.libvirt"), Pass, "TCP 16509 accepted from cmp2, cmp3");
    assert_finding(&fleet.finding(0, "firewall.migration"), Pass, "TCP 49152-49215 accepted");
    assert_finding(&fleet.finding(0, "nova.flags"), Pass, "Nova 26 (zed)");
    assert_finding(&fleet.finding(0, "nova.compute"), Warn, "still starting");
    assert_finding(&fleet.finding(0, "net.hostname"), Pass, "cmp1 resolves to 198.18.42.11");
    assert_finding(&fleet.finding(0, "nova.vnc-listen"), Pass, "127.0.0.1");
    assert_finding(&fleet.finding(0, "nova.migration-uri"), Pass, "qemu+tcp");
}

#[test]
fn versions_say_which_direction_fails() {
    let fleet = stock();
    let old = fleet.finding(0, "hypervisor.versions");
    assert_finding(&old, Warn, "migrations from cmp2 (newer) to this host can fail");
    let new = fleet.finding(1, "hypervisor.versions");
    assert_finding(&new, Warn, "migrations from this host to cmp1, cmp3 (older) can fail");
    let two = Fleet::new(vec![("a", "198.18.42.11", raw("bookworm-socket")), ("b", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    assert_finding(&two.finding(0, "hypervisor.versions"), Pass, "same as every peer");
}

#[test]
fn traditional_host_behind_rhel_firewall() {
    let fleet = stock();
    let listen = fleet.finding(2, "libvirt.listen");
    assert_finding(&listen, Fail, "listen_tcp is not set");
    assert!(listen.message.contains("listen_tls is not set"));
    assert!(listen.message.contains("does not run with --listen"));
    assert!(listen.evidence.iter().any(|e| e.starts_with("/etc/sysconfig/libvirtd")), "{:?}", listen.evidence);
    assert_finding(&fleet.finding(2, "libvirt.mode"), Pass, "traditional");
    let fw = fleet.finding(2, "firewall.libvirt");
    assert_finding(&fw, Fail, "TCP 16509 from cmp1 (198.18.42.11), cmp2 (198.18.42.12) is rejected");
    assert_eq!(fw.evidence.len(), 1, "{:?}", fw.evidence);
    assert!(fw.evidence.iter().any(|e| e.contains("-A INPUT -j REJECT --reject-with icmp-host-prohibited")), "{:?}", fw.evidence);
    assert_finding(&fleet.finding(2, "firewall.migration"), Fail, "TCP 49152 from cmp1");
}

#[test]
fn traditional_host_configured_as_the_seed_says() {
    let mut r = raw("bookworm-traditional-reject");
    edit(&mut r, "libvirtd_conf", |t| format!("{t}listen_tls = 0\nlisten_tcp = 1\nauth_tcp = \"none\"\n"));
    edit(&mut r, "envfile:libvirtd.service:/etc/sysconfig/libvirtd", |t| t.replace("#LIBVIRTD_ARGS=\"--listen\"", "LIBVIRTD_ARGS=\"--listen\""));
    edit(&mut r, "listen", |t| format!("{t}LISTEN 0      50           0.0.0.0:16509      0.0.0.0:*\n"));
    let fleet = Fleet::new(vec![("cmp3", "198.18.42.13", r), ("cmp1", "198.18.42.11", raw("bookworm-socket"))]);
    let listen = fleet.finding(0, "libvirt.listen");
    assert_finding(&listen, Pass, "libvirtd --listen with listen_tcp = 1");
    assert_finding(&fleet.finding(0, "libvirt.mode"), Pass, "traditional");
    assert!(listen.evidence.iter().any(|e| e.contains("/etc/sysconfig/libvirtd:9: arguments --listen")), "{:?}", listen.evidence);
    assert_finding(&fleet.finding(0, "libvirt.auth"), Warn, "controls every guest");
}

#[test]
fn seed_recipe_on_socket_activation_breaks_libvirtd() {
    let mut r = raw("bookworm-socket");
    edit(&mut r, "envfile:libvirtd.service:/etc/default/libvirtd", |t| format!("{t}LIBVIRTD_ARGS=\"--listen\"\n"));
    let fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
    let mode = fleet.finding(0, "libvirt.mode");
    assert_finding(&mode, Fail, "--listen parameter not permitted");
    assert!(mode.evidence.iter().any(|e| e.starts_with("/etc/default/libvirtd:")), "{:?}", mode.evidence);
}

#[test]
fn socket_mode_with_tcp_socket_passes() {
    let mut r = raw("bookworm-socket");
    edit(&mut r, "units", |t| {
        t.replace(
            "Id=libvirtd-tcp.socket\nLoadState=loaded\nActiveState=inactive\nSubState=dead",
            "Id=libvirtd-tcp.socket\nLoadState=loaded\nActiveState=active\nSubState=listening",
        )
        .replace("UnitFileState=disabled\nId=libvirtd-tcp.socket", "UnitFileState=enabled\nId=libvirtd-tcp.socket")
    });
    let units = crate::facts::systemd::parse_show(r.ok("units").unwrap());
    let tcp = &units["libvirtd-tcp.socket"];
    assert!(tcp.is_active(), "fixture edit did not apply: {tcp:?}");
    let mut r2 = r.clone();
    edit(&mut r2, "units", |t| {
        // systemctl prints properties in its own order; flip UnitFileState of this unit's block.
        let mut blocks: Vec<String> = t.split("\n\n").map(str::to_string).collect();
        for b in blocks.iter_mut().filter(|b| b.contains("Id=libvirtd-tcp.socket")) {
            *b = b.replace("UnitFileState=disabled", "UnitFileState=enabled");
        }
        blocks.join("\n\n")
    });
    edit(&mut r2, "listen", |t| format!("{t}LISTEN 0 4096 *:16509 *:*\n"));
    let fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r2)]);
    assert_finding(&fleet.finding(0, "libvirt.listen"), Pass, "TCP 16509 is served by libvirtd-tcp.socket");
}

#[test]
fn duplicate_host_uuid_fails_on_both() {
    let a = raw("bookworm-socket");
    let mut b = raw("trixie-socket");
    let uuid = HostFacts::from_raw(a.clone()).host_uuid.unwrap();
    let other = HostFacts::from_raw(b.clone()).host_uuid.unwrap();
    edit(&mut b, "capabilities", |t| t.replace(&other, &uuid));
    let fleet = Fleet::new(vec![("cmp1", "198.18.42.11", a), ("cmp2", "198.18.42.12", b)]);
    assert_finding(&fleet.finding(0, "libvirt.host-uuid"), Fail, "shared with cmp2");
    assert_finding(&fleet.finding(1, "libvirt.host-uuid"), Fail, "shared with cmp1");
}

fn nova(release: Option<&str>, libvirt_section: &str) -> Finding {
    let mut r = raw("bookworm-socket");
    edit(&mut r, "nova_conf", |t| t.replacen("[libvirt]\n", &format!("[libvirt]\n{libvirt_section}"), 1));
    let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
    fleet.hosts[0].0.nova_release = release.map(|r| crate::nova_release::NovaRelease::parse(r).unwrap());
    fleet.finding(0, "nova.flags")
}

#[test]
fn nova_flags_by_release() {
    assert_finding(&nova(Some("mitaka"), ""), Fail, "live_migration_flag is not set");
    let seed = "live_migration_flag = VIR_MIGRATE_UNDEFINE_SOURCE,VIR_MIGRATE_PEER2PEER,VIR_MIGRATE_LIVE\n";
    assert_finding(&nova(Some("mitaka"), seed), Fail, "block_migration_flag is not set");
    let both = format!("{seed}block_migration_flag = VIR_MIGRATE_UNDEFINE_SOURCE, VIR_MIGRATE_PEER2PEER, VIR_MIGRATE_LIVE, VIR_MIGRATE_NON_SHARED_INC\n");
    assert_finding(&nova(Some("mitaka"), &both), Pass, "hold the flags");
    let partial = "live_migration_flag = VIR_MIGRATE_LIVE\nblock_migration_flag = VIR_MIGRATE_LIVE,VIR_MIGRATE_TUNNELLED\n";
    let f = nova(Some("liberty"), partial);
    assert_finding(&f, Fail, "live_migration_flag lacks VIR_MIGRATE_UNDEFINE_SOURCE, VIR_MIGRATE_PEER2PEER");
    assert!(f.message.contains("has VIR_MIGRATE_TUNNELLED"));
    let f = nova(None, seed);
    assert_finding(&f, Warn, "ignores it");
    assert!(f.evidence.iter().any(|e| e.starts_with("/etc/nova/nova.conf:")), "{:?}", f.evidence);
    assert_finding(&nova(Some("newton"), "live_migration_tunnelled = True\n"), Fail, "live_migration_tunnelled = true");
    assert_finding(&nova(None, "live_migration_tunnelled = false\n"), Pass, "not tunnelled");
}

#[test]
fn hostname_on_loopback_names_the_hosts_line() {
    let mut r = raw("bookworm-socket");
    edit(&mut r, "etc_hosts", |t| format!("127.0.1.1 cmp1.example.org cmp1\n{t}"));
    set(&mut r, "resolve_self", "127.0.1.1       STREAM cmp1.example.org\n127.0.1.1       DGRAM\n");
    let fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
    let f = fleet.finding(0, "net.hostname");
    assert_finding(&f, Fail, "resolves to 127.0.1.1 (loopback)");
    assert!(f.evidence.contains(&"/etc/hosts:1: 127.0.1.1 cmp1.example.org cmp1".to_string()), "{:?}", f.evidence);
}

#[test]
fn vnc_and_storage_and_uri() {
    let mut r = raw("bookworm-socket");
    edit(&mut r, "nova_conf", |t| {
        t.replacen("[vnc]\n", "[vnc]\nserver_listen = 198.18.42.11\n", 1)
            .replacen("[libvirt]\n", "[libvirt]\nlive_migration_scheme = ssh\n", 1)
    });
    set(&mut r, "instances_mount", "nfs4 filer:/nova /var/lib/nova/instances\n");
    let fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
    assert_finding(&fleet.finding(0, "nova.vnc-listen"), Fail, "QEMU fails to start on the destination");
    assert_finding(&fleet.finding(0, "storage.instances"), Fail, "shared storage (nfs4)");
    assert_finding(&fleet.finding(0, "nova.migration-uri"), Fail, "qemu+ssh");
}

#[test]
fn drop_policy_and_peer_restricted_rules() {
    let mut r = raw("bookworm-socket");
    set(&mut r, "iptables_save", "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -s 198.18.42.12/32 -p tcp -m tcp --dport 16509 -j ACCEPT\n-A INPUT -s 198.18.42.12/32 -p tcp -m multiport --dports 49152:49215 -j ACCEPT\nCOMMIT\n");
    let fleet = Fleet::new(vec![
        ("cmp1", "198.18.42.11", r),
        ("cmp2", "198.18.42.12", raw("trixie-socket")),
        ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject")),
    ]);
    let f = fleet.finding(0, "firewall.libvirt");
    assert_finding(&f, Fail, "TCP 16509 from cmp3 (198.18.42.13) is dropped");
    assert!(!f.message.contains("cmp2"));
    assert!(f.evidence.iter().any(|e| e.contains("DROP by policy of INPUT")), "{:?}", f.evidence);
}

#[test]
fn skip_list_and_unreachable() {
    let mut fleet = stock();
    fleet.skip = vec!["nova.compute".into()];
    assert_finding(&fleet.finding(0, "nova.compute"), Skip, "skipped by the inventory");
    let u = unreachable("connection refused at 198.18.42.99:22", &[]);
    assert_eq!(u[0].status, Fail);
    assert!(u[1..].iter().all(|f| f.status == Skip));
    let p = not_privileged("connected", "sudo requires a password", &[]);
    assert_eq!((p[0].status, p[1].status), (Pass, Fail));
    assert_eq!((p[2].id, p[2].status), (FACTS, Skip));
    let f = facts_failed("connected", "the facts script failed: exit status 1", &[]);
    assert_eq!(f.iter().map(|f| (f.id, f.status)).take(3).collect::<Vec<_>>(), vec![(SSH_CONNECT, Pass), (PRIVILEGE, Skip), (FACTS, Fail)]);
    assert_eq!(f[2].message, "the facts script failed: exit status 1");
    assert!(f[3..].iter().all(|f| f.status == Skip && f.message == "not checked: the facts script failed"));
    assert_finding(&fleet.finding(0, FACTS), Pass, "the facts script ran");
}

#[test]
fn traditional_mode_with_idle_timeout_fails() {
    // Debian's unit passes `--timeout 120`; with the sockets masked nothing restarts libvirtd.
    let mut r = raw("bookworm-traditional-reject");
    edit(&mut r, "units", |t| t.replace("Id=libvirtd.service", "Environment=\"LIBVIRTD_ARGS=--timeout 120\"\nId=libvirtd.service"));
    let fleet = Fleet::new(vec![("cmp3", "198.18.42.13", r)]);
    assert_finding(&fleet.finding(0, "libvirt.mode"), Fail, "traditional mode with --timeout 120");
}

#[test]
fn seed_recipe_on_a_real_socket_host() {
    // Lab host booted with the seed's recipe on Debian 12: libvirtd dies.
    let fleet = Fleet::new(vec![("cmp5", "198.18.42.15", raw("bookworm-seed"))]);
    assert_finding(&fleet.finding(0, "libvirt.mode"), Fail, "--listen");
    assert_finding(&fleet.finding(0, "libvirt.auth"), Warn, "auth_tcp = \"none\"");
    assert_finding(&fleet.finding(0, "libvirt.host-uuid"), Warn, "did not report");
}

#[test]
fn drop_policy_host() {
    let fleet = Fleet::new(vec![("cmp4", "198.18.42.14", raw("trixie-traditional-drop")), ("cmp1", "198.18.42.11", raw("bookworm-socket"))]);
    let f = fleet.finding(0, "firewall.migration");
    assert_finding(&f, Fail, "TCP 49152 from cmp1 (198.18.42.11) is dropped");
    assert!(f.evidence.iter().any(|e| e.contains("DROP by policy of INPUT")), "{:?}", f.evidence);
    assert_finding(&fleet.finding(0, "libvirt.mode"), Pass, "traditional");
}

#[test]
fn allowed_sources_are_probed_too() {
    let mut fleet = Fleet::new(vec![("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    let alone = fleet.finding(0, "firewall.libvirt");
    assert_finding(&alone, Fail, "from any remote host (203.0.113.1)");
    fleet.policy.allowed_sources = vec!["192.0.2.0/24".into()];
    assert_finding(&fleet.finding(0, "firewall.libvirt"), Fail, "from allowed source 192.0.2.0/24 (192.0.2.0)");
}

#[test]
fn unreached_hosts_still_count_as_peers_for_the_firewall() {
    // cmp1 could not be reached this run; cmp3 must still admit it.
    let fleet = Fleet::new(vec![("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    let gone = spec("cmp1", "198.18.42.11");
    let views = fleet.views();
    let ctx = Ctx { unreached: vec![&gone], ..fleet.ctx(&views, 0) };
    assert_eq!(ctx.peer_sources(), vec![("cmp1".to_string(), "198.18.42.11".parse().unwrap())]);
    let found = run_host(&ctx, &[]);
    let fw = found.iter().find(|f| f.id == "firewall.libvirt").unwrap();
    assert_finding(fw, Fail, "TCP 16509 from cmp1 (198.18.42.11) is rejected");
    // A host known only by name, and not reached, gives no address to test.
    let named = spec("cmp9", "cmp9.example.org");
    let ctx = Ctx { unreached: vec![&named], ..fleet.ctx(&views, 0) };
    assert!(ctx.peer_sources().is_empty());
}

#[test]
fn checks_read_the_same_without_file_texts() {
    // doctor drops the files' texts after parsing (memory flat in the number of
    // hosts); every finding must stay the same, evidence and line numbers included.
    let hosts = || {
        vec![
            ("cmp1", "198.18.42.11", raw("bookworm-socket")),
            ("cmp2", "198.18.42.12", raw("trixie-socket")),
            ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject")),
            ("cmp4", "198.18.42.14", raw("trixie-traditional-drop")),
            ("cmp5", "198.18.42.15", raw("bookworm-seed")),
        ]
    };
    let full = Fleet::new(hosts());
    let mut lean = Fleet::new(hosts());
    for (_, f) in &mut lean.hosts {
        let before = f.nova.files.first().map(|c| c.text().len());
        f.drop_texts();
        assert!(before.unwrap_or(0) > 100_000, "the fixture's nova.conf is the distribution's long sample");
        assert_eq!(f.nova.files.first().map(|c| c.text().len()), Some(0));
    }
    for i in 0..full.hosts.len() {
        let (a, b) = (full.findings(i), lean.findings(i));
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "host {i}");
    }
}

/// A firewalld host (Debian 13 lab host, stock RHEL-like zone public on eth0)
/// and two peers on its network.
fn firewalld_fleet(fixture: &str) -> Fleet {
    Fleet::new(vec![
        ("cmp2", "198.18.47.12", raw(fixture)),
        ("cmp1", "198.18.47.11", raw("bookworm-socket")),
        ("cmp3", "198.18.47.13", raw("bookworm-traditional-reject")),
    ])
}

#[test]
fn firewalld_stock_zone_rejects_peers() {
    let fleet = firewalld_fleet("trixie-socket-firewalld");
    let f = fleet.finding(0, "firewall.libvirt");
    assert_finding(&f, Fail, "TCP 16509 from cmp1 (198.18.47.11), cmp3 (198.18.47.13) is rejected by firewalld zone public");
    assert!(f.evidence.contains(&"firewalld zone public (interface eth0): TCP 16509 from 198.18.47.11: REJECT by zone target default".to_string()), "{:?}", f.evidence);
    assert_finding(&fleet.finding(0, "firewall.migration"), Fail, "TCP 49152 from cmp1 (198.18.47.11), cmp3 (198.18.47.13) is rejected by firewalld zone public");
}

#[test]
fn firewalld_zones_sources_and_runtime_only_ports() {
    // See src/firewalld/tests.rs for what the custom configuration holds.
    let fleet = firewalld_fleet("trixie-socket-firewalld-custom");
    let f = fleet.finding(0, "firewall.libvirt");
    assert_finding(&f, Pass, "TCP 16509 accepted by firewalld from cmp1, cmp3");
    assert!(f.evidence.iter().any(|e| e.starts_with("firewalld zone internal (source 198.18.47.13/32): TCP 16509 from 198.18.47.13: ACCEPT by service libvirt (16509/tcp)")), "{:?}", f.evidence);
    // cmp3 lands in internal (by source), which does not open the migration range;
    // cmp1 gets it from public's runtime-only port.
    let m = fleet.finding(0, "firewall.migration");
    assert_finding(&m, Fail, "TCP 49152 from cmp3 (198.18.47.13) is rejected by firewalld zone internal");
    let mut fleet = fleet;
    fleet.hosts.remove(2);
    assert_finding(&fleet.finding(0, "firewall.migration"), Warn, "accepted from cmp1 (198.18.47.11) now, but not by firewalld's permanent configuration");
}

#[test]
fn firewalld_not_running_falls_back_to_iptables() {
    let mut r = raw("trixie-socket-firewalld");
    crate::checks::testutil::set(&mut r, "firewalld_state", "not running\n");
    r.records.get_mut("firewalld_state").unwrap().status = 252;
    let fleet = Fleet::new(vec![("cmp2", "198.18.47.12", r), ("cmp1", "198.18.47.11", raw("bookworm-socket"))]);
    assert!(matches!(fleet.hosts[0].1.firewalld, Some(crate::facts::Firewalld::NotRunning(ref s)) if s == "not running"));
    assert_finding(&fleet.finding(0, "firewall.libvirt"), Pass, "TCP 16509 accepted from cmp1");
    // Running, but the listing is unreadable: said so, not guessed.
    let mut r = raw("trixie-socket-firewalld");
    edit(&mut r, "firewalld_zones", |t| t.replacen("  ports: ", "  ports: 65536/tcp", 1));
    let fleet = Fleet::new(vec![("cmp2", "198.18.47.12", r), ("cmp1", "198.18.47.11", raw("bookworm-socket"))]);
    assert_finding(&fleet.finding(0, "firewall.libvirt"), Warn, "firewalld runs but its zones could not be read: firewall-cmd --list-all-zones: line 9: zone block: bad port `65536/tcp`");
}

#[test]
fn extreme_numbers_from_a_host_are_no_panic() {
    // MemAvailable near u64::MAX (in KiB) used to overflow when shown in GiB.
    let mut r = raw("bookworm-socket");
    edit(&mut r, "meminfo", |t| {
        t.lines().map(|l| if l.starts_with("MemAvailable:") { "MemAvailable:   18446744073709551615 kB".to_string() } else { l.to_string() }).collect::<Vec<_>>().join("\n")
    });
    let fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
    let f = fleet.finding(0, "storage.instances");
    assert!(f.evidence.iter().any(|e| e.contains("MemAvailable 17179869184.0 GiB")), "{:?}", f.evidence);
}

fn nft_fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/nftables/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The lab's native nftables host (cmp6) with two peers.
fn nft_fleet(cmp6: crate::facts::RawFacts) -> Fleet {
    Fleet::new(vec![
        ("cmp6", "198.18.42.16", cmp6),
        ("cmp1", "198.18.42.11", raw("bookworm-socket")),
        ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject")),
    ])
}

#[test]
fn native_nftables_policy_drop_fails_naming_table_and_chain() {
    // iptables-save shows nothing there: before nftables was judged, "ACCEPT by policy
    // of INPUT" passed both checks.
    let fleet = nft_fleet(raw("bookworm-socket-nftables"));
    for (id, port) in [("firewall.libvirt", 16509), ("firewall.migration", 49152)] {
        let f = fleet.finding(0, id);
        assert_finding(&f, Fail, &format!("TCP {port} from cmp1 (198.18.42.11), cmp3 (198.18.42.13) is dropped by nftables chain input of table inet filter (connections hang"));
        assert!(f.evidence.contains(&format!("nft: TCP {port} from 198.18.42.11: DROP by policy of chain input (table inet filter)")), "{:?}", f.evidence);
        assert!(!f.evidence.iter().any(|e| e.contains("ACCEPT by policy of INPUT")), "{:?}", f.evidence);
    }
}

#[test]
fn iptables_nft_rules_are_judged_once() {
    // The RHEL REJECT host's rules are iptables-nft's: they show in iptables-save and in
    // nft. Judged from iptables-save only: the same finding as without nft.
    let mut r = raw("bookworm-traditional-reject");
    set(&mut r, "nft_json", &nft_fixture("iptables-nft-reject.json"));
    set(&mut r, "nft_ruleset", &nft_fixture("iptables-nft-reject.txt"));
    let with = stock_with(2, r);
    let f = with.finding(2, "firewall.libvirt");
    assert_finding(&f, Fail, "TCP 16509 from cmp1 (198.18.42.11), cmp2 (198.18.42.12) is rejected (\"No route to host\")");
    assert_eq!(f, stock().finding(2, "firewall.libvirt"));
    assert!(!f.evidence.iter().any(|e| e.starts_with("nft:")), "{:?}", f.evidence);
}

fn stock_with(i: usize, r: crate::facts::RawFacts) -> Fleet {
    let mut fleet = stock();
    fleet.hosts[i].1 = HostFacts::from_raw(r);
    fleet
}

#[test]
fn iptables_legacy_and_nftables_are_both_judged() {
    // A legacy iptables REJECT ruleset (iptables-save without "nf_tables") beside the
    // native nftables drop policy: both refuse, both are named.
    let mut r = raw("bookworm-socket-nftables");
    set(&mut r, "iptables_save", "# Generated by iptables-save v1.8.9 on Tue Dec  1 16:06:56 2026\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 16509 -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n");
    let f = nft_fleet(r).finding(0, "firewall.libvirt");
    assert_finding(&f, Fail, "TCP 16509 from cmp1 (198.18.42.11), cmp3 (198.18.42.13) is rejected (\"No route to host\"); TCP 16509 from cmp1 (198.18.42.11), cmp3 (198.18.42.13) is dropped by nftables chain input");
    assert!(f.evidence.iter().any(|e| e.starts_with("iptables-save: REJECT by line 4")), "{:?}", f.evidence);
    assert!(f.evidence.iter().any(|e| e.starts_with("nft: TCP 16509 from 198.18.42.11: DROP by policy")), "{:?}", f.evidence);
    // An accept in iptables does not open what nftables drops either.
    let mut r = raw("bookworm-socket-nftables");
    set(&mut r, "iptables_save", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 16509 -j ACCEPT\nCOMMIT\n");
    assert_finding(&nft_fleet(r).finding(0, "firewall.libvirt"), Fail, "dropped by nftables chain input");
}

#[test]
fn an_nftables_rule_not_understood_is_a_warning_naming_it() {
    // A rule before the drop policy that matches on `fib` (not understood): accepted or
    // dropped, migready cannot tell: a warning that says so, never a pass.
    let fib = r#"{"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}"#;
    let mut r = raw("bookworm-socket-nftables");
    edit(&mut r, "nft_json", |t| {
        t.replace(
            r#"{"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 9,"#,
            &format!(r#"{{"rule": {{"family": "inet", "table": "filter", "chain": "input", "handle": 10, "expr": [{fib}, {{"accept": null}}]}}}}, {{"rule": {{"family": "inet", "table": "filter", "chain": "input", "handle": 9,"#),
        )
    });
    edit(&mut r, "nft_ruleset", |t| t.replace("# handle 9\n", "# handle 9\n\t\tfib daddr type local accept # handle 10\n"));
    let f = nft_fleet(r).finding(0, "firewall.libvirt");
    assert_finding(&f, Warn, "TCP 16509 from cmp1 (198.18.42.11), cmp3 (198.18.42.13): nftables verdict unknown in chain input of table inet filter: rule handle 10 in chain input (fib daddr type local accept): expression {\"fib\"");
    assert!(f.evidence.iter().any(|e| e.starts_with("nft: TCP 16509 from 198.18.42.11: verdict unknown in chain input (table inet filter): rule handle 10")), "{:?}", f.evidence);
}

#[test]
fn exposure_of_a_host_without_firewall_and_auth_none_fails() {
    // The seed's recipe (auth_tcp = "none") on a host with no firewall at all (as the
    // lab's hosts say it: firewall-cmd not installed).
    let mut seed = raw("bookworm-seed");
    raw_failed(&mut seed, "firewalld_state", 127, "sh: 1: firewall-cmd: not found");
    let fleet = Fleet::new(vec![("cmp5", "198.18.42.15", seed), ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    let f = fleet.finding(0, "libvirt.exposure");
    assert_finding(&f, Fail, "TCP 16509 is open to any address (nothing filters it: no firewall rules at all) and auth_tcp = \"none\"");
    assert!(f.message.contains("controls every guest") && f.message.contains("the migration range TCP 49152-49215 is open to any address"), "{}", f.message);
    assert!(f.evidence.iter().any(|e| e.contains("203.0.113.1") && e.contains("ACCEPT by policy of INPUT")), "{:?}", f.evidence);
    // firewall.libvirt passes (the peers get through) and says anyone else does too.
    assert_finding(&fleet.finding(0, "firewall.libvirt"), Pass, "TCP 16509 accepted from cmp3, and from any address (nothing filters it");
    // The REJECT host: nothing beyond the peers (the peers themselves are refused too,
    // which is firewall.libvirt's finding).
    let f = fleet.finding(1, "libvirt.exposure");
    assert_finding(&f, Pass, "TCP 16509 is not open beyond the peers (an address outside them is refused)");
    assert!(f.message.contains("the migration range TCP 49152-49215 is not open beyond the peers"), "{}", f.message);
    assert!(!fleet.finding(1, "firewall.libvirt").message.contains("any address"));
}

#[test]
fn exposure_follows_auth_and_policy() {
    // Stock socket host: no firewall, auth_tcp unset ("sasl"), policy "none": fix would
    // make it exposed, which doctor says before.
    let mut fleet = stock();
    let f = fleet.finding(0, "libvirt.exposure");
    assert_finding(&f, Warn, "TCP 16509 is open to any address (nothing filters it: no firewall rules at all); with the policy's auth_tcp = \"none\" (fix sets it) anyone");
    fleet.policy.auth_tcp = crate::inventory::AuthTcp::Sasl;
    assert_finding(&fleet.finding(0, "libvirt.exposure"), Pass, "auth_tcp = \"sasl\" asks for credentials");
    // firewalld (rejects the rest) and DROP policy hosts: filtered.
    let fleet = Fleet::new(vec![
        ("cmp2", "198.18.42.12", raw("trixie-socket-firewalld")),
        ("cmp4", "198.18.42.14", raw("trixie-traditional-drop")),
        ("cmp6", "198.18.42.16", raw("bookworm-socket-nftables")),
    ]);
    for i in 0..3 {
        assert_finding(&fleet.finding(i, "libvirt.exposure"), Pass, "TCP 16509 is not open beyond the peers");
    }
}

#[test]
fn exposure_through_rules_that_accept_everyone_and_allow_lists() {
    // A ruleset that exists but accepts: ssh allowed, policy ACCEPT.
    let mut r = raw("bookworm-seed");
    set(&mut r, "iptables_save", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n");
    let fleet = Fleet::new(vec![("cmp5", "198.18.42.15", r), ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    assert_finding(&fleet.finding(0, "libvirt.exposure"), Fail, "TCP 16509 is open to any address (the firewall rules accept it from 203.0.113.1, which is no peer)");
    // An allow-list covering the first outsider address: another one is probed, and the
    // allow-list is named.
    let mut r = raw("bookworm-traditional-reject");
    edit(&mut r, "iptables_save", |s| s.replace("-A INPUT -j REJECT", "-A INPUT -s 203.0.113.0/24 -j ACCEPT\n-A INPUT -j REJECT"));
    let mut fleet = Fleet::new(vec![("cmp3", "198.18.42.13", r)]);
    // auth_tcp is unset ("sasl") there, the policy asks for "none": a warning.
    assert_finding(&fleet.finding(0, "libvirt.exposure"), Warn, "open to any address");
    fleet.policy.allowed_sources = vec!["203.0.113.0/24".into()];
    let f = fleet.finding(0, "libvirt.exposure");
    assert_finding(&f, Pass, "TCP 16509 is not open beyond the peers and policy.allowed_sources (203.0.113.0/24)");
    assert!(f.evidence.iter().any(|e| e.contains("198.51.100.1")), "{:?}", f.evidence);
}

/// Replace (or add) one record with a failed command.
fn raw_failed(raw: &mut crate::facts::RawFacts, name: &str, status: i32, stderr: &str) {
    raw.records.insert(name.into(), crate::facts::Record { status, stdout: String::new(), stderr: stderr.into() });
}

#[test]
fn transport_tls_is_what_the_libvirt_and_nova_checks_expect() {
    use crate::inventory::Transport;
    let mut fleet = stock();
    fleet.policy.transport = Transport::Tls;
    // cmp1 keeps qemu+tcp by its own entry; cmp2 and cmp3 follow the policy.
    fleet.hosts[0].0.transport = Some(Transport::Tcp);
    assert_finding(&fleet.finding(0, "libvirt.listen"), Fail, "libvirtd-tcp.socket is not enabled");
    assert_finding(&fleet.finding(0, "nova.migration-uri"), Pass, "qemu+tcp");
    let listen = fleet.finding(1, "libvirt.listen");
    assert_finding(&listen, Fail, "transport tls: libvirtd-tls.socket is not enabled");
    assert!(listen.message.contains("nothing listens on TCP 16514"), "{}", listen.message);
    // Traditional: listen_tls defaults to 1, --listen is still needed.
    let listen = fleet.finding(2, "libvirt.listen");
    assert_finding(&listen, Fail, "transport tls: libvirtd does not run with --listen");
    assert!(!listen.message.contains("listen_tls") && listen.evidence.iter().any(|e| e.contains("listen_tls not set (default 1)")), "{listen:?}");
    // The firewall is judged on 16514.
    assert_finding(&fleet.finding(2, "firewall.libvirt"), Fail, "TCP 16514 from cmp1 (198.18.42.11), cmp2 (198.18.42.12) is rejected");
    // auth_tls: the certificate authenticates; unless libvirt verifies none.
    assert_finding(&fleet.finding(1, "libvirt.auth"), Pass, "auth_tls = \"none\": a client on TCP 16514 needs a certificate the CA signed");
    // Nova: native TLS passes, the scheme alone warns, the default (tcp) fails.
    assert_finding(&fleet.finding(1, "nova.migration-uri"), Fail, "not the qemu+tls the transport policy asks");
    let nova_with = |section: &str| {
        let mut r = raw("trixie-socket");
        edit(&mut r, "nova_conf", |t| t.replacen("[libvirt]\n", &format!("[libvirt]\n{section}"), 1));
        let mut f = Fleet::new(vec![("cmp2", "198.18.42.12", r)]);
        f.policy.transport = Transport::Tls;
        f.finding(0, "nova.migration-uri")
    };
    // Both: qemu+tls and the streams in TLS. Native TLS alone leaves Nova on qemu+tcp (as
    // seen on the lab's Zed cloud), the scheme alone leaves the streams in clear.
    assert_finding(&nova_with("live_migration_scheme = tls\nlive_migration_with_native_tls = true\n"), Pass, "Nova migrates over qemu+tls (live_migration_scheme = tls), the migration streams in TLS");
    assert_finding(&nova_with("live_migration_with_native_tls = true\n"), Fail, "live_migration_scheme not set (default tcp): Nova opens qemu+tcp, not the qemu+tls the transport policy asks (live_migration_with_native_tls = true puts only QEMU's streams in TLS)");
    assert_finding(&nova_with("live_migration_scheme = tls\n"), Warn, "the migration streams not");
    assert_finding(&nova_with("live_migration_uri = qemu+tls://%s/system\nlive_migration_with_native_tls = true\n"), Pass, "qemu+tls (live_migration_uri = qemu+tls://%s/system)");
    assert_finding(&nova_with("live_migration_uri = qemu+tcp://%s/system\n"), Fail, "Nova opens qemu+tcp, not the qemu+tls");
}

#[test]
fn transport_tls_exposure_and_auth_without_certificate_checks() {
    use crate::inventory::Transport;
    // The seed host (auth_tcp = "none", no firewall) under tls: 16514 is open to any
    // address, but a client needs a certificate: a pass that says both.
    let mut seed = raw("bookworm-seed");
    raw_failed(&mut seed, "firewalld_state", 127, "sh: 1: firewall-cmd: not found");
    let mut fleet = Fleet::new(vec![("cmp5", "198.18.42.15", seed.clone())]);
    fleet.policy.transport = Transport::Tls;
    assert_finding(&fleet.finding(0, "libvirt.exposure"), Pass, "TCP 16514 is open to any address (nothing filters it: no firewall rules at all); a client needs a certificate the CA signed");
    // ... unless libvirt checks no certificate.
    edit(&mut seed, "libvirtd_conf", |t| format!("{t}\ntls_no_verify_certificate = 1\n"));
    let mut fleet = Fleet::new(vec![("cmp5", "198.18.42.15", seed)]);
    fleet.policy.transport = Transport::Tls;
    assert_finding(&fleet.finding(0, "libvirt.exposure"), Fail, "tls_no_verify_certificate = 1 with auth_tls = \"none\": anyone who reaches it controls every guest");
    assert_finding(&fleet.finding(0, "libvirt.auth"), Fail, "any client that reaches TCP 16514 controls every guest on this host, certificate or not");
}

#[test]
fn exposure_after_iptables_rules_were_flushed_is_still_nothing_filters() {
    // iptables-nft leaves an empty `ip filter` table (ACCEPT policies, no rules) after
    // its rules are deleted, as on the lab's cmp1 after tests/jump_lab.rs: nothing filters.
    let mut r = raw("bookworm-seed");
    raw_failed(&mut r, "firewalld_state", 127, "sh: 1: firewall-cmd: not found");
    set(&mut r, "iptables_save", "# Generated by iptables-save v1.8.9 (nf_tables)\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
    let nft = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "ip", "name": "filter", "handle": 1}}, {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}, {"chain": {"family": "ip", "table": "filter", "name": "OUTPUT", "handle": 3, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}}]}"#;
    set(&mut r, "nft_json", nft);
    let f = HostFacts::from_raw(r.clone());
    assert!(f.nft_rules().is_some_and(|n| n.tables.len() == 1), "{:?}", f.nftables);
    let fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r), ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    assert_finding(&fleet.finding(0, "libvirt.exposure"), Fail, "TCP 16509 is open to any address (nothing filters it: no firewall rules at all)");
}

#[test]
fn exposure_over_one_family_is_exposure() {
    // ip6tables rejects, iptables has nothing: open to anyone over IPv4.
    let mut r = raw("bookworm-seed");
    raw_failed(&mut r, "firewalld_state", 127, "sh: 1: firewall-cmd: not found");
    set(&mut r, "ip6tables_save", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j REJECT\nCOMMIT\n");
    let mut fleet = Fleet::new(vec![("cmp5", "198.18.42.15", r), ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    fleet.hosts[0].1.addresses.push("2001:db8:42::15".parse().unwrap());
    let f = fleet.finding(0, "libvirt.exposure");
    assert_finding(&f, Fail, "TCP 16509 is open to any address (the firewall rules accept it from 203.0.113.1, which is no peer)");
    assert!(f.evidence.iter().any(|e| e.contains("probed from 2001:db8::1")), "{:?}", f.evidence);
}

mod tls_certificates {
    use super::*;
    use crate::ca::{Ca, Kind};
    use crate::inventory::Transport;

    fn new_ca() -> (tempfile::TempDir, Ca) {
        let d = tempfile::tempdir().unwrap();
        let (c, k) = crate::ca::init(d.path()).unwrap();
        let ca = Ca::load(&c, &k).unwrap();
        (d, ca)
    }

    /// cmp1 (bookworm socket, hostname cmp1) with the given server certificate names and
    /// validity, a client certificate, and the CA.
    fn finding(ca: &Ca, names: &[&str], not_after_days: i64, tls: bool) -> Finding {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let now = time::OffsetDateTime::now_utc();
        let s = ca.issue_valid("cmp1", &names, Kind::Server, now - time::Duration::days(400), now + time::Duration::days(not_after_days)).unwrap();
        let c = ca.issue("cmp1", &names, Kind::Client, 365).unwrap();
        let mut r = raw("bookworm-socket");
        set(&mut r, crate::facts::PKI_CACERT, &ca.cert_pem);
        set(&mut r, crate::facts::PKI_SERVERCERT, &s.cert_pem);
        set(&mut r, crate::facts::PKI_CLIENTCERT, &c.cert_pem);
        // The host's clock: now (the fixture's date is from when it was captured).
        set(&mut r, "date", &format!("{}\n", now.unix_timestamp()));
        let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
        if tls {
            fleet.policy.transport = Transport::Tls;
        }
        fleet.finding(0, "tls.certificates")
    }

    #[test]
    fn good_expired_expiring_wrong_name_other_ca() {
        let (_d, ca) = new_ca();
        assert_finding(&finding(&ca, &["cmp1"], 100, false), Skip, "transport tcp");
        let f = finding(&ca, &["cmp1", "198.18.42.11"], 100, true);
        assert_finding(&f, Pass, "server and client certificates signed by the host's CA");
        assert!(f.evidence.iter().any(|e| e.contains("names cmp1, 198.18.42.11")), "{:?}", f.evidence);
        assert_finding(&finding(&ca, &["cmp1"], -1, true), Fail, "/etc/pki/libvirt/servercert.pem expired on");
        assert_finding(&finding(&ca, &["cmp1"], 10, true), Warn, "/etc/pki/libvirt/servercert.pem expires on");
        assert_finding(&finding(&ca, &["wrong.example.org"], 100, true), Fail, "/etc/pki/libvirt/servercert.pem does not name cmp1 (peers connect to it so; it names wrong.example.org)");
        // Signed by another CA than the host's.
        let (_e, other) = new_ca();
        let now = time::OffsetDateTime::now_utc();
        let s = other.issue_valid("cmp1", &["cmp1".into()], Kind::Server, now - time::Duration::days(1), now + time::Duration::days(100)).unwrap();
        let mut r = raw("bookworm-socket");
        set(&mut r, crate::facts::PKI_CACERT, &ca.cert_pem);
        set(&mut r, crate::facts::PKI_SERVERCERT, &s.cert_pem);
        let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
        fleet.policy.transport = Transport::Tls;
        let f = fleet.finding(0, "tls.certificates");
        assert_finding(&f, Fail, "servercert.pem does not verify against /etc/pki/CA/cacert.pem");
        assert!(f.message.contains("no /etc/pki/libvirt/clientcert.pem"), "{}", f.message);
        // No CA at all.
        let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", raw("bookworm-socket"))]);
        fleet.policy.transport = Transport::Tls;
        assert_finding(&fleet.finding(0, "tls.certificates"), Fail, "no /etc/pki/CA/cacert.pem");
    }
}

/// migready's accept rules that are live but not persisted: a warning that they are lost
/// at the next boot (issue 9: "where rules cannot be persisted, doctor reports exactly
/// that"); persisted, a pass; not migready's, nothing said.
#[test]
fn firewall_rules_migready_added_but_nothing_persists_are_a_warning() {
    let rule = "-A INPUT -s 198.18.42.11/32 -p tcp -m tcp --dport 16509 -m comment --comment \"migready: libvirt from cmp1\" -j ACCEPT\n";
    let live = |r: &mut crate::facts::raw::RawFacts| edit(r, "iptables_save", |t| t.replacen("-A INPUT -j REJECT", &format!("{rule}-A INPUT -j REJECT"), 1));
    let judge = |r: crate::facts::raw::RawFacts| Fleet::new(vec![("cmp1", "198.18.42.11", raw("bookworm-socket")), ("cmp3", "198.18.42.13", r)]).finding(1, "firewall.libvirt");
    // Live and in /etc/sysconfig/iptables: a pass.
    let mut r = raw("bookworm-traditional-reject");
    live(&mut r);
    edit(&mut r, "persist:/etc/sysconfig/iptables", |t| t.replacen("-A INPUT -j REJECT", &format!("{rule}-A INPUT -j REJECT"), 1));
    assert_finding(&judge(r.clone()), Pass, "TCP 16509 accepted from cmp1");
    // Live only: a warning naming the file and the rule.
    let mut r = raw("bookworm-traditional-reject");
    live(&mut r);
    let c = judge(r.clone());
    assert_finding(&c, Warn, "TCP 16509 accepted from cmp1; but /etc/sysconfig/iptables lacks \"migready: libvirt from cmp1\" (live only): lost at the next boot");
    // No file persists iptables rules at all.
    r.records.remove("persist:/etc/sysconfig/iptables");
    assert_finding(&judge(r), Warn, "nothing on this host persists iptables rules (no /etc/sysconfig/iptables or /etc/iptables/rules.v4), so migready's 1 accept rule(s) for it are live only: lost at the next boot");
    // Someone else's accept, not persisted: not migready's to say.
    let mut r = raw("bookworm-traditional-reject");
    edit(&mut r, "iptables_save", |t| t.replacen("-A INPUT -j REJECT", "-A INPUT -s 198.18.42.11/32 -p tcp -m tcp --dport 16509 -j ACCEPT\n-A INPUT -j REJECT", 1));
    assert_finding(&judge(r), Pass, "TCP 16509 accepted from cmp1");
}

#[test]
fn legacy_iptables_rules_beside_the_nf_tables_variant_are_judged_too() {
    let legacy = std::fs::read_to_string(format!("{}/tests/fixtures/iptables/legacy-reject.rules", env!("CARGO_MANIFEST_DIR"))).unwrap();
    // iptables-save (the nf_tables variant) shows nothing, iptables-legacy-save a REJECT:
    // the rule still refuses, and is named.
    let mut r = raw("bookworm-socket");
    set(&mut r, "iptables_legacy_save", &legacy);
    let f = stock_with(0, r).finding(0, "firewall.libvirt");
    assert_finding(&f, Fail, "TCP 16509 from cmp2 (198.18.42.12), cmp3 (198.18.42.13) is rejected by legacy iptables rules (\"No route to host\")");
    assert!(f.evidence.iter().any(|e| e.starts_with("iptables-legacy-save: REJECT by line 10")), "{:?}", f.evidence);
    // An accept in the nf_tables variant does not open what the legacy rules refuse.
    let mut r = raw("bookworm-socket");
    set(&mut r, "iptables_save", "# Generated by iptables-save v1.8.9 (nf_tables) on Tue Dec  1 22:50:00 2026\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 16509 -j ACCEPT\nCOMMIT\n");
    set(&mut r, "iptables_legacy_save", &legacy);
    assert_finding(&stock_with(0, r).finding(0, "firewall.libvirt"), Fail, "is rejected by legacy iptables rules");
    // iptables-save is the legacy variant: it shows the same rules, judged once.
    let mut r = raw("bookworm-socket");
    set(&mut r, "iptables_save", &legacy);
    set(&mut r, "iptables_legacy_save", &legacy);
    let f = stock_with(0, r).finding(0, "firewall.libvirt");
    assert_finding(&f, Fail, "TCP 16509 from cmp2 (198.18.42.12), cmp3 (198.18.42.13) is rejected (\"No route to host\")");
    assert!(!f.message.contains("legacy") && !f.evidence.iter().any(|e| e.starts_with("iptables-legacy-save")), "{f:?}");
    // No x_tables in the kernel (iptables-legacy-save fails), or no legacy rules: as before.
    for rec in [
        crate::facts::Record { status: 1, stdout: String::new(), stderr: "iptables-legacy-save v1.8.9 (legacy): Cannot initialize: Table does not exist".into() },
        crate::facts::Record { status: 0, stdout: String::new(), stderr: String::new() },
    ] {
        let mut r = raw("bookworm-socket");
        r.records.insert("iptables_legacy_save".into(), rec);
        assert_eq!(stock_with(0, r).finding(0, "firewall.libvirt"), stock().finding(0, "firewall.libvirt"));
    }
}
