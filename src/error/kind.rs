//! What kind of cause an [`Error`] is, which server it concerns, and what an operator
//! most likely has to fix: the vendor's troubleshooting table, asked of the typed error
//! (doctor and services read it from here; nothing matches error text).

use std::borrow::Cow;

use super::Error;

/// The broad kind of an [`Error`], for code that reacts by kind (retry a network failure,
/// alert on a certificate) without matching every variant.
///
/// ```
/// let e = pgdap::AccessPoint::parse("dbengine=mssql\n").unwrap_err();
/// assert_eq!(e.kind(), pgdap::error::ErrorKind::AccessPoint);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The Access Point file: unreadable, malformed, another engine, a key missing.
    AccessPoint,
    /// An environment variable's value (PGMODE, PGAUTH, PGCLIENTENCODING, libpq's
    /// variables), or a setting that cannot be enforced where it was asked for.
    Environment,
    /// A certificate, key or CRL file the settings name.
    File,
    /// No server reached: the TCP connection failed or the connect timeout expired.
    Network,
    /// SSL: the TLS context, the negotiation, the handshake or the server's verification.
    Tls,
    /// Authentication: the server refused the login (SQLSTATE class 28), or a client-side
    /// rule refused what the server asked (PGREQUIREAUTH, channel binding, PGAUTH=cert).
    Authentication,
    /// The server refused or ended the connection for another reason (its message passes
    /// through), or the session is not of the kind PGTARGETSESSIONATTRS asks for.
    Server,
    /// The peer does not speak PostgreSQL's protocol as expected.
    Protocol,
    /// The session's client encoding.
    Encoding,
    /// A query on an established session.
    Query,
    /// An adapter's library refused a connection.
    Adapter,
    /// A cancel request could not be sent.
    Cancel,
}

