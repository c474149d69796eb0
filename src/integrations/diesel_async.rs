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
//! - its `cancel_token()` is tokio-postgres' (the attempt's sslmode: `prefer` goes on
//!   in plaintext on an 'N' reply): use pgdap's [`CancelToken`] instead, from
//!   [`Established::cancel`] or, for pooled connections, [`Sessions`] (which also keeps
//!   their TLS details, encoding and notices);
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
//! let sessions = pgdap::integrations::diesel_async::Sessions::new();
//! // bb8's get() never returns a connect error (it times out): open one connection in
//! // build(), without retries, to get pgdap's error for a bad configuration.
//! let pool = Pool::builder()
//!     .max_size(8)
//!     .min_idle(Some(1))
//!     .retry_connection(false)
//!     .build(manager(connector, &sessions))
//!     .await?;
//! let mut conn = pool.get().await?;
//! let parts = sessions.for_connection(&mut conn).await?; // TLS, notices, pgdap's cancel token
//! let n = diesel::sql_query("select 1").execute(&mut *conn).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use diesel::ConnectionError;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::AsyncPgConnection;

use crate::connect::{CancelToken, Connector, Notices, Session};
use crate::encoding::SessionEncoding;
use crate::error::{Error, Result};
use crate::tls::TlsSession;

/// A diesel-async connection with what pgdap knows of it: a [`Session`] whose client is
/// an [`AsyncPgConnection`] (its connection task runs on its own and ends when the
/// connection is dropped).
///
/// ```no_run
/// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::error::Report> {
/// let est = pgdap::integrations::diesel_async::connect(&connector).await?;
/// println!("encrypted: {}", est.tls.is_some());
/// # Ok(()) }
/// ```
pub type Established = Session<AsyncPgConnection, ()>;

/// Connects with libpq's sequence and wraps the session in an [`AsyncPgConnection`].
///
/// ```no_run
/// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::error::Report> {
/// use diesel_async::RunQueryDsl;
/// let mut est = pgdap::integrations::diesel_async::connect(&connector).await?;
/// diesel::sql_query("select 1").execute(&mut est.client).await?;
/// # Ok(()) }
/// ```
pub async fn connect(connector: &Connector) -> Result<Established> {
    connect_registered(connector, None).await
}

async fn connect_registered(
    connector: &Connector,
    sessions: Option<&Sessions>,
) -> Result<Established> {
    let session = connector.connect_spawned().await?;
    let cancel = session.cancel_token();
    if let (Some(sessions), Some(token)) = (sessions, &cancel) {
        let parts = SessionParts {
            tls: session.tls.clone(),
            encoding: session.encoding.clone(),
            notices: session.notices.clone(),
            cancel: Some(token.clone()),
            host: session.host().clone(),
        };
        sessions.insert(token.process_id(), parts, session.task.abort_handle());
    }
    // The connection task keeps running on its own: it ends when the client (now the
    // AsyncPgConnection's) is dropped.
    let (client, session) = session.split();
    let connection = AsyncPgConnection::try_from(client)
        .await
        .map_err(|e| Error::Adapter {
            library: "diesel-async",
            source: Box::new(e),
        })?;
    Ok(session.with_client(connection, ()))
}

/// What pgdap knows of one pooled connection (diesel-async's pooled connections cannot
/// carry it): its TLS session, encoding, notices and cancel token.
#[derive(Clone, Debug)]
pub struct SessionParts {
    /// The TLS session, `None` for a plaintext session.
    pub tls: Option<TlsSession>,
    /// The client encoding (PGCLIENTENCODING) and the database's.
    pub encoding: SessionEncoding,
    /// The server's notices from the start-up on.
    pub notices: Notices,
    /// pgdap's cancel token.
    pub cancel: Option<CancelToken>,
    /// The member of `dbserver` the connection went to.
    pub host: crate::access_point::Host,
}

