//! A hostile PostgreSQL server for the negotiation tests (tests/server/security.rs): it
//! misbehaves at one point of the SSL negotiation or authentication and records every
//! byte a client sends after that point, and whether the password ever arrived. The
//! same fake serves pgdap (async, blocking, a bare `MakeTls`) and libpq 18, so the test
//! compares what each sent.
//!
//! Plain threads and blocking sockets, so that it serves a client running in any kind of
//! test (async, blocking, a child process).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};

/// Where and how the fake misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Replies `E` to the SSLRequest, then asks whatever start-up follows for a cleartext
    /// password (the measured attack: an `E` the client reads as `N`).
    ErrorReplyThenCleartext,
    /// Replies `E` to the SSLRequest, then accepts whatever start-up follows
    /// (AuthenticationOk, ReadyForQuery).
    ErrorReplyThenOk,
    /// Asks for a cleartext password after the start-up (against PGREQUIREAUTH).
    CleartextRequest,
    /// Sends an AuthenticationSASL of 2100 bytes (libpq accepts 2000 at most).
    OversizedSasl,
}

/// What one connection showed.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The bytes the client sent after the misbehaviour (plaintext or decrypted).
    pub after: Vec<u8>,
    /// Everything the client sent (plaintext or decrypted), SSLRequest included.
    pub all: Vec<u8>,
}

#[derive(Default)]
struct Log {
    accepted: usize,
    done: Vec<Seen>,
}

/// A fake server on `addr:5432`. With `tls`, it answers an SSLRequest with `S` and a
/// handshake with the harness PKI's `server` certificate (not checked by a client
/// without a root CA), else with `N` (the `E` misbehaviours answer `E` either way).
pub struct Hostile {
    pub addr: &'static str,
    what: Arc<Mutex<Misbehaviour>>,
    log: Arc<(Mutex<Log>, Condvar)>,
}

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

impl Hostile {
    pub fn start(addr: &'static str, tls: bool) -> Hostile {
        let listener = TcpListener::bind((addr, 5432)).unwrap();
        let what = Arc::new(Mutex::new(Misbehaviour::CleartextRequest));
        let log: Arc<(Mutex<Log>, Condvar)> = Arc::default();
        let acceptor = tls.then(|| {
            let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
            a.set_certificate_chain_file(super::pki().path("server.crt"))
                .unwrap();
            a.set_private_key_file(super::pki().path("server.key"), SslFiletype::PEM)
                .unwrap();
            Arc::new(a.build())
        });
        let (w, l) = (what.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let what = *w.lock().unwrap();
                l.0.lock().unwrap().accepted += 1;
                let (l, acceptor) = (l.clone(), acceptor.clone());
                std::thread::spawn(move || {
                    let mut seen = Seen::default();
                    let _ = serve(stream, what, acceptor.as_deref(), &mut seen);
                    l.0.lock().unwrap().done.push(seen);
                    l.1.notify_all();
                });
            }
        });
        Hostile { addr, what, log }
    }

    /// Sets the misbehaviour of the next connections and forgets what was seen.
    pub fn set(&self, what: Misbehaviour) {
        *self.what.lock().unwrap() = what;
        *self.log.0.lock().unwrap() = Log::default();
    }

    /// What the connections since [`Hostile::set`] showed, once every accepted one has
    /// ended (a client that keeps a connection open past 30 s fails the test).
    pub fn seen(&self) -> Vec<Seen> {
        let (lock, cv) = &*self.log;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut log = lock.lock().unwrap();
        while log.done.len() < log.accepted {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "a connection to the fake server did not end"
            );
            log = cv.wait_timeout(log, left).unwrap().0;
        }
        log.done.clone()
    }
}

/// A byte stream that records what it reads.
struct Recorder<'a, S> {
    inner: S,
    seen: &'a mut Seen,
    misbehaved: bool,
}

impl<S: Read> Read for Recorder<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.all.extend_from_slice(&buf[..n]);
        if self.misbehaved {
            self.seen.after.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

impl<S: Write> Write for Recorder<'_, S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn auth(code: i32, rest: &[u8]) -> Vec<u8> {
    message(b'R', &[&code.to_be_bytes()[..], rest].concat())
}

/// Reads one start-up packet (length-prefixed, no tag); `None` at EOF.
fn read_startup(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let len = i32::from_be_bytes(len).clamp(4, 10_000) as usize;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// Reads until the client closes (or 20 s pass: a client that neither sends nor
/// closes). The first answer of the client (a password, a SASL message) gets a FATAL
/// error, so a client that answered ends too.
fn drain(s: &mut (impl Read + Write)) {
    let mut buf = [0u8; 4096];
    let mut refused = false;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        if !refused {
            refused = true;
            let fatal = message(
                b'E',
                b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed (hostile fake)\0\0",
            );
            if s.write_all(&fatal).and_then(|()| s.flush()).is_err() {
                break;
            }
        }
    }
}

fn serve(
    stream: TcpStream,
    what: Misbehaviour,
    acceptor: Option<&SslAcceptor>,
    seen: &mut Seen,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut first = [0u8; 8];
    let mut plain = Recorder {
        inner: &stream,
        seen,
        misbehaved: false,
    };
    plain.read_exact(&mut first)?;
    if first == SSL_REQUEST {
        match what {
            Misbehaviour::ErrorReplyThenCleartext | Misbehaviour::ErrorReplyThenOk => {
                plain.write_all(b"E")?;
                plain.misbehaved = true;
                // A client that took the 'E' for 'N' now sends its start-up message.
                if read_startup(&mut plain).is_some() {
                    let reply = if what == Misbehaviour::ErrorReplyThenOk {
                        [auth(0, b""), message(b'Z', b"I")].concat()
                    } else {
                        auth(3, b"")
                    };
                    plain.write_all(&reply)?;
                }
                drain(&mut plain);
                return Ok(());
            }
            _ => {}
        }
        if let Some(acceptor) = acceptor {
            plain.write_all(b"S")?;
            let tls = acceptor
                .accept(&stream)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut tls = Recorder {
                inner: tls,
                seen: plain.seen,
                misbehaved: false,
            };
            let _startup = read_startup(&mut tls);
            return authenticate(&mut tls, what);
        }
        plain.write_all(b"N")?;
        read_startup(&mut plain);
    } else {
        // A start-up message without SSLRequest: read the rest of it.
        let len = i32::from_be_bytes([first[0], first[1], first[2], first[3]]);
        let mut rest = vec![0u8; (len.clamp(8, 10_000) - 8) as usize];
        plain.read_exact(&mut rest)?;
    }
    authenticate(&mut plain, what)
}

/// After the start-up message: the misbehaving authentication request, then whatever
/// the client sends is recorded until it closes.
fn authenticate<S: Read + Write>(
    s: &mut Recorder<'_, S>,
    what: Misbehaviour,
) -> std::io::Result<()> {
    let request = match what {
        Misbehaviour::OversizedSasl => {
            let mut mechanisms = b"SCRAM-SHA-256\0".to_vec();
            mechanisms.extend(std::iter::repeat_n(b'X', 2100));
            mechanisms.extend_from_slice(b"\0\0");
            auth(10, &mechanisms)
        }
        _ => auth(3, b""),
    };
    s.write_all(&request)?;
    s.flush()?;
    s.misbehaved = true;
    drain(s);
    Ok(())
}
