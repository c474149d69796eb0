//! The certificate files the settings name (root CA, client certificate and key, CRL):
//! found or not, loadable, and how long their certificates remain valid.

use std::path::Path;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::{X509NameRef, X509Ref};

use super::{check, CertificateSummary, Check, FileReport, Status};
use crate::env::variables::{PGCERT, PGCRL, PGKEY, PGROOTCA};
use crate::env::Settings;
use crate::error::Error;
use crate::tls;

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

pub(super) fn expiry_check(
    what: &str,
    cert: &CertificateSummary,
    warn_days: i64,
    checks: &mut Vec<Check>,
) {
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

pub(super) fn file_reports(
    settings: &Settings,
    warn_days: i64,
    checks: &mut Vec<Check>,
) -> Vec<FileReport> {
    let mut out = Vec::new();
    out.push(certificate_file(
        "root CA",
        "root certificate",
        PGROOTCA.name,
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
        PGCERT.name,
        &settings.cert.value,
        warn_days,
        checks,
    ));
    let cert_found = out.last().is_some_and(|r| r.found);

    let key = &settings.key.value;
    let mut key_report = FileReport {
        role: "client key".into(),
        var: PGKEY.name.into(),
        path: key.clone(),
        found: tls::exists(key),
        certificates: Vec::new(),
        problem: None,
    };
    if cert_found {
        let result = if key_report.found {
            tls::check_key(key, settings.key_passphrase.as_ref().map(|p| &p.value))
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
                    Some(
                        e.likely_cause()
                            .unwrap_or("fix the key file named by PGKEY".into())
                            .into_owned(),
                    ),
                ));
                key_report.problem = Some(e.to_string());
            }
        }
    }
    out.push(key_report);

    let crl = &settings.crl.value;
    let mut crl_report = FileReport {
        role: "CRL".into(),
        var: PGCRL.name.into(),
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
/// A self-signed certificate for `CN=<cn>, O=pgdap tests`, valid for `days` from now, with
/// these DNS and IP subject alternative names.
#[cfg(test)]
pub(super) fn test_certificate(
    cn: &str,
    days: u32,
    dns: &[&str],
    ips: &[&str],
) -> openssl::x509::X509 {
    use openssl::x509::extension::SubjectAlternativeName;
    let key = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    name.append_entry_by_text("O", "pgdap tests").unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(days).unwrap())
        .unwrap();
    if !dns.is_empty() || !ips.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for d in dns {
            san.dns(d);
        }
        for ip in ips {
            san.ip(ip);
        }
        let san = san.build(&b.x509v3_context(None, None)).unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::variables::PGMODE;
    use crate::env::Environment;

    fn summary(days_left: i64) -> CertificateSummary {
        CertificateSummary {
            subject: "CN=db1".into(),
            issuer: "CN=ca".into(),
            san: Vec::new(),
            not_after: "Jan  1 00:00:00 2030 GMT".into(),
            days_left,
        }
    }

    fn one_check(days_left: i64) -> Check {
        let mut checks = Vec::new();
        expiry_check("root CA", &summary(days_left), 30, &mut checks);
        assert_eq!(checks.len(), 1);
        checks.remove(0)
    }

    #[test]
    fn expiry_is_ok_then_a_warning_then_a_failure() {
        let c = one_check(31);
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.item, "root CA expiry (CN=db1)");
        assert_eq!(c.found, "valid until Jan  1 00:00:00 2030 GMT (31 days)");
        assert_eq!(c.fix, None);
        let c = one_check(29);
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.found, "expires in 29 days (Jan  1 00:00:00 2030 GMT)");
        assert_eq!(c.fix.unwrap(), "renew it before Jan  1 00:00:00 2030 GMT");
        assert_eq!(one_check(0).status, Status::Warn);
        let c = one_check(-1);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.found, "expired on Jan  1 00:00:00 2030 GMT");
        assert_eq!(c.fix.unwrap(), "renew the certificate");
    }

    #[test]
    fn a_summary_names_subject_issuer_and_every_san() {
        let cert = test_certificate(
            "db1.example",
            90,
            &["db1.example", "*.example"],
            &["10.0.0.1", "::1"],
        );
        let s = summarize(&cert);
        assert_eq!(s.subject, "CN=db1.example, O=pgdap tests");
        assert_eq!(s.issuer, s.subject);
        assert_eq!(
            s.san,
            ["DNS:db1.example", "DNS:*.example", "IP:10.0.0.1", "IP:::1"]
        );
        assert!((89..=90).contains(&s.days_left), "{}", s.days_left);
        assert!(s.not_after.ends_with("GMT"), "{}", s.not_after);
        assert!(summarize(&test_certificate("x", 1, &[], &[]))
            .san
            .is_empty());
    }

    fn reports(dir: &Path, mode: &str) -> (Vec<FileReport>, Vec<Check>) {
        let env = Environment::from_pairs([(PGMODE.name, mode)]).with_default_dir(dir);
        let settings = Settings::resolve(&env, env.default_dir()).unwrap();
        let mut checks = Vec::new();
        (file_reports(&settings, 30, &mut checks), checks)
    }

    #[test]
    fn no_files() {
        let dir = tempfile::tempdir().unwrap();
        let (files, checks) = reports(dir.path(), "prefer");
        let roles: Vec<(&str, &str, bool)> = files
            .iter()
            .map(|f| (f.role.as_str(), f.var.as_str(), f.found))
            .collect();
        assert_eq!(
            roles,
            [
                ("root CA", PGROOTCA.name, false),
                ("client certificate", PGCERT.name, false),
                ("client key", PGKEY.name, false),
                ("CRL", PGCRL.name, false),
            ]
        );
        assert_eq!(files[0].path, dir.path().join("root.crt"));
        // Only the missing root CA is reported: a warning under prefer, a failure under
        // verify-full.
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert_eq!(
            (checks[0].status, checks[0].item.as_str()),
            (Status::Warn, "root CA")
        );
        assert!(checks[0].found.starts_with(&format!(
            "no file at \"{}\": the server certificate is not verified",
            dir.path().join("root.crt").display()
        )));
        let (_, checks) = reports(dir.path(), "verify-full");
        assert_eq!(checks[0].status, Status::Fail);
    }

    #[test]
    fn a_root_ca_without_a_crl_and_a_certificate_without_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let pem = test_certificate("ca", 365, &[], &[]).to_pem().unwrap();
        std::fs::write(dir.path().join("root.crt"), &pem).unwrap();
        std::fs::write(dir.path().join("postgresql.crt"), &pem).unwrap();
        let (files, checks) = reports(dir.path(), "verify-full");
        assert!(files[0].found && files[1].found && !files[2].found && !files[3].found);
        assert_eq!(files[0].certificates.len(), 1);
        let items: Vec<(Status, &str)> =
            checks.iter().map(|c| (c.status, c.item.as_str())).collect();
        assert_eq!(
            items,
            [
                (Status::Ok, "root CA expiry (CN=ca, O=pgdap tests)"),
                (
                    Status::Ok,
                    "client certificate expiry (CN=ca, O=pgdap tests)"
                ),
                (Status::Fail, "client key"),
                (Status::Ok, "CRL"),
            ]
        );
        assert_eq!(
            checks[2].fix.as_deref(),
            Some("the client key is missing: set PGKEY")
        );
        assert_eq!(files[2].problem.as_deref(), Some(checks[2].found.as_str()));
        assert!(checks[3]
            .found
            .contains("certificates are not checked for revocation"));
    }

    #[test]
    fn an_unreadable_certificate_file_is_a_failure_naming_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.crt"), "not a certificate").unwrap();
        let (files, checks) = reports(dir.path(), "require");
        assert!(files[0].found && files[0].problem.is_some());
        assert_eq!(
            (checks[0].status, checks[0].item.as_str()),
            (Status::Fail, "root CA")
        );
        assert_eq!(
            checks[0].fix.as_deref(),
            Some("replace the file named by PGROOTCA")
        );
    }
}
