//! Mutual reachability: from each host to each peer, probed on the host itself
//! (the path between hosts is what matters, not the one from the control node).
//! One SSH round trip per host runs `templates/mesh.sh`, which probes all its
//! peers in parallel; the records it prints are judged here, purely:
//!
//! - `mesh.resolve`: the peer's name resolves on the host, to an address the
//!   peer really has (its facts list its interface addresses);
//! - `mesh.qemu-tcp`: `virsh -c qemu+tcp://PEER/system hostname` answers with the
//!   peer's own hostname (a name pointing at the wrong host shows here);
//! - `mesh.migration-ports`: ports of the peer's QEMU migration range are not
//!   filtered (refused = reachable; no route or timeout = filtered);
//! - `mesh.nova-address`: the address Nova hands the host for the peer (the peer's
//!   `[libvirt] live_migration_inbound_addr`, else its service host name: `[DEFAULT]
//!   host`, else its hostname) resolves there to an address of the peer, and qemu+tcp
//!   and the migration ports answer at it. Where it is not the inventory name, the
//!   probe also runs under that address. Reported, never fixed: what the peers should
//!   reach is the operator's choice;
//! - `storage.shared-instances`: Nova's own shared storage test (see [`shared`]).

use crate::audit::{self, Gathered};
use crate::checks::{self, Finding, HostView, Outcome, Status};
use crate::facts::RawFacts;
use crate::inventory::{HostSpec, Inventory};
use crate::report::PairReport;
use crate::transport::{Output, Session};
use std::net::IpAddr;

pub mod shared;

pub const RESOLVE: &str = "mesh.resolve";
pub const QEMU_TCP: &str = "mesh.qemu-tcp";
pub const MIGRATION_PORTS: &str = "mesh.migration-ports";
pub const NOVA_ADDRESS: &str = "mesh.nova-address";

/// The pair checks, for `migready checks`.
pub const CHECKS: &[(&str, &str)] = &[
    (RESOLVE, "from each host: the peer's name resolves, to an address the peer really has"),
    (QEMU_TCP, "from each host: qemu+tcp://PEER/system connects and answers with the peer's hostname"),
    (MIGRATION_PORTS, "from each host: the peer's QEMU migration port range is not filtered"),
    (
        NOVA_ADDRESS,
        "from each host: the address Nova hands it for the peer (live_migration_inbound_addr, else [DEFAULT] host, else the hostname) resolves to the peer, and qemu+tcp and the migration ports answer there",
    ),
    (shared::ID, "from each host: a file made in the peer's instances path is not seen in the host's own (Nova's shared storage test; the file is removed)"),
];

/// The probe script, kept in templates/ so operators can read it: the POSIX sh
/// wrapper and fallback engine, and the Python engine it runs where python3 is found.
pub const SCRIPT: &str = include_str!("../../templates/mesh.sh");
pub const PYTHON: &str = include_str!("../../templates/mesh.py");

/// Which probe engine the script uses: `auto` (Python where python3 is found, else
/// sh), or `sh` (forced; for comparing the two on real hosts). From the environment
/// variable `MIGREADY_MESH_ENGINE`.
pub fn engine() -> &'static str {
    match std::env::var("MIGREADY_MESH_ENGINE").as_deref() {
        Ok("sh") => "sh",
        _ => "auto",
    }
}

/// Seconds each probe waits for an answer.
pub const PROBE_TIMEOUT_SECS: u32 = 5;

/// Which ordered pairs of hosts to probe or migrate between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pairs {
    /// Every host to every other host.
    Full,
    /// Each host to the next in inventory order, the last to the first.
    Ring,
    /// None.
    None,
}

/// Ordered pairs (indexes) among `n` hosts.
pub fn select(n: usize, mode: Pairs) -> Vec<(usize, usize)> {
    match mode {
        Pairs::None => Vec::new(),
        Pairs::Full => (0..n).flat_map(|a| (0..n).filter(move |b| *b != a).map(move |b| (a, b))).collect(),
        Pairs::Ring if n < 2 => Vec::new(),
        Pairs::Ring if n == 2 => vec![(0, 1), (1, 0)],
        Pairs::Ring => (0..n).map(|a| (a, (a + 1) % n)).collect(),
    }
}

