//! Real-host tests of `migready fix` on the lab (tests/run.sh boots it, stock:
//! cmp1 bookworm socket, cmp2 trixie socket, cmp3 bookworm traditional + REJECT,
//! cmp4 trixie traditional + DROP policy, cmp5 bookworm with the seed's recipe).
//! Ignored by a plain `cargo test`; tests/run.sh runs them in order with
//! `--ignored --test-threads=1` after tests/lab.rs.

use migready::{audit, fix, inventory};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const HOSTS: [&str; 5] = ["cmp1", "cmp2", "cmp3", "cmp4", "cmp5"];

fn inventory_path() -> PathBuf {
    PathBuf::from(std::env::var("MIGREADY_LAB_STATE").unwrap_or_else(|_| "/var/tmp/migready-lab".into())).join("inventory.toml")
}

fn ssh(host: &str, cmd: &str) -> String {
    let out = Command::new("tests/lab/lab.sh").args(["ssh", host, cmd]).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    assert!(out.status.success(), "{host}: {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything fix may touch, in one string: file hashes, owners and modes, the
/// files in the config directories (backups show up), rules without counters,
/// unit enablement.
fn snapshot(host: &str) -> String {
    ssh(
        host,
        "cd /etc && for f in libvirt/libvirtd.conf default/libvirtd sysconfig/libvirtd sysconfig/iptables iptables/rules.v4 nova/nova.conf; do \
           [ -e $f ] && echo \"$(sha256sum $f) $(stat -c '%U:%G %a' $f)\"; done; \
         ls /etc/libvirt /etc/default /etc/sysconfig /etc/nova 2>/dev/null; \
         iptables-save | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//'; \
         systemctl is-enabled libvirtd.service libvirtd-tcp.socket libvirtd.socket 2>&1; systemctl is-active libvirtd-tcp.socket 2>&1; true",
    )
}

fn migready(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_migready")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

fn doctor() -> Value {
    let (_, out) = migready(&["doctor", "--format", "json", "-i", inventory_path().to_str().unwrap()]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn status<'a>(r: &'a Value, host: &str, id: &str) -> &'a str {
    let h = r["hosts"].as_array().unwrap().iter().find(|h| h["name"] == host).unwrap();
    h["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()["status"].as_str().unwrap()
}

fn libvirtd_pid(host: &str) -> String {
    ssh(host, "systemctl show -p MainPID --value libvirtd.service").trim().to_string()
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn a_concurrent_change_between_plan_and_write_is_refused() {
    let inv = inventory::load(&inventory_path(), &migready::check_ids()).unwrap();
    let gathered = audit::gather_all(&inv, 8, audit::Keep::FOR_FIX, |_| {});
    let before = audit::evaluate(&inv, &gathered, Default::default());
    let plans = fix::run::plans(&inv, &gathered, &before);
    let i = inv.hosts.iter().position(|h| h.name == "cmp1").unwrap();
    let plan = plans[i].as_ref().unwrap();
    assert!(plan.steps.iter().any(|s| matches!(s, fix::Step::Edit { path, .. } if path == "/etc/libvirt/libvirtd.conf")));
    // Someone edits the file after the plan was made.
    ssh("cmp1", "echo '# edited by someone else' >> /etc/libvirt/libvirtd.conf");
    let after_edit = snapshot("cmp1");
    let mut session = migready::transport::Session::connect(&audit::target(&inv.hosts[i])).unwrap();
    let log = fix::apply::apply(&mut session, plan, &gathered[i].result.as_ref().unwrap().0);
    let why = log.rolled_back.expect("the write must be refused");
    assert!(why.contains("refused to write /etc/libvirt/libvirtd.conf") && why.contains("changed since read"), "{why}");
    assert!(log.done.is_empty(), "{:?}", log.done);
    assert_eq!(snapshot("cmp1"), after_edit, "nothing may be written");
    ssh("cmp1", "sed -i '$d' /etc/libvirt/libvirtd.conf");
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn b_fix_end_to_end() {
    let inv = inventory_path();
    let inv = inv.to_str().unwrap();

    // Cloned hosts: cmp1 and cmp2 carry the same libvirt host UUID (set in libvirtd.conf,
    // as a cloned image would; without SMBIOS the lab's libvirtd draws a new one per start).
    let uuid = "4d1d0c1e-7e57-4000-8000-00000000c10e";
    for h in ["cmp1", "cmp2"] {
        ssh(h, &format!("echo 'host_uuid = \"{uuid}\"' >> /etc/libvirt/libvirtd.conf && systemctl restart libvirtd"));
    }
    let r = doctor();
    assert_eq!(status(&r, "cmp1", "libvirt.host-uuid"), "fail");

    // --dry-run shows diffs and changes nothing.
    let before: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    let (code, out) = migready(&["fix", "--dry-run", "-i", inv]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("+++ b/etc/libvirt/libvirtd.conf") && out.contains("$ systemctl enable --now libvirtd-tcp.socket"), "{out}");
    let after: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    assert_eq!(before, after, "--dry-run changed a host");

    // Without --yes and without a terminal: refused.
    let (code, out) = migready(&["fix", "-i", inv]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("refusing to change hosts without --yes"));
    assert_eq!(snapshot("cmp1"), before[0]);

    // Guests running before fix: one on a socket host (libvirtd stopped), one on a
    // traditional host (libvirtd restarted).
    let guest = "<domain type='qemu'><name>migready-test-keep</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
                 <os><type arch='x86_64'>hvm</type></os></domain>";
    let mut qemu_pids = Vec::new();
    for h in ["cmp1", "cmp3"] {
        ssh(h, &format!("echo \"{guest}\" > /tmp/keep.xml && virsh -q -c qemu:///system create /tmp/keep.xml >/dev/null"));
        qemu_pids.push(ssh(h, "pgrep -f 'guest=migready-test-keep'").trim().to_string());
    }

    // Injected failure on cmp2: libvirtd refuses to start once auth_tcp = "none".
    ssh("cmp2", "mkdir -p /etc/systemd/system/libvirtd.service.d && printf '[Service]\\nExecStartPre=/bin/sh -c \"! grep -q ^auth_tcp /etc/libvirt/libvirtd.conf\"\\n' \
                 > /etc/systemd/system/libvirtd.service.d/zz-migready-test-fail.conf && systemctl daemon-reload");
    let cmp2_before = snapshot("cmp2");
    let (code, out) = migready(&["fix", "--yes", "-i", inv]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the libvirt daemon did not come back") && out.contains("rolled back, the host is as it was"), "{out}");
    assert_eq!(snapshot("cmp2"), cmp2_before, "cmp2 must end as it began");
    ssh("cmp2", "systemctl is-active -q libvirtd.socket && virsh -q -c qemu:///system version >/dev/null");
    ssh("cmp2", "rm /etc/systemd/system/libvirtd.service.d/zz-migready-test-fail.conf && systemctl daemon-reload");

    // The other hosts were fixed: every fixable check passes (auth "none" stays a warning).
    let r = doctor();
    for h in ["cmp1", "cmp3", "cmp4", "cmp5"] {
        for id in ["libvirt.mode", "libvirt.listen", "firewall.libvirt", "firewall.migration", "nova.flags"] {
            assert_eq!(status(&r, h, id), "pass", "{h} {id}: {r}");
        }
        assert_eq!(status(&r, h, "libvirt.auth"), "warn", "{h}");
    }
    assert_eq!(status(&r, "cmp2", "libvirt.listen"), "fail");

    // Now cmp2 too.
    let (code, out) = migready(&["fix", "--yes", "-i", inv]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cmp2   libvirt.listen       fail -> pass"), "{out}");
    let r = doctor();
    for h in HOSTS {
        assert_eq!(status(&r, h, "libvirt.listen"), "pass", "{h}");
        assert_eq!(status(&r, h, "libvirt.host-uuid"), "pass", "{h}: {r}");
    }
    // The first host keeps its UUID; the clone got a fresh one, in place of its old line.
    assert_eq!(ssh("cmp1", "grep ^host_uuid /etc/libvirt/libvirtd.conf").trim(), format!("host_uuid = \"{uuid}\""));
    let cmp2_uuid = ssh("cmp2", "grep ^host_uuid /etc/libvirt/libvirtd.conf");
    assert_eq!(cmp2_uuid.lines().count(), 1, "{cmp2_uuid}");
    assert_ne!(cmp2_uuid.trim(), format!("host_uuid = \"{uuid}\""));
    // Hosts reach each other's libvirt over TCP now (the seed's own proof).
    assert_eq!(ssh("cmp1", "virsh -c qemu+tcp://cmp3/system hostname").trim(), "cmp3");
    assert_eq!(ssh("cmp3", "virsh -c qemu+tcp://cmp4/system hostname").trim(), "cmp4");

    // Guests kept running, same QEMU process.
    for (h, pid) in ["cmp1", "cmp3"].iter().zip(&qemu_pids) {
        assert_eq!(ssh(h, "virsh -q -c qemu:///system domstate migready-test-keep").trim(), "running", "{h}");
        assert_eq!(&ssh(h, "pgrep -f 'guest=migready-test-keep'").trim().to_string(), pid, "{h}");
        ssh(h, "virsh -q -c qemu:///system destroy migready-test-keep >/dev/null; rm -f /tmp/keep.xml");
    }

    // Edits touched only the lines they name, and kept owner and mode.
    let d = ssh("cmp3", "cd /etc/libvirt && diff $(ls libvirtd.conf.migready-*.bak | head -1) libvirtd.conf | grep '^[<>]' || true");
    let mut lines: Vec<&str> = d.lines().collect();
    lines.sort();
    assert_eq!(lines, ["< #auth_tcp = \"sasl\"", "< #listen_tcp = 1", "< #listen_tls = 0", "> auth_tcp = \"none\"", "> listen_tcp = 1", "> listen_tls = 0"]);
    let d = ssh("cmp3", "cd /etc/sysconfig && diff $(ls libvirtd.migready-*.bak | head -1) libvirtd | grep '^[<>]' || true");
    assert_eq!(d.lines().collect::<Vec<_>>(), ["< #LIBVIRTD_ARGS=\"--listen\"", "> LIBVIRTD_ARGS=\"--listen\""]);
    let modes = ssh("cmp3", "cd /etc/sysconfig && stat -c '%U:%G %a' iptables $(ls iptables.migready-*.bak | head -1)");
    let modes: Vec<&str> = modes.lines().collect();
    assert_eq!(modes, ["root:root 600", "root:root 600"]);

    // A second run changes nothing: no file written, no rule added, no restart.
    let before: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    let pids: Vec<String> = HOSTS.iter().map(|h| libvirtd_pid(h)).collect();
    let (code, out) = migready(&["fix", "--yes", "-i", inv]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to change"), "{out}");
    let after: Vec<String> = HOSTS.iter().map(|h| snapshot(h)).collect();
    assert_eq!(before, after);
    assert_eq!(pids, HOSTS.iter().map(|h| libvirtd_pid(h)).collect::<Vec<_>>());
}
