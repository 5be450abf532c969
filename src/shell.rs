//! Building remote shell commands: every word from an inventory or a host that reaches
//! a remote shell goes through [`quote`].

/// Quote a word for a POSIX shell: safe words stay bare, anything else is put in
/// single quotes (a `'` inside becomes `'\''`).
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A command line from its words, each quoted.
pub fn join(argv: &[impl AsRef<str>]) -> String {
    argv.iter().map(|a| quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}
