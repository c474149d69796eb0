//! The diagnostic report (the vendor's `$getssl()` and more): resolved settings with their
//! sources, the certificate files found, the outcome of connecting, the server settings
//! the vendor's applications expect, and for each failure the likely cause from the
//! vendor's troubleshooting table (SPEC §5).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::{X509NameRef, X509Ref, X509};
use serde::Serialize;

use crate::access_point::{AccessPoint, PORT};
use crate::connect::{Config, Connector, Options};
use crate::env::{Environment, Settings, Source};
use crate::error::Error;
use crate::tls;

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
    pub options: Options,
}

impl Default for DoctorOptions {
    fn default() -> DoctorOptions {
        DoctorOptions {
            expiry_warning_days: 30,
            options: Options::default(),
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
                    likely_cause(&e.to_string())
                        .unwrap_or("fix the variable named above")
                        .to_string(),
                ),
            ));
            return Report {
                settings: settings_lines,
                files: Vec::new(),
                connection: failed_connection(&e),
                checks,
            };
        }
    };
    settings_lines.extend([
        line("PGMODE", settings.mode.value.as_str(), settings.mode.source),
        line("PGAUTH", settings.auth.value.as_str(), settings.auth.source),
        line(
            "PGROOTCA",
            &settings.root_ca.value.display().to_string(),
            settings.root_ca.source,
        ),
        line(
            "PGCERT",
            &settings.cert.value.display().to_string(),
            settings.cert.source,
        ),
        line(
            "PGKEY",
            &settings.key.value.display().to_string(),
            settings.key.source,
        ),
        line(
            "PGCRL",
            &settings.crl.value.display().to_string(),
            settings.crl.source,
        ),
        line(
            "PGCLIENTENCODING",
            settings.encoding.value.name(),
            settings.encoding.source,
        ),
    ]);
    settings_lines.extend(libpq_lines(ap, env, &settings, &mut checks));
    let files = file_reports(&settings, opts.expiry_warning_days, &mut checks);

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
                    error: None,
                    likely_cause: None,
                };
                server_checks(&session.client, &settings, &mut report, &mut checks).await;
                if let Some(cert) = &report.server_certificate {
                    expiry_check(
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
    Report {
        settings: settings_lines,
        files,
        connection,
        checks,
    }
}

/// The libpq variables (SPEC §9): each setting with its source, the password's source,
/// and warnings for variables that are ignored (the Access Point wins), unsupported, or
/// in conflict with the vendor's variable.
fn libpq_lines(
    ap: &AccessPoint,
    env: &Environment,
    settings: &Settings,
    checks: &mut Vec<Check>,
) -> Vec<SettingLine> {
    fn opt<T: std::fmt::Display>(s: &Option<crate::env::Setting<T>>) -> (String, Source) {
        match s {
            Some(s) => (s.value.to_string(), s.source),
            None => ("(unset)".to_string(), Source::Default),
        }
    }
    let version = |v: Option<crate::env::TlsVersion>| {
        v.map(|v| v.as_str().to_string())
            .unwrap_or_else(|| "(none)".to_string())
    };
    let mut lines = Vec::new();
    // The password actually used, and where from (never the value).
    let (pw_value, pw_source) = match crate::env::passfile::password_for(ap, settings) {
        Some((_, source)) => ("***".to_string(), source),
        None if settings.auth.value == crate::env::AuthMethod::Cert => {
            ("(none: PGAUTH=cert)".to_string(), Source::Default)
        }
        None => ("(none)".to_string(), Source::Default),
    };
    lines.push(line("password in use", &pw_value, pw_source));
    if let Some(file) = &settings.passfile {
        let state = match crate::env::passfile::lookup(
            &file.value,
            ap.server(),
            PORT,
            ap.dbname(),
            ap.username(),
        ) {
            crate::env::passfile::Lookup::Found { line, .. } => format!("matches at line {line}"),
            crate::env::passfile::Lookup::NotFound => "no matching line (or no file)".to_string(),
            crate::env::passfile::Lookup::Ignored(warning) => {
                checks.push(check(
                    Status::Warn,
                    "password file",
                    warning.clone(),
                    Some(format!("chmod 0600 \"{}\"", file.value.display())),
                ));
                "ignored".to_string()
            }
        };
        lines.push(line(
            "PGPASSFILE",
            &format!("{} ({state})", file.value.display()),
            file.source,
        ));
    }
    let (v, src) = opt(&settings.application_name);
    lines.push(line("PGAPPNAME", &v, src));
    let (v, src) = opt(&settings.options);
    lines.push(line("PGOPTIONS", &v, src));
    let (v, src) = opt(&settings.timezone);
    lines.push(line("PGTZ", &v, src));
    let (v, src) = opt(&settings.datestyle);
    lines.push(line("PGDATESTYLE", &v, src));
    let (v, src) = match &settings.connect_timeout {
        Some(s) => (
            s.value
                .map(|d| format!("{}s", d.as_secs()))
                .unwrap_or_else(|| "no limit".to_string()),
            s.source,
        ),
        None => (
            "(unset: Options::connect_timeout)".to_string(),
            Source::Default,
        ),
    };
    lines.push(line("PGCONNECT_TIMEOUT", &v, src));
    let s = &settings.channel_binding;
    lines.push(line("PGCHANNELBINDING", s.value.as_str(), s.source));
    let (v, src) = opt(&settings.require_auth);
    lines.push(line("PGREQUIREAUTH", &v, src));
    let s = &settings.ssl_negotiation;
    lines.push(line("PGSSLNEGOTIATION", s.value.as_str(), s.source));
    let s = &settings.ssl_min_protocol;
    match settings.raised_min_protocol() {
        Some(asked) => {
            lines.push(line(
                "PGSSLMINPROTOCOLVERSION",
                &format!("{asked} (raised to TLSv1.2)"),
                s.source,
            ));
            let mut found = format!(
                "PGSSLMINPROTOCOLVERSION={asked} is raised to TLSv1.2: pgdap never negotiates below TLS 1.2"
            );
            if let Some(max) = settings
                .ssl_max_protocol
                .value
                .filter(|max| *max < crate::env::TlsVersion::Tls1_2)
            {
                found.push_str(&format!(
                    "; with PGSSLMAXPROTOCOLVERSION={max} no version is left and every handshake fails"
                ));
            }
            checks.push(check(
                Status::Warn,
                "PGSSLMINPROTOCOLVERSION",
                found,
                Some("set PGSSLMINPROTOCOLVERSION=TLSv1.2 or unset it (a server that speaks only TLSv1 or TLSv1.1 must be upgraded)".into()),
            ));
        }
        None => lines.push(line("PGSSLMINPROTOCOLVERSION", &version(s.value), s.source)),
    }
    let s = &settings.ssl_max_protocol;
    lines.push(line("PGSSLMAXPROTOCOLVERSION", &version(s.value), s.source));
    let s = &settings.ssl_cert_mode;
    lines.push(line("PGSSLCERTMODE", s.value.as_str(), s.source));
    let s = &settings.ssl_sni;
    lines.push(line("PGSSLSNI", if s.value { "1" } else { "0" }, s.source));
    let s = &settings.gss_enc_mode;
    lines.push(line("PGGSSENCMODE", s.value.as_str(), s.source));
    let s = &settings.target_session_attrs;
    lines.push(line("PGTARGETSESSIONATTRS", s.value.as_str(), s.source));
    for var in crate::env::OVERRIDDEN_BY_ACCESS_POINT {
        if let Some(value) = env.get_raw(var) {
            checks.push(check(
                Status::Warn,
                var,
                format!("{var}={value:?} is set but ignored: the Access Point wins (SPEC §9)"),
                Some(format!("unset {var}, or change the Access Point")),
            ));
        }
    }
    if env.get_raw("PGPASSWORD").is_some() && !ap.password().is_empty() {
        checks.push(check(
            Status::Warn,
            "PGPASSWORD",
            "PGPASSWORD is set but ignored: the Access Point has a password (SPEC §9)".to_string(),
            Some("unset PGPASSWORD, or empty the Access Point's password".to_string()),
        ));
    }
    for var in crate::env::UNSUPPORTED {
        if let Some(value) = env.get_raw(var) {
            checks.push(check(
                Status::Warn,
                var,
                format!("{var}={value:?} is set but not supported by pgdap; it is ignored"),
                Some(format!("unset {var}; configure the setting through the Access Point and the PG* variables pgdap reads")),
            ));
        }
    }
    for (vendor, twin) in &settings.conflicts {
        checks.push(check(
            Status::Warn,
            *twin,
            format!(
                "{vendor}={:?} and {twin}={:?} disagree; {vendor} wins (SPEC §9)",
                env.get(vendor).unwrap_or_default(),
                env.get_raw(twin).unwrap_or_default()
            ),
            Some(format!("unset {twin} or make it equal to {vendor}")),
        ));
    }
    lines
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
        likely_cause: likely_cause(&text).map(str::to_string),
        error: Some(text),
    }
}

