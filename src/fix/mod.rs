//! `migready fix`: a plan computed from facts (pure), shown before it runs,
//! applied without losing anything, verified, and rolled back when the libvirt
//! daemon does not come back.
//!
//! A plan only touches what doctor found wrong: each planner looks at the
//! findings of its checks and at the facts, never at the host directly.

pub mod apply;
mod plan_firewall;
mod plan_libvirt;
mod plan_nova;
mod plan_tls;
pub mod render;
pub mod run;

pub use plan_firewall::COMMENT;

use crate::checks::{id, Ctx, Finding, Status};
use crate::facts::HostFacts;
use crate::formats::EditError;
use std::collections::BTreeMap;

/// Something `systemctl` does to a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitAction {
    Stop,
    /// `reset-failed`: clear a failed state (and its start limit).
    ResetFailed,
    /// `enable --now`
    EnableNow,
    /// `disable --now`
    DisableNow,
    /// `try-restart`: restart only if running.
    TryRestart,
    Restart,
}

impl UnitAction {
    pub fn args(&self) -> &'static [&'static str] {
        match self {
            UnitAction::Stop => &["stop"],
            UnitAction::ResetFailed => &["reset-failed"],
            UnitAction::EnableNow => &["enable", "--now"],
            UnitAction::DisableNow => &["disable", "--now"],
            UnitAction::TryRestart => &["try-restart"],
            UnitAction::Restart => &["restart"],
        }
    }
}

/// One change to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Replace a file's content. `original` is the content the plan was made
    /// from (None: the file does not exist yet); the write is refused if the
    /// file no longer has it.
    Edit { path: String, original: Option<String>, new: String, why: Vec<String> },
    /// Install a file whose owner and mode are part of the plan (a certificate or a
    /// private key under /etc/pki), creating missing directories. `expect`: the sha256 the
    /// file has now (None: it does not exist); the write is refused if it no longer has
    /// it. A `secret` (a private key) is never shown: not in the plan, a diff or JSON.
    Install { path: String, expect: Option<String>, content: String, mode: u32, owner: String, group: String, secret: bool, why: String },
    /// `systemctl <action> <unit>`.
    Unit { action: UnitAction, unit: String, why: String },
    /// `iptables -I <chain> <position> <args>` (ip6tables for IPv6).
    FirewallInsert { ipv6: bool, chain: String, position: usize, args: Vec<String>, why: String },
    /// `firewall-cmd [--permanent] --zone=<zone> --add-rich-rule=<rule>...`.
    FirewalldRich { zone: String, permanent: bool, rules: Vec<String>, why: String },
    /// `nft --echo --handle insert rule <family> <table> <chain> position <before> <rule>
    /// comment "<comment>"` (right before the rule with handle `before`), or `nft --echo
    /// --handle add rule ...` (at the end of the chain) when `before` is None. nft prints
    /// the new rule with its handle, which the runner journals: the undo deletes that
    /// handle, if it still carries this comment (migready's, unique in the chain).
    NftRule { family: String, table: String, chain: String, before: Option<u64>, rule: Vec<String>, comment: String, why: String },
}

impl Step {
    /// The command this step runs (for display and for running it).
    pub fn command(&self) -> Option<Vec<String>> {
        match self {
            Step::Edit { .. } | Step::Install { .. } => None,
            Step::Unit { action, unit, .. } => {
                let mut v = vec!["systemctl".to_string()];
                v.extend(action.args().iter().map(|s| s.to_string()));
                v.push(unit.clone());
                Some(v)
            }
            Step::FirewallInsert { ipv6, chain, position, args, .. } => {
                let mut v = vec![if *ipv6 { "ip6tables" } else { "iptables" }.to_string(), "-I".into(), chain.clone(), position.to_string()];
                v.extend(args.iter().cloned());
                Some(v)
            }
            Step::FirewalldRich { zone, permanent, rules, .. } => Some(firewall_cmd(zone, *permanent, "--add-rich-rule", rules)),
            Step::NftRule { family, table, chain, before, rule, comment, .. } => {
                let mut v: Vec<String> = vec!["nft".into(), "--echo".into(), "--handle".into(), if before.is_some() { "insert" } else { "add" }.into(), "rule".into(), family.clone(), table.clone(), chain.clone()];
                if let Some(h) = before {
                    v.extend(["position".to_string(), h.to_string()]);
                }
                v.extend(rule.iter().cloned());
                v.extend(["comment".to_string(), crate::nftables::quote_comment(comment)]);
                Some(v)
            }
        }
    }
}

