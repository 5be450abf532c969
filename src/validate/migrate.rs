//! The migration itself, through libvirt (the virt crate): the control node opens
//! the SOURCE host's libvirt over qemu+tcp and asks for a peer-to-peer live block
//! migration, so the source libvirtd connects to the destination itself (the
//! host-to-host path is the one tested). Nova's flags: LIVE | PEER2PEER |
//! NON_SHARED_INC | UNDEFINE_SOURCE | PERSIST_DEST. The job is polled every
//! 0.5 s (progress bar on a terminal) and aborted on timeout or Ctrl-C.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use virt::connect::Connect;
use virt::domain::MigrateParameters;
use virt::sys;

pub const FLAGS: u32 = sys::VIR_MIGRATE_LIVE
    | sys::VIR_MIGRATE_PEER2PEER
    | sys::VIR_MIGRATE_NON_SHARED_INC
    | sys::VIR_MIGRATE_UNDEFINE_SOURCE
    | sys::VIR_MIGRATE_PERSIST_DEST;

/// Set by the SIGINT/SIGTERM handler; the poll loop aborts the job.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM set [`INTERRUPTED`] instead of killing the process, so that
/// the test guest is always cleaned up.
pub fn install_signal_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(s, &action) };
    }
}

/// What the source reported while the job ran.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub polls: u32,
    pub data_processed: u64,
    pub disk_processed: u64,
    pub mem_processed: u64,
}

/// Why a migration did not complete.
#[derive(Debug)]
pub enum Failure {
    /// The control node could not open the source's libvirt.
    Connect(String),
    /// libvirt refused or the job failed; its message.
    Libvirt(String),
    /// Aborted after the timeout.
    Timeout(Duration),
    /// Aborted on Ctrl-C / SIGTERM.
    Interrupted,
}

/// Why a running migration job must be aborted now, if it must: Ctrl-C/SIGTERM,
/// or the timeout has passed. Both polling paths (libvirt API, virsh over SSH) ask.
fn abort_reason(start: std::time::Instant, timeout: Duration) -> Option<Failure> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Some(Failure::Interrupted)
    } else if start.elapsed() >= timeout {
        Some(Failure::Timeout(timeout))
    } else {
        None
    }
}

