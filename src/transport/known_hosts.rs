//! OpenSSH `known_hosts` handling on top of libssh2's `KnownHosts`.
//!
//! libssh2's `read_file` gives up at the first line it cannot parse and cannot say
//! which line matched, so the file is read here and every entry is checked on its
//! own through a one-line `KnownHosts`. That keeps hashed host names (`|1|salt|hash`)
//! and comma-separated name lists working (libssh2 matches them), skips lines
//! libssh2 does not understand instead of failing on them, and yields the line
//! number of a changed key. Host names are looked up as OpenSSH does: `host` for
//! port 22, `[host]:port` otherwise. `@cert-authority` and `@revoked` lines are
//! ignored (host certificates are not used: certificate host key algorithms are
//! never negotiated).

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ssh2::{CheckResult, KnownHostFileKind, MethodType};

/// A parsed `known_hosts` file (empty when the file does not exist).
pub(super) struct KnownHostsFile {
    path: PathBuf,
    entries: Vec<Entry>,
    /// The file exists, is not empty and its last byte is not a newline.
    needs_newline: bool,
}

/// One host key line of the file.
struct Entry {
    /// 1-based line number.
    line: usize,
    text: String,
    /// Key type as written in the file, e.g. `ssh-ed25519`.
    key_type: String,
}

/// Outcome of checking the server's key against the file.
pub(super) enum Verdict {
    /// An entry for this host holds this key.
    Known,
    /// No entry names this host.
    Unknown,
    /// Entries name this host but none holds this key; `line` is the first entry
    /// with the same key type, or else the first entry for the host.
    Changed { line: usize },
}

impl KnownHostsFile {
    /// Reads `path`; a missing file is an empty set of entries.
    pub(super) fn load(path: &Path) -> io::Result<Self> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&bytes);
        let entries = text
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
                    return None;
                }
                let mut fields = line.split_whitespace();
                let (_hosts, key_type, _key) = (fields.next()?, fields.next()?, fields.next()?);
                Some(Entry {
                    line: i + 1,
                    text: line.to_string(),
                    key_type: key_type.to_string(),
                })
            })
            .collect();
        Ok(KnownHostsFile {
            path: path.to_path_buf(),
            entries,
            needs_newline: bytes.last().is_some_and(|&b| b != b'\n'),
        })
    }

    /// Checks `key` (the raw key blob the server sent) for `host` (see [`host_pattern`]).
    pub(super) fn verify(
        &self,
        ssh: &ssh2::Session,
        host: &str,
        key: &[u8],
    ) -> Result<Verdict, ssh2::Error> {
        let Some(key_type) = key_type_of(key) else {
            return Ok(Verdict::Unknown);
        };
        let mut same_type = None;
        let mut other_type = None;
        for entry in &self.entries {
            match check_entry(ssh, entry, host, key)? {
                CheckResult::Match => return Ok(Verdict::Known),
                CheckResult::Mismatch if entry.key_type == key_type => {
                    same_type.get_or_insert(entry.line);
                }
                CheckResult::Mismatch => {
                    other_type.get_or_insert(entry.line);
                }
                CheckResult::NotFound | CheckResult::Failure => {}
            }
        }
        Ok(match same_type.or(other_type) {
            Some(line) => Verdict::Changed { line },
            None => Verdict::Unknown,
        })
    }

    /// Key types (as written in the file) that the file holds for `host`.
    pub(super) fn key_types_for(&self, ssh: &ssh2::Session, host: &str) -> Vec<String> {
        // A key that matches nothing: every entry naming the host reports a mismatch.
        const NO_KEY: &[u8] = b"\0";
        let mut types: Vec<String> = Vec::new();
        for entry in &self.entries {
            if matches!(
                check_entry(ssh, entry, host, NO_KEY),
                Ok(CheckResult::Mismatch)
            ) && !types.contains(&entry.key_type)
            {
                types.push(entry.key_type.clone());
            }
        }
        types
    }

    /// Appends one OpenSSH line for `host` and `key` without rewriting the file.
    /// A missing file is created with mode 0600, missing directories with mode 0700.
    pub(super) fn append(&self, host: &str, key: &[u8]) -> io::Result<()> {
        let key_type = key_type_of(key).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the server's host key has no type",
            )
        })?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let mut line = String::new();
        if self.needs_newline {
            line.push('\n');
        }
        line.push_str(&format!("{host} {key_type} {}\n", STANDARD.encode(key)));
        // One write on an O_APPEND file: concurrent appends from other hosts' workers
        // do not interleave.
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        file.write_all(line.as_bytes())
    }
}

/// Checks one entry through its own libssh2 `KnownHosts`; unparsable lines are NotFound.
fn check_entry(
    ssh: &ssh2::Session,
    entry: &Entry,
    host: &str,
    key: &[u8],
) -> Result<CheckResult, ssh2::Error> {
    let mut one = ssh.known_hosts()?;
    if one
        .read_str(&entry.text, KnownHostFileKind::OpenSSH)
        .is_err()
    {
        return Ok(CheckResult::NotFound);
    }
    Ok(one.check(host, key))
}

/// The name OpenSSH files a host under: `host` on port 22, `[host]:port` otherwise.
pub(super) fn host_pattern(address: &str, port: u16) -> String {
    let address = address.to_ascii_lowercase();
    if port == 22 {
        address
    } else {
        format!("[{address}]:{port}")
    }
}

/// The key type named at the start of an SSH public key blob, e.g. `ssh-ed25519`.
pub(super) fn key_type_of(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    String::from_utf8(name.to_vec()).ok()
}

/// Restricts host key negotiation to plain (non-certificate) algorithms and puts
/// those whose key type is already known for the host first, as OpenSSH does, so a
/// host known by its ECDSA key is not reported as changed because it also has an
/// Ed25519 key that libssh2 would otherwise prefer.
pub(super) fn prefer_key_types(ssh: &ssh2::Session, known_types: &[String]) {
    let Ok(supported) = ssh.supported_algs(MethodType::HostKey) else {
        return;
    };
    let plain = supported.into_iter().filter(|alg| !alg.contains("-cert-"));
    let (known, other): (Vec<&str>, Vec<&str>) =
        plain.partition(|alg| known_types.iter().any(|t| t == algorithm_key_type(alg)));
    let prefs = [known, other].concat().join(",");
    if !prefs.is_empty() {
        // On failure libssh2 keeps its defaults, which still work.
        let _ = ssh.method_pref(MethodType::HostKey, &prefs);
    }
}

/// The key type a host key algorithm uses (RSA keys sign with several algorithms).
fn algorithm_key_type(alg: &str) -> &str {
    match alg {
        "rsa-sha2-256" | "rsa-sha2-512" => "ssh-rsa",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_pattern_follows_openssh() {
        assert_eq!(host_pattern("Compute1.Example", 22), "compute1.example");
        assert_eq!(host_pattern("198.18.42.11", 2222), "[198.18.42.11]:2222");
    }

    #[test]
    fn key_type_is_read_from_the_blob() {
        let mut blob = vec![0, 0, 0, 11];
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&[0, 0, 0, 32]);
        assert_eq!(key_type_of(&blob).as_deref(), Some("ssh-ed25519"));
        assert_eq!(key_type_of(&[0, 0, 1]), None);
        assert_eq!(key_type_of(&[0, 0, 0, 9, b'x']), None);
    }

    #[test]
    fn rsa_signature_algorithms_map_to_ssh_rsa() {
        assert_eq!(algorithm_key_type("rsa-sha2-512"), "ssh-rsa");
        assert_eq!(algorithm_key_type("ssh-ed25519"), "ssh-ed25519");
    }
}
