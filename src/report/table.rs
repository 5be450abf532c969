//! The human report: one comfy-table per run (host, check, status, message),
//! colour on a terminal, plain otherwise, then a summary line.

use super::escape::for_terminal;
use super::Report;
use crate::checks::Status;
use comfy_table::{presets, Attribute, Cell, Color, ContentArrangement, Table};
use std::io::{self, Write};

/// Which evidence lines the table shows under a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// None at all.
    None,
    /// For failed and warned checks (the default).
    Failures,
    /// For every check (`--verbose`).
    All,
}

pub struct TableOptions {
    pub color: bool,
    pub evidence: Evidence,
    /// Fixed width (tests); None = the terminal's, or $COLUMNS (default 100) when not a terminal.
    pub width: Option<u16>,
}

fn status_cell(s: Status, color: bool) -> Cell {
    let cell = Cell::new(s.as_str());
    if !color {
        return cell;
    }
    match s {
        Status::Pass => cell.fg(Color::Green),
        Status::Warn => cell.fg(Color::Yellow),
        Status::Fail => cell.fg(Color::Red).add_attribute(Attribute::Bold),
        Status::Skip => cell.fg(Color::DarkGrey),
    }
}

/// `1 pair`, `3 pairs`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn print_table(out: &mut dyn Write, report: &Report, opts: &TableOptions) -> io::Result<()> {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED).set_header(vec!["host", "check", "status", "message"]);
    if !opts.color {
        table.force_no_tty();
    }
    match opts.width {
        Some(w) => {
            table.set_width(w).set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Dynamic);
            // Not on a terminal (a log, a pipe to less): wrap to $COLUMNS or 100
            // instead of lines as long as the longest message.
            if table.width().is_none() {
                let w = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|&w: &u16| w >= 40).unwrap_or(100);
                table.set_width(w);
            }
        }
    }
    let rows = report
        .hosts
        .iter()
        .map(|h| (for_terminal(&h.name).into_owned(), &h.checks))
        .chain(report.pairs.iter().map(|p| (format!("{} → {}", for_terminal(&p.from), for_terminal(&p.to)), &p.checks)));
    for (name, checks) in rows {
        for (i, f) in checks.iter().enumerate() {
            let show = match opts.evidence {
                Evidence::None => false,
                Evidence::Failures => matches!(f.status, Status::Fail | Status::Warn),
                Evidence::All => f.status != Status::Skip,
            };
            // Messages and evidence are one line each (text from hosts escaped); the
            // evidence goes on lines of its own under the message.
            let mut msg = for_terminal(&f.message).into_owned();
            if show {
                for e in &f.evidence {
                    msg.push_str("\n  ");
                    msg.push_str(&for_terminal(e));
                }
            }
            let host = if i == 0 { name.clone() } else { String::new() };
            table.add_row(vec![Cell::new(host), Cell::new(f.id), status_cell(f.status, opts.color), Cell::new(msg)]);
        }
    }
    writeln!(out, "{table}")?;
    let s = &report.summary;
    let unreached = report.hosts.iter().filter(|h| !h.reached).count();
    write!(out, "{}", plural(report.hosts.len(), "host", "hosts"))?;
    if !report.pairs.is_empty() {
        write!(out, ", {}", plural(report.pairs.len(), "pair", "pairs"))?;
    }
    if unreached > 0 {
        write!(out, " ({unreached} not audited)")?;
    }
    writeln!(out, ": {} pass, {} warn, {} fail, {} skip in {:.1} s", s.pass, s.warn, s.fail, s.skip, report.elapsed_ms as f64 / 1000.0)
}
