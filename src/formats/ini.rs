//! oslo.config INI files: `nova.conf`.
//!
//! Reading follows `oslo_config.iniparser` line by line (each line is first
//! stripped of trailing whitespace):
//!
//! * a blank line ends a multi-line value;
//! * a line starting with a space or tab continues the previous assignment's
//!   value (joined with `\n`); with no assignment before it, it is ignored;
//! * `[name]` starts a section (the name is everything between the brackets, kept
//!   as written); a section may appear several times and its parts merge;
//! * a line starting with `#` or `;` is a comment (no inline comments: in
//!   `key = a # b` the value is `a # b`);
//! * anything else is `key = value` or `key: value`, split at the first `=` or
//!   `:`; key and value are trimmed, and a value wrapped in matching `"` or `'` loses
//!   them. Keys may repeat (multi-valued options).
//!
//! Lines oslo would reject (`[unclosed`, `[]`, a line with neither `=` nor `:`, an
//! empty key, an orphan continuation) are kept verbatim and ignored. Assignments
//! before the first section, which oslo rejects, belong to the implicit section
//! `""`. Like oslo, section names match case-insensitively, except `DEFAULT`,
//! which matches only when spelt `DEFAULT` (oslo lower-cases every other name, so
//! `[LIBVIRT]` is `[libvirt]` but `[default]` is not `[DEFAULT]`).
//!
//! Edits follow [`IniDoc::set`] and [`IniDoc::comment_out`]; the document is
//! re-parsed after each edit, so [`IniEntry::line`] is always current.

use std::fmt;
use std::ops::Range;

use super::{
    EditError, Line, append_line, best_commented, comment_out_lines, commented_assignment,
    content_start, is_empty_doc, lines, newline_style, terminate_last_line,
};

/// An active assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    /// The section it belongs to, as written in its header (`""` before any header).
    pub section: String,
    /// The option name.
    pub key: String,
    /// The value as oslo reads it: trimmed, surrounding quotes removed,
    /// continuation lines joined with `\n`.
    pub value: String,
    /// 1-based line number of the `key = value` line.
    pub line: usize,
}

#[derive(Debug, Clone)]
struct Node {
    entry: IniEntry,
    /// Start of the key line.
    start: usize,
    /// Byte range of the value text (through the last continuation line).
    value: Range<usize>,
    /// End of the last line (key line or continuation), before its terminator.
    end: usize,
}

/// One `[name]` header and the lines up to the next header.
#[derive(Debug, Clone)]
struct Section {
    name: String,
    /// Start of the header line (for the implicit `""` section: the start of the
    /// text, after a byte order mark).
    start: usize,
    /// Start of the next header, or the text length.
    end: usize,
}

/// A parsed oslo.config INI file that reproduces its source exactly.
#[derive(Debug, Clone)]
pub struct IniDoc {
    text: String,
    /// [`IniDoc::drop_text`] was called.
    text_dropped: bool,
    nodes: Vec<Node>,
    /// Every header in file order, preceded by the implicit `""` section.
    sections: Vec<Section>,
}

/// Whether two section names denote the same oslo group.
fn same_section(a: &str, b: &str) -> bool {
    if a == "DEFAULT" || b == "DEFAULT" {
        a == b
    } else {
        a == b || a.to_lowercase() == b.to_lowercase()
    }
}

/// oslo's value unquoting: a value wrapped in the same quote character loses it.
fn unquote(value: &str) -> &str {
    match value.as_bytes() {
        [q @ (b'"' | b'\''), .., last] if last == q => &value[1..value.len() - 1],
        [b'"' | b'\''] => "",
        _ => value,
    }
}

