//! Helpers for inventory values: type descriptions for messages, path
//! expansion, validation of host names, addresses, users and sources, and
//! span-to-position conversion.
//!
//! Every value that later reaches a remote shell, a libvirt URI or a firewall
//! rule is checked here, so that only plain words get that far: host names are
//! RFC 1123 names, addresses are names or IP addresses, users are POSIX
//! portable user names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use toml_edit::{Item, Value};

/// Describes a TOML item for "found ..." messages: `string "22"`,
/// `integer 70000`, `table`, ...
pub(super) fn describe(item: &Item) -> String {
    match item {
        Item::None => "nothing".to_string(),
        Item::Value(value) => match value {
            Value::String(s) => format!("string {:?}", s.value()),
            Value::Integer(i) => format!("integer {}", i.value()),
            Value::Float(f) => format!("float {}", f.value()),
            Value::Boolean(b) => format!("boolean {}", b.value()),
            Value::Datetime(d) => format!("datetime {}", d.value()),
            Value::Array(_) => "array".to_string(),
            Value::InlineTable(_) => "inline table".to_string(),
        },
        Item::Table(_) => "table".to_string(),
        Item::ArrayOfTables(_) => "array of tables".to_string(),
    }
}

/// Expands a leading `~` or `~/` to `home` and resolves a relative path
/// against `base_dir`. Errors are message fragments.
pub(super) fn expand_path(
    value: &str,
    base_dir: &Path,
    home: Option<&Path>,
) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("must not be empty".to_string());
    }
    if let Some(rest) = value.strip_prefix('~') {
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(format!(
                "cannot expand {value:?}: only \"~\" and \"~/\" are supported"
            ));
        }
        let home = home.ok_or_else(|| format!("cannot expand {value:?}: $HOME is not set"))?;
        let rest = rest.trim_start_matches('/');
        return Ok(if rest.is_empty() {
            home.to_path_buf()
        } else {
            home.join(rest)
        });
    }
    let path = Path::new(value);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    })
}

/// Longest host name (RFC 1123, without a trailing dot).
pub(super) const MAX_HOST_NAME: usize = 253;
/// Longest label of a host name.
pub(super) const MAX_LABEL: usize = 63;

/// Checks an RFC 1123 host name: dot-separated labels of ASCII letters,
/// digits and hyphens, no label empty, starting or ending with a hyphen, or
/// longer than 63 characters; at most 253 characters in all. A name whose last
/// label is all digits must be an IPv4 address (`192.0.2.11` is accepted,
/// `192.0.2.256` is not). Errors are message fragments.
pub(super) fn check_host_name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".to_string());
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "{} is not allowed in a host name (letters, digits, '-' and '.' only)",
            describe_char(c)
        ));
    }
    if value.len() > MAX_HOST_NAME {
        return Err(format!(
            "host name is {} characters long, more than {MAX_HOST_NAME}",
            value.len()
        ));
    }
    for label in value.split('.') {
        if label.is_empty() {
            return Err(
                "empty label in host name (a leading or trailing dot, or two dots in a row)"
                    .to_string(),
            );
        }
        if label.len() > MAX_LABEL {
            return Err(format!(
                "label {label:?} is {} characters long, more than {MAX_LABEL}",
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
    }
    let last = value.rsplit('.').next().unwrap_or(value);
    if last.bytes().all(|b| b.is_ascii_digit()) && value.parse::<Ipv4Addr>().is_err() {
        return Err("looks like an IPv4 address but is not one".to_string());
    }
    Ok(())
}

/// Checks where SSH connects: a host name (see [`check_host_name`]), an IPv4
/// address, or an IPv6 address with or without brackets (`fd42::1`,
/// `[fd42::1]`). Returns the address to use: brackets removed. IPv6 zone ids
/// (`fe80::1%eth0`) are refused. Errors are message fragments.
pub(super) fn check_address(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("must not be empty".to_string());
    }
    let (inner, bracketed) = match value.strip_prefix('[') {
        Some(rest) => match rest.strip_suffix(']') {
            Some(inner) => (inner, true),
            None => return Err("an address in brackets must end with ']'".to_string()),
        },
        None => (value, false),
    };
    if inner.contains('%') && inner.contains(':') {
        return Err(
            "IPv6 zone ids (\"%eth0\") are not supported; use an address that is not link-local, \
             or a host name"
                .to_string(),
        );
    }
    if bracketed || inner.contains(':') {
        return match inner.parse::<Ipv6Addr>() {
            Ok(_) => Ok(inner.to_string()),
            Err(_) if bracketed => Err("not an IPv6 address inside the brackets".to_string()),
            Err(_) => {
                Err("not a valid IPv6 address (':' is only allowed in IPv6 addresses)".to_string())
            }
        };
    }
    if inner.parse::<Ipv4Addr>().is_ok() {
        return Ok(inner.to_string());
    }
    check_host_name(inner)?;
    Ok(inner.to_string())
}

/// Checks an SSH user name: POSIX portable user name characters
/// (`A-Z a-z 0-9 . _ -`), not starting with `-`. Errors are message fragments.
pub(super) fn check_user(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".to_string());
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{} is not allowed in a user name (letters, digits, '.', '_' and '-' only)",
            describe_char(c)
        ));
    }
    if value.starts_with('-') {
        return Err("a user name must not start with '-'".to_string());
    }
    Ok(())
}

