//! The records the host scripts print, in one of two framings:
//!
//! - line records (templates/mesh.sh, mesh.py; the test fixtures): one line per fact,
//!   `@@MIGREADY@@ <name> <status> <stdout base64 or -> <stderr base64 or ->`;
//! - sized records (templates/facts.sh): one header line per fact,
//!   `@@MIGREADY-SIZED@@ <name> <status> <stdout bytes> <stderr bytes>`, then the line
//!   `@@MIGREADY-DATA@@`, then every fact's stdout and stderr, raw, in header order.

use base64::Engine;
use std::collections::BTreeMap;

/// One fact as the host reported it: a command's output or a file's content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Exit status of the command (127 for a missing file or command).
    pub status: i32,
    /// The output as text: for the configuration files fix may edit (see
    /// [`is_config_file`]) decoded losslessly with [`crate::formats::bytes::decode`]
    /// (`encode(&stdout)` gives back the host's bytes, valid UTF-8 or not); for
    /// everything else decoded lossily (invalid UTF-8 becomes U+FFFD).
    pub stdout: String,
    pub stderr: String,
}

/// Whether the record `name` holds a configuration file that fix may edit:
/// libvirtd.conf, virtproxyd.conf, qemu.conf, nova.conf, nova-compute.conf, the
/// daemons' environment files (`envfile:UNIT:PATH`) and the files that persist
/// firewall rules (`persist:PATH`). Their text must map back to the exact bytes
/// read, or a write would change bytes no edit touched and the "changed since
/// read" test would always fail.
pub fn is_config_file(name: &str) -> bool {
    matches!(name, "libvirtd_conf" | "virtproxyd_conf" | "qemu_conf" | "nova_conf" | "nova_compute_conf")
        || name.starts_with("envfile:")
        || name.starts_with("persist:")
        || name.starts_with("novaconf:")
}

