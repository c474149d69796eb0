//! Query cancellation from another task, as libpq 17's `PQcancelCreate` does it.
//!
//! A cancel request is a separate connection to the same server address carrying the
//! session's process id and secret key (BackendKeyData). tokio-postgres' own
//! `CancelToken` opens that connection with the sslmode of the attempt that made the
//! session (`prefer` would go on in plaintext when the server, or someone in between,
//! answers 'N') and with a plain `tokio_postgres::Socket`. pgdap's [`CancelToken`]
//! instead
//!
//! - goes to the very address the session is connected to (not a new name lookup);
//! - for an encrypted session: sends an SSLRequest on a [`Wire`] that refuses an 'N'
//!   reply, and runs the TLS handshake with the session's TLS context: the same root
//!   CA, CRL, host name check (verify-full), client certificate and TLS 1.2 minimum.
//!   The key is never sent in plaintext;
//! - for a plaintext session: sends the request in plaintext, as libpq does;
//! - waits for the server to close the connection (libpq does too: the next command is
//!   not sent before the server has taken the request in).
//!
//! The server does not say whether anything was cancelled: `Ok` means it received the
//! request. The cancelled query fails with SQLSTATE 57014, "canceling statement due to
//! user request".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::tls::TlsConnect;

use super::socket::{Peer, Stream};
use super::wire::Wire;
use crate::error::{Error, Result};
use crate::startup::{BackendKey, StartupWatch, SSL_REQUEST};
use crate::tls::{MakeTls, Probe, TlsContext};

/// CancelRequest code 80877102 (`1234 << 16 | 5678`).
const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// The capability to cancel the query running on one session, from any task.
/// Cheap to clone; holds no connection until [`cancel_query`](CancelToken::cancel_query)
/// is called. `Debug` never prints the secret key.
///
/// ```no_run
/// # async fn run(session: pgdap::Session) -> Result<(), pgdap::Error> {
/// let token = session.cancel_token().expect("the server sent a cancel key");
/// let canceller = tokio::spawn(async move {
///     tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///     token.cancel_query().await
/// });
/// let err = session.client.batch_execute("select pg_sleep(20)").await.unwrap_err();
/// assert_eq!(err.code(), Some(&pgdap::tokio_postgres::error::SqlState::QUERY_CANCELED));
/// canceller.await.expect("task")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CancelToken {
    host: String,
    /// The address the session is connected to (`None` for the blocking adapter, whose
    /// token holds it).
    addr: Option<Peer>,
    key: Key,
    /// The TLS context of an encrypted session; `None` for a plaintext one.
    tls: Option<Arc<TlsContext>>,
    timeout: Duration,
}

/// The session's cancel key: read by pgdap's start-up watch, or held inside the
/// `postgres` crate's `CancelToken` (the blocking adapter, whose start-up pgdap does not
/// see).
#[derive(Clone)]
enum Key {
    Backend(BackendKey),
    #[cfg(feature = "postgres")]
    Blocking(postgres::CancelToken, i32),
}

