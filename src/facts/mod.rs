//! Facts: everything the checks need to know about one host, gathered in one
//! remote round trip (`templates/facts.sh`) and parsed into typed values.
//! Parsing is pure: the same text always gives the same facts, which is what
//! the fixture tests rely on.

pub mod nova_conf;
pub mod raw;
pub mod systemd;
pub mod txn;

use crate::firewall::{self, Ruleset};
use crate::firewalld::{self as fwd, IfaceNet, Zones};
use crate::formats::envfile::EnvFile;
use crate::formats::libvirt_conf::{ConfDoc, Value};
use crate::nftables;
use crate::nova_release::NovaRelease;
pub use nova_conf::NovaConf;
pub use raw::{RawError, RawFacts, Record};
use regex::Regex;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::LazyLock;
pub use systemd::Unit;

/// The script run on every host. Kept in templates/ so operators can read it.
pub const SCRIPT: &str = include_str!("../../templates/facts.sh");

/// A version like 9.0.0 or 10.0.13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Version {
    /// The first `N.N[.N]` in `text`.
    pub fn find(text: &str) -> Option<Version> {
        static RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(\d+)\.(\d+)(?:\.(\d+))?").unwrap());
        let c = RE.captures(text)?;
        let n = |i: usize| c.get(i).map_or(Some(0), |m| m.as_str().parse().ok());
        Some(Version(n(1)?, n(2)?, n(3)?))
    }
}

/// A configuration file as read from the host, with its parse (which holds the
/// text: one copy per file).
#[derive(Debug, Clone)]
pub struct ConfigFile<D> {
    /// The path it was read at (what plans name in `Step::Edit`).
    pub path: String,
    /// When `path` is a symbolic link: its canonical target (`readlink -f`), the
    /// file a write must replace so that the link stays a link.
    pub real_path: Option<String>,
    pub doc: D,
}

impl<D: crate::formats::Text> ConfigFile<D> {
    /// The file's text as read.
    pub fn text(&self) -> &str {
        self.doc.text()
    }
}

impl<D> ConfigFile<D> {
    /// `path:line` for evidence.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{}", self.path, line)
    }
}

/// An environment file a libvirt daemon's unit reads.
#[derive(Debug, Clone)]
pub struct EnvFileFact {
    pub unit: String,
    pub file: Option<ConfigFile<EnvFile>>,
    pub path: String,
}

/// How libvirt serves remote connections on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonMode {
    /// Monolithic libvirtd started by systemd socket activation (libvirt >= 5.6).
    Socket,
    /// Monolithic libvirtd with its sockets masked or absent: it reads
    /// listen_tcp/listen_tls and needs `--listen`.
    Traditional,
    /// Modular daemons: remote access through virtproxyd.
    Modular,
    /// No libvirt daemon found.
    Absent,
}

impl DaemonMode {
    pub fn describe(self) -> &'static str {
        match self {
            DaemonMode::Socket => "socket activation via libvirtd.socket",
            DaemonMode::Traditional => "traditional: sockets masked, libvirtd needs --listen",
            DaemonMode::Modular => "modular daemons, remote access via virtproxyd",
            DaemonMode::Absent => "no libvirt daemon",
        }
    }
}

/// An iptables ruleset, or why it could not be read.
#[derive(Debug, Clone)]
pub enum Firewall {
    Rules(Ruleset),
    Unreadable(String),
}

/// The nftables ruleset (`nft -j list ruleset`), or why it could not be read.
#[derive(Debug, Clone)]
pub enum Nft {
    Rules(Box<nftables::Ruleset>),
    Unreadable(String),
}

fn parse_nft(raw: &RawFacts) -> Option<Nft> {
    let r = raw.get("nft_json")?;
    if r.status != 0 {
        let why = r.stderr.trim();
        return Some(Nft::Unreadable(if why.is_empty() { format!("nft -j list ruleset: exit status {}", r.status) } else { format!("nft -j list ruleset: {why}") }));
    }
    Some(match nftables::Ruleset::parse(&r.stdout, raw.ok("nft_ruleset")) {
        Ok(rules) => Nft::Rules(Box::new(rules)),
        Err(e) => Nft::Unreadable(format!("cannot read nft -j list ruleset: {e}")),
    })
}