/// A character for messages: `';'`, `a space`, `'é' (U+00E9)`, `U+000A`.
fn describe_char(c: char) -> String {
    if c == ' ' {
        "a space".to_string()
    } else if c.is_whitespace() || c.is_control() {
        format!("U+{:04X}", c as u32)
    } else if c.is_ascii() {
        format!("{c:?}")
    } else {
        format!("{c:?} (U+{:04X})", c as u32)
    }
}

/// True for a plain IPv4/IPv6 address or a CIDR (`192.0.2.0/24`,
/// `2001:db8::/32`) with a prefix length valid for the address family.
pub(super) fn is_valid_source(source: &str) -> bool {
    let (address, prefix) = match source.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (source, None),
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return false;
    };
    let Some(prefix) = prefix else {
        return true;
    };
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let max = if address.is_ipv4() { 32 } else { 128 };
    prefix.parse::<u32>().is_ok_and(|len| len <= max)
}

/// Where the lines of a text start, to turn byte offsets into 1-based (line,
/// column) positions without rescanning the text for each one: built in one
/// pass, then each position is a binary search, plus a count of characters on
/// its line when that line is not pure ASCII. Loading an inventory asks for a
/// position per host, so this keeps loading linear in the file's size.
pub(super) struct Lines<'a> {
    text: &'a str,
    /// Byte offset of the start of each line; `starts[0]` is 0.
    starts: Vec<usize>,
    /// Whether each line is pure ASCII (a column is then a byte difference).
    ascii: Vec<bool>,
}

