//! The backend's start-up messages as pgdap watches them: an incremental parser fed with
//! what the server sends before it is ready for queries (plaintext from
//! [`Wire`](crate::connect::Wire), decrypted from [`TlsStream`](crate::tls::TlsStream)),
//! which records the authentication requests in order and the cancel key
//! (BackendKeyData), and ends the attempt before tokio-postgres reads a request that
//! libpq would refuse:
//!
//! - a request whose length is outside libpq's bounds (8 to 2000 bytes): "received
//!   invalid authentication request", as soon as its length is read;
//! - a request a check refuses ([`AuthCheck`]: `PGREQUIREAUTH`,
//!   `PGCHANNELBINDING=require`, see [`super::checks`]);
//! - an offer of SCRAM-SHA-256-PLUS on a TLS session whose certificate defines no
//!   channel-binding hash ([`crate::tls::binding`] explains why).
//!
//! The watch steps aside once the server is ready for queries (or has sent an error). No
//! existing crate exposes these start-up events of a tokio-postgres connection, so the
//! small parser is written here.

use std::io;
use std::sync::{Arc, Mutex};

/// Why a certificate has no `tls-server-end-point` hash (libpq's wording).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoEndPointHash {
    /// libpq's message, e.g. `could not find digest for NID UNDEF`.
    pub libpq_message: String,
    /// The certificate's signature algorithm, e.g. `ED25519`.
    pub signature_algorithm: String,
}

/// The server offered SCRAM-SHA-256-PLUS, and the server certificate defines no
/// `tls-server-end-point` hash: authentication stops, as libpq's does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", crate::error::no_binding_text(&.0.libpq_message, &.0.signature_algorithm))]
pub struct ChannelBindingUnavailable(pub NoEndPointHash);

/// The SSLRequest message: length 8, request code 80877103.
pub(crate) const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// An authentication request of the server (`AuthenticationXXX`, message `R`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRequest {
    /// AuthenticationOk: the server accepted the client.
    Ok,
    /// AuthenticationCleartextPassword.
    CleartextPassword,
    /// AuthenticationMD5Password.
    Md5Password,
    /// AuthenticationGSS.
    Gss,
    /// AuthenticationGSSContinue.
    GssContinue,
    /// AuthenticationSSPI.
    Sspi,
    /// AuthenticationSASL with the mechanisms the server offers
    /// (`SCRAM-SHA-256`, `SCRAM-SHA-256-PLUS`).
    Sasl(Vec<String>),
    /// AuthenticationSASLContinue.
    SaslContinue,
    /// AuthenticationSASLFinal.
    SaslFinal,
    /// A request code this client does not know.
    Other(i32),
}

impl AuthRequest {
    fn decode(body: &[u8]) -> AuthRequest {
        let code = match body.get(..4) {
            Some(b) => i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            None => return AuthRequest::Other(-1),
        };
        match code {
            0 => AuthRequest::Ok,
            3 => AuthRequest::CleartextPassword,
            5 => AuthRequest::Md5Password,
            7 => AuthRequest::Gss,
            8 => AuthRequest::GssContinue,
            9 => AuthRequest::Sspi,
            10 => AuthRequest::Sasl(
                body[4..]
                    .split(|b| *b == 0)
                    .filter(|m| !m.is_empty())
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .collect(),
            ),
            11 => AuthRequest::SaslContinue,
            12 => AuthRequest::SaslFinal,
            other => AuthRequest::Other(other),
        }
    }
}

/// The process id and secret key of a session (BackendKeyData), for cancel requests.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackendKey {
    pub(crate) process_id: i32,
    pub(crate) secret_key: i32,
}

impl std::fmt::Debug for BackendKey {
    /// The secret key is a credential for cancelling the session's queries: not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendKey")
            .field("process_id", &self.process_id)
            .finish_non_exhaustive()
    }
}

/// A check run on each authentication request before tokio-postgres sees it; an `Err`
/// ends the attempt with that reason (libpq's wording), before anything is answered.
/// It receives the requests seen so far and the new one.
pub(crate) type AuthCheck =
    Arc<dyn Fn(&[AuthRequest], &AuthRequest) -> std::result::Result<(), String> + Send + Sync>;

