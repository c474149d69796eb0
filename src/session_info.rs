//! What a session is: encryption, server, user, database, encodings, application name,
//! and the server's notices — the JSON object of the `connect` example (docs/design.md §10).

use serde::Serialize;

use crate::connect::Notice;
use crate::connect::Session;
use crate::encoding::SessionEncoding;
use crate::error::Result;
use crate::tls::TlsSession;

/// A description of a connected session, as the `connect` example prints it.
///
/// ```no_run
/// # async fn run(session: pgdap::Session) -> Result<(), pgdap::Error> {
/// let mut info = pgdap::session_info::SessionInfo::query(&session).await?;
/// info.notices = session.notices.drain();
/// println!("{}", serde_json::to_string(&info).unwrap());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Whether the session is encrypted.
    pub ssl: bool,
    /// TLS version, e.g. "TLSv1.3".
    pub tls_version: Option<String>,
    /// Cipher suite.
    pub cipher: Option<String>,
    /// Whether the server certificate was verified against the root CA file.
    pub server_verified: bool,
    /// `server_version`.
    pub server_version: String,
    /// `session_user`.
    pub user: String,
    /// `current_database()`.
    pub database: String,
    /// `server_encoding`.
    pub server_encoding: String,
    /// The client encoding pgdap applies at the edge (PGCLIENTENCODING).
    pub client_encoding: String,
    /// The encoding on the wire (`client_encoding` of the server session: UTF8, or
    /// SQL_ASCII for a SQL_ASCII database).
    pub wire_encoding: String,
    /// `application_name` as the server reports it (empty when none was set).
    pub application_name: String,
    /// The member of `dbserver` the session went to (with a list, the one chosen); empty
    /// from [`SessionInfo::from_values`] until the caller sets it.
    pub host: String,
    /// The server's notices the caller collected (connect and queries); empty from
    /// [`SessionInfo::query`] and [`SessionInfo::from_values`].
    pub notices: Vec<Notice>,
}

/// The values [`SessionInfo`] reads from the server, in the order of
/// [`SessionInfo::QUERY`]'s columns.
pub type ServerValues = [String; 6];

impl SessionInfo {
    /// The query whose columns are [`ServerValues`] (named, for ORMs that read columns by
    /// name): `server_version`, `session_user`, `current_database`, `server_encoding`,
    /// `client_encoding`, `application_name`.
    pub const QUERY: &'static str = "select current_setting('server_version') as server_version, \
         session_user::text as session_user, current_database()::text as current_database, \
         current_setting('server_encoding') as server_encoding, \
         current_setting('client_encoding') as client_encoding, \
         current_setting('application_name') as application_name";

    /// Runs [`SessionInfo::QUERY`] on the session and combines it with what TLS
    /// negotiated.
    pub async fn query(session: &Session) -> Result<SessionInfo> {
        let row = session.client.query_one(SessionInfo::QUERY, &[]).await?;
        let values = [0, 1, 2, 3, 4, 5].map(|i| row.get::<_, String>(i));
        let mut info = SessionInfo::from_values(session.tls.as_ref(), &session.encoding, values);
        info.host = session.host().to_string();
        Ok(info)
    }

    /// Builds the description from [`SessionInfo::QUERY`]'s values, read by any client
    /// (the adapters' examples: `postgres`, diesel-async).
    ///
    /// ```
    /// let enc = pgdap::encoding::SessionEncoding::new("UTF8", pgdap::encoding::ClientEncoding::Utf8);
    /// let v = ["15.8", "app", "sales", "UTF8", "UTF8", "billing"].map(String::from);
    /// let info = pgdap::session_info::SessionInfo::from_values(None, &enc, v);
    /// assert!(!info.ssl);
    /// assert_eq!(info.application_name, "billing");
    /// ```
    pub fn from_values(
        tls: Option<&TlsSession>,
        encoding: &SessionEncoding,
        values: ServerValues,
    ) -> SessionInfo {
        let [server_version, user, database, server_encoding, wire_encoding, application_name] =
            values;
        SessionInfo {
            ssl: tls.is_some(),
            tls_version: tls.map(|t| t.version.clone()),
            cipher: tls.map(|t| t.cipher.clone()),
            server_verified: tls.is_some_and(|t| t.verified),
            server_version,
            user,
            database,
            server_encoding,
            client_encoding: encoding.client_encoding().name().to_string(),
            wire_encoding,
            application_name,
            host: String::new(),
            notices: Vec::new(),
        }
    }
}
