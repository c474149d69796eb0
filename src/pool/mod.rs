//! A connection pool built from the same [`Config`]/[`Connector`] as single connections.
//!
//! Every connection of the pool is opened by [`Connector::connect_spawned`], so it follows
//! exactly the same rules as a single connection: libpq's sslmode sequence and fallbacks,
//! `PGAUTH=cert`, the TLS context built once per configuration (and rebuilt when the
//! certificate files change), keepalives, and the `PGCLIENTENCODING` set-up of the session.
//!
//! ```no_run
//! # async fn run() -> Result<(), pgdap::PoolError> {
//! let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
//! let config = pgdap::Config::new(ap, &pgdap::Environment::from_process_env())?;
//! let pool = pgdap::Pool::from_config(config, pgdap::PoolOptions::default())?;
//! let session = pool.get().await?; // returned to the pool when dropped
//! let row = session.client.query_one("select 1", &[]).await.map_err(pgdap::Error::Query)?;
//! # Ok(()) }
//! ```
//!
//! ## Why deadpool
//!
//! The pool is [deadpool](https://docs.rs/deadpool)'s managed pool (`deadpool::managed`,
//! the engine of `deadpool-postgres`) driven by our own manager, rather than `bb8` or
//! `deadpool-postgres` itself:
//!
//! - `deadpool-postgres` and `bb8-postgres` open connections with
//!   `tokio_postgres::Config::connect`, which would bypass pgdap's connect sequence (libpq's
//!   fallbacks, `PGAUTH=cert`, the encoding set-up). deadpool's `Manager` trait is two
//!   async functions, `create` (here: [`Connector::connect_spawned`]) and `recycle` (here:
//!   the [`HealthCheck`]), so nothing else sits between the pool and the connector.
//! - A checkout of an idle connection is a semaphore permit and a pop from a mutex-guarded
//!   queue, with no background task (bb8 runs a reaper task and its `get` goes through
//!   more machinery); that keeps checkout+return in the microseconds (see
//!   `docs/benchmarks.md`).
//! - Separate wait/create/recycle timeouts map directly onto
//!   [`PoolOptions::checkout_timeout`], [`ConnectOptions::connect_timeout`](crate::ConnectOptions) and
//!   [`PoolOptions::health_check_timeout`].
//! - deadpool 0.12 keeps the crate's `rust-version` (1.75); it is maintained together
//!   with `deadpool-postgres`, the most used tokio-postgres pool.
//!
//! ## Failover and reconnects
//!
//! Nothing needs restarting when the server behind the Access Point changes (a virtual
//! address or an HAProxy that moves, a restarted server): a connection the server or the
//! network closed is discarded by the [`HealthCheck`] at its next checkout, a connection
//! that stopped answering fails the check's `select 1` within
//! [`PoolOptions::health_check_timeout`], and the checkout goes on with another idle one
//! or a new connection. A connect that fails (refused, timed out, or a server-side
//! refusal; also, once `PGTARGETSESSIONATTRS` is honoured, a server that fails the target
//! check) is returned to the caller and never pooled.
//!
//! After a failed connect the pool backs off ([`Backoff`]: by default 100 ms doubling to
//! 5 s, with jitter): attempts start at most once per delay, the delay growing with each
//! attempt until one succeeds, and checkouts that would need a new connection in between
//! fail at once with [`PoolError::Unavailable`]
//! (PgBouncer's `server_login_retry` behaviour) instead of adding to a reconnect storm;
//! idle connections are still handed out meanwhile. The jitter spreads the probes of many
//! service instances when a server comes back.
//!
//! ## Metrics
//!
//! [`Pool::status`] returns the gauges (size, idle, in use, waiting) and the counters
//! (connects, connect failures, reconnects, health-check discards, checkouts refused
//! while backing off) as a [`PoolStatus`]. The same changes are `tracing` events with
//! target `pgdap::pool` and the host and the counter's new value as fields:
//!
//! | event | level | fields |
//! |---|---|---|
//! | connected | DEBUG | `connects` |
//! | reconnected (replaces a discarded connection) | INFO | `connects`, `reconnects` |
//! | connect failed; backing off | WARN | `error`, `attempts` (since the last success), `connect_failures`, `retry_in_ms` |
//! | not connecting: backing off | DEBUG | `attempts`, `retry_in_ms`, `backoff_rejections` |
//! | discarding a pooled connection | INFO | `health_check_discards` |
//!
//! No `metrics`-facade dependency: export by copying `status()` into the service's own
//! registry on each scrape.
//!
//! ## Transaction pooling (PgBouncer `pool_mode = transaction`)
//!
//! PgBouncer 1.18 lends a server connection for one transaction only, so a statement
//! must not outlive it. tokio-postgres' `query`, `query_one`, `execute` and `prepare`
//! with a `&str` use a *named* prepared statement: its Parse and its Bind travel under
//! separate Syncs and may reach different server connections (`prepared statement "sN"
//! does not exist`), and statements left on a server collide with another client's
//! (`already exists`). The recipe, tested in `tests/pgbouncer.rs`:
//!
//! - outside a transaction use `query_typed`/`execute_typed` (one unnamed statement,
//!   parse-bind-execute under one Sync), `simple_query` or `batch_execute`;
//! - in a `transaction()` use the same calls: the server connection is then held until
//!   COMMIT/ROLLBACK.
//!
//! The pool offers no option that makes `query` safe: it hands out the
//! `tokio_postgres::Client` itself, whose `query` always names its statements, and
//! intercepting that would mean re-implementing the client's API. (PgBouncer 1.21+ can
//! track named statements itself with `max_prepared_statements`.)

