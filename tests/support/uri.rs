//! JavaScript's URI-component coding, which the cookie formats (Express's, the
//! PocketBase SDK's) and reset links use. Written here rather than taken from the
//! product, whose encoding the tests check.

/// JavaScript's `encodeURIComponent`.
pub fn encode_uri_component(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// JavaScript's `decodeURIComponent`, for well-formed input.
pub fn decode_uri_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .unwrap_or_else(|e| panic!("not a percent escape in {text:?}: {e}"));
            let byte = u8::from_str_radix(hex, 16)
                .unwrap_or_else(|e| panic!("not a percent escape in {text:?}: {e}"));
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| panic!("{text:?} does not decode to UTF-8: {e}"))
}
