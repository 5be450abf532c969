//! Real-host tests: `migready doctor` against the lab (tests/lab/lab.sh).
//! Run by tests/run.sh after it boots the lab:
//!   cmp1 bookworm socket, cmp2 trixie socket + firewalld, cmp3 bookworm traditional + RHEL REJECT,
//!   cmp4 trixie traditional + DROP policy, cmp5 bookworm with the seed's recipe,
//!   cmp6 bookworm socket + native nftables (inet filter input, policy drop).
//! They are ignored by a plain `cargo test` (no lab there); tests/run.sh runs them
//! with `--ignored`, and then a missing lab is a failure, not a skip.

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{address, lab_state};

fn state() -> PathBuf {
    lab_state()
}

fn lab_inventory() -> String {
    let p = state().join("inventory.toml");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("no lab inventory at {} ({e}); run tests/run.sh", p.display()))
}

/// The lab bridge's /24 without the last octet: 198.18.(42+ID).
fn lab_net() -> String {
    let id: u8 = std::env::var("MIGREADY_LAB_ID").ok().and_then(|i| i.parse().ok()).unwrap_or(0);
    format!("198.18.{}", 42 + id)
}

/// Run `migready doctor --format json` on an inventory text; (exit code, report, stderr).
fn doctor(dir: &Path, inventory: &str) -> (i32, Value, String) {
    doctor_env(dir, inventory, &[])
}

/// [`doctor`] with extra environment variables.
fn doctor_env(dir: &Path, inventory: &str, env: &[(&str, &str)]) -> (i32, Value, String) {
    let inv = dir.join("inventory.toml");
    std::fs::write(&inv, inventory).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_migready"))
        .args(["doctor", "--format", "json", "-i"])
        .arg(&inv)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = common::report_or_null(&out.stdout);
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn check<'a>(report: &'a Value, host: &str, id: &str) -> &'a Value {
    let h = report["hosts"].as_array().unwrap().iter().find(|h| h["name"] == host).unwrap_or_else(|| panic!("no host {host}"));
    h["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no check {id} on {host}"))
}

