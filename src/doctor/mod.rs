//! The diagnostic report (the vendor's `$getssl()` and more): resolved settings with their
//! sources, the certificate files found, the outcome of connecting, the server settings
//! the vendor's applications expect, and for each failure the likely cause from the
//! vendor's troubleshooting table (docs/design.md §5).

mod environment;
mod files;
mod hosts;
mod render;

// A certificate's summary from an OpenSSL certificate: public only to the fuzz target
// (cargo-fuzz's `--cfg fuzzing`), so no OpenSSL type is in the API a user must name.
#[cfg(fuzzing)]
pub use files::summarize;
#[cfg(not(fuzzing))]
use files::summarize;
pub use hosts::HostReport;

use std::path::PathBuf;

use openssl::x509::X509;
use serde::Serialize;

use crate::access_point::{AccessPoint, PORT};
use crate::connect::{Config, ConnectOptions, Connector};
use crate::env::{Environment, Settings, Source};
use crate::error::Error;

/// OK, WARN or FAIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// As expected.
    Ok,
    /// Works, but something should be fixed.
    Warn,
    /// Does not work.
    Fail,
}

/// One checked item, with the fix when it is not OK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// OK/WARN/FAIL.
    pub status: Status,
    /// What was checked, e.g. `standard_conforming_strings`.
    pub item: String,
    /// What was found.
    pub found: String,
    /// What to do, when not OK.
    pub fix: Option<String>,
}

/// A resolved setting and its source; the password is masked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettingLine {
    /// Name (`PGMODE`, `dbserver`, ...).
    pub name: String,
    /// Value (`***` for the password).
    pub value: String,
    /// `env`, `default` or `access point`.
    pub source: String,
}

/// A certificate's identity and validity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateSummary {
    /// Subject (`CN=..., O=...`).
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Subject alternative names (`DNS:x`, `IP:y`).
    pub san: Vec<String>,
    /// Not valid after (OpenSSL's format, GMT).
    pub not_after: String,
    /// Days until expiry (negative: expired).
    pub days_left: i64,
}

/// A file the settings name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// `root CA`, `CRL`, `client certificate`, `client key`.
    pub role: String,
    /// The variable naming it.
    pub var: String,
    /// The resolved path.
    pub path: PathBuf,
    /// Whether it exists.
    pub found: bool,
    /// Certificates in it (certificate files).
    pub certificates: Vec<CertificateSummary>,
    /// What is wrong with it, if anything.
    pub problem: Option<String>,
}

/// The outcome of connecting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionReport {
    /// Whether a session was established.
    pub connected: bool,
    /// Whether it is encrypted.
    pub ssl: bool,
    /// TLS version.
    pub tls_version: Option<String>,
    /// Cipher.
    pub cipher: Option<String>,
    /// Whether the server certificate was verified against the root CA file.
    pub server_verified: bool,
    /// The server certificate.
    pub server_certificate: Option<CertificateSummary>,
    /// Session user.
    pub user: Option<String>,
    /// Server version.
    pub server_version: Option<String>,
    /// The member of `dbserver` the session went to.
    pub host: Option<String>,
    /// The error, when connecting failed.
    pub error: Option<String>,
    /// The likely cause from the vendor's troubleshooting table.
    pub likely_cause: Option<String>,
}

/// The whole report. `Display` renders it for people; `serde` for machines.
///
/// ```no_run
/// # async fn run() -> Result<(), pgdap::Error> {
/// let ap = pgdap::AccessPoint::from_file("dap.cfg")?;
/// let report = pgdap::doctor::diagnose(&ap, &pgdap::Environment::from_process_env(), &Default::default()).await;
/// println!("{report}");
/// println!("{}", serde_json::to_string_pretty(&report).unwrap());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Resolved settings with sources.
    pub settings: Vec<SettingLine>,
    /// The certificate files.
    pub files: Vec<FileReport>,
    /// The connection.
    pub connection: ConnectionReport,
    /// Each member of `dbserver` tried on its own: addresses, outcome, role.
    pub hosts: Vec<HostReport>,
    /// Everything checked, OK/WARN/FAIL.
    pub checks: Vec<Check>,
}

