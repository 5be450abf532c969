//! Real-host tests of `migready validate`: the mesh and test live block
//! migrations between a Debian 12 and a Debian 13 lab host, both ways.
//! Run by tests/run.sh after tests/lab.rs, on the same lab (MIGREADY_LAB_STATE,
//! default /var/tmp/migready-lab): the first bookworm and the first trixie host
//! with the socket profile, no firewall (the trixie host may run firewalld: fix opens
//! it to the peer). Ignored by a plain `cargo test`.
//! Run them one at a time (`--test-threads=1`): they share the hosts.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{lab_state, pair_check, ssh};

fn state() -> PathBuf {
    lab_state()
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}; is the lab up? (tests/run.sh)", p.display())).trim().to_string()
}

/// (bookworm host, trixie host) of the lab: socket profile, no firewall (or firewalld on trixie).
fn hosts() -> (String, String) {
    let mut found = (None, None);
    let mut names: Vec<String> = std::fs::read_dir(state().join("hosts"))
        .unwrap_or_else(|e| panic!("no lab in {} ({e}); run tests/run.sh", state().display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        match read(state().join("hosts").join(&n).join("spec")).as_str() {
            "bookworm:socket:none" if found.0.is_none() => found.0 = Some(n),
            "trixie:socket:none" | "trixie:socket:firewalld" if found.1.is_none() => found.1 = Some(n),
            _ => {}
        }
    }
    (found.0.expect("a bookworm:socket host in the lab"), found.1.expect("a trixie:socket host in the lab"))
}

/// Make the hosts ready as an operator would: `migready fix --yes` (after
/// tests/fix_lab.rs it has nothing left to change, which is fine too).
fn fix(inv: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_migready")).args(["fix", "--yes", "-i"]).arg(inv).output().unwrap();
    assert!(out.status.success(), "migready fix: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// The lab inventory restricted to `names`, with a patient SSH connect timeout. The
/// bookworm host has no firewall: with auth_tcp = "none" it is open to any address and
/// libvirt.exposure fails (judged in tests/fix_lab.rs and tests/tls_lab.rs); not this
/// test's subject, so skipped here.
fn inventory(dir: &Path, names: &[&str]) -> PathBuf {
    let mut text = format!(
        "[defaults]\nuser = \"root\"\nidentity_file = \"{0}/id_ed25519\"\nknown_hosts = \"{0}/known_hosts\"\nconnect_timeout = 60\n\n[checks]\nskip = [\"libvirt.exposure\"]\n",
        state().display()
    );
    for n in names {
        text.push_str(&format!("\n[[hosts]]\nname = \"{n}\"\naddress = \"{}\"\n", read(state().join("hosts").join(n).join("address"))));
    }
    let p = dir.join("inventory.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn validate(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_migready")).arg("validate").args(args).args(["--format", "json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), common::report_or_null(&out.stdout), stderr)
}

#[track_caller]
fn expect(r: &Value, from: &str, to: &str, id: &str, status: &str, needle: &str) {
    let c = pair_check(r, from, to, id);
    assert_eq!(c["status"], status, "{from} -> {to} {id}: {c:#}");
    assert!(c["message"].as_str().unwrap().contains(needle), "{from} -> {to} {id}: message lacks {needle:?}: {c:#}");
}

/// No `migready-test-` domain, disk or directory on the host.
fn assert_nothing_left(host: &str) {
    let left = ssh(
        host,
        "virsh -q list --all --name | grep '^migready-test-'; ls -d /var/lib/nova/instances/migready-test-* /var/lib/nova/instances/_base/migready-test-* /tmp/migready-* 2>/dev/null; true",
    );
    assert_eq!(left.trim(), "", "{host}: left behind");
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn ring_of_both_images_migrates_and_verifies() {
    let (b, t) = hosts();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), &[&b, &t]);
    fix(&inv);
    let junit = dir.path().join("junit.xml");
    let (code, r, stderr) = validate(&["-i", inv.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    for (from, to) in [(&b, &t), (&t, &b)] {
        expect(&r, from, to, "mesh.resolve", "pass", &format!("{to} resolves to"));
        expect(&r, from, to, "mesh.qemu-tcp", "pass", &format!("answers as {to}"));
        expect(&r, from, to, "mesh.migration-ports", "pass", "TCP 49152, 49153, 49183, 49215");
        expect(&r, from, to, "migration.prechecks", "pass", "machine type pc-i440fx-7.2");
        expect(&r, from, to, "migration.live-block", "pass", &format!("running on {to}, gone from {from}, pattern 0x"));
        let m = pair_check(&r, from, to, "migration.live-block")["message"].as_str().unwrap().to_string();
        assert!(m.contains("downtime ") && m.contains(" ms,") && m.contains("MiB disk"), "{m}");
        eprintln!("{m}");
    }
    // Debian 13 -> Debian 12 works with a machine type both know.
    expect(&r, &t, &b, "migration.prechecks", "pass", "newer to older QEMU: machine type pc-i440fx-7.2, which both know");
    assert_eq!(code, 0, "validate failed: {stderr}\n{r:#}");
    assert_eq!(r["summary"]["fail"], 0);
    let x = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(x.matches("name=\"migration.live-block\"/>").count(), 2, "{x}");
    assert!(!x.contains("<failure"), "{x}");
    assert_nothing_left(&b);
    assert_nothing_left(&t);
}

/// Removes the REJECT rule again, also when the test fails.
struct Rule<'a>(&'a str, &'static str);
impl Drop for Rule<'_> {
    fn drop(&mut self) {
        ssh(self.0, &format!("iptables -D {}", self.1));
    }
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn closed_migration_range_fails_naming_the_range() {
    let (b, t) = hosts();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), &[&b, &t]);
    fix(&inv);
    const RULE: &str = "INPUT -p tcp --dport 49152:49215 -j REJECT --reject-with icmp-host-prohibited";
    ssh(&t, &format!("iptables -I {RULE}"));
    let rule = Rule(&t, RULE);
    let (code, r, _) = validate(&["-i", inv.to_str().unwrap(), "--pair", &format!("{b}:{t}")]);
    drop(rule);
    assert_eq!(code, 1);
    expect(&r, &b, &t, "mesh.migration-ports", "fail", &format!("{t}'s QEMU migration port range TCP 49152-49215 is filtered from {b}"));
    expect(&r, &t, &b, "mesh.migration-ports", "pass", "");
    expect(&r, &b, &t, "mesh.qemu-tcp", "pass", "");
    expect(&r, &b, &t, "migration.live-block", "fail", &format!("{t}'s migration port range TCP 49152-49215"));
    let live = pair_check(&r, &b, &t, "migration.live-block");
    assert!(live["evidence"].to_string().contains("blockdev-add"), "the raw libvirt error is kept as evidence: {live:#}");
    assert!(live["evidence"].to_string().contains("cleaned up"), "{live:#}");
    // Only the requested migration ran.
    assert_eq!(r["pairs"].as_array().unwrap().iter().filter(|p| p["checks"].to_string().contains("migration.live-block")).count(), 1);
    assert_nothing_left(&b);
    assert_nothing_left(&t);
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn control_node_without_libvirt_access_migrates_over_ssh() {
    let (b, t) = hosts();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), &[&b, &t]);
    fix(&inv);
    // The control node's address on the lab bridge: NET.1.
    let addr = read(state().join("hosts").join(&t).join("address"));
    let control = format!("{}.1", addr.rsplit_once('.').unwrap().0);
    let rule: &'static str = Box::leak(format!("INPUT -s {control} -p tcp --dport 16509 -j REJECT").into_boxed_str());
    ssh(&t, &format!("iptables -I {rule}"));
    let guard = Rule(&t, rule);
    let (code, r, stderr) = validate(&["-i", inv.to_str().unwrap(), "--pair", &format!("{t}:{b}"), "--mesh", "none"]);
    drop(guard);
    assert_eq!(code, 0, "{stderr}\n{r:#}");
    expect(&r, &t, &b, "migration.live-block", "pass", &format!("running on {b}, gone from {t}, pattern 0x"));
    let live = pair_check(&r, &t, &b, "migration.live-block");
    assert!(live["evidence"].to_string().contains(&format!("virsh migrate --p2p to qemu+tcp://{b}:16509/system run on {t} over ssh")), "{live:#}");
    assert_nothing_left(&b);
    assert_nothing_left(&t);
}

#[test]
#[ignore = "needs the lab: tests/run.sh"]
fn usage_errors_exit_2() {
    let (b, t) = hosts();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), &[&b, &t]);
    let (code, _, stderr) = validate(&["-i", inv.to_str().unwrap(), "--pair", &format!("{b}:nosuchhost")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no host nosuchhost"), "{stderr}");
    let (code, _, stderr) = validate(&["-i", inv.to_str().unwrap(), "--pair", &format!("{b}:{b}")]);
    assert_eq!(code, 2, "{stderr}");
}