#[track_caller]
fn expect(report: &Value, host: &str, id: &str, status: &str, needle: &str) {
    let c = check(report, host, id);
    assert_eq!(c["status"], status, "{host} {id}: {c}");
    assert!(c["message"].as_str().unwrap().contains(needle), "{host} {id}: message lacks {needle:?}: {c}");
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn doctor_on_both_images_and_all_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let (code, r, stderr) = doctor(dir.path(), &lab_inventory());
    eprintln!("doctor on the lab took {:?} (report: {} ms)", start.elapsed(), r["elapsed_ms"]);
    assert_eq!(code, 1, "stock hosts fail checks; stderr: {stderr}");
    for h in ["cmp1", "cmp2", "cmp3", "cmp4", "cmp5", "cmp6"] {
        expect(&r, h, "ssh.connect", "pass", "verified");
        expect(&r, h, "privilege", "pass", "root");
        expect(&r, h, "storage.instances", "pass", "local");
        expect(&r, h, "net.hostname", "pass", &format!("{h} resolves to {}", address(h)));
        expect(&r, h, "nova.compute", "warn", "still starting");
        expect(&r, h, "nova.vnc-listen", "pass", "");
    }
    // Distro defaults: socket activation, no TCP socket, SASL.
    for h in ["cmp1", "cmp2", "cmp6"] {
        expect(&r, h, "libvirt.mode", "pass", "socket activation");
        expect(&r, h, "libvirt.listen", "fail", "libvirtd-tcp.socket is not enabled");
        expect(&r, h, "libvirt.auth", "fail", "\"sasl\"");
        expect(&r, h, "libvirt.host-uuid", "pass", "unique");
    }
    expect(&r, "cmp1", "firewall.libvirt", "pass", "accepted");
    expect(&r, "cmp1", "firewall.migration", "pass", "TCP 49152-49215 accepted");
    // cmp2 runs firewalld, RHEL-like: eth0 in zone public (ssh only, the rest rejected).
    let peers = ["cmp1", "cmp3", "cmp4", "cmp5", "cmp6"].map(|h| format!("{h} ({})", address(h))).join(", ");
    expect(&r, "cmp2", "firewall.libvirt", "fail", &format!("TCP 16509 from {peers} is rejected by firewalld zone public"));
    expect(&r, "cmp2", "firewall.migration", "fail", &format!("TCP 49152 from {peers} is rejected by firewalld zone public"));
    let ev = check(&r, "cmp2", "firewall.libvirt")["evidence"].to_string();
    assert!(ev.contains(&format!("firewalld zone public (interface eth0): TCP 16509 from {}: REJECT by zone target default", address("cmp1"))), "{ev}");
    expect(&r, "cmp1", "nova.flags", "pass", "Nova 26 (zed)");
    expect(&r, "cmp2", "nova.flags", "pass", "Nova 31");
    expect(&r, "cmp1", "libvirt.mode", "pass", "libvirt 9.0");
    expect(&r, "cmp2", "libvirt.mode", "pass", "libvirt 11.");
    expect(&r, "cmp1", "hypervisor.versions", "warn", "from cmp2, cmp4 (newer) to this host can fail");
    expect(&r, "cmp2", "hypervisor.versions", "warn", "from this host to cmp1, cmp3, cmp5, cmp6 (older) can fail");
    // CentOS 7 style: sockets masked, unconfigured; RHEL REJECT and DROP firewalls.
    for h in ["cmp3", "cmp4"] {
        expect(&r, h, "libvirt.mode", "pass", "traditional");
        let listen = check(&r, h, "libvirt.listen");
        assert_eq!(listen["status"], "fail");
        for part in ["listen_tcp is not set", "listen_tls is not set", "does not run with --listen", "nothing listens on TCP 16509"] {
            assert!(listen["message"].as_str().unwrap().contains(part), "{h}: {listen}");
        }
        assert!(listen["evidence"].to_string().contains("/etc/sysconfig/libvirtd: LIBVIRTD_ARGS not set"), "{listen}");
    }
    let peers = ["cmp1", "cmp2", "cmp4", "cmp5", "cmp6"].map(|h| format!("{h} ({})", address(h))).join(", ");
    expect(&r, "cmp3", "firewall.libvirt", "fail", &format!("TCP 16509 from {peers} is rejected"));
    // Its rules are iptables-nft's: they show in nft too, and are judged once.
    assert!(!check(&r, "cmp3", "firewall.libvirt")["evidence"].to_string().contains("nft: "), "{}", check(&r, "cmp3", "firewall.libvirt"));
    assert!(check(&r, "cmp3", "firewall.libvirt")["evidence"].to_string().contains("-A INPUT -j REJECT --reject-with icmp-host-prohibited"));
    expect(&r, "cmp3", "firewall.migration", "fail", "TCP 49152 from");
    expect(&r, "cmp4", "firewall.libvirt", "fail", "is dropped");
    expect(&r, "cmp4", "firewall.migration", "fail", "is dropped");
    // The seed's recipe on a socket-activated libvirt: libvirtd cannot start.
    expect(&r, "cmp5", "libvirt.mode", "fail", "--listen parameter not permitted");
    expect(&r, "cmp5", "libvirt.auth", "warn", "controls every guest");
    // The seed's auth_tcp = "none" on a host without any firewall: open to every address.
    expect(&r, "cmp5", "libvirt.exposure", "fail", "TCP 16509 is open to any address (nothing filters it: no firewall rules at all) and auth_tcp = \"none\"");
    expect(&r, "cmp5", "firewall.libvirt", "pass", "and from any address (nothing filters it");
    // No firewall either, auth_tcp still "sasl": said before fix makes it "none".
    expect(&r, "cmp1", "libvirt.exposure", "warn", "TCP 16509 is open to any address (nothing filters it: no firewall rules at all); with the policy's auth_tcp = \"none\"");
    for h in ["cmp2", "cmp3", "cmp4", "cmp6"] {
        expect(&r, h, "libvirt.exposure", "pass", "TCP 16509 is not open beyond the peers (an address outside them is refused)");
    }
    expect(&r, "cmp5", "libvirt.host-uuid", "warn", "did not report");
    // Native nftables (iptables-save shows nothing): dropped by the policy of chain input
    // of table inet filter, not "ACCEPT by policy of INPUT".
    let peers = ["cmp1", "cmp2", "cmp3", "cmp4", "cmp5"].map(|h| format!("{h} ({})", address(h))).join(", ");
    for (id, port) in [("firewall.libvirt", 16509), ("firewall.migration", 49152)] {
        expect(&r, "cmp6", id, "fail", &format!("TCP {port} from {peers} is dropped by nftables chain input of table inet filter"));
        let ev = check(&r, "cmp6", id)["evidence"].to_string();
        assert!(ev.contains(&format!("nft: TCP {port} from {}: DROP by policy of chain input (table inet filter)", address("cmp1"))), "{ev}");
        assert!(!ev.contains("ACCEPT by policy of INPUT"), "{ev}");
    }
    let s = &r["summary"];
    let total: u64 = ["pass", "warn", "fail", "skip"].iter().map(|k| s[k].as_u64().unwrap()).sum();
    // Every host check and every pair check (the mesh: 6 x 5 ordered pairs, 5 checks each) is counted.
    let host_checks = Command::new(env!("CARGO_BIN_EXE_migready")).arg("checks").output().unwrap().stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty() && !l.ends_with(b"(per pair of hosts)")).count() as u64;
    assert_eq!(r["pairs"].as_array().unwrap().len(), 30);
    assert_eq!(total, 6 * host_checks + 30 * 5);
}