/// Ports of a migration range worth probing: both ends, the two libvirt takes
/// first (NBD and RAM stream of the first migration) and the middle.
pub fn sample_ports(lo: u16, hi: u16) -> Vec<u16> {
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    let mut v = vec![lo, lo.saturating_add(1).min(hi), lo + (hi - lo) / 2, hi];
    v.sort();
    v.dedup();
    v
}

/// The script for one host: variables, then templates/mesh.sh.
pub fn script_for(peers: &[(String, Vec<u16>)], libvirt_port: u16) -> String {
    script_with(peers, libvirt_port, engine())
}

/// [`script_for`] with the engine given (`auto` or `sh`).
///
/// The peers travel in `MESH_PEERS`, one `NAME PORT...` line each, quoted as one
/// shell word. A name that cannot be carried on such a line (empty, or holding
/// whitespace or a control character; the inventory refuses them all) is left
/// out, and its pair reported as not probed.
pub fn script_with(peers: &[(String, Vec<u16>)], libvirt_port: u16, engine: &str) -> String {
    script_tls(peers, libvirt_port, engine, &[])
}

/// [`script_with`], where the peers named in `tls` (their transport is tls) are opened
/// as `qemu+tls://PEER/system` (libvirt's TLS port, the client certificate under
/// /etc/pki/libvirt), in `MESH_TLS_PEERS`.
pub fn script_tls(peers: &[(String, Vec<u16>)], libvirt_port: u16, engine: &str, tls: &[String]) -> String {
    let tls: Vec<&str> = tls.iter().map(String::as_str).filter(|n| !n.is_empty() && !n.chars().any(|c| c.is_whitespace() || c.is_control())).collect();
    let lines: Vec<String> = peers
        .iter()
        .filter(|(name, _)| !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control()))
        .map(|(name, ports)| {
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            format!("{name} {}", ports.join(" "))
        })
        .collect();
    format!(
        "MESH_TIMEOUT={PROBE_TIMEOUT_SECS}\nMESH_LIBVIRT_PORT={libvirt_port}\nMESH_ENGINE={}\nMESH_PEERS={}\nMESH_TLS_PEERS={}\n{}",
        crate::shell::quote(engine),
        crate::shell::quote(&lines.join("\n")),
        crate::shell::quote(&tls.join(" ")),
        SCRIPT.replace("@@MESH_PY@@", PYTHON.trim_end())
    )
}

fn is_tls(inv: &Inventory, h: &HostSpec) -> bool {
    h.transport.unwrap_or(inv.policy.transport) == crate::inventory::Transport::Tls
}

/// Run the probe script on one host, over `session` if the facts gathering kept it
/// open, else over a new connection.
pub fn probe(spec: &HostSpec, session: Option<Session>, script: &str) -> Result<RawFacts, String> {
    let mut s = match session {
        Some(s) => s,
        None => Session::connect(&audit::target(spec)).map_err(|e| e.to_string())?,
    };
    let out = s.run_script(script).map_err(|e| e.to_string())?;
    probe_output(&out)
}

/// The records of a probe run, or why there are none to trust: the script exited
/// non-zero, or printed no records, or malformed ones.
pub fn probe_output(out: &Output) -> Result<RawFacts, String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    let stderr = if stderr.is_empty() { String::new() } else { format!("; stderr: {stderr}") };
    match RawFacts::parse_bytes(&out.stdout) {
        Ok(_) if !out.success() => Err(format!("the probe script exited with status {}{stderr}", out.status)),
        Ok(raw) => Ok(raw),
        Err(e) => Err(format!("the probe script printed no usable records (exit status {}): {e}{stderr}", out.status)),
    }
}

