//! The connect sequence: libpq's `PQconnectPoll` order of attempts for each sslmode,
//! with its fallbacks, mapped onto tokio-postgres.
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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::{Client, Connection, Socket};
use tracing::{debug, info, warn, Instrument};

use crate::access_point::{AccessPoint, PORT};
use crate::encoding::SessionEncoding;
use crate::env::{AuthMethod, Environment, Settings, SslMode};
use crate::error::{Error, Result, ServerRefusal};
use crate::tls::{MakeTls, Probe, TlsContext, TlsFailure, TlsReloader, TlsSession, TlsStream};

/// Connection tuning: timeouts and TCP keepalives.
///
/// The defaults detect a dead server in about 35 seconds instead of Linux's two hours:
/// keepalive probes start after 20 s of silence, every 5 s, and 3 unanswered probes drop
/// the connection; `TCP_USER_TIMEOUT` (Linux) drops it when sent data stays unacknowledged
/// for 30 s. A connection attempt (TCP, TLS and authentication) may take 10 s.
///
/// ```
/// use std::time::Duration;
/// let opts = pgdap::Options { connect_timeout: Duration::from_secs(3), ..Default::default() };
/// assert_eq!(opts.keepalives_idle, Duration::from_secs(20));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bound on each connection attempt, from TCP connect to a ready session.
    pub connect_timeout: Duration,
    /// Turn TCP keepalives on.
    pub keepalives: bool,
    /// Idle time before the first keepalive probe.
    pub keepalives_idle: Duration,
    /// Time between probes.
    pub keepalives_interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub keepalives_retries: u32,
    /// `TCP_USER_TIMEOUT` (Linux only; ignored elsewhere). Zero leaves the OS default.
    pub tcp_user_timeout: Duration,
    /// `application_name` reported to the server, if any.
    pub application_name: Option<String>,
    /// How often, at most, the certificate files are checked for changes (certificate
    /// rotation without a restart). Zero checks before every connection.
    pub reload_interval: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(10),
            keepalives: true,
            keepalives_idle: Duration::from_secs(20),
            keepalives_interval: Duration::from_secs(5),
            keepalives_retries: 3,
            tcp_user_timeout: Duration::from_secs(30),
            application_name: None,
            reload_interval: Duration::from_secs(5),
        }
    }
}

/// Everything needed to connect: the Access Point, the resolved environment, options.
///
/// ```
/// let ap = pgdap::AccessPoint::parse("dbengine=postgre\ndbserver=db1\ndbname=d\nusername=u\n")?;
/// let env = pgdap::Environment::from_pairs([("PGMODE", "require")]).with_default_dir("/nonexistent");
/// let config = pgdap::Config::new(ap, &env)?;
/// assert_eq!(config.settings().mode.value, pgdap::SslMode::Require);
/// # Ok::<(), pgdap::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    access_point: AccessPoint,
    settings: Settings,
    options: Options,
}

impl Config {
    /// Resolves the environment for this Access Point with default options.
    pub fn new(access_point: AccessPoint, env: &Environment) -> Result<Config> {
        let settings = Settings::resolve(env, env.default_dir())?;
        Ok(Config::from_parts(
            access_point,
            settings,
            Options::default(),
        ))
    }

    /// Builds a configuration from already resolved parts.
    pub fn from_parts(access_point: AccessPoint, settings: Settings, options: Options) -> Config {
        Config {
            access_point,
            settings,
            options,
        }
    }

    /// Replaces the options (builder style).
    pub fn with_options(mut self, options: Options) -> Config {
        self.options = options;
        self
    }

    /// The Access Point.
    pub fn access_point(&self) -> &AccessPoint {
        &self.access_point
    }

    /// The resolved environment.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }
}

/// A connection ready for use: the client, the connection task to drive, and what TLS
/// gave it. After spawning the connection, call
/// [`prepare_session`](crate::encoding::prepare_session) to apply PGCLIENTENCODING (or use
/// [`Connector::connect_spawned`], which does both).
pub struct Connected {
    /// The client.
    pub client: Client,
    /// The connection future; spawn it (`tokio::spawn`) or use [`Connector::connect_spawned`].
    pub connection: Connection<Socket, TlsStream<Socket>>,
    /// The TLS session, `None` for a plaintext session.
    pub tls: Option<TlsSession>,
}