/// Whether something answers on `host:port` within `timeout` (from here).
pub fn tcp_reachable(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let addrs: Vec<_> = (host, port).to_socket_addrs().map_err(|e| e.to_string())?.collect();
    let mut last = "no address".to_string();
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Migrate domain `name` from the libvirt at `src_uri` to `dest_uri` (as the
/// source sees it). `bandwidth` in MiB/s, 0 = unlimited. `bar` shows progress.
pub fn run(src_uri: &str, dest_uri: &str, name: &str, bandwidth: u64, tls: bool, timeout: Duration, bar: Option<&indicatif::ProgressBar>) -> (Result<(), Failure>, Progress, Duration) {
    virt::error::clear_error_callback();
    let start = Instant::now();
    let mut progress = Progress::default();
    let conn = match Connect::open(Some(src_uri)) {
        Ok(c) => c,
        Err(e) => return (Err(Failure::Connect(e.message().to_string())), progress, start.elapsed()),
    };
    let result = (|| {
        let dom = conn.lookup_domain_by_name(name).map_err(|e| Failure::Libvirt(e.message().to_string()))?;
        let params = MigrateParameters { bandwidth: (bandwidth > 0).then_some(bandwidth), ..Default::default() };
        let done = AtomicBool::new(false);
        let mut aborted: Option<Failure> = None;
        let outcome = std::thread::scope(|s| {
            let worker = s.spawn(|| {
                // TLS: QEMU's migration and NBD streams in TLS (/etc/pki/qemu).
                let r = dom.migrate_to_uri3(Some(dest_uri), params, if tls { FLAGS | sys::VIR_MIGRATE_TLS } else { FLAGS });
                done.store(true, Ordering::SeqCst);
                r
            });
            let mut next = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if Instant::now() >= next {
                    next += Duration::from_millis(500);
                    // job_info, not job_stats: virt 0.5's job_stats builds a Vec from a
                    // null pointer when no job runs yet (undefined behaviour).
                    if let Ok(st) = dom.job_info() {
                        progress.polls += 1;
                        progress.data_processed = progress.data_processed.max(st.data_processed.unwrap_or(0));
                        progress.disk_processed = progress.disk_processed.max(st.disk_processed.unwrap_or(0));
                        progress.mem_processed = progress.mem_processed.max(st.mem_processed.unwrap_or(0));
                        if let Some(b) = bar
                            && let Some(total) = st.data_total.filter(|t| *t > 0)
                        {
                            b.set_length(total);
                            b.set_position(st.data_processed.unwrap_or(0).min(total));
                        }
                    }
                    if aborted.is_none() {
                        aborted = abort_reason(start, timeout);
                        if aborted.is_some() {
                            // SAFETY: `dom` outlives the call; virDomainAbortJob is thread-safe.
                            unsafe { sys::virDomainAbortJob(dom.as_ptr()) };
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            worker.join().expect("migration thread")
        });
        match (outcome, aborted) {
            // Completed before the abort took effect: it did migrate.
            (Ok(()), _) => Ok(()),
            (_, Some(why)) => Err(why),
            (Err(e), None) => Err(Failure::Libvirt(e.message().to_string())),
        }
    })();
    drop(conn);
    (result, progress, start.elapsed())
}

/// The `virsh migrate` command line [`run_over_ssh`] runs on the source host.
pub(super) fn migrate_command(name: &str, dest_uri: &str, bandwidth: u64, tls: bool) -> String {
    let mut argv: Vec<String> =
        ["virsh", "migrate", "--live", "--p2p", "--copy-storage-inc", "--undefinesource", "--persistent"].map(String::from).to_vec();
    if tls {
        argv.push("--tls".to_string());
    }
    if bandwidth > 0 {
        argv.extend(["--bandwidth".to_string(), bandwidth.to_string()]);
    }
    argv.extend([name.to_string(), dest_uri.to_string()]);
    crate::shell::join(&argv)
}

/// The same migration driven by `virsh` on the source host over SSH, for a
/// control node that cannot reach the source's libvirt port (a firewall that
/// opens it to the peer hosts only, as the checks recommend). The source's
/// libvirtd still connects to the destination itself (`--p2p`). The job is
/// polled with `virsh domjobinfo` over a second session and aborted with
/// `virsh domjobabort`.
pub fn run_over_ssh(spec: &crate::inventory::HostSpec, dest_uri: &str, name: &str, bandwidth: u64, tls: bool, timeout: Duration, bar: Option<&indicatif::ProgressBar>) -> (Result<(), Failure>, Progress, Duration) {
    use crate::transport::Session;
    let start = Instant::now();
    let mut progress = Progress::default();
    use crate::shell::join;
    let mut target = crate::audit::target(spec);
    target.command_timeout = timeout + Duration::from_secs(60);
    let (mut runner, mut poller) = match (Session::connect(&target), Session::connect(&target)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return (Err(Failure::Connect(format!("ssh to {}: {e}", spec.name))), progress, start.elapsed()),
    };
    let cmd = migrate_command(name, dest_uri, bandwidth, tls);
    let done = AtomicBool::new(false);
    let mut aborted: Option<Failure> = None;
    let out = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let r = runner.exec(&cmd, b"", true);
            done.store(true, Ordering::SeqCst);
            r
        });
        let mut next = Instant::now();
        while !done.load(Ordering::SeqCst) {
            if Instant::now() >= next {
                next += Duration::from_millis(500);
                if let Ok(o) = poller.exec(&join(&["virsh", "domjobinfo", name]), b"", true) {
                    let text = String::from_utf8_lossy(&o.stdout);
                    let v = |l: &str| super::virsh_value(&text, l).unwrap_or(0.0) as u64;
                    progress.polls += 1;
                    progress.data_processed = progress.data_processed.max(v("Data processed"));
                    progress.disk_processed = progress.disk_processed.max(v("File processed"));
                    progress.mem_processed = progress.mem_processed.max(v("Memory processed"));
                    if let Some(b) = bar
                        && v("Data total") > 0
                    {
                        b.set_length(v("Data total"));
                        b.set_position(v("Data processed").min(v("Data total")));
                    }
                }
                if aborted.is_none() {
                    aborted = abort_reason(start, timeout);
                    if aborted.is_some() {
                        let _ = poller.exec(&join(&["virsh", "domjobabort", name]), b"", true);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        worker.join().expect("migration thread")
    });
    let result = match (out, aborted) {
        (Ok(o), _) if o.success() => Ok(()),
        (_, Some(why)) => Err(why),
        (Ok(o), None) => {
            let e = String::from_utf8_lossy(&o.stderr);
            let e: Vec<&str> = e.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| l.strip_prefix("error: ").unwrap_or(l)).collect();
            Err(Failure::Libvirt(e.join("; ")))
        }
        (Err(e), None) => Err(Failure::Libvirt(format!("virsh migrate over ssh on {}: {e}", spec.name))),
    };
    (result, progress, start.elapsed())
}
