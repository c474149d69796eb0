//! The environment: `PGMODE`, `PGROOTCA`, `PGCERT`, `PGKEY`, `PGCRL`, `PGAUTH`,
//! `PGCLIENTENCODING`, and libpq's own variables (SPEC §9, [`LIBPQ_VARIABLES`]),
//! resolved into [`Settings`] from an explicit map.
//!
//! `std::env` is read only by [`Environment::from_process_env`]; every rule is a pure
//! function of the map and the per-user default directory.
//!
//! Precedence (SPEC §9), highest first: the Access Point (server, database, user,
//! non-empty password, port 5432) over PGHOST, PGHOSTADDR, PGPORT, PGDATABASE, PGUSER,
//! PGPASSWORD and the password file; a vendor variable set and non-empty over its libpq
//! twin (PGMODE over PGSSLMODE, PGROOTCA over PGSSLROOTCERT, PGCERT over PGSSLCERT,
//! PGKEY over PGSSLKEY, PGCRL over PGSSLCRL); the twin over the default.

mod libpq;
pub mod options;
pub mod passfile;

pub(crate) use libpq::Method;
pub use libpq::{
    parse_connect_timeout, ChannelBinding, GssEncMode, RequireAuth, SslCertMode, SslNegotiation,
    TargetSessionAttrs, TlsVersion,
};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::warn;
use zeroize::Zeroizing;

use crate::encoding::ClientEncoding;
use crate::error::{Error, Result};
use crate::secret::Password;

pub mod path;

/// The variables pgdap reads.
pub const VARIABLES: [&str; 7] = [
    "PGMODE",
    "PGROOTCA",
    "PGCERT",
    "PGKEY",
    "PGCRL",
    "PGAUTH",
    "PGCLIENTENCODING",
];

/// libpq's variables pgdap reads as well (SPEC §9): the ones it honours, and the ones
/// `doctor` reports as ignored (the Access Point wins) or unsupported.
pub const LIBPQ_VARIABLES: [&str; 31] = [
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLCRL",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGAPPNAME",
    "PGOPTIONS",
    "PGTZ",
    "PGDATESTYLE",
    "PGCONNECT_TIMEOUT",
    "PGCHANNELBINDING",
    "PGREQUIREAUTH",
    "PGSSLNEGOTIATION",
    "PGSSLMINPROTOCOLVERSION",
    "PGSSLMAXPROTOCOLVERSION",
    "PGSSLCERTMODE",
    "PGSSLSNI",
    "PGGSSENCMODE",
    "PGTARGETSESSIONATTRS",
    // Ignored: the Access Point wins.
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    // Not supported.
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGSSLCRLDIR",
    "PGLOADBALANCEHOSTS",
    "PGSSLCOMPRESSION",
];

/// The libpq variables that the Access Point overrides (SPEC §9).
pub const OVERRIDDEN_BY_ACCESS_POINT: [&str; 5] =
    ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER"];

/// The libpq variables pgdap does not support (SPEC §9); `doctor` says so when set.
pub const UNSUPPORTED: [&str; 5] = [
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGSSLCRLDIR",
    "PGLOADBALANCEHOSTS",
    "PGSSLCOMPRESSION",
];

/// The vendor's variables and their libpq twins.
pub const TWINS: [(&str, &str); 5] = [
    ("PGMODE", "PGSSLMODE"),
    ("PGROOTCA", "PGSSLROOTCERT"),
    ("PGCERT", "PGSSLCERT"),
    ("PGKEY", "PGSSLKEY"),
    ("PGCRL", "PGSSLCRL"),
];

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
            _ => return Err(invalid("PGMODE", value, SslMode::VALID)),
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
            _ => Err(invalid("PGAUTH", value, "password, cert")),
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

/// Where a resolved setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// From the environment variable.
    Env,
    /// The default (the variable was unset or empty).
    Default,
    /// From the Access Point.
    AccessPoint,
    /// From the libpq twin of a vendor variable (e.g. `PGSSLMODE` for `PGMODE`), which
    /// was unset or empty.
    Twin(&'static str),
    /// From the password file.
    PasswordFile,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Env => "env",
            Source::Default => "default",
            Source::AccessPoint => "access point",
            Source::Twin(var) => return write!(f, "env {var}"),
            Source::PasswordFile => "password file",
        })
    }
}

/// A resolved value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Its source.
    pub source: Source,
}

