//! The report as text, for people (`pgdap doctor` without `--json`).

use std::fmt::Write as _;

use super::{Report, Status};

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
                "  connected: {} | user {} | server {}{}",
                match (&c.tls_version, &c.cipher) {
                    (Some(v), Some(ci)) => format!("SSL {v} {ci}"),
                    _ => "plaintext".to_string(),
                },
                c.user.as_deref().unwrap_or("?"),
                c.server_version.as_deref().unwrap_or("?"),
                c.host
                    .as_deref()
                    .map(|h| format!(" | host {h}"))
                    .unwrap_or_default()
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
        if !self.hosts.is_empty() {
            let _ = writeln!(out, "Hosts (each member of dbserver alone)");
            for h in &self.hosts {
                let _ = writeln!(
                    out,
                    "  {} [{}]: {}{}",
                    h.host,
                    h.addresses.join(", "),
                    h.outcome,
                    h.role
                        .as_deref()
                        .map(|r| format!(" | {r}"))
                        .unwrap_or_default()
                );
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
    use std::path::PathBuf;

    use super::super::{
        CertificateSummary, Check, ConnectionReport, FileReport, Report, SettingLine, Status,
    };
    use crate::env::variables::{PGCRL, PGKEY, PGMODE, PGROOTCA};

    fn certificate(san: &[&str]) -> CertificateSummary {
        CertificateSummary {
            subject: "CN=db1".into(),
            issuer: "CN=ca".into(),
            san: san.iter().map(|s| s.to_string()).collect(),
            not_after: "Jan  1 00:00:00 2030 GMT".into(),
            days_left: 42,
        }
    }

    fn report(connected: bool) -> Report {
        Report {
            settings: vec![SettingLine {
                name: PGMODE.name.into(),
                value: "verify-full".into(),
                source: "env".into(),
            }],
            files: vec![
                FileReport {
                    role: "root CA".into(),
                    var: PGROOTCA.name.into(),
                    path: PathBuf::from("/h/.postgresql/root.crt"),
                    found: true,
                    certificates: vec![certificate(&[]), certificate(&["DNS:db1", "IP:10.0.0.1"])],
                    problem: None,
                },
                FileReport {
                    role: "client key".into(),
                    var: PGKEY.name.into(),
                    path: PathBuf::from("/h/.postgresql/postgresql.key"),
                    found: true,
                    certificates: Vec::new(),
                    problem: Some("bad key".into()),
                },
                FileReport {
                    role: "CRL".into(),
                    var: PGCRL.name.into(),
                    path: PathBuf::from("/h/.postgresql/postgresql.crl"),
                    found: false,
                    certificates: Vec::new(),
                    problem: None,
                },
            ],
            connection: ConnectionReport {
                connected,
                ssl: connected,
                tls_version: connected.then(|| "TLSv1.3".into()),
                cipher: connected.then(|| "TLS_AES_256_GCM_SHA384".into()),
                server_verified: connected,
                server_certificate: connected.then(|| certificate(&[])),
                user: connected.then(|| "app".into()),
                server_version: None,
                host: connected.then(|| "db1".into()),
                error: (!connected).then(|| "connection refused".into()),
                likely_cause: (!connected).then(|| "no server".into()),
            },
            hosts: vec![
                super::super::HostReport {
                    host: "db1".into(),
                    addresses: vec!["10.0.0.1".into()],
                    outcome: "SSL TLSv1.3".into(),
                    connected: true,
                    role: Some("primary".into()),
                },
                super::super::HostReport {
                    host: "/run/pg".into(),
                    addresses: vec!["/run/pg/.s.PGSQL.5432".into()],
                    outcome: "connection refused".into(),
                    connected: false,
                    role: None,
                },
            ],
            checks: vec![
                Check {
                    status: Status::Ok,
                    item: "encryption".into(),
                    found: "SSL".into(),
                    fix: None,
                },
                Check {
                    status: Status::Warn,
                    item: "bytea_output".into(),
                    found: "hex".into(),
                    fix: Some("set it".into()),
                },
            ],
        }
    }

    fn text(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    const SETTINGS_AND_FILES: [&str; 8] = [
        "Settings",
        "  PGMODE            verify-full                                        (env)",
        "Files",
        "  root CA             /h/.postgresql/root.crt (PGROOTCA): found",
        "      subject CN=db1 | issuer CN=ca | expires Jan  1 00:00:00 2030 GMT (42 days)",
        "      subject CN=db1 | issuer CN=ca | expires Jan  1 00:00:00 2030 GMT (42 days) | SAN DNS:db1, IP:10.0.0.1",
        "  client key          /h/.postgresql/postgresql.key (PGKEY): PROBLEM: bad key",
        "  CRL                 /h/.postgresql/postgresql.crl (PGCRL): not found",
    ];

    const CHECKS: [&str; 4] = [
        "Checks",
        "  [OK  ] encryption: SSL",
        "  [WARN] bytea_output: hex",
        "         fix: set it",
    ];

    #[test]
    fn the_text_report() {
        let connected = [
            "Connection",
            "  connected: SSL TLSv1.3 TLS_AES_256_GCM_SHA384 | user app | server ? | host db1",
            "  server certificate: subject CN=db1 | issuer CN=ca | SAN - | expires Jan  1 00:00:00 2030 GMT (42 days) | verified",
            "Hosts (each member of dbserver alone)",
            "  db1 [10.0.0.1]: SSL TLSv1.3 | primary",
            "  /run/pg [/run/pg/.s.PGSQL.5432]: connection refused",
        ];
        let failed = [
            "Connection",
            "  FAILED: connection refused",
            "  likely cause: no server",
            "Hosts (each member of dbserver alone)",
            "  db1 [10.0.0.1]: SSL TLSv1.3 | primary",
            "  /run/pg [/run/pg/.s.PGSQL.5432]: connection refused",
        ];
        for (ok, connection) in [(true, &connected[..]), (false, &failed[..])] {
            assert_eq!(
                report(ok).to_string(),
                text(&[&SETTINGS_AND_FILES[..], connection, &CHECKS].concat())
            );
        }
    }
}
