//! [`Settings`]: the environment resolved, each value with its source. The variables are
//! described in [`variables`](super::variables); the rules (precedence, twins, checks
//! across variables) are here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::warn;

use super::libpq;
use super::variables::*;
use super::{
    passfile, path, startup_params, AuthMethod, ChannelBinding, Environment, GssEncMode,
    RequireAuth, Setting, Source, SslCertMode, SslMode, SslNegotiation, TargetSessionAttrs,
    TlsVersion,
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
    /// PGTARGETSESSIONATTRS (default any), checked after connecting.
    pub target_session_attrs: Setting<TargetSessionAttrs>,
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
        for (vendor, twin) in TWINS {
            // A twin set to "" differs from any vendor value: reported too.
            if let (Some(v), Some(t)) = (env.get(vendor), env.get_raw(twin)) {
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
                source: Source::Twin(PGSSLMODE.name),
            },
            _ => read(env, &PGMODE, str::parse, SslMode::Prefer)?,
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
        if PGSSLROOTCERT.value(env) == Some("system") && PGROOTCA.value(env).is_none() {
            return Err(Error::LibpqSetting {
                var: PGSSLROOTCERT.name,
                reason: "sslrootcert=system (the operating system's trusted roots) is not supported: pgdap trusts only the root CA file; set PGROOTCA or PGSSLROOTCERT to the CA file".into(),
            });
        }
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
                source: Source::Env,
            })
        })
        .transpose()
}

/// A server setting (PGTZ, PGDATESTYLE): libpq does not send "default" (any case).
fn guc(env: &Environment, var: &Variable) -> Option<Setting<String>> {
    var.value(env)
        .filter(|v| !v.eq_ignore_ascii_case("default"))
        .map(|v| Setting {
            value: v.to_string(),
            source: Source::Env,
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
                    source: Source::Twin(twin.name),
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
        assert!(resolve(&[(PGSSLROOTCERT.name, "system")])
            .unwrap_err()
            .to_string()
            .contains("not supported"));
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
    fn pgpassword_never_prints() {
        let env = Environment::from_pairs([(PGPASSWORD.name, "hunter2"), (PGMODE.name, "require")]);
        let s = Settings::resolve(&env, Some(Path::new("/h/.postgresql"))).unwrap();
        for text in [format!("{env:?}"), format!("{s:?}"), format!("{s:#?}")] {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert!(format!("{env:?}").contains("require"));
    }
}