mod backoff;
mod metrics;

pub use backoff::Backoff;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use tracing::{debug, info, warn};

use crate::connect::{Config, Connector, Session};
use crate::error::Error;
use backoff::{Admission, Gate};
use metrics::Counters;

/// How a pooled connection is checked before it is handed out again.
///
/// A connection the server closed (terminated backend, server restart, idle timeout)
/// is always discarded: its client reports
/// [`is_closed`](tokio_postgres::Client::is_closed) once the connection task has seen the
/// server's goodbye. A query additionally catches a peer that vanished without closing
/// the socket, at the cost of one round trip.
///
/// ```
/// use std::time::Duration;
/// use pgdap::pool::HealthCheck;
/// assert_eq!(HealthCheck::default(), HealthCheck::QueryIfIdle(Duration::from_millis(500)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthCheck {
    /// Only check that the connection is not closed (no round trip).
    Closed,
    /// Check that it is not closed, then run an empty-result `select 1` on every checkout.
    Query,
    /// Check that it is not closed; run `select 1` only when the connection was last
    /// checked out (or created) at least this long ago. Connections in steady use skip
    /// the round trip, as HikariCP's `aliveBypassWindowMs` does. The default, with 500 ms.
    QueryIfIdle(Duration),
}

impl Default for HealthCheck {
    fn default() -> HealthCheck {
        HealthCheck::QueryIfIdle(Duration::from_millis(500))
    }
}

impl HealthCheck {
    /// Whether a connection last used `idle` ago gets the `select 1` round trip.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pgdap::pool::HealthCheck;
    /// let check = HealthCheck::QueryIfIdle(Duration::from_secs(1));
    /// assert!(!check.queries_after(Duration::from_millis(10)));
    /// assert!(check.queries_after(Duration::from_secs(2)));
    /// assert!(HealthCheck::Query.queries_after(Duration::ZERO));
    /// assert!(!HealthCheck::Closed.queries_after(Duration::from_secs(3600)));
    /// ```
    pub fn queries_after(self, idle: Duration) -> bool {
        match self {
            HealthCheck::Closed => false,
            HealthCheck::Query => true,
            HealthCheck::QueryIfIdle(window) => idle >= window,
        }
    }
}

