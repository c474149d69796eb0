//! Applying the client encoding to a session, the way PostgreSQL intends.
//!
//! tokio-postgres speaks UTF8 on the wire (it sends `client_encoding=UTF8` at startup
//! and its strings are UTF-8). So in a database with a real encoding (UTF8, WIN1252,
//! LATIN1, …) the server converts between the database encoding and UTF8, and pgdap
//! converts between UTF8 and the client encoding at the edge.
//!
//! SQL_ASCII databases store the bytes they are given and convert nothing. With
//! `client_encoding = UTF8` the server still validates incoming text as UTF8 (so a WIN1252
//! `é`, byte 0xe9, is refused with `invalid byte sequence for encoding "UTF8"`) and
//! validates outgoing text as UTF8 too (so reading it back fails the same way). With
//! `client_encoding = SQL_ASCII` it passes bytes through both ways, rejecting only NUL.
//! So for a SQL_ASCII database [`prepare_session`] runs `SET client_encoding TO
//! 'SQL_ASCII'`, and text columns are read and written as client-encoded bytes with
//! [`RawText`].

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{ClientEncoding, EncodingError, RawText};

/// Why a session's encoding could not be set up, or why text cannot be stored.
///
/// ```
/// use pgdap::encoding::{ClientEncoding, SessionEncoding, SessionEncodingError};
///
/// let session = SessionEncoding::new("WIN1252", ClientEncoding::Win1252);
/// let err = session.text_to_db("Жук").unwrap_err();
/// let err = SessionEncodingError::NotRepresentable {
///     database_encoding: session.server_encoding().to_string(),
///     source: err,
/// };
/// assert!(err.to_string().starts_with("the WIN1252 database cannot store this text"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionEncodingError {
    /// Reading `server_encoding`/`client_encoding` or setting `client_encoding` failed.
    #[error("could not set up the session encoding (server_encoding, client_encoding): {0}")]
    Query(#[source] tokio_postgres::Error),
    /// The server reported a `server_encoding` that is not a string.
    #[error("the server did not report its server_encoding")]
    NoServerEncoding,
    /// pgdap's tables (which are PostgreSQL's) show that the text cannot be stored: a
    /// character has no equivalent in the database encoding, or, in a SQL_ASCII database,
    /// in the client encoding its bytes are stored in.
    #[error("the {database_encoding} database cannot store this text: {source}")]
    NotRepresentable {
        /// The database's `server_encoding`.
        database_encoding: String,
        /// The character, its code point, its offset and the encoding that lacks it.
        #[source]
        source: EncodingError,
    },
    /// The server refused to convert the text into the database encoding (for database
    /// encodings pgdap has no table of, e.g. EUC_JP or KOI8R). `message` is the server's.
    #[error("the {database_encoding} database cannot store this text: {message}")]
    RejectedByServer {
        /// The database's `server_encoding`.
        database_encoding: String,
        /// The server's message, unchanged.
        message: String,
        /// The server error.
        #[source]
        source: tokio_postgres::Error,
    },
}

/// The encodings of a session: the database's, the client's (`PGCLIENTENCODING`) and
/// the one on the wire (the session's `client_encoding`).
///
/// ```
/// use pgdap::encoding::{ClientEncoding, SessionEncoding};
///
/// let utf8_db = SessionEncoding::new("UTF8", ClientEncoding::Latin1);
/// assert_eq!(utf8_db.wire_encoding(), ClientEncoding::Utf8);
/// assert!(!utf8_db.is_sql_ascii());
///
/// let raw_db = SessionEncoding::new("SQL_ASCII", ClientEncoding::Win1252);
/// assert_eq!(raw_db.wire_encoding(), ClientEncoding::SqlAscii);
/// assert!(raw_db.is_sql_ascii());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionEncoding {
    server: String,
    client: ClientEncoding,
    wire: ClientEncoding,
}

impl SessionEncoding {
    /// Describes a session on a database whose `server_encoding` is `server_encoding`
    /// (PostgreSQL's canonical name, as `SHOW server_encoding` gives it), for a client
    /// encoding. Pure: nothing is sent; [`prepare_session`] is what applies it.
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// let s = SessionEncoding::new("WIN1252", ClientEncoding::Win1252);
    /// assert_eq!(s.server_encoding(), "WIN1252");
    /// assert_eq!(s.client_encoding(), ClientEncoding::Win1252);
    /// ```
    pub fn new(server_encoding: &str, client: ClientEncoding) -> SessionEncoding {
        let wire = if server_encoding == "SQL_ASCII" {
            ClientEncoding::SqlAscii
        } else {
            ClientEncoding::Utf8
        };
        SessionEncoding {
            server: server_encoding.to_string(),
            client,
            wire,
        }
    }

