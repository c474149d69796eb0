//! The environment: `PGMODE`, `PGROOTCA`, `PGCERT`, `PGKEY`, `PGCRL`, `PGAUTH`,
//! `PGCLIENTENCODING`, resolved into [`Settings`] from an explicit map.
//!
//! `std::env` is read only by [`Environment::from_process_env`]; every rule is a pure
//! function of the map and the per-user default directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::encoding::ClientEncoding;
use crate::error::{Error, Result};

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
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Env => "env",
            Source::Default => "default",
            Source::AccessPoint => "access point",
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
/// ```
/// let env = pgdap::Environment::from_pairs([("PGMODE", "require")]);
/// assert_eq!(env.get("PGMODE"), Some("require"));
/// assert_eq!(env.get("PGAUTH"), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    default_dir: Option<PathBuf>,
}

impl Environment {
    /// An environment from name/value pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Environment {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            default_dir: None,
        }
    }

    /// The PG* variables of this process (the only place pgdap reads `std::env`).
    /// A variable whose value is not Unicode is kept lossily and then refused by the
    /// rule for that variable.
    /// It also captures the per-user default directory ([`default_directory`]).
    pub fn from_process_env() -> Environment {
        let env = Environment::from_pairs(VARIABLES.iter().filter_map(|name| {
            std::env::var_os(name).map(|v| (*name, v.to_string_lossy().into_owned()))
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
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Sets a variable (builder style).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Environment {
        self.vars.insert(name.into(), value.into());
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
}

impl Settings {
    /// Resolves the environment. `default_dir` is the per-user directory (see
    /// [`default_directory`]); it is needed only when a path variable is unset or relative.
    pub fn resolve(env: &Environment, default_dir: Option<&Path>) -> Result<Settings> {
        let mode = parse_var(env, "PGMODE", SslMode::Prefer)?;
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
        Ok(Settings {
            mode,
            auth,
            root_ca: path_var(env, "PGROOTCA", "root.crt", default_dir)?,
            cert: path_var(env, "PGCERT", "postgresql.crt", default_dir)?,
            key: path_var(env, "PGKEY", "postgresql.key", default_dir)?,
            crl: path_var(env, "PGCRL", "postgresql.crl", default_dir)?,
            encoding,
        })
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

fn path_var(
    env: &Environment,
    var: &'static str,
    default_name: &str,
    default_dir: Option<&Path>,
) -> Result<Setting<PathBuf>> {
    let (relative, source) = match env.get(var) {
        Some(value) => {
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
}
