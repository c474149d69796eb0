//! [`RawText`]: text columns as bytes, for SQL_ASCII databases.

use std::error::Error;

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

use super::{ClientEncoding, EncodingError};

/// The raw bytes of a text value (`text`, `varchar`, `char(n)`, `name`, `unknown`),
/// read and written without UTF-8 validation.
///
/// A SQL_ASCII database stores whatever bytes it is given and converts nothing, so its
/// text columns hold bytes in the client's encoding (say WIN1252), which a Rust `String`
/// cannot carry. Read such a column as `RawText` and [`decode`](RawText::decode) it with
/// the client encoding; write one with [`RawText::encode`]. The session must use
/// `client_encoding = SQL_ASCII` for the server to accept and return non-UTF-8 bytes:
/// [`prepare_session`](super::prepare_session) sets that up.
///
/// In a database with a real encoding, the session speaks UTF8 and a `RawText` holds
/// UTF-8 bytes; [`SessionEncoding::text_from_db`](super::SessionEncoding::text_from_db)
/// and [`SessionEncoding::text_to_db`](super::SessionEncoding::text_to_db) handle both
/// cases.
///
/// ```
/// use pgdap::encoding::{ClientEncoding, RawText};
///
/// let raw = RawText(vec![0x63, 0x61, 0x66, 0xe9, 0x20, 0x80]);
/// assert_eq!(raw.decode(ClientEncoding::Win1252).unwrap(), "café €");
/// assert_eq!(RawText::encode(ClientEncoding::Win1252, "café €").unwrap(), raw);
/// ```
///
/// With a session (`client_encoding = SQL_ASCII`, see [`prepare_session`](super::prepare_session)):
///
/// ```no_run
/// # async fn run(client: &tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use pgdap::encoding::{ClientEncoding, RawText};
///
/// let enc = ClientEncoding::Win1252;
/// let value = RawText::encode(enc, "café €")?;
/// client.execute("insert into notes(body) values ($1)", &[&value]).await?;
/// let row = client.query_one("select body from notes", &[]).await?;
/// let body: RawText = row.get(0);
/// assert_eq!(body.decode(enc)?, "café €");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawText(pub Vec<u8>);

impl RawText {
    /// Decodes the bytes with a client encoding ([`ClientEncoding::decode`]).
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, RawText};
    /// let raw = RawText(b"\x93\xfa\x96\x7b".to_vec());
    /// assert_eq!(raw.decode(ClientEncoding::Sjis).unwrap(), "日本");
    /// ```
    pub fn decode(&self, enc: ClientEncoding) -> Result<String, EncodingError> {
        enc.decode(&self.0)
    }

    /// Encodes text with a client encoding ([`ClientEncoding::encode`]).
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, RawText};
    /// let raw = RawText::encode(ClientEncoding::Latin1, "déjà").unwrap();
    /// assert_eq!(raw.as_bytes(), b"d\xe9j\xe0");
    /// assert!(RawText::encode(ClientEncoding::Latin1, "€").is_err());
    /// ```
    pub fn encode(enc: ClientEncoding, text: &str) -> Result<RawText, EncodingError> {
        enc.encode(text).map(RawText)
    }

    /// The bytes.
    ///
    /// ```
    /// use pgdap::encoding::RawText;
    /// assert_eq!(RawText(b"abc".to_vec()).as_bytes(), b"abc");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, by value.
    ///
    /// ```
    /// use pgdap::encoding::RawText;
    /// assert_eq!(RawText(b"abc".to_vec()).into_bytes(), b"abc".to_vec());
    /// ```
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for RawText {
    fn from(bytes: Vec<u8>) -> Self {
        RawText(bytes)
    }
}

impl From<RawText> for Vec<u8> {
    fn from(raw: RawText) -> Self {
        raw.0
    }
}

/// The text types whose binary form is just the bytes in the session's encoding.
fn is_text_type(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

impl<'a> FromSql<'a> for RawText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<RawText, Box<dyn Error + Sync + Send>> {
        Ok(RawText(raw.to_vec()))
    }

    fn accepts(ty: &Type) -> bool {
        is_text_type(ty)
    }
}

impl ToSql for RawText {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        is_text_type(ty)
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_text_types_only() {
        for ty in [
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::NAME,
            Type::UNKNOWN,
        ] {
            assert!(<RawText as FromSql>::accepts(&ty), "{ty}");
            assert!(<RawText as ToSql>::accepts(&ty), "{ty}");
        }
        for ty in [Type::BYTEA, Type::INT4, Type::JSON] {
            assert!(!<RawText as FromSql>::accepts(&ty), "{ty}");
            assert!(!<RawText as ToSql>::accepts(&ty), "{ty}");
        }
    }

    #[test]
    fn bytes_pass_through_unvalidated() {
        let bytes = b"caf\xe9 \x80".to_vec();
        let raw = RawText::from_sql(&Type::TEXT, &bytes).unwrap();
        assert_eq!(raw.as_bytes(), &bytes[..]);
        let mut out = BytesMut::new();
        assert!(matches!(
            raw.to_sql(&Type::TEXT, &mut out).unwrap(),
            IsNull::No
        ));
        assert_eq!(&out[..], &bytes[..]);
        assert!(raw.to_sql_checked(&Type::INT4, &mut out).is_err());
    }
}
