//! The doctor run: reach every host in parallel (bounded), gather its facts in
//! one round trip, then run the checks over all facts at once (some checks
//! compare hosts). An unreachable host never stops the others.

use crate::checks::{self, Ctx, Finding, HostView};
use crate::facts::HostFacts;
use crate::inventory::{HostSpec, Inventory};
use crate::report::{HostReport, Report};
use crate::transport::{ExecError, Hop, Output, Session, Target};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a host has no facts.
#[derive(Debug, Clone)]
pub enum HostError {
    /// SSH did not get through: refused, timeout, host key, authentication.
    Connect(String),
    /// Connected, but commands cannot run as root.
    Privilege { connected: String, why: String },
    /// Connected (as root), but the facts script failed: it exited non-zero, its
    /// output does not parse, it did not finish. The `facts` check fails with `why`.
    Facts { connected: String, why: String },
}

/// One host's gathering.
pub struct Gathered {
    pub result: Result<(HostFacts, String), HostError>,
    pub elapsed: Duration,
    /// The host's SSH session, kept open when asked (see [`Keep`]) so the next step
    /// of the run (the mesh probe) reuses it: one connection per host per run.
    pub session: Mutex<Option<Session>>,
}

/// What [`gather_all`] keeps of each reached host beyond its parsed facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// The SSH session, open, for the next step of the run (the mesh probe).
    pub sessions: bool,
    /// The configuration files' texts ([`HostFacts::drop_texts`] otherwise): fix
    /// needs them to edit; a read-only audit does not, and drops them so its memory
    /// stays about flat in the number of hosts.
    pub texts: bool,
}

impl Keep {
    /// For `fix`: texts to edit, no session (apply connects when the plan is agreed).
    pub const FOR_FIX: Keep = Keep { sessions: false, texts: true };
}