/// Pool settings: size, checkout timeout, health check.
///
/// Connecting itself is tuned by the [`ConnectOptions`](crate::ConnectOptions) of the [`Config`]
/// (connect timeout per attempt, keepalives), exactly as for single connections.
///
/// ```
/// use std::time::Duration;
/// let opts = pgdap::PoolOptions { max_size: 4, ..Default::default() };
/// assert_eq!(opts.checkout_timeout, Some(Duration::from_secs(30)));
/// assert_eq!(opts.reconnect_backoff, pgdap::pool::Backoff::default());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// The most connections open at once (checked out or idle). At least 1.
    pub max_size: usize,
    /// How long [`Pool::get`] waits for a connection when `max_size` are checked out;
    /// `None` waits forever. Opening a new connection is bounded by
    /// [`ConnectOptions::connect_timeout`](crate::ConnectOptions::connect_timeout) per attempt instead,
    /// so that its failure reports the cause (refused, certificate, password) rather than
    /// a timeout. Default 30 s.
    pub checkout_timeout: Option<Duration>,
    /// How idle connections are checked before reuse. Default:
    /// [`HealthCheck::QueryIfIdle`] with 500 ms.
    pub health_check: HealthCheck,
    /// Bound on the health check's query; a connection that does not answer in time is
    /// discarded and the checkout goes on with another one. Default 5 s.
    pub health_check_timeout: Duration,
    /// Backoff between failed connection attempts (see [`Backoff`]): after a failure,
    /// new connections are attempted at most once per jittered delay, and checkouts that
    /// need one in between fail at once with [`PoolError::Unavailable`]. Default: 100 ms
    /// doubling up to 5 s, each delay drawn from the upper half; [`Backoff::OFF`] turns
    /// it off. When `dbserver` lists several servers and this is left at its default, the
    /// pool uses [`Backoff::FAILOVER`] (50 ms up to 500 ms): while no member fits, one
    /// walk over the list at most every half second, and a promoted standby is found
    /// within that.
    pub reconnect_backoff: Backoff,
    /// The longest a connection is kept: older ones are closed when they come back to be
    /// checked out, and a new one is opened (new credentials, a new server behind a
    /// name, a new certificate are then used by every connection within this time).
    /// `None` (the default) keeps connections while they work.
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = pgdap::PoolOptions { max_lifetime: Some(Duration::from_secs(1800)), ..Default::default() };
    /// assert_eq!(opts.max_lifetime, Some(Duration::from_secs(1800)));
    /// ```
    pub max_lifetime: Option<Duration>,
}

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions {
            max_size: 10,
            checkout_timeout: Some(Duration::from_secs(30)),
            health_check: HealthCheck::default(),
            health_check_timeout: Duration::from_secs(5),
            reconnect_backoff: Backoff::default(),
            max_lifetime: None,
        }
    }
}

/// Why a checkout (or building a pool) failed.
///
/// ```
/// let ap = pgdap::AccessPoint::parse("dbengine=postgre\ndbserver=db1\ndbname=d\nusername=u\n")?;
/// let env = pgdap::Environment::from_pairs([("PGMODE", "disable")]).with_default_dir("/nonexistent");
/// let config = pgdap::Config::new(ap, &env)?;
/// let err = pgdap::Pool::from_config(config, pgdap::PoolOptions { max_size: 0, ..Default::default() })
///     .unwrap_err();
/// assert!(matches!(err, pgdap::PoolError::InvalidOptions { .. }));
/// # Ok::<(), pgdap::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Opening a connection (or building the connector) failed; the message is the
    /// connector's, naming the file, variable or server setting at fault.
    #[error(transparent)]
    Connect(#[from] Error),
    /// All `max_size` connections stayed checked out for the whole checkout timeout.
    #[error("timed out after {}s waiting for a pooled connection to \"{host}\": all {max_size} connections are in use (PoolOptions::checkout_timeout, PoolOptions::max_size)", after.as_secs_f64())]
    Timeout {
        /// The server.
        host: String,
        /// The checkout timeout that expired.
        after: Duration,
        /// The pool's size limit.
        max_size: usize,
    },
    /// No connection is attempted now: the last attempts failed and the pool is backing
    /// off ([`PoolOptions::reconnect_backoff`]). Idle connections are still handed out;
    /// this is returned only when a new connection would be needed. `last_error` is the
    /// last attempt's error message (that attempt's checkout returned the error itself).
    #[error("not connecting to \"{host}\" for another {:.3}s: backing off after {attempts} connection attempt(s) that failed or are still under way (PoolOptions::reconnect_backoff); last error: {last_error}", retry_in.as_secs_f64())]
    Unavailable {
        /// The server.
        host: String,
        /// Connection attempts since the last success (failed, or still under way).
        attempts: u32,
        /// Time until the next attempt is allowed.
        retry_in: Duration,
        /// The last attempt's error message.
        last_error: String,
    },
    /// The pool was closed ([`Pool::close`]).
    #[error("the connection pool to \"{host}\" is closed")]
    Closed {
        /// The server.
        host: String,
    },
    /// The pool options are unusable.
    #[error("invalid pool options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
}