    /// The database encoding (`server_encoding`), e.g. `"WIN1252"`.
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// assert_eq!(SessionEncoding::new("UTF8", ClientEncoding::Utf8).server_encoding(), "UTF8");
    /// ```
    pub fn server_encoding(&self) -> &str {
        &self.server
    }

    /// The client encoding applied at the edge (`PGCLIENTENCODING`).
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// let s = SessionEncoding::new("UTF8", ClientEncoding::Sjis);
    /// assert_eq!(s.client_encoding(), ClientEncoding::Sjis);
    /// ```
    pub fn client_encoding(&self) -> ClientEncoding {
        self.client
    }

    /// The session's `client_encoding` on the server: UTF8, or SQL_ASCII for a SQL_ASCII
    /// database.
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// let s = SessionEncoding::new("LATIN1", ClientEncoding::Latin1);
    /// assert_eq!(s.wire_encoding(), ClientEncoding::Utf8);
    /// ```
    pub fn wire_encoding(&self) -> ClientEncoding {
        self.wire
    }

    /// Whether the database is SQL_ASCII: its text columns hold client-encoded bytes, to
    /// be read and written with [`RawText`].
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// assert!(SessionEncoding::new("SQL_ASCII", ClientEncoding::Utf8).is_sql_ascii());
    /// ```
    pub fn is_sql_ascii(&self) -> bool {
        self.wire == ClientEncoding::SqlAscii
    }

    /// The database encoding as a codec, when pgdap has its table (every encoding of the
    /// vendor's table that a database can use, except SQL_ASCII).
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// let s = SessionEncoding::new("WIN1252", ClientEncoding::Utf8);
    /// assert_eq!(s.server_codec(), Some(ClientEncoding::Win1252));
    /// assert_eq!(SessionEncoding::new("EUC_JP", ClientEncoding::Utf8).server_codec(), None);
    /// assert_eq!(SessionEncoding::new("SQL_ASCII", ClientEncoding::Utf8).server_codec(), None);
    /// ```
    pub fn server_codec(&self) -> Option<ClientEncoding> {
        ClientEncoding::from_name(&self.server)
            .filter(|e| e.name() == self.server && *e != ClientEncoding::SqlAscii)
    }

    /// Client bytes → text ([`ClientEncoding::decode`] with the client encoding).
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// let s = SessionEncoding::new("UTF8", ClientEncoding::Latin1);
    /// assert_eq!(s.decode(b"d\xe9j\xe0").unwrap(), "déjà");
    /// ```
    pub fn decode(&self, client_bytes: &[u8]) -> Result<String, EncodingError> {
        self.client.decode(client_bytes)
    }

    /// Text → client bytes ([`ClientEncoding::encode`] with the client encoding).
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// let s = SessionEncoding::new("UTF8", ClientEncoding::Latin1);
    /// assert_eq!(s.encode("déjà").unwrap(), b"d\xe9j\xe0");
    /// assert!(s.encode("€").is_err());
    /// ```
    pub fn encode(&self, text: &str) -> Result<Vec<u8>, EncodingError> {
        self.client.encode(text)
    }

