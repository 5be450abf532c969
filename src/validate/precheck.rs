//! The seed's prechecks before a migration, from the facts doctor gathered
//! (nothing is gathered again): rights, a different destination host, room on
//! it, the same hypervisor, versions that work in this direction, nova-compute.

use super::machine;
use crate::checks::{HostView, Outcome};

/// What the test guest needs on the destination.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub memory_kib: u64,
    pub disk_bytes: u64,
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

/// Judge the pair; on success also the machine type to use.
pub fn check(src: &HostView, dst: &HostView, need: Need) -> (Outcome, Option<String>) {
    let (s, d) = (src.name(), dst.name());
    let mut fails: Vec<String> = Vec::new();
    let mut passes: Vec<String> = Vec::new();
    let mut evidence: Vec<String> = Vec::new();

    // Rights.
    let not_root: Vec<&str> = [src, dst].iter().filter(|h| h.facts.uid != Some(0)).map(|h| h.name()).collect();
    if not_root.is_empty() {
        passes.push("root on both".into());
    } else {
        fails.push(format!("commands do not run as root on {}", not_root.join(", ")));
    }

    // A different host.
    match (&src.facts.host_uuid, &dst.facts.host_uuid) {
        (Some(a), Some(b)) if a == b => fails.push(format!(
            "{s} and {d} share libvirt host UUID {a}: libvirt refuses (\"Attempt to migrate guest to the same host\")"
        )),
        (Some(a), Some(b)) => {
            passes.push("different host UUIDs".into());
            evidence.push(format!("host UUID {s}: {a}, {d}: {b}"));
        }
        _ => fails.push(format!("libvirt did not report its host UUID on {}", if src.facts.host_uuid.is_none() { s } else { d })),
    }

    // Room on the destination.
    match dst.facts.mem_available_kib {
        Some(k) if k >= need.memory_kib => passes.push(format!("{} memory available on {d}", gib(k.saturating_mul(1024)))),
        Some(k) => fails.push(format!("{d} has {} memory available, the test guest needs {}", gib(k.saturating_mul(1024)), gib(need.memory_kib.saturating_mul(1024)))),
        None => fails.push(format!("free memory on {d} unknown (/proc/meminfo)")),
    }
    match dst.facts.instances_free_bytes {
        Some(b) if b >= need.disk_bytes => passes.push(format!("{} free in {} on {d}", gib(b), dst.facts.instances_path)),
        Some(b) => fails.push(format!("{d} has {} free in {}, the test guest needs {}", gib(b), dst.facts.instances_path, gib(need.disk_bytes))),
        None => fails.push(format!("free space in {} on {d} unknown", dst.facts.instances_path)),
    }

    // Same hypervisor.
    let qemu = |h: &HostView| h.facts.raw.ok("capabilities").is_some_and(|c| c.contains("<domain type='qemu'")) && h.facts.qemu_version.is_some();
    let no_qemu: Vec<&str> = [src, dst].iter().filter(|h| !qemu(h)).map(|h| h.name()).collect();
    if no_qemu.is_empty() {
        passes.push("QEMU on both".into());
    } else {
        fails.push(format!("libvirt on {} offers no QEMU guests (virsh capabilities)", no_qemu.join(", ")));
    }

    // Versions in this direction: a machine type both know.
    let ver = |h: &HostView| {
        format!(
            "libvirt {}, QEMU {}",
            h.facts.libvirt_version.map_or("?".into(), |v| v.to_string()),
            h.facts.qemu_version.map_or("?".into(), |v| v.to_string())
        )
    };
    evidence.push(format!("{s}: {}; {d}: {}", ver(src), ver(dst)));
    let newer = match (src.facts.qemu_version, dst.facts.qemu_version) {
        (Some(a), Some(b)) => a > b,
        _ => false,
    };
    let machine = machine::common(&src.facts.machine_types, &dst.facts.machine_types);
    match &machine {
        Some(m) if newer => passes.push(format!("newer to older QEMU: machine type {m}, which both know")),
        Some(m) => passes.push(format!("machine type {m}")),
        None => fails.push(format!(
            "migration from {s} (newest {}) to {d} (newest {}) is unsupported in this direction: no pc-i440fx machine type known to both",
            machine::newest(&src.facts.machine_types).unwrap_or("none"),
            machine::newest(&dst.facts.machine_types).unwrap_or("none")
        )),
    }

    // nova-compute: a warning, not blocking (the test guest does not go through Nova,
    // but Nova could not run this migration while its service is down).
    let mut nova = Vec::new();
    for h in [src, dst] {
        let unit = ["nova-compute.service", "openstack-nova-compute.service"].iter().find_map(|id| h.facts.unit(id));
        match unit {
            Some(u) => {
                evidence.push(format!("{}: {}: {}", h.name(), u.id, u.describe()));
                if !matches!(u.active_state.as_str(), "active" | "activating" | "reloading") {
                    nova.push(format!("{} is {} on {}", u.id, u.active_state, h.name()));
                }
            }
            None => {
                evidence.push(format!("{}: nova-compute is not installed", h.name()));
                nova.push(format!("nova-compute is not installed on {}", h.name()));
            }
        }
    }

    if fails.is_empty() && !nova.is_empty() {
        let msg = format!("{}; but {}: Nova itself could not migrate between them", passes.join(", "), nova.join(", "));
        (Outcome::warn(msg).with_all(evidence), machine)
    } else if fails.is_empty() {
        (Outcome::pass(passes.join(", ")).with_all(evidence), machine)
    } else {
        (Outcome::fail(format!("not migrating from {s} to {d}: {}", fails.join("; "))).with_all(evidence), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::{raw, set, spec};
    use crate::checks::Status;
    use crate::facts::HostFacts;

    const NEED: Need = Need { memory_kib: 64 * 1024, disk_bytes: 64 << 20 };

    #[test]
    fn newer_to_older_uses_a_common_type() {
        let (sa, sb) = (spec("cmp2", "198.18.42.12"), spec("cmp1", "198.18.42.11"));
        let (fa, fb) = (HostFacts::from_raw(raw("trixie-socket")), HostFacts::from_raw(raw("bookworm-socket")));
        let (o, m) = check(&HostView { spec: &sa, facts: &fa }, &HostView { spec: &sb, facts: &fb }, NEED);
        assert_eq!(o.status, Status::Pass, "{o:?}");
        assert_eq!(m.as_deref(), Some("pc-i440fx-7.2"));
        assert!(o.message.contains("newer to older QEMU: machine type pc-i440fx-7.2"), "{}", o.message);
    }

    #[test]
    fn failures_are_named() {
        let (sa, sb) = (spec("cmp2", "198.18.42.12"), spec("cmp1", "198.18.42.11"));
        let fa = HostFacts::from_raw(raw("trixie-socket"));
        let mut rb = raw("bookworm-socket");
        // Same UUID as the source, little memory, and only machine types the source lacks.
        let uuid = fa.host_uuid.clone().unwrap();
        let caps = rb.ok("capabilities").unwrap().to_string();
        let caps = regex::Regex::new(r"(?s)<host>\s*<uuid>[^<]+</uuid>").unwrap().replace(&caps, format!("<host>\n    <uuid>{uuid}</uuid>").as_str()).into_owned();
        let caps = caps.replace(">pc-i440fx-", ">pc-i440fx-1");
        set(&mut rb, "capabilities", &caps);
        set(&mut rb, "meminfo", "MemTotal: 100 kB\nMemAvailable: 1000 kB\n");
        let fb = HostFacts::from_raw(rb);
        let (o, m) = check(&HostView { spec: &sa, facts: &fa }, &HostView { spec: &sb, facts: &fb }, NEED);
        assert_eq!(o.status, Status::Fail);
        assert!(m.is_none());
        assert!(o.message.contains("share libvirt host UUID"), "{}", o.message);
        assert!(o.message.contains("memory available, the test guest needs"), "{}", o.message);
        assert!(o.message.contains("is unsupported in this direction"), "{}", o.message);
    }
}
