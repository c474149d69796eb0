//! What a connection is made from: the Access Point, the resolved settings, and the
//! options of the program ([`ConnectOptions`]: timeouts, keepalives, the key passphrase,
//! the staggered attempt over several servers).

use std::time::Duration;

use crate::access_point::AccessPoint;
use crate::env::{Environment, Setting, Settings, Source};
use crate::error::Result;
use crate::secret::Password;

/// Connection tuning: timeouts and TCP keepalives.
///
/// The defaults detect a dead server in about 35 seconds instead of Linux's two hours:
/// keepalive probes start after 20 s of silence, every 5 s, and 3 unanswered probes drop
/// the connection; `TCP_USER_TIMEOUT` (Linux) drops it when sent data stays unacknowledged
/// for 30 s. A connection attempt (TCP, TLS and authentication) may take 10 s.
///
/// ```
/// use std::time::Duration;
/// let opts = pgdap::ConnectOptions { connect_timeout: Duration::from_secs(3), ..Default::default() };
/// assert_eq!(opts.keepalives_idle, Duration::from_secs(20));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Bound on each connection attempt, from TCP connect to a ready session.
    pub connect_timeout: Duration,
    /// Turn TCP keepalives on.
    pub keepalives: bool,
    /// Idle time before the first keepalive probe.
    pub keepalives_idle: Duration,
    /// Time between probes.
    pub keepalives_interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub keepalives_retries: u32,
    /// `TCP_USER_TIMEOUT` (Linux only; ignored elsewhere). Zero leaves the OS default.
    pub tcp_user_timeout: Duration,
    /// `application_name` reported to the server, if any.
    pub application_name: Option<String>,
    /// How often, at most, the certificate files are checked for changes (certificate
    /// rotation without a restart). Zero checks before every connection.
    pub reload_interval: Duration,
    /// The passphrase of an encrypted client key (PGKEY), as libpq's `sslpassword`; it
    /// wins over a service file's `sslpassword`. pgdap never prompts for it (the `pgdap`
    /// command does, on a terminal).
    ///
    /// ```
    /// let opts = pgdap::ConnectOptions {
    ///     key_passphrase: Some(pgdap::Password::new("from a secret store")),
    ///     ..Default::default()
    /// };
    /// assert_eq!(format!("{opts:?}").matches("from a secret store").count(), 0);
    /// ```
    pub key_passphrase: Option<Password>,
    /// Beyond libpq, opt-in: with several `dbserver` members, start the next member's
    /// attempt alongside one that has not finished within this delay (in the spirit of
    /// RFC 8305's Happy Eyeballs), so a silent member costs the delay, not
    /// PGCONNECT_TIMEOUT. The first session that fits wins. `None` (the default) keeps
    /// libpq's one-at-a-time order (docs/design.md §11).
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = pgdap::ConnectOptions { host_stagger: Some(Duration::from_millis(250)), ..Default::default() };
    /// assert!(pgdap::ConnectOptions::default().host_stagger.is_none());
    /// # let _ = opts;
    /// ```
    pub host_stagger: Option<Duration>,
}

/// The former name of [`ConnectOptions`], kept so existing code compiles (it was one of
/// several "options" in the crate: [`PoolOptions`](crate::PoolOptions),
/// [`DoctorOptions`](crate::doctor::DoctorOptions), PGOPTIONS).
///
/// ```
/// #[allow(deprecated)]
/// let opts = pgdap::Options::default();
/// assert_eq!(opts, pgdap::ConnectOptions::default());
/// ```
#[deprecated(since = "0.2.0", note = "renamed to ConnectOptions")]
pub type Options = ConnectOptions;

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            keepalives: true,
            keepalives_idle: Duration::from_secs(20),
            keepalives_interval: Duration::from_secs(5),
            keepalives_retries: 3,
            tcp_user_timeout: Duration::from_secs(30),
            application_name: None,
            reload_interval: Duration::from_secs(5),
            key_passphrase: None,
            host_stagger: None,
        }
    }
}

/// Everything needed to connect: the Access Point, the resolved environment, options.
///
/// ```
/// let ap = pgdap::AccessPoint::parse("dbengine=postgre\ndbserver=db1\ndbname=d\nusername=u\n")?;
/// let env = pgdap::Environment::from_pairs([("PGMODE", "require")]).with_default_dir("/nonexistent");
/// let config = pgdap::Config::new(ap, &env)?;
/// assert_eq!(config.settings().mode.value, pgdap::SslMode::Require);
/// # Ok::<(), pgdap::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    pub(super) access_point: AccessPoint,
    pub(super) settings: Settings,
    pub(super) options: ConnectOptions,
}

impl Config {
    /// Resolves the environment for this Access Point with default options.
    pub fn new(access_point: AccessPoint, env: &Environment) -> Result<Config> {
        let settings = Settings::resolve(env, env.default_dir())?;
        Ok(Config::from_parts(
            access_point,
            settings,
            ConnectOptions::default(),
        ))
    }

    /// Builds a configuration from already resolved parts.
    pub fn from_parts(
        access_point: AccessPoint,
        settings: Settings,
        options: ConnectOptions,
    ) -> Config {
        let mut config = Config {
            access_point,
            settings,
            options,
        };
        config.apply_key_passphrase();
        config
    }

    /// Replaces the options (builder style).
    pub fn with_options(mut self, options: ConnectOptions) -> Config {
        self.options = options;
        self.apply_key_passphrase();
        self
    }

    /// `ConnectOptions::key_passphrase` wins over the service file's `sslpassword`.
    fn apply_key_passphrase(&mut self) {
        match &self.options.key_passphrase {
            Some(passphrase) => {
                self.settings.key_passphrase = Some(Setting {
                    value: passphrase.clone(),
                    source: Source::Code,
                });
            }
            None => {
                if matches!(&self.settings.key_passphrase, Some(s) if s.source == Source::Code) {
                    self.settings.key_passphrase = None;
                }
            }
        }
    }

    /// The Access Point.
    pub fn access_point(&self) -> &AccessPoint {
        &self.access_point
    }

    /// The resolved environment.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The options.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }
}
