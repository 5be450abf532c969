//! Ansible inventories, INI and YAML: the hosts, their groups and the
//! connection variables migready uses (`ansible_host`, `ansible_user`,
//! `ansible_port`, `ansible_ssh_private_key_file` and their `ansible_ssh_*` /
//! `ansible_private_key_file` spellings). Other variables are ignored.
//!
//! Both forms are read into one [`Tree`] (groups with their hosts, children and
//! vars; hosts with their own vars, every value with its line and column), then
//! [`resolve`]d as Ansible does: a host is in the groups it is listed in and in
//! their ancestors; its variables are those of `all`, then of its other groups
//! by depth (a child after its parent) and name, then its own, later ones winning.
//!
//! The INI form is not plain INI: host lines are split as Python's `shlex`
//! splits them (quotes, `#` comments), `[g:vars]` / `[g:children]` sections,
//! host ranges (`compute[01:03]`, `node[a:c]`, `[1:9:2]`) and `host:port`. The
//! YAML form is read with yaml-rust2's event parser, which gives every node its
//! position. Values migready uses must be literal: a Jinja template (`{{ … }}`)
//! or a vault-encrypted value is refused at its line.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser as YamlParser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// The variables migready takes from an Ansible inventory, in Ansible's order
/// of precedence within each setting: where both spellings are set, the later
/// one wins (as Ansible's ssh connection plugin reads them).
pub(super) const ADDRESS_VARS: &[&str] = &["ansible_host", "ansible_ssh_host"];
pub(super) const USER_VARS: &[&str] = &["ansible_user", "ansible_ssh_user"];
pub(super) const PORT_VARS: &[&str] = &["ansible_port", "ansible_ssh_port"];
pub(super) const KEY_VARS: &[&str] = &["ansible_private_key_file", "ansible_ssh_private_key_file"];

/// Most hosts one range pattern may expand to.
const MAX_RANGE_HOSTS: usize = 100_000;

fn used(key: &str) -> bool {
    ADDRESS_VARS.contains(&key) || USER_VARS.contains(&key) || PORT_VARS.contains(&key) || KEY_VARS.contains(&key)
}

/// Which kind of inventory a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    AnsibleIni,
    AnsibleYaml,
}

impl Format {
    /// For messages: `TOML`, `Ansible INI`, `Ansible YAML`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Toml => "TOML",
            Format::AnsibleIni => "Ansible INI",
            Format::AnsibleYaml => "Ansible YAML",
        }
    }
}

/// Top-level tables of migready's TOML inventory.
pub(super) const TOML_SECTIONS: &[&str] = &["defaults", "hosts", "checks", "policy", "nova", "inventory"];

/// Tells a TOML inventory from an Ansible INI or YAML one: by the file's
/// extension (`.toml`; `.ini`; `.yml`, `.yaml`, `.json`), else by its content.
/// A TOML inventory parses as TOML with only migready's tables, or starts with
/// `[[hosts]]`, a `key = value` line or one of migready's tables; YAML starts
/// with `---`, `{` or a `key:` line; anything else (a `[group]` header, a host
/// line) is Ansible INI.
pub fn detect(path: &Path, text: &str) -> Format {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("toml") => return Format::Toml,
        Some("ini") => return Format::AnsibleIni,
        Some("yml" | "yaml" | "json") => return Format::AnsibleYaml,
        _ => {}
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
    else {
        return Format::Toml;
    };
    if first.starts_with("---") || first.starts_with("%YAML") || first.starts_with('{') {
        return Format::AnsibleYaml;
    }
    if first.starts_with("[[") {
        return Format::Toml;
    }
    if let Ok(doc) = toml_edit::Document::parse(text)
        && doc.iter().all(|(k, _)| TOML_SECTIONS.contains(&k))
    {
        return Format::Toml;
    }
    if let Some(rest) = first.strip_prefix('[') {
        let name = rest.split(']').next().unwrap_or("").trim();
        // `[defaults]` that does not parse as TOML: TOML with an error, to be named.
        // An Ansible group called so has no `key = value` lines in it.
        return if TOML_SECTIONS.contains(&name) && text.lines().any(is_toml_assignment) {
            Format::Toml
        } else {
            Format::AnsibleIni
        };
    }
    if is_toml_assignment(first) {
        return Format::Toml;
    }
    // `all:` / `compute: {…}`: a YAML mapping key (INI's `host:port` has no space or
    // end of line after the colon).
    if let Some((key, rest)) = first.split_once(':')
        && !key.is_empty()
        && !key.contains(char::is_whitespace)
        && !key.contains('=')
        && (rest.is_empty() || rest.starts_with([' ', '\t']))
    {
        return Format::AnsibleYaml;
    }
    Format::AnsibleIni
}

