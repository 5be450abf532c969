//! OpenSSH client configuration (`~/.ssh/config`), the part that decides how a
//! host is reached.
//!
//! Read as ssh(1) reads it (see ssh_config(5)):
//! - `Host` lines with several patterns (`*`, `?`, `!negation`), matched
//!   case-insensitively; a negated pattern that matches excludes the host.
//!   migready matches them against the host's inventory `name` and, when the
//!   inventory sets one, its `address` (both are what an operator would type).
//! - `Match all` applies to every host; any other `Match` block is skipped
//!   (its options apply to no host), without a warning.
//! - `Include` with several arguments and `*`/`?` globs; a relative path is
//!   relative to `~/.ssh`; a file that does not exist is skipped; an included
//!   file's `Host` lines apply within it only, and nothing in a file included
//!   from a block that does not apply applies.
//! - For each key the first value obtained wins, except `IdentityFile`, whose
//!   values add up in order.
//! - Lines: `Keyword args`, `Keyword=args`; arguments may be quoted (`"` or
//!   `'`); a word starting with `#` starts a comment.
//!
//! Keys used: HostName, User, Port, IdentityFile, ProxyJump, ConnectTimeout,
//! UserKnownHostsFile (its first file), StrictHostKeyChecking. ProxyCommand is
//! refused where it would apply (migready cannot run a proxy command; use
//! ProxyJump). Every other key is ignored. Values are validated when a host
//! uses them, as inventory values are, and errors name `FILE:LINE:COLUMN`.
//!
//! A file writable by group or others, or owned by another user than root or
//! the one running migready, is refused, as ssh refuses it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fields::{check_address, check_user};

/// How deep `Include` may nest (OpenSSH's limit).
const MAX_INCLUDE_DEPTH: usize = 16;

/// A parsed configuration: the main file with its includes expanded.
#[derive(Debug, Default)]
pub(super) struct SshConfig {
    /// Every file read, in reading order; [`At::file`] indexes it.
    files: Vec<PathBuf>,
    items: Vec<Item>,
    /// `$HOME`, for `~` and `%d`.
    home: Option<PathBuf>,
}

/// Where a value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct At {
    file: usize,
    /// 1-based.
    line: usize,
    /// 1-based, in characters.
    column: usize,
}

#[derive(Debug)]
enum Item {
    /// A `Host` line: the patterns, `!` kept.
    Host(Vec<String>),
    /// A `Match` line: whether it is `Match all` (applies to every host).
    Match { all: bool },
    /// An `Include` line: the items of each file it read.
    Include(Vec<Vec<Item>>),
    /// A key migready uses, with its arguments.
    Opt(Opt),
}

/// One line setting a key migready uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Opt {
    pub(super) key: Key,
    /// The keyword as written (for messages).
    pub(super) keyword: String,
    pub(super) args: Vec<Arg>,
    /// The keyword's position.
    pub(super) at: At,
}

/// One argument of a line, unquoted, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Arg {
    pub(super) text: String,
    pub(super) column: usize,
}

/// The keys migready uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    HostName,
    User,
    Port,
    IdentityFile,
    ProxyJump,
    ProxyCommand,
    ConnectTimeout,
    UserKnownHostsFile,
    StrictHostKeyChecking,
}

impl Key {
    fn from_keyword(keyword: &str) -> Option<Key> {
        Some(match keyword.to_ascii_lowercase().as_str() {
            "hostname" => Key::HostName,
            "user" => Key::User,
            "port" => Key::Port,
            "identityfile" => Key::IdentityFile,
            "proxyjump" => Key::ProxyJump,
            "proxycommand" => Key::ProxyCommand,
            "connecttimeout" => Key::ConnectTimeout,
            "userknownhostsfile" => Key::UserKnownHostsFile,
            "stricthostkeychecking" => Key::StrictHostKeyChecking,
            _ => return None,
        })
    }
}

/// An error in a configuration file, at a position (line 0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConfigError {
    pub(super) path: PathBuf,
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) message: String,
}

