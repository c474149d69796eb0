//! The synchronous `postgres` crate: a [`postgres::Client`] connected with libpq's
//! sequence.
//!
//! `postgres::Client` can only be built by `postgres::Config::connect` (its constructor
//! from a tokio-postgres client and connection is private), so it cannot run on pgdap's
//! own socket. [`connect`] therefore runs `Plan::run_blocking` (`connect/sequence.rs`):
//! each attempt is a `postgres::Config::connect` with the attempt's sslmode
//! ([`Connector::tokio_postgres_config`]) and pgdap's [`MakeTls`], and libpq's retry
//! rules decide the fallback, so the outcome (encrypted, plaintext or failure) of every
//! sslmode, `PGAUTH=cert` included, is the same as [`Connector::connect`]'s. Errors are
//! pgdap's typed errors, the notices reach the log, the connector's callback and
//! [`BlockingSession::notices`], and `PGCLIENTENCODING` is set up as for async sessions.
//!
//! The security settings are enforced as on the async route:
//!
//! - the checks on the server's authentication requests (`PGREQUIREAUTH`,
//!   `PGCHANNELBINDING=require`, libpq's 2000-byte bound) run on the decrypted start-up
//!   of every encrypted attempt, before tokio-postgres answers a request. On a plaintext
//!   attempt tokio-postgres' socket cannot be watched, so with either variable set such
//!   an attempt is refused before connecting ([`Error::BlockingUnenforceable`], naming
//!   the variable and the async route);
//! - `PGSSLCERTMODE=require` and `PGTARGETSESSIONATTRS` are checked after start-up, the
//!   latter with libpq's query (`SHOW transaction_read_only` or `pg_is_in_recovery()`:
//!   the `postgres` crate does not expose the ParameterStatus of PostgreSQL 14+, which
//!   says the same);
//! - tokio-postgres takes any reply to the SSLRequest but 'S' as 'N'. When it reports
//!   "server does not support TLS", the reply is asked once more on pgdap's own socket
//!   (an SSLRequest, one byte read, closed): an error response is libpq's "server sent
//!   an error response during SSL exchange", any other byte but 'N' libpq's "received
//!   invalid response to SSL negotiation", and only an 'N' lets `prefer` go on in
//!   plaintext.
//!
//! What is lost against [`Connector::connect`], because the socket is tokio-postgres':
//!
//! - `TCP_USER_TIMEOUT` on pgdap's own socket (tokio-postgres sets its own from the same
//!   option); the connect timeout bounds the TCP connection of each attempt only, not TLS
//!   and authentication;
//! - a `prefer` attempt is made as tokio-postgres' `require` and, when the server answers
//!   'N', repeated at once in plaintext on a new connection (libpq goes on on the same
//!   socket): the outcome is libpq's, and the session's cancel token then holds
//!   `require` for every encrypted session, so [`BlockingSession::cancel_token`] never
//!   sends the cancel key in plaintext for it. The cancel request goes through
//!   tokio-postgres' socket with pgdap's TLS verification.
//!
//! ```no_run
//! fn main() -> Result<(), pgdap::error::Report> {
//!     let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
//!     let config = pgdap::Config::new(ap, &pgdap::Environment::from_process_env())?;
//!     let connector = pgdap::Connector::new(config)?;
//!     let mut session = pgdap::integrations::blocking::connect(&connector)?;
//!     let user: String = session.client.query_one("select current_user", &[])?.get(0);
//!     println!("{user}, encrypted: {}", session.tls.is_some());
//!     Ok(())
//! }
//! ```

use std::sync::{Arc, Mutex};

