//! `migready validate --nova`: the seed's own command, through Nova. Per pair: boot a
//! throwaway server on the source host, live-migrate it with block migration to the
//! destination, follow it to its end, verify it runs on the destination and is gone
//! from the source's libvirt, then delete it (and the flavor if migready made it),
//! whatever happens (failure, timeout, Ctrl-C). A failure says why from Nova's
//! records (instance fault, migration status, action events) and the matching lines
//! of nova-compute's log on both hosts.

use super::cloud::Cloud;
use crate::checks::{Finding, Outcome};
use crate::inventory::HostSpec;
use crate::transport::Session;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub const ID: &str = "nova.live-migration";
pub const CHECKS: &[(&str, &str)] =
    &[(ID, "validate --nova, per pair: Nova boots a test server on the source, live-migrates it with block migration to the destination (os-migrateLive), and it runs there")];

/// The flavor and image test servers use.
pub struct Resources {
    pub flavor: String,
    pub image: String,
    /// migready made the flavor: delete it at the end.
    pub own_flavor: bool,
}

/// Finds the image (`[nova] image` or `migready-lab-blank`) and the flavor
/// (`migready-test-RUN`, made here: 64 MiB, 1 vCPU, 1 GB).
pub fn resources(cloud: &Cloud, image: Option<&str>, run: &str) -> Result<Resources, String> {
    let name = image.unwrap_or("migready-lab-blank");
    let image = cloud.find_image(name)?.ok_or_else(|| {
        format!("no active Glance image named {name:?}: name one with [nova] image (any small qcow2 will do: Nova waits for ACTIVE, not for an OS)")
    })?;
    let flavor_name = format!("migready-test-{run}");
    let flavor = cloud.create_flavor(&flavor_name, 64, 1, 1)?;
    Ok(Resources { flavor, image, own_flavor: true })
}

pub fn release(cloud: &Cloud, r: &Resources) {
    if r.own_flavor {
        let _ = cloud.delete_flavor(&r.flavor);
    }
}

fn interrupted() -> bool {
    crate::validate::migrate::INTERRUPTED.load(Ordering::SeqCst)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// Deletes the server when dropped (the test's end, an error, Ctrl-C).
struct Server<'a> {
    cloud: &'a Cloud,
    id: String,
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        let _ = self.cloud.delete_server(&self.id);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            match self.cloud.server(&self.id) {
                Ok(None) | Err(_) => break,
                Ok(Some(_)) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
}

/// Waits until the server is ACTIVE with no task (or ERROR, or gone), within `until`.
fn settle(cloud: &Cloud, id: &str, until: Instant) -> Result<Value, String> {
    loop {
        let v = cloud.server(id)?.ok_or("the server disappeared")?;
        let task = v["OS-EXT-STS:task_state"].as_str();
        match (s(&v, "status"), task) {
            ("ACTIVE", None) | ("ERROR", _) => return Ok(v),
            _ => {}
        }
        if interrupted() {
            return Err("interrupted".into());
        }
        if Instant::now() > until {
            return Err(format!("still {} ({}) after the timeout", s(&v, "status"), task.unwrap_or("no task")));
        }
        std::thread::sleep(Duration::from_millis(700));
    }
}

/// The live-migration record's status once it has ended (`completed`, `failed`,
/// `error`, `cancelled`), within `until`. Nova moves the server to the destination
/// (host set, task cleared) in post_live_migration_at_destination, before the source
/// has cleaned up and marked the record `completed`: the server's state alone is not
/// the end of the migration.
fn migration_end(cloud: &Cloud, id: &str, until: Instant) -> Result<String, String> {
    let mut last = String::from("no live-migration record");
    loop {
        let m = cloud.migrations(id)?;
        let rec = m["migrations"].as_array().into_iter().flatten().filter(|r| r["migration_type"] == "live-migration").max_by_key(|r| r["id"].as_u64().unwrap_or(0));
        if let Some(r) = rec {
            last = s(r, "status").to_string();
            if matches!(last.as_str(), "completed" | "failed" | "error" | "cancelled") {
                return Ok(last);
            }
        }
        if interrupted() {
            return Err("interrupted".into());
        }
        if Instant::now() > until {
            return Err(format!("Nova's migration record is still {last:?} after the timeout"));
        }
        std::thread::sleep(Duration::from_millis(700));
    }
}

/// nova-compute's log lines on a host that name the server.
fn compute_log(spec: &HostSpec, id: &str) -> Vec<String> {
    let q = crate::shell::quote(id);
    let cmd = format!(
        "{{ journalctl -u nova-compute.service -u openstack-nova-compute.service --no-pager -o cat --since '-30 min' 2>/dev/null; \
           cat /var/log/nova/nova-compute.log 2>/dev/null; }} | grep -F -- {q} | grep -E 'ERROR|WARNING|Migration|migrat' | tail -n 6"
    );
    let out = Session::connect(&crate::audit::target(spec)).map_err(|e| e.to_string()).and_then(|mut s| s.exec(&cmd, b"", true).map_err(|e| e.to_string()));
    match out {
        Ok(out) => String::from_utf8_lossy(&out.stdout).lines().map(|l| format!("{} nova-compute: {}", spec.name, l.trim())).collect(),
        Err(e) => vec![format!("{}: could not read nova-compute's log: {e}", spec.name)],
    }
}

/// Whether the source's libvirt still has a domain named `instance`.
fn on_libvirt(spec: &HostSpec, instance: &str) -> Result<bool, String> {
    let mut session = Session::connect(&crate::audit::target(spec)).map_err(|e| e.to_string())?;
    let out = session.exec("virsh -q -c qemu:///system list --all --name", b"", true).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == instance))
}