impl IniDoc {
    /// Parses `text`. Never fails: lines oslo would reject are kept as-is.
    pub fn parse(text: &str) -> IniDoc {
        let mut nodes: Vec<Node> = Vec::new();
        let mut sections = vec![Section {
            name: String::new(),
            start: content_start(text),
            end: text.len(),
        }];
        // The node that a continuation line would extend.
        let mut open: Option<usize> = None;
        for (index, line) in lines(text).enumerate() {
            let content = &text[line.start..line.end];
            let trimmed = content.trim_end();
            if trimmed.is_empty() {
                open = None;
                continue;
            }
            if trimmed.starts_with([' ', '\t']) {
                if let Some(i) = open {
                    let node = &mut nodes[i];
                    node.entry.value.push('\n');
                    node.entry.value.push_str(trimmed.trim_start());
                    node.value.end = line.start + trimmed.len();
                    node.end = line.end;
                }
                continue;
            }
            open = None;
            if trimmed.starts_with('[') {
                if trimmed.len() > 2 && trimmed.ends_with(']') {
                    sections.last_mut().expect("implicit section").end = line.start;
                    let name = trimmed[1..trimmed.len() - 1].to_string();
                    sections.push(Section {
                        name,
                        start: line.start,
                        end: text.len(),
                    });
                }
                continue;
            }
            if trimmed.starts_with(['#', ';']) {
                continue;
            }
            let Some(sep) = trimmed.find(['=', ':']) else {
                continue;
            };
            let key = trimmed[..sep].trim();
            if key.is_empty() {
                continue;
            }
            let after = &trimmed[sep + 1..];
            let value_start = line.start + sep + 1 + (after.len() - after.trim_start().len());
            nodes.push(Node {
                entry: IniEntry {
                    section: sections.last().expect("implicit section").name.clone(),
                    key: key.to_string(),
                    value: unquote(after.trim()).to_string(),
                    line: index + 1,
                },
                start: line.start,
                value: value_start..line.start + trimmed.len(),
                end: line.end,
            });
            open = Some(nodes.len() - 1);
        }
        IniDoc {
            text: text.to_string(),
            text_dropped: false,
            nodes,
            sections,
        }
    }

    /// All active assignments, in file order.
    pub fn entries(&self) -> impl Iterator<Item = &IniEntry> {
        self.nodes.iter().map(|n| &n.entry)
    }

    /// The value oslo uses for a single-valued option: the last active
    /// assignment of `key` in `section`.
    pub fn get(&self, section: &str, key: &str) -> Option<&IniEntry> {
        self.get_all(section, key).pop()
    }

    /// Every active assignment of `key` in `section`, in file order (the values of
    /// a multi-valued option).
    pub fn get_all(&self, section: &str, key: &str) -> Vec<&IniEntry> {
        self.entries()
            .filter(|e| e.key == key && same_section(&e.section, section))
            .collect()
    }

    /// Section names in order of first appearance, without repeats (a later header
    /// of the same group is not listed again). The implicit `""` section comes
    /// first when it holds assignments.
    pub fn sections(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for section in &self.sections {
            let used = !section.name.is_empty() || self.entries().any(|e| e.section.is_empty());
            if used && !names.iter().any(|n| same_section(n, &section.name)) {
                names.push(&section.name);
            }
        }
        names
    }

