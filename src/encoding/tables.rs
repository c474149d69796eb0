//! PostgreSQL 15's conversion tables for the client encodings, as the server itself
//! answered them.
//!
//! Why hand-made tables: no crate is byte-exact with PostgreSQL. encoding_rs follows the
//! WHATWG Encoding Standard (its `iso-8859-1` is windows-1252, its `iso-8859-9` is
//! windows-1254, its windows-125x codecs map the bytes PostgreSQL leaves undefined, its
//! GBK decoder accepts GB18030 four-byte sequences, its Shift_JIS is Microsoft's cp932 and
//! it has no JOHAB), and PostgreSQL's own `convert_to()`/`convert_from()` are the
//! reference for every byte. So `tools/gen_encoding_tables.sh` asks a real PostgreSQL 15
//! server to convert every byte sequence and every code point, and writes what it answered
//! to `data/encoding/tables.rs`, which is included here.
//!
//! encoding_rs is not used at all. Compared character by character (every byte, every
//! 2-byte sequence of the multibyte encodings, every code point), encoding_rs 0.8.44's
//! mappings equal PostgreSQL 15's for LATIN2–4, LATIN6–10, ISO_8859_5–8, WIN866 and
//! WIN1256, and differ for LATIN1, LATIN5, WIN874, WIN1250, WIN1251, WIN1252, WIN1258,
//! GBK, SJIS and UHC (no JOHAB at all). Even where the mappings agree, its decoder accepts
//! NUL and reports errors differently, so pgdap would still need PostgreSQL's verifier
//! around it; one table source for every encoding, the server itself, is simpler and is
//! what the differential tests check.

/// The generated tables (see the header of `data/encoding/tables.rs`).
mod generated {
    include!("../../data/encoding/tables.rs");
}

pub(super) use generated::Run;

/// Finds `key` in a sorted list of runs.
pub(super) fn lookup(runs: &[Run], key: u32) -> Option<u32> {
    let after = runs.partition_point(|&(first, _, _)| first <= key);
    let (first, value, count) = *runs.get(after.checked_sub(1)?)?;
    let offset = key - first;
    (offset < count).then_some(value + offset)
}

/// Expands the runs of a single-byte decode table into a 256-entry array at compile
/// time (0 marks a byte without a Unicode equivalent; byte 0x00 is never valid).
const fn expand(runs: &[Run]) -> [u32; 256] {
    let mut out = [0u32; 256];
    let mut i = 0;
    while i < runs.len() {
        let (first, value, count) = runs[i];
        let mut j = 0;
        while j < count {
            out[(first + j) as usize] = value + j;
            j += 1;
        }
        i += 1;
    }
    out
}

/// Tables of a single-byte encoding.
pub(super) struct SingleByte {
    /// Byte → code point; 0 where PostgreSQL reports "no equivalent in encoding UTF8".
    pub(super) decode: [u32; 256],
    /// Code point → byte, as runs.
    pub(super) encode: &'static [Run],
}

/// Tables of a multibyte encoding (GBK, SJIS, UHC, JOHAB).
pub(super) struct MultiByte {
    /// Byte sequence (big-endian integer) → code point, as runs.
    pub(super) decode: &'static [Run],
    /// Code point → byte sequence (big-endian integer), as runs.
    pub(super) encode: &'static [Run],
}

macro_rules! single {
    ($name:ident, $dec:ident, $enc:ident) => {
        pub(super) static $name: SingleByte = SingleByte {
            decode: expand(generated::$dec),
            encode: generated::$enc,
        };
    };
}

macro_rules! multi {
    ($name:ident, $dec:ident, $enc:ident) => {
        pub(super) static $name: MultiByte = MultiByte {
            decode: generated::$dec,
            encode: generated::$enc,
        };
    };
}

