//! A TLS-terminating man in the middle on loopback, for the channel-binding tests.
//!
//! It listens on `<addr>:5432` and relays every client to a real server. A client that
//! sends an SSLRequest gets a TLS session with the proxy's own certificate (the attacker's:
//! generated at run time, nothing to do with the test CA), and the proxy opens its own TLS
//! session to the server, so the server offers SCRAM-SHA-256-PLUS; a client that starts in
//! plaintext is relayed in plaintext. It records what it sees of each connection: TLS or
//! not, the SNI, the SASL mechanisms the server offered, the mechanism and gs2 header the
//! client chose, and whether the server accepted the login. Optionally it strips
//! SCRAM-SHA-256-PLUS from the server's offer (the downgrade a MITM would try).
//!
//! Use: `#[path = "../common/mitm.rs"] mod mitm;` in a module of tests/server (security).

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use openssl::pkey::{PKey, Private};
use openssl::ssl::{NameType, Ssl, SslAcceptor, SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_openssl::SslStream;

const SSL_REQUEST: u32 = 80877103;
const GSSENC_REQUEST: u32 = 80877104;
const PLUS: &str = "SCRAM-SHA-256-PLUS";

/// What the proxy saw of one client connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The client's leg was TLS (terminated by the proxy).
    pub tls: bool,
    /// The SNI the client sent.
    pub sni: Option<String>,
    /// SASL mechanisms the server offered (before any stripping).
    pub offered: Vec<String>,
    /// The mechanism the client chose.
    pub mechanism: Option<String>,
    /// The client's gs2 channel-binding flag: `p=tls-server-end-point`, `y` or `n`.
    pub gs2: Option<String>,
    /// The server sent AuthenticationOk: the login went through the proxy.
    pub authenticated: bool,
}

impl Seen {
    /// SCRAM without channel binding over a TLS leg (`n`): the downgrade.
    pub fn unbound_scram_over_tls(&self) -> bool {
        self.tls && self.gs2.as_deref() == Some("n")
    }
}

pub struct Mitm {
    pub addr: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mitm {
    /// Starts the proxy on `addr:5432`, relaying to `upstream:5432`, presenting `cert`.
    /// It runs on a thread of its own (tests block on psql while it relays).
    pub fn start(
        addr: &'static str,
        upstream: &str,
        cert: &X509,
        key: &PKey<Private>,
        strip_plus: bool,
    ) -> Mitm {
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acceptor.set_certificate(cert).unwrap();
        acceptor.set_private_key(key).unwrap();
        let acceptor = Arc::new(acceptor.build());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let upstream = upstream.to_string();
        let log = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind((addr, 5432)).await.unwrap();
                ready_tx.send(()).unwrap();
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, upstream, log) =
                        (acceptor.clone(), upstream.clone(), log.clone());
                    tokio::spawn(async move {
                        let _ = handle(client, &upstream, &acceptor, &log, strip_plus).await;
                    });
                }
            });
        });
        ready_rx.recv().unwrap();
        Mitm { addr, seen }
    }

    /// The connections seen so far, and forgets them.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

type Io = Box<dyn AsyncReadWrite>;
trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

async fn handle(
    mut client: TcpStream,
    upstream: &str,
    acceptor: &SslAcceptor,
    log: &Arc<Mutex<Vec<Seen>>>,
    strip_plus: bool,
) -> std::io::Result<()> {
    let mut first = [0u8; 8];
    loop {
        client.read_exact(&mut first).await?;
        let code = u32::from_be_bytes([first[4], first[5], first[6], first[7]]);
        if u32::from_be_bytes([first[0], first[1], first[2], first[3]]) == 8
            && code == GSSENC_REQUEST
        {
            client.write_all(b"N").await?;
            continue;
        }
        break;
    }
    let index = {
        let mut log = log.lock().unwrap();
        log.push(Seen::default());
        log.len() - 1
    };
    let code = u32::from_be_bytes([first[4], first[5], first[6], first[7]]);
    let mut server = TcpStream::connect((upstream, 5432)).await?;
    let (client_io, server_io, prefix): (Io, Io, Vec<u8>) = if code == SSL_REQUEST {
        client.write_all(b"S").await?;
        let mut tls = SslStream::new(Ssl::new(acceptor.context()).unwrap(), client).unwrap();
        Pin::new(&mut tls)
            .accept()
            .await
            .map_err(std::io::Error::other)?;
        let sni = tls
            .ssl()
            .servername(NameType::HOST_NAME)
            .map(str::to_string);
        {
            let mut log = log.lock().unwrap();
            log[index].tls = true;
            log[index].sni = sni;
        }
        server.write_all(&first).await?;
        let mut answer = [0u8; 1];
        server.read_exact(&mut answer).await?;
        let mut connector = SslConnector::builder(SslMethod::tls()).unwrap();
        connector.set_verify(SslVerifyMode::NONE);
        let ssl = connector
            .build()
            .configure()
            .unwrap()
            .verify_hostname(false)
            .use_server_name_indication(false)
            .into_ssl("upstream")
            .unwrap();
        let mut up = SslStream::new(ssl, server).unwrap();
        Pin::new(&mut up)
            .connect()
            .await
            .map_err(std::io::Error::other)?;
        (Box::new(tls), Box::new(up), Vec::new())
    } else {
        (Box::new(client), Box::new(server), first.to_vec())
    };
    relay(client_io, server_io, prefix, log.clone(), index, strip_plus).await
}

