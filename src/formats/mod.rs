//! Format-preserving parsers for the configuration files migready reads and edits.
//!
//! Every parser here keeps the exact source text: for any input,
//! `parse(text).to_string() == text`, byte for byte (line endings, tabs, trailing
//! spaces, missing final newline, lines it does not understand). Edits rewrite only
//! the lines they must, so that `migready fix` produces minimal diffs.
//!
//! * [`libvirt_conf`]: `libvirtd.conf`, `qemu.conf`, `virtproxyd.conf` (libvirt's
//!   `virconf` syntax).
//! * [`ini`]: `nova.conf` (oslo.config INI).
//! * [`bytes`]: a lossless `bytes <-> String` mapping for files that are not
//!   valid UTF-8 (what the facts use to read configuration files).
//! * [`envfile`]: `/etc/default/libvirtd`, `/etc/sysconfig/libvirtd` (systemd
//!   `EnvironmentFile` / shell assignments).
//!
//! # Byte order mark
//!
//! A UTF-8 byte order mark (U+FEFF) at the very start of a file is not part of
//! its first line: every parser reads that line as if the mark were not there,
//! and the document keeps it, so it prints back (and new lines land after it).
//! U+FEFF anywhere else is ordinary text.
//!
//! # Commented-out defaults
//!
//! Distribution config files document defaults as commented-out assignments
//! (`#listen_tcp = 1`, `#live_migration_tunnelled = false`,
//! `#LIBVIRTD_ARGS="--listen"`). When an edit sets a key that has no active
//! assignment, it replaces such a line in place instead of appending, so the new
//! setting lands next to its documentation. A line counts as a commented-out
//! assignment of `key` when it is, from its first byte: `#`, at most one space,
//! `key` itself, optional spaces or tabs, then `=`. Indented comments and prose
//! with several spaces after `#` (as in `#       user = "qemu"   # A user named...`)
//! never match. INI files only look inside the target section. When several lines
//! match, a `#key` line (no space) wins over a `# key` line; within the same form,
//! one whose old value equals the new value wins, then the first in the file.

/// The current text of a parsed document (the source, until an edit).
pub trait Text {
    fn text(&self) -> &str;
}

/// Why an edit was refused. The document is left as it was: edits never panic,
/// whatever the file they were parsed from holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EditError {
    /// The 1-based line of the document the edit concerns, when there is one.
    pub line: Option<usize>,
    pub message: String,
}

impl EditError {
    pub fn new(line: Option<usize>, message: impl Into<String>) -> EditError {
        EditError { line, message: message.into() }
    }

    /// The error as a plan note about the file at `path`:
    /// `PATH line N: MESSAGE; not edited`.
    pub fn note(&self, path: &str) -> String {
        match self.line {
            Some(n) => format!("{path} line {n}: {}; not edited", self.message),
            None => format!("{path}: {}; not edited", self.message),
        }
    }
}

pub mod bytes;
pub mod envfile;
pub mod ini;
pub mod libvirt_conf;

/// The UTF-8 byte order mark.
pub(crate) const BOM: &str = "\u{feff}";

/// Where the content of `text` starts: after a leading byte order mark.
pub(crate) fn content_start(text: &str) -> usize {
    if text.starts_with(BOM) { BOM.len() } else { 0 }
}

/// Whether `text` has no content: empty, or only a byte order mark.
pub(crate) fn is_empty_doc(text: &str) -> bool {
    text.len() == content_start(text)
}

/// One line of a text: `start..end` is its content without the line terminator,
/// `next` is where the following line starts (after `\n` or `\r\n`, or the text
/// length for a last line without terminator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    pub start: usize,
    pub end: usize,
    pub next: usize,
}

/// Splits `text` into lines, keeping the byte positions of contents and terminators.
/// A lone `\r` is content, only `\r\n` and `\n` terminate a line. A leading byte
/// order mark is not content: the first line starts after it.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = Line> + '_ {
    let bytes = text.as_bytes();
    let mut start = content_start(text);
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        let line = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let nl = start + i;
                let end = if nl > start && bytes[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                Line {
                    start,
                    end,
                    next: nl + 1,
                }
            }
            None => Line {
                start,
                end: bytes.len(),
                next: bytes.len(),
            },
        };
        start = line.next;
        Some(line)
    })
}

