//! A lossless mapping between a file's bytes and a `String`, so that parsers
//! and edits, which work on text, never lose a byte of a file that is not
//! valid UTF-8 (a latin-1 comment in `libvirtd.conf`, a stray byte in an
//! environment file).
//!
//! [`decode`] keeps valid UTF-8 as it is and turns every byte of an invalid
//! sequence into one private-use code point, `U+10FF00 + byte` (the bytes
//! concerned are always `0x80..=0xFF`, so the code points are
//! `U+10FF80..=U+10FFFF`, at the end of plane 16). A file that legitimately
//! holds one of those code points has each of its four UTF-8 bytes escaped the
//! same way, so no two byte strings decode to the same text. [`encode`] undoes
//! it: `encode(&decode(b)) == b` for every byte string `b`, and
//! `decode(s.as_bytes()) == s` for every string `s` without code points in
//! `U+10FF80..=U+10FFFF` (in particular for every file read as valid UTF-8).
//!
//! # Writing files back
//!
//! The facts decode configuration files with [`decode`] (see
//! `RawFacts::parse_bytes`), so a `Step::Edit`'s `original` and `new` are
//! decoded texts. Whatever writes them to a host must write `encode(new)`,
//! and check that the file did not change since it was read by comparing the
//! host's bytes with `encode(original)` (e.g. their sha256), never
//! `original.as_bytes()`: for a file that is not valid UTF-8 the two differ.

/// First code point of the escape range: an escaped byte `b` is `ESCAPE + b`.
const ESCAPE: u32 = 0x10_FF00;
/// The escaped bytes are `0x80..=0xFF`, so the code points used start here.
const FIRST: u32 = ESCAPE + 0x80;

/// Whether `c` is one of the code points [`decode`] uses for a byte.
pub fn is_escape(c: char) -> bool {
    (FIRST..=ESCAPE + 0xFF).contains(&(c as u32))
}

fn push_escaped(out: &mut String, byte: u8) {
    // `byte >= 0x80` always: ASCII bytes are valid UTF-8.
    out.push(char::from_u32(ESCAPE + u32::from(byte)).unwrap_or(char::REPLACEMENT_CHARACTER));
}

/// The text of `bytes`, losslessly (see the module documentation).
pub fn decode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        if valid.chars().any(is_escape) {
            for c in valid.chars() {
                if is_escape(c) {
                    let mut buf = [0; 4];
                    for &b in c.encode_utf8(&mut buf).as_bytes() {
                        push_escaped(&mut out, b);
                    }
                } else {
                    out.push(c);
                }
            }
        } else {
            out.push_str(valid);
        }
        for &b in chunk.invalid() {
            push_escaped(&mut out, b);
        }
    }
    out
}

/// The bytes `text` stands for: the inverse of [`decode`].
pub fn encode(text: &str) -> Vec<u8> {
    if !text.chars().any(is_escape) {
        return text.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0; 4];
    for c in text.chars() {
        if is_escape(c) {
            out.push((c as u32 - ESCAPE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// `text` for showing to a person: every escaped byte as `\xNN`.
pub fn display(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_escape) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_escape(c) {
            out.push_str(&format!("\\x{:02x}", c as u32 - ESCAPE));
        } else {
            out.push(c);
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn latin1_bytes_become_escapes_and_come_back() {
        let bytes = b"# caf\xe9\nlisten_tcp = 1\n";
        let text = decode(bytes);
        assert_eq!(text, "# caf\u{10ffe9}\nlisten_tcp = 1\n");
        assert_eq!(encode(&text), bytes);
        assert_eq!(display(&text), "# caf\\xe9\nlisten_tcp = 1\n");
    }

    #[test]
    fn valid_utf8_is_itself() {
        for s in ["", "plain", "caf\u{e9} \u{feff} \u{10fefd} \u{10ff7f}\r\n"] {
            assert_eq!(decode(s.as_bytes()), s);
            assert_eq!(encode(s), s.as_bytes());
            assert_eq!(display(s), s);
        }
    }

    #[test]
    fn escape_code_points_in_the_input_are_escaped_too() {
        // U+10FFE9 written as UTF-8 must not read back as the byte 0xE9.
        let s = "a\u{10ffe9}b";
        let text = decode(s.as_bytes());
        assert_eq!(text.chars().count(), 6);
        assert_ne!(text, decode(b"a\xe9b"));
        assert_eq!(encode(&text), s.as_bytes());
    }

    #[test]
    fn truncated_and_overlong_sequences() {
        for bytes in [&b"\xc3"[..], b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff\xfe", b"\xf4\x90\x80\x80"] {
            let text = decode(bytes);
            assert!(text.chars().all(is_escape), "{bytes:?}");
            assert_eq!(encode(&text), bytes);
        }
    }

    fn mostly_text() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            "[ -~\t\r\n]{0,6}".prop_map(String::into_bytes),
            any::<char>().prop_map(|c| c.to_string().into_bytes()),
            (0x10ff80u32..=0x10ffff).prop_map(|c| char::from_u32(c).unwrap().to_string().into_bytes()),
            prop::collection::vec(0x80u8..=0xff, 1..4),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn encode_inverts_decode(bytes in any::<Vec<u8>>()) {
            prop_assert_eq!(encode(&decode(&bytes)), bytes);
        }

        #[test]
        fn encode_inverts_decode_on_text_like_bytes(bytes in mostly_text()) {
            let text = decode(&bytes);
            prop_assert_eq!(encode(&text), bytes.clone());
            // decode is the identity on valid UTF-8 without escape code points.
            if let Ok(s) = std::str::from_utf8(&bytes) && !s.chars().any(is_escape) {
                prop_assert_eq!(text.as_str(), s);
            }
        }

        #[test]
        fn decode_inverts_encode_on_decoded_text(bytes in mostly_text()) {
            let text = decode(&bytes);
            prop_assert_eq!(decode(&encode(&text)), text);
        }
    }
}
