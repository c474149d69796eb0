//! The connection to one server address: name resolution of a `dbserver` member into the
//! addresses libpq would try, the socket to one address (TCP, or a Unix-domain socket),
//! the socket options of [`ConnectOptions`] (TCP_NODELAY, keepalives, `TCP_USER_TIMEOUT`)
//! and PGREQUIREPEER's check of the process behind a Unix socket.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::ConnectOptions;
use crate::access_point::{Host, PORT};

/// One address a member of `dbserver` stands for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A TCP address (port 5432).
    Tcp(SocketAddr),
    /// A Unix-domain socket file (`DIR/.s.PGSQL.5432`).
    Unix(PathBuf),
}

impl Peer {
    /// The IP address, for TCP.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Peer::Tcp(addr) => Some(addr.ip()),
            Peer::Unix(_) => None,
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{}", addr.ip()),
            Peer::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The addresses of one member, in the resolver's order (libpq's `getaddrinfo` order):
/// every address of a name, the literal itself, or the socket file of a directory. The
/// error is the resolver's reason (libpq's `gai_strerror`).
pub(crate) async fn resolve(host: &Host) -> io::Result<Vec<Peer>> {
    match host {
        Host::Socket(_) => Ok(socket_peer(host)),
        Host::Tcp(name) => tcp_peers(tokio::net::lookup_host((name.as_str(), PORT)).await),
    }
}

/// [`resolve`] for callers outside tokio (the blocking adapter).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn resolve_blocking(host: &Host) -> io::Result<Vec<Peer>> {
    use std::net::ToSocketAddrs;
    match host {
        Host::Socket(_) => Ok(socket_peer(host)),
        Host::Tcp(name) => tcp_peers((name.as_str(), PORT).to_socket_addrs()),
    }
}

fn socket_peer(host: &Host) -> Vec<Peer> {
    host.socket_path().map(Peer::Unix).into_iter().collect()
}

/// The resolver's answer as peers; no address at all is an error as libpq's.
fn tcp_peers(found: io::Result<impl Iterator<Item = SocketAddr>>) -> io::Result<Vec<Peer>> {
    let peers: Vec<Peer> = found.map_err(reason_only)?.map(Peer::Tcp).collect();
    if peers.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no address"));
    }
    Ok(peers)
}

/// The resolver's reason alone (tokio and std prefix it with "failed to lookup address
/// information: "), as libpq prints `gai_strerror`'s.
fn reason_only(e: io::Error) -> io::Error {
    let text = e.to_string();
    match text.strip_prefix("failed to lookup address information: ") {
        Some(reason) => io::Error::new(e.kind(), reason.to_string()),
        None => e,
    }
}

/// A connected socket: TCP or Unix-domain.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix-domain socket.
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Stream {
    /// The TCP socket, `None` for a Unix-domain socket.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            #[cfg(unix)]
            Stream::Unix(_) => None,
        }
    }
}

/// Connects to one address and applies the options (TCP) or PGREQUIREPEER's check (Unix).
pub(crate) async fn open(
    peer: &Peer,
    options: &ConnectOptions,
    require_peer: Option<&str>,
) -> Result<Stream, OpenError> {
    match peer {
        Peer::Tcp(addr) => {
            let stream = TcpStream::connect(addr).await.map_err(OpenError::Io)?;
            configure(&stream, options).map_err(OpenError::Io)?;
            Ok(Stream::Tcp(stream))
        }
        #[cfg(unix)]
        Peer::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(OpenError::Io)?;
            if let Some(expected) = require_peer {
                let actual = peer_user(&stream).map_err(OpenError::Io)?;
                if actual != expected {
                    return Err(OpenError::RequirePeer {
                        expected: expected.to_string(),
                        actual,
                    });
                }
            }
            Ok(Stream::Unix(stream))
        }
        #[cfg(not(unix))]
        Peer::Unix(path) => {
            let _ = require_peer;
            Err(OpenError::Io(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "Unix-domain sockets are not supported by pgdap on this platform (dbserver member \"{}\"); name the server by host name or IP address",
                    path.parent().map(|p| p.display().to_string()).unwrap_or_default()
                ),
            )))
        }
    }
}

/// Why [`open`] failed.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The socket could not be connected (libpq tries the next address).
    Io(io::Error),
    /// PGREQUIREPEER names another user (libpq stops).
    #[cfg_attr(not(unix), allow(dead_code))]
    RequirePeer { expected: String, actual: String },
}

/// The user name of the process at the other end of a Unix socket (libpq's
/// `getpeereid` + `pg_fe_getusername`).
#[cfg(unix)]
fn peer_user(stream: &tokio::net::UnixStream) -> io::Result<String> {
    let uid = stream.peer_cred()?.uid();
    user_name(uid).ok_or_else(|| {
        io::Error::other(format!(
            "could not look up local user ID {uid}: no such user (PGREQUIREPEER)"
        ))
    })
}

/// The name of a user id (`getpwuid_r`): std has no user database lookup, and this is one
/// call where a crate would add a dependency for it.
#[cfg(unix)]
#[allow(unsafe_code)]
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `pwd` and `buf` outlive the call; getpwuid_r writes at most `buf.len()`
    // bytes into `buf` and sets `result` to `&pwd` or null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

fn configure(stream: &TcpStream, options: &ConnectOptions) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = SockRef::from(stream);
    if options.keepalives {
        let keepalive = TcpKeepalive::new()
            .with_time(options.keepalives_idle)
            .with_interval(options.keepalives_interval);
        #[cfg(not(any(windows, target_os = "openbsd", target_os = "redox")))]
        let keepalive = keepalive.with_retries(options.keepalives_retries);
        socket.set_tcp_keepalive(&keepalive)?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !options.tcp_user_timeout.is_zero() {
        socket.set_tcp_user_timeout(Some(options.tcp_user_timeout))?;
    }
    Ok(())
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