/// An explicit environment: the PG* variables as a map.
///
/// The values (PGPASSWORD's among them) are wiped from memory when the environment, or
/// a replaced value, is dropped.
///
/// ```
/// let env = pgdap::Environment::from_pairs([("PGMODE", "require")]);
/// assert_eq!(env.get("PGMODE"), Some("require"));
/// assert_eq!(env.get("PGAUTH"), None);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, Zeroizing<String>>,
    default_dir: Option<PathBuf>,
}

impl fmt::Debug for Environment {
    /// PGPASSWORD's value is printed as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vars: BTreeMap<&str, &str> = self
            .vars
            .iter()
            .map(|(k, v)| {
                let shown = if k == "PGPASSWORD" { "***" } else { v.as_str() };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("Environment")
            .field("vars", &vars)
            .field("default_dir", &self.default_dir)
            .finish()
    }
}

impl Environment {
    /// An environment from name/value pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Environment {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), Zeroizing::new(v.into())))
                .collect(),
            default_dir: None,
        }
    }

    /// The PG* variables of this process (the only place pgdap reads `std::env`).
    /// A variable whose value is not Unicode is kept lossily and then refused by the
    /// rule for that variable.
    /// It also captures the per-user default directory ([`default_directory`]).
    ///
    /// The copies read from the process environment are moved into the map (or, when not
    /// Unicode, wiped once decoded); the process environment itself is the C library's
    /// and is not wiped.
    pub fn from_process_env() -> Environment {
        let env =
            Environment::from_pairs(VARIABLES.iter().chain(&LIBPQ_VARIABLES).filter_map(|name| {
                std::env::var_os(name).map(|v| {
                    let value = match v.into_string() {
                        Ok(text) => text,
                        Err(v) => {
                            let bytes = Zeroizing::new(v.into_encoded_bytes());
                            crate::secret::utf8_lossy(&bytes)
                        }
                    };
                    (*name, value)
                })
            }));
        match default_directory() {
            Some(dir) => env.with_default_dir(dir),
            None => env,
        }
    }

    /// Sets the per-user default directory (`~/.postgresql`) that unset and relative
    /// paths resolve against.
    ///
    /// ```
    /// let env = pgdap::Environment::default().with_default_dir("/srv/app/.postgresql");
    /// assert_eq!(env.default_dir().unwrap(), std::path::Path::new("/srv/app/.postgresql"));
    /// ```
    pub fn with_default_dir(mut self, dir: impl Into<PathBuf>) -> Environment {
        self.default_dir = Some(dir.into());
        self
    }

    /// The per-user default directory, if known.
    pub fn default_dir(&self) -> Option<&Path> {
        self.default_dir.as_deref()
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A variable's value as set, the empty string included: libpq's variables treat
    /// a set-but-empty value as a value (SPEC §9).
    ///
    /// ```
    /// let env = pgdap::Environment::from_pairs([("PGSSLSNI", "")]);
    /// assert_eq!(env.get_raw("PGSSLSNI"), Some(""));
    /// assert_eq!(env.get("PGSSLSNI"), None);
    /// ```
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.as_str())
    }

    /// Sets a variable (builder style).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Environment {
        self.vars.insert(name.into(), Zeroizing::new(value.into()));
        self
    }
}

/// The per-user default directory: `~/.postgresql/` on Unix, `%APPDATA%\postgresql\` on
/// Windows. `None` when the home (or application data) directory is unknown.
///
/// ```
/// if let Some(dir) = pgdap::env::default_directory() {
///     assert!(dir.ends_with(if cfg!(windows) { "postgresql" } else { ".postgresql" }));
/// }
/// ```
pub fn default_directory() -> Option<PathBuf> {
    if cfg!(windows) {
        dirs::config_dir().map(|base| default_directory_in(&base, true))
    } else {
        dirs::home_dir().map(|base| default_directory_in(&base, false))
    }
}

/// The default directory under a given base: `<home>/.postgresql` or
/// `<APPDATA>\postgresql` (the platform rule, testable on any platform).
///
/// ```
/// use std::path::Path;
/// assert_eq!(pgdap::env::default_directory_in(Path::new("/home/a"), false),
///            Path::new("/home/a/.postgresql"));
/// ```
pub fn default_directory_in(base: &Path, windows: bool) -> PathBuf {
    base.join(if windows { "postgresql" } else { ".postgresql" })
}