/// firewalld as found on a host where `firewall-cmd` exists.
#[derive(Debug, Clone)]
pub enum Firewalld {
    /// `firewall-cmd --state` did not say `running` (what it said instead).
    NotRunning(String),
    Running(Box<fwd::Config>),
    /// It runs, but its zones could not be read or parsed (why).
    Unreadable(String),
}

fn parse_firewalld(raw: &RawFacts) -> Option<Firewalld> {
    let state = raw.get("firewalld_state")?;
    let said = |r: &Record| {
        let t = format!("{} {}", r.stdout.trim(), r.stderr.trim());
        if t.trim().is_empty() { format!("exit status {}", r.status) } else { t.trim().to_string() }
    };
    if state.status != 0 || state.stdout.trim() != "running" {
        return Some(Firewalld::NotRunning(said(state)));
    }
    let zones = |name: &str| -> Result<Zones, String> {
        let r = raw.get(name).ok_or_else(|| format!("firewall-cmd {} was not run", listing(name)))?;
        if r.status != 0 {
            return Err(format!("firewall-cmd {}: {}", listing(name), said(r)));
        }
        Zones::parse(&r.stdout).map_err(|e| format!("firewall-cmd {}: {e}", listing(name)))
    };
    fn listing(name: &str) -> &'static str {
        if name.ends_with("permanent") { "--permanent --list-all-zones" } else { "--list-all-zones" }
    }
    let runtime = match zones("firewalld_zones") {
        Ok(z) => z,
        Err(e) => return Some(Firewalld::Unreadable(e)),
    };
    let conf = raw.ok("firewalld_conf").unwrap_or("");
    let conf_value = |key: &str| {
        conf.lines()
            .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().to_string())
            .rfind(|v| !v.is_empty())
    };
    Some(Firewalld::Running(Box::new(fwd::Config {
        runtime,
        permanent: zones("firewalld_zones_permanent"),
        conf_default_zone: conf_value("DefaultZone"),
        backend: conf_value("FirewallBackend"),
        services: fwd::parse_services(raw.ok("firewalld_services").unwrap_or("")),
    })))
}

/// The certificates libvirt reads under transport tls, as facts.sh records them (kept in
/// `raw`; certificates only, never a key).
pub const PKI_CACERT: &str = "pki_cacert";
pub const PKI_SERVERCERT: &str = "pki_servercert";
pub const PKI_CLIENTCERT: &str = "pki_clientcert";
pub const PKI_QEMU_CACERT: &str = "pki_qemu_cacert";
pub const PKI_QEMU_SERVERCERT: &str = "pki_qemu_servercert";
pub const PKI_QEMU_CLIENTCERT: &str = "pki_qemu_clientcert";
/// `HASH PATH` per private key under /etc/pki that exists (sha256 only, never content).
pub const PKI_KEYS: &str = "pki_keys";
/// `getent group libvirt-qemu qemu`: the group QEMU runs as.
pub const QEMU_GROUP: &str = "qemu_group";

/// The files that persist iptables (and ip6tables) rules at boot, as the facts read them
/// (`persist:PATH`): RHEL's iptables-services, Debian's iptables-persistent.
pub const IPTABLES_PERSIST: [&str; 2] = ["/etc/sysconfig/iptables", "/etc/iptables/rules.v4"];
pub const IP6TABLES_PERSIST: [&str; 2] = ["/etc/sysconfig/ip6tables", "/etc/iptables/rules.v6"];

/// Records that are parsed into a `ConfigFile` and then dropped from `raw`.
const PARSED_FILES: &[&str] = &[
    "libvirtd_conf",
    "virtproxyd_conf",
    "qemu_conf",
    "nova_conf",
    "nova_compute_conf",
    // firewalld's listings and service files live on in `firewalld` (parsed).
    "firewalld_zones",
    "firewalld_zones_permanent",
    "firewalld_services",
    "firewalld_conf",
    // nft's listings live on in `nftables` (parsed).
    "nft_json",
    "nft_ruleset",
];

