//! The records printed by `templates/facts.sh`: one line per fact,
//! `@@MIGREADY@@ <name> <status> <stdout base64 or -> <stderr base64 or ->`.

use base64::Engine;
use std::collections::BTreeMap;

/// One fact as the host reported it: a command's output or a file's content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Exit status of the command (127 for a missing file or command).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Record {
    /// The output when the command succeeded.
    pub fn ok(&self) -> Option<&str> {
        (self.status == 0).then_some(self.stdout.as_str())
    }
}

/// All records of one host, by name. Names repeat only for dynamic facts
/// (`envfile:UNIT:PATH`, `persist:PATH`), which carry their key in the name.
#[derive(Debug, Clone, Default)]
pub struct RawFacts {
    pub records: BTreeMap<String, Record>,
}

const MARK: &str = "@@MIGREADY@@ ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("facts output line {line}: {message}")]
pub struct RawError {
    pub line: usize,
    pub message: String,
}

impl RawFacts {
    /// Parse the script's output. Lines that are not records (a login banner,
    /// a shell's noise) are ignored; a malformed record is an error.
    pub fn parse(text: &str) -> Result<RawFacts, RawError> {
        let mut records = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let Some(rest) = line.strip_prefix(MARK) else { continue };
            let err = |message: &str| RawError { line: i + 1, message: message.to_string() };
            let fields: Vec<&str> = rest.split(' ').collect();
            if fields.len() != 4 {
                return Err(err("expected 4 fields"));
            }
            let status = fields[1].parse::<i32>().map_err(|_| err("bad exit status"))?;
            let stdout = decode(fields[2]).ok_or_else(|| err("bad base64 in stdout"))?;
            let stderr = decode(fields[3]).ok_or_else(|| err("bad base64 in stderr"))?;
            records.insert(fields[0].to_string(), Record { status, stdout, stderr });
        }
        if records.is_empty() {
            return Err(RawError { line: 0, message: "no facts in the output".into() });
        }
        Ok(RawFacts { records })
    }

    pub fn get(&self, name: &str) -> Option<&Record> {
        self.records.get(name)
    }

    /// Output of a fact whose command succeeded.
    pub fn ok(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Record::ok)
    }

    /// Records whose name starts with `prefix`, with the rest of the name.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a Record)> + 'a {
        self.records
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(move |(k, v)| (&k[prefix.len()..], v))
    }
}

fn decode(field: &str) -> Option<String> {
    if field == "-" {
        return Some(String::new());
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(field).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_ignores_noise() {
        let text = "Welcome!\n@@MIGREADY@@ id 0 MAo= -\n@@MIGREADY@@ virtqemud_version 127 - bm90IGZvdW5k\n";
        let raw = RawFacts::parse(text).unwrap();
        assert_eq!(raw.ok("id"), Some("0\n"));
        let r = raw.get("virtqemud_version").unwrap();
        assert_eq!((r.status, r.stderr.as_str()), (127, "not found"));
        assert_eq!(raw.ok("virtqemud_version"), None);
    }

    #[test]
    fn prefix_lookup() {
        let text = "@@MIGREADY@@ envfile:libvirtd.service:/etc/default/libvirtd 0 - -\n@@MIGREADY@@ id 0 MAo= -\n";
        let raw = RawFacts::parse(text).unwrap();
        let names: Vec<_> = raw.with_prefix("envfile:").map(|(k, _)| k).collect();
        assert_eq!(names, vec!["libvirtd.service:/etc/default/libvirtd"]);
    }

    #[test]
    fn malformed_record_names_line() {
        let e = RawFacts::parse("x\n@@MIGREADY@@ id zero - -\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(RawFacts::parse("").is_err());
    }
}
