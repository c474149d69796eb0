//! `bb8`: a [`bb8::ManageConnection`] whose connections are pgdap [`Session`]s, each
//! opened by [`Connector::connect_spawned`] (libpq's sequence with its fallbacks,
//! `PGAUTH=cert`, the `PGCLIENTENCODING` set-up, notices, cancel key).
//!
//! bb8's `get()` never returns the error of a connection it failed to open: it passes
//! it to the pool's error sink and times out ("Timed out in bb8"). Build the pool with
//! `min_idle(Some(1))` and `retry_connection(false)` so `build()` returns pgdap's error
//! for a bad configuration, and give it [`LogErrors`] so later failures are logged with
//! their whole cause chain.
//!
//! ```no_run
//! # async fn run() -> Result<(), pgdap::error::Report> {
//! use pgdap::integrations::bb8::SessionManager;
//!
//! let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
//! let config = pgdap::Config::new(ap, &pgdap::Environment::from_process_env())?;
//! let pool = bb8::Pool::builder()
//!     .max_size(8)
//!     .min_idle(Some(1))          // build() opens one: its error is pgdap's
//!     .retry_connection(false)
//!     .error_sink(Box::new(pgdap::integrations::bb8::LogErrors))
//!     .build(SessionManager::new(pgdap::Connector::new(config)?))
//!     .await?;
//! let session = pool.get().await?;
//! let row = session.client.query_one("select current_user", &[]).await?;
//! # Ok(()) }
//! ```

use crate::connect::{Connector, Session};
use crate::error::Error;

/// Opens bb8's connections with a [`Connector`]; checks them with an empty query.
///
/// ```no_run
/// # fn f(connector: pgdap::Connector) {
/// let manager = pgdap::integrations::bb8::SessionManager::new(connector);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SessionManager {
    connector: Connector,
}

impl SessionManager {
    /// A manager on a connector (whose TLS context serves every connection).
    ///
    /// ```no_run
    /// # fn f(config: pgdap::Config) -> Result<(), pgdap::Error> {
    /// let manager = pgdap::integrations::bb8::SessionManager::new(pgdap::Connector::new(config)?);
    /// # Ok(()) }
    /// ```
    pub fn new(connector: Connector) -> SessionManager {
        SessionManager { connector }
    }

    /// The connector.
    ///
    /// ```no_run
    /// # fn f(m: pgdap::integrations::bb8::SessionManager) {
    /// let mode = m.connector().config().settings().mode.value;
    /// # }
    /// ```
    pub fn connector(&self) -> &Connector {
        &self.connector
    }
}

impl bb8::ManageConnection for SessionManager {
    type Connection = Session;
    type Error = Error;

    async fn connect(&self) -> Result<Session, Error> {
        self.connector.connect_spawned().await
    }

    async fn is_valid(&self, session: &mut Session) -> Result<(), Error> {
        session.client.simple_query("").await?;
        Ok(())
    }

    fn has_broken(&self, session: &mut Session) -> bool {
        session.client.is_closed() || session.task.is_finished()
    }
}

/// A `bb8::ErrorSink` logging each connection error with its whole cause chain through
/// `tracing` (bb8's default sink drops them).
///
/// ```no_run
/// # async fn run(m: pgdap::integrations::bb8::SessionManager) -> Result<(), pgdap::Error> {
/// let pool = bb8::Pool::builder()
///     .error_sink(Box::new(pgdap::integrations::bb8::LogErrors))
///     .build(m)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LogErrors;

impl bb8::ErrorSink<Error> for LogErrors {
    fn sink(&self, error: Error) {
        tracing::warn!(error = %error.chain(), "bb8 could not open or check a connection");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<Error>> {
        Box::new(*self)
    }
}
