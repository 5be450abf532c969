//! POSIX sh quoting: the one place the crate turns words into a shell command
//! line (remote commands over SSH, `sudo -n -- sh -c ...`, variables prepended to
//! the scripts in `templates/`, commands shown in a plan).
//!
//! A word made only of `A-Z a-z 0-9 - _ . / : = , + @ %` is left bare; any other
//! word, the empty one included, is put in single quotes, a `'` inside written as
//! `'\''`. Inside single quotes sh expands nothing (`$`, backquotes, `\`, `*`,
//! `~`, newlines are all literal), so the word reaches the command as it was.
//! A NUL byte cannot be passed through a shell at all; no caller has one.

/// Characters a word may consist of and still be left unquoted.
fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c)
}

/// `s` as one POSIX sh word: bare if it is made of safe characters only,
/// else in single quotes. `""` is `''`.
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(is_safe) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str(r"'\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `argv` as one command line: each word quoted, separated by spaces. A first
/// word holding `=` is quoted even when its characters are safe, so that it is
/// run as the command and not read as a variable assignment.
pub fn join(argv: &[impl AsRef<str>]) -> String {
    let mut out = String::new();
    for (i, word) in argv.iter().enumerate() {
        let word = word.as_ref();
        if i > 0 {
            out.push(' ');
        }
        if i == 0 && word.contains('=') {
            out.push_str(&format!("'{}'", word.replace('\'', r"'\''")));
        } else {
            out.push_str(&quote(word));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// Words a host name, a path or a message could hold if nothing refused them.
    pub(crate) const HOSTILE: &[&str] = &[
        "",
        " ",
        "a b",
        "it's",
        "'",
        "''",
        "'\\''",
        "\"",
        "\"$HOME\"",
        "$HOME",
        "${HOME}",
        "$(touch /tmp/migready-shell-test-pwned)",
        "`touch /tmp/migready-shell-test-pwned`",
        "a;touch /tmp/migready-shell-test-pwned",
        "a&&b",
        "a|b",
        "a>b",
        "<a",
        "# comment",
        "!",
        "*",
        "?",
        "[a]",
        "~",
        "~root",
        "{a,b}",
        "\\",
        "\\n",
        "a\nb",
        "\n",
        "a\tb",
        "\r",
        "-n",
        "-e",
        "--",
        "-oProxyCommand=touch /tmp/migready-shell-test-pwned",
        "=x",
        "a=b",
        "%s%d",
        "ünïcödé",
        "компьютер",
        "名前",
        "🙂",
        "\u{a0}",
        "\u{7f}",
        "\u{1b}[31m",
    ];

    /// The words sh sees in `line` after `printf '%s\0'`, split at the NULs.
    fn words_of(line: &str) -> Vec<String> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}"))
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{line:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut words: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split('\0')
            .map(str::to_string)
            .collect();
        assert_eq!(words.pop().as_deref(), Some(""), "{line:?}");
        words
    }

    #[test]
    fn safe_words_stay_bare() {
        for w in [
            "libvirtd.service",
            "/etc/libvirt/qemu.conf",
            "--zone=public",
            "a,b+c@d%e:f",
            "A-Z_0-9",
        ] {
            assert_eq!(quote(w), w);
        }
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("echo 'a b'"), r"'echo '\''a b'\'''");
        assert_eq!(quote("~"), "'~'");
        assert_eq!(
            join(&[
                "iptables",
                "-I",
                "INPUT",
                "1",
                "-m",
                "comment",
                "--comment",
                "migready: x"
            ]),
            "iptables -I INPUT 1 -m comment --comment 'migready: x'"
        );
        assert_eq!(join(&["a=b", "c=d"]), "'a=b' c=d");
        assert_eq!(join(&[] as &[&str]), "");
    }

    /// Each hostile word, quoted, reaches the command as one word, unchanged,
    /// through a real `sh -c`; nothing in it runs.
    #[test]
    fn hostile_words_round_trip_through_sh() {
        let marker = std::path::Path::new("/tmp/migready-shell-test-pwned");
        for w in HOSTILE {
            assert_eq!(
                words_of(&quote(w)),
                vec![w.to_string()],
                "{w:?} quoted as {}",
                quote(w)
            );
            // As `$1` of a script too, the way the brief's check reads it.
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "set -- {}; printf %s \"$1\"; printf '|%s' \"$#\"",
                    quote(w)
                ))
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                format!("{w}|1"),
                "{w:?}"
            );
        }
        // All of them at once, as one command line.
        let line = join(&[&["printf", "%s\\0"][..], HOSTILE].concat());
        let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        let got: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split('\0')
            .collect();
        assert_eq!(&got[..got.len() - 1], HOSTILE);
        assert!(!marker.exists(), "a quoted word ran a command");
    }

    #[test]
    fn a_first_word_with_equals_is_the_command() {
        // Bare, `A=b printf ran` would set a variable and run printf.
        let out = Command::new("sh")
            .arg("-c")
            .arg(join(&["A=b", "printf", "ran"]))
            .output()
            .unwrap();
        assert!(
            out.stdout.is_empty() && !out.status.success(),
            "`A=b` must be looked up as a command"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Any text without NUL round-trips.
        #[test]
        fn any_word_round_trips(w in "[^\\x00]{0,24}") {
            proptest::prop_assert_eq!(words_of(&quote(&w)), vec![w.clone()]);
        }
    }
}