impl Key {
    fn process_id(&self) -> i32 {
        match self {
            Key::Backend(k) => k.process_id,
            #[cfg(feature = "postgres")]
            Key::Blocking(_, pid) => *pid,
        }
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("host", &self.host)
            .field("addr", &self.addr)
            .field("process_id", &self.key.process_id())
            .field("encrypted", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl CancelToken {
    pub(crate) fn new(
        host: &str,
        addr: Peer,
        key: BackendKey,
        tls: Option<Arc<TlsContext>>,
        timeout: Duration,
    ) -> CancelToken {
        CancelToken {
            host: host.to_string(),
            addr: Some(addr),
            key: Key::Backend(key),
            tls,
            timeout,
        }
    }

    /// A token around the `postgres` crate's own. Its sslmode is the attempt's, which
    /// the blocking adapter makes `require` for every encrypted session (so an 'N' reply
    /// fails rather than going on in plaintext) and `disable` for a plaintext one; the
    /// TLS handshake is pgdap's; the address is the one the session connected to.
    #[cfg(feature = "postgres")]
    pub(crate) fn from_blocking(
        host: &str,
        token: postgres::CancelToken,
        process_id: i32,
        tls: Option<Arc<TlsContext>>,
        timeout: Duration,
    ) -> CancelToken {
        CancelToken {
            host: host.to_string(),
            addr: None,
            key: Key::Blocking(token, process_id),
            tls,
            timeout,
        }
    }

    /// The server process of the session (`pg_backend_pid()`).
    ///
    /// ```no_run
    /// # fn f(token: pgdap::connect::CancelToken) {
    /// println!("cancelling backend {}", token.process_id());
    /// # }
    /// ```
    pub fn process_id(&self) -> i32 {
        self.key.process_id()
    }

    /// Whether the request goes over TLS (the session is encrypted).
    ///
    /// ```no_run
    /// # fn f(token: pgdap::connect::CancelToken) {
    /// assert!(token.encrypted());
    /// # }
    /// ```
    pub fn encrypted(&self) -> bool {
        self.tls.is_some()
    }

    /// Sends the cancel request and waits until the server has closed the cancel
    /// connection. Bounded by the connect timeout of the session's
    /// [`ConnectOptions`](crate::ConnectOptions).
    ///
    /// ```no_run
    /// # async fn run(token: pgdap::connect::CancelToken) -> Result<(), pgdap::Error> {
    /// token.cancel_query().await?;
    /// # Ok(()) }
    /// ```
    pub async fn cancel_query(&self) -> Result<()> {
        match tokio::time::timeout(self.timeout, self.send()).await {
            Ok(result) => result,
            Err(_) => Err(Error::Cancel {
                host: self.host.clone(),
                reason: format!(
                    "timeout expired after {}s (connect timeout)",
                    self.timeout.as_secs_f64()
                ),
            }),
        }
    }

    /// [`cancel_query`](CancelToken::cancel_query) for synchronous code (the blocking
    /// adapter): runs it on a runtime of its own. Must not be called from inside a tokio
    /// runtime.
    ///
    /// ```no_run
    /// # fn f(token: pgdap::connect::CancelToken) -> Result<(), pgdap::Error> {
    /// std::thread::spawn(move || token.cancel_query_blocking());
    /// # Ok(()) }
    /// ```
    pub fn cancel_query_blocking(&self) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Cancel {
                host: self.host.clone(),
                reason: format!("could not start a runtime: {e}"),
            })?;
        runtime.block_on(self.cancel_query())
    }

    async fn send(&self) -> Result<()> {
        let failed = |reason: String| Error::Cancel {
            host: self.host.clone(),
            reason,
        };
        let io = |e: std::io::Error| failed(e.to_string());
        let (addr, key) = match (&self.addr, &self.key) {
            (Some(addr), Key::Backend(key)) => (addr.clone(), *key),
            #[cfg(feature = "postgres")]
            (_, Key::Blocking(token, _)) => {
                let token = token.clone();
                let tls = self.tls.clone().map(MakeTls::from_context);
                let result = tokio::task::spawn_blocking(move || match tls {
                    Some(tls) => token.cancel_query(tls),
                    None => token.cancel_query(postgres::NoTls),
                })
                .await
                .map_err(|e| failed(e.to_string()))?;
                result.map_err(|e| failed(crate::error::Chain(&e).to_string()))?;
                self.sent();
                return Ok(());
            }
            (None, Key::Backend(_)) => {
                return Err(failed("the session's address is unknown".to_string()))
            }
        };
        let tcp = match &addr {
            Peer::Tcp(addr) => {
                let tcp = TcpStream::connect(addr).await.map_err(io)?;
                tcp.set_nodelay(true).map_err(io)?;
                Stream::Tcp(tcp)
            }
            #[cfg(unix)]
            Peer::Unix(path) => {
                Stream::Unix(tokio::net::UnixStream::connect(path).await.map_err(io)?)
            }
            #[cfg(not(unix))]
            Peer::Unix(_) => {
                return Err(failed(
                    "Unix-domain sockets are not supported on this platform".into(),
                ))
            }
        };
        let request = request(key);
        match &self.tls {
            None => {
                let mut wire = Wire::new(tcp, StartupWatch::new(None), false);
                wire.write_all(&request).await.map_err(io)?;
                wire.flush().await.map_err(io)?;
                wait_for_close(&mut wire).await;
            }
            Some(ctx) => {
                // An 'N' reply is an error on this wire: the key never goes in plaintext.
                let mut wire = Wire::new(tcp, StartupWatch::new(None), true);
                wire.write_all(&SSL_REQUEST).await.map_err(io)?;
                wire.flush().await.map_err(io)?;
                let mut reply = [0u8; 1];
                wire.read_exact(&mut reply).await.map_err(|e| {
                    failed(format!(
                        "SSL negotiation for the cancel request failed: {e}"
                    ))
                })?;
                if reply[0] != b'S' {
                    return Err(failed(format!(
                        "the server refused SSL for the cancel request (reply {:?})",
                        char::from(reply[0])
                    )));
                }
                let probe = Arc::new(Mutex::new(Probe::default()));
                let connector = MakeTls::new(ctx.clone(), probe).for_host(&self.host);
                let mut tls = connector
                    .connect(wire)
                    .await
                    .map_err(|e| failed(format!("SSL error: {e}")))?;
                tls.write_all(&request).await.map_err(io)?;
                tls.flush().await.map_err(io)?;
                wait_for_close(&mut tls).await;
            }
        }
        self.sent();
        Ok(())
    }

    fn sent(&self) {
        tracing::info!(
            host = %self.host,
            process_id = self.key.process_id(),
            encrypted = self.tls.is_some(),
            "cancel request sent"
        );
    }
}

/// The CancelRequest message.
fn request(key: BackendKey) -> [u8; 16] {
    let mut packet = [0u8; 16];
    packet[..4].copy_from_slice(&16i32.to_be_bytes());
    packet[4..8].copy_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
    packet[8..12].copy_from_slice(&key.process_id.to_be_bytes());
    packet[12..].copy_from_slice(&key.secret_key.to_be_bytes());
    packet
}

/// Waits for the server to close the cancel connection (libpq's wait for EOF); any read
/// result ends the wait, as the request has been written either way.
async fn wait_for_close<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) {
    let mut scratch = [0u8; 64];
    let _ = stream.read(&mut scratch).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_packet_layout_and_debug_hides_the_key() {
        let key = BackendKey {
            process_id: 4242,
            secret_key: 0x1234_5678,
        };
        let token = CancelToken::new(
            "db1",
            super::Peer::Tcp("127.0.0.1:5432".parse().unwrap()),
            key,
            None,
            Duration::from_secs(1),
        );
        let p = request(key);
        assert_eq!(&p[..8], &[0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e]);
        assert_eq!(&p[8..12], &4242i32.to_be_bytes());
        assert_eq!(&p[12..], &0x1234_5678i32.to_be_bytes());
        let debug = format!("{token:?}");
        assert!(debug.contains("4242"), "{debug}");
        assert!(!debug.contains(&0x1234_5678.to_string()), "{debug}");
    }
}
