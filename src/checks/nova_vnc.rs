//! `nova.vnc-listen`: the VNC listen address travels with the guest; an address
//! specific to one host breaks QEMU start on the destination
//! ("Cannot assign requested address").

use super::{Ctx, Outcome};
use std::net::IpAddr;

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
    let found = f
        .nova_option("vnc", "server_listen")
        .or_else(|| f.nova_option("vnc", "vncserver_listen"))
        .or_else(|| f.nova_option("DEFAULT", "vncserver_listen"));
    let Some((addr, ev)) = found else {
        return Outcome::pass("VNC listens on the default 127.0.0.1");
    };
    match addr.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() || ip.is_loopback() => Outcome::pass(format!("VNC listens on {addr}")).with(ev),
        _ => Outcome::fail(format!(
            "VNC listens on {addr}, an address of this host only: QEMU fails to start on the destination; use 0.0.0.0"
        ))
        .with(ev),
    }
}