    /// Sets `key` in `section` to `value`, like ansible's `ini_file` but keeping
    /// documented defaults in place:
    ///
    /// 1. If the section has an active assignment, the value text of the last one
    ///    is rewritten (its continuation lines, if any, are dropped); nothing
    ///    changes when it already reads as `value`. Earlier assignments of the key
    ///    (dead for a single-valued option) are left alone.
    /// 2. Else a commented-out assignment inside that section (`#key = default`,
    ///    as in Debian's generated `nova.conf`; see [the module rule](super)) is
    ///    replaced in place: `#live_migration_tunnelled = false` becomes
    ///    `live_migration_tunnelled = true`.
    /// 3. Else `key = value` is inserted after the section's last non-blank line
    ///    (in its last part, if the header repeats).
    /// 4. Else, the section being absent, `[section]` and `key = value` are
    ///    appended after a blank line.
    ///
    /// Values with leading or trailing whitespace, or wrapped in matching quotes,
    /// are written inside `"..."` so that oslo reads them back unchanged.
    ///
    /// # Errors
    ///
    /// Nothing changes, and the error names the line concerned, if `value`
    /// contains a line break (e.g. a value built from one that had continuation
    /// lines), `section` contains a line break or `]`, `key` is not a valid option
    /// name (empty, surrounding whitespace, `=`, `:` or a line break in it, or
    /// starting with `[`, `#` or `;`), or the text was dropped.
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> Result<(), EditError> {
        if self.text_dropped {
            return Err(EditError::new(None, "the document's text was dropped; it cannot be edited"));
        }
        if value.contains(['\n', '\r']) {
            let current = self.get(section, key);
            let why = match current {
                Some(e) if e.value.contains('\n') => "it has continuation lines, and the new value",
                _ => "the new value",
            };
            let line = current.map(|e| e.line);
            return Err(EditError::new(line, format!("[{section}] {key}: {why} {value:?} would span lines")));
        }
        if section.contains(['\n', '\r', ']']) {
            return Err(EditError::new(None, format!("invalid INI section name {section:?}")));
        }
        if key.is_empty()
            || key.trim() != key
            || key.contains(['=', ':', '\n', '\r'])
            || key.starts_with(['[', '#', ';'])
        {
            return Err(EditError::new(None, format!("invalid INI option name {key:?}")));
        }
        let rendered = render_value(value);
        let old_text = self.text.clone();
        let others = self.others(section, key);
        let active = self
            .nodes
            .iter()
            .rev()
            .find(|n| n.entry.key == key && same_section(&n.entry.section, section));
        if let Some(node) = active {
            if node.entry.value == value {
                return Ok(());
            }
            let range = node.value.clone();
            // `key =` with an empty value: keep the style's space after `=`.
            let spaced = range.is_empty()
                && self.text[..range.start].ends_with(['=', ':'])
                && self.text[..range.start - 1].ends_with([' ', '\t']);
            let new_value = if spaced {
                format!(" {rendered}")
            } else {
                rendered
            };
            self.text.replace_range(range, &new_value);
        } else if let Some((line, new_line)) =
            self.commented_default(section, key, value, &rendered)
        {
            self.text.replace_range(line.start..line.end, &new_line);
        } else if let Some(part) = self
            .sections
            .iter()
            .rev()
            .find(|s| same_section(&s.name, section))
        {
            let new_line = format!("{key} = {rendered}").trim_end().to_string();
            let last = lines(&self.text[..part.end])
                .skip_while(|l| l.next <= part.start)
                .filter(|l| !self.text[l.start..l.end].trim().is_empty())
                .last();
            match last {
                Some(l) if l.next == self.text.len() && !self.text.ends_with('\n') => {
                    append_line(&mut self.text, &new_line);
                }
                Some(l) => insert_line(&mut self.text, l.next, &new_line),
                None => insert_line(&mut self.text, part.start, &new_line),
            }
        } else {
            let ends_blank = lines(&self.text)
                .last()
                .is_some_and(|l| self.text[l.start..l.end].trim().is_empty());
            terminate_last_line(&mut self.text);
            let nl = newline_style(&self.text);
            if !is_empty_doc(&self.text) && !ends_blank {
                self.text.push_str(nl);
            }
            let new_line = format!("{key} = {rendered}");
            self.text
                .push_str(&format!("[{section}]{nl}{}{nl}", new_line.trim_end()));
        }
        self.reparse();
        // Read back: the option has the value, every other one reads as before.
        if self.get(section, key).map(|e| e.value.as_str()) != Some(value) || self.others(section, key) != others {
            let line = self.get(section, key).map(|e| e.line);
            *self = IniDoc::parse(&old_text);
            return Err(EditError::new(line, format!("[{section}] {key} = {value:?} would not read back as written, or would change other lines")));
        }
        Ok(())
    }

    /// The assignments of other options: (section, key, value).
    fn others(&self, section: &str, key: &str) -> Vec<(String, String, String)> {
        self.entries()
            .filter(|e| !(e.key == key && same_section(&e.section, section)))
            .map(|e| (e.section.clone(), e.key.clone(), e.value.clone()))
            .collect()
    }

