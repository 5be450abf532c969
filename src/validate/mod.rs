//! `migready validate`: doctor's audit, the reachability mesh, and a test live
//! block migration per pair of hosts, Nova-style (`--block-migrate` on local
//! storage):
//!
//! 1. facts and checks as doctor (`audit::gather_all`, `audit::evaluate`);
//! 2. the mesh (`mesh::run`): resolve, qemu+tcp, migration ports, from each host;
//! 3. per migration pair: the seed's prechecks from those facts (`precheck`),
//!    then a throwaway guest `migready-test-*` laid out like a Nova instance
//!    (`templates/guest.sh`, `templates/guest.xml`), the destination prepared
//!    like Nova's pre-live-migration, the migration through the source's libvirt
//!    (`migrate`), verification on both hosts, and cleanup on both hosts whatever
//!    happened (also on timeout and Ctrl-C).
//!
//! The control node opens the source's libvirt over qemu+tcp (the inventory
//! address, the policy's libvirt port) and asks for a PEER2PEER migration: the
//! source libvirtd then connects to the destination by its inventory name, as
//! Nova's would. When the control node cannot reach that port, `virsh migrate
//! --p2p` runs on the source over SSH instead (`migrate::run_over_ssh`).

pub mod cli;
pub mod machine;
pub mod migrate;
pub mod precheck;

use crate::audit::{self, Gathered};
use crate::checks::{self, Finding, HostView, Outcome, SKIPPED, Status};
use crate::facts::RawFacts;
use crate::inventory::{HostSpec, Inventory};
use crate::mesh::{self, Pairs};
use crate::report::{PairReport, Report};
use crate::transport::Session;
use base64::Engine;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub const PRECHECKS: &str = "migration.prechecks";
pub const LIVE_BLOCK: &str = "migration.live-block";

/// The pair checks of validate, for `migready checks`.
pub const CHECKS: &[(&str, &str)] = &[
    (PRECHECKS, "before a test migration: root, different host UUID, memory and disk, QEMU, machine type, nova-compute"),
    (LIVE_BLOCK, "a throwaway guest migrates live with its local disk, Nova's flags; verified on both hosts"),
];

const GUEST_XML: &str = include_str!("../../templates/guest.xml");
const GUEST_SCRIPT: &str = include_str!("../../templates/guest.sh");

/// The test guest.
pub const MEMORY_MIB: u64 = 64;
pub const DISK_MIB: u64 = 64;
/// Where the pattern goes in the overlay.
pub const PATTERN_OFFSET: u64 = 8 << 20;
pub const PATTERN_LENGTH: u64 = 2 << 20;

/// Which migrations to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrations {
    Ring,
    All,
    /// Named pairs (from, to).
    These(Vec<(String, String)>),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub migrations: Migrations,
    pub mesh: Pairs,
    pub parallel: usize,
    pub timeout: Duration,
    /// Show a progress bar (stderr is a terminal and the output is a table).
    pub progress: bool,
    /// The cloud for the Nova-side checks (None: they skip with that reason).
    pub cloud: Option<crate::nova::cloud::CloudRef>,
    /// `--nova`: also live-migrate a test server through Nova per pair.
    pub nova: bool,
    /// `[nova] image` for those servers.
    pub nova_image: Option<String>,
}

/// Resolve `--pair A:B` names to inventory indexes.
pub fn migration_pairs(inv: &Inventory, m: &Migrations) -> Result<Vec<(usize, usize)>, String> {
    let n = inv.hosts.len();
    match m {
        Migrations::Ring => Ok(mesh::select(n, Pairs::Ring)),
        Migrations::All => Ok(mesh::select(n, Pairs::Full)),
        Migrations::These(list) => list
            .iter()
            .map(|(a, b)| {
                let find = |x: &str| {
                    inv.hosts
                        .iter()
                        .position(|h| h.name.eq_ignore_ascii_case(x))
                        .ok_or_else(|| format!("--pair {a}:{b}: no host {x} in {}", inv.path.display()))
                };
                let (i, j) = (find(a)?, find(b)?);
                if i == j {
                    return Err(format!("--pair {a}:{b}: a host cannot migrate to itself"));
                }
                Ok((i, j))
            })
            .collect(),
    }
}

