//! verify-full host name matching on arbitrary names: never panics, an exact
//! (case-insensitive) DNS SAN always matches, and a refusal reports the first name.
//!
//! Input: lines; the first is the host, then `ip:<raw bytes>` for an IP SAN, `cn:<name>`
//! for the subject CN, anything else a DNS SAN (one that is not UTF-8 stays raw bytes,
//! `SanName::DnsNotText`, and must never match or let the CN match a host name).

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
            names.sans.push(match std::str::from_utf8(line) {
                Ok(text) => SanName::Dns(text.to_string()),
                Err(_) => SanName::DnsNotText(line.to_vec()),
            });
        }
    }
    let result = verify_host(&names, &host);
    let host_is_ip = pgdap::tls::hostname::host_address(&host).is_some();
    // libpq's textual SNI rule never panics and agrees on plain dotted quads.
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        assert!(!pgdap::tls::hostname::sends_sni(&host), "{host:?}");
        assert!(host_is_ip, "{host:?}");
    }
    // Only DNS SANs that are not text, no CN: nothing can match a host name.
    let only_not_text = !names.sans.is_empty()
        && names
            .sans
            .iter()
            .all(|s| matches!(s, SanName::DnsNotText(_)));
    if only_not_text && !host_is_ip {
        assert!(result.is_err(), "{host:?} vs {names:?}");
    }
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
