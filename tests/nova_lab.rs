//! Nova in the loop, on a real cloud in the lab (tests/run.sh boots it:
//! `lab.sh up ctl:bookworm:controller cmpa:bookworm:socket cmpb:bookworm:traditional:reject`,
//! a Zed control plane and two Debian 12 computes joined to it, nothing set up for migration).
//! Before `migready fix`, Nova's own live block migration (`validate --nova`) fails and
//! says why; after it, it passes both ways and leaves nothing behind. The Nova-side
//! checks see a stopped nova-compute, a disabled service and a host named otherwise.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{address, host_check, lab_state, pair_check, ssh};

fn inventory() -> PathBuf {
    lab_state().join("inventory-nova.toml")
}

/// `migready ARGS --format json` on the Nova inventory: (exit code, document).
fn migready(args: &[&str], inv: &std::path::Path) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_migready")).args(args).args(["--format", "json", "-i", inv.to_str().unwrap()]).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    common::assert_schema(&v);
    (out.status.code().unwrap_or(-1), v)
}

/// Nothing of migready's left in the cloud or on the computes.
fn assert_nothing_left() {
    let servers = ssh("ctl", "openstack server list --all-projects -f value -c Name");
    assert!(!servers.contains("migready-test-"), "servers left: {servers}");
    let flavors = ssh("ctl", "openstack flavor list --all -f value -c Name");
    assert!(!flavors.contains("migready-test-"), "flavors left: {flavors}");
    for h in ["cmpa", "cmpb"] {
        let doms = ssh(h, "virsh -q -c qemu:///system list --all --name");
        assert!(doms.trim().is_empty(), "{h}: domains left: {doms}");
        let disks = ssh(h, "ls /var/lib/nova/instances | grep -v -e _base -e locks -e compute_nodes || true");
        assert!(disks.trim().is_empty(), "{h}: instance directories left: {disks}");
    }
}

#[test]
#[ignore = "needs the Nova lab: tests/run.sh"]
fn a_doctor_asks_nova() {
    let (_, r) = migready(&["doctor", "--mesh", "none"], &inventory());
    for h in ["cmpa", "cmpb"] {
        let c = host_check(&r, h, "nova.service");
        assert_eq!(c["status"], "pass", "{c}");
        assert!(c["message"].as_str().unwrap().contains(&format!("nova-compute on {h} up and enabled")), "{c}");
        assert_eq!(host_check(&r, h, "nova.hypervisor")["status"], "pass");
    }
    // Without a cloud the Nova checks skip and say why.
    let plain = lab_state().join("inventory.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_migready")).args(["doctor", "--mesh", "none", "--format", "json", "-i", plain.to_str().unwrap()]).env_remove("OS_CLOUD").output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    common::assert_schema(&r);
    let c = host_check(&r, "cmpa", "nova.service");
    assert!(c["status"] == "skip" && c["message"].as_str().unwrap().contains("no cloud configured"), "{c}");
}