use crate::access_point::Host;
use crate::connect::errors::ErrorContext;
use crate::connect::hosts::Pass;
use crate::connect::notices::NoticeSink;
use crate::connect::target::{self, CertFacts};
use crate::connect::{
    Attempt, CancelToken, Connector, Failure, MoveOn, Notice, Notices, Peer, Session,
};
use crate::encoding::{SessionEncoding, SessionEncodingError};
use crate::env::variables::{PGCHANNELBINDING, PGREQUIREAUTH};
use crate::env::ChannelBinding;
use crate::error::{Error, Result};
use crate::startup::{StartupWatch, SSL_REQUEST};
use crate::tls::{MakeTls, Probe, TlsContext, TlsSession};

/// A synchronous client with what pgdap knows of its session: a [`Session`] whose client
/// is `postgres::Client`, which drives its connection itself (no task). Its notices are
/// delivered while the client runs commands (the `postgres` crate reads the connection
/// only then); [`Session::cancel_token`] cancels from another thread with
/// [`CancelToken::cancel_query_blocking`].
///
/// ```no_run
/// # fn f(mut session: pgdap::integrations::blocking::BlockingSession) {
/// let token = session.cancel_token().expect("cancel key");
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_secs(1));
///     token.cancel_query_blocking()
/// });
/// assert!(session.client.batch_execute("select pg_sleep(20)").is_err());
/// # }
/// ```
pub type BlockingSession = Session<postgres::Client, ()>;

/// Connects with libpq's sequence (see the module documentation). Must not be called
/// from inside a tokio runtime (the `postgres` crate runs one of its own).
///
/// ```no_run
/// # fn f(connector: pgdap::Connector) -> Result<(), pgdap::error::Report> {
/// let mut session = pgdap::integrations::blocking::connect(&connector)?;
/// session.client.batch_execute("select 1")?;
/// # Ok(()) }
/// ```
pub fn connect(connector: &Connector) -> Result<BlockingSession> {
    let config = connector.config();
    // The Access Point as last read from its file, and the credential provider's secret
    // (fetched on a runtime of its own: this function runs outside tokio).
    let ap = connector.access_point();
    let password = connector.blocking_secret()?;
    let host = ap.server();
    let span = tracing::info_span!(
        "pgdap.connect",
        host,
        port = crate::access_point::PORT,
        mode = %config.settings().mode.value,
        auth = %config.settings().auth.value,
        blocking = true
    );
    let _entered = span.enter();
    let notices = Notices::new();
    let sink = NoticeSink {
        host: host.to_string(),
        callback: connector.notice_callback().cloned(),
        queue: notices.clone(),
    };
    let ctx = connector.tls_context();
    let settings = config.settings();
    let (mut client, tls, member, peer) = crate::connect::hosts::walk_blocking(
        ap.hosts(),
        settings.target_session_attrs.value,
        settings.load_balance_hosts.value,
        crate::connect::socket::resolve_blocking,
        |member, peer, pass| {
            connector
                .plan_for(member)
                .run_blocking_to_failure(|attempt| {
                    one_attempt(
                        connector,
                        attempt,
                        &ap,
                        Target { member, peer, pass },
                        password.as_ref(),
                        ctx.as_ref(),
                        &sink,
                    )
                })
                .map(|(client, tls)| (client, tls, member.clone(), peer.clone()))
        },
    )?;
    let encoding = prepare(&mut client, connector)?;
    let cancel = client.cancel_token();
    let process_id = backend_pid(&mut client)?;
    let cancel = Some(CancelToken::from_blocking(
        &member.as_str(),
        cancel,
        process_id,
        ctx.filter(|_| tls.is_some()),
        config.options().connect_timeout,
    ));
    Ok(Session::from_parts(
        client,
        (),
        tls,
        encoding,
        notices,
        cancel,
        crate::connect::Endpoint {
            host: member,
            peer: Some(peer),
            role: Default::default(),
        },
    ))
}

/// The address one attempt goes to, and the pass of PGTARGETSESSIONATTRS it is in.
struct Target<'a> {
    member: &'a Host,
    peer: &'a Peer,
    pass: Pass,
}

