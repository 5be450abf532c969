//! libvirt's configuration syntax (`virconf`): `libvirtd.conf`, `qemu.conf`,
//! `virtproxyd.conf` and friends.
//!
//! A statement is `name = value`, optionally followed by `;` and a `#` comment,
//! starting on its own line (leading blanks allowed). Names start with an ASCII
//! letter and go on with letters, digits and `_`. Values are integers
//! (`[+-]digits`), strings (`"..."` or `'...'` on one line, `"""..."""` across
//! lines, no escapes) and lists of strings (`[ "a", "b", ]`, which may span
//! lines). Lines that are not such a statement (comments, blank lines, lists of
//! non-strings, several `;`-separated statements on one line, anything libvirt
//! would reject) are kept verbatim and ignored.
//!
//! Edits follow the rules of [`ConfDoc::set`] and [`ConfDoc::comment_out`]; the
//! document is re-parsed after each edit, so [`Entry::line`] is always current.

use std::fmt;
use std::ops::Range;

use super::{
    EditError, Line, append_line, best_commented, comment_out_lines, commented_assignment,
    content_start, lines,
};

/// The value of a libvirt setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A quoted string, without its quotes.
    Str(String),
    /// An integer.
    Int(i64),
    /// A list of strings.
    List(Vec<String>),
}

impl Value {
    /// The value in libvirt syntax: `"none"`, `1`, `[ "a", "b" ]` (`[ ]` when
    /// empty). Strings containing `"` are written `'...'`, strings that hold a line
    /// break as well `"""..."""`. `None` for a string libvirt cannot express.
    pub fn render(&self) -> Option<String> {
        match self {
            Value::Int(i) => Some(i.to_string()),
            Value::Str(s) => quote(s),
            Value::List(items) if items.is_empty() => Some("[ ]".to_string()),
            Value::List(items) => {
                let quoted: Option<Vec<String>> = items.iter().map(|s| quote(s)).collect();
                Some(format!("[ {} ]", quoted?.join(", ")))
            }
        }
    }
}

fn quote(s: &str) -> Option<String> {
    let one_line = !s.contains(['\n', '\r']);
    if one_line && !s.contains('"') {
        Some(format!("\"{s}\""))
    } else if one_line && !s.contains('\'') {
        Some(format!("'{s}'"))
    } else if !s.contains("\"\"\"") && !s.ends_with('"') {
        Some(format!("\"\"\"{s}\"\"\""))
    } else {
        None
    }
}

/// An active (uncommented) assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The setting's name.
    pub key: String,
    /// The parsed value.
    pub value: Value,
    /// 1-based number of the line the statement starts on.
    pub line: usize,
    /// The statement's source text: its line, or lines for a multi-line list,
    /// including any trailing comment, without the final line terminator.
    pub raw: String,
}

#[derive(Debug, Clone)]
struct Node {
    entry: Entry,
    /// Start of the statement's first line.
    start: usize,
    /// Byte range of the value's text.
    value: Range<usize>,
    /// End of the statement's last line, before its terminator.
    end: usize,
}

/// A parsed libvirt configuration file that reproduces its source exactly.
#[derive(Debug, Clone, Default)]
pub struct ConfDoc {
    text: String,
    /// [`ConfDoc::drop_text`] was called.
    text_dropped: bool,
    nodes: Vec<Node>,
}

impl ConfDoc {
    /// Parses `text`. Never fails: lines that are not statements are kept as-is.
    pub fn parse(text: &str) -> ConfDoc {
        let mut nodes = Vec::new();
        let mut pos = content_start(text);
        let mut line_no = 1;
        while pos < text.len() {
            match statement(text, pos) {
                Some(st) => {
                    let raw = &text[pos..st.end];
                    nodes.push(Node {
                        entry: Entry {
                            key: st.key.to_string(),
                            value: st.value,
                            line: line_no,
                            raw: raw.to_string(),
                        },
                        start: pos,
                        value: st.value_range,
                        end: st.end,
                    });
                    line_no += raw.matches('\n').count() + 1;
                    pos = st.next;
                }
                None => {
                    line_no += 1;
                    pos = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
                }
            }
        }
        ConfDoc {
            text: text.to_string(),
            text_dropped: false,
            nodes,
        }
    }