impl Report {
    /// The worst status of all checks.
    pub fn status(&self) -> Status {
        if self.checks.iter().any(|c| c.status == Status::Fail) {
            Status::Fail
        } else if self.checks.iter().any(|c| c.status == Status::Warn) {
            Status::Warn
        } else {
            Status::Ok
        }
    }
}

/// What the doctor checks beyond the connection options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoctorOptions {
    /// Certificates expiring within this many days are a warning.
    pub expiry_warning_days: i64,
    /// Connection options (timeouts).
    pub options: ConnectOptions,
}

impl Default for DoctorOptions {
    fn default() -> DoctorOptions {
        DoctorOptions {
            expiry_warning_days: 30,
            options: ConnectOptions::default(),
        }
    }
}

fn check(
    status: Status,
    item: impl Into<String>,
    found: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        status,
        item: item.into(),
        found: found.into(),
        fix,
    }
}

/// Runs every check. It never fails: failures are items of the report.
pub async fn diagnose(ap: &AccessPoint, env: &Environment, opts: &DoctorOptions) -> Report {
    let mut checks = Vec::new();
    let mut settings_lines = vec![
        line("dbengine", "postgre", Source::AccessPoint),
        line("dbserver", ap.server(), Source::AccessPoint),
        line("port", &PORT.to_string(), Source::Default),
        line("dbname", ap.dbname(), Source::AccessPoint),
        line("username", ap.username(), Source::AccessPoint),
        line(
            "password",
            if ap.password().is_empty() {
                "(empty)"
            } else {
                "***"
            },
            Source::AccessPoint,
        ),
    ];
    if let Some(exposed) = ap.readable_by_others() {
        checks.push(check(
            Status::Warn,
            "Access Point file",
            exposed.to_string(),
            Some(format!("chmod 0600 \"{}\"", exposed.path.display())),
        ));
    }
    let settings = match Settings::resolve(env, env.default_dir()) {
        Ok(s) => s,
        Err(e) => {
            checks.push(check(
                Status::Fail,
                "environment",
                e.to_string(),
                Some(
                    e.likely_cause()
                        .unwrap_or("fix the variable named above".into())
                        .into_owned(),
                ),
            ));
            return Report {
                settings: settings_lines,
                files: Vec::new(),
                connection: failed_connection(&e),
                hosts: Vec::new(),
                checks,
            };
        }
    };
    settings_lines.extend(environment::variable_lines(ap, env, &settings, &mut checks));
    let files = files::file_reports(&settings, opts.expiry_warning_days, &mut checks);

    let config = Config::from_parts(ap.clone(), settings.clone(), opts.options.clone());
    let connection = match Connector::new(config) {
        Err(e) => failed_connection(&e),
        Ok(connector) => match connector.connect_spawned().await {
            Err(e) => failed_connection(&e),
            Ok(session) => {
                let mut report = ConnectionReport {
                    connected: true,
                    ssl: session.tls.is_some(),
                    tls_version: session.tls.as_ref().map(|t| t.version.clone()),
                    cipher: session.tls.as_ref().map(|t| t.cipher.clone()),
                    server_verified: session.tls.as_ref().is_some_and(|t| t.verified),
                    server_certificate: session
                        .tls
                        .as_ref()
                        .and_then(|t| t.peer_certificate.as_ref())
                        .and_then(|der| X509::from_der(der).ok())
                        .map(|c| summarize(&c)),
                    user: None,
                    server_version: None,
                    host: Some(session.host().to_string()),
                    error: None,
                    likely_cause: None,
                };
                server_checks(&session.client, &settings, &mut report, &mut checks).await;
                if let Some(cert) = &report.server_certificate {
                    files::expiry_check(
                        "server certificate",
                        cert,
                        opts.expiry_warning_days,
                        &mut checks,
                    );
                }
                report
            }
        },
    };
    if connection.connected {
        let (status, fix) = match (connection.ssl, connection.server_verified) {
            (true, true) => (Status::Ok, None),
            (true, false) => (
                Status::Warn,
                Some("the server certificate is not verified: provide the root CA (PGROOTCA) and use PGMODE=verify-full".to_string()),
            ),
            (false, _) => (
                Status::Warn,
                Some("the session is not encrypted: enable ssl on the server and use PGMODE=verify-full".to_string()),
            ),
        };
        let found = match (&connection.tls_version, &connection.cipher) {
            (Some(v), Some(c)) => format!(
                "SSL {v} {c}{}",
                if connection.server_verified {
                    ", server verified"
                } else {
                    ", server not verified"
                }
            ),
            _ => "plaintext".to_string(),
        };
        checks.push(check(status, "encryption", found, fix));
    } else {
        checks.push(check(
            Status::Fail,
            "connection",
            connection.error.clone().unwrap_or_default(),
            connection.likely_cause.clone(),
        ));
    }
    // One member: the connection above was to it; several: each is tried alone.
    let hosts = if ap.hosts().len() > 1 {
        hosts::host_reports(ap, &settings, &opts.options).await
    } else {
        Vec::new()
    };
    for host in &hosts {
        if !host.connected {
            checks.push(check(
                Status::Warn,
                format!("dbserver member \"{}\"", host.host),
                host.outcome.clone(),
                Some("this member takes no session: the others serve while it is down".into()),
            ));
        }
    }
    Report {
        settings: settings_lines,
        files,
        connection,
        hosts,
        checks,
    }
}

