//! Strings from hosts, made safe for a terminal.
use std::borrow::Cow;

/// Control and bidi characters written as escapes (`\x1b`, `\u{202e}`).
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    let bad = |c: char| (c.is_control() && c != '\n') || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if bad(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect())
}