    /// Comments out every active assignment of `key` in `section`: each of its
    /// lines gets a leading `#` (`key = value` becomes `#key = value`), preceded
    /// by a line `# note` (none when `note` is empty).
    ///
    /// # Errors
    ///
    /// If the text was dropped.
    pub fn comment_out(&mut self, section: &str, key: &str, note: &str) -> Result<(), EditError> {
        if self.text_dropped {
            return Err(EditError::new(None, "the document's text was dropped; it cannot be edited"));
        }
        let spans: Vec<(usize, usize)> = self
            .nodes
            .iter()
            .filter(|n| n.entry.key == key && same_section(&n.entry.section, section))
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

    /// The commented-out assignment of `key` inside `section` to replace, and its
    /// replacement line. A candidate followed by an indented line is skipped: once
    /// uncommented, it would take that line as a continuation of its value.
    fn commented_default(
        &self,
        section: &str,
        key: &str,
        value: &str,
        rendered: &str,
    ) -> Option<(Line, String)> {
        let text = self.text.as_str();
        let mut candidates = Vec::new();
        for part in self
            .sections
            .iter()
            .filter(|s| same_section(&s.name, section))
        {
            let part_lines: Vec<Line> = lines(&text[..part.end])
                .skip_while(|l| l.next <= part.start)
                .collect();
            for (i, &line) in part_lines.iter().enumerate() {
                let Some(c) = commented_assignment(&text[line.start..line.end], key) else {
                    continue;
                };
                let continued = part_lines.get(i + 1).is_some_and(|next| {
                    let content = &text[next.start..next.end];
                    content.starts_with([' ', '\t']) && !content.trim().is_empty()
                });
                if !continued {
                    candidates.push((line, c, unquote(c.rest.trim()) == value));
                }
            }
        }
        let (line, c) = best_commented(candidates)?;
        let separator = if rendered.is_empty() {
            c.separator.trim_end()
        } else {
            c.separator
        };
        Some((line, format!("{key}{separator}{rendered}")))
    }

    fn reparse(&mut self) {
        let text = std::mem::take(&mut self.text);
        *self = IniDoc::parse(&text);
    }
}

impl IniDoc {
    /// Frees the source text, keeping the parsed entries (`get`, `entries` still
    /// answer; line numbers stay those of the source). For read-only audits of many
    /// hosts: after this the document prints as empty and cannot be edited.
    pub fn drop_text(&mut self) {
        self.text = String::new();
        self.text_dropped = true;
    }
}

impl super::Text for IniDoc {
    fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for IniDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Inserts `line` and a terminator as a new line starting at `at` (a line start).
fn insert_line(text: &mut String, at: usize, line: &str) {
    let nl = newline_style(text);
    text.insert_str(at, &format!("{line}{nl}"));
}

/// Writes `value` so that oslo reads it back unchanged.
fn render_value(value: &str) -> String {
    if value.trim() != value || unquote(value) != value {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::formats::BOM;
    use crate::formats::bytes::{decode, encode};
    use crate::formats::testutil::{changed_lines, commented_lines, file_bytes, fixture, only_named_lines_changed, span, split_lines};
    use std::collections::BTreeSet;

    /// Lines of an oslo.config file: headers, assignments, continuations,
    /// comments and commented-out defaults, junk.
    fn ini_line() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => "\\[(s|t|DEFAULT|S|default)\\][ \t]?|\\[broken|\\[\\]",
            5 => "(key|other|k2)[ \t]{0,2}[=:][ \t]{0,2}[a-z \u{e9}\"'#=:]{0,6}[ \t]{0,2}",
            2 => "[ \t]{1,3}[a-z\u{e9}=]{1,5}",
            2 => "[#;]( )?(key|other)[ \t]?=[ ]?[a-z\"]{0,3}|[#;][a-z \u{e9}]{0,8}",
            1 => "[ \t]{0,2}",
            1 => "[a-zA-Z0-9_ \t=:\\[\\]\"';#\u{e9}\u{65e5}]{0,10}",
        ]
    }

    fn value_of(doc: &IniDoc, section: &str, key: &str) -> Option<String> {
        doc.get(section, key).map(|e| e.value.clone())
    }

    #[test]
    fn reads_like_oslo() {
        let text = "top = 1\n[DEFAULT]\ndebug=true\nmy_ip = 10.0.0.1  \n\
                    transport_url: rabbit://a:b@h:5672/\n[libvirt]\nvirt_type = kvm # not a comment\n\
                    quoted = \"x y\"\nempty =\nq = \"\n; semi\n#x = 1\nmulti = a\n  b\n\tc\n\nafter = 1\n";
        let doc = IniDoc::parse(text);
        assert_eq!(doc.to_string(), text);
        assert_eq!(value_of(&doc, "", "top").as_deref(), Some("1"));
        assert_eq!(value_of(&doc, "DEFAULT", "debug").as_deref(), Some("true"));
        assert_eq!(
            value_of(&doc, "DEFAULT", "my_ip").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            value_of(&doc, "DEFAULT", "transport_url").as_deref(),
            Some("rabbit://a:b@h:5672/")
        );
        assert_eq!(
            value_of(&doc, "libvirt", "virt_type").as_deref(),
            Some("kvm # not a comment")
        );
        assert_eq!(value_of(&doc, "libvirt", "quoted").as_deref(), Some("x y"));
        assert_eq!(value_of(&doc, "libvirt", "empty").as_deref(), Some(""));
        assert_eq!(value_of(&doc, "libvirt", "q").as_deref(), Some(""));
        assert_eq!(value_of(&doc, "libvirt", "x"), None);
        assert_eq!(
            value_of(&doc, "libvirt", "multi").as_deref(),
            Some("a\nb\nc")
        );
        assert_eq!(doc.get("libvirt", "after").unwrap().line, 17);
        assert_eq!(doc.get("DEFAULT", "virt_type"), None);
        assert_eq!(doc.sections(), vec!["", "DEFAULT", "libvirt"]);
    }