/// A client whose connection task is already running, with its encoding set up.
pub struct Session {
    /// The client.
    pub client: Client,
    /// The TLS session, `None` for a plaintext session.
    pub tls: Option<TlsSession>,
    /// The client encoding (PGCLIENTENCODING) and the database's, as
    /// [`prepare_session`](crate::encoding::prepare_session) set them up: convert the
    /// application's local byte strings with it.
    pub encoding: SessionEncoding,
    /// The connection task; it ends when the connection closes.
    pub task: tokio::task::JoinHandle<()>,
}

/// Connects with one configuration, reusing its TLS context for every connection.
///
/// ```no_run
/// # async fn run() -> Result<(), pgdap::Error> {
/// let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
/// let config = pgdap::Config::new(ap, &pgdap::Environment::from_process_env())?;
/// let connector = pgdap::Connector::new(config)?;
/// let session = connector.connect_spawned().await?;
/// let row = session.client.query_one("select 1", &[]).await.map_err(pgdap::Error::Query)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Connector {
    config: Arc<Config>,
    tls: Arc<TlsReloader>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    /// No SSLRequest.
    Plain,
    /// SSLRequest; plaintext on the same socket if the server answers 'N'.
    SslPreferred,
    /// SSLRequest; 'N' is an error.
    SslRequired,
}

impl Attempt {
    fn describe(self) -> &'static str {
        match self {
            Attempt::Plain => "without SSL",
            Attempt::SslPreferred | Attempt::SslRequired => "with SSL",
        }
    }
}

/// How an attempt failed, for the fallback decision.
struct Failure {
    error: Error,
    /// The TLS handshake (or its verification) failed: libpq's failed
    /// `pqsecure_open_client`, after which prefer retries in plaintext.
    handshake_failed: bool,
    /// The session was encrypted when it failed (libpq's `ssl_in_use`).
    encrypted: bool,
    /// The server sent an error response (libpq: `beresp == 'E'`).
    server_refused: bool,
}

impl Failure {
    /// libpq's retry rules (`PQconnectPoll`): allow retries with SSL after an error
    /// response to the plaintext attempt; prefer retries in plaintext after a failed
    /// handshake or an error response while encrypted. A TLS alert that arrives after the
    /// handshake (TLS 1.3 client-certificate rejection) is a read failure: no retry.
    fn retry_allowed(&self, mode: SslMode) -> bool {
        match mode {
            SslMode::Allow => self.server_refused && !self.encrypted,
            SslMode::Prefer => self.handshake_failed || (self.encrypted && self.server_refused),
            _ => false,
        }
    }
}

