//! The TLS layer: one OpenSSL context per configuration, and a
//! [`tokio_postgres::tls::MakeTlsConnect`] that applies libpq's verification rules per
//! connection.
//!
//! OpenSSL (not native-tls) because the rules need it: trusting only the root CA file,
//! CRL checking, verify-ca (chain without host name), libpq's CN/IP host matching, and
//! PKCS#1/SEC1 client keys. The context (root store, CRL, client identity) is built once
//! in [`TlsContext::build`]; per connection only an `Ssl` is created from it.

pub mod binding;
// The crate's only unsafe code: see the module docs.
#[allow(unsafe_code)]
mod certmode;
mod files;
// Host-name matching is public only to the fuzz target (cargo-fuzz's `--cfg fuzzing`).
#[cfg(fuzzing)]
pub mod hostname;
#[cfg(not(fuzzing))]
pub(crate) mod hostname;
pub use hostname::Mismatch;
mod reload;

pub use reload::TlsReloader;

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use openssl::nid::Nid;
use openssl::ssl::{SslContext, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::{X509VerifyResult, X509};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tracing::debug;

use crate::env::variables::{PGCERT, PGKEY};
use crate::env::{AuthMethod, Settings, SslMode};
use crate::error::{Error, Result};
use hostname::{CertificateNames, SanName};

pub(crate) use files::{check_key, exists, first_reason, load_certificates, load_crls};

/// What the TLS context verifies, and with which files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPolicy {
    /// The root CA file in use (it existed when the context was built), or `system` for
    /// the operating system's trusted roots (`PGSSLROOTCERT=system`). `None`: the server
    /// certificate is not verified (require/prefer/allow without a root CA).
    pub root_ca: Option<PathBuf>,
    /// The CRL file in use (only with a root CA file).
    pub crl: Option<PathBuf>,
    /// The CRL directory in use (`PGSSLCRLDIR`; only with a root CA file).
    pub crl_dir: Option<PathBuf>,
    /// The client certificate sent, if any.
    pub client_cert: Option<PathBuf>,
    /// The key of that certificate.
    pub client_key: Option<PathBuf>,
    /// verify-full: check the host name against the certificate.
    pub verify_host: bool,
}

