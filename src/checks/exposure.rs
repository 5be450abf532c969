//! `libvirt.exposure`: from which sources the libvirt port and the QEMU migration range
//! are reachable, whatever the transport: the peers only (with `policy.allowed_sources`),
//! or any address (nothing filters: no firewall at all, or rules that accept everyone).
//! The firewall checks say whether the peers get through; this one says who else does.
//! `auth_tcp = "none"` with the libvirt port open to any address fails: anyone who
//! reaches it controls every guest on the host.

use super::firewall_ports::{reach_from_outside, Reach};
use super::{Ctx, Outcome};
use crate::facts::HostFacts;
use crate::formats::libvirt_conf::Value;
use crate::inventory::{AuthTcp, Transport};

/// `the peers`, or `the peers and policy.allowed_sources (a, b)`.
pub fn admitted(ctx: &Ctx) -> String {
    if ctx.policy.allowed_sources.is_empty() {
        "the peers".to_string()
    } else {
        format!("the peers and policy.allowed_sources ({})", ctx.policy.allowed_sources.join(", "))
    }
}

/// One sentence on who reaches `what` (`TCP 16509`), and the reach itself.
pub fn describe(ctx: &Ctx, what: &str, lo: u16, hi: u16) -> (String, Reach) {
    let reach = reach_from_outside(ctx, lo, hi);
    let text = match &reach {
        Reach::Any { why, .. } => format!("{what} is open to any address ({why})"),
        Reach::Filtered { .. } => format!("{what} is not open beyond {} (an address outside them is refused)", admitted(ctx)),
        Reach::Unknown { why, .. } => format!("{what}: whether it is open beyond {} could not be told: {why}", admitted(ctx)),
    };
    (text, reach)
}

fn evidence_of(r: &Reach) -> &[String] {
    match r {
        Reach::Any { evidence, .. } | Reach::Filtered { evidence } | Reach::Unknown { evidence, .. } => evidence,
    }
}

pub fn check(ctx: &Ctx) -> Outcome {
    if ctx.transport() == Transport::Tls {
        return tls(ctx);
    }
    let f = ctx.facts();
    let port = ctx.policy.libvirt_port;
    let (daemon, conf, _, _) = f.remote_daemon();
    let (auth, auth_ev) = match HostFacts::conf_value(conf, "auth_tcp") {
        Some((Value::Str(s), ev)) => (s, ev),
        Some((_, ev)) => ("(not a string)".to_string(), ev),
        None => ("sasl".to_string(), format!("/etc/libvirt/{daemon}.conf: auth_tcp not set (default \"sasl\")")),
    };
    let (libvirt, lreach) = describe(ctx, &format!("TCP {port}"), port, port);
    let mut evidence: Vec<String> = vec![auth_ev];
    evidence.extend(evidence_of(&lreach).iter().map(|e| format!("libvirt port: {e}")));
    let migration = migration_range(ctx, &mut evidence);
    let danger = "anyone who reaches it controls every guest on this host without a password";
    match lreach {
        Reach::Any { .. } if auth == "none" => Outcome::fail(format!(
            "{libvirt} and auth_tcp = \"none\": {danger}; filter TCP {port} to the peers (a firewall) or use auth_tcp = \"sasl\"{migration}"
        )),
        Reach::Any { .. } if ctx.policy.auth_tcp == AuthTcp::None => Outcome::warn(format!(
            "{libvirt}; with the policy's auth_tcp = \"none\" (fix sets it) {danger}{migration}"
        )),
        Reach::Any { .. } => Outcome::pass(format!("{libvirt}; auth_tcp = \"{auth}\" asks for credentials{migration}")),
        Reach::Filtered { .. } => Outcome::pass(format!("{libvirt}{migration}")),
        Reach::Unknown { .. } => Outcome::warn(format!("{libvirt}{migration}")),
    }
    .with_all(evidence)
}

/// `; the migration range TCP lo-hi is ...` (empty when qemu.conf's range is inverted:
/// firewall.migration says so), its evidence added to `evidence`.
fn migration_range(ctx: &Ctx, evidence: &mut Vec<String>) -> String {
    let (lo, hi, mig_ev) = ctx.facts().migration_ports();
    if lo > hi {
        return String::new();
    }
    let range = if lo == hi { format!("TCP {lo}") } else { format!("TCP {lo}-{hi}") };
    let (text, mreach) = describe(ctx, &format!("the migration range {range}"), lo, hi);
    evidence.push(mig_ev);
    evidence.extend(evidence_of(&mreach).iter().map(|e| format!("migration range: {e}")));
    format!("; {text}")
}

/// `transport = "tls"`: TCP 16514 open to any address is a pass when a client needs a
/// certificate the CA signed; it fails where libvirt verifies none
/// (`tls_no_verify_certificate = 1`) and asks nothing else (`auth_tls = "none"`).
fn tls(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let port = ctx.libvirt_port();
    let (_, conf, _, _) = f.remote_daemon();
    let auth = match HostFacts::conf_value(conf, "auth_tls") {
        Some((Value::Str(s), _)) => s,
        _ => "none".to_string(),
    };
    let unverified = matches!(HostFacts::conf_value(conf, "tls_no_verify_certificate"), Some((Value::Int(1), _)));
    let (libvirt, lreach) = describe(ctx, &format!("TCP {port}"), port, port);
    let mut evidence: Vec<String> = evidence_of(&lreach).iter().map(|e| format!("libvirt port: {e}")).collect();
    let migration = migration_range(ctx, &mut evidence);
    match lreach {
        Reach::Any { .. } if unverified && auth == "none" => Outcome::fail(format!(
            "{libvirt} and tls_no_verify_certificate = 1 with auth_tls = \"none\": anyone who reaches it controls every guest on this host{migration}"
        )),
        Reach::Any { .. } => Outcome::pass(format!("{libvirt}; a client needs a certificate the CA signed (transport tls){migration}")),
        Reach::Filtered { .. } => Outcome::pass(format!("{libvirt}{migration}")),
        Reach::Unknown { .. } => Outcome::warn(format!("{libvirt}{migration}")),
    }
    .with_all(evidence)
}
