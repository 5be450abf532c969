//! Whatever a host reports, no check and no planner panics: facts built from
//! arbitrary records (the lab fixtures' records, nftables host included, mixed across
//! hosts, mutated line by line, replaced by junk or by TLS certificates, missing or
//! failed) go through every check, the plan (with no CA, a real one and one that
//! failed to load: the TLS planner), its rendering and validate's prechecks.

use super::*;
use crate::checks::testutil::{raw, spec};
use crate::checks::{run_host, HostView};
use crate::facts::{RawFacts, Record};
use crate::inventory::{AuthTcp, Policy};
use proptest::prelude::*;
use std::sync::LazyLock;

const FIXTURES: &[&str] = &[
    "bookworm-seed",
    "bookworm-socket",
    "bookworm-socket-nftables",
    "bookworm-traditional-reject",
    "trixie-socket",
    "trixie-socket-firewalld",
    "trixie-socket-firewalld-custom",
    "trixie-traditional-drop",
];

static RAWS: LazyLock<Vec<RawFacts>> = LazyLock::new(|| FIXTURES.iter().map(|f| raw(f)).collect());

/// Every record name the fixtures hold, and the dynamic ones they could hold.
static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut names: Vec<String> = RAWS.iter().flat_map(|r| r.records.keys().cloned()).collect();
    names.extend(
        [
            "envfile:libvirtd.service:/etc/sysconfig/libvirtd",
            "envfile:virtproxyd.service:/etc/sysconfig/virtproxyd",
            "persist:/etc/iptables/rules.v4",
            "persist:/etc/sysconfig/ip6tables",
            "persist:/etc/iptables/rules.v6",
            "link:libvirtd_conf",
            "link:nova_conf",
            "link:persist:/etc/sysconfig/iptables",
            "nftconf:2:/etc/nftables.d/extra.nft",
            crate::facts::PKI_CACERT,
            crate::facts::PKI_SERVERCERT,
            crate::facts::PKI_CLIENTCERT,
            crate::facts::PKI_QEMU_CACERT,
            crate::facts::PKI_QEMU_SERVERCERT,
            crate::facts::PKI_QEMU_CLIENTCERT,
            crate::facts::PKI_KEYS,
            crate::facts::QEMU_GROUP,
        ]
        .map(String::from),
    );
    names.sort();
    names.dedup();
    names
});

/// A real CA (made once, in a directory kept for the test binary's life), for the TLS
/// planner; a CA that failed to load is tried too.
static CA: LazyLock<(tempfile::TempDir, Result<crate::ca::Ca, String>)> = LazyLock::new(|| {
    let d = tempfile::tempdir().unwrap();
    let (c, k) = crate::ca::init(d.path()).unwrap();
    let ca = crate::ca::Ca::load(&c, &k);
    assert!(ca.is_ok(), "{:?}", ca.as_ref().err());
    (d, ca)
});

/// Certificates a host could hold: the CA's own, server and client ones for names the
/// generated hosts have (valid, expired, not yet valid), one from another CA, and
/// broken PEM.
static CERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    use crate::ca::Kind;
    let ca = CA.1.as_ref().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let names: Vec<String> = ["h0", "h1", "198.18.42.11", "fd42:42::11", "cmp1"].map(String::from).to_vec();
    let d = time::Duration::days(1);
    let mut v = vec![
        ca.cert_pem.clone(),
        ca.issue("h0", &names, Kind::Server, 365).unwrap().cert_pem,
        ca.issue("h1", &names[1..2], Kind::Client, 365).unwrap().cert_pem,
        ca.issue_valid("h0", &names[..1], Kind::Server, now - d * 400, now - d).unwrap().cert_pem,
        ca.issue_valid("h2", &[], Kind::Client, now + d, now + d * 2).unwrap().cert_pem,
    ];
    let other = tempfile::tempdir().unwrap();
    let (c, k) = crate::ca::init(other.path()).unwrap();
    let other = crate::ca::Ca::load(&c, &k).unwrap();
    v.push(other.cert_pem.clone());
    v.push(other.issue("h0", &names, Kind::Server, 30).unwrap().cert_pem);
    let cut = v[1][..v[1].len() / 2].to_string();
    v.push(cut);
    v.push(format!("{}{}", v[0], v[1]));
    v.push("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n".into());
    v
});