single!(LATIN1, LATIN1_DECODE, LATIN1_ENCODE);
single!(LATIN2, LATIN2_DECODE, LATIN2_ENCODE);
single!(LATIN3, LATIN3_DECODE, LATIN3_ENCODE);
single!(LATIN4, LATIN4_DECODE, LATIN4_ENCODE);
single!(LATIN5, LATIN5_DECODE, LATIN5_ENCODE);
single!(LATIN6, LATIN6_DECODE, LATIN6_ENCODE);
single!(LATIN7, LATIN7_DECODE, LATIN7_ENCODE);
single!(LATIN8, LATIN8_DECODE, LATIN8_ENCODE);
single!(LATIN9, LATIN9_DECODE, LATIN9_ENCODE);
single!(LATIN10, LATIN10_DECODE, LATIN10_ENCODE);
single!(ISO_8859_5, ISO_8859_5_DECODE, ISO_8859_5_ENCODE);
single!(ISO_8859_6, ISO_8859_6_DECODE, ISO_8859_6_ENCODE);
single!(ISO_8859_7, ISO_8859_7_DECODE, ISO_8859_7_ENCODE);
single!(ISO_8859_8, ISO_8859_8_DECODE, ISO_8859_8_ENCODE);
single!(WIN866, WIN866_DECODE, WIN866_ENCODE);
single!(WIN874, WIN874_DECODE, WIN874_ENCODE);
single!(WIN1250, WIN1250_DECODE, WIN1250_ENCODE);
single!(WIN1251, WIN1251_DECODE, WIN1251_ENCODE);
single!(WIN1252, WIN1252_DECODE, WIN1252_ENCODE);
single!(WIN1256, WIN1256_DECODE, WIN1256_ENCODE);
single!(WIN1258, WIN1258_DECODE, WIN1258_ENCODE);
multi!(GBK, GBK_DECODE, GBK_ENCODE);
multi!(SJIS, SJIS_DECODE, SJIS_ENCODE);
multi!(UHC, UHC_DECODE, UHC_ENCODE);
multi!(JOHAB, JOHAB_DECODE, JOHAB_ENCODE);

#[cfg(test)]
mod tests {
    use super::*;

    fn all_runs() -> Vec<(&'static str, &'static [Run])> {
        vec![
            ("GBK decode", GBK.decode),
            ("GBK encode", GBK.encode),
            ("SJIS decode", SJIS.decode),
            ("SJIS encode", SJIS.encode),
            ("UHC decode", UHC.decode),
            ("UHC encode", UHC.encode),
            ("JOHAB decode", JOHAB.decode),
            ("JOHAB encode", JOHAB.encode),
            ("WIN1252 encode", WIN1252.encode),
            ("WIN1258 encode", WIN1258.encode),
        ]
    }

    #[test]
    fn runs_are_sorted_and_disjoint() {
        for (name, runs) in all_runs() {
            for pair in runs.windows(2) {
                let (a, _, n) = pair[0];
                let (b, _, _) = pair[1];
                assert!(n > 0 && a + n <= b, "{name}: runs overlap at {a:#x}");
            }
        }
    }

    #[test]
    fn lookup_finds_run_members_only() {
        let runs: &[Run] = &[(0x10, 0x100, 3), (0x20, 0x50, 1)];
        assert_eq!(lookup(runs, 0x0f), None);
        assert_eq!(lookup(runs, 0x10), Some(0x100));
        assert_eq!(lookup(runs, 0x12), Some(0x102));
        assert_eq!(lookup(runs, 0x13), None);
        assert_eq!(lookup(runs, 0x20), Some(0x50));
        assert_eq!(lookup(runs, 0x21), None);
        assert_eq!(lookup(&[], 5), None);
    }

    #[test]
    fn ascii_is_identity_in_every_table() {
        // PostgreSQL's LocalToUtf/UtfToLocal copy ASCII without consulting the maps; the
        // generated tables must agree, so the codecs' ASCII fast path is exact.
        for t in [
            &LATIN1,
            &LATIN2,
            &LATIN3,
            &LATIN4,
            &LATIN5,
            &LATIN6,
            &LATIN7,
            &LATIN8,
            &LATIN9,
            &LATIN10,
            &ISO_8859_5,
            &ISO_8859_6,
            &ISO_8859_7,
            &ISO_8859_8,
            &WIN866,
            &WIN874,
            &WIN1250,
            &WIN1251,
            &WIN1252,
            &WIN1256,
            &WIN1258,
        ] {
            assert_eq!(t.decode[0], 0);
            for b in 1..0x80u32 {
                assert_eq!(t.decode[b as usize], b);
                assert_eq!(lookup(t.encode, b), Some(b));
            }
        }
        for t in [&GBK, &SJIS, &UHC, &JOHAB] {
            for b in 1..0x80u32 {
                assert_eq!(lookup(t.decode, b), Some(b));
                assert_eq!(lookup(t.encode, b), Some(b));
            }
        }
    }
}
