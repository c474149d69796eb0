//! Client encodings (`PGCLIENTENCODING`), byte-exact with PostgreSQL 15.
//!
//! The database keeps text in one character set; the application's local data may be in
//! another. [`ClientEncoding`] names every encoding of the vendor's table and converts
//! between it and Rust text exactly as PostgreSQL 15's `convert_from()`/`convert_to()`
//! do in a UTF8 database, byte for byte and error for error.
//!
//! The session itself always speaks UTF8 (tokio-postgres's strings are UTF-8), so the
//! server converts between the database encoding and UTF8, and pgdap converts between
//! UTF8 and the client encoding at the edge. SQL_ASCII databases are the exception: they
//! store whatever bytes they are given, so [`prepare_session`] switches such a session to
//! `client_encoding = SQL_ASCII` and text columns are read and written as client-encoded
//! bytes with [`RawText`]. See `docs/encoding.md` for the whole picture.
//!
//! No crate is byte-exact with PostgreSQL (encoding_rs follows WHATWG, where
//! `iso-8859-1` means windows-1252; it has no JOHAB; its GBK is GB18030; …), so the
//! conversion tables are generated from a real PostgreSQL 15 server by
//! `tools/gen_encoding_tables.sh` and PostgreSQL's validity rules are mirrored in code.
//! encoding_rs is not used.
//!
//! ```
//! use pgdap::encoding::ClientEncoding;
//!
//! let enc = ClientEncoding::from_name("Win1252").unwrap();
//! assert_eq!(enc.decode(b"caf\xe9 \x80").unwrap(), "café €");
//! assert_eq!(enc.encode("café €").unwrap(), b"caf\xe9 \x80");
//! ```

use std::borrow::Cow;

mod codec;
mod error;
mod raw;
mod session;
mod tables;

pub use error::{EncodingError, EncodingErrorKind};
pub use raw::RawText;
pub use session::{
    apply_session_encoding, check_representable, prepare_session, SessionEncoding,
    SessionEncodingError,
};

/// A client encoding of the vendor's table (docs/design.md §6), under its PostgreSQL name.
///
/// ```
/// use pgdap::encoding::ClientEncoding;
///
/// let enc = ClientEncoding::from_name("ISO-8859-1").unwrap();
/// assert_eq!(enc, ClientEncoding::Latin1);
/// assert_eq!(enc.name(), "LATIN1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientEncoding {
    /// UTF8 (alias Unicode): the default when `PGCLIENTENCODING` is unset.
    Utf8,
    /// SQL_ASCII: "no conversion". As PostgreSQL's `convert_from(x, 'SQL_ASCII')` in a
    /// UTF8 database, decoding accepts only valid UTF-8 without NUL, and encoding yields
    /// the UTF-8 bytes.
    SqlAscii,
    /// GBK (WIN936, Windows936): simplified Chinese, Windows code page 936. Client only.
    /// As in PostgreSQL, `€` encodes to the single byte 0x80, which PostgreSQL's (and
    /// so pgdap's) GBK decoder then rejects: 0x80 starts a two-byte sequence there.
    Gbk,
    /// ISO_8859_5: Latin/Cyrillic.
    Iso8859_5,
    /// ISO_8859_6: Latin/Arabic.
    Iso8859_6,
    /// ISO_8859_7: Latin/Greek.
    Iso8859_7,
    /// ISO_8859_8: Latin/Hebrew.
    Iso8859_8,
    /// JOHAB: Korean (Hangul). Client only. PostgreSQL's JOHAB verifier accepts only
    /// 0xA1..0xFE as trail bytes, so most Hangul syllables in JOHAB bytes are rejected
    /// when decoding although they can be encoded; pgdap does exactly the same.
    Johab,
    /// LATIN1 (ISO88591): ISO 8859-1, Western European.
    Latin1,
    /// LATIN2 (ISO88592): ISO 8859-2, Central European.
    Latin2,
    /// LATIN3 (ISO88593): ISO 8859-3, South European.
    Latin3,
    /// LATIN4 (ISO88594): ISO 8859-4, North European.
    Latin4,
    /// LATIN5 (ISO88599): ISO 8859-9, Turkish.
    Latin5,
    /// LATIN6 (ISO885910): ISO 8859-10, Nordic.
    Latin6,
    /// LATIN7 (ISO885913): ISO 8859-13, Baltic.
    Latin7,
    /// LATIN8 (ISO885914): ISO 8859-14, Celtic.
    Latin8,
    /// LATIN9 (ISO885915): ISO 8859-15, LATIN1 with Euro.
    Latin9,
    /// LATIN10 (ISO885916): ISO 8859-16, Romanian.
    Latin10,
    /// SJIS (Mskanji, ShiftJIS, WIN932, Windows932): Japanese. Client only. As in
    /// PostgreSQL, a few encodings are one-way: `¥` encodes to 0x5C and `‾` to 0x7E
    /// (which decode as `\` and `~`), and NEC/IBM duplicate codes decode to characters
    /// that encode to one of the duplicates only.
    Sjis,
    /// UHC (WIN949, Windows949): Korean, Windows code page 949. Client only.
    Uhc,
    /// WIN866 (ALT): Windows code page 866, Cyrillic.
    Win866,
    /// WIN874: Windows code page 874, Thai.
    Win874,
    /// WIN1250: Windows code page 1250, Central European.
    Win1250,
    /// WIN1251 (WIN): Windows code page 1251, Cyrillic.
    Win1251,
    /// WIN1252: Windows code page 1252, Western European.
    Win1252,
    /// WIN1256: Windows code page 1256, Arabic.
    Win1256,
    /// WIN1258 (ABC, TCVN, TCVN5712, VSCII): Windows code page 1258, Vietnamese.
    /// PostgreSQL converts it byte by byte with a plain table: no composition of
    /// combining marks in either direction, and so does pgdap.
    Win1258,
}