/// Settings resolved from the environment, each with its source.
///
/// ```
/// use std::path::Path;
/// let env = pgdap::Environment::from_pairs([("PGMODE", "verify-full"), ("PGROOTCA", "ca/bundle.pem")]);
/// let s = pgdap::Settings::resolve(&env, Some(Path::new("/home/a/.postgresql")))?;
/// assert_eq!(s.mode.value, pgdap::SslMode::VerifyFull);
/// assert_eq!(s.root_ca.value, Path::new("/home/a/.postgresql/ca/bundle.pem"));
/// assert_eq!(s.crl.value, Path::new("/home/a/.postgresql/postgresql.crl"));
/// # Ok::<(), pgdap::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// PGMODE.
    pub mode: Setting<SslMode>,
    /// PGAUTH.
    pub auth: Setting<AuthMethod>,
    /// PGROOTCA: trusted CA certificates.
    pub root_ca: Setting<PathBuf>,
    /// PGCERT: client certificate (chain).
    pub cert: Setting<PathBuf>,
    /// PGKEY: client key.
    pub key: Setting<PathBuf>,
    /// PGCRL: certificate revocation list.
    pub crl: Setting<PathBuf>,
    /// PGCLIENTENCODING.
    pub encoding: Setting<ClientEncoding>,
    /// PGPASSWORD (set and non-empty), used when the Access Point has no password.
    pub password: Option<Setting<Password>>,
    /// The password file: PGPASSFILE, or `~/.pgpass` (`%APPDATA%\postgresql\pgpass.conf`
    /// on Windows); read at connect time when neither the Access Point nor PGPASSWORD
    /// gives a password. `None` when no home directory is known.
    pub passfile: Option<Setting<PathBuf>>,
    /// PGAPPNAME (the empty string sends none, as libpq).
    pub application_name: Option<Setting<String>>,
    /// PGOPTIONS, sent unchanged as the `options` start-up parameter.
    pub options: Option<Setting<String>>,
    /// PGTZ (not sent when `default`).
    pub timezone: Option<Setting<String>>,
    /// PGDATESTYLE (not sent when `default`).
    pub datestyle: Option<Setting<String>>,
    /// PGCONNECT_TIMEOUT: the bound on each connection attempt; `value: None` waits
    /// forever (0 or negative). Unset: `Options::connect_timeout`.
    pub connect_timeout: Option<Setting<Option<Duration>>>,
    /// PGCHANNELBINDING (default prefer).
    pub channel_binding: Setting<ChannelBinding>,
    /// PGREQUIREAUTH (unset: any method).
    pub require_auth: Option<Setting<RequireAuth>>,
    /// PGSSLNEGOTIATION (default postgres).
    pub ssl_negotiation: Setting<SslNegotiation>,
    /// PGSSLMINPROTOCOLVERSION (default TLSv1.2; pgdap never goes below TLSv1.2).
    pub ssl_min_protocol: Setting<Option<TlsVersion>>,
    /// PGSSLMAXPROTOCOLVERSION (default none).
    pub ssl_max_protocol: Setting<Option<TlsVersion>>,
    /// PGSSLCERTMODE (default allow).
    pub ssl_cert_mode: Setting<SslCertMode>,
    /// PGSSLSNI: SNI for host names only when the value is `1` (the default).
    pub ssl_sni: Setting<bool>,
    /// PGGSSENCMODE (default prefer; `require` is refused: no GSSAPI in pgdap).
    pub gss_enc_mode: Setting<GssEncMode>,
    /// PGTARGETSESSIONATTRS (default any), checked after connecting.
    pub target_session_attrs: Setting<TargetSessionAttrs>,
    /// Vendor/twin pairs both set to different values: (vendor variable, twin); the
    /// vendor's value is used.
    pub conflicts: Vec<(&'static str, &'static str)>,
}

