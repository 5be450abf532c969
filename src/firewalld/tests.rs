//! Parser and evaluation over firewalld output captured on a lab host (Debian 13,
//! firewalld 2.3.1, nftables backend): tests/fixtures/firewalld/ holds
//! `firewall-cmd --list-all-zones` (runtime, with a runtime-only port) and
//! `--permanent --list-all-zones` after these changes to the stock configuration:
//! zone internal: source 198.18.47.13/32, service libvirt; zone public (eth0,
//! default): port 5900-5999/tcp and rich rules (reject 16509 from .14, drop all
//! from .15 at priority -5, IPv6 accept of 16509 from fd42:42::11, libvirt service
//! from 198.18.47.0/24 with logging); runtime only: port 49152-49215/tcp.

use super::*;
use crate::facts::{Firewalld, HostFacts};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The firewalld configuration of a facts fixture.
fn config(facts: &str) -> (Config, Vec<IfaceNet>) {
    let f = HostFacts::parse(&fixture(&format!("facts/{facts}.txt"))).unwrap();
    match f.firewalld {
        Some(Firewalld::Running(c)) => (*c, f.interfaces),
        other => panic!("{facts}: firewalld not running: {other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn stock_listing() {
    let (c, ifaces) = config("trixie-socket-firewalld");
    assert_eq!(c.default_zone(), "public");
    assert_eq!(c.backend.as_deref(), Some("nftables"));
    let public = c.runtime.zone("public").unwrap();
    assert!(public.is_default && public.active);
    assert_eq!(public.target, "default");
    assert_eq!(public.interfaces, ["eth0"]);
    assert_eq!(public.services, ["dhcpv6-client", "ssh"]);
    assert!(public.ports.is_empty() && public.rich_rules.is_empty());
    assert_eq!(c.runtime.zone("block").unwrap().target, "%%REJECT%%");
    assert_eq!(c.runtime.zone("trusted").unwrap().target, "ACCEPT");
    assert_eq!(c.runtime.zones.iter().filter(|z| z.active).count(), 1);
    assert_eq!(c.permanent.as_ref().unwrap().zone("public").unwrap().interfaces, ["eth0"]);
    assert_eq!(c.services["ssh"].iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["22/tcp"]);
    assert!(ifaces.iter().any(|i| i.iface == "eth0" && i.net.to_string() == "198.18.47.12/24"), "{ifaces:?}");

    // A peer on eth0's network lands in public: ssh yes, libvirt and migration no.
    let land = c.landing(ip("198.18.47.11"), &ifaces);
    assert_eq!((land.zone.as_str(), land.via.as_str()), ("public", "interface eth0"));
    assert!(c.decide(&c.runtime, "public", ip("198.18.47.11"), 22).is_accept());
    let d = c.decide(&c.runtime, "public", ip("198.18.47.11"), 16509);
    assert_eq!(d.to_string(), "REJECT by zone target default");
    let (port, _) = c.first_blocked(&c.runtime, "public", ip("198.18.47.11"), 49152..=49215).unwrap();
    assert_eq!(port, 49152);
    // Routed from elsewhere: still the only interface's zone.
    let land = c.landing(ip("192.0.2.7"), &ifaces);
    assert_eq!(land.zone, "public");
    assert!(land.uncertain.is_empty());
}

#[test]
fn custom_listing_rich_rules() {
    let rt = Zones::parse(&fixture("firewalld/trixie-runtime.txt")).unwrap();
    let public = rt.zone("public").unwrap();
    assert_eq!(public.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["5900-5999/tcp", "49152-49215/tcp"]);
    assert_eq!(public.rich_rules.len(), 4);
    let drop = public.rich_rules.iter().find(|r| r.priority == -5).unwrap();
    assert_eq!(drop.action, Action::Drop);
    assert_eq!(drop.element, Element::All);
    assert!(matches!(&drop.source, Some(RuleAddr { negated: false, what: AddrMatch::Net(n) }) if n.to_string() == "198.18.47.15/32"));
    let logged = public.rich_rules.iter().find(|r| r.text.contains("log prefix")).unwrap();
    assert_eq!(logged.element, Element::Service("libvirt".into()));
    assert_eq!(logged.action, Action::Accept);
    let v6 = public.rich_rules.iter().find(|r| r.family == Some(Family::Ipv6)).unwrap();
    // The text migready would add is the text firewalld lists (that is how fix knows its own).
    assert_eq!(v6.text, accept_rule("fd42:42::11", "16509"));
    let perm = Zones::parse(&fixture("firewalld/trixie-permanent.txt")).unwrap();
    assert!(perm.marked_default().is_some_and(|z| z.name == "public" && !z.active));
    assert_eq!(perm.zone("public").unwrap().ports.len(), 1);
    assert_eq!(perm.zone("internal").unwrap().sources, ["198.18.47.13/32"]);
}

#[test]
fn custom_decisions() {
    let (c, ifaces) = config("trixie-socket-firewalld-custom");
    let perm = c.permanent.as_ref().unwrap();
    let at = |src: &str, port: u16| {
        let land = c.landing(ip(src), &ifaces);
        format!("{}: {}", land.zone, c.decide(&c.runtime, &land.zone, ip(src), port))
    };
    assert_eq!(
        at("198.18.47.11", 16509),
        "public: ACCEPT by rich rule: rule family=\"ipv4\" source address=\"198.18.47.0/24\" service name=\"libvirt\" log prefix=\"libvirt \" level=\"info\" accept"
    );
    // A reject rule wins over an accept rule of the same priority.
    assert_eq!(at("198.18.47.14", 16509), "public: REJECT by rich rule: rule family=\"ipv4\" source address=\"198.18.47.14\" port port=\"16509\" protocol=\"tcp\" reject");
    // A negative priority drop comes before the zone's open ports.
    assert_eq!(at("198.18.47.15", 5900), "public: DROP by rich rule: rule priority=\"-5\" family=\"ipv4\" source address=\"198.18.47.15\" drop");
    assert_eq!(at("198.18.47.11", 5901), "public: ACCEPT by port 5900-5999/tcp");
    // A source-bound zone wins over the interface's zone, and does not fall through to it.
    let land = c.landing(ip("198.18.47.13"), &ifaces);
    assert_eq!((land.zone.as_str(), land.via.as_str()), ("internal", "source 198.18.47.13/32"));
    assert_eq!(at("198.18.47.13", 16509), "internal: ACCEPT by service libvirt (16509/tcp)");
    assert_eq!(at("198.18.47.13", 49152), "internal: REJECT by zone target default");
    // The migration range is open now (runtime only), not after a reload.
    assert!(c.first_blocked(&c.runtime, "public", ip("198.18.47.11"), 49152..=49215).is_none());
    let (port, d) = c.first_blocked(perm, "public", ip("198.18.47.11"), 49152..=49215).unwrap();
    assert_eq!((port, d.to_string()), (49152, "REJECT by zone target default".to_string()));
    // IPv6: the family="ipv6" rule admits only its source.
    assert!(c.decide(&c.runtime, "public", ip("fd42:42::11"), 16509).is_accept());
    assert!(!c.decide(&c.runtime, "public", ip("fd42:42::12"), 16509).is_accept());
    assert!(!c.decide(&c.runtime, "public", ip("fd42:42::11"), 16510).is_accept());
    // An IPv4 rule never admits an IPv6 peer and vice versa.
    assert!(!c.decide(&c.runtime, "public", ip("::ffff:198.18.47.11"), 16509).is_accept());
}

#[test]
fn services_from_xml() {
    let s = parse_services(
        "/usr/lib/firewalld/services/libvirt.xml:<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         /usr/lib/firewalld/services/libvirt.xml:  <port protocol=\"tcp\" port=\"16509\"/>\n\
         /etc/firewalld/services/mig.xml:  <port port=\"49152-49215\" protocol=\"tcp\"/>\n\
         /etc/firewalld/services/mig.xml:  <include service=\"libvirt\"/>\n\
         /etc/firewalld/services/dns.xml:  <port protocol=\"udp\" port=\"53\"/>\n",
    );
    assert_eq!(s["libvirt"].iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["16509/tcp"]);
    assert_eq!(s["mig"].iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["49152-49215/tcp", "16509/tcp"]);
    assert!(!s["dns"][0].covers_tcp(53));
}

#[test]
fn landing_edge_cases() {
    let rt = Zones::parse(&fixture("firewalld/trixie-runtime.txt")).unwrap();
    let mut c = Config { runtime: rt, permanent: Err("not read".into()), conf_default_zone: None, backend: None, services: BTreeMap::new() };
    let ifaces = parse_ip_addr(
        "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 198.18.47.12/24 brd 198.18.47.255 scope global eth0\n\
         3: eth1    inet 10.1.0.5/16 scope global eth1\n",
    );
    // eth1 is in no zone: the default zone.
    let land = c.landing(ip("10.1.2.3"), &ifaces);
    assert_eq!((land.zone.as_str(), land.via.as_str()), ("public", "default zone (interface eth1 is in no zone)"));
    // A longer prefix wins among sources; an ipset source is a caveat.
    c.runtime.zones.iter_mut().find(|z| z.name == "trusted").unwrap().sources = vec!["198.18.47.0/24".into(), "ipset:peers".into()];
    let land = c.landing(ip("198.18.47.13"), &ifaces);
    assert_eq!(land.zone, "internal");
    assert_eq!(land.uncertain, ["zone trusted source ipset:peers: membership unknown, assumed not to hold the peer"]);
    assert_eq!(c.landing(ip("198.18.47.20"), &ifaces).zone, "trusted");
    assert!(c.decide(&c.runtime, "trusted", ip("198.18.47.20"), 16509).is_accept());
    // Service definitions not read: a caveat, not an accept.
    let d = c.decide(&c.runtime, "internal", ip("198.18.47.13"), 16509);
    assert!(!d.is_accept() && d.uncertain.iter().any(|u| u.contains("service libvirt not read")), "{d:?}");
}

#[test]
fn parse_errors_name_the_line_and_zone() {
    let e = Zones::parse("public (active)\n  target: default\n  ports: 22/tcp 99999/tcp\n").unwrap_err();
    assert_eq!(e.to_string(), "line 3: zone public: bad port `99999/tcp`");
    let e = Zones::parse("public\n  rich rules: \n\trule family=\"ipx\" accept\n").unwrap_err();
    assert_eq!(e.to_string(), "line 3: zone public: rich rule `rule family=\"ipx\" accept`: unknown family `ipx`");
    let e = Zones::parse("  target: default\n").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(Zones::parse("").is_err());
    assert!(RichRule::parse("rule source address=\"1.2.3.4 accept").is_err());
}

#[test]
fn accept_rules() {
    assert_eq!(accept_rule("198.18.47.11", "16509"), "rule family=\"ipv4\" source address=\"198.18.47.11/32\" port port=\"16509\" protocol=\"tcp\" accept");
    assert_eq!(accept_rule("2001:db8::/64", "49152-49215"), "rule family=\"ipv6\" source address=\"2001:db8::/64\" port port=\"49152-49215\" protocol=\"tcp\" accept");
    let r = RichRule::parse(&accept_rule("198.18.47.0/24", "49152-49215")).unwrap();
    assert_eq!(r.element, Element::Port(PortSpec { range: PortRange { first: 49152, last: 49215 }, tcp: true, udp: false }));
}

#[test]
fn bookworm_listing_without_markers() {
    // Debian 12, firewalld 1.3.3, eth0 bound to no zone: no `(default)` or `(active)`
    // markers and no priority lines. The default zone then comes from firewalld.conf.
    let rt = Zones::parse(&fixture("firewalld/bookworm-runtime.txt")).unwrap();
    assert!(rt.marked_default().is_none() && rt.zones.iter().all(|z| !z.active));
    assert_eq!(rt.zone("public").unwrap().services, ["dhcpv6-client", "ssh"]);
    let c = Config { runtime: rt, permanent: Err("not read".into()), conf_default_zone: Some("home".into()), backend: None, services: BTreeMap::new() };
    assert_eq!(c.default_zone(), "home");
    let ifaces = parse_ip_addr("2: eth0    inet 198.18.47.11/24 brd 198.18.47.255 scope global eth0\n");
    let land = c.landing(ip("198.18.47.12"), &ifaces);
    assert_eq!((land.zone.as_str(), land.via.as_str()), ("home", "default zone (interface eth0 is in no zone)"));
}