impl Gathered {
    /// The kept session, if any (taken: the caller owns it from now on).
    pub fn take_session(&self) -> Option<Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// How to reach a host: the inventory's settings (ssh_config already applied), its
/// keys (`identity_file`, else ssh_config's IdentityFile lines) and jump hosts.
/// The id of one run (`20261201T155012Z-1f3a9c2e`): UTC start time and a random
/// suffix; sorts by start time, safe in a path, a unit name and a guest name. fix names
/// its host transactions with it, validate its test guests and Nova resources.
pub fn run_id() -> String {
    let rand = std::fs::read("/proc/sys/kernel/random/uuid").map(|u| String::from_utf8_lossy(&u[..8.min(u.len())]).into_owned()).unwrap_or_else(|_| format!("{:08x}", std::process::id()));
    format!("{}-{rand}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))
}

pub fn target(spec: &HostSpec) -> Target {
    Target {
        name: spec.name.clone(),
        address: spec.address.clone(),
        port: spec.port,
        user: spec.user.clone(),
        identity_files: match &spec.identity_file {
            Some(path) => vec![path.clone()],
            None => spec.ssh.identity_files.clone(),
        },
        known_hosts: spec.known_hosts.clone(),
        accept_new_host_keys: spec.accept_new_host_keys,
        connect_timeout: spec.connect_timeout,
        command_timeout: spec.command_timeout,
        jumps: spec
            .ssh
            .jumps
            .iter()
            .map(|j| Hop {
                name: j.name.clone(),
                address: j.address.clone(),
                port: j.port,
                user: j.user.clone(),
                identity_files: j.identity_files.clone(),
                known_hosts: j.known_hosts.clone(),
                accept_new_host_keys: j.accept_new_host_keys,
            })
            .collect(),
    }
}

/// ` through jump host NAME (ENDPOINT, host key SHA256:... verified)`, one per hop,
/// for the `ssh.connect` message; empty for a direct connection.
pub fn through(session: &Session) -> String {
    session
        .jumps()
        .iter()
        .map(|j| {
            let key = if j.host_key_added {
                format!("new host key {} added to {}", j.fingerprint, j.known_hosts.display())
            } else {
                format!("host key {} verified", j.fingerprint)
            };
            format!(" through jump host {} ({} as {}, {key})", j.name, j.endpoint, j.user)
        })
        .collect()
}

/// Connect to one host and gather its facts. Returns the facts and the
/// message for `ssh.connect`.
pub fn gather(spec: &HostSpec) -> Result<(HostFacts, String), HostError> {
    gather_session(spec).map(|(facts, connected, _)| (facts, connected))
}

/// [`gather`], also returning the open session.
pub fn gather_session(spec: &HostSpec) -> Result<(HostFacts, String, Session), HostError> {
    let mut session = Session::connect(&target(spec)).map_err(|e| HostError::Connect(e.to_string()))?;
    let mut connected = format!(
        "connected to {}:{} as {}, host key {} verified{}",
        spec.address,
        spec.port,
        spec.user,
        session.host_key_fingerprint(),
        through(&session)
    );
    if session.host_key_added() {
        connected = format!(
            "connected to {}:{} as {}; new host key {} added to {} (accept_new_host_keys){}",
            spec.address,
            spec.port,
            spec.user,
            session.host_key_fingerprint(),
            spec.known_hosts.display(),
            through(&session)
        );
    }
    let out = match session.run_script(crate::facts::SCRIPT) {
        Ok(out) => out,
        Err(ExecError::Sudo { message }) => return Err(HostError::Privilege { connected, why: message }),
        Err(e) => return Err(HostError::Facts { connected, why: format!("the facts script did not complete: {e}") }),
    };
    match facts_output(&out) {
        Ok(facts) => Ok((facts, connected, session)),
        Err(why) => Err(HostError::Facts { connected, why }),
    }
}

/// The facts from the facts script's run, or why there are none: it exited
/// non-zero (its records are not trusted), or its output does not parse.
pub fn facts_output(out: &Output) -> Result<HostFacts, String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    let stderr = if stderr.is_empty() { String::new() } else { format!("; stderr: {stderr}") };
    if !out.success() {
        return Err(format!("the facts script failed: exit status {}{stderr}", out.status));
    }
    HostFacts::parse_bytes(&out.stdout).map_err(|e| format!("the facts script's output does not parse: {e}{stderr}"))
}

/// Run `work` over `items` on at most `parallel` threads, results in input order.
/// `done` is called after each item (for progress).
pub fn fan_out<T: Sync, R: Send>(items: &[T], parallel: usize, work: impl Fn(&T) -> R + Sync, done: impl Fn(usize) + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1).min(items.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = work(&items[i]);
                    results.lock().unwrap()[i] = Some(r);
                    done(finished.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every item ran")).collect()
}

/// Gather every host's facts (bounded parallelism).
pub fn gather_all(inv: &Inventory, parallel: usize, keep: Keep, progress: impl Fn(usize) + Sync) -> Vec<Gathered> {
    gather_all_counted(inv, parallel, keep, |done, _failed| progress(done))
}

/// [`gather_all`], calling `progress(done, failed)` after each host: hosts finished so
/// far, and how many of them could not be reached or gathered.
pub fn gather_all_counted(inv: &Inventory, parallel: usize, keep: Keep, progress: impl Fn(usize, usize) + Sync) -> Vec<Gathered> {
    let failed = AtomicUsize::new(0);
    fan_out(
        &inv.hosts,
        parallel,
        |spec| {
            let t = Instant::now();
            let (result, session) = match gather_session(spec) {
                Ok((mut facts, connected, session)) => {
                    if !keep.texts {
                        facts.drop_texts();
                    }
                    (Ok((facts, connected)), keep.sessions.then_some(session))
                }
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    (Err(e), None)
                }
            };
            Gathered { result, elapsed: t.elapsed(), session: Mutex::new(session) }
        },
        |done| progress(done, failed.load(Ordering::Relaxed)),
    )
}

/// The reached hosts, by inventory position (None: not reached). The one place that
/// makes host views from gathered facts: audit, the mesh and validate all use it.
pub fn views<'a>(inv: &'a Inventory, gathered: &'a [Gathered]) -> Vec<Option<HostView<'a>>> {
    (0..inv.hosts.len().min(gathered.len())).map(|i| view(inv, gathered, i)).collect()
}

/// Host `i` as the checks see it, if it was reached.
pub fn view<'a>(inv: &'a Inventory, gathered: &'a [Gathered], i: usize) -> Option<HostView<'a>> {
    gathered.get(i)?.result.as_ref().ok().map(|(facts, _)| HostView { spec: &inv.hosts[i], facts })
}

/// What the checks of host `i` see: the host, every other reached host, the policy.
pub fn ctx<'a>(inv: &'a Inventory, views: &[Option<HostView<'a>>], i: usize) -> Option<Ctx<'a>> {
    let me = views[i]?;
    let peers = views.iter().enumerate().filter(|(j, _)| *j != i).filter_map(|(_, v)| *v).collect();
    let unreached = inv.hosts.iter().zip(views).filter(|(_, v)| v.is_none()).map(|(s, _)| s).collect();
    Some(Ctx { me, peers, unreached, policy: &inv.policy })
}

/// Run the checks over gathered facts: pure, no I/O.
pub fn evaluate(inv: &Inventory, gathered: &[Gathered], elapsed: Duration) -> Report {
    let views = views(inv, gathered);
    let hosts = inv
        .hosts
        .iter()
        .zip(gathered)
        .enumerate()
        .map(|(i, (spec, g))| {
            let checks: Vec<Finding> = match &g.result {
                Err(HostError::Connect(why)) => checks::unreachable(why, &inv.skip),
                Err(HostError::Privilege { connected, why }) => checks::not_privileged(connected, why, &inv.skip),
                Err(HostError::Facts { connected, why }) => checks::facts_failed(connected, why, &inv.skip),
                Ok((_, connected)) => {
                    let ctx = ctx(inv, &views, i).expect("reached");
                    let mut found = checks::run_host(&ctx, &inv.skip);
                    if let Some(f) = found.iter_mut().find(|f| f.id == checks::SSH_CONNECT && f.status == checks::Status::Pass) {
                        f.message = connected.clone();
                    }
                    found
                }
            };
            HostReport {
                name: spec.name.clone(),
                address: spec.address.clone(),
                reached: g.result.is_ok(),
                elapsed_ms: g.elapsed.as_millis() as u64,
                checks,
            }
        })
        .collect();
    Report::new(hosts, elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_are_path_safe() {
        let id = run_id();
        assert_eq!(id.len(), "20261201T155012Z-".len() + 8, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{id}");
        let t = chrono::NaiveDateTime::parse_from_str(&id[..16], "%Y%m%dT%H%M%SZ").unwrap().and_utc();
        assert!((chrono::Utc::now() - t).num_seconds().abs() <= 2, "{id}: not now");
        assert_ne!(run_id()[17..], id[17..], "the suffix is random");
    }
    use crate::checks::testutil::raw;
    use crate::checks::Status;

    fn out(status: i32, stdout: &[u8], stderr: &[u8]) -> Output {
        Output { stdout: stdout.to_vec(), stderr: stderr.to_vec(), status }
    }

    #[test]
    fn a_failed_facts_script_is_named() {
        let good = std::fs::read(format!("{}/tests/fixtures/facts/bookworm-socket.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(facts_output(&out(0, &good, b"")).is_ok());
        // Its records are not trusted when the script failed.
        assert_eq!(facts_output(&out(1, &good, b"stat: cannot stat\n")).unwrap_err(), "the facts script failed: exit status 1; stderr: stat: cannot stat");
        let e = facts_output(&out(0, b"Welcome to cmp1\n", b"")).unwrap_err();
        assert_eq!(e, "the facts script's output does not parse: facts output line 0: no facts in the output");
        let e = facts_output(&out(0, &good[..good.len() - 10], b"")).unwrap_err();
        assert!(e.starts_with("the facts script's output does not parse: facts output line "), "{e}");
    }

    #[test]
    fn a_failed_facts_script_fails_facts_not_ssh_connect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inv.toml");
        std::fs::write(&path, "[[hosts]]\nname = \"cmp1\"\naddress = \"198.18.42.11\"\n\n[[hosts]]\nname = \"cmp2\"\naddress = \"198.18.42.12\"\n").unwrap();
        let inv = crate::inventory::load(&path, &crate::check_ids()).unwrap();
        let gathered = |result| Gathered { result, elapsed: Duration::ZERO, session: Mutex::new(None) };
        let connected = "connected to 198.18.42.12:22 as root, host key SHA256:x verified".to_string();
        let why = "the facts script failed: exit status 2; stderr: sh: 1: syntax error".to_string();
        let g = vec![
            gathered(Ok((HostFacts::from_raw(raw("bookworm-socket")), "connected to 198.18.42.11:22 as root".into()))),
            gathered(Err(HostError::Facts { connected: connected.clone(), why: why.clone() })),
        ];
        let r = evaluate(&inv, &g, Duration::ZERO);
        let find = |h: usize, id: &str| r.hosts[h].checks.iter().find(|f| f.id == id).unwrap().clone();
        assert_eq!(find(0, checks::FACTS).status, Status::Pass);
        assert_eq!((find(1, checks::SSH_CONNECT).status, find(1, checks::SSH_CONNECT).message), (Status::Pass, connected));
        assert_eq!((find(1, checks::FACTS).status, find(1, checks::FACTS).message), (Status::Fail, why));
        assert_eq!(find(1, "libvirt.mode").status, Status::Skip);
        assert_eq!(find(1, "libvirt.mode").message, "not checked: the facts script failed");
        assert!(!r.hosts[1].reached && r.failed());
        // Skipping the check does not make the host audited.
        let mut inv = inv;
        inv.skip = vec![checks::FACTS.to_string()];
        let r = evaluate(&inv, &g, Duration::ZERO);
        assert_eq!(r.hosts[1].checks.iter().find(|f| f.id == checks::FACTS).unwrap().status, Status::Fail);
        assert_eq!(r.hosts[0].checks.iter().find(|f| f.id == checks::FACTS).unwrap().status, Status::Skip);
    }
}
