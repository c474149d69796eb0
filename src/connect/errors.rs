//! From tokio-postgres' errors to pgdap's: libpq's wording, the file or variable at
//! fault, and hints for the messages of the vendor's troubleshooting table.

use std::time::Duration;

use super::sequence::Attempt;
use crate::env::{AuthMethod, Settings, SslMode};
use crate::error::{Error, ServerRefusal};
use crate::startup::StartupError;
use crate::tls::{TlsContext, TlsFailure};

/// The hint for a refused password from the Access Point.
const PASSWORD_HINT: &str = "check password= in the Access Point";

/// What an error is mapped against: the attempt and the configuration it used.
pub(crate) struct ErrorContext<'a> {
    pub(crate) host: &'a str,
    /// For the password hints: where the password sent came from.
    pub(crate) access_point: &'a crate::access_point::AccessPoint,
    pub(crate) user: &'a str,
    /// The credential provider whose secret was sent, if one was.
    pub(crate) provider: Option<&'a str>,
    pub(crate) settings: &'a Settings,
    pub(crate) attempt: Attempt,
    pub(crate) tls: Option<&'a TlsContext>,
    pub(crate) timeout: Duration,
}

impl ErrorContext<'_> {
    /// A socket-level failure (resolution, TCP connect).
    pub(crate) fn connect_error(&self, source: std::io::Error) -> Error {
        Error::Connect {
            host: self.host.to_string(),
            source,
        }
    }

    /// Names where the password came from when it was not the Access Point's, as libpq
    /// adds `password retrieved from file "..."` (looked up again only on this error path).
    fn password_hint(&self, hint: String) -> String {
        if hint != PASSWORD_HINT {
            return hint;
        }
        if let Some(provider) = self.provider {
            return format!(
                "the password came from credential provider \"{provider}\": check what it returns for this user"
            );
        }
        match crate::env::passfile::password_for(self.access_point, self.settings) {
            Some((_, crate::env::Source::PasswordFile)) => match &self.settings.passfile {
                Some(file) => format!(
                    "password retrieved from file \"{}\" (the Access Point has no password): fix the file's line for this host, database and user, or set password= in the Access Point",
                    file.value.display()
                ),
                None => hint,
            },
            Some((_, crate::env::Source::Env)) => {
                "check PGPASSWORD (the Access Point has no password), or set password= in the Access Point".into()
            }
            Some((_, crate::env::Source::Service)) => match &self.settings.service {
                Some(service) => format!(
                    "check the password of service \"{}\" in \"{}\" (the Access Point has no password), or set password= in the Access Point",
                    service.name,
                    service.file.display()
                ),
                None => hint,
            },
            _ => hint,
        }
    }

    /// What to do when no password was found: libpq's warning when the password file
    /// was skipped (looked up again only on this error path), else where to put one.
    fn no_password_hint(&self) -> String {
        let file = self.settings.passfile.as_ref().map(|f| &f.value);
        if let Some(file) = file {
            if let crate::env::passfile::Lookup::Ignored(warning) = crate::env::passfile::lookup(
                file,
                self.access_point.server(),
                crate::access_point::PORT,
                self.access_point.dbname(),
                self.access_point.username(),
            ) {
                return format!(
                    "{warning}; the password file was skipped: chmod 0600 \"{}\", or set password= in the Access Point",
                    file.display()
                );
            }
        }
        "set password= in the Access Point, or PGPASSWORD, or a line of the password file".into()
    }

    fn wire_error(&self, wire: &StartupError) -> Error {
        let host = self.host.to_string();
        match wire {
            StartupError::InvalidSslResponse(byte) => {
                Error::InvalidSslResponse { host, byte: *byte }
            }
            StartupError::SslRefused => Error::SslNotSupported {
                host,
                mode: self.settings.mode.value.as_str(),
            },
            StartupError::ErrorDuringSsl => Error::SslErrorResponse { host },
            StartupError::InvalidAuthRequest(length) => Error::InvalidAuthRequest {
                host,
                length: *length,
            },
            StartupError::AuthRefused(reason) => Error::AuthNotAllowed {
                host,
                reason: reason.clone(),
            },
            StartupError::ChannelBinding(reason) => Error::ChannelBindingUnavailable {
                host,
                libpq_message: reason.libpq_message.clone(),
                signature_algorithm: reason.signature_algorithm.clone(),
            },
        }
    }

    pub(crate) fn map(&self, e: tokio_postgres::Error) -> Error {
        let host = self.host.to_string();
        let settings = self.settings;
        let attempt = self.attempt;
        let policy = self.tls.map(|t| t.policy().clone());
        if let Some(db) = e.as_db_error() {
            let message = db.message().to_string();
            return Error::Server(Box::new(ServerRefusal {
                hint: server_hint(&message, settings, policy.as_ref())
                    .map(|hint| self.password_hint(hint)),
                host,
                severity: db.severity().to_string(),
                code: db.code().code().to_string(),
                message,
                detail: db.detail().map(str::to_string),
            }));
        }
        // Walk the source chain for our own TLS failures and OpenSSL errors.
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
        while let Some(err) = source {
            if let Some(failure) = err.downcast_ref::<TlsFailure>() {
                return tls_failure_error(failure, host, settings, policy.as_ref());
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if let Some(wire) = io.get_ref().and_then(|i| i.downcast_ref::<StartupError>()) {
                    return self.wire_error(wire);
                }
                if let Some(cb) = io
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<crate::startup::ChannelBindingUnavailable>())
                {
                    return Error::ChannelBindingUnavailable {
                        host,
                        libpq_message: cb.0.libpq_message.clone(),
                        signature_algorithm: cb.0.signature_algorithm.clone(),
                    };
                }
                if let Some(ssl) = io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
                {
                    let reason = crate::tls::ssl_error_reason(ssl);
                    return Error::Ssl {
                        hint: ssl_hint(&reason, settings, policy.as_ref()),
                        host,
                        reason,
                    };
                }
            }
            if err.to_string() == "server does not support TLS" {
                return Error::SslNotSupported {
                    host,
                    mode: if attempt == Attempt::SslRequired
                        && settings.auth.value == AuthMethod::Cert
                        && !matches!(
                            settings.mode.value,
                            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
                        ) {
                        "require (PGAUTH=cert)"
                    } else {
                        settings.mode.value.as_str()
                    },
                };
            }
            if err.to_string() == "password missing" {
                return if settings.auth.value == AuthMethod::Cert {
                    Error::PasswordRequestedUnderCertAuth {
                        host,
                        user: self.user.to_string(),
                    }
                } else {
                    Error::NoPasswordSupplied {
                        host,
                        hint: self.no_password_hint(),
                    }
                };
            }
            source = err.source();
        }
        if e.to_string() == "error connecting to server" {
            if let Some(io) = e
                .into_source()
                .and_then(|s| s.downcast::<std::io::Error>().ok())
            {
                return Error::Connect { host, source: *io };
            }
            return Error::Connect {
                host,
                source: std::io::Error::other("connection failed"),
            };
        }
        if e.to_string() == "timeout waiting for server" {
            return Error::Timeout {
                host,
                after: self.timeout,
            };
        }
        Error::Protocol { host, source: e }
    }
}

