//! Checks: pure functions of facts. Each check sees the facts of the host it
//! judges and of its peers (the other reached hosts of the inventory) and gives
//! a status, a one-line message and the evidence it used. Nothing here talks
//! to a host; that is what lets the tests feed fixture facts.

pub mod exposure;
pub mod firewall_ports;
mod fix_transaction;
mod hypervisor;
pub(crate) mod libvirt_auth;
mod libvirt_host_uuid;
pub(crate) mod libvirt_listen;
mod libvirt_mode;
mod net_hostname;
mod nova_compute;
mod nova_flags;
mod nova_migration_uri;
mod nova_vnc;
mod storage_instances;
mod tls_certs;

use crate::facts::HostFacts;
use crate::inventory::{HostSpec, Policy};
use serde::Serialize;
use std::net::IpAddr;

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// What a check found on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    /// Where the finding comes from: `file:line: text`, a command's output.
    pub evidence: Vec<String>,
}

/// A check's verdict before it is labelled with its ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub evidence: Vec<String>,
}

impl Outcome {
    fn new(status: Status, message: impl Into<String>) -> Outcome {
        Outcome { status, message: message.into(), evidence: Vec::new() }
    }
    pub fn pass(message: impl Into<String>) -> Outcome {
        Outcome::new(Status::Pass, message)
    }
    pub fn warn(message: impl Into<String>) -> Outcome {
        Outcome::new(Status::Warn, message)
    }
    pub fn fail(message: impl Into<String>) -> Outcome {
        Outcome::new(Status::Fail, message)
    }
    pub fn skip(message: impl Into<String>) -> Outcome {
        Outcome::new(Status::Skip, message)
    }
    /// Add a line of evidence.
    pub fn with(mut self, evidence: impl Into<String>) -> Outcome {
        self.evidence.push(evidence.into());
        self
    }
    pub fn with_all(mut self, evidence: impl IntoIterator<Item = String>) -> Outcome {
        self.evidence.extend(evidence);
        self
    }
    /// The finding of check `id` (for checks defined outside this module: mesh, Nova).
    pub fn label_as(self, id: &'static str) -> Finding {
        self.label(id)
    }
    fn label(self, id: &'static str) -> Finding {
        Finding { id, status: self.status, message: self.message, evidence: self.evidence }
    }
}

/// A reached host: its inventory entry and its facts.
#[derive(Debug, Clone, Copy)]
pub struct HostView<'a> {
    pub spec: &'a HostSpec,
    pub facts: &'a HostFacts,
}

impl HostView<'_> {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The addresses this host's connections to a peer come from, as far as
    /// the facts tell: its inventory address if that is an IP, else what its
    /// own name resolves to, without loopback.
    pub fn source_addresses(&self) -> Vec<IpAddr> {
        if let Ok(ip) = self.spec.address.parse::<IpAddr>() {
            return vec![ip];
        }
        let mut v: Vec<IpAddr> = self.facts.resolve_self.iter().copied().filter(|a| !a.is_loopback()).collect();
        if v.is_empty() {
            v = self.facts.addresses.iter().copied().filter(|a| !a.is_loopback() && !is_link_local(a)).take(1).collect();
        }
        v
    }
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => (v.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// What a check sees: the host it judges, the other reached hosts, the policy.
pub struct Ctx<'a> {
    pub me: HostView<'a>,
    pub peers: Vec<HostView<'a>>,
    /// Inventory hosts that were not reached (no facts, but an address).
    pub unreached: Vec<&'a HostSpec>,
    pub policy: &'a Policy,
}

impl Ctx<'_> {
    pub fn facts(&self) -> &HostFacts {
        self.me.facts
    }

    /// The migration transport of the judged host: its own `transport`, else the policy's.
    pub fn transport(&self) -> crate::inventory::Transport {
        self.me.spec.transport.unwrap_or(self.policy.transport)
    }

    /// The libvirt port peers connect to under [`Ctx::transport`] (16509 or
    /// `libvirt_port` for tcp, 16514 for tls).
    pub fn libvirt_port(&self) -> u16 {
        self.transport().libvirt_port(self.policy)
    }

    /// Where every other inventory host connects from: reached peers as their
    /// facts tell, unreached ones by their inventory address when it is an IP.
    pub fn peer_sources(&self) -> Vec<(String, IpAddr)> {
        let mut v: Vec<(String, IpAddr)> =
            self.peers.iter().flat_map(|p| p.source_addresses().into_iter().map(|a| (p.name().to_string(), a))).collect();
        v.extend(self.unreached.iter().filter_map(|s| s.address.parse().ok().map(|a| (s.name.clone(), a))));
        v
    }
}