/// Everything known about one host.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub raw: RawFacts,
    pub uid: Option<u32>,
    pub os_pretty: Option<String>,
    pub hostname: Option<String>,
    /// What the host's own name resolves to on the host (`getent ahosts`).
    pub resolve_self: Vec<IpAddr>,
    pub etc_hosts: Option<String>,
    /// Addresses configured on the host's interfaces.
    pub addresses: Vec<IpAddr>,
    /// The networks on the host's interfaces, by interface.
    pub interfaces: Vec<IfaceNet>,
    pub libvirt_version: Option<Version>,
    pub qemu_version: Option<Version>,
    pub units: BTreeMap<String, Unit>,
    pub libvirtd_conf: Option<ConfigFile<ConfDoc>>,
    pub virtproxyd_conf: Option<ConfigFile<ConfDoc>>,
    pub qemu_conf: Option<ConfigFile<ConfDoc>>,
    pub env_files: Vec<EnvFileFact>,
    /// libvirt's host UUID (`virsh capabilities`), if libvirt answered.
    pub host_uuid: Option<String>,
    /// Machine types the hypervisor offers for x86_64 guests.
    pub machine_types: Vec<String>,
    /// TCP ports something listens on.
    pub listening: Vec<(IpAddr, u16)>,
    pub iptables: Option<Firewall>,
    pub ip6tables: Option<Firewall>,
    /// Rules of the legacy (x_tables) backend that `iptables-save` does not show because
    /// it is the nf_tables variant (`iptables-legacy-save`; None: no such rules, or
    /// `iptables-save` is the legacy variant and shows them already). They filter too.
    pub iptables_legacy: Option<Firewall>,
    pub ip6tables_legacy: Option<Firewall>,
    /// firewalld, where `firewall-cmd` exists.
    pub firewalld: Option<Firewalld>,
    /// nftables, where `nft` exists.
    pub nftables: Option<Nft>,
    /// Files that persist firewall rules on this host, by path.
    pub persisted_rules: Vec<String>,
    /// The files the facts script read (or found missing) whose path is a
    /// symbolic link: path -> canonical target (`readlink -f`). The same as
    /// [`ConfigFile::real_path`] for the parsed ones; also the persisted rule files
    /// and dangling links.
    pub symlinks: BTreeMap<String, String>,
    /// The files nova-compute reads, in its order (`--config-file`, `--config-dir`).
    pub nova: NovaConf,
    pub nova_version: Option<String>,
    pub instances_path: String,
    pub instances_free_bytes: Option<u64>,
    pub instances_fstype: Option<String>,
    pub mem_available_kib: Option<u64>,
    /// Host clock, seconds since the epoch, when the facts were gathered.
    pub clock: Option<i64>,
    /// [`HostFacts::drop_texts`] was called: the configuration files' parsed
    /// entries remain, their texts are gone (enough for checks, not for fix).
    pub texts_dropped: bool,
    /// Earlier fix runs' transactions on this host (oldest first).
    pub transactions: Vec<txn::Transaction>,
    /// A fix transaction (migready-fix-RUN.service) runs now.
    pub txn_running: bool,
    /// /proc/sys/kernel/random/boot_id: tells a transaction begun before a reboot.
    pub boot_id: Option<String>,
}

fn conf_file<D>(raw: &RawFacts, name: &str, parse: fn(&str) -> D) -> Option<ConfigFile<D>> {
    let text = raw.ok(name)?;
    let path = record_path(name)?;
    Some(ConfigFile { path: path.to_string(), real_path: link_target(raw, name, path), doc: parse(text) })
}

/// The path of the file record `name` holds (`cat PATH` in the facts script).
fn record_path(name: &str) -> Option<&str> {
    match name {
        "libvirtd_conf" => Some("/etc/libvirt/libvirtd.conf"),
        "virtproxyd_conf" => Some("/etc/libvirt/virtproxyd.conf"),
        "qemu_conf" => Some("/etc/libvirt/qemu.conf"),
        "nova_conf" => Some("/etc/nova/nova.conf"),
        "nova_compute_conf" => Some("/etc/nova/nova-compute.conf"),
        "firewalld_conf" => Some("/etc/firewalld/firewalld.conf"),
        _ => name
            .strip_prefix("persist:")
            .or_else(|| name.strip_prefix("envfile:").and_then(|k| k.split_once(':')).map(|(_, p)| p))
            .or_else(|| name.strip_prefix("nftconf:").and_then(|k| k.split_once(':')).map(|(_, p)| p))
            .or_else(|| name.strip_prefix("novaconf:").and_then(|k| k.split_once(':')).map(|(_, p)| p)),
    }
}

