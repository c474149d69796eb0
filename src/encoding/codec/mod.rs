//! The conversions themselves, mirroring PostgreSQL 15's `convert_from()` and
//! `convert_to()` in a UTF8 database step by step:
//!
//! * decode (`convert_from(bytes, ENC)`): first `pg_verify_mbstr(ENC)` checks the whole
//!   input (NUL bytes, malformed or truncated multibyte sequences → `invalid byte sequence
//!   for encoding "ENC"`); only then the conversion runs (`LocalToUtf`), copying ASCII and
//!   looking every other character up in the map (unmapped → `character with byte sequence
//!   … in encoding "ENC" has no equivalent in encoding "UTF8"`). The verifier functions
//!   (in [`multi_byte`] and [`utf8`]) are PostgreSQL's (`src/common/wchar.c`:
//!   `pg_*_mblen`, `pg_*_verifychar`); the maps come from the server (see
//!   [`super::tables`]).
//! * encode (`convert_to(text, ENC)`, `UtfToLocal`): ASCII is copied, every other
//!   character is looked up (unmapped → `character with byte sequence … in encoding
//!   "UTF8" has no equivalent in encoding "ENC"`).
//!
//! UTF8 and SQL_ASCII have no table: `convert_from(x, 'UTF8')` only verifies the bytes,
//! and `convert_from(x, 'SQL_ASCII')` verifies them as SQL_ASCII (no NUL) and then, since
//! nothing can be converted from SQL_ASCII, as UTF8; `convert_to(t, 'UTF8')` and
//! `convert_to(t, 'SQL_ASCII')` return the UTF-8 bytes unchanged.
//!
//! The pieces: [`ascii`] (the fast paths' shared ASCII and block helpers), [`utf8`] (UTF8
//! and SQL_ASCII), [`single_byte`], [`multi_byte`] (GBK, UHC, SJIS, JOHAB: PostgreSQL's
//! rules and the decoder) with [`pair_run`] (GBK and UHC's mask loop), and
//! [`table_encode`] (the encode of every table-based encoding); this module picks one per
//! encoding.

mod ascii;
mod multi_byte;
mod pair_run;
#[cfg(test)]
mod reference;
mod single_byte;
mod table_encode;
mod utf8;

use std::borrow::Cow;

use super::tables::{self, MultiByte, SingleByte};
use super::{ClientEncoding, EncodingError};
use ascii::all_clean;
use multi_byte::{decode_multi, Multi, GBK, JOHAB, SJIS, UHC};
use single_byte::decode_single;
use table_encode::encode_with;
use utf8::{decode_utf8_fast, encode_utf8, verify_utf8};

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

/// `report_invalid_encoding`: the bytes PostgreSQL prints are the character's length
/// (by its first byte), cut at the end of the input.
fn reported_bytes(s: &[u8], at: usize, mblen: usize) -> &[u8] {
    let end = at.saturating_add(mblen).min(s.len());
    s.get(at..end).unwrap_or_default()
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

/// [`decode`], borrowing `bytes` when they are the text unchanged: valid UTF-8 without
/// NUL for UTF8 and SQL_ASCII, ASCII without NUL for the others (every client encoding
/// maps ASCII to itself: unit test `ascii_is_itself_in_every_encoding`). Costs a scan of
/// the input when it is, and of its ASCII prefix otherwise (then `decode` runs).
pub(super) fn decode_cow(enc: ClientEncoding, bytes: &[u8]) -> Result<Cow<'_, str>, EncodingError> {
    let unchanged = match codec(enc) {
        Codec::Utf8 | Codec::SqlAscii => memchr::memchr(0, bytes).is_none(),
        _ => all_clean(bytes),
    };
    if unchanged {
        if let Ok(s) = simdutf8::basic::from_utf8(bytes) {
            return Ok(Cow::Borrowed(s));
        }
    }
    decode(enc, bytes).map(Cow::Owned)
}

/// [`encode`], borrowing the text's bytes when they are the result: for UTF8 and
/// SQL_ASCII when the text has no NUL (the one thing they refuse), for the others when it
/// is ASCII without NUL.
pub(super) fn encode_cow(enc: ClientEncoding, text: &str) -> Result<Cow<'_, [u8]>, EncodingError> {
    let unchanged = match codec(enc) {
        Codec::Utf8 | Codec::SqlAscii => memchr::memchr(0, text.as_bytes()).is_none(),
        _ => all_clean(text.as_bytes()),
    };
    if unchanged {
        return Ok(Cow::Borrowed(text.as_bytes()));
    }
    encode(enc, text).map(Cow::Owned)
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
    use super::reference::{reference_decode, reference_encode, same, Rng};
    use super::*;

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

    /// What [`decode_cow`] and [`encode_cow`] rely on for the table encodings.
    #[test]
    fn ascii_is_itself_in_every_encoding() {
        let ascii: String = (1u8..0x80).map(char::from).collect();
        for &enc in ClientEncoding::ALL {
            assert_eq!(decode(enc, ascii.as_bytes()).unwrap(), ascii, "{enc}");
            assert_eq!(encode(enc, &ascii).unwrap(), ascii.as_bytes(), "{enc}");
        }
    }

    /// The `Cow` entry points give what the owned ones give, borrowing exactly when the
    /// result is the input.
    #[test]
    fn cow_equals_owned() {
        let texts: [&[u8]; 8] = [
            b"",
            b"plain ascii text, long enough to cross a 64-byte step of the scan: 0123456789",
            b"nul here\x00",
            b"caf\xc3\xa9",
            b"caf\xe9",
            b"\x81\x40\x82\xa0",
            b"\xff\xfe",
            b"a\x80",
        ];
        for &enc in ClientEncoding::ALL {
            for bytes in texts {
                let cow = decode_cow(enc, bytes);
                assert!(
                    same(cow.clone().map(Cow::into_owned), decode(enc, bytes)),
                    "{enc}"
                );
                let utf8 = matches!(enc, ClientEncoding::Utf8 | ClientEncoding::SqlAscii);
                if let Ok(c) = &cow {
                    let ascii = bytes.is_ascii();
                    assert_eq!(
                        matches!(c, Cow::Borrowed(_)),
                        ascii || utf8,
                        "{enc} {bytes:?}"
                    );
                }
                let Ok(text) = std::str::from_utf8(bytes) else {
                    continue;
                };
                let cow = encode_cow(enc, text);
                assert!(
                    same(cow.clone().map(Cow::into_owned), encode(enc, text)),
                    "{enc}"
                );
                if let Ok(c) = &cow {
                    assert_eq!(
                        matches!(c, Cow::Borrowed(_)),
                        text.is_ascii() || utf8,
                        "{enc}"
                    );
                }
            }
        }
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
}
