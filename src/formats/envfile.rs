//! Environment files: `/etc/default/libvirtd` (Debian), `/etc/sysconfig/libvirtd`
//! (RHEL), as read by systemd's `EnvironmentFile=`.
//!
//! An assignment is one line: optional blanks, an optional `export` keyword,
//! `KEY` (`[A-Za-z_][A-Za-z0-9_]*`), `=` (blanks around it are accepted, as
//! systemd does), then the value. Reading the value follows systemd: leading and
//! trailing blanks are dropped; a value starting with `'` or `"` is quoted up to
//! the closing quote (inside `"..."`, a backslash escapes `"`, `\`, `` ` `` and
//! `$`; inside `'...'` nothing is special); elsewhere a backslash makes the next
//! character literal and quotes are ordinary characters. So `A="x y"` and `A=x y`
//! both read `x y`.
//!
//! Comments (`#`, `;`), blank lines and lines that are not such an assignment
//! (unterminated quotes, values continued on the next line, `KEY` without `=`)
//! are kept verbatim and ignored. Edits follow [`EnvFile::set`] and
//! [`EnvFile::remove_word`]; the file is re-parsed after each edit.

use std::fmt;
use std::ops::Range;

use super::{EditError, Line, append_line, best_commented, commented_assignment, lines};

/// An active assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    /// The variable name.
    pub key: String,
    /// The value with quotes and escapes resolved.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

#[derive(Debug, Clone)]
struct Node {
    entry: EnvEntry,
    /// The whole line, without its terminator.
    line: Line,
    /// Byte range of the value as written (quotes included).
    value: Range<usize>,
}

/// A parsed environment file that reproduces its source exactly.
#[derive(Debug, Clone, Default)]
pub struct EnvFile {
    text: String,
    nodes: Vec<Node>,
}

impl EnvFile {
    /// Parses `text`. Never fails: lines that are not assignments are kept as-is.
    pub fn parse(text: &str) -> EnvFile {
        let nodes = lines(text)
            .enumerate()
            .filter_map(|(index, line)| {
                let (key, value) = assignment(&text[line.start..line.end])?;
                let value_text = &text[line.start..line.end][value.clone()];
                Some(Node {
                    entry: EnvEntry {
                        key: key.to_string(),
                        value: unquote(value_text)?,
                        line: index + 1,
                    },
                    line,
                    value: line.start + value.start..line.start + value.end,
                })
            })
            .collect();
        EnvFile {
            text: text.to_string(),
            nodes,
        }
    }

    /// All active assignments, in file order.
    pub fn entries(&self) -> impl Iterator<Item = &EnvEntry> {
        self.nodes.iter().map(|n| &n.entry)
    }

    /// The assignment of `key` in effect: the last one.
    pub fn get(&self, key: &str) -> Option<&EnvEntry> {
        self.entries().filter(|e| e.key == key).last()
    }

