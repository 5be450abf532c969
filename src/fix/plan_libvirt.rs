//! libvirt, by daemon mode (domain.md):
//! - socket activation: auth_tcp; `--listen` removed from the environment file
//!   (it stops libvirtd); libvirtd-tcp.socket enabled and started, the service
//!   stopped first so the socket can bind; listen_* keys left alone (ignored).
//! - traditional: listen_tls = 0, listen_tcp = 1, auth_tcp, `--listen` added to
//!   the environment file the unit reads (other arguments kept, `--timeout`
//!   dropped: with masked sockets nothing restarts an idle libvirtd), restart.
//! - modular: the same as socket activation through virtproxyd.
//! - duplicate host UUIDs: a fresh `host_uuid` in the daemon's config.

use super::{refused, status, Edits, HostPlan, Step, UnitAction, Verify};
use crate::checks::{id, Ctx, Finding, Status};
use crate::facts::{ConfigFile, DaemonMode};
use crate::formats::envfile::{join_words, split_words, EnvFile};
use crate::formats::libvirt_conf::{ConfDoc, Value};

/// Sets `key` in the daemon's config; false (and a note) when the edit was refused.
#[allow(clippy::too_many_arguments)]
fn conf_set(edits: &mut Edits, notes: &mut Vec<String>, check: &str, path: &str, conf: Option<&ConfigFile<ConfDoc>>, key: &str, value: Value, why: &str) -> bool {
    let result = edits.edit(path, conf.map(|c| c.text()), why, |cur| {
        let mut d = ConfDoc::parse(cur);
        d.set(key, value)?;
        Ok(d.to_string())
    });
    match result {
        Ok(_) => true,
        Err(e) => {
            notes.push(refused(check, path, conf.and_then(|c| c.doc.get(key)).map(|e| e.line), e));
            false
        }
    }
}