/// `key = value` as TOML writes it: a bare key, `=`, and a string, number,
/// boolean, array or table (an Ansible `[g:vars]` line may look so too, but
/// never before a section header).
fn is_toml_assignment(line: &str) -> bool {
    let Some((key, value)) = line.trim().split_once('=') else {
        return false;
    };
    let key = key.trim();
    let value = value.trim_start();
    !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && (value.starts_with(['"', '\'', '[', '{'])
            || value.starts_with(|c: char| c.is_ascii_digit())
            || value.starts_with("true")
            || value.starts_with("false"))
}

/// A value from the file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Val {
    pub text: String,
    pub line: usize,
    pub column: usize,
    /// Set by [`resolve`] for a value a host takes from a group's variables.
    pub group: Option<String>,
}

/// What is wrong, and where (1-based line and column; 0: no position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsibleError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn err(line: usize, column: usize, message: impl Into<String>) -> AnsibleError {
    AnsibleError { line, column, message: message.into() }
}

#[derive(Debug, Default)]
struct Group {
    /// (child, line of the reference).
    children: Vec<(String, usize, usize)>,
    vars: Vec<(String, Val)>,
}

#[derive(Debug)]
struct HostEntry {
    name: String,
    line: usize,
    column: usize,
    /// Groups it is listed in directly.
    groups: Vec<String>,
    vars: Vec<(String, Val)>,
}

/// An inventory as written: groups and hosts in file order.
#[derive(Debug, Default)]
pub struct Tree {
    groups: Vec<(String, Group)>,
    group_index: HashMap<String, usize>,
    hosts: Vec<HostEntry>,
    host_index: HashMap<String, usize>,
}

