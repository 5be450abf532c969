//! `libvirt.auth`: auth_tcp as the inventory policy asks. "none" (the seed's
//! choice, and the default policy) passes with a warning that says what it exposes.

use super::{Ctx, Outcome};
use crate::facts::HostFacts;
use crate::formats::libvirt_conf::Value;
use crate::inventory::AuthTcp;

pub fn check(ctx: &Ctx) -> Outcome {
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
