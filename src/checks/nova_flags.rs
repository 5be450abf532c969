//! `nova.flags`: release-aware. Mitaka (13) and older read `live_migration_flag`
//! and `block_migration_flag`, which must hold the flags block migration needs.
//! Newton (14) and later compute the flags themselves and ignore those keys;
//! there `live_migration_tunnelled` must not be true (no NBD in tunnelled mode).

use super::{Ctx, Outcome};
use crate::nova_release::NovaRelease;

/// The seed's live_migration_flag.
pub const LIVE_FLAGS: &[&str] = &["VIR_MIGRATE_UNDEFINE_SOURCE", "VIR_MIGRATE_PEER2PEER", "VIR_MIGRATE_LIVE"];
/// Block migration adds this to the live flags.
pub const BLOCK_EXTRA: &str = "VIR_MIGRATE_NON_SHARED_INC";

fn flags(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// The check; its evidence ends with the files nova-compute reads, in their order.
pub fn check(ctx: &Ctx) -> Outcome {
    let out = judge(ctx);
    let f = ctx.facts();
    if f.nova.is_empty() { out } else { out.with(f.nova.evidence()) }
}

fn judge(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    if f.nova.is_empty() {
        return Outcome::fail("no nova configuration file found: nova-compute is not configured on this host").with(f.nova.evidence());
    }
    let (release, how) = match (ctx.me.spec.nova_release, f.detected_nova_release()) {
        (Some(r), _) => (r, "from the inventory".to_string()),
        (None, Some(r)) => (r, format!("package {}", f.nova_version.as_deref().unwrap_or("?"))),
        (None, None) => {
            return Outcome::warn("cannot tell the Nova release (no package version); set nova_release in the inventory")
                .with(format!("nova version: {}", f.nova_version.as_deref().unwrap_or("unknown")));
        }
    };
    let release_ev = format!("Nova {release} ({how})");
    let live = f.nova_option("libvirt", "live_migration_flag");
    let block = f.nova_option("libvirt", "block_migration_flag");
    let tunnelled = f.nova_option("libvirt", "live_migration_tunnelled");

    if release <= NovaRelease::MITAKA {
        let mut problems = Vec::new();
        let mut evidence = vec![release_ev];
        let mut need = |key: &str, got: &Option<(String, String)>, want: &[&str]| match got {
            None => problems.push(format!("[libvirt] {key} is not set (Nova's default includes VIR_MIGRATE_TUNNELLED)")),
            Some((v, ev)) => {
                evidence.push(ev.clone());
                let have = flags(v);
                let missing: Vec<&str> = want.iter().copied().filter(|w| !have.iter().any(|h| h == w)).collect();
                if !missing.is_empty() {
                    problems.push(format!("[libvirt] {key} lacks {}", missing.join(", ")));
                }
                if have.iter().any(|h| h == "VIR_MIGRATE_TUNNELLED") && key == "block_migration_flag" {
                    problems.push(format!("[libvirt] {key} has VIR_MIGRATE_TUNNELLED"));
                }
            }
        };
        need("live_migration_flag", &live, LIVE_FLAGS);
        let mut block_want = LIVE_FLAGS.to_vec();
        block_want.push(BLOCK_EXTRA);
        need("block_migration_flag", &block, &block_want);
        return if problems.is_empty() {
            Outcome::pass("live_migration_flag and block_migration_flag hold the flags block migration needs").with_all(evidence)
        } else {
            Outcome::fail(problems.join("; ")).with_all(evidence)
        };
    }

    let mut evidence = vec![release_ev];
    if let Some((v, ev)) = &tunnelled {
        evidence.push(ev.clone());
        if v.eq_ignore_ascii_case("true") || v == "1" || v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("on") {
            return Outcome::fail("live_migration_tunnelled = true: block migration over NBD is not supported tunnelled; set it to false")
                .with_all(evidence);
        }
    }
    let obsolete: Vec<&str> = [("live_migration_flag", &live), ("block_migration_flag", &block)]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|(_, ev)| {
            evidence.push(ev.clone());
            k
        }))
        .collect();
    if !obsolete.is_empty() {
        return Outcome::warn(format!(
            "{} set, but Nova {release} ignores it (removed in Newton; Nova computes the flags itself)",
            obsolete.join(" and ")
        ))
        .with_all(evidence);
    }
    Outcome::pass(format!("Nova {release} computes the migration flags itself; not tunnelled")).with_all(evidence)
}