/// The names PostgreSQL accepts (`pg_encname_tbl` in PostgreSQL 15's
/// `src/common/encnames.c`), cleaned as `clean_encoding_name` cleans them, restricted to
/// the encodings of the vendor's table.
const NAME_TABLE: &[(&str, ClientEncoding)] = {
    use ClientEncoding as E;
    &[
        ("abc", E::Win1258),
        ("alt", E::Win866),
        ("gbk", E::Gbk),
        ("iso88591", E::Latin1),
        ("iso885910", E::Latin6),
        ("iso885913", E::Latin7),
        ("iso885914", E::Latin8),
        ("iso885915", E::Latin9),
        ("iso885916", E::Latin10),
        ("iso88592", E::Latin2),
        ("iso88593", E::Latin3),
        ("iso88594", E::Latin4),
        ("iso88595", E::Iso8859_5),
        ("iso88596", E::Iso8859_6),
        ("iso88597", E::Iso8859_7),
        ("iso88598", E::Iso8859_8),
        ("iso88599", E::Latin5),
        ("johab", E::Johab),
        ("latin1", E::Latin1),
        ("latin10", E::Latin10),
        ("latin2", E::Latin2),
        ("latin3", E::Latin3),
        ("latin4", E::Latin4),
        ("latin5", E::Latin5),
        ("latin6", E::Latin6),
        ("latin7", E::Latin7),
        ("latin8", E::Latin8),
        ("latin9", E::Latin9),
        ("mskanji", E::Sjis),
        ("shiftjis", E::Sjis),
        ("sjis", E::Sjis),
        ("sqlascii", E::SqlAscii),
        ("tcvn", E::Win1258),
        ("tcvn5712", E::Win1258),
        ("uhc", E::Uhc),
        ("unicode", E::Utf8),
        ("utf8", E::Utf8),
        ("vscii", E::Win1258),
        ("win", E::Win1251),
        ("win1250", E::Win1250),
        ("win1251", E::Win1251),
        ("win1252", E::Win1252),
        ("win1256", E::Win1256),
        ("win1258", E::Win1258),
        ("win866", E::Win866),
        ("win874", E::Win874),
        ("win932", E::Sjis),
        ("win936", E::Gbk),
        ("win949", E::Uhc),
        ("windows1250", E::Win1250),
        ("windows1251", E::Win1251),
        ("windows1252", E::Win1252),
        ("windows1256", E::Win1256),
        ("windows1258", E::Win1258),
        ("windows866", E::Win866),
        ("windows874", E::Win874),
        ("windows932", E::Sjis),
        ("windows936", E::Gbk),
        ("windows949", E::Uhc),
    ]
};

