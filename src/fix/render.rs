//! Showing a plan: a unified diff per edited file, one line per command, and
//! the notes (what fix leaves to the operator).

use super::{HostPlan, Step};
use similar::TextDiff;
use std::io::{self, Write};

/// Unified diff of one edit, paths as `a/PATH` and `b/PATH`.
pub fn diff(path: &str, original: Option<&str>, new: &str) -> String {
    let old = original.unwrap_or("");
    let from = if original.is_some() { format!("a{path}") } else { "/dev/null".into() };
    TextDiff::from_lines(old, new).unified_diff().context_radius(2).header(&from, &format!("b{path}")).to_string()
}

pub fn print_plan(out: &mut dyn Write, plan: &HostPlan) -> io::Result<()> {
    if plan.steps.is_empty() {
        writeln!(out, "== {}: nothing to change", plan.host)?;
    } else {
        writeln!(out, "== {}: {} change(s)", plan.host, plan.steps.len())?;
    }
    for step in &plan.steps {
        match step {
            Step::Edit { path, original, new, why } => {
                writeln!(out, "# edit {path}: {}", why.join("; "))?;
                write!(out, "{}", diff(path, original.as_deref(), new))?;
            }
            other => {
                let why = match other {
                    Step::Unit { why, .. } | Step::FirewallInsert { why, .. } | Step::FirewalldRich { why, .. } => why,
                    Step::Edit { .. } => unreachable!(),
                };
                let argv = other.command().unwrap_or_default();
                writeln!(out, "$ {}", crate::shell::join(&argv))?;
                writeln!(out, "  # {why}")?;
            }
        }
    }
    for n in &plan.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}