impl Settings {
    /// Resolves the environment. `default_dir` is the per-user directory (see
    /// [`default_directory`]); it is needed only when a path variable is unset or relative.
    pub fn resolve(env: &Environment, default_dir: Option<&Path>) -> Result<Settings> {
        let mut conflicts = Vec::new();
        for (vendor, twin) in TWINS {
            if let (Some(v), Some(t)) = (env.get(vendor), env.get_raw(twin)) {
                if v != t {
                    warn!("{vendor}={v:?} and {twin}={t:?} are both set; {vendor} wins (SPEC §9)");
                    conflicts.push((vendor, twin));
                }
            }
        }
        let mode = match (env.get("PGMODE"), env.get_raw("PGSSLMODE")) {
            (None, Some(twin)) => Setting {
                value: twin.parse::<SslMode>().map_err(|_| Error::LibpqSetting {
                    var: "PGSSLMODE",
                    reason: format!("invalid sslmode value: \"{twin}\""),
                })?,
                source: Source::Twin("PGSSLMODE"),
            },
            _ => parse_var(env, "PGMODE", SslMode::Prefer)?,
        };
        let auth = parse_var(env, "PGAUTH", AuthMethod::Password)?;
        if auth.value == AuthMethod::Cert && mode.value == SslMode::Disable {
            return Err(Error::CertAuthWithoutSsl);
        }
        let encoding = match env.get("PGCLIENTENCODING") {
            None => Setting {
                value: ClientEncoding::Utf8,
                source: Source::Default,
            },
            Some(name) => Setting {
                value: ClientEncoding::from_name(name).ok_or_else(|| Error::UnknownEncoding {
                    value: name.to_string(),
                    valid: ClientEncoding::NAMES.join(", "),
                })?,
                source: Source::Env,
            },
        };
        let libpq = |var: &'static str| env.get_raw(var);
        fn from_env<T>(value: T) -> Setting<T> {
            Setting {
                value,
                source: Source::Env,
            }
        }
        fn or_default<T>(_var: &'static str, value: T) -> Setting<T> {
            Setting {
                value,
                source: Source::Default,
            }
        }
        let enum_var = libpq;

        let channel_binding = match enum_var("PGCHANNELBINDING") {
            Some(v) => from_env(ChannelBinding::parse_libpq(v)?),
            None => or_default("PGCHANNELBINDING", ChannelBinding::Prefer),
        };
        let ssl_negotiation = match enum_var("PGSSLNEGOTIATION") {
            Some(v) => from_env(SslNegotiation::parse_libpq(v)?),
            None => or_default("PGSSLNEGOTIATION", SslNegotiation::Postgres),
        };
        // libpq 17: direct TLS only with a mode that never goes plaintext.
        if ssl_negotiation.value == SslNegotiation::Direct
            && matches!(
                mode.value,
                SslMode::Disable | SslMode::Allow | SslMode::Prefer
            )
        {
            return Err(Error::LibpqSetting {
                var: "PGSSLNEGOTIATION",
                reason: format!(
                    "weak sslmode \"{}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")",
                    mode.value
                ),
            });
        }
        let ssl_cert_mode = match enum_var("PGSSLCERTMODE") {
            Some(v) => from_env(SslCertMode::parse_libpq(v)?),
            None => or_default("PGSSLCERTMODE", SslCertMode::Allow),
        };
        if ssl_cert_mode.value == SslCertMode::Disable && auth.value == AuthMethod::Cert {
            return Err(Error::LibpqSetting {
                var: "PGSSLCERTMODE",
                reason: "sslcertmode=disable sends no client certificate, but PGAUTH=cert authenticates with one; unset PGSSLCERTMODE or use PGAUTH=password".into(),
            });
        }
        let gss_enc_mode = match enum_var("PGGSSENCMODE") {
            Some(v) => from_env(GssEncMode::parse_libpq(v)?),
            None => or_default("PGGSSENCMODE", GssEncMode::Prefer),
        };
        if gss_enc_mode.value == GssEncMode::Require {
            return Err(Error::LibpqSetting {
                var: "PGGSSENCMODE",
                reason: "gssencmode value \"require\" invalid when GSSAPI support is not compiled in (pgdap has no GSSAPI; unset PGGSSENCMODE or use prefer/disable)".into(),
            });
        }
        let target_session_attrs = match enum_var("PGTARGETSESSIONATTRS") {
            Some(v) => from_env(TargetSessionAttrs::parse_libpq(v)?),
            None => or_default("PGTARGETSESSIONATTRS", TargetSessionAttrs::Any),
        };
        let ssl_min_protocol = match libpq("PGSSLMINPROTOCOLVERSION") {
            Some(v) => from_env(libpq::parse_tls_bound(
                "PGSSLMINPROTOCOLVERSION",
                "ssl_min_protocol_version",
                v,
            )?),
            None => or_default("PGSSLMINPROTOCOLVERSION", Some(TlsVersion::Tls1_2)),
        };
        let ssl_max_protocol = match libpq("PGSSLMAXPROTOCOLVERSION") {
            Some(v) => from_env(libpq::parse_tls_bound(
                "PGSSLMAXPROTOCOLVERSION",
                "ssl_max_protocol_version",
                v,
            )?),
            None => or_default("PGSSLMAXPROTOCOLVERSION", None),
        };
        if let (Some(min), Some(max)) = (ssl_min_protocol.value, ssl_max_protocol.value) {
            if min > max {
                return Err(Error::LibpqSetting {
                    var: "PGSSLMAXPROTOCOLVERSION",
                    reason: format!(
                        "invalid SSL protocol version range (minimum {min}, maximum {max})"
                    ),
                });
            }
        }
        let connect_timeout = match libpq("PGCONNECT_TIMEOUT") {
            Some(v) => Some(from_env(parse_connect_timeout(v)?)),
            None => None,
        };
        let require_auth = match libpq("PGREQUIREAUTH") {
            Some(v) => Some(from_env(RequireAuth::parse(v)?)),
            None => None,
        };
        let ssl_sni = match libpq("PGSSLSNI") {
            // libpq tests the first character only.
            Some(v) => from_env(v.starts_with('1')),
            None => or_default("PGSSLSNI", true),
        };
        // libpq: "default" (any case) is not sent.
        let guc = |var: &'static str| {
            libpq(var)
                .filter(|v| !v.eq_ignore_ascii_case("default"))
                .map(|v| from_env(v.to_string()))
        };
        let passfile = match libpq("PGPASSFILE").filter(|v| !v.is_empty()) {
            Some(v) => Some(from_env(PathBuf::from(v))),
            None => default_dir
                .and_then(|dir| passfile::default_path(dir, cfg!(windows)))
                .map(|path| Setting {
                    value: path,
                    source: Source::Default,
                }),
        };
        if libpq("PGSSLROOTCERT") == Some("system") && env.get("PGROOTCA").is_none() {
            return Err(Error::LibpqSetting {
                var: "PGSSLROOTCERT",
                reason: "sslrootcert=system (the operating system's trusted roots) is not supported: pgdap trusts only the root CA file (SPEC §3); set PGROOTCA or PGSSLROOTCERT to the CA file".into(),
            });
        }
        for var in UNSUPPORTED {
            if libpq(var).is_some() {
                warn!("{var} is set but not supported by pgdap; it is ignored (SPEC §9)");
            }
        }
        Ok(Settings {
            mode,
            auth,
            root_ca: path_var(env, "PGROOTCA", "root.crt", default_dir)?,
            cert: path_var(env, "PGCERT", "postgresql.crt", default_dir)?,
            key: path_var(env, "PGKEY", "postgresql.key", default_dir)?,
            crl: path_var(env, "PGCRL", "postgresql.crl", default_dir)?,
            encoding,
            password: libpq("PGPASSWORD")
                .filter(|v| !v.is_empty())
                .map(|v| from_env(Password::new(v))),
            passfile,
            application_name: libpq("PGAPPNAME").map(|v| from_env(v.to_string())),
            options: libpq("PGOPTIONS").map(|v| from_env(v.to_string())),
            timezone: guc("PGTZ"),
            datestyle: guc("PGDATESTYLE"),
            connect_timeout,
            channel_binding,
            require_auth,
            ssl_negotiation,
            ssl_min_protocol,
            ssl_max_protocol,
            ssl_cert_mode,
            ssl_sni,
            gss_enc_mode,
            target_session_attrs,
            conflicts,
        })
    }

    /// The bound on one connection attempt: PGCONNECT_TIMEOUT when set (`None`: no
    /// bound), else `default` (`Options::connect_timeout`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let env = pgdap::Environment::from_pairs([("PGCONNECT_TIMEOUT", "1")]).with_default_dir("/h/.postgresql");
    /// let s = pgdap::Settings::resolve(&env, env.default_dir())?;
    /// assert_eq!(s.attempt_timeout(Duration::from_secs(10)), Some(Duration::from_secs(2)));
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    pub fn attempt_timeout(&self, default: Duration) -> Option<Duration> {
        match &self.connect_timeout {
            Some(setting) => setting.value,
            None => Some(default),
        }
    }

    /// PGSSLMINPROTOCOLVERSION when it asks for less than TLS 1.2 (`TLSv1`, `TLSv1.1`):
    /// pgdap never negotiates below TLS 1.2, so such a minimum is raised to TLS 1.2 (where
    /// libpq would allow the older versions). The TLS context logs it at debug level when
    /// it is built, and `doctor` reports it.
    ///
    /// ```
    /// let env = pgdap::Environment::from_pairs([("PGSSLMINPROTOCOLVERSION", "TLSv1")]).with_default_dir("/h/.postgresql");
    /// let s = pgdap::Settings::resolve(&env, env.default_dir())?;
    /// assert_eq!(s.raised_min_protocol(), Some(pgdap::env::TlsVersion::Tls1));
    /// let env = pgdap::Environment::from_pairs([("PGSSLMINPROTOCOLVERSION", "TLSv1.3")]).with_default_dir("/h/.postgresql");
    /// assert_eq!(pgdap::Settings::resolve(&env, env.default_dir())?.raised_min_protocol(), None);
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    pub fn raised_min_protocol(&self) -> Option<TlsVersion> {
        self.ssl_min_protocol
            .value
            .filter(|asked| *asked < TlsVersion::Tls1_2)
    }

    /// The `options` start-up parameter: PGOPTIONS, PGTZ and PGDATESTYLE
    /// ([`options::startup_options`]).
    pub fn startup_options(&self) -> Option<String> {
        options::startup_options(
            self.options.as_ref().map(|s| s.value.as_str()),
            self.timezone.as_ref().map(|s| s.value.as_str()),
            self.datestyle.as_ref().map(|s| s.value.as_str()),
        )
    }
}