/// The line terminator new lines should use: `\r\n` when the text's first line
/// ends with it, `\n` otherwise.
pub(crate) fn newline_style(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// Appends `line` (without terminator) at the end of `text` as a new line, first
/// terminating the last line if the text does not end with a newline (a final
/// lone `\r` is completed to `\r\n`).
pub(crate) fn append_line(text: &mut String, line: &str) {
    terminate_last_line(text);
    text.push_str(line);
    text.push_str(newline_style(text));
}

/// Ends a non-empty `text` with a line terminator if it lacks one (a final lone
/// `\r` is completed to `\r\n`). A text holding only a byte order mark counts
/// as empty.
pub(crate) fn terminate_last_line(text: &mut String) {
    if text.ends_with('\r') {
        text.push('\n');
    } else if !is_empty_doc(text) && !text.ends_with('\n') {
        text.push_str(newline_style(text));
    }
}

/// A commented-out assignment `#key = value` recognised by [`commented_assignment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Commented<'a> {
    /// Whether a space separates `#` from the key (`# key = ...`).
    pub spaced: bool,
    /// The text between the key and the value, e.g. `" = "` or `"="`.
    pub separator: &'a str,
    /// Everything after the separator.
    pub rest: &'a str,
}

/// Recognises `content` (a line without terminator) as a commented-out assignment
/// of `key`; see the module documentation for the rule.
pub(crate) fn commented_assignment<'a>(content: &'a str, key: &str) -> Option<Commented<'a>> {
    let after_hash = content.strip_prefix('#')?;
    let (spaced, after_space) = match after_hash.strip_prefix(' ') {
        Some(s) => (true, s),
        None => (false, after_hash),
    };
    let after_key = after_space.strip_prefix(key)?;
    let blanks = after_key.len() - after_key.trim_start_matches([' ', '\t']).len();
    if !after_key[blanks..].starts_with('=') {
        return None;
    }
    let sep_end = blanks + 1 + after_key[blanks + 1..].len()
        - after_key[blanks + 1..]
            .trim_start_matches([' ', '\t'])
            .len();
    Some(Commented {
        spaced,
        separator: &after_key[..sep_end],
        rest: &after_key[sep_end..],
    })
}

