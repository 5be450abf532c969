//! Applying a plan to one host as a host-side transaction.
//!
//! The controller sends the runner (templates/txn.py) and the host's whole plan in one
//! round trip: every file with the sha256 it must still have and its new content,
//! every command with its undo, the verify step and a deadline. The runner takes the
//! host lock (the transient unit `migready-fix-RUN.service`, so a second fix is refused),
//! applies, verifies and rolls back on its own, journaling each step under
//! /var/lib/migready/txn/RUN. It runs under that unit, so it ends verified or rolled
//! back even when the SSH connection or the controller dies. The controller follows
//! the journal as it grows and waits with one deadline: a dead connection costs one
//! command timeout, not one per step.

use super::{HostPlan, Step, UnitAction};
use crate::facts::HostFacts;
use crate::transport::{Session, Target};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

const RUNNER: &str = include_str!("../../templates/txn.py");

/// Installs the runner (first input line, a JSON string) and runs its `start` with the
/// rest of the input. Small, and holds nothing secret: it is on the command line.
const BOOT: &str = "import json,os,sys\n\
s=json.loads(sys.stdin.readline())\n\
os.makedirs('/var/lib/migready',0o700,exist_ok=True)\n\
p='/var/lib/migready/txn.py'\n\
open(p+'.tmp','w').write(s)\n\
os.rename(p+'.tmp',p)\n\
sys.argv=[p]+sys.argv[1:]\n\
exec(compile(s,p,'exec'),{'__name__':'__main__','__file__':p})\n";

/// Exit status of the runner's `start` when another fix holds the host.
const LOCKED: i32 = 75;

/// What happened on one host.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyLog {
    /// The transaction's run id (its journal: /var/lib/migready/txn/RUN).
    pub run: String,
    /// One line per action taken, in order.
    pub done: Vec<String>,
    /// Backups left next to edited files.
    pub backups: Vec<String>,
    /// Set when the host was rolled back (or nothing could be started), with why.
    pub rolled_back: Option<String>,
    /// Set when the controller lost the host before the transaction's end: the host
    /// finishes it on its own; the next doctor reports how it ended.
    pub lost: Option<String>,
    /// What earlier fix runs left on this host, as this run found it.
    pub previous: Vec<String>,
}

impl ApplyLog {
    /// The host ended verified (as far as the controller saw).
    pub fn ok(&self) -> bool {
        self.rolled_back.is_none() && self.lost.is_none()
    }
}

/// How one transaction runs.
#[derive(Debug, Clone)]
pub struct TxnOptions {
    pub run: String,
    /// Who started it, for the host lock's holder message.
    pub controller: String,
    /// Pause before each step (fault tests only: `MIGREADY_TXN_STEP_DELAY_MS`).
    pub step_delay: Duration,
}

