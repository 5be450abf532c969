//! `nova.migration-uri`: Nova opens the destination with qemu+tcp, the transport
//! the rest of the checks prepare. `live_migration_uri` (deprecated in Ocata)
//! still wins when set; otherwise `live_migration_scheme` (default tcp), and
//! native TLS switches to tls. With `transport = "tls"`: qemu+tls, and native TLS for
//! the migration streams (`live_migration_with_native_tls`, Stein and later).

use super::{Ctx, Outcome};
use crate::inventory::Transport;

/// The check; its evidence ends with the files nova-compute reads, in their order.
pub fn check(ctx: &Ctx) -> Outcome {
    let out = judge(ctx);
    let f = ctx.facts();
    if f.nova.is_empty() { out } else { out.with(f.nova.evidence()) }
}

fn judge(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    if f.nova.is_empty() {
        return Outcome::skip("no nova configuration file").with(f.nova.evidence());
    }
    if ctx.transport() == Transport::Tls {
        return tls(ctx);
    }
    if let Some((uri, ev)) = f.nova_option("libvirt", "live_migration_uri") {
        return if uri.starts_with("qemu+tcp://") {
            Outcome::warn(format!("live_migration_uri = {uri} works but is deprecated; prefer live_migration_scheme = tcp")).with(ev)
        } else {
            Outcome::fail(format!("live_migration_uri = {uri}: Nova will not use qemu+tcp, which is what this host is prepared for")).with(ev)
        };
    }
    if let Some((v, ev)) = f.nova_option("libvirt", "live_migration_with_native_tls")
        && v.eq_ignore_ascii_case("true")
    {
        return Outcome::fail("live_migration_with_native_tls = true: QEMU's migration streams in TLS, which needs the certificates under /etc/pki/qemu that transport tcp does not set up").with(ev);
    }
    let mut out = match f.nova_option("libvirt", "live_migration_scheme") {
        Some((s, ev)) if s == "tcp" => Outcome::pass("Nova migrates over qemu+tcp (live_migration_scheme = tcp)").with(ev),
        Some((s, ev)) => {
            Outcome::fail(format!("live_migration_scheme = {s}: Nova will use qemu+{s}, not qemu+tcp")).with(ev)
        }
        None => Outcome::pass("Nova migrates over qemu+tcp (default scheme)"),
    };
    if let Some((addr, ev)) = f.nova_option("libvirt", "live_migration_inbound_addr") {
        out = out.with(ev);
        out.message.push_str(&format!("; peers reach this host at {addr}"));
    }
    out
}

/// `transport = "tls"`: Nova opens qemu+tls (`live_migration_scheme = tls`, or a
/// `live_migration_uri` of qemu+tls) and QEMU's streams are in TLS
/// (`live_migration_with_native_tls = true`, Stein and later). The two are independent:
/// native TLS does not change the scheme (default tcp; seen on the lab's Zed cloud: with
/// native TLS alone nova-compute connected to qemu+tcp on 16509).
fn tls(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let native = f.nova_option("libvirt", "live_migration_with_native_tls").filter(|(v, _)| v.eq_ignore_ascii_case("true"));
    // The scheme Nova's libvirt connection uses: (scheme, its evidence, its name).
    let (scheme, ev, what) = match f.nova_option("libvirt", "live_migration_uri") {
        Some((uri, ev)) => (uri.split("://").next().unwrap_or("").trim_start_matches("qemu+").to_string(), Some(ev), format!("live_migration_uri = {uri}")),
        None => match f.nova_option("libvirt", "live_migration_scheme") {
            Some((s, ev)) => (s.clone(), Some(ev), format!("live_migration_scheme = {s}")),
            None => ("tcp".to_string(), None, "live_migration_scheme not set (default tcp)".to_string()),
        },
    };
    let mut out = match (scheme == "tls", &native) {
        (true, Some(_)) => Outcome::pass(format!("Nova migrates over qemu+tls ({what}), the migration streams in TLS (live_migration_with_native_tls = true)")),
        (true, None) => Outcome::warn(format!(
            "{what}: libvirt's connection in TLS, the migration streams not; set live_migration_with_native_tls = true (Stein and later)"
        )),
        (false, Some(_)) => Outcome::fail(format!(
            "{what}: Nova opens qemu+{scheme}, not the qemu+tls the transport policy asks (live_migration_with_native_tls = true puts only QEMU's streams in TLS); set live_migration_scheme = tls"
        )),
        (false, None) => Outcome::fail(format!(
            "{what}: Nova opens qemu+{scheme}, not the qemu+tls the transport policy asks; set live_migration_scheme = tls and live_migration_with_native_tls = true"
        )),
    };
    if let Some(ev) = ev {
        out = out.with(ev);
    }
    if let Some((_, ev)) = native {
        out = out.with(ev);
    }
    out
}