    #[test]
    fn bom_is_kept_and_skipped() {
        let text = "\u{feff}[DEFAULT]\nx = 1\n";
        let mut doc = IniDoc::parse(text);
        assert_eq!(doc.get("DEFAULT", "x").map(|e| (e.value.as_str(), e.line)), Some(("1", 2)));
        assert_eq!(doc.sections(), vec!["DEFAULT"]);
        assert_eq!(doc.to_string(), text);
        doc.set("DEFAULT", "y", "2").unwrap();
        assert_eq!(doc.to_string(), "\u{feff}[DEFAULT]\nx = 1\ny = 2\n");
        let mut doc = IniDoc::parse("\u{feff}k = 1\n");
        assert_eq!(value_of(&doc, "", "k").as_deref(), Some("1"));
        doc.comment_out("", "k", "").unwrap();
        assert_eq!(doc.to_string(), "\u{feff}#k = 1\n");
        let mut doc = IniDoc::parse("\u{feff}\n[b]\n");
        doc.set("", "k", "v").unwrap();
        assert_eq!(doc.to_string(), "\u{feff}k = v\n\n[b]\n");
        let mut doc = IniDoc::parse("\u{feff}");
        doc.set("vnc", "k", "v").unwrap();
        assert_eq!(doc.to_string(), "\u{feff}[vnc]\nk = v\n");
    }

    #[test]
    fn rejected_lines_are_kept_and_ignored() {
        let text = "  orphan = 1\n[unclosed\n[]\nno separator\n= novalue\n[s]\n#c\n  cont = x\n";
        let doc = IniDoc::parse(text);
        assert_eq!(doc.to_string(), text);
        assert_eq!(doc.entries().count(), 0);
        assert_eq!(doc.sections(), vec!["s"]);
    }

    #[test]
    fn repeated_keys_and_sections() {
        let doc = IniDoc::parse("[a]\nk = 1\n[b]\nk = 9\n[A]\nk = 2\n");
        assert_eq!(
            doc.get_all("a", "k")
                .iter()
                .map(|e| e.value.as_str())
                .collect::<Vec<_>>(),
            vec!["1", "2"]
        );
        assert_eq!(value_of(&doc, "a", "k").as_deref(), Some("2"));
        assert_eq!(doc.sections(), vec!["a", "b"]);
    }

    #[test]
    fn default_is_case_sensitive_others_are_not() {
        let doc = IniDoc::parse("[default]\nx = 1\n[Libvirt]\ny = 2\n");
        assert_eq!(doc.get("DEFAULT", "x"), None);
        assert_eq!(value_of(&doc, "default", "x").as_deref(), Some("1"));
        assert_eq!(value_of(&doc, "libvirt", "y").as_deref(), Some("2"));
        assert_eq!(doc.sections(), vec!["default", "Libvirt"]);
    }

    #[test]
    fn set_rewrites_value_only() {
        let mut doc = IniDoc::parse("[libvirt]\nvirt_type=qemu   \r\nk : v\nm = a\n  b\nz = 1\n");
        doc.set("libvirt", "virt_type", "kvm").unwrap();
        doc.set("libvirt", "k", "w").unwrap();
        doc.set("libvirt", "m", "c").unwrap();
        assert_eq!(
            doc.to_string(),
            "[libvirt]\nvirt_type=kvm   \r\nk : w\nm = c\nz = 1\n"
        );
        doc.set("libvirt", "k", " padded ").unwrap();
        assert_eq!(value_of(&doc, "libvirt", "k").as_deref(), Some(" padded "));
        assert!(
            doc.to_string().contains("k : \" padded \"\r\n")
                || doc.to_string().contains("k : \" padded \"\n")
        );
    }

    #[test]
    fn set_same_value_keeps_spelling() {
        let text = "[s]\nk = \"v\"\n";
        let mut doc = IniDoc::parse(text);
        doc.set("s", "k", "v").unwrap();
        assert_eq!(doc.to_string(), text);
    }

    #[test]
    fn set_fills_empty_value() {
        let mut doc = IniDoc::parse("[s]\na =\nb=\n");
        doc.set("s", "a", "1").unwrap();
        doc.set("s", "b", "2").unwrap();
        assert_eq!(doc.to_string(), "[s]\na = 1\nb=2\n");
    }

