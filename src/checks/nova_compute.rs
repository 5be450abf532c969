//! `nova.compute`: the nova-compute service state (seed precheck 5).

use super::{Ctx, Outcome};

pub fn check(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let Some(unit) = ["nova-compute.service", "openstack-nova-compute.service"].iter().find_map(|id| f.unit(id)) else {
        return Outcome::fail("nova-compute is not installed (no nova-compute.service or openstack-nova-compute.service)");
    };
    let ev = format!("{}: {}", unit.id, unit.describe());
    match unit.active_state.as_str() {
        "active" => Outcome::pass(format!("{} is running", unit.id)).with(ev),
        "activating" | "reloading" => Outcome::warn(format!(
            "{} is still starting (it waits for the message bus and the control plane)",
            unit.id
        ))
        .with(ev),
        state => Outcome::fail(format!("{} is {state}: Nova cannot schedule migrations to or from this host", unit.id)).with(ev),
    }
}
