//! Reports: the results of a run as data, printed as a table for people or as
//! one JSON document for pipelines. The checks never print; they only return
//! findings, and every output format reads the same `Report`.

pub mod escape;
pub mod junit;
mod table;

use crate::checks::{Finding, Status};
use escape::for_terminal;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
pub use table::{plural, print_table, Evidence, TableOptions};

/// `--format` of doctor, fix and validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people (colour on a terminal).
    Table,
    /// One JSON document, described by schema/report.schema.json:
    /// {"command","exit_code","hosts":[...],"pairs":[...],"summary":{...},"elapsed_ms"}
    /// (fix adds "fix": plans, actions, rollbacks, before -> after).
    Json,
}

/// How doctor and validate print their report.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: Format,
    /// Evidence of every check in the table, not only of failures and warnings.
    pub verbose: bool,
    /// `--junit FILE`.
    pub junit: Option<PathBuf>,
}

/// `--junit FILE`: the report as JUnit XML (suite `migready COMMAND`); a write error is
/// said on stderr and does not change the exit code.
pub fn write_junit(report: &Report, command: &str, path: &Path) {
    if let Err(e) = std::fs::write(path, junit::write(report, &format!("migready {command}"))) {
        eprintln!("error: cannot write {}: {}", for_terminal(&path.display().to_string()), for_terminal(&e.to_string()));
    }
}

/// Prints the report of `command` as asked (and the JUnit file); the exit code:
/// [`crate::exit::FAILED`] when a check failed or a host was not reached, else OK.
pub fn emit(report: &Report, command: &str, how: &Output) -> i32 {
    let code = if report.failed() { crate::exit::FAILED } else { crate::exit::OK };
    if let Some(path) = &how.junit {
        write_junit(report, command, path);
    }
    let mut out = std::io::stdout().lock();
    let written = match how.format {
        Format::Json => writeln!(out, "{}", report.to_json_as(command, code)),
        Format::Table => {
            let opts = TableOptions {
                color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
                evidence: if how.verbose { Evidence::All } else { Evidence::Failures },
                width: None,
            };
            print_table(&mut out, report, &opts)
        }
    };
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the report: {}", for_terminal(&e.to_string()));
    }
    code
}

/// The results for one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub name: String,
    pub address: String,
    /// False when the host could not be reached or its facts not gathered.
    pub reached: bool,
    /// Time spent connecting and gathering facts, in milliseconds.
    pub elapsed_ms: u64,
    pub checks: Vec<Finding>,
}

/// How many findings of each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
}

/// The results for one ordered pair of hosts (`migready validate`, and the
/// reachability mesh in doctor): checks run on `from` against `to`.
#[derive(Debug, Clone, Serialize)]
pub struct PairReport {
    pub from: String,
    pub to: String,
    pub checks: Vec<Finding>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub hosts: Vec<HostReport>,
    /// Host-to-host results (empty when the mesh was not probed).
    pub pairs: Vec<PairReport>,
    pub summary: Summary,
    /// Wall time of the run, in milliseconds.
    pub elapsed_ms: u64,
}

impl Report {
    pub fn new(hosts: Vec<HostReport>, elapsed_ms: u64) -> Report {
        Report::with_pairs(hosts, Vec::new(), elapsed_ms)
    }

    /// A report with host-to-host results; the summary counts both.
    pub fn with_pairs(hosts: Vec<HostReport>, pairs: Vec<PairReport>, elapsed_ms: u64) -> Report {
        let mut summary = Summary::default();
        for f in hosts.iter().flat_map(|h| &h.checks).chain(pairs.iter().flat_map(|p| &p.checks)) {
            match f.status {
                Status::Pass => summary.pass += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
                Status::Skip => summary.skip += 1,
            }
        }
        Report { hosts, pairs, summary, elapsed_ms }
    }

    /// True when any check failed or any host was not reached.
    pub fn failed(&self) -> bool {
        self.summary.fail > 0 || self.hosts.iter().any(|h| !h.reached)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    /// The report of one command as the JSON document every command prints:
    /// `{"command", "exit_code", "hosts", "pairs", "summary", "elapsed_ms"}` (fix adds "fix").
    pub fn to_value(&self, command: &str, exit_code: i32) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["command"] = command.into();
        v["exit_code"] = exit_code.into();
        v
    }

    /// [`Report::to_value`] as text.
    pub fn to_json_as(&self, command: &str, exit_code: i32) -> String {
        serde_json::to_string_pretty(&self.to_value(command, exit_code)).unwrap_or_default()
    }
}

