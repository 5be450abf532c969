//! Nova in the loop: what Nova says of the inventory's hosts (doctor, validate), and
//! Nova's own live block migration between them (`validate --nova`).

pub mod checks;
pub mod cloud;
pub mod live;

use crate::audit::Gathered;
use crate::inventory::Inventory;
use crate::report::Report;
use checks::{HostNames, NovaView};
use cloud::{Cloud, CloudRef};

/// The names Nova-side checks use for each inventory host.
pub fn host_names<'a>(inv: &'a Inventory, gathered: &'a [Gathered]) -> Vec<HostNames<'a>> {
    inv.hosts
        .iter()
        .zip(gathered)
        .map(|(spec, g)| {
            let facts = g.result.as_ref().ok().map(|(f, _)| f);
            HostNames {
                inventory: &spec.name,
                hostname: facts.and_then(|f| f.hostname.as_deref()),
                nova_host: facts.and_then(|f| f.nova.get("DEFAULT", "host")).map(|(_, e)| e.value.trim()).filter(|v| !v.is_empty()),
            }
        })
        .collect()
}

/// Adds the Nova-side findings to each host of `report` (skipped, with why, where no
/// cloud is configured). Returns the connected cloud for later use.
pub fn audit(inv: &Inventory, gathered: &[Gathered], report: Report, cloud: Option<&CloudRef>) -> (Report, Option<Cloud>) {
    let names = host_names(inv, gathered);
    let (view, session) = match cloud {
        None => (Err("no cloud configured (--os-cloud, OS_CLOUD, [nova] cloud, or the OS_* variables)".to_string()), None),
        Some(r) => match Cloud::connect(r) {
            Err(e) => (Err(format!("fail:{e}")), None),
            Ok(c) => match c.compute_services().and_then(|s| c.hypervisors().map(|h| (s, h))) {
                Ok((s, h)) => (Ok(NovaView::new(&s, &h)), Some(c)),
                Err(e) => (Err(format!("fail:{e}")), Some(c)),
            },
        },
    };
    let mut hosts = report.hosts;
    for (i, h) in hosts.iter_mut().enumerate() {
        let mut found = match &view {
            Ok(v) => vec![checks::service(&names[i], v), checks::hypervisor(&names[i], &names, v)],
            Err(e) => match e.strip_prefix("fail:") {
                Some(why) => checks::unanswered(why),
                None => checks::skipped(e),
            },
        };
        checks::honour_skip(&mut found, &inv.skip);
        h.checks.extend(found);
    }
    (Report::with_pairs(hosts, report.pairs, report.elapsed_ms), session)
}