/// PostgreSQL's `NAMEDATALEN`. A `client_encoding` value (`SET client_encoding`, or
/// `PGCLIENTENCODING` sent by libpq at startup) is truncated like an identifier to
/// `NAMEDATALEN - 1` bytes, with a NOTICE, before it is looked up.
const NAMEDATALEN: usize = 64;

impl ClientEncoding {
    /// Every supported encoding, in the order of [`ClientEncoding::NAMES`].
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    /// assert_eq!(ClientEncoding::ALL.len(), ClientEncoding::NAMES.len());
    /// assert!(ClientEncoding::ALL.contains(&ClientEncoding::Win1258));
    /// ```
    pub const ALL: &'static [ClientEncoding] = &[
        ClientEncoding::Gbk,
        ClientEncoding::Iso8859_5,
        ClientEncoding::Iso8859_6,
        ClientEncoding::Iso8859_7,
        ClientEncoding::Iso8859_8,
        ClientEncoding::Johab,
        ClientEncoding::Latin1,
        ClientEncoding::Latin2,
        ClientEncoding::Latin3,
        ClientEncoding::Latin4,
        ClientEncoding::Latin5,
        ClientEncoding::Latin6,
        ClientEncoding::Latin7,
        ClientEncoding::Latin8,
        ClientEncoding::Latin9,
        ClientEncoding::Latin10,
        ClientEncoding::Sjis,
        ClientEncoding::SqlAscii,
        ClientEncoding::Uhc,
        ClientEncoding::Utf8,
        ClientEncoding::Win866,
        ClientEncoding::Win874,
        ClientEncoding::Win1250,
        ClientEncoding::Win1251,
        ClientEncoding::Win1252,
        ClientEncoding::Win1256,
        ClientEncoding::Win1258,
    ];

    /// Canonical PostgreSQL names of every supported encoding (the vendor's table), for
    /// error messages.
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    /// assert!(ClientEncoding::NAMES.contains(&"WIN1252"));
    /// assert_eq!(ClientEncoding::NAMES.join(", ").matches(", ").count(), 26);
    /// ```
    pub const NAMES: &'static [&'static str] = &[
        "GBK",
        "ISO_8859_5",
        "ISO_8859_6",
        "ISO_8859_7",
        "ISO_8859_8",
        "JOHAB",
        "LATIN1",
        "LATIN2",
        "LATIN3",
        "LATIN4",
        "LATIN5",
        "LATIN6",
        "LATIN7",
        "LATIN8",
        "LATIN9",
        "LATIN10",
        "SJIS",
        "SQL_ASCII",
        "UHC",
        "UTF8",
        "WIN866",
        "WIN874",
        "WIN1250",
        "WIN1251",
        "WIN1252",
        "WIN1256",
        "WIN1258",
    ];

    /// Looks a name or alias up as PostgreSQL's `pg_char_to_encoding` does: ASCII letters
    /// and digits only, case-insensitive, every other character ignored (`Win1252`,
    /// `win-1252` and `WIN_1252` are all WIN1252; `ISO-8859-1` is LATIN1). As the server
    /// does with a `client_encoding` value, a name of 64 bytes or more is first truncated
    /// to 63 bytes (at a character boundary).
    ///
    /// Accepted are the names and aliases of PostgreSQL 15's table (`encnames.c`) for the
    /// encodings of the vendor's table. Every name and alias of the vendor's table is one
    /// of them (PostgreSQL does list ABC, TCVN, TCVN5712, VSCII, ALT and WIN). PostgreSQL
    /// also accepts a few spellings the vendor's table does not list, and so does pgdap,
    /// as libpq would: `WINDOWS866`, `WINDOWS874`, `WINDOWS1250`, `WINDOWS1251`,
    /// `WINDOWS1252`, `WINDOWS1256` and `WINDOWS1258`. Encodings PostgreSQL knows but the
    /// vendor's table does not (EUC_JP, BIG5, KOI8R, WIN1253, …) are `None`.
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    ///
    /// assert_eq!(ClientEncoding::from_name("Win1252"), Some(ClientEncoding::Win1252));
    /// assert_eq!(ClientEncoding::from_name("shift_jis"), Some(ClientEncoding::Sjis));
    /// assert_eq!(ClientEncoding::from_name("TCVN"), Some(ClientEncoding::Win1258));
    /// assert_eq!(ClientEncoding::from_name("EUC_JP"), None);
    /// assert_eq!(ClientEncoding::from_name(""), None);
    /// ```
    pub fn from_name(name: &str) -> Option<ClientEncoding> {
        let mut end = name.len().min(NAMEDATALEN - 1);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let key: String = name
            .get(..end)
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        NAME_TABLE
            .iter()
            .find(|(alias, _)| *alias == key)
            .map(|&(_, enc)| enc)
    }

    /// The canonical PostgreSQL name (`"WIN1252"`), as `pg_encoding_to_char` gives it.
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    /// assert_eq!(ClientEncoding::Iso8859_5.name(), "ISO_8859_5");
    /// assert_eq!(ClientEncoding::SqlAscii.name(), "SQL_ASCII");
    /// ```
    pub fn name(self) -> &'static str {
        use ClientEncoding as E;
        match self {
            E::Utf8 => "UTF8",
            E::SqlAscii => "SQL_ASCII",
            E::Gbk => "GBK",
            E::Iso8859_5 => "ISO_8859_5",
            E::Iso8859_6 => "ISO_8859_6",
            E::Iso8859_7 => "ISO_8859_7",
            E::Iso8859_8 => "ISO_8859_8",
            E::Johab => "JOHAB",
            E::Latin1 => "LATIN1",
            E::Latin2 => "LATIN2",
            E::Latin3 => "LATIN3",
            E::Latin4 => "LATIN4",
            E::Latin5 => "LATIN5",
            E::Latin6 => "LATIN6",
            E::Latin7 => "LATIN7",
            E::Latin8 => "LATIN8",
            E::Latin9 => "LATIN9",
            E::Latin10 => "LATIN10",
            E::Sjis => "SJIS",
            E::Uhc => "UHC",
            E::Win866 => "WIN866",
            E::Win874 => "WIN874",
            E::Win1250 => "WIN1250",
            E::Win1251 => "WIN1251",
            E::Win1252 => "WIN1252",
            E::Win1256 => "WIN1256",
            E::Win1258 => "WIN1258",
        }
    }

    /// Whether PostgreSQL allows this encoding only on the client side (a database
    /// cannot use it): GBK, SJIS and UHC as the vendor says, and JOHAB too (PostgreSQL's
    /// `PG_VALID_BE_ENCODING`).
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    /// assert!(ClientEncoding::Sjis.is_client_only());
    /// assert!(!ClientEncoding::Win1252.is_client_only());
    /// ```
    pub fn is_client_only(self) -> bool {
        matches!(
            self,
            ClientEncoding::Gbk
                | ClientEncoding::Sjis
                | ClientEncoding::Uhc
                | ClientEncoding::Johab
        )
    }

    /// Client bytes → text, identical to PostgreSQL 15's `convert_from(bytes, NAME)` in a
    /// UTF8 database: the same text, and an error exactly where PostgreSQL raises one
    /// (a NUL byte, a malformed or truncated sequence, a character with no Unicode
    /// equivalent), with PostgreSQL's message ([`EncodingError::pg_message`]).
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    ///
    /// let enc = ClientEncoding::Win1252;
    /// assert_eq!(enc.decode(&[0x63, 0x61, 0x66, 0xe9, 0x20, 0x80]).unwrap(), "café €");
    /// let err = enc.decode(b"ok\x81").unwrap_err();
    /// assert_eq!(err.offset(), 2);
    /// assert!(err.to_string().contains("0x81"));
    /// ```
    pub fn decode(self, bytes: &[u8]) -> Result<String, EncodingError> {
        codec::decode(self, bytes)
    }

    /// Text → client bytes, identical to PostgreSQL 15's `convert_to(text, NAME)` in a
    /// UTF8 database. A character the encoding cannot represent is an error naming it,
    /// never a silent `?`; so is U+0000, which PostgreSQL text cannot hold.
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    ///
    /// assert_eq!(ClientEncoding::Sjis.encode("日本").unwrap(), b"\x93\xfa\x96\x7b");
    /// let err = ClientEncoding::Latin1.encode("€").unwrap_err();
    /// assert_eq!(err.character(), Some('€'));
    /// ```
    pub fn encode(self, text: &str) -> Result<Vec<u8>, EncodingError> {
        codec::encode(self, text)
    }

    /// [`decode`](Self::decode) without a copy when none is needed: the input itself,
    /// borrowed, when it already is the text (for UTF8 and SQL_ASCII valid UTF-8 without
    /// NUL, for the other encodings ASCII without NUL), otherwise the decoded `String`.
    /// The same text and the same errors as `decode`; ASCII input costs a scan and no
    /// allocation.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use pgdap::encoding::ClientEncoding;
    ///
    /// let enc = ClientEncoding::Sjis;
    /// assert!(matches!(enc.decode_cow(b"select 1"), Ok(Cow::Borrowed("select 1"))));
    /// let text = enc.decode_cow(b"\x93\xfa\x96\x7b").unwrap();
    /// assert!(matches!(text, Cow::Owned(_)));
    /// assert_eq!(text, "日本");
    /// assert!(enc.decode_cow(b"ok\x00").is_err());
    /// ```
    pub fn decode_cow(self, bytes: &[u8]) -> Result<Cow<'_, str>, EncodingError> {
        codec::decode_cow(self, bytes)
    }

    /// [`encode`](Self::encode) without a copy when none is needed: the text's own bytes,
    /// borrowed, when they already are the result (for UTF8 and SQL_ASCII any text
    /// without U+0000, for the other encodings ASCII without U+0000), otherwise the
    /// encoded `Vec<u8>`. The same bytes and the same errors as `encode`.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use pgdap::encoding::ClientEncoding;
    ///
    /// let enc = ClientEncoding::Win1252;
    /// assert!(matches!(enc.encode_cow("select 1"), Ok(Cow::Borrowed(b"select 1"))));
    /// assert_eq!(enc.encode_cow("café").unwrap().as_ref(), b"caf\xe9");
    /// assert!(matches!(ClientEncoding::Utf8.encode_cow("café"), Ok(Cow::Borrowed(_))));
    /// assert!(ClientEncoding::Utf8.encode_cow("a\0b").is_err());
    /// ```
    pub fn encode_cow(self, text: &str) -> Result<Cow<'_, [u8]>, EncodingError> {
        codec::encode_cow(self, text)
    }
}

