//! pgdap's own socket to the server.
//!
//! tokio-postgres reads the reply to the SSLRequest and the authentication requests
//! itself, and it decides differently from libpq in places that matter to operators:
//! it takes any reply but `S` as `N`, where libpq fails. pgdap therefore opens the TCP
//! connection itself (with its keepalives), wraps it in a [`Wire`], and hands that to
//! `tokio_postgres::Config::connect_raw`. The wrapper
//!
//! - checks the one-byte reply to an SSLRequest: `S` and `N` pass (an `N` fails when the
//!   caller demands TLS); an error response (`E`) ends the attempt with libpq's "server
//!   sent an error response during SSL exchange" in every mode, as libpq 15.9+/16.5+/17.1+
//!   do (CVE-2024-10977): the server is not verified yet, so neither its message nor a
//!   plaintext retry on that socket is trusted; anything else is libpq's "received
//!   invalid response to SSL negotiation". Nothing of the reply reaches tokio-postgres,
//!   which would take every byte but `S` for `N` and go on in plaintext;
//! - feeds the plaintext start-up to the attempt's [`StartupWatch`](crate::startup::StartupWatch)
//!   (over TLS, [`TlsStream`](crate::tls::TlsStream) feeds the decrypted bytes), whose
//!   checks may end the attempt before tokio-postgres answers a request;
//! - steps aside once the server is ready for queries: after start-up it only forwards.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::socket::Stream;
use crate::startup::{StartupError, Watch, SSL_REQUEST};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing written yet.
    Start,
    /// An SSLRequest was sent; the next byte read is the reply.
    SslReply,
    /// Plaintext protocol: watched until start-up ends.
    Plain,
    /// TLS records (the TLS stream watches the decrypted bytes), or start-up is over.
    Through,
}

/// pgdap's socket to the server (TCP or Unix-domain), with the start-up checks described
/// in the module documentation.
pub struct Wire {
    inner: Stream,
    watch: Watch,
    phase: Phase,
    require_tls: bool,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("peer", &self.inner.tcp().and_then(|s| s.peer_addr().ok()))
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Wire {
    /// Wraps a connected socket. With `require_tls`, an `N` reply to the SSLRequest is an
    /// error even when the protocol layer would go on in plaintext.
    pub(crate) fn new(inner: Stream, watch: Watch, require_tls: bool) -> Wire {
        Wire {
            inner,
            watch,
            phase: Phase::Start,
            require_tls,
        }
    }

    /// The TCP socket (for socket options and addresses); `None` on a Unix-domain socket.
    pub fn socket(&self) -> Option<&TcpStream> {
        self.inner.tcp()
    }

    fn watch_plain(&mut self, data: &[u8]) -> io::Result<()> {
        let mut watch = self
            .watch
            .lock()
            .map_err(|_| io::Error::other("start-up watch poisoned"))?;
        watch.feed(data).map_err(StartupError::into_io)?;
        if watch.done {
            self.phase = Phase::Through;
        }
        Ok(())
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let new = &buf.filled()[before..];
        if new.is_empty() {
            return Poll::Ready(Ok(()));
        }
        match this.phase {
            Phase::Start | Phase::Through => Poll::Ready(Ok(())),
            Phase::SslReply => {
                let (reply, rest) = (new[0], &new[1..]);
                match reply {
                    b'S' => this.phase = Phase::Through,
                    b'N' if this.require_tls => {
                        return Poll::Ready(Err(StartupError::SslRefused.into_io()))
                    }
                    b'N' => this.phase = Phase::Plain,
                    // An error response (e.g. a server that failed to fork): libpq since
                    // CVE-2024-10977 neither reads the unauthenticated message nor goes on
                    // on this socket, in any mode. tokio-postgres would read the byte as
                    // 'N' and send its start-up message in plaintext.
                    b'E' => return Poll::Ready(Err(StartupError::ErrorDuringSsl.into_io())),
                    other => {
                        return Poll::Ready(Err(StartupError::InvalidSslResponse(other).into_io()))
                    }
                }
                if this.phase == Phase::Plain && !rest.is_empty() {
                    let rest = rest.to_vec();
                    return Poll::Ready(this.watch_plain(&rest));
                }
                Poll::Ready(Ok(()))
            }
            Phase::Plain => {
                let data = new.to_vec();
                Poll::Ready(this.watch_plain(&data))
            }
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.phase == Phase::Start && !buf.is_empty() {
            self.phase = if buf.starts_with(&SSL_REQUEST) {
                Phase::SslReply
            } else if buf[0] == 0x16 {
                // A TLS ClientHello: direct TLS, no SSLRequest.
                Phase::Through
            } else {
                Phase::Plain
            };
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::startup::StartupWatch;

    /// A loopback pair: pgdap's `Wire` on one end, the raw server socket on the other.
    async fn wire_pair() -> (Wire, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let wire = Wire::new(Stream::Tcp(client.unwrap()), StartupWatch::new(None), false);
        (wire, server.unwrap().0)
    }

    #[tokio::test]
    async fn an_error_reply_to_the_ssl_request_ends_the_attempt_whatever_follows() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let full_error = b"E\x00\x00\x00\x2aSFATAL\x00C53300\x00Msorry, too many clients\x00\x00";
        for reply in [
            &b"E"[..],
            &b"E\x00\x00\x00\x08R\x00\x00\x00"[..],
            &full_error[..],
        ] {
            let (mut wire, mut server) = wire_pair().await;
            wire.write_all(&SSL_REQUEST).await.unwrap();
            let mut request = [0u8; 8];
            server.read_exact(&mut request).await.unwrap();
            server.write_all(reply).await.unwrap();
            // tokio-postgres reads the reply with a one-byte buffer.
            let mut byte = [0u8; 1];
            let err = wire.read_exact(&mut byte).await.unwrap_err();
            let inner = err.get_ref().and_then(|e| e.downcast_ref::<StartupError>());
            assert!(
                matches!(inner, Some(StartupError::ErrorDuringSsl)),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                "server sent an error response during SSL exchange"
            );
        }
    }

    #[test]
    fn invalid_ssl_reply_is_named_like_libpq() {
        assert_eq!(
            StartupError::InvalidSslResponse(b'X').to_string(),
            "received invalid response to SSL negotiation: X"
        );
    }
}
