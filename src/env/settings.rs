//! [`Settings`]: the environment resolved, each value with its source. The variables are
//! described in [`variables`](super::variables); the rules (precedence, twins, checks
//! across variables) are here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::warn;

use super::libpq;
use super::variables::*;
use super::{
    passfile, path, service, startup_params, AuthMethod, ChannelBinding, Environment, GssEncMode,
    LoadBalanceHosts, ProtocolVersion, RequireAuth, ServiceInfo, Setting, Source, SslCertMode,
    SslMode, SslNegotiation, TargetSessionAttrs, TlsVersion,
};
use crate::encoding::ClientEncoding;
use crate::error::{Error, Result};
use crate::secret::Password;

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
    /// forever (0 or negative). Unset: `ConnectOptions::connect_timeout`.
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
    /// PGTARGETSESSIONATTRS (default any), checked after start-up on each member tried.
    pub target_session_attrs: Setting<TargetSessionAttrs>,
    /// PGLOADBALANCEHOSTS (default disable): the order `dbserver`'s members are tried in.
    pub load_balance_hosts: Setting<LoadBalanceHosts>,
    /// PGREQUIREPEER: the user the server behind a Unix socket must run as.
    pub require_peer: Option<Setting<String>>,
    /// PGSSLCRLDIR: a directory of CRLs named by hash (`openssl rehash`).
    pub crl_dir: Option<Setting<PathBuf>>,
    /// PGMINPROTOCOLVERSION (default 3.0; pgdap speaks 3.0 only).
    pub min_protocol: Setting<ProtocolVersion>,
    /// PGMAXPROTOCOLVERSION (default 3.0).
    pub max_protocol: Setting<ProtocolVersion>,
    /// PGSERVICE: the connection service whose group was read, if any.
    pub service: Option<ServiceInfo>,
    /// The per-user service file searched first (PGSERVICEFILE, or `~/.pg_service.conf`).
    pub service_file: Option<Setting<PathBuf>>,
    /// The system-wide service file searched next (`PGSYSCONFDIR/pg_service.conf`).
    pub sysconf_file: Option<Setting<PathBuf>>,
    /// The client key's passphrase: the service's `sslpassword`, or
    /// [`ConnectOptions::key_passphrase`](crate::ConnectOptions::key_passphrase).
    pub key_passphrase: Option<Setting<Password>>,
    /// Vendor/twin pairs both set to different values: (vendor variable, twin); the
    /// vendor's value is used.
    pub conflicts: Vec<(&'static str, &'static str)>,
}

