//! libpq's order of attempts for each sslmode (`PQconnectPoll`), and its retry rules,
//! independent of how one attempt is made, so every way of connecting (async, blocking,
//! adapters) follows the same sequence.
//!
//! | PGMODE | attempts (libpq 15) |
//! |---|---|
//! | disable | plaintext |
//! | allow | plaintext; if the server refuses it (an error response), SSL |
//! | prefer | SSL (plaintext on the same socket if the server answers 'N'); if the SSL attempt fails (handshake, verification, or an error response while encrypted), plaintext |
//! | require, verify-ca, verify-full | SSL only |
//!
//! Under `PGAUTH=cert` allow and prefer act as require: certificate authentication only
//! exists over SSL, so a plaintext session could never be the right outcome.

use std::future::Future;

use tracing::warn;

use crate::env::{AuthMethod, SslMode};
use crate::error::Error;

/// One connection attempt's use of SSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// No SSLRequest.
    Plain,
    /// SSLRequest; plaintext on the same socket if the server answers 'N'.
    SslPreferred,
    /// SSLRequest; 'N' is an error.
    SslRequired,
}

impl Attempt {
    /// "without SSL" / "with SSL", for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Attempt::Plain => "without SSL",
            Attempt::SslPreferred | Attempt::SslRequired => "with SSL",
        }
    }

    /// The tokio-postgres sslmode that makes one attempt of this kind.
    pub fn tokio_postgres_mode(self) -> tokio_postgres::config::SslMode {
        match self {
            Attempt::Plain => tokio_postgres::config::SslMode::Disable,
            Attempt::SslPreferred => tokio_postgres::config::SslMode::Prefer,
            Attempt::SslRequired => tokio_postgres::config::SslMode::Require,
        }
    }
}

/// The attempts of one connection: the first, and the retry libpq may make.
///
/// ```
/// use pgdap::connect::{Attempt, Plan};
/// let plan = Plan::new(pgdap::SslMode::Prefer, pgdap::AuthMethod::Password);
/// assert_eq!((plan.first, plan.retry), (Attempt::SslPreferred, Some(Attempt::Plain)));
/// let cert = Plan::new(pgdap::SslMode::Prefer, pgdap::AuthMethod::Cert);
/// assert_eq!((cert.first, cert.retry), (Attempt::SslRequired, None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The sslmode.
    pub mode: SslMode,
    /// The first attempt.
    pub first: Attempt,
    /// The retry after a failure that libpq's rules allow to be retried.
    pub retry: Option<Attempt>,
}

impl Plan {
    /// libpq's attempts for a mode; under `PGAUTH=cert` never a plaintext one.
    pub fn new(mode: SslMode, auth: AuthMethod) -> Plan {
        let cert_auth = auth == AuthMethod::Cert;
        let (first, retry) = match (mode, cert_auth) {
            (SslMode::Disable, _) => (Attempt::Plain, None),
            (SslMode::Allow | SslMode::Prefer, true) => (Attempt::SslRequired, None),
            (SslMode::Allow, false) => (Attempt::Plain, Some(Attempt::SslPreferred)),
            (SslMode::Prefer, false) => (Attempt::SslPreferred, Some(Attempt::Plain)),
            (SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull, _) => {
                (Attempt::SslRequired, None)
            }
        };
        Plan { mode, first, retry }
    }

    /// The plan on a Unix-domain socket: one plaintext attempt whatever the sslmode, as
    /// libpq never requests SSL over a socket.
    ///
    /// ```
    /// use pgdap::connect::{Attempt, Plan};
    /// let plan = Plan::for_socket(pgdap::SslMode::VerifyFull);
    /// assert_eq!((plan.first, plan.retry), (Attempt::Plain, None));
    /// ```
    pub fn for_socket(mode: SslMode) -> Plan {
        Plan {
            mode,
            first: Attempt::Plain,
            retry: None,
        }
    }

