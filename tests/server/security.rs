//! Security review findings (issue 14), each against real servers with psql 15 (libpq)
//! as the oracle:
//! - channel binding through a TLS-terminating man in the middle (tests/common/mitm.rs)
//!   whose certificates are EC P-256, Ed25519 and RSA-PSS: never an unbound SCRAM login
//!   over TLS, and every outcome equal to psql's;
//! - channel binding straight to servers with RSA-PSS and Ed25519 certificates;
//! - SNI and IP-literal rules for `2130706503`-style hosts;
//! - a DNS SAN that is not UTF-8 (verify-full refuses, as psql);
//! - certificate rotation fixed by chmod alone (client key, CRL).
//!
//! - hostile servers during negotiation (tests/common/hostile.rs): an `E` reply to the
//!   SSLRequest, a cleartext request against PGREQUIREAUTH, an oversized authentication
//!   request, each against pgdap's async and blocking paths (and a bare `MakeTls`) and
//!   libpq 18 on the same fake: the outcome, libpq's message, and every byte sent after
//!   the misbehaviour.
//!
//! Addresses: 127.0.0.210 hostile fake answering `N`, .211 hostile fake with TLS;
//! 127.0.0.70 upstream server, .71 MITM EC, .72 MITM Ed25519, .73 MITM RSA-PSS,
//! .74 server RSA-PSS, .75 server Ed25519, .76 server with a revoked certificate, .77
//! server with a non-UTF-8 DNS SAN, .78 MITM Ed25519 stripping SCRAM-SHA-256-PLUS, .79 MITM
//! EC stripping it.

#[cfg(feature = "postgres")]
#[path = "../common/hostile.rs"]
mod hostile;
#[path = "../common/mitm.rs"]
mod mitm;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{
    self, access_point, pgdap_outcome, pki, psql_outcome, ClientHome, Outcome, Server, ServerSpec,
    PG_BIN,
};
use mitm::Mitm;
use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Extension, X509NameBuilder, X509};

// ---------------------------------------------------------------------------------------
// Certificates of the attacker and of the odd servers, made at run time
// ---------------------------------------------------------------------------------------

fn self_signed(cn: &str, key: &PKey<Private>, md: MessageDigest) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(key, md).unwrap();
    b.build()
}

fn ec_p256() -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    (self_signed("mitm-ec", &key, MessageDigest::sha256()), key)
}

fn ed25519(cn: &str) -> (X509, PKey<Private>) {
    let key = PKey::generate_ed25519().unwrap();
    (self_signed(cn, &key, MessageDigest::null()), key)
}

/// An RSA-PSS key and self-signed certificate with SHA-384 in the PSS parameters, by the
/// openssl CLI (the Rust bindings cannot sign with PSS padding).
fn rsa_pss(dir: &Path, name: &str) -> (X509, PKey<Private>) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa-pss",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-sha384",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::set_mode(&key, 0o600);
    let cert = X509::from_pem(&std::fs::read(&crt).unwrap()).unwrap();
    let pkey = PKey::private_key_from_pem(&std::fs::read(&key).unwrap()).unwrap();
    assert_eq!(cert.signature_algorithm().object().nid(), Nid::RSASSAPSS);
    (cert, pkey)
}

/// Writes a certificate and key into the PKI directory as `<name>.crt/.key` (for
/// `ServerSpec`).
fn write_pki(name: &str, cert: &X509, key: &PKey<Private>) {
    std::fs::write(pki().path(&format!("{name}.crt")), cert.to_pem().unwrap()).unwrap();
    common::write_key(
        &pki().path(&format!("{name}.key")),
        &key.private_key_to_pem_pkcs8().unwrap(),
    );
}

// ---------------------------------------------------------------------------------------
// Servers and proxies (one per test process each)
// ---------------------------------------------------------------------------------------

fn upstream() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(ServerSpec::new("127.0.0.70", Some("server"))))
}

