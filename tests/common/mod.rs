//! Helpers shared by integration tests (each test crate uses some of them).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

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