/// Lines that mean something to one parser or another, with awkward values.
fn junk_line() -> impl Strategy<Value = String> {
    prop_oneof![
        // systemctl show
        "Id=(libvirtd|virtproxyd|nova-compute|firewalld|libvirtd-tcp|virtproxyd-tcp)\\.(service|socket)",
        "(LoadState|ActiveState|SubState|UnitFileState)=(loaded|masked|not-found|active|inactive|failed|enabled|disabled|static|)",
        "MainPID=[0-9]{0,25}|Listen=[\\[\\]:0-9a-z*]{0,12}:[0-9]{0,7} \\(Stream\\)|Listen=[0-9]{1,7} \\(Stream\\)",
        "ExecStart=\\{ path=/usr/sbin/libvirtd ; argv\\[\\]=/usr/sbin/libvirtd \\$LIBVIRTD_ARGS( --listen| -t [0-9]{1,3})? ; \\}|ExecStart=.{0,12}",
        "Environment=\"?LIBVIRTD_ARGS=(--listen|--timeout|-t|120| ){0,4}\"?|EnvironmentFiles=/etc/sysconfig/libvirtd \\(ignore_errors=yes\\)",
        // iptables-save
        "\\*(filter|nat)|COMMIT|:(INPUT|FORWARD|f) (ACCEPT|DROP|-) \\[0:0\\]",
        "-A INPUT( -s [0-9./:a-f]{1,18})?( -p tcp)?( -m (tcp|multiport|state|conntrack|comment))?( --dports? [0-9:,]{1,13})?( --comment \"[a-z: ]{0,8}\")?( -j (ACCEPT|REJECT|DROP|INPUT_ZONES|f))?",
        // ss, getent, ip addr, df, meminfo, dates, versions
        "LISTEN 0 [0-9]{1,4} [\\[\\]:.0-9a-f*%]{1,20}:[0-9]{1,6} [^ ]{0,8}",
        "[0-9a-f.:]{1,20} (STREAM|DGRAM) ?[a-z]{0,5}|[0-9]: [a-z0-9]{1,5} +inet6? [0-9a-f.:]{1,20}/[0-9]{1,3}( [a-z]{0,5})?",
        "/dev/[a-z]{1,3} [0-9]{1,25} [0-9]{1,25} [0-9]{1,25} [0-9]{1,3}% /|MemAvailable: +[0-9]{1,25} kB|[0-9-]{1,25}",
        "(libvirtd \\(libvirt\\)|QEMU emulator version) [0-9]{1,12}\\.[0-9]{1,12}(\\.[0-9]{1,12})?|[0-9]{1,3}:[0-9.]{1,12}(-[0-9a-z~+]{1,8})?",
        "(ext4|nfs4|ceph|xfs) /dev/[a-z]{1,4} /var/lib/nova/instances",
        // capabilities
        "<host> *<uuid>[0-9a-f-]{0,36}</uuid>|<arch name='x86_64'>|</arch>|<machine[a-z ='0-9]{0,12}>pc-i440fx-[0-9.]{1,5}</machine>",
        // libvirt, nova, env files
        "(listen_tcp|listen_tls|migration_port_min|migration_port_max|tcp_port|auth_tcp|host_uuid) ?= ?([+-]?[0-9]{1,20}|\"[a-z0-9-]{0,8}\"|\\[ \\])",
        "\\[(libvirt|DEFAULT|vnc)\\]|(live_migration_(flag|tunnelled|uri|scheme|inbound_addr)|block_migration_flag|server_listen|vncserver_listen) ?[=:] ?[A-Za-z0-9_,:/.+ ]{0,30}",
        "[ \\t]+VIR_MIGRATE_[A-Z_]{1,12},?",
        "(#|# )?LIBVIRTD_ARGS=(\"|')?(--listen|-l|--timeout|-t|120|--config|'a b'| ){0,5}(\"|')?",
        // firewall-cmd --list-all-zones, firewalld.conf, service files
        "[a-z]{1,8}( \\(active\\)| \\(default, active\\))?",
        "  (target|interfaces|sources|services|ports|protocols|forward|masquerade|icmp-block-inversion): [a-z0-9./%/ -]{0,20}",
        "  rich rules: ?|\trule( priority=\"-?[0-9]{1,12}\")?( family=\"ipv[46x]\")?( source (NOT )?address=\"[0-9./:a-f]{0,18}\")?( port port=\"[0-9-]{0,11}\" protocol=\"(tcp|udp)\")? (accept|reject|drop)",
        "(DefaultZone|FirewallBackend)=[a-z]{0,8}|/usr/lib/firewalld/services/[a-z]{1,6}\\.xml:<port protocol=\"tcp\" port=\"[0-9-]{0,11}\"/>",
        // nft -a list ruleset, /etc/nftables.conf
        "(table|chain) (inet|ip|ip6|arp|bridge|netdev)? ?[a-z]{0,6} \\{|\\}|include \"[a-z/*.]{0,12}\"|flush ruleset",
        "[ \\t]*(type filter hook (input|forward) priority (0|-?[0-9]{1,20}|filter);|policy (drop|accept);)( # handle [0-9]{1,20})?",
        "[ \\t]*(iif(name)? \"?lo\"?|ip6? saddr [0-9./:a-f{}, ]{0,20}|ct state [a-z,{} ]{0,20}|tcp dport [0-9{}:, -]{0,16}|meta l4proto tcp)* ?(accept|drop|reject|jump [a-z]{0,4}|goto [a-z]{0,4}|counter)?( comment \"[a-z: ]{0,12}\")?( # handle [0-9]{1,20})?",
        "(add|insert) rule (inet )?filter input .{0,12}|[{}\\[\\]\",:a-z0-9]{0,24}",
        // pki_keys, getent group
        "[0-9a-f]{64} /etc/pki/(libvirt/private/(server|client)key|qemu/(server|client)-key)\\.pem|(libvirt-qemu|qemu):x:[0-9]{1,6}:[a-z,]{0,12}",
        // anything
        ".{0,16}",
    ]
}

