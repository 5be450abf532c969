//! The `fix` run: audit, plan, show, confirm, apply per host in parallel,
//! audit again and report each check before -> after.

use super::apply::{self, ApplyLog};
use super::{duplicate_uuid_hosts, plan, render, HostPlan, FIXABLE};
use crate::audit::{self, Gathered};
use crate::checks::Status;
use crate::exit;
use crate::inventory::Inventory;
use crate::report::escape::for_terminal as esc;
use crate::report::Report;
use std::io::{self, BufRead, IsTerminal, Write};
use std::time::Instant;

pub struct Options {
    pub dry_run: bool,
    pub yes: bool,
    pub parallel: usize,
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
    (0..inv.hosts.len())
        .map(|i| {
            let ctx = audit::ctx(inv, &views, i)?;
            assert!(!ctx.facts().texts_dropped, "fix plans need the files' texts (gather with Keep::FOR_FIX)");
            let uuid = dup.contains(&inv.hosts[i].name).then(new_uuid);
            Some(plan(&ctx, &before.hosts[i].checks, uuid.as_deref()))
        })
        .collect()
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
    let run_id = apply::run_id();
    let mut gathered = audit::gather_all(inv, opts.parallel, audit::Keep::FOR_FIX, |_| {});
    let mut before = audit::evaluate(inv, &gathered, start.elapsed());
    // What earlier fix runs left (doctor's fix.transaction): an interrupted one is
    // finished first (rolled back, as it would have done itself), then planned anew.
    if !opts.dry_run {
        let stale: Vec<usize> = (0..inv.hosts.len())
            .filter(|&i| before.hosts[i].checks.iter().any(|c| c.id == "fix.transaction" && matches!(c.status, Status::Warn | Status::Fail)))
            .collect();
        for &i in &stale {
            let spec = &inv.hosts[i];
            match apply::settle(&audit::target(spec), &run_id) {
                Ok(lines) => lines.iter().for_each(|l| eprintln!("{}: earlier: {}", spec.name, crate::report::escape::for_terminal(l))),
                Err(e) => eprintln!("{}: could not settle earlier fix runs: {}", spec.name, crate::report::escape::for_terminal(&e)),
            }
        }
        if !stale.is_empty() {
            gathered = audit::gather_all(inv, opts.parallel, audit::Keep::FOR_FIX, |_| {});
            before = audit::evaluate(inv, &gathered, start.elapsed());
        }
    }
    let plans = plans(inv, &gathered, &before);
    let mut out = io::stdout().lock();
    for (spec, p) in inv.hosts.iter().zip(&plans) {
        match p {
            Some(p) => render::print_plan(&mut out, p).ok(),
            None => {
                let why = before.hosts.iter().find(|h| h.name == spec.name).and_then(|h| h.checks.iter().find(|c| c.status == Status::Fail));
                writeln!(out, "== {}: not audited: {}", esc(&spec.name), esc(why.map_or("", |c| c.message.as_str()))).ok()
            }
        };
    }
    if inv.policy.auth_tcp == crate::inventory::AuthTcp::None && plans.iter().flatten().any(|p| p.steps.iter().any(|s| matches!(s, super::Step::Edit { why, .. } if why.iter().any(|w| w.starts_with("auth_tcp")))))
    {
        writeln!(
            out,
            "warning: auth_tcp = \"none\": anyone who reaches TCP {} on these hosts controls every guest on them without a password; \
             the firewall rules above admit only the peer hosts{}",
            inv.policy.libvirt_port,
            if inv.policy.allowed_sources.is_empty() { "" } else { " and policy.allowed_sources" }
        )
        .ok();
    }
    let any = plans.iter().flatten().any(|p| !p.is_empty());
    if opts.dry_run || !any {
        if !any {
            writeln!(out, "nothing to change").ok();
        }
        return if before.failed() { exit::FAILED } else { exit::OK };
    }
    if !opts.yes {
        match confirm(&mut out) {
            Ok(true) => {}
            _ => {
                writeln!(out, "nothing changed").ok();
                return exit::FAILED;
            }
        }
    }
    drop(out);

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

    let after_gathered = audit::gather_all(inv, opts.parallel, audit::Keep::FOR_FIX, |_| {});
    let after = audit::evaluate(inv, &after_gathered, start.elapsed());
    let mut out = io::stdout().lock();
    let mut ok = true;
    for (i, l) in &logs {
        let name = &inv.hosts[*i].name;
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
            writeln!(out, "  FAILED: {}", esc(rb)).ok();
        }
        if let Some(lost) = &l.lost {
            ok = false;
            writeln!(out, "  LOST: {}", esc(lost)).ok();
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
    if after.hosts.iter().any(|h| !h.reached) {
        ok = false;
    }
    writeln!(out, "fix took {:.1} s", start.elapsed().as_secs_f64()).ok();
    exit_after(ok, &after)
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