fn one_attempt(
    connector: &Connector,
    attempt: Attempt,
    ap: &crate::access_point::AccessPoint,
    target: Target<'_>,
    password: Option<&crate::secret::Password>,
    ctx: Option<&Arc<TlsContext>>,
    sink: &NoticeSink,
) -> std::result::Result<(postgres::Client, Option<TlsSession>), Failure> {
    let config = connector.config();
    let host_name = target.member.as_str();
    let host: &str = &host_name;
    tracing::info!(attempt = attempt.describe(), host, addr = %target.peer, "connecting");
    let mut pg = connector.pg_config(attempt, ap, Some(target.member), password);
    if let Peer::Tcp(addr) = target.peer {
        // The very address the walk chose: the name stays for TLS (SNI, verify-full).
        pg.hostaddr(addr.ip());
    }
    let mut pg = postgres::Config::from(pg);
    if matches!(target.member, Host::Socket(_)) && config.settings().require_peer.is_some() {
        return Err(Failure::fatal(Error::BlockingUnenforceable {
            host: host.to_string(),
            var: crate::env::variables::PGREQUIREPEER.name,
        }));
    }
    let sink = sink.clone();
    pg.notice_callback(move |e| sink.deliver(Notice::from_db_error(&e)));
    let errors = ErrorContext {
        host,
        access_point: ap,
        user: ap.username(),
        provider: password.and(connector.credential_provider_name()),
        settings: config.settings(),
        attempt,
        tls: ctx.map(|c| &**c),
        timeout: config.options().connect_timeout,
    };
    let check = connector.auth_check();
    let unwatched = || match unenforceable_var(connector) {
        Some(var) => Err(Failure::fatal(Error::BlockingUnenforceable {
            host: host.to_string(),
            var,
        })),
        None => Ok(()),
    };
    let probe = Arc::new(Mutex::new(Probe::default()));
    let result = match ctx {
        Some(ctx) if attempt != Attempt::Plain => {
            // The TLS stream feeds its decrypted start-up to this watch, which runs the
            // checks on authentication requests before tokio-postgres answers them.
            if let Ok(mut p) = probe.lock() {
                p.watch = Some(StartupWatch::new(check));
            }
            // SslPreferred as `require`, so the session's cancel token never falls back
            // to plaintext; an 'N' reply continues in plaintext below, as libpq does.
            pg.ssl_mode(tokio_postgres::config::SslMode::Require);
            let result = pg.connect(MakeTls::new(ctx.clone(), probe.clone()));
            match result {
                Err(e)
                    if crate::error::Chain(&e)
                        .to_string()
                        .contains("server does not support TLS") =>
                {
                    // tokio-postgres read some byte but 'S': ask which.
                    match ssl_reply(target.peer, config.options().connect_timeout) {
                        Some(b'N') | None => {}
                        Some(b'E') => {
                            return Err(Failure::fatal(Error::SslErrorResponse {
                                host: host.to_string(),
                            }))
                        }
                        Some(b'S') => {} // changed its mind: keep tokio-postgres' error
                        Some(byte) => {
                            return Err(Failure::fatal(Error::InvalidSslResponse {
                                host: host.to_string(),
                                byte,
                            }))
                        }
                    }
                    if attempt == Attempt::SslPreferred {
                        unwatched()?;
                        tracing::info!("the server does not support SSL; continuing without SSL");
                        pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
                        pg.connect(postgres::NoTls)
                    } else {
                        Err(e)
                    }
                }
                other => other,
            }
        }
        _ => {
            unwatched()?;
            pg.connect(postgres::NoTls)
        }
    };
    let (attempted, session, certs) = match probe.lock() {
        Ok(mut p) => (
            p.attempted,
            p.session.take(),
            CertFacts {
                requested: p.cert_requested,
                loaded: p.cert_loaded,
            },
        ),
        Err(_) => (false, None, CertFacts::default()),
    };
    match result {
        Ok(mut client) => {
            check_session(connector, certs, host, target.pass, &mut client)?;
            tracing::info!(ssl = session.is_some(), "connected");
            Ok((client, session))
        }
        Err(e) => {
            let encrypted = session.is_some();
            // libpq's next address after a socket that could not be connected or a
            // timeout, next host after 57P03 (tokio-postgres' own texts for the first two).
            let text = e.to_string();
            let move_on = if e.code() == Some(&tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW)
            {
                MoveOn::NextHost
            } else if text.starts_with("error connecting to server")
                || text.starts_with("timeout waiting for server")
            {
                MoveOn::NextAddress
            } else {
                MoveOn::Stop
            };
            Err(Failure {
                server_refused: e.as_db_error().is_some(),
                error: errors.map(e),
                handshake_failed: attempted && !encrypted,
                encrypted,
                move_on,
            })
        }
    }
}