/// How one TCP probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortState {
    /// Connected, or refused: the port is reachable through any firewall.
    Reachable,
    /// REJECT (ICMP "no route to host", "prohibited").
    Rejected(String),
    /// No answer before the timeout: DROP, or no route.
    TimedOut,
    /// The name did not resolve, nc missing, ...
    Error(String),
}

/// Classify a TCP probe: `nc -z -v -w N` output (sh engine), or the same words
/// from the Python engine's non-blocking connect.
pub fn port_state(status: i32, stderr: &str) -> PortState {
    let text = stderr.trim();
    let last = text.lines().last().unwrap_or("").trim().to_string();
    if status == 0 || text.contains("succeeded") || text.contains("Connection refused") {
        PortState::Reachable
    } else if text.contains("timed out") || status == 124 {
        PortState::TimedOut
    } else if ["No route to host", "prohibited", "Network is unreachable", "Permission denied", "Operation not permitted"].iter().any(|w| text.contains(w)) {
        PortState::Rejected(last)
    } else if last.is_empty() {
        PortState::Error(format!("exit status {status}"))
    } else {
        PortState::Error(last)
    }
}

fn addresses_of(raw: &str) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = Vec::new();
    for a in raw.lines().filter_map(|l| l.split_whitespace().next()?.parse().ok()) {
        if !v.contains(&a) {
            v.push(a);
        }
    }
    v
}