/// The expensive part of TLS, built once per configuration and shared by connections.
///
/// ```no_run
/// # use std::path::Path;
/// let env = pgdap::Environment::from_pairs([("PGMODE", "verify-full")]);
/// let settings = pgdap::Settings::resolve(&env, Some(Path::new("/home/app/.postgresql")))?;
/// let tls = pgdap::tls::TlsContext::build(&settings)?.expect("SSL mode");
/// assert!(tls.policy().verify_host);
/// # Ok::<(), pgdap::Error>(())
/// ```
pub struct TlsContext {
    ssl: SslContext,
    policy: TlsPolicy,
    // Read only by the fuzz target's `roots()`.
    #[cfg_attr(not(fuzzing), allow(dead_code))]
    roots: Vec<X509>,
    /// PGSSLSNI (libpq's `sslsni`): send SNI for host names.
    sni: bool,
    /// PGSSLNEGOTIATION=direct: offer ALPN `postgresql` (libpq 17+).
    direct: bool,
    /// PGCHANNELBINDING is not `disable`: a SCRAM-SHA-256-PLUS offer must be honoured
    /// with binding (or refused) rather than answered unbound.
    channel_binding: bool,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl TlsContext {
    /// Reads the files the settings name and builds the context, as libpq's
    /// `initialize_SSL` decides: the root CA file is used whenever it exists (then the
    /// chain is verified in every SSL mode, as libpq does); verify-ca/verify-full without
    /// it is [`Error::RootCertMissing`]; the CRL is used when it exists and a root CA is
    /// in use; the client certificate is sent whenever its file exists.
    ///
    /// Returns `None` for `PGMODE=disable` (no TLS, no file is read).
    pub fn build(settings: &Settings) -> Result<Option<TlsContext>> {
        let mode = settings.mode.value;
        if mode == SslMode::Disable {
            return Ok(None);
        }
        let setup = |e: openssl::error::ErrorStack| Error::TlsSetup {
            reason: first_reason(&e),
        };
        let mut builder = SslContext::builder(SslMethod::tls_client()).map_err(setup)?;
        builder
            .set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(setup)?;
        // PGSSLMINPROTOCOLVERSION / PGSSLMAXPROTOCOLVERSION; never below TLS 1.2: a lower
        // minimum is raised, and said so.
        if let Some(asked) = settings.raised_min_protocol() {
            debug!(
                requested = asked.as_str(),
                "PGSSLMINPROTOCOLVERSION={asked} raised to TLSv1.2: pgdap never negotiates below TLS 1.2"
            );
        }
        let version = |v: crate::env::TlsVersion| match v {
            crate::env::TlsVersion::Tls1 => SslVersion::TLS1,
            crate::env::TlsVersion::Tls1_1 => SslVersion::TLS1_1,
            crate::env::TlsVersion::Tls1_2 => SslVersion::TLS1_2,
            _ => SslVersion::TLS1_3,
        };
        if settings.ssl_min_protocol.value == Some(crate::env::TlsVersion::Tls1_3) {
            builder
                .set_min_proto_version(Some(SslVersion::TLS1_3))
                .map_err(setup)?;
        }
        if let Some(max) = settings.ssl_max_protocol.value {
            builder
                .set_max_proto_version(Some(version(max)))
                .map_err(setup)?;
        }
        // Free idle read/write buffers of established connections (as native-tls does):
        // about 9 KiB less per open connection.
        builder.set_mode(openssl::ssl::SslMode::RELEASE_BUFFERS);
        // A fresh, empty store: nothing from the OS store is ever trusted.
        builder.set_cert_store(
            openssl::x509::store::X509StoreBuilder::new()
                .map_err(setup)?
                .build(),
        );
        let root_ca = &settings.root_ca.value;
        let mut policy = TlsPolicy {
            root_ca: None,
            crl: None,
            crl_dir: None,
            client_cert: None,
            client_key: None,
            verify_host: mode == SslMode::VerifyFull,
        };
        let mut roots = Vec::new();
        if settings.system_roots() {
            // PGSSLROOTCERT=system (libpq 16+); no CRL, as in libpq.
            builder.set_cert_store(files::system_store()?);
            builder.set_verify(SslVerifyMode::PEER);
            policy.root_ca = Some(root_ca.clone());
        } else if files::exists(root_ca) {
            let crl = settings.crl_file().filter(|p| files::exists(p));
            let crl_dir = settings.crl_dir.as_ref().map(|d| d.value.as_path());
            let (store, certs) = files::trust_store(root_ca, crl, crl_dir)?;
            builder.set_cert_store(store);
            builder.set_verify(SslVerifyMode::PEER);
            policy.root_ca = Some(root_ca.clone());
            policy.crl = crl.map(|p| p.to_path_buf());
            policy.crl_dir = crl_dir.map(|p| p.to_path_buf());
            roots = certs;
        } else if mode.requires_root_ca() {
            return Err(Error::RootCertMissing {
                path: root_ca.clone(),
            });
        } else {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let cert = &settings.cert.value;
        // PGSSLCERTMODE=require: note whether the server asks for a certificate (libpq 16).
        if settings.ssl_cert_mode.value == crate::env::SslCertMode::Require {
            certmode::install(&mut builder);
        }
        // PGSSLCERTMODE=disable: the client certificate is never sent (libpq 16).
        let send_cert = settings.ssl_cert_mode.value != crate::env::SslCertMode::Disable;
        if send_cert && files::exists(cert) {
            let passphrase = settings.key_passphrase.as_ref().map(|p| &p.value);
            let identity = files::client_identity(cert, &settings.key.value, passphrase)?;
            // OpenSSL refuses some parsable certificates and keys here (e.g. "ee key too
            // small" for an RSA key under 2048 bits): name the file, as libpq does.
            let refused = |what: &'static str, var: &'static str, path: PathBuf| {
                move |e: openssl::error::ErrorStack| Error::BadFile {
                    what,
                    var,
                    path: path.clone(),
                    reason: first_reason(&e),
                }
            };
            let cert_refused = refused("certificate", PGCERT.name, identity.cert_path.clone());
            let mut chain = identity.chain.into_iter();
            if let Some(leaf) = chain.next() {
                builder.set_certificate(&leaf).map_err(&cert_refused)?;
            }
            for extra in chain {
                builder.add_extra_chain_cert(extra).map_err(&cert_refused)?;
            }
            builder.set_private_key(&identity.key).map_err(refused(
                "private key",
                PGKEY.name,
                identity.key_path.clone(),
            ))?;
            builder
                .check_private_key()
                .map_err(|_| Error::ClientKeyMismatch {
                    cert: identity.cert_path.clone(),
                    key: identity.key_path.clone(),
                })?;
            policy.client_cert = Some(identity.cert_path);
            policy.client_key = Some(identity.key_path);
        } else if settings.auth.value == AuthMethod::Cert {
            return Err(Error::CertAuthWithoutCertificate { path: cert.clone() });
        }
        Ok(Some(TlsContext {
            ssl: builder.build(),
            policy,
            roots,
            sni: settings.ssl_sni.value,
            direct: settings.ssl_negotiation.value == crate::env::SslNegotiation::Direct,
            channel_binding: settings.channel_binding.value != crate::env::ChannelBinding::Disable,
        }))
    }

    /// What this context verifies and sends.
    pub fn policy(&self) -> &TlsPolicy {
        &self.policy
    }

    /// The trusted root certificates (empty without a root CA file). Public only to the
    /// fuzz target (cargo-fuzz's `--cfg fuzzing`): OpenSSL types stay out of the API.
    #[cfg(fuzzing)]
    pub fn roots(&self) -> &[X509] {
        &self.roots
    }
}

/// What an attempt saw of TLS: shared between the connector and the connect sequence.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    /// The server accepted the SSLRequest and a handshake started.
    pub(crate) attempted: bool,
    /// The negotiated session, once the handshake and host check succeeded.
    pub(crate) session: Option<TlsSession>,
    /// The start-up watch of the attempt, fed with the decrypted bytes.
    pub(crate) watch: Option<crate::startup::Watch>,
    /// The server asked for a client certificate (recorded under PGSSLCERTMODE=require).
    pub(crate) cert_requested: bool,
    /// A client certificate was available to send.
    pub(crate) cert_loaded: bool,
}

/// The negotiated TLS session of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSession {
    /// Protocol version, e.g. `"TLSv1.3"`.
    pub version: String,
    /// Cipher suite, e.g. `"TLS_AES_256_GCM_SHA384"`.
    pub cipher: String,
    /// The server certificate (DER), when the server sent one.
    pub peer_certificate: Option<Vec<u8>>,
    /// Whether the server certificate was verified against the root CA file.
    pub verified: bool,
}