/// `firewall-cmd [--permanent] --zone=ZONE OPTION=RULE...`
pub(crate) fn firewall_cmd(zone: &str, permanent: bool, option: &str, rules: &[String]) -> Vec<String> {
    let mut v = vec!["firewall-cmd".to_string()];
    if permanent {
        v.push("--permanent".into());
    }
    v.push(format!("--zone={zone}"));
    v.extend(rules.iter().map(|r| format!("{option}={r}")));
    v
}

/// What fix will do to one host, and what it cannot do.
#[derive(Debug, Clone, Default)]
pub struct HostPlan {
    pub host: String,
    pub steps: Vec<Step>,
    /// Findings fix does not handle, with why (shown, never silently dropped).
    pub notes: Vec<String>,
    /// How to tell, after applying, that the libvirt daemon came back.
    pub verify: Option<Verify>,
}

impl HostPlan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// The post-change test that decides between keeping and rolling back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verify {
    /// Units that must be active.
    pub active: Vec<String>,
    /// A TCP port that must be listening (None when listening is not
    /// something this plan establishes or found working).
    pub port: Option<u16>,
    /// A TCP port nothing may listen on any more (the plan closes it).
    pub closed: Option<u16>,
}

/// Accumulates file edits so several fixes to one file make one step.
#[derive(Default)]
pub(crate) struct Edits {
    files: BTreeMap<String, (Option<String>, String, Vec<String>)>,
}

impl Edits {
    /// Edit `path`, whose current content is `original` (None: a new file):
    /// `f` gets the content so far (with the earlier edits of this plan) and
    /// gives the new one. When `f` fails the file stays as it was, and the error
    /// is returned for the planner to turn into a note. Ok(true) when the
    /// content changed.
    pub(crate) fn edit(
        &mut self,
        path: &str,
        original: Option<&str>,
        why: &str,
        f: impl FnOnce(&str) -> Result<String, EditError>,
    ) -> Result<bool, EditError> {
        let entry = self
            .files
            .entry(path.to_string())
            .or_insert_with(|| (original.map(str::to_string), original.unwrap_or("").to_string(), Vec::new()));
        let new = f(&entry.1)?;
        if new == entry.1 {
            return Ok(false);
        }
        entry.1 = new;
        entry.2.push(why.to_string());
        Ok(true)
    }

    /// How many edits so far changed something.
    pub(crate) fn changed(&self) -> usize {
        self.files.values().map(|(_, _, why)| why.len()).sum()
    }

    pub(crate) fn into_steps(self) -> Vec<Step> {
        self.files
            .into_iter()
            .filter(|(_, (orig, new, _))| orig.as_deref() != Some(new.as_str()))
            .map(|(path, (original, new, why))| Step::Edit { path, original, new, why })
            .collect()
    }
}

/// The plan note for an edit that was refused: `CHECK: PATH line N: why; not
/// edited`. `line_as_read` is the line concerned in the file as the facts read it
/// (the error's own line counts in the text with this plan's earlier edits).
pub(crate) fn refused(check: &str, path: &str, line_as_read: Option<usize>, e: EditError) -> String {
    let e = EditError { line: line_as_read.or(e.line), ..e };
    format!("{check}: {}", e.note(path))
}

/// The status of check `id` among `findings`.
pub(crate) fn status(findings: &[Finding], id: &str) -> Status {
    findings.iter().find(|f| f.id == id).map_or(Status::Skip, |f| f.status)
}

/// Compute the plan for one host from its facts and doctor's findings.
/// `new_host_uuid` is Some when this host must get a fresh libvirt host UUID.
pub fn plan(ctx: &Ctx, findings: &[Finding], new_host_uuid: Option<&str>) -> HostPlan {
    plan_with_ca(ctx, findings, new_host_uuid, None)
}