pub(super) fn plan(ctx: &Ctx, findings: &[Finding], new_uuid: Option<&str>, certs_installed: bool, edits: &mut Edits, units: &mut Vec<Step>, plan: &mut HostPlan) {
    let f = ctx.facts();
    let mode = f.daemon_mode();
    if mode == DaemonMode::Absent {
        if status(findings, id::LIBVIRT_LISTEN) == Status::Fail {
            plan.notes.push("libvirt is not installed: install it first (libvirt-daemon-system / libvirt)".into());
        }
        return;
    }
    let (daemon, conf, tcp_socket, tls_socket) = f.remote_daemon();
    let service = format!("{daemon}.service");
    let conf_path = format!("/etc/libvirt/{daemon}.conf");
    let var = format!("{}_ARGS", daemon.to_uppercase());
    let fix_mode = status(findings, id::LIBVIRT_MODE) == Status::Fail;
    let fix_listen = status(findings, id::LIBVIRT_LISTEN) == Status::Fail;
    let fix_auth = status(findings, id::LIBVIRT_AUTH) == Status::Fail;
    let tls = ctx.transport() == crate::inventory::Transport::Tls;
    let mut config_changed = false;

    if fix_auth && !tls {
        let want = ctx.policy.auth_tcp.as_str();
        let why = format!("auth_tcp = \"{want}\" (inventory policy)");
        config_changed |= conf_set(edits, &mut plan.notes, id::LIBVIRT_AUTH, &conf_path, conf, "auth_tcp", Value::Str(want.into()), &why);
    }
    if let Some(uuid) = new_uuid {
        let why = "a host UUID of its own (another host has the same)";
        config_changed |= conf_set(edits, &mut plan.notes, id::LIBVIRT_HOST_UUID, &conf_path, conf, "host_uuid", Value::Str(uuid.into()), why);
    }
    let libvirtd_unit = f.unit(&service);
    let failed = libvirtd_unit.is_some_and(|u| u.active_state == "failed");
    if tls {
        if fix_auth {
            let auth_ok = conf.and_then(|c| c.doc.get("auth_tls")).is_none_or(|e| matches!(&e.value, Value::Str(v) if v == "none" || v == "sasl"));
            if !auth_ok {
                // The client's certificate, checked against the CA, authenticates.
                config_changed |= conf_set(edits, &mut plan.notes, id::LIBVIRT_AUTH, &conf_path, conf, "auth_tls", Value::Str("none".into()), "auth_tls = \"none\" (transport tls: the client's certificate authenticates)");
            }
            if conf.and_then(|c| c.doc.get("tls_no_verify_certificate")).is_some_and(|e| e.value != Value::Int(0)) {
                config_changed |= conf_set(edits, &mut plan.notes, id::LIBVIRT_AUTH, &conf_path, conf, "tls_no_verify_certificate", Value::Int(0), "tls_no_verify_certificate = 0 (clients' certificates verified)");
            }
            // QEMU reads qemu.conf when the daemon starts: the restart below applies it.
            if let Some((key, _)) = crate::checks::libvirt_auth::qemu_unverified(f) {
                let why = format!("{key} = 1 (QEMU checks a migration peer's certificate against the CA)");
                config_changed |= conf_set(edits, &mut plan.notes, id::LIBVIRT_AUTH, "/etc/libvirt/qemu.conf", f.qemu_conf.as_ref(), key, Value::Int(1), &why);
            }
        }
        if fix_mode {
            plan.notes.push(format!("{}: transport tls: not fixed by migready (see the check's message)", id::LIBVIRT_MODE));
        }
        let fix_listen = fix_listen || certs_installed;
        let port = crate::inventory::LIBVIRT_TLS_PORT;
        let tcp_port = ctx.policy.libvirt_port;
        // qemu+tcp closed beside qemu+tls, unless the policy keeps it.
        let close_tcp = fix_listen && !ctx.policy.keep_tcp && crate::checks::libvirt_listen::tcp_served(ctx).is_some();
        match mode {
            DaemonMode::Socket | DaemonMode::Modular => {
                let sock = f.units.get(tls_socket).filter(|u| u.exists());
                if fix_listen && sock.is_none_or(|u| u.is_masked()) {
                    plan.notes.push(format!("libvirt.listen: {tls_socket} is missing or masked; unmask it or switch to traditional mode by hand"));
                }
                let need_socket = fix_listen && sock.is_some_and(|u| !u.is_masked() && (!u.is_enabled() || !u.is_active()));
                let tcp = f.units.get(tcp_socket).filter(|u| close_tcp && u.exists() && (u.is_enabled() || u.is_active()));
                if failed {
                    units.push(Step::Unit { action: UnitAction::ResetFailed, unit: service.clone(), why: format!("{service} had failed") });
                }
                // Stopped also when not running as planned: socket activation may start it
                // before this step (see the tcp path below).
                let running = libvirtd_unit.is_some_and(|u| u.exists());
                if need_socket || tcp.is_some() {
                    if running {
                        // The service holds the sockets' listening descriptors: only a stop lets
                        // a socket unit bind, or closes the port of one that is stopped.
                        units.push(Step::Unit {
                            action: UnitAction::Stop,
                            unit: service.clone(),
                            why: format!("the sockets change ({tls_socket} cannot start, nor {tcp_socket} close, while {service} runs; running guests are not affected); the service comes back on demand and reads the certificates"),
                        });
                    }
                    if tcp.is_some() {
                        units.push(Step::Unit {
                            action: UnitAction::DisableNow,
                            unit: tcp_socket.into(),
                            why: format!("close TCP {tcp_port}: qemu+tcp needs no certificate (transport tls; [policy] keep_tcp = true keeps it)"),
                        });
                    }
                    if need_socket {
                        units.push(Step::Unit { action: UnitAction::EnableNow, unit: tls_socket.into(), why: format!("serve TLS on TCP {port} through socket activation (transport tls)") });
                    }
                } else if config_changed || certs_installed {
                    units.push(Step::Unit { action: UnitAction::TryRestart, unit: service.clone(), why: "read the new configuration and certificates (if running)".into() });
                }
                if need_socket || tcp.is_some() || config_changed || certs_installed {
                    plan.verify = Some(Verify { active: vec![tls_socket.to_string()], port: Some(port), closed: close_tcp.then_some(tcp_port) });
                }
            }
            DaemonMode::Traditional => {
                let mut listen_ok = true;
                if fix_listen {
                    let tls_off = conf.and_then(|c| c.doc.get("listen_tls")).is_some_and(|e| e.value != Value::Int(1));
                    if tls_off {
                        listen_ok &= conf_set(edits, &mut plan.notes, id::LIBVIRT_LISTEN, &conf_path, conf, "listen_tls", Value::Int(1), "listen_tls = 1 (transport tls)");
                    }
                    if close_tcp {
                        config_changed |= conf_set(edits, &mut plan.notes, id::LIBVIRT_LISTEN, &conf_path, conf, "listen_tcp", Value::Int(0), &format!("listen_tcp = 0: close TCP {tcp_port}, qemu+tcp needs no certificate (transport tls; [policy] keep_tcp = true keeps it)"));
                    }
                    let before = edits.changed();
                    listen_ok &= ensure_listen(f, &service, &var, id::LIBVIRT_LISTEN, edits, &mut plan.notes);
                    config_changed |= tls_off || edits.changed() != before;
                }
                if config_changed || certs_installed {
                    units.push(Step::Unit { action: UnitAction::Restart, unit: service.clone(), why: "read the new configuration and certificates (running guests are not affected)".into() });
                    plan.verify = Some(Verify { active: vec![service.clone()], port: listen_ok.then_some(port), closed: close_tcp.then_some(tcp_port) });
                }
            }
            DaemonMode::Absent => {}
        }
        return;
    }

    match mode {
        DaemonMode::Socket | DaemonMode::Modular => {
            if fix_mode {
                // `--listen` under socket activation: remove it where it is set.
                let mut removed = false;
                let mut refused_env = false;
                for ef in f.env_files.iter().filter(|e| e.unit == service) {
                    let Some(file) = &ef.file else { continue };
                    let Some(entry) = file.doc.get(&var) else { continue };
                    let words = split_words(&entry.value);
                    if words.iter().any(|w| w == "--listen" || w == "-l") {
                        let result = edits.edit(&ef.path, Some(file.text()), "remove --listen: refused under socket activation", |cur| {
                            let mut d = EnvFile::parse(cur);
                            d.remove_word(&var, "--listen")?;
                            d.remove_word(&var, "-l")?;
                            Ok(d.to_string())
                        });
                        match result {
                            Ok(_) => removed = true,
                            Err(e) => {
                                refused_env = true;
                                plan.notes.push(refused(id::LIBVIRT_MODE, &ef.path, Some(entry.line), e));
                            }
                        }
                    }
                }
                if !removed && !refused_env {
                    plan.notes.push(format!("libvirt.mode: --listen is not set in an environment file of {service}; remove it from the unit (drop-in ExecStart) by hand"));
                }
                config_changed |= removed;
            }
            let tcp = f.units.get(tcp_socket).filter(|u| u.exists());
            let need_socket = fix_listen && tcp.is_some_and(|u| !u.is_masked() && (!u.is_enabled() || !u.is_active()));
            if fix_listen && tcp.is_none_or(|u| u.is_masked()) {
                plan.notes.push(format!("libvirt.listen: {tcp_socket} is missing or masked; unmask it or switch to traditional mode by hand"));
            }
            if failed {
                units.push(Step::Unit { action: UnitAction::ResetFailed, unit: service.clone(), why: format!("{service} had failed") });
            }
            if need_socket {
                // Also when it was not running as planned: socket activation starts it on
                // demand (doctor's own virsh did, seen on the lab), and then the socket's
                // start is refused ("Socket service libvirtd.service already active").
                if libvirtd_unit.is_some_and(|u| u.exists()) {
                    units.push(Step::Unit {
                        action: UnitAction::Stop,
                        unit: service.clone(),
                        why: format!("{tcp_socket} cannot start while {service} runs, and socket activation may start it at any moment (running guests are not affected); the service comes back on demand"),
                    });
                }
                units.push(Step::Unit { action: UnitAction::EnableNow, unit: tcp_socket.into(), why: format!("serve TCP {} through socket activation", ctx.policy.libvirt_port) });
            } else if config_changed {
                units.push(Step::Unit { action: UnitAction::TryRestart, unit: service.clone(), why: "apply the new configuration (if running)".into() });
            }
            if need_socket || config_changed {
                let port = (need_socket || !fix_listen).then_some(ctx.policy.libvirt_port);
                plan.verify = Some(Verify { active: vec![tcp_socket.to_string()], port, closed: None });
            }
        }
        DaemonMode::Traditional => {
            let mut listen_refused = false;
            if fix_listen || fix_mode {
                let check = if fix_listen { id::LIBVIRT_LISTEN } else { id::LIBVIRT_MODE };
                let mut listen_ok = conf_set(edits, &mut plan.notes, check, &conf_path, conf, "listen_tls", Value::Int(0), "listen_tls = 0 (no TLS certificates needed)");
                listen_ok &= conf_set(edits, &mut plan.notes, check, &conf_path, conf, "listen_tcp", Value::Int(1), "listen_tcp = 1");
                listen_ok &= ensure_listen(f, &service, &var, check, edits, &mut plan.notes);
                config_changed |= listen_ok;
                // Listening is what these edits establish: without them, do not wait for it.
                listen_refused = !listen_ok;
            }
            if config_changed {
                units.push(Step::Unit { action: UnitAction::Restart, unit: service.clone(), why: "apply the new configuration (running guests are not affected)".into() });
                let port = (!listen_refused).then_some(ctx.policy.libvirt_port);
                plan.verify = Some(Verify { active: vec![service.clone()], port, closed: None });
            }
        }
        DaemonMode::Absent => {}
    }
}

