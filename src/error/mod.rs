//! The one error type of the crate: a variant per cause an operator can fix.
//!
//! Every variant names the file, variable, Access Point key or server setting at fault,
//! and carries libpq's wording where libpq has one, so a message can be searched for in
//! libpq-era runbooks. Server messages pass through unchanged. No variant ever holds a
//! password or key material.

mod kind;

pub use kind::ErrorKind;

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong between an Access Point and a session.
///
/// ```
/// let err = pgdap::AccessPoint::parse("dbengine=mssql\n").unwrap_err();
/// assert!(matches!(err, pgdap::Error::UnsupportedEngine { .. }));
/// assert!(err.to_string().contains("mssql"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- Access Point -----
    /// The Access Point file could not be read.
    #[error("could not read Access Point file \"{}\": {source}", path.display())]
    AccessPointRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Access Point file is larger than any real Access Point.
    #[error("Access Point file \"{}\" is larger than {limit} bytes; is it the right file?", path.display())]
    AccessPointTooLarge {
        /// The file.
        path: PathBuf,
        /// The size limit in bytes.
        limit: u64,
    },
    /// The Access Point is not UTF-8 text.
    #[error("Access Point line {line}: not UTF-8 text")]
    AccessPointNotUtf8 {
        /// 1-based line number of the first bad line.
        line: usize,
    },
    /// A line is not `key=value`.
    #[error("Access Point line {line}: expected key=value, found no '='")]
    AccessPointSyntax {
        /// 1-based line number.
        line: usize,
    },
    /// `dbengine` is not `postgre`.
    #[error("Access Point line {line}: unsupported engine \"{engine}\" in dbengine (only \"postgre\" is supported)")]
    UnsupportedEngine {
        /// The engine named in the document.
        engine: String,
        /// 1-based line number.
        line: usize,
    },
    /// A required key is missing or empty.
    #[error("Access Point: required key \"{key}\" is missing{}", line.map(|l| format!(" (empty at line {l})")).unwrap_or_default())]
    MissingKey {
        /// The key.
        key: &'static str,
        /// The line where it stood empty, if it did.
        line: Option<usize>,
    },
    /// A key appears twice.
    #[error(
        "Access Point line {line}: duplicate key \"{key}\" (first given at line {first_line})"
    )]
    DuplicateKey {
        /// The key (lower case).
        key: String,
        /// 1-based line number of the repetition.
        line: usize,
        /// 1-based line number of the first occurrence.
        first_line: usize,
    },
    /// A key the Access Point does not define, named because it looks like a key (a
    /// near-miss of a valid key or a libpq parameter name); see
    /// [`Error::AccessPointUnrecognisedLine`] for every other line.
    #[error("Access Point line {line}: unknown key \"{key}\" (valid keys: dbengine, dbserver, dbname, username, password)")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// 1-based line number.
        line: usize,
    },
    /// A `key=value` line whose key is not one and does not look like one; its content is
    /// not repeated (it may be part of a secret, e.g. the rest of a password).
    #[error("Access Point line {line} is not a recognised key=value line (valid keys: dbengine, dbserver, dbname, username, password)")]
    AccessPointUnrecognisedLine {
        /// 1-based line number.
        line: usize,
    },

    // ----- environment -----
    /// An environment variable has a value outside its set.
    #[error(
        "invalid value {value:?} for {var} (valid values: {valid}; values are case-sensitive)"
    )]
    InvalidEnv {
        /// The variable, e.g. `PGMODE`.
        var: &'static str,
        /// The value found.
        value: String,
        /// The valid values.
        valid: &'static str,
    },
    /// A path variable holds a character no path can hold.
    #[error("invalid path in {var}: {reason}")]
    InvalidPath {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// PGCLIENTENCODING names an encoding PostgreSQL does not know.
    #[error("invalid value {value:?} for PGCLIENTENCODING (valid encodings: {valid})")]
    UnknownEncoding {
        /// The value found.
        value: String,
        /// The valid names.
        valid: String,
    },
    /// The per-user default directory could not be determined.
    #[error("could not determine the per-user PostgreSQL directory (no home directory); set PGROOTCA, PGCERT, PGKEY and PGCRL to absolute paths")]
    NoDefaultDirectory,
    /// The connection service file: not found where `PGSERVICEFILE` names it, unreadable,
    /// or a line libpq refuses (`message` is libpq's).
    #[error("{message} ({hint}; PGSERVICE)")]
    ServiceFile {
        /// The service file.
        path: PathBuf,
        /// libpq's message, e.g. `syntax error in service file "...", line 4`.
        message: String,
        /// What is wrong or what to do.
        hint: String,
    },
    /// `PGSERVICE` names a service that no service file defines.
    #[error("definition of service \"{service}\" not found (PGSERVICE; searched: {})", if searched.is_empty() { "no service file exists (set PGSERVICEFILE or PGSYSCONFDIR)".to_string() } else { searched.iter().map(|p| format!("\"{}\"", p.display())).collect::<Vec<_>>().join(", ") })]
    ServiceNotFound {
        /// The service's name.
        service: String,
        /// The files searched, in order (those that exist and those that do not).
        searched: Vec<PathBuf>,
    },
    /// The credential provider set with
    /// [`Connector::with_credential_provider`](crate::Connector::with_credential_provider)
    /// failed; no connection was attempted.
    #[error("credential provider \"{provider}\" failed: {source}")]
    CredentialProvider {
        /// The provider's name.
        provider: String,
        /// Its error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// `PGAUTH=cert` with `PGMODE=disable`.
    #[error("PGAUTH=cert requires SSL but PGMODE=disable; set PGMODE to require, verify-ca or verify-full")]
    CertAuthWithoutSsl,
    /// `PGAUTH=cert` but no client certificate file.
    #[error("PGAUTH=cert: client certificate file \"{}\" does not exist; set PGCERT or place the certificate there", path.display())]
    CertAuthWithoutCertificate {
        /// Where the certificate was looked for.
        path: PathBuf,
    },
    /// A libpq variable (docs/design.md §9) has a value libpq refuses, or one pgdap cannot honour;
    /// the reason is libpq's message where libpq has one.
    #[error("{var}: {reason}")]
    LibpqSetting {
        /// The variable, e.g. `PGSSLMODE`.
        var: &'static str,
        /// libpq's message, e.g. `invalid sslmode value: ""`.
        reason: String,
    },

    // ----- files -----
    /// verify-ca / verify-full without a root CA file (libpq's message).
    #[error("root certificate file \"{}\" does not exist; either provide the file (PGROOTCA) or change sslmode (PGMODE) to disable server certificate verification", path.display())]
    RootCertMissing {
        /// Where the file was looked for.
        path: PathBuf,
    },
    /// A certificate, key or CRL file is unreadable or malformed.
    #[error("could not read {what} file \"{}\" ({var}): {reason}", path.display())]
    BadFile {
        /// What the file should hold: "root certificate", "certificate revocation list", ...
        what: &'static str,
        /// The variable that names it.
        var: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Certificate rotation: a file the TLS context in service was built from (root CA,
    /// CRL, client certificate or key) has disappeared. Taken as a broken file, not as a
    /// new configuration: the context in service, which still uses the file's last
    /// contents, stays until the file is back (see
    /// [`TlsReloader`](crate::tls::TlsReloader)).
    #[error("{what} file \"{}\" ({var}) was in use and is now missing; the TLS context built from it stays in service until the file is back (to stop using it, restart the service or build a new Connector)", path.display())]
    FileVanished {
        /// What the file held: "root certificate", "certificate revocation list", ...
        what: &'static str,
        /// The variable that names it.
        var: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Client certificate present, key missing (libpq's message).
    #[error("certificate present, but not private key file \"{}\" (set PGKEY, or place the key there)", path.display())]
    ClientKeyMissing {
        /// Where the key was looked for.
        path: PathBuf,
    },
    /// The key file is readable by group or others (libpq's message).
    #[error("private key file \"{}\" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root (fix: chmod 0600 \"{}\")", path.display(), path.display())]
    ClientKeyPermissions {
        /// The key file.
        path: PathBuf,
    },
    /// The key is protected by a passphrase.
    #[error("private key file \"{}\" is encrypted with a passphrase and none was supplied (PGKEY); supply it with pgdap::ConnectOptions::key_passphrase or the service file's sslpassword (libpq's sslpassword), or let the `pgdap` command prompt for it on a terminal; or store the key decrypted with mode 0600 (openssl pkey -in KEY -out KEY.new)", path.display())]
    ClientKeyEncrypted {
        /// The key file.
        path: PathBuf,
    },
    /// The passphrase supplied for an encrypted client key does not decrypt it.
    #[error("could not load private key file \"{}\": bad decrypt (the passphrase supplied does not decrypt this key, PGKEY; check pgdap::ConnectOptions::key_passphrase or the service file's sslpassword)", path.display())]
    ClientKeyPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// The key does not belong to the certificate (libpq's message).
    #[error("could not load private key file \"{}\": key values mismatch (the key does not belong to the certificate \"{}\"; check PGCERT and PGKEY)", key.display(), cert.display())]
    ClientKeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The TLS context could not be set up.
    #[error("could not create SSL context: {reason}")]
    TlsSetup {
        /// The OpenSSL error.
        reason: String,
    },

    // ----- connecting -----
    /// The TCP connection failed.
    #[error(
        "{}: {source}; is the server running on that host and accepting TCP/IP connections?",
        at(host)
    )]
    Connect {
        /// The server.
        host: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A `dbserver` name did not resolve to any address (libpq's message; libpq goes on
    /// to the next member of a list).
    #[error("could not translate host name \"{host}\" to address: {reason} (dbserver)")]
    HostNotFound {
        /// The name.
        host: String,
        /// The resolver's reason.
        reason: String,
    },
    /// The server did not complete the connection in time.
    #[error("{}: timeout expired after {}s (connect timeout)", at(host), after.as_secs_f64())]
    Timeout {
        /// The server.
        host: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// SSL is required but the server refused the SSLRequest (libpq's message).
    #[error("{}: server does not support SSL, but SSL was required (PGMODE={mode}); enable ssl on the server or change PGMODE", at(host))]
    SslNotSupported {
        /// The server.
        host: String,
        /// The PGMODE in force.
        mode: &'static str,
    },
    /// The reply to the SSLRequest was neither 'S', 'N' nor an error response (libpq's
    /// message): not a PostgreSQL server, or something in between that speaks another
    /// protocol.
    #[error("{}: received invalid response to SSL negotiation: {} (is dbserver a PostgreSQL server on port 5432?)", at(host), char::from(*byte))]
    InvalidSslResponse {
        /// The server.
        host: String,
        /// The byte received.
        byte: u8,
    },
    /// The server answered the SSLRequest with an error response. libpq (15.9+, 16.5+,
    /// 17.1+; CVE-2024-10977) fails at once in every sslmode and neither shows nor trusts
    /// the message of a server it has not verified; so does pgdap, and nothing more is
    /// sent on that connection. Usually a server that could not start a backend (out of
    /// processes or memory); its log says why.
    #[error("{}: server sent an error response during SSL exchange (the message of an unverified server is not shown; see the server's log)", at(host))]
    SslErrorResponse {
        /// The server.
        host: String,
    },
    /// An authentication request whose length is outside libpq's bounds (8 to 2000
    /// bytes): refused before any of it is read or answered (libpq's message).
    #[error("{}: received invalid authentication request (length {length}; libpq accepts 8 to 2000 bytes; is dbserver a PostgreSQL server?)", at(host))]
    InvalidAuthRequest {
        /// The server.
        host: String,
        /// The length field of the request.
        length: i32,
    },
    /// A setting that checks the server's authentication requests (PGREQUIREAUTH,
    /// PGCHANNELBINDING=require) on a plaintext attempt of the blocking adapter, which
    /// cannot watch tokio-postgres' own socket: refused before connecting rather than
    /// connecting unchecked.
    #[error("{}: {var} cannot be enforced by the blocking adapter on a connection without SSL (it cannot see the server's authentication requests there); connect with pgdap::Connector::connect (async), or use PGMODE=require or stricter", at(host))]
    BlockingUnenforceable {
        /// The server.
        host: String,
        /// The variable that cannot be enforced.
        var: &'static str,
    },
    /// A check on the server's authentication request refused it before anything was
    /// sent (e.g. libpq's `require_auth`); the reason is in libpq's words.
    #[error("{}: {reason}", at(host))]
    AuthNotAllowed {
        /// The server.
        host: String,
        /// What was refused and why.
        reason: String,
    },
    /// The session is not of the kind PGTARGETSESSIONATTRS asks for (libpq's message,
    /// e.g. `session is read-only`).
    #[error("{}: {reason} (PGTARGETSESSIONATTRS={attrs})", at(host))]
    TargetSessionAttrs {
        /// The server.
        host: String,
        /// The value of PGTARGETSESSIONATTRS.
        attrs: &'static str,
        /// libpq's message.
        reason: &'static str,
    },
    /// The server certificate does not chain to the root CA file.
    #[error("{}: SSL error: certificate verify failed: {reason} (server certificate checked against {})", at(host), trusted_roots(root_ca))]
    CertificateVerifyFailed {
        /// The server.
        host: String,
        /// OpenSSL's verification result, e.g. "unable to get local issuer certificate".
        reason: String,
        /// The root CA file used.
        root_ca: PathBuf,
    },
    /// The server certificate is listed in the CRL.
    #[error("{}: SSL error: certificate verify failed: certificate revoked (listed in {})", at(host), crl_sources(crl, crl_dir.as_deref()))]
    CertificateRevoked {
        /// The server.
        host: String,
        /// The CRL file (or the CRL directory, when no file is in use).
        crl: PathBuf,
        /// The CRL directory, when one is in use (`PGSSLCRLDIR`).
        crl_dir: Option<PathBuf>,
    },
    /// The CRL file has no CRL for the issuer of the server certificate.
    #[error("{}: SSL error: certificate verify failed: unable to get certificate CRL ({} holds no CRL from the CA that issued the server certificate or one in its chain)", at(host), crl_sources(crl, crl_dir.as_deref()))]
    CrlNotForIssuer {
        /// The server.
        host: String,
        /// The CRL file (or the CRL directory, when no file is in use).
        crl: PathBuf,
        /// The CRL directory, when one is in use (`PGSSLCRLDIR`).
        crl_dir: Option<PathBuf>,
    },
    /// verify-full: the certificate is for another host (libpq's message).
    #[error("{}: server certificate for \"{cert_name}\"{} does not match host name \"{host}\" (PGMODE=verify-full checks dbserver against the certificate)", at(host), match others { 0 => String::new(), 1 => " (and 1 other name)".to_string(), n => format!(" (and {n} other names)") })]
    HostnameMismatch {
        /// The host name connected to.
        host: String,
        /// The first name in the certificate.
        cert_name: String,
        /// How many other names the certificate holds.
        others: usize,
    },
    /// verify-full: the certificate holds no name at all (libpq's message).
    #[error(
        "{}: could not get server's host name from server certificate",
        at(host)
    )]
    NoHostnameInCertificate {
        /// The server.
        host: String,
    },
    /// The TLS handshake or session failed (server messages such as `tlsv1 alert unknown ca`
    /// pass through).
    #[error("{}: SSL error: {reason}{}", at(host), hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Ssl {
        /// The server.
        host: String,
        /// OpenSSL's message.
        reason: String,
        /// What to check, when the message is one of the known ones.
        hint: Option<String>,
    },
    /// The server refused the connection (its message passes through unchanged).
    #[error("{}: {}", at(&.0.host), .0)]
    Server(Box<ServerRefusal>),
    /// The server asked for a password and none was found (libpq's message): not in the
    /// Access Point, PGPASSWORD, the service file or the password file.
    #[error("{}: fe_sendauth: no password supplied ({hint})", at(host))]
    NoPasswordSupplied {
        /// The server.
        host: String,
        /// What to do; it carries libpq's warning when the password file was skipped
        /// (`WARNING: password file "..." has group or world access; ...`).
        hint: String,
    },
    /// PGAUTH=cert and the server asked for a password: none is ever sent.
    #[error("{}: the server requested password authentication for user \"{user}\" but PGAUTH=cert, so no password is sent; the server must authenticate this user by certificate: a \"cert\" rule in pg_hba.conf (PostgreSQL) or auth_type = cert (PgBouncer)", at(host))]
    PasswordRequestedUnderCertAuth {
        /// The server.
        host: String,
        /// The user.
        user: String,
    },
    /// The server offers SCRAM-SHA-256-PLUS and its certificate's signature algorithm
    /// (Ed25519, Ed448) defines no `tls-server-end-point` hash: authenticating without
    /// channel binding would let a man in the middle relay the login, so the connection
    /// fails, as libpq's does (libpq's message first).
    #[error(
        "{}: {}",
        at(host),
        no_binding_text(libpq_message, signature_algorithm)
    )]
    ChannelBindingUnavailable {
        /// The server.
        host: String,
        /// libpq's message, e.g. `could not find digest for NID UNDEF`.
        libpq_message: String,
        /// The certificate's signature algorithm, e.g. `ED25519`.
        signature_algorithm: String,
    },
    /// Another protocol-level failure.
    #[error("{}: {source}", at(host))]
    Protocol {
        /// The server.
        host: String,
        /// The underlying error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Every member of a `dbserver` list (every address of each) was tried and none gave
    /// a session, or one failed in a way that ends the sequence (libpq: an
    /// authentication failure does not try the next host). One line per attempt, in the
    /// order tried, each with libpq's prefix naming the host and its address; the last
    /// is the one that decided ([`Error::last_attempt`]).
    #[error("{}", HostFailure::lines(failures))]
    AllHostsFailed {
        /// Each attempt's failure, in order.
        failures: Vec<HostFailure>,
    },
    /// PGREQUIREPEER names another operating-system user than the one running the server
    /// behind the Unix socket (libpq's message).
    #[error("{}: requirepeer specifies \"{expected}\", but actual peer user name is \"{actual}\" (PGREQUIREPEER)", at(host))]
    RequirePeer {
        /// The socket directory.
        host: String,
        /// PGREQUIREPEER.
        expected: String,
        /// The user the server process runs as.
        actual: String,
    },
    /// Both attempts of an `allow`/`prefer` sequence failed; both causes are kept.
    #[error("{retry} (after the first attempt {first_kind} failed: {first})")]
    RetryFailed {
        /// "with SSL" or "without SSL".
        first_kind: &'static str,
        /// The first attempt's error.
        first: Box<Error>,
        /// The retry's error.
        #[source]
        retry: Box<Error>,
    },
    /// The session's client encoding could not be set up (SQL_ASCII handling, reading
    /// `server_encoding`).
    #[error("session encoding (PGCLIENTENCODING): {0}")]
    Encoding(#[from] crate::encoding::SessionEncodingError),
    /// A query failed: the server's error for it (e.g. SQLSTATE 57014, "canceling
    /// statement due to user request"), or the connection closed. `?` on any
    /// tokio-postgres result converts into this variant.
    #[error("query failed: {0}")]
    Query(#[source] tokio_postgres::Error),
    /// An adapter's library refused a pgdap connection (e.g. diesel-async's set-up
    /// queries failed on it).
    #[error("{library}: {source}")]
    Adapter {
        /// The library, e.g. "diesel-async".
        library: &'static str,
        /// Its error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A cancel request ([`CancelToken`](crate::connect::CancelToken)) could not be sent.
    #[error("could not send cancel request to server at \"{host}\", port 5432: {reason}")]
    Cancel {
        /// The server.
        host: String,
        /// What failed (connecting, SSL negotiation or handshake, writing).
        reason: String,
    },
}

/// libpq's prefix of every error of a connection attempt, `connection to server at "h",
/// port 5432 failed` (`connection to server on socket "/dir/.s.PGSQL.5432" failed` for a
/// socket directory), written here once for every such message.
struct At<'a>(&'a str);

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The port is the Access Point's fixed one (`access_point::PORT`, which asserts
        // it; naming it here would make error import access_point).
        if self.0.starts_with('/') {
            let dir = self.0.trim_end_matches('/');
            write!(
                f,
                "connection to server on socket \"{dir}/.s.PGSQL.5432\" failed"
            )
        } else {
            write!(
                f,
                "connection to server at \"{}\", port 5432 failed",
                self.0
            )
        }
    }
}

/// One attempt of a sequence over several hosts or addresses ([`Error::AllHostsFailed`]).
#[derive(Debug)]
pub struct HostFailure {
    /// The address the attempt connected to, when the host was a name that resolved to
    /// it (libpq names it after the host: `"db1" (10.0.0.2)`).
    pub addr: Option<std::net::IpAddr>,
    /// The attempt's error.
    pub error: Error,
}

impl HostFailure {
    /// The error's text with the address after the host name in libpq's prefix.
    fn line(&self) -> String {
        let text = self.error.to_string();
        let (Some(addr), Some(host)) = (self.addr, self.error.host()) else {
            return text;
        };
        if host == addr.to_string() || host.starts_with('/') {
            return text;
        }
        // The prefix is written by `At` alone, so this finds exactly its occurrences.
        text.replace(
            &format!("at \"{host}\", port 5432 failed"),
            &format!("at \"{host}\" ({addr}), port 5432 failed"),
        )
    }

    fn lines(failures: &[HostFailure]) -> String {
        failures
            .iter()
            .map(HostFailure::line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The CRL file and directory of a revocation error, as the message names them.
fn crl_sources(crl: &std::path::Path, crl_dir: Option<&std::path::Path>) -> String {
    match crl_dir {
        None => format!("CRL file \"{}\", PGCRL", crl.display()),
        Some(dir) if dir == crl => format!("CRL directory \"{}\", PGSSLCRLDIR", dir.display()),
        Some(dir) => format!(
            "CRL file \"{}\", PGCRL, or CRL directory \"{}\", PGSSLCRLDIR",
            crl.display(),
            dir.display()
        ),
    }
}

/// What the server certificate was checked against: the root CA file, or the system's
/// trusted roots (`PGSSLROOTCERT=system`).
fn trusted_roots(root_ca: &std::path::Path) -> String {
    if root_ca.as_os_str() == "system" {
        "the operating system's trusted roots (PGSSLROOTCERT=system: OpenSSL's default paths, SSL_CERT_FILE, SSL_CERT_DIR)".to_string()
    } else {
        format!("root CA file \"{}\", PGROOTCA", root_ca.display())
    }
}

fn at(host: &str) -> At<'_> {
    At(host)
}

/// A connection attempt's error text with libpq's prefix, for a message that is not a
/// variant of its own (PGSSLCERTMODE=require's refusal).
pub(crate) fn attempt_failed(host: &str, reason: impl std::fmt::Display) -> String {
    format!("{}: {reason}", at(host))
}

impl From<tokio_postgres::Error> for Error {
    /// A query's error: [`Error::Query`]. Makes `?` work on every tokio-postgres result
    /// in a function returning `pgdap::Result`.
    ///
    /// ```no_run
    /// # async fn run(session: pgdap::Session) -> Result<(), pgdap::Error> {
    /// let row = session.client.query_one("select 1::int4", &[]).await?;
    /// let n: i32 = row.get(0);
    /// # Ok(()) }
    /// ```
    fn from(e: tokio_postgres::Error) -> Error {
        Error::Query(e)
    }
}

/// An error with its whole cause chain on one line: each source's message is appended
/// after `": "` unless the text so far already holds it (tokio-postgres and pgdap put
/// their sources' messages in their own), and line breaks become spaces.
///
/// ```
/// let e = pgdap::AccessPoint::from_file("/nonexistent/dap.cfg").unwrap_err();
/// let line = pgdap::error::Chain(&e).to_string();
/// assert!(line.starts_with("could not read Access Point file \"/nonexistent/dap.cfg\""));
/// assert_eq!(line.matches("No such file").count(), 1);
/// assert_eq!(line, e.chain().to_string());
/// ```
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(s) = source {
            let s_text = s.to_string();
            if !text.contains(&s_text) {
                text.push_str(": ");
                text.push_str(&s_text);
            }
            source = s.source();
        }
        // One line; libpq's two spaces after a severity stay.
        f.write_str(&text.replace("\r\n", " ").replace(['\n', '\r'], " "))
    }
}

impl std::fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Error {
    /// This error and its causes on one line ([`Chain`]).
    ///
    /// ```
    /// let e = pgdap::Error::NoDefaultDirectory;
    /// assert!(e.chain().to_string().starts_with("could not determine"));
    /// ```
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }
}

/// An error for `main() -> Result<(), pgdap::error::Report>`: any error converts into it
/// with `?`, and when `main` returns it Rust prints its [`Debug`], which here is the
/// one-line [`Chain`] instead of a struct dump.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), pgdap::error::Report> {
///     let ap = pgdap::AccessPoint::from_file("/etc/app/dap.cfg")?;
///     let session = pgdap::connect(ap, &pgdap::Environment::from_process_env()).await?;
///     session.client.batch_execute("select 1").await?;
///     Ok(())
/// }
/// ```
pub struct Report(Box<dyn std::error::Error + Send + Sync + 'static>);

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Report {
    fn from(e: E) -> Report {
        Report(Box::new(e))
    }
}

impl Report {
    /// The error inside.
    ///
    /// ```
    /// let r = pgdap::error::Report::from(pgdap::Error::NoDefaultDirectory);
    /// assert!(r.error().is::<pgdap::Error>());
    /// ```
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&Chain(&*self.0), f)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&Chain(&*self.0), f)
    }
}

