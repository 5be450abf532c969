//! `fix.transaction`: what earlier fix runs left on this host. A run whose runner died
//! (killed, or the host rebooted mid-apply) may have left the host half-changed; one
//! that ended while its controller was gone was never shown to anyone.

use super::{Ctx, Outcome};

pub fn check(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let txns = &f.transactions;
    if f.txn_running {
        let last = txns.last();
        return Outcome::warn(format!(
            "a fix is running on this host now (run {}, started {})",
            last.map_or("?", |t| t.run.as_str()),
            last.and_then(|t| t.started.as_deref()).unwrap_or("?")
        ));
    }
    if let Some(t) = txns.iter().rev().find(|t| t.outcome.is_none()) {
        let rebooted = match (&t.boot, &f.boot_id) {
            (Some(a), Some(b)) if a != b => " (the host rebooted since)",
            _ => "",
        };
        return Outcome::fail(format!(
            "fix run {} did not finish: its runner died after {} of {} step(s){rebooted}; the next `migready fix` rolls those back before it changes anything",
            t.run,
            t.done.len(),
            t.steps
        ))
        .with_all(t.done.iter().map(|d| format!("journal: {d}")))
        .with(format!("/var/lib/migready/txn/{}/journal.jsonl", t.run));
    }
    if let Some(t) = txns.iter().rev().find(|t| !t.acked && !t.reported) {
        let outcome = t.outcome.as_deref().unwrap_or("");
        let what = match outcome {
            "verified" => "applied and verified".to_string(),
            "rolled-back" => format!("rolled back ({})", t.err.as_deref().unwrap_or("no reason journaled")),
            _ => format!("{outcome}: {}; {}", t.err.as_deref().unwrap_or(""), t.problems.join("; ")),
        };
        let status = if outcome == "rollback-incomplete" { Outcome::fail } else { Outcome::warn };
        return status(format!("fix run {} ended without its controller: {what}", t.run))
            .with_all(t.done.iter().map(|d| format!("journal: {d}")))
            .with(format!("/var/lib/migready/txn/{}/journal.jsonl", t.run));
    }
    match txns.last() {
        None => Outcome::pass("no fix run has changed this host"),
        Some(t) if t.outcome.as_deref() == Some("rollback-incomplete") => {
            Outcome::fail(format!("the last fix run ({}) could not roll back everything: {}", t.run, t.problems.join("; ")))
                .with(format!("/var/lib/migready/txn/{}/journal.jsonl", t.run))
        }
        Some(t) => Outcome::pass(format!("last fix run {}: {}", t.run, t.outcome.as_deref().unwrap_or("?"))),
    }
}