fn line(name: &str, value: &str, source: Source) -> SettingLine {
    SettingLine {
        name: name.to_string(),
        value: value.to_string(),
        source: source.to_string(),
    }
}

fn failed_connection(e: &Error) -> ConnectionReport {
    let text = e.to_string();
    ConnectionReport {
        connected: false,
        ssl: false,
        tls_version: None,
        cipher: None,
        server_verified: false,
        server_certificate: None,
        user: None,
        server_version: None,
        host: None,
        likely_cause: e.likely_cause().map(std::borrow::Cow::into_owned),
        error: Some(text),
    }
}

/// The certificate-rotation state of a running connector, as a check for a service's own
/// health report: OK while the last reload succeeded; WARN while the files no longer load
/// or a file in use has disappeared ([`Error::FileVanished`]), since the previous TLS
/// context is then still in service.
///
/// ```no_run
/// # fn report(connector: &pgdap::Connector) {
/// let check = pgdap::doctor::rotation_check(connector);
/// if check.status != pgdap::doctor::Status::Ok {
///     eprintln!("{}: {} (fix: {})", check.item, check.found, check.fix.unwrap_or_default());
/// }
/// # }
/// ```
pub fn rotation_check(connector: &Connector) -> Check {
    const ITEM: &str = "certificate rotation";
    match connector.tls_reloader().last_error() {
        None => check(
            Status::Ok,
            ITEM,
            "no reload error: the last check found the certificate files unchanged or loaded them",
            None,
        ),
        Some(e) => {
            let fix = if matches!(*e, Error::FileVanished { .. }) {
                "put the file back (the TLS context built from it stays in service meanwhile), or restart the service to stop using it"
            } else {
                "fix the file named above; the previous TLS context stays in service until it loads"
            };
            check(Status::Warn, ITEM, e.to_string(), Some(fix.to_string()))
        }
    }
}