    /// All active assignments, in file order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.nodes.iter().map(|n| &n.entry)
    }

    /// The assignment of `key` that libvirt uses: the last active one.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries().filter(|e| e.key == key).last()
    }

    /// Every active assignment of `key`, in file order.
    pub fn get_all(&self, key: &str) -> Vec<&Entry> {
        self.entries().filter(|e| e.key == key).collect()
    }

    /// Sets `key` to `value`, changing as little text as possible:
    ///
    /// 1. If an active assignment exists, only the value text of the last one is
    ///    rewritten (spacing, `;` and trailing comment are kept); nothing changes
    ///    when it already holds `value`, whatever its spelling.
    /// 2. Else a commented-out assignment (`#key = ...`, the distribution's
    ///    documented default; see [the module rule](super)) is replaced in place by
    ///    `key`, the comment's own separator and the value. Only that line
    ///    changes: the other lines of a commented multi-line list stay comments.
    /// 3. Else `key = value` is appended as a new last line.
    ///
    /// # Errors
    ///
    /// Nothing changes if `key` is not a valid libvirt name, `value` holds a
    /// string libvirt cannot express (see [`Value::render`]), or the text was
    /// dropped.
    pub fn set(&mut self, key: &str, value: Value) -> Result<(), EditError> {
        let current = self.get(key).map(|e| e.line);
        if self.text_dropped {
            return Err(EditError::new(None, "the document's text was dropped; it cannot be edited"));
        }
        if !is_valid_key(key) {
            return Err(EditError::new(None, format!("invalid libvirt setting name {key:?}")));
        }
        let Some(rendered) = value.render() else {
            return Err(EditError::new(current, format!("{key}: the value {value:?} cannot be written in libvirt syntax")));
        };
        let old_text = self.text.clone();
        let others = self.others(key);
        if let Some(node) = self.nodes.iter().rev().find(|n| n.entry.key == key) {
            if node.entry.value == value {
                return Ok(());
            }
            let range = node.value.clone();
            self.text.replace_range(range, &rendered);
        } else if let Some((line, new_line)) = self.commented_default(key, &value, &rendered) {
            self.text.replace_range(line.start..line.end, &new_line);
        } else {
            append_line(&mut self.text, &format!("{key} = {rendered}"));
        }
        self.reparse();
        // Read back: the key has the value, every other statement reads as before
        // (an unterminated `"""` elsewhere could otherwise swallow the new line).
        if self.get(key).map(|e| &e.value) != Some(&value) || self.others(key) != others {
            *self = ConfDoc::parse(&old_text);
            return Err(EditError::new(current, format!("{key} = {rendered} would not read back as written, or would change other lines")));
        }
        Ok(())
    }

    /// The statements of other keys: (key, value, source text).
    fn others(&self, key: &str) -> Vec<(String, Value, String)> {
        self.entries()
            .filter(|e| e.key != key)
            .map(|e| (e.key.clone(), e.value.clone(), e.raw.clone()))
            .collect()
    }

    /// Comments out every active assignment of `key`: each of its lines gets a
    /// leading `#` (`listen_tcp = 1` becomes `#listen_tcp = 1`), preceded by a
    /// line `# note` (none when `note` is empty).
    ///
    /// # Errors
    ///
    /// If the text was dropped.
    pub fn comment_out(&mut self, key: &str, note: &str) -> Result<(), EditError> {
        if self.text_dropped {
            return Err(EditError::new(None, "the document's text was dropped; it cannot be edited"));
        }
        let spans: Vec<(usize, usize)> = self
            .nodes
            .iter()
            .filter(|n| n.entry.key == key)
            .map(|n| (n.start, n.end))
            .collect();
        if spans.is_empty() {
            return Ok(());
        }
        for &(start, end) in spans.iter().rev() {
            let commented = comment_out_lines(&self.text, start, end, note);
            self.text.replace_range(start..end, &commented);
        }
        self.reparse();
        Ok(())
    }

    /// The commented-out assignment of `key` to replace, and its replacement line.
    fn commented_default(
        &self,
        key: &str,
        value: &Value,
        rendered: &str,
    ) -> Option<(Line, String)> {
        // Lines inside an active statement (a `"""` string) are not comments.
        let inside_statement = |line: &Line| {
            self.nodes
                .iter()
                .any(|n| n.start < line.start && line.start < n.end)
        };
        let candidates = lines(&self.text).filter_map(|line| {
            if inside_statement(&line) {
                return None;
            }
            let c = commented_assignment(&self.text[line.start..line.end], key)?;
            let same = parse_value(c.rest, 0).is_some_and(|(old, _)| old == *value);
            Some((line, c, same))
        });
        let (line, c) = best_commented(candidates)?;
        Some((line, format!("{key}{}{rendered}", c.separator)))
    }

    fn reparse(&mut self) {
        let text = std::mem::take(&mut self.text);
        *self = ConfDoc::parse(&text);
    }
}