fn proxy(which: &'static str) -> &'static Mitm {
    static EC: OnceLock<Mitm> = OnceLock::new();
    static ED: OnceLock<Mitm> = OnceLock::new();
    static PSS: OnceLock<Mitm> = OnceLock::new();
    static ED_STRIP: OnceLock<Mitm> = OnceLock::new();
    static EC_STRIP: OnceLock<Mitm> = OnceLock::new();
    let up = &upstream().addr;
    let start =
        |addr, (cert, key): (X509, PKey<Private>), strip| Mitm::start(addr, up, &cert, &key, strip);
    match which {
        "ec" => EC.get_or_init(|| start("127.0.0.71", ec_p256(), false)),
        "ed25519" => ED.get_or_init(|| start("127.0.0.72", ed25519("mitm-ed25519"), false)),
        "rsa-pss" => {
            PSS.get_or_init(|| start("127.0.0.73", rsa_pss(&pki().dir, "mitm-pss"), false))
        }
        "ed25519-strip" => {
            ED_STRIP.get_or_init(|| start("127.0.0.78", ed25519("mitm-ed25519-strip"), true))
        }
        "ec-strip" => EC_STRIP.get_or_init(|| start("127.0.0.79", ec_p256(), true)),
        other => panic!("no proxy {other}"),
    }
}

/// Tests that read a proxy's log take this first (the log is per proxy, tests run in
/// parallel).
static PROXIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The whole cause chain of an error, one string (pgdap's errors wrap tokio-postgres').
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// pgdap's outcome with the full cause chain of a failure.
async fn pgdap_case(ap: &pgdap::AccessPoint, env: &pgdap::Environment) -> Outcome {
    match pgdap_outcome(ap, env).await {
        Outcome::Fail(_) => {
            let connector =
                pgdap::Connector::new(pgdap::Config::new(ap.clone(), env).unwrap()).unwrap();
            match connector.connect().await {
                Err(e) => Outcome::Fail(chain(&e)),
                Ok(_) => panic!("a second attempt succeeded where the first failed"),
            }
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// Channel binding through a man in the middle
// ---------------------------------------------------------------------------------------

/// No root CA (the MITM's certificate is not checked: `require` encrypts without
/// authenticating the server), SCRAM user; `appdb` accepts plaintext, `sslonly` does not.
#[tokio::test]
async fn mitm_never_gets_an_unbound_scram_login_and_outcomes_equal_psql() {
    let _proxies = PROXIES.lock().await;
    let mut report = Vec::new();
    for which in ["ec", "ed25519", "rsa-pss", "ed25519-strip", "ec-strip"] {
        let mitm = proxy(which);
        for mode in ["require", "prefer"] {
            for db in ["appdb", "sslonly"] {
                let home = ClientHome::new().var("PGMODE", mode);
                let ap = access_point(mitm.addr, db, "scram_user", "scram-pw");
                mitm.take();
                let ours = pgdap_case(&ap, &home.env()).await;
                let ours_seen = mitm.take();
                let theirs = psql_outcome(&ap, &home.env(), home.home());
                let theirs_seen = mitm.take();
                let case = format!("{which} {mode} {db}");
                report.push(format!(
                    "{case}: pgdap {} | psql {}\n  pgdap saw {ours_seen:?}\n  psql saw {theirs_seen:?}",
                    ours.class(),
                    theirs.class()
                ));
                assert_eq!(
                    ours.class(),
                    theirs.class(),
                    "{case}: pgdap {ours:?}, psql {theirs:?}"
                );
                // The property: no login ever goes through a TLS session with the MITM,
                // and SCRAM over TLS is never unbound.
                assert!(
                    !ours_seen.is_empty(),
                    "{case}: pgdap never reached the proxy"
                );
                for seen in &ours_seen {
                    assert!(!(seen.tls && seen.authenticated), "{case}: {seen:?}");
                    assert!(!seen.unbound_scram_over_tls(), "{case}: {seen:?}");
                    if seen.tls && seen.gs2.is_some() {
                        assert_eq!(
                            seen.gs2.as_deref(),
                            theirs_seen
                                .iter()
                                .find(|s| s.tls)
                                .and_then(|s| s.gs2.as_deref()),
                            "{case}: pgdap's gs2 header differs from libpq's"
                        );
                    }
                }
                // What each attacker certificate leads to, as libpq does it.
                let tls_leg = ours_seen.iter().find(|s| s.tls).unwrap();
                match which {
                    "ed25519" => {
                        assert!(tls_leg.offered.iter().any(|m| m == "SCRAM-SHA-256-PLUS"));
                        assert_eq!(tls_leg.mechanism, None, "{case}: nothing of SCRAM sent");
                        assert!(
                            ours.error().contains("could not find digest for NID UNDEF")
                                && ours.error().contains("ED25519"),
                            "{case}: {ours:?}"
                        );
                        assert!(
                            theirs
                                .error()
                                .contains("could not find digest for NID UNDEF"),
                            "{case}: {theirs:?}"
                        );
                    }
                    "ec" | "rsa-pss" => {
                        assert_eq!(tls_leg.gs2.as_deref(), Some("p=tls-server-end-point"));
                    }
                    _ => {
                        // PLUS stripped from the offer: the client says it supports
                        // binding ("y"), which the server refuses as a downgrade.
                        assert_eq!(tls_leg.gs2.as_deref(), Some("y"), "{case}");
                    }
                }
                if mode == "prefer" && db == "appdb" && which != "ed25519" {
                    // libpq retries in plaintext after the server's refusal while
                    // encrypted; prefer gives up server authentication and encryption.
                    assert_eq!(ours, Outcome::Plain, "{case}");
                }
            }
        }
    }
    eprintln!("{}", report.join("\n"));
}

/// The attack works when binding is switched off (psql with channel_binding=disable
/// sends `n,,` and gets a session through the Ed25519 MITM): the proxy's detector is
/// real, and the test above could fail.
#[test]
fn baseline_the_mitm_gets_a_login_when_binding_is_off() {
    let _proxies = PROXIES.blocking_lock();
    let mitm = proxy("ed25519");
    mitm.take();
    let out = Command::new(format!("{PG_BIN}/psql"))
        .env_clear()
        .env("PGSSLMODE", "require")
        .env("PGCHANNELBINDING", "disable")
        .env("PGPASSWORD", "scram-pw")
        .env("HOME", "/nonexistent")
        .args([
            "-X",
            "-A",
            "-t",
            "-w",
            "-h",
            mitm.addr,
            "-U",
            "scram_user",
            "-d",
            "appdb",
        ])
        .args(["-c", "select 1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = mitm.take();
    assert!(
        seen.iter()
            .any(|s| s.unbound_scram_over_tls() && s.authenticated),
        "{seen:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Channel binding straight to servers with RSA-PSS and Ed25519 certificates
// ---------------------------------------------------------------------------------------

fn pss_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let (cert, key) = rsa_pss(&pki().dir, "sec-server-pss");
        write_pki("sec-server-pss", &cert, &key);
        Server::start(ServerSpec::new("127.0.0.74", Some("sec-server-pss")))
    })
}

fn ed25519_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let (cert, key) = ed25519("sec-server-ed25519");
        write_pki("sec-server-ed25519", &cert, &key);
        Server::start(ServerSpec::new("127.0.0.75", Some("sec-server-ed25519")))
    })
}

#[test]
fn rsa_pss_end_point_hash_is_the_pss_parameters_hash() {
    let (cert, _) = rsa_pss(&pki().dir, "sec-pss-unit");
    assert_eq!(
        pgdap::tls::binding::server_end_point(&cert.to_der().unwrap()).unwrap(),
        cert.digest(MessageDigest::sha384()).unwrap().to_vec()
    );
}

/// The RSA-PSS server checks our binding with its own hash: a session proves that
/// pgdap's tls-server-end-point equals the server's. Ed25519 fails like psql, under
/// prefer too (libpq fails inside the SCRAM exchange and does not retry).
#[tokio::test]
async fn direct_servers_with_pss_and_ed25519_certificates_match_psql() {
    for (server, name) in [(pss_server(), "rsa-pss"), (ed25519_server(), "ed25519")] {
        for mode in ["require", "prefer"] {
            for (db, user, pw) in [
                ("appdb", "scram_user", "scram-pw"),
                ("appdb", "md5_user", "md5-pw"),
            ] {
                let home = ClientHome::new().var("PGMODE", mode);
                let ap = access_point(&server.addr, db, user, pw);
                let ours = pgdap_case(&ap, &home.env()).await;
                let theirs = psql_outcome(&ap, &home.env(), home.home());
                let case = format!("{name} {mode} {user}");
                assert_eq!(
                    ours.class(),
                    theirs.class(),
                    "{case}: pgdap {ours:?}, psql {theirs:?}"
                );
                match (name, user) {
                    ("rsa-pss", _) | ("ed25519", "md5_user") => {
                        assert_eq!(ours, Outcome::Ssl, "{case}")
                    }
                    _ => {
                        assert!(
                            ours.error().contains("could not find digest for NID UNDEF"),
                            "{case}: {ours:?}"
                        );
                        assert!(
                            theirs
                                .error()
                                .contains("could not find digest for NID UNDEF"),
                            "{case}: {theirs:?}"
                        );
                    }
                }
            }
        }
    }
}

/// The public `MakeTls` under a bare `tokio_postgres::Config::connect` (no pgdap connect
/// sequence, no start-up watch of the caller's) refuses the SCRAM-SHA-256-PLUS offer of a
/// server whose Ed25519 certificate defines no binding hash, with libpq's message, before
/// anything of the exchange is sent.
#[tokio::test]
async fn bare_make_tls_refuses_a_plus_offer_it_cannot_bind() {
    let server = ed25519_server();
    let home = ClientHome::new().var("PGMODE", "require");
    let ap = access_point(&server.addr, "appdb", "scram_user", "scram-pw");
    let connector = pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap()).unwrap();
    let pg = connector.tokio_postgres_config(pgdap::connect::Attempt::SslRequired);
    let Err(err) = pg.connect(connector.make_tls().unwrap()).await else {
        panic!("authenticated unbound through the bare MakeTls")
    };
    let text = pgdap::error::Chain(&err).to_string();
    assert!(
        text.contains("could not find digest for NID UNDEF"),
        "{text}"
    );
    // Refused by pgdap before the SCRAM exchange began, not by the server inside it
    // (whose FATAL carries the same words: it cannot hash the certificate either).
    assert!(
        err.as_db_error().is_none(),
        "the server refused, not pgdap: {text}"
    );
}

// ---------------------------------------------------------------------------------------
// SNI and IP literals
// ---------------------------------------------------------------------------------------

/// libpq sends SNI unless the host is digits and dots or has a colon: `2130706503` and
/// `0177.0.0.71` (both 127.0.0.71 to getaddrinfo) get none, from psql and from pgdap;
/// and none under `PGSSLSNI=0` (libpq's `sslsni=0`) for a host name either.
#[tokio::test]
async fn sni_is_sent_exactly_when_psql_sends_it() {
    common::ensure_hosts("mitm-ec.pgdap.test", "127.0.0.71");
    let _proxies = PROXIES.lock().await;
    let mitm = proxy("ec");
    for (host, sslsni, sni) in [
        ("127.0.0.71", None, None),
        ("2130706503", None, None),
        ("0177.0.0.71", None, None),
        ("mitm-ec.pgdap.test", None, Some("mitm-ec.pgdap.test")),
        ("mitm-ec.pgdap.test", Some("1"), Some("mitm-ec.pgdap.test")),
        ("mitm-ec.pgdap.test", Some("0"), None),
    ] {
        let mut home = ClientHome::new().var("PGMODE", "require");
        if let Some(v) = sslsni {
            home = home.var("PGSSLSNI", v);
        }
        let ap = access_point(host, "appdb", "scram_user", "scram-pw");
        mitm.take();
        let connector =
            pgdap::Connector::new(pgdap::Config::new(ap.clone(), &home.env()).unwrap()).unwrap();
        let _ = connector.connect().await;
        let ours: Vec<Option<String>> = mitm
            .take()
            .into_iter()
            .filter(|s| s.tls)
            .map(|s| s.sni)
            .collect();
        let _ = psql_outcome(&ap, &home.env(), home.home());
        let theirs: Vec<Option<String>> = mitm
            .take()
            .into_iter()
            .filter(|s| s.tls)
            .map(|s| s.sni)
            .collect();
        assert_eq!(ours, vec![sni.map(str::to_string)], "{host} {sslsni:?}");
        assert_eq!(ours, theirs, "{host} {sslsni:?}: pgdap vs psql");
    }
}

// ---------------------------------------------------------------------------------------
// A DNS SAN that is not UTF-8
// ---------------------------------------------------------------------------------------

/// CN = nonutf8.pgdap.test, SAN = DNS:"x\xff.other.test" (raw bytes) and IP:127.0.0.77,
/// issued by the test CA.
fn nonutf8_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let ca = X509::from_pem(&std::fs::read(pki().path("ca.crt")).unwrap()).unwrap();
        let ca_key =
            PKey::private_key_from_pem(&std::fs::read(pki().path("ca.key")).unwrap()).unwrap();
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "nonutf8.pgdap.test")
            .unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(ca.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        // GeneralNames: [2] IA5 "x\xff.other.test", [7] 127.0.0.77.
        let dns = b"x\xff.other.test";
        let mut sans = vec![0x82, dns.len() as u8];
        sans.extend_from_slice(dns);
        sans.extend_from_slice(&[0x87, 4, 127, 0, 0, 77]);
        let mut der = vec![0x30, sans.len() as u8];
        der.extend_from_slice(&sans);
        let ext = X509Extension::new_from_der(
            &Asn1Object::from_str("2.5.29.17").unwrap(),
            false,
            &Asn1OctetString::new_from_bytes(&der).unwrap(),
        )
        .unwrap();
        b.append_extension(ext).unwrap();
        b.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        // OpenSSL's own view: the DNS SAN is invisible to the Rust bindings.
        let sans = cert.subject_alt_names().unwrap();
        assert!(sans.iter().all(|n| n.dnsname().is_none()));
        write_pki("sec-server-nonutf8", &cert, &key);
        common::ensure_hosts("nonutf8.pgdap.test", "127.0.0.77");
        Server::start(ServerSpec::new("127.0.0.77", Some("sec-server-nonutf8")))
    })
}