impl Tree {
    fn group(&mut self, name: &str) -> &mut Group {
        let index = match self.group_index.get(name) {
            Some(&i) => i,
            None => {
                self.groups.push((name.to_string(), Group::default()));
                self.group_index.insert(name.to_string(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        &mut self.groups[index].1
    }

    fn host(&mut self, name: &str, line: usize, column: usize) -> &mut HostEntry {
        let index = match self.host_index.get(name) {
            Some(&i) => i,
            None => {
                self.hosts.push(HostEntry { name: name.to_string(), line, column, groups: Vec::new(), vars: Vec::new() });
                self.host_index.insert(name.to_string(), self.hosts.len() - 1);
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[index]
    }

    fn add_host(&mut self, name: &str, group: &str, line: usize, column: usize, vars: Vec<(String, Val)>) {
        self.group(group);
        let host = self.host(name, line, column);
        if !host.groups.iter().any(|g| g == group) {
            host.groups.push(group.to_string());
        }
        host.vars.extend(vars);
    }
}

/// One host as Ansible sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsibleHost {
    /// `inventory_hostname`.
    pub name: String,
    /// Where the host is first listed.
    pub line: usize,
    pub column: usize,
    /// Its groups and their ancestors, sorted, without `all`; `ungrouped` when
    /// it is in no other group.
    pub groups: Vec<String>,
    /// The variables migready uses, after Ansible's merging.
    pub vars: HashMap<String, Val>,
}

/// The hosts of an inventory, and every group name it declares (`all` and
/// `ungrouped` included), sorted.
#[derive(Debug)]
pub struct Resolved {
    pub hosts: Vec<AnsibleHost>,
    pub groups: Vec<String>,
}

/// Checks a group name: letters, digits, `_`, `-` and `.` (kolla-ansible's groups
/// have dashes; Ansible warns about them but takes them).
pub(super) fn check_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a group name must not be empty".to_string());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(format!("{c:?} is not allowed in a group name {name:?} (letters, digits, '_', '-' and '.' only)"));
    }
    Ok(())
}

/// A value of a variable migready uses must be literal.
fn check_literal(key: &str, val: &Val) -> Result<(), AnsibleError> {
    if val.text.contains("{{") || val.text.contains("{%") || val.text.contains("{#") {
        return Err(err(
            val.line,
            val.column,
            format!("{key}: {:?} is a Jinja template: migready does not evaluate templates (write the value itself)", val.text),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// INI

/// Parses the INI form.
pub fn parse_ini(text: &str) -> Result<Tree, AnsibleError> {
    let mut tree = Tree::default();
    tree.group("all");
    tree.group("ungrouped");
    let mut group = "ungrouped".to_string();
    #[derive(PartialEq)]
    enum State {
        Hosts,
        Vars,
        Children,
    }
    let mut state = State::Hosts;
    // Groups declared by [g] or [g:children] (a [g:vars] alone is not a declaration).
    let mut declared: HashSet<String> = ["all", "ungrouped"].iter().map(|s| s.to_string()).collect();
    // Groups named by [g:vars] or as a child, with the first line: must be declared.
    let mut pending: Vec<(String, usize, String)> = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        let lineno = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let column = raw.chars().take_while(|c| c.is_whitespace()).count() + 1;
        if line.starts_with('[') {
            let (name, kind) = section(line).map_err(|m| err(lineno, column, m))?;
            check_group_name(&name).map_err(|m| err(lineno, column + 1, m))?;
            state = match kind.as_deref() {
                None | Some("hosts") => State::Hosts,
                Some("vars") => State::Vars,
                Some("children") => State::Children,
                Some(other) => {
                    return Err(err(lineno, column, format!("section [{name}:{other}] has unknown type {other:?} (hosts, vars or children)")));
                }
            };
            if state == State::Vars {
                pending.push((name.clone(), lineno, format!("section [{name}:vars] is for group {name:?}, which is not declared ([{name}] or [{name}:children])")));
            } else {
                declared.insert(name.clone());
            }
            tree.group(&name);
            group = name;
            continue;
        }
        match state {
            State::Hosts => {
                let tokens = shlex(raw).map_err(|m| err(lineno, column, m))?;
                let Some((pattern, pcol)) = tokens.first() else {
                    continue; // only a comment after all (`""  # x` is a name; see below)
                };
                let (names, port) = expand_host_pattern(pattern).map_err(|m| err(lineno, *pcol, m))?;
                let mut vars = Vec::new();
                if let Some(port) = port {
                    vars.push(("ansible_port".to_string(), Val { text: port, line: lineno, column: *pcol, group: None }));
                }
                for (token, tcol) in &tokens[1..] {
                    let Some((key, value)) = token.split_once('=') else {
                        return Err(err(lineno, *tcol, format!("expected key=value after the host name, found {token:?}")));
                    };
                    if used(key) {
                        let val = Val { text: python_literal(value), line: lineno, column: tcol + key.chars().count() + 1, group: None };
                        check_literal(key, &val)?;
                        vars.push((key.to_string(), val));
                    }
                }
                for name in names {
                    tree.add_host(&name, &group, lineno, *pcol, vars.clone());
                }
            }
            State::Vars => {
                let Some((key, value)) = line.split_once('=') else {
                    return Err(err(lineno, column, format!("[{group}:vars]: expected key=value, found {line:?}")));
                };
                let key = key.trim();
                if used(key) {
                    let value_col = column + line.chars().count() - line.split_once('=').map_or("", |(_, v)| v).trim_start().chars().count();
                    let val = Val { text: python_literal(value.trim()), line: lineno, column: value_col, group: None };
                    check_literal(key, &val)?;
                    tree.group(&group).vars.push((key.to_string(), val));
                }
            }
            State::Children => {
                let child = line.split('#').next().unwrap_or("").trim();
                if child.contains(char::is_whitespace) {
                    return Err(err(lineno, column, format!("[{group}:children]: expected one group name a line, found {line:?}")));
                }
                check_group_name(child).map_err(|m| err(lineno, column, format!("[{group}:children]: {m}")))?;
                if child == group {
                    return Err(err(lineno, column, format!("group {group:?} cannot be its own child")));
                }
                tree.group(child);
                pending.push((child.to_string(), lineno, format!("section [{group}:children] names group {child:?}, which is not declared")));
                let g = tree.group(&group);
                if !g.children.iter().any(|(c, _, _)| c == child) {
                    g.children.push((child.to_string(), lineno, column));
                }
            }
        }
    }
    if let Some((_, line, message)) = pending.into_iter().find(|(name, _, _)| !declared.contains(name)) {
        return Err(err(line, 1, message));
    }
    Ok(tree)
}

/// `[name]` or `[name:kind]`, then optionally a comment.
fn section(line: &str) -> Result<(String, Option<String>), String> {
    let invalid = || format!("invalid section header {line:?} (expected [group], [group:vars] or [group:children], without spaces)");
    let inner = line.strip_prefix('[').ok_or_else(invalid)?;
    let (inner, rest) = inner.split_once(']').ok_or_else(invalid)?;
    let rest = rest.trim_start();
    if !(rest.is_empty() || rest.starts_with('#') || rest.starts_with(';')) || inner.contains(char::is_whitespace) || inner.is_empty() {
        return Err(invalid());
    }
    match inner.split_once(':') {
        Some((name, kind)) if !name.is_empty() && !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Ok((name.to_string(), Some(kind.to_string())))
        }
        Some(_) => Err(invalid()),
        None => Ok((inner.to_string(), None)),
    }
}

/// Splits a host line as Python's `shlex.split(line, comments=True)` does:
/// whitespace separates, `'…'` is literal, `"…"` takes `\"` and `\\`, a
/// backslash outside quotes escapes the next character, `#` outside quotes ends
/// the line. Each token with the 1-based column where it starts.
fn shlex(line: &str) -> Result<Vec<(String, usize)>, String> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().enumerate().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            break;
        }
        let start = i + 1;
        let mut token = String::new();
        let mut comment = false;
        while let Some(&(_, c)) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '#' => {
                    comment = true;
                    break;
                }
                '\'' => loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => token.push(c),
                        None => return Err("no closing quotation (')".to_string()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('"' | '\\'))) => token.push(c),
                            Some((_, c)) => {
                                token.push('\\');
                                token.push(c);
                            }
                            None => return Err("no closing quotation (\")".to_string()),
                        },
                        Some((_, c)) => token.push(c),
                        None => return Err("no closing quotation (\")".to_string()),
                    }
                },
                '\\' => match chars.next() {
                    Some((_, c)) => token.push(c),
                    None => return Err("a backslash at the end of the line escapes nothing".to_string()),
                },
                c => token.push(c),
            }
        }
        tokens.push((token, start));
        if comment {
            break;
        }
    }
    Ok(tokens)
}

