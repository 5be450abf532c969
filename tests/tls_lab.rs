//! Real-host tests of the migration transport (issue 12): who besides the peers reaches
//! the libvirt port and the migration range; `[policy] transport = "tls"` as doctor and
//! fix see it; the certificates migready issues, as libvirt (GnuTLS) takes them.
//! Run by tests/run.sh after tests/fix_lab.rs, on the same lab (MIGREADY_LAB_STATE /
//! MIGREADY_LAB_ID): the first bookworm host with the socket profile and no firewall,
//! and the first host with the REJECT firewall. For a lab of its own:
//! `MIGREADY_LAB_ID=3 tests/lab/lab.sh up t1:bookworm:socket t2:bookworm:traditional:reject`.
//! Ignored by a plain `cargo test`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::{address, host_check, lab_state, pair_check};

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}; is the lab up? (tests/run.sh)", p.display())).trim().to_string()
}

/// (host with no firewall, host with the REJECT ruleset) of the lab.
fn hosts() -> (String, String) {
    let mut found = (None, None);
    let mut names: Vec<String> = std::fs::read_dir(lab_state().join("hosts"))
        .unwrap_or_else(|e| panic!("no lab in {} ({e}); run tests/run.sh", lab_state().display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let spec = read(lab_state().join("hosts").join(&n).join("spec"));
        match spec.as_str() {
            "bookworm:socket:none" if found.0.is_none() => found.0 = Some(n),
            s if s.ends_with(":reject") && found.1.is_none() => found.1 = Some(n),
            _ => {}
        }
    }
    (found.0.expect("a bookworm:socket host without firewall in the lab"), found.1.expect("a host with the reject firewall in the lab"))
}

/// The lab inventory restricted to `names`.
fn inventory(dir: &Path, names: &[&str]) -> PathBuf {
    let mut text = format!(
        "[defaults]\nuser = \"root\"\nidentity_file = \"{0}/id_ed25519\"\nknown_hosts = \"{0}/known_hosts\"\nconnect_timeout = 60\n",
        lab_state().display()
    );
    for n in names {
        text.push_str(&format!("\n[[hosts]]\nname = \"{n}\"\naddress = \"{}\"\n", address(n)));
    }
    let p = dir.join("inventory.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn migready(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_migready")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `migready validate --pair FROM:TO` (JSON, no mesh) on `inv`: the document (Null if
/// none) and stderr.
fn validate_pair(inv: &str, from: &str, to: &str) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_migready"))
        .args(["validate", "--format", "json", "--mesh", "none", "-i", inv, "--pair", &format!("{from}:{to}")])
        .output()
        .unwrap();
    (serde_json::from_slice(&out.stdout).unwrap_or(Value::Null), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[track_caller]
fn expect(r: &Value, host: &str, id: &str, status: &str, needle: &str) {
    let c = host_check(r, host, id);
    assert_eq!(c["status"], status, "{host} {id}: {c}");
    assert!(c["message"].as_str().unwrap().contains(needle), "{host} {id}: message lacks {needle:?}: {c}");
}

/// Whether the control node (no peer of either host) opens a TCP connection to `host:port`.
fn control_connects(host: &str, port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&format!("{}:{port}", address(host)).parse().unwrap(), Duration::from_secs(3)).is_ok()
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn a_host_without_firewall_and_auth_none_is_open_to_every_address() {
    let (open, walled) = hosts();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), &[&open, &walled]);
    let inv = inv.to_str().unwrap();

    // Before fix (on a fresh lab): fix's plan says, host by host, what auth_tcp = "none"
    // will expose. After tests/fix_lab.rs there is nothing left to plan, so no warning.
    let (_, out, err) = migready(&["fix", "--dry-run", "-i", inv]);
    if out.contains("auth_tcp = \"none\": anyone who reaches TCP 16509") {
        assert!(
            out.contains(&format!("  {open}: TCP 16509 is open to any address (nothing filters it: no firewall rules at all)")),
            "{out}{err}"
        );
        assert!(out.contains(&format!("  {walled}: the firewall rules above admit only the peers\n")), "{out}{err}");
        assert!(!out.contains("admit only the peer hosts"), "{out}");
    }

    // Fixed as the policy asks (auth_tcp = "none"): the host without firewall is open to
    // anyone, and fix says so in its exit status (doctor's: a failing check).
    let (code, out, err) = migready(&["fix", "--yes", "--mesh", "none", "--format", "json", "-i", inv]);
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    common::assert_schema(&r);
    assert_eq!(r["fix"]["changes"]["rolled_back"], 0, "{r}");
    assert_eq!(code, 1, "{r}");
    expect(&r, &open, "libvirt.exposure", "fail", "TCP 16509 is open to any address (nothing filters it: no firewall rules at all) and auth_tcp = \"none\"");
    expect(&r, &open, "libvirt.exposure", "fail", "the migration range TCP 49152-49215 is open to any address");
    expect(&r, &open, "firewall.libvirt", "pass", &format!("accepted from {walled}, and from any address"));
    expect(&r, &walled, "libvirt.exposure", "pass", "TCP 16509 is not open beyond the peers (an address outside them is refused)");
    expect(&r, &walled, "firewall.libvirt", "pass", &format!("accepted from {open}"));
    assert!(!host_check(&r, &walled, "firewall.libvirt")["message"].as_str().unwrap().contains("any address"));
    // The only failure left is the exposure.
    let fails: Vec<String> = r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["checks"].as_array().unwrap().iter().filter(|c| c["status"] == "fail").map(move |c| format!("{} {}", h["name"], c["id"])))
        .collect();
    assert_eq!(fails, [format!("\"{open}\" \"libvirt.exposure\"")], "{r}");

    // What the report says is what the network does: the control node, no peer of
    // either, reaches libvirt on the open host and is refused by the other.
    assert!(control_connects(&open, 16509), "{open}:16509 must be open to any address");
    assert!(!control_connects(&walled, 16509), "{walled}:16509 must refuse the control node");
    let auth = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh"))
        .args(["ssh", &open, "grep ^auth_tcp /etc/libvirt/libvirtd.conf"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&auth.stdout).trim(), "auth_tcp = \"none\"");

    // doctor says the same, in its exit status too.
    let (code, out, _) = migready(&["doctor", "--mesh", "none", "--format", "json", "-i", inv]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1);
    expect(&r, &open, "libvirt.exposure", "fail", "controls every guest on this host without a password");
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn b_transport_tls_is_what_doctor_and_fix_expect() {
    // [policy] transport = "tls" on the same two hosts: doctor judges libvirt's TLS
    // listener and TCP 16514; fix --dry-run plans no TCP listener, opens 16514 on the
    // REJECT host to the peer, says what it does not set up, and changes nothing.
    let (open, walled) = hosts();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), &[&open, &walled]);
    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str(&common::tls_policy(&common::ca_init(dir.path())));
    std::fs::write(&inv, text).unwrap();
    let inv = inv.to_str().unwrap();
    let (code, out, _) = migready(&["doctor", "--format", "json", "-i", inv]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1);
    expect(&r, &open, "libvirt.listen", "fail", "transport tls: libvirtd-tls.socket is not enabled");
    expect(&r, &open, "libvirt.listen", "fail", "nothing listens on TCP 16514");
    expect(&r, &open, "libvirt.listen", "fail", "TCP 16509 is served too (libvirtd-tcp.socket active");
    expect(&r, &walled, "libvirt.listen", "fail", "TCP 16509 is served too (/etc/libvirt/libvirtd.conf:");
    expect(&r, &walled, "firewall.libvirt", "fail", &format!("TCP 16514 from {open} ({}) is rejected", address(&open)));
    expect(&r, &open, "libvirt.exposure", "pass", "TCP 16514 is open to any address (nothing filters it: no firewall rules at all); a client needs a certificate the CA signed");
    expect(&r, &open, "nova.migration-uri", "fail", "not the qemu+tls the transport policy asks");
    for (from, to) in [(&open, &walled), (&walled, &open)] {
        let p = r["pairs"].as_array().unwrap().iter().find(|p| &p["from"] == from && &p["to"] == to).unwrap();
        let c = p["checks"].as_array().unwrap().iter().find(|c| c["id"] == "mesh.qemu-tcp").unwrap();
        // Probed over qemu+tls, which nothing serves yet.
        assert!(c["status"] == "fail" && c["message"].as_str().unwrap().contains(&format!("qemu+tls://{to}/system from {from} failed")), "{c}");
    }
    let snap = |h: &str| {
        let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh"))
            .args(["ssh", h, "iptables-save | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//'; cat /etc/libvirt/libvirtd.conf /etc/sysconfig/libvirtd 2>/dev/null | sha256sum"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = (snap(&open), snap(&walled));
    let (code, out, err) = migready(&["fix", "--dry-run", "-i", inv]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("--dport 16514 -m comment --comment 'migready: libvirt-tls from {open}' -j ACCEPT")), "{out}");
    // TCP 16509 closed, not opened: the socket host's TCP socket disabled, the traditional
    // host's listen_tcp = 0 (the diff's context may show the rule tcp left, unchanged).
    assert!(out.contains("$ systemctl disable --now libvirtd-tcp.socket") && out.contains("\n+listen_tcp = 0\n"), "{out}");
    assert!(!out.contains("enable --now libvirtd-tcp.socket"), "{out}");
    assert!(!out.lines().any(|l| (l.starts_with("$ ") || l.starts_with('+')) && l.contains("16509")), "{out}");
    // The TLS listener and the certificates from the CA, keys never shown.
    assert!(out.contains("$ systemctl enable --now libvirtd-tls.socket"), "{out}");
    assert!(out.contains("# install /etc/pki/libvirt/private/serverkey.pem (0600 root:root)") && out.contains("(private key, not shown)"), "{out}");
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    assert_eq!((snap(&open), snap(&walled)), before, "--dry-run changed a host");
}

/// Runs `cmd` on `host` with `input` on its stdin (key material goes this way, never on
/// a command line).
fn ssh_in(host: &str, cmd: &str, input: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh"))
        .args(["ssh", host, cmd])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// The libvirt sockets active on `host` now.
fn active_sockets(host: &str) -> Vec<String> {
    let (_, out) = ssh_in(host, "systemctl list-units --state=active --plain --no-legend 'libvirtd*.socket' | cut -d' ' -f1", "");
    out.split_whitespace().filter(|u| u.ends_with(".socket")).map(str::to_string).collect()
}

/// Takes the TLS listener and the certificates off the server again and brings its
/// libvirt back as it was (an expired certificate makes libvirtd.service fail, and its
/// sockets with it), also when the test fails. Returns what `virsh version` said.
fn tls_cleanup(server: &str, client: &str, sockets: &[String]) -> (bool, String) {
    ssh_in(client, "rm -rf /etc/pki/CA /etc/pki/libvirt /etc/pki/qemu; rmdir /etc/pki 2>/dev/null; systemctl restart libvirtd.service; true", "");
    let units = sockets.join(" ");
    ssh_in(
        server,
        &format!(
            "systemctl stop libvirtd-tls.socket libvirtd.service; rm -rf /etc/pki/CA /etc/pki/libvirt /etc/pki/qemu; rmdir /etc/pki 2>/dev/null; \
             systemctl reset-failed libvirtd.service 'libvirtd*.socket' 2>/dev/null; systemctl start {units} && virsh -q -c qemu:///system version >/dev/null && echo libvirt back"
        ),
        "",
    )
}

struct TlsCleanup(String, String, Vec<String>);
impl Drop for TlsCleanup {
    fn drop(&mut self) {
        tls_cleanup(&self.0, &self.1, &self.2);
    }
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn c_certificates_migready_issues_are_what_libvirt_accepts() {
    // The CA of `migready ca init` and the certificates src/ca.rs issues, placed by hand
    // where libvirt reads them (as fix would: test d), on a socket-activated
    // server: qemu+tls from the other host answers; a server certificate without the
    // name the client uses is refused, and GnuTLS says why.
    let (server, client) = hosts();
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = common::ca_init(dir.path());
    let ca = migready::ca::Ca::load(&ca_dir.join("cacert.pem"), &ca_dir.join("cakey.pem")).unwrap();
    let sockets = active_sockets(&server);
    assert!(sockets.iter().any(|u| u == "libvirtd.socket"), "{server}: {sockets:?}");
    let _cleanup = TlsCleanup(server.clone(), client.clone(), sockets.clone());
    let put = |host: &str, path: &str, mode: &str, text: &str| {
        let (ok, out) = ssh_in(host, &format!("mkdir -p \"$(dirname {path})\" && umask 077 && cat > {path} && chmod {mode} {path}"), text);
        assert!(ok, "{host}: {path}: {out}");
    };
    let install_server = |s: migready::ca::Issued| {
        put(&server, "/etc/pki/CA/cacert.pem", "644", &ca.cert_pem);
        put(&server, "/etc/pki/libvirt/servercert.pem", "644", &s.cert_pem);
        put(&server, "/etc/pki/libvirt/private/serverkey.pem", "600", &s.key_pem);
        // Socket activation: the service takes the new socket when it starts again.
        let (ok, out) = ssh_in(&server, "systemctl stop libvirtd.service && systemctl restart libvirtd-tls.socket && systemctl is-active libvirtd-tls.socket", "");
        assert!(ok, "{out}");
    };
    let c = ca.issue(&client, std::slice::from_ref(&client), migready::ca::Kind::Client, migready::ca::HOST_DAYS).unwrap();
    put(&client, "/etc/pki/CA/cacert.pem", "644", &ca.cert_pem);
    put(&client, "/etc/pki/libvirt/clientcert.pem", "644", &c.cert_pem);
    put(&client, "/etc/pki/libvirt/private/clientkey.pem", "600", &c.key_pem);

    // Names as src/ca.rs takes them from the inventory and the facts.
    let inv = inventory(dir.path(), &[&server]);
    let inv = migready::inventory::load(&inv, &migready::check_ids()).unwrap();
    let gathered = migready::audit::gather_all(&inv, 1, migready::audit::Keep { sessions: false, texts: false }, |_| {});
    let facts = &gathered[0].result.as_ref().expect("the server was reached").0;
    let names = migready::ca::host_names(&inv.hosts[0], facts);
    assert!(names.contains(&server) && names.contains(&address(&server)), "{names:?}");
    let sc = ca.issue(&server, std::slice::from_ref(&server), migready::ca::Kind::Client, migready::ca::HOST_DAYS).unwrap();
    put(&server, "/etc/pki/libvirt/clientcert.pem", "644", &sc.cert_pem);
    put(&server, "/etc/pki/libvirt/private/clientkey.pem", "600", &sc.key_pem);
    install_server(ca.issue(&server, &names, migready::ca::Kind::Server, migready::ca::HOST_DAYS).unwrap());
    // doctor under transport tls reads them (certificates only) and judges them.
    let tls_inv = dir.path().join("tls.toml");
    std::fs::write(&tls_inv, std::fs::read_to_string(dir.path().join("inventory.toml")).unwrap() + "\n[policy]\ntransport = \"tls\"\n").unwrap();
    let tls_inv = tls_inv.to_str().unwrap().to_string();
    let doctor = || {
        let (_, out, err) = migready(&["doctor", "--mesh", "none", "--format", "json", "-i", &tls_inv]);
        let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    common::assert_schema(&r);
        assert!(!out.contains("PRIVATE KEY"), "{out}");
        r
    };
    expect(&doctor(), &server, "tls.certificates", "pass", "server and client certificates signed by the host's CA");
    // The mesh probes qemu+tls from the client, with both engines (Python, sh).
    let pair_inv = dir.path().join("pair.toml");
    let both = inventory(dir.path(), &[&server, &client]);
    std::fs::write(&pair_inv, std::fs::read_to_string(&both).unwrap() + "\n[policy]\ntransport = \"tls\"\n").unwrap();
    for engine in ["auto", "sh"] {
        let out = Command::new(env!("CARGO_BIN_EXE_migready"))
            .args(["doctor", "--format", "json", "-i", pair_inv.to_str().unwrap()])
            .env("MIGREADY_MESH_ENGINE", engine)
            .output()
            .unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let c = pair_check(&r, &client, &server, "mesh.qemu-tcp");
        assert_eq!(c["status"], "pass", "{engine}: {c}");
        assert!(c["message"].as_str().unwrap().contains(&format!("qemu+tls://{server}/system from {client} answers as {server}")), "{engine}: {c}");
    }
    let uri = format!("qemu+tls://{server}/system");
    let (ok, out) = ssh_in(&client, &format!("virsh -c {uri} hostname"), "");
    assert!(ok && out.trim() == server, "{uri} from {client}: {out}");
    // By address too (the address is in the certificate).
    let (ok, out) = ssh_in(&client, &format!("virsh -c qemu+tls://{}/system hostname", address(&server)), "");
    assert!(ok && out.trim() == server, "{out}");

    // A test live block migration client -> server with TLS (validate: qemu+tls and
    // VIR_MIGRATE_TLS, the server's transport tls by its own inventory entry). QEMU
    // reads its certificates under /etc/pki/qemu (the keys readable by its group).
    let qemu_certs = |host: &str, names: &[String]| {
        let s = ca.issue(host, names, migready::ca::Kind::Server, migready::ca::HOST_DAYS).unwrap();
        let c = ca.issue(host, names, migready::ca::Kind::Client, migready::ca::HOST_DAYS).unwrap();
        put(host, "/etc/pki/qemu/ca-cert.pem", "644", &ca.cert_pem);
        put(host, "/etc/pki/qemu/server-cert.pem", "644", &s.cert_pem);
        put(host, "/etc/pki/qemu/server-key.pem", "640", &s.key_pem);
        put(host, "/etc/pki/qemu/client-cert.pem", "644", &c.cert_pem);
        put(host, "/etc/pki/qemu/client-key.pem", "640", &c.key_pem);
        let (ok, out) = ssh_in(host, "chgrp libvirt-qemu /etc/pki/qemu/server-key.pem /etc/pki/qemu/client-key.pem && chmod 755 /etc/pki/qemu", "");
        assert!(ok, "{host}: {out}");
    };
    qemu_certs(&server, &names);
    qemu_certs(&client, &[client.clone(), address(&client)]);
    // libvirt reads qemu.conf's TLS directory when it starts.
    let (ok, out) = ssh_in(&client, "systemctl restart libvirtd.service", "");
    assert!(ok, "{out}");
    let (ok, out) = ssh_in(&server, "systemctl stop libvirtd.service", "");
    assert!(ok, "{out}");
    let mig_inv = dir.path().join("mig.toml");
    let text = std::fs::read_to_string(inventory(dir.path(), &[&client, &server])).unwrap();
    // The server's entry (the last) gets transport = "tls"; the client stays tcp.
    std::fs::write(&mig_inv, format!("{text}transport = \"tls\"\n")).unwrap();
    let (r, stderr) = validate_pair(mig_inv.to_str().unwrap(), &client, &server);
    let c = pair_check(&r, &client, &server, "migration.live-block");
    assert_eq!(c["status"], "pass", "{stderr}\n{c:#}");
    let ev = c["evidence"].to_string();
    assert!(ev.contains("|TLS (VIR_MIGRATE_TLS") && ev.contains(&format!("qemu+tls://{server}/system")), "{ev}");
    eprintln!("TLS migration {client} -> {server}: {}", c["message"]);
    // The streams really are in TLS: without QEMU's certificates on the destination
    // the same migration fails.
    let (ok, out) = ssh_in(&server, "mv /etc/pki/qemu /etc/pki/qemu.off", "");
    assert!(ok, "{out}");
    let (r, _) = validate_pair(mig_inv.to_str().unwrap(), &client, &server);
    let c = pair_check(&r, &client, &server, "migration.live-block");
    eprintln!("without /etc/pki/qemu on {server}: {}", c["message"]);
    assert_eq!(c["status"], "fail", "{c:#}");
    let (ok, out) = ssh_in(&server, "rm -rf /etc/pki/qemu.off", "");
    assert!(ok, "{out}");

    // A wrong name: the certificate holds neither the name nor the address.
    install_server(ca.issue(&server, &["wrong.example.org".to_string()], migready::ca::Kind::Server, migready::ca::HOST_DAYS).unwrap());
    let (ok, out) = ssh_in(&client, &format!("virsh -c {uri} hostname"), "");
    assert!(!ok, "a certificate without {server} must be refused: {out}");
    assert!(out.contains("owner does not match the hostname") && out.contains("Failed to verify peer's certificate"), "{out}");
    expect(&doctor(), &server, "tls.certificates", "fail", &format!("/etc/pki/libvirt/servercert.pem does not name {server}"));

    // Expired: refused by libvirt, and doctor says since when.
    let now = time::OffsetDateTime::now_utc();
    let old = ca.issue_valid(&server, &names, migready::ca::Kind::Server, now - time::Duration::days(30), now - time::Duration::days(1)).unwrap();
    install_server(old);
    let (ok, out) = ssh_in(&client, &format!("virsh -c {uri} hostname"), "");
    // (libvirtd itself will not serve with it: the handshake fails on the client.)
    assert!(!ok && out.contains("failed to connect to the hypervisor"), "an expired certificate must be refused: {out}");
    expect(&doctor(), &server, "tls.certificates", "fail", &format!("/etc/pki/libvirt/servercert.pem expired on {}", (now - time::Duration::days(1)).date()));

    // Taken off again: libvirt as it was (the later tests use this host).
    let (ok, out) = tls_cleanup(&server, &client, &sockets);
    assert!(ok && out.contains("libvirt back"), "{server}: {out}");
    assert_eq!(active_sockets(&server), sockets);
}

/// Restores, on `host`, the files a fix run backed up under /etc/libvirt, /etc/nova and
/// the libvirt environment files (from its JSON document), and takes TLS off again: the
/// state the later tests (tests/run.sh) expect of a transport tcp host.
fn back_to_tcp(r: &Value, host: &str, sockets: &[String]) {
    let h = r["fix"]["hosts"].as_array().unwrap().iter().find(|h| h["name"] == host).unwrap_or_else(|| panic!("{host}: {r}"));
    let backups: Vec<String> = h["applied"]["backups"].as_array().map(|a| a.iter().filter_map(|b| b.as_str().map(str::to_string)).collect()).unwrap_or_default();
    for b in backups {
        let Some((orig, _)) = b.split_once(".migready-") else { continue };
        if ["/etc/libvirt/", "/etc/nova/", "/etc/sysconfig/libvirtd", "/etc/default/libvirtd"].iter().any(|p| orig.starts_with(p)) {
            let (ok, out) = ssh_in(host, &format!("mv -f '{b}' '{orig}'"), "");
            assert!(ok, "{host}: {out}");
        }
    }
    let units = sockets.join(" ");
    let (ok, out) = ssh_in(
        host,
        &format!(
            "systemctl disable --now libvirtd-tls.socket 2>/dev/null; systemctl stop libvirtd.service; rm -rf /etc/pki/CA /etc/pki/libvirt /etc/pki/qemu; rmdir /etc/pki 2>/dev/null; \
             systemctl reset-failed libvirtd.service 'libvirtd*.socket' 2>/dev/null; {start}; systemctl try-restart --no-block nova-compute.service; \
             virsh -q -c qemu:///system version >/dev/null && echo libvirt back",
            start = if units.is_empty() { "systemctl start libvirtd.service".to_string() } else { format!("systemctl start {units}") }
        ),
        "",
    );
    assert!(ok && out.contains("libvirt back"), "{host}: {out}");
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn d_fix_sets_tls_up_from_the_inventory_ca() {
    // transport = "tls" for both hosts (a socket-activated one, a traditional one behind
    // REJECT) and the CA in [tls]: fix issues and installs each host's certificates (keys
    // never shown), starts libvirt's TLS listener and closes qemu+tcp, sets Nova's
    // scheme and native TLS; doctor then passes the certificates, the listener and the
    // qemu+tls mesh; a test migration runs with TLS; a second fix changes nothing. Then
    // fix takes both back to tcp (the test removes the certificates after).
    let (open, walled) = hosts();
    let dir = tempfile::tempdir().unwrap();
    let ca = common::ca_init(dir.path());
    let inv = inventory(dir.path(), &[&open, &walled]);
    let text = std::fs::read_to_string(&inv).unwrap() + &common::tls_policy(&ca);
    std::fs::write(&inv, text).unwrap();
    let inv = inv.to_str().unwrap();
    let sockets: Vec<(String, Vec<String>)> = [&open, &walled].iter().map(|h| (h.to_string(), active_sockets(h))).collect();

    let (_, out, err) = migready(&["fix", "--dry-run", "-i", inv]);
    assert!(!out.contains("PRIVATE KEY") && !err.contains("PRIVATE KEY"), "{out}{err}");
    for h in [&open, &walled] {
        assert!(out.contains("# install /etc/pki/qemu/server-key.pem (0640 root:libvirt-qemu)"), "{h}: {out}");
    }
    let (_, out, _) = migready(&["fix", "--dry-run", "--format", "json", "-i", inv]);
    assert!(!out.contains("PRIVATE KEY") && out.contains("(private key, not shown)"), "{out}");

    let (code, out, err) = migready(&["fix", "--yes", "--format", "json", "-i", inv]);
    assert!(!out.contains("PRIVATE KEY") && !err.contains("PRIVATE KEY"), "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    common::assert_schema(&r);
    struct Back(Value, Vec<(String, Vec<String>)>);
    impl Drop for Back {
        fn drop(&mut self) {
            for (h, s) in &self.1 {
                back_to_tcp(&self.0, h, s);
            }
        }
    }
    let _back = Back(r.clone(), sockets);
    assert_eq!(r["fix"]["changes"]["rolled_back"], 0, "{r}");
    for h in [&open, &walled] {
        expect(&r, h, "tls.certificates", "pass", "server and client certificates signed by the host's CA");
        expect(&r, h, "libvirt.listen", "pass", "TLS on TCP 16514 is served by");
        expect(&r, h, "nova.migration-uri", "pass", "live_migration_with_native_tls = true");
    }
    assert_eq!(code, 0, "{r}");
    let (ok, out) = ssh_in(&walled, "stat -c '%a %U:%G %n' /etc/pki/libvirt/private/serverkey.pem /etc/pki/qemu/server-key.pem /etc/pki/CA/cacert.pem", "");
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "600 root:root /etc/pki/libvirt/private/serverkey.pem\n640 root:libvirt-qemu /etc/pki/qemu/server-key.pem\n644 root:root /etc/pki/CA/cacert.pem", "{out}");

    // doctor, with the mesh over qemu+tls both ways.
    let (code, out, err) = migready(&["doctor", "--format", "json", "-i", inv]);
    let d: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    common::assert_schema(&d);
    assert_eq!(code, 0, "{d}");
    for (from, to) in [(&open, &walled), (&walled, &open)] {
        let p = d["pairs"].as_array().unwrap().iter().find(|p| &p["from"] == from && &p["to"] == to).unwrap();
        let c = p["checks"].as_array().unwrap().iter().find(|c| c["id"] == "mesh.qemu-tcp").unwrap();
        assert!(c["status"] == "pass" && c["message"].as_str().unwrap().contains(&format!("qemu+tls://{to}/system from {from} answers as {to}")), "{c}");
    }

    // A second fix: nothing to change.
    let (code, out, err) = migready(&["fix", "--dry-run", "-i", inv]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("== {open}: nothing to change")) && out.contains(&format!("== {walled}: nothing to change")), "{out}");

    // A test live block migration with TLS.
    let (v, stderr) = validate_pair(inv, &walled, &open);
    let c = pair_check(&v, &walled, &open, "migration.live-block");
    assert_eq!(c["status"], "pass", "{stderr}\n{c:#}");
    let ev = c["evidence"].to_string();
    assert!(ev.contains("|TLS (VIR_MIGRATE_TLS") && ev.contains(&format!("qemu+tls://{open}/system")), "{ev}");
    eprintln!("TLS migration {walled} -> {open} after fix: {}", c["message"]);

    // qemu+tcp closed beside qemu+tls: nothing listens on 16509 any more (the socket host's
    // libvirtd-tcp.socket disabled, the traditional host's listen_tcp = 0).
    for h in [&open, &walled] {
        let (ok, out) = ssh_in(h, "ss -Hltn 'sport = :16509'; systemctl is-enabled libvirtd-tcp.socket 2>/dev/null; grep -E '^listen_tcp' /etc/libvirt/libvirtd.conf; true", "");
        assert!(ok && !out.contains("LISTEN"), "{h}: 16509 still served: {out}");
    }
    assert!(!control_connects(&open, 16509), "{open}: 16509 still open to the control node");
    assert!(control_connects(&open, 16514), "{open}: 16514 closed");

    // And back to tcp, through fix: the TCP listener again, Nova's native TLS off; the
    // qemu+tcp mesh passes both ways, a second fix changes nothing.
    let tcp = inventory(dir.path(), &[&open, &walled]);
    let tcp = tcp.to_str().unwrap();
    let (code, out, err) = migready(&["fix", "--yes", "--format", "json", "-i", tcp]);
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    common::assert_schema(&r);
    assert_eq!(r["fix"]["changes"]["rolled_back"], 0, "{r}");
    for h in [&open, &walled] {
        expect(&r, h, "libvirt.listen", "pass", "TCP 16509 is served by");
        expect(&r, h, "nova.migration-uri", "pass", "Nova migrates over qemu+tcp");
    }
    // cmp1 has no firewall: with auth_tcp = "none" it is open to any address again.
    common::only_exposure_fails_json(&r, &[&open]);
    assert_eq!(code, 1, "{r}");
    let (_, out, err) = migready(&["doctor", "--format", "json", "-i", tcp]);
    let d: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    common::assert_schema(&d);
    for (from, to) in [(&open, &walled), (&walled, &open)] {
        let c = pair_check(&d, from, to, "mesh.qemu-tcp");
        assert!(c["status"] == "pass" && c["message"].as_str().unwrap().contains(&format!("qemu+tcp://{to}:16509/system from {from} answers as {to}")), "{c}");
    }
    let (_, out, err) = migready(&["fix", "--dry-run", "-i", tcp]);
    assert!(out.contains(&format!("== {open}: nothing to change")) && out.contains(&format!("== {walled}: nothing to change")), "{out}{err}");
    let (v, stderr) = validate_pair(tcp, &walled, &open);
    let c = pair_check(&v, &walled, &open, "migration.live-block");
    assert_eq!(c["status"], "pass", "{stderr}\n{c:#}");
    assert!(c["evidence"].to_string().contains(&format!("qemu+tcp://{open}")), "{c:#}");
}