#[tokio::test]
async fn non_utf8_dns_san_blocks_the_cn_fallback_like_psql() {
    let server = nonutf8_server();
    assert_eq!(server.addr, "127.0.0.77");
    for (host, expect_ssl) in [
        // The CN names the host, but a DNS SAN is present: no CN fallback, no match.
        ("nonutf8.pgdap.test", false),
        // IP hosts (inet_aton's forms too) match the IP SAN.
        ("127.0.0.77", true),
        ("2130706509", true),
        ("0177.0.0.77", true),
    ] {
        let home = ClientHome::new().var("PGMODE", "verify-full");
        home.put("ca.crt", "root.crt");
        let ap = access_point(host, "appdb", "scram_user", "scram-pw");
        let ours = pgdap_case(&ap, &home.env()).await;
        let theirs = psql_outcome(&ap, &home.env(), home.home());
        assert_eq!(
            ours.class(),
            theirs.class(),
            "{host}: pgdap {ours:?}, psql {theirs:?}"
        );
        if expect_ssl {
            assert_eq!(ours, Outcome::Ssl, "{host}");
        } else {
            assert!(
                ours.error().contains("does not match host name"),
                "{host}: {ours:?}"
            );
            assert!(
                theirs.error().contains("does not match host name"),
                "{host}: {theirs:?}"
            );
            // Read from the DER: the name is reported (libpq prints its raw bytes).
            assert!(
                ours.error()
                    .contains("\"x\u{fffd}.other.test\" (and 1 other name)"),
                "{host}: {ours:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rotation fixed by chmod alone
// ---------------------------------------------------------------------------------------

const INTERVAL: Duration = Duration::from_secs(1);
/// How much later than `INTERVAL` a rotation may take effect: each check is a whole
/// connection, slow on a loaded machine; what counts is that no restart is needed.
const SLACK: Duration = Duration::from_secs(10);

fn rotating_connector(ap: pgdap::AccessPoint, home: &ClientHome) -> pgdap::Connector {
    let config = pgdap::Config::new(ap, &home.env())
        .unwrap()
        .with_options(pgdap::ConnectOptions {
            reload_interval: INTERVAL,
            ..Default::default()
        });
    pgdap::Connector::new(config).unwrap()
}

/// Polls `connect` until `done(result)` or `reload_interval + SLACK` have passed; returns
/// the time it took.
async fn within_interval(
    connector: &pgdap::Connector,
    what: &str,
    done: impl Fn(&Result<pgdap::Connected, pgdap::Error>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let result = connector.connect().await;
        if done(&result) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < INTERVAL + SLACK,
            "{what} not effective within reload_interval + {SLACK:?}: last {:?}",
            result.err().map(|e| e.to_string())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rename_in(home: &ClientHome, src: &Path, name: &str, mode: u32) {
    let tmp = home.dir().join(format!(".{name}.new"));
    std::fs::copy(src, &tmp).unwrap();
    common::set_mode(&tmp, mode);
    std::fs::rename(&tmp, home.dir().join(name)).unwrap();
}

/// A new client key deployed 0644 is refused (the previous identity stays in service);
/// `chmod 600`, the fix pgdap's own error suggests, is picked up.
#[tokio::test]
async fn client_key_fixed_by_chmod_is_used() {
    let server = common::ssl_server();
    let home = ClientHome::new()
        .var("PGMODE", "verify-ca")
        .var("PGAUTH", "cert");
    home.put("ca.crt", "root.crt");
    home.put("bob.crt", "postgresql.crt");
    home.put("bob.key", "postgresql.key");
    let connector = rotating_connector(access_point(&server.addr, "certdb", "alice", ""), &home);
    let not_alice = |result: Result<pgdap::Session, pgdap::Error>, why: &str| match result {
        Err(e) => {
            assert_eq!(e.server_code(), Some("28000"), "{why}: {e}");
            assert!(
                e.to_string()
                    .contains("certificate authentication failed for user \"alice\""),
                "{why}: {e}"
            );
        }
        Ok(_) => panic!("{why}: connected"),
    };
    not_alice(
        connector.connect_spawned().await,
        "bob's certificate is not alice",
    );

    rename_in(&home, &pki().path("alice.key"), "postgresql.key", 0o644);
    rename_in(&home, &pki().path("alice.crt"), "postgresql.crt", 0o644);
    let start = Instant::now();
    while !connector
        .tls_reloader()
        .last_error()
        .is_some_and(|e| e.to_string().contains("group or world access"))
    {
        assert!(start.elapsed() < INTERVAL + SLACK, "no permission error");
        let _ = connector.connect().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still bob's identity: the 0644 key and its certificate are not used.
    not_alice(
        connector.connect_spawned().await,
        "the 0644 key is not used",
    );

    common::set_mode(&home.dir().join("postgresql.key"), 0o600);
    let took = within_interval(&connector, "chmod 600 of the key", |r| r.is_ok()).await;
    eprintln!("chmod 600 effective after {took:?}");
    assert!(connector.tls_reloader().last_error().is_none());
}

/// A CRL revoking the server certificate, deployed unreadable for the service, is not
/// enforced (the previous context stays); `chmod 644` makes it effective. The service's
/// file checks run as `nobody` (filesystem uid of the runtime's threads), since root reads
/// any file.
#[test]
fn crl_fixed_by_chmod_is_enforced() {
    let server = {
        static S: OnceLock<Server> = OnceLock::new();
        S.get_or_init(|| Server::start(ServerSpec::new("127.0.0.76", Some("server-revoked"))))
    };
    let home = ClientHome::new().var("PGMODE", "verify-ca");
    common::set_mode(home.home(), 0o755);
    common::set_mode(&home.dir(), 0o755);
    let root = home.put("ca.crt", "root.crt");
    common::set_mode(&root, 0o644);
    let connector = rotating_connector(
        access_point(&server.addr, "appdb", "scram_user", "scram-pw"),
        &home,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(|| {
            // SAFETY: setfsuid only changes this thread's filesystem uid.
            unsafe {
                libc::setfsuid(65534);
            }
        })
        .build()
        .unwrap();
    let crl = home.dir().join("postgresql.crl");
    rt.block_on(async {
        // Everything happens on the runtime's threads (filesystem uid nobody).
        let connector = &connector;
        let run = async move {
            assert!(connector.connect().await.is_ok(), "no CRL yet");
            rename_in(&home, &pki().path("client.crl"), "postgresql.crl", 0o600);
            let start = Instant::now();
            while connector.tls_reloader().last_error().is_none() {
                assert!(start.elapsed() < INTERVAL + SLACK, "CRL not checked");
                assert!(
                    connector.connect().await.is_ok(),
                    "previous context in service"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let error = connector.tls_reloader().last_error().unwrap().to_string();
            assert!(
                error.contains("postgresql.crl") && error.contains("Permission denied"),
                "{error}"
            );
            assert!(
                connector.connect().await.is_ok(),
                "unreadable CRL: old context"
            );

            common::set_mode(&crl, 0o644);
            let took = within_interval(connector, "chmod 644 of the CRL", |r| {
                matches!(r, Err(pgdap::Error::CertificateRevoked { .. }))
            })
            .await;
            eprintln!("chmod 644 of the CRL effective after {took:?}");
        };
        run.await;
    });
}

// ---------------------------------------------------------------------------------------
// Access Point lines that may hold secrets
// ---------------------------------------------------------------------------------------

#[test]
fn access_point_errors_never_echo_secret_looking_lines() {
    let good = "dbengine=postgre\ndbserver=h\ndbname=d\nusername=u\n";
    for (line, secrets) in [
        ("pasword : hunter2 = x", &["hunter2", "pasword"][..]),
        ("S3cr=tPart2", &["S3cr", "tPart2"][..]),
    ] {
        let err = pgdap::AccessPoint::parse(&format!("{good}{line}\n")).unwrap_err();
        for s in secrets {
            assert!(!err.to_string().contains(s), "{err}");
            assert!(!format!("{err:?}").contains(s), "{err:?}");
        }
        assert!(err
            .to_string()
            .contains("line 5 is not a recognised key=value line"));
        // The same through a file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dap.cfg");
        std::fs::write(&path, format!("{good}{line}\n")).unwrap();
        let err = pgdap::AccessPoint::from_file(&path).unwrap_err();
        for s in secrets {
            assert!(!chain(&err).contains(s), "{err}");
            assert!(!format!("{err:?}").contains(s), "{err:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hostile servers during negotiation
// ---------------------------------------------------------------------------------------

/// Needs the blocking adapter (feature `postgres`, on in scripts/test.sh).
#[cfg(feature = "postgres")]
mod hostile_negotiation {
    use super::*;
    use hostile::{Hostile, Misbehaviour};

    const HOSTILE_PASSWORD: &str = "hostile-never-gets-this";

    /// The two fakes (plaintext, TLS), shared by the hostile tests, one test at a time.
    fn hostile_fakes() -> &'static (Hostile, Hostile) {
        static F: OnceLock<(Hostile, Hostile)> = OnceLock::new();
        F.get_or_init(|| {
            (
                Hostile::start("127.0.0.210", false),
                Hostile::start("127.0.0.211", true),
            )
        })
    }
    static HOSTILE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// A hostile case: misbehaviour, fake, mode, PGREQUIREAUTH, the clients to run.
    type Row<'a> = (
        Misbehaviour,
        &'a Hostile,
        &'a str,
        Option<&'a str>,
        &'a [Client],
    );

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Client {
        Libpq18,
        Connect,
        Blocking,
        /// tokio-postgres' own `connect` (sslmode require) with `Connector::make_tls`.
        BareMakeTls,
    }

    /// One client's connection to `addr` with PGMODE/PGSSLMODE `mode` and PGREQUIREAUTH;
    /// `Ok(())` when it connected, else its error (pgdap's whole cause chain, or libpq's
    /// message).
    async fn hostile_client(
        client: Client,
        addr: &'static str,
        mode: &str,
        require_auth: Option<&str>,
    ) -> Result<(), String> {
        let mut home = ClientHome::new().var("PGMODE", mode);
        if let Some(r) = require_auth {
            home.set("PGREQUIREAUTH", r);
        }
        let ap = access_point(addr, "appdb", "alice", HOSTILE_PASSWORD);
        let connector =
            || pgdap::Connector::new(pgdap::Config::new(ap.clone(), &home.env()).unwrap()).unwrap();
        match client {
            Client::Libpq18 => {
                let mut vars = vec![
                    ("PGHOST", addr),
                    ("PGUSER", "alice"),
                    ("PGDATABASE", "appdb"),
                    ("PGPASSWORD", HOSTILE_PASSWORD),
                    ("PGSSLMODE", mode),
                    ("PGGSSENCMODE", "disable"),
                    ("PGCONNECT_TIMEOUT", "10"),
                ];
                if let Some(r) = require_auth {
                    vars.push(("PGREQUIREAUTH", r));
                }
                let out =
                    tokio::task::block_in_place(|| common::libpq18::oracle(home.home(), &vars));
                match out["ok"].as_bool() {
                    Some(true) => Ok(()),
                    _ => Err(out["error"].as_str().unwrap_or_default().to_string()),
                }
            }
            Client::Connect => connector().connect().await.map(drop).map_err(|e| chain(&e)),
            Client::Blocking => {
                let connector = connector();
                tokio::task::spawn_blocking(move || {
                    pgdap::integrations::blocking::connect(&connector)
                        .map(drop)
                        .map_err(|e| chain(&e))
                })
                .await
                .unwrap()
            }
            Client::BareMakeTls => {
                let connector = connector();
                let mut pg = pgdap::tokio_postgres::Config::new();
                pg.host(addr)
                    .port(5432)
                    .user("alice")
                    .dbname("appdb")
                    .password(HOSTILE_PASSWORD)
                    .connect_timeout(Duration::from_secs(10))
                    .ssl_mode(pgdap::tokio_postgres::config::SslMode::Require);
                pg.connect(connector.make_tls().unwrap())
                    .await
                    .map(drop)
                    .map_err(|e| chain(&e))
            }
        }
    }

    /// libpq's reason: its message after the last "failed: ".
    fn libpq_reason(message: &str) -> &str {
        let line = message.lines().last().unwrap_or(message);
        line.rsplit_once("failed: ").map_or(line, |(_, r)| r).trim()
    }

    /// Every misbehaviour, every path of pgdap and libpq 18 on the same fake: each fails
    /// with libpq's message and sends nothing after the misbehaviour; the password never
    /// reaches the fake. Known divergences (asserted as such): the blocking adapter refuses
    /// a plaintext attempt under PGREQUIREAUTH before connecting (it cannot watch it), and
    /// on a plaintext attempt without such a check it cannot see an oversized request
    /// either (tokio-postgres answers the SASL offer; no password is in it); a bare
    /// `MakeTls` cannot see the reply to the SSLRequest (tokio-postgres reads it: under
    /// `require` it fails with its own message and sends nothing more).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_servers_get_nothing_after_misbehaving_on_any_path_like_libpq_18() {
        use Client::*;
        use Misbehaviour::*;
        let _one = HOSTILE.lock().await;
        let (plain, tls) = hostile_fakes();
        // (misbehaviour, fake, mode, PGREQUIREAUTH, clients)
        let all = &[Libpq18, Connect, Blocking][..];
        let with_bare = &[Libpq18, Connect, Blocking, BareMakeTls][..];
        let cases: &[Row] = &[
            (ErrorReplyThenCleartext, plain, "prefer", None, all),
            (
                ErrorReplyThenCleartext,
                plain,
                "prefer",
                Some("scram-sha-256"),
                all,
            ),
            (
                ErrorReplyThenCleartext,
                plain,
                "require",
                Some("scram-sha-256"),
                with_bare,
            ),
            (ErrorReplyThenOk, plain, "prefer", None, all),
            (ErrorReplyThenOk, plain, "require", None, with_bare),
            (
                CleartextRequest,
                plain,
                "disable",
                Some("scram-sha-256"),
                all,
            ),
            (CleartextRequest, tls, "require", Some("scram-sha-256"), all),
            (
                CleartextRequest,
                tls,
                "prefer",
                Some("scram-sha-256,md5"),
                all,
            ),
            (OversizedSasl, plain, "disable", None, all),
            (OversizedSasl, tls, "require", None, all),
            (OversizedSasl, tls, "prefer", None, all),
        ];
        let mut table = Vec::new();
        let mut failures = Vec::new();
        for &(what, fake, mode, require_auth, clients) in cases {
            let mut libpq_message = String::new();
            for &client in clients {
                fake.set(what);
                let result = hostile_client(client, fake.addr, mode, require_auth).await;
                let seen = fake.seen();
                let after: usize = seen.iter().map(|s| s.after.len()).sum();
                let leaked = seen
                    .iter()
                    .any(|s| contains(&s.all, HOSTILE_PASSWORD.as_bytes()));
                let row = format!(
                "{what:?} {} PGMODE={mode} PGREQUIREAUTH={require_auth:?} {client:?}: {} connection(s), {after} byte(s) after, password {}, {result:?}",
                fake.addr,
                seen.len(),
                if leaked { "SENT" } else { "not sent" },
            );
                table.push(row.clone());
                let Err(message) = &result else {
                    failures.push(format!("connected: {row}"));
                    continue;
                };
                if leaked {
                    failures.push(format!("password leaked: {row}"));
                }
                let plaintext_unwatched = client == Blocking && fake.addr == plain.addr;
                match client {
                    Libpq18 => {
                        libpq_message = libpq_reason(message).to_string();
                        if after != 0 {
                            failures.push(format!("libpq sent bytes: {row}"));
                        }
                    }
                    Blocking
                        if plaintext_unwatched && require_auth.is_some() && mode == "disable" =>
                    {
                        // Refused before connecting: not a byte to the server.
                        if !message.contains("PGREQUIREAUTH cannot be enforced") || !seen.is_empty()
                        {
                            failures.push(format!("blocking plaintext not refused: {row}"));
                        }
                    }
                    Blocking if plaintext_unwatched && what == OversizedSasl => {
                        // Documented divergence: tokio-postgres answers the offer unwatched.
                        if !message.contains("hostile fake") {
                            failures.push(format!("unexpected blocking outcome: {row}"));
                        }
                    }
                    BareMakeTls => {
                        if !message.contains("server does not support TLS") || after != 0 {
                            failures.push(format!("bare MakeTls: {row}"));
                        }
                    }
                    _ => {
                        if libpq_message.is_empty() || !message.contains(&libpq_message) {
                            failures
                                .push(format!("message is not libpq's {libpq_message:?}: {row}"));
                        }
                        if after != 0 {
                            failures.push(format!("bytes sent after the misbehaviour: {row}"));
                        }
                    }
                }
            }
        }
        println!("{}", table.join("\n"));
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// The detector can fail: a fake that asks for a cleartext password with no check set
    /// gets the password from libpq 18 and from both of pgdap's paths.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_fake_sees_a_password_when_nothing_forbids_sending_it() {
        let _one = HOSTILE.lock().await;
        let (plain, _) = hostile_fakes();
        for client in [Client::Libpq18, Client::Connect, Client::Blocking] {
            plain.set(Misbehaviour::CleartextRequest);
            let result = hostile_client(client, plain.addr, "disable", None).await;
            let seen = plain.seen();
            assert!(
                matches!(&result, Err(m) if m.contains("hostile fake")),
                "{client:?}: {result:?}"
            );
            assert_eq!(seen.len(), 1, "{client:?}");
            assert!(
                contains(&seen[0].after, HOSTILE_PASSWORD.as_bytes()),
                "{client:?}: the fake did not see the password: {seen:?}"
            );
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }
}

/// A pool follows a certificate rotation without a restart: a session opened with the
/// old files stays in service, connections opened after the rotation use the new files
/// (a certificate the server refuses for this user fails them), and rotating back to a
/// good certificate lets the pool grow again.
#[tokio::test]
async fn a_pool_follows_a_client_certificate_rotation() {
    let server = common::ssl_server();
    let home = ClientHome::new()
        .var("PGMODE", "verify-ca")
        .var("PGAUTH", "cert");
    home.put("ca.crt", "root.crt");
    home.put("alice.crt", "postgresql.crt");
    home.put("alice.key", "postgresql.key");
    let connector = rotating_connector(access_point(&server.addr, "certdb", "alice", ""), &home);
    let pool = pgdap::Pool::new(
        connector.clone(),
        pgdap::PoolOptions {
            max_size: 2,
            reconnect_backoff: pgdap::pool::Backoff::OFF,
            ..Default::default()
        },
    )
    .unwrap();
    let held = pool.get().await.unwrap();

    // Bob's identity: the server refuses it for alice (CN bob-cn, no map in certdb).
    rename_in(&home, &pki().path("bob.key"), "postgresql.key", 0o600);
    rename_in(&home, &pki().path("bob.crt"), "postgresql.crt", 0o644);
    within_interval(&connector, "bob's certificate", |r| r.is_err()).await;
    match pool.get().await {
        Err(pgdap::PoolError::Connect(e)) => assert!(
            e.to_string()
                .contains("certificate authentication failed for user \"alice\""),
            "{e}"
        ),
        other => panic!("a new pooled connection used the old files: {other:?}"),
    }
    let row = held
        .client
        .query_one("select current_user::text", &[])
        .await;
    assert_eq!(
        row.unwrap().get::<_, String>(0),
        "alice",
        "the session opened before the rotation stays in service"
    );

    // Back to alice: the pool opens its second connection with the new files.
    rename_in(&home, &pki().path("alice.key"), "postgresql.key", 0o600);
    rename_in(&home, &pki().path("alice.crt"), "postgresql.crt", 0o644);
    within_interval(&connector, "alice's certificate", |r| r.is_ok()).await;
    let second = pool.get().await.unwrap();
    let user: String = second
        .client
        .query_one("select current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, "alice");
    assert_eq!(pool.status().size, 2);
}
