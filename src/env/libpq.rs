//! libpq's own variables (docs/design.md §9): their values and libpq's validation of them.
//!
//! Each parser takes the value exactly as set: unlike the vendor's variables, a libpq
//! variable set to the empty string is a value (`PGSSLMODE=""` is invalid,
//! `PGREQUIREAUTH=""` allows no authentication exchange, `PGSSLSNI=""` turns SNI off),
//! as in libpq. Error texts are libpq's.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

use super::variables::{
    PGCHANNELBINDING, PGCONNECT_TIMEOUT, PGGSSENCMODE, PGLOADBALANCEHOSTS, PGREQUIREAUTH,
    PGSSLCERTMODE, PGSSLNEGOTIATION, PGTARGETSESSIONATTRS,
};

fn libpq_error(var: &'static str, reason: String) -> Error {
    Error::LibpqSetting { var, reason }
}

fn invalid(var: &'static str, option: &str, value: &str) -> Error {
    libpq_error(var, format!("invalid {option} value: \"{value}\""))
}

/// Declares a small enum of a libpq option with its spellings.
macro_rules! libpq_enum {
    ($(#[$doc:meta])* $name:ident, $var:expr, $option:literal, { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// libpq's spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the value of the variable as libpq does (case-sensitive).
            pub fn parse_libpq(value: &str) -> Result<$name> {
                match value {
                    $($text => Ok($name::$variant),)+
                    _ => Err(invalid($var.name, $option, value)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

libpq_enum!(
    /// `PGCHANNELBINDING` (libpq 13+): SCRAM channel binding.
    ///
    /// ```
    /// use pgdap::env::ChannelBinding;
    /// assert_eq!(ChannelBinding::parse_libpq("require")?, ChannelBinding::Require);
    /// assert!(ChannelBinding::parse_libpq("").is_err());
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    ChannelBinding, PGCHANNELBINDING, "channel_binding", {
        /// Never use channel binding.
        Disable = "disable",
        /// Use it when the server offers it (the default).
        Prefer = "prefer",
        /// Refuse a server that does not authenticate with channel binding.
        Require = "require",
    }
);

libpq_enum!(
    /// `PGSSLNEGOTIATION` (libpq 17+): how TLS starts.
    ///
    /// ```
    /// use pgdap::env::SslNegotiation;
    /// assert_eq!(SslNegotiation::parse_libpq("direct")?, SslNegotiation::Direct);
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    SslNegotiation, PGSSLNEGOTIATION, "sslnegotiation", {
        /// An SSLRequest first (every server version; the default).
        Postgres = "postgres",
        /// A TLS handshake straight away with ALPN `postgresql` (PostgreSQL 17+).
        Direct = "direct",
    }
);

libpq_enum!(
    /// `PGSSLCERTMODE` (libpq 16+): whether the client certificate may or must be sent.
    ///
    /// ```
    /// use pgdap::env::SslCertMode;
    /// assert_eq!(SslCertMode::parse_libpq("disable")?, SslCertMode::Disable);
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    SslCertMode, PGSSLCERTMODE, "sslcertmode", {
        /// Never send a client certificate.
        Disable = "disable",
        /// Send it when the file exists and the server asks (the default).
        Allow = "allow",
        /// Fail unless the server asked for a certificate and accepted the one sent.
        Require = "require",
    }
);

libpq_enum!(
    /// `PGGSSENCMODE`: pgdap has no GSSAPI, so it behaves as a libpq built without it
    /// (`require` is an error, the others never try GSSAPI encryption).
    ///
    /// ```
    /// use pgdap::env::GssEncMode;
    /// assert_eq!(GssEncMode::parse_libpq("prefer")?, GssEncMode::Prefer);
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    GssEncMode, PGGSSENCMODE, "gssencmode", {
        /// No GSSAPI encryption.
        Disable = "disable",
        /// GSSAPI encryption when available (never, here; the default).
        Prefer = "prefer",
        /// GSSAPI encryption only (an error: not compiled in).
        Require = "require",
    }
);

libpq_enum!(
    /// `PGTARGETSESSIONATTRS` (libpq 14+ values): the kind of session acceptable,
    /// checked after start-up on each member of `dbserver` in turn.
    ///
    /// ```
    /// use pgdap::env::TargetSessionAttrs;
    /// assert_eq!(TargetSessionAttrs::parse_libpq("read-write")?, TargetSessionAttrs::ReadWrite);
    /// assert!(TargetSessionAttrs::parse_libpq("Read-Write").is_err());
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    TargetSessionAttrs, PGTARGETSESSIONATTRS, "target_session_attrs", {
        /// Any session (the default).
        Any = "any",
        /// A session that accepts writes.
        ReadWrite = "read-write",
        /// A read-only session.
        ReadOnly = "read-only",
        /// A server not in hot standby.
        Primary = "primary",
        /// A server in hot standby.
        Standby = "standby",
        /// A standby if one of the members is, else any server: libpq's two passes.
        PreferStandby = "prefer-standby",
    }
);

libpq_enum!(
    /// `PGLOADBALANCEHOSTS` (libpq 16): the order `dbserver`'s members are tried in.
    ///
    /// ```
    /// use pgdap::env::LoadBalanceHosts;
    /// assert_eq!(LoadBalanceHosts::parse_libpq("random")?, LoadBalanceHosts::Random);
    /// assert!(LoadBalanceHosts::parse_libpq("RANDOM").is_err());
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    LoadBalanceHosts, PGLOADBALANCEHOSTS, "load_balance_hosts", {
        /// The list's order (the default).
        Disable = "disable",
        /// The hosts shuffled for every connection, then each host's addresses.
        Random = "random",
    }
);

/// A TLS protocol version bound (`PGSSLMINPROTOCOLVERSION`, `PGSSLMAXPROTOCOLVERSION`).
///
/// ```
/// use pgdap::env::TlsVersion;
/// assert_eq!(TlsVersion::parse_name("tlsv1.3"), Some(TlsVersion::Tls1_3)); // case-insensitive
/// assert!(TlsVersion::Tls1_2 < TlsVersion::Tls1_3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLSv1 (never negotiated by pgdap: docs/design.md §3).
    Tls1,
    /// TLSv1.1 (never negotiated by pgdap: docs/design.md §3).
    Tls1_1,
    /// TLSv1.2.
    Tls1_2,
    /// TLSv1.3.
    Tls1_3,
}

impl TlsVersion {
    /// libpq's spelling (`"TLSv1.2"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls1 => "TLSv1",
            TlsVersion::Tls1_1 => "TLSv1.1",
            TlsVersion::Tls1_2 => "TLSv1.2",
            TlsVersion::Tls1_3 => "TLSv1.3",
        }
    }

    /// libpq's names, case-insensitive (`pg_strcasecmp`).
    pub fn parse_name(value: &str) -> Option<TlsVersion> {
        [
            TlsVersion::Tls1,
            TlsVersion::Tls1_1,
            TlsVersion::Tls1_2,
            TlsVersion::Tls1_3,
        ]
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(value))
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses one protocol-version bound: empty means "no bound" (libpq), an unknown name is
/// libpq's error.
pub(crate) fn parse_tls_bound(
    var: &'static str,
    option: &str,
    value: &str,
) -> Result<Option<TlsVersion>> {
    if value.is_empty() {
        return Ok(None);
    }
    TlsVersion::parse_name(value)
        .map(Some)
        .ok_or_else(|| libpq_error(var, format!("invalid \"{option}\" value: \"{value}\"")))
}

/// `PGMINPROTOCOLVERSION` / `PGMAXPROTOCOLVERSION` (libpq 18): a version of
/// PostgreSQL's wire protocol. pgdap speaks 3.0 (tokio-postgres), so a minimum above it
/// is refused when the settings are resolved.
///
/// ```
/// use pgdap::env::ProtocolVersion;
/// assert_eq!(ProtocolVersion::parse_libpq("PGMAXPROTOCOLVERSION", "max_protocol_version", "latest")?, ProtocolVersion::Latest);
/// assert!(ProtocolVersion::parse_libpq("PGMINPROTOCOLVERSION", "min_protocol_version", "3.1").is_err());
/// assert!(ProtocolVersion::V3_0 < ProtocolVersion::V3_2);
/// # Ok::<(), pgdap::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// 3.0: every PostgreSQL since 7.4 (the default of both bounds).
    V3_0,
    /// 3.2: PostgreSQL 18 (longer cancel keys).
    V3_2,
    /// The newest libpq knows (3.2 for libpq 18).
    Latest,
}

impl ProtocolVersion {
    /// libpq's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V3_0 => "3.0",
            ProtocolVersion::V3_2 => "3.2",
            ProtocolVersion::Latest => "latest",
        }
    }

    /// Parses a value as libpq 18 does (`3.0`, `3.2`, `latest`; `\"\"` is invalid), with
    /// libpq's error naming `option` and pgdap's naming `var`.
    pub fn parse_libpq(var: &'static str, option: &str, value: &str) -> Result<ProtocolVersion> {
        match value {
            "3.0" => Ok(ProtocolVersion::V3_0),
            "3.2" => Ok(ProtocolVersion::V3_2),
            "latest" => Ok(ProtocolVersion::Latest),
            _ => Err(invalid(var, option, value)),
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `PGCONNECT_TIMEOUT` as libpq parses it (`parse_int_param`: a decimal integer, leading
/// and trailing white space allowed), then libpq's rule: zero or negative waits forever
/// (`None`), 1 means 2 seconds.
///
/// ```
/// use std::time::Duration;
/// use pgdap::env::parse_connect_timeout;
/// assert_eq!(parse_connect_timeout("1")?, Some(Duration::from_secs(2)));
/// assert_eq!(parse_connect_timeout(" 7 ")?, Some(Duration::from_secs(7)));
/// assert_eq!(parse_connect_timeout("0")?, None);
/// assert!(parse_connect_timeout("0.5").is_err() && parse_connect_timeout("").is_err());
/// # Ok::<(), pgdap::Error>(())
/// ```
pub fn parse_connect_timeout(value: &str) -> Result<Option<Duration>> {
    let bad = || {
        libpq_error(
            PGCONNECT_TIMEOUT.name,
            format!("invalid integer value \"{value}\" for connection option \"connect_timeout\""),
        )
    };
    // C's isspace: space, \t, \n, \v, \f, \r.
    let trimmed =
        value.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'));
    let number: i32 = trimmed.parse().map_err(|_| bad())?;
    Ok(match number {
        n if n <= 0 => None,
        1 => Some(Duration::from_secs(2)),
        n => Some(Duration::from_secs(n as u64)),
    })
}

/// One method of `PGREQUIREAUTH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Method {
    Password,
    Md5,
    Gss,
    Sspi,
    Scram,
    Oauth,
    None,
}

impl Method {
    const ALL: [Method; 7] = [
        Method::Password,
        Method::Md5,
        Method::Gss,
        Method::Sspi,
        Method::Scram,
        Method::Oauth,
        Method::None,
    ];

    fn name(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Md5 => "md5",
            Method::Gss => "gss",
            Method::Sspi => "sspi",
            Method::Scram => "scram-sha-256",
            Method::Oauth => "oauth",
            Method::None => "none",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// `PGREQUIREAUTH` (libpq 16+; `oauth` from libpq 18): the authentication methods the
/// server may use, or (with `!`) may not. Checked on every authentication request before
/// anything is answered, with libpq's messages.
///
/// ```
/// use pgdap::env::RequireAuth;
/// assert!(RequireAuth::parse("scram-sha-256,password").is_ok());
/// assert!(RequireAuth::parse("md5,md5").is_err());          // duplicates
/// assert!(RequireAuth::parse("md5, password").is_err());    // no spaces
/// assert!(RequireAuth::parse("!md5,password").is_err());    // no mixing
/// assert!(RequireAuth::parse("SCRAM-SHA-256").is_err());    // case-sensitive
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequireAuth {
    raw: String,
    /// Bits of [`Method`] allowed.
    allowed: u8,
    /// The server must complete an authentication exchange ("none" not allowed).
    auth_required: bool,
}

impl RequireAuth {
    /// Parses the value as libpq's `fe-connect.c` does. The empty value lists no method,
    /// so it allows only connections without authentication (as `none` does).
    pub fn parse(value: &str) -> Result<RequireAuth> {
        let err = |reason: String| libpq_error(PGREQUIREAUTH.name, reason);
        let mut negated = false;
        let mut allowed = 0u8;
        let mut auth_required = true;
        let mut seen = 0u8;
        for (i, part) in value.split(',').enumerate() {
            let (neg, name) = match part.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, part),
            };
            if i == 0 {
                negated = neg;
                if negated {
                    // A negative list starts from everything allowed.
                    allowed = Method::ALL.iter().fold(0, |a, m| a | m.bit());
                    auth_required = false;
                }
            } else if neg != negated {
                return Err(err(if neg {
                    format!("negative require_auth method \"{part}\" cannot be mixed with non-negative methods")
                } else {
                    format!("require_auth method \"{part}\" cannot be mixed with negative methods")
                }));
            }
            if value.is_empty() {
                // libpq: the empty list names no method; nothing is allowed but no
                // authentication at all.
                auth_required = false;
                break;
            }
            let method = Method::ALL
                .into_iter()
                .find(|m| m.name() == name)
                .ok_or_else(|| err(format!("invalid require_auth value: \"{name}\"")))?;
            if seen & method.bit() != 0 {
                return Err(err(format!(
                    "require_auth method \"{part}\" is specified more than once"
                )));
            }
            seen |= method.bit();
            if negated {
                allowed &= !method.bit();
                if method == Method::None {
                    auth_required = true;
                }
            } else {
                allowed |= method.bit();
                if method == Method::None {
                    auth_required = false;
                }
            }
        }
        Ok(RequireAuth {
            raw: value.to_string(),
            allowed,
            auth_required,
        })
    }

    /// The value as set.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the server must complete an authentication exchange (`none` not allowed).
    pub(crate) fn auth_required(&self) -> bool {
        self.auth_required
    }

    /// Whether the list allows `method`.
    pub(crate) fn allows(&self, method: Method) -> bool {
        self.allowed & method.bit() != 0
    }
}

impl fmt::Display for RequireAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(r: Result<RequireAuth>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn require_auth_parse_errors_are_libpqs() {
        assert!(msg(RequireAuth::parse("scram-sha-256,!password"))
            .ends_with("negative require_auth method \"!password\" cannot be mixed with non-negative methods"));
        assert!(msg(RequireAuth::parse("!password,md5"))
            .ends_with("require_auth method \"md5\" cannot be mixed with negative methods"));
        assert!(msg(RequireAuth::parse("md5,md5"))
            .ends_with("require_auth method \"md5\" is specified more than once"));
        assert!(msg(RequireAuth::parse("!md5,!md5"))
            .ends_with("require_auth method \"!md5\" is specified more than once"));
        assert!(msg(RequireAuth::parse("md5, password"))
            .ends_with("invalid require_auth value: \" password\""));
        assert!(msg(RequireAuth::parse(",md5")).ends_with("invalid require_auth value: \"\""));
        assert!(msg(RequireAuth::parse("md5,")).ends_with("invalid require_auth value: \"\""));
        assert!(msg(RequireAuth::parse("SCRAM-SHA-256")).contains(PGREQUIREAUTH.name));
    }

    #[test]
    fn connect_timeout_rules() {
        assert_eq!(parse_connect_timeout("-1").unwrap(), None);
        assert_eq!(
            parse_connect_timeout("2").unwrap(),
            Some(Duration::from_secs(2))
        );
        for bad in ["", " ", "0.5", "2s", "x", "99999999999"] {
            assert!(parse_connect_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_bounds() {
        assert_eq!(parse_tls_bound("V", "o", "").unwrap(), None);
        assert_eq!(
            parse_tls_bound("V", "o", "TLSV1.1").unwrap(),
            Some(TlsVersion::Tls1_1)
        );
        assert!(parse_tls_bound(
            super::super::variables::PGSSLMINPROTOCOLVERSION.name,
            "ssl_min_protocol_version",
            "TLSv1.4"
        )
        .unwrap_err()
        .to_string()
        .contains("invalid \"ssl_min_protocol_version\" value: \"TLSv1.4\""));
    }
}
