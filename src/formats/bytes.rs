//! The bytes a configuration file's text stands for.
// Placeholder until the lossless mapping lands: UTF-8 text only.

pub fn encode(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}