impl TxnOptions {
    pub fn new(run: &str) -> TxnOptions {
        let step_delay = std::env::var("MIGREADY_TXN_STEP_DELAY_MS").ok().and_then(|v| v.parse().ok()).map_or(Duration::ZERO, Duration::from_millis);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default();
        TxnOptions { run: run.to_string(), controller: format!("{host} pid {}", std::process::id()), step_delay }
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The bytes a file's text stands for (lossless for files that were not UTF-8).
fn file_bytes(text: &str) -> Vec<u8> {
    crate::formats::bytes::encode(text)
}

/// The undo of one command step, given the facts from before the change.
fn undo(step: &Step, before: &HostFacts) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match step {
        Step::Edit { .. } | Step::Install { .. } => Vec::new(), // files are restored from their backups
        Step::Unit { action, unit, .. } => {
            let was = before.unit(unit);
            let active = was.is_some_and(|u| u.is_active());
            let enabled = was.is_some_and(|u| u.is_enabled());
            match action {
                UnitAction::EnableNow if !enabled => vec![s(&["systemctl", "disable", "--now", unit])],
                UnitAction::EnableNow if !active => vec![s(&["systemctl", "stop", unit])],
                UnitAction::DisableNow if enabled && active => vec![s(&["systemctl", "enable", "--now", unit])],
                UnitAction::DisableNow if enabled => vec![s(&["systemctl", "enable", unit])],
                UnitAction::DisableNow if active => vec![s(&["systemctl", "start", unit])],
                UnitAction::Stop if active => vec![s(&["systemctl", "start", unit])],
                UnitAction::Restart | UnitAction::TryRestart if active => vec![s(&["systemctl", "restart", unit])],
                UnitAction::Restart if !active => vec![s(&["systemctl", "stop", unit])],
                _ => Vec::new(),
            }
        }
        Step::FirewallInsert { ipv6, chain, args, .. } => {
            let mut v = vec![if *ipv6 { "ip6tables" } else { "iptables" }.to_string(), "-D".into(), chain.clone()];
            v.extend(args.iter().cloned());
            vec![v]
        }
        Step::FirewalldRich { zone, permanent, rules, .. } => vec![super::firewall_cmd(zone, *permanent, "--remove-rich-rule", rules)],
        // The handle nft printed for the rule it added (`--echo --handle`), journaled by
        // the runner (`capture`): exactly that rule, if it is still migready's (`undo_guard`).
        Step::NftRule { family, table, chain, .. } => vec![s(&["nft", "delete", "rule", family, table, chain, "handle", CAPTURED])],
    }
}

/// Where the runner puts the value a step captured (txn.py's CAPTURED).
const CAPTURED: &str = "{captured}";

/// What the runner captures from a step's stdout (a regular expression whose first
/// group is journaled in the step's done record and replaces [`CAPTURED`] in its undo):
/// the handle of the rule `nft --echo --handle` added, on the line it prints for it.
fn capture(step: &Step) -> Option<&'static str> {
    match step {
        Step::NftRule { .. } => Some(r"# handle (\d+)\s*$"),
        _ => None,
    }
}

/// How an undo is shown where its argv would say little (a script): one line per undo
/// command, or null.
fn undo_display(step: &Step) -> Option<Vec<String>> {
    match step {
        Step::NftRule { family, table, chain, .. } => Some(vec![format!("nft delete rule {family} {table} {chain} handle {CAPTURED}")]),
        _ => None,
    }
}

/// What must still be there for the undo to run: a command and the end of a line of
/// its output. A rule whose handle is gone, or no longer carries migready's comment,
/// is not deleted: the rollback reports it.
fn undo_guard(step: &Step) -> Option<Value> {
    match step {
        Step::NftRule { family, table, chain, comment, .. } => Some(json!({
            "argv": ["nft", "-a", "list", "chain", family, table, chain],
            "line_ends": format!("comment {} # handle {CAPTURED}", crate::nftables::quote_comment(comment)),
        })),
        _ => None,
    }
}

/// Whether a step's undo restores only runtime state (running units, live firewall
/// rules), which a reboot rebuilds from the files anyway: after a reboot, or while the
/// host shuts down, the runner skips it.
fn runtime_only(step: &Step, before: &HostFacts) -> bool {
    match step {
        Step::Edit { .. } | Step::Install { .. } => false,
        // `enable --now` of a unit that was disabled: its undo disables it again.
        Step::Unit { action: UnitAction::EnableNow, unit, .. } => before.unit(unit).is_some_and(|u| u.is_enabled()),
        // `disable --now` of an enabled unit: its undo enables it again.
        Step::Unit { action: UnitAction::DisableNow, unit, .. } => !before.unit(unit).is_some_and(|u| u.is_enabled()),
        Step::Unit { .. } => true,
        Step::FirewallInsert { .. } => true,
        Step::FirewalldRich { permanent, .. } => !permanent,
        // A live nftables rule: the boot (or nftables.service) rebuilds the ruleset from
        // the files, which the transaction restores.
        Step::NftRule { .. } => true,
    }
}

