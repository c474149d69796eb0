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
fn verify_multi(enc: ClientEncoding, multi: Multi, bytes: &[u8]) -> Result<(), EncodingError> {
    let mut at = 0;
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

/// A code point from a table as a `char` (tables only hold Unicode scalar values).
fn to_char(enc: ClientEncoding, at: usize, bytes: &[u8], cp: u32) -> Result<char, EncodingError> {
    char::from_u32(cp).ok_or_else(|| EncodingError::no_unicode_equivalent(enc, at, bytes))
}

/// Client bytes → text, as `convert_from(bytes, enc)` in a UTF8 database.
pub(super) fn decode(enc: ClientEncoding, bytes: &[u8]) -> Result<String, EncodingError> {
    match codec(enc) {
        Codec::Utf8 => verify_utf8(enc, bytes).map(str::to_owned),
        Codec::SqlAscii => {
            // pg_verify_mbstr(PG_SQL_ASCII) rejects only NUL, naming SQL_ASCII …
            if let Some(nul) = bytes.iter().position(|&b| b == 0) {
                return Err(EncodingError::invalid(enc, enc.name(), nul, &[0]));
            }
            // … then pg_do_encoding_conversion(SQL_ASCII → UTF8) validates as UTF8.
            verify_utf8(enc, bytes).map(str::to_owned)
        }
        Codec::Single(table) => {
            if let Some(nul) = bytes.iter().position(|&b| b == 0) {
                return Err(EncodingError::invalid(enc, enc.name(), nul, &[0]));
            }
            let mut out = String::with_capacity(bytes.len());
            for (at, &b) in bytes.iter().enumerate() {
                let cp = table.decode[usize::from(b)];
                if cp == 0 {
                    return Err(EncodingError::no_unicode_equivalent(enc, at, &[b]));
                }
                out.push(to_char(enc, at, &[b], cp)?);
            }
            Ok(out)
        }
        Codec::Multi(multi, table) => {
            verify_multi(enc, multi, bytes)?;
            let mut out = String::with_capacity(bytes.len());
            let mut at = 0;
            while let Some(&b) = bytes.get(at) {
                if !is_highbit(b) {
                    out.push(char::from(b));
                    at += 1;
                    continue;
                }
                let rest = bytes.get(at..).unwrap_or_default();
                let l = multi.verify_char(rest).unwrap_or(1);
                let seq = rest.get(..l).unwrap_or(rest);
                let key = seq.iter().fold(0u32, |k, &b| k << 8 | u32::from(b));
                match tables::lookup(table.decode, key) {
                    Some(cp) => out.push(to_char(enc, at, seq, cp)?),
                    None => return Err(EncodingError::no_unicode_equivalent(enc, at, seq)),
                }
                at += l;
            }
            Ok(out)
        }
    }
}

/// Appends a table value (a big-endian byte sequence without NUL bytes) to `out`, as
/// PostgreSQL's `store_coded_char` does.
fn store_coded(out: &mut Vec<u8>, code: u32) {
    for b in code.to_be_bytes() {
        if b != 0 {
            out.push(b);
        }
    }
}

/// Text → client bytes, as `convert_to(text, enc)` in a UTF8 database.
pub(super) fn encode(enc: ClientEncoding, text: &str) -> Result<Vec<u8>, EncodingError> {
    if let Some(nul) = text.bytes().position(|b| b == 0) {
        return Err(EncodingError::nul_in_text(enc, nul));
    }
    let runs = match codec(enc) {
        Codec::Utf8 | Codec::SqlAscii => return Ok(text.as_bytes().to_vec()),
        Codec::Single(table) => table.encode,
        Codec::Multi(_, table) => table.encode,
    };
    let mut out = Vec::with_capacity(text.len());
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

#[cfg(test)]
mod tests {
    use super::*;

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