    #[test]
    fn set_uncomments_default_in_that_section_only() {
        let text = "[DEFAULT]\n#flag = false\n\n[libvirt]\n# The flag.\n#  flag = prose\n# flag = maybe\n#flag = false\n\n[vnc]\n";
        let mut doc = IniDoc::parse(text);
        doc.set("libvirt", "flag", "true").unwrap();
        assert_eq!(
            doc.to_string(),
            "[DEFAULT]\n#flag = false\n\n[libvirt]\n# The flag.\n#  flag = prose\n# flag = maybe\nflag = true\n\n[vnc]\n"
        );
        let mut doc = IniDoc::parse("[s]\n#scheme = <None>\n");
        doc.set("s", "scheme", "").unwrap();
        assert_eq!(doc.to_string(), "[s]\nscheme =\n");
        let mut doc = IniDoc::parse("[s]\n#k = 1\n  indented\n");
        doc.set("s", "k", "2").unwrap();
        assert_eq!(doc.to_string(), "[s]\n#k = 1\n  indented\nk = 2\n");
    }

    #[test]
    fn set_inserts_at_end_of_section() {
        let mut doc = IniDoc::parse("[a]\nx = 1\n# tail\n\n\n[b]\ny = 2");
        doc.set("a", "new", "v").unwrap();
        doc.set("b", "new", "w").unwrap();
        assert_eq!(
            doc.to_string(),
            "[a]\nx = 1\n# tail\nnew = v\n\n\n[b]\ny = 2\nnew = w\n"
        );
        let mut doc = IniDoc::parse("[a]\r\n[b]\r\n");
        doc.set("a", "k", "v").unwrap();
        assert_eq!(doc.to_string(), "[a]\r\nk = v\r\n[b]\r\n");
        let mut doc = IniDoc::parse("\n[b]\n");
        doc.set("", "k", "v").unwrap();
        assert_eq!(doc.to_string(), "k = v\n\n[b]\n");
        let mut doc = IniDoc::parse("[a]\nx = 1\n[b]\n[a]\n# second part\n");
        doc.set("a", "k", "v").unwrap();
        assert_eq!(
            doc.to_string(),
            "[a]\nx = 1\n[b]\n[a]\n# second part\nk = v\n"
        );
    }

    #[test]
    fn set_appends_missing_section() {
        let mut doc = IniDoc::parse("[DEFAULT]\nx = 1");
        doc.set("libvirt", "k", "v").unwrap();
        assert_eq!(doc.to_string(), "[DEFAULT]\nx = 1\n\n[libvirt]\nk = v\n");
        let mut doc = IniDoc::parse("[DEFAULT]\n\n");
        doc.set("vnc", "k", "v").unwrap();
        assert_eq!(doc.to_string(), "[DEFAULT]\n\n[vnc]\nk = v\n");
        let mut doc = IniDoc::parse("");
        doc.set("vnc", "k", "v").unwrap();
        assert_eq!(doc.to_string(), "[vnc]\nk = v\n");
    }

    #[test]
    fn comment_out_active_occurrences() {
        let mut doc = IniDoc::parse("[s]\nk = 1\nk = 2\n  more\n[t]\nk = 3\n");
        doc.comment_out("s", "k", "migready: tunnelling breaks block migration").unwrap();
        assert_eq!(
            doc.to_string(),
            "[s]\n# migready: tunnelling breaks block migration\n#k = 1\n\
             # migready: tunnelling breaks block migration\n#k = 2\n#  more\n[t]\nk = 3\n"
        );
        assert_eq!(doc.get("s", "k"), None);
        assert_eq!(value_of(&doc, "t", "k").as_deref(), Some("3"));
    }

    #[test]
    fn set_refuses_multi_line_value() {
        let text = "[s]\nk = a\n  b\n";
        let mut doc = IniDoc::parse(text);
        let e = doc.set("s", "k", "a\nb").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(
            e.note("/etc/nova/nova.conf"),
            "/etc/nova/nova.conf line 2: [s] k: it has continuation lines, and the new value \"a\\nb\" would span lines; not edited"
        );
        assert_eq!(doc.to_string(), text);
        let e = IniDoc::parse("").set("s", "k", "x\ry").unwrap_err();
        assert_eq!(e.line, None);
        assert!(IniDoc::parse("").set("s", "bad=key", "v").is_err());
        assert!(IniDoc::parse("").set("s]", "k", "v").is_err());
        let mut dropped = IniDoc::parse(text);
        dropped.drop_text();
        assert!(dropped.set("s", "k", "v").is_err());
        assert!(dropped.comment_out("s", "k", "").is_err());
    }

