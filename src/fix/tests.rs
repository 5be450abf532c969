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
    assert_eq!(p.verify, Some(Verify { active: vec!["libvirtd-tcp.socket".into()], port: Some(16509) }));
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
    assert_eq!(p.verify, Some(Verify { active: vec!["libvirtd.service".into()], port: Some(16509) }));
}

#[test]
fn seed_host_loses_listen_and_gets_the_socket() {
    let p = plan_of(&stock(), 2);
    let (orig, new) = edit_of(&p, "/etc/default/libvirtd");
    assert_eq!(changed_lines(orig, new), vec!["-LIBVIRTD_ARGS=\"--listen\"", "+#LIBVIRTD_ARGS=\"--listen\""]);
    // auth_tcp = none is already set (the seed's recipe): libvirtd.conf untouched.
    assert!(!p.steps.iter().any(|s| matches!(s, Step::Edit { path, .. } if path == "/etc/libvirt/libvirtd.conf")));
    assert_eq!(commands(&p), vec!["systemctl reset-failed libvirtd.service", "systemctl enable --now libvirtd-tcp.socket"]);
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
            d.set("listen_tcp", crate::formats::libvirt_conf::Value::Int(1));
            d.set("auth_tcp", crate::formats::libvirt_conf::Value::Str("none".into()));
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
