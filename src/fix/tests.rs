//! Plans over fixture facts (facts gathered from lab hosts, edited per case).

use super::*;
use crate::checks::testutil::{edit, raw, Fleet};

fn plan_of(fleet: &Fleet, i: usize) -> HostPlan {
    let views = fleet.views();
    plan(&fleet.ctx(&views, i), &fleet.findings(i), None)
}

fn edit_of<'a>(p: &'a HostPlan, path: &str) -> (&'a str, &'a str) {
    p.steps
        .iter()
        .find_map(|s| match s {
            Step::Edit { path: p2, original, new, .. } if p2 == path => Some((original.as_deref().unwrap_or(""), new.as_str())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no edit of {path} in {:#?}", p.steps))
}

/// Lines that differ between two texts of the same length in lines.
fn changed_lines(a: &str, b: &str) -> Vec<String> {
    let diff = similar::TextDiff::from_lines(a, b);
    diff.iter_all_changes().filter(|c| c.tag() != similar::ChangeTag::Equal).map(|c| format!("{}{}", c.tag(), c.value().trim_end())).collect()
}

fn commands(p: &HostPlan) -> Vec<String> {
    p.steps.iter().filter_map(|s| s.command()).map(|c| c.join(" ")).collect()
}

fn stock() -> Fleet {
    Fleet::new(vec![
        ("cmp1", "198.18.42.11", raw("bookworm-socket")),
        ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject")),
        ("cmp5", "198.18.42.15", raw("bookworm-seed")),
    ])
}

#[test]
fn socket_host_gets_auth_and_tcp_socket() {
    let p = plan_of(&stock(), 0);
    let (orig, new) = edit_of(&p, "/etc/libvirt/libvirtd.conf");
    assert_eq!(changed_lines(orig, new), vec!["-#auth_tcp = \"sasl\"", "+auth_tcp = \"none\""]);
    assert_eq!(commands(&p), vec!["systemctl stop libvirtd.service", "systemctl enable --now libvirtd-tcp.socket"]);
    assert_eq!(p.verify, Some(Verify { active: vec!["libvirtd-tcp.socket".into()], port: Some(16509), closed: None }));
}

#[test]
fn traditional_host_gets_listen_args_firewall_and_restart() {
    let p = plan_of(&stock(), 1);
    let (orig, new) = edit_of(&p, "/etc/libvirt/libvirtd.conf");
    let mut ch = changed_lines(orig, new);
    ch.sort();
    assert_eq!(ch, ["+auth_tcp = \"none\"", "+listen_tcp = 1", "+listen_tls = 0", "-#auth_tcp = \"sasl\"", "-#listen_tcp = 1", "-#listen_tls = 0"]);
    let (orig, new) = edit_of(&p, "/etc/sysconfig/libvirtd");
    assert_eq!(changed_lines(orig, new), vec!["-#LIBVIRTD_ARGS=\"--listen\"", "+LIBVIRTD_ARGS=\"--listen\""]);
    let (orig, new) = edit_of(&p, "/etc/sysconfig/iptables");
    let added = changed_lines(orig, new);
    assert_eq!(added.len(), 4, "{added:?}");
    assert!(added.iter().all(|l| l.starts_with("+-A INPUT -s 198.18.42.1") && l.contains("--comment \"migready: ")));
    // Inserted right before the REJECT in the saved file too.
    let reject = new.lines().position(|l| l.starts_with("-A INPUT -j REJECT")).unwrap();
    assert!(new.lines().nth(reject - 1).unwrap().contains("migration from cmp5"));
    let cmds = commands(&p);
    assert_eq!(cmds[0], "systemctl restart libvirtd.service");
    assert_eq!(cmds.len(), 5);
    assert!(cmds[1..].iter().all(|c| c.starts_with("iptables -I INPUT 5 -s ")), "{cmds:?}");
    assert_eq!(p.verify, Some(Verify { active: vec!["libvirtd.service".into()], port: Some(16509), closed: None }));
}

#[test]
fn seed_host_loses_listen_and_gets_the_socket() {
    let p = plan_of(&stock(), 2);
    let (orig, new) = edit_of(&p, "/etc/default/libvirtd");
    assert_eq!(changed_lines(orig, new), vec!["-LIBVIRTD_ARGS=\"--listen\"", "+#LIBVIRTD_ARGS=\"--listen\""]);
    // auth_tcp = none is already set (the seed's recipe): libvirtd.conf untouched.
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Edit { path, .. } if path == "/etc/libvirt/libvirtd.conf")));
    assert_eq!(commands(&p), vec!["systemctl reset-failed libvirtd.service", "systemctl stop libvirtd.service", "systemctl enable --now libvirtd-tcp.socket"]);
}

#[test]
fn traditional_with_unit_timeout_keeps_other_args() {
    let mut r = raw("bookworm-traditional-reject");
    edit(&mut r, "units", |t| t.replace("Id=libvirtd.service", "Environment=\"LIBVIRTD_ARGS=--timeout 120 --verbose\"\nId=libvirtd.service"));
    let fleet = Fleet::new(vec![("cmp3", "198.18.42.13", r)]);
    let p = plan_of(&fleet, 0);
    let (_, new) = edit_of(&p, "/etc/sysconfig/libvirtd");
    assert!(new.contains("\nLIBVIRTD_ARGS=\"--listen --verbose\"\n"), "{new}");
}

#[test]
fn drop_policy_rules_go_first_in_input() {
    let fleet = Fleet::new(vec![("cmp4", "198.18.42.14", raw("trixie-traditional-drop")), ("cmp1", "198.18.42.11", raw("bookworm-socket"))]);
    let p = plan_of(&fleet, 0);
    let cmds = commands(&p);
    assert!(cmds.iter().filter(|c| c.starts_with("iptables")).all(|c| c.starts_with("iptables -I INPUT 1 -s 198.18.42.11/32")), "{cmds:?}");
    let (orig, new) = edit_of(&p, "/etc/sysconfig/iptables");
    assert_eq!(changed_lines(orig, new).len(), 2);
    let first_rule = new.lines().find(|l| l.starts_with("-A INPUT")).unwrap();
    assert!(first_rule.contains("migready: libvirt from cmp1"), "{new}");
}

fn nova_plan(release: &str, libvirt_section: &str) -> HostPlan {
    let mut r = raw("bookworm-socket");
    edit(&mut r, "nova_conf", |t| t.replacen("[libvirt]\n", &format!("[libvirt]\n{libvirt_section}"), 1));
    let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
    fleet.hosts[0].0.nova_release = crate::nova_release::NovaRelease::parse(release);
    plan_of(&fleet, 0)
}

#[test]
fn nova_by_release() {
    let p = nova_plan("mitaka", "");
    let (orig, new) = edit_of(&p, "/etc/nova/nova.conf");
    let ch = changed_lines(orig, new);
    assert!(ch.contains(&"+live_migration_flag = VIR_MIGRATE_UNDEFINE_SOURCE,VIR_MIGRATE_PEER2PEER,VIR_MIGRATE_LIVE".to_string()), "{ch:?}");
    assert!(ch.contains(&"+block_migration_flag = VIR_MIGRATE_UNDEFINE_SOURCE,VIR_MIGRATE_PEER2PEER,VIR_MIGRATE_LIVE,VIR_MIGRATE_NON_SHARED_INC".to_string()), "{ch:?}");
    // Zed's nova.conf has no commented default for these (removed keys): appended in [libvirt].
    assert!(ch.iter().all(|l| l.starts_with('+')), "{ch:?}");

    let p = nova_plan("zed", "live_migration_flag = VIR_MIGRATE_LIVE\nlive_migration_tunnelled = true\n");
    let (orig, new) = edit_of(&p, "/etc/nova/nova.conf");
    let ch = changed_lines(orig, new);
    assert!(ch.contains(&"+#live_migration_flag = VIR_MIGRATE_LIVE".to_string()), "{ch:?}");
    assert!(ch.contains(&"+live_migration_tunnelled = false".to_string()), "{ch:?}");
    assert!(ch.iter().any(|l| l.contains("obsolete since Newton")), "{ch:?}");
    // nova-compute is activating in the lab, not running: not restarted.
    assert!(commands(&p).iter().all(|c| !c.contains("nova-compute")));

    let p = nova_plan("zed", "");
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Edit { path, .. } if path.starts_with("/etc/nova"))));
}

