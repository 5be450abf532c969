//! Showing a plan: a unified diff per edited file, one line per command, and
//! the notes (what fix leaves to the operator). Text from the hosts (file
//! contents, names, reasons built from them) is printed escaped
//! ([`crate::report::escape`]): a diff keeps its lines and tabs, nothing else.

use super::{HostPlan, Step};
use crate::report::escape::{for_terminal as esc, lines_for_terminal};
use similar::TextDiff;
use std::io::{self, Write};

/// Unified diff of one edit, paths as `a/PATH` and `b/PATH`. Bytes of the file
/// that are not UTF-8 (see [`crate::formats::bytes`]) show as `\xNN`.
pub fn diff(path: &str, original: Option<&str>, new: &str) -> String {
    let old = original.unwrap_or("");
    let from = if original.is_some() { format!("a{path}") } else { "/dev/null".into() };
    let diff = TextDiff::from_lines(old, new).unified_diff().context_radius(2).header(&from, &format!("b{path}")).to_string();
    crate::formats::bytes::display(&diff).into_owned()
}

/// What an install step puts in its file, as shown: a private key never, a certificate by
/// what it says (subject, names, validity), never the PEM.
pub fn install_summary(step: &Step) -> String {
    let Step::Install { content, secret, .. } = step else { return String::new() };
    if *secret {
        return super::plan_tls::KEY_NOT_SHOWN.to_string();
    }
    match crate::ca::read_cert(content) {
        Ok(i) => {
            let day = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).map(|d| d.date().to_string()).unwrap_or_default();
            let names = if i.names.is_empty() { String::new() } else { format!(", names {}", i.names.join(", ")) };
            format!("certificate: subject {}, issuer {}{names}, valid {} to {}", i.subject, i.issuer, day(i.not_before), day(i.not_after))
        }
        Err(_) => "(content not shown)".to_string(),
    }
}

pub fn print_plan(out: &mut dyn Write, plan: &HostPlan) -> io::Result<()> {
    let host = esc(&plan.host);
    if plan.steps.is_empty() {
        writeln!(out, "== {host}: nothing to change")?;
    } else {
        writeln!(out, "== {host}: {} change(s)", plan.steps.len())?;
    }
    for step in &plan.steps {
        match step {
            Step::Edit { path, original, new, why } => {
                writeln!(out, "# edit {}: {}", esc(path), esc(&why.join("; ")))?;
                write!(out, "{}", lines_for_terminal(&diff(&esc(path), original.as_deref(), new)))?;
            }
            Step::Install { path, expect, mode, owner, group, why, .. } => {
                let how = if expect.is_some() { "replace" } else { "install" };
                writeln!(out, "# {how} {} ({mode:04o} {}:{}): {}", esc(path), esc(owner), esc(group), esc(why))?;
                writeln!(out, "  {}", esc(&install_summary(step)))?;
            }
            other => {
                let why = match other {
                    Step::Unit { why, .. } | Step::FirewallInsert { why, .. } | Step::FirewalldRich { why, .. } | Step::NftRule { why, .. } => why,
                    Step::Edit { .. } | Step::Install { .. } => unreachable!(),
                };
                let argv = other.command().unwrap_or_default();
                writeln!(out, "$ {}", esc(&crate::shell::join(&argv)))?;
                writeln!(out, "  # {}", esc(why))?;
            }
        }
    }
    for n in &plan.notes {
        writeln!(out, "note: {}", esc(n))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::UnitAction;

    #[test]
    fn host_text_in_a_plan_is_escaped() {
        let plan = HostPlan {
            host: "cmp1".into(),
            steps: vec![
                Step::Edit {
                    path: "/etc/default/libvirtd".into(),
                    original: Some("# \x1b[2Jcleared\r\n\tA=1\n".into()),
                    new: "# \x1b[2Jcleared\r\n\tA=2\n".into(),
                    why: vec!["A from \u{202e}x".into()],
                },
                Step::Unit { action: UnitAction::Restart, unit: "bad\x1b].unit".into(), why: "because\nforged line".into() },
            ],
            notes: vec!["note \u{9b}31m".into()],
            verify: None,
        };
        let mut out = Vec::new();
        print_plan(&mut out, &plan).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains('\x1b') && !out.contains('\r') && !out.contains('\u{202e}') && !out.contains('\u{9b}'), "{out:?}");
        // The diff keeps its lines and its tabs; the context line shows its ESC and CR.
        assert!(out.contains("\n # \\x1b[2Jcleared\\r\n-\tA=1\n+\tA=2\n"), "{out}");
        assert!(out.contains("# edit /etc/default/libvirtd: A from \\u{202e}x\n"), "{out}");
        assert!(out.contains("$ systemctl restart 'bad\\x1b].unit'\n  # because\\nforged line\n"), "{out}");
        assert!(out.contains("note: note \\u{9b}31m\n"), "{out}");
    }
}