/// What Python's `ast.literal_eval` makes of a simple INI value: a quoted
/// string loses its quotes (and `\\`, `\'`, `\"`, `\n`, `\t` escapes); anything
/// else is kept as written (numbers, words).
fn python_literal(value: &str) -> String {
    let value = value.trim();
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            let inner = &value[1..value.len() - 1];
            // An unescaped quote inside: not one literal; keep it as written.
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(c @ ('\\' | '\'' | '"')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return value.to_string(),
                    },
                    c if c == q => return value.to_string(),
                    c => out.push(c),
                }
            }
            return out;
        }
    }
    value.to_string()
}

/// A host pattern of a host line or a YAML `hosts:` key: a name, maybe with
/// `:port` (`[v6]:port` too), maybe with ranges. The names and the port.
pub(super) fn expand_host_pattern(pattern: &str) -> Result<(Vec<String>, Option<String>), String> {
    if pattern.is_empty() {
        return Err("empty host name".to_string());
    }
    // The last ':' outside brackets separates a port when digits follow it and it
    // is the only one (more colons: an IPv6 address, refused later as a name).
    let mut depth = 0i32;
    let mut colons = Vec::new();
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    let (name, port) = match colons.as_slice() {
        [i] => {
            let port = &pattern[i + 1..];
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{pattern:?}: expected host:port with a numeric port"));
            }
            (&pattern[..*i], Some(port.to_string()))
        }
        _ => (pattern, None),
    };
    let name = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        // `[2001:db8::1]:22`: an address as the inventory name.
        Some(inner) if inner.contains(':') => inner,
        _ => name,
    };
    let mut names = Vec::new();
    expand_ranges(name, &mut names)?;
    Ok((names, port))
}