impl ConfDoc {
    /// Frees the source text, keeping the parsed entries (`get`, `entries` still
    /// answer; line numbers stay those of the source). For read-only audits of many
    /// hosts: after this the document prints as empty and cannot be edited.
    pub fn drop_text(&mut self) {
        self.text = String::new();
        self.text_dropped = true;
    }
}

impl super::Text for ConfDoc {
    fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ConfDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A statement recognised at the start of a line.
struct Statement<'a> {
    key: &'a str,
    value: Value,
    value_range: Range<usize>,
    /// End of the last line's content (before `\r\n` / `\n`).
    end: usize,
    /// Start of the next line.
    next: usize,
}

fn skip_blanks(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && (b[p] == b' ' || b[p] == b'\t') {
        p += 1;
    }
    p
}

/// Skips blanks and line breaks (inside lists).
fn skip_blanks_and_eol(b: &[u8], mut p: usize) -> usize {
    loop {
        match b.get(p) {
            Some(b' ' | b'\t' | b'\n') => p += 1,
            Some(b'\r') if b.get(p + 1) == Some(&b'\n') => p += 2,
            _ => return p,
        }
    }
}

/// If `p` is at a line end (`\n`, `\r\n`, the end of text, or a `\r` ending the
/// text, which libvirt also takes for a line end), the content end and the start
/// of the next line.
fn at_eol(b: &[u8], p: usize) -> Option<(usize, usize)> {
    match (b.get(p), b.get(p + 1)) {
        (None, _) => Some((p, p)),
        (Some(b'\n'), _) => Some((p, p + 1)),
        (Some(b'\r'), Some(b'\n')) => Some((p, p + 2)),
        (Some(b'\r'), None) => Some((p, p + 1)),
        _ => None,
    }
}

fn statement(text: &str, start: usize) -> Option<Statement<'_>> {
    let b = text.as_bytes();
    let key_start = skip_blanks(b, start);
    let mut p = key_start;
    if !b.get(p).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    while b
        .get(p)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        p += 1;
    }
    let key = &text[key_start..p];
    p = skip_blanks(b, p);
    if b.get(p) != Some(&b'=') {
        return None;
    }
    let value_start = skip_blanks(b, p + 1);
    let (value, value_end) = parse_value(text, value_start)?;
    p = skip_blanks(b, value_end);
    if b.get(p) == Some(&b';') {
        p = skip_blanks(b, p + 1);
    }
    if b.get(p) == Some(&b'#') {
        p = text[p..].find('\n').map_or(text.len(), |i| p + i);
        if b[p - 1] == b'\r' {
            p -= 1;
        }
    }
    let (end, next) = at_eol(b, p)?;
    Some(Statement {
        key,
        value,
        value_range: value_start..value_end,
        end,
        next,
    })
}

