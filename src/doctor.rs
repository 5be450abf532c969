//! The `doctor` run: gather every host's facts, run the checks, probe the mesh, ask
//! Nova, and print the report. Nothing on the hosts is changed.

use crate::mesh::Pairs;
use crate::report::escape::for_terminal;
use crate::report::{Format, Output, Report};
use crate::{audit, exit, inventory, mesh, nova};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

pub struct Options {
    pub output: Output,
    /// Hosts audited at once.
    pub parallel: usize,
    pub mesh: Pairs,
    /// `--os-cloud`: the cloud the Nova-side checks ask.
    pub os_cloud: Option<String>,
    /// `--limit`: an Ansible-style host pattern.
    pub limit: Option<String>,
}

/// Run doctor on the inventory at `path`; the process exit code.
pub fn main(path: &Path, opts: &Options) -> i32 {
    let inv = match inventory::load_limited(path, &crate::check_ids(), opts.limit.as_deref()) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("error: {}", for_terminal(&e));
            return exit::USAGE;
        }
    };
    let report = run(&inv, opts);
    crate::report::emit(&report, "doctor", &opts.output)
}

/// The audit of every host, pairs and Nova's view included.
pub fn run(inv: &inventory::Inventory, opts: &Options) -> Report {
    let start = Instant::now();
    let total = inv.hosts.len();
    // A progress line while facts are gathered, for people waiting on a terminal.
    let show = std::io::stderr().is_terminal() && opts.output.format == Format::Table && total > 3;
    let progress = |done: usize, failed: usize| {
        if show {
            let failed = if failed > 0 { format!(", {failed} failed") } else { String::new() };
            eprint!("\r\x1b[2Kgathering facts: {done}/{total} hosts{failed}");
            let _ = std::io::stderr().flush();
        }
    };
    let keep = audit::Keep { sessions: opts.mesh != Pairs::None, texts: false };
    let gathered = audit::gather_all_counted(inv, opts.parallel, keep, progress);
    if show {
        eprint!("\r\x1b[2K");
    }
    let report = audit::evaluate(inv, &gathered, start.elapsed());
    let pairs = mesh::run(inv, &gathered, opts.mesh, opts.parallel);
    let report = Report::with_pairs(report.hosts, pairs, start.elapsed().as_millis() as u64);
    let cloud = nova::cloud::CloudRef::resolve(opts.os_cloud.as_deref(), Some(&inv.nova));
    nova::audit(inv, &gathered, report, cloud.as_ref()).0
}