/// A [`MakeTlsConnect`] applying pgdap's verification, for `tokio_postgres::Config::connect`
/// and any library that takes a `MakeTlsConnect` (`bb8-postgres`, `deadpool-postgres`,
/// `postgres::Config::connect`, ...): only the root CA file is trusted (never the OS
/// store), the CRL is checked, verify-full matches the host with libpq's rules, the
/// client certificate is sent, TLS 1.2 is the minimum, and SCRAM-SHA-256-PLUS gets the
/// `tls-server-end-point` channel binding. Get one from
/// [`Connector::make_tls`](crate::Connector::make_tls) (which follows certificate
/// rotation) or [`MakeTls::from_context`].
///
/// What a bare `MakeTlsConnect` cannot give, because the library, not the TLS layer,
/// runs the connection sequence (use [`Connector`](crate::Connector), [`Plan`](crate::connect::Plan)
/// or the adapters in `pgdap::integrations` for these):
///
/// - `allow`/`prefer` retries: after a failed attempt libpq tries again without (prefer)
///   or with (allow) SSL; tokio-postgres makes one attempt, and its `prefer` only
///   continues in plaintext when the server answers 'N', never after a failed handshake
///   or verification; it has no `allow`, `verify-ca` or `verify-full` (the library's
///   sslmode must be `require` for those, the verification is done here);
/// - libpq's checks of the reply to the SSLRequest (tokio-postgres takes any reply but
///   'S' as 'N': an error response or garbage under its `prefer` goes on in plaintext,
///   where libpq fails with "server sent an error response during SSL exchange" or
///   "received invalid response to SSL negotiation");
/// - `PGAUTH=cert`'s rule that no password is ever handed to the protocol layer and that
///   allow/prefer never settle for plaintext;
/// - the `PGCLIENTENCODING` set-up of the session, pgdap's socket options
///   (`TCP_USER_TIMEOUT` on pgdap's own socket), the start-up checks on authentication
///   requests, pgdap's typed errors naming the file or variable at fault, the cancel key
///   for [`CancelToken`](crate::connect::CancelToken) and the notice routing.
///
/// ```no_run
/// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::Error> {
/// let tls = connector.make_tls().expect("an SSL mode");
/// let mut pg = pgdap::tokio_postgres::Config::new();
/// pg.host("db1").port(5432).user("app").dbname("sales")
///     .ssl_mode(pgdap::tokio_postgres::config::SslMode::Require);
/// let (client, connection) = pg.connect(tls).await?;
/// tokio::spawn(connection);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MakeTls {
    ctx: Arc<TlsContext>,
    probe: Arc<Mutex<Probe>>,
}