/// Parses a value at `p`; returns it and the position after it.
fn parse_value(text: &str, p: usize) -> Option<(Value, usize)> {
    let b = text.as_bytes();
    match *b.get(p)? {
        b'[' => {
            let mut items = Vec::new();
            let mut p = skip_blanks_and_eol(b, p + 1);
            if b.get(p) != Some(&b']') {
                loop {
                    let (item, after) = parse_string(text, p)?;
                    items.push(item);
                    p = skip_blanks_and_eol(b, after);
                    match b.get(p) {
                        Some(b']') => break,
                        Some(b',') => {
                            p = skip_blanks_and_eol(b, p + 1);
                            if b.get(p) == Some(&b']') {
                                break;
                            }
                        }
                        _ => return None,
                    }
                }
            }
            Some((Value::List(items), p + 1))
        }
        b'"' | b'\'' => parse_string(text, p).map(|(s, after)| (Value::Str(s), after)),
        _ => {
            let sign = usize::from(matches!(b[p], b'+' | b'-'));
            let digits = b[p + sign..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 {
                return None;
            }
            let end = p + sign + digits;
            let n = text[p..end].parse().ok()?;
            Some((Value::Int(n), end))
        }
    }
}

/// Parses a quoted string at `p`; returns its content and the position after it.
fn parse_string(text: &str, p: usize) -> Option<(String, usize)> {
    let rest = &text[p..];
    if let Some(body) = rest.strip_prefix("\"\"\"") {
        let close = body.find("\"\"\"")?;
        return Some((body[..close].to_string(), p + 3 + close + 3));
    }
    let quote = match rest.chars().next()? {
        q @ ('"' | '\'') => q,
        _ => return None,
    };
    let body = &rest[1..];
    let close = body.find([quote, '\n', '\r'])?;
    if !body[close..].starts_with(quote) {
        return None;
    }
    Some((body[..close].to_string(), p + 1 + close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::formats::BOM;
    use crate::formats::bytes::{decode, encode};
    use crate::formats::testutil::{changed_lines, commented_lines, file_bytes, fixture, only_named_lines_changed, span, split_lines};
    use std::collections::BTreeSet;

    fn s(v: &str) -> Value {
        Value::Str(v.to_string())
    }

    #[test]
    fn parses_values() {
        let doc = ConfDoc::parse(
            "listen_tcp = 1\nauth_tcp = \"none\"\n#listen_tls = 0\n\
             cgroup_controllers = [ \"cpu\", \"devices\" ]\nneg=-5;\nq = 'it\"s' # note\n",
        );
        assert_eq!(doc.get("listen_tcp").unwrap().value, Value::Int(1));
        assert_eq!(doc.get("auth_tcp").unwrap().value, s("none"));
        assert_eq!(doc.get("auth_tcp").unwrap().line, 2);
        assert!(doc.get("listen_tls").is_none());
        assert_eq!(
            doc.get("cgroup_controllers").unwrap().value,
            Value::List(vec!["cpu".into(), "devices".into()])
        );
        assert_eq!(doc.get("neg").unwrap().value, Value::Int(-5));
        let q = doc.get("q").unwrap();
        assert_eq!(
            (q.value.clone(), q.raw.as_str()),
            (s("it\"s"), "q = 'it\"s' # note")
        );
    }

    #[test]
    fn multi_line_list_and_line_numbers() {
        let text = "a = [\r\n  \"x\",\r\n  \"y\",\r\n]\r\nb = 2\r\n";
        let doc = ConfDoc::parse(text);
        let a = doc.get("a").unwrap();
        assert_eq!(a.value, Value::List(vec!["x".into(), "y".into()]));
        assert_eq!(a.raw, "a = [\r\n  \"x\",\r\n  \"y\",\r\n]");
        assert_eq!(doc.get("b").unwrap().line, 5);
        assert_eq!(doc.to_string(), text);
        let doc = ConfDoc::parse("e = [ ]\nt = \"\"\"two\nlines\"\"\"\nz = 1");
        assert_eq!(doc.get("e").unwrap().value, Value::List(vec![]));
        assert_eq!(doc.get("t").unwrap().value, s("two\nlines"));
        assert_eq!(doc.get("z").unwrap().line, 4);
    }

    #[test]
    fn invalid_statements_are_other_lines() {
        for text in [
            "a = 1 2\n",
            "a = \"open\n",
            "a = [ 1, 2 ]\n",
            "a = [ \"x\" \"y\" ]\n",
            "a = 1; b = 2\n",
            "a = 99999999999999999999\n",
            "1a = 1\n",
            "_a = 1\n",
            "a.b = 1\n",
            "a == 1\n",
            "a = 0x10\n",
            "a = \"x\"\rb\n",
            "a = [\n\"x\", # c\n]\n",
        ] {
            let doc = ConfDoc::parse(text);
            assert!(doc.get("a").is_none(), "{text:?}");
            assert_eq!(doc.to_string(), text);
        }
    }

    #[test]
    fn bom_is_kept_and_skipped() {
        let text = "\u{feff}listen_tcp = 1\n#auth_tcp = \"sasl\"\n";
        let mut doc = ConfDoc::parse(text);
        let e = doc.get("listen_tcp").unwrap();
        assert_eq!((&e.value, e.line, e.raw.as_str()), (&Value::Int(1), 1, "listen_tcp = 1"));
        assert_eq!(doc.to_string(), text);
        doc.set("listen_tcp", Value::Int(0)).unwrap();
        assert_eq!(doc.to_string(), "\u{feff}listen_tcp = 0\n#auth_tcp = \"sasl\"\n");
        doc.comment_out("listen_tcp", "off").unwrap();
        assert_eq!(doc.to_string(), "\u{feff}# off\n#listen_tcp = 0\n#auth_tcp = \"sasl\"\n");
        let mut doc = ConfDoc::parse("\u{feff}#listen_tcp = 1\n");
        doc.set("listen_tcp", Value::Int(1)).unwrap();
        assert_eq!(doc.to_string(), "\u{feff}listen_tcp = 1\n");
        let mut doc = ConfDoc::parse("\u{feff}");
        assert_eq!(doc.entries().count(), 0);
        doc.set("x", Value::Int(2)).unwrap();
        assert_eq!(doc.to_string(), "\u{feff}x = 2\n");
        // Only a leading BOM is one: elsewhere U+FEFF is text.
        assert!(ConfDoc::parse("a = 1\n\u{feff}b = 2\n").get("b").is_none());
    }

    #[test]
    fn last_assignment_wins() {
        let doc = ConfDoc::parse("x = 1\nx = 2\n");
        assert_eq!(doc.get("x").unwrap().value, Value::Int(2));
        assert_eq!(doc.get_all("x").len(), 2);
    }

    #[test]
    fn set_rewrites_value_only() {
        let mut doc = ConfDoc::parse("a=1 ; # keep\nx = 1\nx  =\t\"old\"   # why\n");
        doc.set("x", s("new")).unwrap();
        assert_eq!(
            doc.to_string(),
            "a=1 ; # keep\nx = 1\nx  =\t\"new\"   # why\n"
        );
        doc.set("a", Value::List(vec!["p".into(), "q\"".into()])).unwrap();
        assert_eq!(
            doc.to_string(),
            "a=[ \"p\", 'q\"' ] ; # keep\nx = 1\nx  =\t\"new\"   # why\n"
        );
    }

    #[test]
    fn set_same_value_keeps_spelling() {
        let text = "a = 'none'\nb = [\"x\",\"y\",]\nc = +1\n";
        let mut doc = ConfDoc::parse(text);
        doc.set("a", s("none")).unwrap();
        doc.set("b", Value::List(vec!["x".into(), "y".into()])).unwrap();
        doc.set("c", Value::Int(1)).unwrap();
        assert_eq!(doc.to_string(), text);
    }

    #[test]
    fn set_replaces_multi_line_list() {
        let mut doc = ConfDoc::parse("a = [\n \"x\",\n \"y\" ] # c\nb = 1\n");
        doc.set("a", Value::List(vec!["z".into()])).unwrap();
        assert_eq!(doc.to_string(), "a = [ \"z\" ] # c\nb = 1\n");
        assert_eq!(doc.get("b").unwrap().line, 2);
    }

    #[test]
    fn set_uncomments_documented_default() {
        let mut doc = ConfDoc::parse("# Listen\n#listen_tcp = 1\n\n#tls_priority=\"NORMAL\"\n");
        doc.set("listen_tcp", Value::Int(0)).unwrap();
        doc.set("tls_priority", s("X")).unwrap();
        assert_eq!(
            doc.to_string(),
            "# Listen\nlisten_tcp = 0\n\ntls_priority=\"X\"\n"
        );
    }

    #[test]
    fn set_prefers_unspaced_then_matching_comment() {
        let text = "# k = prose\n#k = 1\n#k = 2\n";
        let mut doc = ConfDoc::parse(text);
        doc.set("k", Value::Int(2)).unwrap();
        assert_eq!(doc.to_string(), "# k = prose\n#k = 1\nk = 2\n");
        let mut doc = ConfDoc::parse(text);
        doc.set("k", Value::Int(3)).unwrap();
        assert_eq!(doc.to_string(), "# k = prose\nk = 3\n#k = 2\n");
        let mut doc = ConfDoc::parse("#       k = \"qemu\"   # prose\n#  k = 2\n");
        doc.set("k", Value::Int(3)).unwrap();
        assert_eq!(
            doc.to_string(),
            "#       k = \"qemu\"   # prose\n#  k = 2\nk = 3\n"
        );
    }

    #[test]
    fn set_ignores_comment_lookalikes_inside_strings() {
        let mut doc = ConfDoc::parse("s = \"\"\"\n#k = 1\n\"\"\"\n");
        doc.set("k", Value::Int(2)).unwrap();
        assert_eq!(doc.to_string(), "s = \"\"\"\n#k = 1\n\"\"\"\nk = 2\n");
    }

    #[test]
    fn set_appends() {
        let mut doc = ConfDoc::parse("# nothing");
        doc.set("x", s("y")).unwrap();
        assert_eq!(doc.to_string(), "# nothing\nx = \"y\"\n");
        let mut doc = ConfDoc::parse("");
        doc.set("x", Value::List(vec![])).unwrap();
        assert_eq!(doc.to_string(), "x = [ ]\n");
        let mut doc = ConfDoc::parse("a = 1\r\n");
        doc.set("x", Value::Int(2)).unwrap();
        assert_eq!(doc.to_string(), "a = 1\r\nx = 2\r\n");
    }

    #[test]
    fn comment_out_all_active() {
        let mut doc = ConfDoc::parse("x = 1\n  x = [\n \"a\" ]\n#x = 3\ny = 1");
        doc.comment_out("x", "disabled by migready").unwrap();
        assert_eq!(
            doc.to_string(),
            "# disabled by migready\n#x = 1\n# disabled by migready\n#x = [\n# \"a\" ]\n#x = 3\ny = 1"
        );
        assert!(doc.get("x").is_none());
        let before = doc.to_string();
        doc.comment_out("x", "again").unwrap();
        assert_eq!(doc.to_string(), before);
    }

    #[test]
    fn set_refuses_bad_key_and_unwritable_value() {
        let text = "a = 'x'\n";
        let mut doc = ConfDoc::parse(text);
        let e = doc.set("a b", Value::Int(1)).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (None, "invalid libvirt setting name \"a b\""));
        let e = doc.set("a", s("'\"")).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert_eq!(doc.to_string(), text);
        doc.drop_text();
        assert!(doc.set("a", Value::Int(1)).is_err());
        assert!(doc.comment_out("a", "").is_err());
    }

    #[test]
    fn render_values() {
        assert_eq!(s("none").render().unwrap(), "\"none\"");
        assert_eq!(s("a\"b").render().unwrap(), "'a\"b'");
        assert_eq!(s("a\"'\nb").render().unwrap(), "\"\"\"a\"'\nb\"\"\"");
        assert_eq!(s("a'\"").render(), None);
        assert_eq!(Value::Int(-3).render().unwrap(), "-3");
        assert_eq!(
            Value::List(vec!["a".into(), "b".into()]).render().unwrap(),
            "[ \"a\", \"b\" ]"
        );
    }

    #[test]
    fn debian_libvirtd_conf() {
        let text = fixture("libvirtd.conf.debian12");
        let doc = ConfDoc::parse(&text);
        assert_eq!(doc.to_string(), text);
        assert!(doc.get("auth_tcp").is_none());
        assert!(doc.get("listen_tcp").is_none());
        assert_eq!(doc.entries().count(), 0, "the stock file sets nothing");

        let mut edited = doc.clone();
        edited.set("listen_tcp", Value::Int(1)).unwrap();
        let after = edited.to_string();
        let changed = changed_lines(&text, &after);
        assert_eq!(changed.len(), 1);
        let n = changed[0];
        assert_eq!(text.split('\n').nth(n - 1).unwrap(), "#listen_tcp = 1");
        assert_eq!(after.split('\n').nth(n - 1).unwrap(), "listen_tcp = 1");
        assert_eq!(edited.get("listen_tcp").unwrap().line, n);
        edited.set("listen_tcp", Value::Int(1)).unwrap();
        assert_eq!(edited.to_string(), after, "idempotent");

        edited.set("auth_tcp", s("none")).unwrap();
        assert_eq!(edited.get("auth_tcp").unwrap().raw, "auth_tcp = \"none\"");
        assert_eq!(changed_lines(&text, &edited.to_string()).len(), 2);
    }

    #[test]
    fn debian_qemu_conf() {
        let text = fixture("qemu.conf.debian12");
        let doc = ConfDoc::parse(&text);
        assert_eq!(doc.to_string(), text);
        assert!(doc.get("migration_port_min").is_none());
        assert_eq!(doc.entries().count(), 0);

        let mut edited = doc.clone();
        edited.set("migration_port_min", Value::Int(49152)).unwrap();
        let changed = changed_lines(&text, &edited.to_string());
        assert_eq!(changed.len(), 1);
        assert_eq!(
            text.split('\n').nth(changed[0] - 1).unwrap(),
            "#migration_port_min = 49152"
        );
        assert_eq!(
            edited.get("migration_port_min").unwrap().value,
            Value::Int(49152)
        );

        // A commented multi-line list: only its first line becomes active.
        let mut edited = doc.clone();
        edited.set("cgroup_device_acl", Value::List(vec!["/dev/null".into()])).unwrap();
        let changed = changed_lines(&text, &edited.to_string());
        assert_eq!(changed.len(), 1);
        assert_eq!(
            text.split('\n').nth(changed[0] - 1).unwrap(),
            "#cgroup_device_acl = ["
        );
        assert_eq!(
            edited.get("cgroup_device_acl").unwrap().value,
            Value::List(vec!["/dev/null".into()])
        );

        // The lab image appends `cgroup_controllers = [ ]` to the stock file.
        let lab = ConfDoc::parse(&format!("{text}cgroup_controllers = [ ]\n"));
        assert_eq!(
            lab.get("cgroup_controllers").unwrap().value,
            Value::List(vec![])
        );
    }

    /// Lines of a libvirt config file, as distributions and admins write them.
    fn conf_line() -> impl Strategy<Value = String> {
        let value = r#"([+-]?[0-9]{1,4}|"[a-z \u{e9}'#\[\],]{0,6}"|'[a-z "]{0,4}'|\[( ?"[a-z]{0,3}",?){0,3} ?\]?|"""[a-z]{0,3}|[a-z]{1,3}|"[a-z]{0,3})"#;
        let re = |r: &str| proptest::string::string_regex(r).unwrap();
        prop_oneof![
            4 => re(&format!(r#"[ \t]{{0,2}}(key|other|listen_tcp)[ \t]{{0,2}}=[ \t]{{0,2}}{value}( ?;)?( # [a-z \u{{e9}}]{{0,4}})?[ \t]{{0,2}}"#)),
            2 => re(&format!(r#"#( )?(key|other|listen_tcp)[ \t]{{0,2}}=[ \t]{{0,2}}{value}"#)),
            1 => re(r#"[ \t]{0,2}#[ \ta-z\u{e9}=#"]{0,10}"#),
            1 => re(r#"[ \t]{0,4}("[a-z]{0,3}",?|\]|"""|[a-z]{0,3}""")[ \t]{0,2}"#),
            1 => re(r#"[ \t]{0,3}"#),
            1 => re(r#"[a-zA-Z0-9_ \t=\[\]"',;#.\u{e9}\u{65e5}+-]{0,12}"#),
        ]
    }

    fn value_strategy() -> impl Strategy<Value = Value> {
        let text = "[a-z0-9 \"'#=\\[\\],\n\r-]{0,12}";
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            text.prop_map(Value::Str),
            prop::collection::vec(text, 0..4).prop_map(Value::List),
        ]
    }

    proptest! {
        #[test]
        fn round_trip_and_entries_point_at_their_lines(bytes in file_bytes(conf_line())) {
            let text = decode(&bytes);
            let doc = ConfDoc::parse(&text);
            // parse -> print gives back the host's bytes, whatever they are.
            prop_assert_eq!(encode(&doc.to_string()), bytes);
            // Each statement's source is the text of the lines it says it is on.
            let lines = split_lines(&text);
            for e in doc.entries() {
                let n = e.raw.matches('\n').count();
                let mut at = lines[e.line - 1..e.line + n].concat();
                if e.line == 1 && at.starts_with(BOM) {
                    at.drain(..BOM.len());
                }
                let at = at.strip_suffix('\n').unwrap_or(&at);
                let at = at.strip_suffix('\r').unwrap_or(at);
                prop_assert_eq!(&e.raw, at);
                prop_assert!(e.raw.trim_start().starts_with(&e.key));
            }
        }

        #[test]
        fn set_changes_only_named_lines(bytes in file_bytes(conf_line()), key in "key|other|listen_tcp|fresh", value in value_strategy()) {
            let text = decode(&bytes);
            let mut doc = ConfDoc::parse(&text);
            // The lines the edit names: the statement it rewrites, or a
            // commented-out assignment it replaces (or none: it appends).
            let mut named = commented_lines(&text, &key);
            if let Some(e) = doc.get(&key) {
                named.extend(span(e.line, e.raw.matches('\n').count()));
            }
            let others: Vec<Entry> = doc.entries().filter(|e| e.key != key).cloned().collect();
            if doc.set(&key, value.clone()).is_err() {
                prop_assert_eq!(doc.to_string(), text);
                return Ok(());
            }
            let new = doc.to_string();
            let e = doc.get(&key).unwrap().clone();
            prop_assert_eq!(&e.value, &value);
            let r = only_named_lines_changed(&text, &new, &named, &span(e.line, e.raw.matches('\n').count()), |_| false);
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            let others_after: Vec<(String, Value, String)> = doc.entries().filter(|e| e.key != key).map(|e| (e.key.clone(), e.value.clone(), e.raw.clone())).collect();
            prop_assert_eq!(others_after, others.into_iter().map(|e| (e.key, e.value, e.raw)).collect::<Vec<_>>());
            // What is printed parses to what the edit says it holds.
            prop_assert_eq!(ConfDoc::parse(&new).entries().cloned().collect::<Vec<_>>(), doc.entries().cloned().collect::<Vec<_>>());
            doc.set(&key, value).unwrap();
            prop_assert_eq!(doc.to_string(), new, "idempotent");
        }

        #[test]
        fn comment_out_changes_only_named_lines(bytes in file_bytes(conf_line()), key in "key|other") {
            let text = decode(&bytes);
            let mut doc = ConfDoc::parse(&text);
            let named: BTreeSet<usize> = doc.get_all(&key).iter().flat_map(|e| span(e.line, e.raw.matches('\n').count())).collect();
            let others: Vec<Entry> = doc.entries().filter(|e| e.key != key).cloned().collect();
            doc.comment_out(&key, "off").unwrap();
            let new = doc.to_string();
            let r = only_named_lines_changed(&text, &new, &named, &BTreeSet::new(), |l| l.starts_with('#'));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            prop_assert!(doc.get(&key).is_none());
            let others_after: Vec<(String, Value, String)> = doc.entries().map(|e| (e.key.clone(), e.value.clone(), e.raw.clone())).collect();
            prop_assert_eq!(others_after, others.into_iter().map(|e| (e.key, e.value, e.raw)).collect::<Vec<_>>());
        }

        #[test]
        fn set_then_get(lines in prop::collection::vec(
            "(#? ?)(key|other)[ \t]{0,2}=[ \t]{0,2}(\"[a-z]{0,3}\"|[0-9]{1,3}|\\[ \"a\" \\]|\\[)( # c)?\r?",
            0..8), value in value_strategy()) {
            let text = lines.join("\n");
            let mut doc = ConfDoc::parse(&text);
            let others: Vec<Entry> = doc.get_all("other").into_iter().cloned().collect();
            prop_assume!(value.render().is_some());
            doc.set("key", value.clone()).unwrap();
            let once = doc.to_string();
            prop_assert_eq!(&doc.get("key").unwrap().value, &value);
            let reparsed = ConfDoc::parse(&once);
            prop_assert_eq!(&reparsed.get("key").unwrap().value, &value);
            let others_after: Vec<(String, Value)> = reparsed.get_all("other").into_iter().map(|e| (e.raw.clone(), e.value.clone())).collect();
            let others_before: Vec<(String, Value)> = others.into_iter().map(|e| (e.raw, e.value)).collect();
            prop_assert_eq!(others_after, others_before);
            doc.set("key", value).unwrap();
            prop_assert_eq!(doc.to_string(), once);
            doc.comment_out("key", "off").unwrap();
            prop_assert!(doc.get("key").is_none());
        }
    }
}