/// Why the manager did not create a session.
#[derive(Debug)]
enum CreateError {
    /// The connect failed.
    Connect(Error),
    /// Backing off after failed connects: not attempted.
    BackingOff {
        attempts: u32,
        retry_in: Duration,
        last: Option<Arc<str>>,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::Connect(e) => e.fmt(f),
            CreateError::BackingOff { attempts, .. } => {
                write!(f, "backing off after {attempts} failed connection attempts")
            }
        }
    }
}

/// deadpool's manager: creates sessions through the connector (behind the backoff
/// gate), checks them on recycle, counts both.
struct SessionManager {
    connector: Connector,
    health_check: HealthCheck,
    /// Bounds the health check's query here, not through deadpool's recycle timeout: a
    /// recycle future that deadpool drops could not count the discard.
    health_check_timeout: Duration,
    max_lifetime: Option<Duration>,
    gate: Gate,
    counters: Counters,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("connector", &self.connector)
            .field("health_check", &self.health_check)
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    /// `dbserver` as configured (a list names every member).
    fn host(&self) -> &str {
        self.connector.config().access_point().server()
    }

    /// Drops a pooled connection whose server no longer fits PGTARGETSESSIONATTRS.
    fn role_changed(&self, attrs: crate::env::TargetSessionAttrs) -> RecycleResult<CreateError> {
        self.discard(&format!(
            "the server no longer fits PGTARGETSESSIONATTRS={attrs}"
        ));
        Err(RecycleError::message("server role changed"))
    }

    fn discard(&self, why: &str) {
        let discards = self.counters.discarded();
        info!(
            target: "pgdap::pool",
            host = self.host(),
            health_check_discards = discards,
            "discarding a pooled connection: {why}"
        );
    }
}

impl managed::Manager for SessionManager {
    type Type = Session;
    type Error = CreateError;

    async fn create(&self) -> Result<Session, CreateError> {
        let started = Instant::now();
        let probe = match self.gate.admit(started, fastrand::f64()) {
            Admission::Connect { probe } => probe,
            Admission::Wait {
                attempts,
                retry_in,
                last,
            } => {
                let rejections = self.counters.rejected();
                debug!(
                    target: "pgdap::pool",
                    host = self.host(),
                    attempts,
                    retry_in_ms = retry_in.as_millis() as u64,
                    backoff_rejections = rejections,
                    "not connecting: backing off after failed connects"
                );
                return Err(CreateError::BackingOff {
                    attempts,
                    retry_in,
                    last,
                });
            }
        };
        match self.connector.connect_spawned().await {
            Ok(session) => {
                self.gate.succeeded(Instant::now());
                let (connects, replaced) = self.counters.connected();
                if replaced {
                    info!(
                        target: "pgdap::pool",
                        host = self.host(),
                        connects,
                        reconnects = Counters::get(&self.counters.reconnects),
                        "reconnected: a new connection replaces a lost one"
                    );
                } else {
                    debug!(target: "pgdap::pool", host = self.host(), connects, "connected");
                }
                Ok(session)
            }
            Err(e) => {
                let failures_total = self.counters.connect_failed();
                let (attempts, retry_in) = self.gate.failed(
                    probe,
                    started,
                    Instant::now(),
                    fastrand::f64(),
                    Arc::from(e.to_string()),
                );
                warn!(
                    target: "pgdap::pool",
                    host = self.host(),
                    error = %e,
                    attempts,
                    connect_failures = failures_total,
                    retry_in_ms = retry_in.as_millis() as u64,
                    "connect failed; backing off"
                );
                Err(CreateError::Connect(e))
            }
        }
    }