#[test]
fn duplicate_uuids_pick_all_but_the_first() {
    let a = crate::facts::HostFacts::from_raw(raw("bookworm-socket"));
    let b = a.clone();
    let c = crate::facts::HostFacts::from_raw(raw("trixie-socket"));
    let d = a.clone();
    assert_eq!(duplicate_uuid_hosts(&[("a", &a), ("b", &b), ("c", &c), ("d", &d)]), vec!["b", "d"]);
}

#[test]
fn edits_are_idempotent() {
    let p = plan_of(&stock(), 1);
    for s in &p.steps {
        if let Step::Edit { path, new, .. } = s
            && path.ends_with(".conf")
        {
            let mut d = crate::formats::libvirt_conf::ConfDoc::parse(new);
            d.set("listen_tcp", crate::formats::libvirt_conf::Value::Int(1)).unwrap();
            d.set("auth_tcp", crate::formats::libvirt_conf::Value::Str("none".into())).unwrap();
            assert_eq!(&d.to_string(), new);
        }
    }
}

#[test]
fn modular_daemons_go_through_virtproxyd() {
    // RHEL 9 / Fedora style: virtqemud runs guests, virtproxyd serves remote access.
    // No lab image ships it, so the facts are edited from a Debian 12 host's.
    let mut r = raw("bookworm-socket");
    let unit = |id: &str, load: &str, active: &str, sub: &str, file: &str| {
        format!("Id={id}\nLoadState={load}\nActiveState={active}\nSubState={sub}\nUnitFileState={file}\nMainPID=0\nExecStart=\n")
    };
    let units = [
        unit("libvirtd.service", "not-found", "inactive", "dead", ""),
        unit("libvirtd.socket", "not-found", "inactive", "dead", ""),
        unit("virtproxyd.service", "loaded", "active", "running", "disabled"),
        unit("virtproxyd.socket", "loaded", "active", "listening", "enabled"),
        unit("virtproxyd-tcp.socket", "loaded", "inactive", "dead", "disabled"),
        unit("virtqemud.service", "loaded", "active", "running", "enabled"),
        unit("nova-compute.service", "loaded", "active", "running", "enabled"),
    ]
    .join("\n");
    crate::checks::testutil::set(&mut r, "units", &units);
    let conf = r.ok("libvirtd_conf").unwrap().to_string();
    crate::checks::testutil::set(&mut r, "virtproxyd_conf", &conf);
    let fleet = Fleet::new(vec![("rhel9", "198.18.42.21", r)]);
    assert_eq!(fleet.finding(0, "libvirt.mode").status, Status::Pass);
    let p = plan_of(&fleet, 0);
    let (orig, new) = edit_of(&p, "/etc/libvirt/virtproxyd.conf");
    assert_eq!(changed_lines(orig, new), vec!["-#auth_tcp = \"sasl\"", "+auth_tcp = \"none\""]);
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Edit { path, .. } if path == "/etc/libvirt/libvirtd.conf")));
    assert_eq!(commands(&p), vec!["systemctl stop virtproxyd.service", "systemctl enable --now virtproxyd-tcp.socket"]);
    assert_eq!(p.verify.unwrap().active, vec!["virtproxyd-tcp.socket"]);
}

fn firewalld_fleet(fixture: &str, peers: &[(&'static str, &'static str)]) -> Fleet {
    let mut hosts = vec![("cmp2", "198.18.47.12", raw(fixture))];
    hosts.extend(peers.iter().map(|(n, a)| (*n, *a, raw("bookworm-socket"))));
    Fleet::new(hosts)
}

const CMP1_CMP3: &[(&str, &str)] = &[("cmp1", "198.18.47.11"), ("cmp3", "198.18.47.13")];

#[test]
fn firewalld_host_gets_rich_rules_runtime_and_permanent() {
    let p = plan_of(&firewalld_fleet("trixie-socket-firewalld", CMP1_CMP3), 0);
    let rule = |a: &str, ports: &str| format!("--add-rich-rule=rule family=\"ipv4\" source address=\"{a}/32\" port port=\"{ports}\" protocol=\"tcp\" accept");
    let rules = [rule("198.18.47.11", "16509"), rule("198.18.47.13", "16509"), rule("198.18.47.11", "49152-49215"), rule("198.18.47.13", "49152-49215")].join(" ");
    let fw: Vec<String> = commands(&p).into_iter().filter(|c| c.starts_with("firewall-cmd")).collect();
    assert_eq!(fw, [format!("firewall-cmd --zone=public {rules}"), format!("firewall-cmd --permanent --zone=public {rules}")]);
    // No iptables rule, no --reload, and no "do it by hand" note.
    assert!(!commands(&p).iter().any(|c| c.starts_with("iptables") || c.contains("--reload")));
    assert!(!p.notes.iter().any(|n| n.starts_with("firewall")), "{:?}", p.notes);
    // Shown as the exact command, each rule one shell word.
    let mut out = Vec::new();
    render::print_plan(&mut out, &p).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("$ firewall-cmd --zone=public '--add-rich-rule=rule family=\"ipv4\" source address=\"198.18.47.11/32\" port port=\"16509\" protocol=\"tcp\" accept' "), "{out}");
    assert!(out.contains("# accept libvirt TCP 16509 from cmp1, libvirt TCP 16509 from cmp3, migration TCP 49152-49215 from cmp1, migration TCP 49152-49215 from cmp3 in firewalld zone public, now"), "{out}");
}

#[test]
fn firewalld_rules_go_where_each_peer_lands_and_only_where_missing() {
    // See src/firewalld/tests.rs: cmp3 lands in zone internal (by source), cmp1 in public
    // (libvirt open through a rich rule, migration open at runtime only), cmp4 is
    // refused 16509 by a reject rich rule, cmp5 dropped by a priority -5 rule.
    let peers: &[(&str, &str)] = &[("cmp1", "198.18.47.11"), ("cmp3", "198.18.47.13"), ("cmp4", "198.18.47.14"), ("cmp5", "198.18.47.15")];
    let p = plan_of(&firewalld_fleet("trixie-socket-firewalld-custom", peers), 0);
    let steps: Vec<(String, bool, Vec<String>)> = p
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::FirewalldRich { zone, permanent, rules, .. } => Some((zone.clone(), *permanent, rules.clone())),
            _ => None,
        })
        .collect();
    let mig = |a: &str| crate::firewalld::accept_rule(a, "49152-49215");
    assert_eq!(
        steps,
        [
            ("public".into(), true, vec![mig("198.18.47.11"), mig("198.18.47.14")]),
            ("internal".into(), false, vec![mig("198.18.47.13")]),
            ("internal".into(), true, vec![mig("198.18.47.13")]),
        ]
    );
    let notes = p.notes.join("\n");
    assert!(notes.contains("firewall: libvirt TCP 16509 from cmp4 (198.18.47.14) is refused by the runtime firewalld zone public's rich rule: rule family=\"ipv4\" source address=\"198.18.47.14\" port port=\"16509\" protocol=\"tcp\" reject; an accepting rich rule would not help, not changed"), "{notes}");
    assert!(notes.contains("from cmp5 (198.18.47.15) is refused by the runtime firewalld zone public's rich rule: rule priority=\"-5\""), "{notes}");
}

#[test]
fn firewalld_rollback_removes_exactly_what_was_added() {
    let p = plan_of(&firewalld_fleet("trixie-socket-firewalld", CMP1_CMP3), 0);
    let step = p.steps.iter().find(|s| matches!(s, Step::FirewalldRich { permanent: true, .. })).unwrap();
    let Step::FirewalldRich { rules, .. } = step else { unreachable!() };
    let undo = firewall_cmd("public", true, "--remove-rich-rule", rules);
    assert_eq!(undo[..3], ["firewall-cmd", "--permanent", "--zone=public"]);
    assert_eq!(undo.len(), 3 + 4);
    assert!(undo[3..].iter().zip(rules).all(|(u, r)| *u == format!("--remove-rich-rule={r}")));
}