/// The time a rollback has on the host after the runner's deadline (files first, then
/// each undo command clipped to what is left of it; one it cannot cover is not run and
/// the rollback says it is incomplete).
pub const ROLLBACK: Duration = Duration::from_secs(20);
/// What the runner may overrun its deadline plus [`ROLLBACK`] by (file writes and short
/// probes are not clipped) before systemd stops it (RuntimeMaxSec).
const OVERRUN: Duration = Duration::from_secs(10);

/// How long the runner may take to apply and verify, within the controller's
/// `command_timeout`: the rest is kept for a rollback ([`ROLLBACK`]) and the journal's
/// last lines.
pub fn budget(command_timeout: Duration) -> Duration {
    command_timeout.saturating_sub(ROLLBACK + Duration::from_secs(5)).max(Duration::from_secs(15))
}

/// The transient unit's limits for a runner with `budget`: (RuntimeMaxSec,
/// TimeoutStopSec). A runner that hangs past its deadline, its rollback and
/// [`OVERRUN`] is stopped (SIGTERM: it rolls back within TimeoutStopSec, else SIGKILL),
/// then its ExecStopPost rolls back what is left, also within TimeoutStopSec.
pub fn unit_limits(budget: Duration) -> (Duration, Duration) {
    (budget + ROLLBACK + OVERRUN, ROLLBACK + OVERRUN)
}

/// When the host is done with a transaction, counted from its start, with the
/// controller gone or not: (normally: the deadline and the rollback; at most: the unit's
/// RuntimeMaxSec, then its stop and its ExecStopPost, each TimeoutStopSec).
pub fn host_bound(budget: Duration) -> (Duration, Duration) {
    let (runtime_max, stop) = unit_limits(budget);
    (budget + ROLLBACK, runtime_max + stop * 2)
}

/// The plan as the runner reads it (one JSON document; file contents in base64).
pub fn transaction(plan: &HostPlan, before: &HostFacts, opts: &TxnOptions, budget: Duration) -> Value {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|step| match step {
            Step::Edit { path, original, new, .. } => json!({
                "op": "write",
                "path": path,
                "expect": original.as_deref().map(|o| sha256(&file_bytes(o))),
                "content": base64::engine::general_purpose::STANDARD.encode(file_bytes(new)),
                "mode": "0644",
            }),
            Step::Install { path, expect, content, mode, owner, group, .. } => json!({
                "op": "write",
                "path": path,
                "expect": expect,
                "content": base64::engine::general_purpose::STANDARD.encode(content.as_bytes()),
                "mode": format!("{mode:04o}"),
                "owner": owner,
                "group": group,
                "mkdirs": true,
            }),
            other => {
                let argv = other.command().unwrap_or_default();
                json!({
                    "op": "run",
                    "argv": argv,
                    "display": crate::shell::join(&argv),
                    "undo": undo(other, before),
                    "undo_display": undo_display(other),
                    "undo_guard": undo_guard(other),
                    "capture": capture(other),
                    "runtime": runtime_only(other, before),
                })
            }
        })
        .collect();
    // Units may be left in a failed state by an attempt that is rolled back.
    let mut units: Vec<&str> = plan.verify.iter().flat_map(|v| v.active.iter().map(String::as_str)).collect();
    units.extend(plan.steps.iter().filter_map(|s| match s {
        Step::Unit { unit, .. } => Some(unit.as_str()),
        _ => None,
    }));
    units.push("libvirtd.service");
    units.sort();
    units.dedup();
    let (runtime_max, stop) = unit_limits(budget);
    json!({
        "run": opts.run,
        "controller": opts.controller,
        "deadline_s": budget.as_secs(),
        "rollback_s": ROLLBACK.as_secs(),
        "runtime_max_s": runtime_max.as_secs(),
        "stop_timeout_s": stop.as_secs(),
        "step_delay_ms": opts.step_delay.as_millis() as u64,
        "steps": steps,
        "verify": plan.verify.as_ref().map(|v| json!({"active": v.active, "port": v.port, "closed": v.closed, "timeout_s": 20})),
        "reset_failed": units,
    })
}

