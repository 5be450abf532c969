//! transport tls: the host's certificates, issued from the inventory's CA (`[tls]`; the CA
//! key stays on the control node) and installed where libvirt and QEMU read them:
//! /etc/pki/CA/cacert.pem, /etc/pki/libvirt/{servercert,clientcert}.pem and
//! private/{serverkey,clientkey}.pem (keys 0600 root), /etc/pki/qemu/{ca-cert,
//! server-cert,server-key,client-cert,client-key}.pem (keys 0640 root:QEMU's group).
//! Only when what is there does not do: tls.certificates fails or warns, the host's CA
//! is not the inventory's, a QEMU certificate is missing or not the CA's or does not
//! name what peers use, a key is missing. Then all ten files, with fresh keys.

use super::{status, Step};
use crate::ca::{self, Ca, Kind};
use crate::checks::{id, Ctx, Finding, Status};
use crate::facts;

/// One PKI file fix installs: (path, facts record of its content or None for a key,
/// what goes in it, mode, QEMU's group (else root)).
#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Ca,
    Cert(Kind),
    Key(Kind),
}

const FILES: &[(&str, Option<&str>, What, u32, bool)] = &[
    ("/etc/pki/CA/cacert.pem", Some(facts::PKI_CACERT), What::Ca, 0o644, false),
    ("/etc/pki/libvirt/servercert.pem", Some(facts::PKI_SERVERCERT), What::Cert(Kind::Server), 0o644, false),
    ("/etc/pki/libvirt/private/serverkey.pem", None, What::Key(Kind::Server), 0o600, false),
    ("/etc/pki/libvirt/clientcert.pem", Some(facts::PKI_CLIENTCERT), What::Cert(Kind::Client), 0o644, false),
    ("/etc/pki/libvirt/private/clientkey.pem", None, What::Key(Kind::Client), 0o600, false),
    ("/etc/pki/qemu/ca-cert.pem", Some(facts::PKI_QEMU_CACERT), What::Ca, 0o644, false),
    ("/etc/pki/qemu/server-cert.pem", Some(facts::PKI_QEMU_SERVERCERT), What::Cert(Kind::Server), 0o644, false),
    ("/etc/pki/qemu/server-key.pem", None, What::Key(Kind::Server), 0o640, true),
    ("/etc/pki/qemu/client-cert.pem", Some(facts::PKI_QEMU_CLIENTCERT), What::Cert(Kind::Client), 0o644, false),
    ("/etc/pki/qemu/client-key.pem", None, What::Key(Kind::Client), 0o640, true),
];

/// The shown content of a private key, everywhere a plan shows file content.
pub const KEY_NOT_SHOWN: &str = "(private key, not shown)";