async fn relay(
    client: Io,
    server: Io,
    prefix: Vec<u8>,
    log: Arc<Mutex<Vec<Seen>>>,
    index: usize,
    strip_plus: bool,
) -> std::io::Result<()> {
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut server_r, mut server_w) = tokio::io::split(server);
    let client_log = log.clone();
    let upstream = async move {
        // Client to server: the startup message (no type byte), then typed messages.
        let mut seen = prefix.clone();
        server_w.write_all(&prefix).await?;
        let mut startup_done = false;
        let mut decided = false;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = client_r.read(&mut buf).await?;
            if n == 0 {
                return server_w.shutdown().await;
            }
            if !decided {
                seen.extend_from_slice(&buf[..n]);
                if !startup_done && seen.len() >= 4 {
                    let len = u32::from_be_bytes([seen[0], seen[1], seen[2], seen[3]]) as usize;
                    if seen.len() >= len {
                        seen.drain(..len);
                        startup_done = true;
                    }
                }
                while startup_done && seen.len() >= 5 {
                    let len = u32::from_be_bytes([seen[1], seen[2], seen[3], seen[4]]) as usize + 1;
                    if seen.len() < len {
                        break;
                    }
                    let message: Vec<u8> = seen.drain(..len).collect();
                    if message[0] == b'p' && message[5..].starts_with(b"SCRAM-SHA-256") {
                        let body = &message[5..];
                        let nul = body.iter().position(|b| *b == 0).unwrap_or(body.len());
                        let mechanism = String::from_utf8_lossy(&body[..nul]).into_owned();
                        let data = body.get(nul + 5..).unwrap_or_default();
                        let comma = data.iter().position(|b| *b == b',').unwrap_or(data.len());
                        let mut log = client_log.lock().unwrap();
                        log[index].mechanism = Some(mechanism);
                        log[index].gs2 = Some(String::from_utf8_lossy(&data[..comma]).into_owned());
                        decided = true;
                        break;
                    }
                }
            }
            server_w.write_all(&buf[..n]).await?;
        }
    };
    let downstream = async move {
        // Server to client, message by message until the login is decided.
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let mut raw = false;
        loop {
            let n = server_r.read(&mut buf).await?;
            if n == 0 {
                client_w.write_all(&pending).await?;
                return client_w.shutdown().await;
            }
            if raw {
                client_w.write_all(&buf[..n]).await?;
                continue;
            }
            pending.extend_from_slice(&buf[..n]);
            let mut out = Vec::new();
            while pending.len() >= 5 {
                let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]])
                    as usize
                    + 1;
                if pending.len() < len {
                    break;
                }
                let mut message: Vec<u8> = pending.drain(..len).collect();
                if message[0] == b'R' && message.len() >= 9 {
                    let code = u32::from_be_bytes([message[5], message[6], message[7], message[8]]);
                    if code == 10 {
                        let offered: Vec<String> = message[9..]
                            .split(|b| *b == 0)
                            .filter(|m| !m.is_empty())
                            .map(|m| String::from_utf8_lossy(m).into_owned())
                            .collect();
                        if strip_plus {
                            let mut body = 10u32.to_be_bytes().to_vec();
                            for m in offered.iter().filter(|m| *m != PLUS) {
                                body.extend_from_slice(m.as_bytes());
                                body.push(0);
                            }
                            body.push(0);
                            message = vec![b'R'];
                            message.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
                            message.extend_from_slice(&body);
                        }
                        log.lock().unwrap()[index].offered = offered;
                    } else if code == 0 {
                        log.lock().unwrap()[index].authenticated = true;
                        raw = true;
                    }
                }
                out.extend_from_slice(&message);
                if raw {
                    out.append(&mut pending);
                    break;
                }
            }
            client_w.write_all(&out).await?;
        }
    };
    let _ = tokio::try_join!(upstream, downstream);
    Ok(())
}
