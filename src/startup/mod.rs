//! The start-up protocol: what the server sends between the first byte and "ready for
//! queries", as pgdap watches it under both kinds of socket (the plaintext
//! [`Wire`](crate::connect::Wire) and the decrypted [`TlsStream`](crate::tls::TlsStream)),
//! and libpq's rules for it.
//!
//! - [`watch`]: the incremental parser of the backend's start-up messages (authentication
//!   requests, the cancel key) and the refusals it applies before tokio-postgres reads a
//!   message: libpq's length bound, the checks below, the SCRAM-SHA-256-PLUS rule;
//! - [`checks`]: libpq's checks of authentication requests (`PGREQUIREAUTH`,
//!   `PGCHANNELBINDING=require`).
//!
//! It sits below TLS and the connect sequence, which both import it, and above the
//! settings it reads: nothing here imports `connect` or `tls`.

pub(crate) mod checks;
pub(crate) mod watch;

#[cfg(fuzzing)]
pub use watch::fuzz_startup;
pub(crate) use watch::{
    watch_decrypted, AuthCheck, BackendKey, StartupError, StartupWatch, Watch, SSL_REQUEST,
};
pub use watch::{AuthRequest, ChannelBindingUnavailable, NoEndPointHash};
