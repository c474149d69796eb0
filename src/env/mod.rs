//! The environment: `PGMODE`, `PGROOTCA`, `PGCERT`, `PGKEY`, `PGCRL`, `PGAUTH`,
//! `PGCLIENTENCODING`, and libpq's own variables (docs/design.md §9,
//! [`LIBPQ_VARIABLES`]), resolved into [`Settings`] from an explicit map.
//!
//! Each variable is described once, in the table of `variables.rs`; the public lists
//! ([`VARIABLES`], [`LIBPQ_VARIABLES`], [`OVERRIDDEN_BY_ACCESS_POINT`], [`UNSUPPORTED`],
//! [`TWINS`]) are derived from it.
//!
//! `std::env` is read only by [`Environment::from_process_env`]; every rule is a pure
//! function of the map and the per-user default directory.
//!
//! Precedence (docs/design.md §9), highest first: the Access Point (server, database,
//! user, non-empty password, port 5432) over PGHOST, PGHOSTADDR, PGPORT, PGDATABASE,
//! PGUSER, PGPASSWORD and the password file; a vendor variable set and non-empty over its
//! libpq twin (PGMODE over PGSSLMODE, PGROOTCA over PGSSLROOTCERT, PGCERT over PGSSLCERT,
//! PGKEY over PGSSLKEY, PGCRL over PGSSLCRL); the twin over the default.

mod libpq;
pub(crate) mod passfile;
pub(crate) mod path;
pub(crate) mod service;
mod settings;
mod startup_params;
pub(crate) mod variables;
mod vendor;

pub(crate) use libpq::Method;
pub use libpq::{
    parse_connect_timeout, ChannelBinding, GssEncMode, LoadBalanceHosts, ProtocolVersion,
    RequireAuth, SslCertMode, SslNegotiation, TargetSessionAttrs, TlsVersion,
};
pub use service::ServiceInfo;
pub use settings::Settings;
pub(crate) use settings::SYSTEM_ROOTS;
pub use variables::{LIBPQ_VARIABLES, OVERRIDDEN_BY_ACCESS_POINT, TWINS, UNSUPPORTED, VARIABLES};
pub use vendor::{AuthMethod, SslMode};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

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
    /// From the connection service file (`PGSERVICE`; [`Settings::service`] names the
    /// file).
    Service,
    /// Set in code ([`ConnectOptions`](crate::ConnectOptions)).
    Code,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Env => "env",
            Source::Default => "default",
            Source::AccessPoint => "access point",
            Source::Twin(var) => return write!(f, "env {var}"),
            Source::PasswordFile => "password file",
            Source::Service => "service file",
            Source::Code => "ConnectOptions",
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
    /// The variables a connection service set (the environment as [`service`] layers it).
    from_service: BTreeSet<&'static str>,
}

impl fmt::Debug for Environment {
    /// PGPASSWORD's value is printed as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vars: BTreeMap<&str, &str> = self
            .vars
            .iter()
            .map(|(k, v)| {
                let shown = if *k == variables::PGPASSWORD.name {
                    "***"
                } else {
                    v.as_str()
                };
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
            from_service: BTreeSet::new(),
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
        let env = Environment::from_pairs(variables::ALL.iter().filter_map(|var| {
            std::env::var_os(var.name).map(|v| {
                let value = match v.into_string() {
                    Ok(text) => text,
                    Err(v) => {
                        let bytes = Zeroizing::new(v.into_encoded_bytes());
                        crate::secret::utf8_lossy(&bytes)
                    }
                };
                (var.name, value)
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
    /// a set-but-empty value as a value (docs/design.md §9).
    ///
    /// ```
    /// let env = pgdap::Environment::from_pairs([("PGSSLSNI", "")]);
    /// assert_eq!(env.get_raw("PGSSLSNI"), Some(""));
    /// assert_eq!(env.get("PGSSLSNI"), None);
    /// ```
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.as_str())
    }

    /// Sets a variable to a connection service's value.
    pub(crate) fn set_from_service(&mut self, name: &'static str, value: &str) {
        self.vars
            .insert(name.to_string(), Zeroizing::new(value.to_string()));
        self.from_service.insert(name);
    }

    /// Where a variable's value came from: the environment, or a connection service.
    pub(crate) fn source_of(&self, name: &str) -> Source {
        if self.from_service.contains(name) {
            Source::Service
        } else {
            Source::Env
        }
    }

    /// Sets a variable (builder style).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Environment {
        let name = name.into();
        self.from_service.remove(name.as_str());
        self.vars.insert(name, Zeroizing::new(value.into()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
