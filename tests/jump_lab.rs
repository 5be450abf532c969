//! Real-host tests of jump hosts (ProxyJump): `migready doctor` reaches a lab host
//! that accepts SSH only from the lab's jump host, through that jump host, with
//! `proxy_jump` in the inventory and with ProxyJump from an ssh_config file (Host
//! patterns); straight SSH is refused; a jump host whose key changed fails naming
//! that hop.
//!
//! Needs the lab with a jump host (`NAME:SUITE:jump`, listed in $STATE/jump_hosts)
//! and cmp1 (a host without a firewall of its own): tests/run.sh boots it. cmp1's
//! firewall is changed for the test (SSH accepted from the jump host only, through
//! `lab.sh exec`, not SSH) and restored afterwards, also when an assertion fails.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::lab_state;

/// The host behind the jump host.
const HOST: &str = "cmp1";
/// A host reached directly in the same run.
const DIRECT: &str = "cmp2";
const RULE: &str =
    "-p tcp --dport 22 -m comment --comment migready-test-jump -j REJECT --reject-with tcp-reset";

fn state() -> PathBuf {
    lab_state()
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; is the lab up with a jump host? (tests/run.sh)",
                p.display()
            )
        })
        .trim()
        .to_string()
}

fn address(name: &str) -> String {
    read(state().join("hosts").join(name).join("address"))
}

/// (name, address) of the lab's jump host.
fn jump_host() -> (String, String) {
    let text = read(state().join("jump_hosts"));
    let line = text
        .lines()
        .next()
        .expect("a jump host in the lab (NAME:SUITE:jump)");
    let (name, addr) = line.split_once(' ').unwrap();
    (name.to_string(), addr.to_string())
}

fn lab(args: &[&str]) -> String {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lab.sh {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// While it lives, HOST accepts SSH from the jump host only.
struct OnlyViaJump;

impl OnlyViaJump {
    fn new(jump_addr: &str) -> OnlyViaJump {
        let rule = format!("iptables -I INPUT 1 ! -s {jump_addr} {RULE}");
        lab(&["exec", HOST, "sh", "-c", &rule]);
        OnlyViaJump
    }
}

impl Drop for OnlyViaJump {
    fn drop(&mut self) {
        let (_, jump_addr) = jump_host();
        let rule =
            format!("while iptables -D INPUT ! -s {jump_addr} {RULE} 2>/dev/null; do :; done");
        lab(&["exec", HOST, "sh", "-c", &rule]);
    }
}

/// `migready doctor --format json` on `inventory`; (exit code, report, stderr).
fn doctor(dir: &Path, inventory: &str) -> (i32, Value, String) {
    let inv = dir.join("inventory.toml");
    std::fs::write(&inv, inventory).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_migready"))
        .args(["doctor", "--format", "json", "-i"])
        .arg(&inv)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code().unwrap_or(-1),
        common::report_or_null(&out.stdout),
        stderr,
    )
}

fn check<'a>(report: &'a Value, host: &str, id: &str) -> &'a Value {
    let h = report["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no report: {report}"))
        .iter()
        .find(|h| h["name"] == host)
        .unwrap_or_else(|| panic!("no host {host}"));
    h["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} on {host}"))
}

#[track_caller]
fn expect(report: &Value, host: &str, id: &str, status: &str, needle: &str) {
    let c = check(report, host, id);
    assert_eq!(c["status"], status, "{host} {id}: {c}");
    assert!(
        c["message"].as_str().unwrap().contains(needle),
        "{host} {id}: message lacks {needle:?}: {c}"
    );
}

/// `[defaults]` with the lab's key and known_hosts, ssh_config off unless given.
fn defaults(known_hosts: &Path, ssh_config: Option<&Path>) -> String {
    format!(
        "[defaults]\nuser = \"root\"\nidentity_file = \"{}/id_ed25519\"\nknown_hosts = \"{}\"\nconnect_timeout = 20\nssh_config = \"{}\"\n",
        state().display(),
        known_hosts.display(),
        ssh_config
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    )
}