    #[test]
    fn debian_nova_conf() {
        let text = fixture("nova.conf.debian12");
        let doc = IniDoc::parse(&text);
        assert_eq!(doc.to_string(), text);
        assert!(doc.sections().contains(&"libvirt"));
        assert_eq!(doc.get("libvirt", "live_migration_tunnelled"), None);
        // The package's postinst filled in my_ip when the lab image was built.
        assert_eq!(
            value_of(&doc, "DEFAULT", "my_ip").as_deref(),
            Some("192.0.2.2")
        );
        assert_eq!(doc.get("DEFAULT", "my_ip").unwrap().line, 1329);

        let mut edited = doc.clone();
        edited.set("libvirt", "live_migration_tunnelled", "false").unwrap();
        let after = edited.to_string();
        let changed = changed_lines(&text, &after);
        assert_eq!(changed.len(), 1);
        let n = changed[0];
        assert_eq!(
            text.split('\n').nth(n - 1).unwrap(),
            "#live_migration_tunnelled = false"
        );
        assert_eq!(
            after.split('\n').nth(n - 1).unwrap(),
            "live_migration_tunnelled = false"
        );
        let header = text
            .split('\n')
            .take(n)
            .filter(|l| l.starts_with('['))
            .last();
        assert_eq!(header, Some("[libvirt]"));
        let entry = edited.get("libvirt", "live_migration_tunnelled").unwrap();
        assert_eq!((entry.value.as_str(), entry.line), ("false", n));
        edited.set("libvirt", "live_migration_tunnelled", "false").unwrap();
        assert_eq!(edited.to_string(), after, "idempotent");

        // Other options land on their own documented defaults too.
        edited.set("libvirt", "live_migration_scheme", "tcp").unwrap();
        edited.set("DEFAULT", "my_ip", "192.0.2.10").unwrap();
        assert_eq!(changed_lines(&text, &edited.to_string()).len(), 3);
        edited.comment_out("libvirt", "live_migration_tunnelled", "migready").unwrap();
        assert_eq!(edited.get("libvirt", "live_migration_tunnelled"), None);
    }

    #[test]
    fn debian_nova_compute_conf() {
        let text = fixture("nova-compute.conf.debian12");
        let doc = IniDoc::parse(&text);
        assert_eq!(doc.to_string(), text);
        assert_eq!(doc.sections(), vec!["DEFAULT", "libvirt"]);
        assert_eq!(
            value_of(&doc, "libvirt", "virt_type").as_deref(),
            Some("kvm")
        );
        assert_eq!(doc.get("libvirt", "cpu_mode"), None);
        let mut edited = doc.clone();
        edited.set("libvirt", "cpu_mode", "host-model").unwrap();
        assert_eq!(changed_lines(&text, &edited.to_string()).len(), 1);
        assert!(edited.to_string().ends_with("\ncpu_mode=host-model\n"));
    }

    #[test]
    fn parses_nova_conf_fast() {
        let text = fixture("nova.conf.debian12");
        let start = std::time::Instant::now();
        let rounds = 20;
        for _ in 0..rounds {
            std::hint::black_box(IniDoc::parse(std::hint::black_box(&text)));
        }
        let per_parse = start.elapsed() / rounds;
        // Release builds take well under 5 ms; leave room for unoptimised test builds.
        let limit = if cfg!(debug_assertions) { 100 } else { 5 };
        assert!(per_parse.as_millis() < limit, "parse took {per_parse:?}");
    }

