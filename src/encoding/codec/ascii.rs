//! The fast paths' shared pieces: ASCII 16 bytes and a 2 KiB block at a time, the
//! decoders' stack output block and its validated flush, and the NUL search the error
//! paths use.
//!
//! Why hand-written rather than encoding_rs: encoding_rs is not byte-exact with PostgreSQL
//! (see `tables.rs`), and where its mappings agree, PostgreSQL's verifier (NUL, malformed
//! sequences, which error comes first) would have to run as a separate pass around it,
//! which costs more than converting in one pass with PostgreSQL's rules built in. Safe
//! Rust cannot append unvalidated bytes to a `String`, so decoders write UTF-8 into a small
//! stack buffer that is validated with SIMD (`simdutf8`) while it is still in L1 cache and
//! then appended: a few percent of the work instead of a second pass over the output.

/// Input bytes converted per output block: the longest output of a byte is 3 bytes, so
/// one block's output (plus the 16-byte copies and 4-byte writes past its end, and the
/// single-byte decoder's 8-byte steps, which may end up to 7 bytes past the block: 21
/// more bytes) fits [`OUT_BLOCK`]; a write that did not fit would be lost, so the unit
/// tests' 2100-17,000-byte inputs cross block ends in every encoding.
pub(super) const IN_BLOCK: usize = 2048;
pub(super) const OUT_BLOCK: usize = IN_BLOCK * 3 + 64;

/// 0x01 and 0x80 in each of 16 bytes, for [`clean_prefix`] and [`all_clean`].
const ONES: u128 = u128::from_le_bytes([0x01; 16]);
const HIGHS: u128 = u128::from_le_bytes([0x80; 16]);

/// 16 bytes at `at`, when there are that many.
#[inline(always)]
pub(super) fn load16(s: &[u8], at: usize) -> Option<[u8; 16]> {
    // `try_into` of a 16-byte slice compiles to one unaligned load.
    s.get(at..at.wrapping_add(16))?.try_into().ok()
}

/// How many of the 16 bytes, from the first, are ASCII other than NUL (16: all).
/// `b - 1` borrows into the high bit exactly for 0, and 0x80..=0xff have it already; a
/// borrow only disturbs bytes after the first flagged one, so the count is exact.
#[inline(always)]
pub(super) fn clean_prefix(chunk: [u8; 16]) -> usize {
    let w = u128::from_le_bytes(chunk);
    let flagged = (w.wrapping_sub(ONES) | w) & HIGHS;
    (flagged.trailing_zeros() / 8) as usize
}

/// The decoders' 16-byte ASCII step: copies the 16 bytes at `at` to `buf` at `len` (the
/// bytes past the ASCII prefix are overwritten next) and returns the length of that
/// prefix, ASCII other than NUL ([`clean_prefix`]); `None` when fewer than 16 bytes are
/// left.
#[inline(always)]
pub(super) fn ascii16(
    bytes: &[u8],
    at: usize,
    buf: &mut [u8; OUT_BLOCK],
    len: usize,
) -> Option<usize> {
    let chunk = load16(bytes, at)?;
    if let Some(dst) = buf.get_mut(len..len + 16) {
        dst.copy_from_slice(&chunk);
    }
    Some(clean_prefix(chunk))
}

/// Whether the whole block is ASCII without NUL (64 bytes per step, stopping at the first
/// step that is not).
#[inline(always)]
pub(super) fn all_clean(block: &[u8]) -> bool {
    let mut steps = block.chunks_exact(64);
    for step in &mut steps {
        let mut acc = 0u128;
        for c in step.chunks_exact(16) {
            let mut a = [0u8; 16];
            a.copy_from_slice(c);
            let w = u128::from_le_bytes(a);
            acc |= w.wrapping_sub(ONES) | w;
        }
        if acc & HIGHS != 0 {
            return false;
        }
    }
    steps.remainder().iter().all(|&b| b != 0 && b < 0x80)
}

/// A `decode2` table value ([`Utf8Char`](crate::encoding::tables) read as a
/// little-endian `u32`) when it is a character of three UTF-8 bytes (U+0800..=U+FFFF: CJK),
/// the one case the hot loops take; `None` for anything else (none, or shorter).
#[inline(always)]
pub(super) fn utf8_3(ch: [u8; 4]) -> Option<u32> {
    let v = u32::from_le_bytes(ch);
    (v >> 24 == 3).then_some(v)
}

/// Writes a three-byte character ([`utf8_3`]) to `buf` at `len` with one 4-byte store
/// (the fourth byte, its length, is overwritten next) and returns the new output length.
#[inline(always)]
pub(super) fn put_utf8_3(buf: &mut [u8; OUT_BLOCK], len: usize, utf8: u32) -> usize {
    if let Some(dst) = buf.get_mut(len..len + 4) {
        dst.copy_from_slice(&utf8.to_le_bytes());
    }
    len + 3
}

/// Appends `buf` (UTF-8 written by a decoder from table values) to `out`.
#[inline(always)]
pub(super) fn flush(out: &mut String, buf: &[u8]) {
    match simdutf8::basic::from_utf8(buf) {
        Ok(s) => out.push_str(s),
        // Unreachable: decoders only write ASCII and `Utf8Char`s of Unicode scalar values
        // (unit test `tables::tests::tables_hold_scalar_values`). Kept total without a panic.
        Err(_) => out.push_str(&String::from_utf8_lossy(buf)),
    }
}

/// The first NUL at or after `from`.
pub(super) fn nul_from(bytes: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(0, bytes.get(from..)?).map(|p| p + from)
}