/// Follows the runner's events and builds the log.
#[derive(Default)]
struct Follow {
    log: ApplyLog,
    partial: Vec<u8>,
    ended: bool,
    locked: Option<String>,
    error: Option<String>,
    died: Option<String>,
    failed: Option<String>,
    steps_done: usize,
}

impl Follow {
    fn feed(&mut self, chunk: &[u8], progress: &mut dyn FnMut(&str)) -> bool {
        self.partial.extend_from_slice(chunk);
        let mut ended_now = false;
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            let Ok(ev) = serde_json::from_slice::<Value>(&line) else { continue };
            ended_now |= self.event(&ev, progress);
        }
        ended_now
    }

    fn event(&mut self, ev: &Value, progress: &mut dyn FnMut(&str)) -> bool {
        let s = |k: &str| ev.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match s("ev").as_str() {
            "step" if s("state") == "done" => {
                self.steps_done += 1;
                let msg = s("msg");
                progress(&msg);
                self.log.done.push(msg);
                if let Some(b) = ev.get("backup").and_then(Value::as_str) {
                    self.log.backups.push(b.to_string());
                }
            }
            "step" if s("state") == "retry" => progress(&s("msg")),
            "verify" if s("state") == "done" => progress("verified"),
            "failed" => {
                self.failed = Some(s("err"));
                progress(&format!("failed: {}; rolling back", s("err")));
            }
            "undo" => {
                let what = ev.get("msg").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
                    let argv: Vec<String> = ev.get("argv").and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
                    format!("undid: {}", crate::shell::join(&argv))
                });
                progress(&what);
            }
            "previous" => {
                let run = s("run");
                let line = match s("outcome").as_str() {
                    "died" if ev.get("recovered").and_then(Value::as_bool) == Some(true) => {
                        format!("fix run {run} did not finish (its runner died); its changes were rolled back now")
                    }
                    "died" => format!("fix run {run} did not finish (its runner died); rolling its changes back was incomplete: {}", join_strs(ev.get("problems"))),
                    "verified" => format!("fix run {run} ended without its controller: applied and verified"),
                    other => format!("fix run {run} ended without its controller: {other}: {}", s("err")),
                };
                progress(&line);
                self.log.previous.push(line);
            }
            "locked" => self.locked = Some(format!("another fix holds this host: run {} started {} by {}", s("holder"), s("since"), s("controller"))),
            "error" => self.error = Some(s("err")),
            "died" => self.died = Some(s("err")),
            "end" => {
                self.ended = true;
                match s("outcome").as_str() {
                    "verified" => {}
                    "rolled-back" => self.log.rolled_back = Some(format!("{}; rolled back, the host is as it was", s("err"))),
                    _ => self.log.rolled_back = Some(format!("{}; rollback incomplete: {}", s("err"), join_strs(ev.get("problems")))),
                }
                return true;
            }
            _ => {}
        }
        false
    }
}

fn join_strs(v: Option<&Value>) -> String {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")).unwrap_or_default()
}

