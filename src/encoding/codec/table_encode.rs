//! Text → client bytes through an encode table, one pass for the single-byte and the
//! multibyte encodings alike (`UtfToLocal`): ASCII copied 16 bytes and 2 KiB at a time,
//! every other character looked up, the table value stored as PostgreSQL's
//! `store_coded_char` does.

use super::ascii::{all_clean, clean_prefix, load16, nul_from, IN_BLOCK};
use crate::encoding::{ClientEncoding, EncodingError};

/// Appends a table value (a big-endian byte sequence without NUL bytes) to `out`, as
/// PostgreSQL's `store_coded_char` does.
#[inline(always)]
pub(super) fn store_coded(out: &mut Vec<u8>, code: u32) {
    for b in code.to_be_bytes() {
        if b != 0 {
            out.push(b);
        }
    }
}

/// The code point of the (valid) UTF-8 character starting at `at` with high byte `b0`,
/// and its length.
#[inline(always)]
fn utf8_at(s: &[u8], at: usize, b0: u8) -> (u32, usize) {
    let cont = |k: usize| u32::from(s.get(at + k).copied().unwrap_or_default() & 0x3f);
    if b0 < 0xe0 {
        (u32::from(b0 & 0x1f) << 6 | cont(1), 2)
    } else if b0 < 0xf0 {
        (u32::from(b0 & 0x0f) << 12 | cont(1) << 6 | cont(2), 3)
    } else {
        (
            u32::from(b0 & 0x07) << 18 | cont(1) << 12 | cont(2) << 6 | cont(3),
            4,
        )
    }
}

/// The error of an encode stopped at the character at `at`: a NUL anywhere in the text
/// comes first (PostgreSQL text cannot hold one), then the character without equivalent.
#[cold]
// Not for inlining (being cold, it stays out of line): `#[inline]` instantiates it in its
// caller's codegen unit, as when both shared one file. Left in a unit of its own, it made
// the codec loops compile differently (up to 4% more instructions run, callgrind).
#[inline]
fn encode_error(enc: ClientEncoding, text: &str, at: usize) -> EncodingError {
    match nul_from(text.as_bytes(), 0) {
        Some(nul) => EncodingError::nul_in_text(enc, nul),
        None => {
            let ch = text
                .get(at..)
                .and_then(|s| s.chars().next())
                .unwrap_or_default();
            EncodingError::no_equivalent(enc, at, ch)
        }
    }
}

/// Text → client bytes in one pass: ASCII 16 bytes at a time, other characters through
/// the paged table; `value` returns 0 for "no equivalent".
#[inline(always)]
pub(super) fn encode_with(
    enc: ClientEncoding,
    text: &str,
    value: impl Fn(u32) -> u32,
) -> Result<Vec<u8>, EncodingError> {
    let s = text.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut at = 0;
    let mut block_end = 0;
    while at < s.len() {
        if at >= block_end {
            // A block of clean ASCII is one check (vectorized) and one copy.
            block_end = at.saturating_add(IN_BLOCK).min(s.len());
            let block = s.get(at..block_end).unwrap_or_default();
            if all_clean(block) {
                out.extend_from_slice(block);
                at = block_end;
                continue;
            }
        }
        if let Some(chunk) = load16(s, at) {
            let k = clean_prefix(chunk);
            // A fixed 16-byte copy and a shorter length beat a variable-length copy.
            out.extend_from_slice(&chunk);
            out.truncate(out.len() - (16 - k));
            at += k;
            if k == 16 {
                continue;
            }
        }
        // A run of non-ASCII characters (or a NUL), then ASCII again.
        while let Some(&b0) = s.get(at) {
            if b0 < 0x80 {
                if b0 == 0 {
                    return Err(encode_error(enc, text, at));
                }
                if at + 16 <= s.len() {
                    break; // the 16-byte path takes it
                }
                out.push(b0); // the last 15 bytes
                at += 1;
                continue;
            }
            let (cp, l) = utf8_at(s, at, b0);
            let code = value(cp);
            if code == 0 {
                return Err(encode_error(enc, text, at));
            }
            store_coded(&mut out, code);
            at += l;
        }
    }
    Ok(out)
}
