//! `bb8`: a [`bb8::ManageConnection`] whose connections are pgdap [`Session`]s, each
//! opened by [`Connector::connect_spawned`] (libpq's sequence with its fallbacks,
//! `PGAUTH=cert`, the `PGCLIENTENCODING` set-up, notices, cancel key).
//!
//! ```no_run
//! # async fn run() -> Result<(), pgdap::error::Report> {
//! use pgdap::integrations::bb8::SessionManager;
//!
//! let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
//! let config = pgdap::Config::new(ap, &pgdap::Environment::from_process_env())?;
//! let pool = bb8::Pool::builder()
//!     .max_size(8)
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
