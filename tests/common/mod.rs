//! Helpers shared by integration tests (each test crate uses some of them).
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The lab's state directory, as tests/lab/lab.sh computes it: MIGREADY_LAB_STATE, else
/// /var/tmp/migready-lab-ID for MIGREADY_LAB_ID 1-9, else /var/tmp/migready-lab.
pub fn lab_state() -> PathBuf {
    if let Ok(s) = std::env::var("MIGREADY_LAB_STATE") {
        return PathBuf::from(s);
    }
    match std::env::var("MIGREADY_LAB_ID") {
        Ok(id) if !id.is_empty() && id != "0" => PathBuf::from(format!("/var/tmp/migready-lab-{id}")),
        _ => PathBuf::from("/var/tmp/migready-lab"),
    }
}

/// `tests/lab/lab.sh ARGS...` (MIGREADY_LAB_ID from the environment picks the lab).
pub fn lab(args: &[&str]) -> Output {
    Command::new("tests/lab/lab.sh").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

/// A shell command on a lab host over SSH (`lab.sh ssh`); its stdout. Panics with its
/// stderr when it fails.
#[track_caller]
pub fn ssh(host: &str, cmd: &str) -> String {
    let out = lab(&["ssh", host, cmd]);
    assert!(out.status.success(), "{host}: {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A lab host's address, from the lab's state directory.
pub fn address(host: &str) -> String {
    let p = lab_state().join("hosts").join(host).join("address");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}; is the lab up?", p.display())).trim().to_string()
}

/// schema/report.schema.json, checked against its meta-schema and compiled once.
fn report_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema: Value = serde_json::from_str(include_str!("../../schema/report.schema.json")).expect("schema/report.schema.json is JSON");
        jsonschema::meta::validate(&schema).expect("schema/report.schema.json is a valid JSON Schema");
        jsonschema::draft202012::new(&schema).expect("schema/report.schema.json compiles")
    })
}

/// The ways `doc` breaks schema/report.schema.json (empty: it is valid).
pub fn schema_errors(doc: &Value) -> Vec<String> {
    report_schema().iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// Asserts that `doc`, a command's `--format json` output, is valid against
/// schema/report.schema.json; returns it.
#[track_caller]
pub fn assert_schema(doc: &Value) -> &Value {
    let errors = schema_errors(doc);
    assert!(errors.is_empty(), "the JSON breaks schema/report.schema.json:\n  {}\n{doc:#}", errors.join("\n  "));
    doc
}

/// A command's `--format json` stdout parsed, and checked against the schema when it
/// is JSON; Null when it is not (a usage error prints no document).
#[track_caller]
pub fn report_or_null(stdout: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(stdout) {
        Ok(v) => {
            assert_schema(&v);
            v
        }
        Err(_) => Value::Null,
    }
}

/// Whether a test that needs real system parts may run. `missing` is why not (None: all
/// there). Without them the test is skipped loudly, or fails when
/// `MIGREADY_REQUIRE_SSHD` is set (tests/run.sh sets it, so CI never skips).
pub fn may_run(what: &str, missing: Option<String>) -> bool {
    let Some(reason) = missing else {
        return true;
    };
    if std::env::var_os("MIGREADY_REQUIRE_SSHD").is_some() {
        panic!("MIGREADY_REQUIRE_SSHD is set but {reason}");
    }
    eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!!! SKIPPED {what}: {reason}");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
    false
}

/// The lab's hosts without a firewall (cmp1, cmp5 in tests/run.sh's lab) end open to any
/// address once fix sets auth_tcp = "none": `libvirt.exposure` fails there, and so fix's
/// and doctor's exit status is 1 (issue 12). Asserts that in fix's human output every
/// failing line after "before -> after" is that check, on exactly `hosts`.
#[track_caller]
pub fn only_exposure_fails(out: &str, hosts: &[&str]) {
    let after = out.split("\nbefore -> after\n").nth(1).unwrap_or_else(|| panic!("no before -> after in: {out}"));
    let failing: Vec<&str> = after.lines().filter(|l| l.contains(" -> fail ")).collect();
    let mut named: Vec<&str> = failing
        .iter()
        .map(|l| {
            assert!(l.contains("libvirt.exposure") && l.contains("open to any address"), "a failure besides the exposure: {l}\n{out}");
            l.split_whitespace().next().unwrap()
        })
        .collect();
    named.sort();
    let mut want = hosts.to_vec();
    want.sort();
    assert_eq!(named, want, "{out}");
}

/// The same over a JSON report: the failing checks are `libvirt.exposure` on `hosts` only.
#[track_caller]
pub fn only_exposure_fails_json(r: &serde_json::Value, hosts: &[&str]) {
    let mut fails: Vec<String> = Vec::new();
    for h in r["hosts"].as_array().unwrap() {
        for c in h["checks"].as_array().unwrap().iter().filter(|c| c["status"] == "fail") {
            fails.push(format!("{} {}", h["name"].as_str().unwrap(), c["id"].as_str().unwrap()));
        }
    }
    for p in r["pairs"].as_array().into_iter().flatten() {
        for c in p["checks"].as_array().unwrap().iter().filter(|c| c["status"] == "fail") {
            fails.push(format!("{} -> {} {}", p["from"], p["to"], c["id"]));
        }
    }
    fails.sort();
    let mut want: Vec<String> = hosts.iter().map(|h| format!("{h} libvirt.exposure")).collect();
    want.sort();
    assert_eq!(fails, want, "{r}");
}

/// The check `id` of `host` in a command's JSON document; panics naming what is missing.
pub fn host_check<'a>(r: &'a Value, host: &str, id: &str) -> &'a Value {
    let h = r["hosts"].as_array().unwrap().iter().find(|h| h["name"] == host).unwrap_or_else(|| panic!("no host {host}: {r}"));
    h["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("{host}: no {id}: {h}"))
}

/// The check `id` of the pair `from` -> `to` in a command's JSON document.
pub fn pair_check<'a>(r: &'a Value, from: &str, to: &str, id: &str) -> &'a Value {
    let p = r["pairs"].as_array().unwrap().iter().find(|p| p["from"] == from && p["to"] == to).unwrap_or_else(|| panic!("no pair {from} -> {to}: {r}"));
    p["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("{from} -> {to}: no {id}: {p}"))
}

/// `migready ca init --dir DIR/ca`: the CA the TLS tests issue certificates from; DIR/ca.
#[track_caller]
pub fn ca_init(dir: &Path) -> PathBuf {
    let ca = dir.join("ca");
    let out = Command::new(env!("CARGO_BIN_EXE_migready")).args(["ca", "init", "--dir", ca.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "migready ca init: {}", String::from_utf8_lossy(&out.stderr));
    ca
}

/// What an inventory ends with to make every host's transport tls, with the CA in `ca`.
pub fn tls_policy(ca: &Path) -> String {
    format!("\n[policy]\ntransport = \"tls\"\n\n[tls]\nca_dir = \"{}\"\n", ca.display())
}