#[test]
#[ignore = "needs the lab with a jump host: tests/run.sh"]
fn doctor_reaches_a_host_only_through_its_jump_host() {
    let (jump, jump_addr) = jump_host();
    let (host_addr, direct_addr) = (address(HOST), address(DIRECT));
    let known = state().join("known_hosts");
    let dir = tempfile::tempdir().unwrap();
    let _only = OnlyViaJump::new(&jump_addr);

    // Straight there: refused (the firewall), while the other host is reached.
    let inv = format!(
        "{}\n[[hosts]]\nname = \"{HOST}\"\naddress = \"{host_addr}\"\n\n[[hosts]]\nname = \"{DIRECT}\"\naddress = \"{direct_addr}\"\n",
        defaults(&known, None)
    );
    let (_, r, stderr) = doctor(dir.path(), &inv);
    expect(
        &r,
        HOST,
        "ssh.connect",
        "fail",
        &format!("connection refused at {host_addr}:22"),
    );
    expect(&r, DIRECT, "ssh.connect", "pass", "verified");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // proxy_jump in the inventory: the host is audited through the jump host, the
    // mesh probe runs over the same connection.
    let inv = format!(
        "{}\n[[hosts]]\nname = \"{HOST}\"\naddress = \"{host_addr}\"\nproxy_jump = \"root@{jump_addr}\"\n\n[[hosts]]\nname = \"{DIRECT}\"\naddress = \"{direct_addr}\"\n",
        defaults(&known, None)
    );
    let (_, r, stderr) = doctor(dir.path(), &inv);
    expect(
        &r,
        HOST,
        "ssh.connect",
        "pass",
        &format!("connected to {host_addr}:22 as root, host key SHA256:"),
    );
    expect(
        &r,
        HOST,
        "ssh.connect",
        "pass",
        &format!("through jump host root@{jump_addr} ({jump_addr}:22 as root, host key SHA256:"),
    );
    expect(&r, HOST, "privilege", "pass", "root");
    expect(&r, HOST, "libvirt.mode", "pass", "socket activation");
    expect(
        &r,
        HOST,
        "net.hostname",
        "pass",
        &format!("{HOST} resolves to {host_addr}"),
    );
    let pairs = r["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "{}", r["pairs"]);
    let pair = pairs.iter().find(|p| p["from"] == HOST).unwrap();
    let resolve = pair["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "mesh.resolve")
        .unwrap();
    assert_eq!(
        resolve["status"], "pass",
        "the probe ran on {HOST} through the jump host: {resolve}; stderr: {stderr}"
    );

    // fix --dry-run goes the same way (a plan, nothing changed).
    let out = Command::new(env!("CARGO_BIN_EXE_migready"))
        .args(["fix", "--dry-run", "-i"])
        .arg(dir.path().join("inventory.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("== {HOST}:")),
        "fix --dry-run: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The jump host named under its ssh_config name: Host patterns, HostName, User,
    // the host's own HostName; the inventory names neither address.
    let ssh_config = dir.path().join("ssh_config");
    std::fs::write(
        &ssh_config,
        format!(
            "# an operator's ssh_config\nHost lab-bastion\n    HostName {jump_addr}\n    User root\n\n\
             Host {HOST}\n    HostName {host_addr}\n\nHost cmp* !{DIRECT} !lab-bastion\n    ProxyJump lab-bastion\n\n\
             Host {DIRECT}\n    HostName {direct_addr}\n\nMatch exec \"false\"\n    ProxyJump none\n"
        ),
    )
    .unwrap();
    let inv = format!(
        "{}\n[[hosts]]\nname = \"{HOST}\"\n\n[[hosts]]\nname = \"{DIRECT}\"\n",
        defaults(&known, Some(&ssh_config))
    );
    let (_, r, stderr) = doctor(dir.path(), &inv);
    expect(
        &r,
        HOST,
        "ssh.connect",
        "pass",
        &format!("connected to {host_addr}:22 as root"),
    );
    expect(
        &r,
        HOST,
        "ssh.connect",
        "pass",
        &format!("through jump host lab-bastion ({jump_addr}:22 as root, host key SHA256:"),
    );
    expect(
        &r,
        DIRECT,
        "ssh.connect",
        "pass",
        &format!("connected to {direct_addr}:22 as root, host key SHA256:"),
    );
    assert!(
        !check(&r, DIRECT, "ssh.connect")["message"]
            .as_str()
            .unwrap()
            .contains("jump host"),
        "{DIRECT} goes straight"
    );
    expect(&r, HOST, "libvirt.mode", "pass", "socket activation");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The jump host's key changed (its known_hosts line holds another host's key):
    // refused, naming that hop; the host behind it is not contacted.
    let changed = dir.path().join("known_hosts.changed");
    let other_key = std::fs::read_to_string(&known)
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{DIRECT},")) && l.contains("ssh-ed25519"))
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .expect("an ed25519 key for the direct host");
    let mut text: String = std::fs::read_to_string(&known)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(&format!("{jump},")))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!("{jump_addr} {other_key}\n"));
    std::fs::write(&changed, text).unwrap();
    let inv = format!(
        "{}\n[[hosts]]\nname = \"{HOST}\"\naddress = \"{host_addr}\"\nproxy_jump = \"root@{jump_addr}\"\n",
        defaults(&changed, None)
    );
    let (code, r, _) = doctor(dir.path(), &inv);
    assert_ne!(code, 0);
    expect(
        &r,
        HOST,
        "ssh.connect",
        "fail",
        &format!("jump host root@{jump_addr}: HOST KEY CHANGED for {jump_addr}:22"),
    );
    expect(
        &r,
        HOST,
        "ssh.connect",
        "fail",
        "possible man-in-the-middle",
    );
}

#[test]
#[ignore = "needs the lab with a jump host: tests/run.sh"]
fn a_dead_jump_host_is_named_and_bounded() {
    // An address on the lab bridge where nothing answers.
    let (_, jump_addr) = jump_host();
    let dead = format!("{}.250", jump_addr.rsplit_once('.').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let known = state().join("known_hosts");
    let inv = format!(
        "{}\n[[hosts]]\nname = \"{HOST}\"\naddress = \"{}\"\nproxy_jump = \"root@{dead}\"\nconnect_timeout = 3\n",
        defaults(&known, None),
        address(HOST)
    );
    let started = std::time::Instant::now();
    let (_, r, _) = doctor(dir.path(), &inv);
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(8),
        "took {elapsed:?}"
    );
    expect(
        &r,
        HOST,
        "ssh.connect",
        "fail",
        &format!("jump host root@{dead}: "),
    );
    expect(&r, HOST, "ssh.connect", "fail", &format!("{dead}:22"));
}