/// The vendor's troubleshooting table (SPEC §5), plus the other common causes.
pub fn likely_cause(message: &str) -> Option<&'static str> {
    const TABLE: [(&str, &str); 12] = [
        ("tlsv1 alert unknown ca", "the client certificate is not trusted by the server's CA (ssl_ca_file on the server)"),
        ("root certificate file", "verify-ca/verify-full with no root CA: provide PGROOTCA or change PGMODE"),
        ("connection requires a valid client certificate", "the server demands a client certificate (clientcert=1/verify-ca or cert auth in pg_hba.conf) and none was sent: set PGCERT/PGKEY"),
        ("certificate present, but not private key file", "the client key is missing: set PGKEY"),
        ("could not load pg_hba.conf", "server-side configuration error in pg_hba.conf"),
        ("certificate revoked", "a certificate is listed in a CRL (PGCRL on the client, ssl_crl_file on the server)"),
        ("certificate verify failed", "the server certificate does not chain to the root CA in PGROOTCA, or has expired"),
        ("does not match host name", "dbserver is not a name in the server certificate: use a name it lists or PGMODE=verify-ca"),
        ("server does not support SSL", "the server has ssl = off: enable it, or change PGMODE"),
        ("certificate authentication failed", "the certificate CN does not name the user (directly or through pg_ident.conf)"),
        ("password authentication failed", "wrong password in the Access Point"),
        ("Connection refused", "no server listens on dbserver:5432"),
    ];
    TABLE
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map(|(_, cause)| *cause)
}

