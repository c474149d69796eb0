//! Adapters for the Rust PostgreSQL ecosystem, each behind the cargo feature of its name.
//!
//! Every adapter opens its connections through pgdap's connect sequence — libpq's
//! attempts for the sslmode with the allow/prefer fallbacks ([`Plan`](crate::connect::Plan)),
//! `PGAUTH=cert`, the `PGCLIENTENCODING` set-up, pgdap's typed errors, notices and a
//! [`CancelToken`](crate::connect::CancelToken) — so a service keeps its pool or ORM and
//! gets the operator's settings applied exactly as `psql` would.
//!
//! | feature | what | example |
//! |---|---|---|
//! | `bb8` | [`bb8::SessionManager`], a `bb8::ManageConnection` of [`Session`](crate::Session)s | `examples/bb8.rs` |
//! | `diesel-async` | [`diesel_async`]: `AsyncPgConnection` on a pgdap connection, and diesel-async's own bb8 pool | `examples/diesel_async.rs` |
//! | `postgres` | [`blocking`]: a synchronous `postgres::Client` | `examples/blocking.rs` |
//!
//! ## deadpool-postgres
//!
//! There is no `deadpool-postgres` adapter: [`Pool`](crate::Pool) *is* the deadpool
//! route (deadpool's managed pool, the engine of `deadpool-postgres`, with pgdap's own
//! manager). `deadpool_postgres::Manager::from_connect` does accept a custom connect
//! step, but its `Connect` trait must return a `tokio_postgres::Error`, which only
//! tokio-postgres can construct: every pgdap error (the root CA file that does not
//! exist, the revoked certificate, `PGAUTH=cert` without a certificate, both causes of a
//! failed prefer fallback) would have to be dropped or disguised as a timeout. Its
//! pooled `Client` also cannot carry the session's TLS details, client encoding,
//! notices or pgdap's cancel token. A service on deadpool-postgres that only needs TLS
//! verification can hand [`MakeTls`](crate::tls::MakeTls) to `Manager::new` and keep
//! tokio-postgres' single attempt (see [`MakeTls`](crate::tls::MakeTls) for what that
//! loses).

#[cfg(feature = "bb8")]
pub mod bb8;
#[cfg(feature = "postgres")]
pub mod blocking;
#[cfg(feature = "diesel-async")]
pub mod diesel_async;