    /// Sets `key` to `value`:
    ///
    /// 1. If an assignment exists, only the value text of the last one is
    ///    rewritten; nothing changes when it already reads as `value`.
    /// 2. Else a commented-out assignment (`#KEY=...`; see [the module
    ///    rule](super)) is replaced in place by `KEY=value`.
    /// 3. Else `KEY=value` is appended as a new last line.
    ///
    /// The value keeps the quote style of the line it replaces (`"..."` or
    /// `'...'`); an unquoted value is written bare unless it is empty or holds
    /// whitespace or shell-special characters, which get double quotes.
    ///
    /// # Errors
    ///
    /// Nothing changes if `key` is not a valid variable name or `value`
    /// contains a line break.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EditError> {
        if !is_valid_key(key) {
            return Err(EditError::new(None, format!("invalid environment variable name {key:?}")));
        }
        if value.contains(['\n', '\r']) {
            let line = self.get(key).map(|e| e.line);
            return Err(EditError::new(line, format!("{key}: the new value {value:?} spans lines")));
        }
        let old_text = self.text.clone();
        let others: Vec<EnvEntry> = self.entries().filter(|e| e.key != key).cloned().collect();
        if let Some(node) = self.nodes.iter().rev().find(|n| n.entry.key == key) {
            if node.entry.value == value {
                return Ok(());
            }
            let range = node.value.clone();
            let rendered = render(value, &self.text[range.clone()]);
            self.text.replace_range(range, &rendered);
        } else if let Some((line, new_line)) = self.commented_default(key, value) {
            self.text.replace_range(line.start..line.end, &new_line);
        } else {
            append_line(&mut self.text, &format!("{key}={}", render(value, "")));
        }
        self.reparse();
        // Read back: the key has the value, every other assignment is as before.
        let same_others = self.entries().filter(|e| e.key != key).map(|e| (&e.key, &e.value)).eq(others.iter().map(|e| (&e.key, &e.value)));
        if self.get(key).map(|e| e.value.as_str()) != Some(value) || !same_others {
            let line = self.get(key).map(|e| e.line);
            *self = EnvFile::parse(&old_text);
            return Err(EditError::new(line, format!("{key} = {value:?} would not read back as written, or would change other lines")));
        }
        Ok(())
    }

    /// Removes the word `word` from every assignment of `key`, keeping the other
    /// words exactly as written (quotes, escapes, the blanks between them):
    /// `LIBVIRTD_ARGS="--listen --timeout 120"` becomes
    /// `LIBVIRTD_ARGS="--timeout 120"`. An assignment left with no word is
    /// commented out instead (`#LIBVIRTD_ARGS="--listen"`). Words are split as by
    /// [`split_words`]; call once per spelling (`--listen`, then `-l`).
    ///
    /// # Errors
    ///
    /// Nothing changes if a value could not be rewritten so that it reads as
    /// its other words (a quote that would have to move).
    pub fn remove_word(&mut self, key: &str, word: &str) -> Result<(), EditError> {
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        for node in self.nodes.iter().filter(|n| n.entry.key == key) {
            let remove: Vec<usize> = split_words(&node.entry.value)
                .iter()
                .enumerate()
                .filter(|(_, w)| *w == word)
                .map(|(i, _)| i)
                .collect();
            if !remove.is_empty() {
                edits.push(self.word_edit(node, &remove, None)?);
            }
        }
        self.apply(edits);
        Ok(())
    }

    /// Rewrites the words of the assignment of `key` in effect (the last one):
    /// removes the words at the indices `remove` (counted as by [`split_words`]
    /// over its value) and, if `prepend` is given, adds that word first. Every
    /// other word keeps its text as written, quotes and escapes included:
    /// `LIBVIRTD_ARGS="--timeout 120 --config '/etc/my libvirtd.conf'"` with
    /// `remove` `[0, 1]` and `prepend` `--listen` becomes
    /// `LIBVIRTD_ARGS="--listen --config '/etc/my libvirtd.conf'"`. An assignment
    /// left with no word is commented out.
    ///
    /// # Errors
    ///
    /// Nothing changes if `key` has no assignment, an index is out of range, or
    /// the value could not be rewritten so that it reads as the words wanted.
    pub fn edit_words(&mut self, key: &str, remove: &[usize], prepend: Option<&str>) -> Result<(), EditError> {
        let Some(node) = self.nodes.iter().rev().find(|n| n.entry.key == key) else {
            return Err(EditError::new(None, format!("{key} is not set")));
        };
        if remove.is_empty() && prepend.is_none() {
            return Ok(());
        }
        let edit = self.word_edit(node, remove, prepend)?;
        self.apply(vec![edit]);
        Ok(())
    }

    /// The text replacement that removes the words at `remove` from `node`'s
    /// value and puts `prepend` first: the value's own text with only those words
    /// (and one blank run each) cut out, or the line commented out if no word is
    /// left.
    fn word_edit(&self, node: &Node, remove: &[usize], prepend: Option<&str>) -> Result<(Range<usize>, String), EditError> {
        let line = Some(node.entry.line);
        let value = node.entry.value.as_str();
        let spans = word_spans(value);
        if let Some(&i) = remove.iter().find(|&&i| i >= spans.len()) {
            return Err(EditError::new(line, format!("{}: no word {i} in {value:?}", node.entry.key)));
        }
        let removed = |i: usize| remove.contains(&i);
        let mut wanted: Vec<String> = spans.iter().enumerate().filter(|(i, _)| !removed(*i)).map(|(_, (_, w))| w.clone()).collect();
        if wanted.is_empty() && prepend.is_none() {
            let content = &self.text[node.line.start..node.line.end];
            return Ok((node.line.start..node.line.end, format!("#{}", content.trim_start())));
        }
        // The edits of the value, as (range of the value, replacement).
        let mut ops: Vec<(Range<usize>, String)> = Vec::new();
        let mut i = 0;
        while i < spans.len() {
            if !removed(i) {
                i += 1;
                continue;
            }
            let first = i;
            while i + 1 < spans.len() && removed(i + 1) {
                i += 1;
            }
            let last = i;
            i += 1;
            let range = if last + 1 < spans.len() {
                // Up to the next word: the run and the blanks after it.
                spans[first].0.start..spans[last + 1].0.start
            } else if first > 0 {
                // The last words: the blanks before them and the run.
                spans[first - 1].0.end..spans[last].0.end
            } else {
                spans[first].0.start..spans[last].0.end
            };
            ops.push((range, String::new()));
        }
        if let Some(word) = prepend {
            let at = (0..spans.len()).find(|&i| !removed(i)).map_or_else(
                || ops.first().map_or(value.len(), |(r, _)| r.start),
                |i| spans[i].0.start,
            );
            let sep = if wanted.is_empty() { "" } else { " " };
            ops.push((at..at, format!("{}{sep}", quote_word(word))));
            wanted.insert(0, word.to_string());
        }
        // Right to left, so that earlier ranges stay valid (no two ranges overlap).
        ops.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
        let mut new_value = value.to_string();
        for (range, text) in &ops {
            new_value.replace_range(range.clone(), text);
        }
        let refused = || EditError::new(line, format!("{}: cannot rewrite {:?} as the words {wanted:?}", node.entry.key, value));
        if split_words(&new_value) != wanted {
            return Err(refused());
        }
        let raw = &self.text[node.value.clone()];
        let new_raw = splice_quoted(raw, &ops).unwrap_or_else(|| render(&new_value, raw));
        if unquote(&new_raw).as_deref() != Some(new_value.as_str()) {
            return Err(refused());
        }
        Ok((node.value.clone(), new_raw))
    }

    /// Replaces ranges of the text (in file order, not overlapping), then re-parses.
    fn apply(&mut self, edits: Vec<(Range<usize>, String)>) {
        if edits.is_empty() {
            return;
        }
        for (range, replacement) in edits.into_iter().rev() {
            self.text.replace_range(range, &replacement);
        }
        self.reparse();
    }

    /// The commented-out assignment of `key` to replace, and its replacement line.
    fn commented_default(&self, key: &str, value: &str) -> Option<(Line, String)> {
        let candidates = lines(&self.text).filter_map(|line| {
            let c = commented_assignment(&self.text[line.start..line.end], key)?;
            let old = c.rest.trim_end();
            Some((line, c, unquote(old).as_deref() == Some(value)))
        });
        let (line, c) = best_commented(candidates)?;
        Some((
            line,
            format!("{key}{}{}", c.separator, render(value, c.rest)),
        ))
    }

    fn reparse(&mut self) {
        let text = std::mem::take(&mut self.text);
        *self = EnvFile::parse(&text);
    }
}