/// Where a running connector's password comes from, as a check for a service's own
/// health report: the credential provider (its name, calls, and the cached secret's
/// expiry), or the Access Point (its file's re-read state), PGPASSWORD, a service or the
/// password file, never the value. WARN while the Access Point file changed but cannot be
/// used (the last good one stays in service) or the cached secret has expired.
///
/// ```no_run
/// # fn report(connector: &pgdap::Connector) {
/// let check = pgdap::doctor::credential_check(connector);
/// println!("{}: {}", check.item, check.found);
/// # }
/// ```
pub fn credential_check(connector: &Connector) -> Check {
    const ITEM: &str = "credentials";
    if let Some(e) = connector.access_point_error() {
        return check(
            Status::Warn,
            ITEM,
            e.to_string(),
            Some(
                "fix the Access Point file; new connections use the last good one meanwhile".into(),
            ),
        );
    }
    let settings = connector.config().settings();
    if settings.auth.value == crate::env::AuthMethod::Cert {
        return check(
            Status::Ok,
            ITEM,
            "PGAUTH=cert: no password is ever sent",
            None,
        );
    }
    if let Some(status) = connector.credential_status() {
        let expiry = match status.expires_at {
            Some(at) => match at.duration_since(std::time::SystemTime::now()) {
                Ok(left) => format!("the cached secret expires in {}s", left.as_secs()),
                Err(_) => {
                    return check(
                        Status::Warn,
                        ITEM,
                        format!(
                            "credential provider \"{}\": the cached secret has expired; the next connection fetches a new one",
                            status.provider
                        ),
                        None,
                    )
                }
            },
            None if status.calls == 0 => "not called yet".to_string(),
            None => "the cached secret has no expiry".to_string(),
        };
        return check(
            Status::Ok,
            ITEM,
            format!(
                "credential provider \"{}\" ({} calls; {expiry})",
                status.provider, status.calls
            ),
            None,
        );
    }
    let ap = connector.access_point();
    let found = match crate::env::passfile::password_for(&ap, settings) {
        Some((_, source)) => {
            let file = match (source, ap.file()) {
                (Source::AccessPoint, Some(file)) => {
                    format!(" (file \"{}\", read again when it changes)", file.display())
                }
                _ => String::new(),
            };
            format!("the password comes from the {source}{file}")
        }
        None => "no password is configured".to_string(),
    };
    check(Status::Ok, ITEM, found, None)
}

async fn server_checks(
    client: &tokio_postgres::Client,
    settings: &Settings,
    report: &mut ConnectionReport,
    checks: &mut Vec<Check>,
) {
    let row = match client
        .query_one(
            "select session_user::text, current_setting('server_version'), \
             current_setting('standard_conforming_strings'), current_setting('bytea_output'), \
             current_setting('server_encoding'), current_setting('client_encoding')",
            &[],
        )
        .await
    {
        Ok(row) => row,
        Err(e) => {
            checks.push(check(Status::Fail, "server settings", e.to_string(), None));
            return;
        }
    };
    let user: String = row.get(0);
    report.user = Some(user.clone());
    report.server_version = Some(row.get(1));
    checks.push(check(Status::Ok, "session user", user, None));
    checks.push(vendor_expects(
        "standard_conforming_strings",
        row.get(2),
        "off",
        "off",
    ));
    checks.push(vendor_expects(
        "bytea_output",
        row.get(3),
        "escape",
        "'escape'",
    ));
    let server_encoding: String = row.get(4);
    let client = settings.encoding.value.name();
    let status = if server_encoding == "SQL_ASCII" && client == "UTF8" {
        Status::Warn
    } else {
        Status::Ok
    };
    checks.push(check(
        status,
        "encodings",
        format!("server {server_encoding}, client {client} (PGCLIENTENCODING), wire {}", row.get::<_, String>(5)),
        (status == Status::Warn).then(|| "a SQL_ASCII database stores raw bytes: set PGCLIENTENCODING to the encoding the data was written in".to_string()),
    ));
}

