//! The `fix` run: audit, plan, show, confirm, apply per host in parallel,
//! audit again and report each check before -> after.

use super::apply::{self, ApplyLog};
use super::{duplicate_uuid_hosts, render, HostPlan, FIXABLE};
use crate::audit::{self, Gathered};
use crate::checks::{id, Status};
use crate::exit;
use crate::inventory::Inventory;
use crate::mesh::Pairs;
use crate::report::escape::for_terminal as esc;
use crate::report::{plural, Report};
use std::io::{self, BufRead, IsTerminal, Write};
use std::time::Instant;

pub struct Options {
    pub dry_run: bool,
    pub yes: bool,
    pub parallel: usize,
    /// Reachability probes before and after (the pair checks' before -> after).
    pub mesh: Pairs,
    /// `--format json`: one JSON document on stdout (the report model of every command).
    pub json: bool,
    /// `--junit FILE`: the checks after the run as JUnit XML.
    pub junit: Option<std::path::PathBuf>,
    /// The cloud the Nova-side checks ask, before and after (None: they skip).
    pub cloud: Option<crate::nova::cloud::CloudRef>,
}

fn new_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid").map(|s| s.trim().to_string()).unwrap_or_else(|_| {
        // No /proc: derive one from the clock and pid (still unique enough per run).
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let h = apply::sha256(format!("{t}-{}", std::process::id()).as_bytes());
        format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
    })
}

/// Plans for every reached host (None for hosts not reached).
pub fn plans(inv: &Inventory, gathered: &[Gathered], before: &Report) -> Vec<Option<HostPlan>> {
    let views = audit::views(inv, gathered);
    let facts: Vec<(&str, &crate::facts::HostFacts)> = views.iter().flatten().map(|v| (v.name(), v.facts)).collect();
    let dup = duplicate_uuid_hosts(&facts);
    // The inventory's CA, loaded once when a reached host's transport is tls.
    let tls = (0..inv.hosts.len()).any(|i| views[i].is_some() && inv.hosts[i].transport.unwrap_or(inv.policy.transport) == crate::inventory::Transport::Tls);
    let ca = tls.then(|| load_ca(&inv.tls));
    (0..inv.hosts.len())
        .map(|i| {
            let ctx = audit::ctx(inv, &views, i)?;
            assert!(!ctx.facts().texts_dropped, "fix plans need the files' texts (gather with Keep::FOR_FIX)");
            let uuid = dup.contains(&inv.hosts[i].name).then(new_uuid);
            Some(super::plan_with_ca(&ctx, &before.hosts[i].checks, uuid.as_deref(), ca.as_ref()))
        })
        .collect()
}

/// The CA of the inventory's `[tls]` (or its default directory).
fn load_ca(tls: &crate::inventory::TlsConf) -> Result<crate::ca::Ca, String> {
    match (&tls.ca_cert, &tls.ca_key) {
        (Some(c), Some(k)) => crate::ca::Ca::load(c, k).map_err(|e| format!("{e} (the inventory's [tls]; `migready ca init` makes a CA)")),
        _ => Err("no CA: set [tls] ca_dir, or ca_cert and ca_key, in the inventory ($HOME is not set for the default)".into()),
    }
}

