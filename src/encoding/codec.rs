//! The conversions themselves, mirroring PostgreSQL 15's `convert_from()` and
//! `convert_to()` in a UTF8 database step by step:
//!
//! * decode (`convert_from(bytes, ENC)`): first `pg_verify_mbstr(ENC)` checks the whole
//!   input (NUL bytes, malformed or truncated multibyte sequences → `invalid byte sequence
//!   for encoding "ENC"`); only then the conversion runs (`LocalToUtf`), copying ASCII and
//!   looking every other character up in the map (unmapped → `character with byte sequence
//!   … in encoding "ENC" has no equivalent in encoding "UTF8"`). The verifier functions
//!   below are PostgreSQL's (`src/common/wchar.c`: `pg_*_mblen`, `pg_*_verifychar`); the
//!   maps come from the server (see [`super::tables`]).
//! * encode (`convert_to(text, ENC)`, `UtfToLocal`): ASCII is copied, every other
//!   character is looked up (unmapped → `character with byte sequence … in encoding
//!   "UTF8" has no equivalent in encoding "ENC"`).
//!
//! UTF8 and SQL_ASCII have no table: `convert_from(x, 'UTF8')` only verifies the bytes,
//! and `convert_from(x, 'SQL_ASCII')` verifies them as SQL_ASCII (no NUL) and then, since
//! nothing can be converted from SQL_ASCII, as UTF8; `convert_to(t, 'UTF8')` and
//! `convert_to(t, 'SQL_ASCII')` return the UTF-8 bytes unchanged.

use super::tables::{self, MultiByte, SingleByte};
use super::{ClientEncoding, EncodingError};

/// The multibyte encodings, each with PostgreSQL's own length and validity rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Multi {
    Gbk,
    Uhc,
    Sjis,
    Johab,
}