    proptest! {
        #[test]
        fn round_trip_and_entries_point_at_their_lines(bytes in file_bytes(ini_line())) {
            let text = decode(&bytes);
            let doc = IniDoc::parse(&text);
            prop_assert_eq!(encode(&doc.to_string()), bytes);
            let lines = split_lines(&text);
            for e in doc.entries() {
                let first = lines[e.line - 1];
                let first = if e.line == 1 { first.strip_prefix(BOM).unwrap_or(first) } else { first };
                let after = first.strip_prefix(e.key.as_str());
                prop_assert!(after.is_some_and(|a| a.trim_start().starts_with(['=', ':'])), "{:?} is not line {} {:?}", e, e.line, first);
                // Continuation lines follow, indented.
                for k in 0..e.value.matches('\n').count() {
                    prop_assert!(lines[e.line + k].starts_with([' ', '\t']), "{:?} line {}", e, e.line + k + 1);
                }
            }
        }

        #[test]
        fn set_changes_only_named_lines(bytes in file_bytes(ini_line()), section in "s|t|DEFAULT|S|default|new|", key in "key|other|fresh", value in "[a-z \u{e9}\"'#=:;]{0,6}") {
            let text = decode(&bytes);
            let mut doc = IniDoc::parse(&text);
            let mut named = commented_lines(&text, &key);
            if let Some(e) = doc.get(&section, &key) {
                named.extend(span(e.line, e.value.matches('\n').count()));
            }
            let others: Vec<IniEntry> = doc.entries().filter(|e| !(e.key == key && same_section(&e.section, &section))).cloned().collect();
            if doc.set(&section, &key, &value).is_err() {
                prop_assert_eq!(doc.to_string(), text);
                return Ok(());
            }
            let new = doc.to_string();
            let e = doc.get(&section, &key).unwrap().clone();
            prop_assert_eq!(&e.value, &value);
            let header = format!("[{section}]");
            let r = only_named_lines_changed(&text, &new, &named, &span(e.line, 0), |l| l.trim_end() == header || l.trim().is_empty());
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            let key_of = |e: &IniEntry| (e.section.clone(), e.key.clone(), e.value.clone());
            let others_after: Vec<_> = doc.entries().filter(|e| !(e.key == key && same_section(&e.section, &section))).map(key_of).collect();
            prop_assert_eq!(others_after, others.iter().map(key_of).collect::<Vec<_>>());
            prop_assert_eq!(IniDoc::parse(&new).entries().cloned().collect::<Vec<_>>(), doc.entries().cloned().collect::<Vec<_>>());
            doc.set(&section, &key, &value).unwrap();
            prop_assert_eq!(doc.to_string(), new, "idempotent");
        }

        #[test]
        fn comment_out_changes_only_named_lines(bytes in file_bytes(ini_line()), section in "s|t|DEFAULT|S|", key in "key|other") {
            let text = decode(&bytes);
            let mut doc = IniDoc::parse(&text);
            let named: BTreeSet<usize> = doc.get_all(&section, &key).iter().flat_map(|e| span(e.line, e.value.matches('\n').count())).collect();
            let key_of = |e: &IniEntry| (e.section.clone(), e.key.clone(), e.value.clone());
            let others: Vec<_> = doc.entries().filter(|e| !(e.key == key && same_section(&e.section, &section))).map(key_of).collect();
            doc.comment_out(&section, &key, "off").unwrap();
            let new = doc.to_string();
            let r = only_named_lines_changed(&text, &new, &named, &BTreeSet::new(), |l| l.starts_with('#'));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            prop_assert_eq!(doc.get(&section, &key), None);
            prop_assert_eq!(doc.entries().map(key_of).collect::<Vec<_>>(), others);
        }

        #[test]
        fn set_then_get(lines in prop::collection::vec(
            "(\\[(s|t|DEFAULT)\\]|(#|# |  )?(key|other) ?[=:] ?[a-z\"]{0,3}|  cont|)\r?", 0..10),
            section in "s|t|DEFAULT|S",
            value in "[a-z \"'#=:]{0,6}") {
            let text = lines.join("\n");
            let mut doc = IniDoc::parse(&text);
            let others: Vec<IniEntry> = doc.entries().filter(|e| e.key != "key").cloned().collect();
            doc.set(&section, "key", &value).unwrap();
            let once = doc.to_string();
            let reparsed = IniDoc::parse(&once);
            prop_assert_eq!(value_of(&reparsed, &section, "key"), Some(value.clone()));
            let others_after: Vec<(String, String, String)> = reparsed.entries().filter(|e| e.key != "key")
                .map(|e| (e.section.clone(), e.key.clone(), e.value.clone())).collect();
            let others_before: Vec<(String, String, String)> = others.into_iter()
                .map(|e| (e.section, e.key, e.value)).collect();
            prop_assert_eq!(others_after, others_before);
            doc.set(&section, "key", &value).unwrap();
            prop_assert_eq!(doc.to_string(), once);
            doc.comment_out(&section, "key", "off").unwrap();
            prop_assert_eq!(doc.get(&section, "key"), None);
        }
    }
}