/// Why the host needs its certificates (re)installed; empty: they do.
fn reasons(ctx: &Ctx, findings: &[Finding], ca: &Ca, names: &[String]) -> Vec<String> {
    let f = ctx.facts();
    let mut why = Vec::new();
    // What tls.certificates judged (libvirt's CA and certificates) it says itself.
    let judged = matches!(status(findings, id::TLS_CERTIFICATES), Status::Fail | Status::Warn);
    if judged {
        let m = findings.iter().find(|c| c.id == id::TLS_CERTIFICATES).map_or("", |c| c.message.as_str());
        why.push(format!("tls.certificates: {m}"));
    }
    let keys = f.raw.ok(facts::PKI_KEYS).unwrap_or("");
    for (path, record, what, _, _) in FILES {
        if judged && !matches!(what, What::Key(_)) && !path.starts_with("/etc/pki/qemu/") && f.raw.ok(record.unwrap_or("")).is_none() {
            continue;
        }
        match (what, record) {
            (What::Key(_), _) => {
                if !keys.lines().any(|l| l.split_once(' ').is_some_and(|(_, p)| p == *path)) {
                    why.push(format!("no {path}"));
                }
            }
            (What::Ca, Some(r)) => match f.raw.ok(r) {
                None => why.push(format!("no {path}")),
                Some(pem) if pem.trim() != ca.cert_pem.trim() => why.push(format!("{path} is not the inventory's CA")),
                Some(_) => {}
            },
            (What::Cert(kind), Some(r)) => match f.raw.ok(r) {
                None => why.push(format!("no {path}")),
                Some(pem) => {
                    if let Err(e) = ca::verifies_against(pem, &ca.cert_pem) {
                        why.push(format!("{path} is not the inventory CA's: {e}"));
                    } else if *kind == Kind::Server
                        && let Ok(info) = ca::read_cert(pem)
                    {
                        let missing: Vec<&String> = names.iter().filter(|n| !info.names.iter().any(|m| m.eq_ignore_ascii_case(n))).collect();
                        if !missing.is_empty() {
                            why.push(format!("{path} does not name {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
                        }
                    }
                }
            },
            _ => {}
        }
    }
    why
}

/// Plans the certificates of a host whose transport is tls. `ca`: the inventory's CA as
/// loaded (None: not loaded). True when certificates are installed (the libvirt daemon
/// must then read them again).
pub(super) fn plan(ctx: &Ctx, findings: &[Finding], ca: Option<&Result<Ca, String>>, steps: &mut Vec<Step>, notes: &mut Vec<String>) -> bool {
    if ctx.transport() != crate::inventory::Transport::Tls {
        return false;
    }
    let f = ctx.facts();
    let ca = match ca {
        Some(Ok(ca)) => ca,
        Some(Err(e)) => {
            notes.push(format!("{}: transport tls: cannot issue this host's certificates: {e}", id::TLS_CERTIFICATES));
            return false;
        }
        None => {
            notes.push(format!("{}: transport tls: no CA to issue this host's certificates from ([tls] in the inventory)", id::TLS_CERTIFICATES));
            return false;
        }
    };
    let names = ca::host_names(ctx.me.spec, f);
    let why = reasons(ctx, findings, ca, &names);
    if why.is_empty() {
        return false;
    }
    let issue = |kind| ca.issue(ctx.me.name(), &names, kind, ca::HOST_DAYS);
    let (server, client) = match (issue(Kind::Server), issue(Kind::Client)) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => {
            notes.push(format!("{}: cannot issue {}'s certificates: {e}", id::TLS_CERTIFICATES, ctx.me.name()));
            return false;
        }
    };
    // QEMU's group (Debian libvirt-qemu, RHEL qemu): getent's lines, the first found.
    let qemu_group = f
        .raw
        .get(facts::QEMU_GROUP)
        .and_then(|r| r.stdout.lines().find_map(|l| l.split(':').next().filter(|g| !g.is_empty()).map(str::to_string)));
    if qemu_group.is_none() {
        notes.push(format!("{}: no group libvirt-qemu or qemu: QEMU's keys are installed 0640 root:root (QEMU running as another user cannot read them)", id::TLS_CERTIFICATES));
    }
    let keys = f.raw.ok(facts::PKI_KEYS).unwrap_or("");
    let reason = format!("transport tls: certificates from the inventory's CA naming {}", names.join(", "));
    for (i, (path, record, what, mode, qemu)) in FILES.iter().enumerate() {
        let reason = if i == 0 { format!("{reason}; {}", why.join("; ")) } else { reason.clone() };
        let (content, secret) = match what {
            What::Ca => (ca.cert_pem.clone(), false),
            What::Cert(Kind::Server) => (server.cert_pem.clone(), false),
            What::Cert(Kind::Client) => (client.cert_pem.clone(), false),
            What::Key(Kind::Server) => (server.key_pem.clone(), true),
            What::Key(Kind::Client) => (client.key_pem.clone(), true),
        };
        let expect = match record {
            Some(r) => f.raw.ok(r).map(|t| super::apply::sha256(&crate::formats::bytes::encode(t))),
            None => keys.lines().find_map(|l| l.split_once(' ').filter(|(_, p)| p == path).map(|(h, _)| h.to_string())),
        };
        let group = if *qemu { qemu_group.clone().unwrap_or_else(|| "root".into()) } else { "root".into() };
        steps.push(Step::Install { path: path.to_string(), expect, content, mode: *mode, owner: "root".into(), group, secret, why: reason });
    }
    true
}
