//! Helpers for inventory values: type descriptions for messages, path
//! expansion, address validation and span-to-position conversion.

use std::net::IpAddr;
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

/// 1-based (line, column) of byte `offset` in `text`; the column counts
/// characters, not bytes.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let current = &before[line_start..];
    // A byte order mark is not a column.
    let current = if line == 1 {
        current.strip_prefix('\u{feff}').unwrap_or(current)
    } else {
        current
    };
    (line, current.chars().count() + 1)
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