fn name_text(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn days_left(not_after: &Asn1TimeRef) -> i64 {
    Asn1Time::days_from_now(0)
        .ok()
        .and_then(|now| now.diff(not_after).ok())
        .map(|d| i64::from(d.days))
        .unwrap_or(0)
}

/// Subject, issuer, SANs and expiry of a certificate.
pub fn summarize(cert: &X509Ref) -> CertificateSummary {
    let san = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| {
                    n.dnsname().map(|d| format!("DNS:{d}")).or_else(|| {
                        n.ipaddress().map(|ip| match ip.len() {
                            4 => format!(
                                "IP:{}",
                                std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])
                            ),
                            16 => <[u8; 16]>::try_from(ip)
                                .map(|b| format!("IP:{}", std::net::Ipv6Addr::from(b)))
                                .unwrap_or_default(),
                            _ => String::new(),
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    CertificateSummary {
        subject: name_text(cert.subject_name()),
        issuer: name_text(cert.issuer_name()),
        san,
        not_after: cert.not_after().to_string(),
        days_left: days_left(cert.not_after()),
    }
}

fn expiry_check(what: &str, cert: &CertificateSummary, warn_days: i64, checks: &mut Vec<Check>) {
    let item = format!("{what} expiry ({})", cert.subject);
    if cert.days_left < 0 {
        checks.push(check(
            Status::Fail,
            item,
            format!("expired on {}", cert.not_after),
            Some("renew the certificate".into()),
        ));
    } else if cert.days_left < warn_days {
        checks.push(check(
            Status::Warn,
            item,
            format!("expires in {} days ({})", cert.days_left, cert.not_after),
            Some(format!("renew it before {}", cert.not_after)),
        ));
    } else {
        checks.push(check(
            Status::Ok,
            item,
            format!("valid until {} ({} days)", cert.not_after, cert.days_left),
            None,
        ));
    }
}

fn certificate_file(
    role: &str,
    what: &'static str,
    var: &'static str,
    path: &Path,
    warn_days: i64,
    checks: &mut Vec<Check>,
) -> FileReport {
    let found = tls::exists(path);
    let mut report = FileReport {
        role: role.to_string(),
        var: var.to_string(),
        path: path.to_path_buf(),
        found,
        certificates: Vec::new(),
        problem: None,
    };
    if found {
        match tls::load_certificates(what, var, path) {
            Ok(certs) => {
                for cert in &certs {
                    let summary = summarize(cert);
                    expiry_check(role, &summary, warn_days, checks);
                    report.certificates.push(summary);
                }
            }
            Err(e) => {
                checks.push(check(
                    Status::Fail,
                    role,
                    e.to_string(),
                    Some(format!("replace the file named by {var}")),
                ));
                report.problem = Some(e.to_string());
            }
        }
    }
    report
}

fn file_reports(settings: &Settings, warn_days: i64, checks: &mut Vec<Check>) -> Vec<FileReport> {
    let mut out = Vec::new();
    out.push(certificate_file(
        "root CA",
        "root certificate",
        "PGROOTCA",
        &settings.root_ca.value,
        warn_days,
        checks,
    ));
    let root_found = out.last().is_some_and(|r| r.found);
    if !root_found {
        let status = if settings.mode.value.requires_root_ca() {
            Status::Fail
        } else {
            Status::Warn
        };
        checks.push(check(
            status,
            "root CA",
            format!("no file at \"{}\": the server certificate is not verified (a running service whose connector was verifying with a file there keeps verifying with it: a root CA in use that disappears is a broken file; a restart would not verify)", settings.root_ca.value.display()),
            Some("provide the CA that signed the server certificate (PGROOTCA) and use PGMODE=verify-full".into()),
        ));
    }
    out.push(certificate_file(
        "client certificate",
        "certificate",
        "PGCERT",
        &settings.cert.value,
        warn_days,
        checks,
    ));
    let cert_found = out.last().is_some_and(|r| r.found);

    let key = &settings.key.value;
    let mut key_report = FileReport {
        role: "client key".into(),
        var: "PGKEY".into(),
        path: key.clone(),
        found: tls::exists(key),
        certificates: Vec::new(),
        problem: None,
    };
    if cert_found {
        let result = if key_report.found {
            tls::check_key(key)
        } else {
            Err(Error::ClientKeyMissing { path: key.clone() })
        };
        match result {
            Ok(()) => checks.push(check(
                Status::Ok,
                "client key",
                format!("\"{}\" loads, permissions OK", key.display()),
                None,
            )),
            Err(e) => {
                checks.push(check(
                    Status::Fail,
                    "client key",
                    e.to_string(),
                    likely_cause(&e.to_string())
                        .map(str::to_string)
                        .or(Some("fix the key file named by PGKEY".into())),
                ));
                key_report.problem = Some(e.to_string());
            }
        }
    }
    out.push(key_report);

    let crl = &settings.crl.value;
    let mut crl_report = FileReport {
        role: "CRL".into(),
        var: "PGCRL".into(),
        path: crl.clone(),
        found: tls::exists(crl),
        certificates: Vec::new(),
        problem: None,
    };
    if crl_report.found {
        match tls::load_crls(crl) {
            Ok(crls) => {
                for c in &crls {
                    let issuer = name_text(c.issuer_name());
                    let next = c.next_update().map(|t| (t.to_string(), days_left(t)));
                    let revoked = c.get_revoked().map(|r| r.len()).unwrap_or(0);
                    match next {
                        Some((when, days)) if days < 0 => checks.push(check(
                            Status::Fail,
                            format!("CRL ({issuer})"),
                            format!("stale: next update was {when}"),
                            Some("fetch a current CRL from the CA".into()),
                        )),
                        Some((when, _)) => checks.push(check(
                            Status::Ok,
                            format!("CRL ({issuer})"),
                            format!("{revoked} revoked, next update {when}"),
                            None,
                        )),
                        None => checks.push(check(
                            Status::Ok,
                            format!("CRL ({issuer})"),
                            format!("{revoked} revoked"),
                            None,
                        )),
                    }
                }
                if !root_found {
                    checks.push(check(
                        Status::Warn,
                        "CRL",
                        "present but unused: CRLs are checked only when a root CA is in use"
                            .to_string(),
                        Some("provide PGROOTCA".into()),
                    ));
                }
            }
            Err(e) => {
                checks.push(check(
                    Status::Fail,
                    "CRL",
                    e.to_string(),
                    Some("replace the file named by PGCRL".into()),
                ));
                crl_report.problem = Some(e.to_string());
            }
        }
    }
    if root_found && !crl_report.found {
        checks.push(check(
            Status::Ok,
            "CRL",
            format!("no file at \"{}\": certificates are not checked for revocation (a running service whose connector was using a CRL there keeps it: a CRL in use that disappears is a broken file; a restart would not check)", crl.display()),
            None,
        ));
    }
    out.push(crl_report);
    out
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
    let scs: String = row.get(2);
    checks.push(if scs == "off" {
        check(Status::Ok, "standard_conforming_strings", scs, None)
    } else {
        check(
            Status::Warn,
            "standard_conforming_strings",
            scs,
            Some("the vendor's applications expect off: set standard_conforming_strings = off in postgresql.conf (or ALTER DATABASE ... SET) and reload".into()),
        )
    });
    let bytea: String = row.get(3);
    checks.push(if bytea == "escape" {
        check(Status::Ok, "bytea_output", bytea, None)
    } else {
        check(
            Status::Warn,
            "bytea_output",
            bytea,
            Some("the vendor's applications expect escape: set bytea_output = 'escape' in postgresql.conf (or ALTER DATABASE ... SET) and reload".into()),
        )
    });
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

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        let _ = writeln!(out, "Settings");
        for s in &self.settings {
            let _ = writeln!(out, "  {:<17} {:<50} ({})", s.name, s.value, s.source);
        }
        let _ = writeln!(out, "Files");
        for file in &self.files {
            let state = match (&file.problem, file.found) {
                (Some(p), _) => format!("PROBLEM: {p}"),
                (None, true) => "found".to_string(),
                (None, false) => "not found".to_string(),
            };
            let _ = writeln!(
                out,
                "  {:<19} {} ({}): {}",
                file.role,
                file.path.display(),
                file.var,
                state
            );
            for c in &file.certificates {
                let _ = writeln!(
                    out,
                    "      subject {} | issuer {} | expires {} ({} days){}",
                    c.subject,
                    c.issuer,
                    c.not_after,
                    c.days_left,
                    if c.san.is_empty() {
                        String::new()
                    } else {
                        format!(" | SAN {}", c.san.join(", "))
                    }
                );
            }
        }
        let c = &self.connection;
        let _ = writeln!(out, "Connection");
        if c.connected {
            let _ = writeln!(
                out,
                "  connected: {} | user {} | server {}",
                match (&c.tls_version, &c.cipher) {
                    (Some(v), Some(ci)) => format!("SSL {v} {ci}"),
                    _ => "plaintext".to_string(),
                },
                c.user.as_deref().unwrap_or("?"),
                c.server_version.as_deref().unwrap_or("?")
            );
            if let Some(cert) = &c.server_certificate {
                let _ = writeln!(out, "  server certificate: subject {} | issuer {} | SAN {} | expires {} ({} days) | {}",
                    cert.subject, cert.issuer, if cert.san.is_empty() { "-".to_string() } else { cert.san.join(", ") }, cert.not_after, cert.days_left,
                    if c.server_verified { "verified" } else { "NOT verified" });
            }
        } else {
            let _ = writeln!(out, "  FAILED: {}", c.error.as_deref().unwrap_or(""));
            if let Some(cause) = &c.likely_cause {
                let _ = writeln!(out, "  likely cause: {cause}");
            }
        }
        let _ = writeln!(out, "Checks");
        for ch in &self.checks {
            let status = match ch.status {
                Status::Ok => "OK  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            let _ = writeln!(out, "  [{status}] {}: {}", ch.item, ch.found);
            if let Some(fix) = &ch.fix {
                let _ = writeln!(out, "         fix: {fix}");
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_and_checks(pairs: &[(&str, &str)]) -> (Vec<SettingLine>, Vec<Check>) {
        let env = Environment::from_pairs(pairs.iter().copied())
            .with_default_dir("/nonexistent/.postgresql");
        let settings = Settings::resolve(&env, env.default_dir()).unwrap();
        let ap = AccessPoint::new("db1", "d", "u", crate::Password::new("p"));
        let mut checks = Vec::new();
        let lines = libpq_lines(&ap, &env, &settings, &mut checks);
        (lines, checks)
    }

    #[test]
    fn a_minimum_below_tls_1_2_is_reported_as_raised() {
        let (lines, checks) = lines_and_checks(&[("PGSSLMINPROTOCOLVERSION", "TLSv1")]);
        let min = lines
            .iter()
            .find(|l| l.name == "PGSSLMINPROTOCOLVERSION")
            .unwrap();
        assert_eq!(min.value, "TLSv1 (raised to TLSv1.2)");
        let c = checks
            .iter()
            .find(|c| c.item == "PGSSLMINPROTOCOLVERSION")
            .unwrap();
        assert_eq!(c.status, Status::Warn);
        assert!(c.found.contains("raised to TLSv1.2"), "{}", c.found);
        assert!(!c.found.contains("no version is left"), "{}", c.found);

        let (_, checks) = lines_and_checks(&[
            ("PGSSLMINPROTOCOLVERSION", "tlsv1.1"),
            ("PGSSLMAXPROTOCOLVERSION", "TLSv1.1"),
        ]);
        let c = checks
            .iter()
            .find(|c| c.item == "PGSSLMINPROTOCOLVERSION")
            .unwrap();
        assert!(
            c.found
                .starts_with("PGSSLMINPROTOCOLVERSION=TLSv1.1 is raised")
                && c.found.contains("every handshake fails"),
            "{}",
            c.found
        );

        for quiet in [
            &[][..],
            &[("PGSSLMINPROTOCOLVERSION", "TLSv1.2")][..],
            &[("PGSSLMINPROTOCOLVERSION", "")][..],
        ] {
            let (lines, checks) = lines_and_checks(quiet);
            assert!(
                checks.iter().all(|c| c.item != "PGSSLMINPROTOCOLVERSION"),
                "{quiet:?}"
            );
            assert!(
                lines.iter().all(|l| !l.value.contains("raised")),
                "{quiet:?}"
            );
        }
    }

    #[test]
    fn the_rotation_check_shows_a_vanished_root_ca() {
        let dir = tempfile::tempdir().unwrap();
        let key = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let root = dir.path().join("root.crt");
        std::fs::write(&root, b.build().to_pem().unwrap()).unwrap();
        let env = Environment::from_pairs([("PGMODE", "require")]).with_default_dir(dir.path());
        let config = Config::new(
            AccessPoint::new("db1", "d", "u", crate::Password::new("p")),
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
                && c.found.contains("PGROOTCA")
                && c.found.contains("now missing"),
            "{}",
            c.found
        );
        assert!(c.fix.unwrap().contains("put the file back"));
    }
}