/// A server setting the vendor's applications expect to be `expected` (written `literal`
/// in postgresql.conf).
fn vendor_expects(item: &str, found: String, expected: &str, literal: &str) -> Check {
    if found == expected {
        check(Status::Ok, item, found, None)
    } else {
        check(
            Status::Warn,
            item,
            found,
            Some(format!("the vendor's applications expect {expected}: set {item} = {literal} in postgresql.conf (or ALTER DATABASE ... SET) and reload")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::variables::{PGMODE, PGROOTCA};

    #[tokio::test]
    async fn the_credential_check_names_the_source_never_the_value() {
        let ap = AccessPoint::parse(
            "dbengine=postgre\ndbserver=db1\ndbname=d\nusername=u\npassword=hunter2\n",
        )
        .unwrap();
        let env =
            Environment::from_pairs([(PGMODE.name, "disable")]).with_default_dir("/nonexistent");
        let connector = Connector::new(Config::new(ap, &env).unwrap()).unwrap();
        let c = credential_check(&connector);
        assert_eq!(
            (c.status, c.found.as_str()),
            (Status::Ok, "the password comes from the access point")
        );
        let connector = connector.with_credential_provider(crate::credentials::provider_fn(
            "vault",
            || async {
                Ok(crate::credentials::Credential::new(crate::Password::new(
                    "hunter2",
                )))
            },
        ));
        let c = credential_check(&connector);
        assert_eq!(
            c.found,
            "credential provider \"vault\" (0 calls; not called yet)"
        );
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn a_failed_connection_carries_the_error_and_its_likely_cause() {
        let e = Error::CertAuthWithoutSsl;
        let c = failed_connection(&e);
        assert!(!c.connected && !c.ssl && !c.server_verified);
        assert_eq!(c.error, Some(e.to_string()));
        assert_eq!(c.likely_cause, None);
        let e = Error::SslNotSupported {
            host: "db1".into(),
            mode: "require",
        };
        assert_eq!(
            failed_connection(&e).likely_cause.as_deref(),
            Some("the server has ssl = off: enable it, or change PGMODE")
        );
    }

    #[test]
    fn server_settings_the_vendors_applications_expect() {
        let c = vendor_expects("bytea_output", "escape".into(), "escape", "'escape'");
        assert_eq!(
            (c.status, c.found.as_str(), c.fix),
            (Status::Ok, "escape", None)
        );
        let c = vendor_expects("bytea_output", "hex".into(), "escape", "'escape'");
        assert_eq!(
            (c.status, c.item.as_str(), c.found.as_str()),
            (Status::Warn, "bytea_output", "hex")
        );
        assert_eq!(c.fix.unwrap(), "the vendor's applications expect escape: set bytea_output = 'escape' in postgresql.conf (or ALTER DATABASE ... SET) and reload");
        let c = vendor_expects("standard_conforming_strings", "on".into(), "off", "off");
        assert_eq!(c.fix.unwrap(), "the vendor's applications expect off: set standard_conforming_strings = off in postgresql.conf (or ALTER DATABASE ... SET) and reload");
    }

    #[test]
    fn the_report_status_is_the_worst_check() {
        let with = |statuses: &[Status]| Report {
            settings: Vec::new(),
            files: Vec::new(),
            connection: failed_connection(&Error::NoDefaultDirectory),
            hosts: Vec::new(),
            checks: statuses
                .iter()
                .map(|s| check(*s, "item", "found", None))
                .collect(),
        };
        assert_eq!(with(&[]).status(), Status::Ok);
        assert_eq!(with(&[Status::Ok, Status::Warn]).status(), Status::Warn);
        assert_eq!(
            with(&[Status::Fail, Status::Warn, Status::Ok]).status(),
            Status::Fail
        );
    }

    #[test]
    fn the_rotation_check_shows_a_vanished_root_ca() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.crt");
        let certificate = files::test_certificate("ca", 1, &[], &[]);
        std::fs::write(&root, certificate.to_pem().unwrap()).unwrap();
        let env = Environment::from_pairs([(PGMODE.name, "require")]).with_default_dir(dir.path());
        let config = Config::new(
            AccessPoint::new("db1", "d", "u", crate::secret::Password::new("p")),
            &env,
        )
        .unwrap();
        let connector = Connector::new(config).unwrap();
        assert_eq!(rotation_check(&connector).status, Status::Ok);

        std::fs::remove_file(&root).unwrap();
        connector.tls_reloader().reload_now();
        let c = rotation_check(&connector);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.found.contains("root.crt")
                && c.found.contains(PGROOTCA.name)
                && c.found.contains("now missing"),
            "{}",
            c.found
        );
        assert!(c.fix.unwrap().contains("put the file back"));
    }
}