    async fn recycle(
        &self,
        session: &mut Session,
        metrics: &Metrics,
    ) -> RecycleResult<CreateError> {
        if session.client.is_closed() || session.task.is_finished() {
            self.discard("the connection is closed");
            return Err(RecycleError::message("connection closed"));
        }
        if let Some(max) = self.max_lifetime {
            if metrics.age() >= max {
                debug!(
                    target: "pgdap::pool",
                    host = self.host(),
                    "closing a pooled connection older than PoolOptions::max_lifetime ({max:?})"
                );
                return Err(RecycleError::message("max_lifetime reached"));
            }
        }
        // Each checkout sees its own notices (the callback and the log saw them all).
        session.notices.drain();
        // A server that no longer fits PGTARGETSESSIONATTRS (a primary turned read-only,
        // a standby promoted under a standby pool), by what it reported: no round trip.
        let attrs = self
            .connector
            .config()
            .settings()
            .target_session_attrs
            .value;
        let fits = session.server_role().fits(attrs);
        if fits == Some(false) {
            return self.role_changed(attrs);
        }
        if self.health_check.queries_after(metrics.last_used()) {
            // The server takes a reloaded configuration in (and reports what changed)
            // only when it reads a command: its role as reported with the health check's
            // answer is current. A server that reports no role (before PostgreSQL 14) is
            // asked libpq's question instead of `select 1`.
            let role_query = match fits {
                None => crate::connect::target::state_query(attrs),
                Some(_) => None,
            };
            let query = session
                .client
                .simple_query(role_query.unwrap_or("select 1"));
            match tokio::time::timeout(self.health_check_timeout, query).await {
                Ok(Ok(rows)) => {
                    use crate::connect::target;
                    let fits_now = match role_query {
                        Some(_) => {
                            let state = target::state_from_answer(&target::first_value(&rows));
                            target::decide(attrs, state).is_ok()
                        }
                        None => session.server_role().fits(attrs) != Some(false),
                    };
                    if !fits_now {
                        return self.role_changed(attrs);
                    }
                }
                Ok(Err(e)) => {
                    self.discard(&format!("its health check failed: {e}"));
                    return Err(RecycleError::Backend(CreateError::Connect(Error::Query(e))));
                }
                Err(_) => {
                    self.discard(&format!(
                        "its health check did not answer within {:?}",
                        self.health_check_timeout
                    ));
                    return Err(RecycleError::message("health check timed out"));
                }
            }
        }
        Ok(())
    }

    fn detach(&self, _session: &mut Session) {}
}

/// A pool of sessions for one configuration. Cheap to clone (all clones share the pool).
///
/// ```no_run
/// # async fn run() -> Result<(), pgdap::PoolError> {
/// let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
/// let config = pgdap::Config::new(ap, &pgdap::Environment::from_process_env())?;
/// let pool = pgdap::Pool::new(pgdap::Connector::new(config)?, pgdap::PoolOptions::default())?;
/// let session = pool.get().await?;
/// let user: String = session
///     .client
///     .query_one("select current_user", &[])
///     .await
///     .map_err(pgdap::Error::Query)?
///     .get(0);
/// drop(session); // back to the pool
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: managed::Pool<SessionManager>,
    checkout_timeout: Option<Duration>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("connector", &self.inner.manager().connector)
            .field("status", &self.status())
            .finish()
    }
}