#[test]
#[ignore = "needs the Nova lab: tests/run.sh"]
fn b_nova_migration_fails_before_fix_and_passes_after() {
    let inv = inventory();
    // Before fix: Nova's migration fails; the reason comes from Nova's records and
    // nova-compute's log on the source.
    let t = Instant::now();
    let (code, r) = migready(&["validate", "--nova", "--mesh", "none", "--pair", "cmpa:cmpb"], &inv);
    eprintln!("validate --nova before fix took {:?}", t.elapsed());
    assert_eq!(code, 1, "{r}");
    let c = pair_check(&r, "cmpa", "cmpb", "nova.live-migration");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["message"].as_str().unwrap().contains("live block migration cmpa -> cmpb failed"), "{c}");
    let ev = c["evidence"].to_string();
    assert!(ev.contains("status failed") || ev.contains("status error"), "the migration record: {ev}");
    assert!(ev.contains("cmpa nova-compute:") && ev.contains("Live Migration failure") && ev.contains("16509"), "the source's log line: {ev}");
    assert_nothing_left();

    // fix sets both computes up; then Nova migrates both ways.
    let (code, mut r) = migready(&["fix", "--yes", "--mesh", "none"], &inv);
    if r["fix"]["changes"]["rolled_back"] != 0 {
        // Seen once under CI load: libvirtd's restart on cmpb failed and the host was
        // rolled back (cleanly). Say so, then the next run must apply.
        eprintln!("first fix rolled back ({code}): {}", r["fix"]["hosts"]);
        (_, r) = migready(&["fix", "--yes", "--mesh", "none"], &inv);
    }
    assert!(r["fix"]["changes"]["applied"].as_u64().unwrap() > 0 && r["fix"]["changes"]["rolled_back"] == 0, "{code}: {r}");
    for (from, to) in [("cmpa", "cmpb"), ("cmpb", "cmpa")] {
        let t = Instant::now();
        let (_, r) = migready(&["validate", "--nova", "--mesh", "none", "--pair", &format!("{from}:{to}")], &inv);
        eprintln!("validate --nova {from} -> {to} after fix took {:?}", t.elapsed());
        let c = pair_check(&r, from, to, "nova.live-migration");
        assert_eq!(c["status"], "pass", "{c}");
        assert!(c["message"].as_str().unwrap().contains(&format!("{from} -> {to} with block migration")), "{c}");
        assert!(c["evidence"].to_string().contains("status completed"), "{c}");
        assert_nothing_left();
    }
}

#[test]
#[ignore = "needs the Nova lab: tests/run.sh"]
fn c_what_nova_sees_of_a_host() {
    let inv = inventory();
    // Disabled through the API.
    ssh("ctl", "openstack compute service set --disable --disable-reason 'migready test' cmpb nova-compute");
    let (_, r) = migready(&["doctor", "--mesh", "none"], &inv);
    let c = host_check(&r, "cmpb", "nova.service");
    ssh("ctl", "openstack compute service set --enable cmpb nova-compute");
    assert!(c["status"] == "fail" && c["message"].as_str().unwrap().contains("disabled in Nova (migready test)"), "{c}");

    // A host the inventory names otherwise: named.
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("renamed.toml");
    let text = std::fs::read_to_string(&inv).unwrap().replacen("name = \"cmpa\"", "name = \"compute-a\"", 1);
    std::fs::write(&renamed, text).unwrap();
    let (_, r) = migready(&["doctor", "--mesh", "none"], &renamed);
    let c = host_check(&r, "compute-a", "nova.service");
    assert!(c["status"] == "warn" && c["message"].as_str().unwrap().contains("inventory name compute-a, Nova service host cmpa, hostname cmpa"), "{c}");

    // nova-compute stopped: Nova sees it down once its reports stop (service_down_time).
    ssh("cmpb", "systemctl stop nova-compute");
    let t = Instant::now();
    let (c, r) = loop {
        let (_, r) = migready(&["doctor", "--mesh", "none"], &inv);
        let c = host_check(&r, "cmpb", "nova.service").clone();
        if c["status"] == "fail" || t.elapsed() > Duration::from_secs(150) {
            break (c, r);
        }
        std::thread::sleep(Duration::from_secs(5));
    };
    ssh("cmpb", "systemctl start nova-compute");
    // Not running, its unit starts it through Debian's init script: nova.conf is read
    // as oslo.config's defaults, and the evidence says so.
    let flags = host_check(&r, "cmpb", "nova.flags");
    assert!(flags["evidence"].to_string().contains("nova-compute is not running and nova-compute.service starts it through /etc/init.d/nova-compute"), "{flags}");
    assert!(c["message"].as_str().unwrap().contains("Nova sees nova-compute on cmpb down"), "after {:?}: {c}", t.elapsed());
}