/// The first value obtained for each key, for one host.
#[derive(Debug, Default, Clone)]
pub(super) struct Settings<'a> {
    pub(super) host_name: Option<&'a Opt>,
    pub(super) user: Option<&'a Opt>,
    pub(super) port: Option<&'a Opt>,
    /// Every IdentityFile line that applies, in order.
    pub(super) identity_files: Vec<&'a Opt>,
    /// The first of ProxyJump and ProxyCommand (they exclude each other).
    pub(super) proxy: Option<&'a Opt>,
    pub(super) connect_timeout: Option<&'a Opt>,
    pub(super) known_hosts: Option<&'a Opt>,
    pub(super) strict: Option<&'a Opt>,
}

impl<'a> Settings<'a> {
    fn take(&mut self, opt: &'a Opt) {
        let slot = match opt.key {
            Key::IdentityFile => {
                self.identity_files.push(opt);
                return;
            }
            Key::HostName => &mut self.host_name,
            Key::User => &mut self.user,
            Key::Port => &mut self.port,
            Key::ProxyJump | Key::ProxyCommand => &mut self.proxy,
            Key::ConnectTimeout => &mut self.connect_timeout,
            Key::UserKnownHostsFile => &mut self.known_hosts,
            Key::StrictHostKeyChecking => &mut self.strict,
        };
        slot.get_or_insert(opt);
    }
}

/// The values the `%` tokens of a path stand for.
pub(super) struct Tokens<'a> {
    /// `%h`: the remote host name (after HostName).
    pub(super) host: &'a str,
    /// `%n`: the host name as given (the inventory name, or the jump host as written).
    pub(super) original: &'a str,
    /// `%r`: the remote user.
    pub(super) remote_user: &'a str,
    /// `%p`: the port.
    pub(super) port: u16,
}

/// A jump host as written in a ProxyJump list: `[ssh://][user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HopSpec {
    pub(super) user: Option<String>,
    /// Host name or address (IPv6 without brackets).
    pub(super) host: String,
    pub(super) port: Option<u16>,
}

impl std::fmt::Display for HopSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Parses a ProxyJump value: `none` (no jump host: an empty list) or
/// comma-separated `[ssh://][user@]host[:port]` entries, each validated like
/// inventory values. Errors are message fragments.
pub(super) fn parse_jumps(value: &str) -> Result<Vec<HopSpec>, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    if value.is_empty() {
        return Err("must not be empty (\"none\": no jump host)".to_string());
    }
    value
        .split(',')
        .enumerate()
        .map(|(i, hop)| {
            parse_hop(hop).map_err(|reason| format!("jump host {} {hop:?}: {reason}", i + 1))
        })
        .collect()
}

fn parse_hop(text: &str) -> Result<HopSpec, String> {
    if text.is_empty() {
        return Err(
            "empty entry (two commas in a row, or a leading or trailing comma)".to_string(),
        );
    }
    let rest = text.strip_prefix("ssh://").unwrap_or(text);
    let (user, rest) = match rest.rsplit_once('@') {
        Some((user, rest)) => {
            check_user(user).map_err(|r| format!("user: {r}"))?;
            (Some(user.to_string()), rest)
        }
        None => (None, rest),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err("an address in brackets must end with ']'".to_string());
        };
        match after {
            "" => (format!("[{addr}]"), None),
            _ => match after.strip_prefix(':') {
                Some(port) => (format!("[{addr}]"), Some(port)),
                None => return Err("expected ':PORT' after ']'".to_string()),
            },
        }
    } else if rest.matches(':').count() > 1 {
        // A bare IPv6 address: no port.
        (rest.to_string(), None)
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (rest.to_string(), None),
        }
    };
    let host = check_address(&host)?;
    let port = match port {
        None => None,
        Some(p) => Some(
            parse_port(p).ok_or_else(|| format!("port {p:?}: expected an integer in 1..=65535"))?,
        ),
    };
    Ok(HopSpec { user, host, port })
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p != 0)
}

