//! Text that comes from hosts (stderr, file contents, names, messages built from
//! them) made safe to print on a terminal: control characters and bidirectional
//! formatting characters are shown as escapes instead of being obeyed.
//!
//! Escaped: C0 controls (`\x00`-`\x1f`; `\n`, `\r`, `\t` by name), DEL (`\x7f`),
//! C1 controls (`\u{80}`-`\u{9f}`), and the bidi controls U+061C, U+200E, U+200F,
//! U+202A-U+202E, U+2066-U+2069 (`\u{202e}`). Everything else is printed as is.
//! JSON output does not go through here: serde escapes what JSON needs, and the
//! document keeps the exact text.

use std::borrow::Cow;
use std::fmt::Write;

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn needs_escape(c: char, keep_lines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_lines,
        _ => c.is_control() || is_bidi(c),
    }
}

fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c, keep_lines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !needs_escape(c, keep_lines) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// One line for the terminal: every control character escaped, newline and tab
/// included (`\n`, `\t`), and the bidi controls. For names, messages, evidence,
/// errors: anything printed where one line is meant.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Text printed as lines (a diff, a file): newlines and tabs kept, every other
/// control character and the bidi controls escaped (a `\r` shows as `\r`).
pub fn lines_for_terminal(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert!(matches!(for_terminal("plain text: é, → and 日本"), Cow::Borrowed(_)));
        assert_eq!(for_terminal("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(for_terminal("a\u{202e}txt.exe"), "a\\u{202e}txt.exe");
        assert_eq!(for_terminal("\u{2066}\u{2069}\u{200e}\u{200f}\u{061c}"), "\\u{2066}\\u{2069}\\u{200e}\\u{200f}\\u{61c}");
        assert_eq!(for_terminal("bell\x07 nul\0 del\x7f csi\u{9b}"), "bell\\x07 nul\\x00 del\\x7f csi\\u{9b}");
        assert_eq!(for_terminal("two\nlines\r\tand a tab"), "two\\nlines\\r\\tand a tab");
        // U+202F (narrow no-break space) and U+2065 are not controls.
        assert_eq!(for_terminal("1\u{202f}000\u{2065}"), "1\u{202f}000\u{2065}");
    }

    #[test]
    fn lines_keep_newlines_and_tabs() {
        assert!(matches!(lines_for_terminal("a\n\tb\n"), Cow::Borrowed(_)));
        assert_eq!(lines_for_terminal("+x = 1\r\n+\x1b]0;title\x07\n"), "+x = 1\\r\n+\\x1b]0;title\\x07\n");
    }
}