fn confirm(out: &mut dyn Write) -> io::Result<bool> {
    write!(out, "apply these changes? [y/N] ")?;
    out.flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

pub fn run(inv: &Inventory, opts: &Options) -> i32 {
    // A usage error, so refused before anything is audited (exit 2 means nothing was).
    if !opts.dry_run && !opts.yes && !io::stdin().is_terminal() {
        eprintln!("error: refusing to change hosts without --yes (no terminal to ask on); review with --dry-run first");
        return exit::USAGE;
    }
    let start = Instant::now();
    let run_id = audit::run_id();
    let keep = audit::Keep { sessions: opts.mesh != Pairs::None, texts: true };
    let mut gathered = audit::gather_all(inv, opts.parallel, keep, |_| {});
    let mut before = audit::evaluate(inv, &gathered, start.elapsed());
    // A host whose earlier runs could not be settled (another fix holds it): what this
    // run sees of it is not final, so the run cannot end in 0.
    let mut unsettled = false;
    // What earlier fix runs left (doctor's fix.transaction): an interrupted one is
    // finished first (rolled back, as it would have done itself), then planned anew.
    if !opts.dry_run {
        let stale: Vec<usize> = (0..inv.hosts.len())
            .filter(|&i| before.hosts[i].checks.iter().any(|c| c.id == id::FIX_TRANSACTION && matches!(c.status, Status::Warn | Status::Fail)))
            .collect();
        for &i in &stale {
            let spec = &inv.hosts[i];
            match apply::settle(&audit::target(spec), &run_id) {
                Ok(lines) => lines.iter().for_each(|l| eprintln!("{}: earlier: {}", spec.name, crate::report::escape::for_terminal(l))),
                Err(e) => {
                    unsettled = true;
                    eprintln!("{}: could not settle earlier fix runs: {}", spec.name, crate::report::escape::for_terminal(&e))
                }
            }
        }
        if !stale.is_empty() {
            gathered = audit::gather_all(inv, opts.parallel, keep, |_| {});
            before = audit::evaluate(inv, &gathered, start.elapsed());
        }
    }
    if opts.mesh != Pairs::None {
        before = with_mesh(inv, &gathered, before, opts, start);
    }
    before = crate::nova::audit(inv, &gathered, before, opts.cloud.as_ref()).0;
    let plans = plans(inv, &gathered, &before);
    // Human output on stdout; with --format json, stdout holds the JSON document only.
    let mut human: Box<dyn Write> = if opts.json { Box::new(io::sink()) } else { Box::new(io::stdout().lock()) };
    let out = &mut human;
    for (spec, p) in inv.hosts.iter().zip(&plans) {
        match p {
            Some(p) => render::print_plan(out, p).ok(),
            None => {
                let why = before.hosts.iter().find(|h| h.name == spec.name).and_then(|h| h.checks.iter().find(|c| c.status == Status::Fail));
                writeln!(out, "== {}: not audited: {}", esc(&spec.name), esc(why.map_or("", |c| c.message.as_str()))).ok()
            }
        };
    }
    if inv.policy.auth_tcp == crate::inventory::AuthTcp::None && plans.iter().flatten().any(|p| p.steps.iter().any(|s| matches!(s, super::Step::Edit { why, .. } if why.iter().any(|w| w.starts_with("auth_tcp")))))
    {
        let warning = auth_none_warning(inv, &gathered);
        if opts.json {
            eprintln!("{warning}");
        } else {
            writeln!(out, "{warning}").ok();
        }
    }
    let planned: usize = plans.iter().flatten().map(|p| p.steps.len()).sum();
    if opts.dry_run || planned == 0 {
        if planned == 0 {
            writeln!(out, "nothing to change").ok();
        }
        let code = if before.failed() || unsettled { exit::FAILED } else { exit::OK };
        let counts = Counts { planned, ..Default::default() };
        writeln!(out, "{}", summary_line(inv, &before, &counts, opts.dry_run)).ok();
        finish(opts, &run_id, &plans, &[], &before, None, &counts, code);
        return code;
    }
    if !opts.yes {
        match confirm(out) {
            Ok(true) => {}
            _ => {
                writeln!(out, "nothing changed").ok();
                finish(opts, &run_id, &plans, &[], &before, None, &Counts { planned, ..Default::default() }, exit::FAILED);
                return exit::FAILED;
            }
        }
    }

    // Apply: one host-side transaction per host, hosts in parallel.
    let txn = apply::TxnOptions::new(&run_id);
    eprintln!("fix run {run_id}: applying on {} host(s)", plans.iter().flatten().filter(|p| !p.is_empty()).count());
    let work: Vec<(usize, &HostPlan)> = plans.iter().enumerate().filter_map(|(i, p)| p.as_ref().filter(|p| !p.is_empty()).map(|p| (i, p))).collect();
    let logs: Vec<(usize, ApplyLog)> = audit::fan_out(
        &work,
        opts.parallel,
        |(i, p)| {
            let spec = &inv.hosts[*i];
            let facts = &gathered[*i].result.as_ref().expect("planned hosts were reached").0;
            let mut progress = |m: &str| eprintln!("  {}: {}", esc(&spec.name), esc(m));
            (*i, apply::apply(&audit::target(spec), p, facts, &txn, &mut progress))
        },
        |_| {},
    );

    let keep = audit::Keep { sessions: opts.mesh != Pairs::None, texts: true };
    let after_gathered = audit::gather_all(inv, opts.parallel, keep, |_| {});
    let mut after = audit::evaluate(inv, &after_gathered, start.elapsed());
    if opts.mesh != Pairs::None {
        after = with_mesh(inv, &after_gathered, after, opts, start);
    }
    let after = nova_after(inv, &after_gathered, after, opts, &logs);
    let mut ok = true;
    let mut counts = Counts { planned, ..Default::default() };
    for (i, l) in &logs {
        let name = &inv.hosts[*i].name;
        let steps = plans[*i].as_ref().map_or(0, |p| p.steps.len());
        writeln!(out, "== {}: {} action(s) (transaction {})", esc(name), l.done.len(), l.run).ok();
        for p in &l.previous {
            writeln!(out, "  earlier: {}", esc(p)).ok();
        }
        for d in &l.done {
            writeln!(out, "  {}", esc(d)).ok();
        }
        for b in &l.backups {
            writeln!(out, "  backup {}", esc(b)).ok();
        }
        if let Some(rb) = &l.rolled_back {
            ok = false;
            counts.rolled_back += steps;
            writeln!(out, "  FAILED: {}", esc(rb)).ok();
        } else if let Some(lost) = &l.lost {
            ok = false;
            counts.lost += steps;
            writeln!(out, "  LOST: {}", esc(lost)).ok();
        } else {
            counts.applied += steps;
        }
    }
    writeln!(out, "\nbefore -> after").ok();
    for (b, a) in before.hosts.iter().zip(&after.hosts) {
        for (cb, ca) in b.checks.iter().zip(&a.checks) {
            if cb.status != ca.status || ca.status == Status::Fail {
                writeln!(out, "  {:<6} {:<20} {} -> {}  {}", esc(&b.name), ca.id, cb.status.as_str(), ca.status.as_str(), esc(&ca.message)).ok();
            }
            if FIXABLE.contains(&ca.id) && ca.status == Status::Fail {
                ok = false;
            }
        }
    }
    for (b, a) in before.pairs.iter().zip(&after.pairs) {
        for (cb, ca) in b.checks.iter().zip(&a.checks) {
            if cb.status != ca.status || ca.status == Status::Fail {
                let pair = format!("{} -> {}", b.from, b.to);
                writeln!(out, "  {:<14} {:<20} {} -> {}  {}", esc(&pair), ca.id, cb.status.as_str(), ca.status.as_str(), esc(&ca.message)).ok();
            }
        }
    }
    if after.hosts.iter().any(|h| !h.reached) || unsettled {
        ok = false;
    }
    writeln!(out, "{}", summary_line(inv, &after, &counts, false)).ok();
    writeln!(out, "fix took {:.1} s", start.elapsed().as_secs_f64()).ok();
    let code = exit_after(ok, &after);
    finish(opts, &run_id, &plans, &logs, &before, Some(&after), &counts, code);
    code
}

/// The Nova-side checks after applying: a nova-compute that fix restarted (or whose
/// libvirt it restarted) takes a few seconds to report in; Nova is asked again for up
/// to 60 s until it reports every changed host's service up and enabled.
fn nova_after(inv: &Inventory, gathered: &[Gathered], report: Report, opts: &Options, logs: &[(usize, ApplyLog)]) -> Report {
    let changed: Vec<&str> = logs.iter().filter(|(_, l)| !l.done.is_empty()).map(|(i, _)| inv.hosts[*i].name.as_str()).collect();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (r, cloud) = crate::nova::audit(inv, gathered, report.clone(), opts.cloud.as_ref());
        let waiting = cloud.is_some()
            && r.hosts.iter().any(|h| changed.contains(&h.name.as_str()) && h.checks.iter().any(|c| c.id == crate::nova::checks::SERVICE && c.status == Status::Fail));
        if !waiting || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
}

/// fix's closing warning for `auth_tcp = "none"`: what anyone reaches, host by host. Where
/// the firewall refuses an address outside the peers, fix opens it to the peers (and the
/// allow-list) only; where nothing filters, the port stays open to any address.
fn auth_none_warning(inv: &Inventory, gathered: &[Gathered]) -> String {
    use crate::checks::exposure;
    use crate::checks::firewall_ports::Reach;
    let port = inv.policy.libvirt_port;
    let mut lines = vec![format!(
        "warning: auth_tcp = \"none\": anyone who reaches TCP {port} on these hosts controls every guest on them without a password; on each host:"
    )];
    let views = audit::views(inv, gathered);
    for i in 0..inv.hosts.len() {
        let Some(ctx) = audit::ctx(inv, &views, i) else { continue };
        let (text, reach) = exposure::describe(&ctx, &format!("TCP {port}"), port, port);
        let line = match reach {
            Reach::Filtered { .. } => format!("the firewall rules above admit only {}", exposure::admitted(&ctx)),
            Reach::Any { .. } => format!("{text}: nothing here closes it; filter it to the peers or use auth_tcp = \"sasl\""),
            Reach::Unknown { .. } => text,
        };
        lines.push(format!("  {}: {}", esc(&inv.hosts[i].name), esc(&line)));
    }
    lines.join("\n")
}

/// How many plan steps were planned, applied, rolled back, or lost with the connection.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Counts {
    pub planned: usize,
    pub applied: usize,
    pub rolled_back: usize,
    pub lost: usize,
}