/// The canonical target of the file of record `name` (read at `path`), when the
/// facts script found `path` to be a symbolic link (record `link:NAME`) to
/// something else.
fn link_target(raw: &RawFacts, name: &str, path: &str) -> Option<String> {
    let target = raw.ok(&format!("link:{name}"))?.strip_suffix('\n')?;
    (!target.is_empty() && target != path).then(|| target.to_string())
}

fn parse_firewall(raw: &RawFacts, name: &str) -> Option<Firewall> {
    let r = raw.get(name)?;
    if r.status != 0 {
        let why = r.stderr.trim();
        return Some(Firewall::Unreadable(if why.is_empty() { format!("exit status {}", r.status) } else { why.to_string() }));
    }
    Some(match firewall::parse(&r.stdout) {
        Ok(rules) => Firewall::Rules(rules),
        Err(e) => Firewall::Unreadable(format!("cannot parse {name} output: {e}")),
    })
}

/// `iptables-legacy-save`'s rules where they are not what `iptables-save` shows: it is the
/// nf_tables variant (its header says so, or it shows nothing at all, which the legacy
/// variant would not beside legacy rules). A legacy-save that fails (no x_tables in this
/// kernel) or filters nothing: None.
fn parse_legacy(raw: &RawFacts, legacy: &str, save: &str) -> Option<Firewall> {
    let Some(Firewall::Rules(rules)) = parse_firewall(raw, legacy) else { return None };
    if rules.is_empty() {
        return None; // filters nothing (an empty filter table, all policies ACCEPT)
    }
    let shown = raw.ok(save)?;
    let nft_variant = shown.contains("(nf_tables)") || firewall::parse(shown).is_ok_and(|r| r.tables.is_empty());
    nft_variant.then_some(Firewall::Rules(rules))
}

impl HostFacts {
    /// Frees the text of every parsed configuration file, keeping what the checks
    /// read (entries, values, line numbers). A read-only audit of many hosts keeps
    /// each host's nova.conf (hundreds of KB of comments on distribution packages)
    /// only until it is parsed; `fix` keeps the texts, it edits them.
    pub fn drop_texts(&mut self) {
        for c in [&mut self.libvirtd_conf, &mut self.virtproxyd_conf, &mut self.qemu_conf].into_iter().flatten() {
            c.doc.drop_text();
        }
        self.nova.drop_texts();
        self.texts_dropped = true;
    }

    /// Type the records of one host.
    pub fn from_raw(raw: RawFacts) -> HostFacts {
        let ok = |n: &str| raw.ok(n).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let units = raw.ok("units").map(systemd::parse_show).unwrap_or_default();

        let mut env_files = Vec::new();
        for (key, rec) in raw.with_prefix("envfile:") {
            let Some((unit, path)) = key.split_once(':') else { continue };
            let real_path = link_target(&raw, &format!("envfile:{key}"), path);
            let file = (rec.status == 0).then(|| ConfigFile { path: path.to_string(), real_path, doc: EnvFile::parse(&rec.stdout) });
            env_files.push(EnvFileFact { unit: unit.to_string(), path: path.to_string(), file });
        }

        let caps = raw.ok("capabilities").unwrap_or("");
        static UUID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)<host>\s*<uuid>([^<]+)</uuid>").unwrap());
        static MACHINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<machine[^>]*>([^<]+)</machine>").unwrap());
        let host_uuid = UUID.captures(caps).map(|c| c[1].trim().to_string());
        let mut machine_types: Vec<String> = caps
            .split("<arch name='x86_64'>")
            .nth(1)
            .map(|s| s.split("</arch>").next().unwrap_or(""))
            .map(|s| MACHINE.captures_iter(s).map(|c| c[1].to_string()).collect())
            .unwrap_or_default();
        machine_types.sort();
        machine_types.dedup();

