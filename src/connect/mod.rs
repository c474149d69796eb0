//! The connect sequence: libpq's `PQconnectPoll` order of attempts for each sslmode,
//! with its fallbacks, mapped onto tokio-postgres.
//!
//! The attempts of each sslmode and libpq's retry rules are in [`Plan`]; one attempt
//! opens pgdap's own socket ([`Wire`]) and runs tokio-postgres' start-up on it.

mod cancel;
pub(crate) mod errors;
pub(crate) mod hosts;
pub(crate) mod notices;
mod sequence;
pub(crate) mod socket;
pub(crate) mod target;
pub(crate) mod wire;

#[cfg(fuzzing)]
#[doc(hidden)]
pub use crate::startup::fuzz_startup;
pub use crate::startup::AuthRequest;
pub use cancel::CancelToken;
pub use notices::{
    spawn_connection, Notice, NoticeCallback, Notices, NOTICE_QUEUE_BYTES, NOTICE_QUEUE_LIMIT,
};
pub use sequence::{Attempt, Failure, MoveOn, Plan};
pub use socket::{Peer, Stream};
pub use target::ServerRole;
pub use wire::Wire;

mod config;
mod session;
#[allow(deprecated)]
pub use config::Options;
pub use config::{Config, ConnectOptions};
pub(crate) use session::Endpoint;
pub use session::Session;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::{Client, Connection};
use tracing::{info, Instrument};

use crate::access_point::{AccessPoint, Host, PORT};
use crate::credentials::reload::AccessPointWatch;
use crate::credentials::{CredentialCache, CredentialProvider};
use crate::env::{AuthMethod, ChannelBinding, Environment, SslNegotiation};
use crate::error::{Error, Result};
use crate::secret::Password;
use crate::startup::{AuthCheck, StartupWatch};
use crate::tls::{MakeTls, Probe, TlsContext, TlsFailure, TlsReloader, TlsSession, TlsStream};
use errors::ErrorContext;

/// A connection ready for use: the client, the connection task to drive, and what TLS
/// gave it. After spawning the connection, call
/// [`prepare_session`](crate::encoding::prepare_session) to apply PGCLIENTENCODING (or use
/// [`Connector::connect_spawned`], which does both).
pub struct Connected {
    /// The client.
    pub client: Client,
    /// The connection future; spawn it (`tokio::spawn`) or use [`Connector::connect_spawned`].
    pub connection: Connection<Wire, TlsStream<Wire>>,
    /// The TLS session, `None` for a plaintext session.
    pub tls: Option<TlsSession>,
    /// Cancels the session's running query ([`CancelToken`]); `None` when the server
    /// sent no cancel key.
    pub cancel: Option<CancelToken>,
    /// The member of `dbserver` the session is connected to.
    pub host: Host,
    /// The address of that member the session is connected to.
    pub peer: Peer,
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
#[derive(Clone)]
pub struct Connector {
    config: Arc<Config>,
    tls: Arc<TlsReloader>,
    /// The Access Point in service: its file is read again when it changes.
    access_point: Arc<AccessPointWatch>,
    /// The credential provider and its cached secret, if one is set.
    credentials: Option<Arc<CredentialCache>>,
    notice_callback: Option<NoticeCallback>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("config", &self.config)
            .field("tls", &self.tls)
            .field("access_point", &self.access_point)
            .field(
                "credential_provider",
                &self.credentials.as_ref().map(|c| c.name().to_string()),
            )
            .field("notice_callback", &self.notice_callback.is_some())
            .finish()
    }
}

impl Connector {
    /// Builds the TLS context (reads root CA, CRL, client certificate and key) once.
    pub fn new(config: Config) -> Result<Connector> {
        let tls = Arc::new(TlsReloader::new(
            &config.settings,
            config.options.reload_interval,
        )?);
        let access_point = Arc::new(AccessPointWatch::new(
            config.access_point.clone(),
            config.options.reload_interval,
        ));
        Ok(Connector {
            config: Arc::new(config),
            tls,
            access_point,
            credentials: None,
            notice_callback: None,
        })
    }