/// Whether `name` matches the OpenSSH pattern `pattern` (`*`: any run of
/// characters, `?`: one character), ASCII case-insensitively.
pub(super) fn pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern.is_ascii() && name.is_ascii() {
        // Names are validated ASCII (host names, addresses): bytes are characters.
        return wild(pattern.as_bytes(), name.as_bytes(), b'*', b'?', |a, b| {
            a.eq_ignore_ascii_case(&b)
        });
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    wild(&p, &n, '*', '?', |a, b| a.eq_ignore_ascii_case(&b))
}

/// Wildcard matching with one backtrack point (the last `*`): linear in
/// practice, no recursion, no allocation.
fn wild<T: Copy + PartialEq>(
    p: &[T],
    s: &[T],
    star_char: T,
    any: T,
    eq: impl Fn(T, T) -> bool,
) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] != star_char && (p[pi] == any || eq(p[pi], s[si])) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == star_char {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == star_char {
        pi += 1;
    }
    pi == p.len()
}

/// Whether a `Host` line's patterns select a host known by `names`: some
/// pattern matches one of them and no negated pattern matches any.
pub(super) fn host_line_matches(patterns: &[String], names: &[&str]) -> bool {
    let mut matched = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if names.iter().any(|n| pattern_matches(negated, n)) {
                return false;
            }
        } else if names.iter().any(|n| pattern_matches(pattern, n)) {
            matched = true;
        }
    }
    matched
}

/// Splits one line into its keyword and arguments (None: blank or comment).
/// The `usize`s are 1-based character columns.
fn split_line(line: &str) -> Result<Option<(String, usize, Vec<Arg>)>, (usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let ws = |c: char| c == ' ' || c == '\t' || c == '\r';
    let mut i = 0;
    while i < chars.len() && ws(chars[i]) {
        i += 1;
    }
    if i == chars.len() || chars[i] == '#' {
        return Ok(None);
    }
    let keyword_column = i + 1;
    let mut keyword = String::new();
    while i < chars.len() && !ws(chars[i]) && chars[i] != '=' {
        keyword.push(chars[i]);
        i += 1;
    }
    while i < chars.len() && ws(chars[i]) {
        i += 1;
    }
    if i < chars.len() && chars[i] == '=' {
        i += 1;
    }
    let mut args = Vec::new();
    loop {
        while i < chars.len() && ws(chars[i]) {
            i += 1;
        }
        if i == chars.len() || chars[i] == '#' {
            break;
        }
        let column = i + 1;
        let mut text = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            match quote {
                None if ws(c) => break,
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\'
                    && chars.get(i + 1).is_some_and(|&n| {
                        n == '"' || n == '\'' || n == '\\' || (quote.is_none() && n == ' ')
                    }) =>
                {
                    i += 1;
                    text.push(chars[i]);
                }
                _ => text.push(c),
            }
            i += 1;
        }
        if let Some(q) = quote {
            return Err((column, format!("unterminated {q} quote")));
        }
        args.push(Arg { text, column });
    }
    Ok(Some((keyword, keyword_column, args)))
}

impl SshConfig {
    /// Reads `path` and what it includes. `home` is `$HOME` (for `~`, `%d` and
    /// relative includes). A missing file is an empty configuration when
    /// `missing_ok`, else an error.
    pub(super) fn load(
        path: &Path,
        home: Option<&Path>,
        missing_ok: bool,
    ) -> Result<SshConfig, ConfigError> {
        let mut config = SshConfig {
            home: home.map(Path::to_path_buf),
            ..SshConfig::default()
        };
        match config.read_file(path, 0)? {
            Some(items) => config.items = items,
            None if missing_ok => {}
            None => {
                return Err(ConfigError {
                    path: path.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: "cannot read ssh_config: no such file".to_string(),
                });
            }
        }
        Ok(config)
    }

    /// Parses `text` as if read from `path` (for tests).
    #[cfg(test)]
    pub(super) fn parse_str(
        text: &str,
        path: &Path,
        home: Option<&Path>,
    ) -> Result<SshConfig, ConfigError> {
        let mut config = SshConfig {
            home: home.map(Path::to_path_buf),
            ..SshConfig::default()
        };
        config.files.push(path.to_path_buf());
        config.items = config.parse(text, 0, 0)?;
        Ok(config)
    }

