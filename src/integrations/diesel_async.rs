//! `diesel-async`: an [`AsyncPgConnection`] on a pgdap connection, and diesel-async's own
//! pool (its bb8 flavour) opening every connection that way through
//! [`ManagerConfig::custom_setup`].
//!
//! Each connection is a [`Connector::connect_spawned`] session (libpq's sequence and
//! fallbacks, `PGAUTH=cert`, keepalives, notices to the log and the connector's
//! callback) handed to [`AsyncPgConnection::try_from`]. What diesel-async itself then
//! does and pgdap cannot change:
//!
//! - it runs `SET TIME ZONE 'UTC'` and `SET CLIENT_ENCODING TO 'UTF8'` on every new
//!   connection. Text on the wire is UTF-8 either way (tokio-postgres only speaks
//!   UTF-8); `PGCLIENTENCODING` conversion stays at the edge with the
//!   [`SessionEncoding`] of [`Established`], but a SQL_ASCII database's raw bytes are
//!   not readable as `String`s through diesel;
//! - its `cancel_token()` is tokio-postgres' (sslmode of the attempt, a new name
//!   lookup): use [`Established::cancel`], pgdap's [`CancelToken`], instead;
//! - errors inside the pool's `custom_setup` must be a `diesel::ConnectionError`:
//!   pgdap's error becomes `ConnectionError::BadConnection` with the whole cause
//!   chain as its text ([`Chain`](crate::error::Chain)).
//!
//! ```no_run
//! # async fn run() -> Result<(), pgdap::error::Report> {
//! use diesel_async::{pooled_connection::bb8::Pool, RunQueryDsl};
//! use pgdap::integrations::diesel_async::manager;
//!
//! let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
//! let connector = pgdap::Connector::new(pgdap::Config::new(ap, &pgdap::Environment::from_process_env())?)?;
//! let pool = Pool::builder().max_size(8).build(manager(connector)).await?;
//! let mut conn = pool.get().await?;
//! let n = diesel::sql_query("select 1").execute(&mut *conn).await?;
//! # Ok(()) }
//! ```

use diesel::ConnectionError;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::AsyncPgConnection;

use crate::connect::{CancelToken, Connector, Notices};
use crate::encoding::SessionEncoding;
use crate::error::{Error, Result};
use crate::tls::TlsSession;

/// A diesel-async connection with what pgdap knows of it.
pub struct Established {
    /// The connection.
    pub connection: AsyncPgConnection,
    /// The TLS session, `None` for a plaintext session.
    pub tls: Option<TlsSession>,
    /// The client encoding (PGCLIENTENCODING) for the application's local byte strings.
    pub encoding: SessionEncoding,
    /// The server's notices from the start-up on.
    pub notices: Notices,
    /// pgdap's cancel token (over TLS for an encrypted session).
    pub cancel: Option<CancelToken>,
}

impl std::fmt::Debug for Established {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Established")
            .field("tls", &self.tls)
            .field("encoding", &self.encoding)
            .field("cancel", &self.cancel)
            .finish_non_exhaustive()
    }
}

/// Connects with libpq's sequence and wraps the session in an [`AsyncPgConnection`].
///
/// ```no_run
/// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::error::Report> {
/// use diesel_async::RunQueryDsl;
/// let mut est = pgdap::integrations::diesel_async::connect(&connector).await?;
/// diesel::sql_query("select 1").execute(&mut est.connection).await?;
/// # Ok(()) }
/// ```
pub async fn connect(connector: &Connector) -> Result<Established> {
    let session = connector.connect_spawned().await?;
    let cancel = session.cancel_token();
    // The connection task keeps running on its own: it ends when the client (now the
    // AsyncPgConnection's) is dropped.
    let connection = AsyncPgConnection::try_from(session.client)
        .await
        .map_err(|e| Error::Adapter {
            library: "diesel-async",
            source: Box::new(e),
        })?;
    Ok(Established {
        connection,
        tls: session.tls,
        encoding: session.encoding,
        notices: session.notices,
        cancel,
    })
}

/// diesel-async's manager configuration whose `custom_setup` connects through pgdap
/// (the pool's connection URL is ignored).
///
/// ```no_run
/// # fn f(connector: pgdap::Connector) {
/// let config = pgdap::integrations::diesel_async::manager_config(connector);
/// # }
/// ```
pub fn manager_config(connector: Connector) -> ManagerConfig<AsyncPgConnection> {
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(move |_url| {
        let connector = connector.clone();
        Box::pin(async move {
            connect(&connector)
                .await
                .map(|established| established.connection)
                .map_err(|e| ConnectionError::BadConnection(e.chain().to_string()))
        })
    });
    config
}

/// The manager for diesel-async's pools (`pooled_connection::bb8::Pool::builder().build(..)`).
///
/// ```no_run
/// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::error::Report> {
/// let pool = diesel_async::pooled_connection::bb8::Pool::builder()
///     .build(pgdap::integrations::diesel_async::manager(connector))
///     .await?;
/// # Ok(()) }
/// ```
pub fn manager(connector: Connector) -> AsyncDieselConnectionManager<AsyncPgConnection> {
    let url = format!(
        "pgdap://{}/{}",
        connector.config().access_point().server(),
        connector.config().access_point().dbname()
    );
    AsyncDieselConnectionManager::new_with_config(url, manager_config(connector))
}