/// Undoes d_'s changes to cmpb's nova-compute unit, also when the test fails.
struct NovaDropIn;

impl Drop for NovaDropIn {
    fn drop(&mut self) {
        let _ = Command::new("tests/lab/lab.sh")
            .args(["ssh", "cmpb", "rm -rf /etc/systemd/system/nova-compute.service.d/50-migready-test.conf /etc/nova/nova.conf.d && systemctl daemon-reload && systemctl restart nova-compute"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
    }
}

#[test]
#[ignore = "needs the Nova lab: tests/run.sh"]
fn d_nova_conf_read_as_nova_compute_reads_it() {
    let inv = inventory();
    // cmpb's unit gets a --config-dir (a drop-in replacing Debian's wrapper by the same
    // command line plus --config-dir), and in it a file that turns tunnelling on.
    let _undo = NovaDropIn;
    ssh(
        "cmpb",
        "mkdir -p /etc/nova/nova.conf.d /etc/systemd/system/nova-compute.service.d \
         && printf '[libvirt]\\n# migready test\\nlive_migration_tunnelled = true\\n' >/etc/nova/nova.conf.d/50-migready-test.conf \
         && printf '[Service]\\nExecStart=\\nExecStart=/usr/bin/nova-compute --config-file=/etc/nova/nova.conf --config-file=/etc/nova/nova-compute.conf --config-dir=/etc/nova/nova.conf.d --log-file=/var/log/nova/nova-compute.log\\n' \
            >/etc/systemd/system/nova-compute.service.d/50-migready-test.conf \
         && systemctl daemon-reload && systemctl restart nova-compute",
    );
    let nova_conf = || ssh("cmpb", "sha256sum /etc/nova/nova.conf /etc/nova/nova-compute.conf");
    let before = nova_conf();
    let (_, r) = migready(&["doctor", "--mesh", "none"], &inv);
    let c = host_check(&r, "cmpb", "nova.flags");
    assert_eq!(c["status"], "fail", "{c}");
    let ev = c["evidence"].to_string();
    assert!(ev.contains("/etc/nova/nova.conf.d/50-migready-test.conf:3: live_migration_tunnelled = true"), "the file and line that decided: {c}");
    assert!(
        ev.contains("nova-compute reads /etc/nova/nova.conf, /etc/nova/nova-compute.conf, /etc/nova/nova.conf.d/50-migready-test.conf (order from nova-compute's command line (pid "),
        "the files in order: {c}"
    );

    // fix edits the file that decides, and only it.
    let (code, r) = migready(&["fix", "--yes", "--mesh", "none"], &inv);
    assert!(r["fix"]["changes"]["rolled_back"] == 0, "{code}: {r}");
    assert_eq!(ssh("cmpb", "cat /etc/nova/nova.conf.d/50-migready-test.conf"), "[libvirt]\n# migready test\nlive_migration_tunnelled = false\n");
    assert_eq!(nova_conf(), before, "nova.conf and nova-compute.conf are not touched");
    let (_, r) = migready(&["doctor", "--mesh", "none"], &inv);
    let c = host_check(&r, "cmpb", "nova.flags");
    assert_eq!(c["status"], "pass", "{c}");
    assert!(c["evidence"].to_string().contains("/etc/nova/nova.conf.d/50-migready-test.conf:3: live_migration_tunnelled = false"), "{c}");
    assert_eq!(host_check(&r, "cmpb", "nova.service")["status"], "pass", "nova-compute is back up in Nova after its restart");
}

/// Puts back files e_ changes (cmpb's nova-compute.conf, cmpa's /etc/hosts), also when
/// the test fails.
struct Restore(&'static [(&'static str, &'static str)]);

impl Drop for Restore {
    fn drop(&mut self) {
        for (host, path) in self.0 {
            let _ = Command::new("tests/lab/lab.sh")
                .args(["ssh", host, &format!("if [ -f {path}.migready-test ]; then cat {path}.migready-test >{path} && rm {path}.migready-test; fi")])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status();
        }
    }
}

fn with_mesh(engine: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_migready"))
        .args(["doctor", "--mesh", "full", "--format", "json", "-i", inventory().to_str().unwrap()])
        .env("MIGREADY_MESH_ENGINE", engine)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs the Nova lab: tests/run.sh"]
fn e_the_address_nova_hands_each_peer() {
    let _restore = Restore(&[("cmpb", "/etc/nova/nova-compute.conf"), ("cmpa", "/etc/hosts")]);
    ssh("cmpb", "cp -p /etc/nova/nova-compute.conf /etc/nova/nova-compute.conf.migready-test");
    ssh("cmpa", "cp -p /etc/hosts /etc/hosts.migready-test");
    // Unset: Nova hands the source the destination's hostname, the name the mesh probes.
    // Its verdict is the mesh checks' at that name (pass after b_'s fix; on a lab not
    // fixed, cmpb's firewall refuses, and the message says so, not to change the address).
    let r = with_mesh("auto");
    let c = pair_check(&r, "cmpa", "cmpb", "mesh.nova-address");
    let reached = ["mesh.resolve", "mesh.qemu-tcp", "mesh.migration-ports"].iter().all(|id| pair_check(&r, "cmpa", "cmpb", id)["status"] == "pass");
    assert_eq!(c["status"], if reached { "pass" } else { "fail" }, "{c}");
    let m = c["message"].as_str().unwrap();
    assert!(m.starts_with("Nova hands cmpa cmpb for cmpb (its service host name: its hostname"), "{c}");
    assert!(reached || m.ends_with("It reaches cmpb, which refuses: see the firewall and libvirt checks of cmpb"), "{c}");

    // A name no peer resolves, set in the file nova-compute reads last.
    let set = |v: &str| ssh("cmpb", &format!("cat /etc/nova/nova-compute.conf.migready-test >/etc/nova/nova-compute.conf && printf '[libvirt]\\nlive_migration_inbound_addr = {v}\\n' >>/etc/nova/nova-compute.conf"));
    set("cmpb-migration");
    let lines = ssh("cmpb", "grep -c '' /etc/nova/nova-compute.conf");
    let line = lines.trim().parse::<usize>().unwrap();
    for engine in ["auto", "sh"] {
        let r = with_mesh(engine);
        let c = pair_check(&r, "cmpa", "cmpb", "mesh.nova-address");
        let m = c["message"].as_str().unwrap();
        assert_eq!(c["status"], "fail", "{engine}: {c}");
        assert!(m.starts_with(&format!("Nova hands cmpa cmpb-migration for cmpb (its live_migration_inbound_addr, /etc/nova/nova-compute.conf:{line}: live_migration_inbound_addr = cmpb-migration)")), "{engine}: {c}");
        assert!(m.contains("cmpb-migration does not resolve on cmpa"), "{engine}: {c}");
        // The inventory name still works: the other mesh checks pass.
        assert_eq!(pair_check(&r, "cmpa", "cmpb", "mesh.resolve")["status"], "pass", "{engine}");
    }
    // Reported, not fixed: fix's plan does not touch it.
    let (_, plan) = migready(&["fix", "--dry-run", "--mesh", "none"], &inventory());
    assert!(!plan["fix"].to_string().contains("inbound_addr = "), "{}", plan["fix"]);

    // An address of another host: named, with whose it is.
    let cmpa_ip = address("cmpa");
    set(&cmpa_ip);
    let r = with_mesh("auto");
    let c = pair_check(&r, "cmpa", "cmpb", "mesh.nova-address");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["message"].as_str().unwrap().contains(&format!("{cmpa_ip} resolves to {cmpa_ip} on cmpa, which is cmpa's, not to an address of cmpb")), "{c}");

    // A name that resolves to cmpb on its peer: passes, probed at that name.
    set("cmpb-migration");
    ssh("cmpa", &format!("echo '{} cmpb-migration' >>/etc/hosts", address("cmpb")));
    let r = with_mesh("auto");
    let c = pair_check(&r, "cmpa", "cmpb", "mesh.nova-address");
    assert_eq!(c["status"], if reached { "pass" } else { "fail" }, "{c}");
    assert!(c["message"].as_str().unwrap().contains("probed at cmpb-migration"), "{c}");
    assert!(c["evidence"].to_string().contains(&format!("on cmpa: getent ahosts cmpb-migration: {}", address("cmpb"))), "{c}");
}

#[test]
#[ignore = "needs the Nova lab: tests/run.sh"]
fn f_a_shared_instances_path_fails_novas_own_test() {
    // Each compute its own instances path: a file made on one is not seen on the other.
    let r = with_mesh("auto");
    for (a, b) in [("cmpa", "cmpb"), ("cmpb", "cmpa")] {
        let c = pair_check(&r, a, b, "storage.shared-instances");
        assert_eq!(c["status"], "pass", "{c}");
        assert_eq!(c["message"], format!("a file made in {b}'s instances path /var/lib/nova/instances is not seen in {a}'s /var/lib/nova/instances: not shared (Nova's own test)"));
    }
    // The lab's /srv/migready-shared (one directory, bound into every host) as both
    // computes' instances path, in the file nova-compute reads last.
    let _restore = Restore(&[("cmpa", "/etc/nova/nova-compute.conf"), ("cmpb", "/etc/nova/nova-compute.conf")]);
    for h in ["cmpa", "cmpb"] {
        ssh(h, "cp -p /etc/nova/nova-compute.conf /etc/nova/nova-compute.conf.migready-test && mkdir -p /srv/migready-shared/instances \
                && printf '[DEFAULT]\\ninstances_path = /srv/migready-shared/instances\\n' >>/etc/nova/nova-compute.conf");
    }
    let r = with_mesh("auto");
    for (a, b) in [("cmpa", "cmpb"), ("cmpb", "cmpa")] {
        let c = pair_check(&r, a, b, "storage.shared-instances");
        assert_eq!(c["status"], "fail", "{c}");
        assert!(c["message"].as_str().unwrap().starts_with(&format!("{a}'s instances path /srv/migready-shared/instances is shared with {b}'s /srv/migready-shared/instances: a file made on {b} is seen on {a} (Nova's own test)")), "{c}");
        let ev = c["evidence"].to_string();
        assert!(ev.contains(": found") && ev.contains(&format!("on {b}: removed /srv/migready-shared/instances/.migready-shared-test-")), "{c}");
    }
    // Nothing left, in the shared directory or in the computes' own.
    assert_eq!(ssh("cmpa", "ls -A /srv/migready-shared/instances"), "");
    for h in ["cmpa", "cmpb"] {
        assert_eq!(ssh(h, "ls -A /var/lib/nova/instances | grep -c migready-shared || true").trim(), "0", "{h}");
    }
}

/// Brings the computes back to transport tcp through fix (the Nova inventory as written
/// by lab.sh), also when the test fails half-way.
struct BackToTcp;
impl Drop for BackToTcp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new(env!("CARGO_BIN_EXE_migready")).args(["fix", "--yes", "--mesh", "none", "-i", inventory().to_str().unwrap()]).output();
        }
    }
}