    /// Runs the plan: the first attempt, then the retry when `failure` allows it. Both
    /// errors are kept when both attempts fail ([`Error::RetryFailed`]).
    pub async fn run<T, F, Fut>(self, attempt: F) -> Result<T, Error>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.run_to_failure(attempt).await.map_err(|f| f.error)
    }

    /// [`Plan::run`], keeping the last attempt's [`Failure`] (its [`MoveOn`] says whether
    /// libpq would go on to another address or host).
    pub async fn run_to_failure<T, F, Fut>(self, mut attempt: F) -> Result<T, Failure>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let failure = match attempt(self.first).await {
            Ok(connected) => return Ok(connected),
            Err(failure) => failure,
        };
        let (retry, failure) = self.retry_after(failure)?;
        let result = attempt(retry).await;
        self.after_retry(result, failure, retry)
    }

    /// [`Plan::run`] for blocking attempts (the synchronous `postgres` crate).
    pub fn run_blocking<T>(
        self,
        attempt: impl FnMut(Attempt) -> Result<T, Failure>,
    ) -> Result<T, Error> {
        self.run_blocking_to_failure(attempt).map_err(|f| f.error)
    }

    /// [`Plan::run_to_failure`] for blocking attempts.
    pub fn run_blocking_to_failure<T>(
        self,
        mut attempt: impl FnMut(Attempt) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let failure = match attempt(self.first) {
            Ok(connected) => return Ok(connected),
            Err(failure) => failure,
        };
        let (retry, failure) = self.retry_after(failure)?;
        let result = attempt(retry);
        self.after_retry(result, failure, retry)
    }

    fn retry_after(&self, failure: Failure) -> Result<(Attempt, Failure), Failure> {
        // libpq goes on to the next address or host without the sslmode retry.
        if failure.move_on != MoveOn::Stop {
            return Err(failure);
        }
        match self.retry.filter(|_| failure.retry_allowed(self.mode)) {
            Some(retry) => {
                warn!(
                    error = %failure.error,
                    "attempt {} failed; retrying {} as sslmode={} does",
                    self.first.describe(),
                    retry.describe(),
                    self.mode
                );
                Ok((retry, failure))
            }
            None => {
                warn!(error = %failure.error, "connection failed");
                Err(failure)
            }
        }
    }

    fn after_retry<T>(
        &self,
        result: Result<T, Failure>,
        first: Failure,
        retry: Attempt,
    ) -> Result<T, Failure> {
        match result {
            Ok(connected) => {
                warn!(
                    "connected {} after the attempt {} failed (sslmode={} fallback)",
                    retry.describe(),
                    self.first.describe(),
                    self.mode
                );
                Ok(connected)
            }
            Err(second) => {
                warn!(error = %second.error, "retry failed");
                Err(Failure {
                    error: Error::RetryFailed {
                        first_kind: self.first.describe(),
                        first: Box::new(first.error),
                        retry: Box::new(second.error),
                    },
                    ..second
                })
            }
        }
    }
}

/// How an attempt failed, for the retry decision.
#[derive(Debug)]
pub struct Failure {
    /// The error.
    pub error: Error,
    /// The TLS handshake (or its verification) failed: libpq's failed
    /// `pqsecure_open_client`, after which prefer retries in plaintext.
    pub handshake_failed: bool,
    /// The session was encrypted when it failed (libpq's `ssl_in_use`).
    pub encrypted: bool,
    /// The server sent an error response (libpq: `beresp == 'E'`).
    pub server_refused: bool,
    /// Whether another address or host of `dbserver` is tried after this failure.
    pub move_on: MoveOn,
}

/// What libpq does after a failed attempt when `dbserver` lists several hosts, or a name
/// has several addresses (`PQconnectPoll`'s `try_next_addr` and `try_next_host`).
///
/// ```
/// use pgdap::connect::{Failure, MoveOn};
/// let e = pgdap::Error::Timeout { host: "db1".into(), after: std::time::Duration::from_secs(2) };
/// assert_eq!(Failure::next_address(e).move_on, MoveOn::NextAddress);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MoveOn {
    /// The sequence ends here (libpq's `error_return`): an authentication failure, a
    /// TLS failure after the sslmode's fallback, a protocol violation.
    #[default]
    Stop,
    /// The next address of the host, then the next host: the socket could not be
    /// connected, or PGCONNECT_TIMEOUT expired.
    NextAddress,
    /// The next host, skipping this host's other addresses: the server is not accepting
    /// connections yet (SQLSTATE 57P03), or the session does not fit
    /// PGTARGETSESSIONATTRS.
    NextHost,
}

impl Failure {
    /// A failure before anything of TLS or the server's answer was seen (no retry).
    pub fn fatal(error: Error) -> Failure {
        Failure {
            error,
            handshake_failed: false,
            encrypted: false,
            server_refused: false,
            move_on: MoveOn::Stop,
        }
    }

    /// A failure after which libpq tries the next address ([`MoveOn::NextAddress`]).
    pub fn next_address(error: Error) -> Failure {
        Failure {
            move_on: MoveOn::NextAddress,
            ..Failure::fatal(error)
        }
    }

    /// A failure after which libpq tries the next host ([`MoveOn::NextHost`]).
    pub fn next_host(error: Error) -> Failure {
        Failure {
            move_on: MoveOn::NextHost,
            ..Failure::fatal(error)
        }
    }

    /// libpq's retry rules (`PQconnectPoll`): allow retries with SSL after an error
    /// response to the plaintext attempt; prefer retries in plaintext after a failed
    /// handshake or an error response while encrypted. A TLS alert that arrives after the
    /// handshake (TLS 1.3 client-certificate rejection) is a read failure: no retry.
    pub fn retry_allowed(&self, mode: SslMode) -> bool {
        match mode {
            SslMode::Allow => self.server_refused && !self.encrypted,
            SslMode::Prefer => self.handshake_failed || (self.encrypted && self.server_refused),
            _ => false,
        }
    }
}
