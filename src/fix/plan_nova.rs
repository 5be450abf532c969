//! nova.conf, release-aware: Mitaka and older get the seed's
//! `live_migration_flag` and `block_migration_flag` (+ NON_SHARED_INC) in
//! [libvirt]; Newton and later get the obsolete keys commented out with a note
//! and `live_migration_tunnelled` made false. Commented defaults are replaced in
//! place (IniDoc::set). nova-compute is restarted only if it was running.

use super::{refused, status, Edits, Step, UnitAction};
use crate::checks::{id, Ctx, Finding, Status};
use crate::facts::ConfigFile;
use crate::formats::ini::IniDoc;
use crate::nova_release::NovaRelease;

const LIVE: &[&str] = &["VIR_MIGRATE_UNDEFINE_SOURCE", "VIR_MIGRATE_PEER2PEER", "VIR_MIGRATE_LIVE"];
const BLOCK_EXTRA: &str = "VIR_MIGRATE_NON_SHARED_INC";

/// Flags as wanted: the existing ones plus the required, without TUNNELLED for block.
fn merged(existing: Option<&str>, required: &[&str], drop_tunnelled: bool) -> String {
    let mut v: Vec<String> = existing
        .map(|e| e.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if drop_tunnelled {
        v.retain(|f| f != "VIR_MIGRATE_TUNNELLED");
    }
    for r in required {
        if !v.iter().any(|f| f == r) {
            v.push(r.to_string());
        }
    }
    v.join(",")
}

pub(super) fn plan(ctx: &Ctx, findings: &[Finding], edits: &mut Edits, steps: &mut Vec<Step>, notes: &mut Vec<String>) -> bool {
    let before = edits_len(edits);
    let uri_fixed = migration_uri(ctx, findings, edits, notes);
    flags(ctx, findings, edits, notes);
    let f = ctx.facts();
    if edits_len(edits) != before
        && let Some(u) = ["nova-compute.service", "openstack-nova-compute.service"].iter().find_map(|id| f.unit(id))
        && u.is_active()
    {
        steps.push(Step::Unit { action: UnitAction::Restart, unit: u.id.clone(), why: "apply the new nova.conf (it was running)".into() });
    }
    uri_fixed
}

/// The transport in nova.conf, when nova.migration-uri fails or warns, each key in the file
/// that decides it (else the first file nova-compute reads). transport tls:
/// `[libvirt] live_migration_scheme = tls` (libvirt's connection: qemu+tls) and
/// `live_migration_with_native_tls = true` (Stein and later: QEMU's streams in TLS; it does
/// not change the scheme). transport tcp: the scheme back to tcp where set otherwise, and
/// native TLS false where true. A `live_migration_uri` (deprecated; it wins over the scheme)
/// that is not the transport's is a note. True when what is planned makes the check pass.
fn migration_uri(ctx: &Ctx, findings: &[Finding], edits: &mut Edits, notes: &mut Vec<String>) -> bool {
    let f = ctx.facts();
    let st = status(findings, id::NOVA_MIGRATION_URI);
    if st != Status::Fail && st != Status::Warn {
        return false;
    }
    let Some(first) = f.nova.files.first() else { return false };
    let tls = ctx.transport() == crate::inventory::Transport::Tls;
    let scheme = if tls { "tls" } else { "tcp" };
    let mut ok = true;
    let mut set = |key: &str, value: &str, why: String, notes: &mut Vec<String>| -> bool {
        let c = f.nova.file_for("libvirt", key).unwrap_or(first);
        let result = edits.edit(&c.path, Some(c.text()), &why, |cur| {
            let mut d = IniDoc::parse(cur);
            d.set("libvirt", key, value)?;
            Ok(d.to_string())
        });
        match result {
            Ok(_) => true,
            Err(e) => {
                notes.push(refused(id::NOVA_MIGRATION_URI, &c.path, line_of(c, key), e));
                false
            }
        }
    };
    if let Some((uri, _)) = f.nova_option("libvirt", "live_migration_uri")
        && !uri.starts_with(&format!("qemu+{scheme}://"))
    {
        notes.push(format!("{}: live_migration_uri = {uri} is set (deprecated; it wins over live_migration_scheme): remove it", id::NOVA_MIGRATION_URI));
        ok = false;
    } else if f.nova_option("libvirt", "live_migration_uri").is_none()
        && f.nova_option("libvirt", "live_migration_scheme").map_or("tcp".to_string(), |(s, _)| s) != scheme
    {
        let why = format!("[libvirt] live_migration_scheme = {scheme} (transport {scheme}: Nova opens qemu+{scheme})");
        ok &= set("live_migration_scheme", scheme, why, notes);
    }
    let key = "live_migration_with_native_tls";
    let native = f.nova_option("libvirt", key).is_some_and(|(v, _)| v.eq_ignore_ascii_case("true"));
    if !tls {
        if native {
            ok &= set(key, "false", format!("[libvirt] {key} = false (transport tcp: QEMU's streams need no certificates)"), notes);
        }
        return ok;
    }
    if !native {
        match ctx.me.spec.nova_release.or_else(|| f.detected_nova_release()) {
            Some(r) if r >= NovaRelease::STEIN => {
                ok &= set(key, "true", format!("[libvirt] {key} = true (transport tls: the migration streams in TLS)"), notes);
            }
            Some(r) => {
                notes.push(format!("{}: Nova {r} has no {key} (Stein and later): the migration streams stay in clear", id::NOVA_MIGRATION_URI));
                ok = false;
            }
            None => {
                notes.push(format!("{}: Nova release unknown; set nova_release in the inventory", id::NOVA_MIGRATION_URI));
                ok = false;
            }
        }
    }
    ok
}

fn flags(ctx: &Ctx, findings: &[Finding], edits: &mut Edits, notes: &mut Vec<String>) {
    let f = ctx.facts();
    let st = status(findings, id::NOVA_FLAGS);
    if st != Status::Fail && st != Status::Warn {
        return;
    }
    let Some(first) = f.nova.files.first() else { return };
    let Some(release) = ctx.me.spec.nova_release.or_else(|| f.detected_nova_release()) else {
        notes.push("nova.flags: Nova release unknown; set nova_release in the inventory".into());
        return;
    };
    // The file that decides a key as nova-compute reads its files (the last that sets
    // it), else the one that should hold it (nova.conf, else the last file read).
    let file_of = |key: &str| f.nova.file_for("libvirt", key).unwrap_or(first);
    if release <= NovaRelease::MITAKA {
        for (key, required, drop_tunnelled) in [
            ("live_migration_flag", LIVE.to_vec(), false),
            ("block_migration_flag", [LIVE, &[BLOCK_EXTRA]].concat(), true),
        ] {
            let c = file_of(key);
            let current = f.nova_option("libvirt", key).map(|(v, _)| v);
            let want = merged(current.as_deref(), &required, drop_tunnelled);
            if current.as_deref() != Some(want.as_str()) {
                let result = edits.edit(&c.path, Some(c.text()), &format!("[libvirt] {key} = {want} (Nova {release})"), |cur| {
                    let mut d = IniDoc::parse(cur);
                    d.set("libvirt", key, &want)?;
                    Ok(d.to_string())
                });
                if let Err(e) = result {
                    notes.push(refused(id::NOVA_FLAGS, &c.path, line_of(c, key), e));
                }
            }
        }
    } else {
        for key in ["live_migration_flag", "block_migration_flag"] {
            for c in &f.nova.files {
                if c.doc.get("libvirt", key).is_some() {
                    let note = format!("migready: {key} is obsolete since Newton (14); Nova {release} ignores it");
                    let result = edits.edit(&c.path, Some(c.text()), &format!("comment out obsolete {key}"), |cur| {
                        let mut d = IniDoc::parse(cur);
                        d.comment_out("libvirt", key, &note)?;
                        Ok(d.to_string())
                    });
                    if let Err(e) = result {
                        notes.push(refused(id::NOVA_FLAGS, &c.path, line_of(c, key), e));
                    }
                }
            }
        }
        if let Some((v, _)) = f.nova_option("libvirt", "live_migration_tunnelled")
            && matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
        {
            let c = file_of("live_migration_tunnelled");
            let result = edits.edit(&c.path, Some(c.text()), "live_migration_tunnelled = false (no NBD when tunnelled)", |cur| {
                let mut d = IniDoc::parse(cur);
                d.set("libvirt", "live_migration_tunnelled", "false")?;
                Ok(d.to_string())
            });
            if let Err(e) = result {
                notes.push(refused(id::NOVA_FLAGS, &c.path, line_of(c, "live_migration_tunnelled"), e));
            }
        }
    }
}

fn edits_len(edits: &Edits) -> usize {
    edits.changed()
}

/// The line of `[libvirt] key` in `c` as read.
fn line_of(c: &ConfigFile<IniDoc>, key: &str) -> Option<usize> {
    c.doc.get("libvirt", key).map(|e| e.line)
}