/// `--listen` in the environment file `service` really reads (the last it lists; other
/// arguments kept, `--timeout N` dropped). False (and a note) when it cannot be.
fn ensure_listen(f: &crate::facts::HostFacts, service: &str, var: &str, check: &str, edits: &mut Edits, notes: &mut Vec<String>) -> bool {
    let var = var.to_string();
    let libvirtd_unit = f.unit(service);
    // The environment file the unit really reads: the last one it lists.
    let ef = f.env_files.iter().rfind(|e| e.unit == service);
    match ef {
        None => notes.push(format!("libvirt.listen: {service} reads no environment file; add --listen to its ExecStart by hand")),
        Some(ef) => {
            let original = ef.file.as_ref().map(|c| c.text());
            // Not set in the file: the unit's own Environment= default applies.
            let unit_default: Vec<String> = libvirtd_unit
                .and_then(|u| u.environment.iter().find_map(|e| e.strip_prefix(&format!("{var}="))))
                .map(split_words)
                .unwrap_or_default();
            let result = edits.edit(&ef.path, original, "--listen: traditional libvirtd reads listen_tcp only with it", |cur| {
                let mut d = EnvFile::parse(cur);
                let words = match d.get(&var) {
                    Some(e) => split_words(&e.value),
                    None => unit_default.clone(),
                };
                // Drop --timeout N: with masked sockets an idle libvirtd would exit for good.
                let remove: Vec<usize> = match words.iter().position(|w| w == "--timeout" || w == "-t") {
                    Some(i) => (i..(i + 2).min(words.len())).collect(),
                    None => Vec::new(),
                };
                let listen = (!words.iter().any(|w| w == "--listen" || w == "-l")).then_some("--listen");
                if d.get(&var).is_some() {
                    // Every other word stays as written, quotes included.
                    d.edit_words(&var, &remove, listen)?;
                } else {
                    let mut words: Vec<String> = words.iter().enumerate().filter(|(i, _)| !remove.contains(i)).map(|(_, w)| w.clone()).collect();
                    if let Some(l) = listen {
                        words.insert(0, l.to_string());
                    }
                    d.set(&var, &join_words(&words))?;
                }
                Ok(d.to_string())
            });
            if let Err(e) = result {
                let line = ef.file.as_ref().and_then(|c| c.doc.get(&var)).map(|e| e.line);
                notes.push(refused(check, &ef.path, line, e));
                return false;
            }
        }
    }
    true
}