/// Why pgdap ended an attempt during start-up (carried inside the `io::Error`
/// tokio-postgres reports): a reply to the SSLRequest ([`Wire`](crate::connect::Wire)) or
/// an authentication request ([`StartupWatch`]) that libpq would refuse.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartupError {
    /// The reply to the SSLRequest was neither `S`, `N` nor an error response.
    #[error("received invalid response to SSL negotiation: {}", char::from(*.0))]
    InvalidSslResponse(u8),
    /// TLS was demanded and the server answered `N`.
    #[error("server does not support SSL")]
    SslRefused,
    /// The server answered the SSLRequest with an error response (libpq's message).
    #[error("server sent an error response during SSL exchange")]
    ErrorDuringSsl,
    /// An authentication request shorter than 8 or longer than 2000 bytes (its length
    /// field), which libpq refuses before reading it.
    #[error("received invalid authentication request")]
    InvalidAuthRequest(i32),
    /// An [`AuthCheck`] refused an authentication request.
    #[error("{0}")]
    AuthRefused(String),
    /// The server offered SCRAM-SHA-256-PLUS on a TLS session whose certificate defines
    /// no `tls-server-end-point` hash ([`crate::tls::binding`]).
    #[error("{}", ChannelBindingUnavailable(.0.clone()))]
    ChannelBinding(NoEndPointHash),
}

impl StartupError {
    /// The `io::Error` that carries it through tokio-postgres.
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            // The shape the error mapping looks for (`connect/errors.rs`).
            StartupError::ChannelBinding(reason) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                ChannelBindingUnavailable(reason),
            ),
            other => io::Error::other(other),
        }
    }
}

/// What a connection's start-up showed, shared by its [`Wire`](crate::connect::Wire) and
/// its TLS stream.
#[derive(Default)]
pub(crate) struct StartupWatch {
    parser: Parser,
    /// The authentication requests, in order.
    pub(crate) auth_requests: Vec<AuthRequest>,
    /// BackendKeyData.
    pub(crate) backend_key: Option<BackendKey>,
    /// ReadyForQuery (or an error response) was seen: start-up is over.
    pub(crate) done: bool,
    check: Option<AuthCheck>,
    /// Set by the TLS layer when the server certificate defines no channel-binding hash:
    /// an offer of SCRAM-SHA-256-PLUS then ends the attempt (see [`crate::tls::binding`]).
    refuse_plus: Option<NoEndPointHash>,
}

impl std::fmt::Debug for StartupWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartupWatch")
            .field("auth_requests", &self.auth_requests)
            .field("backend_key", &self.backend_key)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// A [`StartupWatch`] shared between the socket and the TLS layer.
pub(crate) type Watch = Arc<Mutex<StartupWatch>>;

impl StartupWatch {
    /// A watch that runs `check` on every authentication request.
    pub(crate) fn new(check: Option<AuthCheck>) -> Watch {
        Arc::new(Mutex::new(StartupWatch {
            check,
            ..StartupWatch::default()
        }))
    }

    /// Refuses an offer of SCRAM-SHA-256-PLUS from now on, for `reason`: the TLS session's
    /// certificate defines no `tls-server-end-point` hash.
    pub(crate) fn refuse_plus_offer(&mut self, reason: NoEndPointHash) {
        self.refuse_plus = Some(reason);
    }

