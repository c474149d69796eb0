//! UTF8 (and the UTF-8 step of SQL_ASCII), which has no table: `pg_verify_mbstr(PG_UTF8)`
//! with PostgreSQL's error lengths, the fast decode (SIMD validation and NUL check a block
//! at a time) and the encode (the bytes, refusing NUL).

use super::reported_bytes;
use crate::encoding::{ClientEncoding, EncodingError};

/// `pg_utf_mblen`: 1 for ASCII and for bytes that cannot start a character.
fn utf8_mblen(b: u8) -> usize {
    if b & 0x80 == 0 {
        1
    } else if b & 0xe0 == 0xc0 {
        2
    } else if b & 0xf0 == 0xe0 {
        3
    } else if b & 0xf8 == 0xf0 {
        4
    } else {
        1
    }
}

/// `pg_verify_mbstr(PG_UTF8)`, reporting errors for `enc` (UTF8 or SQL_ASCII).
///
/// Rust's UTF-8 validation is RFC 3629, exactly `pg_utf8_islegal` (no overlongs, no
/// surrogates, nothing above U+10FFFF), and it stops at the same position PostgreSQL's
/// character-by-character loop does; PostgreSQL also rejects NUL, which Rust allows.
pub(super) fn verify_utf8(enc: ClientEncoding, bytes: &[u8]) -> Result<&str, EncodingError> {
    let (valid, bad_at) = match std::str::from_utf8(bytes) {
        Ok(s) => (s, None),
        Err(e) => {
            let up_to = e.valid_up_to();
            let prefix = bytes.get(..up_to).unwrap_or_default();
            (std::str::from_utf8(prefix).unwrap_or_default(), Some(up_to))
        }
    };
    if let Some(nul) = valid.bytes().position(|b| b == 0) {
        return Err(EncodingError::invalid(enc, "UTF8", nul, &[0]));
    }
    match bad_at {
        None => Ok(valid),
        Some(at) => {
            let first = bytes.get(at).copied().unwrap_or_default();
            let shown = reported_bytes(bytes, at, utf8_mblen(first));
            Err(EncodingError::invalid(enc, "UTF8", at, shown))
        }
    }
}

/// `convert_from(bytes, UTF8)` (and the UTF-8 step of SQL_ASCII): valid UTF-8 without
/// NUL, copied. Blocks end on character boundaries; each is validated (SIMD) and checked
/// for NUL while in cache. Any failure re-runs the exact (slow) path for PostgreSQL's error.
pub(super) fn decode_utf8_fast(bytes: &[u8]) -> Option<String> {
    const BLOCK: usize = 16 * 1024;
    let mut out = String::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let mut end = at.saturating_add(BLOCK).min(bytes.len());
        // Back up to a character's first byte (at most 3 continuation bytes).
        let mut back = 0;
        while end < bytes.len() && back < 3 && bytes.get(end).is_some_and(|b| b & 0xc0 == 0x80) {
            end -= 1;
            back += 1;
        }
        let block = bytes.get(at..end)?;
        if memchr::memchr(0, block).is_some() {
            return None;
        }
        out.push_str(simdutf8::basic::from_utf8(block).ok()?);
        at = end;
    }
    Some(out)
}

/// `convert_to(text, UTF8)`: the bytes, refusing NUL; checked and copied a block at a
/// time so the check reads from cache.
pub(super) fn encode_utf8(enc: ClientEncoding, text: &str) -> Result<Vec<u8>, EncodingError> {
    const BLOCK: usize = 16 * 1024;
    let s = text.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    for (k, block) in s.chunks(BLOCK).enumerate() {
        if let Some(nul) = memchr::memchr(0, block) {
            return Err(EncodingError::nul_in_text(enc, k * BLOCK + nul));
        }
        out.extend_from_slice(block);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    #[test]
    fn utf8_errors_report_postgres_lengths() {
        let err = decode(ClientEncoding::Utf8, b"caf\xe9\x20\x80").unwrap_err();
        assert_eq!(err.offset(), 3);
        assert_eq!(err.bytes(), b"\xe9\x20\x80");
        let err = decode(ClientEncoding::Utf8, b"ab\xe2\x82").unwrap_err();
        assert_eq!(err.bytes(), b"\xe2\x82");
        let err = decode(ClientEncoding::Utf8, b"\xf8\x88").unwrap_err();
        assert_eq!(err.bytes(), b"\xf8");
        let err = decode(ClientEncoding::Utf8, b"\xed\xa0\x80").unwrap_err();
        assert_eq!(err.bytes(), b"\xed\xa0\x80");
        let err = decode(ClientEncoding::Utf8, b"a\x00\xff").unwrap_err();
        assert_eq!((err.offset(), err.bytes()), (1, &b"\x00"[..]));
        let err = decode(ClientEncoding::Utf8, b"\xff\x00").unwrap_err();
        assert_eq!((err.offset(), err.bytes()), (0, &b"\xff"[..]));
    }
}