    /// Takes the password (or token) of new connections from `provider` (docs/design.md
    /// §12): it wins over the Access Point's password, PGPASSWORD, a service's password
    /// and the password file, and is never called under `PGAUTH=cert`. Its secret is
    /// cached until shortly before its expiry; concurrent connections wait for one call;
    /// after the server refuses a cached secret (28P01, 28000) one fresh secret is
    /// fetched and the connection tried once more. Its errors are
    /// [`Error::CredentialProvider`].
    ///
    /// ```no_run
    /// # fn f(config: pgdap::Config) -> Result<(), pgdap::Error> {
    /// use pgdap::credentials::{provider_fn, Credential};
    /// let connector = pgdap::Connector::new(config)?.with_credential_provider(provider_fn(
    ///     "secret-store",
    ///     || async { Ok(Credential::new(pgdap::Password::new("s3cret"))) },
    /// ));
    /// # Ok(()) }
    /// ```
    pub fn with_credential_provider(mut self, provider: impl CredentialProvider) -> Connector {
        self.credentials = Some(Arc::new(CredentialCache::new(Arc::new(provider))));
        self
    }

    /// The credential provider's name, if one is set.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn credential_provider_name(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.name())
    }

    /// The provider's secret for the blocking adapter, which runs outside tokio: fetched
    /// (when due) on a runtime of its own. `None` without a provider or under
    /// `PGAUTH=cert`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn blocking_secret(&self) -> Result<Option<Password>> {
        let Some(cache) = self.active_credentials() else {
            return Ok(None);
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::CredentialProvider {
                provider: cache.name().to_string(),
                source: Box::new(e),
            })?;
        runtime.block_on(cache.get()).map(|s| Some(s.password))
    }

    /// The credential provider to ask for a connection's password: none under
    /// `PGAUTH=cert`, where no password is ever sent.
    fn active_credentials(&self) -> Option<&Arc<CredentialCache>> {
        self.credentials
            .as_ref()
            .filter(|_| self.config.settings.auth.value != AuthMethod::Cert)
    }

    /// The credential provider's name, calls and the cached secret's expiry; `None`
    /// without a provider.
    pub fn credential_status(&self) -> Option<crate::credentials::CredentialStatus> {
        self.credentials.as_ref().map(|c| c.status())
    }

    /// The Access Point new connections use: the one the configuration was built with,
    /// or, when it was read from a file ([`AccessPoint::from_file`]), that file as last
    /// read (it is read again when it changes, at most once per
    /// [`ConnectOptions::reload_interval`]; a file that no longer parses keeps the last
    /// good one: [`Connector::access_point_error`]).
    ///
    /// ```no_run
    /// # fn f(connector: pgdap::Connector) {
    /// println!("connecting to {}", connector.access_point().server());
    /// # }
    /// ```
    pub fn access_point(&self) -> Arc<AccessPoint> {
        self.access_point.current()
    }

    /// Why the Access Point file could not be read again after it changed, while it
    /// cannot (the last good one stays in service).
    pub fn access_point_error(&self) -> Option<Arc<Error>> {
        self.access_point.last_error()
    }

    /// Calls `callback` with every server notice of every connection this connector
    /// (or a [`Pool`](crate::Pool) built on it) opens from now on, those of the start-up
    /// included, from the connection's task. Notices are also logged through `tracing`
    /// and queued on the session ([`Session::notices`]).
    ///
    /// ```no_run
    /// # fn f(config: pgdap::Config) -> Result<(), pgdap::Error> {
    /// let connector = pgdap::Connector::new(config)?
    ///     .with_notice_callback(|n| eprintln!("server {}: {}", n.severity, n.message));
    /// # Ok(()) }
    /// ```
    pub fn with_notice_callback(
        mut self,
        callback: impl Fn(&Notice) + Send + Sync + 'static,
    ) -> Connector {
        self.notice_callback = Some(Arc::new(callback));
        self
    }

    /// The notice callback, if one is set.
    ///
    /// ```no_run
    /// # fn f(connector: pgdap::Connector) {
    /// assert!(connector.notice_callback().is_none());
    /// # }
    /// ```
    pub fn notice_callback(&self) -> Option<&NoticeCallback> {
        self.notice_callback.as_ref()
    }

    /// A [`MakeTlsConnect`](tokio_postgres::tls::MakeTlsConnect) with pgdap's
    /// verification for libraries that connect through `tokio_postgres::Config::connect`
    /// (the context in service now; `None` under `PGMODE=disable`). See
    /// [`MakeTls`] for what a bare `MakeTlsConnect` cannot do.
    ///
    /// ```no_run
    /// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::Error> {
    /// use pgdap::connect::Attempt;
    /// let tls = connector.make_tls().expect("an SSL mode");
    /// let config = connector.tokio_postgres_config(Attempt::SslRequired);
    /// let (client, connection) = config.connect(tls).await?;
    /// tokio::spawn(connection);
    /// # Ok(()) }
    /// ```
    pub fn make_tls(&self) -> Option<MakeTls> {
        self.tls.current().map(MakeTls::from_context)
    }

    /// The `tokio_postgres::Config` of one attempt (host, port 5432, user, database,
    /// password unless `PGAUTH=cert`, keepalives, timeouts, and the attempt's sslmode),
    /// for libraries that connect with `tokio_postgres::Config::connect` or
    /// `postgres::Config::connect` themselves: run [`Plan`] over it to get libpq's
    /// fallbacks.
    ///
    /// ```no_run
    /// # fn f(connector: pgdap::Connector) {
    /// let pg = connector.tokio_postgres_config(pgdap::connect::Attempt::Plain);
    /// assert_eq!(pg.get_ports(), &[5432]);
    /// # }
    /// ```
    pub fn tokio_postgres_config(&self, attempt: Attempt) -> tokio_postgres::Config {
        let password = self.credentials.as_ref().and_then(|c| c.peek());
        let ap = self.access_point.current();
        let hosts = ap.hosts();
        let mut pg = self.pg_config(attempt, &ap, None, password.as_ref());
        for host in &hosts {
            match host {
                Host::Tcp(name) => {
                    pg.host(name);
                }
                #[cfg(unix)]
                Host::Socket(dir) => {
                    pg.host_path(dir);
                }
                // No Unix-domain sockets here (docs/design.md §11): the member is left out.
                #[cfg(not(unix))]
                Host::Socket(_) => {}
            }
        }
        pg
    }

    /// libpq's attempts for this configuration's sslmode and PGAUTH.
    ///
    /// ```no_run
    /// # fn f(connector: pgdap::Connector) {
    /// let plan = connector.plan();
    /// println!("first {:?}, then {:?}", plan.first, plan.retry);
    /// # }
    /// ```
    pub fn plan(&self) -> Plan {
        let settings = &self.config.settings;
        Plan::new(settings.mode.value, settings.auth.value)
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
        self.connect_to(self.access_point.current()).await
    }

    async fn connect_to(&self, ap: Arc<AccessPoint>) -> Result<Connected> {
        let settings = &self.config.settings;
        let span = tracing::info_span!(
            "pgdap.connect",
            host = ap.server(),
            port = PORT,
            mode = %settings.mode.value,
            auth = %settings.auth.value
        );
        self.connect_with_credentials(ap).instrument(span).await
    }

    /// The sequence with the credentials of the moment, and one more try when the server
    /// refused a login whose secret has moved since (a provider's cached secret, an
    /// Access Point file changed during the attempt).
    async fn connect_with_credentials(&self, ap: Arc<AccessPoint>) -> Result<Connected> {
        let secret = match self.active_credentials() {
            Some(cache) => Some(cache.get().await?),
            None => None,
        };
        let password = secret.as_ref().map(|s| &s.password);
        let err = match self.connect_sequence(&ap, password).await {
            Ok(connected) => return Ok(connected),
            Err(e) if !e.refused_login() => return Err(e),
            Err(e) => e,
        };
        if let (Some(cache), Some(secret)) = (&self.credentials, &secret) {
            if secret.fresh {
                return Err(err);
            }
            let fresh = cache.refresh_after_refusal(&secret.password).await?;
            return self.connect_sequence(&ap, Some(&fresh.password)).await;
        }
        match self.access_point.changed_since(&ap) {
            Some(newer) => {
                info!("the Access Point file changed since the refused login; trying once more with it");
                self.connect_sequence(&newer, None).await
            }
            None => Err(err),
        }
    }

    /// libpq's walk over `dbserver`'s members ([`hosts`]), the sslmode plan on each
    /// address.
    async fn connect_sequence(
        &self,
        ap: &AccessPoint,
        password: Option<&Password>,
    ) -> Result<Connected> {
        let settings = &self.config.settings;
        let resolve = |host: Host| async move { socket::resolve(&host).await };
        let attempt = |host: Host, peer: Peer, pass| async move {
            self.plan_for(&host)
                .run_to_failure(|attempt| self.attempt(attempt, ap, &host, &peer, pass, password))
                .await
        };
        let (hosts, attrs, balance) = (
            ap.hosts(),
            settings.target_session_attrs.value,
            settings.load_balance_hosts.value,
        );
        match self.config.options.host_stagger {
            Some(delay) if hosts.len() > 1 => {
                hosts::walk_staggered(hosts, attrs, balance, delay, resolve, attempt).await
            }
            _ => hosts::walk(hosts, attrs, balance, resolve, attempt).await,
        }
    }

    /// The sslmode plan for one member: none of SSL on a Unix socket (libpq).
    pub(crate) fn plan_for(&self, host: &Host) -> Plan {
        let settings = &self.config.settings;
        match host {
            Host::Socket(_) => Plan::for_socket(settings.mode.value),
            Host::Tcp(_) => Plan::new(settings.mode.value, settings.auth.value),
        }
    }

    /// Connects, spawns the connection task on the current tokio runtime, and sets the
    /// session's encoding up ([`prepare_session`](crate::encoding::prepare_session): a
    /// SQL_ASCII database gets `client_encoding = SQL_ASCII`, so its raw bytes pass
    /// through to [`RawText`](crate::encoding::RawText)).
    pub async fn connect_spawned(&self) -> Result<Session> {
        let ap = self.access_point.current();
        let connected = self.connect_to(ap.clone()).await?;
        let connection = connected.connection;
        let member = connected.host.as_str();
        let host: &str = &member;
        // The encodings the server reported at start-up (ParameterStatus) save a query.
        let reported = connection.parameter("server_encoding").map(|server| {
            (
                server.to_string(),
                connection.parameter("client_encoding").map(str::to_string),
            )
        });
        // Driven with poll_message: every notice, the start-up's first, reaches the log,
        // the callback and the session's queue.
        let (notices, task, role) =
            notices::spawn_watched(connection, host, self.notice_callback.clone());
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
            notices,
            cancel: connected.cancel,
            server: Endpoint {
                host: connected.host,
                peer: Some(connected.peer),
                role,
            },
        })
    }

    /// `host`: the member this attempt goes to (`None`: no host set; the password file
    /// is then looked up for the first member). `password`: the credential provider's,
    /// which wins over the others.
    pub(crate) fn pg_config(
        &self,
        attempt: Attempt,
        ap: &AccessPoint,
        host: Option<&Host>,
        password: Option<&Password>,
    ) -> tokio_postgres::Config {
        let opts = &self.config.options;
        let mut pg = tokio_postgres::Config::new();
        match host {
            Some(Host::Tcp(name)) => {
                pg.host(name);
            }
            #[cfg(unix)]
            Some(Host::Socket(dir)) => {
                pg.host_path(dir);
            }
            #[cfg(not(unix))]
            Some(Host::Socket(_)) => {}
            None => {}
        }
        pg.port(PORT)
            .user(ap.username())
            .dbname(ap.dbname())
            .keepalives(opts.keepalives)
            .keepalives_idle(opts.keepalives_idle)
            .keepalives_interval(opts.keepalives_interval)
            .keepalives_retries(opts.keepalives_retries)
            .connect_timeout(opts.connect_timeout)
            .ssl_mode(attempt.tokio_postgres_mode());
        if !opts.tcp_user_timeout.is_zero() {
            pg.tcp_user_timeout(opts.tcp_user_timeout);
        }
        let settings = &self.config.settings;
        // PGAPPNAME wins over the program's default; empty sends none (libpq).
        let app_name = match &settings.application_name {
            Some(env) if !env.value.is_empty() => Some(&env.value),
            _ => opts.application_name.as_ref(),
        };
        if let Some(name) = app_name {
            pg.application_name(name);
        }
        // PGOPTIONS, PGTZ, PGDATESTYLE.
        if let Some(options) = settings.startup_options() {
            pg.options(&options);
        }
        pg.channel_binding(match settings.channel_binding.value {
            ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
            ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
            _ => tokio_postgres::config::ChannelBinding::Prefer,
        });
        if settings.ssl_negotiation.value == SslNegotiation::Direct && attempt != Attempt::Plain {
            pg.ssl_negotiation(tokio_postgres::config::SslNegotiation::Direct);
        }
        // The provider's secret, else the Access Point's password, else PGPASSWORD (or a
        // service's), else the password file (docs/design.md §9, §12). Under PGAUTH=cert
        // none is ever handed to the protocol layer, so none can be sent whatever the
        // server asks.
        if settings.auth.value != AuthMethod::Cert {
            // The password file is read only when no provider's secret is given.
            let found = || match host {
                Some(host) => crate::env::passfile::password_for_host(ap, host, settings),
                None => crate::env::passfile::password_for(ap, settings),
            };
            if let Some(password) = password {
                pg.password(password.expose());
            } else if let Some((password, _)) = found() {
                pg.password(password.expose());
            }
        }
        pg
    }

    /// The check run on each authentication request of an attempt: libpq's
    /// `require_auth` (PGREQUIREAUTH) and `channel_binding=require` (PGCHANNELBINDING).
    pub(crate) fn auth_check(&self) -> Option<AuthCheck> {
        crate::startup::checks::auth_check(&self.config.settings)
    }

    /// One attempt: pgdap's own socket to one address of one member, tokio-postgres'
    /// start-up on it, the session checks of this pass.
    async fn attempt(
        &self,
        attempt: Attempt,
        ap: &AccessPoint,
        member: &Host,
        peer: &Peer,
        pass: hosts::Pass,
        password: Option<&Password>,
    ) -> std::result::Result<Connected, Failure> {
        let host_name = member.as_str();
        let host: &str = &host_name;
        info!(attempt = attempt.describe(), host, addr = %peer, "connecting");
        let probe = Arc::new(Mutex::new(Probe::default()));
        let watch = StartupWatch::new(self.auth_check());
        let pg = self.pg_config(attempt, ap, Some(member), password);
        let options = &self.config.options;
        // PGCONNECT_TIMEOUT when set (0: no bound), else ConnectOptions::connect_timeout.
        let connect_timeout = self
            .config
            .settings
            .attempt_timeout(options.connect_timeout)
            .unwrap_or(Duration::from_secs(100 * 365 * 86400));
        let ctx = self.tls.current();
        let errors = ErrorContext {
            host,
            access_point: ap,
            user: ap.username(),
            provider: password.and(self.credentials.as_ref()).map(|c| c.name()),
            settings: &self.config.settings,
            attempt,
            tls: ctx.as_deref(),
            timeout: connect_timeout,
        };
        let require_peer = self.config.settings.require_peer.as_ref();
        let run = async {
            let socket = socket::open(peer, options, require_peer.map(|p| p.value.as_str()))
                .await
                .map_err(|e| match e {
                    socket::OpenError::Io(e) => Failure::next_address(errors.connect_error(e)),
                    socket::OpenError::RequirePeer { expected, actual } => {
                        Failure::fatal(Error::RequirePeer {
                            host: host.to_string(),
                            expected,
                            actual,
                        })
                    }
                })?;
            let wire = Wire::new(socket, watch.clone(), false);
            let result = match &ctx {
                Some(ctx) if attempt != Attempt::Plain => {
                    if let Ok(mut p) = probe.lock() {
                        p.watch = Some(watch.clone());
                    }
                    let tls = MakeTls::new(ctx.clone(), probe.clone()).for_host(host);
                    pg.connect_raw(wire, tls).await
                }
                // A TLS type is still needed for the uniform connection type; with
                // SslMode::Disable it is never used.
                _ => pg.connect_raw(wire, NeverTls).await,
            };
            result.map_err(|e| {
                let (attempted, encrypted) = match probe.lock() {
                    Ok(p) => (p.attempted, p.session.is_some()),
                    Err(_) => (false, false),
                };
                // 57P03 "the database system is starting up" (or shutting down, or in
                // recovery without hot standby): libpq tries the next host.
                let not_now =
                    e.code() == Some(&tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW);
                Failure {
                    server_refused: e.as_db_error().is_some(),
                    error: errors.map(e),
                    handshake_failed: attempted && !encrypted,
                    encrypted,
                    move_on: if not_now {
                        MoveOn::NextHost
                    } else {
                        MoveOn::Stop
                    },
                }
            })
        };
        let (client, mut connection) = match tokio::time::timeout(connect_timeout, run).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(failure)) => return Err(failure),
            Err(_) => {
                // libpq gives up on this address and tries the next one.
                return Err(Failure::next_address(Error::Timeout {
                    host: host.to_string(),
                    after: connect_timeout,
                }));
            }
        };
        let certs = probe.lock().map_or_else(
            |_| target::CertFacts::default(),
            |p| target::CertFacts {
                requested: p.cert_requested,
                loaded: p.cert_loaded,
            },
        );
        target::check(
            &self.config.settings,
            certs,
            host,
            pass,
            &client,
            &mut connection,
        )
        .await?;
        let session = probe.lock().ok().and_then(|mut p| p.session.take());
        info!(
            ssl = session.is_some(),
            tls_version = session.as_ref().map(|s| s.version.as_str()),
            "connected"
        );
        let key = watch.lock().ok().and_then(|w| w.backend_key);
        let cancel = key.map(|key| {
            CancelToken::new(
                host,
                peer.clone(),
                key,
                ctx.filter(|_| session.is_some()),
                options.connect_timeout,
            )
        });
        Ok(Connected {
            client,
            connection,
            tls: session,
            cancel,
            host: member.clone(),
            peer: peer.clone(),
        })
    }
}

/// The TLS half of the connection type for plaintext attempts: `connect_raw` needs a
/// `TlsConnect` even with `SslMode::Disable`, and both kinds of attempt must yield the
/// same `Connection` type.
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