/// Picks the commented-out assignment to replace among `(line, commented, value
/// matches)` candidates, in file order: no-space form first, then a matching old
/// value, then the earliest.
pub(crate) fn best_commented<'a>(
    candidates: impl IntoIterator<Item = (Line, Commented<'a>, bool)>,
) -> Option<(Line, Commented<'a>)> {
    let mut best: Option<(Line, Commented<'a>, (bool, bool))> = None;
    for (line, c, matches) in candidates {
        let rank = (!c.spaced, matches);
        if best.as_ref().is_none_or(|b| rank > b.2) {
            best = Some((line, c, rank));
        }
    }
    best.map(|(l, c, _)| (l, c))
}

/// Rewrites the lines `first.start..last.end` of `text` as comments: `# note`
/// lines (one per line of `note`) followed by each original line prefixed with
/// `#` (leading blanks of the first line dropped). Line terminators are kept; an
/// empty note adds no note line.
pub(crate) fn comment_out_lines(text: &str, start: usize, end: usize, note: &str) -> String {
    let nl = newline_style(text);
    let mut out = String::new();
    for note_line in note.lines() {
        if note_line.is_empty() {
            out.push('#');
        } else {
            out.push_str("# ");
            out.push_str(note_line);
        }
        out.push_str(nl);
    }
    let block = &text[start..end];
    for (i, line) in block.split_inclusive('\n').enumerate() {
        out.push('#');
        out.push_str(if i == 0 {
            line.trim_start_matches([' ', '\t'])
        } else {
            line
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_positions() {
        let text = "a\r\nb\n\nc\rd";
        let got: Vec<_> = lines(text)
            .map(|l| (&text[l.start..l.end], l.next))
            .collect();
        assert_eq!(got, vec![("a", 3), ("b", 5), ("", 6), ("c\rd", 9)]);
        assert_eq!(lines("").count(), 0);
        assert_eq!(lines("\n").count(), 1);
        assert_eq!(lines("\u{feff}").count(), 0);
        let text = "\u{feff}a\n\u{feff}b";
        let got: Vec<_> = lines(text).map(|l| &text[l.start..l.end]).collect();
        assert_eq!(got, vec!["a", "\u{feff}b"]);
    }

    #[test]
    fn newline_style_follows_first_line() {
        assert_eq!(newline_style("a\r\nb\n"), "\r\n");
        assert_eq!(newline_style("a\nb\r\n"), "\n");
        assert_eq!(newline_style("a"), "\n");
    }

    #[test]
    fn append_line_terminates_last_line() {
        let mut t = String::from("a");
        append_line(&mut t, "b");
        assert_eq!(t, "a\nb\n");
        let mut t = String::from("a\r\n");
        append_line(&mut t, "b");
        assert_eq!(t, "a\r\nb\r\n");
        let mut t = String::new();
        append_line(&mut t, "b");
        assert_eq!(t, "b\n");
        let mut t = String::from("a\r");
        append_line(&mut t, "b");
        assert_eq!(t, "a\r\nb\r\n");
    }

    #[test]
    fn commented_assignment_rule() {
        let c = commented_assignment("#listen_tcp = 1", "listen_tcp").unwrap();
        assert_eq!((c.spaced, c.separator, c.rest), (false, " = ", "1"));
        let c = commented_assignment("# key=v w", "key").unwrap();
        assert_eq!((c.spaced, c.separator, c.rest), (true, "=", "v w"));
        let c = commented_assignment("#key\t=\t", "key").unwrap();
        assert_eq!((c.separator, c.rest), ("\t=\t", ""));
        assert!(commented_assignment("#  key = 1", "key").is_none());
        assert!(commented_assignment(" #key = 1", "key").is_none());
        assert!(commented_assignment("#key_other = 1", "key").is_none());
        assert!(commented_assignment("#key is = 1", "key").is_none());
        assert!(commented_assignment("key = 1", "key").is_none());
    }

    #[test]
    fn comment_out_block() {
        let text = "  a = [\n  1 ]\r\n";
        assert_eq!(
            comment_out_lines(text, 0, text.len(), "why"),
            "# why\n#a = [\n#  1 ]\r\n"
        );
        assert_eq!(comment_out_lines("x", 0, 1, "a\n\nb"), "# a\n#\n# b\n#x");
        assert_eq!(comment_out_lines("x", 0, 1, ""), "#x");
    }
}

/// Helpers shared by the format tests.
#[cfg(test)]
pub(crate) mod testutil {
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// A file as read from a host, made of `line`s: maybe a BOM first; each
    /// line ended by `\n` or `\r\n`, the last maybe by nothing; some lines with
    /// non-ASCII text or bytes that are not UTF-8 (latin-1) appended.
    pub fn file_bytes(line: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
        let tail = prop_oneof![
            6 => Just(Vec::new()),
            1 => Just(b" # caf\xe9".to_vec()),
            1 => Just(" \u{e9}t\u{e9} \u{65e5}\u{672c}".as_bytes().to_vec()),
            1 => Just(b"\xff\xfe".to_vec()),
            1 => Just(b"\t\r".to_vec()),
        ];
        let eol = prop_oneof![4 => Just("\n"), 1 => Just("\r\n")];
        (any::<bool>(), prop::collection::vec((line, tail, eol), 0..14), any::<bool>()).prop_map(|(bom, lines, last_eol)| {
            let mut out = if bom { "\u{feff}".as_bytes().to_vec() } else { Vec::new() };
            let n = lines.len();
            for (i, (line, tail, eol)) in lines.into_iter().enumerate() {
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(&tail);
                if i + 1 < n || last_eol {
                    out.extend_from_slice(eol.as_bytes());
                }
            }
            out
        })
    }

    /// The lines of `text` with their terminators: line N is element N - 1.
    pub fn split_lines(text: &str) -> Vec<&str> {
        text.split_inclusive('\n').collect()
    }

    /// Checks, by a line diff, that going from `old` to `new` removed only the
    /// lines of `old` numbered in `named` (1-based), that every line it inserted
    /// has a number in `inserted_ok` (in `new`) or passes `also_ok`, and that all
    /// other lines are byte-identical and in order. The old last line, when it
    /// had no terminator, may come back with one. A leading BOM must stay, and is
    /// not part of line 1.
    pub fn only_named_lines_changed(
        old: &str,
        new: &str,
        named: &BTreeSet<usize>,
        inserted_ok: &BTreeSet<usize>,
        also_ok: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        // A BOM is not part of the first line, and must stay first.
        let (old, new) = match (old.strip_prefix(super::BOM), new.strip_prefix(super::BOM)) {
            (Some(o), Some(n)) => (o, n),
            (None, None) => (old, new),
            _ => return Err(format!("the BOM was added or lost\nold: {old:?}\nnew: {new:?}")),
        };
        let (a, b) = (split_lines(old), split_lines(new));
        let last_open = a.last().filter(|l| !l.ends_with('\n')).copied();
        // Content equal to a named line's is as good as that line (a diff may pair
        // repeated lines either way).
        let named_text: BTreeSet<&str> = named.iter().filter_map(|n| a.get(n - 1).copied()).collect();
        let ok_text: BTreeSet<&str> = inserted_ok.iter().filter_map(|n| b.get(n - 1).copied()).collect();
        for op in similar::capture_diff_slices(similar::Algorithm::Myers, &a, &b) {
            let (_, old_range, new_range) = op.as_tag_tuple();
            for i in old_range.clone().filter(|_| op.tag() != similar::DiffTag::Equal) {
                let completed = Some(a[i]) == last_open && i + 1 == a.len();
                if !named.contains(&(i + 1)) && !named_text.contains(a[i]) && !completed {
                    return Err(format!("line {} {:?} changed; the edit names {named:?}\nold: {old:?}\nnew: {new:?}", i + 1, a[i]));
                }
            }
            for j in new_range.filter(|_| op.tag() != similar::DiffTag::Equal) {
                let completes = last_open.is_some_and(|l| {
                    [format!("{l}\n"), format!("{l}\r\n")].contains(&b[j].to_string())
                });
                if !inserted_ok.contains(&(j + 1)) && !ok_text.contains(b[j]) && !also_ok(b[j]) && !completes {
                    return Err(format!("new line {} {:?} inserted; allowed {inserted_ok:?}\nold: {old:?}\nnew: {new:?}", j + 1, b[j]));
                }
            }
        }
        Ok(())
    }

    /// 1-based numbers of the lines of `text` that `commented_assignment` takes
    /// for a commented-out assignment of `key`.
    pub fn commented_lines(text: &str, key: &str) -> BTreeSet<usize> {
        super::lines(text)
            .enumerate()
            .filter(|(_, l)| super::commented_assignment(&text[l.start..l.end], key).is_some())
            .map(|(i, _)| i + 1)
            .collect()
    }

    /// `first..=first + extra` as a set.
    pub fn span(first: usize, extra: usize) -> BTreeSet<usize> {
        (first..=first + extra).collect()
    }

    /// A real file from tests/fixtures/files/.
    pub fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/files/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// 1-based numbers of the lines that differ; the line count must not change.
    pub fn changed_lines(a: &str, b: &str) -> Vec<usize> {
        let (la, lb): (Vec<_>, Vec<_>) = (a.split('\n').collect(), b.split('\n').collect());
        assert_eq!(la.len(), lb.len(), "line count changed");
        la.iter()
            .zip(&lb)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, _)| i + 1)
            .collect()
    }
}