/// cmp3 (RHEL 7 style) with the RHEL 7 ip6tables ruleset (the file, and what
/// ip6tables-save printed after loading it on a lab host) and IPv6 peers.
fn ipv6_fleet() -> Fleet {
    let read = |p: &str| std::fs::read_to_string(format!("{}/tests/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let rules = read("lab/files/ip6tables-rhel7");
    let mut r = raw("bookworm-traditional-reject");
    crate::checks::testutil::set(&mut r, "ip6tables_save", &read("fixtures/iptables/ip6tables-rhel7.rules"));
    crate::checks::testutil::set(&mut r, "persist:/etc/sysconfig/ip6tables", &rules);
    Fleet::new(vec![("cmp3", "fd42:42::13", r), ("cmp1", "fd42:42::11", raw("bookworm-socket")), ("cmp2", "198.18.42.12", raw("trixie-socket"))])
}

#[test]
fn ipv6_peers_get_ip6tables_rules_persisted_in_their_file() {
    let fleet = ipv6_fleet();
    assert_eq!(fleet.finding(0, "firewall.libvirt").status, Status::Fail);
    let p = plan_of(&fleet, 0);
    let cmds = commands(&p);
    let v6: Vec<&String> = cmds.iter().filter(|c| c.starts_with("ip6tables")).collect();
    assert_eq!(v6.len(), 2, "{cmds:?}");
    assert!(v6.iter().all(|c| c.starts_with("ip6tables -I INPUT 6 -s fd42:42::11/128 -p tcp -m tcp --dport ")), "{v6:?}");
    assert!(v6.iter().any(|c| c.contains("--dport 16509 ") && c.contains("migready: libvirt from cmp1")));
    assert!(v6.iter().any(|c| c.contains("--dport 49152:49215 ")));
    // The IPv4 peer still goes through iptables, into /etc/sysconfig/iptables.
    assert!(cmds.iter().any(|c| c.starts_with("iptables -I INPUT 5 -s 198.18.42.12/32")), "{cmds:?}");
    let (orig, new) = edit_of(&p, "/etc/sysconfig/ip6tables");
    let added = changed_lines(orig, new);
    assert_eq!(added.len(), 2, "{added:?}");
    let reject = new.lines().position(|l| l.starts_with("-A INPUT -j REJECT")).unwrap();
    assert!(new.lines().nth(reject - 1).unwrap().starts_with("-A INPUT -s fd42:42::11/128"), "{new}");
    assert!(!p.notes.iter().any(|n| n.contains("by hand")), "{:?}", p.notes);
    // Once the rules are in, nothing more to do for IPv6.
    let mut fleet = ipv6_fleet();
    let r = &mut fleet.hosts[0].1;
    let rules = crate::firewall::parse(new).unwrap();
    r.ip6tables = Some(crate::facts::Firewall::Rules(rules));
    let p = plan_of(&fleet, 0);
    assert!(!commands(&p).iter().any(|c| c.starts_with("ip6tables")), "{:?}", commands(&p));
}

#[test]
fn ipv6_peer_without_persistence_is_a_note() {
    let mut fleet = ipv6_fleet();
    fleet.hosts[0].1.persisted_rules.retain(|p| p != "/etc/sysconfig/ip6tables");
    let p = plan_of(&fleet, 0);
    assert!(p.notes.iter().any(|n| n.contains("nothing on this host persists ip6tables rules")), "{:?}", p.notes);
}

#[test]
fn nova_option_with_a_continuation_line_is_a_note_not_a_panic() {
    // A flag list continued on an indented line: the merged value would span lines.
    let p = nova_plan("mitaka", "live_migration_flag = VIR_MIGRATE_UNDEFINE_SOURCE\n  VIR_MIGRATE_PEER2PEER\n");
    let note = p.notes.iter().find(|n| n.contains("live_migration_flag")).unwrap_or_else(|| panic!("{:?}", p.notes));
    assert!(note.starts_with("nova.flags: /etc/nova/nova.conf line "), "{note}");
    assert!(note.ends_with("not edited"), "{note}");
    // The other key is still fixed.
    let (orig, new) = edit_of(&p, "/etc/nova/nova.conf");
    let ch = changed_lines(orig, new);
    assert!(ch.iter().all(|l| !l.contains("live_migration_flag")), "{ch:?}");
    assert!(ch.iter().any(|l| l.starts_with("+block_migration_flag = ")), "{ch:?}");
}

#[test]
fn env_file_words_keep_their_quoting() {
    // Traditional: --listen added, --timeout N dropped, the quoted path kept as written.
    let mut r = raw("bookworm-traditional-reject");
    let line = "LIBVIRTD_ARGS=\"--timeout 120 --config '/etc/libvirt/my libvirtd.conf'\"";
    edit(&mut r, "envfile:libvirtd.service:/etc/sysconfig/libvirtd", |t| format!("{t}{line}\n"));
    let fleet = Fleet::new(vec![("cmp3", "198.18.42.13", r)]);
    let p = plan_of(&fleet, 0);
    let (orig, new) = edit_of(&p, "/etc/sysconfig/libvirtd");
    assert_eq!(changed_lines(orig, new), vec![format!("-{line}"), "+LIBVIRTD_ARGS=\"--listen --config '/etc/libvirt/my libvirtd.conf'\"".to_string()]);

    // Socket activation: --listen removed, the rest as written.
    let mut r = raw("bookworm-seed");
    let line = "LIBVIRTD_ARGS=\"--listen  --config \\\"/etc/libvirt/my libvirtd.conf\\\" -v\"";
    edit(&mut r, "envfile:libvirtd.service:/etc/default/libvirtd", |t| t.replace("LIBVIRTD_ARGS=\"--listen\"", line));
    let fleet = Fleet::new(vec![("cmp5", "198.18.42.15", r)]);
    let p = plan_of(&fleet, 0);
    let (orig, new) = edit_of(&p, "/etc/default/libvirtd");
    assert_eq!(changed_lines(orig, new), vec![format!("-{line}"), "+LIBVIRTD_ARGS=\"--config \\\"/etc/libvirt/my libvirtd.conf\\\" -v\"".to_string()]);
}

#[test]
fn latin1_config_file_keeps_its_bytes() {
    use crate::formats::bytes::{decode, encode};
    let mut r = raw("bookworm-traditional-reject");
    let stock = r.ok("libvirtd_conf").unwrap().to_string();
    let mut bytes = b"# Konfiguration f\xfcr cmp3, caf\xe9\n".to_vec();
    let (before, after) = stock.split_once("#auth_tcp = \"sasl\"").unwrap();
    bytes.extend_from_slice(before.as_bytes());
    bytes.extend_from_slice(b"auth_tcp = \"sasl\" # \xe9t\xe9");
    bytes.extend_from_slice(after.as_bytes());
    // As RawFacts::parse_bytes decodes it from the host's bytes.
    crate::checks::testutil::set(&mut r, "libvirtd_conf", &decode(&bytes));
    let fleet = Fleet::new(vec![("cmp3", "198.18.42.13", r)]);
    assert_eq!(fleet.finding(0, "libvirt.auth").status, Status::Fail);
    let p = plan_of(&fleet, 0);
    let (orig, new) = edit_of(&p, "/etc/libvirt/libvirtd.conf");
    // What the apply step compares with the host (sha256 of encode(original)) is the host's bytes.
    assert_eq!(encode(orig), bytes);
    let new = encode(new);
    assert!(new.starts_with(b"# Konfiguration f\xfcr cmp3, caf\xe9\n"));
    assert!(new.windows(23).any(|w| w == b"auth_tcp = \"none\" # \xe9t\xe9"), "{}", String::from_utf8_lossy(&new));
    assert!(!new.windows(3).any(|w| w == "\u{fffd}".as_bytes()));
    // Only the edited lines differ, byte for byte.
    let (old_lines, new_lines): (Vec<&[u8]>, Vec<&[u8]>) = (bytes.split(|b| *b == b'\n').collect(), new.split(|b| *b == b'\n').collect());
    assert_eq!(old_lines.len(), new_lines.len());
    let changed = old_lines.iter().zip(&new_lines).filter(|(a, b)| a != b).count();
    assert_eq!(changed, 3, "auth_tcp, listen_tls, listen_tcp");
    // The diff shows the bytes as \xNN.
    let mut out = Vec::new();
    render::print_plan(&mut out, &p).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("-auth_tcp = \"sasl\" # \\xe9t\\xe9\n+auth_tcp = \"none\" # \\xe9t\\xe9\n"), "{out}");
}

#[test]
fn symlinked_files_are_edited_by_their_path() {
    let mut r = raw("bookworm-traditional-reject");
    crate::checks::testutil::set(&mut r, "link:libvirtd_conf", "/srv/config/libvirtd.conf\n");
    crate::checks::testutil::set(&mut r, "link:envfile:libvirtd.service:/etc/sysconfig/libvirtd", "/etc/sysconfig/libvirtd.local\n");
    let fleet = Fleet::new(vec![("cmp3", "198.18.42.13", r)]);
    assert_eq!(fleet.hosts[0].1.real_path("/etc/libvirt/libvirtd.conf"), Some("/srv/config/libvirtd.conf"));
    let p = plan_of(&fleet, 0);
    edit_of(&p, "/etc/libvirt/libvirtd.conf");
    edit_of(&p, "/etc/sysconfig/libvirtd");
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Edit { path, .. } if path.starts_with("/srv") || path.ends_with(".local"))));
}

