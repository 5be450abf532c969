//! `libvirt.listen`: libvirt accepts TCP on its port the way the daemon mode
//! requires, and something really listens there.
//! Socket mode: libvirtd-tcp.socket (or virtproxyd-tcp.socket) enabled and active.
//! Traditional: listen_tcp = 1, listen_tls = 0 and `--listen` in the arguments.

use super::{Ctx, Outcome};
use crate::facts::{DaemonMode, HostFacts};
use crate::formats::libvirt_conf::Value;
use crate::inventory::Transport;

pub fn check(ctx: &Ctx) -> Outcome {
    if ctx.transport() == Transport::Tls {
        return tls(ctx);
    }
    let f = ctx.facts();
    let port = ctx.policy.libvirt_port;
    let mode = f.daemon_mode();
    let (daemon, conf, tcp_socket, _) = f.remote_daemon();
    let mut problems: Vec<String> = Vec::new();
    let mut evidence: Vec<String> = Vec::new();

    match mode {
        DaemonMode::Absent => return Outcome::fail("no libvirt daemon installed"),
        DaemonMode::Socket | DaemonMode::Modular => socket_unit(f, tcp_socket, port, &mut problems, &mut evidence),
        DaemonMode::Traditional => {
            match HostFacts::conf_value(conf, "listen_tcp") {
                Some((Value::Int(1), ev)) => evidence.push(ev),
                Some((_, ev)) => {
                    problems.push("listen_tcp is not 1".into());
                    evidence.push(ev);
                }
                None => problems.push("listen_tcp is not set (default 0)".into()),
            }
            match HostFacts::conf_value(conf, "listen_tls") {
                Some((Value::Int(0), ev)) => evidence.push(ev),
                Some((_, ev)) => {
                    problems.push("listen_tls is not 0 (libvirtd needs TLS certificates then)".into());
                    evidence.push(ev);
                }
                None => problems.push("listen_tls is not set (default 1: libvirtd needs TLS certificates)".into()),
            }
            if let Some((v, ev)) = HostFacts::conf_value(conf, "tcp_port") {
                if v != Value::Str(port.to_string()) {
                    problems.push(format!("tcp_port is set, not to \"{port}\""));
                }
                evidence.push(ev);
            }
            let (args, source) = f.daemon_args(daemon);
            let var = format!("{}_ARGS", daemon.to_uppercase());
            for ef in f.env_files.iter().filter(|e| e.unit == format!("{daemon}.service")) {
                match &ef.file {
                    None => evidence.push(format!("{}: read by {} but missing", ef.path, ef.unit)),
                    Some(file) if file.doc.get(&var).is_none() => evidence.push(format!("{}: {var} not set", ef.path)),
                    Some(_) => {}
                }
            }
            let src = source.unwrap_or_else(|| format!("{daemon}.service"));
            evidence.push(format!("{src}: arguments {}", if args.is_empty() { "(none)".into() } else { args.join(" ") }));
            if !args.iter().any(|a| a == "--listen" || a == "-l") {
                problems.push(format!("{daemon} does not run with --listen (set LIBVIRTD_ARGS=\"--listen\" in the environment file the unit reads)"));
            }
        }
    }

    let listening = f.listens_on(port);
    evidence.push(format!(
        "ss -ltn: {}",
        if listening { format!("something listens on {port}") } else { format!("nothing listens on {port}") }
    ));
    if !listening {
        problems.push(format!("nothing listens on TCP {port}"));
    }
    if problems.is_empty() {
        let how = match mode {
            DaemonMode::Traditional => format!("{daemon} --listen with listen_tcp = 1"),
            _ => tcp_socket.to_string(),
        };
        Outcome::pass(format!("TCP {port} is served by {how}")).with_all(evidence)
    } else {
        Outcome::fail(problems.join("; ")).with_all(evidence)
    }
}

/// The listening socket unit of socket activation (TCP or TLS): installed, not masked,
/// enabled, active, and on `port`.
fn socket_unit(f: &HostFacts, unit: &str, port: u16, problems: &mut Vec<String>, evidence: &mut Vec<String>) {
    match f.units.get(unit).filter(|u| u.exists()) {
        None => problems.push(format!("{unit} is not installed")),
        Some(u) => {
            evidence.push(format!("{unit}: {}", u.describe()));
            if u.is_masked() {
                problems.push(format!("{unit} is masked"));
            } else if !u.is_enabled() {
                problems.push(format!("{unit} is not enabled (it would not come back after a reboot)"));
            }
            if !u.is_masked() && !u.is_active() {
                problems.push(format!("{unit} is not active"));
            }
            let ports = u.stream_ports();
            if !ports.is_empty() && !ports.contains(&port) {
                problems.push(format!("{unit} listens on {ports:?}, not {port}"));
            }
        }
    }
}

