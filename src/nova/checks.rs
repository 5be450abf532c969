//! The Nova-side checks: what Nova itself says of each inventory host (its
//! nova-compute service and hypervisor record), as pure functions of the API's
//! answers (`GET /os-services?binary=nova-compute`, `GET /os-hypervisors/detail`).

use crate::checks::{Finding, Outcome, Status};
use serde_json::Value;

pub const SERVICE: &str = "nova.service";
pub const HYPERVISOR: &str = "nova.hypervisor";

/// The Nova checks, for `migready checks` and `[checks] skip`.
pub const CHECKS: &[(&str, &str)] = &[
    (SERVICE, "Nova reports the host's nova-compute service up and enabled, with a hypervisor record; inventory name, Nova's service host and the hostname agree (seed precheck 5, as Nova judges it)"),
    (HYPERVISOR, "hypervisor type and version as Nova reports them agree across the hosts (seed precheck 8); a newer source than destination is refused by Nova"),
];

/// What Nova answered.
#[derive(Debug, Clone, Default)]
pub struct NovaView {
    pub services: Vec<Value>,
    pub hypervisors: Vec<Value>,
}

impl NovaView {
    /// From the two answers (each with its top-level key or as the list itself).
    pub fn new(services: &Value, hypervisors: &Value) -> NovaView {
        let list = |v: &Value, key: &str| v.get(key).unwrap_or(v).as_array().cloned().unwrap_or_default();
        let services = list(services, "services").into_iter().filter(|s| s["binary"] == "nova-compute").collect();
        NovaView { services, hypervisors: list(hypervisors, "hypervisors") }
    }

    fn service(&self, host: &str) -> Option<&Value> {
        self.services.iter().find(|s| s["host"].as_str() == Some(host))
    }

    fn hypervisor(&self, service_host: &str) -> Option<&Value> {
        self.hypervisors.iter().find(|h| h["service"]["host"].as_str() == Some(service_host))
    }
}

/// One inventory host as the checks see it.
#[derive(Debug, Clone)]
pub struct HostNames<'a> {
    pub inventory: &'a str,
    /// The host's own hostname (facts), if reached.
    pub hostname: Option<&'a str>,
    /// nova.conf `[DEFAULT] host`, if set.
    pub nova_host: Option<&'a str>,
}

impl HostNames<'_> {
    /// The name nova-compute registers under: `[DEFAULT] host`, else the hostname,
    /// else (not reached) the inventory name.
    pub fn service_host(&self) -> &str {
        self.nova_host.or(self.hostname).unwrap_or(self.inventory)
    }
}