impl std::fmt::Debug for MakeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeTls")
            .field("policy", &self.ctx.policy)
            .finish_non_exhaustive()
    }
}

impl MakeTls {
    pub(crate) fn new(ctx: Arc<TlsContext>, probe: Arc<Mutex<Probe>>) -> MakeTls {
        MakeTls { ctx, probe }
    }

    /// A `MakeTlsConnect` on a TLS context built by [`TlsContext::build`].
    ///
    /// ```no_run
    /// # fn f(settings: &pgdap::Settings) -> Result<(), pgdap::Error> {
    /// let ctx = pgdap::tls::TlsContext::build(settings)?.expect("an SSL mode");
    /// let tls = pgdap::tls::MakeTls::from_context(std::sync::Arc::new(ctx));
    /// # Ok(()) }
    /// ```
    pub fn from_context(ctx: Arc<TlsContext>) -> MakeTls {
        MakeTls::new(ctx, Arc::new(Mutex::new(Probe::default())))
    }

    /// The per-connection connector for `host` (what `make_tls_connect` returns).
    pub(crate) fn for_host(&self, host: &str) -> TlsConnector {
        TlsConnector {
            ctx: self.ctx.clone(),
            probe: self.probe.clone(),
            host: host.to_string(),
        }
    }
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = TlsConnector;
    type Error = TlsFailure;

    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<TlsConnector, TlsFailure> {
        Ok(self.for_host(domain))
    }
}

/// Per-connection TLS connector ([`TlsConnect`]), made by [`MakeTls`] for one host.
pub struct TlsConnector {
    ctx: Arc<TlsContext>,
    probe: Arc<Mutex<Probe>>,
    host: String,
}

/// Why a TLS attempt failed (downcast from tokio-postgres' error by the connect sequence;
/// the error type of [`MakeTls`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server certificate did not verify; `reason` is OpenSSL's verify result.
    #[error("certificate verify failed: {reason}")]
    Verify {
        /// OpenSSL's verify result, e.g. "unable to get local issuer certificate".
        reason: String,
        /// Its `X509_V_ERR_*` code.
        code: i32,
    },
    /// verify-full host name mismatch.
    #[error("server certificate does not match host name")]
    Host(Mismatch),
    /// Any other handshake failure (alerts from the server pass through).
    #[error("{0}")]
    Handshake(String),
}