impl Settings {
    /// Resolves the environment. `default_dir` is the per-user directory (see
    /// [`default_directory`](super::default_directory)); it is needed only when a path
    /// variable is unset or relative.
    pub fn resolve(env: &Environment, default_dir: Option<&Path>) -> Result<Settings> {
        let mut conflicts = Vec::new();
        // The connection service's values sit below the vendor's variables and above
        // libpq's (docs/design.md §13): the environment as the service layers it.
        let service = service::find(env, default_dir)?;
        let search = service::search_path(env, default_dir);
        let layered;
        let outer = env;
        let env = match &service {
            Some(s) => {
                layered = s.overlay(env);
                &layered
            }
            None => env,
        };
        for (vendor, twin) in TWINS {
            // A twin set to "" differs from any vendor value: reported too.
            if let (Some(v), Some(t)) = (outer.get(vendor), outer.get_raw(twin)) {
                if v != t {
                    warn!("{vendor}={v:?} and {twin}={t:?} are both set; {vendor} wins");
                    conflicts.push((vendor, twin));
                }
            }
        }
        let mode = match (PGMODE.value(env), PGSSLMODE.value(env)) {
            (None, Some(twin)) => Setting {
                value: twin.parse::<SslMode>().map_err(|_| Error::LibpqSetting {
                    var: PGSSLMODE.name,
                    reason: format!("invalid sslmode value: \"{twin}\""),
                })?,
                source: twin_source(env, &PGSSLMODE),
            },
            _ => read(env, &PGMODE, str::parse, SslMode::Prefer)?,
        };
        // PGSSLROOTCERT=system (libpq 16+): the operating system's roots, verify-full by
        // default and nothing weaker. PGROOTCA names a file, never the system's store.
        if PGROOTCA.value(env) == Some(SYSTEM_ROOTS) {
            return Err(Error::InvalidPath {
                var: PGROOTCA.name,
                reason: "\"system\" would name a file here; for the operating system's trusted roots set PGSSLROOTCERT=system and leave PGROOTCA unset",
            });
        }
        let system_roots =
            PGROOTCA.value(env).is_none() && PGSSLROOTCERT.value(env) == Some(SYSTEM_ROOTS);
        let mode = if !system_roots {
            mode
        } else if mode.source == Source::Default {
            Setting {
                value: SslMode::VerifyFull,
                source: twin_source(env, &PGSSLROOTCERT),
            }
        } else if mode.value != SslMode::VerifyFull {
            return Err(Error::LibpqSetting {
                var: PGSSLROOTCERT.name,
                reason: format!(
                    "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
                    mode.value
                ),
            });
        } else {
            mode
        };
        let auth = read(env, &PGAUTH, str::parse, AuthMethod::Password)?;
        if auth.value == AuthMethod::Cert && mode.value == SslMode::Disable {
            return Err(Error::CertAuthWithoutSsl);
        }
        let encoding = read(
            env,
            &PGCLIENTENCODING,
            |name| {
                ClientEncoding::from_name(name).ok_or_else(|| Error::UnknownEncoding {
                    value: name.to_string(),
                    valid: ClientEncoding::NAMES.join(", "),
                })
            },
            ClientEncoding::Utf8,
        )?;
        let channel_binding = read(
            env,
            &PGCHANNELBINDING,
            ChannelBinding::parse_libpq,
            ChannelBinding::Prefer,
        )?;
        let ssl_negotiation = read(
            env,
            &PGSSLNEGOTIATION,
            SslNegotiation::parse_libpq,
            SslNegotiation::Postgres,
        )?;
        // libpq 17: direct TLS only with a mode that never goes plaintext.
        if ssl_negotiation.value == SslNegotiation::Direct
            && matches!(
                mode.value,
                SslMode::Disable | SslMode::Allow | SslMode::Prefer
            )
        {
            return Err(Error::LibpqSetting {
                var: PGSSLNEGOTIATION.name,
                reason: format!(
                    "weak sslmode \"{}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")",
                    mode.value
                ),
            });
        }
        let ssl_cert_mode = read(
            env,
            &PGSSLCERTMODE,
            SslCertMode::parse_libpq,
            SslCertMode::Allow,
        )?;
        if ssl_cert_mode.value == SslCertMode::Disable && auth.value == AuthMethod::Cert {
            return Err(Error::LibpqSetting {
                var: PGSSLCERTMODE.name,
                reason: "sslcertmode=disable sends no client certificate, but PGAUTH=cert authenticates with one; unset PGSSLCERTMODE or use PGAUTH=password".into(),
            });
        }
        let gss_enc_mode = read(
            env,
            &PGGSSENCMODE,
            GssEncMode::parse_libpq,
            GssEncMode::Prefer,
        )?;
        if gss_enc_mode.value == GssEncMode::Require {
            return Err(Error::LibpqSetting {
                var: PGGSSENCMODE.name,
                reason: "gssencmode value \"require\" invalid when GSSAPI support is not compiled in (pgdap has no GSSAPI; unset PGGSSENCMODE or use prefer/disable)".into(),
            });
        }
        let target_session_attrs = read(
            env,
            &PGTARGETSESSIONATTRS,
            TargetSessionAttrs::parse_libpq,
            TargetSessionAttrs::Any,
        )?;
        let load_balance_hosts = read(
            env,
            &PGLOADBALANCEHOSTS,
            LoadBalanceHosts::parse_libpq,
            LoadBalanceHosts::Disable,
        )?;
        // libpq: an empty requirepeer checks nothing.
        let require_peer = read_if_set(env, &PGREQUIREPEER, |v| Ok(v.to_string()))?
            .filter(|p: &Setting<String>| !p.value.is_empty());
        let ssl_min_protocol = read(
            env,
            &PGSSLMINPROTOCOLVERSION,
            |v| libpq::parse_tls_bound(PGSSLMINPROTOCOLVERSION.name, "ssl_min_protocol_version", v),
            Some(TlsVersion::Tls1_2),
        )?;
        let ssl_max_protocol = read(
            env,
            &PGSSLMAXPROTOCOLVERSION,
            |v| libpq::parse_tls_bound(PGSSLMAXPROTOCOLVERSION.name, "ssl_max_protocol_version", v),
            None,
        )?;
        if let (Some(min), Some(max)) = (ssl_min_protocol.value, ssl_max_protocol.value) {
            if min > max {
                return Err(Error::LibpqSetting {
                    var: PGSSLMAXPROTOCOLVERSION.name,
                    reason: format!(
                        "invalid SSL protocol version range (minimum {min}, maximum {max})"
                    ),
                });
            }
        }
        let connect_timeout = read_if_set(env, &PGCONNECT_TIMEOUT, libpq::parse_connect_timeout)?;
        let require_auth = read_if_set(env, &PGREQUIREAUTH, RequireAuth::parse)?;
        // libpq tests the first character only.
        let ssl_sni = read(env, &PGSSLSNI, |v| Ok(v.starts_with('1')), true)?;
        let passfile = match read_if_set(env, &PGPASSFILE, |v| Ok(PathBuf::from(v)))? {
            Some(file) => Some(file),
            None => default_dir
                .and_then(|dir| passfile::default_path(dir, cfg!(windows)))
                .map(|path| Setting {
                    value: path,
                    source: Source::Default,
                }),
        };
        let min_protocol = read(
            env,
            &PGMINPROTOCOLVERSION,
            |v| ProtocolVersion::parse_libpq(PGMINPROTOCOLVERSION.name, "min_protocol_version", v),
            ProtocolVersion::V3_0,
        )?;
        let max_protocol = read(
            env,
            &PGMAXPROTOCOLVERSION,
            |v| ProtocolVersion::parse_libpq(PGMAXPROTOCOLVERSION.name, "max_protocol_version", v),
            ProtocolVersion::V3_0,
        )?;
        // libpq 18: "latest" is 3.2; an unset maximum follows the minimum.
        let rank = |v: ProtocolVersion| u8::from(v != ProtocolVersion::V3_0);
        if max_protocol.source != Source::Default
            && rank(min_protocol.value) > rank(max_protocol.value)
        {
            return Err(Error::LibpqSetting {
                var: PGMINPROTOCOLVERSION.name,
                reason: "\"min_protocol_version\" is greater than \"max_protocol_version\"".into(),
            });
        }
        if rank(min_protocol.value) > 0 {
            return Err(Error::LibpqSetting {
                var: PGMINPROTOCOLVERSION.name,
                reason: format!(
                    "min_protocol_version {} is not supported: pgdap speaks protocol version 3.0 only (tokio-postgres); set {} to 3.0 or unset it (libpq 18 connects only to PostgreSQL 18 with it: \"server only supports protocol version 3.0, but \"min_protocol_version\" was set to 3.2\")",
                    min_protocol.value,
                    PGMINPROTOCOLVERSION.name
                ),
            });
        }
        let crl_dir = match PGSSLCRLDIR.value(env) {
            Some(dir) => {
                check_path(PGSSLCRLDIR.name, dir)?;
                Some(Setting {
                    value: PathBuf::from(dir),
                    source: env.source_of(PGSSLCRLDIR.name),
                })
            }
            None => None,
        };
        let key_passphrase = service
            .as_ref()
            .and_then(|s| s.get(service::SSLPASSWORD))
            .map(|p| Setting {
                value: Password::new(p),
                source: Source::Service,
            });
        let service_info = service.as_ref().map(|s| ServiceInfo {
            name: s.name.clone(),
            file: s.file.clone(),
            ignored_keys: s.ignored_keys(),
        });
        if let Some(info) = &service_info {
            if !info.ignored_keys.is_empty() {
                warn!(
                    "service \"{}\" (file {}) sets {}: ignored, the Access Point names the server, port, database and user",
                    info.name,
                    info.file.display(),
                    info.ignored_keys.join(", ")
                );
            }
        }
        let env_source = |var: &Variable| {
            if var.value(outer).is_some() {
                Source::Env
            } else {
                Source::Default
            }
        };
        let service_file = search.user.map(|(path, _)| Setting {
            value: path,
            source: env_source(&PGSERVICEFILE),
        });
        let sysconf_file = search.system.map(|path| Setting {
            value: path,
            source: env_source(&PGSYSCONFDIR),
        });
        for var in ALL {
            if matches!(var.kind, Kind::Unsupported) && var.value(env).is_some() {
                warn!(
                    "{} is set but not supported by pgdap; it is ignored",
                    var.name
                );
            }
        }
        let text = |v: &str| Ok(v.to_string());
        Ok(Settings {
            mode,
            auth,
            root_ca: path_var(env, &PGROOTCA, default_dir)?,
            cert: path_var(env, &PGCERT, default_dir)?,
            key: path_var(env, &PGKEY, default_dir)?,
            crl: path_var(env, &PGCRL, default_dir)?,
            encoding,
            password: read_if_set(env, &PGPASSWORD, |v| Ok(Password::new(v)))?,
            passfile,
            application_name: read_if_set(env, &PGAPPNAME, text)?,
            options: read_if_set(env, &PGOPTIONS, text)?,
            timezone: guc(env, &PGTZ),
            datestyle: guc(env, &PGDATESTYLE),
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
            load_balance_hosts,
            require_peer,
            crl_dir,
            min_protocol,
            max_protocol,
            service: service_info,
            service_file,
            sysconf_file,
            key_passphrase,
            conflicts,
        })
    }

    /// The bound on one connection attempt: PGCONNECT_TIMEOUT when set (`None`: no
    /// bound), else `default` (`ConnectOptions::connect_timeout`).
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

    /// Whether the server is verified against the operating system's trusted roots
    /// (`PGSSLROOTCERT=system`, libpq 16+) rather than a root CA file.
    ///
    /// ```
    /// let env = pgdap::Environment::from_pairs([("PGSSLROOTCERT", "system")]).with_default_dir("/h/.postgresql");
    /// let s = pgdap::Settings::resolve(&env, env.default_dir())?;
    /// assert!(s.system_roots());
    /// assert_eq!(s.mode.value, pgdap::SslMode::VerifyFull); // libpq's default with system
    /// # Ok::<(), pgdap::Error>(())
    /// ```
    pub fn system_roots(&self) -> bool {
        self.root_ca.value.as_os_str() == SYSTEM_ROOTS
    }

    /// The CRL file to check when it exists: `PGCRL` (or its twin, or the service's
    /// `sslcrl`), else the default file, except that the default is not read when
    /// `PGSSLCRLDIR` is set (libpq reads its default CRL only when neither is given).
    pub fn crl_file(&self) -> Option<&Path> {
        (self.crl.source != Source::Default || self.crl_dir.is_none())
            .then_some(self.crl.value.as_path())
    }

    /// The `options` start-up parameter: PGOPTIONS, PGTZ and PGDATESTYLE
    /// (appended as `-c timezone=...` and `-c datestyle=...`, escaped as the server splits).
    pub fn startup_options(&self) -> Option<String> {
        startup_params::startup_options(
            self.options.as_ref().map(|s| s.value.as_str()),
            self.timezone.as_ref().map(|s| s.value.as_str()),
            self.datestyle.as_ref().map(|s| s.value.as_str()),
        )
    }
}

