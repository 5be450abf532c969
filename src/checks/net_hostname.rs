//! `net.hostname`: the destination builds the migration URI from its own
//! hostname; if it resolves to loopback libvirt refuses ("hostname on
//! destination resolved to localhost, but migration requires an FQDN"), and
//! if it does not resolve, "Unable to resolve address".

use super::{Ctx, Outcome};

pub fn check(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let Some(name) = &f.hostname else {
        return Outcome::fail("the host has no hostname");
    };
    if f.resolve_self.is_empty() {
        return Outcome::fail(format!("hostname {name} does not resolve on the host itself (getent ahosts {name})"));
    }
    let shown: Vec<String> = f.resolve_self.iter().map(|a| a.to_string()).collect();
    let ev = format!("getent ahosts {name}: {}", shown.join(" "));
    if let Some(lo) = f.resolve_self.iter().find(|a| a.is_loopback()) {
        let mut out = Outcome::fail(format!(
            "hostname {name} resolves to {lo} (loopback): libvirt refuses to migrate to this host; map {name} to the host's own address"
        ))
        .with(ev);
        if let Some(hosts) = &f.etc_hosts
            && let Some((i, line)) = hosts.lines().enumerate().find(|(_, l)| {
                let mut w = l.split_whitespace();
                w.next().is_some_and(|a| a.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
                    && w.any(|n| n == name || n.split('.').next() == Some(name.as_str()))
            })
        {
            out = out.with(format!("/etc/hosts:{}: {line}", i + 1));
        }
        return out;
    }
    if !f.addresses.is_empty() && !f.resolve_self.iter().any(|a| f.addresses.contains(a)) {
        return Outcome::warn(format!("hostname {name} resolves to {}, which is not an address of this host", shown.join(", ")))
            .with(ev);
    }
    Outcome::pass(format!("hostname {name} resolves to {}", shown.join(", "))).with(ev)
}