fn tls_failure_error(
    failure: &TlsFailure,
    host: String,
    settings: &Settings,
    policy: Option<&crate::tls::TlsPolicy>,
) -> Error {
    use crate::tls::hostname::Mismatch;
    // X509_V_ERR_CERT_REVOKED and X509_V_ERR_UNABLE_TO_GET_CRL.
    const CERT_REVOKED: i32 = 23;
    const UNABLE_TO_GET_CRL: i32 = 3;
    let root_ca = policy
        .and_then(|p| p.root_ca.clone())
        .unwrap_or_else(|| settings.root_ca.value.clone());
    let crl_dir = policy.and_then(|p| p.crl_dir.clone());
    let crl = policy
        .and_then(|p| p.crl.clone().or_else(|| p.crl_dir.clone()))
        .unwrap_or_else(|| settings.crl.value.clone());
    match failure {
        TlsFailure::Verify { code, .. } if *code == CERT_REVOKED => {
            Error::CertificateRevoked { host, crl, crl_dir }
        }
        TlsFailure::Verify { code, .. } if *code == UNABLE_TO_GET_CRL => {
            Error::CrlNotForIssuer { host, crl, crl_dir }
        }
        TlsFailure::Verify { reason, .. } => Error::CertificateVerifyFailed {
            host,
            reason: reason.clone(),
            root_ca,
        },
        TlsFailure::Host(Mismatch::Names { first, others }) => Error::HostnameMismatch {
            host,
            cert_name: first.clone(),
            others: *others,
        },
        TlsFailure::Host(Mismatch::NoNames) => Error::NoHostnameInCertificate { host },
        TlsFailure::Handshake(reason) => Error::Ssl {
            hint: ssl_hint(reason, settings, policy),
            host,
            reason: reason.clone(),
        },
    }
}

fn cert_description(settings: &Settings, policy: Option<&crate::tls::TlsPolicy>) -> String {
    match policy.and_then(|p| p.client_cert.as_ref()) {
        Some(path) => format!("the client certificate \"{}\" (PGCERT)", path.display()),
        None => format!(
            "no client certificate was sent (no file at \"{}\", PGCERT)",
            settings.cert.value.display()
        ),
    }
}

/// Hints for the SSL alerts of the vendor's troubleshooting table.
fn ssl_hint(
    reason: &str,
    settings: &Settings,
    policy: Option<&crate::tls::TlsPolicy>,
) -> Option<String> {
    let cert = cert_description(settings, policy);
    if reason.contains("unknown ca") {
        Some(format!(
            "the server does not trust {cert}: it was not issued by a CA in the server's ssl_ca_file"
        ))
    } else if reason.contains("certificate revoked") {
        Some(format!("the server's CRL (ssl_crl_file) revokes {cert}"))
    } else if reason.contains("certificate required") || reason.contains("handshake failure") {
        Some(format!("the server demands a client certificate; {cert}"))
    } else if reason.contains("bad certificate") || reason.contains("certificate expired") {
        Some(format!("the server rejected {cert}"))
    } else {
        None
    }
}

/// Hints for the server messages of the vendor's troubleshooting table.
fn server_hint(
    message: &str,
    settings: &Settings,
    policy: Option<&crate::tls::TlsPolicy>,
) -> Option<String> {
    let cert = cert_description(settings, policy);
    if message.contains("connection requires a valid client certificate") {
        Some(format!(
            "the server's pg_hba.conf demands a client certificate (clientcert or cert auth); {cert}"
        ))
    } else if message.contains("certificate authentication failed") {
        Some(format!(
            "the CN of {cert} does not name this user, directly or through the server's pg_ident.conf map"
        ))
    } else if message.contains("could not load pg_hba.conf") {
        Some("server-side configuration error: fix pg_hba.conf on the server and reload it".into())
    } else if message.contains("no pg_hba.conf entry") {
        Some(format!(
            "the server's pg_hba.conf has no rule for this host, user and database with this encryption (PGMODE={})",
            settings.mode.value
        ))
    } else if message.contains("password authentication failed")
        || message.contains("SASL authentication failed")
    {
        // PgBouncer reports a wrong password under SCRAM as "SASL authentication failed".
        Some(PASSWORD_HINT.into())
    } else {
        None
    }
}
