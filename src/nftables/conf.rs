//! Finding a chain in the files nftables.service loads (`/etc/nftables.conf` and the
//! files it includes), to add rules to it without touching any other line.
//!
//! A small reader of nft's file syntax: `table FAMILY NAME { chain NAME { ... } }`
//! blocks, statements ended by a newline or `;`, `\` continuations, anonymous sets
//! `{ ... }` inside a statement (over several lines too), `"strings"` and `# comments`.
//! A chain defined in more than one place, rules added with `add rule` commands or an
//! `include` inside the chain are refused (with why): then fix says it could not persist.

use super::Family;

/// Where a chain's rules are written in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfChain {
    pub path: String,
    /// The chain's rule statements, in order.
    pub rules: Vec<ConfStmt>,
    /// 0-based line of the `}` that closes the chain block.
    pub close_line: usize,
    /// Whether that `}` is alone on its line (after indentation).
    pub close_alone: bool,
    /// Indentation for a new rule line.
    pub indent: String,
}

/// One statement in a chain block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfStmt {
    /// 0-based lines of its first and last token.
    pub first_line: usize,
    pub last_line: usize,
    /// The statement's tokens joined by single spaces.
    pub text: String,
    /// It begins its line and ends it (no other statement on those lines).
    pub own_lines: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    Semi,
    Newline,
}

#[derive(Debug, Clone)]
struct T {
    tok: Tok,
    line: usize,
    /// Nothing but whitespace before it on its line.
    first_on_line: bool,
}

fn lex(text: &str) -> Result<Vec<T>, String> {
    let mut out: Vec<T> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line, mut bol) = (0usize, 0usize, true);
    let push = |out: &mut Vec<T>, tok: Tok, line: usize, bol: &mut bool| {
        out.push(T { tok, line, first_on_line: *bol });
        *bol = false;
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                push(&mut out, Tok::Newline, line, &mut bol);
                line += 1;
                bol = true;
                i += 1;
            }
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                // A continuation: the statement goes on on the next line.
                line += 1;
                i += 2;
            }
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' => {
                let start = i + 1;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\n' {
                        return Err(format!("line {}: a string is not closed", line + 1));
                    }
                    i += 1;
                }
                let s: String = chars[start..i.min(chars.len())].iter().collect();
                push(&mut out, Tok::Str(s), line, &mut bol);
                i += 1;
            }
            '{' => {
                push(&mut out, Tok::Open, line, &mut bol);
                i += 1;
            }
            '}' => {
                push(&mut out, Tok::Close, line, &mut bol);
                i += 1;
            }
            ';' => {
                push(&mut out, Tok::Semi, line, &mut bol);
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"{};#\"".contains(chars[i]) {
                    if chars[i] == '\\' && chars.get(i + 1) == Some(&'\n') {
                        break;
                    }
                    i += 1;
                }
                push(&mut out, Tok::Word(chars[start..i].iter().collect()), line, &mut bol);
            }
        }
    }
    Ok(out)
}

/// A statement's tokens (anonymous `{ ... }` included) and how it ended.
struct Stmt<'a> {
    toks: &'a [T],
    /// It opens a block (`table x y {`): the `{` is its last token.
    opens: bool,
}