/// Parse `A:B`.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(':') => Ok((a.to_string(), b.to_string())),
        _ => Err(format!("expected SOURCE:DESTINATION (host names from the inventory), got {s:?}")),
    }
}

/// The whole run.
pub fn run(inv: &Inventory, opts: &Options) -> Report {
    let start = Instant::now();
    let keep = audit::Keep { sessions: opts.mesh != mesh::Pairs::None, texts: false };
    let gathered = audit::gather_all(inv, opts.parallel, keep, |_| {});
    let doctor = audit::evaluate(inv, &gathered, start.elapsed());
    let mut pairs = mesh::run(inv, &gathered, opts.mesh, opts.parallel);
    let wanted = migration_pairs(inv, &opts.migrations).unwrap_or_default();
    let run_id = audit::run_id();
    for (k, &(a, b)) in wanted.iter().enumerate() {
        let (from, to) = (&inv.hosts[a].name, &inv.hosts[b].name);
        let idx = match pairs.iter().position(|p| &p.from == from && &p.to == to) {
            Some(i) => i,
            None => {
                pairs.push(PairReport { from: from.clone(), to: to.clone(), checks: Vec::new() });
                pairs.len() - 1
            }
        };
        let ports = pairs[idx].checks.iter().find(|f| f.id == mesh::MIGRATION_PORTS).cloned();
        let found = if migrate::INTERRUPTED.load(Ordering::SeqCst) {
            vec![skip(PRECHECKS, "not run: interrupted"), skip(LIVE_BLOCK, "not run: interrupted")]
        } else {
            migrate_pair(inv, &gathered, a, b, &format!("migready-test-{run_id}-{k}"), ports.as_ref(), opts)
        };
        pairs[idx].checks.extend(found);
    }
    let report = Report::with_pairs(doctor.hosts, pairs, start.elapsed().as_millis() as u64);
    let (report, cloud) = crate::nova::audit(inv, &gathered, report, opts.cloud.as_ref());
    if !opts.nova {
        return report;
    }
    // The seed's own command: Nova's live block migration of a test server, per pair.
    let mut pairs = report.pairs;
    let names = crate::nova::host_names(inv, &gathered);
    let res = match &cloud {
        Some(c) if !crate::checks::skipped(&inv.skip, crate::nova::live::ID) => Some(crate::nova::live::resources(c, opts.nova_image.as_deref(), &run_id)),
        _ => None,
    };
    for (k, &(a, b)) in wanted.iter().enumerate() {
        let (from, to) = (&inv.hosts[a].name, &inv.hosts[b].name);
        let idx = pairs.iter().position(|p| &p.from == from && &p.to == to).unwrap_or_else(|| {
            pairs.push(PairReport { from: from.clone(), to: to.clone(), checks: Vec::new() });
            pairs.len() - 1
        });
        let f = match (&cloud, &res) {
            _ if crate::checks::skipped(&inv.skip, crate::nova::live::ID) => skip(crate::nova::live::ID, crate::checks::SKIPPED),
            _ if migrate::INTERRUPTED.load(Ordering::SeqCst) => skip(crate::nova::live::ID, "not run: interrupted"),
            (None, _) => Outcome::fail(format!(
                "--nova: {}",
                if opts.cloud.is_none() { "no cloud configured (--os-cloud, OS_CLOUD, [nova] cloud, or the OS_* variables)" } else { "could not reach Nova (see nova.service)" }
            ))
            .label_as(crate::nova::live::ID),
            (Some(_), Some(Err(e))) => Outcome::fail(e.clone()).label_as(crate::nova::live::ID),
            (Some(c), Some(Ok(r))) => {
                crate::nova::live::migrate(c, r, &inv.hosts[a], names[a].service_host(), &inv.hosts[b], names[b].service_host(), &format!("migready-test-{run_id}-n{k}"), opts.timeout)
            }
            (Some(_), None) => skip(crate::nova::live::ID, crate::checks::SKIPPED),
        };
        pairs[idx].checks.push(f);
    }
    if let (Some(c), Some(Ok(r))) = (&cloud, &res) {
        crate::nova::live::release(c, r);
    }
    Report::with_pairs(report.hosts, pairs, start.elapsed().as_millis() as u64)
}