#[test]
#[ignore = "needs the Nova lab: tests/run.sh"]
fn g_nova_migrates_over_native_tls_after_fix_and_back_to_tcp() {
    // transport tls for both computes and the CA of `migready ca init`: fix installs the
    // certificates, libvirt's TLS listener and Nova's native TLS, and closes qemu+tcp.
    // Nova's own live block migration then passes: over qemu+tls (nothing
    // listens on 16509 any more) with QEMU's streams in TLS (without the destination's
    // QEMU CA certificate it fails, saying so). Back to tcp through fix: qemu+tcp served
    // again, Nova set for it, a second fix plans nothing.
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("inventory-nova-tls.toml");
    let text = std::fs::read_to_string(inventory()).unwrap() + &common::tls_policy(&common::ca_init(dir.path()));
    std::fs::write(&tls, text).unwrap();
    let _back = BackToTcp;

    let (code, r) = migready(&["fix", "--yes", "--mesh", "none"], &tls);
    assert_eq!(r["fix"]["changes"]["rolled_back"], 0, "{code}: {r}");
    for h in ["cmpa", "cmpb"] {
        for (id, needle) in [("tls.certificates", "signed by the host's CA"), ("libvirt.listen", "TLS on TCP 16514 is served by"), ("nova.migration-uri", "live_migration_with_native_tls = true")] {
            let c = host_check(&r, h, id);
            assert!(c["status"] == "pass" && c["message"].as_str().unwrap().contains(needle), "{h} {id}: {c}");
        }
        let listening = ssh(h, "ss -Hltn 'sport = :16509'");
        assert!(!listening.contains("LISTEN"), "{h}: 16509 still served: {listening}");
    }
    assert_eq!(code, 0, "{r}");

    // The destination's QEMU without its CA certificate: Nova's migration fails, and the
    // source's log says which credentials were missing (QEMU's streams are in TLS).
    ssh("cmpb", "mv /etc/pki/qemu/ca-cert.pem /etc/pki/qemu/ca-cert.pem.migready-test");
    let (code, r) = migready(&["validate", "--nova", "--mesh", "none", "--pair", "cmpa:cmpb"], &tls);
    ssh("cmpb", "mv /etc/pki/qemu/ca-cert.pem.migready-test /etc/pki/qemu/ca-cert.pem");
    let c = pair_check(&r, "cmpa", "cmpb", "nova.live-migration");
    assert!(code == 1 && c["status"] == "fail", "{c}");
    assert!(c["evidence"].to_string().contains("/etc/pki/qemu"), "the missing credentials: {c}");
    assert_nothing_left();

    // With it: Nova's live block migration passes (one way: CI's time; tests/tls_lab.rs
    // migrates with TLS at libvirt's level).
    let t = Instant::now();
    let (_, r) = migready(&["validate", "--nova", "--mesh", "none", "--pair", "cmpa:cmpb"], &tls);
    eprintln!("validate --nova cmpa -> cmpb over native TLS took {:?}", t.elapsed());
    let c = pair_check(&r, "cmpa", "cmpb", "nova.live-migration");
    assert_eq!(c["status"], "pass", "{c}");
    assert!(c["evidence"].to_string().contains("status completed"), "{c}");
    assert_nothing_left();

    // Back to tcp through fix: the TCP listener, the scheme tcp, native TLS off.
    let (code, r) = migready(&["fix", "--yes", "--mesh", "none"], &inventory());
    assert_eq!(r["fix"]["changes"]["rolled_back"], 0, "{code}: {r}");
    for h in ["cmpa", "cmpb"] {
        for (id, needle) in [("libvirt.listen", "TCP 16509 is served by"), ("nova.migration-uri", "Nova migrates over qemu+tcp")] {
            let c = host_check(&r, h, id);
            assert!(c["status"] == "pass" && c["message"].as_str().unwrap().contains(needle), "{h} {id}: {c}");
        }
    }
    for h in ["cmpa", "cmpb"] {
        let listening = ssh(h, "ss -Hltn 'sport = :16509'");
        assert!(listening.contains("LISTEN"), "{h}: 16509 not served again: {listening}");
    }
    let (_, out) = migready(&["fix", "--dry-run", "--mesh", "none"], &inventory());
    for h in out["fix"]["hosts"].as_array().unwrap() {
        assert_eq!(h["plan"]["steps"], serde_json::json!([]), "a second fix would change {}", h["name"]);
    }
}