/// Why a migration failed, from Nova's records: the migration's status, the fault, the
/// failed action event.
fn reasons(cloud: &Cloud, id: &str, server: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(m) = cloud.migrations(id) {
        for r in m["migrations"].as_array().into_iter().flatten().filter(|r| r["migration_type"] == "live-migration") {
            out.push(format!("migration {}: {} -> {}: status {}", s(r, "uuid"), s(r, "source_compute"), s(r, "dest_compute"), s(r, "status")));
        }
    }
    if let Some(msg) = server["fault"]["message"].as_str() {
        out.push(format!("instance fault: {msg}"));
    }
    if let Ok(actions) = cloud.instance_actions(id) {
        for a in actions.iter().filter(|a| a["action"] == "live-migration") {
            for e in a["events"].as_array().into_iter().flatten().filter(|e| e["result"] == "Error") {
                let last = e["traceback"].as_str().and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty())).unwrap_or("");
                out.push(format!("action event {} on {}: Error{}", s(e, "event"), s(e, "host"), if last.is_empty() { String::new() } else { format!(": {}", last.trim()) }));
            }
        }
    }
    out
}

/// One test migration from `src` to `dst` (Nova service hosts `src_host`, `dst_host`).
#[allow(clippy::too_many_arguments)]
pub fn migrate(cloud: &Cloud, res: &Resources, src: &HostSpec, src_host: &str, dst: &HostSpec, dst_host: &str, name: &str, timeout: Duration) -> Finding {
    let start = Instant::now();
    let fail = |m: String, ev: Vec<String>| Outcome::fail(m).with_all(ev).label_as(ID);
    let id = match cloud.create_server(name, &res.image, &res.flavor, src_host) {
        Ok(id) => id,
        Err(e) => return fail(format!("Nova did not boot the test server on {src_host}: {e}"), vec![]),
    };
    let server = Server { cloud, id };
    let booted = match settle(cloud, &server.id, Instant::now() + timeout) {
        Ok(v) if s(&v, "status") == "ACTIVE" => v,
        Ok(v) => return fail(format!("the test server went to ERROR while booting on {src_host}"), reasons(cloud, &server.id, &v)),
        Err(e) => return fail(format!("the test server did not become ACTIVE on {src_host}: {e}"), vec![]),
    };
    let instance = s(&booted, "OS-EXT-SRV-ATTR:instance_name").to_string();
    if s(&booted, "OS-EXT-SRV-ATTR:host") != src_host {
        return fail(format!("Nova booted the test server on {} instead of {src_host}", s(&booted, "OS-EXT-SRV-ATTR:host")), vec![]);
    }
    let booted_in = start.elapsed();
    let t = Instant::now();
    if let Err(e) = cloud.live_migrate(&server.id, dst_host) {
        return fail(format!("Nova refused the live migration {src_host} -> {dst_host}: {e}"), vec![]);
    }
    // The action returns at once; the migration's end shows as no task and a host.
    std::thread::sleep(Duration::from_millis(500));
    let after = match settle(cloud, &server.id, Instant::now() + timeout) {
        Ok(v) => v,
        Err(e) => return fail(format!("the live migration {src_host} -> {dst_host} did not end: {e}"), reasons(cloud, &server.id, &Value::Null)),
    };
    let now_on = s(&after, "OS-EXT-SRV-ATTR:host");
    let ended = if now_on == dst_host && s(&after, "status") == "ACTIVE" { Some(migration_end(cloud, &server.id, Instant::now() + timeout)) } else { None };
    let took = t.elapsed();
    let mut ev = reasons(cloud, &server.id, &after);
    match ended {
        Some(Ok(st)) if st != "completed" => {
            ev.extend(compute_log(src, &server.id));
            ev.extend(compute_log(dst, &server.id));
            return fail(format!("the server is ACTIVE on {dst_host}, but Nova's live migration {src_host} -> {dst_host} ended {st}"), ev);
        }
        Some(Err(e)) => {
            ev.extend(compute_log(src, &server.id));
            return fail(format!("the server is ACTIVE on {dst_host}, but the live migration {src_host} -> {dst_host} did not end: {e}"), ev);
        }
        _ => {}
    }
    if now_on != dst_host || s(&after, "status") != "ACTIVE" {
        ev.extend(compute_log(src, &server.id));
        ev.extend(compute_log(dst, &server.id));
        return fail(format!("Nova's live block migration {src_host} -> {dst_host} failed: the server is {} on {now_on}", s(&after, "status")), ev);
    }
    match on_libvirt(src, &instance) {
        Ok(true) => return fail(format!("the server runs on {dst_host}, but {instance} is still defined in {src_host}'s libvirt"), ev),
        Ok(false) => {}
        Err(e) => ev.push(format!("could not list {src_host}'s libvirt domains: {e}")),
    }
    drop(server);
    Outcome::pass(format!(
        "Nova live-migrated {name} ({instance}) {src_host} -> {dst_host} with block migration in {:.1} s (boot {:.1} s, all with clean-up {:.1} s)",
        took.as_secs_f64(),
        booted_in.as_secs_f64(),
        start.elapsed().as_secs_f64()
    ))
    .with_all(ev)
    .label_as(ID)
}