    /// Feeds backend bytes (plaintext, or decrypted). Returns `Err` when a check refuses.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> std::result::Result<(), StartupError> {
        while !self.done && !data.is_empty() {
            let (used, message) = self.parser.push(data)?;
            data = &data[used..];
            let Some((tag, body)) = message else { continue };
            match tag {
                b'R' => {
                    let request = AuthRequest::decode(&body);
                    if let (Some(reason), AuthRequest::Sasl(mechanisms)) =
                        (&self.refuse_plus, &request)
                    {
                        if mechanisms.iter().any(|m| m == SCRAM_PLUS) {
                            return Err(StartupError::ChannelBinding(reason.clone()));
                        }
                    }
                    if let Some(check) = &self.check {
                        check(&self.auth_requests, &request).map_err(StartupError::AuthRefused)?;
                    }
                    self.auth_requests.push(request);
                }
                b'K' if body.len() >= 8 => {
                    self.backend_key = Some(BackendKey {
                        process_id: i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                        secret_key: i32::from_be_bytes([body[4], body[5], body[6], body[7]]),
                    });
                }
                b'Z' | b'E' => self.done = true,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Incremental parser of backend messages: keeps the bodies of the few messages the
/// watch reads (authentication requests, BackendKeyData, bounded), skips the others.
#[derive(Debug, Default)]
struct Parser {
    header: Vec<u8>,
    /// Body bytes still expected for the current message.
    remaining: usize,
    body: Vec<u8>,
    keep: bool,
}

/// Largest body kept: libpq refuses an authentication request longer than 2000 bytes
/// (an AuthenticationSASL lists a few mechanism names).
const KEEP_LIMIT: usize = 2000;

/// libpq's bound on an authentication request's length field (body and the length
/// itself): longer ones are "received invalid authentication request".
const AUTH_REQUEST_MAX: i32 = 2000;

/// The SASL mechanism with channel binding.
const SCRAM_PLUS: &str = "SCRAM-SHA-256-PLUS";

impl Parser {
    /// Consumes up to all of `data`; returns how much it used and a completed message
    /// the watch cares about (tag, body). An authentication request whose length field
    /// is outside libpq's bounds is refused as soon as its header is complete, so no
    /// byte of it has to reach tokio-postgres.
    #[allow(clippy::type_complexity)]
    fn push(
        &mut self,
        data: &[u8],
    ) -> std::result::Result<(usize, Option<(u8, Vec<u8>)>), StartupError> {
        let mut used = 0;
        if self.header.len() < 5 {
            let take = (5 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..take]);
            used += take;
            if self.header.len() < 5 {
                return Ok((used, None));
            }
            let len = i32::from_be_bytes([
                self.header[1],
                self.header[2],
                self.header[3],
                self.header[4],
            ]);
            // libpq (`PQconnectPoll`): "Authentication requests can't be very large".
            if self.header[0] == b'R' && !(8..=AUTH_REQUEST_MAX).contains(&len) {
                return Err(StartupError::InvalidAuthRequest(len));
            }
            self.remaining = usize::try_from(len).unwrap_or(4).saturating_sub(4);
            self.keep = matches!(self.header[0], b'R' | b'K') && self.remaining <= KEEP_LIMIT;
            self.body.clear();
        }
        let take = self.remaining.min(data.len() - used);
        if self.keep {
            self.body.extend_from_slice(&data[used..used + take]);
        }
        used += take;
        self.remaining -= take;
        if self.remaining > 0 {
            return Ok((used, None));
        }
        let tag = self.header[0];
        self.header.clear();
        let body = std::mem::take(&mut self.body);
        Ok((used, Some((tag, body))))
    }
}

/// Feeds decrypted bytes to a watch (for [`TlsStream`](crate::tls::TlsStream)); returns
/// whether start-up is over (the caller then stops watching).
pub(crate) fn watch_decrypted(watch: &Watch, data: &[u8]) -> io::Result<bool> {
    let mut watch = watch
        .lock()
        .map_err(|_| io::Error::other("start-up watch poisoned"))?;
    watch.feed(data).map_err(StartupError::into_io)?;
    Ok(watch.done)
}

/// Drives a [`StartupWatch`] from outside the crate, for the fuzz target
/// `fuzz/fuzz_targets/startup.rs` (compiled only with `--cfg fuzzing`, which cargo-fuzz
/// sets). Panics when an invariant breaks:
///
/// - the watch reaches the same result (requests, cancel key, end of start-up, error)
///   whether the bytes arrive at once or split into reads of any size;
/// - a refused request is never recorded (a cleartext request under the check below, a
///   SCRAM-SHA-256-PLUS offer under the channel-binding rule);
/// - no more than libpq's 2000 bytes of a message are ever kept.
///
/// Input: byte 0 selects the rules (bit 0: refuse PLUS offers; bit 1: refuse cleartext
/// requests), bytes 1-2 seed the read sizes, the rest is the server's byte stream.
#[cfg(fuzzing)]
pub fn fuzz_startup(input: &[u8]) {
    if input.len() < 3 {
        return;
    }
    let (flags, seed, stream) = (
        input[0],
        u16::from_be_bytes([input[1], input[2]]),
        &input[3..],
    );
    let new_watch = || {
        let check: Option<AuthCheck> = (flags & 2 != 0).then(|| {
            Arc::new(|_: &[AuthRequest], r: &AuthRequest| match r {
                AuthRequest::CleartextPassword => Err("no cleartext".to_string()),
                _ => Ok(()),
            }) as AuthCheck
        });
        let watch = StartupWatch::new(check);
        if flags & 1 != 0 {
            if let Ok(mut w) = watch.lock() {
                w.refuse_plus_offer(NoEndPointHash {
                    libpq_message: "fuzz".into(),
                    signature_algorithm: "fuzz".into(),
                });
            }
        }
        watch
    };
    let summary = |w: &StartupWatch, err: Option<StartupError>| {
        assert!(
            w.parser.body.len() <= KEEP_LIMIT,
            "kept {} bytes",
            w.parser.body.len()
        );
        if flags & 2 != 0 {
            assert!(!w.auth_requests.contains(&AuthRequest::CleartextPassword));
        }
        if flags & 1 != 0 {
            assert!(!w
                .auth_requests
                .iter()
                .any(|r| matches!(r, AuthRequest::Sasl(m) if m.iter().any(|m| m == SCRAM_PLUS))));
        }
        (
            w.auth_requests.clone(),
            w.backend_key,
            w.done,
            err.map(|e| e.to_string()),
        )
    };
    let whole = new_watch();
    let mut w = whole.lock().unwrap_or_else(|e| e.into_inner());
    let err = w.feed(stream).err();
    let at_once = summary(&w, err);
    let split = new_watch();
    let mut w = split.lock().unwrap_or_else(|e| e.into_inner());
    let mut rest = stream;
    let mut state = u32::from(seed) | 1;
    let mut err = None;
    while !rest.is_empty() {
        // xorshift: read sizes of 1 to 32 bytes.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % 32 + 1).min(rest.len());
        let (now, later) = rest.split_at(n);
        rest = later;
        if let Err(e) = w.feed(now) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(at_once, summary(&w, err), "split reads changed the result");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn sasl() -> Vec<u8> {
        let mut body = 10i32.to_be_bytes().to_vec();
        body.extend_from_slice(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
        message(b'R', &body)
    }

    #[test]
    fn parses_split_messages_byte_by_byte() {
        let mut stream = sasl();
        stream.extend(message(b'S', b"client_encoding\0UTF8\0"));
        stream.extend(message(b'R', &0i32.to_be_bytes()));
        let mut key = 4242i32.to_be_bytes().to_vec();
        key.extend_from_slice(&77i32.to_be_bytes());
        stream.extend(message(b'K', &key));
        stream.extend(message(b'Z', b"I"));
        stream.extend(message(b'R', &3i32.to_be_bytes())); // after start-up: ignored
        let watch = StartupWatch::new(None);
        let mut w = watch.lock().unwrap();
        for b in &stream {
            w.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(
            w.auth_requests,
            vec![
                AuthRequest::Sasl(vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]),
                AuthRequest::Ok
            ]
        );
        assert_eq!(w.backend_key.unwrap().process_id, 4242);
        assert_eq!(w.backend_key.unwrap().secret_key, 77);
        assert!(w.done);
        assert!(!format!("{:?}", w.backend_key.unwrap()).contains("77"));
    }

    #[test]
    fn a_check_refuses_before_the_request_is_recorded() {
        let check: AuthCheck = Arc::new(|_, r| match r {
            AuthRequest::CleartextPassword => Err("no cleartext".into()),
            _ => Ok(()),
        });
        let watch = StartupWatch::new(Some(check));
        let mut w = watch.lock().unwrap();
        let err = w.feed(&message(b'R', &3i32.to_be_bytes())).unwrap_err();
        assert_eq!(err.to_string(), "no cleartext");
        assert!(w.auth_requests.is_empty());
    }

    #[test]
    fn large_unwatched_messages_are_skipped_without_keeping_them() {
        let big = vec![b'x'; 100_000];
        let mut stream = message(b'N', &big);
        stream.extend(message(b'R', &5i32.to_be_bytes()));
        let watch = StartupWatch::new(None);
        let mut w = watch.lock().unwrap();
        for chunk in stream.chunks(4096) {
            w.feed(chunk).unwrap();
        }
        assert_eq!(w.auth_requests, vec![AuthRequest::Md5Password]);
        assert!(w.parser.body.capacity() < KEEP_LIMIT * 2);
    }

    fn no_hash() -> NoEndPointHash {
        NoEndPointHash {
            libpq_message: "could not find digest for NID UNDEF".into(),
            signature_algorithm: "ED25519".into(),
        }
    }

    #[test]
    fn an_unbindable_session_refuses_a_plus_offer_even_split_across_reads() {
        let mut stream = message(b'v', &[0, 0, 0, 0]); // a message before it is skipped
        stream.extend(sasl());
        for split in 0..stream.len() {
            let watch = StartupWatch::new(None);
            let mut w = watch.lock().unwrap();
            w.refuse_plus_offer(no_hash());
            w.feed(&stream[..split]).unwrap();
            let err = w.feed(&stream[split..]).unwrap_err();
            assert!(matches!(err, StartupError::ChannelBinding(_)));
            assert!(w.auth_requests.is_empty());
            // The shape the error mapping reads: PermissionDenied around the typed error.
            let io = err.into_io();
            assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
            let inner = io.get_ref().unwrap();
            let cb = inner.downcast_ref::<ChannelBindingUnavailable>().unwrap();
            assert!(cb
                .to_string()
                .starts_with("could not find digest for NID UNDEF"));
        }
    }

    #[test]
    fn offers_without_plus_and_bindable_sessions_pass() {
        let mut plain_offer = 10i32.to_be_bytes().to_vec();
        plain_offer.extend_from_slice(b"SCRAM-SHA-256\0\0");
        for (refuse, first) in [
            (true, message(b'R', &plain_offer)),
            (true, message(b'R', &5i32.to_be_bytes())), // MD5
            (true, message(b'R', &0i32.to_be_bytes())), // AuthenticationOk
            (false, sasl()),
        ] {
            let watch = StartupWatch::new(None);
            let mut w = watch.lock().unwrap();
            if refuse {
                w.refuse_plus_offer(no_hash());
            }
            w.feed(&first).unwrap();
            assert_eq!(w.auth_requests.len(), 1);
        }
    }

    #[test]
    fn authentication_requests_outside_libpqs_bounds_are_refused_at_their_header() {
        // Length field (body + 4): 8..=2000 passes, as in libpq.
        let at_limit = message(b'R', &[&10i32.to_be_bytes()[..], &[b'A'; 1992]].concat());
        assert_eq!(at_limit.len(), 2001);
        let watch = StartupWatch::new(None);
        watch.lock().unwrap().feed(&at_limit).unwrap();
        for len in [2001i32, 100_000, 7, 4, 0, -1] {
            let mut header = vec![b'R'];
            header.extend_from_slice(&len.to_be_bytes());
            // Refused with the header alone, split at every byte: no body is needed.
            for split in 1..header.len() {
                let watch = StartupWatch::new(None);
                let mut w = watch.lock().unwrap();
                w.feed(&header[..split]).unwrap();
                let err = w.feed(&header[split..]).unwrap_err();
                assert!(matches!(err, StartupError::InvalidAuthRequest(l) if l == len));
                assert_eq!(err.to_string(), "received invalid authentication request");
                assert!(w.auth_requests.is_empty());
            }
        }
        // Other messages may be long (a NoticeResponse of 100 kB above).
        let watch = StartupWatch::new(None);
        let long_notice = message(b'N', &vec![b'x'; 5000]);
        watch.lock().unwrap().feed(&long_notice).unwrap();
    }
}