/// A variable parsed when set (as its table entry reads it), else `default`.
fn read<T>(
    env: &Environment,
    var: &Variable,
    parse: impl FnOnce(&str) -> Result<T>,
    default: T,
) -> Result<Setting<T>> {
    Ok(read_if_set(env, var, parse)?.unwrap_or(Setting {
        value: default,
        source: Source::Default,
    }))
}

/// A variable parsed when set (as its table entry reads it), else `None`.
fn read_if_set<T>(
    env: &Environment,
    var: &Variable,
    parse: impl FnOnce(&str) -> Result<T>,
) -> Result<Option<Setting<T>>> {
    var.value(env)
        .map(|value| {
            Ok(Setting {
                value: parse(value)?,
                source: env.source_of(var.name),
            })
        })
        .transpose()
}

/// The source of a value read through a vendor variable's twin: the twin, or the
/// connection service that set it.
fn twin_source(env: &Environment, twin: &Variable) -> Source {
    match env.source_of(twin.name) {
        Source::Service => Source::Service,
        _ => Source::Twin(twin.name),
    }
}

/// `PGSSLROOTCERT`'s value for the operating system's trusted roots (libpq 16+).
pub(crate) const SYSTEM_ROOTS: &str = "system";

/// A server setting (PGTZ, PGDATESTYLE): libpq does not send "default" (any case).
fn guc(env: &Environment, var: &Variable) -> Option<Setting<String>> {
    var.value(env)
        .filter(|v| !v.eq_ignore_ascii_case("default"))
        .map(|v| Setting {
            value: v.to_string(),
            source: env.source_of(var.name),
        })
}