    /// An error at `at` (an argument's column when `column` is given).
    pub(super) fn error(&self, at: At, column: Option<usize>, message: String) -> ConfigError {
        ConfigError {
            path: self.files[at.file].clone(),
            line: at.line,
            column: column.unwrap_or(at.column),
            message,
        }
    }

    /// Reads one file; None when it does not exist.
    fn read_file(&mut self, path: &Path, depth: usize) -> Result<Option<Vec<Item>>, ConfigError> {
        let whole = |message: String| ConfigError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message,
        };
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(whole(format!("cannot read ssh_config: {e}"))),
        };
        if meta.is_dir() {
            return Err(whole("cannot read ssh_config: is a directory".to_string()));
        }
        let me = nix::unistd::getuid().as_raw();
        if (meta.uid() != 0 && meta.uid() != me) || meta.mode() & 0o022 != 0 {
            return Err(whole(format!(
                "bad owner or permissions (owner uid {}, mode {:o}): an ssh_config must be owned by root or \
                 the user running migready and writable by no one else (ssh refuses it too); chmod go-w it",
                meta.uid(),
                meta.mode() & 0o7777
            )));
        }
        let bytes =
            std::fs::read(path).map_err(|e| whole(format!("cannot read ssh_config: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| whole(format!("not UTF-8 text: {e}")))?;
        let index = self.files.len();
        self.files.push(path.to_path_buf());
        self.parse(&text, index, depth).map(Some)
    }

    fn parse(&mut self, text: &str, file: usize, depth: usize) -> Result<Vec<Item>, ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut items = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let file_path = self.files[file].clone();
            let err = |column: usize, message: String| ConfigError {
                path: file_path.clone(),
                line: line_no,
                column,
                message,
            };
            let Some((keyword, column, args)) = split_line(line).map_err(|(c, m)| err(c, m))?
            else {
                continue;
            };
            let at = At {
                file,
                line: line_no,
                column,
            };
            match keyword.to_ascii_lowercase().as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(err(column, "Host needs at least one pattern".to_string()));
                    }
                    items.push(Item::Host(args.into_iter().map(|a| a.text).collect()));
                }
                "match" => {
                    let all = args.len() == 1 && args[0].text.eq_ignore_ascii_case("all");
                    items.push(Item::Match { all });
                }
                "include" => {
                    if args.is_empty() {
                        return Err(err(column, "Include needs at least one file".to_string()));
                    }
                    if depth + 1 > MAX_INCLUDE_DEPTH {
                        return Err(err(
                            column,
                            format!(
                                "Include nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
                            ),
                        ));
                    }
                    let mut files = Vec::new();
                    for arg in &args {
                        let paths = self
                            .include_paths(&arg.text)
                            .map_err(|m| err(arg.column, m))?;
                        for path in paths {
                            if let Some(included) = self.read_file(&path, depth + 1)? {
                                files.push(included);
                            }
                        }
                    }
                    items.push(Item::Include(files));
                }
                other => {
                    if let Some(key) = Key::from_keyword(other) {
                        if args.is_empty() {
                            return Err(err(column, format!("{keyword} needs a value")));
                        }
                        items.push(Item::Opt(Opt {
                            key,
                            keyword,
                            args,
                            at,
                        }));
                    }
                }
            }
        }
        Ok(items)
    }

    /// The files an `Include` argument names: `~` expanded, relative to
    /// `~/.ssh`, `*` and `?` globbed in any component (sorted; names starting
    /// with `.` only for patterns starting with `.`).
    fn include_paths(&self, arg: &str) -> Result<Vec<PathBuf>, String> {
        let path = if let Some(rest) = arg.strip_prefix('~') {
            if !(rest.is_empty() || rest.starts_with('/')) {
                return Err(format!(
                    "cannot expand {arg:?}: only \"~\" and \"~/\" are supported"
                ));
            }
            let home = self
                .home
                .as_deref()
                .ok_or_else(|| format!("cannot expand {arg:?}: $HOME is not set"))?;
            home.join(rest.trim_start_matches('/'))
        } else if Path::new(arg).is_absolute() {
            PathBuf::from(arg)
        } else {
            let home = self.home.as_deref().ok_or_else(|| {
                format!("relative Include {arg:?} is relative to ~/.ssh, but $HOME is not set")
            })?;
            home.join(".ssh").join(arg)
        };
        if !arg.contains(['*', '?']) {
            return Ok(vec![path]);
        }
        let mut found = vec![PathBuf::from("/")];
        for component in path.components().skip(1) {
            let part = component.as_os_str().to_string_lossy().into_owned();
            let mut next = Vec::new();
            for base in &found {
                if !part.contains(['*', '?']) {
                    let p = base.join(&part);
                    if p.exists() {
                        next.push(p);
                    }
                    continue;
                }
                let Ok(entries) = std::fs::read_dir(base) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                    .filter(|n| glob_matches(&part, n))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            }
            found = next;
        }
        Ok(found.into_iter().filter(|p| p.is_file()).collect())
    }

    /// The first value of each key for a host known by `names` (see the module doc).
    pub(super) fn lookup(&self, names: &[&str]) -> Settings<'_> {
        let mut settings = Settings::default();
        walk(&self.items, names, true, false, &mut settings);
        settings
    }
}

