#![doc = include_str!("../README.md")]
//!
//! ## Data flow
//!
//! Access Point text ([`AccessPoint`]) → environment map ([`Environment`]) → resolved
//! settings ([`Settings`]) → TLS context ([`tls::TlsContext`]) → connect sequence
//! ([`Connector`]) → session ([`Session`]).

pub mod access_point;
pub mod connect;
pub mod doctor;
pub mod encoding;
pub mod env;
pub mod error;
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