/// A record: missing, failed, or some text: a fixture's (as is or mutated), or junk.
#[derive(Debug, Clone)]
enum Content {
    Missing,
    Failed(i32),
    Fixture(usize),
    Mutated(usize, Vec<(usize, u8, String)>),
    Junk(Vec<String>),
    Cert(usize),
    Mixed(usize, Vec<(usize, u8, String)>),
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        1 => Just(Content::Missing),
        1 => prop_oneof![Just(1), Just(127)].prop_map(Content::Failed),
        4 => (0..FIXTURES.len()).prop_map(Content::Fixture),
        4 => (0..FIXTURES.len(), prop::collection::vec((any::<usize>(), 0u8..6, junk_line()), 1..6)).prop_map(|(f, ops)| Content::Mutated(f, ops)),
        1 => prop::collection::vec(junk_line(), 0..8).prop_map(Content::Junk),
        1 => any::<usize>().prop_map(Content::Cert),
        1 => (any::<usize>(), prop::collection::vec((any::<usize>(), 0u8..6, junk_line()), 1..4)).prop_map(|(c, ops)| Content::Mixed(c, ops)),
    ]
}

/// `text` with lines replaced, inserted, deleted, duplicated, or the numbers of
/// a line or of every line made extreme.
fn mutate(text: &str, ops: &[(usize, u8, String)]) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    for (at, kind, junk) in ops {
        if lines.is_empty() {
            lines.push(format!("{junk}\n"));
            continue;
        }
        let i = at % lines.len();
        match kind {
            0 => lines[i] = format!("{junk}\n"),
            1 => lines.insert(i, format!("{junk}\n")),
            2 => drop(lines.remove(i)),
            3 => lines.insert(i, lines[i].clone()),
            4 => lines[i] = extreme_numbers(&lines[i], *at),
            _ => lines = lines.iter().map(|l| extreme_numbers(l, *at)).collect(),
        }
    }
    lines.concat()
}

/// `line` with every number replaced by a boundary value.
fn extreme_numbers(line: &str, pick: usize) -> String {
    const VALUES: &[&str] = &["18446744073709551615", "9223372036854775807", "4294967296", "65536", "65535", "0", "-1", "99999999999999999999999"];
    let value = VALUES[pick % VALUES.len()];
    let mut out = String::new();
    let mut digits = false;
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !digits {
                out.push_str(value);
            }
            digits = true;
        } else {
            digits = false;
            out.push(c);
        }
    }
    out
}