/// One check: stable ID, one-line summary, and the function (None for the
/// checks decided by the transport itself).
pub struct CheckDef {
    pub id: &'static str,
    pub summary: &'static str,
    pub run: Option<fn(&Ctx) -> Outcome>,
}

pub const SSH_CONNECT: &str = "ssh.connect";
pub const PRIVILEGE: &str = "privilege";
pub const FACTS: &str = "facts";

/// The IDs of the host checks, for code that asks for a finding by ID (fix's
/// planners): a misspelt one does not compile.
pub mod id {
    pub const LIBVIRT_MODE: &str = "libvirt.mode";
    pub const LIBVIRT_LISTEN: &str = "libvirt.listen";
    pub const LIBVIRT_AUTH: &str = "libvirt.auth";
    pub const LIBVIRT_HOST_UUID: &str = "libvirt.host-uuid";
    pub const FIREWALL_LIBVIRT: &str = "firewall.libvirt";
    pub const FIREWALL_MIGRATION: &str = "firewall.migration";
    pub const LIBVIRT_EXPOSURE: &str = "libvirt.exposure";
    pub const TLS_CERTIFICATES: &str = "tls.certificates";
    pub const NOVA_FLAGS: &str = "nova.flags";
    pub const NOVA_MIGRATION_URI: &str = "nova.migration-uri";
    pub const NOVA_VNC_LISTEN: &str = "nova.vnc-listen";
    pub const NOVA_COMPUTE: &str = "nova.compute";
    pub const HYPERVISOR_VERSIONS: &str = "hypervisor.versions";
    pub const NET_HOSTNAME: &str = "net.hostname";
    pub const FIX_TRANSACTION: &str = "fix.transaction";
    pub const STORAGE_INSTANCES: &str = "storage.instances";
}

/// Every check, in report order.
pub const ALL: &[CheckDef] = &[
    CheckDef { id: SSH_CONNECT, summary: "SSH connects and the host key matches known_hosts", run: None },
    CheckDef { id: PRIVILEGE, summary: "commands run as root (directly or by passwordless sudo)", run: Some(privilege) },
    CheckDef { id: FACTS, summary: "the facts script (templates/facts.sh) ran to the end and its output parsed", run: None },
    CheckDef { id: id::LIBVIRT_MODE, summary: "which libvirt daemon mode runs, and no --listen where socket activation refuses it", run: Some(libvirt_mode::check) },
    CheckDef { id: id::LIBVIRT_LISTEN, summary: "libvirt listens on its port (TCP 16509, or TLS 16514 under transport tls) the way its daemon mode requires", run: Some(libvirt_listen::check) },
    CheckDef { id: id::LIBVIRT_AUTH, summary: "auth_tcp is what the inventory policy asks (default \"none\", as the seed); auth_tls under transport tls", run: Some(libvirt_auth::check) },
    CheckDef { id: id::LIBVIRT_HOST_UUID, summary: "libvirt host UUID is unique across the inventory", run: Some(libvirt_host_uuid::check) },
    CheckDef { id: id::FIREWALL_LIBVIRT, summary: "TCP libvirt port accepted from the peer hosts ahead of any REJECT/DROP (iptables, ip6tables, native nftables chains and firewalld zones, all of them)", run: Some(firewall_ports::libvirt) },
    CheckDef { id: id::FIREWALL_MIGRATION, summary: "QEMU migration port range (qemu.conf) accepted from the peer hosts (the same firewalls)", run: Some(firewall_ports::migration) },
    CheckDef { id: id::LIBVIRT_EXPOSURE, summary: "who besides the peers reaches the libvirt port and the migration range; auth_tcp \"none\" open to any address fails", run: Some(exposure::check) },
    CheckDef { id: id::TLS_CERTIFICATES, summary: "transport tls: libvirt's CA, server and client certificates verify, are for their purpose, name what peers use, are valid (warn 30 days before); clock skew", run: Some(tls_certs::check) },
    CheckDef { id: id::NOVA_FLAGS, summary: "release-aware migration flags in nova.conf; not tunnelled", run: Some(nova_flags::check) },
    CheckDef { id: id::NOVA_MIGRATION_URI, summary: "Nova migrates over the policy's transport: qemu+tcp, or qemu+tls with native TLS (live_migration_uri / scheme / with_native_tls)", run: Some(nova_migration_uri::check) },
    CheckDef { id: id::NOVA_VNC_LISTEN, summary: "VNC listens on an address that exists on every host (0.0.0.0, ::, loopback)", run: Some(nova_vnc::check) },
    CheckDef { id: id::NOVA_COMPUTE, summary: "nova-compute service state", run: Some(nova_compute::check) },
    CheckDef { id: id::HYPERVISOR_VERSIONS, summary: "libvirt and QEMU versions match across the inventory", run: Some(hypervisor::check) },
    CheckDef { id: id::NET_HOSTNAME, summary: "the host's own name resolves, and not to loopback", run: Some(net_hostname::check) },
    CheckDef { id: id::FIX_TRANSACTION, summary: "no earlier fix run left this host half-changed or ended unseen", run: Some(fix_transaction::check) },
    CheckDef { id: id::STORAGE_INSTANCES, summary: "instances path is local (not shared) and has free space", run: Some(storage_instances::check) },
];