impl super::Text for EnvFile {
    fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for EnvFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits an assignment line into its key and the byte range of its value text
/// (leading and trailing blanks excluded).
fn assignment(content: &str) -> Option<(&str, Range<usize>)> {
    let blank = [' ', '\t'];
    let mut rest = content.trim_start_matches(blank);
    if let Some(after) = rest.strip_prefix("export")
        && after.starts_with(blank)
    {
        rest = after.trim_start_matches(blank);
    }
    let key_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let key = &rest[..key_len];
    if !is_valid_key(key) {
        return None;
    }
    let value = rest[key_len..]
        .trim_start_matches(blank)
        .strip_prefix('=')?;
    // A final lone `\r` ends the line for systemd too.
    let value = value
        .trim_start_matches(blank)
        .trim_end_matches([' ', '\t', '\r']);
    let start = value.as_ptr() as usize - content.as_ptr() as usize;
    Some((key, start..start + value.len()))
}

/// Resolves quotes and escapes the way systemd reads an environment file value;
/// `None` for an unterminated quote or a trailing backslash (a value continued on
/// the next line).
fn unquote(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = raw;
    if let Some(body) = raw.strip_prefix('\'') {
        let close = body.find('\'')?;
        out.push_str(&body[..close]);
        rest = &body[close + 1..];
    } else if let Some(body) = raw.strip_prefix('"') {
        let mut chars = body.char_indices();
        loop {
            match chars.next()? {
                (i, '"') => {
                    rest = &body[i + 1..];
                    break;
                }
                (_, '\\') => match chars.next()? {
                    (_, c @ ('"' | '\\' | '`' | '$')) => out.push(c),
                    (_, c) => {
                        out.push('\\');
                        out.push(c);
                    }
                },
                (_, c) => out.push(c),
            }
        }
    }
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// Quote style of a value as written: its first character if a quote.
fn quote_style(raw: &str) -> Option<char> {
    raw.chars().next().filter(|c| matches!(c, '"' | '\''))
}

/// Writes `value` in the quote style of `old` (the value text it replaces).
fn render(value: &str, old: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    match quote_style(old) {
        Some('\'') if !value.contains('\'') => format!("'{value}'"),
        None if !value.is_empty() && value.chars().all(safe) => value.to_string(),
        _ => {
            let mut out = String::from("\"");
            for c in value.chars() {
                if matches!(c, '"' | '\\' | '`' | '$') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
            out
        }
    }
}

/// For a value written as one quoted string (`"..."` or `'...'` and nothing
/// after the closing quote), the byte offset in `raw` where each byte of the
/// unquoted value comes from, plus one entry for the value's end (the closing
/// quote). `None` for any other value.
fn quoted_offsets(raw: &str) -> Option<(char, Vec<usize>)> {
    let q = quote_style(raw)?;
    let mut offsets = Vec::with_capacity(raw.len());
    let mut chars = raw.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == q {
            // The closing quote must end the value.
            return (i + 1 == raw.len()).then(|| {
                offsets.push(i);
                (q, offsets)
            });
        }
        if q == '"' && c == '\\' {
            match chars.next() {
                Some((_, e @ ('"' | '\\' | '`' | '$'))) => offsets.extend(std::iter::repeat_n(i, e.len_utf8())),
                Some((j, e)) => {
                    offsets.push(i);
                    offsets.extend((0..e.len_utf8()).map(|k| j + k));
                }
                None => return None,
            }
            continue;
        }
        offsets.extend((0..c.len_utf8()).map(|k| i + k));
    }
    None
}

/// Applies `ops` (edits of the unquoted value, right to left) to the quoted
/// text `raw` itself, so that everything else in it stays as written; `None` if
/// `raw` is not one quoted string, or a replacement cannot be written inside
/// its quotes.
fn splice_quoted(raw: &str, ops: &[(Range<usize>, String)]) -> Option<String> {
    let (q, offsets) = quoted_offsets(raw)?;
    let mut out = raw.to_string();
    for (range, text) in ops {
        let escaped = match q {
            '\'' if text.contains('\'') => return None,
            '\'' => text.clone(),
            _ => {
                let mut e = String::with_capacity(text.len());
                for c in text.chars() {
                    if matches!(c, '"' | '\\' | '`' | '$') {
                        e.push('\\');
                    }
                    e.push(c);
                }
                e
            }
        };
        out.replace_range(offsets[range.start]..offsets[range.end], &escaped);
    }
    Some(out)
}

/// `word` written so that [`split_words`] reads it back as one word: as is when
/// it holds only safe characters, else in single quotes.
pub fn quote_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// `words` as one value that [`split_words`] splits back into them.
pub fn join_words(words: &[String]) -> String {
    words.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" ")
}

/// Splits an (already unquoted) value into words like a shell: blanks separate
/// words; `'...'`, `"..."` and backslashes quote. `--config "/a b" -v` gives
/// `--config`, `/a b`, `-v`. An unterminated quote runs to the end.
pub fn split_words(value: &str) -> Vec<String> {
    word_spans(value)
        .into_iter()
        .map(|(_, word)| word)
        .collect()
}

/// Whether `c` separates words (systemd's and the shell's default whitespace).
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The words of `value` with the byte range each occupies.
fn word_spans(value: &str) -> Vec<(Range<usize>, String)> {
    let mut words = Vec::new();
    let mut chars = value.char_indices().peekable();
    while let Some(&(start, _)) = chars.peek() {
        if chars.next_if(|&(_, c)| is_separator(c)).is_some() {
            continue;
        }
        let mut word = String::new();
        while let Some((_, c)) = chars.next_if(|&(_, c)| !is_separator(c)) {
            match c {
                '\'' => word.extend(chars.by_ref().map(|(_, c)| c).take_while(|&c| c != '\'')),
                '"' => {
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => match chars
                                .next_if(|&(_, c)| matches!(c, '"' | '\\' | '`' | '$' | '\n'))
                            {
                                Some((_, '\n')) => {}
                                Some((_, c)) => word.push(c),
                                None => word.push('\\'),
                            },
                            c => word.push(c),
                        }
                    }
                }
                '\\' => match chars.next() {
                    Some((_, '\n')) | None => {}
                    Some((_, c)) => word.push(c),
                },
                c => word.push(c),
            }
        }
        let end = chars.peek().map_or(value.len(), |&(i, _)| i);
        words.push((start..end, word));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::formats::BOM;
    use crate::formats::bytes::{decode, encode};
    use crate::formats::testutil::{changed_lines, commented_lines, file_bytes, fixture, only_named_lines_changed, span, split_lines};
    use std::collections::BTreeSet;