/// The [`SessionParts`] of the connections a pool opened, by server process id. Entries
/// of closed connections are dropped as new ones come in.
///
/// ```no_run
/// # async fn run(pool: diesel_async::pooled_connection::bb8::Pool<diesel_async::AsyncPgConnection>,
/// #     sessions: pgdap::integrations::diesel_async::Sessions) -> Result<(), pgdap::error::Report> {
/// let mut conn = pool.get().await?;
/// let parts = sessions.for_connection(&mut conn).await?.expect("opened by pgdap");
/// let token = parts.cancel.expect("cancel key");
/// tokio::spawn(async move { token.cancel_query().await });
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    map: Arc<Mutex<HashMap<i32, (SessionParts, tokio::task::AbortHandle)>>>,
}

impl Sessions {
    /// An empty registry; pass it to [`manager`] or [`manager_config`].
    ///
    /// ```
    /// let sessions = pgdap::integrations::diesel_async::Sessions::new();
    /// ```
    pub fn new() -> Sessions {
        Sessions::default()
    }

    fn insert(&self, pid: i32, parts: SessionParts, task: tokio::task::AbortHandle) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, (_, task)| !task.is_finished());
            map.insert(pid, (parts, task));
        }
    }

    /// The parts of a pooled connection (one round trip: `pg_backend_pid()`). Take the
    /// cancel token before starting the query to cancel.
    ///
    /// ```no_run
    /// # async fn run(conn: &mut diesel_async::AsyncPgConnection, sessions: pgdap::integrations::diesel_async::Sessions) -> Result<(), pgdap::Error> {
    /// let encrypted = sessions.for_connection(conn).await?.is_some_and(|p| p.tls.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn for_connection(
        &self,
        connection: &mut AsyncPgConnection,
    ) -> Result<Option<SessionParts>> {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Pid {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        let pid = diesel::sql_query("select pg_backend_pid() as pid")
            .get_result::<Pid>(connection)
            .await
            .map_err(|e| Error::Adapter {
                library: "diesel-async",
                source: Box::new(e),
            })?
            .pid;
        Ok(self
            .map
            .lock()
            .ok()
            .and_then(|map| map.get(&pid).map(|(parts, _)| parts.clone())))
    }
}

/// diesel-async's manager configuration whose `custom_setup` connects through pgdap
/// (the pool's connection URL is ignored) and records each connection's
/// [`SessionParts`] in `sessions`.
///
/// ```no_run
/// # fn f(connector: pgdap::Connector) {
/// let sessions = pgdap::integrations::diesel_async::Sessions::new();
/// let config = pgdap::integrations::diesel_async::manager_config(connector, &sessions);
/// # }
/// ```
pub fn manager_config(
    connector: Connector,
    sessions: &Sessions,
) -> ManagerConfig<AsyncPgConnection> {
    let mut config = ManagerConfig::default();
    let sessions = sessions.clone();
    config.custom_setup = Box::new(move |_url| {
        let connector = connector.clone();
        let sessions = sessions.clone();
        Box::pin(async move {
            connect_registered(&connector, Some(&sessions))
                .await
                .map(|established| established.client)
                .map_err(|e| ConnectionError::BadConnection(e.chain().to_string()))
        })
    });
    config
}

/// The manager for diesel-async's pools (`pooled_connection::bb8::Pool::builder().build(..)`).
///
/// ```no_run
/// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::error::Report> {
/// let sessions = pgdap::integrations::diesel_async::Sessions::new();
/// let pool = diesel_async::pooled_connection::bb8::Pool::builder()
///     .build(pgdap::integrations::diesel_async::manager(connector, &sessions))
///     .await?;
/// # Ok(()) }
/// ```
pub fn manager(
    connector: Connector,
    sessions: &Sessions,
) -> AsyncDieselConnectionManager<AsyncPgConnection> {
    let url = format!(
        "pgdap://{}/{}",
        connector.config().access_point().server(),
        connector.config().access_point().dbname()
    );
    AsyncDieselConnectionManager::new_with_config(url, manager_config(connector, sessions))
}