/// Case-sensitive glob for Include file names.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    wild(&p, &n, '*', '?', |a, b| a == b)
}

fn walk<'a>(
    items: &'a [Item],
    names: &[&str],
    mut active: bool,
    never: bool,
    settings: &mut Settings<'a>,
) {
    for item in items {
        match item {
            Item::Host(patterns) => active = !never && host_line_matches(patterns, names),
            Item::Match { all } => active = !never && *all,
            Item::Include(files) => {
                for file in files {
                    walk(file, names, active, never || !active, settings);
                }
            }
            Item::Opt(opt) if active => settings.take(opt),
            Item::Opt(_) => {}
        }
    }
}

/// Host key checking as StrictHostKeyChecking asks: true to accept (and record)
/// an unknown key. A changed key is refused whatever the value (`no` included).
pub(super) fn accept_new(config: &SshConfig, opt: &Opt) -> Result<bool, ConfigError> {
    let arg = &opt.args[0];
    match arg.text.to_ascii_lowercase().as_str() {
        "yes" | "ask" | "true" => Ok(false),
        "accept-new" | "no" | "off" | "false" => Ok(true),
        _ => Err(config.error(
            opt.at,
            Some(arg.column),
            format!(
                "{} {:?}: expected yes, ask, accept-new or no",
                opt.keyword, arg.text
            ),
        )),
    }
}