/// [`plan`] with the inventory's CA as loaded (`[tls]`), which a host whose transport is
/// tls gets its certificates from.
pub fn plan_with_ca(ctx: &Ctx, findings: &[Finding], new_host_uuid: Option<&str>, ca: Option<&Result<crate::ca::Ca, String>>) -> HostPlan {
    let mut plan = HostPlan { host: ctx.me.name().to_string(), ..Default::default() };
    let mut edits = Edits::default();
    let mut units = Vec::new();
    let mut pki = Vec::new();
    let certs_installed = plan_tls::plan(ctx, findings, ca, &mut pki, &mut plan.notes);
    plan_libvirt::plan(ctx, findings, new_host_uuid, certs_installed, &mut edits, &mut units, &mut plan);
    let mut fw = Vec::new();
    plan_firewall::plan(ctx, findings, &mut edits, &mut fw, &mut plan.notes);
    let mut nova_units = Vec::new();
    let uri_fixed = plan_nova::plan(ctx, findings, &mut edits, &mut nova_units, &mut plan.notes);
    plan.steps = pki;
    plan.steps.extend(edits.into_steps());
    plan.steps.extend(units);
    plan.steps.extend(fw);
    plan.steps.extend(nova_units);
    reconnect_nova(ctx.facts(), &mut plan.steps);
    for f in findings.iter().filter(|f| f.status == Status::Fail) {
        if !FIXABLE.contains(&f.id) && !(uri_fixed && f.id == id::NOVA_MIGRATION_URI) {
            plan.notes.push(format!("{}: not fixed by migready: {}", f.id, f.message));
        }
    }
    plan
}

/// A running nova-compute whose libvirt daemon the plan stops or restarts loses its
/// connection and disables itself in Nova ("AUTO: Connection to libvirt lost") until
/// it reconnects; restarting it after the change makes it reconnect and enable itself
/// again at once. Only where it runs, and only once.
fn reconnect_nova(facts: &HostFacts, steps: &mut Vec<Step>) {
    // virtproxyd is not it: nova-compute talks to virtqemud (or libvirtd) directly.
    let daemons = ["libvirtd.service", "virtqemud.service"];
    let touches_libvirt = steps.iter().any(|s| {
        matches!(s, Step::Unit { action: UnitAction::Stop | UnitAction::Restart | UnitAction::TryRestart, unit, .. } if daemons.contains(&unit.as_str()))
    });
    let Some(nova) = ["nova-compute.service", "openstack-nova-compute.service"].iter().find_map(|id| facts.unit(id)).filter(|u| u.is_active()) else {
        return;
    };
    let already = steps.iter().any(|s| matches!(s, Step::Unit { unit, action: UnitAction::Restart | UnitAction::TryRestart, .. } if *unit == nova.id));
    if touches_libvirt && !already {
        steps.push(Step::Unit {
            action: UnitAction::TryRestart,
            unit: nova.id.clone(),
            why: "nova-compute loses its libvirt connection and disables itself in Nova (\"AUTO: Connection to libvirt lost\"); restarted so it reconnects and enables itself again".into(),
        });
    }
}

/// Checks whose failures fix repairs.
pub const FIXABLE: &[&str] = &[
    id::LIBVIRT_MODE,
    id::LIBVIRT_LISTEN,
    id::LIBVIRT_AUTH,
    id::LIBVIRT_HOST_UUID,
    id::FIREWALL_LIBVIRT,
    id::FIREWALL_MIGRATION,
    id::NOVA_FLAGS,
    id::TLS_CERTIFICATES,
    // An interrupted earlier run is finished (rolled back) before planning.
    id::FIX_TRANSACTION,
];

/// Hosts that must get a fresh host UUID: for each UUID shared by several
/// reached hosts, every host but the first (in inventory order) gets a new one.
pub fn duplicate_uuid_hosts(facts: &[(&str, &HostFacts)]) -> Vec<String> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, f) in facts {
        if let Some(u) = f.host_uuid.as_deref() {
            if seen.contains_key(u) {
                out.push(name.to_string());
            } else {
                seen.insert(u, name);
            }
        }
    }
    out
}

#[cfg(test)]
mod arbitrary_tests;
#[cfg(test)]
mod tests;
