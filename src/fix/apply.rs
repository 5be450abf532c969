//! Applying a plan to one host: file writes (atomic, checked against the
//! content the plan was made from, owner/mode kept, backup left), unit and
//! firewall commands, then the libvirt daemon must come back; if it does not,
//! everything is undone and the host ends as it began.

use super::{HostPlan, Step, UnitAction};
use crate::facts::HostFacts;
use crate::transport::Session;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const WRITE: &str = include_str!("../../templates/write-file.sh");

/// What happened on one host.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyLog {
    /// One line per action taken, in order.
    pub done: Vec<String>,
    /// Backups left next to edited files.
    pub backups: Vec<String>,
    /// Set when the host was rolled back, with why.
    pub rolled_back: Option<String>,
}

/// Quote a word for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn run(session: &mut Session, argv: &[String]) -> Result<String, String> {
    let cmd = argv.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" ");
    let out = session.exec(&cmd, b"", true).map_err(|e| format!("{cmd}: {e}"))?;
    if out.status != 0 {
        return Err(format!("{cmd}: exit status {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Write `new` to `path` if it still holds `expected` (None: must not exist).
/// `backup`: leave a copy of the replaced content next to the file.
fn write_file(session: &mut Session, path: &str, expected: Option<&str>, new: Option<&str>, backup: bool) -> Result<Option<String>, String> {
    let want = expected.map(sha256).unwrap_or_else(|| "-".into());
    let mode = if new.is_none() { "delete" } else { "0644" };
    let cmd = format!(
        "sh -c {} migready-write {} {} {} {}",
        sh_quote(WRITE),
        sh_quote(path),
        want,
        mode,
        if backup { "yes" } else { "no" }
    );
    let out = session.exec(&cmd, new.unwrap_or("").as_bytes(), true).map_err(|e| format!("writing {path}: {e}"))?;
    match out.status {
        0 => {
            let bak = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Ok((!bak.is_empty()).then_some(bak))
        }
        3 => Err(format!("refused to write {path}: {}", String::from_utf8_lossy(&out.stderr).trim())),
        s => Err(format!("writing {path} failed (exit status {s}): {}", String::from_utf8_lossy(&out.stderr).trim())),
    }
}

/// The undo of one step taken, given the facts from before the change.
fn undo(step: &Step, before: &HostFacts) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match step {
        Step::Edit { .. } => Vec::new(), // files are restored separately
        Step::Unit { action, unit, .. } => {
            let was = before.unit(unit);
            let active = was.is_some_and(|u| u.is_active());
            let enabled = was.is_some_and(|u| u.is_enabled());
            match action {
                UnitAction::EnableNow if !enabled => vec![s(&["systemctl", "disable", "--now", unit])],
                UnitAction::EnableNow if !active => vec![s(&["systemctl", "stop", unit])],
                UnitAction::Stop if active => vec![s(&["systemctl", "start", unit])],
                UnitAction::Restart | UnitAction::TryRestart if active => vec![s(&["systemctl", "restart", unit])],
                UnitAction::Restart if !active => vec![s(&["systemctl", "stop", unit])],
                _ => Vec::new(),
            }
        }
        Step::FirewallInsert { ipv6, chain, args, .. } => {
            let mut v = vec![if *ipv6 { "ip6tables" } else { "iptables" }.to_string(), "-D".into(), chain.clone()];
            v.extend(args.iter().cloned());
            vec![v]
        }
        Step::FirewalldRich { zone, permanent, rules, .. } => vec![super::firewall_cmd(zone, *permanent, "--remove-rich-rule", rules)],
    }
}

/// Wait until the plan's units are active, libvirt answers locally and the port listens.
fn verify(session: &mut Session, plan: &HostPlan) -> Result<(), String> {
    let Some(v) = &plan.verify else { return Ok(()) };
    let units = v.active.iter().map(|u| sh_quote(u)).collect::<Vec<_>>().join(" ");
    let port = v.port.map_or(String::new(), |p| format!(" && ss -Hltn 'sport = :{p}' | grep -q ."));
    let cmd = format!("systemctl is-active -q {units} && timeout 20 virsh -q -c qemu:///system version >/dev/null 2>&1{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = session.exec(&cmd, b"", true).map_err(|e| e.to_string())?;
        if out.status == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            let journal = session
                .exec("journalctl -n 3 --no-pager -o cat -u libvirtd.service -u virtproxyd.service 2>/dev/null", b"", true)
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().replace('\n', " | "))
                .unwrap_or_default();
            return Err(format!(
                "the libvirt daemon did not come back ({} active, libvirt answering{}): {journal}",
                v.active.join(", "),
                v.port.map_or(String::new(), |p| format!(", TCP {p} listening"))
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Apply `plan` on the host `session` is connected to. `before` are the facts the
/// plan was computed from. On any failure the host is rolled back.
pub fn apply(session: &mut Session, plan: &HostPlan, before: &HostFacts) -> ApplyLog {
    let mut log = ApplyLog::default();
    let mut written: Vec<(&str, Option<&str>, &str)> = Vec::new();
    let mut taken: Vec<&Step> = Vec::new();
    let mut failure = None;
    for step in &plan.steps {
        let r = match step {
            Step::Edit { path, original, new, .. } => write_file(session, path, original.as_deref(), Some(new), true).map(|bak| {
                written.push((path, original.as_deref(), new));
                log.done.push(format!("wrote {path}"));
                log.backups.extend(bak);
            }),
            other => {
                let argv = other.command().expect("a command step");
                run(session, &argv).map(|_| {
                    taken.push(other);
                    log.done.push(format!("ran {}", argv.join(" ")));
                })
            }
        };
        if let Err(e) = r {
            failure = Some(e);
            break;
        }
    }
    if failure.is_none()
        && let Err(e) = verify(session, plan)
    {
        failure = Some(e);
    }
    let Some(why) = failure else { return log };
    // Roll back: files first (so restarted daemons read the old configuration),
    // then the commands in reverse order.
    let mut problems = Vec::new();
    for (path, original, new) in written.iter().rev() {
        if let Err(e) = write_file(session, path, Some(new), *original, false) {
            problems.push(e);
        }
    }
    // The host ends as it began: no backups of a change that was undone.
    if problems.is_empty() && !log.backups.is_empty() {
        let rm: Vec<String> = ["rm", "-f"].iter().map(|s| s.to_string()).chain(log.backups.drain(..)).collect();
        if let Err(e) = run(session, &rm) {
            problems.push(e);
        }
    }
    for step in taken.iter().rev() {
        for argv in undo(step, before) {
            if let Err(e) = run(session, &argv) {
                problems.push(e);
            }
        }
    }
    // Units may be left in a failed state by the attempt.
    let mut units: Vec<&str> = plan.verify.iter().flat_map(|v| v.active.iter().map(String::as_str)).collect();
    units.extend(taken.iter().filter_map(|s| match s {
        Step::Unit { unit, .. } => Some(unit.as_str()),
        _ => None,
    }));
    units.push("libvirtd.service");
    units.sort();
    units.dedup();
    let _ = session.exec(&format!("systemctl reset-failed {} 2>/dev/null", units.join(" ")), b"", true);
    log.rolled_back = Some(if problems.is_empty() {
        format!("{why}; rolled back, the host is as it was")
    } else {
        format!("{why}; rollback incomplete: {}", problems.join("; "))
    });
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("libvirtd.service"), "libvirtd.service");
        assert_eq!(sh_quote("migready: libvirt from cmp1"), "'migready: libvirt from cmp1'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