/// `fix: 3 hosts, 6 pairs; 6 changes planned, 6 applied, 0 rolled back; 30 pass, 4 warn, 0 fail`
pub fn summary_line(inv: &Inventory, report: &Report, c: &Counts, dry_run: bool) -> String {
    let s = &report.summary;
    let changes = if dry_run {
        format!("{} planned (dry run: none applied)", plural(c.planned, "change", "changes"))
    } else {
        let lost = if c.lost > 0 { format!(", {} lost with the connection", c.lost) } else { String::new() };
        format!("{} planned, {} applied, {} rolled back{lost}", plural(c.planned, "change", "changes"), c.applied, c.rolled_back)
    };
    format!(
        "fix: {}, {}; {changes}; {} pass, {} warn, {} fail, {} skip",
        plural(inv.hosts.len(), "host", "hosts"),
        plural(report.pairs.len(), "pair", "pairs"),
        s.pass,
        s.warn,
        s.fail,
        s.skip
    )
}

fn with_mesh(inv: &Inventory, gathered: &[Gathered], report: Report, opts: &Options, start: Instant) -> Report {
    let pairs = crate::mesh::run(inv, gathered, opts.mesh, opts.parallel);
    Report::with_pairs(report.hosts, pairs, start.elapsed().as_millis() as u64)
}