#[test]
fn migration_range_upside_down_is_a_note() {
    let mut r = raw("bookworm-traditional-reject");
    edit(&mut r, "qemu_conf", |t| format!("{t}migration_port_min = 49300\nmigration_port_max = 49200\n"));
    let fleet = Fleet::new(vec![("cmp3", "198.18.42.13", r), ("cmp1", "198.18.42.11", raw("bookworm-socket"))]);
    assert_eq!(fleet.finding(0, "firewall.migration").status, Status::Fail);
    let p = plan_of(&fleet, 0);
    assert!(p.notes.iter().any(|n| n == "firewall.migration: qemu.conf migration_port_min 49300 is above migration_port_max 49200; correct qemu.conf by hand"), "{:?}", p.notes);
    // The libvirt port is still opened.
    assert!(commands(&p).iter().any(|c| c.contains("--dport 16509 ")), "{:?}", commands(&p));
}

/// A peer name holding `"` or `\` (the inventory refuses them now) made the saved
/// rule's `--comment "..."` unreadable for iptables-restore and for migready's own
/// parser; the comment drops them, and the line parses back to the same rule.
#[test]
fn iptables_comments_stay_readable_whatever_the_peer_name() {
    let long = format!("{}.example.com", ["a".repeat(63), "b".repeat(63), "c".repeat(63)].join("."));
    for name in ["cmp\"1", "cmp\\1", "cmp\"1\\\" -j DROP #", "cmp'1", "cmp\n-A INPUT -j DROP", long.as_str()] {
        let fleet = Fleet::new(vec![
            (name, "198.18.42.11", raw("bookworm-socket")),
            ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject")),
        ]);
        let p = plan_of(&fleet, 1);
        let (orig, new) = edit_of(&p, "/etc/sysconfig/iptables");
        let saved = crate::firewall::parse(new).unwrap_or_else(|e| panic!("{name:?}: {e}\n{new}"));
        let comments: Vec<String> = saved
            .table("filter")
            .unwrap()
            .chains
            .iter()
            .flat_map(|c| &c.rules)
            .filter_map(|r| r.comment.clone())
            .filter(|c| c.starts_with("migready:"))
            .collect();
        assert_eq!(comments.len(), 2, "{name:?}: {comments:?}\n{new}");
        for c in &comments {
            assert!(!c.contains(['"', '\\', '\n']), "{name:?}: {c:?}");
            assert!(c.len() <= 255, "{name:?}: {} bytes", c.len());
        }
        // The live rule gets the same comment as the saved one.
        for step in &p.steps {
            if let Step::FirewallInsert { args, .. } = step {
                let c = &args[args.iter().position(|a| a == "--comment").unwrap() + 1];
                assert!(comments.contains(c), "{name:?}: {c:?} not in {comments:?}");
            }
        }
        // Nothing but the two accepting rules was added.
        let count = |text: &str| crate::firewall::parse(text).unwrap().table("filter").unwrap().chains.iter().map(|c| c.rules.len()).sum::<usize>();
        assert_eq!(count(new), count(orig) + 2, "{name:?}\n{new}");
    }
}

#[test]
fn a_running_nova_compute_is_restarted_after_libvirtd_so_nova_enables_it_again() {
    let mut fleet = stock();
    // As on a compute joined to a cloud: nova-compute active (the stock lab has no bus).
    for (_, f) in fleet.hosts.iter_mut() {
        if let Some(u) = f.units.get_mut("nova-compute.service") {
            u.active_state = "active".into();
        }
    }
    for i in [0, 1] {
        let c = commands(&plan_of(&fleet, i));
        let libvirt = c.iter().position(|c| c == "systemctl stop libvirtd.service" || c == "systemctl restart libvirtd.service").unwrap_or_else(|| panic!("{c:?}"));
        let nova = c.iter().position(|c| c == "systemctl try-restart nova-compute.service").unwrap_or_else(|| panic!("{c:?}"));
        assert!(nova > libvirt, "{c:?}");
        assert_eq!(c.iter().filter(|c| c.contains("nova-compute")).count(), 1, "{c:?}");
    }
    // Not where nova-compute does not run (the stock lab: activating, no message bus).
    assert!(!commands(&plan_of(&stock(), 1)).iter().any(|c| c.contains("nova-compute")));
}

fn nft_fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/nftables/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The lab's nftables host (cmp6) and its peers; `edit` changes its facts first.
fn nft_fleet(f: impl FnOnce(&mut crate::facts::RawFacts)) -> Fleet {
    let mut r = raw("bookworm-socket-nftables");
    f(&mut r);
    Fleet::new(vec![
        ("cmp6", "198.18.42.16", r),
        ("cmp1", "198.18.42.11", raw("bookworm-socket")),
        ("cmp2", "198.18.42.12", raw("trixie-socket")),
        ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject")),
    ])
}

fn nft_steps(p: &HostPlan) -> Vec<&Step> {
    p.steps.iter().filter(|s| matches!(s, Step::NftRule { .. })).collect()
}

#[test]
fn nftables_policy_drop_gets_peer_accepts_appended_and_persisted() {
    let p = plan_of(&nft_fleet(|_| {}), 0);
    let cmds: Vec<String> = nft_steps(&p).iter().map(|s| crate::shell::join(&s.command().unwrap())).collect();
    let mut want = Vec::new();
    for (what, ports) in [("libvirt", "16509"), ("migration", "49152-49215")] {
        for (h, a) in [("cmp1", "198.18.42.11"), ("cmp2", "198.18.42.12"), ("cmp3", "198.18.42.13")] {
            want.push(format!("nft --echo --handle add rule inet filter input ip saddr {a} tcp dport {ports} accept comment '\"migready: {what} from {h} {a}\"'"));
        }
    }
    assert_eq!(cmds, want);
    // The file nftables.service loads: the same six lines at the end of chain input, in
    // plan order, with the chain's indentation; nothing else changes.
    let (orig, new) = edit_of(&p, "/etc/nftables.conf");
    let ch = changed_lines(orig, new);
    assert_eq!(ch.len(), 6, "{ch:?}");
    assert_eq!(ch[0], "+\t\tip saddr 198.18.42.11 tcp dport 16509 accept comment \"migready: libvirt from cmp1 198.18.42.11\"");
    assert!(new.contains("\t\ttcp dport 22 accept comment \"ssh\"\n\t\tip saddr 198.18.42.11 tcp dport 16509"), "{new}");
    assert!(new.contains("from cmp3 198.18.42.13\"\n\t}\n\tchain forward {"), "{new}");
    assert!(!p.notes.iter().any(|n| n.starts_with("firewall")), "{:?}", p.notes);
    // Rolled back exactly: the runner captures the handle nft prints for the new rule,
    // and the undo deletes that handle, only while it still carries migready's comment;
    // a live rule: skipped after a reboot.
    let facts = &nft_fleet(|_| {}).hosts[0].1;
    let t = crate::fix::apply::transaction(&p, facts, &crate::fix::apply::TxnOptions { run: "r".into(), controller: "c".into(), step_delay: std::time::Duration::ZERO }, std::time::Duration::from_secs(35));
    let step = t["steps"].as_array().unwrap().iter().find(|s| s["argv"][0] == "nft").unwrap();
    assert_eq!(step["argv"].as_array().unwrap()[..4], ["nft", "--echo", "--handle", "add"]);
    assert_eq!(step["capture"], r"# handle (\d+)\s*$");
    assert_eq!(step["undo"], serde_json::json!([["nft", "delete", "rule", "inet", "filter", "input", "handle", "{captured}"]]));
    assert_eq!(step["undo_guard"]["argv"], serde_json::json!(["nft", "-a", "list", "chain", "inet", "filter", "input"]));
    assert_eq!(step["undo_guard"]["line_ends"], "comment \"migready: libvirt from cmp1 198.18.42.11\" # handle {captured}");
    assert_eq!(step["runtime"], true);
    assert_eq!(step["undo_display"][0], "nft delete rule inet filter input handle {captured}");
    // What nft --echo --handle prints for an added and an inserted rule (nftables 1.0.6;
    // an insert names its position as `handle N` too): the capture takes the new rule's.
    // (txn.py runs it with re.M: `$` at each line's end.)
    let capture = regex::Regex::new(&format!("(?m){}", step["capture"].as_str().unwrap())).unwrap();
    let re = |out: &str| capture.captures(out).map(|c| c[1].to_string());
    assert_eq!(re("add rule inet filter input ip saddr 198.18.42.11 tcp dport 16509 accept comment \"migready: libvirt from cmp1 198.18.42.11\" # handle 11\n# new generation 4 by process 9758 (nft)\n"), Some("11".into()));
    assert_eq!(re("insert rule inet filter input handle 4 ip saddr 10.9.9.9 tcp dport 16509 accept comment \"migready: x\" # handle 10\n"), Some("10".into()));
    assert_eq!(re("# new generation 4 by process 9758 (nft)\n"), None);
}

