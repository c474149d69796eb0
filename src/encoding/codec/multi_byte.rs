//! The multibyte encodings (GBK, UHC, SJIS, JOHAB): PostgreSQL's length and validity
//! rules for them (`pg_*_mblen`, `pg_*_verifychar`, `pg_verify_mbstr`), and the decoder
//! that verifies and converts in one pass, compiled for each encoding (a const generic),
//! with its error path. GBK and UHC's 64-byte mask loop is in [`super::pair_run`]; the
//! encode is the table encode shared with the single-byte encodings
//! ([`super::table_encode`]).

use super::ascii::{all_clean, ascii16, flush, put_utf8_3, utf8_3, IN_BLOCK, OUT_BLOCK};
use super::pair_run::pair_run;
use super::reported_bytes;
use crate::encoding::tables::{self, MultiByte};
use crate::encoding::{ClientEncoding, EncodingError};

/// The multibyte encodings, each with PostgreSQL's own length and validity rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Multi {
    Gbk,
    Uhc,
    Sjis,
    Johab,
}

// ---------------------------------------------------------------------------------------
// PostgreSQL's length and validity rules (src/common/wchar.c, PostgreSQL 15).
// ---------------------------------------------------------------------------------------

/// `NONUTF8_INVALID_BYTE0`/`NONUTF8_INVALID_BYTE1`: the pair GBK and UHC reject outright.
const INVALID_PAIR: (u8, u8) = (0x8d, b' ');
/// `SS2`, `SS3`: the EUC single shifts that give JOHAB lead bytes their lengths.
const SS2: u8 = 0x8e;
const SS3: u8 = 0x8f;

pub(super) fn is_highbit(b: u8) -> bool {
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
    pub(super) fn verify_char(self, s: &[u8]) -> Option<usize> {
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

/// `pg_verify_mbstr` for a multibyte encoding.
pub(super) fn verify_multi(
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
// The decoder.
// ---------------------------------------------------------------------------------------

impl Multi {
    /// Whether the two-byte character `b0 b1` (`b0` high) passes PostgreSQL's verifier:
    /// the fast case of [`Multi::verify_char`].
    #[inline(always)]
    pub(super) fn two_byte_ok(self, b0: u8, b1: u8) -> bool {
        match self {
            Multi::Gbk | Multi::Uhc => b1 != 0 && (b0, b1) != INVALID_PAIR,
            Multi::Sjis => is_sjis_head(b0) && is_sjis_tail(b1),
            Multi::Johab => b0 != SS3 && is_euc_range_valid(b1),
        }
    }
}

/// [`Multi`] as a const generic parameter, so each encoding's loops are compiled for it.
pub(super) const GBK: u8 = 0;
pub(super) const UHC: u8 = 1;
pub(super) const SJIS: u8 = 2;
pub(super) const JOHAB: u8 = 3;

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
/// and output positions; the caller handles what stopped it. A high lead byte costs one
/// table lookup, one comparison and one store: `decode2` holds characters only for pairs
/// PostgreSQL's verifier accepts as one character (unit test
/// `tables_map_only_verified_pairs`), so an empty entry (malformed or unmapped) and
/// characters below U+0800 both stop the loop, and the verifier's rules need no test of
/// their own here; the entry is the character's UTF-8, stored as it is.
#[inline(never)]
fn two_byte_run(
    decode2: &[[u8; 4]; 0x8000],
    bytes: &[u8],
    mut at: usize,
    end: usize,
    buf: &mut [u8; OUT_BLOCK],
    mut len: usize,
) -> (usize, usize) {
    while at < end {
        let Some(&[b0, b1]) = bytes.get(at..at + 2) else {
            break;
        };
        if b0 < 0x80 {
            if b0 == 0 || b1 < 0x80 {
                break;
            }
            // A lone ASCII byte before a character.
            if let Some(dst) = buf.get_mut(len) {
                *dst = b0;
            }
            len += 1;
            at += 1;
            continue;
        }
        let Some(ch) = utf8_3(decode2[usize::from(b0 & 0x7f) << 8 | usize::from(b1)]) else {
            break;
        };
        len = put_utf8_3(buf, len, ch);
        at += 2;
    }
    (at, len)
}

/// Multibyte decode, verifying and converting in one pass (PostgreSQL verifies the whole
/// input first: after a character without equivalent, the rest is still verified and a
/// malformed sequence there is the error reported).
pub(super) fn decode_multi<const M: u8>(
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
                (at, len) = two_byte_run(table.decode2, bytes, at, run_end, &mut buf, len);
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
                            ch = table.decode2[usize::from(b0 & 0x7f) << 8 | usize::from(b1)];
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

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    /// What the fast loops rely on: every pair with a character in `decode2` is one
    /// character by PostgreSQL's verifier (so a table lookup alone decides).
    #[test]
    fn tables_map_only_verified_pairs() {
        for (multi, table) in [
            (Multi::Gbk, &tables::GBK),
            (Multi::Uhc, &tables::UHC),
            (Multi::Sjis, &tables::SJIS),
            (Multi::Johab, &tables::JOHAB),
        ] {
            let mut unverified = 0;
            for b0 in 0x80u8..=0xff {
                for b1 in 0u8..=0xff {
                    let ch = table.decode2[usize::from(b0 & 0x7f) << 8 | usize::from(b1)];
                    if ch[3] != 0 && !(multi.mblen(b0) == 2 && multi.two_byte_ok(b0, b1)) {
                        unverified += 1;
                    }
                }
            }
            assert_eq!(unverified, 0, "{multi:?}");
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