/// The variable whose checks on authentication requests need a watched start-up, if
/// one is set (the blocking adapter cannot watch a plaintext start-up).
fn unenforceable_var(connector: &Connector) -> Option<&'static str> {
    let settings = connector.config().settings();
    if settings.require_auth.is_some() {
        Some(PGREQUIREAUTH.name)
    } else if settings.channel_binding.value == ChannelBinding::Require {
        Some(PGCHANNELBINDING.name)
    } else {
        None
    }
}

/// Asks the server's reply to an SSLRequest on a socket of pgdap's own (one byte, then
/// closed), for when tokio-postgres reported "server does not support TLS" and libpq's
/// outcome depends on which byte it was. `None` when the server cannot be asked.
fn ssl_reply(peer: &Peer, timeout: std::time::Duration) -> Option<u8> {
    use std::io::{Read, Write};
    let Peer::Tcp(addr) = peer else {
        return None;
    };
    let mut socket = std::net::TcpStream::connect_timeout(addr, timeout).ok()?;
    socket.set_read_timeout(Some(timeout)).ok()?;
    socket.write_all(&SSL_REQUEST).ok()?;
    let mut reply = [0u8; 1];
    socket.read_exact(&mut reply).ok()?;
    Some(reply[0])
}

/// `PGSSLCERTMODE=require` and `PGTARGETSESSIONATTRS` on a started session (libpq's
/// query for the session's state: the `postgres` crate does not expose ParameterStatus).
fn check_session(
    connector: &Connector,
    certs: CertFacts,
    host: &str,
    pass: Pass,
    client: &mut postgres::Client,
) -> std::result::Result<(), Failure> {
    let settings = connector.config().settings();
    target::cert_mode_check(settings, certs, host).map_err(Failure::fatal)?;
    let Some(sql) = target::state_query(pass.check) else {
        return Ok(());
    };
    let rows = client
        .simple_query(sql)
        .map_err(|e| Failure::next_host(Error::Query(e)))?;
    let state = target::state_from_answer(&target::first_value(&rows));
    target::refuse(pass, state, host).map_err(Failure::next_host)
}

/// `prepare_session` for the synchronous client.
fn prepare(client: &mut postgres::Client, connector: &Connector) -> Result<SessionEncoding> {
    let query = SessionEncodingError::Query;
    let row = client
        .query_one(
            "select current_setting('server_encoding'), current_setting('client_encoding')",
            &[],
        )
        .map_err(query)?;
    let (server, wire_now): (String, String) = (row.get(0), row.get(1));
    let session = SessionEncoding::new(&server, connector.config().settings().encoding.value);
    if wire_now != session.wire_encoding().name() {
        client
            .batch_execute(&format!(
                "SET client_encoding TO '{}'",
                session.wire_encoding().name()
            ))
            .map_err(query)?;
    }
    Ok(session)
}

fn backend_pid(client: &mut postgres::Client) -> Result<i32> {
    Ok(client.query_one("select pg_backend_pid()", &[])?.get(0))
}
