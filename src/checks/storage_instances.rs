//! `storage.instances`: block migration copies local disks; Nova refuses it
//! when the instances path is shared ("Block migration can not be used with
//! shared storage"), and it needs room for the copies on the destination.

use super::{Ctx, Outcome};

const SHARED: &[&str] = &["nfs", "nfs4", "cifs", "smb3", "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph", "ocfs2", "gfs2", "lustre", "beegfs", "fuse.sshfs"];
/// Below this, warn: a single instance disk often needs more.
const LOW_FREE: u64 = 10 << 30;

pub fn check(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let path = &f.instances_path;
    let fs = f.instances_fstype.as_deref().unwrap_or("unknown");
    let ev = format!("findmnt -T {path}: {}", f.raw.ok("instances_mount").unwrap_or("?").trim());
    if SHARED.contains(&fs) {
        return Outcome::fail(format!(
            "{path} is on shared storage ({fs}): use live migration without --block-migrate"
        ))
        .with(ev);
    }
    let free = f.instances_free_bytes;
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
    let mem = f.mem_available_kib.map(|k| gib(k.saturating_mul(1024))).unwrap_or_else(|| "?".into());
    let df = format!("df {path}: {} free; MemAvailable {mem}", free.map(gib).unwrap_or_else(|| "?".into()));
    match free {
        None => Outcome::warn(format!("free space under {path} unknown")).with(ev).with(df),
        Some(b) if b < LOW_FREE => {
            Outcome::warn(format!("{path} is local ({fs}) but only {} free for incoming disks", gib(b))).with(ev).with(df)
        }
        Some(b) => Outcome::pass(format!("{path} is local ({fs}), {} free", gib(b))).with(ev).with(df),
    }
}