/// cmp6 with rich.nft loaded from its /etc/nftables.conf (rich.json, rich.txt).
fn rich(r: &mut crate::facts::RawFacts) {
    use crate::checks::testutil::set;
    set(r, "nft_json", &nft_fixture("rich.json"));
    set(r, "nft_ruleset", &nft_fixture("rich.txt"));
    set(r, "nftconf:1:/etc/nftables.conf", &nft_fixture("rich.nft"));
}

#[test]
fn nftables_accepts_go_right_before_the_rule_that_blocks_in_each_table() {
    let p = plan_of(&nft_fleet(rich), 0);
    let cmds: Vec<String> = nft_steps(&p).iter().map(|s| crate::shell::join(&s.command().unwrap())).collect();
    // cmp2 is dropped by table ip extra (inet filter accepts it); cmp3's migration is
    // rejected at the end of inet filter's input (it returns from chain migration).
    assert_eq!(
        cmds,
        [
            "nft --echo --handle insert rule ip extra input position 2 ip saddr 198.18.42.12 tcp dport 16509 accept comment '\"migready: libvirt from cmp2 198.18.42.12\"'",
            "nft --echo --handle insert rule inet filter input position 17 ip saddr 198.18.42.13 tcp dport 49152-49215 accept comment '\"migready: migration from cmp3 198.18.42.13\"'",
        ]
    );
    let (orig, new) = edit_of(&p, "/etc/nftables.conf");
    assert_eq!(
        changed_lines(orig, new),
        [
            "+\t\tip saddr 198.18.42.13 tcp dport 49152-49215 accept comment \"migready: migration from cmp3 198.18.42.13\"",
            "+\t\tip saddr 198.18.42.12 tcp dport 16509 accept comment \"migready: libvirt from cmp2 198.18.42.12\"",
        ]
    );
    assert!(new.contains("migration from cmp3 198.18.42.13\"\n\t\tcounter reject with icmpx admin-prohibited\n"), "{new}");
    assert!(new.contains("libvirt from cmp2 198.18.42.12\"\n\t\tip saddr 198.18.42.12 tcp dport 16509 drop comment"), "{new}");
}

#[test]
fn nftables_rules_not_persisted_say_why() {
    // Rules added live since the file was loaded: the file is not the live chain.
    let p = plan_of(&nft_fleet(|r| edit(r, "nftconf:1:/etc/nftables.conf", |t| t.replace("\t\ttcp dport 22 accept comment \"ssh\"\n", ""))), 0);
    assert_eq!(nft_steps(&p).len(), 6);
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Edit { path, .. } if path == "/etc/nftables.conf")));
    let notes = p.notes.join("\n");
    assert!(notes.contains("firewall: the new nftables rules are not persisted: chain input of table inet filter has 5 rules live and 4 in /etc/nftables.conf: they differ"), "{notes}");
    // nftables.service disabled: nothing loads the file at boot.
    let p = plan_of(&nft_fleet(|r| edit(r, "units", |t| t.replace("FragmentPath=/lib/systemd/system/nftables.service\nDropInPaths=\nUnitFileState=enabled", "FragmentPath=/lib/systemd/system/nftables.service\nDropInPaths=\nUnitFileState=disabled"))), 0);
    let notes = p.notes.join("\n");
    assert!(notes.contains("not persisted: nftables.service is not enabled"), "{notes}");
    // A verdict migready cannot tell (a rule not understood): doctor warns, fix changes
    // nothing there.
    let fib = r#"{"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}"#;
    let fleet = nft_fleet(|r| {
            edit(r, "nft_json", |t| {
                t.replace(
                    r#"{"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 9,"#,
                    &format!(r#"{{"rule": {{"family": "inet", "table": "filter", "chain": "input", "handle": 10, "expr": [{fib}, {{"accept": null}}]}}}}, {{"rule": {{"family": "inet", "table": "filter", "chain": "input", "handle": 9,"#),
                )
            })
        });
    assert_eq!(fleet.finding(0, "firewall.libvirt").status, Status::Warn);
    assert!(nft_steps(&plan_of(&fleet, 0)).is_empty());
}

#[test]
fn nftables_allowed_sources_and_ipv6_in_an_inet_table() {
    let mut fleet = nft_fleet(|_| {});
    fleet.hosts.truncate(1);
    fleet.policy.allowed_sources = vec!["192.0.2.0/24".into(), "2001:db8::/64".into()];
    let p = plan_of(&fleet, 0);
    let cmds: Vec<String> = nft_steps(&p).iter().map(|s| crate::shell::join(&s.command().unwrap())).collect();
    assert_eq!(
        cmds[..2],
        [
            "nft --echo --handle add rule inet filter input ip saddr 192.0.2.0/24 tcp dport 16509 accept comment '\"migready: libvirt from 192.0.2.0/24\"'",
            "nft --echo --handle add rule inet filter input ip6 saddr 2001:db8::/64 tcp dport 16509 accept comment '\"migready: libvirt from 2001:db8::/64\"'",
        ]
    );
    assert_eq!(cmds.len(), 4);
}

