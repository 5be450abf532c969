//! migready: make Nova/libvirt compute hosts ready for live block migration.
//!
//! Stages, one module each: `inventory` (what to audit), `transport` (SSH),
//! `facts` (one remote round trip per host, parsed into typed facts), `checks`
//! (pure functions of facts), `report` (table and JSON). `formats` holds the
//! format-preserving parsers of the files the tool reads and, later, edits.

pub mod audit;
pub mod ca;
pub mod checks;
pub mod doctor;
pub mod exit;
pub mod facts;
pub mod firewall;
pub mod firewalld;
pub mod fix;
pub mod formats;
pub mod inventory;
pub mod mesh;
pub mod nova;
pub mod nftables;
pub mod nova_release;
pub mod report;
pub mod shell;
pub mod transport;
pub mod validate;

/// Every check ID an inventory's `[checks] skip` may name: the host checks, the mesh's
/// pair checks and validate's migration checks.
pub fn check_ids() -> Vec<&'static str> {
    let mut ids = checks::ids();
    ids.extend(mesh::CHECKS.iter().map(|(id, _)| *id));
    ids.extend(validate::CHECKS.iter().map(|(id, _)| *id));
    ids.extend(nova::checks::CHECKS.iter().chain(nova::live::CHECKS).map(|(id, _)| *id));
    ids
}