/// Apply `plan` on the host `target` names, as one host-side transaction. `before` are
/// the facts the plan was computed from; `progress` sees each step as the host
/// reports it.
pub fn apply(target: &Target, plan: &HostPlan, before: &HostFacts, opts: &TxnOptions, progress: &mut dyn FnMut(&str)) -> ApplyLog {
    let mut f = Follow { log: ApplyLog { run: opts.run.clone(), ..Default::default() }, ..Default::default() };
    let mut session = match Session::connect(target) {
        Ok(s) => s,
        Err(e) => {
            f.log.rolled_back = Some(format!("not applied: {e}"));
            return f.log;
        }
    };
    let txn = transaction(plan, before, opts, budget(session.command_timeout()));
    let mut input = serde_json::to_vec(&Value::String(RUNNER.to_string())).unwrap_or_default();
    input.push(b'\n');
    input.extend(serde_json::to_vec(&txn).unwrap_or_default());
    input.push(b'\n');
    let cmd = format!("python3 -c {} start", crate::shell::quote(BOOT));
    let result = session.exec_interactive(&cmd, &input, true, &mut |chunk| f.feed(chunk, progress).then(|| b"ack\n".to_vec()));
    match result {
        Ok(out) if out.status == LOCKED || f.locked.is_some() => {
            f.log.rolled_back = Some(format!("not applied: {}", f.locked.clone().unwrap_or_else(|| "another fix holds this host".into())));
        }
        Ok(_) if f.ended => {}
        Ok(out) if out.status == 127 && f.steps_done == 0 => {
            f.log.rolled_back = Some(format!(
                "not applied: fix runs its transaction with python3 on the host, and there is none ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(out) => {
            let why = f.died.clone().or(f.error.clone()).unwrap_or_else(|| {
                format!("the transaction runner exited with status {} before its end: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())
            });
            if f.steps_done == 0 && f.died.is_none() {
                f.log.rolled_back = Some(format!("not applied: {why}"));
            } else {
                f.log.rolled_back = Some(format!("{why}; rollback incomplete: the host's journal /var/lib/migready/txn/{} says what was done", opts.run));
            }
        }
        Err(e) => {
            let at = if f.steps_done == 0 { "before any step was reported".to_string() } else { format!("after {} step(s) of {}", f.steps_done, plan.steps.len()) };
            f.log.lost = Some(format!("lost the connection {at} ({e}); {}", lost_tail(&opts.run, budget(session.command_timeout()))));
        }
    }
    f.log
}

/// What a LOST message says of the host's side of transaction `run`.
fn lost_tail(run: &str, budget: Duration) -> String {
    let (normal, most) = host_bound(budget);
    format!(
        "the host finishes transaction {run} on its own: verified or rolled back within {} s of its start ({} s at most: systemd stops a runner that overruns, and it is rolled back); `migready doctor` reports how it ended",
        normal.as_secs(),
        most.as_secs()
    )
}

/// Finishes what earlier fix runs left on a host before this run plans: rolls back
/// the changes of a transaction whose runner died (that transaction would have rolled
/// them back itself), and reports, once, transactions that ended without their
/// controller. Returns one line per earlier transaction.
pub fn settle(target: &Target, run: &str) -> Result<Vec<String>, String> {
    let mut session = Session::connect(target).map_err(|e| e.to_string())?;
    let cmd = format!("test ! -e /var/lib/migready/txn.py || python3 /var/lib/migready/txn.py settle {}", crate::shell::quote(run));
    let out = session.exec(&cmd, b"", true).map_err(|e| e.to_string())?;
    let mut f = Follow::default();
    f.feed(&out.stdout, &mut |_| {});
    if let Some(l) = f.locked {
        return Err(l);
    }
    if out.status != 0 {
        return Err(format!("exit status {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(f.log.previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_build_the_log() {
        let mut f = Follow::default();
        let mut seen = Vec::new();
        let journal = concat!(
            r#"{"ev":"begin","run":"r1","steps":2}"#, "\n",
            r#"{"ev":"step","i":0,"state":"start","path":"/etc/x"}"#, "\n",
            r#"{"ev":"step","i":0,"state":"done","msg":"wrote /etc/x","backup":"/etc/x.migready-1.bak"}"#, "\n",
            r#"{"ev":"failed","err":"the libvirt daemon did not come back"}"#, "\n",
            r#"{"ev":"undo","i":0,"ok":true,"msg":"restored /etc/x"}"#, "\n",
        );
        // Fed in pieces that cut lines anywhere.
        let (a, b) = journal.split_at(37);
        assert!(!f.feed(a.as_bytes(), &mut |m| seen.push(m.to_string())));
        assert!(!f.feed(b.as_bytes(), &mut |m| seen.push(m.to_string())));
        assert!(f.feed(br#"{"ev":"end","outcome":"rolled-back","err":"the libvirt daemon did not come back"}"#.as_slice().iter().chain(b"\n").copied().collect::<Vec<_>>().as_slice(), &mut |m| seen.push(m.to_string())));
        assert_eq!(f.log.done, ["wrote /etc/x"]);
        assert_eq!(f.log.backups, ["/etc/x.migready-1.bak"]);
        assert_eq!(f.log.rolled_back.as_deref(), Some("the libvirt daemon did not come back; rolled back, the host is as it was"));
        assert_eq!(seen, ["wrote /etc/x", "failed: the libvirt daemon did not come back; rolling back", "restored /etc/x"]);
    }

    #[test]
    fn a_plan_carries_hashes_contents_and_undo() {
        let facts = HostFacts::from_raw(Default::default());
        let plan = HostPlan {
            host: "cmp1".into(),
            steps: vec![
                Step::Edit { path: "/etc/nova/nova.conf".into(), original: Some("a\n".into()), new: "transport_url = rabbit://u:secret@h\n".into(), why: vec![] },
                Step::FirewallInsert { ipv6: false, chain: "INPUT".into(), position: 5, args: vec!["-s".into(), "198.18.42.11/32".into(), "-j".into(), "ACCEPT".into()], why: String::new() },
            ],
            notes: vec![],
            verify: None,
        };
        let t = transaction(&plan, &facts, &TxnOptions { run: "r1".into(), controller: "c".into(), step_delay: Duration::ZERO }, Duration::from_secs(35));
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(t["steps"][0]["content"].as_str().unwrap()).unwrap(), b"transport_url = rabbit://u:secret@h\n");
        assert_eq!(t["steps"][1]["runtime"], true, "a live rule ends with the boot");
        assert_eq!(t["steps"][0]["expect"], sha256(b"a\n"));
        assert_eq!(t["steps"][1]["undo"][0], json!(["iptables", "-D", "INPUT", "-s", "198.18.42.11/32", "-j", "ACCEPT"]));
        assert_eq!(t["deadline_s"], 35);
    }

    /// The runner's rollback of an nft step (txn.py's `rollback`, its commands faked):
    /// the captured handle is deleted while the chain shows it with migready's comment;
    /// a handle gone or reused, or none captured, is a problem and nothing is deleted; a
    /// step the runner died in is undone by what the chain shows with its comment.
    #[test]
    fn the_runner_deletes_exactly_the_captured_handle() {
        if std::process::Command::new("python3").arg("-V").output().is_err() {
            eprintln!("no python3: skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("txn.py"), RUNNER).unwrap();
        let step = Step::NftRule {
            family: "inet".into(),
            table: "filter".into(),
            chain: "input".into(),
            before: None,
            rule: vec!["ip".into(), "saddr".into(), "198.18.42.11".into(), "tcp".into(), "dport".into(), "16509".into(), "accept".into()],
            comment: "migready: libvirt from cmp1 198.18.42.11".into(),
            why: String::new(),
        };
        let plan = HostPlan { host: "cmp6".into(), steps: vec![step], notes: vec![], verify: None };
        let t = transaction(&plan, &HostFacts::from_raw(Default::default()), &TxnOptions { run: "r".into(), controller: "c".into(), step_delay: Duration::ZERO }, Duration::from_secs(35));
        let script = r#"
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("txn", sys.argv[1])
t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t)
step = json.loads(sys.argv[2])
ours = 'table inet filter {\n\tchain input { # handle 1\n\t\tip saddr 198.18.42.11 tcp dport 16509 accept comment "migready: libvirt from cmp1 198.18.42.11" # handle 12\n\t}\n}\n'
none = 'table inet filter {\n\tchain input { # handle 1\n\t\ttcp dport 22 accept comment "ssh" # handle 9\n\t}\n}\n'
calls = []
listing = [ours]
def run(argv, timeout, out=None):
    calls.append(" ".join(argv))
    if out is not None:
        out.append(listing[0])
    return 0, ""
t.run = run
class J:
    def log(self, **r):
        pass
start = dict(ev="step", i=0, state="start", argv=step["argv"], undo=step["undo"], runtime=True,
             undo_display=step["undo_display"], undo_guard=step["undo_guard"])
# (what the journal has after the start record, what the chain lists)
cases = [("12", ours), ("1", ours), (None, ours), ("unfinished", ours), ("unfinished", none)]
for captured, listed in cases:
    del calls[:]
    listing[0] = listed
    recs = [dict(ev="begin", boot=t.boot_id()), start]
    if captured != "unfinished":
        recs.append(dict(ev="step", i=0, state="done", argv=step["argv"], captured=captured))
    problems = t.rollback(recs, J(), [], t.time.monotonic() + 60)
    print(json.dumps({"captured": captured, "problems": problems, "ran": calls}))
"#;
        let out = std::process::Command::new("python3").arg("-c").arg(script).arg(dir.path().join("txn.py")).arg(t["steps"][0].to_string()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let runs: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let list = "nft -a list chain inet filter input";
        assert_eq!(runs[0]["problems"], json!([]));
        assert_eq!(runs[0]["ran"], json!([list, "nft delete rule inet filter input handle 12"]));
        // Handle 1 is the chain's, not a rule migready added: not deleted.
        assert_eq!(runs[1]["ran"], json!([list]));
        assert_eq!(
            runs[1]["problems"][0],
            format!("nft delete rule inet filter input handle 1: not run: `{list}` shows no line ending with `comment \"migready: libvirt from cmp1 198.18.42.11\" # handle 1` (gone, or changed since); left as is")
        );
        assert_eq!(runs[2]["ran"], json!([]));
        assert!(runs[2]["problems"][0].as_str().unwrap().contains("was not captured; left as is"), "{}", runs[2]);
        // The runner died while nft ran (no done record): the rule with this step's
        // comment is found in the chain and deleted by its handle; no such rule: nothing.
        assert_eq!(runs[3]["problems"], json!([]));
        assert_eq!(runs[3]["ran"], json!([list, list, "nft delete rule inet filter input handle 12"]));
        assert_eq!(runs[4]["problems"], json!([]));
        assert_eq!(runs[4]["ran"], json!([list]));
    }

    #[test]
    fn budget_leaves_room_for_a_rollback() {
        assert_eq!(budget(Duration::from_secs(60)), Duration::from_secs(35));
        assert_eq!(budget(Duration::from_secs(20)), Duration::from_secs(15));
        // Apply, verify and the rollback fit the controller's wait when it is long enough.
        for secs in [40, 60, 120, 600] {
            let ct = Duration::from_secs(secs);
            assert!(host_bound(budget(ct)).0 + Duration::from_secs(5) <= ct, "{secs}");
        }
    }

    #[test]
    fn the_host_side_is_bounded() {
        let b = Duration::from_secs(35);
        let (runtime_max, stop) = unit_limits(b);
        // systemd stops the runner only after its own deadline and rollback, and gives a
        // stopped runner (and then ExecStopPost) the whole rollback time.
        assert_eq!(runtime_max, b + ROLLBACK + OVERRUN);
        assert!(stop > ROLLBACK);
        assert_eq!(host_bound(b), (Duration::from_secs(55), Duration::from_secs(65 + 60)));
        // The plan carries the limits to the runner and the unit.
        let facts = HostFacts::from_raw(Default::default());
        let plan = HostPlan { host: "h".into(), steps: vec![], notes: vec![], verify: None };
        let t = transaction(&plan, &facts, &TxnOptions { run: "r".into(), controller: "c".into(), step_delay: Duration::ZERO }, b);
        assert_eq!((t["deadline_s"].as_u64(), t["rollback_s"].as_u64(), t["runtime_max_s"].as_u64(), t["stop_timeout_s"].as_u64()), (Some(35), Some(20), Some(65), Some(30)));
        // The LOST message states both bounds.
        let m = lost_tail("r1", b);
        assert!(m.contains("transaction r1") && m.contains("within 55 s of its start") && m.contains("125 s at most"), "{m}");
    }
}
