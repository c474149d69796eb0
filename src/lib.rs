#![doc = include_str!("../README.md")]
//!
//! ## Data flow
//!
//! Access Point text ([`AccessPoint`]) → environment map ([`Environment`]) → resolved
//! settings ([`Settings`]) → TLS context ([`tls::TlsContext`]) → start-up protocol (the
//! checks on what the server sends before the session is ready) → connect sequence
//! ([`Connector`]) → session ([`Session`]) → pool, doctor, integrations. The map of the
//! modules, and which one each kind of change goes in, is docs/architecture.md.

// No unsafe code, except one audited FFI call in `tls::certmode` (OpenSSL's certificate
// callback, which rust-openssl does not wrap, for libpq's sslcertmode=require).
#![deny(unsafe_code)]

pub mod access_point;
pub mod connect;
pub mod credentials;
pub mod doctor;
pub mod encoding;
pub mod env;
pub mod error;
mod file;
pub mod integrations;
pub mod pool;
pub mod secret;
pub mod session_info;
mod startup;
pub mod tls;

pub use access_point::AccessPoint;
#[allow(deprecated)]
pub use connect::Options;
pub use connect::{connect, Config, ConnectOptions, Connected, Connector, Session};
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
