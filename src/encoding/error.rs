//! The error of a conversion between a client encoding and text.

use std::fmt;

use super::ClientEncoding;

/// What kind of conversion failure an [`EncodingError`] is.
///
/// ```
/// use pgdap::encoding::{ClientEncoding, EncodingError, EncodingErrorKind};
///
/// fn kind<T: std::fmt::Debug>(r: Result<T, EncodingError>) -> EncodingErrorKind {
///     r.unwrap_err().kind()
/// }
/// let sjis = ClientEncoding::Sjis;
/// assert_eq!(kind(sjis.decode(b"\x81\x20")), EncodingErrorKind::InvalidByteSequence);
/// assert_eq!(kind(sjis.decode(b"\xf0\x40")), EncodingErrorKind::NoUnicodeEquivalent);
/// assert_eq!(kind(sjis.encode("€")), EncodingErrorKind::NoEquivalentInEncoding);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodingErrorKind {
    /// Decoding: the bytes are not a well-formed sequence of the encoding (PostgreSQL's
    /// `invalid byte sequence for encoding "SJIS": 0x81 0x20`). This includes a byte 0x00,
    /// which PostgreSQL rejects in every encoding, and a sequence cut short by the end of
    /// the input. Encoding: the text contains U+0000, which PostgreSQL text cannot hold.
    InvalidByteSequence,
    /// Decoding: a well-formed character of the encoding that has no Unicode equivalent
    /// (PostgreSQL's `character with byte sequence 0x81 in encoding "WIN1252" has no
    /// equivalent in encoding "UTF8"`).
    NoUnicodeEquivalent,
    /// Encoding: a character that the encoding cannot represent (PostgreSQL's
    /// `character with byte sequence 0xe2 0x82 0xac in encoding "UTF8" has no equivalent
    /// in encoding "LATIN1"`).
    NoEquivalentInEncoding,
}

/// A byte sequence that cannot be decoded, or a character that cannot be encoded.
///
/// `Display` gives PostgreSQL's own wording (see [`EncodingError::pg_message`]) followed
/// by where it happened and, when encoding, the character and its code point.
///
/// ```
/// use pgdap::encoding::{ClientEncoding, EncodingErrorKind};
///
/// let err = ClientEncoding::Latin1.encode("café €").unwrap_err();
/// assert_eq!(err.kind(), EncodingErrorKind::NoEquivalentInEncoding);
/// assert_eq!(err.encoding(), ClientEncoding::Latin1);
/// assert_eq!(err.offset(), 6);
/// assert_eq!(err.character(), Some('€'));
/// assert_eq!(
///     err.to_string(),
///     "character with byte sequence 0xe2 0x82 0xac in encoding \"UTF8\" has no \
///      equivalent in encoding \"LATIN1\" ('€', U+20AC, at byte offset 6)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct EncodingError {
    encoding: ClientEncoding,
    kind: EncodingErrorKind,
    offset: usize,
    bytes: Vec<u8>,
    character: Option<char>,
    /// The encoding PostgreSQL names in its message. Usually `encoding.name()`; decoding
    /// SQL_ASCII reports UTF8 for bytes that are not UTF-8, as PostgreSQL does.
    reported: &'static str,
}

impl EncodingError {
    /// A malformed sequence met while decoding.
    pub(super) fn invalid(
        encoding: ClientEncoding,
        reported: &'static str,
        offset: usize,
        bytes: &[u8],
    ) -> Self {
        EncodingError {
            encoding,
            kind: EncodingErrorKind::InvalidByteSequence,
            offset,
            bytes: bytes.to_vec(),
            character: None,
            reported,
        }
    }

    /// A well-formed sequence without a Unicode equivalent, met while decoding.
    pub(super) fn no_unicode_equivalent(
        encoding: ClientEncoding,
        offset: usize,
        bytes: &[u8],
    ) -> Self {
        EncodingError {
            encoding,
            kind: EncodingErrorKind::NoUnicodeEquivalent,
            offset,
            bytes: bytes.to_vec(),
            character: None,
            reported: encoding.name(),
        }
    }

    /// A character the encoding cannot represent, met while encoding.
    pub(super) fn no_equivalent(encoding: ClientEncoding, offset: usize, ch: char) -> Self {
        let mut buf = [0u8; 4];
        EncodingError {
            encoding,
            kind: EncodingErrorKind::NoEquivalentInEncoding,
            offset,
            bytes: ch.encode_utf8(&mut buf).as_bytes().to_vec(),
            character: Some(ch),
            reported: encoding.name(),
        }
    }

    /// U+0000 in text being encoded: PostgreSQL text cannot contain it.
    pub(super) fn nul_in_text(encoding: ClientEncoding, offset: usize) -> Self {
        EncodingError {
            encoding,
            kind: EncodingErrorKind::InvalidByteSequence,
            offset,
            bytes: vec![0],
            character: Some('\0'),
            reported: "UTF8",
        }
    }

    /// The client encoding that was being decoded from or encoded to.
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    /// let err = ClientEncoding::Sjis.decode(b"\x81\x20").unwrap_err();
    /// assert_eq!(err.encoding(), ClientEncoding::Sjis);
    /// ```
    pub fn encoding(&self) -> ClientEncoding {
        self.encoding
    }

