//! # pgdap
//!
//! Connects services to PostgreSQL exactly as an operator configured them: from a
//! Database Access Point (`dbengine=postgre`, `dbserver`, `dbname`, `username`,
//! `password`; port 5432) plus the variables `PGMODE`, `PGROOTCA`, `PGCERT`, `PGKEY`,
//! `PGCRL`, `PGAUTH` and `PGCLIENTENCODING`, with libpq's sslmode semantics.
//!
//! Data flows one way: Access Point text ([`AccessPoint`]) → environment map
//! ([`Environment`]) → resolved settings ([`Settings`]) → TLS context
//! ([`tls::TlsContext`]) → connect sequence ([`Connector`]) → session.
//!
//! ```no_run
//! # async fn run() -> Result<(), pgdap::Error> {
//! let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
//! let env = pgdap::Environment::from_process_env();
//! let connector = pgdap::Connector::new(pgdap::Config::new(ap, &env)?)?;
//! let session = connector.connect_spawned().await?;
//! let n: i32 = session.client.query_one("select 1", &[]).await?.get(0);
//! # Ok(()) }
//! ```

// No unsafe code, except one audited FFI call in `tls::certmode` (OpenSSL's certificate
// callback, which rust-openssl does not wrap, for libpq's sslcertmode=require).
#![deny(unsafe_code)]

pub mod access_point;
pub mod connect;
pub mod doctor;
pub mod encoding;
pub mod env;
pub mod error;
pub mod integrations;
pub mod pool;
pub mod report;
pub mod secret;
pub mod tls;

pub use access_point::AccessPoint;
pub use connect::{connect, Config, Connected, Connector, Options, Session};
pub use env::{AuthMethod, Environment, Settings, Source, SslMode};
pub use error::{Error, Result, ServerRefusal};
pub use pool::{Pool, PoolError, PoolOptions, PooledSession};
pub use secret::Password;
pub use tls::TlsSession;

/// The tokio-postgres crate pgdap links, re-exported so that code naming its types
/// (`Client`, `Row`, `types::ToSql`, `error::SqlState`, ...) needs no dependency of its
/// own at a matching version.
///
/// ```no_run
/// use pgdap::tokio_postgres::{Client, Row};
///
/// async fn users(client: &Client) -> Result<Vec<String>, pgdap::Error> {
///     let rows: Vec<Row> = client.query("select usename::text from pg_user", &[]).await?;
///     Ok(rows.iter().map(|r| r.get(0)).collect())
/// }
/// ```
pub use tokio_postgres;
