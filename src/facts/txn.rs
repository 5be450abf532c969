//! What earlier `fix` runs did on a host: the journals of its host-side transactions
//! (/var/lib/migready/txn/RUN/journal.jsonl, written by templates/txn.py), parsed.

use serde_json::Value;

/// One fix run's transaction on this host, as its journal tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    pub run: String,
    /// When the runner began (UTC, as the host's clock said).
    pub started: Option<String>,
    /// The host's boot id when it began (another boot id now: the host rebooted).
    pub boot: Option<String>,
    /// Steps in the plan.
    pub steps: usize,
    /// What was done, in order (`wrote PATH`, `ran CMD`).
    pub done: Vec<String>,
    /// `verified`, `rolled-back` or `rollback-incomplete`; None: no end was journaled.
    pub outcome: Option<String>,
    /// Why it failed, when it did.
    pub err: Option<String>,
    pub problems: Vec<String>,
    /// Its controller saw the end.
    pub acked: bool,
    /// A later fix run reported it to its operator.
    pub reported: bool,
    /// Rolled back by a later run after its runner died.
    pub recovered: bool,
}

/// Parses the `txn_journals` fact: `@@ PATH` before each journal's lines. Lines that
/// are not JSON (one cut by a crash) are passed over.
pub fn parse(text: &str) -> Vec<Transaction> {
    let mut out: Vec<Transaction> = Vec::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("@@ ") {
            let run = path.trim_end_matches("/journal.jsonl").rsplit('/').next().unwrap_or("").to_string();
            out.push(Transaction { run, ..Default::default() });
            continue;
        }
        let (Some(t), Ok(ev)) = (out.last_mut(), serde_json::from_str::<Value>(line)) else { continue };
        let s = |k: &str| ev.get(k).and_then(Value::as_str).map(str::to_string);
        match s("ev").as_deref() {
            Some("begin") => {
                t.started = s("t");
                t.boot = s("boot");
                t.steps = ev.get("steps").and_then(Value::as_u64).unwrap_or(0) as usize;
            }
            Some("step") if s("state").as_deref() == Some("done") => t.done.extend(s("msg")),
            Some("failed") => t.err = s("err"),
            Some("recover") => t.recovered = true,
            Some("end") => {
                t.outcome = s("outcome");
                t.err = s("err").or(t.err.take());
                t.problems = ev.get("problems").and_then(Value::as_array).map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect()).unwrap_or_default();
            }
            Some("ack") => t.acked = true,
            Some("reported") => t.reported = true,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_recorded_on_a_lab_host() {
        let text = concat!(
            "@@ /var/lib/migready/txn/20261201T160000Z-aaaa/journal.jsonl\n",
            r#"{"boot": "b1", "controller": "ctl pid 1", "deadline_s": 35, "ev": "begin", "pid": 10, "run": "20261201T160000Z-aaaa", "steps": 2, "t": "2026-12-01T16:00:00Z"}"#, "\n",
            r#"{"ev": "step", "i": 0, "state": "start", "path": "/etc/libvirt/libvirtd.conf", "t": "x"}"#, "\n",
            r#"{"ev": "step", "i": 0, "state": "done", "msg": "wrote /etc/libvirt/libvirtd.conf", "t": "x"}"#, "\n",
            r#"{"ev": "end", "outcome": "verified", "msg": "applied and verified", "t": "x"}"#, "\n",
            r#"{"ev": "ack", "t": "x"}"#, "\n",
            "@@ /var/lib/migready/txn/20261201T170000Z-bbbb/journal.jsonl\n",
            r#"{"boot": "b1", "ev": "begin", "pid": 11, "run": "20261201T170000Z-bbbb", "steps": 3, "t": "2026-12-01T17:00:00Z"}"#, "\n",
            r#"{"ev": "step", "i": 0, "state": "done", "msg": "wrote /etc/sysconfig/libvirtd", "t": "x"}"#, "\n",
            r#"{"ev": "step", "i": 1, "state": "st"#, "\n",
        );
        let v = parse(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].run, "20261201T160000Z-aaaa");
        assert_eq!(v[0].outcome.as_deref(), Some("verified"));
        assert!(v[0].acked && !v[0].reported);
        assert_eq!(v[1].outcome, None, "no end: the runner died");
        assert_eq!(v[1].done, ["wrote /etc/sysconfig/libvirtd"]);
        assert_eq!((v[1].steps, v[1].boot.as_deref()), (3, Some("b1")));
    }
}