fn pair<'a>(report: &'a Value, from: &str, to: &str, id: &str) -> &'a Value {
    let p = report["pairs"].as_array().unwrap().iter().find(|p| p["from"] == from && p["to"] == to).unwrap_or_else(|| panic!("no pair {from} -> {to}"));
    p["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no {id} for {from} -> {to}"))
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn mesh_engines_agree_on_real_hosts() {
    // The mesh probe runs in Python where the host has python3 (every lab host: Nova),
    // and in POSIX sh otherwise. Both must judge every pair of the lab the same way.
    let dir = tempfile::tempdir().unwrap();
    let inv = lab_inventory();
    let (_, py, _) = doctor_env(dir.path(), &inv, &[]);
    let (_, sh, _) = doctor_env(dir.path(), &inv, &[("MIGREADY_MESH_ENGINE", "sh")]);
    let hosts = ["cmp1", "cmp2", "cmp3", "cmp4", "cmp5", "cmp6"];
    for from in hosts {
        for to in hosts.iter().filter(|t| **t != from) {
            for id in ["mesh.resolve", "mesh.qemu-tcp", "mesh.migration-ports"] {
                let (a, b) = (pair(&py, from, to, id), pair(&sh, from, to, id));
                assert_eq!(a["status"], b["status"], "{from} -> {to} {id}:\npython: {a}\nsh: {b}");
            }
            expect_pair(&py, from, to, "mesh.resolve", "pass", "an address of");
            // Before fix no libvirt listens on TCP anywhere.
            expect_pair(&py, from, to, "mesh.qemu-tcp", "fail", "");
        }
        // cmp3 rejects (icmp-host-prohibited), cmp4 (iptables) and cmp6 (nftables) drop; the
        // others filter nothing.
        if from != "cmp3" {
            expect_pair(&py, from, "cmp3", "mesh.migration-ports", "fail", "rejected (no route to host");
            expect_pair(&sh, from, "cmp3", "mesh.migration-ports", "fail", "rejected (no route to host");
        }
        if from != "cmp4" {
            expect_pair(&py, from, "cmp4", "mesh.migration-ports", "fail", "timed out after 5 s (dropped)");
        }
        if from != "cmp6" {
            expect_pair(&py, from, "cmp6", "mesh.migration-ports", "fail", "timed out after 5 s (dropped)");
        }
        if from != "cmp1" {
            expect_pair(&py, from, "cmp1", "mesh.migration-ports", "pass", "reachable from");
        }
    }
    // Each engine really ran: its own words in the evidence.
    let ev = |r: &Value| pair(r, "cmp1", "cmp3", "mesh.migration-ports")["evidence"].to_string();
    assert!(ev(&py).contains("connect to cmp3 ("), "{}", ev(&py));
    assert!(ev(&sh).contains("nc: connect to cmp3"), "{}", ev(&sh));
}