impl std::fmt::Display for ClientEncoding {
    /// The canonical PostgreSQL name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendor's table of names and aliases (docs/design.md §6), verbatim.
    const VENDOR_TABLE: &[(&str, &[&str])] = &[
        ("GBK", &["WIN936", "Windows936"]),
        ("ISO_8859_5", &[]),
        ("ISO_8859_6", &[]),
        ("ISO_8859_7", &[]),
        ("ISO_8859_8", &[]),
        ("JOHAB", &[]),
        ("LATIN1", &["ISO88591"]),
        ("LATIN2", &["ISO88592"]),
        ("LATIN3", &["ISO88593"]),
        ("LATIN4", &["ISO88594"]),
        ("LATIN5", &["ISO88599"]),
        ("LATIN6", &["ISO885910"]),
        ("LATIN7", &["ISO885913"]),
        ("LATIN8", &["ISO885914"]),
        ("LATIN9", &["ISO885915"]),
        ("LATIN10", &["ISO885916"]),
        ("SJIS", &["Mskanji", "ShiftJIS", "WIN932", "Windows932"]),
        ("SQL_ASCII", &[]),
        ("UHC", &["WIN949", "Windows949"]),
        ("UTF8", &["Unicode"]),
        ("WIN866", &["ALT"]),
        ("WIN874", &[]),
        ("WIN1250", &[]),
        ("WIN1251", &["WIN"]),
        ("WIN1252", &[]),
        ("WIN1256", &[]),
        ("WIN1258", &["ABC", "TCVN", "TCVN5712", "VSCII"]),
    ];

