//! verify-full host name matching, with libpq's rules
//! (`pgtls_verify_peer_name_matches_certificate_guts` in `fe-secure-openssl.c` and
//! `pq_verify_peer_name_matches_certificate_name` in `fe-secure-common.c`):
//!
//! - every DNS SAN is compared with the host, case-insensitively, `*.` wildcards matching
//!   exactly one leftmost label;
//! - every IP SAN is compared with the host when the host is an IP literal;
//! - the subject CN is compared only when the certificate has no SAN of the host's own
//!   kind (a DNS SAN for a host name, an IP SAN for an IP address).
//!
//! - a DNS SAN that is not text (not UTF-8) still counts as a DNS SAN: it disables the CN
//!   fallback and never matches (libpq compares its bytes, which can never equal a host
//!   name given as text);
//! - a host is an IP address for matching when glibc's `inet_aton` accepts it (so
//!   `2130706433` and `0177.0.0.1` are 127.0.0.1) or `inet_pton(AF_INET6)` does, as in
//!   libpq's `is_ip_address`; SNI uses libpq's other, textual rule ([`sends_sni`]).
//!
//! OpenSSL's own `X509_check_host` differs (it never falls back to the CN for IP hosts),
//! which is why this is written here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The names of a server certificate that matter for host matching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateNames {
    /// Subject alternative names, in certificate order.
    pub sans: Vec<SanName>,
    /// The subject common name, if any.
    pub common_name: Option<String>,
}

/// One subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SanName {
    /// A dNSName.
    Dns(String),
    /// An iPAddress (4 or 16 bytes).
    Ip(Vec<u8>),
    /// A dNSName whose bytes are not UTF-8: it counts as a DNS name (no CN fallback for a
    /// host name) and never matches.
    DnsNotText(Vec<u8>),
}

/// Why a certificate does not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// No name matched; `first` is the first name examined, `others` how many more were.
    Names {
        /// First name examined.
        first: String,
        /// Number of other names examined.
        others: usize,
    },
    /// The certificate has no name to compare.
    NoNames,
}

/// Checks `host` against the certificate names as libpq does.
pub fn verify_host(names: &CertificateNames, host: &str) -> Result<(), Mismatch> {
    let host_is_ip = host_address(host).is_some();
    let host_v4 = inet_aton(host);
    let host_v6: Option<Ipv6Addr> = host.parse().ok();
    let mut examined = 0usize;
    let mut first: Option<String> = None;
    let mut check_cn = true;
    for san in &names.sans {
        let (matched, shown) = match san {
            SanName::Dns(name) => {
                if !host_is_ip {
                    check_cn = false;
                }
                (name_matches(name, host), name.clone())
            }
            SanName::DnsNotText(bytes) => {
                if !host_is_ip {
                    check_cn = false;
                }
                (false, String::from_utf8_lossy(bytes).into_owned())
            }
            SanName::Ip(bytes) => {
                if host_is_ip {
                    check_cn = false;
                }
                let ip = ip_from_bytes(bytes);
                let matched = match ip {
                    Some(IpAddr::V4(v4)) => host_v4 == Some(v4),
                    Some(IpAddr::V6(v6)) => host_v6 == Some(v6),
                    None => false,
                };
                (matched, ip.map(|ip| ip.to_string()).unwrap_or_default())
            }
        };
        examined += 1;
        first.get_or_insert(shown);
        if matched {
            return Ok(());
        }
    }
    if check_cn {
        if let Some(cn) = &names.common_name {
            examined += 1;
            first.get_or_insert(cn.clone());
            if name_matches(cn, host) {
                return Ok(());
            }
        }
    }
    match first {
        Some(first) => Err(Mismatch::Names {
            first,
            others: examined - 1,
        }),
        None => Err(Mismatch::NoNames),
    }
}

/// The address `host` names when libpq takes it for an IP address in host matching
/// (`is_ip_address` in `fe-secure-openssl.c`): glibc's `inet_aton`, then
/// `inet_pton(AF_INET6)`.
pub fn host_address(host: &str) -> Option<IpAddr> {
    inet_aton(host)
        .map(IpAddr::V4)
        .or_else(|| host.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
}

/// Whether a TLS connection to `host` carries SNI: libpq's rule (`initialize_SSL`,
/// sslsni=1) sends it unless the host is empty, consists only of digits and dots, or
/// contains a colon. (This is not [`host_address`]: `0x7f.1` gets SNI, `1.2.3.4.5` does
/// not, exactly as with libpq.)
pub fn sends_sni(host: &str) -> bool {
    !(host.bytes().all(|b| b.is_ascii_digit() || b == b'.') || host.contains(':'))
}

/// glibc's `inet_aton`: one to four parts separated by dots, each a C integer literal
/// (`0x` hex, leading `0` octal, else decimal), the last part filling the remaining
/// bytes; anything after the number must start with ASCII white space. Hand-written
/// because no crate reproduces these legacy forms (`std`'s parser accepts only the
/// dotted quad).
fn inet_aton(host: &str) -> Option<Ipv4Addr> {
    let bytes = host.as_bytes();
    let mut parts: Vec<u32> = Vec::with_capacity(4);
    let mut at = 0usize;
    let last = loop {
        if !bytes.get(at).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let (value, next) = strtoul(bytes, at)?;
        at = next;
        if bytes.get(at) == Some(&b'.') {
            if parts.len() > 2 || value > 0xff {
                return None;
            }
            parts.push(value);
            at += 1;
        } else {
            break value;
        }
    };
    if let Some(&c) = bytes.get(at) {
        if c != 0 && !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            return None;
        }
    }
    let max: u32 = [u32::MAX, 0x00ff_ffff, 0xffff, 0xff][parts.len()];
    if last > max {
        return None;
    }
    let high = parts
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, p)| acc | (p << (24 - 8 * i)));
    Some(Ipv4Addr::from(high | last))
}