#[test]
fn the_json_document_holds_plans_actions_and_changes_and_fits_the_schema() {
    use crate::report::{schema_errors, HostReport, PairReport, Report};
    use apply::ApplyLog;
    let fleet = stock();
    let mut plans: Vec<Option<HostPlan>> = (0..3).map(|i| Some(plan_of(&fleet, i))).collect();
    // cmp1 under transport tls with a CA: install steps (certificates, keys not shown) and
    // the TCP socket disabled.
    let dir = tempfile::tempdir().unwrap();
    crate::ca::init(dir.path()).unwrap();
    let ca = crate::ca::Ca::load(&dir.path().join("cacert.pem"), &dir.path().join("cakey.pem"));
    let mut tls = Fleet::new(vec![("cmp1", "198.18.42.11", socket_tcp_and_tls()), ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    tls.policy.transport = crate::inventory::Transport::Tls;
    let views = tls.views();
    let p = plan_with_ca(&tls.ctx(&views, 0), &tls.findings(0), None, Some(&ca));
    assert!(p.steps.iter().any(|s| matches!(s, Step::Install { .. })) && commands(&p).iter().any(|c| c.contains("disable --now")), "{:#?}", p.steps);
    plans[0] = Some(p);
    let report = |fixed: bool| {
        let hosts = (0..3)
            .map(|i| HostReport {
                name: fleet.hosts[i].0.name.clone(),
                address: fleet.hosts[i].0.address.clone(),
                reached: true,
                elapsed_ms: 5,
                checks: fleet.findings(i).into_iter().map(|mut f| {
                    if fixed && i != 2 && FIXABLE.contains(&f.id) {
                        f.status = Status::Pass;
                    }
                    f
                }).collect(),
            })
            .collect();
        let status = if fixed { Status::Pass } else { Status::Fail };
        let pair = PairReport { from: "cmp1".into(), to: "cmp3".into(), checks: vec![Finding { id: crate::mesh::MIGRATION_PORTS, status, message: "49152-49215".into(), evidence: vec![] }] };
        Report::with_pairs(hosts, vec![pair], 100)
    };
    let (before, after) = (report(false), report(true));
    let run = crate::audit::run_id();
    let logs = vec![
        (0, ApplyLog { run: run.clone(), done: vec!["wrote /etc/libvirt/libvirtd.conf".into()], backups: vec!["/etc/libvirt/libvirtd.conf.migready-1.bak".into()], ..Default::default() }),
        (2, ApplyLog { run: run.clone(), rolled_back: Some("libvirtd.service did not come back".into()), ..Default::default() }),
    ];
    let counts = run::Counts { planned: plans.iter().flatten().map(|p| p.steps.len()).sum(), applied: plans[0].as_ref().unwrap().steps.len(), rolled_back: plans[2].as_ref().unwrap().steps.len(), lost: 0 };
    let applied = run::Run { id: &run, dry_run: false, plans: &plans, logs: &logs, before: &before, after: Some(&after), counts: &counts };
    let doc = run::document(&applied, crate::exit::FAILED);
    assert_eq!(schema_errors(&doc), Vec::<String>::new(), "{doc:#}");
    let fix = &doc["fix"];
    assert_eq!(fix["run"], run.as_str());
    let cmp3 = &fix["hosts"][1];
    let kinds: Vec<&str> = cmp3["plan"]["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"edit") && kinds.contains(&"command"), "{kinds:?}");
    assert!(cmp3["changed"].as_array().unwrap().iter().any(|c| c["id"] == "libvirt.listen" && c["before"] == "fail" && c["after"] == "pass"), "{cmp3:#}");
    assert_eq!(fix["hosts"][2]["applied"]["rolled_back"], "libvirtd.service did not come back");
    assert!(fix["hosts"][1]["applied"].is_null());
    assert_eq!(fix["pairs_changed"][0]["id"], crate::mesh::MIGRATION_PORTS);
    assert_eq!((&fix["before"]["fail"], &doc["summary"]["fail"]), (&before.summary.fail.into(), &after.summary.fail.into()));
    // A dry run: the plans, nothing applied, no after.
    let dry = run::Run { dry_run: true, logs: &[], after: None, ..applied };
    let doc = run::document(&dry, crate::exit::FAILED);
    assert_eq!(schema_errors(&doc), Vec::<String>::new(), "{doc:#}");
    assert!(doc["fix"]["hosts"].as_array().unwrap().iter().all(|h| h["applied"].is_null() && h["changed"] == serde_json::json!([])));
}

/// nova-compute reads nova.conf, then a --config-dir's file that sets
/// live_migration_tunnelled: fix edits that file (it decides), not nova.conf.
#[test]
fn nova_edit_goes_to_the_file_that_decides() {
    let mut r = raw("bookworm-socket");
    let nova = r.records.remove("nova_conf").unwrap();
    r.records.remove("nova_compute_conf");
    r.records.insert("novaconf:1:/etc/nova/nova.conf".into(), nova);
    let dropin = "[libvirt]\nlive_migration_tunnelled = True\n";
    crate::checks::testutil::set(&mut r, "novaconf:2:/etc/nova/nova.conf.d/50-migration.conf", dropin);
    crate::checks::testutil::set(&mut r, "nova_args_source", "pid 7 nova-compute.service");
    let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r.clone())]);
    fleet.hosts[0].0.nova_release = crate::nova_release::NovaRelease::parse("zed");
    let p = plan_of(&fleet, 0);
    let (orig, new) = edit_of(&p, "/etc/nova/nova.conf.d/50-migration.conf");
    assert_eq!((orig, new), (dropin, "[libvirt]\nlive_migration_tunnelled = false\n"));
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Edit { path, .. } if path == "/etc/nova/nova.conf")), "{:#?}", p.steps);
    let f = &fleet.hosts[0].1;
    let c = fleet.findings(0).into_iter().find(|c| c.id == "nova.flags").unwrap();
    assert!(c.evidence.iter().any(|e| e == "/etc/nova/nova.conf.d/50-migration.conf:2: live_migration_tunnelled = True"), "{c:?}");
    assert!(c.evidence.iter().any(|e| e.starts_with("nova-compute reads /etc/nova/nova.conf, /etc/nova/nova.conf.d/50-migration.conf (order from nova-compute's command line (pid 7")), "{c:?}");
    assert_eq!(f.nova.files.len(), 2);

    // Set in nova.conf as well: the drop-in still decides, and is the one edited.
    edit(&mut r, "novaconf:1:/etc/nova/nova.conf", |t| t.replacen("[libvirt]\n", "[libvirt]\nlive_migration_tunnelled = false\n", 1));
    let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
    fleet.hosts[0].0.nova_release = crate::nova_release::NovaRelease::parse("zed");
    let p = plan_of(&fleet, 0);
    assert_eq!(edit_of(&p, "/etc/nova/nova.conf.d/50-migration.conf").1, "[libvirt]\nlive_migration_tunnelled = false\n");
}

#[test]
fn transport_tls_plans_the_tls_listener_and_opens_16514() {
    let mut fleet = stock();
    fleet.policy.transport = crate::inventory::Transport::Tls;
    // Socket host, no CA given: the TLS socket (the service stopped first), no TCP socket;
    // the certificates said not planned.
    let p = plan_of(&fleet, 0);
    let cmds = commands(&p);
    assert!(cmds.iter().any(|c| c == "systemctl enable --now libvirtd-tls.socket"), "{cmds:?}");
    assert!(!cmds.iter().any(|c| c.contains("libvirtd-tcp.socket")), "{cmds:?}");
    assert_eq!(p.verify, Some(Verify { active: vec!["libvirtd-tls.socket".into()], port: Some(16514), closed: None }));
    assert!(p.notes.iter().any(|n| n.starts_with("tls.certificates: transport tls: no CA to issue this host's certificates from")), "{:?}", p.notes);
    // Traditional REJECT host: --listen, no listen_tcp; the firewall opened on 16514 (and
    // the migration range) to the peers, not 16509.
    let p = plan_of(&fleet, 1);
    assert!(edit_of(&p, "/etc/sysconfig/libvirtd").1.contains("\nLIBVIRTD_ARGS=\"--listen\"\n"), "{:#?}", p.steps);
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Edit { new, .. } if new.contains("listen_tcp = 1"))), "{:#?}", p.steps);
    let cmds = commands(&p);
    assert!(cmds.iter().any(|c| c == "systemctl restart libvirtd.service"), "{cmds:?}");
    assert!(cmds.iter().any(|c| c.contains("--dport 16514") && c.contains("-s 198.18.42.11/32") && c.contains("migready: libvirt-tls from cmp1")), "{cmds:?}");
    assert!(!cmds.iter().any(|c| c.contains("--dport 16509")), "{cmds:?}");
}

/// The PKI files fix installs, in order.
const PKI: &[&str] = &[
    "/etc/pki/CA/cacert.pem",
    "/etc/pki/libvirt/servercert.pem",
    "/etc/pki/libvirt/private/serverkey.pem",
    "/etc/pki/libvirt/clientcert.pem",
    "/etc/pki/libvirt/private/clientkey.pem",
    "/etc/pki/qemu/ca-cert.pem",
    "/etc/pki/qemu/server-cert.pem",
    "/etc/pki/qemu/server-key.pem",
    "/etc/pki/qemu/client-cert.pem",
    "/etc/pki/qemu/client-key.pem",
];

