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
//! OpenSSL's own `X509_check_host` differs (it never falls back to the CN for IP hosts),
//! which is why this is written here.

use std::net::IpAddr;

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
    let host_ip: Option<IpAddr> = host.parse().ok();
    let mut examined = 0usize;
    let mut first: Option<String> = None;
    let mut check_cn = true;
    for san in &names.sans {
        let (matched, shown) = match san {
            SanName::Dns(name) => {
                if host_ip.is_none() {
                    check_cn = false;
                }
                (name_matches(name, host), name.clone())
            }
            SanName::Ip(bytes) => {
                if host_ip.is_some() {
                    check_cn = false;
                }
                let ip = ip_from_bytes(bytes);
                (
                    ip.is_some() && ip == host_ip,
                    ip.map(|ip| ip.to_string()).unwrap_or_default(),
                )
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
    fn ipv6() {
        let n = names(
            vec![SanName::Ip(std::net::Ipv6Addr::LOCALHOST.octets().to_vec())],
            None,
        );
        assert!(verify_host(&n, "::1").is_ok());
    }
}
