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
        return Outcome::fail("live_migration_with_native_tls = true: Nova migrates over qemu+tls, not qemu+tcp").with(ev);
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

/// `transport = "tls"`: Nova opens qemu+tls and, with native TLS, QEMU's streams are in
/// TLS too; `live_migration_scheme = tls` alone puts libvirt's connection in TLS, not the
/// streams.
fn tls(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    if let Some((v, ev)) = f.nova_option("libvirt", "live_migration_with_native_tls")
        && v.eq_ignore_ascii_case("true")
    {
        return Outcome::pass("Nova migrates over qemu+tls, the migration streams in TLS (live_migration_with_native_tls = true)").with(ev);
    }
    if let Some((uri, ev)) = f.nova_option("libvirt", "live_migration_uri") {
        return if uri.starts_with("qemu+tls://") {
            Outcome::warn(format!("live_migration_uri = {uri}: qemu+tls, but the migration streams are not in TLS; set live_migration_with_native_tls = true")).with(ev)
        } else {
            Outcome::fail(format!("live_migration_uri = {uri}: Nova will not use qemu+tls, which the transport policy asks")).with(ev)
        };
    }
    match f.nova_option("libvirt", "live_migration_scheme") {
        Some((s, ev)) if s == "tls" => Outcome::warn(
            "live_migration_scheme = tls: libvirt's connection in TLS, the migration streams not; set live_migration_with_native_tls = true (Stein and later)",
        )
        .with(ev),
        Some((s, ev)) => Outcome::fail(format!("live_migration_scheme = {s}: Nova will use qemu+{s}, not the qemu+tls the transport policy asks")).with(ev),
        None => Outcome::fail("Nova migrates over qemu+tcp (default scheme), not the qemu+tls the transport policy asks; set live_migration_with_native_tls = true"),
    }
}