fn build(contents: &[Content]) -> RawFacts {
    let mut raw = RawFacts::default();
    for (name, c) in NAMES.iter().zip(contents) {
        let fixture = |f: usize| RAWS[f].get(name).cloned().unwrap_or_default();
        let record = match c {
            Content::Missing => continue,
            Content::Failed(status) => Record { status: *status, stdout: String::new(), stderr: "no such file".into() },
            Content::Fixture(f) => fixture(*f),
            Content::Mutated(f, ops) => {
                let r = fixture(*f);
                Record { stdout: mutate(&r.stdout, ops), ..r }
            }
            Content::Junk(lines) => Record { status: 0, stdout: lines.iter().map(|l| format!("{l}\n")).collect(), stderr: String::new() },
            Content::Cert(c) => Record { status: 0, stdout: CERTS[c % CERTS.len()].clone(), stderr: String::new() },
            // A certificate's PEM mutated line by line.
            Content::Mixed(c, ops) => Record { status: 0, stdout: mutate(&CERTS[c % CERTS.len()], ops), stderr: String::new() },
        };
        raw.records.insert(name.clone(), record);
    }
    raw
}

fn host() -> impl Strategy<Value = Vec<Content>> {
    prop::collection::vec(content(), NAMES.len())
}

proptest! {
    // Each case parses up to three hosts' facts (nova.conf files of 350 KB): 48 by
    // default, PROPTEST_CASES for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_facts_never_panic_checks_or_planners(
        hosts in prop::collection::vec((host(), "198\\.18\\.42\\.1[0-9]|fd42:42::1[0-9]|cmp[0-9]|", prop::option::of(0u32..40)), 1..4),
        allowed in prop::collection::vec("198\\.18\\.0\\.0/16|fd42::/16|10\\.0\\.0\\.1|junk/99", 0..2),
        sasl in any::<bool>(),
        tls in any::<bool>(),
        keep_tcp in any::<bool>(),
        port in prop_oneof![Just(16509u16), Just(0u16), Just(65535u16)],
        ca_pick in 0u8..3,
    ) {
        let policy = Policy { auth_tcp: if sasl { AuthTcp::Sasl } else { AuthTcp::None }, transport: if tls { crate::inventory::Transport::Tls } else { Default::default() }, libvirt_port: port, allowed_sources: allowed, keep_tcp };
        let built: Vec<(crate::inventory::HostSpec, HostFacts)> = hosts
            .iter()
            .enumerate()
            .map(|(i, (contents, address, release))| {
                let mut s = spec(&format!("h{i}"), address);
                s.nova_release = release.and_then(|r| crate::nova_release::NovaRelease::parse(&r.to_string()));
                (s, HostFacts::from_raw(build(contents)))
            })
            .collect();
        let views: Vec<HostView> = built.iter().map(|(s, f)| HostView { spec: s, facts: f }).collect();
        let facts: Vec<(&str, &HostFacts)> = views.iter().map(|v| (v.name(), v.facts)).collect();
        let dup = duplicate_uuid_hosts(&facts);
        for i in 0..views.len() {
            let ctx = crate::checks::Ctx {
                me: views[i],
                peers: views.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, v)| *v).collect(),
                unreached: Vec::new(),
                policy: &policy,
            };
            let findings = run_host(&ctx, &[]);
            prop_assert_eq!(findings.len(), crate::checks::ALL.len());
            let uuid = dup.contains(&views[i].spec.name).then_some("6f2c3d7e-0000-4000-8000-000000000001");
            let failed_ca: Result<crate::ca::Ca, String> = Err("no CA (test)".into());
            let ca = match ca_pick {
                0 => None,
                1 => Some(&CA.1),
                _ => Some(&failed_ca),
            };
            let p = plan_with_ca(&ctx, &findings, uuid, ca);
            let mut out = Vec::new();
            render::print_plan(&mut out, &p).unwrap();
            let _ = super::run::plan_json(&p);
            let _ = apply::transaction(&p, views[i].facts, &apply::TxnOptions { run: "r".into(), controller: "c".into(), step_delay: std::time::Duration::ZERO }, std::time::Duration::from_secs(35));
            // An edit never touches a file the facts did not read as it is.
            for s in &p.steps {
                if let Step::Edit { original: Some(o), new, .. } = s {
                    prop_assert_ne!(o, new);
                }
            }
            for peer in views.iter().filter(|v| v.name() != views[i].name()) {
                let need = crate::validate::precheck::Need { memory_kib: 65536, disk_bytes: 1 << 30 };
                let _ = crate::validate::precheck::check(&views[i], peer, need);
            }
        }
    }
}