fn skip(id: &'static str, why: &str) -> Finding {
    Finding { id, status: Status::Skip, message: why.to_string(), evidence: Vec::new() }
}

fn finding(id: &'static str, o: Outcome) -> Finding {
    Finding { id, status: o.status, message: o.message, evidence: o.evidence }
}

/// `qemu+tcp://HOST:PORT/system`, IPv6 literals bracketed.
/// `qemu+tls://HOST/system` (libvirt's TLS port), IPv6 literals bracketed.
fn tls_uri(host: &str) -> String {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.contains(':') { format!("qemu+tls://[{h}]/system") } else { format!("qemu+tls://{h}/system") }
}

fn tcp_uri(host: &str, port: u16) -> String {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.contains(':') { format!("qemu+tcp://[{h}]:{port}/system") } else { format!("qemu+tcp://{h}:{port}/system") }
}

/// The variables and the guest script for one action.
fn guest_script(action: &str, name: &str, instances: &str, pattern: u8, xml: Option<&str>) -> String {
    let q = crate::shell::quote;
    let mut s = format!(
        "ACTION={action}\nNAME={}\nINSTANCES={}\nSIZE_MIB={DISK_MIB}\nPATTERN=0x{pattern:02x}\nOFFSET={PATTERN_OFFSET}\nLENGTH={PATTERN_LENGTH}\n",
        q(name),
        q(instances)
    );
    if let Some(x) = xml {
        s.push_str(&format!("XML_B64={}\n", base64::engine::general_purpose::STANDARD.encode(x)));
    }
    s.push_str(GUEST_SCRIPT);
    s
}

/// Domain XML from templates/guest.xml.
pub fn guest_xml(name: &str, machine: &str, disk: &str) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('\'', "&apos;");
    GUEST_XML
        .replace("{{name}}", &esc(name))
        .replace("{{memory_mib}}", &MEMORY_MIB.to_string())
        .replace("{{machine}}", &esc(machine))
        .replace("{{disk}}", &esc(disk))
}

