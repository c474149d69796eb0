//! The values of the vendor's variables PGMODE ([`SslMode`]) and PGAUTH ([`AuthMethod`]).

use std::fmt;

use super::variables::{PGAUTH, PGMODE};
use crate::error::{Error, Result};

/// The sslmode (`PGMODE`), with libpq's semantics.
///
/// ```
/// assert_eq!("verify-full".parse::<pgdap::SslMode>()?, pgdap::SslMode::VerifyFull);
/// assert!("Require".parse::<pgdap::SslMode>().is_err()); // values are case-sensitive
/// # Ok::<(), pgdap::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// Plaintext first; SSL if the server rejects the plaintext attempt.
    Allow,
    /// SSL first; plaintext if the server has no SSL or the SSL attempt fails. The default.
    Prefer,
    /// SSL only; verification only when a root CA file exists.
    Require,
    /// SSL only; the server certificate must chain to the root CA file.
    VerifyCa,
    /// As `VerifyCa`, and the server host name must match the certificate.
    VerifyFull,
}

impl SslMode {
    const VALID: &'static str = "disable, allow, prefer, require, verify-ca, verify-full";

    /// Every mode, weakest first.
    ///
    /// ```
    /// assert_eq!(pgdap::SslMode::ALL.map(|m| m.as_str())[5], "verify-full");
    /// ```
    pub const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The libpq spelling (`"verify-full"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// verify-ca or verify-full: a root CA file is mandatory.
    pub fn requires_root_ca(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl std::str::FromStr for SslMode {
    type Err = Error;
    fn from_str(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(invalid(PGMODE.name, value, SslMode::VALID)),
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authentication method (`PGAUTH`).
///
/// ```
/// assert_eq!("cert".parse::<pgdap::AuthMethod>()?, pgdap::AuthMethod::Cert);
/// # Ok::<(), pgdap::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// Password authentication (scram-sha-256, md5, password). The default.
    Password,
    /// Certificate authentication: SSL only, no password is ever sent.
    Cert,
}

impl AuthMethod {
    /// The spelling of the variable's value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Cert => "cert",
        }
    }
}

impl std::str::FromStr for AuthMethod {
    type Err = Error;
    fn from_str(value: &str) -> Result<AuthMethod> {
        match value {
            "password" => Ok(AuthMethod::Password),
            "cert" => Ok(AuthMethod::Cert),
            _ => Err(invalid(PGAUTH.name, value, "password, cert")),
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn invalid(var: &'static str, value: &str, valid: &'static str) -> Error {
    Error::InvalidEnv {
        var,
        value: value.to_string(),
        valid,
    }
}