    /// The text of a text column read as [`RawText`] in this session: in a SQL_ASCII
    /// database the bytes are decoded with the client encoding, otherwise they are the
    /// UTF-8 the server sent.
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, RawText, SessionEncoding};
    /// let raw_db = SessionEncoding::new("SQL_ASCII", ClientEncoding::Win1252);
    /// assert_eq!(raw_db.text_from_db(&RawText(b"caf\xe9 \x80".to_vec())).unwrap(), "café €");
    /// let utf8_db = SessionEncoding::new("UTF8", ClientEncoding::Win1252);
    /// assert_eq!(utf8_db.text_from_db(&RawText("café €".into())).unwrap(), "café €");
    /// ```
    pub fn text_from_db(&self, raw: &RawText) -> Result<String, EncodingError> {
        if self.is_sql_ascii() {
            self.client.decode(raw.as_bytes())
        } else {
            ClientEncoding::Utf8.decode(raw.as_bytes())
        }
    }

    /// The [`RawText`] to send for `text` in this session: client-encoded bytes in a
    /// SQL_ASCII database, UTF-8 otherwise. A character the database cannot hold is an
    /// error naming it (checked with pgdap's table of the database encoding when it has
    /// one; otherwise the server checks when the value arrives).
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// let raw_db = SessionEncoding::new("SQL_ASCII", ClientEncoding::Win1252);
    /// assert_eq!(raw_db.text_to_db("café €").unwrap().as_bytes(), b"caf\xe9 \x80");
    /// let win_db = SessionEncoding::new("WIN1252", ClientEncoding::Utf8);
    /// assert_eq!(win_db.text_to_db("café").unwrap().as_bytes(), "café".as_bytes());
    /// assert!(win_db.text_to_db("Жук").is_err());
    /// ```
    pub fn text_to_db(&self, text: &str) -> Result<RawText, EncodingError> {
        self.check_representable(text)?;
        if self.is_sql_ascii() {
            RawText::encode(self.client, text)
        } else {
            Ok(RawText(text.as_bytes().to_vec()))
        }
    }

    /// Checks, without asking the server, that the database can hold `text`: in a
    /// SQL_ASCII database that the client encoding can represent it (its bytes are what
    /// gets stored), otherwise that the database encoding can. Returns `Ok(false)` when
    /// pgdap has no table of the database encoding (use [`check_representable`], which
    /// then asks the server).
    ///
    /// ```
    /// use pgdap::encoding::{ClientEncoding, SessionEncoding};
    /// let win_db = SessionEncoding::new("WIN1252", ClientEncoding::Utf8);
    /// assert_eq!(win_db.check_representable("café €").unwrap(), true);
    /// let err = win_db.check_representable("Жук").unwrap_err();
    /// assert_eq!(err.character(), Some('Ж'));
    /// assert_eq!(SessionEncoding::new("KOI8R", ClientEncoding::Utf8).check_representable("Жук").unwrap(), false);
    /// ```
    pub fn check_representable(&self, text: &str) -> Result<bool, EncodingError> {
        let codec = if self.is_sql_ascii() {
            Some(self.client)
        } else {
            self.server_codec()
        };
        match codec {
            Some(enc) => enc.encode_cow(text).map(|_| true),
            None => ClientEncoding::Utf8.encode_cow(text).map(|_| false),
        }
    }
}

/// Reads the database encoding and applies what the session needs, after connecting:
/// for a SQL_ASCII database `SET client_encoding TO 'SQL_ASCII'` (so bytes in the client
/// encoding pass through unvalidated both ways), otherwise `client_encoding` stays (or is
/// set back to) UTF8, the only encoding tokio-postgres can read. Returns what the session
/// is; one round trip, two when `client_encoding` has to change.
///
/// Run it again after `RESET ALL` or `DISCARD ALL`, which restore `client_encoding` to
/// the UTF8 tokio-postgres asked for at startup.
///
/// ```no_run
/// # async fn run(client: &tokio_postgres::Client) -> Result<(), pgdap::encoding::SessionEncodingError> {
/// use pgdap::encoding::{prepare_session, ClientEncoding};
///
/// let session = prepare_session(client, ClientEncoding::Win1252).await?;
/// if session.is_sql_ascii() {
///     // text columns carry WIN1252 bytes: use RawText
/// }
/// # Ok(()) }
/// ```
pub async fn prepare_session(
    client: &Client,
    client_encoding: ClientEncoding,
) -> Result<SessionEncoding, SessionEncodingError> {
    let messages = client
        .simple_query(
            "SELECT current_setting('server_encoding'), current_setting('client_encoding')",
        )
        .await
        .map_err(SessionEncodingError::Query)?;
    let (server, wire_now) = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((row.get(0), row.get(1))),
            _ => None,
        })
        .ok_or(SessionEncodingError::NoServerEncoding)?;
    let server = server.ok_or(SessionEncodingError::NoServerEncoding)?;
    apply_session_encoding(client, client_encoding, server, wire_now).await
}