impl Pool {
    /// Builds a pool on a connector (which keeps its TLS context for every connection of
    /// the pool). No connection is opened until the first [`get`](Pool::get).
    ///
    /// ```
    /// let ap = pgdap::AccessPoint::parse("dbengine=postgre\ndbserver=db1\ndbname=d\nusername=u\n")?;
    /// let env = pgdap::Environment::from_pairs([("PGMODE", "disable")]).with_default_dir("/nonexistent");
    /// let connector = pgdap::Connector::new(pgdap::Config::new(ap, &env)?)?;
    /// let pool = pgdap::Pool::new(connector, pgdap::PoolOptions::default())?;
    /// assert_eq!(pool.status().size, 0);
    /// # Ok::<(), pgdap::PoolError>(())
    /// ```
    pub fn new(connector: Connector, options: PoolOptions) -> Result<Pool, PoolError> {
        if options.max_size == 0 {
            return Err(PoolError::InvalidOptions {
                reason: "max_size must be at least 1".into(),
            });
        }
        if !options.reconnect_backoff.is_off()
            && options.reconnect_backoff.max < options.reconnect_backoff.initial
        {
            return Err(PoolError::InvalidOptions {
                reason: "reconnect_backoff.max must not be less than reconnect_backoff.initial"
                    .into(),
            });
        }
        let several = connector.access_point().hosts().len() > 1;
        let backoff = if several && options.reconnect_backoff == Backoff::default() {
            Backoff::FAILOVER
        } else {
            options.reconnect_backoff
        };
        let manager = SessionManager {
            connector,
            health_check: options.health_check,
            health_check_timeout: options.health_check_timeout,
            max_lifetime: options.max_lifetime,
            gate: Gate::new(backoff),
            counters: Counters::default(),
        };
        let inner = managed::Pool::builder(manager)
            .max_size(options.max_size)
            .wait_timeout(options.checkout_timeout)
            // The most recently returned connection first: it is the likeliest to be
            // alive and skips the health check's round trip (HealthCheck::QueryIfIdle).
            .queue_mode(managed::QueueMode::Lifo)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| PoolError::InvalidOptions {
                reason: e.to_string(),
            })?;
        Ok(Pool {
            inner,
            checkout_timeout: options.checkout_timeout,
        })
    }

    /// Builds the connector (reading the certificate files once) and the pool on it.
    ///
    /// ```
    /// let ap = pgdap::AccessPoint::parse("dbengine=postgre\ndbserver=db1\ndbname=d\nusername=u\n")?;
    /// let env = pgdap::Environment::from_pairs([("PGMODE", "verify-full")]).with_default_dir("/nonexistent");
    /// let err = pgdap::Pool::from_config(pgdap::Config::new(ap, &env)?, Default::default()).unwrap_err();
    /// assert!(err.to_string().contains("root certificate file"));
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    pub fn from_config(config: Config, options: PoolOptions) -> Result<Pool, PoolError> {
        Pool::new(Connector::new(config)?, options)
    }

    /// Checks a session out: an idle one that passes the [`HealthCheck`] (broken ones
    /// are discarded), else a new one from [`Connector::connect_spawned`] while fewer than
    /// `max_size` are open (or [`PoolError::Unavailable`] at once while backing off after
    /// failed connects), else waits up to the checkout timeout for one to be returned.
    /// Dropping the [`PooledSession`] returns it. Must run inside a tokio runtime (the
    /// connection task is spawned on it).
    ///
    /// ```no_run
    /// # async fn run(pool: pgdap::Pool) -> Result<(), pgdap::PoolError> {
    /// let session = pool.get().await?;
    /// session.client.batch_execute("select 1").await.map_err(pgdap::Error::Query)?;
    /// # Ok(()) }
    /// ```
    pub async fn get(&self) -> Result<PooledSession, PoolError> {
        match self.inner.get().await {
            Ok(object) => Ok(PooledSession(object)),
            Err(e) => Err(self.map_error(e)),
        }
    }

    fn host(&self) -> String {
        self.inner
            .manager()
            .connector
            .config()
            .access_point()
            .server()
            .to_string()
    }

    fn map_error(&self, e: managed::PoolError<CreateError>) -> PoolError {
        match e {
            managed::PoolError::Backend(CreateError::Connect(e)) => PoolError::Connect(e),
            managed::PoolError::Backend(CreateError::BackingOff {
                attempts,
                retry_in,
                last,
            }) => PoolError::Unavailable {
                host: self.host(),
                attempts,
                retry_in,
                last_error: last.map(|m| m.to_string()).unwrap_or_default(),
            },
            managed::PoolError::Timeout(_) => PoolError::Timeout {
                host: self.host(),
                after: self.checkout_timeout.unwrap_or_default(),
                max_size: self.inner.status().max_size,
            },
            managed::PoolError::Closed => PoolError::Closed { host: self.host() },
            managed::PoolError::NoRuntimeSpecified => PoolError::InvalidOptions {
                reason: "no async runtime for the pool's timeouts".into(),
            },
            managed::PoolError::PostCreateHook(e) => PoolError::InvalidOptions {
                reason: format!("post-create hook failed: {e}"),
            },
        }
    }

    /// The pool's gauges (size, idle, in use, waiting) and counters (connects, connect
    /// failures, reconnects, health-check discards, checkouts refused while backing off).
    ///
    /// ```no_run
    /// # async fn run(pool: pgdap::Pool) -> Result<(), pgdap::PoolError> {
    /// let session = pool.get().await?;
    /// let status = pool.status();
    /// assert_eq!(status.in_use, 1);
    /// assert_eq!(status.size, status.idle + status.in_use);
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> PoolStatus {
        let s = self.inner.status();
        let c = &self.inner.manager().counters;
        PoolStatus {
            max_size: s.max_size,
            size: s.size,
            available: s.available,
            idle: s.available,
            in_use: s.size.saturating_sub(s.available),
            waiting: s.waiting,
            connects: Counters::get(&c.connects),
            connect_failures: Counters::get(&c.connect_failures),
            reconnects: Counters::get(&c.reconnects),
            health_check_discards: Counters::get(&c.health_check_discards),
            backoff_rejections: Counters::get(&c.backoff_rejections),
        }
    }

    /// The connector every connection of the pool is opened with (its
    /// [`tls_reloader`](Connector::tls_reloader) reports certificate rotation errors).
    ///
    /// ```no_run
    /// # fn run(pool: pgdap::Pool) {
    /// if let Some(e) = pool.connector().tls_reloader().last_error() {
    ///     eprintln!("certificate files changed but did not load: {e}");
    /// }
    /// # }
    /// ```
    pub fn connector(&self) -> &Connector {
        &self.inner.manager().connector
    }

    /// Closes the pool: idle connections are closed, waiting and later checkouts fail with
    /// [`PoolError::Closed`], and checked-out sessions are closed when dropped.
    ///
    /// ```no_run
    /// # async fn run(pool: pgdap::Pool) {
    /// pool.close();
    /// assert!(matches!(pool.get().await, Err(pgdap::PoolError::Closed { .. })));
    /// # }
    /// ```
    pub fn close(&self) {
        self.inner.close();
    }
}