/// The ways a document breaks schema/report.schema.json (empty: valid). Tests only
/// (the integration tests have the same check in tests/common).
#[cfg(test)]
pub(crate) fn schema_errors(doc: &serde_json::Value) -> Vec<String> {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let v = SCHEMA.get_or_init(|| {
        let schema: serde_json::Value = serde_json::from_str(include_str!("../../schema/report.schema.json")).expect("the schema is JSON");
        jsonschema::meta::validate(&schema).expect("the schema is a valid JSON Schema");
        jsonschema::draft202012::new(&schema).expect("the schema compiles")
    });
    v.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &'static str, status: Status) -> Finding {
        Finding { id, status, message: format!("{id} message"), evidence: vec!["/etc/x:1: y".into()] }
    }

    fn sample() -> Report {
        Report::new(
            vec![
                HostReport {
                    name: "cmp1".into(),
                    address: "198.18.42.11".into(),
                    reached: true,
                    elapsed_ms: 340,
                    checks: vec![finding("ssh.connect", Status::Pass), finding("libvirt.listen", Status::Fail)],
                },
                HostReport {
                    name: "cmp2".into(),
                    address: "198.18.42.12".into(),
                    reached: true,
                    elapsed_ms: 310,
                    checks: vec![finding("libvirt.auth", Status::Warn), finding("nova.compute", Status::Skip)],
                },
            ],
            400,
        )
    }

    #[test]
    fn summary_counts_and_json_shape() {
        let r = sample();
        assert_eq!(r.summary, Summary { pass: 1, warn: 1, fail: 1, skip: 1 });
        assert!(r.failed());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["hosts"][0]["name"], "cmp1");
        assert_eq!(v["hosts"][0]["checks"][1]["id"], "libvirt.listen");
        assert_eq!(v["hosts"][0]["checks"][1]["status"], "fail");
        assert_eq!(v["hosts"][0]["checks"][1]["evidence"][0], "/etc/x:1: y");
        assert_eq!(v["summary"]["warn"], 1);
    }

    #[test]
    fn plain_table() {
        let mut out = Vec::new();
        print_table(&mut out, &sample(), &TableOptions { color: false, evidence: table::Evidence::Failures, width: Some(120) }).unwrap();
        insta::assert_snapshot!(String::from_utf8(out).unwrap());
    }

    #[test]
    fn host_text_is_escaped_in_the_table_not_in_json() {
        let mut r = sample();
        r.hosts[0].name = "cmp1\u{202e}".into();
        r.hosts[0].checks[1].message = "libvirtd: \x1b[31mred\x1b[0m and \u{202e}reversed\u{202c}".into();
        r.hosts[0].checks[1].evidence = vec!["stderr: \x1b]0;title\x07two\nlines".into()];
        let mut out = Vec::new();
        print_table(&mut out, &r, &TableOptions { color: false, evidence: table::Evidence::Failures, width: Some(200) }).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(r"libvirtd: \x1b[31mred\x1b[0m and \u{202e}reversed\u{202c}"), "{text}");
        assert!(text.contains(r"stderr: \x1b]0;title\x07two\nlines"), "{text}");
        assert!(text.contains(r"cmp1\u{202e}"), "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\x07') && !text.contains('\u{202e}') && !text.contains('\u{202c}'), "{text:?}");
        // JSON keeps the exact text (serde escapes what JSON needs).
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["hosts"][0]["checks"][1]["message"], "libvirtd: \x1b[31mred\x1b[0m and \u{202e}reversed\u{202c}");
        assert_eq!(v["hosts"][0]["name"], "cmp1\u{202e}");
    }

    #[test]
    fn every_commands_document_fits_the_schema() {
        for command in ["doctor", "validate"] {
            let mut r = sample();
            r.pairs.push(PairReport { from: "cmp1".into(), to: "cmp2".into(), checks: vec![finding("migration.live-block", Status::Fail)] });
            let doc = r.to_value(command, 1);
            assert_eq!(schema_errors(&doc), Vec::<String>::new(), "{command}");
        }
        // New check IDs and any number of evidence lines are fine.
        let mut doc = sample().to_value("doctor", 1);
        doc["hosts"][0]["checks"][0]["id"] = "tls.cert-expiry".into();
        doc["hosts"][0]["checks"][0]["evidence"] = serde_json::json!([]);
        doc["hosts"][0]["checks"][1]["evidence"] = serde_json::json!(["a", "b", "c"]);
        assert_eq!(schema_errors(&doc), Vec::<String>::new());
    }

    #[test]
    fn the_schema_catches_renamed_missing_and_unknown_fields() {
        let good = sample().to_value("doctor", 1);
        type Break = fn(&mut serde_json::Value);
        let broken: [(&str, Break); 11] = [
            ("status renamed", |d| {
                let c = d["hosts"][0]["checks"][0].as_object_mut().unwrap();
                let s = c.remove("status").unwrap();
                c.insert("state".into(), s);
            }),
            ("unknown status", |d| d["hosts"][0]["checks"][1]["status"] = "ok".into()),
            ("reached missing", |d| drop(d["hosts"][1].as_object_mut().unwrap().remove("reached"))),
            ("summary.skip missing", |d| drop(d["summary"].as_object_mut().unwrap().remove("skip"))),
            ("unknown command", |d| d["command"] = "audit".into()),
            ("exit code 2 has no document", |d| d["exit_code"] = 2.into()),
            ("evidence not strings", |d| d["hosts"][0]["checks"][0]["evidence"] = serde_json::json!([1])),
            ("a check ID that is no ID", |d| d["hosts"][0]["checks"][0]["id"] = "SSH connect".into()),
            ("an undocumented field", |d| d["hosts"][0]["uptime"] = 3.into()),
            ("fix without its fix object", |d| d["command"] = "fix".into()),
            ("a fix object on doctor", |d| d["fix"] = serde_json::json!({})),
        ];
        assert_eq!(schema_errors(&good), Vec::<String>::new());
        for (what, f) in broken {
            let mut doc = good.clone();
            f(&mut doc);
            assert!(!schema_errors(&doc).is_empty(), "{what}: accepted {doc:#}");
        }
    }
}