impl<S> TlsConnect<S> for TlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = TlsFailure;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<TlsStream<S>, TlsFailure>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            if let Ok(mut probe) = self.probe.lock() {
                probe.attempted = true;
            }
            let setup = |e: openssl::error::ErrorStack| TlsFailure::Handshake(first_reason(&e));
            let mut ssl = openssl::ssl::Ssl::new(&self.ctx.ssl).map_err(setup)?;
            // SNI for host names (libpq's sslsni=1 default); never for what libpq takes
            // for an IP literal (digits and dots, or a colon).
            if self.ctx.sni && hostname::sends_sni(&self.host) {
                ssl.set_hostname(&self.host).map_err(setup)?;
            }
            // Direct TLS: ALPN `postgresql`, which PostgreSQL 17+ requires (libpq 17).
            if self.ctx.direct {
                ssl.set_alpn_protos(b"\x0apostgresql").map_err(setup)?;
            }
            certmode::watch(&mut ssl);
            let mut tls = tokio_openssl::SslStream::new(ssl, stream).map_err(setup)?;
            if let Err(e) = Pin::new(&mut tls).connect().await {
                let verify = tls.ssl().verify_result();
                if verify != X509VerifyResult::OK {
                    return Err(TlsFailure::Verify {
                        reason: verify.error_string().to_string(),
                        code: verify.as_raw(),
                    });
                }
                return Err(TlsFailure::Handshake(ssl_error_reason(&e)));
            }
            if self.ctx.direct && tls.ssl().selected_alpn_protocol() != Some(b"postgresql") {
                return Err(TlsFailure::Handshake(
                    "direct SSL connection was established without ALPN protocol negotiation extension".into(),
                ));
            }
            let peer = tls.ssl().peer_certificate();
            if self.ctx.policy.verify_host {
                let names = peer.as_ref().map(certificate_names).unwrap_or_default();
                hostname::verify_host(&names, &self.host).map_err(TlsFailure::Host)?;
            }
            let session = TlsSession {
                version: tls.ssl().version_str().to_string(),
                cipher: tls
                    .ssl()
                    .current_cipher()
                    .map(|c| c.name().to_string())
                    .unwrap_or_default(),
                peer_certificate: peer.as_ref().and_then(|c| c.to_der().ok()),
                verified: self.ctx.policy.root_ca.is_some(),
            };
            let watch = match self.probe.lock() {
                Ok(mut probe) => {
                    probe.session = Some(session);
                    probe.cert_requested = certmode::requested(tls.ssl());
                    probe.cert_loaded = self.ctx.policy.client_cert.is_some();
                    probe.watch.take()
                }
                Err(_) => None,
            };
            let end_point = binding::server_end_point_of(peer.as_deref());
            // Without a hash, a SCRAM-SHA-256-PLUS offer is refused (not under
            // PGCHANNELBINDING=disable, where libpq answers every offer unbound). A bare
            // `MakeTls` (or the blocking adapter) has no watch of its own: the stream then
            // gets one for this rule alone.
            let watch = match (&end_point, self.ctx.channel_binding) {
                (Err(reason), true) => {
                    let watch = watch.unwrap_or_else(|| crate::startup::StartupWatch::new(None));
                    if let Ok(mut w) = watch.lock() {
                        w.refuse_plus_offer(reason.clone());
                    }
                    Some(watch)
                }
                _ => watch,
            };
            Ok(TlsStream(tls, watch, end_point))
        })
    }
}

