//! `libvirt.auth`: auth_tcp as the inventory policy asks. "none" (the seed's
//! choice, and the default policy) passes with a warning that says what it exposes.

use super::{Ctx, Outcome};
use crate::facts::HostFacts;
use crate::formats::libvirt_conf::Value;
use crate::inventory::{AuthTcp, Transport};

pub fn check(ctx: &Ctx) -> Outcome {
    if ctx.transport() == Transport::Tls {
        return tls(ctx);
    }
    let (daemon, conf, _, _) = ctx.facts().remote_daemon();
    let (value, evidence) = match HostFacts::conf_value(conf, "auth_tcp") {
        Some((Value::Str(s), ev)) => (s, ev),
        Some((_, ev)) => return Outcome::fail("auth_tcp is not a string").with(ev),
        None => ("sasl".to_string(), format!("/etc/libvirt/{daemon}.conf: auth_tcp not set (default \"sasl\")")),
    };
    let port = ctx.policy.libvirt_port;
    match (ctx.policy.auth_tcp, value.as_str()) {
        (AuthTcp::None, "none") => Outcome::warn(format!(
            "auth_tcp = \"none\" as the policy asks: anyone who can reach TCP {port} controls every guest on this host; \
             keep that port open to the peer hosts only"
        ))
        .with(evidence),
        (AuthTcp::Sasl, "sasl") => Outcome::pass("auth_tcp = \"sasl\" as the policy asks (peers need SASL credentials)").with(evidence),
        (want, have) => Outcome::fail(format!(
            "auth_tcp is \"{have}\" but the policy asks for \"{}\"{}",
            want.as_str(),
            if have == "sasl" { ": peers connecting over qemu+tcp without SASL credentials are refused" } else { "" }
        ))
        .with(evidence),
    }
}

/// `transport = "tls"`: `auth_tls` (default "none": the client's x509 certificate, checked
/// against the CA, is the authentication), and certificates really verified
/// (`tls_no_verify_certificate` not 1).
fn tls(ctx: &Ctx) -> Outcome {
    let (daemon, conf, _, _) = ctx.facts().remote_daemon();
    let port = ctx.libvirt_port();
    let mut evidence = Vec::new();
    let auth = match HostFacts::conf_value(conf, "auth_tls") {
        Some((Value::Str(s), ev)) => {
            evidence.push(ev);
            s
        }
        Some((_, ev)) => return Outcome::fail("auth_tls is not a string").with(ev),
        None => {
            evidence.push(format!("/etc/libvirt/{daemon}.conf: auth_tls not set (default \"none\")"));
            "none".to_string()
        }
    };
    if let Some((v, ev)) = HostFacts::conf_value(conf, "tls_no_verify_certificate") {
        evidence.push(ev);
        if v == Value::Int(1) && auth == "none" {
            return Outcome::fail(format!(
                "tls_no_verify_certificate = 1 with auth_tls = \"none\": any client that reaches TCP {port} controls every guest on this host, certificate or not"
            ))
            .with_all(evidence);
        }
    }
    // QEMU's side: the migration (and NBD) streams' peer certificates checked against the CA.
    if let Some((key, ev)) = qemu_unverified(ctx.facts()) {
        evidence.push(ev);
        return Outcome::fail(format!(
            "/etc/libvirt/qemu.conf: {key} = 0: QEMU accepts a migration stream from any client, certificate or not"
        ))
        .with_all(evidence);
    }
    match auth.as_str() {
        "none" => Outcome::pass(format!("auth_tls = \"none\": a client on TCP {port} needs a certificate the CA signed (transport tls)")).with_all(evidence),
        "sasl" => Outcome::pass("auth_tls = \"sasl\": a client needs a certificate the CA signed and SASL credentials (transport tls)").with_all(evidence),
        other => Outcome::fail(format!("auth_tls = \"{other}\": expected \"none\" (the certificate authenticates) or \"sasl\"")).with_all(evidence),
    }
}

/// qemu.conf's key that turns off the check of a migration peer's certificate:
/// `migrate_tls_x509_verify = 0`, or `default_tls_x509_verify = 0` with no
/// `migrate_tls_x509_verify` (it inherits the default; libvirt's is 1). With its evidence.
pub(crate) fn qemu_unverified(f: &HostFacts) -> Option<(&'static str, String)> {
    let conf = f.qemu_conf.as_ref();
    match HostFacts::conf_value(conf, "migrate_tls_x509_verify") {
        Some((v, ev)) => (v == Value::Int(0)).then_some(("migrate_tls_x509_verify", ev)),
        None => HostFacts::conf_value(conf, "default_tls_x509_verify")
            .filter(|(v, _)| *v == Value::Int(0))
            .map(|(_, ev)| ("default_tls_x509_verify", ev)),
    }
}
