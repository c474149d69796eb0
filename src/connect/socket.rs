//! The TCP connection to the server: name resolution, every address in turn, and the
//! socket options of [`ConnectOptions`] (TCP_NODELAY, keepalives, `TCP_USER_TIMEOUT`).

use std::io;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use super::ConnectOptions;
use crate::access_point::PORT;

/// Connects to `host` port 5432, trying each address it resolves to in order (as libpq
/// does), and applies the keepalive options. The error is the last address's.
pub(crate) async fn open(host: &str, options: &ConnectOptions) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, PORT)).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                configure(&stream, options)?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("could not translate host name \"{host}\" to address"),
        )
    }))
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
