//! Helpers shared by the integration tests.

/// Bytes from a readable spec: whitespace-separated tokens, each either two hex digits (one byte)
/// or `'text'` (the text's UTF-8 bytes, no msgpack header). Text may not contain spaces.
pub fn spec(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if let Some(text) = tok.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            out.extend_from_slice(text.as_bytes());
        } else {
            assert_eq!(tok.len(), 2, "bad token {tok:?}");
            out.push(u8::from_str_radix(tok, 16).expect("hex byte"));
        }
    }
    out
}