/// `strtoul(s, &end, 0)` on a string starting with a digit; `None` above `u32::MAX`.
fn strtoul(bytes: &[u8], start: usize) -> Option<(u32, usize)> {
    let hex = bytes.get(start) == Some(&b'0')
        && matches!(bytes.get(start + 1), Some(b'x' | b'X'))
        && bytes.get(start + 2).is_some_and(u8::is_ascii_hexdigit);
    let (radix, mut at) = if hex {
        (16, start + 2)
    } else if bytes.get(start) == Some(&b'0') {
        (8, start)
    } else {
        (10, start)
    };
    let mut value: u64 = 0;
    while let Some(d) = bytes.get(at).and_then(|b| (*b as char).to_digit(radix)) {
        value = value * u64::from(radix) + u64::from(d);
        if value > u64::from(u32::MAX) {
            return None;
        }
        at += 1;
    }
    Some((value as u32, at))
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Exact (case-insensitive) or `*.suffix` wildcard match of one leftmost label.
fn name_matches(name: &str, host: &str) -> bool {
    if name.contains('\0') {
        return false;
    }
    if name.eq_ignore_ascii_case(host) {
        return true;
    }
    let Some(suffix) = name.strip_prefix('*') else {
        return false;
    };
    if !suffix.starts_with('.') || suffix.len() < 2 || name.len() > host.len() {
        return false;
    }
    let start = host.len() - suffix.len();
    if !host.is_char_boundary(start) || !host[start..].eq_ignore_ascii_case(suffix) {
        return false;
    }
    // The wildcard covers exactly the first label: no dot before the suffix.
    !host[..start].contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_examples() {
        let names = CertificateNames {
            sans: vec![SanName::Ip(vec![127, 0, 0, 1])],
            common_name: None,
        };
        assert!(verify_host(&names, "127.0.0.1").is_ok());
        assert!(verify_host(&names, "2130706433").is_ok()); // inet_aton's 127.0.0.1, as libpq
        assert_eq!(
            host_address("0177.0.0.1"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(host_address("db.example.com"), None);
        assert!(sends_sni("db.example.com"));
        assert!(!sends_sni("2130706433"));
        assert!(!sends_sni("::1"));
    }

    fn dns(n: &str) -> SanName {
        SanName::Dns(n.to_string())
    }
    fn ip(a: [u8; 4]) -> SanName {
        SanName::Ip(a.to_vec())
    }
    fn names(sans: Vec<SanName>, cn: Option<&str>) -> CertificateNames {
        CertificateNames {
            sans,
            common_name: cn.map(str::to_string),
        }
    }

    #[test]
    fn dns_san_exact_and_case_insensitive() {
        let n = names(vec![dns("db.example.com")], Some("ignored"));
        assert!(verify_host(&n, "db.example.com").is_ok());
        assert!(verify_host(&n, "DB.Example.COM").is_ok());
        assert_eq!(
            verify_host(&n, "other.example.com"),
            Err(Mismatch::Names {
                first: "db.example.com".into(),
                others: 0
            })
        );
    }

    #[test]
    fn cn_ignored_when_dns_san_present_for_host_name() {
        let n = names(vec![dns("a.example.com")], Some("b.example.com"));
        assert!(verify_host(&n, "b.example.com").is_err());
    }

    #[test]
    fn wildcards_cover_one_label() {
        let n = names(vec![dns("*.example.com")], None);
        assert!(verify_host(&n, "db.example.com").is_ok());
        assert!(verify_host(&n, "a.b.example.com").is_err());
        assert!(verify_host(&n, "example.com").is_err());
        assert!(verify_host(&n, ".example.com").is_err());
        let n = names(vec![dns("db*.example.com")], None);
        assert!(verify_host(&n, "db1.example.com").is_err());
    }

    #[test]
    fn ip_san_matches_ip_host() {
        let n = names(vec![dns("db.example.com"), ip([127, 0, 0, 5])], None);
        assert!(verify_host(&n, "127.0.0.5").is_ok());
        assert_eq!(
            verify_host(&n, "127.0.0.6"),
            Err(Mismatch::Names {
                first: "db.example.com".into(),
                others: 1
            })
        );
    }

    #[test]
    fn cn_only_certificate_matches_ip_host() {
        let n = names(vec![], Some("127.0.0.6"));
        assert!(verify_host(&n, "127.0.0.6").is_ok());
        assert!(verify_host(&n, "127.0.0.7").is_err());
    }

    #[test]
    fn ip_host_falls_back_to_cn_when_only_dns_sans() {
        let n = names(vec![dns("db.example.com")], Some("127.0.0.6"));
        assert!(verify_host(&n, "127.0.0.6").is_ok());
        // ...but not when there is an IP SAN.
        let n = names(vec![ip([10, 0, 0, 1])], Some("127.0.0.6"));
        assert!(verify_host(&n, "127.0.0.6").is_err());
    }

    #[test]
    fn host_name_falls_back_to_cn_when_only_ip_sans() {
        let n = names(vec![ip([10, 0, 0, 1])], Some("db.example.com"));
        assert!(verify_host(&n, "db.example.com").is_ok());
    }

    #[test]
    fn others_are_counted_like_libpq() {
        let n = names(vec![dns("a"), dns("b"), ip([1, 2, 3, 4])], Some("c"));
        assert_eq!(
            verify_host(&n, "z"),
            Err(Mismatch::Names {
                first: "a".into(),
                others: 2
            })
        );
        assert_eq!(
            verify_host(&names(vec![], None), "z"),
            Err(Mismatch::NoNames)
        );
    }

    #[test]
    fn host_address_is_glibc_inet_aton_then_inet_pton6() {
        let v4 = |s: &str| Some(IpAddr::V4(s.parse().unwrap()));
        for (host, want) in [
            ("127.0.0.1", v4("127.0.0.1")),
            ("2130706433", v4("127.0.0.1")),
            ("0177.0.0.1", v4("127.0.0.1")),
            ("0x7f.1", v4("127.0.0.1")),
            ("0X7F.0.1", v4("127.0.0.1")),
            ("127.1", v4("127.0.0.1")),
            ("127.0.9.2", v4("127.0.9.2")),
            ("2130708738", v4("127.0.9.2")),
            ("0177.0.9.2", v4("127.0.9.2")),
            ("4294967295", v4("255.255.255.255")),
            ("1.2.3.4 trailing", v4("1.2.3.4")),
            ("00", v4("0.0.0.0")),
            ("4294967296", None),
            ("256.1.1.1", None),
            ("1.2.3.4.5", None),
            ("1.2.3.256", None),
            ("1.2.65536", None),
            ("08", None),
            ("0x", None),
            ("0xg", None),
            ("1.", None),
            (".1", None),
            ("", None),
            (" 1", None),
            ("+1", None),
            ("1.2.3.4x", None),
            ("db.example.com", None),
            ("::1", Some(IpAddr::V6(Ipv6Addr::LOCALHOST))),
            ("fe80::1%eth0", None),
        ] {
            assert_eq!(host_address(host), want, "{host:?}");
        }
    }

    #[test]
    fn sni_follows_libpqs_textual_rule() {
        for host in ["db.example.com", "localhost", "0x7f.1", "1a", "x.1"] {
            assert!(sends_sni(host), "{host}");
        }
        for host in [
            "127.0.0.1",
            "2130708738",
            "0177.0.9.2",
            "1.2.3.4.5",
            "999.999",
            "",
            "::1",
            "fe80::1%eth0",
            "[::1]",
        ] {
            assert!(!sends_sni(host), "{host}");
        }
    }

    #[test]
    fn legacy_ipv4_forms_match_ip_sans_and_not_dns_rules() {
        let n = names(vec![ip([127, 0, 0, 75])], None);
        assert!(verify_host(&n, "2130706507").is_ok());
        assert!(verify_host(&n, "0177.0.0.75").is_ok());
        // An IP host (by inet_aton) falls back to the CN despite DNS SANs.
        let n = names(vec![dns("db.example.com")], Some("2130706507"));
        assert!(verify_host(&n, "2130706507").is_ok());
    }

    #[test]
    fn a_dns_san_that_is_not_text_disables_the_cn_and_never_matches() {
        let n = names(
            vec![SanName::DnsNotText(b"x\xff.other.test".to_vec())],
            Some("db.example.com"),
        );
        assert_eq!(
            verify_host(&n, "db.example.com"),
            Err(Mismatch::Names {
                first: "x\u{fffd}.other.test".into(),
                others: 0
            })
        );
        // For an IP host it is a DNS name of the other kind: the CN still counts.
        let n = names(
            vec![SanName::DnsNotText(b"x\xff".to_vec())],
            Some("127.0.0.1"),
        );
        assert!(verify_host(&n, "127.0.0.1").is_ok());
    }

    #[test]
    fn ipv6() {
        let n = names(
            vec![SanName::Ip(std::net::Ipv6Addr::LOCALHOST.octets().to_vec())],
            None,
        );
        assert!(verify_host(&n, "::1").is_ok());
    }
}