#[track_caller]
fn expect_pair(report: &Value, from: &str, to: &str, id: &str, status: &str, needle: &str) {
    let c = pair(report, from, to, id);
    assert_eq!(c["status"], status, "{from} -> {to} {id}: {c}");
    assert!(c["message"].as_str().unwrap().contains(needle), "{from} -> {to} {id}: message lacks {needle:?}: {c}");
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn seed_fixed_by_hand_passes_listen_and_firewall_still_decides() {
    // Configure cmp3 (traditional, REJECT firewall) the seed's way, by hand, the seed's
    // ACCEPT appended after the REJECT: doctor must pass listen and still fail the firewall.
    let ssh = |cmd: &str| {
        let st = Command::new("tests/lab/lab.sh").args(["ssh", "cmp3", cmd]).current_dir(env!("CARGO_MANIFEST_DIR")).status().unwrap();
        assert!(st.success(), "{cmd}");
    };
    ssh("cp -a /etc/libvirt/libvirtd.conf /root/libvirtd.conf.orig && cp -a /etc/sysconfig/libvirtd /root/sysconfig.orig \
         && printf 'listen_tls = 0\\nlisten_tcp = 1\\nauth_tcp = \"none\"\\n' >> /etc/libvirt/libvirtd.conf \
         && echo 'LIBVIRTD_ARGS=\"--listen\"' >> /etc/sysconfig/libvirtd && systemctl restart libvirtd \
         && iptables -A INPUT -p tcp --dport 16509 -j ACCEPT");
    let dir = tempfile::tempdir().unwrap();
    let inv = lab_inventory();
    let (_, r, _) = doctor(dir.path(), &inv);
    ssh("cp -a /root/libvirtd.conf.orig /etc/libvirt/libvirtd.conf && cp -a /root/sysconfig.orig /etc/sysconfig/libvirtd \
         && systemctl restart libvirtd && iptables -D INPUT -p tcp --dport 16509 -j ACCEPT");
    expect(&r, "cmp3", "libvirt.listen", "pass", "libvirtd --listen with listen_tcp = 1");
    expect(&r, "cmp3", "libvirt.auth", "warn", "auth_tcp = \"none\"");
    expect(&r, "cmp3", "firewall.libvirt", "fail", "is rejected");
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn unreachable_hosts_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    // A host whose key in known_hosts is not its own: copy known_hosts, give cmp2 cmp1's key.
    let kh = std::fs::read_to_string(state().join("known_hosts")).unwrap();
    let cmp1_key: Vec<&str> = kh.lines().filter(|l| l.starts_with("cmp1,")).collect();
    let mut changed: Vec<String> = kh.lines().filter(|l| !l.starts_with("cmp2,")).map(str::to_string).collect();
    changed.extend(cmp1_key.iter().map(|l| l.replacen(&format!("cmp1,{}", address("cmp1")), &format!("cmp2,{}", address("cmp2")), 1)));
    let bad_kh = dir.path().join("known_hosts_changed");
    std::fs::write(&bad_kh, changed.join("\n") + "\n").unwrap();
    // A port that accepts TCP and never speaks SSH, on the lab bridge.
    let silent = TcpListener::bind(format!("{}.1:0", lab_net())).unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let inv = format!(
        "{}\n[[hosts]]\nname = \"refuses\"\naddress = \"{net}.1\"\nport = 1\n\n\
         [[hosts]]\nname = \"silent\"\naddress = \"{net}.1\"\nport = {silent_port}\nconnect_timeout = 2\n\n\
         [[hosts]]\nname = \"cmp2\"\naddress = \"{}\"\nknown_hosts = \"{}\"\n\n\
         [[hosts]]\nname = \"unknown-key\"\naddress = \"{}\"\nknown_hosts = \"{}\"\n\n\
         [[hosts]]\nname = \"ops\"\naddress = \"{}\"\nuser = \"ops\"\n\n\
         [[hosts]]\nname = \"nosudo\"\naddress = \"{}\"\nuser = \"nosudo\"\n",
        lab_inventory().split("\n[[hosts]]").next().unwrap(),
        address("cmp2"),
        bad_kh.display(),
        address("cmp3"),
        dir.path().join("empty_known_hosts").display(),
        address("cmp1"),
        address("cmp1"),
        net = lab_net(),
    );
    let start = Instant::now();
    let (code, r, stderr) = doctor(dir.path(), &inv);
    let took = start.elapsed();
    drop(silent);
    assert_eq!(code, 1, "{stderr}");
    expect(&r, "refuses", "ssh.connect", "fail", "refused");
    expect(&r, "refuses", "libvirt.mode", "skip", "not reached");
    expect(&r, "silent", "ssh.connect", "fail", "timed out after 2s");
    expect(&r, "cmp2", "ssh.connect", "fail", "HOST KEY CHANGED");
    expect(&r, "unknown-key", "ssh.connect", "fail", "not in");
    // Non-root operators: sudo works for ops, and is refused clearly for nosudo.
    expect(&r, "ops", "ssh.connect", "pass", "as ops");
    expect(&r, "ops", "privilege", "pass", "passwordless sudo (user ops)");
    expect(&r, "ops", "libvirt.mode", "pass", "socket activation");
    expect(&r, "nosudo", "ssh.connect", "pass", "as nosudo");
    expect(&r, "nosudo", "privilege", "fail", "sudo");
    expect(&r, "nosudo", "libvirt.mode", "skip", "no root");
    // The silent host costs its own timeout, not more: everything ran in parallel.
    assert!(took < Duration::from_secs(10), "doctor took {took:?}");
    // Only `ops` was audited; `nosudo` connected but could not act as root.
    let reached: Vec<&Value> = r["hosts"].as_array().unwrap().iter().filter(|h| h["reached"] == true).map(|h| &h["name"]).collect();
    assert_eq!(reached, vec!["ops"]);
}

/// `migready doctor --format json` with `args`; (exit code, report, stderr).
fn doctor_args(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_migready"))
        .args(["doctor", "--format", "json"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null), stderr)
}

/// Per host, its checks as (id, status, message); per pair, (from, to, id, status).
/// storage.instances's message (free space) may change between two runs: its
/// status is compared, not its words.
#[allow(clippy::type_complexity)]
fn findings(report: &Value) -> (Vec<(String, Vec<(String, String, String)>)>, Vec<(String, String, String, String)>) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let hosts = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let checks = h["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (s(&c["id"]), s(&c["status"]), if c["id"] == "storage.instances" { String::new() } else { s(&c["message"]) }))
                .collect();
            (s(&h["name"]), checks)
        })
        .collect();
    let pairs = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["checks"].as_array().unwrap().iter().map(move |c| (s(&p["from"]), s(&p["to"]), s(&c["id"]), s(&c["status"]))))
        .collect();
    (hosts, pairs)
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn doctor_on_the_lab_written_as_a_kolla_multinode() {
    // The lab's hosts as kolla-ansible's multinode: every other one in [compute], the
    // others in [control]; address, user, port and key from the lab's inventory, set
    // at each level so that only Ansible's precedence reaches the hosts: a host's own
    // port beats [baremetal:vars] and [all:vars] (ports 1 and 2, closed), [compute:vars]'s
    // user beats [all:vars]'s `nosudo` (whose privilege check fails).
    let lab = state().join("inventory.toml");
    let inv = migready::inventory::load(&lab, &migready::check_ids()).unwrap();
    assert!(inv.hosts.len() >= 2, "the lab has {} hosts", inv.hosts.len());
    let (compute, control): (Vec<_>, Vec<_>) = inv.hosts.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let key = |h: &migready::inventory::HostSpec| h.identity_file.as_ref().unwrap().display().to_string();
    let line = |(_, h): &(usize, &migready::inventory::HostSpec)| {
        format!("{} ansible_host={} ansible_port={} ansible_user={} ansible_ssh_private_key_file={}\n", h.name, h.address, h.port, h.user, key(h))
    };
    let compute_line = |(_, h): &(usize, &migready::inventory::HostSpec)| format!("{} ansible_host={} ansible_port={}\n", h.name, h.address, h.port);
    let h0 = &inv.hosts[0];
    assert!(inv.hosts.iter().all(|h| (&h.user, &h.identity_file) == (&h0.user, &h0.identity_file)), "one user and key for the lab");
    let multinode = format!(
        "# kolla-ansible style, written by tests/lab.rs for this lab\n[control]\n{}\n[network]\n\n[compute]\n{}\n\
         [monitoring]\n\n[storage]\n\n[deployment]\nlocalhost       ansible_connection=local\n\n\
         [baremetal:children]\ncontrol\nnetwork\ncompute\nstorage\nmonitoring\n\n[nova-compute:children]\ncompute\n\n\
         [baremetal:vars]\nansible_port=1\n\n[compute:vars]\nansible_user={}\nansible_ssh_private_key_file={}\n\n\
         [all:vars]\nansible_user=nosudo\nansible_port=2\nansible_become=true\nansible_python_interpreter=\"{{{{ ansible_playbook_python }}}}\"\n",
        control.iter().map(line).collect::<String>(),
        compute.iter().map(compute_line).collect::<String>(),
        h0.user,
        key(h0),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("multinode");
    std::fs::write(&path, &multinode).unwrap();
    // The pure Ansible file has no known_hosts: ~/.ssh/known_hosts of a HOME that has
    // the lab's (and no ~/.ssh/config).
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::copy(&inv.hosts[0].known_hosts, home.join(".ssh/known_hosts")).unwrap();
    // The TOML beside it: the lab's ssh settings, its hosts from the Ansible file.
    let toml = dir.path().join("inventory.toml");
    std::fs::write(
        &toml,
        format!(
            "[defaults]\nknown_hosts = \"{}\"\nconnect_timeout = 15\n\n[inventory]\nansible = \"multinode\"\n",
            inv.hosts[0].known_hosts.display()
        ),
    )
    .unwrap();
    // The same as YAML, the connection variables at the group level.
    let yaml_hosts = |hosts: &[(usize, &migready::inventory::HostSpec)]| {
        hosts.iter().map(|(_, h)| format!("        {}:\n          ansible_host: \"{}\"\n", h.name, h.address)).collect::<String>()
    };
    let yaml = format!(
        "all:\n  vars:\n    ansible_user: {}\n    ansible_port: {}\n    ansible_ssh_private_key_file: {}\n  children:\n    control:\n      hosts:\n{}    compute:\n      hosts:\n{}",
        h0.user,
        h0.port,
        h0.identity_file.as_ref().unwrap().display(),
        yaml_hosts(&control),
        yaml_hosts(&compute),
    );
    let yaml_path = dir.path().join("hosts.yml");
    std::fs::write(&yaml_path, yaml).unwrap();
    let names: Vec<&str> = compute.iter().map(|(_, h)| h.name.as_str()).collect();
    let start = Instant::now();
    // Reference: the lab's own TOML limited to the same hosts (the same peers).
    let (code, reference, stderr) = doctor_args(&["-i", lab.to_str().unwrap(), "--limit", &names.join(",")], &[]);
    assert!(code == 0 || code == 1, "{stderr}");
    let home_env = [("HOME", home.as_os_str())];
    let (code_ansible, ansible, stderr_a) = doctor_args(&["-i", path.to_str().unwrap(), "--limit", "compute"], &home_env);
    let (code_toml, via_toml, stderr_t) = doctor_args(&["-i", toml.to_str().unwrap(), "--limit", "compute"], &home_env);
    let (code_yaml, yaml, stderr_y) = doctor_args(&["-i", yaml_path.to_str().unwrap(), "--limit", "compute"], &home_env);
    eprintln!("four doctor runs on {} hosts: {:?}", names.len(), start.elapsed());
    assert_eq!((code_ansible, code_toml, code_yaml), (code, code, code), "{stderr_a}\n{stderr_t}\n{stderr_y}");
    let (ref_hosts, ref_pairs) = findings(&reference);
    let audited: Vec<&str> = ref_hosts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(audited, names);
    for h in &names {
        expect(&reference, h, "ssh.connect", "pass", "verified");
        expect(&reference, h, "privilege", "pass", "root");
    }
    // Every ordered pair has doctor's five pair checks (mesh.resolve, mesh.qemu-tcp,
    // mesh.migration-ports, mesh.nova-address, storage.shared-instances), as above.
    assert_eq!(ref_pairs.len(), names.len() * (names.len() - 1) * 5);
    for (what, report) in [("multinode", &ansible), ("inventory.toml -> multinode", &via_toml), ("hosts.yml", &yaml)] {
        let (hosts, pairs) = findings(report);
        let audited: Vec<&str> = hosts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(audited, names, "{what}: exactly the [compute] hosts");
        for ((name, checks), (_, ref_checks)) in hosts.iter().zip(&ref_hosts) {
            assert_eq!(checks, ref_checks, "{what}: {name}");
        }
        assert_eq!(pairs, ref_pairs, "{what}");
    }
    // [control] (the other hosts) through a pattern of Ansible's forms.
    let others: Vec<&str> = control.iter().map(|(_, h)| h.name.as_str()).collect();
    let (_, r, stderr) = doctor_args(&["-i", path.to_str().unwrap(), "--mesh", "none", "--limit", "baremetal:!compute"], &home_env);
    let audited: Vec<&str> = r["hosts"].as_array().unwrap_or_else(|| panic!("{stderr}")).iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(audited, others);
    for h in &others {
        expect(&r, h, "ssh.connect", "pass", "verified");
    }
    // fix takes the same pattern: a plan for the compute hosts only, nothing applied.
    let out = Command::new(env!("CARGO_BIN_EXE_migready"))
        .args(["fix", "--dry-run", "--format", "json", "--mesh", "none", "-i", path.to_str().unwrap(), "--limit", "compute"])
        .env("HOME", &home)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let planned: Vec<&str> = r["fix"]["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(planned, names);
    assert_eq!((r["fix"]["dry_run"].as_bool(), r["fix"]["changes"]["applied"].as_u64()), (Some(true), Some(0)), "{}", r["fix"]["changes"]);
}