#[test]
fn transport_tls_installs_certificates_from_the_ca_once_and_never_shows_a_key() {
    let dir = tempfile::tempdir().unwrap();
    crate::ca::init(&dir.path().join("ca")).unwrap();
    let ca = crate::ca::Ca::load(&dir.path().join("ca/cacert.pem"), &dir.path().join("ca/cakey.pem"));
    let mut r = raw("bookworm-socket");
    crate::checks::testutil::set(&mut r, crate::facts::QEMU_GROUP, "libvirt-qemu:x:64055:libvirt-qemu\n");
    let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r.clone()), ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    fleet.policy.transport = crate::inventory::Transport::Tls;
    let views = fleet.views();
    let p = plan_with_ca(&fleet.ctx(&views, 0), &fleet.findings(0), None, Some(&ca));
    let installs: Vec<&Step> = p.steps.iter().filter(|s| matches!(s, Step::Install { .. })).collect();
    let paths: Vec<&str> = installs.iter().map(|s| match s { Step::Install { path, .. } => path.as_str(), _ => "" }).collect();
    assert_eq!(paths, PKI);
    let ca_pem = ca.as_ref().unwrap().cert_pem.clone();
    let mut contents = std::collections::BTreeMap::new();
    for s in &installs {
        let Step::Install { path, expect, content, mode, owner, group, secret, .. } = s else { unreachable!() };
        assert_eq!(*expect, None, "{path}: a new file");
        assert_eq!(owner, "root");
        assert_eq!(*secret, path.contains("key"), "{path}");
        let want = if path.starts_with("/etc/pki/qemu/") && *secret { (0o640, "libvirt-qemu") } else if *secret { (0o600, "root") } else { (0o644, "root") };
        assert_eq!((*mode, group.as_str()), want, "{path}");
        if !*secret {
            if path.contains("ca") {
                assert_eq!(content, &ca_pem);
            } else {
                crate::ca::verifies_against(content, &ca_pem).unwrap();
                let names = crate::ca::read_cert(content).unwrap().names;
                assert!(names.contains(&"cmp1".to_string()) && names.contains(&"198.18.42.11".to_string()), "{path}: {names:?}");
            }
        }
        contents.insert(path.to_string(), content.clone());
    }
    // The libvirt daemon reads them: the TLS socket, the service stopped first.
    assert!(commands(&p).iter().any(|c| c == "systemctl enable --now libvirtd-tls.socket"), "{:?}", commands(&p));
    // Never a key in the plan shown, in JSON; the transaction carries them (stdin only).
    let mut out = Vec::new();
    render::print_plan(&mut out, &p).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("PRIVATE KEY") && out.contains("(private key, not shown)"), "{out}");
    assert!(out.contains("# install /etc/pki/qemu/server-key.pem (0640 root:libvirt-qemu)"), "{out}");
    let json = super::run::plan_json(&p).to_string();
    assert!(!json.contains("PRIVATE KEY") && json.contains("(private key, not shown)"), "{json}");
    let t = apply::transaction(&p, &fleet.hosts[0].1, &apply::TxnOptions { run: "r".into(), controller: "c".into(), step_delay: std::time::Duration::ZERO }, std::time::Duration::from_secs(30));
    let step = &t["steps"][2];
    assert_eq!((step["path"].as_str(), step["mode"].as_str(), step["owner"].as_str(), step["mkdirs"].as_bool()), (Some(PKI[2]), Some("0600"), Some("root"), Some(true)));

    // Installed (the facts read the certificates and the keys' hashes): nothing to plan.
    let record = |path: &str| match path {
        "/etc/pki/CA/cacert.pem" => crate::facts::PKI_CACERT,
        "/etc/pki/libvirt/servercert.pem" => crate::facts::PKI_SERVERCERT,
        "/etc/pki/libvirt/clientcert.pem" => crate::facts::PKI_CLIENTCERT,
        "/etc/pki/qemu/ca-cert.pem" => crate::facts::PKI_QEMU_CACERT,
        "/etc/pki/qemu/server-cert.pem" => crate::facts::PKI_QEMU_SERVERCERT,
        "/etc/pki/qemu/client-cert.pem" => crate::facts::PKI_QEMU_CLIENTCERT,
        _ => "",
    };
    let mut keys = String::new();
    for (path, content) in &contents {
        match record(path) {
            "" => keys.push_str(&format!("{} {path}\n", apply::sha256(content.as_bytes()))),
            rec => crate::checks::testutil::set(&mut r, rec, content),
        }
    }
    crate::checks::testutil::set(&mut r, crate::facts::PKI_KEYS, &keys);
    // The host's clock now (the fixture's is from when it was captured).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    crate::checks::testutil::set(&mut r, "date", &format!("{now}\n"));
    let done = r.clone();
    let mut fleet2 = Fleet::new(vec![("cmp1", "198.18.42.11", done), ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    fleet2.policy.transport = crate::inventory::Transport::Tls;
    let views = fleet2.views();
    assert_eq!(fleet2.finding(0, id::TLS_CERTIFICATES).status, Status::Pass, "{:?}", fleet2.finding(0, id::TLS_CERTIFICATES));
    let p = plan_with_ca(&fleet2.ctx(&views, 0), &fleet2.findings(0), None, Some(&ca));
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Install { .. })), "{:#?}", p.steps);

    // Another CA's certificates on the host: replaced, each refused if changed since read.
    let dir2 = tempfile::tempdir().unwrap();
    crate::ca::init(dir2.path()).unwrap();
    let other = crate::ca::Ca::load(&dir2.path().join("cacert.pem"), &dir2.path().join("cakey.pem"));
    let p = plan_with_ca(&fleet2.ctx(&views, 0), &fleet2.findings(0), None, Some(&other));
    let expects: Vec<Option<String>> = p.steps.iter().filter_map(|s| match s { Step::Install { expect, .. } => Some(expect.clone()), _ => None }).collect();
    assert_eq!(expects.len(), 10, "{:#?}", p.steps);
    assert_eq!(expects[0], Some(apply::sha256(ca_pem.as_bytes())));
    assert_eq!(expects[2], Some(apply::sha256(contents[PKI[2]].as_bytes())));
    // A CA that cannot be loaded: a note, nothing installed.
    let bad: Result<crate::ca::Ca, String> = Err("/x/cakey.pem: No such file".into());
    let p = plan_with_ca(&fleet.ctx(&fleet.views(), 0), &fleet.findings(0), None, Some(&bad));
    assert!(p.notes.iter().any(|n| n == "tls.certificates: transport tls: cannot issue this host's certificates: /x/cakey.pem: No such file"), "{:?}", p.notes);
}