/// How an encoding is converted.
enum Codec {
    Utf8,
    SqlAscii,
    Single(&'static SingleByte),
    Multi(Multi, &'static MultiByte),
}

fn codec(enc: ClientEncoding) -> Codec {
    use ClientEncoding as E;
    match enc {
        E::Utf8 => Codec::Utf8,
        E::SqlAscii => Codec::SqlAscii,
        E::Latin1 => Codec::Single(&tables::LATIN1),
        E::Latin2 => Codec::Single(&tables::LATIN2),
        E::Latin3 => Codec::Single(&tables::LATIN3),
        E::Latin4 => Codec::Single(&tables::LATIN4),
        E::Latin5 => Codec::Single(&tables::LATIN5),
        E::Latin6 => Codec::Single(&tables::LATIN6),
        E::Latin7 => Codec::Single(&tables::LATIN7),
        E::Latin8 => Codec::Single(&tables::LATIN8),
        E::Latin9 => Codec::Single(&tables::LATIN9),
        E::Latin10 => Codec::Single(&tables::LATIN10),
        E::Iso8859_5 => Codec::Single(&tables::ISO_8859_5),
        E::Iso8859_6 => Codec::Single(&tables::ISO_8859_6),
        E::Iso8859_7 => Codec::Single(&tables::ISO_8859_7),
        E::Iso8859_8 => Codec::Single(&tables::ISO_8859_8),
        E::Win866 => Codec::Single(&tables::WIN866),
        E::Win874 => Codec::Single(&tables::WIN874),
        E::Win1250 => Codec::Single(&tables::WIN1250),
        E::Win1251 => Codec::Single(&tables::WIN1251),
        E::Win1252 => Codec::Single(&tables::WIN1252),
        E::Win1256 => Codec::Single(&tables::WIN1256),
        E::Win1258 => Codec::Single(&tables::WIN1258),
        E::Gbk => Codec::Multi(Multi::Gbk, &tables::GBK),
        E::Uhc => Codec::Multi(Multi::Uhc, &tables::UHC),
        E::Sjis => Codec::Multi(Multi::Sjis, &tables::SJIS),
        E::Johab => Codec::Multi(Multi::Johab, &tables::JOHAB),
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL's length and validity rules (src/common/wchar.c, PostgreSQL 15).
// ---------------------------------------------------------------------------------------

/// `NONUTF8_INVALID_BYTE0`/`NONUTF8_INVALID_BYTE1`: the pair GBK and UHC reject outright.
const INVALID_PAIR: (u8, u8) = (0x8d, b' ');
/// `SS2`, `SS3`: the EUC single shifts that give JOHAB lead bytes their lengths.
const SS2: u8 = 0x8e;
const SS3: u8 = 0x8f;

fn is_highbit(b: u8) -> bool {
    b & 0x80 != 0
}

/// `IS_EUC_RANGE_VALID`.
fn is_euc_range_valid(b: u8) -> bool {
    (0xa1..=0xfe).contains(&b)
}

/// `ISSJISHEAD`.
fn is_sjis_head(b: u8) -> bool {
    (0x81..=0x9f).contains(&b) || (0xe0..=0xfc).contains(&b)
}

/// `ISSJISTAIL`.
fn is_sjis_tail(b: u8) -> bool {
    (0x40..=0x7e).contains(&b) || (0x80..=0xfc).contains(&b)
}

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

impl Multi {
    /// `pg_gbk_mblen`, `pg_uhc_mblen`, `pg_sjis_mblen`, `pg_johab_mblen` (= `pg_euc_mblen`).
    fn mblen(self, b: u8) -> usize {
        match self {
            Multi::Gbk | Multi::Uhc => {
                if is_highbit(b) {
                    2
                } else {
                    1
                }
            }
            Multi::Sjis => {
                if (0xa1..=0xdf).contains(&b) {
                    1 // half-width katakana
                } else if is_highbit(b) {
                    2
                } else {
                    1
                }
            }
            Multi::Johab => {
                if b == SS2 {
                    2
                } else if b == SS3 {
                    3
                } else if is_highbit(b) {
                    2
                } else {
                    1
                }
            }
        }
    }

    /// `pg_*_verifychar` for a character starting with a high byte: its length, or
    /// `None` when PostgreSQL finds it malformed.
    fn verify_char(self, s: &[u8]) -> Option<usize> {
        let first = *s.first()?;
        let l = self.mblen(first);
        let seq = s.get(..l)?; // `if (len < l) return -1;`
        match self {
            Multi::Gbk | Multi::Uhc => {
                if l == 2 && (seq[0], seq[1]) == INVALID_PAIR {
                    return None;
                }
                seq[1..].iter().all(|&b| b != 0).then_some(l)
            }
            Multi::Sjis => {
                if l == 1 {
                    return Some(1);
                }
                (is_sjis_head(seq[0]) && is_sjis_tail(seq[1])).then_some(l)
            }
            Multi::Johab => {
                if !is_highbit(first) {
                    return Some(l);
                }
                seq[1..].iter().all(|&b| is_euc_range_valid(b)).then_some(l)
            }
        }
    }
}

/// `report_invalid_encoding`: the bytes PostgreSQL prints are the character's length
/// (by its first byte), cut at the end of the input.
fn reported_bytes(s: &[u8], at: usize, mblen: usize) -> &[u8] {
    let end = at.saturating_add(mblen).min(s.len());
    s.get(at..end).unwrap_or_default()
}

/// `pg_verify_mbstr(PG_UTF8)`, reporting errors for `enc` (UTF8 or SQL_ASCII).
///
/// Rust's UTF-8 validation is RFC 3629, exactly `pg_utf8_islegal` (no overlongs, no
/// surrogates, nothing above U+10FFFF), and it stops at the same position PostgreSQL's
/// character-by-character loop does; PostgreSQL also rejects NUL, which Rust allows.
fn verify_utf8(enc: ClientEncoding, bytes: &[u8]) -> Result<&str, EncodingError> {
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

/// `pg_verify_mbstr` for a multibyte encoding.
fn verify_multi(
    enc: ClientEncoding,
    multi: Multi,
    bytes: &[u8],
    from: usize,
) -> Result<(), EncodingError> {
    let mut at = from;
    while let Some(&b) = bytes.get(at) {
        let len = if !is_highbit(b) {
            if b == 0 {
                return Err(EncodingError::invalid(enc, enc.name(), at, &[0]));
            }
            Some(1)
        } else {
            multi.verify_char(bytes.get(at..).unwrap_or_default())
        };
        match len {
            Some(l) => at += l,
            None => {
                let shown = reported_bytes(bytes, at, multi.mblen(b));
                return Err(EncodingError::invalid(enc, enc.name(), at, shown));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Fast paths.
//
// Why hand-written rather than encoding_rs: encoding_rs is not byte-exact with PostgreSQL
// (see `tables.rs`), and where its mappings agree, PostgreSQL's verifier (NUL, malformed
// sequences, which error comes first) would have to run as a separate pass around it,
// which costs more than converting in one pass with PostgreSQL's rules built in. Safe
// Rust cannot append unvalidated bytes to a `String`, so decoders write UTF-8 into a small
// stack buffer that is validated with SIMD (`simdutf8`) while it is still in L1 cache and
// then appended: a few percent of the work instead of a second pass over the output.
// ---------------------------------------------------------------------------------------

/// Input bytes converted per output block: the longest output of a byte is 3 bytes, so
/// one block's output (plus the 16-byte copies and 4-byte writes past its end) fits
/// [`OUT_BLOCK`].
const IN_BLOCK: usize = 2048;
const OUT_BLOCK: usize = IN_BLOCK * 3 + 64;

/// 16 bytes at `at`, when there are that many.
#[inline(always)]
fn load16(s: &[u8], at: usize) -> Option<[u8; 16]> {
    // `try_into` of a 16-byte slice compiles to one unaligned load.
    s.get(at..at.wrapping_add(16))?.try_into().ok()
}

/// How many of the 16 bytes, from the first, are ASCII other than NUL (16: all).
/// `b - 1` borrows into the high bit exactly for 0, and 0x80..=0xff have it already; a
/// borrow only disturbs bytes after the first flagged one, so the count is exact.
#[inline(always)]
fn clean_prefix(chunk: [u8; 16]) -> usize {
    const ONES: u128 = u128::from_le_bytes([0x01; 16]);
    const HIGHS: u128 = u128::from_le_bytes([0x80; 16]);
    let w = u128::from_le_bytes(chunk);
    let flagged = (w.wrapping_sub(ONES) | w) & HIGHS;
    (flagged.trailing_zeros() / 8) as usize
}

/// The decoders' 16-byte ASCII step: copies the 16 bytes at `at` to `buf` at `len` (the
/// bytes past the ASCII prefix are overwritten next) and returns the length of that
/// prefix, ASCII other than NUL ([`clean_prefix`]); `None` when fewer than 16 bytes are
/// left.
#[inline(always)]
fn ascii16(bytes: &[u8], at: usize, buf: &mut [u8; OUT_BLOCK], len: usize) -> Option<usize> {
    let chunk = load16(bytes, at)?;
    if let Some(dst) = buf.get_mut(len..len + 16) {
        dst.copy_from_slice(&chunk);
    }
    Some(clean_prefix(chunk))
}

/// Whether the whole block is ASCII without NUL (64 bytes per step, stopping at the first
/// step that is not).
#[inline(always)]
fn all_clean(block: &[u8]) -> bool {
    const ONES: u128 = u128::from_le_bytes([0x01; 16]);
    const HIGHS: u128 = u128::from_le_bytes([0x80; 16]);
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

/// Appends `buf` (UTF-8 written by a decoder from table values) to `out`.
#[inline(always)]
fn flush(out: &mut String, buf: &[u8]) {
    match simdutf8::basic::from_utf8(buf) {
        Ok(s) => out.push_str(s),
        // Unreachable: decoders only write ASCII and `Utf8Char`s of Unicode scalar values
        // (unit test `tables::tests::tables_hold_scalar_values`). Kept total without a panic.
        Err(_) => out.push_str(&String::from_utf8_lossy(buf)),
    }
}

/// The first NUL at or after `from`.
fn nul_from(bytes: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(0, bytes.get(from..)?).map(|p| p + from)
}

/// `convert_from(bytes, UTF8)` (and the UTF-8 step of SQL_ASCII): valid UTF-8 without
/// NUL, copied. Blocks end on character boundaries; each is validated (SIMD) and checked
/// for NUL while in cache. Any failure re-runs the exact (slow) path for PostgreSQL's error.
fn decode_utf8_fast(bytes: &[u8]) -> Option<String> {
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

/// Single-byte decode, verifying (NUL) and converting in one pass.
fn decode_single(
    enc: ClientEncoding,
    table: &SingleByte,
    bytes: &[u8],
) -> Result<String, EncodingError> {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 4);
    let mut buf = [0u8; OUT_BLOCK];
    let mut at = 0;
    while at < bytes.len() {
        let end = at.saturating_add(IN_BLOCK).min(bytes.len());
        let block = bytes.get(at..end).unwrap_or_default();
        if all_clean(block) {
            flush(&mut out, block);
            at = end;
            continue;
        }
        let mut len = 0;
        while at < end {
            if let Some(k) = ascii16(bytes, at, &mut buf, len) {
                len += k;
                at += k;
                if k == 16 {
                    continue;
                }
            }
            // A run of non-ASCII bytes (or a NUL), one at a time, then ASCII again.
            while let Some(&b) = bytes.get(at) {
                let ch = table.utf8[usize::from(b)];
                if ch[3] == 0 {
                    return Err(single_error(enc, bytes, at));
                }
                if let Some(dst) = buf.get_mut(len..len + 4) {
                    dst.copy_from_slice(&ch);
                }
                len += usize::from(ch[3]);
                at += 1;
                // A lone ASCII byte (a space between words) stays here; two or more go
                // back to the 16-byte path.
                if at >= end
                    || (bytes.get(at).is_some_and(|&b| b < 0x80)
                        && bytes.get(at + 1).is_some_and(|&b| b < 0x80))
                {
                    break;
                }
            }
        }
        flush(&mut out, buf.get(..len).unwrap_or_default());
    }
    Ok(out)
}

/// The error of a single-byte decode at `at` (a NUL or a byte without equivalent):
/// PostgreSQL verifies the whole input (NUL) before converting, so a NUL further on wins.
#[cold]
fn single_error(enc: ClientEncoding, bytes: &[u8], at: usize) -> EncodingError {
    match nul_from(bytes, at) {
        Some(nul) => EncodingError::invalid(enc, enc.name(), nul, &[0]),
        None => {
            let b = bytes.get(at).copied().unwrap_or_default();
            EncodingError::no_unicode_equivalent(enc, at, &[b])
        }
    }
}

impl Multi {
    /// Whether the two-byte character `b0 b1` (`b0` high) passes PostgreSQL's verifier:
    /// the fast case of [`Multi::verify_char`].
    #[inline(always)]
    fn two_byte_ok(self, b0: u8, b1: u8) -> bool {
        match self {
            Multi::Gbk | Multi::Uhc => b1 != 0 && (b0, b1) != INVALID_PAIR,
            Multi::Sjis => is_sjis_head(b0) && is_sjis_tail(b1),
            Multi::Johab => b0 != SS3 && is_euc_range_valid(b1),
        }
    }
}

/// [`Multi`] as a const generic parameter, so each encoding's loops are compiled for it.
const GBK: u8 = 0;
const UHC: u8 = 1;
const SJIS: u8 = 2;
const JOHAB: u8 = 3;

impl Multi {
    const fn of(m: u8) -> Multi {
        match m {
            GBK => Multi::Gbk,
            UHC => Multi::Uhc,
            SJIS => Multi::Sjis,
            _ => Multi::Johab,
        }
    }
}

/// The hot loop of multibyte decoding, small enough for its positions to stay in
/// registers: mapped two-byte characters of three UTF-8 bytes (CJK) and lone ASCII bytes
/// between them (spaces), from `at` until anything else or `end`. Returns the new input
/// and output positions; the caller handles what stopped it.
#[inline(never)]
fn two_byte_run<const M: u8>(
    decode2: &[u16; 0x8000],
    bytes: &[u8],
    mut at: usize,
    end: usize,
    buf: &mut [u8; OUT_BLOCK],
    mut len: usize,
) -> (usize, usize) {
    let multi = Multi::of(M);
    while at < end {
        let Some(&[b0, b1]) = bytes.get(at..at + 2) else {
            break;
        };
        if b0.wrapping_sub(1) < 0x7f && b1 >= 0x80 {
            // A lone ASCII byte before a character.
            if let Some(dst) = buf.get_mut(len) {
                *dst = b0;
            }
            len += 1;
            at += 1;
            continue;
        }
        if b0 < 0x80 || multi.mblen(b0) != 2 || !multi.two_byte_ok(b0, b1) {
            break;
        }
        let cp = u32::from(decode2[usize::from(b0 & 0x7f) << 8 | usize::from(b1)]);
        if cp < 0x800 {
            break;
        }
        len = put_utf8_3(buf, len, cp);
        at += 2;
    }
    (at, len)
}

/// Writes code point `cp` (U+0800..=U+FFFF: three UTF-8 bytes) to `buf` at `len` with one
/// 4-byte store (the fourth byte is overwritten next) and returns the new output length.
#[inline(always)]
fn put_utf8_3(buf: &mut [u8; OUT_BLOCK], len: usize, cp: u32) -> usize {
    let utf8 = 0xe0 | cp >> 12 | (0x80 | (cp >> 6 & 0x3f)) << 8 | (0x80 | (cp & 0x3f)) << 16;
    if let Some(dst) = buf.get_mut(len..len + 4) {
        dst.copy_from_slice(&utf8.to_le_bytes());
    }
    len + 3
}

/// One bit per byte of `chunk`, set where `flag` marks the byte (`flag` maps each byte of
/// a word to 0x80 or 0x00).
#[inline(always)]
fn byte_mask(chunk: &[u8; 64], flag: impl Fn(u64) -> u64) -> u64 {
    let mut mask = 0u64;
    for (i, word) in chunk.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        // Each flagged byte is 0x01 after the shift; the multiplication gathers byte k's
        // bit into bit 56 + k.
        let bits = (flag(u64::from_le_bytes(w)) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        mask |= bits << (8 * i);
    }
    mask
}

/// Copies the ASCII bytes `from..to` of a chunk (`padded`: 64 bytes and 16 of padding)
/// to `buf` at `len`, 16 bytes per store (the bytes past `to` are overwritten next), and
/// returns the new output length.
#[inline(always)]
fn copy_ascii(
    padded: &[u8; 80],
    from: usize,
    to: usize,
    buf: &mut [u8; OUT_BLOCK],
    len: usize,
) -> usize {
    let n = to.saturating_sub(from);
    // The first 16 unconditionally: whether a space lies between two characters is
    // unpredictable, a longer run of ASCII is rare.
    if let (Some(src), Some(dst)) = (padded.get(from..from + 16), buf.get_mut(len..len + 16)) {
        dst.copy_from_slice(src);
    }
    let mut k = 16;
    while k < n {
        if let (Some(src), Some(dst)) = (
            padded.get(from + k..from + k + 16),
            buf.get_mut(len + k..len + k + 16),
        ) {
            dst.copy_from_slice(src);
        }
        k += 16;
    }
    len + n
}

/// The hot loop of GBK and UHC decoding, where every high byte starts a two-byte character
/// (`pg_gbk_mblen`, `pg_uhc_mblen`). Per 64 bytes, the character starts are computed from
/// the high-bit mask without a branch: in each run of high bytes the leads are every other
/// byte from the run's first. Text that mixes words and spaces (Korean) would otherwise
/// mispredict a branch at every word boundary. The characters are then converted in order,
/// found by `trailing_zeros`, and the ASCII between two of them is copied with one 16-byte
/// store (docs/benchmarks.md has the measurements of each step). Stops before anything the
/// exact path must see: a NUL, a lead whose second byte is ASCII (UHC's extension rows,
/// the invalid pair), a character of one or two UTF-8 bytes or without equivalent (table
/// value below 0x800), or fewer than 64 bytes before `end`. Returns the new input and
/// output positions.
#[inline(never)]
fn pair_run(
    decode2: &[u16; 0x8000],
    bytes: &[u8],
    mut at: usize,
    end: usize,
    buf: &mut [u8; OUT_BLOCK],
    mut len: usize,
) -> (usize, usize) {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    while at.saturating_add(64) <= end {
        let Some(chunk) = bytes
            .get(at..at + 64)
            .and_then(|c| <&[u8; 64]>::try_from(c).ok())
        else {
            break;
        };
        let high = byte_mask(chunk, |w| w & HIGHS);
        if high == u64::MAX {
            // 32 two-byte characters (Chinese and Japanese text has no spaces).
            for (i, pair) in chunk.chunks_exact(2).enumerate() {
                let cp =
                    u32::from(decode2[usize::from(pair[0] & 0x7f) << 8 | usize::from(pair[1])]);
                if cp < 0x800 {
                    return (at + 2 * i, len);
                }
                len = put_utf8_3(buf, len, cp);
            }
            at += 64;
            continue;
        }
        let nul = byte_mask(chunk, |w| !(((w & LOWS) + LOWS) | w) & HIGHS);
        // Runs of high bytes; those starting at an even position have their leads at even
        // positions, the others at odd ones. Adding a run's first bit carries through the
        // run, so `high & !(high + starts)` is exactly the runs holding those starts.
        let starts = high & !(high << 1);
        let even_runs = high & !high.wrapping_add(starts & EVEN);
        let leads = (even_runs & EVEN) | (high & !even_runs & !EVEN);
        // A lead in the last byte continues in the next chunk: the chunk ends before it.
        let limit = if leads >> 63 != 0 { 63 } else { 64 };
        // A lead whose second byte is ASCII, or a NUL: the exact path decides from there.
        let odd_lead = (leads << 1) & !high;
        let odd_lead_at = match odd_lead {
            0 => 64,
            _ => odd_lead.trailing_zeros() - 1,
        };
        let stop = (odd_lead_at.min(nul.trailing_zeros()) as usize).min(limit);
        let stopped = stop < limit;
        let below = if stop == 64 {
            u64::MAX
        } else {
            (1u64 << stop) - 1
        };
        // The characters in order; the ASCII bytes between two (a space) are copied 16 at a
        // time from the padded chunk, so they cost no iteration of their own.
        let mut padded = [0u8; 80];
        padded[..64].copy_from_slice(chunk);
        let mut todo = leads & below;
        let mut next = 0; // the first byte of the chunk not yet written
        while todo != 0 {
            let p = todo.trailing_zeros() as usize;
            todo &= todo - 1;
            len = copy_ascii(&padded, next, p, buf, len);
            let (b0, b1) = (padded[p & 63], padded[(p & 63) + 1]);
            let cp = u32::from(decode2[usize::from(b0 & 0x7f) << 8 | usize::from(b1)]);
            if cp < 0x800 {
                return (at + p, len);
            }
            len = put_utf8_3(buf, len, cp);
            next = p + 2;
        }
        len = copy_ascii(&padded, next, stop, buf, len);
        at += stop;
        if stopped {
            break;
        }
    }
    (at, len)
}

/// Multibyte decode, verifying and converting in one pass (PostgreSQL verifies the whole
/// input first: after a character without equivalent, the rest is still verified and a
/// malformed sequence there is the error reported).
fn decode_multi<const M: u8>(
    enc: ClientEncoding,
    table: &MultiByte,
    bytes: &[u8],
) -> Result<String, EncodingError> {
    let multi = Multi::of(M);
    // GBK and UHC: every high byte starts a two-byte character, so `pair_run` applies.
    let pairs = M == GBK || M == UHC;
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 2);
    let mut buf = [0u8; OUT_BLOCK];
    let mut at = 0;
    while at < bytes.len() {
        let end = at.saturating_add(IN_BLOCK).min(bytes.len());
        let block = bytes.get(at..end).unwrap_or_default();
        if all_clean(block) {
            flush(&mut out, block);
            at = end;
            continue;
        }
        let mut len = 0;
        while at < end {
            if let Some(k) = ascii16(bytes, at, &mut buf, len) {
                len += k;
                at += k;
                if k == 16 {
                    continue;
                }
            }
            // A run of non-ASCII characters (or a NUL), then ASCII again.
            while at < end {
                let run_end = if pairs {
                    (at, len) = pair_run(table.decode2, bytes, at, end, &mut buf, len);
                    end.min(at + 64) // what `pair_run` left: at most 64 bytes, then back to it
                } else {
                    end
                };
                (at, len) = two_byte_run::<M>(table.decode2, bytes, at, run_end, &mut buf, len);
                let Some(&b0) = bytes.get(at) else { break };
                let ascii_run = b0.wrapping_sub(1) < 0x7f // ASCII other than NUL
                    && bytes.get(at + 1).is_some_and(|&b| b < 0x80)
                    && at + 16 <= bytes.len();
                if at >= end || ascii_run {
                    break; // the end of the block, or ASCII for the 16-byte path
                }
                let mut ch = [0u8; 4];
                let mut l = 1;
                if b0 < 0x80 {
                    ch = [b0, 0, 0, u8::from(b0 != 0)];
                } else if multi.mblen(b0) == 2 {
                    if let Some(&b1) = bytes.get(at + 1) {
                        if multi.two_byte_ok(b0, b1) {
                            let key = usize::from(b0 & 0x7f) << 8 | usize::from(b1);
                            let cp = table.decode2[key];
                            ch = if cp >= 0x800 {
                                // The common case (CJK): three bytes.
                                [
                                    0xe0 | (cp >> 12) as u8,
                                    0x80 | ((cp >> 6) & 0x3f) as u8,
                                    0x80 | (cp & 0x3f) as u8,
                                    3,
                                ]
                            } else {
                                tables::utf8_char(u32::from(cp))
                            };
                            l = 2;
                        }
                    }
                } else if multi == Multi::Sjis {
                    ch = table.decode1[usize::from(b0 & 0x7f)];
                }
                if ch[3] == 0 {
                    // NUL, malformed, JOHAB's three-byte sequences, or no equivalent: the
                    // exact path decides, from here.
                    return Err(multi_error(enc, multi, table, bytes, at));
                }
                if let Some(dst) = buf.get_mut(len..len + 4) {
                    dst.copy_from_slice(&ch);
                }
                len += usize::from(ch[3]);
                at += l;
                // A lone ASCII byte (a space between words) stays here; two or more go
                // back to the 16-byte path.
                if at >= end
                    || (bytes.get(at).is_some_and(|&b| b < 0x80)
                        && bytes.get(at + 1).is_some_and(|&b| b < 0x80))
                {
                    break;
                }
            }
        }
        flush(&mut out, buf.get(..len).unwrap_or_default());
    }
    Ok(out)
}

/// The error of a multibyte decode whose fast path stopped at `at`, by PostgreSQL's rules:
/// verify from `at` on; a malformed sequence anywhere is the error, otherwise the first
/// character without equivalent.
#[cold]
fn multi_error(
    enc: ClientEncoding,
    multi: Multi,
    table: &MultiByte,
    bytes: &[u8],
    at: usize,
) -> EncodingError {
    if let Err(e) = verify_multi(enc, multi, bytes, at) {
        return e;
    }
    // Valid: find the first character without equivalent, from `at`.
    let mut at = at;
    while let Some(&b) = bytes.get(at) {
        if !is_highbit(b) {
            at += 1;
            continue;
        }
        let rest = bytes.get(at..).unwrap_or_default();
        let l = multi.verify_char(rest).unwrap_or(1);
        let seq = rest.get(..l).unwrap_or(rest);
        let key = seq.iter().fold(0u32, |k, &b| k << 8 | u32::from(b));
        match tables::lookup(table.decode, key).and_then(char::from_u32) {
            Some(_) => at += l,
            None => return EncodingError::no_unicode_equivalent(enc, at, seq),
        }
    }
    // Not reached for inputs the fast path refused; report the position it stopped at.
    let seq = reported_bytes(bytes, at, 1);
    EncodingError::no_unicode_equivalent(enc, at, seq)
}

/// Client bytes → text, as `convert_from(bytes, enc)` in a UTF8 database.
pub(super) fn decode(enc: ClientEncoding, bytes: &[u8]) -> Result<String, EncodingError> {
    match codec(enc) {
        Codec::Utf8 => match decode_utf8_fast(bytes) {
            Some(s) => Ok(s),
            None => verify_utf8(enc, bytes).map(str::to_owned),
        },
        Codec::SqlAscii => match decode_utf8_fast(bytes) {
            Some(s) => Ok(s),
            None => {
                // pg_verify_mbstr(PG_SQL_ASCII) rejects only NUL, naming SQL_ASCII …
                if let Some(nul) = memchr::memchr(0, bytes) {
                    return Err(EncodingError::invalid(enc, enc.name(), nul, &[0]));
                }
                // … then pg_do_encoding_conversion(SQL_ASCII → UTF8) validates as UTF8.
                verify_utf8(enc, bytes).map(str::to_owned)
            }
        },
        Codec::Single(table) => decode_single(enc, table, bytes),
        Codec::Multi(Multi::Gbk, table) => decode_multi::<GBK>(enc, table, bytes),
        Codec::Multi(Multi::Uhc, table) => decode_multi::<UHC>(enc, table, bytes),
        Codec::Multi(Multi::Sjis, table) => decode_multi::<SJIS>(enc, table, bytes),
        Codec::Multi(Multi::Johab, table) => decode_multi::<JOHAB>(enc, table, bytes),
    }
}

/// Appends a table value (a big-endian byte sequence without NUL bytes) to `out`, as
/// PostgreSQL's `store_coded_char` does.
#[inline(always)]
fn store_coded(out: &mut Vec<u8>, code: u32) {
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
fn encode_with(
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

/// `convert_to(text, UTF8)`: the bytes, refusing NUL; checked and copied a block at a
/// time so the check reads from cache.
fn encode_utf8(enc: ClientEncoding, text: &str) -> Result<Vec<u8>, EncodingError> {
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

/// Text → client bytes, as `convert_to(text, enc)` in a UTF8 database.
pub(super) fn encode(enc: ClientEncoding, text: &str) -> Result<Vec<u8>, EncodingError> {
    match codec(enc) {
        Codec::Utf8 | Codec::SqlAscii => encode_utf8(enc, text),
        Codec::Single(table) => encode_with(enc, text, |cp| u32::from(table.encode_char(cp))),
        Codec::Multi(_, table) => encode_with(enc, text, |cp| u32::from(table.encode_char(cp))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward implementation the fast paths replace, PostgreSQL's two steps
    /// one after the other: verify the whole input, then convert character by character
    /// through the runs. The fast paths must agree with it on every input.
    fn reference_decode(enc: ClientEncoding, bytes: &[u8]) -> Result<String, EncodingError> {
        match codec(enc) {
            Codec::Utf8 => verify_utf8(enc, bytes).map(str::to_owned),
            Codec::SqlAscii => {
                if let Some(nul) = bytes.iter().position(|&b| b == 0) {
                    return Err(EncodingError::invalid(enc, enc.name(), nul, &[0]));
                }
                verify_utf8(enc, bytes).map(str::to_owned)
            }
            Codec::Single(table) => {
                if let Some(nul) = bytes.iter().position(|&b| b == 0) {
                    return Err(EncodingError::invalid(enc, enc.name(), nul, &[0]));
                }
                let mut out = String::new();
                for (at, &b) in bytes.iter().enumerate() {
                    match char::from_u32(table.decode[usize::from(b)]).filter(|&c| c != '\0') {
                        Some(c) => out.push(c),
                        None => return Err(EncodingError::no_unicode_equivalent(enc, at, &[b])),
                    }
                }
                Ok(out)
            }
            Codec::Multi(multi, table) => {
                verify_multi(enc, multi, bytes, 0)?;
                let mut out = String::new();
                let mut at = 0;
                while let Some(&b) = bytes.get(at) {
                    if !is_highbit(b) {
                        out.push(char::from(b));
                        at += 1;
                        continue;
                    }
                    let rest = &bytes[at..];
                    let l = multi.verify_char(rest).unwrap_or(1);
                    let seq = &rest[..l];
                    let key = seq.iter().fold(0u32, |k, &b| k << 8 | u32::from(b));
                    match tables::lookup(table.decode, key).and_then(char::from_u32) {
                        Some(c) => out.push(c),
                        None => return Err(EncodingError::no_unicode_equivalent(enc, at, seq)),
                    }
                    at += l;
                }
                Ok(out)
            }
        }
    }

    fn reference_encode(enc: ClientEncoding, text: &str) -> Result<Vec<u8>, EncodingError> {
        if let Some(nul) = text.bytes().position(|b| b == 0) {
            return Err(EncodingError::nul_in_text(enc, nul));
        }
        let runs = match codec(enc) {
            Codec::Utf8 | Codec::SqlAscii => return Ok(text.as_bytes().to_vec()),
            Codec::Single(table) => table.encode,
            Codec::Multi(_, table) => table.encode,
        };
        let mut out = Vec::new();
        for (at, ch) in text.char_indices() {
            if ch.is_ascii() {
                out.push(ch as u8);
                continue;
            }
            match tables::lookup(runs, u32::from(ch)) {
                Some(code) => store_coded(&mut out, code),
                None => return Err(EncodingError::no_equivalent(enc, at, ch)),
            }
        }
        Ok(out)
    }

    fn same<T: PartialEq + std::fmt::Debug>(
        a: Result<T, EncodingError>,
        b: Result<T, EncodingError>,
    ) -> bool {
        match (a, b) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => {
                (a.offset(), a.pg_message(), a.kind()) == (b.offset(), b.pg_message(), b.kind())
            }
            _ => false,
        }
    }

    /// xorshift64*: deterministic inputs.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as usize % n
        }
    }

    /// Fast paths against the reference on random inputs built from what each encoding
    /// maps (plus ASCII runs, malformed bytes, unmappable characters and NULs placed
    /// rarely), long enough to cross the 16-byte, 2 KiB and 16 KiB block boundaries.
    #[test]
    fn fast_paths_equal_the_reference() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for &enc in ClientEncoding::ALL {
            // Characters the encoding maps, and their bytes.
            let mut chars: Vec<char> = Vec::new();
            for cp in (0x80u32..0x1_0000)
                .step_by(7)
                .chain([0xe9, 0x20ac, 0x416, 0x65e5, 0xac00])
            {
                if let Some(c) = char::from_u32(cp) {
                    if reference_encode(enc, &c.to_string()).is_ok() {
                        chars.push(c);
                    }
                }
            }
            for case in 0..60 {
                let len = [5, 17, 40, 2100, 5000, 17_000][case % 6];
                let mut text = String::new();
                while text.len() < len {
                    match rng.below(10) {
                        0..=3 => text
                            .push_str(["abc ", "x", "hello world, 0123456789 ", "é"][rng.below(4)]),
                        _ if !chars.is_empty() => text.push(chars[rng.below(chars.len())]),
                        _ => text.push('q'),
                    }
                }
                // Rarely: an unmappable character or a NUL.
                if case % 5 == 1 {
                    let at = text
                        .char_indices()
                        .nth(rng.below(text.chars().count()))
                        .map_or(0, |(i, _)| i);
                    text.insert(at, if case % 2 == 0 { '\0' } else { '\u{10348}' });
                }
                assert!(
                    same(encode(enc, &text), reference_encode(enc, &text)),
                    "{enc} encode case {case}"
                );
                let Ok(mut bytes) = reference_encode(enc, &text.replace(['\0', '\u{10348}'], ""))
                else {
                    continue;
                };
                assert!(
                    same(decode(enc, &bytes), reference_decode(enc, &bytes)),
                    "{enc} decode case {case}"
                );
                // Corrupt a few bytes: malformed sequences, unmapped bytes, NUL.
                for _ in 0..1 + rng.below(3) {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = rng.below(bytes.len());
                    bytes[at] =
                        [0x00, 0x80, 0x81, 0x8d, 0x8f, 0xa0, 0xc3, 0xe2, 0xff, 0x20][rng.below(10)];
                    assert!(
                        same(decode(enc, &bytes), reference_decode(enc, &bytes)),
                        "{enc} corrupted decode case {case}: {:?}",
                        reference_decode(enc, &bytes).err()
                    );
                }
            }
        }
    }

    /// `pair_run`'s edges: text that is almost all two-byte characters, shifted against
    /// the 64-byte chunks, with lone spaces, runs of ASCII longer than 16 bytes, UHC's
    /// extension characters (ASCII second byte), characters below U+0800, the invalid
    /// pair, NUL and truncation.
    #[test]
    fn pair_run_edges_equal_the_reference() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for enc in [ClientEncoding::Gbk, ClientEncoding::Uhc] {
            let (multi, table) = match codec(enc) {
                Codec::Multi(m, t) => (m, t),
                _ => unreachable!("GBK and UHC are multibyte"),
            };
            // Mapped two-byte characters, split by second byte (high or ASCII) and by
            // UTF-8 length (three bytes, or fewer: the fast path stops for those).
            let (mut wide, mut ascii_trail, mut narrow) = (Vec::new(), Vec::new(), Vec::new());
            for b0 in 0x81u8..=0xfe {
                for b1 in 0x01u8..=0xfe {
                    if !multi.two_byte_ok(b0, b1) {
                        continue;
                    }
                    let cp = table.decode2[usize::from(b0 & 0x7f) << 8 | usize::from(b1)];
                    match (cp, b1 < 0x80) {
                        (0, _) => {}
                        (0x800.., false) => wide.push([b0, b1]),
                        (0x800.., true) => ascii_trail.push([b0, b1]),
                        _ => narrow.push([b0, b1]),
                    }
                }
            }
            assert!(!wide.is_empty() && !narrow.is_empty());
            for case in 0..400 {
                let mut bytes = vec![b'a'; rng.below(70)];
                let len = bytes.len() + 64 + rng.below(600);
                while bytes.len() < len {
                    match rng.below(40) {
                        0..=5 => bytes.push(b' '),
                        6 if !ascii_trail.is_empty() => {
                            bytes.extend(ascii_trail[rng.below(ascii_trail.len())])
                        }
                        7 if case % 3 == 0 => bytes.extend(narrow[rng.below(narrow.len())]),
                        8 if case % 7 == 0 => bytes.extend(b". "),
                        9 if case % 5 == 0 => bytes.extend(b"hello world, 0123456789 "),
                        _ => bytes.extend(wide[rng.below(wide.len())]),
                    }
                }
                assert!(
                    same(decode(enc, &bytes), reference_decode(enc, &bytes)),
                    "{enc} case {case}"
                );
                let mut bad = bytes.clone();
                let at = rng.below(bad.len());
                match case % 4 {
                    0 => bad[at] = 0,
                    1 => bad.splice(at..at, [0x8d, b' ']).for_each(drop),
                    2 => bad.truncate(at.max(1) | 1),
                    _ => bad[at] = 0xff,
                }
                assert!(
                    same(decode(enc, &bad), reference_decode(enc, &bad)),
                    "{enc} corrupted case {case}"
                );
            }
        }
    }

    #[test]
    fn sjis_lengths_follow_postgres() {
        assert_eq!(Multi::Sjis.mblen(0xb1), 1);
        assert_eq!(Multi::Sjis.mblen(0x80), 2);
        assert_eq!(Multi::Sjis.mblen(0xa0), 2);
        assert_eq!(Multi::Sjis.verify_char(b"\xb1"), Some(1));
        assert_eq!(Multi::Sjis.verify_char(b"\x82\xa0"), Some(2));
        assert_eq!(Multi::Sjis.verify_char(b"\x82"), None);
        assert_eq!(Multi::Sjis.verify_char(b"\xa0\xa0"), None);
        assert_eq!(Multi::Sjis.verify_char(b"\x81\x7f"), None);
    }

    #[test]
    fn johab_lengths_follow_postgres() {
        assert_eq!(Multi::Johab.mblen(0x8f), 3);
        assert_eq!(Multi::Johab.mblen(0x8e), 2);
        assert_eq!(Multi::Johab.verify_char(b"\x8f\xa1\xa1"), Some(3));
        assert_eq!(Multi::Johab.verify_char(b"\x8f\xa1"), None);
        // PostgreSQL accepts only 0xa1..0xfe as JOHAB trail bytes.
        assert_eq!(Multi::Johab.verify_char(b"\x88\x61"), None);
        assert_eq!(Multi::Johab.verify_char(b"\xb0\xa1"), Some(2));
    }

    #[test]
    fn gbk_and_uhc_reject_the_invalid_pair_and_nul() {
        for m in [Multi::Gbk, Multi::Uhc] {
            assert_eq!(m.verify_char(b"\x8d\x20"), None);
            assert_eq!(m.verify_char(b"\x81\x00"), None);
            assert_eq!(m.verify_char(b"\x81"), None);
            assert_eq!(m.verify_char(b"\x80\x20"), Some(2));
        }
    }

    #[test]
    fn verification_comes_before_conversion() {
        // 0x81 has no equivalent in WIN1252, but the NUL later is reported first, as
        // PostgreSQL verifies the whole input before converting.
        let err = decode(ClientEncoding::Win1252, b"\x81a\x00").unwrap_err();
        assert_eq!(err.offset(), 2);
        assert_eq!(
            err.pg_message(),
            "invalid byte sequence for encoding \"WIN1252\": 0x00"
        );
    }

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

    #[test]
    fn sql_ascii_checks_nul_then_utf8() {
        assert_eq!(
            decode(ClientEncoding::SqlAscii, "é".as_bytes()).unwrap(),
            "é"
        );
        let err = decode(ClientEncoding::SqlAscii, b"\xff\x00").unwrap_err();
        assert_eq!(
            err.pg_message(),
            "invalid byte sequence for encoding \"SQL_ASCII\": 0x00"
        );
        let err = decode(ClientEncoding::SqlAscii, b"caf\xe9\x20\x80").unwrap_err();
        assert_eq!(
            err.pg_message(),
            "invalid byte sequence for encoding \"UTF8\": 0xe9 0x20 0x80"
        );
        assert_eq!(
            encode(ClientEncoding::SqlAscii, "é").unwrap(),
            "é".as_bytes()
        );
    }

    #[test]
    fn multibyte_truncation_and_untranslatable() {
        let err = decode(ClientEncoding::Gbk, b"ab\x81").unwrap_err();
        assert_eq!(
            err.pg_message(),
            "invalid byte sequence for encoding \"GBK\": 0x81"
        );
        let err = decode(ClientEncoding::Gbk, b"\xff\x41").unwrap_err();
        assert_eq!(
            err.pg_message(),
            "character with byte sequence 0xff 0x41 in encoding \"GBK\" has no equivalent in \
             encoding \"UTF8\""
        );
        let err = decode(ClientEncoding::Johab, b"\x8f\xa1\xa1").unwrap_err();
        assert_eq!(err.bytes(), b"\x8f\xa1\xa1");
        assert_eq!(decode(ClientEncoding::Gbk, b"\x81\x40").unwrap(), "丂");
    }
}