    /// Lines of an environment file: assignments in every quoting, `export`,
    /// commented-out defaults, comments, unterminated quotes, junk.
    fn env_line() -> impl Strategy<Value = String> {
        prop_oneof![
            5 => "[ \t]{0,2}(export )?(KEY|OTHER)[ ]?=[ ]?(\"[a-z \u{e9}'$-]{0,8}\"|\"--listen -v\"|'[a-z \"-]{0,6}'|[a-z\\\\-]{0,6}|\"open|\"a\\\\\" b\")[ \t]{0,2}",
            2 => "(export )?KEY=(\"|')(--listen|-l|a|-v|x y)([ \t]{1,2}(--listen|-l|a|-v|\\\\\"b c\\\\\")){0,3}(\"|')",
            2 => "#( )?(KEY|OTHER)=(\"[a-z -]{0,6}\"|[a-z]{0,3})",
            1 => "[#;][a-z \u{e9}]{0,8}",
            1 => "[ \t]{0,2}",
            1 => "[a-zA-Z0-9_ \t=\"'$#;\\\\\u{e9}\u{65e5}-]{0,10}",
        ]
    }

    fn value_of(file: &EnvFile, key: &str) -> Option<String> {
        file.get(key).map(|e| e.value.clone())
    }

    #[test]
    fn reads_values() {
        let text = "A=plain\nB=\"with space\"\nC='single $x'\n  export D=1\nE = spaced \n\
                    F=\"esc \\\" \\$ \\n\"\nG=a\\ b\nH=\"x\"y\nI=\nJ=\"\"\n#K=1\nL=\"open\nM\n1N=2\nO=x\\\n";
        let file = EnvFile::parse(text);
        assert_eq!(file.to_string(), text);
        let got: Vec<(&str, &str, usize)> = file
            .entries()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A", "plain", 1),
                ("B", "with space", 2),
                ("C", "single $x", 3),
                ("D", "1", 4),
                ("E", "spaced", 5),
                ("F", "esc \" $ \\n", 6),
                ("G", "a b", 7),
                ("H", "xy", 8),
                ("I", "", 9),
                ("J", "", 10),
            ]
        );
    }

    #[test]
    fn bom_is_kept_and_skipped() {
        let text = "\u{feff}LIBVIRTD_ARGS=\"--listen\"\n";
        let mut file = EnvFile::parse(text);
        assert_eq!(file.get("LIBVIRTD_ARGS").map(|e| (e.value.as_str(), e.line)), Some(("--listen", 1)));
        assert_eq!(file.to_string(), text);
        file.remove_word("LIBVIRTD_ARGS", "--listen").unwrap();
        assert_eq!(file.to_string(), "\u{feff}#LIBVIRTD_ARGS=\"--listen\"\n");
        file.set("LIBVIRTD_ARGS", "--listen").unwrap();
        assert_eq!(file.to_string(), text);
        let mut file = EnvFile::parse("\u{feff}");
        file.set("A", "1").unwrap();
        assert_eq!(file.to_string(), "\u{feff}A=1\n");
    }

    #[test]
    fn last_assignment_wins() {
        let file = EnvFile::parse("A=1\nA=2\n");
        assert_eq!(file.get("A").unwrap().line, 2);
    }

    #[test]
    fn split_words_like_a_shell() {
        assert_eq!(
            split_words("  --listen\t--timeout 120 "),
            vec!["--listen", "--timeout", "120"]
        );
        assert_eq!(
            split_words("--config \"/a b\" 'c d'e f\\ g"),
            vec!["--config", "/a b", "c de", "f g"]
        );
        assert_eq!(split_words("\"a\\\"b\\x\" 'open"), vec!["a\"b\\x", "open"]);
        assert!(split_words("").is_empty());
    }

    #[test]
    fn set_keeps_quote_style() {
        let mut file = EnvFile::parse("A=\"x\"\nB='y'\nC=z\nexport D=1 \n");
        file.set("A", "--listen").unwrap();
        file.set("B", "it's").unwrap();
        file.set("C", "two words").unwrap();
        file.set("D", "2").unwrap();
        assert_eq!(
            file.to_string(),
            "A=\"--listen\"\nB=\"it's\"\nC=\"two words\"\nexport D=2 \n"
        );
        file.set("C", "$HOME").unwrap();
        assert_eq!(value_of(&file, "C").as_deref(), Some("$HOME"));
        assert!(file.to_string().contains("C=\"\\$HOME\"\n"));
    }

    #[test]
    fn set_same_value_keeps_spelling() {
        let text = "A='x'\nB=\"\"\n";
        let mut file = EnvFile::parse(text);
        file.set("A", "x").unwrap();
        file.set("B", "").unwrap();
        assert_eq!(file.to_string(), text);
    }

    #[test]
    fn set_uncomments_matching_default() {
        let text = "#A=\"--timeout 120\"\n\n#A=\"--listen\"\n";
        let mut file = EnvFile::parse(text);
        file.set("A", "--listen").unwrap();
        assert_eq!(file.to_string(), "#A=\"--timeout 120\"\n\nA=\"--listen\"\n");
        let mut file = EnvFile::parse(text);
        file.set("A", "--timeout 60").unwrap();
        assert_eq!(file.to_string(), "A=\"--timeout 60\"\n\n#A=\"--listen\"\n");
    }

    #[test]
    fn set_appends() {
        let mut file = EnvFile::parse("# x");
        file.set("A", "").unwrap();
        assert_eq!(file.to_string(), "# x\nA=\"\"\n");
        file.set("B", "b").unwrap();
        assert_eq!(file.to_string(), "# x\nA=\"\"\nB=b\n");
    }

    #[test]
    fn remove_word_keeps_other_words() {
        let mut file =
            EnvFile::parse("A=\"--listen --timeout 120\"\nB=-l\nC='-v  --listen'\nD=x\n");
        file.remove_word("A", "--listen").unwrap();
        file.remove_word("B", "-l").unwrap();
        file.remove_word("C", "--listen").unwrap();
        file.remove_word("D", "--listen").unwrap();
        assert_eq!(
            file.to_string(),
            "A=\"--timeout 120\"\n#B=-l\nC='-v'\nD=x\n"
        );
        assert_eq!(file.get("B"), None);
    }

    #[test]
    fn word_edits_keep_every_other_word_as_written() {
        // Inner quotes, escapes and the blanks between the other words stay.
        let mut file = EnvFile::parse("A=\"--listen\t--config \\\"/a b\\\"  -v a\\x \\$HOME\"\n");
        file.remove_word("A", "--listen").unwrap();
        assert_eq!(file.to_string(), "A=\"--config \\\"/a b\\\"  -v a\\x \\$HOME\"\n");
        assert_eq!(split_words(&value_of(&file, "A").unwrap()), ["--config", "/a b", "-v", "ax", "$HOME"]);
        file.remove_word("A", "$HOME").unwrap();
        assert_eq!(file.to_string(), "A=\"--config \\\"/a b\\\"  -v a\\x\"\n");

        let text = "LIBVIRTD_ARGS=\"--timeout 120 --config '/etc/libvirt/my libvirtd.conf'\"\n";
        let mut file = EnvFile::parse(text);
        file.edit_words("LIBVIRTD_ARGS", &[0, 1], Some("--listen")).unwrap();
        assert_eq!(file.to_string(), "LIBVIRTD_ARGS=\"--listen --config '/etc/libvirt/my libvirtd.conf'\"\n");
        let mut file = EnvFile::parse("A='-v --timeout 5 --config \"/x y\"'\n");
        file.edit_words("A", &[1, 2], Some("--listen")).unwrap();
        assert_eq!(file.to_string(), "A='--listen -v --config \"/x y\"'\n");
        // The last words: the blanks before them go.
        let mut file = EnvFile::parse("A=\"-v  --timeout 5\"\n");
        file.edit_words("A", &[1, 2], None).unwrap();
        assert_eq!(file.to_string(), "A=\"-v\"\n");
        // An empty value, a bare one, one with text after its quotes.
        let mut file = EnvFile::parse("A=\"\"\nB=--timeout\nC=\"--timeout 1 \"x\n");
        file.edit_words("A", &[], Some("--listen")).unwrap();
        file.edit_words("B", &[0], Some("--listen")).unwrap();
        file.edit_words("C", &[0, 1], Some("--listen")).unwrap();
        assert_eq!(file.to_string(), "A=\"--listen\"\nB=--listen\nC=\"--listen x\"\n");
        let mut file = EnvFile::parse("B=-v\n");
        file.edit_words("B", &[], Some("--listen")).unwrap();
        assert_eq!(file.to_string(), "B=\"--listen -v\"\n");
        // Removing every word comments the assignment out.
        let mut file = EnvFile::parse("A=\"--timeout 5\"\n");
        file.edit_words("A", &[0, 1], None).unwrap();
        assert_eq!(file.to_string(), "#A=\"--timeout 5\"\n");
    }

    #[test]
    fn word_edits_refuse_what_they_cannot_do() {
        let text = "A=\"x\"\n";
        let mut file = EnvFile::parse(text);
        assert!(file.edit_words("B", &[0], None).is_err());
        let e = file.edit_words("A", &[3], None).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert_eq!(file.to_string(), text);
    }

    #[test]
    fn quote_and_join_words() {
        assert_eq!(quote_word("--listen"), "--listen");
        assert_eq!(quote_word("my file"), "'my file'");
        assert_eq!(quote_word("it's"), "'it'\\''s'");
        assert_eq!(quote_word(""), "''");
        let words: Vec<String> = ["--config", "/etc/my libvirtd.conf", "it's", ""].map(String::from).to_vec();
        assert_eq!(split_words(&join_words(&words)), words);
    }

    #[test]
    fn remove_word_comments_out_every_emptied_assignment() {
        let mut file = EnvFile::parse("A=\"--listen\"\n  A=\"--listen -l\"\n");
        file.remove_word("A", "--listen").unwrap();
        file.remove_word("A", "-l").unwrap();
        assert_eq!(file.to_string(), "#A=\"--listen\"\n#A=\"-l\"\n");
        assert_eq!(file.get("A"), None);
    }

    #[test]
    fn set_refuses_bad_key_and_multi_line_value() {
        let mut file = EnvFile::parse("A=1\n");
        let e = file.set("A-B", "x").unwrap_err();
        assert_eq!(e.message, "invalid environment variable name \"A-B\"");
        let e = file.set("A", "x\ry").unwrap_err();
        assert_eq!(e.note("/etc/default/libvirtd"), "/etc/default/libvirtd line 1: A: the new value \"x\\ry\" spans lines; not edited");
        assert_eq!(file.to_string(), "A=1\n");
    }

    #[test]
    fn el7_sysconfig() {
        let text = fixture("sysconfig-libvirtd.el7");
        let file = EnvFile::parse(&text);
        assert_eq!(file.to_string(), text);
        assert_eq!(file.entries().count(), 0);

        let mut edited = file.clone();
        edited.set("LIBVIRTD_ARGS", "--listen").unwrap();
        let after = edited.to_string();
        let changed = changed_lines(&text, &after);
        assert_eq!(changed.len(), 1);
        let n = changed[0];
        assert_eq!(
            text.split('\n').nth(n - 1).unwrap(),
            "#LIBVIRTD_ARGS=\"--listen\""
        );
        assert_eq!(
            after.split('\n').nth(n - 1).unwrap(),
            "LIBVIRTD_ARGS=\"--listen\""
        );
        assert_eq!(edited.get("LIBVIRTD_ARGS").unwrap().line, n);
        edited.set("LIBVIRTD_ARGS", "--listen").unwrap();
        assert_eq!(edited.to_string(), after, "idempotent");

        edited.remove_word("LIBVIRTD_ARGS", "--listen").unwrap();
        assert_eq!(
            edited.to_string(),
            text,
            "removing the only word restores the stock file"
        );
    }

    #[test]
    fn debian12_default() {
        let text = fixture("default-libvirtd.debian12");
        let file = EnvFile::parse(&text);
        assert_eq!(file.to_string(), text);
        assert_eq!(file.get("LIBVIRTD_ARGS"), None);

        let mut edited = file.clone();
        edited.set("LIBVIRTD_ARGS", "--listen").unwrap();
        let changed = changed_lines(&text, &edited.to_string());
        assert_eq!(changed.len(), 1);
        assert_eq!(
            text.split('\n').nth(changed[0] - 1).unwrap(),
            "#LIBVIRTD_ARGS=\"--listen\""
        );

        let mut edited = file.clone();
        edited.set("LIBVIRTD_ARGS", "--timeout 120 --listen").unwrap();
        edited.remove_word("LIBVIRTD_ARGS", "--listen").unwrap();
        assert_eq!(
            value_of(&edited, "LIBVIRTD_ARGS").as_deref(),
            Some("--timeout 120")
        );
        assert_eq!(changed_lines(&text, &edited.to_string()).len(), 1);
    }

    proptest! {
        #[test]
        fn round_trip_and_entries_point_at_their_lines(bytes in file_bytes(env_line())) {
            let text = decode(&bytes);
            let file = EnvFile::parse(&text);
            prop_assert_eq!(encode(&file.to_string()), bytes);
            let lines = split_lines(&text);
            for e in file.entries() {
                let line = lines[e.line - 1];
                let line = if e.line == 1 { line.strip_prefix(BOM).unwrap_or(line) } else { line };
                let (key, _) = assignment(line.strip_suffix('\n').unwrap_or(line)).unwrap();
                prop_assert_eq!(key, e.key.as_str());
            }
        }

        #[test]
        fn set_changes_only_named_lines(bytes in file_bytes(env_line()), key in "KEY|OTHER|FRESH", value in "[a-z \u{e9}\"'$`\\\\#=;-]{0,8}") {
            let text = decode(&bytes);
            let mut file = EnvFile::parse(&text);
            let mut named = commented_lines(&text, &key);
            named.extend(file.get(&key).map(|e| e.line));
            let others: Vec<EnvEntry> = file.entries().filter(|e| e.key != key).cloned().collect();
            if file.set(&key, &value).is_err() {
                prop_assert_eq!(file.to_string(), text);
                return Ok(());
            }
            let new = file.to_string();
            let e = file.get(&key).unwrap().clone();
            prop_assert_eq!(&e.value, &value);
            let r = only_named_lines_changed(&text, &new, &named, &span(e.line, 0), |_| false);
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            let key_of = |e: &EnvEntry| (e.key.clone(), e.value.clone());
            prop_assert_eq!(file.entries().filter(|e| e.key != key).map(key_of).collect::<Vec<_>>(), others.iter().map(key_of).collect::<Vec<_>>());
            prop_assert_eq!(EnvFile::parse(&new).entries().cloned().collect::<Vec<_>>(), file.entries().cloned().collect::<Vec<_>>());
            file.set(&key, &value).unwrap();
            prop_assert_eq!(file.to_string(), new, "idempotent");
        }

        #[test]
        fn remove_word_changes_only_named_lines(bytes in file_bytes(env_line()), word in "--listen|-l|a") {
            let text = decode(&bytes);
            let mut file = EnvFile::parse(&text);
            let named: BTreeSet<usize> = file.entries().filter(|e| e.key == "KEY" && split_words(&e.value).contains(&word)).map(|e| e.line).collect();
            let before: Vec<EnvEntry> = file.entries().cloned().collect();
            if file.remove_word("KEY", &word).is_err() {
                prop_assert_eq!(file.to_string(), text);
                return Ok(());
            }
            let new = file.to_string();
            let now: BTreeSet<usize> = file.entries().filter(|e| e.key == "KEY").map(|e| e.line).collect();
            let r = only_named_lines_changed(&text, &new, &named, &now, |l| l.starts_with('#'));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            // Every assignment keeps its other words; emptied ones are gone.
            let expected: Vec<(String, Vec<String>)> = before.iter().filter_map(|e| {
                let words = split_words(&e.value);
                if e.key == "KEY" && words.contains(&word) {
                    let kept: Vec<String> = words.into_iter().filter(|w| *w != word).collect();
                    (!kept.is_empty()).then(|| (e.key.clone(), kept))
                } else {
                    Some((e.key.clone(), words))
                }
            }).collect();
            let got: Vec<(String, Vec<String>)> = file.entries().map(|e| (e.key.clone(), split_words(&e.value))).collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn set_then_get(lines in prop::collection::vec(
            "(#|# |export )?(KEY|OTHER) ?= ?(\"[a-z -]{0,4}\"|'[a-z ]{0,3}'|[a-z-]{0,4})\r?", 0..8),
            value in "[a-z \"'$`\\\\#=;-]{0,8}") {
            let text = lines.join("\n");
            let mut file = EnvFile::parse(&text);
            let others: Vec<EnvEntry> = file.entries().filter(|e| e.key != "KEY").cloned().collect();
            file.set("KEY", &value).unwrap();
            let once = file.to_string();
            let reparsed = EnvFile::parse(&once);
            prop_assert_eq!(value_of(&reparsed, "KEY"), Some(value.clone()));
            let others_after: Vec<EnvEntry> = reparsed.entries().filter(|e| e.key != "KEY").cloned().collect();
            prop_assert_eq!(others_after, others);
            file.set("KEY", &value).unwrap();
            prop_assert_eq!(file.to_string(), once);
        }

        #[test]
        fn word_edits_change_only_their_words(
            words in prop::collection::vec("--listen|-l|-v|--timeout|120|'a b'|\"c d\"|e\\\\ f|\\$HOME|x=1", 0..6),
            seps in prop::collection::vec("[ \t]{1,2}", 6),
            style in 0..3usize,
            remove in prop::collection::btree_set(0..6usize, 0..3),
            prepend in any::<bool>()) {
            let mut value = String::new();
            for (i, w) in words.iter().enumerate() {
                if i > 0 { value.push_str(&seps[i]); }
                value.push_str(w);
            }
            // The value written canonically in one of the three styles.
            let dq = |v: &str| render(v, "\"");
            let raw = match style {
                1 if !value.contains('\'') => format!("'{value}'"),
                2 if !value.starts_with(['"', '\'']) && !value.contains(['\\', ' ', '\t']) => value.clone(),
                _ => dq(&value),
            };
            prop_assert_eq!(unquote(&raw), Some(value.clone()));
            let mut file = EnvFile::parse(&format!("# c\nA={raw}\nB=1\n"));
            let all = split_words(&value);
            let remove: Vec<usize> = remove.into_iter().filter(|&i| i < all.len()).collect();
            let mut expected: Vec<String> = all.iter().enumerate().filter(|(i, _)| !remove.contains(i)).map(|(_, w)| w.clone()).collect();
            if prepend { expected.insert(0, "--listen".into()); }
            file.edit_words("A", &remove, prepend.then_some("--listen")).unwrap();
            let out = file.to_string();
            let lines: Vec<&str> = out.split('\n').collect();
            prop_assert_eq!((lines[0], lines[2], lines.len()), ("# c", "B=1", 4));
            match file.get("A") {
                Some(e) => {
                    prop_assert_eq!(split_words(&e.value), expected.clone());
                    // Each kept word's text is kept: the value is the old one
                    // with whole words (and a blank run each) cut out.
                    let spans = word_spans(&value);
                    let mut rest = e.value.as_str();
                    for (i, (span, _)) in spans.iter().enumerate() {
                        if remove.contains(&i) { continue; }
                        let at = rest.find(&value[span.clone()]);
                        prop_assert!(at.is_some(), "{:?} lost {:?}", e.value, &value[span.clone()]);
                        rest = &rest[at.unwrap_or(0) + span.len()..];
                    }
                    // Quoted values stay in their style, with nothing re-escaped.
                    if raw.starts_with('\'') && !e.value.contains('\'') {
                        prop_assert_eq!(lines[1].to_string(), format!("A='{}'", e.value));
                    } else if raw.starts_with('"') {
                        prop_assert_eq!(lines[1].to_string(), format!("A={}", dq(&e.value)));
                    }
                }
                None => {
                    prop_assert!(expected.is_empty());
                    prop_assert_eq!(lines[1].to_string(), format!("#A={raw}"));
                }
            }
        }

        #[test]
        fn remove_word_removes_it(words in prop::collection::vec("--listen|-l|-v|--timeout|120|'a b'", 0..5)) {
            let mut file = EnvFile::parse(&format!("ARGS=\"{}\"\n", words.join(" ")));
            file.remove_word("ARGS", "--listen").unwrap();
            let expected: Vec<String> = split_words(&words.join(" ")).into_iter().filter(|w| w != "--listen").collect();
            match file.get("ARGS") {
                Some(e) => prop_assert_eq!(split_words(&e.value), expected),
                None => prop_assert!(expected.is_empty()),
            }
        }
    }
}