impl Connector {
    /// Builds the TLS context (reads root CA, CRL, client certificate and key) once.
    pub fn new(config: Config) -> Result<Connector> {
        let tls = Arc::new(TlsReloader::new(
            &config.settings,
            config.options.reload_interval,
        )?);
        Ok(Connector {
            config: Arc::new(config),
            tls,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The TLS context in service, `None` under `PGMODE=disable`.
    pub fn tls_context(&self) -> Option<Arc<TlsContext>> {
        self.tls.current()
    }

    /// The certificate-rotation state: [`TlsReloader::last_error`] tells whether changed
    /// files failed to load (the previous context then stays in service).
    pub fn tls_reloader(&self) -> &TlsReloader {
        &self.tls
    }

    /// Connects, following libpq's sequence for the configured sslmode.
    pub async fn connect(&self) -> Result<Connected> {
        let settings = &self.config.settings;
        let span = tracing::info_span!(
            "pgdap.connect",
            host = self.config.access_point.server(),
            port = PORT,
            mode = %settings.mode.value,
            auth = %settings.auth.value
        );
        self.connect_sequence().instrument(span).await
    }

    async fn connect_sequence(&self) -> Result<Connected> {
        let settings = &self.config.settings;
        let mode = settings.mode.value;
        let cert_auth = settings.auth.value == AuthMethod::Cert;
        let (first, retry) = match (mode, cert_auth) {
            (SslMode::Disable, _) => (Attempt::Plain, None),
            (SslMode::Allow | SslMode::Prefer, true) => (Attempt::SslRequired, None),
            (SslMode::Allow, false) => (Attempt::Plain, Some(Attempt::SslPreferred)),
            (SslMode::Prefer, false) => (Attempt::SslPreferred, Some(Attempt::Plain)),
            (SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull, _) => {
                (Attempt::SslRequired, None)
            }
        };
        let failure = match self.attempt(first).await {
            Ok(connected) => return Ok(connected),
            Err(failure) => failure,
        };
        let Some(retry) = retry.filter(|_| failure.retry_allowed(mode)) else {
            warn!(error = %failure.error, "connection failed");
            return Err(failure.error);
        };
        warn!(
            error = %failure.error,
            "attempt {} failed; retrying {} as sslmode={} does",
            first.describe(),
            retry.describe(),
            mode
        );
        match self.attempt(retry).await {
            Ok(connected) => {
                warn!(
                    ssl = connected.tls.is_some(),
                    "connected {} after the attempt {} failed (sslmode={} fallback)",
                    retry.describe(),
                    first.describe(),
                    mode
                );
                Ok(connected)
            }
            Err(second) => {
                warn!(error = %second.error, "retry failed");
                Err(Error::RetryFailed {
                    first_kind: first.describe(),
                    first: Box::new(failure.error),
                    retry: Box::new(second.error),
                })
            }
        }
    }

    /// Connects, spawns the connection task on the current tokio runtime, and sets the
    /// session's encoding up ([`prepare_session`](crate::encoding::prepare_session): a
    /// SQL_ASCII database gets `client_encoding = SQL_ASCII`, so its raw bytes pass
    /// through to [`RawText`](crate::encoding::RawText)).
    pub async fn connect_spawned(&self) -> Result<Session> {
        let connected = self.connect().await?;
        let connection = connected.connection;
        // The encodings the server reported at start-up (ParameterStatus) save a query.
        let reported = connection.parameter("server_encoding").map(|server| {
            (
                server.to_string(),
                connection.parameter("client_encoding").map(str::to_string),
            )
        });
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "connection closed with an error");
            }
        });
        let client_encoding = self.config.settings.encoding.value;
        let prepared = match &reported {
            Some((server, wire)) => {
                crate::encoding::apply_session_encoding(
                    &connected.client,
                    client_encoding,
                    server,
                    wire.as_deref(),
                )
                .await
            }
            None => crate::encoding::prepare_session(&connected.client, client_encoding).await,
        };
        let encoding = match prepared {
            Ok(encoding) => encoding,
            Err(e) => {
                task.abort();
                return Err(e.into());
            }
        };
        Ok(Session {
            client: connected.client,
            tls: connected.tls,
            encoding,
            task,
        })
    }

    fn pg_config(&self, attempt: Attempt) -> tokio_postgres::Config {
        let ap = &self.config.access_point;
        let opts = &self.config.options;
        let mut pg = tokio_postgres::Config::new();
        pg.host(ap.server())
            .port(PORT)
            .user(ap.username())
            .dbname(ap.dbname())
            .keepalives(opts.keepalives)
            .keepalives_idle(opts.keepalives_idle)
            .keepalives_interval(opts.keepalives_interval)
            .keepalives_retries(opts.keepalives_retries)
            .connect_timeout(opts.connect_timeout)
            .ssl_mode(match attempt {
                Attempt::Plain => tokio_postgres::config::SslMode::Disable,
                Attempt::SslPreferred => tokio_postgres::config::SslMode::Prefer,
                Attempt::SslRequired => tokio_postgres::config::SslMode::Require,
            });
        if !opts.tcp_user_timeout.is_zero() {
            pg.tcp_user_timeout(opts.tcp_user_timeout);
        }
        if let Some(name) = &opts.application_name {
            pg.application_name(name);
        }
        // Under PGAUTH=cert the password is never handed to the protocol layer, so it
        // cannot be sent whatever the server asks.
        if self.config.settings.auth.value == AuthMethod::Password && !ap.password().is_empty() {
            pg.password(ap.password().expose());
        }
        pg
    }

    async fn attempt(&self, attempt: Attempt) -> std::result::Result<Connected, Failure> {
        let host = self.config.access_point.server().to_string();
        info!(attempt = attempt.describe(), "connecting");
        let probe = Arc::new(Mutex::new(Probe::default()));
        let pg = self.pg_config(attempt);
        let timeout = self.config.options.connect_timeout;
        let ctx = self.tls.current();
        let result = match &ctx {
            Some(ctx) if attempt != Attempt::Plain => {
                let tls = MakeTls::new(ctx.clone(), probe.clone());
                tokio::time::timeout(timeout, pg.connect(tls)).await
            }
            _ => {
                // A TLS type is still needed for the uniform connection type; with
                // SslMode::Disable it is never used.
                let tls = PlainOnly;
                tokio::time::timeout(timeout, pg.connect(tls)).await
            }
        };
        let (attempted, session) = match probe.lock() {
            Ok(mut p) => (p.attempted, p.session.take()),
            Err(_) => (false, None),
        };
        match result {
            Ok(Ok((client, connection))) => {
                info!(
                    ssl = session.is_some(),
                    tls_version = session.as_ref().map(|s| s.version.as_str()),
                    "connected"
                );
                Ok(Connected {
                    client,
                    connection,
                    tls: session,
                })
            }
            Ok(Err(e)) => {
                let server_refused = e.as_db_error().is_some();
                let error = self.map_error(e, attempt, ctx.as_deref());
                Err(Failure {
                    error,
                    handshake_failed: attempted && session.is_none(),
                    encrypted: session.is_some(),
                    server_refused,
                })
            }
            Err(_) => Err(Failure {
                error: Error::Timeout {
                    host,
                    after: timeout,
                },
                handshake_failed: false,
                encrypted: false,
                server_refused: false,
            }),
        }
    }

    fn map_error(
        &self,
        e: tokio_postgres::Error,
        attempt: Attempt,
        ctx: Option<&TlsContext>,
    ) -> Error {
        let host = self.config.access_point.server().to_string();
        let settings = &self.config.settings;
        let policy = ctx.map(|t| t.policy().clone());
        if let Some(db) = e.as_db_error() {
            let message = db.message().to_string();
            return Error::Server(Box::new(ServerRefusal {
                hint: server_hint(&message, settings, policy.as_ref()),
                host,
                severity: db.severity().to_string(),
                code: db.code().code().to_string(),
                message,
                detail: db.detail().map(str::to_string),
            }));
        }
        // Walk the source chain for our own TLS failures and OpenSSL errors.
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
        while let Some(err) = source {
            if let Some(failure) = err.downcast_ref::<TlsFailure>() {
                return tls_failure_error(failure, host, settings, policy.as_ref());
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if let Some(ssl) = io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
                {
                    let reason = crate::tls::ssl_error_reason(ssl);
                    return Error::Ssl {
                        hint: ssl_hint(&reason, settings, policy.as_ref()),
                        host,
                        reason,
                    };
                }
            }
            if err.to_string() == "server does not support TLS" {
                return Error::SslNotSupported {
                    host,
                    mode: if attempt == Attempt::SslRequired
                        && settings.auth.value == AuthMethod::Cert
                        && !matches!(
                            settings.mode.value,
                            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
                        ) {
                        "require (PGAUTH=cert)"
                    } else {
                        settings.mode.value.as_str()
                    },
                };
            }
            if err.to_string() == "password missing" {
                return if settings.auth.value == AuthMethod::Cert {
                    Error::PasswordRequestedUnderCertAuth {
                        host,
                        user: self.config.access_point.username().to_string(),
                    }
                } else {
                    Error::NoPasswordSupplied { host }
                };
            }
            source = err.source();
        }
        if e.to_string() == "error connecting to server" {
            if let Some(io) = e
                .into_source()
                .and_then(|s| s.downcast::<std::io::Error>().ok())
            {
                return Error::Connect { host, source: *io };
            }
            return Error::Connect {
                host,
                source: std::io::Error::other("connection failed"),
            };
        }
        if e.to_string() == "timeout waiting for server" {
            return Error::Timeout {
                host,
                after: self.config.options.connect_timeout,
            };
        }
        Error::Protocol { host, source: e }
    }
}