impl Error {
    /// The kind of cause; for [`Error::RetryFailed`], the kind of the last attempt's.
    ///
    /// ```
    /// use pgdap::error::ErrorKind;
    /// assert_eq!(pgdap::Error::NoDefaultDirectory.kind(), ErrorKind::Environment);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::AccessPointRead { .. }
            | Error::AccessPointTooLarge { .. }
            | Error::AccessPointSyntax { .. }
            | Error::UnsupportedEngine { .. }
            | Error::MissingKey { .. }
            | Error::DuplicateKey { .. }
            | Error::UnknownKey { .. }
            | Error::AccessPointUnrecognisedLine { .. }
            | Error::AccessPointNotUtf8 { .. } => K::AccessPoint,
            Error::InvalidEnv { .. }
            | Error::InvalidPath { .. }
            | Error::UnknownEncoding { .. }
            | Error::NoDefaultDirectory
            | Error::CertAuthWithoutSsl
            | Error::CertAuthWithoutCertificate { .. }
            | Error::LibpqSetting { .. }
            | Error::ServiceFile { .. }
            | Error::ServiceNotFound { .. }
            | Error::BlockingUnenforceable { .. } => K::Environment,
            Error::RootCertMissing { .. }
            | Error::BadFile { .. }
            | Error::FileVanished { .. }
            | Error::ClientKeyMissing { .. }
            | Error::ClientKeyPermissions { .. }
            | Error::ClientKeyEncrypted { .. }
            | Error::ClientKeyPassphrase { .. }
            | Error::ClientKeyMismatch { .. } => K::File,
            Error::Connect { .. } | Error::Timeout { .. } | Error::HostNotFound { .. } => {
                K::Network
            }
            Error::TlsSetup { .. }
            | Error::SslNotSupported { .. }
            | Error::CertificateVerifyFailed { .. }
            | Error::CertificateRevoked { .. }
            | Error::CrlNotForIssuer { .. }
            | Error::HostnameMismatch { .. }
            | Error::NoHostnameInCertificate { .. }
            | Error::Ssl { .. } => K::Tls,
            Error::AuthNotAllowed { .. }
            | Error::CredentialProvider { .. }
            | Error::NoPasswordSupplied { .. }
            | Error::PasswordRequestedUnderCertAuth { .. }
            | Error::ChannelBindingUnavailable { .. } => K::Authentication,
            Error::Server(refusal) if refusal.code.starts_with("28") => K::Authentication,
            Error::Server(_)
            | Error::SslErrorResponse { .. }
            | Error::TargetSessionAttrs { .. } => K::Server,
            Error::InvalidSslResponse { .. }
            | Error::InvalidAuthRequest { .. }
            | Error::Protocol { .. } => K::Protocol,
            Error::RetryFailed { retry, .. } => retry.kind(),
            Error::AllHostsFailed { .. } => self.last_attempt().kind(),
            Error::RequirePeer { .. } => K::Server,
            Error::Encoding(_) => K::Encoding,
            Error::Query(_) => K::Query,
            Error::Adapter { .. } => K::Adapter,
            Error::Cancel { .. } => K::Cancel,
        }
    }

    /// The server refused the login (SQLSTATE 28P01 invalid_password or 28000
    /// invalid_authorization_specification) in the last attempt: a password or token
    /// that may have changed.
    pub(crate) fn refused_login(&self) -> bool {
        matches!(self.last_attempt(), Error::Server(r) if r.code == "28P01" || r.code == "28000")
    }

    /// The server of a connection attempt's error (`dbserver`, or the member of a list it
    /// was tried on); `None` for errors before any server was tried.
    ///
    /// ```
    /// let e = pgdap::Error::Timeout { host: "db1".into(), after: std::time::Duration::from_secs(10) };
    /// assert_eq!(e.host(), Some("db1"));
    /// assert_eq!(pgdap::Error::NoDefaultDirectory.host(), None);
    /// ```
    pub fn host(&self) -> Option<&str> {
        match self {
            Error::Connect { host, .. }
            | Error::Timeout { host, .. }
            | Error::SslNotSupported { host, .. }
            | Error::InvalidSslResponse { host, .. }
            | Error::SslErrorResponse { host }
            | Error::InvalidAuthRequest { host, .. }
            | Error::BlockingUnenforceable { host, .. }
            | Error::AuthNotAllowed { host, .. }
            | Error::TargetSessionAttrs { host, .. }
            | Error::CertificateVerifyFailed { host, .. }
            | Error::CertificateRevoked { host, .. }
            | Error::CrlNotForIssuer { host, .. }
            | Error::HostnameMismatch { host, .. }
            | Error::NoHostnameInCertificate { host }
            | Error::Ssl { host, .. }
            | Error::NoPasswordSupplied { host, .. }
            | Error::PasswordRequestedUnderCertAuth { host, .. }
            | Error::ChannelBindingUnavailable { host, .. }
            | Error::Protocol { host, .. }
            | Error::Cancel { host, .. } => Some(host),
            Error::Server(refusal) => Some(&refusal.host),
            Error::RetryFailed { retry, .. } => retry.host(),
            Error::RequirePeer { host, .. } | Error::HostNotFound { host, .. } => Some(host),
            Error::AllHostsFailed { .. } => match self.last_attempt() {
                last if std::ptr::eq(last, self) => None,
                last => last.host(),
            },
            _ => None,
        }
    }

    /// What an operator most likely has to fix: the row of the vendor's troubleshooting
    /// table this error is, naming the variable, file or server setting (for a server's
    /// refusal or an SSL alert, the hint chosen from its message when the error was made).
    /// `None` when the error's own message is all there is to say. For
    /// [`Error::RetryFailed`], the last attempt's cause, else the first's.
    ///
    /// ```
    /// let e = pgdap::Error::Connect {
    ///     host: "db1".into(),
    ///     source: std::io::ErrorKind::ConnectionRefused.into(),
    /// };
    /// assert_eq!(e.likely_cause().as_deref(), Some("no server listens on dbserver:5432"));
    /// ```
    pub fn likely_cause(&self) -> Option<Cow<'_, str>> {
        let row: &'static str = match self {
            Error::RootCertMissing { .. } => {
                "verify-ca/verify-full with no root CA: provide PGROOTCA or change PGMODE"
            }
            Error::ClientKeyMissing { .. } => "the client key is missing: set PGKEY",
            Error::CertificateRevoked { .. } => {
                "the server certificate is listed in the CRL file (PGCRL): the server needs a new certificate"
            }
            Error::CrlNotForIssuer { .. } => {
                "PGCRL holds no CRL of the CA that issued the server certificate: add that CA's CRL to the file"
            }
            Error::CertificateVerifyFailed { .. } => {
                "the server certificate does not chain to the root CA in PGROOTCA, or has expired"
            }
            Error::HostnameMismatch { .. } | Error::NoHostnameInCertificate { .. } => {
                "dbserver is not a name in the server certificate: use a name it lists or PGMODE=verify-ca"
            }
            Error::SslNotSupported { .. } => {
                "the server has ssl = off: enable it, or change PGMODE"
            }
            Error::Connect { .. } => "no server listens on dbserver:5432",
            Error::HostNotFound { .. } => "dbserver names a host the resolver does not know: check the name (and /etc/hosts, DNS)",
            Error::RequirePeer { .. } => {
                "the server behind the socket runs as another user than PGREQUIREPEER names: check the socket directory in dbserver, or PGREQUIREPEER"
            }
            Error::NoPasswordSupplied { .. } => {
                "the server asks for a password and none is configured: set password= in the Access Point"
            }
            Error::PasswordRequestedUnderCertAuth { .. } => {
                "the server authenticates this user by password: give it a cert rule in pg_hba.conf, or do not set PGAUTH=cert"
            }
            Error::Ssl { hint, .. } => return hint.as_deref().map(Cow::Borrowed),
            Error::Server(refusal) => return refusal.hint.as_deref().map(Cow::Borrowed),
            Error::RetryFailed { first, retry, .. } => {
                return retry.likely_cause().or_else(|| first.likely_cause())
            }
            Error::AllHostsFailed { failures } => {
                return failures.iter().rev().find_map(|f| f.error.likely_cause())
            }
            _ => return None,
        };
        Some(Cow::Borrowed(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_is_of_its_last_attempts_kind_and_host() {
        let e = Error::RetryFailed {
            first_kind: "with SSL",
            first: Box::new(Error::SslNotSupported {
                host: "db1".into(),
                mode: "prefer",
            }),
            retry: Box::new(Error::Connect {
                host: "db2".into(),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            }),
        };
        assert_eq!(e.kind(), ErrorKind::Network);
        assert_eq!(e.host(), Some("db2"));
        assert_eq!(
            e.likely_cause().as_deref(),
            Some("no server listens on dbserver:5432")
        );
    }

    #[test]
    fn a_server_refusal_is_authentication_in_sqlstate_class_28() {
        let refusal = |code: &str| {
            Error::Server(Box::new(super::super::ServerRefusal {
                host: "db1".into(),
                severity: "FATAL".into(),
                code: code.into(),
                message: "m".into(),
                detail: None,
                hint: Some("check password= in the Access Point".into()),
            }))
        };
        assert_eq!(refusal("28P01").kind(), ErrorKind::Authentication);
        assert_eq!(refusal("53300").kind(), ErrorKind::Server);
        assert_eq!(
            refusal("28P01").likely_cause().as_deref(),
            Some("check password= in the Access Point")
        );
    }
}