impl Error {
    /// The error of the last attempt (unwraps [`Error::RetryFailed`]).
    ///
    /// ```
    /// let e = pgdap::Error::NoDefaultDirectory;
    /// assert!(matches!(e.last_attempt(), pgdap::Error::NoDefaultDirectory));
    /// ```
    pub fn last_attempt(&self) -> &Error {
        match self {
            Error::RetryFailed { retry, .. } => retry.last_attempt(),
            Error::AllHostsFailed { failures } => match failures.last() {
                Some(last) => last.error.last_attempt(),
                None => self,
            },
            other => other,
        }
    }

    /// The server's SQLSTATE, when the server refused the connection.
    pub fn server_code(&self) -> Option<&str> {
        match self.last_attempt() {
            Error::Server(refusal) => Some(&refusal.code),
            _ => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error response from the server during connection start-up, with our hint for the
/// messages of the vendor's troubleshooting table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRefusal {
    /// The server.
    pub host: String,
    /// Severity (FATAL, ERROR).
    pub severity: String,
    /// SQLSTATE code.
    pub code: String,
    /// The server's message, unchanged.
    pub message: String,
    /// The server's detail, if any.
    pub detail: Option<String>,
    /// Our hint naming the setting to check, for known messages.
    pub hint: Option<String>,
}

impl std::fmt::Display for ServerRefusal {
    /// `FATAL:  message DETAIL: detail; hint` (libpq's two spaces after the severity).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:  {}", self.severity, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " DETAIL: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// The text of the refusal of a SCRAM-SHA-256-PLUS offer that the server certificate
/// cannot bind (libpq's message first), for [`Error::ChannelBindingUnavailable`] and the
/// start-up watch's own error.
pub(crate) fn no_binding_text(libpq_message: &str, signature_algorithm: &str) -> String {
    format!("{libpq_message} (the server certificate is signed with {signature_algorithm}, for which tls-server-end-point channel binding defines no hash; the server offers SCRAM-SHA-256-PLUS, and authenticating without channel binding would let a man in the middle relay the login, so pgdap refuses as libpq does; use a server certificate signed with ECDSA or RSA)")
}