fn path_var(
    env: &Environment,
    var: &Variable,
    default_dir: Option<&Path>,
) -> Result<Setting<PathBuf>> {
    // The twin (PGSSLROOTCERT for PGROOTCA, ...) when the vendor variable is unset or
    // empty; an empty twin means the default, as in libpq. A relative twin path is
    // relative to the working directory, as in libpq.
    if var.value(env).is_none() {
        if let Some(twin) = var.twin() {
            if let Some(value) = twin.value(env) {
                check_path(twin.name, value)?;
                return Ok(Setting {
                    value: PathBuf::from(value),
                    source: twin_source(env, twin),
                });
            }
        }
    }
    let (relative, source) = match var.value(env) {
        Some(value) => {
            check_path(var.name, value)?;
            (value, Source::Env)
        }
        None => (var.default_file(), Source::Default),
    };
    // PostgreSQL's absolute paths as written; others relative to the per-user directory
    // (docs/design.md §2), not the working directory (libpq). See path.rs for Windows'
    // rooted paths.
    let value = path::resolve(relative, default_dir, cfg!(windows))
        .map_err(|problem| Error::InvalidPath {
            var: var.name,
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
        let s = resolve(&[(PGMODE.name, ""), (PGROOTCA.name, ""), (PGAUTH.name, "")]).unwrap();
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
            let s = resolve(&[(PGMODE.name, m)]).unwrap();
            assert_eq!(s.mode.value.as_str(), m);
            assert_eq!(s.mode.source, Source::Env);
        }
    }

    #[test]
    fn values_are_case_sensitive_and_errors_list_valid_values() {
        let err = resolve(&[(PGMODE.name, "Require")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"Require\" for PGMODE (valid values: disable, allow, prefer, require, verify-ca, verify-full; values are case-sensitive)"
        );
        let err = resolve(&[(PGAUTH.name, "CERT")]).unwrap_err();
        assert!(matches!(err, Error::InvalidEnv { var, .. } if var == PGAUTH.name));
        assert!(err.to_string().contains("password, cert"));
        let err = resolve(&[(PGMODE.name, "verify_full")]).unwrap_err();
        assert!(err.to_string().contains(PGMODE.name));
    }

    #[test]
    fn cert_auth_with_disable_is_a_configuration_error() {
        let err = resolve(&[(PGMODE.name, "disable"), (PGAUTH.name, "cert")]).unwrap_err();
        assert!(matches!(err, Error::CertAuthWithoutSsl));
        for m in ["allow", "prefer", "require", "verify-ca", "verify-full"] {
            assert!(resolve(&[(PGMODE.name, m), (PGAUTH.name, "cert")]).is_ok());
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_default_directory() {
        let s = resolve(&[
            (PGROOTCA.name, "ca.pem"),
            (PGCERT.name, "sub/me.crt"),
            (PGKEY.name, "/etc/keys/me.key"),
            (PGCRL.name, "../shared.crl"),
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
        let env = Environment::from_pairs([(PGROOTCA.name, "/a"), (PGCERT.name, "/b")]);
        assert!(matches!(
            Settings::resolve(&env, None).unwrap_err(),
            Error::NoDefaultDirectory
        ));
        let env = env.with(PGKEY.name, "/c").with(PGCRL.name, "/d");
        assert!(Settings::resolve(&env, None).is_ok());
    }

    #[test]
    fn nul_and_newline_in_paths_are_refused() {
        let err = resolve(&[(PGCERT.name, "a\0b")]).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { var, .. } if var == PGCERT.name));
        let err = resolve(&[(PGKEY.name, "/k\n")]).unwrap_err();
        assert!(err.to_string().contains(PGKEY.name));
    }

    #[test]
    fn unknown_encoding_lists_the_valid_ones() {
        let err = resolve(&[(PGCLIENTENCODING.name, "KLINGON")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(PGCLIENTENCODING.name) && text.contains("UTF8"),
            "{text}"
        );
    }

    #[test]
    fn libpq_empty_values_are_values() {
        for (var, phrase) in [
            (PGSSLMODE.name, "invalid sslmode value: \"\""),
            (PGCHANNELBINDING.name, "invalid channel_binding value: \"\""),
            (
                PGTARGETSESSIONATTRS.name,
                "invalid target_session_attrs value: \"\"",
            ),
            (PGCONNECT_TIMEOUT.name, "invalid integer value \"\""),
            (PGSSLNEGOTIATION.name, "invalid sslnegotiation value: \"\""),
            (PGSSLCERTMODE.name, "invalid sslcertmode value: \"\""),
            (PGGSSENCMODE.name, "invalid gssencmode value: \"\""),
        ] {
            let err = resolve(&[(var, "")]).unwrap_err().to_string();
            assert!(err.contains(phrase) && err.contains(var), "{var}: {err}");
        }
        let s = resolve(&[
            (PGREQUIREAUTH.name, ""),
            (PGSSLSNI.name, ""),
            (PGAPPNAME.name, ""),
        ])
        .unwrap();
        assert_eq!(s.require_auth.unwrap().value.as_str(), "");
        assert!(!s.ssl_sni.value);
        assert_eq!(s.application_name.unwrap().value, "");
        // Empty path twins and PGPASSFILE mean the default; empty PGPASSWORD is none.
        let s = resolve(&[
            (PGSSLROOTCERT.name, ""),
            (PGPASSFILE.name, ""),
            (PGPASSWORD.name, ""),
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
                resolve(&[(PGSSLSNI.name, v)]).unwrap().ssl_sni.value,
                on,
                "{v:?}"
            );
        }
        assert!(resolve(&[]).unwrap().ssl_sni.value);
    }

    #[test]
    fn twins_fall_back_and_vendor_wins() {
        let s = resolve(&[
            (PGSSLMODE.name, "verify-ca"),
            (PGSSLROOTCERT.name, "ca.pem"),
        ])
        .unwrap();
        assert_eq!(s.mode.value, SslMode::VerifyCa);
        assert_eq!(s.mode.source, Source::Twin(PGSSLMODE.name));
        assert_eq!(s.mode.source.to_string(), "env PGSSLMODE");
        // A relative twin path stays relative to the working directory, as in libpq.
        assert_eq!(s.root_ca.value, Path::new("ca.pem"));
        let s = resolve(&[
            (PGMODE.name, "require"),
            (PGSSLMODE.name, "disable"),
            (PGCRL.name, "/a"),
            (PGSSLCRL.name, "/a"),
        ])
        .unwrap();
        assert_eq!(s.mode.value, SslMode::Require);
        assert_eq!(s.conflicts, vec![(PGMODE.name, PGSSLMODE.name)]);
        // The vendor's variable wins even over an invalid twin.
        assert!(resolve(&[(PGMODE.name, "require"), (PGSSLMODE.name, "")]).is_ok());
        assert!(resolve(&[(PGMODE.name, ""), (PGSSLMODE.name, "")]).is_err());
    }

    #[test]
    fn system_roots_as_libpq_16() {
        // The default sslmode becomes verify-full; a weaker mode is libpq's error.
        let s = resolve(&[(PGSSLROOTCERT.name, "system")]).unwrap();
        assert!(s.system_roots());
        assert_eq!(s.mode.value, SslMode::VerifyFull);
        assert_eq!(s.mode.source, Source::Twin(PGSSLROOTCERT.name));
        for (var, mode) in [(PGMODE.name, "require"), (PGSSLMODE.name, "verify-ca")] {
            let err = resolve(&[(PGSSLROOTCERT.name, "system"), (var, mode)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \"verify-full\")")),
                "{err}"
            );
        }
        assert!(resolve(&[(PGSSLROOTCERT.name, "system"), (PGMODE.name, "verify-full")]).is_ok());
        // PGROOTCA wins over its twin, and names a file, never the system's store.
        let s = resolve(&[(PGSSLROOTCERT.name, "system"), (PGROOTCA.name, "/ca.pem")]).unwrap();
        assert!(!s.system_roots());
        assert_eq!(s.mode.value, SslMode::Prefer);
        let err = resolve(&[(PGROOTCA.name, "system")]).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { var, .. } if var == PGROOTCA.name));
    }

    #[test]
    fn protocol_versions_as_libpq_18() {
        let s = resolve(&[(PGMAXPROTOCOLVERSION.name, "latest")]).unwrap();
        assert_eq!(s.max_protocol.value, ProtocolVersion::Latest);
        assert_eq!(s.min_protocol.value, ProtocolVersion::V3_0);
        for (pairs, phrase) in [
            (
                &[(PGMINPROTOCOLVERSION.name, "3.1")][..],
                "invalid min_protocol_version value: \"3.1\"",
            ),
            (
                &[(PGMAXPROTOCOLVERSION.name, "")][..],
                "invalid max_protocol_version value: \"\"",
            ),
            (
                &[
                    (PGMINPROTOCOLVERSION.name, "latest"),
                    (PGMAXPROTOCOLVERSION.name, "3.0"),
                ][..],
                "\"min_protocol_version\" is greater than \"max_protocol_version\"",
            ),
            (
                &[(PGMINPROTOCOLVERSION.name, "3.2")][..],
                "pgdap speaks protocol version 3.0 only",
            ),
        ] {
            let err = resolve(pairs).unwrap_err().to_string();
            assert!(err.contains(phrase), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn crl_directory_replaces_the_default_crl_file() {
        let s = resolve(&[(PGSSLCRLDIR.name, "/crls")]).unwrap();
        assert_eq!(s.crl_dir.as_ref().unwrap().value, Path::new("/crls"));
        assert_eq!(s.crl_file(), None);
        let s = resolve(&[(PGSSLCRLDIR.name, "/crls"), (PGCRL.name, "/a.crl")]).unwrap();
        assert_eq!(s.crl_file(), Some(Path::new("/a.crl")));
        let s = resolve(&[(PGSSLCRLDIR.name, "")]).unwrap();
        assert!(s.crl_dir.is_none());
        assert_eq!(
            s.crl_file(),
            Some(Path::new("/home/op/.postgresql/postgresql.crl"))
        );
    }

    #[test]
    fn libpq_ranges_and_timeouts() {
        assert!(resolve(&[(PGSSLMAXPROTOCOLVERSION.name, "TLSv1.1")])
            .unwrap_err()
            .to_string()
            .contains("invalid SSL protocol version range"));
        assert!(resolve(&[
            (PGSSLMINPROTOCOLVERSION.name, ""),
            (PGSSLMAXPROTOCOLVERSION.name, "TLSv1.1")
        ])
        .is_ok());
        let s = resolve(&[(PGCONNECT_TIMEOUT.name, "0")]).unwrap();
        assert_eq!(s.attempt_timeout(Duration::from_secs(10)), None);
        let s = resolve(&[]).unwrap();
        assert_eq!(
            s.attempt_timeout(Duration::from_secs(10)),
            Some(Duration::from_secs(10))
        );
        assert!(resolve(&[(PGSSLNEGOTIATION.name, "direct")])
            .unwrap_err()
            .to_string()
            .contains("weak sslmode \"prefer\""));
        assert!(resolve(&[(PGSSLNEGOTIATION.name, "direct"), (PGMODE.name, "require")]).is_ok());
        assert!(resolve(&[(PGGSSENCMODE.name, "require")]).is_err());
        assert!(
            resolve(&[(PGTZ.name, "Default"), (PGDATESTYLE.name, "ISO")])
                .unwrap()
                .timezone
                .is_none()
        );
    }

    #[test]
    fn a_service_sits_below_the_vendor_and_above_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services.conf");
        std::fs::write(
            &file,
            "[s]\nsslmode=verify-ca\napplication_name=svc\nhost=elsewhere\nuser=other\npassword=svc-pw\nsslpassword=key-pw\nclient_encoding=LATIN1\nsslrootcert=/svc/ca.pem\n",
        )
        .unwrap();
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = vec![
                (PGSERVICE.name, "s"),
                (PGSERVICEFILE.name, file.to_str().unwrap()),
            ];
            pairs.extend_from_slice(extra);
            resolve(&pairs).unwrap()
        };
        // Above libpq's variables.
        let s = with(&[(PGSSLMODE.name, "disable"), (PGAPPNAME.name, "env")]);
        assert_eq!(
            (s.mode.value, s.mode.source),
            (SslMode::VerifyCa, Source::Service)
        );
        let app = s.application_name.unwrap();
        assert_eq!((app.value.as_str(), app.source), ("svc", Source::Service));
        assert_eq!(s.root_ca.value, Path::new("/svc/ca.pem"));
        assert_eq!(s.root_ca.source, Source::Service);
        let password = s.password.unwrap();
        assert_eq!(
            (password.value.expose(), password.source),
            ("svc-pw", Source::Service)
        );
        let passphrase = s.key_passphrase.unwrap();
        assert_eq!(passphrase.value.expose(), "key-pw");
        assert_eq!(s.encoding.value, ClientEncoding::Latin1);
        let service = s.service.unwrap();
        assert_eq!(service.ignored_keys, ["host", "user"]);
        assert!(!format!("{service:?}").contains("pw"));
        // Below the vendor's.
        let s = with(&[
            (PGMODE.name, "require"),
            (PGROOTCA.name, "/vendor/ca.pem"),
            (PGCLIENTENCODING.name, "UTF8"),
        ]);
        assert_eq!(
            (s.mode.value, s.mode.source),
            (SslMode::Require, Source::Env)
        );
        assert_eq!(s.root_ca.value, Path::new("/vendor/ca.pem"));
        assert_eq!(s.encoding.value, ClientEncoding::Utf8);
        // A missing service is an error, not a connection without it.
        let err = resolve(&[
            (PGSERVICE.name, "nope"),
            (PGSERVICEFILE.name, file.to_str().unwrap()),
        ])
        .unwrap_err();
        assert!(matches!(err, Error::ServiceNotFound { .. }), "{err}");
    }

    #[test]
    fn pgpassword_never_prints() {
        let env = Environment::from_pairs([(PGPASSWORD.name, "hunter2"), (PGMODE.name, "require")]);
        let s = Settings::resolve(&env, Some(Path::new("/h/.postgresql"))).unwrap();
        for text in [format!("{env:?}"), format!("{s:?}"), format!("{s:#?}")] {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert!(format!("{env:?}").contains("require"));
    }
}
