//! `hypervisor.versions`: libvirt and QEMU versions across the inventory (seed
//! precheck 8). Migrating from a newer hypervisor to an older one can fail (the
//! older QEMU may not know the guest's machine type); the other way works.

use super::{Ctx, Outcome};
use crate::facts::Version;

pub fn check(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let (Some(lv), Some(qv)) = (f.libvirt_version, f.qemu_version) else {
        return Outcome::warn("libvirt or QEMU version unknown").with(format!(
            "libvirt {:?}, QEMU {:?}",
            f.libvirt_version.map(|v| v.to_string()),
            f.qemu_version.map(|v| v.to_string())
        ));
    };
    let me = format!("libvirt {lv}, QEMU {qv}");
    let key = |l: Option<Version>, q: Option<Version>| (q.map(|v| (v.0, v.1)), l);
    let mine = key(Some(lv), Some(qv));
    let mut newer = Vec::new();
    let mut older = Vec::new();
    let mut evidence = vec![format!("{}: {me}", ctx.me.name())];
    for p in &ctx.peers {
        let (pl, pq) = (p.facts.libvirt_version, p.facts.qemu_version);
        let theirs = key(pl, pq);
        let desc = format!(
            "libvirt {}, QEMU {}",
            pl.map_or("?".into(), |v| v.to_string()),
            pq.map_or("?".into(), |v| v.to_string())
        );
        if theirs != mine {
            evidence.push(format!("{}: {desc}", p.name()));
        }
        if theirs > mine {
            newer.push(p.name().to_string());
        } else if theirs < mine {
            older.push(p.name().to_string());
        }
    }
    if newer.is_empty() && older.is_empty() {
        return Outcome::pass(format!("{me}, same as every peer")).with_all(evidence);
    }
    let mut parts = Vec::new();
    if !newer.is_empty() {
        parts.push(format!("migrations from {} (newer) to this host can fail", newer.join(", ")));
    }
    if !older.is_empty() {
        parts.push(format!("migrations from this host to {} (older) can fail", older.join(", ")));
    }
    Outcome::warn(format!("{me}; {}", parts.join("; "))).with_all(evidence)
}