    #[test]
    fn every_vendor_name_and_alias_resolves() {
        assert_eq!(VENDOR_TABLE.len(), ClientEncoding::ALL.len());
        for (name, aliases) in VENDOR_TABLE {
            let enc = ClientEncoding::from_name(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(enc.name(), *name);
            for alias in *aliases {
                assert_eq!(ClientEncoding::from_name(alias), Some(enc), "{alias}");
                assert_eq!(
                    ClientEncoding::from_name(&alias.to_lowercase()),
                    Some(enc),
                    "{alias}"
                );
                assert_eq!(
                    ClientEncoding::from_name(&alias.to_uppercase()),
                    Some(enc),
                    "{alias}"
                );
            }
        }
    }

    #[test]
    fn names_all_and_name_agree() {
        for (enc, name) in ClientEncoding::ALL.iter().zip(ClientEncoding::NAMES) {
            assert_eq!(enc.name(), *name);
            assert_eq!(ClientEncoding::from_name(name), Some(*enc));
            assert_eq!(enc.to_string(), *name);
        }
        let mut covered: Vec<_> = NAME_TABLE.iter().map(|(_, e)| e.name()).collect();
        covered.sort_unstable();
        covered.dedup();
        assert_eq!(covered.len(), ClientEncoding::ALL.len());
    }

    #[test]
    fn names_are_cleaned_like_postgres() {
        let w = Some(ClientEncoding::Win1252);
        assert_eq!(ClientEncoding::from_name("Win1252"), w);
        assert_eq!(ClientEncoding::from_name("win-1252"), w);
        assert_eq!(ClientEncoding::from_name("WIN_1252"), w);
        assert_eq!(ClientEncoding::from_name(" w i n 1 2 5 2 "), w);
        assert_eq!(ClientEncoding::from_name("Windows-1252"), w);
        assert_eq!(
            ClientEncoding::from_name("ISO-8859-1"),
            Some(ClientEncoding::Latin1)
        );
        assert_eq!(
            ClientEncoding::from_name("iso_8859_9"),
            Some(ClientEncoding::Latin5)
        );
        assert_eq!(
            ClientEncoding::from_name("Shift_JIS"),
            Some(ClientEncoding::Sjis)
        );
        assert_eq!(
            ClientEncoding::from_name("utf-8"),
            Some(ClientEncoding::Utf8)
        );
        // Non-ASCII letters are not alphanumeric for PostgreSQL's isalnum() in C.
        assert_eq!(
            ClientEncoding::from_name("utf8é"),
            Some(ClientEncoding::Utf8)
        );
        // NAMEDATALEN: names are truncated to 63 bytes first, as the server does.
        let utf8 = Some(ClientEncoding::Utf8);
        let padded = format!("utf8{}", "-".repeat(59));
        assert_eq!(padded.len(), 63);
        assert_eq!(ClientEncoding::from_name(&padded), utf8);
        assert_eq!(ClientEncoding::from_name(&format!("{padded}-")), utf8);
        assert_eq!(ClientEncoding::from_name(&format!("{padded}x")), utf8);
        let cut = format!("win125{}2", "-".repeat(56));
        assert_eq!(cut.len(), 63);
        assert_eq!(
            ClientEncoding::from_name(&cut),
            Some(ClientEncoding::Win1252)
        );
        let too_long = format!("win125{}2", "-".repeat(57));
        assert_eq!(ClientEncoding::from_name(&too_long), None);
        // A multibyte character straddling byte 63 is cut whole.
        let straddling = format!("utf8{}é1", "-".repeat(58));
        assert_eq!(ClientEncoding::from_name(&straddling), utf8);
    }

    #[test]
    fn unknown_names_are_none() {
        for name in [
            "",
            "-",
            "utf",
            "utf16",
            "latin11",
            "EUC_JP",
            "BIG5",
            "KOI8R",
            "WIN1253",
            "GB18030",
            "MULE_INTERNAL",
            "iso-8859-11",
            "cp1252",
            "windows-1253",
        ] {
            assert_eq!(ClientEncoding::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn client_only_encodings() {
        let only: Vec<_> = ClientEncoding::ALL
            .iter()
            .filter(|e| e.is_client_only())
            .map(|e| e.name())
            .collect();
        assert_eq!(only, ["GBK", "JOHAB", "SJIS", "UHC"]);
    }

    #[test]
    fn win1252_example_of_the_issue() {
        let enc = ClientEncoding::from_name("Win1252").unwrap();
        let bytes = [0x63, 0x61, 0x66, 0xe9, 0x20, 0x80];
        assert_eq!(enc.decode(&bytes).unwrap(), "café €");
        assert_eq!(enc.encode("café €").unwrap(), bytes);
    }

    #[test]
    fn round_trips_in_every_encoding() {
        let samples: &[(ClientEncoding, &str)] = &[
            (ClientEncoding::Utf8, "déjà vu € 日本 😀"),
            (ClientEncoding::SqlAscii, "déjà vu € 日本 😀"),
            (ClientEncoding::Gbk, "中文 汉字"),
            (ClientEncoding::Iso8859_5, "Жук ёж №"),
            (ClientEncoding::Iso8859_6, "عربي"),
            (ClientEncoding::Iso8859_7, "Ελληνικά"),
            (ClientEncoding::Iso8859_8, "עברית"),
            (ClientEncoding::Johab, "쌰"),
            (ClientEncoding::Latin1, "café déjà vu ÿ"),
            (ClientEncoding::Latin2, "Łódź źdźbło"),
            (ClientEncoding::Latin3, "Ħġż"),
            (ClientEncoding::Latin4, "ĀĒĪ"),
            (ClientEncoding::Latin5, "İstanbul ğş"),
            (ClientEncoding::Latin6, "ŊŦ"),
            (ClientEncoding::Latin7, "Ąž"),
            (ClientEncoding::Latin8, "Ẁẃ"),
            (ClientEncoding::Latin9, "€ Œœ"),
            (ClientEncoding::Latin10, "Șț €"),
            (ClientEncoding::Sjis, "日本語 ｶﾀｶﾅ"),
            (ClientEncoding::Uhc, "한국어"),
            (ClientEncoding::Win866, "Привет"),
            (ClientEncoding::Win874, "ภาษาไทย"),
            (ClientEncoding::Win1250, "Łódź €"),
            (ClientEncoding::Win1251, "Привет €"),
            (ClientEncoding::Win1252, "café déjà vu €"),
            (ClientEncoding::Win1256, "عربي €"),
            (
                ClientEncoding::Win1258,
                "Ti\u{ea}\u{301}ng Vi\u{ea}\u{323}t ₫ Ơ",
            ),
        ];
        assert_eq!(samples.len(), ClientEncoding::ALL.len());
        for (enc, text) in samples {
            let bytes = enc.encode(text).unwrap_or_else(|e| panic!("{enc}: {e}"));
            assert_eq!(&enc.decode(&bytes).unwrap(), text, "{enc}");
            assert!(
                text.is_ascii()
                    || bytes != text.as_bytes()
                    || enc.name().contains("UTF8")
                    || *enc == ClientEncoding::SqlAscii
            );
        }
    }

    #[test]
    fn gbk_euro_is_one_way_as_in_postgres() {
        assert_eq!(ClientEncoding::Gbk.encode("€").unwrap(), b"\x80");
        let err = ClientEncoding::Gbk.decode(b"\x80").unwrap_err();
        assert_eq!(
            err.pg_message(),
            "invalid byte sequence for encoding \"GBK\": 0x80"
        );
        let err = ClientEncoding::Gbk.decode(b"\x80 ").unwrap_err();
        assert_eq!(err.kind(), EncodingErrorKind::NoUnicodeEquivalent);
    }

    #[test]
    fn sjis_one_way_encodings_as_in_postgres() {
        let sjis = ClientEncoding::Sjis;
        assert_eq!(sjis.encode("¥‾").unwrap(), b"\x5c\x7e");
        assert_eq!(sjis.decode(b"\x5c\x7e").unwrap(), "\\~");
        assert_eq!(sjis.encode("¬").unwrap(), b"\x81\xca");
        for code in [&b"\x81\xca"[..], b"\xee\xf9", b"\xfa\x54"] {
            assert_eq!(sjis.decode(code).unwrap(), "\u{ffe2}");
        }
        assert_eq!(sjis.encode("\u{ffe2}").unwrap(), b"\x81\xca");
    }

    #[test]
    fn win1258_does_not_compose() {
        // "ế" precomposed (U+1EBF) is not in windows-1258; PostgreSQL does not decompose
        // it into e + circumflex + acute either.
        let err = ClientEncoding::Win1258.encode("\u{1ebf}").unwrap_err();
        assert_eq!(err.character(), Some('\u{1ebf}'));
        // ê + combining acute is representable, and decoding gives it back uncomposed.
        let bytes = ClientEncoding::Win1258.encode("\u{ea}\u{301}").unwrap();
        assert_eq!(bytes, b"\xea\xec");
        assert_eq!(
            ClientEncoding::Win1258.decode(&bytes).unwrap(),
            "\u{ea}\u{301}"
        );
    }

    #[test]
    fn nul_is_rejected_everywhere() {
        for enc in ClientEncoding::ALL {
            let err = enc.decode(b"a\x00b").unwrap_err();
            assert_eq!(err.kind(), EncodingErrorKind::InvalidByteSequence, "{enc}");
            assert_eq!((err.offset(), err.bytes()), (1, &b"\x00"[..]), "{enc}");
            assert!(err.to_string().contains("0x00"), "{enc}");
            let err = enc.encode("a\0b").unwrap_err();
            assert_eq!(err.kind(), EncodingErrorKind::InvalidByteSequence, "{enc}");
            assert_eq!(err.offset(), 1);
            assert!(err.to_string().contains("U+0000"), "{enc}");
        }
    }

    #[test]
    fn errors_name_the_bytes_and_the_encoding() {
        let err = ClientEncoding::Sjis.decode(b"ab\x81\x20").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid byte sequence for encoding \"SJIS\": 0x81 0x20 (at byte offset 2)"
        );
        let err = ClientEncoding::Win1252.decode(b"caf\x81").unwrap_err();
        assert_eq!(
            err.to_string(),
            "character with byte sequence 0x81 in encoding \"WIN1252\" has no equivalent in \
             encoding \"UTF8\" (at byte offset 3)"
        );
        let err = ClientEncoding::Win1252.encode("Жук").unwrap_err();
        assert_eq!(
            err.to_string(),
            "character with byte sequence 0xd0 0x96 in encoding \"UTF8\" has no equivalent \
             in encoding \"WIN1252\" ('Ж', U+0416, at byte offset 0)"
        );
        let err = ClientEncoding::Gbk.encode("a😀").unwrap_err();
        assert!(err.to_string().contains("U+1F600"));
        assert!(err.to_string().contains("\"GBK\""));
        assert_eq!(err.offset(), 1);
    }
}