fn parse_var<T: std::str::FromStr<Err = Error>>(
    env: &Environment,
    var: &'static str,
    default: T,
) -> Result<Setting<T>> {
    Ok(match env.get(var) {
        None => Setting {
            value: default,
            source: Source::Default,
        },
        Some(value) => Setting {
            value: value.parse()?,
            source: Source::Env,
        },
    })
}

/// The libpq twin of a vendor path variable.
fn twin_of(var: &str) -> Option<&'static str> {
    TWINS.iter().find(|(v, _)| *v == var).map(|(_, t)| *t)
}

fn path_var(
    env: &Environment,
    var: &'static str,
    default_name: &str,
    default_dir: Option<&Path>,
) -> Result<Setting<PathBuf>> {
    // The twin (PGSSLROOTCERT for PGROOTCA, ...) when the vendor variable is unset or
    // empty; an empty twin means the default, as in libpq. A relative twin path is
    // relative to the working directory, as in libpq.
    if env.get(var).is_none() {
        if let Some(twin) = twin_of(var) {
            if let Some(value) = env.get(twin) {
                check_path(twin, value)?;
                return Ok(Setting {
                    value: PathBuf::from(value),
                    source: Source::Twin(twin),
                });
            }
        }
    }
    let (relative, source) = match env.get(var) {
        Some(value) => {
            check_path(var, value)?;
            (value, Source::Env)
        }
        None => (default_name, Source::Default),
    };
    // PostgreSQL's absolute paths as written; others relative to the per-user directory
    // (SPEC §2), not the working directory (libpq). See path.rs for Windows' rooted paths.
    let value = path::resolve(relative, default_dir, cfg!(windows))
        .map_err(|problem| Error::InvalidPath {
            var,
            reason: problem.reason(),
        })?
        .ok_or(Error::NoDefaultDirectory)?;
    Ok(Setting { value, source })
}