fn short(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Judge the probe records of `from` against peer `to`. `others` are all reached
/// hosts (to name the host an address really belongs to).
pub fn judge(from: &HostView, to: &HostView, raw: &RawFacts, libvirt_port: u16, others: &[HostView]) -> Vec<Finding> {
    let mut out = judge_at(from.name(), to, to.name(), raw, libvirt_port, others);
    out.push(label(NOVA_ADDRESS, nova_address_outcome(from.name(), to, raw, libvirt_port, others, &out)));
    out
}

/// The three probe checks of `me` against peer `to`, probed under the name `t` (the
/// inventory name, or the address Nova hands the source for it).
fn judge_at(me: &str, to: &HostView, t: &str, raw: &RawFacts, libvirt_port: u16, others: &[HostView]) -> Vec<Finding> {
    let peer = to.name();
    let mut out = Vec::new();

    // mesh.resolve
    // Both engines print every record for every peer they were given: a missing one
    // means the probe broke, and nothing can be said of the pair.
    let missing = |what: &str| Outcome::fail(format!("the mesh probe on {me} printed no {what} record for {t}"));
    let resolve = match raw.get(&format!("resolve:{t}")) {
        None => missing("resolve"),
        Some(r) if r.status != 0 => Outcome::fail(format!(
            "{t} does not resolve on {me} (getent ahosts {t}: exit status {}); add it to DNS or /etc/hosts on {me}",
            r.status
        )),
        Some(r) => {
            let got = addresses_of(&r.stdout);
            let theirs: Vec<IpAddr> = to.facts.addresses.iter().copied().filter(|a| !a.is_loopback()).collect();
            let list = |v: &[IpAddr]| v.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ");
            let owner = |a: &IpAddr| others.iter().find(|h| h.facts.addresses.contains(a)).map(|h| h.name().to_string());
            let ev = format!("on {me}: getent ahosts {t}: {}", list(&got));
            match got.first() {
                None => Outcome::fail(format!("{t} resolves to no address on {me}")).with(ev),
                Some(first) if first.is_loopback() => Outcome::fail(format!(
                    "{t} resolves to loopback {first} on {me}: QEMU and libvirt would connect to {me} itself; fix /etc/hosts on {me}"
                ))
                .with(ev),
                Some(first) if theirs.contains(first) => Outcome::pass(format!("{t} resolves to {first} on {me}, an address of {peer}")).with(ev),
                Some(first) if theirs.is_empty() => Outcome::warn(format!("{t} resolves to {first} on {me}; {peer}'s own addresses are unknown")).with(ev),
                Some(first) => {
                    let whose = match owner(first) {
                        Some(o) => format!(", which is {o}'s"),
                        None => String::new(),
                    };
                    Outcome::fail(format!(
                        "{t} resolves to {first} on {me}{whose}, not to an address of {peer} ({}); fix DNS or /etc/hosts on {me}",
                        list(&theirs)
                    ))
                    .with(ev)
                }
            }
        }
    };
    out.push(label(RESOLVE, resolve));

    // mesh.qemu-tcp
    let uri = format!("qemu+tcp://{t}:{libvirt_port}/system");
    let qemu = judge_qemu_at(me, to, t, raw, &uri, libvirt_port);
    out.push(label(QEMU_TCP, qemu));

    // mesh.migration-ports
    let (lo, hi, range_ev) = to.facts.migration_ports();
    let mut reachable = Vec::new();
    let (mut rejected, mut dropped, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut evidence = vec![format!("{peer}: {range_ev}")];
    for (key, r) in raw.with_prefix(&format!("port:{t}:")) {
        let Ok(port) = key.parse::<u16>() else { continue };
        let line = r.stderr.trim().lines().last().unwrap_or("").to_string();
        evidence.push(format!("on {me}: TCP {t} port {port}: {}", if line.is_empty() { format!("exit status {}", r.status) } else { line }));
        match port_state(r.status, &r.stderr) {
            PortState::Reachable => reachable.push(port),
            PortState::Rejected(_) => rejected.push(port.to_string()),
            PortState::TimedOut => dropped.push(port.to_string()),
            PortState::Error(e) => errors.push(format!("{port}: {e}")),
        }
    }
    let mut bad = Vec::new();
    if !rejected.is_empty() {
        bad.push(format!("{} rejected (no route to host: a REJECT rule)", rejected.join(", ")));
    }
    if !dropped.is_empty() {
        bad.push(format!("{} timed out after {PROBE_TIMEOUT_SECS} s (dropped)", dropped.join(", ")));
    }
    bad.extend(errors);
    let ports = if reachable.is_empty() && bad.is_empty() {
        missing("port")
    } else if bad.is_empty() {
        let list: Vec<String> = reachable.iter().map(u16::to_string).collect();
        Outcome::pass(format!("TCP {} of {peer}'s migration range {lo}-{hi} reachable from {me}", list.join(", "))).with_all(evidence)
    } else {
        Outcome::fail(format!(
            "{peer}'s QEMU migration port range TCP {lo}-{hi} is filtered from {me}: {}; block migration (NBD and RAM streams) needs it open to {me}",
            bad.join(", ")
        ))
        .with_all(evidence)
    };
    out.push(label(MIGRATION_PORTS, ports));
    out
}

/// `mesh.qemu-tcp` from the probe's `qemu-tcp:PEER` record, which opened `uri` (qemu+tcp,
/// or qemu+tls towards a host whose transport is tls).
pub fn judge_qemu(from: &HostView, to: &HostView, raw: &RawFacts, uri: &str, libvirt_port: u16) -> Outcome {
    judge_qemu_at(from.name(), to, to.name(), raw, uri, libvirt_port)
}

/// [`judge_qemu`] of the record for name `t` (the inventory name, or Nova's address).
fn judge_qemu_at(me: &str, to: &HostView, t: &str, raw: &RawFacts, uri: &str, libvirt_port: u16) -> Outcome {
    let peer = to.name();
    let missing = |what: &str| Outcome::fail(format!("the mesh probe on {me} printed no {what} record for {t}"));
    match raw.get(&format!("qemu-tcp:{t}")) {
        None => missing("qemu-tcp"),
        Some(r) if r.status == 124 => {
            Outcome::fail(format!("{uri} from {me} timed out after {PROBE_TIMEOUT_SECS} s (TCP {libvirt_port} filtered, or libvirtd hangs)"))
        }
        Some(r) if r.status != 0 => {
            let why: Vec<&str> = r.stderr.lines().map(str::trim).filter(|l| !l.is_empty() && *l != "error: failed to connect to the hypervisor").collect();
            let why = why.join("; ");
            let why = why.strip_prefix("error: ").unwrap_or(&why);
            Outcome::fail(format!("{uri} from {me} failed: {why}")).with(format!("on {me}: {uri} hostname: exit status {}", r.status))
        }
        Some(r) => {
            let answered = r.stdout.trim();
            let expected = to.facts.hostname.as_deref().unwrap_or(peer);
            let ev = format!("on {me}: {uri} hostname: {answered}");
            if short(answered).eq_ignore_ascii_case(short(expected)) || short(answered).eq_ignore_ascii_case(short(peer)) {
                Outcome::pass(format!("{uri} from {me} answers as {answered}")).with(ev)
            } else {
                Outcome::fail(format!(
                    "{uri} from {me} answers as {answered}, not {expected}: the name {t} points at the wrong host on {me}"
                ))
                .with(ev)
            }
        }
    }
}

/// The address Nova hands a source for destination `to`, and why: `[libvirt]
/// live_migration_inbound_addr`, else the service host name (`[DEFAULT] host`, else the
/// hostname). None where `to` has no nova configuration (not a Nova compute).
pub fn nova_address(to: &HostView) -> Option<(String, String)> {
    let f = to.facts;
    if f.nova.is_empty() {
        return None;
    }
    let set = |s: &str, k: &str| f.nova_option(s, k).filter(|(v, _)| !v.is_empty());
    if let Some((v, ev)) = set("libvirt", "live_migration_inbound_addr") {
        return Some((v, format!("its live_migration_inbound_addr, {ev}")));
    }
    if let Some((v, ev)) = set("DEFAULT", "host") {
        return Some((v, format!("its service host name, no live_migration_inbound_addr; {ev}")));
    }
    let h = f.hostname.clone()?;
    Some((h, "its service host name: its hostname (no live_migration_inbound_addr, no [DEFAULT] host)".into()))
}

/// Whether `a` can be probed as a peer name: a host name or an IP address, nothing a
/// probe could take for an option (the value comes from a host's nova.conf).
fn probeable(a: &str) -> bool {
    !a.is_empty() && !a.starts_with('-') && a.len() <= 253 && a.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
}

/// `mesh.nova-address` of `me` -> `to`. `at_name` are the three checks probed under
/// the inventory name (used as they are when Nova's address is that name).
fn nova_address_outcome(me: &str, to: &HostView, raw: &RawFacts, libvirt_port: u16, others: &[HostView], at_name: &[Finding]) -> Outcome {
    let peer = to.name();
    let Some((addr, why)) = nova_address(to) else {
        return Outcome::skip(format!("{peer} has no nova configuration: not a Nova compute"));
    };
    let intro = format!("Nova hands {me} {addr} for {peer} ({why})");
    let (findings, probed_as) = if addr == peer {
        (at_name.to_vec(), format!("the mesh probes it as {peer}"))
    } else if !probeable(&addr) {
        return Outcome::fail(format!("{intro}: not a host name or IP address; Nova cannot migrate to {peer} through it (not changed by fix)"));
    } else {
        (judge_at(me, to, &addr, raw, libvirt_port, others), format!("probed at {addr}"))
    };
    let worst = findings.iter().map(|f| f.status).filter(|s| *s != Status::Skip).max().unwrap_or(Status::Skip);
    let said: Vec<String> = findings.iter().map(|f| f.message.clone()).collect();
    let evidence: Vec<String> = findings.iter().flat_map(|f| f.evidence.clone()).collect();
    let out = match worst {
        Status::Pass => Outcome::pass(format!("{intro}, {probed_as}: {}", said.join("; "))),
        Status::Warn => Outcome::warn(format!("{intro}, {probed_as}: {}", said.join("; "))),
        Status::Skip => Outcome::skip(format!("{intro}: not probed")),
        Status::Fail => {
            let bad: Vec<&str> = findings.iter().filter(|f| f.status == Status::Fail).map(|f| f.message.as_str()).collect();
            // A name that leads elsewhere is the operator's to correct; a host it leads to
            // that refuses is what the other checks (and fix) are about.
            let hint = if findings.first().is_some_and(|f| f.status == Status::Fail) {
                format!("Not changed by fix: set live_migration_inbound_addr on {peer} to an address its peers reach as {peer}, or fix name resolution on {me}")
            } else {
                format!("It reaches {peer}, which refuses: see the firewall and libvirt checks of {peer}")
            };
            Outcome::fail(format!("{intro}, {probed_as}: {}; Nova's migrations from {me} to {peer} would fail there. {hint}", bad.join("; ")))
        }
    };
    let out = out.with(format!("{peer}: {why}"));
    if addr == peer { out } else { out.with_all(evidence) }
}

/// A run id for test file names: unique enough between runs on the same hosts.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:08x}", (nanos as u32) ^ std::process::id().rotate_left(16))
}

fn label(id: &'static str, o: Outcome) -> Finding {
    Finding { id, status: o.status, message: o.message, evidence: o.evidence }
}

/// The inventory's `[checks] skip` applied to one pair's findings.
pub fn apply_skip(findings: &mut [Finding], skip: &[String]) {
    for f in findings.iter_mut().filter(|f| checks::skipped(skip, f.id)) {
        *f = Finding { id: f.id, status: Status::Skip, message: checks::SKIPPED.into(), evidence: Vec::new() };
    }
}

/// Findings for a pair that could not be probed (a host of it was not reached:
/// that host's own checks already fail).
pub fn not_probed(why: &str) -> Vec<Finding> {
    [RESOLVE, QEMU_TCP, MIGRATION_PORTS, NOVA_ADDRESS]
        .into_iter()
        .map(|id| Finding { id, status: Status::Skip, message: why.to_string(), evidence: Vec::new() })
        .collect()
}

/// Findings for a pair whose source host was reached but whose probe failed
/// (could not run, timed out, exited non-zero, printed garbage): every pair check
/// fails with the cause; nothing was judged, so nothing may pass or be skipped.
pub fn probe_failed(why: &str) -> Vec<Finding> {
    [RESOLVE, QEMU_TCP, MIGRATION_PORTS, NOVA_ADDRESS]
        .into_iter()
        .map(|id| Finding { id, status: Status::Fail, message: why.to_string(), evidence: Vec::new() })
        .collect()
}

/// The pair checks of `from` -> `to` (inventory names `names`) from the source's
/// probe result: skipped when either host was not reached, failed when the probe
/// failed, judged otherwise.
pub fn pair_checks(names: (&str, &str), from: Option<HostView>, to: Option<HostView>, probed: &Result<RawFacts, String>, libvirt_port: u16, reached: &[HostView]) -> Vec<Finding> {
    match (from, to, probed) {
        (None, _, _) => not_probed(&format!("not checked: {} was not reached", names.0)),
        (_, None, _) => not_probed(&format!("not checked: {} was not reached", names.1)),
        (Some(_), Some(_), Err(why)) => probe_failed(why),
        (Some(from), Some(to), Ok(raw)) => judge(&from, &to, raw, libvirt_port, reached),
    }
}

/// Probe the mesh of `mode` pairs among the hosts of `inv` (in parallel, one
/// SSH round trip per source host) and judge every pair.
pub fn run(inv: &Inventory, gathered: &[Gathered], mode: Pairs, parallel: usize) -> Vec<PairReport> {
    let pairs = select(inv.hosts.len(), mode);
    if pairs.is_empty() {
        return Vec::new();
    }
    if CHECKS.iter().all(|(id, _)| checks::skipped(&inv.skip, id)) {
        // Every pair check skipped: nothing to probe.
        return pairs
            .iter()
            .map(|&(a, b)| {
                let mut checks = not_probed("");
                checks.push(Finding { id: shared::ID, status: Status::Skip, message: String::new(), evidence: Vec::new() });
                apply_skip(&mut checks, &inv.skip);
                PairReport { from: inv.hosts[a].name.clone(), to: inv.hosts[b].name.clone(), checks }
            })
            .collect();
    }
    let views: Vec<Option<HostView>> = crate::audit::views(inv, gathered);
    let reached: Vec<HostView> = views.iter().flatten().copied().collect();
    let sources: Vec<usize> = {
        let mut v: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        v.dedup();
        v.sort();
        v.dedup();
        v
    };
    // Nova's shared storage test, unless the inventory skips it (it makes a file);
    // first: it puts the sessions back, and the probes below take them.
    let shared = if checks::skipped(&inv.skip, shared::ID) {
        vec![None; pairs.len()]
    } else {
        shared::run(&inv.hosts, gathered, &views, &pairs, parallel, &run_id())
    };
    let libvirt_port = inv.policy.libvirt_port;
    let probes = audit::fan_out(
        &sources,
        parallel,
        |&a| {
            // An unreached source's pairs are skipped (see pair_checks): no probe.
            let Some(_) = views[a] else { return Ok(RawFacts::default()) };
            let mut peers: Vec<(String, Vec<u16>)> = pairs
                .iter()
                .filter(|p| p.0 == a)
                .filter_map(|p| views[p.1].map(|v| (v.name().to_string(), { let (lo, hi, _) = v.facts.migration_ports(); sample_ports(lo, hi) })))
                .collect();
            // The address Nova hands this host for each peer, where it is another name.
            for p in pairs.iter().filter(|p| p.0 == a) {
                let Some(v) = views[p.1] else { continue };
                if let Some((addr, _)) = nova_address(&v)
                    && probeable(&addr)
                    && !peers.iter().any(|(n, _)| *n == addr)
                {
                    let (lo, hi, _) = v.facts.migration_ports();
                    peers.push((addr, sample_ports(lo, hi)));
                }
            }
            let session = gathered[a].take_session();
            if peers.is_empty() {
                return Ok(RawFacts::default());
            }
            let tls: Vec<String> = peers.iter().filter(|(n, _)| inv.hosts.iter().any(|h| &h.name == n && is_tls(inv, h))).map(|(n, _)| n.clone()).collect();
            probe(&inv.hosts[a], session, &script_tls(&peers, libvirt_port, engine(), &tls)).map_err(|e| format!("the mesh probe on {} failed: {e}", inv.hosts[a].name))
        },
        |_| {},
    );
    pairs
        .iter()
        .enumerate()
        .map(|(k, &(a, b))| {
            let probed = &probes[sources.iter().position(|s| *s == a).expect("source probed")];
            let mut checks = pair_checks((&inv.hosts[a].name, &inv.hosts[b].name), views[a], views[b], probed, libvirt_port, &reached);
            // A destination whose transport is tls was opened over qemu+tls.
            if is_tls(inv, &inv.hosts[b])
                && let (Some(from), Some(to), Ok(raw)) = (views[a], views[b], probed)
            {
                let uri = format!("qemu+tls://{}/system", inv.hosts[b].name);
                for c in checks.iter_mut().filter(|c| c.id == QEMU_TCP && c.status != Status::Skip) {
                    *c = judge_qemu(&from, &to, raw, &uri, crate::inventory::LIBVIRT_TLS_PORT).label_as(QEMU_TCP);
                }
            }
            let unreached = if views[a].is_none() { a } else { b };
            checks.push(match shared[k].clone() {
                Some(o) => label(shared::ID, o),
                None => Finding { id: shared::ID, status: Status::Skip, message: format!("not checked: {} was not reached", inv.hosts[unreached].name), evidence: Vec::new() },
            });
            apply_skip(&mut checks, &inv.skip);
            PairReport { from: inv.hosts[a].name.clone(), to: inv.hosts[b].name.clone(), checks }
        })
        .collect()
}

#[cfg(test)]
mod tests;