    /// What went wrong.
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, EncodingErrorKind};
    /// let err = ClientEncoding::Win1252.decode(b"\x81").unwrap_err();
    /// assert_eq!(err.kind(), EncodingErrorKind::NoUnicodeEquivalent);
    /// ```
    pub fn kind(&self) -> EncodingErrorKind {
        self.kind
    }

    /// Byte offset of the offending sequence: in the input bytes when decoding, in the
    /// UTF-8 text when encoding.
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    /// let err = ClientEncoding::Sjis.decode(b"abc\x81\x20").unwrap_err();
    /// assert_eq!(err.offset(), 3);
    /// ```
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The offending bytes as PostgreSQL reports them: the client bytes when decoding (as
    /// many as the character's length, cut at the end of the input), the UTF-8 bytes of
    /// the character when encoding.
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    /// let err = ClientEncoding::Gbk.decode(b"\x8d\x20").unwrap_err();
    /// assert_eq!(err.bytes(), b"\x8d\x20");
    /// ```
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The character that could not be encoded (`None` when decoding).
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    /// let err = ClientEncoding::Win1252.encode("Жук").unwrap_err();
    /// assert_eq!(err.character(), Some('Ж'));
    /// ```
    pub fn character(&self) -> Option<char> {
        self.character
    }

    /// PostgreSQL's own message for this failure, word for word as PostgreSQL 15's
    /// `convert_from()`/`convert_to()` raise it.
    ///
    /// ```
    /// use pgdap::encoding::ClientEncoding;
    /// let err = ClientEncoding::Sjis.decode(b"\x81\x20").unwrap_err();
    /// assert_eq!(err.pg_message(), "invalid byte sequence for encoding \"SJIS\": 0x81 0x20");
    /// ```
    pub fn pg_message(&self) -> String {
        let bytes = hex_bytes(&self.bytes);
        match self.kind {
            EncodingErrorKind::InvalidByteSequence => format!(
                "invalid byte sequence for encoding \"{}\": {bytes}",
                self.reported
            ),
            EncodingErrorKind::NoUnicodeEquivalent => format!(
                "character with byte sequence {bytes} in encoding \"{}\" has no equivalent \
                 in encoding \"UTF8\"",
                self.reported
            ),
            EncodingErrorKind::NoEquivalentInEncoding => format!(
                "character with byte sequence {bytes} in encoding \"UTF8\" has no equivalent \
                 in encoding \"{}\"",
                self.reported
            ),
        }
    }

    fn describe(&self) -> String {
        let mut out = self.pg_message();
        out.push_str(" (");
        if let Some(ch) = self.character {
            out.push_str(&format!("{ch:?}, U+{:04X}, ", u32::from(ch)));
        }
        out.push_str(&format!("at byte offset {}", self.offset));
        if self.reported != self.encoding.name() && self.character.is_none() {
            out.push_str(&format!(
                ", decoding {}: its bytes must be valid UTF-8 to become text",
                self.encoding.name()
            ));
        }
        out.push(')');
        out
    }
}

/// `0x81 0x20`, as PostgreSQL prints byte sequences.
fn hex_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 5);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:#04x}"));
    }
    out
}

impl fmt::Display for EncodingErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodingErrorKind::InvalidByteSequence => "invalid byte sequence",
            EncodingErrorKind::NoUnicodeEquivalent => "no Unicode equivalent",
            EncodingErrorKind::NoEquivalentInEncoding => "no equivalent in the encoding",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_bytes_prints_like_postgres() {
        assert_eq!(hex_bytes(&[0x81, 0x20]), "0x81 0x20");
        assert_eq!(hex_bytes(&[0x00]), "0x00");
        assert_eq!(hex_bytes(&[]), "");
    }

    #[test]
    fn display_of_each_kind() {
        let e = EncodingError::invalid(ClientEncoding::Sjis, "SJIS", 3, &[0x81, 0x20]);
        assert_eq!(
            e.to_string(),
            "invalid byte sequence for encoding \"SJIS\": 0x81 0x20 (at byte offset 3)"
        );
        let e = EncodingError::no_unicode_equivalent(ClientEncoding::Win1252, 5, &[0x81]);
        assert_eq!(
            e.to_string(),
            "character with byte sequence 0x81 in encoding \"WIN1252\" has no equivalent in \
             encoding \"UTF8\" (at byte offset 5)"
        );
        let e = EncodingError::no_equivalent(ClientEncoding::Latin1, 5, '€');
        assert_eq!(
            e.to_string(),
            "character with byte sequence 0xe2 0x82 0xac in encoding \"UTF8\" has no \
             equivalent in encoding \"LATIN1\" ('€', U+20AC, at byte offset 5)"
        );
        let e = EncodingError::nul_in_text(ClientEncoding::Latin1, 2);
        assert_eq!(
            e.to_string(),
            "invalid byte sequence for encoding \"UTF8\": 0x00 ('\\0', U+0000, at byte offset 2)"
        );
        let e = EncodingError::invalid(ClientEncoding::SqlAscii, "UTF8", 3, &[0xe9, 0x20, 0x80]);
        assert_eq!(
            e.to_string(),
            "invalid byte sequence for encoding \"UTF8\": 0xe9 0x20 0x80 (at byte offset 3, \
             decoding SQL_ASCII: its bytes must be valid UTF-8 to become text)"
        );
        assert_eq!(e.encoding(), ClientEncoding::SqlAscii);
    }
}