/// Reads statements of one block from `toks[*pos..]` until the block's `}` (or the
/// end of input at top level).
struct Reader<'a> {
    toks: &'a [T],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The next statement; `None` at the `}` closing the block (consumed) or the end.
    fn next(&mut self, block_words: &[&str]) -> Result<Option<Stmt<'a>>, String> {
        // Skip empty statements.
        while let Some(t) = self.toks.get(self.pos) {
            match t.tok {
                Tok::Newline | Tok::Semi => self.pos += 1,
                Tok::Close => {
                    self.pos += 1;
                    return Ok(None);
                }
                _ => break,
            }
        }
        let start = self.pos;
        if start >= self.toks.len() {
            return Ok(None);
        }
        let first = match &self.toks[start].tok {
            Tok::Word(w) => w.clone(),
            _ => String::new(),
        };
        let mut depth = 0usize;
        while let Some(t) = self.toks.get(self.pos) {
            match t.tok {
                Tok::Open if depth == 0 && block_words.contains(&first.as_str()) => {
                    self.pos += 1;
                    return Ok(Some(Stmt { toks: &self.toks[start..self.pos], opens: true }));
                }
                Tok::Open => depth += 1,
                Tok::Close if depth == 0 => break, // ends the block; left for the caller
                Tok::Close => depth -= 1,
                Tok::Newline | Tok::Semi if depth == 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        Ok(Some(Stmt { toks: &self.toks[start..self.pos], opens: false }))
    }

    /// Skips a block whose `{` was just read, to its `}`.
    fn skip_block(&mut self) -> Result<(), String> {
        let mut depth = 1usize;
        while let Some(t) = self.toks.get(self.pos) {
            self.pos += 1;
            match t.tok {
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        Err("a block is not closed".into())
    }
}

fn words(toks: &[T]) -> Vec<String> {
    toks.iter()
        .filter_map(|t| match &t.tok {
            Tok::Word(w) => Some(w.clone()),
            Tok::Str(s) => Some(format!("\"{s}\"")),
            Tok::Open => Some("{".into()),
            Tok::Close => Some("}".into()),
            _ => None,
        })
        .collect()
}

/// `table [FAMILY] NAME`, `chain NAME`: the family (ip when omitted) and name.
fn table_of(w: &[String]) -> Option<(Family, String)> {
    let rest: Vec<&String> = w.iter().skip(1).filter(|x| *x != "{").collect();
    match rest.as_slice() {
        [name] => Some((Family::Ip, name.trim_matches('"').to_string())),
        [fam, name, ..] => Some((Family::parse(fam)?, name.trim_matches('"').to_string())),
        _ => None,
    }
}

/// The objects a table block holds as blocks of their own.
const TABLE_BLOCKS: &[&str] = &["chain", "set", "map", "flowtable", "counter", "quota", "ct", "limit", "secmark", "synproxy"];

/// Where chain `chain` of table `family name` is written among `files` (path, text),
/// in load order.
pub fn locate_chain(files: &[(String, String)], family: Family, table: &str, chain: &str) -> Result<ConfChain, String> {
    let mut found: Vec<ConfChain> = Vec::new();
    let mut elsewhere: Vec<String> = Vec::new();
    for (path, text) in files {
        let toks = lex(text).map_err(|e| format!("{path}: {e}"))?;
        let lines: Vec<&str> = text.split('\n').collect();
        let mut top = Reader { toks: &toks, pos: 0 };
        while let Some(st) = top.next(&["table"])? {
            let w = words(st.toks);
            if !st.opens {
                // `add rule inet filter input ...`, `insert rule ...`: the chain's rules
                // are not all in one block.
                if matches!(w.first().map(String::as_str), Some("add" | "insert" | "replace"))
                    && w.get(1).is_some_and(|x| x == "rule")
                    && rule_cmd_names(&w[2..], family, table, chain)
                {
                    elsewhere.push(format!("{path}:{}: {}", st.toks.first().map_or(0, |t| t.line) + 1, w.join(" ")));
                }
                continue;
            }
            let Some((fam, tname)) = table_of(&w) else {
                top.skip_block()?;
                continue;
            };
            if fam != family || tname != table {
                top.skip_block()?;
                continue;
            }
            // Inside the table block.
            let mut tb = Reader { toks: &toks, pos: top.pos };
            while let Some(st) = tb.next(TABLE_BLOCKS)? {
                if !st.opens {
                    continue;
                }
                let w = words(st.toks);
                if w.first().map(String::as_str) != Some("chain") || w.get(1).map(|n| n.trim_matches('"')) != Some(chain) {
                    tb.skip_block()?;
                    continue;
                }
                let mut cb = Reader { toks: &toks, pos: tb.pos };
                let mut rules = Vec::new();
                let mut last_prop_line = st.toks.first().map_or(0, |t| t.line);
                while let Some(rs) = cb.next(&[])? {
                    let w = words(rs.toks);
                    let (Some(first), Some(last)) = (rs.toks.first(), rs.toks.last()) else {
                        return Err(format!("{path}: chain {chain}: an empty statement"));
                    };
                    match w.first().map(String::as_str) {
                        Some("type" | "policy" | "comment" | "devices" | "flags") => {
                            last_prop_line = last.line;
                            continue;
                        }
                        Some("include") => return Err(format!("{path}:{}: chain {chain} includes another file", first.line + 1)),
                        _ => {}
                    }
                    // Ends its line: the next token is a newline (or the end).
                    let mut n = cb.pos;
                    while toks.get(n).is_some_and(|t| t.tok == Tok::Semi) {
                        n += 1;
                    }
                    let ends_line = matches!(toks.get(n).map(|t| &t.tok), None | Some(Tok::Newline));
                    rules.push(ConfStmt { first_line: first.line, last_line: last.line, text: w.join(" "), own_lines: first.first_on_line && ends_line });
                }
                let close = match cb.pos.checked_sub(1).and_then(|i| toks.get(i)) {
                    Some(t) if t.tok == Tok::Close => t,
                    _ => return Err(format!("{path}: chain {chain} is not closed")),
                };
                let indent_from = rules.last().map_or(last_prop_line, |r| r.first_line);
                let indent: String = lines.get(indent_from).map(|l| l.chars().take_while(|c| *c == ' ' || *c == '\t').collect()).unwrap_or_default();
                found.push(ConfChain { path: path.clone(), rules, close_line: close.line, close_alone: close.first_on_line, indent });
                tb.pos = cb.pos;
            }
            top.pos = tb.pos;
        }
    }
    if !elsewhere.is_empty() {
        return Err(format!("rules of chain {chain} are added by commands ({})", elsewhere.join("; ")));
    }
    match found.len() {
        0 => Err(format!("no `table {family} {table}` block with chain {chain} in {}", files.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", "))),
        1 => Ok(found.remove(0)),
        _ => Err(format!("chain {chain} of table {family} {table} is written in {} places ({})", found.len(), found.iter().map(|c| c.path.as_str()).collect::<Vec<_>>().join(", "))),
    }
}

/// `[FAMILY] TABLE CHAIN ...` of an `add rule` command names this chain.
fn rule_cmd_names(w: &[String], family: Family, table: &str, chain: &str) -> bool {
    match w {
        [f, t, c, ..] if Family::parse(f) == Some(family) => t == table && c == chain,
        [t, c, ..] if Family::parse(t).is_none() => family == Family::Ip && t == table && c == chain,
        _ => false,
    }
}

impl ConfChain {
    /// Where new rules go: before rule `before` (0-based index among the chain's
    /// rules), or at the end of the chain (None). The 0-based line to insert before, and
    /// the indentation of the new lines.
    pub fn insertion_point(&self, text: &str, before: Option<usize>) -> Result<(usize, String), String> {
        let indent_of = |line: usize| text.split('\n').nth(line).map(|l| l.chars().take_while(|c| *c == ' ' || *c == '\t').collect()).unwrap_or_default();
        match before {
            Some(i) => {
                let r = self.rules.get(i).ok_or_else(|| format!("{}: the chain has no rule {}", self.path, i + 1))?;
                if !r.own_lines {
                    return Err(format!("{}:{}: the rule shares its line with another statement", self.path, r.first_line + 1));
                }
                Ok((r.first_line, indent_of(r.first_line)))
            }
            None => {
                if !self.close_alone {
                    return Err(format!("{}:{}: the chain's closing brace is not on a line of its own", self.path, self.close_line + 1));
                }
                if let Some(r) = self.rules.last().filter(|r| r.last_line == self.close_line) {
                    return Err(format!("{}:{}: the last rule ends on the chain's closing line", self.path, r.last_line + 1));
                }
                Ok((self.close_line, self.indent.clone()))
            }
        }
    }
}

/// `text` with lines inserted: each `(line, indent, statements)` puts the statements,
/// one per line, before 0-based line `line` (an existing line). Every other line stays
/// byte for byte; statements for the same line keep their order.
pub fn insert_lines(text: &str, mut at: Vec<(usize, String, Vec<String>)>) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    at.sort_by_key(|(line, _, _)| *line); // stable: plan order within a line
    for (line, indent, stmts) in at.into_iter().rev() {
        let at = line.min(lines.len());
        for s in stmts.iter().rev() {
            lines.insert(at, format!("{indent}{s}\n"));
        }
    }
    lines.concat()
}