/// IDs of every check (for `[checks] skip` validation).
pub fn ids() -> Vec<&'static str> {
    ALL.iter().map(|c| c.id).collect()
}

fn privilege(ctx: &Ctx) -> Outcome {
    match ctx.facts().uid {
        Some(0) if ctx.me.spec.user == "root" => Outcome::pass("runs as root"),
        Some(0) => Outcome::pass(format!("runs as root through passwordless sudo (user {})", ctx.me.spec.user)),
        Some(uid) => Outcome::fail(format!("commands run as uid {uid}, not root; use root or passwordless sudo")),
        None => Outcome::fail("could not tell the remote user id").with("id -u printed nothing"),
    }
}

/// The message of a check the inventory's `[checks] skip` turned off.
pub const SKIPPED: &str = "skipped by the inventory ([checks] skip)";

/// Whether the inventory's `[checks] skip` names `id`.
pub fn skipped(skip: &[String], id: &str) -> bool {
    skip.iter().any(|s| s == id)
}

/// Run every check for one reached host. `skip` lists check IDs not to run.
pub fn run_host(ctx: &Ctx, skip: &[String]) -> Vec<Finding> {
    ALL.iter()
        .map(|def| {
            if skipped(skip, def.id) {
                return Outcome::skip(SKIPPED).label(def.id);
            }
            match def.run {
                None if def.id == FACTS => Outcome::pass("the facts script ran and its output parsed").label(def.id),
                None => Outcome::pass(format!("connected to {}:{} as {}", ctx.me.spec.address, ctx.me.spec.port, ctx.me.spec.user))
                    .label(def.id),
                Some(f) => f(ctx).label(def.id),
            }
        })
        .collect()
}

/// Findings for a host that could not be audited: `ssh.connect` fails with
/// `why`, everything else is skipped.
pub fn unreachable(why: &str, skip: &[String]) -> Vec<Finding> {
    ALL.iter()
        .map(|def| {
            if def.id == SSH_CONNECT {
                if skipped(skip, def.id) {
                    // Skipping the connect check does not make a dead host audited.
                    return Outcome::fail(why).with("ssh.connect is skipped, but the host was not reached").label(def.id);
                }
                Outcome::fail(why).label(def.id)
            } else {
                Outcome::skip("not checked: the host was not reached").label(def.id)
            }
        })
        .collect()
}

/// Findings for a host reached over SSH whose facts script failed (exited non-zero,
/// printed output that does not parse, timed out): `ssh.connect` passes, `facts`
/// fails with `why`, everything else is skipped.
pub fn facts_failed(ssh_message: &str, why: &str, skip: &[String]) -> Vec<Finding> {
    ALL.iter()
        .map(|def| match def.id {
            SSH_CONNECT if skipped(skip, def.id) => Outcome::skip(SKIPPED).label(def.id),
            SSH_CONNECT => Outcome::pass(ssh_message).label(def.id),
            // Skipping the facts check does not make a host without facts audited.
            FACTS if skipped(skip, def.id) => Outcome::fail(why).with("facts is skipped, but the host has no facts").label(def.id),
            FACTS => Outcome::fail(why).label(def.id),
            _ if skipped(skip, def.id) => Outcome::skip(SKIPPED).label(def.id),
            _ => Outcome::skip("not checked: the facts script failed").label(def.id),
        })
        .collect()
}

/// Findings for a host reached over SSH whose commands could not run as root.
pub fn not_privileged(ssh_message: &str, why: &str, skip: &[String]) -> Vec<Finding> {
    ALL.iter()
        .map(|def| match def.id {
            SSH_CONNECT => Outcome::pass(ssh_message).label(def.id),
            PRIVILEGE => Outcome::fail(why).label(def.id),
            _ if skipped(skip, def.id) => Outcome::skip(SKIPPED).label(def.id),
            _ => Outcome::skip("not checked: no root on this host").label(def.id),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testutil;
#[cfg(test)]
mod tests;