/// [`prepare_session`] for a caller that already knows the session's `server_encoding`
/// and `client_encoding` (the ParameterStatus values the server reported at start-up, e.g.
/// from `tokio_postgres::Connection::parameter`): no query unless `client_encoding` must
/// change (SQL_ASCII databases).
///
/// ```no_run
/// # async fn run(client: &tokio_postgres::Client) -> Result<(), pgdap::encoding::SessionEncodingError> {
/// use pgdap::encoding::{apply_session_encoding, ClientEncoding};
/// let session = apply_session_encoding(client, ClientEncoding::Latin1, "UTF8", Some("UTF8")).await?;
/// assert!(!session.is_sql_ascii());
/// # Ok(()) }
/// ```
pub async fn apply_session_encoding(
    client: &Client,
    client_encoding: ClientEncoding,
    server_encoding: &str,
    wire_now: Option<&str>,
) -> Result<SessionEncoding, SessionEncodingError> {
    let session = SessionEncoding::new(server_encoding, client_encoding);
    if wire_now != Some(session.wire_encoding().name()) {
        client
            .batch_execute(&format!(
                "SET client_encoding TO '{}'",
                session.wire_encoding().name()
            ))
            .await
            .map_err(SessionEncodingError::Query)?;
    }
    Ok(session)
}

/// Checks that the database can store `text`, with a clear error instead of mojibake:
/// offline with PostgreSQL's tables when pgdap has them
/// ([`SessionEncoding::check_representable`]), otherwise by asking the server to convert
/// the text into the database encoding (`convert_to($1, server_encoding)`).
///
/// ```no_run
/// # async fn run(client: &tokio_postgres::Client) -> Result<(), pgdap::encoding::SessionEncodingError> {
/// use pgdap::encoding::{check_representable, prepare_session, ClientEncoding};
///
/// let session = prepare_session(client, ClientEncoding::Utf8).await?;
/// // In a WIN1252 database:
/// let err = check_representable(client, &session, "Жук").await.unwrap_err();
/// assert!(err.to_string().contains("U+0416"));
/// # Ok(()) }
/// ```
pub async fn check_representable(
    client: &Client,
    session: &SessionEncoding,
    text: &str,
) -> Result<(), SessionEncodingError> {
    let not_representable = |source| SessionEncodingError::NotRepresentable {
        database_encoding: session.server.clone(),
        source,
    };
    if session
        .check_representable(text)
        .map_err(not_representable)?
    {
        return Ok(());
    }
    match client
        .query_one(
            "SELECT convert_to($1::text, $2::text::name)",
            &[&text, &session.server],
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => match e.as_db_error() {
            Some(db)
                if *db.code() == SqlState::UNTRANSLATABLE_CHARACTER
                    || *db.code() == SqlState::CHARACTER_NOT_IN_REPERTOIRE =>
            {
                Err(SessionEncodingError::RejectedByServer {
                    database_encoding: session.server.clone(),
                    message: db.message().to_string(),
                    source: e,
                })
            }
            _ => Err(SessionEncodingError::Query(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_encoding_follows_the_database() {
        for server in ["UTF8", "WIN1252", "LATIN1", "EUC_JP", "KOI8R"] {
            let s = SessionEncoding::new(server, ClientEncoding::Win1252);
            assert_eq!(s.wire_encoding(), ClientEncoding::Utf8, "{server}");
        }
        let s = SessionEncoding::new("SQL_ASCII", ClientEncoding::Gbk);
        assert_eq!(s.wire_encoding(), ClientEncoding::SqlAscii);
    }

    #[test]
    fn server_codec_only_for_exact_backend_names() {
        assert_eq!(
            SessionEncoding::new("ISO_8859_5", ClientEncoding::Utf8).server_codec(),
            Some(ClientEncoding::Iso8859_5)
        );
        assert_eq!(
            SessionEncoding::new("WIN1258", ClientEncoding::Utf8).server_codec(),
            Some(ClientEncoding::Win1258)
        );
        // server_encoding is always canonical; an alias is not what a server reports.
        assert_eq!(
            SessionEncoding::new("win1252", ClientEncoding::Utf8).server_codec(),
            None
        );
    }

    #[test]
    fn sql_ascii_database_round_trip() {
        let s = SessionEncoding::new("SQL_ASCII", ClientEncoding::Win1252);
        let raw = s.text_to_db("café déjà vu €").unwrap();
        assert_eq!(raw.as_bytes(), b"caf\xe9 d\xe9j\xe0 vu \x80");
        assert_eq!(s.text_from_db(&raw).unwrap(), "café déjà vu €");
        let err = s.text_to_db("Жук").unwrap_err();
        assert_eq!(err.encoding(), ClientEncoding::Win1252);
    }

    #[test]
    fn utf8_database_latin1_client() {
        let s = SessionEncoding::new("UTF8", ClientEncoding::Latin1);
        // The database holds anything; the client's bytes are what may fail.
        assert!(s.check_representable("日本").unwrap());
        assert!(s.encode("日本").is_err());
        assert!(s.check_representable("a\0").is_err());
    }
}