/// A snapshot of the pool's gauges and counters ([`Pool::status`]).
///
/// Gauges describe the moment; counters only grow, from the pool's creation (compute
/// rates from two snapshots). The same changes are logged as `tracing` events with
/// target `pgdap::pool` (see the [module documentation](crate::pool#metrics)).
///
/// ```no_run
/// # fn run(pool: pgdap::Pool) {
/// let s = pool.status();
/// println!(
///     "{} open of {} ({} idle, {} in use), {} waiting; {} connects, {} failed, {} reconnects, {} discarded",
///     s.size, s.max_size, s.idle, s.in_use, s.waiting,
///     s.connects, s.connect_failures, s.reconnects, s.health_check_discards
/// );
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// The size limit.
    pub max_size: usize,
    /// Connections open (idle or checked out).
    pub size: usize,
    /// Idle connections (the same as [`idle`](PoolStatus::idle); kept for existing users).
    pub available: usize,
    /// Idle connections.
    pub idle: usize,
    /// Connections checked out.
    pub in_use: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
    /// Connections opened (counter).
    pub connects: u64,
    /// Connection attempts that failed, the connector's error returned to the caller
    /// (counter).
    pub connect_failures: u64,
    /// Connections opened to replace one the health check discarded (counter).
    pub reconnects: u64,
    /// Connections the health check discarded: closed by the server or the network, or
    /// not answering `select 1` (counter).
    pub health_check_discards: u64,
    /// Checkouts refused with [`PoolError::Unavailable`] while backing off (counter).
    pub backoff_rejections: u64,
}