/// The fixture's `systemctl show` block of `unit` set active (listening) or inactive,
/// enabled or disabled.
fn set_unit(r: &mut crate::facts::raw::RawFacts, unit: &str, active: bool, enabled: bool) {
    edit(r, "units", |t| {
        let mut blocks: Vec<String> = t.split("\n\n").map(str::to_string).collect();
        let mut found = false;
        for b in blocks.iter_mut().filter(|b| b.lines().any(|l| l == format!("Id={unit}"))) {
            found = true;
            *b = b
                .lines()
                .map(|l| match l.split_once('=') {
                    Some(("ActiveState", _)) => format!("ActiveState={}", if active { "active" } else { "inactive" }),
                    Some(("SubState", _)) => format!("SubState={}", if active { "listening" } else { "dead" }),
                    Some(("UnitFileState", _)) => format!("UnitFileState={}", if enabled { "enabled" } else { "disabled" }),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        assert!(found, "no {unit} in the fixture");
        blocks.join("\n\n")
    });
}

/// cmp1 (socket) as after a tcp fix and a tls fix: both sockets enabled, active, listening.
fn socket_tcp_and_tls() -> crate::facts::raw::RawFacts {
    let mut r = raw("bookworm-socket");
    set_unit(&mut r, "libvirtd-tcp.socket", true, true);
    set_unit(&mut r, "libvirtd-tls.socket", true, true);
    edit(&mut r, "listen", |t| format!("{t}LISTEN 0 4096 *:16509 *:*\nLISTEN 0 4096 *:16514 *:*\n"));
    r
}

#[test]
fn transport_tls_closes_the_tcp_listener_unless_the_policy_keeps_it() {
    let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", socket_tcp_and_tls()), ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    fleet.policy.transport = crate::inventory::Transport::Tls;
    let listen = fleet.finding(0, id::LIBVIRT_LISTEN);
    assert_eq!(listen.status, Status::Fail, "{listen:?}");
    assert!(listen.message.contains("TCP 16509 is served too (libvirtd-tcp.socket active (listening), enabled; something listens on 16509): qemu+tcp needs no certificate; fix closes it ([policy] keep_tcp = true keeps it)"), "{}", listen.message);
    // The TLS socket is there: the service stopped (it holds the TCP socket's descriptor),
    // the TCP socket disabled and stopped; verified by the TLS port up and 16509 closed.
    let p = plan_of(&fleet, 0);
    let cmds = commands(&p);
    assert_eq!(cmds.iter().filter(|c| c.contains("libvirtd")).cloned().collect::<Vec<_>>(), vec!["systemctl stop libvirtd.service", "systemctl disable --now libvirtd-tcp.socket"], "{cmds:?}");
    assert_eq!(p.verify, Some(Verify { active: vec!["libvirtd-tls.socket".into()], port: Some(16514), closed: Some(16509) }));
    // Its undo enables and starts it again; a persistent change, kept after a reboot.
    let t = apply::transaction(&p, &fleet.hosts[0].1, &apply::TxnOptions { run: "r".into(), controller: "c".into(), step_delay: std::time::Duration::ZERO }, std::time::Duration::from_secs(30));
    let step = t["steps"].as_array().unwrap().iter().find(|s| s["argv"] == serde_json::json!(["systemctl", "disable", "--now", "libvirtd-tcp.socket"])).unwrap();
    assert_eq!(step["undo"], serde_json::json!([["systemctl", "enable", "--now", "libvirtd-tcp.socket"]]), "{step}");
    assert_eq!(step["runtime"], false, "{step}");
    assert_eq!(t["verify"]["closed"], 16509);

    // keep_tcp: the TCP listener is said, not failed, and not touched.
    fleet.policy.keep_tcp = true;
    let listen = fleet.finding(0, id::LIBVIRT_LISTEN);
    assert_eq!(listen.status, Status::Pass, "{listen:?}");
    assert!(listen.evidence.iter().any(|e| e.starts_with("TCP 16509 served too (libvirtd-tcp.socket") && e.ends_with("kept ([policy] keep_tcp = true)")), "{:?}", listen.evidence);
    assert!(!commands(&plan_of(&fleet, 0)).iter().any(|c| c.contains("libvirtd")), "{:?}", commands(&plan_of(&fleet, 0)));
}

#[test]
fn transport_tls_on_a_traditional_host_sets_listen_tcp_0() {
    // cmp3 as after a tcp fix: listen_tcp = 1, listen_tls = 0, --listen.
    let mut r = raw("bookworm-traditional-reject");
    edit(&mut r, "libvirtd_conf", |t| format!("{t}listen_tls = 0\nlisten_tcp = 1\n"));
    edit(&mut r, "envfile:libvirtd.service:/etc/sysconfig/libvirtd", |t| format!("{t}LIBVIRTD_ARGS=\"--listen\"\n"));
    edit(&mut r, "listen", |t| format!("{t}LISTEN 0 4096 *:16509 *:*\n"));
    let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", raw("bookworm-socket")), ("cmp3", "198.18.42.13", r)]);
    fleet.policy.transport = crate::inventory::Transport::Tls;
    let listen = fleet.finding(1, id::LIBVIRT_LISTEN);
    assert!(listen.message.contains("TCP 16509 is served too (/etc/libvirt/libvirtd.conf:"), "{listen:?}");
    let p = plan_of(&fleet, 1);
    let (orig, new) = edit_of(&p, "/etc/libvirt/libvirtd.conf");
    assert_eq!(changed_lines(orig, new), vec!["-listen_tls = 0", "-listen_tcp = 1", "+listen_tls = 1", "+listen_tcp = 0"]);
    assert_eq!(p.verify, Some(Verify { active: vec!["libvirtd.service".into()], port: Some(16514), closed: Some(16509) }));
}

#[test]
fn transport_tls_wants_qemu_to_verify_migration_peers() {
    // qemu.conf turns the check of the peer's certificate off: libvirt.auth fails, fix
    // turns it on again (and the daemon restarts to read it); auth_tls is left as it is.
    for (line, key) in [("migrate_tls_x509_verify = 0", "migrate_tls_x509_verify"), ("default_tls_x509_verify = 0", "default_tls_x509_verify")] {
        let mut r = socket_tcp_and_tls();
        set_unit(&mut r, "libvirtd-tcp.socket", false, false);
        edit(&mut r, "listen", |t| t.replace("LISTEN 0 4096 *:16509 *:*\n", ""));
        edit(&mut r, "qemu_conf", |t| format!("{t}{line}\n"));
        let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
        fleet.policy.transport = crate::inventory::Transport::Tls;
        let auth = fleet.finding(0, id::LIBVIRT_AUTH);
        assert_eq!(auth.status, Status::Fail, "{auth:?}");
        assert_eq!(auth.message, format!("/etc/libvirt/qemu.conf: {key} = 0: QEMU accepts a migration stream from any client, certificate or not"));
        let p = plan_of(&fleet, 0);
        let (orig, new) = edit_of(&p, "/etc/libvirt/qemu.conf");
        assert_eq!(changed_lines(orig, new), vec![format!("-{line}"), format!("+{key} = 1")]);
        assert!(!p.steps.iter().any(|s| matches!(s, Step::Edit { path, .. } if path == "/etc/libvirt/libvirtd.conf")), "{:#?}", p.steps);
        assert!(commands(&p).contains(&"systemctl try-restart libvirtd.service".to_string()), "{:?}", commands(&p));
    }
    // migrate_ set to 1 wins over a default of 0.
    let mut r = raw("bookworm-socket");
    edit(&mut r, "qemu_conf", |t| format!("{t}default_tls_x509_verify = 0\nmigrate_tls_x509_verify = 1\n"));
    assert_eq!(crate::checks::libvirt_auth::qemu_unverified(&Fleet::new(vec![("cmp1", "198.18.42.11", r)]).hosts[0].1), None);
}

#[test]
fn nova_goes_to_qemu_tls_with_native_tls_and_back_to_tcp() {
    // transport tls: the scheme (libvirt's connection) and native TLS (QEMU's streams),
    // which are independent: native TLS alone leaves Nova on qemu+tcp.
    let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", raw("bookworm-socket"))]);
    fleet.hosts[0].0.nova_release = crate::nova_release::NovaRelease::parse("zed");
    fleet.policy.transport = crate::inventory::Transport::Tls;
    let p = plan_of(&fleet, 0);
    let (orig, new) = edit_of(&p, "/etc/nova/nova.conf");
    let mut changed = changed_lines(orig, new);
    changed.sort();
    assert!(changed.iter().any(|l| l == "+live_migration_scheme = tls") && changed.iter().any(|l| l == "+live_migration_with_native_tls = true"), "{changed:?}");
    assert!(changed.iter().all(|l| l.starts_with("-#") || l.starts_with('+')), "{changed:?}");
    assert!(!p.notes.iter().any(|n| n.starts_with("nova.migration-uri")), "{:?}", p.notes);
    // Before Stein: the scheme, and a note that the streams stay in clear.
    fleet.hosts[0].0.nova_release = crate::nova_release::NovaRelease::parse("rocky");
    let p = plan_of(&fleet, 0);
    assert!(edit_of(&p, "/etc/nova/nova.conf").1.contains("\nlive_migration_scheme = tls\n"));
    assert!(p.notes.iter().any(|n| n.contains("has no live_migration_with_native_tls (Stein and later): the migration streams stay in clear")), "{:?}", p.notes);

    // Back to tcp: both undone where set.
    let mut r = raw("bookworm-socket");
    edit(&mut r, "nova_conf", |t| t.replacen("[libvirt]\n", "[libvirt]\nlive_migration_scheme = tls\nlive_migration_with_native_tls = true\n", 1));
    let mut fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r)]);
    fleet.hosts[0].0.nova_release = crate::nova_release::NovaRelease::parse("zed");
    let uri = fleet.finding(0, id::NOVA_MIGRATION_URI);
    assert_eq!(uri.status, Status::Fail, "{uri:?}");
    let p = plan_of(&fleet, 0);
    let (orig, new) = edit_of(&p, "/etc/nova/nova.conf");
    assert_eq!(changed_lines(orig, new), vec!["-live_migration_scheme = tls", "-live_migration_with_native_tls = true", "+live_migration_scheme = tcp", "+live_migration_with_native_tls = false"]);
    assert!(!p.notes.iter().any(|n| n.starts_with("nova.migration-uri")), "{:?}", p.notes);
}

#[test]
fn legacy_iptables_rules_that_refuse_are_a_note_not_a_change() {
    let legacy = std::fs::read_to_string(format!("{}/tests/fixtures/iptables/legacy-reject.rules", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut r = raw("bookworm-socket");
    crate::checks::testutil::set(&mut r, "iptables_legacy_save", &legacy);
    let fleet = Fleet::new(vec![("cmp1", "198.18.42.11", r), ("cmp2", "198.18.42.12", raw("trixie-socket")), ("cmp3", "198.18.42.13", raw("bookworm-traditional-reject"))]);
    let p = plan_of(&fleet, 0);
    assert!(!p.steps.iter().any(|s| matches!(s, Step::FirewallInsert { .. } | Step::NftRule { .. })), "{:?}", p.steps);
    let n = p.notes.iter().find(|n| n.starts_with("firewall: libvirt TCP 16509 from cmp2 (198.18.42.12) is refused by legacy iptables rules (iptables-legacy-save: REJECT by line 10")).unwrap_or_else(|| panic!("{:?}", p.notes));
    assert!(n.ends_with("not changed: remove them or accept the peers with iptables-legacy"), "{n}");
}