/// Run one guest action over SSH; Err with a message on failure.
fn act(session: &mut Session, host: &str, script: &str, what: &str) -> Result<String, String> {
    let out = session.run_script(script).map_err(|e| format!("{what} on {host}: {e}"))?;
    if out.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{what} on {host} failed (exit status {}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Bytes from virsh's `778.270 KiB` / `40 ms`-style values.
pub fn virsh_value(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
    let rest = line.trim_start()[label.len()..].trim_start_matches(':').trim();
    let mut it = rest.split_whitespace();
    let n: f64 = it.next()?.parse().ok()?;
    let mult = match it.next().unwrap_or("") {
        "KiB" => 1024.0,
        "MiB" => 1048576.0,
        "GiB" => 1073741824.0,
        "TiB" => 1099511627776.0,
        _ => 1.0,
    };
    Some(n * mult)
}

/// Bytes a NON_SHARED_INC migration copied: the data of the overlay itself
/// (depth 0) in `qemu-img map --output=json`.
pub fn overlay_data_bytes(map_json: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(map_json).ok()?;
    Some(
        v.as_array()?
            .iter()
            .filter(|e| e["depth"].as_u64() == Some(0) && e["data"].as_bool() == Some(true))
            .filter_map(|e| e["length"].as_u64())
            .sum(),
    )
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / 1048576.0)
}

/// Turn libvirt's message into one that names the cause, where it can.
pub fn explain(err: &str, src: &str, dst: &str, range: (u16, u16), libvirt_port: u16, ports: Option<&Finding>) -> String {
    let (lo, hi) = range;
    let port_re = regex::Regex::new(r":(\d{2,5})\b").unwrap();
    let hit = port_re.captures_iter(err).filter_map(|c| c[1].parse::<u16>().ok()).find(|p| (lo..=hi).contains(p));
    let mut msg = if let Some(p) = hit {
        let why = err.rsplit("': ").next().filter(|w| w.len() < err.len()).unwrap_or("").trim();
        format!(
            "QEMU on {src} could not connect to {dst}'s migration port {p}{}: {dst}'s migration port range TCP {lo}-{hi} (qemu.conf migration_port_min/max) must be open to {src}",
            if why.is_empty() { String::new() } else { format!(" ({why})") }
        )
    } else if err.contains(&format!(":{libvirt_port}")) || err.contains("unable to connect to server") {
        format!("{src}'s libvirtd could not connect to {dst}'s libvirt ({}): {err}", tcp_uri(dst, libvirt_port))
    } else if err.contains("same host") {
        format!("{src} and {dst} have the same libvirt host UUID: {err}")
    } else if err.contains("resolved to localhost") {
        format!("{dst}'s hostname resolves to loopback on {dst}: {err}")
    } else {
        format!("libvirt: {err}")
    };
    if hit.is_none()
        && let Some(f) = ports.filter(|f| f.status == Status::Fail)
    {
        msg.push_str(&format!("; and {}: {}", mesh::MIGRATION_PORTS, f.message));
    }
    msg
}

/// Prechecks, then the migration of a fresh test guest from host `a` to `b`.
fn migrate_pair(inv: &Inventory, gathered: &[Gathered], a: usize, b: usize, name: &str, ports: Option<&Finding>, opts: &Options) -> Vec<Finding> {
    let (sa, sb) = (&inv.hosts[a], &inv.hosts[b]);
    let skipped = |id: &str| checks::skipped(&inv.skip, id);
    if skipped(PRECHECKS) && skipped(LIVE_BLOCK) {
        return vec![skip(PRECHECKS, SKIPPED), skip(LIVE_BLOCK, SKIPPED)];
    }
    let (Some(src), Some(dst)) = (crate::audit::view(inv, gathered, a), crate::audit::view(inv, gathered, b)) else {
        let down = if crate::audit::view(inv, gathered, a).is_none() { &sa.name } else { &sb.name };
        let why = format!("not run: {down} was not reached");
        return vec![skip(PRECHECKS, &why), skip(LIVE_BLOCK, &why)];
    };
    let need = precheck::Need { memory_kib: 2 * MEMORY_MIB * 1024, disk_bytes: (2 * DISK_MIB) << 20 };
    let (mut out, machine) = if skipped(PRECHECKS) {
        // Not judged, as the inventory asks; the migration still needs a machine type.
        let machine = machine::common(&src.facts.machine_types, &dst.facts.machine_types);
        let why = "not run: no pc-i440fx machine type known to both hosts (migration.prechecks is skipped)";
        (vec![skip(PRECHECKS, SKIPPED)], machine.ok_or(why.to_string()))
    } else {
        let (pre, machine) = precheck::check(&src, &dst, need);
        (vec![finding(PRECHECKS, pre)], machine.ok_or(format!("not run: {PRECHECKS} failed")))
    };
    if skipped(LIVE_BLOCK) {
        out.push(skip(LIVE_BLOCK, SKIPPED));
        return out;
    }
    let machine = match machine {
        Ok(m) => m,
        Err(why) => {
            out.push(skip(LIVE_BLOCK, &why));
            return out;
        }
    };
    // The destination's transport: tls migrates to qemu+tls with VIR_MIGRATE_TLS.
    let tls = sb.transport.unwrap_or(inv.policy.transport) == crate::inventory::Transport::Tls;
    out.push(finding(LIVE_BLOCK, live_block(sa, sb, &src, &dst, name, &machine, ports, inv.policy.libvirt_port, tls, opts)));
    out
}

#[allow(clippy::too_many_arguments)]
fn live_block(sa: &HostSpec, sb: &HostSpec, src: &HostView, dst: &HostView, name: &str, machine: &str, ports: Option<&Finding>, libvirt_port: u16, tls: bool, opts: &Options) -> Outcome {
    let (s, d) = (sa.name.as_str(), sb.name.as_str());
    let connect = |spec: &HostSpec| Session::connect(&audit::target(spec)).map_err(|e| format!("{}: {e}", spec.name));
    let (mut ss, mut ds) = match (connect(sa), connect(sb)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return Outcome::fail(format!("cannot reach the hosts again over SSH: {e}")),
    };
    let pattern: u8 = 0x5a ^ (name.bytes().fold(0u8, |h, c| h.wrapping_mul(31).wrapping_add(c)) | 1);
    let (s_inst, d_inst) = (src.facts.instances_path.clone(), dst.facts.instances_path.clone());
    let bandwidth: u64 = src.facts.nova_option("libvirt", "live_migration_bandwidth").and_then(|(v, _)| v.parse().ok()).unwrap_or(0);
    let mut evidence = vec![
        format!("guest {name}: {MEMORY_MIB} MiB, machine type {machine}, {s_inst}/_base/{name}.raw (raw) + {s_inst}/{name}/disk (qcow2)"),
        format!("flags LIVE|PEER2PEER|NON_SHARED_INC|UNDEFINE_SOURCE|PERSIST_DEST{}, bandwidth {}", if tls { "|TLS (VIR_MIGRATE_TLS: QEMU's streams in TLS)" } else { "" }, if bandwidth == 0 { "unlimited (live_migration_bandwidth = 0)".to_string() } else { format!("{bandwidth} MiB/s (live_migration_bandwidth)") }),
    ];

    let result = (|| -> Result<String, String> {
        let xml = guest_xml(name, machine, &format!("{s_inst}/{name}/disk"));
        act(&mut ds, d, &guest_script("dest", name, &d_inst, pattern, None), "preparing the destination")?;
        act(&mut ss, s, &guest_script("source", name, &s_inst, pattern, Some(&xml)), "starting the test guest")?;
        if migrate::INTERRUPTED.load(Ordering::SeqCst) {
            return Err("interrupted before migrating".into());
        }
        let src_host = &sa.address;
        let src_uri = tcp_uri(src_host, libvirt_port);
        let dest_uri = if tls { tls_uri(d) } else { tcp_uri(d, libvirt_port) };
        let direct = migrate::tcp_reachable(src_host.trim_start_matches('[').trim_end_matches(']'), libvirt_port, Duration::from_secs(5));
        match &direct {
            Ok(()) => evidence.push(format!("control node -> {src_uri}: migrate to {dest_uri}")),
            Err(e) => evidence.push(format!(
                "the control node cannot reach {src_host}:{libvirt_port} ({e}): virsh migrate --p2p to {dest_uri} run on {s} over ssh"
            )),
        }
        let bar = opts.progress.then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_message(format!("migrating {} → {}", crate::report::escape::for_terminal(s), crate::report::escape::for_terminal(d)));
            b
        });
        let (r, progress, took) = match direct {
            Ok(()) => migrate::run(&src_uri, &dest_uri, name, bandwidth, tls, opts.timeout, bar.as_ref()),
            Err(_) => migrate::run_over_ssh(sa, &dest_uri, name, bandwidth, tls, opts.timeout, bar.as_ref()),
        };
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        evidence.push(format!(
            "{} polls of the job on {s}: data processed up to {}, disk {}, memory {}",
            progress.polls,
            mib(progress.data_processed as f64),
            mib(progress.disk_processed as f64),
            mib(progress.mem_processed as f64)
        ));
        match r {
            Ok(()) => {}
            Err(migrate::Failure::Connect(e)) => return Err(format!("cannot start the migration on {s}: {e}")),
            Err(migrate::Failure::Libvirt(e)) => {
                evidence.push(format!("libvirt: {e}"));
                return Err(format!("migration from {s} to {d} failed: {}", explain(&e, s, d, { let (lo, hi, _) = dst.facts.migration_ports(); (lo, hi) }, libvirt_port, ports)));
            }
            Err(migrate::Failure::Timeout(t)) => {
                let mut m = format!("migration from {s} to {d} did not complete within {} s and was aborted", t.as_secs());
                if let Some(f) = ports.filter(|f| f.status == Status::Fail) {
                    m.push_str(&format!("; {}: {}", mesh::MIGRATION_PORTS, f.message));
                }
                return Err(m);
            }
            Err(migrate::Failure::Interrupted) => return Err(format!("migration from {s} to {d} interrupted (Ctrl-C) and aborted")),
        }
        // Verify on both hosts.
        let v = act(&mut ds, d, &guest_script("verify", name, &d_inst, pattern, None), "verifying")?;
        let v = RawFacts::parse(&v).map_err(|e| format!("verifying on {d}: {e}"))?;
        let g = act(&mut ss, s, &guest_script("gone", name, &s_inst, pattern, None), "verifying")?;
        let g = RawFacts::parse(&g).map_err(|e| format!("verifying on {s}: {e}"))?;
        let state = v.ok("state").map(str::trim).unwrap_or("");
        if state != "running" {
            return Err(format!("after the migration {name} is not running on {d} (state {:?})", v.get("state").map(|r| format!("{}{}", r.stdout.trim(), r.stderr.trim()))));
        }
        if !v.ok("persistent").is_some_and(|t| t.lines().any(|l| l.starts_with("Persistent:") && l.ends_with("yes"))) {
            return Err(format!("{name} runs on {d} but is not persistent there (PERSIST_DEST)"));
        }
        if g.get("state").is_some_and(|r| r.status == 0) {
            return Err(format!("{name} still exists on {s} after the migration (state {})", g.get("state").unwrap().stdout.trim()));
        }
        let read = v.get("pattern").cloned().unwrap_or_default();
        if read.status != 0 || read.stdout.contains("verification failed") || !read.stdout.contains("read ") {
            return Err(format!(
                "the pattern 0x{pattern:02x} written at {} MiB on {s} does not read back from {d}'s overlay: {}{}",
                PATTERN_OFFSET >> 20,
                read.stdout.trim(),
                read.stderr.trim()
            ));
        }
        let job = v.ok("job").unwrap_or("");
        let downtime = virsh_value(job, "Total downtime");
        let memory = virsh_value(job, "Memory processed").or_else(|| virsh_value(job, "Data processed")).unwrap_or(progress.mem_processed as f64);
        let disk = v.ok("map").and_then(overlay_data_bytes).map(|b| b as f64).unwrap_or(progress.disk_processed as f64);
        evidence.push(format!("{d}: virsh domjobinfo --completed: {}", job.lines().filter(|l| l.contains("downtime") || l.contains("processed") || l.contains("elapsed")).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("; ")));
        Ok(format!(
            "{s} → {d} live block migration in {:.1} s, downtime {}, {} moved ({} memory + {} disk); running on {d}, gone from {s}, pattern 0x{pattern:02x} read back from {d}'s overlay",
            took.as_secs_f64(),
            downtime.map_or("unknown".into(), |ms| format!("{ms:.0} ms")),
            mib(memory + disk),
            mib(memory),
            mib(disk)
        ))
    })();

    // Always clean up, on both hosts.
    let mut cleanup_errors = Vec::new();
    for (sess, host, inst) in [(&mut ss, s, &s_inst), (&mut ds, d, &d_inst)] {
        if let Err(e) = act(sess, host, &guest_script("cleanup", name, inst, pattern, None), "cleaning up") {
            cleanup_errors.push(e);
        }
    }
    if cleanup_errors.is_empty() {
        evidence.push(format!("cleaned up {name} on {s} and {d}"));
    }
    match (result, cleanup_errors.is_empty()) {
        (Ok(m), true) => Outcome::pass(m).with_all(evidence),
        (Ok(m), false) => Outcome::fail(format!("{m}; but {}", cleanup_errors.join("; "))).with_all(evidence),
        (Err(e), true) => Outcome::fail(e).with_all(evidence),
        (Err(e), false) => Outcome::fail(format!("{e}; and {}", cleanup_errors.join("; "))).with_all(evidence),
    }
}

#[cfg(test)]
mod tests;
