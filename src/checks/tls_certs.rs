//! `tls.certificates` (transport tls only): the certificates libvirt reads on this host
//! (/etc/pki/CA/cacert.pem, /etc/pki/libvirt/servercert.pem and clientcert.pem, as the
//! facts read them; never a key): each verifies against the host's CA certificate, is
//! for its purpose (serverAuth, clientAuth), is valid now by the host's clock (a warning
//! 30 days before it ends), and the server certificate names what peers connect to (the
//! inventory name, the hostname, Nova's `live_migration_inbound_addr`). The host's clock
//! off the control node's by more than 5 minutes is a warning (TLS fails on skew).

use super::{Ctx, Outcome};
use crate::ca;
use crate::inventory::Transport;

const CA: &str = "/etc/pki/CA/cacert.pem";
const SERVER: &str = "/etc/pki/libvirt/servercert.pem";
const CLIENT: &str = "/etc/pki/libvirt/clientcert.pem";
/// Warn this long before a certificate ends.
const WARN_DAYS: i64 = 30;
const MAX_SKEW_S: i64 = 300;

fn date(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t).map(|d| d.date().to_string()).unwrap_or_else(|_| t.to_string())
}

pub fn check(ctx: &Ctx) -> Outcome {
    if ctx.transport() != Transport::Tls {
        return Outcome::skip("transport tcp: no certificates needed");
    }
    let f = ctx.facts();
    let now_control = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let now = f.clock.unwrap_or(now_control);
    let mut fails: Vec<String> = Vec::new();
    let mut warns: Vec<String> = Vec::new();
    let mut evidence: Vec<String> = Vec::new();
    if let Some(c) = f.clock {
        let skew = c - now_control;
        evidence.push(format!("date +%s on the host: {c} (control node: {now_control})"));
        if skew.abs() > MAX_SKEW_S {
            warns.push(format!("the host's clock is {skew} s off the control node's: TLS judges validity by it"));
        }
    }
    let Some(ca_pem) = f.raw.ok(crate::facts::PKI_CACERT) else {
        return Outcome::fail(format!("no {CA}: libvirt cannot verify peers (transport tls)")).with_all(evidence);
    };
    if let Err(e) = ca::read_cert(ca_pem) {
        return Outcome::fail(format!("{CA}: {e}")).with_all(evidence);
    }
    let mut valid_until = Vec::new();
    for (path, record, server) in [(SERVER, crate::facts::PKI_SERVERCERT, true), (CLIENT, crate::facts::PKI_CLIENTCERT, false)] {
        let Some(pem) = f.raw.ok(record) else {
            fails.push(format!("no {path}"));
            continue;
        };
        let info = match ca::read_cert(pem) {
            Ok(i) => i,
            Err(e) => {
                fails.push(format!("{path}: {e}"));
                continue;
            }
        };
        evidence.push(format!("{path}: subject {}, issuer {}, names {}, valid {} to {}", info.subject, info.issuer, info.names.join(", "), date(info.not_before), date(info.not_after)));
        if let Err(e) = ca::verifies_against(pem, ca_pem) {
            fails.push(format!("{path} does not verify against {CA}: {e}"));
        }
        if info.not_after < now {
            fails.push(format!("{path} expired on {}", date(info.not_after)));
        } else if info.not_before > now {
            fails.push(format!("{path} is not valid before {} (the host's clock?)", date(info.not_before)));
        } else if info.not_after - now < WARN_DAYS * 86_400 {
            warns.push(format!("{path} expires on {} (in {} days)", date(info.not_after), (info.not_after - now) / 86_400));
        }
        valid_until.push(date(info.not_after));
        if server {
            if !info.server_auth {
                fails.push(format!("{path} is not for a server (no TLS Web Server Authentication in its extended key usage)"));
            }
            let mut wanted = vec![ctx.me.name().to_string()];
            if let Some(h) = f.hostname.as_deref() {
                wanted.push(h.to_string());
            }
            if let Some((addr, _)) = f.nova_option("libvirt", "live_migration_inbound_addr") {
                wanted.push(addr);
            }
            let mut seen: Vec<String> = Vec::new();
            wanted.retain(|w| {
                let k = w.trim_end_matches('.').to_ascii_lowercase();
                let new = !seen.contains(&k);
                seen.push(k);
                new
            });
            let missing: Vec<String> = wanted.into_iter().filter(|w| !info.names.iter().any(|n| n.eq_ignore_ascii_case(w.trim_end_matches('.')))).collect();
            if !missing.is_empty() {
                fails.push(format!("{path} does not name {} (peers connect to it so; it names {})", missing.join(", "), if info.names.is_empty() { "nothing".into() } else { info.names.join(", ") }));
            }
        } else if !info.client_auth {
            fails.push(format!("{path} is not for a client (no TLS Web Client Authentication in its extended key usage)"));
        }
    }
    if !fails.is_empty() {
        return Outcome::fail(fails.join("; ")).with_all(evidence);
    }
    if !warns.is_empty() {
        return Outcome::warn(warns.join("; ")).with_all(evidence);
    }
    Outcome::pass(format!("server and client certificates signed by the host's CA, for their purposes, naming what peers use, valid until {}", valid_until.join(" and "))).with_all(evidence)
}