impl<'a> Lines<'a> {
    pub(super) fn new(text: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        let mut ascii = Vec::new();
        let mut line_ascii = true;
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
                ascii.push(line_ascii);
                line_ascii = true;
            } else if !b.is_ascii() {
                line_ascii = false;
            }
        }
        ascii.push(line_ascii);
        Lines {
            text,
            starts,
            ascii,
        }
    }

    /// 1-based (line, column) of byte `offset`; the column counts characters,
    /// not bytes. An offset past the end is the end; one inside a character is
    /// that character.
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let text = self.text;
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line starting at or before `offset`.
        let index = self.starts.partition_point(|&start| start <= offset) - 1;
        let start = self.starts[index];
        let column = if self.ascii[index] {
            offset - start
        } else {
            let current = &text[start..offset];
            // A byte order mark is not a column.
            let current = if index == 0 {
                current.strip_prefix('\u{feff}').unwrap_or(current)
            } else {
                current
            };
            current.chars().count()
        };
        (index + 1, column + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        for ok in [
            "192.0.2.11",
            "192.0.2.0/24",
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.1.2.3/32",
            "2001:db8::1",
            "2001:db8::/32",
            "::/0",
            "::1/128",
        ] {
            assert!(is_valid_source(ok), "{ok}");
        }
        for bad in [
            "",
            "/24",
            "192.0.2.0/",
            "192.0.2.0/33",
            "192.0.2.0/-1",
            "192.0.2.0/+8",
            "192.0.2.0/24/1",
            "2001:db8::/129",
            "192.0.2",
            "192.0.2.256",
            "010.0.0.1",
            " 192.0.2.1",
            "compute01",
            "fe80::1%eth0",
        ] {
            assert!(!is_valid_source(bad), "{bad}");
        }
    }

    #[test]
    fn paths() {
        let home = Some(Path::new("/home/u"));
        let base = Path::new("/etc/migready");
        assert_eq!(expand_path("~", base, home).unwrap(), Path::new("/home/u"));
        assert_eq!(expand_path("~/", base, home).unwrap(), Path::new("/home/u"));
        assert_eq!(
            expand_path("~/.ssh/k", base, home).unwrap(),
            Path::new("/home/u/.ssh/k")
        );
        assert_eq!(
            expand_path("/abs/k", base, home).unwrap(),
            Path::new("/abs/k")
        );
        assert_eq!(
            expand_path("keys/k", base, home).unwrap(),
            Path::new("/etc/migready/keys/k")
        );
        assert_eq!(
            expand_path("k", Path::new(""), home).unwrap(),
            Path::new("k")
        );
        assert_eq!(
            expand_path("a~/k", base, home).unwrap(),
            Path::new("/etc/migready/a~/k")
        );
        assert_eq!(
            expand_path("", base, home).unwrap_err(),
            "must not be empty"
        );
        assert_eq!(
            expand_path("~bob/k", base, home).unwrap_err(),
            r#"cannot expand "~bob/k": only "~" and "~/" are supported"#
        );
        assert_eq!(
            expand_path("~/k", base, None).unwrap_err(),
            r#"cannot expand "~/k": $HOME is not set"#
        );
    }

    /// The position by rescanning the text, as loading did before [`Lines`].
    fn line_column(text: &str, offset: usize) -> (usize, usize) {
        Lines::new(text).position(offset)
    }

    fn rescanned(text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let current = &before[line_start..];
        let current = if line == 1 {
            current.strip_prefix('\u{feff}').unwrap_or(current)
        } else {
            current
        };
        (line, current.chars().count() + 1)
    }

    #[test]
    fn positions_agree_with_rescanning() {
        for text in [
            "",
            "\n",
            "\n\n",
            "a",
            "ab\ncdé f\n\ng",
            "\u{feff}a = 1\nb = \"é\"\r\nc\n",
            "é\n\u{feff}x\n",
            "x\r\ny",
        ] {
            let lines = Lines::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    lines.position(offset),
                    rescanned(text, offset),
                    "{text:?} at {offset}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn positions_agree_with_rescanning_any_text(text in "(\\PC|\n|\r|\u{feff}){0,80}", offset in 0usize..400) {
            proptest::prop_assert_eq!(Lines::new(&text).position(offset), rescanned(&text, offset));
        }
    }

    #[test]
    fn positions() {
        let text = "ab\ncdé f\n\ng";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (1, 3));
        assert_eq!(line_column(text, 3), (2, 1));
        // "é" is two bytes but one column.
        assert_eq!(line_column(text, 7), (2, 4));
        assert_eq!(line_column(text, 8), (2, 5));
        assert_eq!(line_column(text, 10), (3, 1));
        assert_eq!(line_column(text, 11), (4, 1));
        assert_eq!(line_column(text, 999), (4, 2));
        assert_eq!(line_column("\u{feff}a = 1", 3), (1, 1));
    }
}