fn tls_failure_error(
    failure: &TlsFailure,
    host: String,
    settings: &Settings,
    policy: Option<&crate::tls::TlsPolicy>,
) -> Error {
    use crate::tls::hostname::Mismatch;
    // X509_V_ERR_CERT_REVOKED and X509_V_ERR_UNABLE_TO_GET_CRL.
    const CERT_REVOKED: i32 = 23;
    const UNABLE_TO_GET_CRL: i32 = 3;
    let root_ca = policy
        .and_then(|p| p.root_ca.clone())
        .unwrap_or_else(|| settings.root_ca.value.clone());
    let crl = policy
        .and_then(|p| p.crl.clone())
        .unwrap_or_else(|| settings.crl.value.clone());
    match failure {
        TlsFailure::Verify { code, .. } if *code == CERT_REVOKED => {
            Error::CertificateRevoked { host, crl }
        }
        TlsFailure::Verify { code, .. } if *code == UNABLE_TO_GET_CRL => {
            Error::CrlNotForIssuer { host, crl }
        }
        TlsFailure::Verify { reason, .. } => Error::CertificateVerifyFailed {
            host,
            reason: reason.clone(),
            root_ca,
        },
        TlsFailure::Host(Mismatch::Names { first, others }) => Error::HostnameMismatch {
            host,
            cert_name: first.clone(),
            others: *others,
        },
        TlsFailure::Host(Mismatch::NoNames) => Error::NoHostnameInCertificate { host },
        TlsFailure::Handshake(reason) => Error::Ssl {
            hint: ssl_hint(reason, settings, policy),
            host,
            reason: reason.clone(),
        },
    }
}