/// The plan of one host as JSON: edits with their diffs, commands as argv and as a
/// shell line, notes.
pub(crate) fn plan_json(p: &HostPlan) -> serde_json::Value {
    use serde_json::json;
    let steps: Vec<serde_json::Value> = p
        .steps
        .iter()
        .map(|s| match s {
            super::Step::Edit { path, original, new, why } => json!({
                "kind": "edit", "path": path, "why": why, "creates": original.is_none(),
                "diff": render::diff(path, original.as_deref(), new),
            }),
            super::Step::Install { path, expect, mode, owner, group, secret, why, .. } => json!({
                "kind": "install", "path": path, "why": [why], "creates": expect.is_none(),
                "mode": format!("{mode:04o}"), "owner": owner, "group": group, "secret": secret,
                "content": render::install_summary(s),
            }),
            other => {
                let argv = other.command().unwrap_or_default();
                let why = match other {
                    super::Step::Unit { why, .. } | super::Step::FirewallInsert { why, .. } | super::Step::FirewalldRich { why, .. } | super::Step::NftRule { why, .. } => why.clone(),
                    super::Step::Edit { .. } | super::Step::Install { .. } => String::new(),
                };
                json!({"kind": "command", "command": crate::shell::join(&argv), "argv": argv, "why": why})
            }
        })
        .collect();
    json!({"steps": steps, "notes": p.notes})
}