/// The text of record `name`'s output.
fn stdout_text(name: &str, bytes: &[u8]) -> String {
    if is_config_file(name) {
        crate::formats::bytes::decode(bytes)
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
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
const SIZED: &[u8] = b"@@MIGREADY-SIZED@@ ";
const DATA: &[u8] = b"@@MIGREADY-DATA@@\n";

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
            let stdout = base64_field(fields[2]).ok_or_else(|| err("bad base64 in stdout"))?;
            let stderr = base64_field(fields[3]).ok_or_else(|| err("bad base64 in stderr"))?;
            let stdout = stdout_text(fields[0], &stdout);
            let stderr = String::from_utf8_lossy(&stderr).into_owned();
            records.insert(fields[0].to_string(), Record { status, stdout, stderr });
        }
        if records.is_empty() {
            return Err(RawError { line: 0, message: "no facts in the output".into() });
        }
        Ok(RawFacts { records })
    }

    /// Parse a script's raw output in either framing (sized records when the
    /// output has the data marker; line records otherwise).
    pub fn parse_bytes(out: &[u8]) -> Result<RawFacts, RawError> {
        let data_at = out.windows(DATA.len()).position(|w| w == DATA).filter(|&p| p == 0 || out[p - 1] == b'\n');
        let Some(data_at) = data_at else { return RawFacts::parse(&String::from_utf8_lossy(out)) };
        let mut records = BTreeMap::new();
        let mut data = &out[data_at + DATA.len()..];
        for (i, line) in out[..data_at].split(|b| *b == b'\n').enumerate() {
            let Some(rest) = line.strip_prefix(SIZED) else { continue };
            let err = |message: String| RawError { line: i + 1, message };
            let rest = std::str::from_utf8(rest).map_err(|_| err("header is not UTF-8".into()))?;
            let fields: Vec<&str> = rest.split(' ').collect();
            let [name, status, out_len, err_len] = fields[..] else { return Err(err("expected 4 fields".into())) };
            let status = status.parse::<i32>().map_err(|_| err("bad exit status".into()))?;
            let mut take = |len: &str, what: &str| -> Result<&[u8], RawError> {
                let n = len.parse::<usize>().map_err(|_| err(format!("bad {what} size")))?;
                if n > data.len() {
                    return Err(err(format!("{name}: {what} of {n} bytes, only {} left (output cut short)", data.len())));
                }
                let (head, rest) = data.split_at(n);
                data = rest;
                Ok(head)
            };
            let stdout = stdout_text(name, take(out_len, "stdout")?);
            let stderr = String::from_utf8_lossy(take(err_len, "stderr")?).into_owned();
            records.insert(name.to_string(), Record { status, stdout, stderr });
        }
        if records.is_empty() {
            return Err(RawError { line: 0, message: "no facts in the output".into() });
        }
        // Sizes and data must agree exactly, or records would be cut at wrong places.
        if !data.is_empty() {
            return Err(RawError { line: 0, message: format!("{} bytes of data after the last record (headers and data disagree)", data.len()) });
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

fn base64_field(field: &str) -> Option<Vec<u8>> {
    if field == "-" {
        return Some(Vec::new());
    }
    base64::engine::general_purpose::STANDARD.decode(field).ok()
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

    #[test]
    fn sized_records_are_raw_bytes() {
        // Contents holding newlines, a record marker and invalid UTF-8 come back as they were.
        let mut out = b"motd noise\n@@MIGREADY-SIZED@@ a 0 13 0\n@@MIGREADY-SIZED@@ b 127 0 5\n@@MIGREADY-SIZED@@ c 0 3 0\n@@MIGREADY-DATA@@\n".to_vec();
        out.extend_from_slice(b"x\n@@MIGREADY\n");
        out.extend_from_slice(b"oops!");
        out.extend_from_slice(&[b'o', 0xff, b'k']);
        let raw = RawFacts::parse_bytes(&out).unwrap();
        assert_eq!(raw.get("a").unwrap(), &Record { status: 0, stdout: "x\n@@MIGREADY\n".into(), stderr: String::new() });
        assert_eq!(raw.get("b").unwrap(), &Record { status: 127, stdout: String::new(), stderr: "oops!".into() });
        assert_eq!(raw.ok("c"), Some("o\u{fffd}k"));
        // A configuration file's bytes map back exactly, valid UTF-8 or not.
        let mut conf = b"@@MIGREADY-SIZED@@ libvirtd_conf 0 22 0\n@@MIGREADY-SIZED@@ persist:/etc/sysconfig/iptables 0 2 0\n@@MIGREADY-DATA@@\n".to_vec();
        conf.extend_from_slice(b"# caf\xe9\nlisten_tcp = 1\n\xff\n");
        let raw = RawFacts::parse_bytes(&conf).unwrap();
        let text = raw.ok("libvirtd_conf").unwrap();
        assert_eq!(text, "# caf\u{10ffe9}\nlisten_tcp = 1\n");
        assert_eq!(crate::formats::bytes::encode(text), b"# caf\xe9\nlisten_tcp = 1\n");
        assert_eq!(crate::formats::bytes::encode(raw.ok("persist:/etc/sysconfig/iptables").unwrap()), b"\xff\n");
        // Line records too.
        let raw = RawFacts::parse("@@MIGREADY@@ qemu_conf 0 6Q== 6Q==\n@@MIGREADY@@ id 0 6Q== -\n").unwrap();
        let r = raw.get("qemu_conf").unwrap();
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("\u{10ffe9}", "\u{fffd}"));
        assert_eq!(raw.ok("id"), Some("\u{fffd}"));
        // Cut short: named, not silently shortened.
        let e = RawFacts::parse_bytes(&out[..out.len() - 2]).unwrap_err();
        assert!(e.message.contains("c: stdout of 3 bytes, only 1 left"), "{e}");
        // More data than the headers announce: refused too.
        let mut longer = out.clone();
        longer.extend_from_slice(b"zz");
        assert!(RawFacts::parse_bytes(&longer).unwrap_err().message.contains("2 bytes of data after the last record"));
        // Line records still parse through the same entry point.
        let raw = RawFacts::parse_bytes(b"@@MIGREADY@@ id 0 MAo= -\n").unwrap();
        assert_eq!(raw.ok("id"), Some("0\n"));
    }

    /// The real facts script with libvirtd.conf at a symbolic link: each gets its `link:` record.
    #[test]
    fn facts_script_reports_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let d = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("real/libvirtd.conf"), "listen_tcp = 1\n").unwrap();
        std::os::unix::fs::symlink("real/libvirtd.conf", d.join("libvirtd.conf")).unwrap();
        std::fs::write(d.join("plain.conf"), "x = 1\n").unwrap();
        let script = crate::facts::SCRIPT
            .replace("file libvirtd_conf /etc/libvirt/libvirtd.conf", &format!("file libvirtd_conf {}/libvirtd.conf", d.display()))
            .replace("file qemu_conf /etc/libvirt/qemu.conf", &format!("file qemu_conf {}/plain.conf", d.display()));
        assert_eq!(script.matches(&d.display().to_string()).count(), 2, "the script's file lines changed");
        let out = std::process::Command::new("sh").arg("-c").arg(&script).stdin(std::process::Stdio::null()).output().expect("sh");
        let raw = RawFacts::parse_bytes(&out.stdout).unwrap();
        assert_eq!(raw.ok("libvirtd_conf"), Some("listen_tcp = 1\n"));
        assert_eq!(raw.ok("link:libvirtd_conf").unwrap(), format!("{}/real/libvirtd.conf\n", d.display()));
        assert_eq!(raw.ok("qemu_conf"), Some("x = 1\n"));
        assert!(raw.get("link:qemu_conf").is_none());
    }

    /// The real facts script, run on this machine: every fact framed, files byte for byte.
    #[test]
    fn facts_script_output_parses_here() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(crate::facts::SCRIPT)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh");
        let raw = RawFacts::parse_bytes(&out.stdout).unwrap_or_else(|e| panic!("{e}; stderr: {}", String::from_utf8_lossy(&out.stderr)));
        // A non-zero exit fails the host's facts check: the real script exits 0.
        assert!(out.status.success(), "{:?}; stderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
        assert_eq!(raw.ok("etc_hosts").unwrap(), std::fs::read_to_string("/etc/hosts").unwrap());
        assert_eq!(raw.ok("os_release").unwrap(), std::fs::read_to_string("/etc/os-release").unwrap());
        assert_eq!(raw.ok("id").unwrap().trim(), std::process::Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap());
        let hostname = raw.ok("hostname").unwrap();
        assert!(!hostname.trim().is_empty());
        assert!(raw.get("nova_args_source").is_some(), "no nova_args_source record");
        if !std::path::Path::new("/etc/nova/nova.conf").exists() {
            assert!(raw.with_prefix("novaconf:").all(|(k, _)| !k.ends_with(":/etc/nova/nova.conf")));
        }
        for name in ["units", "meminfo", "nproc", "date", "ip_addr", "listen"] {
            assert!(raw.get(name).is_some(), "no {name} record");
        }
    }
}
