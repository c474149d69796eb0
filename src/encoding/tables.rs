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

/// A character as the UTF-8 bytes a decoder writes: up to three bytes (every table value
/// is in the Basic Multilingual Plane) and, in the last byte, their count; all zero for "no
/// character". Writing all four bytes and advancing by the count is branch-free.
pub(super) type Utf8Char = [u8; 4];

/// The [`Utf8Char`] of a BMP code point (0 and surrogates: none).
pub(super) const fn utf8_char(cp: u32) -> Utf8Char {
    if cp == 0 || cp > 0xffff || (cp >= 0xd800 && cp <= 0xdfff) {
        [0, 0, 0, 0]
    } else if cp < 0x80 {
        [cp as u8, 0, 0, 1]
    } else if cp < 0x800 {
        [0xc0 | (cp >> 6) as u8, 0x80 | (cp & 0x3f) as u8, 0, 2]
    } else {
        [
            0xe0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
            3,
        ]
    }
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

/// [`expand`] as UTF-8: byte → the character's [`Utf8Char`].
const fn expand_utf8(runs: &[Run]) -> [Utf8Char; 256] {
    let cps = expand(runs);
    let mut out = [[0u8; 4]; 256];
    let mut b = 0;
    while b < 256 {
        out[b] = utf8_char(cps[b]);
        b += 1;
    }
    out
}

/// Expands multibyte decode runs: two-byte sequences with a high first byte (the key
/// `0x8000..=0xffff`, indexed by `key - 0x8000`) and single high bytes (SJIS half-width
/// katakana, indexed by `byte - 0x80`) → the character's [`Utf8Char`]; zero for none. Longer keys (JOHAB's
/// three-byte 0x8f sequences, none of which PostgreSQL maps) stay in the runs.
const fn expand_multi(runs: &[Run]) -> ([Utf8Char; 0x8000], [Utf8Char; 0x80]) {
    let mut two = [[0u8; 4]; 0x8000];
    let mut one = [[0u8; 4]; 0x80];
    let mut i = 0;
    while i < runs.len() {
        let (first, value, count) = runs[i];
        let mut j = 0;
        while j < count {
            let key = first + j;
            let cp = value + j;
            if cp <= 0xffff {
                if key >= 0x8000 && key <= 0xffff {
                    two[(key - 0x8000) as usize] = utf8_char(cp);
                } else if key >= 0x80 && key <= 0xff {
                    one[(key - 0x80) as usize] = utf8_char(cp);
                }
            }
            j += 1;
        }
        i += 1;
    }
    (two, one)
}

/// How many 256-code-point pages of the BMP an encode table touches, plus one for the
/// shared empty page 0.
const fn count_pages(runs: &[Run]) -> usize {
    let mut pages = 1;
    let mut last = u32::MAX;
    let mut i = 0;
    while i < runs.len() {
        let (first, _, count) = runs[i];
        let mut page = first >> 8;
        let end = (first + count - 1) >> 8;
        while page <= end && page <= 0xff {
            if page != last {
                pages += 1;
                last = page;
            }
            page += 1;
        }
        i += 1;
    }
    pages
}

/// An encode table as pages: `index[cp >> 8]` is the page of code point `cp` (BMP only),
/// `pages[page][cp & 0xff]` its encoded value (0: no equivalent). Two loads, no search;
/// only the pages an encoding uses exist (Cyrillic text touches 2 of WIN1251's 4 pages,
/// 512 bytes, CJK text a few dozen of GBK's 102 pages of 512 bytes).
pub(super) struct EncodePages<T: 'static, const N: usize> {
    index: [u8; 256],
    pages: [[T; 256]; N],
}

macro_rules! encode_pages_fn {
    ($fn:ident, $t:ty) => {
        /// Builds [`EncodePages`] from sorted encode runs at compile time.
        const fn $fn<const N: usize>(runs: &[Run]) -> EncodePages<$t, N> {
            let mut index = [0u8; 256];
            let mut pages = [[0 as $t; 256]; N];
            let mut used = 0usize; // pages[0] stays empty
            let mut i = 0;
            while i < runs.len() {
                let (first, value, count) = runs[i];
                let mut j = 0;
                while j < count {
                    let cp = first + j;
                    if cp <= 0xffff {
                        let hi = (cp >> 8) as usize;
                        if index[hi] == 0 {
                            used += 1;
                            index[hi] = used as u8;
                        }
                        pages[index[hi] as usize][(cp & 0xff) as usize] = (value + j) as $t;
                    }
                    j += 1;
                }
                i += 1;
            }
            EncodePages { index, pages }
        }
    };
}
encode_pages_fn!(encode_pages_u8, u8);
encode_pages_fn!(encode_pages_u16, u16);

/// Tables of a single-byte encoding.
pub(super) struct SingleByte {
    /// Byte → code point; 0 where PostgreSQL reports "no equivalent in encoding UTF8".
    #[cfg_attr(not(test), allow(dead_code))] // the tests check `utf8` against it
    pub(super) decode: [u32; 256],
    /// Byte → the character's UTF-8 ([`Utf8Char`]), what the decoder writes.
    pub(super) utf8: [Utf8Char; 256],
    /// Code point → byte, as runs (the source of `encode_index`/`encode_pages`).
    #[cfg_attr(not(test), allow(dead_code))] // the tests check the pages against it
    pub(super) encode: &'static [Run],
    /// Code point → byte as pages (see [`EncodePages`]).
    pub(super) encode_index: &'static [u8; 256],
    pub(super) encode_pages: &'static [[u8; 256]],
}

