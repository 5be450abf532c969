//! Helpers shared by integration tests.

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