/// `transport = "tls"`: libvirt's TLS listener on 16514. Socket mode: the TLS socket
/// (`libvirtd-tls.socket`, `virtproxyd-tls.socket`) enabled and active; traditional:
/// `listen_tls` 1 (its default) and `--listen`; something listens on 16514.
fn tls(ctx: &Ctx) -> Outcome {
    let f = ctx.facts();
    let port = ctx.libvirt_port();
    let mode = f.daemon_mode();
    let (daemon, conf, _, tls_socket) = f.remote_daemon();
    let mut problems: Vec<String> = Vec::new();
    let mut evidence: Vec<String> = Vec::new();
    match mode {
        DaemonMode::Absent => return Outcome::fail("no libvirt daemon installed"),
        DaemonMode::Socket | DaemonMode::Modular => socket_unit(f, tls_socket, port, &mut problems, &mut evidence),
        DaemonMode::Traditional => {
            match HostFacts::conf_value(conf, "listen_tls") {
                Some((Value::Int(1), ev)) => evidence.push(ev),
                Some((_, ev)) => {
                    problems.push("listen_tls is not 1".into());
                    evidence.push(ev);
                }
                None => evidence.push(format!("/etc/libvirt/{daemon}.conf: listen_tls not set (default 1)")),
            }
            if let Some((v, ev)) = HostFacts::conf_value(conf, "tls_port") {
                if v != Value::Str(port.to_string()) {
                    problems.push(format!("tls_port is set, not to \"{port}\""));
                }
                evidence.push(ev);
            }
            let (args, source) = f.daemon_args(daemon);
            let src = source.unwrap_or_else(|| format!("{daemon}.service"));
            evidence.push(format!("{src}: arguments {}", if args.is_empty() { "(none)".into() } else { args.join(" ") }));
            if !args.iter().any(|a| a == "--listen" || a == "-l") {
                problems.push(format!("{daemon} does not run with --listen (set LIBVIRTD_ARGS=\"--listen\" in the environment file the unit reads)"));
            }
        }
    }
    let listening = f.listens_on(port);
    evidence.push(format!("ss -ltn: {}", if listening { format!("something listens on {port}") } else { format!("nothing listens on {port}") }));
    if !listening {
        problems.push(format!("nothing listens on TCP {port}"));
    }
    // qemu+tcp beside qemu+tls: whoever reaches the TCP port needs no certificate.
    if let Some(how) = tcp_served(ctx) {
        let tcp = ctx.policy.libvirt_port;
        if ctx.policy.keep_tcp {
            evidence.push(format!("TCP {tcp} served too ({how}): kept ([policy] keep_tcp = true)"));
        } else {
            problems.push(format!("TCP {tcp} is served too ({how}): qemu+tcp needs no certificate; fix closes it ([policy] keep_tcp = true keeps it)"));
        }
    }
    if problems.is_empty() {
        let how = match mode {
            DaemonMode::Traditional => format!("{daemon} --listen with listen_tls = 1"),
            _ => tls_socket.to_string(),
        };
        Outcome::pass(format!("TLS on TCP {port} is served by {how} (transport tls)")).with_all(evidence)
    } else {
        Outcome::fail(format!("transport tls: {}", problems.join("; "))).with_all(evidence)
    }
}

/// How libvirt's TCP listener (qemu+tcp, `libvirt_port`) is still served, if it is: the
/// TCP socket unit enabled or active (socket activation), or `listen_tcp = 1` with
/// `--listen` (traditional), or something listening on the port.
pub(crate) fn tcp_served(ctx: &Ctx) -> Option<String> {
    let f = ctx.facts();
    let port = ctx.policy.libvirt_port;
    let (daemon, conf, tcp_socket, _) = f.remote_daemon();
    let mut how = Vec::new();
    match f.daemon_mode() {
        DaemonMode::Socket | DaemonMode::Modular => {
            if let Some(u) = f.units.get(tcp_socket).filter(|u| u.exists() && (u.is_enabled() || u.is_active())) {
                how.push(format!("{tcp_socket} {}", u.describe()));
            }
        }
        DaemonMode::Traditional => {
            let (args, _) = f.daemon_args(daemon);
            if args.iter().any(|a| a == "--listen" || a == "-l")
                && let Some((Value::Int(1), ev)) = HostFacts::conf_value(conf, "listen_tcp")
            {
                how.push(ev);
            }
        }
        DaemonMode::Absent => {}
    }
    if f.listens_on(port) {
        how.push(format!("something listens on {port}"));
    }
    (!how.is_empty()).then(|| how.join("; "))
}