impl SingleByte {
    /// The byte of BMP code point `cp`, 0 when the encoding has none.
    #[inline(always)]
    pub(super) fn encode_char(&self, cp: u32) -> u8 {
        let page = self.encode_index[((cp >> 8) & 0xff) as usize];
        let value = self
            .encode_pages
            .get(usize::from(page))
            .map_or(0, |p| p[(cp & 0xff) as usize]);
        if cp > 0xffff {
            0
        } else {
            value
        }
    }
}

/// Tables of a multibyte encoding (GBK, SJIS, UHC, JOHAB).
pub(super) struct MultiByte {
    /// Byte sequence (big-endian integer) → code point, as runs.
    pub(super) decode: &'static [Run],
    /// Two-byte sequences with a high first byte → the character's [`Utf8Char`] (index
    /// `key - 0x8000`), zero for none. UTF-8 rather than code points (twice the size: the
    /// rows of a script, Hangul's 25, take 25 KiB): the hot loops store a table value as
    /// it is, and the arithmetic of encoding a code point was a fifth of their
    /// instructions (docs/benchmarks.md).
    pub(super) decode2: &'static [Utf8Char; 0x8000],
    /// Single high bytes → [`Utf8Char`] (index `byte - 0x80`).
    pub(super) decode1: &'static [Utf8Char; 0x80],
    /// Code point → byte sequence (big-endian integer), as runs.
    #[cfg_attr(not(test), allow(dead_code))] // the tests check the pages against it
    pub(super) encode: &'static [Run],
    /// Code point → byte sequence as pages (see [`EncodePages`]).
    pub(super) encode_index: &'static [u8; 256],
    pub(super) encode_pages: &'static [[u16; 256]],
}

impl MultiByte {
    /// The byte sequence (big-endian) of BMP code point `cp`, 0 when the encoding has none.
    #[inline(always)]
    pub(super) fn encode_char(&self, cp: u32) -> u16 {
        let page = self.encode_index[((cp >> 8) & 0xff) as usize];
        let value = self
            .encode_pages
            .get(usize::from(page))
            .map_or(0, |p| p[(cp & 0xff) as usize]);
        if cp > 0xffff {
            0
        } else {
            value
        }
    }
}

macro_rules! single {
    ($name:ident, $dec:ident, $enc:ident) => {
        pub(super) static $name: SingleByte = {
            const PAGES: usize = count_pages(generated::$enc);
            static ENCODE: EncodePages<u8, PAGES> = encode_pages_u8::<PAGES>(generated::$enc);
            SingleByte {
                decode: expand(generated::$dec),
                utf8: expand_utf8(generated::$dec),
                encode: generated::$enc,
                encode_index: &ENCODE.index,
                encode_pages: &ENCODE.pages,
            }
        };
    };
}

macro_rules! multi {
    ($name:ident, $dec:ident, $enc:ident) => {
        pub(super) static $name: MultiByte = {
            const PAGES: usize = count_pages(generated::$enc);
            static ENCODE: EncodePages<u16, PAGES> = encode_pages_u16::<PAGES>(generated::$enc);
            static DECODE: ([Utf8Char; 0x8000], [Utf8Char; 0x80]) = expand_multi(generated::$dec);
            MultiByte {
                decode: generated::$dec,
                decode2: &DECODE.0,
                decode1: &DECODE.1,
                encode: generated::$enc,
                encode_index: &ENCODE.index,
                encode_pages: &ENCODE.pages,
            }
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

    const SINGLES: [&SingleByte; 21] = [
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
    ];
    const MULTIS: [&MultiByte; 4] = [&GBK, &SJIS, &UHC, &JOHAB];

    /// The decoders append table bytes after a SIMD validation that must never fail:
    /// every `Utf8Char` is exactly the UTF-8 of its table's code point.
    #[test]
    fn tables_hold_scalar_values() {
        let check = |ch: Utf8Char, cp: u32| {
            let len = usize::from(ch[3]);
            if cp == 0 {
                assert_eq!(len, 0);
                return;
            }
            let c = char::from_u32(cp).expect("a Unicode scalar value");
            assert_eq!(&ch[..len], c.to_string().as_bytes(), "U+{cp:04X}");
        };
        for t in SINGLES {
            for b in 0..256 {
                check(t.utf8[b], t.decode[b]);
            }
        }
        for t in MULTIS {
            for key in 0x8000u32..=0xffff {
                let cp = lookup(t.decode, key).unwrap_or(0);
                assert!(cp <= 0xffff, "{key:#x}");
                check(t.decode2[(key - 0x8000) as usize], cp);
            }
            for b in 0x80u32..=0xff {
                check(
                    t.decode1[(b - 0x80) as usize],
                    lookup(t.decode, b).unwrap_or(0),
                );
            }
        }
    }

    /// The paged encode tables say what the runs say, for every BMP code point.
    #[test]
    fn encode_pages_equal_the_runs() {
        for cp in 0x80u32..=0x1_0000 {
            for t in SINGLES {
                let want = lookup(t.encode, cp).unwrap_or(0);
                assert_eq!(u32::from(t.encode_char(cp)), want, "U+{cp:04X}");
            }
            for t in MULTIS {
                let want = lookup(t.encode, cp).unwrap_or(0);
                assert_eq!(u32::from(t.encode_char(cp)), want, "U+{cp:04X}");
            }
        }
    }
}