/// HostName: `%h` (the name as given) and `%%` expanded, then validated as an
/// inventory address.
pub(super) fn host_name(
    config: &SshConfig,
    opt: &Opt,
    original: &str,
) -> Result<String, ConfigError> {
    let arg = &opt.args[0];
    let mut value = String::new();
    let mut chars = arg.text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            value.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => value.push('%'),
            Some('h') => value.push_str(original),
            other => {
                return Err(config.error(
                    opt.at,
                    Some(arg.column),
                    format!(
                        "{} {:?}: unknown token %{} (HostName knows %h and %%)",
                        opt.keyword,
                        arg.text,
                        other.map(String::from).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    check_address(&value).map_err(|reason| {
        config.error(
            opt.at,
            Some(arg.column),
            format!("{} {:?}: {reason}", opt.keyword, value),
        )
    })
}

pub(super) fn user(config: &SshConfig, opt: &Opt) -> Result<String, ConfigError> {
    let arg = &opt.args[0];
    check_user(&arg.text)
        .map(|()| arg.text.clone())
        .map_err(|reason| {
            config.error(
                opt.at,
                Some(arg.column),
                format!("{} {:?}: {reason}", opt.keyword, arg.text),
            )
        })
}

pub(super) fn port(config: &SshConfig, opt: &Opt) -> Result<u16, ConfigError> {
    let arg = &opt.args[0];
    parse_port(&arg.text).ok_or_else(|| {
        config.error(
            opt.at,
            Some(arg.column),
            format!(
                "{} {:?}: expected an integer in 1..=65535",
                opt.keyword, arg.text
            ),
        )
    })
}

/// ConnectTimeout: seconds, or an OpenSSH time (`30s`, `1m30s`), 1..=`max` seconds.
pub(super) fn connect_timeout(
    config: &SshConfig,
    opt: &Opt,
    max: i64,
) -> Result<Duration, ConfigError> {
    let arg = &opt.args[0];
    convtime(&arg.text)
        .filter(|s| (1..=max).contains(s))
        .map(|s| Duration::from_secs(s as u64))
        .ok_or_else(|| {
            config.error(
                opt.at,
                Some(arg.column),
                format!(
                    "{} {:?}: expected a number of seconds in 1..={max} (or a time such as 1m30s)",
                    opt.keyword, arg.text
                ),
            )
        })
}

/// OpenSSH time format: digits each with an optional unit (s, m, h, d, w).
fn convtime(text: &str) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut number: Option<i64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(number.unwrap_or(0).checked_mul(10)?.checked_add(d as i64)?);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    if let Some(n) = number {
        total = total.checked_add(n)?;
    }
    Some(total)
}

/// A path value (IdentityFile, UserKnownHostsFile's first file): `~` and the
/// `%` tokens expanded. `none` is None.
pub(super) fn path(
    config: &SshConfig,
    opt: &Opt,
    tokens: &Tokens,
) -> Result<Option<PathBuf>, ConfigError> {
    let arg = &opt.args[0];
    if arg.text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let fail = |reason: String| {
        config.error(
            opt.at,
            Some(arg.column),
            format!("{} {:?}: {reason}", opt.keyword, arg.text),
        )
    };
    let home = || {
        config
            .home
            .as_deref()
            .map(|h| h.to_string_lossy().into_owned())
            .ok_or_else(|| fail("$HOME is not set".to_string()))
    };
    let mut value = String::new();
    let text = &arg.text;
    let rest = if let Some(rest) = text.strip_prefix('~') {
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(fail("only \"~\" and \"~/\" are supported".to_string()));
        }
        value.push_str(&home()?);
        rest
    } else {
        text.as_str()
    };
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            value.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => value.push('%'),
            Some('d') => value.push_str(&home()?),
            Some('h') => value.push_str(tokens.host),
            Some('n') => value.push_str(tokens.original),
            Some('r') => value.push_str(tokens.remote_user),
            Some('p') => value.push_str(&tokens.port.to_string()),
            Some('u') => value.push_str(
                &local_user().ok_or_else(|| fail("cannot tell the local user name".to_string()))?,
            ),
            Some('i') => value.push_str(&nix::unistd::getuid().as_raw().to_string()),
            other => {
                return Err(fail(format!(
                    "unknown token %{} (known: %d %h %i %n %p %r %u %%)",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        }
    }
    if value.is_empty() {
        return Err(fail("must not be empty".to_string()));
    }
    Ok(Some(PathBuf::from(value)))
}

fn local_user() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The ProxyJump list of `opt` (empty for `none`); ProxyCommand is refused.
pub(super) fn jumps(config: &SshConfig, opt: &Opt) -> Result<Vec<HopSpec>, ConfigError> {
    let arg = &opt.args[0];
    match opt.key {
        Key::ProxyCommand if arg.text.eq_ignore_ascii_case("none") && opt.args.len() == 1 => Ok(Vec::new()),
        Key::ProxyCommand => Err(config.error(
            opt.at,
            None,
            format!(
                "{}: migready cannot run a proxy command; use ProxyJump (or proxy_jump in the inventory)",
                opt.keyword
            ),
        )),
        _ => {
            if opt.args.len() > 1 {
                return Err(config.error(opt.at, Some(opt.args[1].column), format!("{} takes one value (hops separated by commas, no spaces)", opt.keyword)));
            }
            parse_jumps(&arg.text).map_err(|reason| config.error(opt.at, Some(arg.column), format!("{}: {reason}", opt.keyword)))
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
