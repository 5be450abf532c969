//! `libvirt.host-uuid`: libvirt's host UUID is unique across the inventory
//! (cloned hosts share it, and migration between them fails with
//! "Attempt to migrate guest to the same host").

use super::{Ctx, Outcome};

pub fn check(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let Some(uuid) = &f.host_uuid else {
        let why = f.raw.get("capabilities").map(|r| r.stderr.trim().to_string()).unwrap_or_default();
        return Outcome::warn("libvirt did not report its host UUID (virsh capabilities failed)").with(format!("virsh capabilities: {why}"));
    };
    let same: Vec<&str> = ctx.peers.iter().filter(|p| p.facts.host_uuid.as_ref() == Some(uuid)).map(|p| p.name()).collect();
    let evidence = format!("virsh capabilities: <uuid>{uuid}</uuid>");
    if same.is_empty() {
        Outcome::pass(format!("host UUID {uuid} is unique")).with(evidence)
    } else {
        Outcome::fail(format!(
            "host UUID {uuid} is shared with {}: libvirt refuses migration between them (\"Attempt to migrate guest to the same host\"); \
             set a unique host_uuid in libvirtd.conf",
            same.join(", ")
        ))
        .with(evidence)
    }
}