/// Expands the first `[a:b]` / `[a:b:step]` range of `name`, and recursively the
/// rest, as Ansible's `expand_hostname_range`: numeric (`01:10` keeps the
/// width, begin and end of equal length), or one letter each (`a:f`).
fn expand_ranges(name: &str, out: &mut Vec<String>) -> Result<(), String> {
    let Some(open) = name.find('[') else {
        if name.contains(']') {
            return Err(format!("{name:?}: ']' without '['"));
        }
        out.push(name.to_string());
        return Ok(());
    };
    let close = name[open..].find(']').map(|i| open + i).ok_or_else(|| format!("{name:?}: '[' without ']'"))?;
    let (head, range, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    let bounds: Vec<&str> = range.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(format!("{name:?}: a host range is [begin:end] or [begin:end:step]"));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(format!("{name:?}: the host range has no end"));
    }
    let step: usize = match bounds.get(2) {
        Some(s) => s.parse().ok().filter(|s| *s > 0).ok_or_else(|| format!("{name:?}: the step of a host range is a positive integer"))?,
        None => 1,
    };
    let items: Vec<String> = if beg.len() == 1 && end.len() == 1 && beg.chars().all(|c| c.is_ascii_alphabetic()) && end.chars().all(|c| c.is_ascii_alphabetic()) {
        let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let (b, e) = (letters.find(beg).unwrap_or(0), letters.find(end).unwrap_or(0));
        if b > e {
            return Err(format!("{name:?}: the host range begins after its end"));
        }
        letters[b..=e].chars().step_by(step).map(String::from).collect()
    } else {
        let (Ok(b), Ok(e)) = (beg.parse::<u64>(), end.parse::<u64>()) else {
            return Err(format!("{name:?}: a host range is numbers ([01:10]) or single letters ([a:f])"));
        };
        if !(beg.bytes().all(|c| c.is_ascii_digit()) && end.bytes().all(|c| c.is_ascii_digit())) {
            return Err(format!("{name:?}: a host range is numbers ([01:10]) or single letters ([a:f])"));
        }
        if b > e {
            return Err(format!("{name:?}: the host range begins after its end"));
        }
        let width = if beg.starts_with('0') && beg.len() > 1 {
            if beg.len() != end.len() {
                return Err(format!("{name:?}: a zero-padded host range needs begin and end of equal length"));
            }
            beg.len()
        } else {
            0
        };
        if (e - b) / step as u64 >= MAX_RANGE_HOSTS as u64 {
            return Err(format!("{name:?}: the host range has more than {MAX_RANGE_HOSTS} hosts"));
        }
        (b..=e).step_by(step).map(|n| format!("{n:0width$}")).collect()
    };
    for item in items {
        expand_ranges(&format!("{head}{item}{tail}"), out)?;
        if out.len() > MAX_RANGE_HOSTS {
            return Err(format!("{name:?}: the host range has more than {MAX_RANGE_HOSTS} hosts"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// YAML

#[derive(Debug, Clone)]
enum Node {
    /// Text, plain (unquoted), tag suffix, position.
    Scalar(String, bool, Option<String>, Marker),
    Seq(Marker),
    /// Shared: an alias is a copy of its anchor's node, not of its contents.
    Map(Rc<Vec<(Node, Node)>>, Marker),
}

/// A collection being built.
enum Open {
    Map(Vec<(Node, Node)>, Marker),
    Seq(Marker),
}

impl Node {
    fn mark(&self) -> Marker {
        match self {
            Node::Scalar(_, _, _, m) | Node::Seq(m) | Node::Map(_, m) => *m,
        }
    }
    fn pos(&self) -> (usize, usize) {
        let m = self.mark();
        (m.line(), m.col() + 1)
    }
    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar(s, true, None, _) if matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
    fn describe(&self) -> &'static str {
        match self {
            Node::Scalar(..) if self.is_null() => "null",
            Node::Scalar(..) => "a scalar",
            Node::Seq(_) => "a list",
            Node::Map(..) => "a mapping",
        }
    }
}

/// Builds [`Node`]s from parser events (sequences are kept as a position only:
/// nothing migready reads is a list).
#[derive(Default)]
struct Builder {
    /// Open collections: (collection, pending key of a mapping, anchor).
    stack: Vec<(Open, Option<Node>, usize)>,
    docs: Vec<Node>,
    /// Anchored nodes, with their number of nodes.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes built so far, aliases counted as what they copy (so that nested
    /// aliases cannot grow without bound); past [`MAX_YAML_NODES`]: `too_big`.
    nodes: usize,
    too_big: Option<Marker>,
}

/// Most nodes a YAML inventory may expand to (aliases included): far more than
/// 100k hosts need, and far less than what nested aliases can make.
const MAX_YAML_NODES: usize = 10_000_000;

fn size(node: &Node) -> usize {
    match node {
        Node::Map(entries, _) => 1 + entries.iter().map(|(k, v)| size(k) + size(v)).sum::<usize>(),
        _ => 1,
    }
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let n = size(&node);
            self.anchors.insert(anchor, (node.clone(), n));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((Open::Map(entries, _), key, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
            Some(_) => {} // inside a sequence: dropped
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.too_big.is_some() {
            return;
        }
        self.nodes += match &ev {
            Event::Alias(id) => self.anchors.get(id).map_or(1, |(_, n)| *n),
            _ => 1,
        };
        if self.nodes > MAX_YAML_NODES {
            self.too_big = Some(mark);
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node::Scalar(text, style == TScalarStyle::Plain, tag.map(|t| t.suffix), mark);
                self.push_value(node, anchor);
            }
            Event::MappingStart(anchor, _) => self.stack.push((Open::Map(Vec::new(), mark), None, anchor)),
            Event::SequenceStart(anchor, _) => self.stack.push((Open::Seq(mark), None, anchor)),
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((open, _, anchor)) = self.stack.pop() {
                    let node = match open {
                        Open::Map(entries, m) => Node::Map(Rc::new(entries), m),
                        Open::Seq(m) => Node::Seq(m),
                    };
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).map_or(Node::Scalar(String::new(), true, None, mark), |(n, _)| n.clone());
                self.push_value(node, 0);
            }
            _ => {}
        }
    }
}

/// Parses the YAML form: top-level keys are groups (usually `all`), each with
/// `hosts` (a mapping of host patterns to their variables), `vars` and
/// `children` (a mapping of groups).
pub fn parse_yaml(text: &str) -> Result<Tree, AnsibleError> {
    let mut builder = Builder::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    YamlParser::new_from_str(text).load(&mut builder, true).map_err(|e| {
        err(e.marker().line(), e.marker().col() + 1, format!("YAML syntax error: {}", e.info()))
    })?;
    if let Some(mark) = builder.too_big {
        return Err(err(mark.line(), mark.col() + 1, format!("the YAML expands to more than {MAX_YAML_NODES} nodes (aliases included)")));
    }
    let mut tree = Tree::default();
    tree.group("all");
    tree.group("ungrouped");
    let mut docs = builder.docs.into_iter();
    let Some(root) = docs.next() else {
        return Ok(tree);
    };
    if let Some(second) = docs.next() {
        let (l, c) = second.pos();
        return Err(err(l, c, "a second YAML document: an inventory is one document"));
    }
    if root.is_null() {
        return Ok(tree);
    }
    let Node::Map(entries, _) = root else {
        let (l, c) = root.pos();
        return Err(err(l, c, format!("expected a mapping of groups (all:), found {}", root.describe())));
    };
    let mut seen = HashMap::new();
    for (key, value) in entries.iter() {
        let name = group_key(key, &mut seen)?;
        yaml_group(&mut tree, &name, value, &mut Vec::new())?;
    }
    Ok(tree)
}

/// A group name as a mapping key; duplicate keys are refused.
fn group_key(key: &Node, seen: &mut HashMap<String, usize>) -> Result<String, AnsibleError> {
    let (l, c) = key.pos();
    let Node::Scalar(name, _, _, _) = key else {
        return Err(err(l, c, format!("expected a group name, found {}", key.describe())));
    };
    check_group_name(name).map_err(|m| err(l, c, m))?;
    if let Some(first) = seen.insert(name.clone(), l) {
        return Err(err(l, c, format!("duplicate key {name:?} (first at line {first})")));
    }
    Ok(name.clone())
}

fn yaml_group(tree: &mut Tree, name: &str, data: &Node, path: &mut Vec<String>) -> Result<(), AnsibleError> {
    tree.group(name);
    if data.is_null() {
        return Ok(());
    }
    let (l, c) = data.pos();
    let Node::Map(entries, _) = data else {
        return Err(err(l, c, format!("group {name:?}: expected a mapping (hosts:, vars:, children:) or nothing, found {}", data.describe())));
    };
    path.push(name.to_string());
    let mut seen = HashMap::new();
    for (key, value) in entries.iter() {
        let (kl, kc) = key.pos();
        let key_text = match key {
            Node::Scalar(s, _, _, _) => s.as_str(),
            _ => "",
        };
        if let Some(first) = seen.insert(key_text.to_string(), kl) {
            return Err(err(kl, kc, format!("group {name:?}: duplicate key {key_text:?} (first at line {first})")));
        }
        match key_text {
            "hosts" if value.is_null() => {}
            "hosts" => {
                let Node::Map(hosts, _) = value else {
                    let (vl, vc) = value.pos();
                    return Err(err(vl, vc, format!("group {name:?}: hosts: expected a mapping of host names, found {}", value.describe())));
                };
                let mut seen_hosts = HashMap::new();
                for (hkey, hvars) in hosts.iter() {
                    let (hl, hc) = hkey.pos();
                    let Node::Scalar(pattern, _, _, _) = hkey else {
                        return Err(err(hl, hc, format!("group {name:?}: expected a host name, found {}", hkey.describe())));
                    };
                    if let Some(first) = seen_hosts.insert(pattern.clone(), hl) {
                        return Err(err(hl, hc, format!("group {name:?}: duplicate host {pattern:?} (first at line {first})")));
                    }
                    let (names, port) = expand_host_pattern(pattern).map_err(|m| err(hl, hc, m))?;
                    let mut vars = Vec::new();
                    if let Some(port) = port {
                        vars.push(("ansible_port".to_string(), Val { text: port, line: hl, column: hc, group: None }));
                    }
                    vars.extend(yaml_vars(hvars, &format!("host {pattern:?}"))?);
                    for host in names {
                        tree.add_host(&host, name, hl, hc, vars.clone());
                    }
                }
            }
            "vars" => {
                let vars = yaml_vars(value, &format!("group {name:?}: vars"))?;
                tree.group(name).vars.extend(vars);
            }
            "children" if value.is_null() => {}
            "children" => {
                let Node::Map(children, _) = value else {
                    let (vl, vc) = value.pos();
                    return Err(err(vl, vc, format!("group {name:?}: children: expected a mapping of groups, found {}", value.describe())));
                };
                let mut seen_children = HashMap::new();
                for (ckey, cdata) in children.iter() {
                    let child = group_key(ckey, &mut seen_children)?;
                    let (cl, cc) = ckey.pos();
                    if path.contains(&child) {
                        return Err(err(cl, cc, format!("group {child:?} is its own ancestor ({} -> {child})", path.join(" -> "))));
                    }
                    let g = tree.group(name);
                    if !g.children.iter().any(|(c, _, _)| *c == child) {
                        g.children.push((child.clone(), cl, cc));
                    }
                    yaml_group(tree, &child, cdata, path)?;
                }
            }
            other => {
                return Err(err(kl, kc, format!("group {name:?}: unknown key {other:?} (hosts, vars or children)")));
            }
        }
    }
    path.pop();
    Ok(())
}

/// The variables of a host or `vars:` mapping that migready uses; the others
/// are skipped whatever they hold.
fn yaml_vars(node: &Node, whose: &str) -> Result<Vec<(String, Val)>, AnsibleError> {
    if node.is_null() {
        return Ok(Vec::new());
    }
    let (l, c) = node.pos();
    let Node::Map(entries, _) = node else {
        return Err(err(l, c, format!("{whose}: expected a mapping of variables, found {}", node.describe())));
    };
    let mut vars = Vec::new();
    for (key, value) in entries.iter() {
        let Node::Scalar(key, _, _, _) = key else { continue };
        if !used(key) {
            continue;
        }
        let (vl, vc) = value.pos();
        match value {
            Node::Scalar(text, _, tag, _) if !value.is_null() => {
                if tag.as_deref() == Some("vault") {
                    return Err(err(vl, vc, format!("{key}: a vault-encrypted value: migready does not decrypt vaults (write the value itself)")));
                }
                let val = Val { text: text.clone(), line: vl, column: vc, group: None };
                check_literal(key, &val)?;
                vars.push((key.clone(), val));
            }
            other => return Err(err(vl, vc, format!("{key}: expected a value, found {}", other.describe()))),
        }
    }
    Ok(vars)
}

// ---------------------------------------------------------------------------
// Resolution

/// Each host with its groups and merged variables, in file order.
pub fn resolve(tree: &Tree) -> Result<Resolved, AnsibleError> {
    // Parents of each group (`all` is everyone's ancestor, and no one's child).
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, group) in &tree.groups {
        for (child, _, _) in &group.children {
            parents.entry(child.as_str()).or_default().push(name.as_str());
        }
    }
    // Depth: the longest way down from `all`; a loop is an error.
    let mut depth: HashMap<&str, usize> = HashMap::new();
    fn depth_of<'a>(
        g: &'a str,
        parents: &HashMap<&'a str, Vec<&'a str>>,
        depth: &mut HashMap<&'a str, usize>,
        on_path: &mut Vec<&'a str>,
    ) -> Result<usize, String> {
        if g == "all" {
            return Ok(0);
        }
        if let Some(&d) = depth.get(g) {
            return Ok(d);
        }
        if on_path.contains(&g) {
            return Err(format!("groups {} form a loop of children", on_path.join(" -> ")));
        }
        on_path.push(g);
        let mut d = 1;
        for p in parents.get(g).into_iter().flatten() {
            d = d.max(depth_of(p, parents, depth, on_path)? + 1);
        }
        on_path.pop();
        depth.insert(g, d);
        Ok(d)
    }
    for (name, _) in &tree.groups {
        depth_of(name, &parents, &mut depth, &mut Vec::new()).map_err(|m| {
            let (l, c) = tree
                .groups
                .iter()
                .flat_map(|(_, g)| g.children.iter())
                .find(|(child, _, _)| child == name)
                .map_or((0, 0), |(_, l, c)| (*l, *c));
            err(l, c, m)
        })?;
    }
    let mut hosts = Vec::with_capacity(tree.hosts.len());
    for entry in &tree.hosts {
        // The host's groups and their ancestors.
        let mut groups: Vec<&str> = Vec::new();
        let mut todo: Vec<&str> = entry.groups.iter().map(String::as_str).collect();
        while let Some(g) = todo.pop() {
            if g == "all" || groups.contains(&g) {
                continue;
            }
            groups.push(g);
            todo.extend(parents.get(g).into_iter().flatten());
        }
        if groups.len() > 1 {
            groups.retain(|g| *g != "ungrouped");
        }
        if groups.is_empty() {
            groups.push("ungrouped");
        }
        let mut ordered = groups.clone();
        ordered.sort_by_key(|g| (depth.get(g).copied().unwrap_or(1), *g));
        let mut vars: HashMap<String, Val> = HashMap::new();
        for g in std::iter::once("all").chain(ordered.iter().copied()) {
            for (k, v) in &tree.groups[tree.group_index[g]].1.vars {
                vars.insert(k.clone(), Val { group: Some(g.to_string()), ..v.clone() });
            }
        }
        for (k, v) in &entry.vars {
            vars.insert(k.clone(), v.clone());
        }
        let mut groups: Vec<String> = groups.into_iter().map(String::from).collect();
        groups.sort();
        hosts.push(AnsibleHost { name: entry.name.clone(), line: entry.line, column: entry.column, groups, vars });
    }
    let mut groups: Vec<String> = tree.groups.iter().map(|(n, _)| n.clone()).collect();
    groups.sort();
    Ok(Resolved { hosts, groups })
}

/// Parses an Ansible inventory of `format` (INI or YAML) and resolves it.
pub fn read(text: &str, format: Format) -> Result<Resolved, AnsibleError> {
    let tree = match format {
        Format::AnsibleYaml => parse_yaml(text)?,
        _ => parse_ini(text)?,
    };
    resolve(&tree)
}

/// The value of a setting: the last of its spellings that is set.
pub fn setting<'a>(host: &'a AnsibleHost, spellings: &[&'a str]) -> Option<(&'a str, &'a Val)> {
    spellings.iter().rev().find_map(|k| host.vars.get(*k).map(|v| (*k, v)))
}