/// A session checked out of a [`Pool`]; dereferences to [`Session`] and goes back to the
/// pool when dropped.
///
/// A session goes back as it is: session state the application changed (`SET`,
/// temporary tables, an open `LISTEN`) stays with it. Its unread
/// [`notices`](Session::notices) are cleared at the next checkout; its
/// [`cancel_token`](Session::cancel_token) cancels over TLS when the session is encrypted. Use [`discard`](PooledSession::discard)
/// for a session that must not be reused.
///
/// ```no_run
/// # async fn run(pool: pgdap::Pool) -> Result<(), pgdap::PoolError> {
/// let session = pool.get().await?;
/// let encrypted = session.tls.is_some();
/// let n: i32 = session.client.query_one("select 1", &[]).await.map_err(pgdap::Error::Query)?.get(0);
/// # Ok(()) }
/// ```
pub struct PooledSession(managed::Object<SessionManager>);

impl PooledSession {
    /// Takes the session out of the pool for good (the pool may open another one in its
    /// place).
    ///
    /// ```no_run
    /// # async fn run(pool: pgdap::Pool) -> Result<(), pgdap::PoolError> {
    /// let session: pgdap::Session = pool.get().await?.detach();
    /// # Ok(()) }
    /// ```
    pub fn detach(self) -> Session {
        managed::Object::take(self.0)
    }

    /// Closes the session instead of returning it (e.g. after changing session state the
    /// next user must not see).
    ///
    /// ```no_run
    /// # async fn run(pool: pgdap::Pool) -> Result<(), pgdap::PoolError> {
    /// let session = pool.get().await?;
    /// session.client.batch_execute("set search_path = audit").await.map_err(pgdap::Error::Query)?;
    /// session.discard();
    /// # Ok(()) }
    /// ```
    pub fn discard(self) {
        // Dropping the client ends the connection task, which says goodbye to the server.
        drop(self.detach());
    }
}

impl Deref for PooledSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

impl DerefMut for PooledSession {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.0
    }
}

impl fmt::Debug for PooledSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledSession")
            .field("tls", &self.0.tls)
            .field("encoding", &self.0.encoding)
            .field("closed", &self.0.client.is_closed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_window_decides_the_round_trip() {
        let check = HealthCheck::QueryIfIdle(Duration::from_millis(500));
        assert!(!check.queries_after(Duration::from_millis(499)));
        assert!(check.queries_after(Duration::from_millis(500)));
        assert!(HealthCheck::Query.queries_after(Duration::ZERO));
        assert!(!HealthCheck::Closed.queries_after(Duration::MAX));
    }

    #[test]
    fn zero_size_is_refused() {
        let ap = crate::access_point::AccessPoint::parse(
            "dbengine=postgre\ndbserver=h\ndbname=d\nusername=u\n",
        );
        let env = crate::env::Environment::from_pairs([("PGMODE", "disable")])
            .with_default_dir("/nonexistent");
        let config = match ap.and_then(|ap| Config::new(ap, &env)) {
            Ok(c) => c,
            Err(e) => panic!("config: {e}"),
        };
        let opts = PoolOptions {
            max_size: 0,
            ..Default::default()
        };
        match Pool::from_config(config, opts) {
            Err(PoolError::InvalidOptions { reason }) => assert!(reason.contains("max_size")),
            other => panic!("expected InvalidOptions, got {other:?}"),
        }
    }
}
