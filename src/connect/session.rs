//! A session: a client whose connection task runs, with what pgdap knows of it (TLS,
//! encoding, notices, the cancel token, the member of `dbserver` it went to and the role
//! its server reports).

use std::sync::Arc;

use tokio_postgres::Client;

use super::{target, CancelToken, Notices, Peer, ServerRole};
use crate::access_point::Host;
use crate::encoding::SessionEncoding;
use crate::tls::TlsSession;

/// A client whose connection task is already running, with its encoding set up, and what
/// pgdap knows of its session. Every way of connecting gives this one shape: the async
/// [`Session`] (tokio-postgres' `Client` and its connection task), the blocking adapter's
/// [`BlockingSession`](crate::integrations::blocking::BlockingSession) (`postgres::Client`,
/// no task) and diesel-async's `Established` (`AsyncPgConnection`, no task).
///
/// ```no_run
/// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::Error> {
/// let session = connector.connect_spawned().await?;
/// let row = session.client.query_one("select current_user", &[]).await?;
/// for notice in session.notices.drain() {
///     println!("{notice}");
/// }
/// # Ok(()) }
/// ```
pub struct Session<C = Client, T = tokio::task::JoinHandle<()>> {
    /// The client.
    pub client: C,
    /// The TLS session, `None` for a plaintext session.
    pub tls: Option<TlsSession>,
    /// The client encoding (PGCLIENTENCODING) and the database's, as
    /// [`prepare_session`](crate::encoding::prepare_session) set them up: convert the
    /// application's local byte strings with it.
    pub encoding: SessionEncoding,
    /// The connection task; it ends when the connection closes. `()` where the client
    /// drives its connection itself (the blocking and diesel-async adapters).
    pub task: T,
    /// The server's notices (NoticeResponse), from the start-up on (see [`Notices`]).
    pub notices: Notices,
    pub(super) cancel: Option<CancelToken>,
    pub(super) server: Endpoint,
}

/// Where a session is connected: the member of `dbserver`, its address, and the role the
/// server reports.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) host: Host,
    pub(crate) peer: Option<Peer>,
    pub(crate) role: Arc<target::ServerRole>,
}

impl<C, T> Session<C, T> {
    /// The member of `dbserver` this session is connected to (with a list, the one
    /// libpq's walk chose).
    ///
    /// ```no_run
    /// # async fn run(session: pgdap::Session) {
    /// println!("connected to {}", session.host());
    /// # }
    /// ```
    pub fn host(&self) -> &Host {
        &self.server.host
    }

    /// The address of [`Session::host`] the session is connected to (`None` when the
    /// adapter does not say).
    pub fn peer(&self) -> Option<&Peer> {
        self.server.peer.as_ref()
    }

    /// The server's role as it last reported it ([`ServerRole`]).
    pub fn server_role(&self) -> &ServerRole {
        &self.server.role
    }

    /// The token that cancels this session's running query from another task (or thread:
    /// [`CancelToken::cancel_query_blocking`]), over TLS with the session's verification
    /// when the session is encrypted ([`CancelToken`]). `None` when the server sent no
    /// cancel key.
    ///
    /// ```no_run
    /// # async fn run(session: pgdap::Session) -> Result<(), pgdap::Error> {
    /// let token = session.cancel_token().expect("cancel key");
    /// tokio::spawn(async move { token.cancel_query().await });
    /// # Ok(()) }
    /// ```
    pub fn cancel_token(&self) -> Option<CancelToken> {
        self.cancel.clone()
    }

    /// The same session around another client (an adapter wrapping tokio-postgres'
    /// `Client`, or a client that drives its own connection).
    #[cfg(feature = "diesel-async")]
    pub(crate) fn with_client<C2, T2>(self, client: C2, task: T2) -> Session<C2, T2> {
        Session::from_parts(
            client,
            task,
            self.tls,
            self.encoding,
            self.notices,
            self.cancel,
            self.server,
        )
    }

    /// The client, and the session without it (to wrap the client in an adapter's).
    #[cfg(feature = "diesel-async")]
    pub(crate) fn split(self) -> (C, Session<(), T>) {
        let Session {
            client,
            tls,
            encoding,
            task,
            notices,
            cancel,
            server,
        } = self;
        (
            client,
            Session::from_parts((), task, tls, encoding, notices, cancel, server),
        )
    }

    /// A session of `client` with what pgdap knows of it.
    #[cfg(any(feature = "postgres", feature = "diesel-async"))]
    pub(crate) fn from_parts(
        client: C,
        task: T,
        tls: Option<TlsSession>,
        encoding: SessionEncoding,
        notices: Notices,
        cancel: Option<CancelToken>,
        server: Endpoint,
    ) -> Session<C, T> {
        Session {
            client,
            tls,
            encoding,
            task,
            notices,
            cancel,
            server,
        }
    }
}

impl<C, T> std::fmt::Debug for Session<C, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("client", &std::any::type_name::<C>())
            .field("tls", &self.tls)
            .field("encoding", &self.encoding)
            .field("notices", &self.notices)
            .field("cancel", &self.cancel)
            .field("host", &self.server.host)
            .field("peer", &self.server.peer)
            .finish_non_exhaustive()
    }
}