/// Writes the JSON document (stdout) and the JUnit report, as asked.
#[allow(clippy::too_many_arguments)]
fn finish(opts: &Options, run: &str, plans: &[Option<HostPlan>], logs: &[(usize, ApplyLog)], before: &Report, after: Option<&Report>, counts: &Counts, code: i32) {
    if let Some(path) = &opts.junit {
        crate::report::write_junit(after.unwrap_or(before), "fix", path);
    }
    if opts.json {
        let doc = document(&Run { id: run, dry_run: opts.dry_run, plans, logs, before, after, counts }, code);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
}

/// What one fix run did, for its JSON document.
pub(crate) struct Run<'a> {
    pub id: &'a str,
    pub dry_run: bool,
    pub plans: &'a [Option<HostPlan>],
    pub logs: &'a [(usize, ApplyLog)],
    pub before: &'a Report,
    /// The audit after applying (None: nothing was applied).
    pub after: Option<&'a Report>,
    pub counts: &'a Counts,
}

/// fix's JSON document: the report after (or before, when nothing was applied) as
/// every command prints it, plus "fix": per host the plan, what was applied and
/// rolled back, and the checks that changed; the pairs' changed checks.
pub(crate) fn document(r: &Run, code: i32) -> serde_json::Value {
    let (before, after) = (r.before, r.after);
    let hosts: Vec<serde_json::Value> = before
        .hosts
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let applied = r.logs.iter().find(|(j, _)| *j == i).map(|(_, l)| serde_json::to_value(l).unwrap_or_default());
            let changed: Vec<serde_json::Value> = after
                .and_then(|a| a.hosts.get(i))
                .map(|a| {
                    b.checks
                        .iter()
                        .zip(&a.checks)
                        .filter(|(cb, ca)| cb.status != ca.status)
                        .map(|(cb, ca)| serde_json::json!({"id": ca.id, "before": cb.status, "after": ca.status, "message": ca.message}))
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({
                "name": b.name,
                "plan": r.plans.get(i).and_then(|p| p.as_ref()).map(plan_json),
                "applied": applied,
                "changed": changed,
            })
        })
        .collect();
    let pairs_changed: Vec<serde_json::Value> = after
        .map(|a| {
            before
                .pairs
                .iter()
                .zip(&a.pairs)
                .flat_map(|(b, p)| {
                    b.checks.iter().zip(&p.checks).filter(|(cb, ca)| cb.status != ca.status).map(move |(cb, ca)| {
                        serde_json::json!({"from": p.from, "to": p.to, "id": ca.id, "before": cb.status, "after": ca.status, "message": ca.message})
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut doc = after.unwrap_or(before).to_value("fix", code);
    doc["fix"] = serde_json::json!({
        "run": r.id,
        "dry_run": r.dry_run,
        "changes": r.counts,
        "hosts": hosts,
        "pairs_changed": pairs_changed,
        "before": before.summary,
    });
    doc
}

/// The exit status after applying: 1 when a plan was not applied or was rolled
/// back, or when anything fails in the audit after (as doctor's: any check, not
/// only the fixable ones, and any host not audited); else 0. A second run that
/// finds nothing to change exits the same way.
pub fn exit_after(applied: bool, after: &Report) -> i32 {
    if applied && !after.failed() { exit::OK } else { exit::FAILED }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Finding;
    use crate::report::HostReport;

    #[test]
    fn exit_after_applying_is_doctors() {
        let host = |id: &'static str, status: Status| HostReport {
            name: "cmp1".into(),
            address: "198.18.42.11".into(),
            reached: true,
            elapsed_ms: 0,
            checks: vec![Finding { id, status, message: String::new(), evidence: Vec::new() }],
        };
        let after = |h: HostReport| Report::new(vec![h], 0);
        assert_eq!(exit_after(true, &after(host("libvirt.listen", Status::Pass))), exit::OK);
        assert_eq!(exit_after(true, &after(host("nova.vnc-listen", Status::Warn))), exit::OK);
        assert_eq!(exit_after(false, &after(host("libvirt.listen", Status::Pass))), exit::FAILED);
        // A check fix does not handle, still failing: 1, as doctor (and a second run) would say.
        assert!(!FIXABLE.contains(&"storage.instances"));
        assert_eq!(exit_after(true, &after(host("storage.instances", Status::Fail))), exit::FAILED);
        let mut gone = host("ssh.connect", Status::Pass);
        gone.reached = false;
        assert_eq!(exit_after(true, &after(gone)), exit::FAILED);
    }
}
