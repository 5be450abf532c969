//! Public key authentication: ssh-agent (when `SSH_AUTH_SOCK` is set), then the
//! configured identity file or the default `~/.ssh` keys. Key material never leaves
//! libssh2 and this module; only file names appear in messages.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::LIBSSH2_ERROR_TIMEOUT;

/// Why authentication did not succeed.
pub(super) enum AuthFailure {
    /// The server did not answer within the session timeout.
    Timeout,
    /// Every method was tried and refused; one entry per attempt, for the message.
    Rejected(Vec<String>),
}

/// Authenticates `user` on the handshaken session `ssh`, with ssh-agent and then
/// `identities` (the default `~/.ssh` keys when empty).
pub(super) fn authenticate(
    ssh: &ssh2::Session,
    user: &str,
    identities: &[PathBuf],
) -> Result<(), AuthFailure> {
    let mut tried = Vec::new();

    if std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty()) {
        let (accepted, label) = try_agent(ssh, user)?;
        if accepted {
            return Ok(());
        }
        tried.push(label);
    }

    let keys = if identities.is_empty() {
        default_keys()
    } else {
        identities.to_vec()
    };
    for key in keys {
        match key_is_encrypted(&key) {
            Err(e) => {
                tried.push(format!("{} (unreadable: {e})", key.display()));
                continue;
            }
            Ok(true) => {
                tried.push(format!(
                    "{} (passphrase-protected: load it into ssh-agent with ssh-add and set SSH_AUTH_SOCK)",
                    key.display()
                ));
                continue;
            }
            Ok(false) => {}
        }
        tried.push(key.display().to_string());
        match ssh.userauth_pubkey_file(user, None, &key, None) {
            Ok(()) if ssh.authenticated() => return Ok(()),
            Err(e) if is_timeout(&e) => return Err(AuthFailure::Timeout),
            _ => {}
        }
    }
    Err(AuthFailure::Rejected(tried))
}

/// Offers every identity the agent holds. Returns whether one was accepted, and
/// the label for the `tried` list.
fn try_agent(ssh: &ssh2::Session, user: &str) -> Result<(bool, String), AuthFailure> {
    let Ok(mut agent) = ssh.agent() else {
        return Ok((false, "agent (unavailable)".into()));
    };
    if agent.connect().is_err() {
        return Ok((false, "agent (not reachable at SSH_AUTH_SOCK)".into()));
    }
    let identities: Vec<ssh2::PublicKey> = agent
        .list_identities()
        .and_then(|()| agent.identities())
        .unwrap_or_default();
    let mut accepted = false;
    for identity in &identities {
        match agent.userauth(user, identity) {
            Ok(()) if ssh.authenticated() => {
                accepted = true;
                break;
            }
            Err(e) if is_timeout(&e) => return Err(AuthFailure::Timeout),
            _ => {}
        }
    }
    let _ = agent.disconnect();
    let label = if identities.is_empty() {
        "agent (no keys)".to_string()
    } else {
        "agent".to_string()
    };
    Ok((accepted, label))
}

fn is_timeout(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT)
}

/// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`: those that exist.
fn default_keys() -> Vec<PathBuf> {
    let Some(home) = home_dir() else {
        return Vec::new();
    };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|name| home.join(".ssh").join(name))
        .filter(|path| path.is_file())
        .collect()
}

fn home_dir() -> Option<PathBuf> {
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => Some(PathBuf::from(home)),
        _ => nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.dir),
    }
}

/// Whether the private key file needs a passphrase (libssh2 is never given one).
fn key_is_encrypted(path: &Path) -> io::Result<bool> {
    let text = fs::read_to_string(path)?;
    Ok(pem_is_encrypted(&text))
}

/// Recognises encrypted OpenSSH (`openssh-key-v1` with a cipher other than
/// `none`), legacy PEM (`Proc-Type: 4,ENCRYPTED`) and PKCS#8 keys.
fn pem_is_encrypted(text: &str) -> bool {
    const OPENSSH_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    if text.contains("Proc-Type: 4,ENCRYPTED")
        || text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    {
        return true;
    }
    let Some(start) = text.find(OPENSSH_BEGIN) else {
        return false;
    };
    let body: String = text[start + OPENSSH_BEGIN.len()..]
        .lines()
        .take_while(|line| !line.starts_with("-----END"))
        .flat_map(|line| line.trim().chars())
        .collect();
    let Ok(raw) = STANDARD.decode(body) else {
        return false;
    };
    // "openssh-key-v1\0", then the cipher name as an SSH string.
    let Some(rest) = raw.strip_prefix(b"openssh-key-v1\0") else {
        return false;
    };
    let cipher_len = match rest.get(..4) {
        Some(len) => u32::from_be_bytes(len.try_into().unwrap_or_default()) as usize,
        None => return false,
    };
    rest.get(4..4 + cipher_len)
        .is_some_and(|cipher| cipher != b"none")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssh_key(cipher: &str) -> String {
        let mut raw = b"openssh-key-v1\0".to_vec();
        raw.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
        raw.extend_from_slice(cipher.as_bytes());
        raw.extend_from_slice(&[0; 40]);
        let b64 = STANDARD.encode(raw);
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            &b64[..30],
            &b64[30..]
        )
    }

    #[test]
    fn detects_encrypted_keys() {
        assert!(!pem_is_encrypted(&openssh_key("none")));
        assert!(pem_is_encrypted(&openssh_key("aes256-ctr")));
        assert!(pem_is_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        ));
        assert!(pem_is_encrypted(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ));
        assert!(!pem_is_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        ));
    }
}