        let instances_path = ok("instances_path").unwrap_or_else(|| "/var/lib/nova/instances".into());
        let instances_free_bytes = raw
            .ok("instances_df")
            .and_then(|t| t.lines().nth(1))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok());
        let instances_fstype = ok("instances_mount").and_then(|l| l.split_whitespace().next().map(str::to_string));
        let mem_available_kib = raw.ok("meminfo").and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        });

        let mut facts = HostFacts {
            uid: ok("id").and_then(|s| s.parse().ok()),
            os_pretty: raw.ok("os_release").and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            }),
            hostname: ok("hostname"),
            resolve_self: parse_getent(raw.ok("resolve_self").unwrap_or("")),
            etc_hosts: raw.ok("etc_hosts").map(str::to_string),
            addresses: parse_ip_addr(raw.ok("ip_addr").unwrap_or("")),
            interfaces: fwd::parse_ip_addr(raw.ok("ip_addr").unwrap_or("")),
            libvirt_version: raw
                .ok("libvirtd_version")
                .or_else(|| raw.ok("virtqemud_version"))
                .and_then(Version::find),
            qemu_version: raw.ok("qemu_version").and_then(|t| t.split("version").nth(1)).and_then(Version::find),
            units,
            libvirtd_conf: conf_file(&raw, "libvirtd_conf", ConfDoc::parse),
            virtproxyd_conf: conf_file(&raw, "virtproxyd_conf", ConfDoc::parse),
            qemu_conf: conf_file(&raw, "qemu_conf", ConfDoc::parse),
            env_files,
            host_uuid,
            machine_types,
            listening: parse_ss(raw.ok("listen").unwrap_or("")),
            iptables: parse_firewall(&raw, "iptables_save"),
            ip6tables: parse_firewall(&raw, "ip6tables_save"),
            iptables_legacy: parse_legacy(&raw, "iptables_legacy_save", "iptables_save"),
            ip6tables_legacy: parse_legacy(&raw, "ip6tables_legacy_save", "ip6tables_save"),
            firewalld: parse_firewalld(&raw),
            nftables: parse_nft(&raw),
            persisted_rules: raw.with_prefix("persist:").map(|(p, _)| p.to_string()).collect(),
            symlinks: raw
                .with_prefix("link:")
                .filter_map(|(name, _)| {
                    let path = record_path(name)?;
                    Some((path.to_string(), link_target(&raw, name, path)?))
                })
                .collect(),
            nova: NovaConf::from_raw(&raw),
            nova_version: ok("nova_version"),
            instances_path,
            instances_free_bytes,
            instances_fstype,
            mem_available_kib,
            clock: ok("date").and_then(|s| s.parse().ok()),
            texts_dropped: false,
            transactions: raw.ok("txn_journals").map(txn::parse).unwrap_or_default(),
            txn_running: raw.ok("txn_unit").is_some_and(|s| s.trim() == "active"),
            boot_id: ok("boot_id"),
            raw,
        };
        // Keep one copy of each configuration file (in its ConfigFile), not the
        // record it came from too: a nova.conf is ~350 KB, and fleets are large.
        facts.raw.records.retain(|k, _| !PARSED_FILES.contains(&k.as_str()) && !k.starts_with("envfile:") && !k.starts_with("novaconf:"));
        facts
    }

    /// Parse the script's output.
    pub fn parse(output: &str) -> Result<HostFacts, RawError> {
        RawFacts::parse(output).map(HostFacts::from_raw)
    }

    /// [`HostFacts::parse`] of the facts script's raw output (either framing).
    pub fn parse_bytes(output: &[u8]) -> Result<HostFacts, RawError> {
        RawFacts::parse_bytes(output).map(HostFacts::from_raw)
    }

    /// The canonical target of `path` when the facts found it to be a symbolic link.
    pub fn real_path(&self, path: &str) -> Option<&str> {
        self.symlinks.get(path).map(String::as_str)
    }

    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.get(id).filter(|u| u.exists())
    }

    /// Which way libvirt serves remote connections here.
    pub fn daemon_mode(&self) -> DaemonMode {
        let active = |id: &str| self.unit(id).is_some_and(|u| u.is_active() || u.is_enabled());
        let libvirtd = self.unit("libvirtd.service");
        let proxy = self.unit("virtproxyd.service").is_some() || self.unit("virtproxyd.socket").is_some();
        if proxy && !libvirtd.is_some_and(|u| u.is_active()) && (active("virtproxyd.socket") || active("virtproxyd.service") || libvirtd.is_none()) {
            return DaemonMode::Modular;
        }
        match (libvirtd, self.unit("libvirtd.socket")) {
            (None, _) => DaemonMode::Absent,
            (Some(_), Some(sock)) if !sock.is_masked() => DaemonMode::Socket,
            (Some(_), _) => DaemonMode::Traditional,
        }
    }

    /// The daemon that serves remote connections in this mode, its config
    /// file and its socket unit names (TCP and TLS).
    pub fn remote_daemon(&self) -> (&'static str, Option<&ConfigFile<ConfDoc>>, &'static str, &'static str) {
        match self.daemon_mode() {
            DaemonMode::Modular => ("virtproxyd", self.virtproxyd_conf.as_ref(), "virtproxyd-tcp.socket", "virtproxyd-tls.socket"),
            _ => ("libvirtd", self.libvirtd_conf.as_ref(), "libvirtd-tcp.socket", "libvirtd-tls.socket"),
        }
    }

    /// The daemon's arguments as systemd will run them, and where they come from:
    /// the last environment file that sets `<DAEMON>_ARGS`, else the unit's Environment=.
    pub fn daemon_args(&self, daemon: &str) -> (Vec<String>, Option<String>) {
        let unit_id = format!("{daemon}.service");
        let var = format!("{}_ARGS", daemon.to_uppercase());
        let Some(unit) = self.unit(&unit_id) else { return (Vec::new(), None) };
        let mut words: Vec<String> = unit
            .exec_start
            .split_whitespace()
            .skip(1)
            .filter(|w| !w.starts_with('$'))
            .map(str::to_string)
            .collect();
        let mut source = None;
        let mut value = unit
            .environment
            .iter()
            .find_map(|e| e.strip_prefix(&format!("{var}=")).map(str::to_string));
        if value.is_some() {
            source = Some(format!("{unit_id} Environment="));
        }
        for ef in self.env_files.iter().filter(|e| e.unit == unit_id) {
            if let Some(f) = &ef.file
                && let Some(e) = f.doc.get(&var)
            {
                value = Some(e.value.clone());
                source = Some(format!("{}:{}", f.path, e.line));
            }
        }
        if unit.exec_start.contains(&format!("${var}")) || unit.exec_start.contains(&format!("${{{var}}}")) {
            words.extend(crate::formats::envfile::split_words(value.as_deref().unwrap_or("")));
        }
        (words, source)
    }

    /// A libvirt daemon config value as an integer or string, with evidence.
    pub fn conf_value(conf: Option<&ConfigFile<ConfDoc>>, key: &str) -> Option<(Value, String)> {
        let c = conf?;
        let e = c.doc.get(key)?;
        Some((e.value.clone(), format!("{}: {}", c.at(e.line), e.raw.trim())))
    }

    /// The QEMU migration port range (qemu.conf, default 49152-49215).
    pub fn migration_ports(&self) -> (u16, u16, String) {
        let get = |k: &str, d: u16| match Self::conf_value(self.qemu_conf.as_ref(), k) {
            Some((Value::Int(v), ev)) if (1..=65535).contains(&v) => (v as u16, Some(ev)),
            _ => (d, None),
        };
        let (lo, ev_lo) = get("migration_port_min", 49152);
        let (hi, ev_hi) = get("migration_port_max", 49215);
        let evidence = match (ev_lo, ev_hi) {
            (None, None) => "/etc/libvirt/qemu.conf: migration_port_min/max not set (defaults 49152-49215)".to_string(),
            (a, b) => [a, b].into_iter().flatten().collect::<Vec<_>>().join("; "),
        };
        (lo, hi, evidence)
    }

    /// The effective nova option, as nova-compute reads it (the last of its files that
    /// sets it wins), with evidence naming the file and line that decided.
    pub fn nova_option(&self, section: &str, key: &str) -> Option<(String, String)> {
        let (c, e) = self.nova.get(section, key)?;
        Some((e.value.trim().to_string(), format!("{}: {} = {}", c.at(e.line), key, e.value.trim())))
    }

    /// Nova release from the package version.
    pub fn detected_nova_release(&self) -> Option<NovaRelease> {
        self.nova_version.as_deref().and_then(NovaRelease::from_package_version)
    }

    /// Something listens on TCP `port` (any address).
    pub fn listens_on(&self, port: u16) -> bool {
        self.listening.iter().any(|(_, p)| *p == port)
    }

    /// firewalld's configuration, when it runs and could be read.
    pub fn firewalld_running(&self) -> Option<&fwd::Config> {
        match &self.firewalld {
            Some(Firewalld::Running(c)) => Some(c),
            _ => None,
        }
    }

    /// The nftables ruleset, when nft listed it.
    pub fn nft_rules(&self) -> Option<&nftables::Ruleset> {
        match &self.nftables {
            Some(Nft::Rules(r)) => Some(r),
            _ => None,
        }
    }

    /// nft tables judged elsewhere: iptables-nft's tables that iptables-save (the
    /// nf_tables variant) lists, firewalld's table when its zones are judged.
    pub fn nft_skip(&self) -> nftables::Skip {
        let listed = |rec: &str, fw: &Option<Firewall>| match fw {
            Some(Firewall::Rules(r)) if self.raw.ok(rec).is_some_and(|t| t.contains("(nf_tables)")) => r.tables.iter().map(|t| t.name.clone()).collect(),
            _ => Vec::new(),
        };
        nftables::Skip {
            iptables_nft_v4: listed("iptables_save", &self.iptables),
            iptables_nft_v6: listed("ip6tables_save", &self.ip6tables),
            firewalld: self.firewalld_running().is_some(),
        }
    }

    /// The files nftables.service loads (path, text), in load order: its `-f` file
    /// first, then what it includes.
    pub fn nft_files(&self) -> Vec<(String, String)> {
        let mut v: Vec<(usize, String, String)> = self
            .raw
            .with_prefix("nftconf:")
            .filter(|(_, r)| r.status == 0)
            .filter_map(|(k, r)| {
                let (n, path) = k.split_once(':')?;
                Some((n.parse().ok()?, path.to_string(), r.stdout.clone()))
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, p, t)| (p, t)).collect()
    }

    /// The firewall that applies to a source address of this family.
    pub fn firewall_for(&self, src: IpAddr) -> Option<&Firewall> {
        if src.is_ipv4() { self.iptables.as_ref() } else { self.ip6tables.as_ref() }
    }

    /// The legacy iptables rules that apply to a source of this family besides
    /// [`HostFacts::firewall_for`]'s (see `iptables_legacy`).
    pub fn legacy_for(&self, src: IpAddr) -> Option<&Firewall> {
        if src.is_ipv4() { self.iptables_legacy.as_ref() } else { self.ip6tables_legacy.as_ref() }
    }
}

fn parse_getent(text: &str) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for a in text.lines().filter_map(|l| l.split_whitespace().next()?.parse().ok()) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

fn parse_ip_addr(text: &str) -> Vec<IpAddr> {
    // `2: eth0    inet 198.18.42.11/24 brd ... scope global eth0`
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            it.find(|w| *w == "inet" || *w == "inet6")?;
            it.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

fn parse_ss(text: &str) -> Vec<(IpAddr, u16)> {
    // `LISTEN 0 128 0.0.0.0:22 0.0.0.0:*`, `[::]:16509`, `*:16509`, `[::ffff:1.2.3.4]:22`
    text.lines()
        .filter_map(|l| {
            let local = l.split_whitespace().nth(3)?;
            let (addr, port) = local.rsplit_once(':')?;
            let port = port.parse().ok()?;
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let addr = addr.split('%').next()?;
            let ip = if addr == "*" { IpAddr::from([0u8; 16]) } else { addr.parse().ok()? };
            Some((ip, port))
        })
        .collect()
}

#[cfg(test)]
mod tests;