fn cert_description(settings: &Settings, policy: Option<&crate::tls::TlsPolicy>) -> String {
    match policy.and_then(|p| p.client_cert.as_ref()) {
        Some(path) => format!("the client certificate \"{}\" (PGCERT)", path.display()),
        None => format!(
            "no client certificate was sent (no file at \"{}\", PGCERT)",
            settings.cert.value.display()
        ),
    }
}

/// Hints for the SSL alerts of the vendor's troubleshooting table.
fn ssl_hint(
    reason: &str,
    settings: &Settings,
    policy: Option<&crate::tls::TlsPolicy>,
) -> Option<String> {
    let cert = cert_description(settings, policy);
    if reason.contains("unknown ca") {
        Some(format!(
            "the server does not trust {cert}: it was not issued by a CA in the server's ssl_ca_file"
        ))
    } else if reason.contains("certificate revoked") {
        Some(format!("the server's CRL (ssl_crl_file) revokes {cert}"))
    } else if reason.contains("certificate required") || reason.contains("handshake failure") {
        Some(format!("the server demands a client certificate; {cert}"))
    } else if reason.contains("bad certificate") || reason.contains("certificate expired") {
        Some(format!("the server rejected {cert}"))
    } else {
        None
    }
}

/// Hints for the server messages of the vendor's troubleshooting table.
fn server_hint(
    message: &str,
    settings: &Settings,
    policy: Option<&crate::tls::TlsPolicy>,
) -> Option<String> {
    let cert = cert_description(settings, policy);
    if message.contains("connection requires a valid client certificate") {
        Some(format!(
            "the server's pg_hba.conf demands a client certificate (clientcert or cert auth); {cert}"
        ))
    } else if message.contains("certificate authentication failed") {
        Some(format!(
            "the CN of {cert} does not name this user, directly or through the server's pg_ident.conf map"
        ))
    } else if message.contains("could not load pg_hba.conf") {
        Some("server-side configuration error: fix pg_hba.conf on the server and reload it".into())
    } else if message.contains("no pg_hba.conf entry") {
        Some(format!(
            "the server's pg_hba.conf has no rule for this host, user and database with this encryption (PGMODE={})",
            settings.mode.value
        ))
    } else if message.contains("password authentication failed") {
        Some("check password= in the Access Point".into())
    } else {
        None
    }
}

/// The TLS half of the connection type for plaintext attempts: tokio-postgres needs a
/// `MakeTlsConnect` even with `SslMode::Disable`, and both kinds of attempt must yield
/// the same `Connection` type.
#[derive(Clone, Copy)]
struct PlainOnly;

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for PlainOnly
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = NeverTls;
    type Error = TlsFailure;

    fn make_tls_connect(&mut self, _: &str) -> std::result::Result<NeverTls, TlsFailure> {
        Ok(NeverTls)
    }
}

struct NeverTls;

impl<S> tokio_postgres::tls::TlsConnect<S> for NeverTls
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = TlsFailure;
    type Future = std::future::Ready<std::result::Result<TlsStream<S>, TlsFailure>>;

    fn connect(self, _: S) -> Self::Future {
        std::future::ready(Err(TlsFailure::Handshake(
            "TLS is not configured for this attempt".into(),
        )))
    }
}

/// Connects once with a fresh [`Connector`] (services that connect often should keep a
/// `Connector`, which reads the certificate files only once).
///
/// ```no_run
/// # async fn run() -> Result<(), pgdap::Error> {
/// let ap = pgdap::AccessPoint::from_file("dap.cfg")?;
/// let session = pgdap::connect(ap, &pgdap::Environment::from_process_env()).await?;
/// # Ok(()) }
/// ```
pub async fn connect(access_point: AccessPoint, env: &Environment) -> Result<Session> {
    Connector::new(Config::new(access_point, env)?)?
        .connect_spawned()
        .await
}
