//! verify-full host name matching on arbitrary names: never panics, an exact
//! (case-insensitive) DNS SAN always matches, and a refusal reports the first name.
//!
//! Input: lines; the first is the host, then `ip:<raw bytes>` for an IP SAN, `cn:<name>`
//! for the subject CN, anything else a DNS SAN (bytes that are not UTF-8 are replaced).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pgdap::tls::hostname::{verify_host, CertificateNames, Mismatch, SanName};

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|b| *b == b'\n');
    let host = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut names = CertificateNames::default();
    for line in lines {
        if let Some(ip) = line.strip_prefix(b"ip:") {
            names.sans.push(SanName::Ip(ip.to_vec()));
        } else if let Some(cn) = line.strip_prefix(b"cn:") {
            names.common_name = Some(String::from_utf8_lossy(cn).into_owned());
        } else {
            names
                .sans
                .push(SanName::Dns(String::from_utf8_lossy(line).into_owned()));
        }
    }
    let result = verify_host(&names, &host);
    let host_is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let exact = names.sans.iter().any(|san| {
        matches!(san, SanName::Dns(name) if !name.contains('\0') && name.eq_ignore_ascii_case(&host))
    });
    if exact && !host_is_ip {
        assert_eq!(result, Ok(()), "{host:?} vs {names:?}");
    }
    match result {
        Ok(()) => assert!(!names.sans.is_empty() || names.common_name.is_some()),
        Err(Mismatch::NoNames) => {
            assert!(
                names.sans.is_empty() && names.common_name.is_none(),
                "{names:?}"
            )
        }
        Err(Mismatch::Names { others, .. }) => {
            let total = names.sans.len() + usize::from(names.common_name.is_some());
            assert!(others < total, "{others} others of {total} names");
        }
    }
});