fn check_path(var: &'static str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::InvalidPath {
            var,
            reason: "it contains a NUL character",
        });
    }
    if value.contains(['\n', '\r']) {
        return Err(Error::InvalidPath {
            var,
            reason: "it contains a line break",
        });
    }
    // `from_process_env` keeps a value that is not Unicode lossily: the path it
    // names is not the operator's file, and treating that file as absent would
    // silently drop the root CA (no verification under prefer/require), the CRL
    // or the client certificate.
    if value.contains(char::REPLACEMENT_CHARACTER) {
        return Err(Error::InvalidPath {
            var,
            reason: "it is not valid Unicode (the environment holds bytes that are not UTF-8); rename the file or directory",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(pairs: &[(&str, &str)]) -> Result<Settings> {
        Settings::resolve(
            &Environment::from_pairs(pairs.iter().copied()),
            Some(Path::new("/home/op/.postgresql")),
        )
    }

    #[test]
    fn defaults() {
        let s = resolve(&[]).unwrap();
        assert_eq!(s.mode.value, SslMode::Prefer);
        assert_eq!(s.mode.source, Source::Default);
        assert_eq!(s.auth.value, AuthMethod::Password);
        assert_eq!(s.root_ca.value, Path::new("/home/op/.postgresql/root.crt"));
        assert_eq!(
            s.cert.value,
            Path::new("/home/op/.postgresql/postgresql.crt")
        );
        assert_eq!(
            s.key.value,
            Path::new("/home/op/.postgresql/postgresql.key")
        );
        assert_eq!(
            s.crl.value,
            Path::new("/home/op/.postgresql/postgresql.crl")
        );
        assert_eq!(s.encoding.value, ClientEncoding::Utf8);
        assert_eq!(s.crl.source, Source::Default);
    }

    #[test]
    fn empty_means_default() {
        let s = resolve(&[("PGMODE", ""), ("PGROOTCA", ""), ("PGAUTH", "")]).unwrap();
        assert_eq!(s.mode.value, SslMode::Prefer);
        assert_eq!(s.mode.source, Source::Default);
        assert_eq!(s.root_ca.source, Source::Default);
    }

    #[test]
    fn every_mode_parses() {
        for m in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            let s = resolve(&[("PGMODE", m)]).unwrap();
            assert_eq!(s.mode.value.as_str(), m);
            assert_eq!(s.mode.source, Source::Env);
        }
    }

    #[test]
    fn values_are_case_sensitive_and_errors_list_valid_values() {
        let err = resolve(&[("PGMODE", "Require")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"Require\" for PGMODE (valid values: disable, allow, prefer, require, verify-ca, verify-full; values are case-sensitive)"
        );
        let err = resolve(&[("PGAUTH", "CERT")]).unwrap_err();
        assert!(matches!(err, Error::InvalidEnv { var: "PGAUTH", .. }));
        assert!(err.to_string().contains("password, cert"));
        let err = resolve(&[("PGMODE", "verify_full")]).unwrap_err();
        assert!(err.to_string().contains("PGMODE"));
    }

    #[test]
    fn cert_auth_with_disable_is_a_configuration_error() {
        let err = resolve(&[("PGMODE", "disable"), ("PGAUTH", "cert")]).unwrap_err();
        assert!(matches!(err, Error::CertAuthWithoutSsl));
        for m in ["allow", "prefer", "require", "verify-ca", "verify-full"] {
            assert!(resolve(&[("PGMODE", m), ("PGAUTH", "cert")]).is_ok());
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_default_directory() {
        let s = resolve(&[
            ("PGROOTCA", "ca.pem"),
            ("PGCERT", "sub/me.crt"),
            ("PGKEY", "/etc/keys/me.key"),
            ("PGCRL", "../shared.crl"),
        ])
        .unwrap();
        assert_eq!(s.root_ca.value, Path::new("/home/op/.postgresql/ca.pem"));
        assert_eq!(s.cert.value, Path::new("/home/op/.postgresql/sub/me.crt"));
        assert_eq!(s.key.value, Path::new("/etc/keys/me.key"));
        assert_eq!(s.crl.value, Path::new("/home/op/.postgresql/../shared.crl"));
        assert_eq!(s.key.source, Source::Env);
    }

    #[test]
    fn no_default_directory_needs_absolute_paths() {
        let env = Environment::from_pairs([("PGROOTCA", "/a"), ("PGCERT", "/b")]);
        assert!(matches!(
            Settings::resolve(&env, None).unwrap_err(),
            Error::NoDefaultDirectory
        ));
        let env = env.with("PGKEY", "/c").with("PGCRL", "/d");
        assert!(Settings::resolve(&env, None).is_ok());
    }

    #[test]
    fn nul_and_newline_in_paths_are_refused() {
        let err = resolve(&[("PGCERT", "a\0b")]).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { var: "PGCERT", .. }));
        let err = resolve(&[("PGKEY", "/k\n")]).unwrap_err();
        assert!(err.to_string().contains("PGKEY"));
    }

    #[test]
    fn unknown_encoding_lists_the_valid_ones() {
        let err = resolve(&[("PGCLIENTENCODING", "KLINGON")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("PGCLIENTENCODING") && text.contains("UTF8"),
            "{text}"
        );
    }

    #[test]
    fn default_directory_per_platform() {
        assert_eq!(
            default_directory_in(Path::new("/home/a"), false),
            Path::new("/home/a/.postgresql")
        );
        assert_eq!(
            default_directory_in(Path::new("C:/Users/a/AppData/Roaming"), true),
            Path::new("C:/Users/a/AppData/Roaming/postgresql")
        );
    }

    #[test]
    fn libpq_empty_values_are_values() {
        for (var, phrase) in [
            ("PGSSLMODE", "invalid sslmode value: \"\""),
            ("PGCHANNELBINDING", "invalid channel_binding value: \"\""),
            (
                "PGTARGETSESSIONATTRS",
                "invalid target_session_attrs value: \"\"",
            ),
            ("PGCONNECT_TIMEOUT", "invalid integer value \"\""),
            ("PGSSLNEGOTIATION", "invalid sslnegotiation value: \"\""),
            ("PGSSLCERTMODE", "invalid sslcertmode value: \"\""),
            ("PGGSSENCMODE", "invalid gssencmode value: \"\""),
        ] {
            let err = resolve(&[(var, "")]).unwrap_err().to_string();
            assert!(err.contains(phrase) && err.contains(var), "{var}: {err}");
        }
        let s = resolve(&[("PGREQUIREAUTH", ""), ("PGSSLSNI", ""), ("PGAPPNAME", "")]).unwrap();
        assert_eq!(s.require_auth.unwrap().value.as_str(), "");
        assert!(!s.ssl_sni.value);
        assert_eq!(s.application_name.unwrap().value, "");
        // Empty path twins and PGPASSFILE mean the default; empty PGPASSWORD is none.
        let s = resolve(&[
            ("PGSSLROOTCERT", ""),
            ("PGPASSFILE", ""),
            ("PGPASSWORD", ""),
        ])
        .unwrap();
        assert_eq!(s.root_ca.source, Source::Default);
        assert_eq!(s.passfile.unwrap().value, Path::new("/home/op/.pgpass"));
        assert!(s.password.is_none());
    }

    #[test]
    fn sni_only_for_1() {
        for (v, on) in [
            ("1", true),
            ("0", false),
            ("", false),
            ("yes", false),
            ("10", true),
        ] {
            assert_eq!(
                resolve(&[("PGSSLSNI", v)]).unwrap().ssl_sni.value,
                on,
                "{v:?}"
            );
        }
        assert!(resolve(&[]).unwrap().ssl_sni.value);
    }

    #[test]
    fn twins_fall_back_and_vendor_wins() {
        let s = resolve(&[("PGSSLMODE", "verify-ca"), ("PGSSLROOTCERT", "ca.pem")]).unwrap();
        assert_eq!(s.mode.value, SslMode::VerifyCa);
        assert_eq!(s.mode.source, Source::Twin("PGSSLMODE"));
        assert_eq!(s.mode.source.to_string(), "env PGSSLMODE");
        // A relative twin path stays relative to the working directory, as in libpq.
        assert_eq!(s.root_ca.value, Path::new("ca.pem"));
        let s = resolve(&[
            ("PGMODE", "require"),
            ("PGSSLMODE", "disable"),
            ("PGCRL", "/a"),
            ("PGSSLCRL", "/a"),
        ])
        .unwrap();
        assert_eq!(s.mode.value, SslMode::Require);
        assert_eq!(s.conflicts, vec![("PGMODE", "PGSSLMODE")]);
        // The vendor's variable wins even over an invalid twin.
        assert!(resolve(&[("PGMODE", "require"), ("PGSSLMODE", "")]).is_ok());
        assert!(resolve(&[("PGMODE", ""), ("PGSSLMODE", "")]).is_err());
        assert!(resolve(&[("PGSSLROOTCERT", "system")])
            .unwrap_err()
            .to_string()
            .contains("not supported"));
    }

    #[test]
    fn libpq_ranges_and_timeouts() {
        assert!(resolve(&[("PGSSLMAXPROTOCOLVERSION", "TLSv1.1")])
            .unwrap_err()
            .to_string()
            .contains("invalid SSL protocol version range"));
        assert!(resolve(&[
            ("PGSSLMINPROTOCOLVERSION", ""),
            ("PGSSLMAXPROTOCOLVERSION", "TLSv1.1")
        ])
        .is_ok());
        let s = resolve(&[("PGCONNECT_TIMEOUT", "0")]).unwrap();
        assert_eq!(s.attempt_timeout(Duration::from_secs(10)), None);
        let s = resolve(&[]).unwrap();
        assert_eq!(
            s.attempt_timeout(Duration::from_secs(10)),
            Some(Duration::from_secs(10))
        );
        assert!(resolve(&[("PGSSLNEGOTIATION", "direct")])
            .unwrap_err()
            .to_string()
            .contains("weak sslmode \"prefer\""));
        assert!(resolve(&[("PGSSLNEGOTIATION", "direct"), ("PGMODE", "require")]).is_ok());
        assert!(resolve(&[("PGGSSENCMODE", "require")]).is_err());
        assert!(resolve(&[("PGTZ", "Default"), ("PGDATESTYLE", "ISO")])
            .unwrap()
            .timezone
            .is_none());
    }

    #[test]
    fn pgpassword_never_prints() {
        let env = Environment::from_pairs([("PGPASSWORD", "hunter2"), ("PGMODE", "require")]);
        let s = Settings::resolve(&env, Some(Path::new("/h/.postgresql"))).unwrap();
        for text in [format!("{env:?}"), format!("{s:?}"), format!("{s:#?}")] {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert!(format!("{env:?}").contains("require"));
    }
}
