//! `libvirt.mode`: which daemon mode the host runs, and no `--listen` where
//! socket activation would refuse it (libvirtd then does not start at all).

use super::{Ctx, Outcome};
use crate::facts::DaemonMode;

pub fn check(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let mode = f.daemon_mode();
    let version = f.libvirt_version.map(|v| format!("libvirt {v}")).unwrap_or_else(|| "libvirt version unknown".into());
    let libvirtd = f.unit("libvirtd.service");
    let mut evidence: Vec<String> = ["libvirtd.service", "libvirtd.socket", "libvirtd-tcp.socket", "virtproxyd.socket"]
        .iter()
        .filter_map(|id| f.units.get(*id).map(|u| format!("{id}: {}", u.describe())))
        .collect();
    match mode {
        DaemonMode::Absent => return Outcome::fail("no libvirt daemon installed (libvirtd.service and virtproxyd not found)").with_all(evidence),
        DaemonMode::Socket => {
            let (args, source) = f.daemon_args("libvirtd");
            if args.iter().any(|a| a == "--listen" || a == "-l") {
                evidence.push(format!("{}: LIBVIRTD_ARGS has --listen", source.unwrap_or_else(|| "libvirtd.service ExecStart".into())));
                return Outcome::fail(
                    "libvirtd is socket-activated and its arguments include --listen: libvirtd refuses to start \
                     (\"--listen parameter not permitted with systemd activation sockets\"); remove --listen and use libvirtd-tcp.socket",
                )
                .with_all(evidence);
            }
        }
        DaemonMode::Modular => {
            if libvirtd.is_some_and(|u| u.is_active()) {
                return Outcome::fail("libvirtd and the modular daemons (virtproxyd) both run; only one may").with_all(evidence);
            }
        }
        DaemonMode::Traditional => {
            let (args, source) = f.daemon_args("libvirtd");
            if let Some(i) = args.iter().position(|a| a == "--timeout" || a == "-t") {
                evidence.push(format!(
                    "{}: libvirtd arguments {}",
                    source.unwrap_or_else(|| "libvirtd.service ExecStart".into()),
                    args.join(" ")
                ));
                let secs = args.get(i + 1).map(String::as_str).unwrap_or("?");
                return Outcome::fail(format!(
                    "traditional mode with --timeout {secs}: libvirtd exits after {secs} s idle and, with its sockets masked, \
                     nothing starts it again; set LIBVIRTD_ARGS=\"--listen\" (without --timeout)"
                ))
                .with_all(evidence);
            }
            if let Some(u) = libvirtd.filter(|u| !u.is_active()) {
                return Outcome::fail(format!(
                    "traditional mode, but libvirtd.service is {}: with its sockets masked nothing starts it on demand",
                    u.describe()
                ))
                .with_all(evidence);
            }
        }
    }
    if let Some(u) = libvirtd.filter(|u| u.active_state == "failed") {
        return Outcome::fail(format!("{} mode, but libvirtd.service has failed ({})", mode.describe(), u.describe())).with_all(evidence);
    }
    Outcome::pass(format!("{}, {version}", mode.describe())).with_all(evidence)
}