/// The subject alternative names and CN of a certificate.
///
/// The SANs are read from the DER (OpenSSL's Rust bindings return no DNS name that is not
/// UTF-8, which would make such a certificate look SAN-less and open the CN fallback).
/// Should the DER not parse, OpenSSL's view is used and any entry it cannot read counts
/// as an unreadable DNS name (no CN fallback: refuse rather than guess).
pub(crate) fn certificate_names(cert: &X509) -> CertificateNames {
    let sans = cert
        .to_der()
        .ok()
        .and_then(|der| der_sans(&der))
        .unwrap_or_else(|| {
            cert.subject_alt_names()
                .map(|names| {
                    names
                        .iter()
                        .filter_map(|n| {
                            if let Some(dns) = n.dnsname() {
                                Some(SanName::Dns(dns.to_string()))
                            } else if let Some(ip) = n.ipaddress() {
                                Some(SanName::Ip(ip.to_vec()))
                            } else if n.email().is_some()
                                || n.uri().is_some()
                                || n.directory_name().is_some()
                            {
                                None
                            } else {
                                Some(SanName::DnsNotText(Vec::new()))
                            }
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
    let common_name = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok());
    CertificateNames { sans, common_name }
}

/// The DNS and IP subject alternative names of a DER certificate, in order; `None` when
/// the certificate or its SAN extension does not parse (as OpenSSL then sees no SAN,
/// the caller falls back to OpenSSL's view).
fn der_sans(der: &[u8]) -> Option<Vec<SanName>> {
    use x509_cert::der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
    const SUBJECT_ALT_NAME: x509_cert::der::oid::ObjectIdentifier =
        x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.29.17");
    let cert =
        x509_cert::certificate::CertificateInner::<x509_cert::certificate::Raw>::from_der(der)
            .ok()?;
    let Some(ext) = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == SUBJECT_ALT_NAME)
    else {
        return Some(Vec::new());
    };
    let mut reader = SliceReader::new(ext.extn_value.as_bytes()).ok()?;
    let names = reader
        .sequence(|seq| {
            let mut names = Vec::new();
            while !seq.is_finished() {
                let any = x509_cert::der::Any::decode(seq)?;
                match any.tag() {
                    Tag::ContextSpecific {
                        constructed: false,
                        number: TagNumber::N2,
                    } => names.push(match std::str::from_utf8(any.value()) {
                        Ok(text) => SanName::Dns(text.to_string()),
                        Err(_) => SanName::DnsNotText(any.value().to_vec()),
                    }),
                    Tag::ContextSpecific {
                        constructed: false,
                        number: TagNumber::N7,
                    } => names.push(SanName::Ip(any.value().to_vec())),
                    _ => {}
                }
            }
            Ok(names)
        })
        .ok()?;
    reader.is_finished().then_some(names)
}

/// OpenSSL's reason for a failed handshake or read, in libpq's words where libpq has
/// them (`SSL SYSCALL error: EOF detected`).
pub(crate) fn ssl_error_reason(e: &openssl::ssl::Error) -> String {
    if let Some(stack) = e.ssl_error() {
        return first_reason(stack);
    }
    if let Some(io) = e.io_error() {
        return format!("SSL SYSCALL error: {io}");
    }
    if e.code() == openssl::ssl::ErrorCode::SYSCALL
        || e.code() == openssl::ssl::ErrorCode::ZERO_RETURN
    {
        return "SSL SYSCALL error: EOF detected".to_string();
    }
    e.to_string()
}

/// Whether a failed write means the server closed the connection: a reset or broken pipe
/// as an I/O error (OpenSSL before 3.2), or as an error of OpenSSL's "system library"
/// (OpenSSL 3.2 and later report `tls_retry_write_records` failures so, and OpenSSL on
/// Windows reports WSAECONNRESET so).
fn peer_gone(e: &io::Error) -> bool {
    /// OpenSSL's ERR_LIB_SYS.
    const LIB_SYS: std::ffi::c_int = 2;
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    ) {
        return true;
    }
    let Some(ssl) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
    else {
        return false;
    };
    if let Some(io) = ssl.io_error() {
        return matches!(
            io.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        );
    }
    ssl.ssl_error().is_some_and(|stack| {
        stack
            .errors()
            .iter()
            .any(|err| err.library_code() == LIB_SYS)
    })
}

fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
        .is_some_and(|ssl| ssl.ssl_error().is_some())
}

/// A TLS stream to the server. During start-up the decrypted bytes also go to the
/// attempt's start-up watch (see [`Wire`](crate::connect::Wire)), which also refuses a
/// SCRAM-SHA-256-PLUS offer the session cannot bind ([`binding`]). Holds the server
/// certificate's `tls-server-end-point` hash, or why it has none.
pub struct TlsStream<S>(
    tokio_openssl::SslStream<S>,
    Option<crate::startup::Watch>,
    std::result::Result<Vec<u8>, binding::NoEndPointHash>,
);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.0).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            if let Some(watch) = &this.1 {
                if crate::startup::watch_decrypted(watch, &buf.filled()[before..])? {
                    this.1 = None;
                }
            }
        }
        result
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    /// When a write fails because the server already closed the connection, the server's
    /// last words (a TLS alert such as `tlsv1 alert unknown ca`, sent when it rejected
    /// the client certificate after a TLS 1.3 handshake) are usually still readable; libpq
    /// reads them too (`write_failed` in `pqSendSome`). They are returned instead of the
    /// bare "connection reset".
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.0).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if peer_gone(&e) => {
                let mut scratch = [0u8; 256];
                let mut read_buf = ReadBuf::new(&mut scratch);
                match Pin::new(&mut self.0).poll_read(cx, &mut read_buf) {
                    Poll::Ready(Err(alert)) if is_tls_error(&alert) => Poll::Ready(Err(alert)),
                    _ => Poll::Ready(Err(e)),
                }
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    /// `tls-server-end-point` (RFC 5929) for SCRAM-SHA-256-PLUS, as libpq computes it
    /// ([`binding::server_end_point`]); never "no binding" for a TLS session (see
    /// [`binding`]).
    fn channel_binding(&self) -> ChannelBinding {
        binding::channel_binding(&self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::{Asn1Object, Asn1OctetString};
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509Extension, X509NameBuilder};

    fn cert_with(ext: impl FnOnce(&openssl::x509::X509Builder) -> X509Extension) -> X509 {
        let key = PKey::generate_ed25519().unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "db.example.com")
            .unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let ext = ext(&b);
        b.append_extension(ext).unwrap();
        b.sign(&key, MessageDigest::null()).unwrap();
        b.build()
    }

    /// Collects what is logged while a test runs.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_minimum_below_tls_1_2_is_raised_and_logged() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        // A callsite first hit by another test thread while no subscriber was interested may
        // have cached "never" (tracing#2874): recompute with this one in place.
        tracing::callsite::rebuild_interest_cache();
        let dir = tempfile::tempdir().unwrap();
        let build = |min: &str| {
            let env = crate::env::Environment::from_pairs([
                ("PGMODE", "require"),
                ("PGSSLMINPROTOCOLVERSION", min),
            ])
            .with_default_dir(dir.path());
            TlsContext::build(&Settings::resolve(&env, env.default_dir()).unwrap())
                .unwrap()
                .unwrap()
        };
        build("TLSv1");
        build("TLSv1.2");
        let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let raised: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("raised to TLSv1.2"))
            .collect();
        assert_eq!(raised.len(), 1, "{logs}");
        assert!(
            raised[0].contains("DEBUG") && raised[0].contains("PGSSLMINPROTOCOLVERSION=TLSv1 "),
            "{logs}"
        );
    }

    #[test]
    fn sans_come_from_the_der_in_order_with_non_text_dns_names_kept() {
        let cert = cert_with(|b| {
            SubjectAlternativeName::new()
                .dns("a.example.com")
                .ip("10.0.0.1")
                .email("x@example.com")
                .dns("b.example.com")
                .build(&b.x509v3_context(None, None))
                .unwrap()
        });
        let names = certificate_names(&cert);
        assert_eq!(
            names.sans,
            vec![
                SanName::Dns("a.example.com".into()),
                SanName::Ip(vec![10, 0, 0, 1]),
                SanName::Dns("b.example.com".into()),
            ]
        );
        assert_eq!(names.common_name.as_deref(), Some("db.example.com"));

        // SEQUENCE { [2] "x\xff.other.test" }: invisible to OpenSSL's dnsname().
        let mut der = vec![0x30, 15, 0x82, 13];
        der.extend_from_slice(b"x\xff.other.test");
        let cert = cert_with(|_| {
            X509Extension::new_from_der(
                &Asn1Object::from_str("2.5.29.17").unwrap(),
                false,
                &Asn1OctetString::new_from_bytes(&der).unwrap(),
            )
            .unwrap()
        });
        let names = certificate_names(&cert);
        assert_eq!(
            names.sans,
            vec![SanName::DnsNotText(b"x\xff.other.test".to_vec())]
        );
        assert!(hostname::verify_host(&names, "db.example.com").is_err());
    }
}
