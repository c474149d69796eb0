//! What a session is: encryption, server, user, database, encodings.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::Session;

/// A description of a connected session, as the `connect` example prints it.
///
/// ```no_run
/// # async fn run(session: pgdap::Session) -> Result<(), pgdap::Error> {
/// let info = pgdap::report::SessionInfo::query(&session).await?;
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
}

impl SessionInfo {
    /// Runs one query on the session and combines it with what TLS negotiated.
    pub async fn query(session: &Session) -> Result<SessionInfo> {
        let row = session
            .client
            .query_one(
                "select current_setting('server_version'), session_user::text, \
                 current_database()::text, current_setting('server_encoding'), \
                 current_setting('client_encoding')",
                &[],
            )
            .await
            .map_err(Error::Query)?;
        let tls = session.tls.as_ref();
        Ok(SessionInfo {
            ssl: tls.is_some(),
            tls_version: tls.map(|t| t.version.clone()),
            cipher: tls.map(|t| t.cipher.clone()),
            server_verified: tls.is_some_and(|t| t.verified),
            server_version: row.get(0),
            user: row.get(1),
            database: row.get(2),
            server_encoding: row.get(3),
            client_encoding: session.encoding.client_encoding().name().to_string(),
            wire_encoding: row.get(4),
        })
    }
}