/// QEMU/libvirt versions as Nova encodes them: 7002022 -> 7.2.22.
pub fn version(v: u64) -> String {
    format!("{}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000)
}

pub fn service(h: &HostNames, nova: &NovaView) -> Finding {
    let want = h.service_host();
    let svc = nova.service(want).or_else(|| nova.service(h.inventory));
    let known: Vec<&str> = nova.services.iter().filter_map(|s| s["host"].as_str()).collect();
    let Some(svc) = svc else {
        return Outcome::fail(format!(
            "Nova has no nova-compute service for {} (looked for {want:?}; Nova knows {})",
            h.inventory,
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
        .label_as(SERVICE);
    };
    let host = svc["host"].as_str().unwrap_or("?");
    let ev = format!(
        "os-services: host {host}, state {}, status {}, updated_at {}{}",
        svc["state"].as_str().unwrap_or("?"),
        svc["status"].as_str().unwrap_or("?"),
        svc["updated_at"].as_str().unwrap_or("?"),
        svc["disabled_reason"].as_str().map_or(String::new(), |r| format!(", disabled_reason {r:?}"))
    );
    if svc["state"] != "up" {
        return Outcome::fail(format!("Nova sees nova-compute on {host} down: the scheduler and live migration ignore this host")).with(ev).label_as(SERVICE);
    }
    if svc["forced_down"] == true {
        return Outcome::fail(format!("nova-compute on {host} is forced down in Nova")).with(ev).label_as(SERVICE);
    }
    if svc["status"] != "enabled" {
        let why = svc["disabled_reason"].as_str().map_or(String::new(), |r| format!(" ({r})"));
        return Outcome::fail(format!("nova-compute on {host} is disabled in Nova{why}: no instance is migrated to it")).with(ev).label_as(SERVICE);
    }
    let Some(hv) = nova.hypervisor(host) else {
        return Outcome::fail(format!("nova-compute on {host} is up but Nova has no hypervisor record for it (not discovered into a cell?)")).with(ev).label_as(SERVICE);
    };
    let hv_ev = format!(
        "os-hypervisors: {} ({} {}), state {}, status {}",
        hv["hypervisor_hostname"].as_str().unwrap_or("?"),
        hv["hypervisor_type"].as_str().unwrap_or("?"),
        hv["hypervisor_version"].as_u64().map_or("?".to_string(), version),
        hv["state"].as_str().unwrap_or("?"),
        hv["status"].as_str().unwrap_or("?")
    );
    // The names operators mix up: inventory, Nova's service host, the hostname.
    let mut names = vec![("inventory name", h.inventory)];
    names.push(("Nova service host", host));
    if let Some(hn) = h.hostname {
        names.push(("hostname", hn));
    }
    let short = |n: &str| n.split('.').next().unwrap_or(n).to_string();
    if names.iter().any(|(_, n)| short(n) != short(h.inventory)) {
        let list: Vec<String> = names.iter().map(|(what, n)| format!("{what} {n}")).collect();
        return Outcome::warn(format!("nova-compute is up and enabled, but the names differ: {}", list.join(", ")))
            .with(ev)
            .with(hv_ev)
            .label_as(SERVICE);
    }
    Outcome::pass(format!("Nova reports nova-compute on {host} up and enabled, hypervisor {}", hv["hypervisor_hostname"].as_str().unwrap_or("?")))
        .with(ev)
        .with(hv_ev)
        .label_as(SERVICE)
}

/// Hypervisor type and version of `me` against the other hosts' (as Nova reports them).
pub fn hypervisor(me: &HostNames, all: &[HostNames], nova: &NovaView) -> Finding {
    let rec = |h: &HostNames| {
        let svc = nova.service(h.service_host()).or_else(|| nova.service(h.inventory))?;
        nova.hypervisor(svc["host"].as_str()?)
    };
    let Some(mine) = rec(me) else {
        return Outcome::skip("Nova has no hypervisor record for this host (see nova.service)").label_as(HYPERVISOR);
    };
    let kind = mine["hypervisor_type"].as_str().unwrap_or("?").to_string();
    let v = mine["hypervisor_version"].as_u64().unwrap_or(0);
    let mut older = Vec::new();
    let mut other_type = Vec::new();
    let mut evidence = vec![format!("{}: {kind} {}", me.inventory, version(v))];
    for h in all.iter().filter(|h| h.inventory != me.inventory) {
        let Some(r) = rec(h) else { continue };
        let (t, pv) = (r["hypervisor_type"].as_str().unwrap_or("?"), r["hypervisor_version"].as_u64().unwrap_or(0));
        evidence.push(format!("{}: {t} {}", h.inventory, version(pv)));
        if t != kind {
            other_type.push(h.inventory.to_string());
        } else if pv < v {
            older.push(h.inventory.to_string());
        }
    }
    if !other_type.is_empty() {
        return Outcome::fail(format!("hypervisor type {kind} here, another on {}: Nova does not live-migrate between them", other_type.join(", ")))
            .with_all(evidence)
            .label_as(HYPERVISOR);
    }
    if !older.is_empty() {
        return Outcome::warn(format!(
            "{kind} {} here is newer than on {}: Nova refuses live migration from this host to them (DestinationHypervisorTooOld)",
            version(v),
            older.join(", ")
        ))
        .with_all(evidence)
        .label_as(HYPERVISOR);
    }
    Outcome::pass(format!("{kind} {} as Nova reports it; no peer is older", version(v))).with_all(evidence).label_as(HYPERVISOR)
}

/// Both findings skipped with `why` (no cloud configured, a check skipped).
pub fn skipped(why: &str) -> Vec<Finding> {
    CHECKS.iter().map(|(id, _)| Outcome::skip(why).label_as(id)).collect()
}

/// Both findings failed: the cloud could not be asked.
pub fn unanswered(why: &str) -> Vec<Finding> {
    CHECKS.iter().map(|(id, _)| Outcome::fail(format!("could not ask Nova: {why}")).label_as(id)).collect()
}

/// Marks findings of checks the inventory skips.
pub fn honour_skip(findings: &mut [Finding], skip: &[String]) {
    for f in findings.iter_mut() {
        if crate::checks::skipped(skip, f.id) {
            f.status = Status::Skip;
            f.message = crate::checks::SKIPPED.to_string();
            f.evidence.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view() -> NovaView {
        let services = json!({"services": [
            {"binary": "nova-compute", "host": "cmpa", "state": "up", "status": "enabled", "forced_down": false, "updated_at": "2026-12-01T16:12:00.000000", "disabled_reason": null},
            {"binary": "nova-compute", "host": "cmpb", "state": "down", "status": "enabled", "forced_down": false, "updated_at": "2026-12-01T15:00:00.000000", "disabled_reason": null},
            {"binary": "nova-compute", "host": "cmpc", "state": "up", "status": "disabled", "forced_down": false, "updated_at": "2026-12-01T16:12:00.000000", "disabled_reason": "maintenance"}
        ]});
        let hypervisors = json!({"hypervisors": [
            {"hypervisor_hostname": "cmpa", "hypervisor_type": "QEMU", "hypervisor_version": 7002022, "state": "up", "status": "enabled", "service": {"host": "cmpa", "id": 5}},
            {"hypervisor_hostname": "cmpc", "hypervisor_type": "QEMU", "hypervisor_version": 7002000, "state": "up", "status": "disabled", "service": {"host": "cmpc", "id": 7}}
        ]});
        NovaView::new(&services, &hypervisors)
    }

    fn names<'a>(inv: &'a str, hostname: &'a str) -> HostNames<'a> {
        HostNames { inventory: inv, hostname: Some(hostname), nova_host: None }
    }

    #[test]
    fn service_as_nova_sees_it() {
        let v = view();
        let f = service(&names("cmpa", "cmpa"), &v);
        assert_eq!(f.status, Status::Pass, "{f:?}");
        let f = service(&names("cmpb", "cmpb"), &v);
        assert_eq!(f.status, Status::Fail);
        assert!(f.message.contains("Nova sees nova-compute on cmpb down"), "{}", f.message);
        let f = service(&names("cmpc", "cmpc"), &v);
        assert!(f.status == Status::Fail && f.message.contains("disabled in Nova (maintenance)"), "{}", f.message);
        let f = service(&names("cmpd", "cmpd"), &v);
        assert!(f.status == Status::Fail && f.message.contains("no nova-compute service for cmpd") && f.message.contains("cmpa, cmpb, cmpc"), "{}", f.message);
    }

    #[test]
    fn a_host_named_otherwise_in_nova_is_named() {
        let v = view();
        // The inventory says compute-a; the host calls itself cmpa, and so does Nova.
        let f = service(&names("compute-a", "cmpa"), &v);
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(f.message.contains("inventory name compute-a, Nova service host cmpa, hostname cmpa"), "{}", f.message);
        // [DEFAULT] host decides what Nova calls it.
        let h = HostNames { inventory: "cmpa", hostname: Some("cmpa"), nova_host: Some("cmpa-nova") };
        let f = service(&h, &v);
        assert!(f.status == Status::Pass, "falls back to the inventory name: {f:?}");
    }

    #[test]
    fn answers_recorded_from_the_lab_cloud() {
        // Zed, two Debian 12 computes (tests/fixtures/nova, taken by tests/lab/nova-capture.sh).
        let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap();
        let v = NovaView::new(
            &parse(include_str!("../../tests/fixtures/nova/before-fix-cmpa-to-cmpb/api-os-services.2.1.json")),
            &parse(include_str!("../../tests/fixtures/nova/before-fix-cmpa-to-cmpb/api-os-hypervisors-detail.2.1.json")),
        );
        assert_eq!(v.services.len(), 2, "only nova-compute services: {:?}", v.services);
        let all = [names("cmpa", "cmpa"), names("cmpb", "cmpb")];
        for h in &all {
            let f = service(h, &v);
            assert_eq!(f.status, Status::Pass, "{f:?}");
            assert!(f.evidence.iter().any(|e| e.contains("QEMU 7.2.22")), "{f:?}");
            assert_eq!(hypervisor(h, &all, &v).status, Status::Pass);
        }
        // The controller is no compute host.
        assert_eq!(service(&names("ctl", "ctl"), &v).status, Status::Fail);
    }

    #[test]
    fn hypervisor_versions_across_hosts() {
        let v = view();
        let all = [names("cmpa", "cmpa"), names("cmpc", "cmpc")];
        let f = hypervisor(&all[0], &all, &v);
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(f.message.contains("QEMU 7.2.22 here is newer than on cmpc"), "{}", f.message);
        let f = hypervisor(&all[1], &all, &v);
        assert_eq!(f.status, Status::Pass, "{f:?}");
        assert_eq!(version(10000013), "10.0.13");
    }
}
