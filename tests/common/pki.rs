//! The test PKI: a CA, server and client certificates, CRLs, made at run time.

use super::*;

// ---------------------------------------------------------------------------------------
// PKI
// ---------------------------------------------------------------------------------------

/// A certificate and its key, both also written to `<pki dir>/<name>.crt|.key`.
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
}

/// The PKI of a test process. Files in [`Pki::dir`]:
/// - `ca.crt`/`ca.key`: the test root CA; `other-ca.crt`: an unrelated CA;
///   `bundle.crt`: other-ca + ca (a bundle of several CAs).
/// - `server.crt` (CN=pgdap-server, SAN DNS:localhost, DNS:ssl.pgdap.test, IP:127.0.0.2)
/// - `server-cn-only.crt` (CN=127.0.0.12, no SAN), `server-wildcard.crt` (SAN
///   DNS:*.pgdap.test, CN=pgdap-wildcard), `server-other-ca.crt` (from other-ca, SAN IP
///   127.0.0.14), `server-self-signed.crt` (IP 127.0.0.15), `server-revoked.crt` (IP
///   127.0.0.16, revoked in `client.crl`), `server-expired.crt` (IP 127.0.0.17, expired),
///   `server-expiring.crt` (IP 127.0.0.51, expires in 10 days), `server-cluster.crt`
///   (CN=pgdap-cluster, SAN DNS:*.pgdap.test, DNS:localhost, IP:127.0.0.220-239 except
///   127.0.0.225: the replication clusters of [`Cluster`]).
/// - `client.crl`: CRL from ca revoking server-revoked; `empty.crl`: CRL from ca revoking
///   nothing; `other-ca.crl`: empty CRL from other-ca.
/// - client certificates (CN = user): `alice.crt/.key` (EC, PKCS#8), `alice-rsa.crt/.key`
///   (RSA, PKCS#1 `BEGIN RSA PRIVATE KEY`), `alice-sec1.crt/.key` (EC, SEC1
///   `BEGIN EC PRIVATE KEY`), `alice-enc.key` (alice's key, passphrase-encrypted),
///   `bob.crt/.key` (CN=bob-cn, mapped to bob), `alice-other-ca.crt/.key` (from other-ca),
///   `alice-revoked.crt/.key` (revoked by `server.crl`, the server-side CRL),
///   `scram.crt/.key` (CN=scram_user), `alice-chain.crt/.key` (CN=alice issued by an
///   intermediate CA, file holds leaf + intermediate).
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

pub(crate) static PKI: OnceLock<Pki> = OnceLock::new();

pub fn pki() -> &'static Pki {
    PKI.get_or_init(|| make_pki().expect("generating the test PKI"))
}

pub(crate) fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

pub(crate) fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

pub enum San<'a> {
    Dns(&'a str),
    Ip(&'a str),
}

pub(crate) static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(100);

pub fn issue(
    cn: &str,
    key: PKey<Private>,
    issuer: Option<&Issued>,
    sans: &[San],
    ca: bool,
    expired: bool,
) -> Issued {
    let (from, to) = if expired { (-400, -30) } else { (-1, 365) };
    issue_valid(cn, key, issuer, sans, ca, from, to)
}

/// Issues a certificate valid from `from_days` to `to_days` relative to now.
pub fn issue_valid(
    cn: &str,
    key: PKey<Private>,
    issuer: Option<&Issued>,
    sans: &[San],
    ca: bool,
    from_days: i64,
    to_days: i64,
) -> Issued {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    b.set_serial_number(&Asn1Integer::from_bn(&BigNum::from_u32(serial).unwrap()).unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map(|i| i.cert.subject_name()).unwrap_or(&name))
        .unwrap();
    b.set_pubkey(&key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (from, to) = (now + from_days * 86400, now + to_days * 86400);
    b.set_not_before(&Asn1Time::from_unix(from).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(to).unwrap()).unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        b.append_extension(BasicConstraints::new().build().unwrap())
            .unwrap();
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
        .unwrap();
    b.append_extension(ski).unwrap();
    if issuer.is_some() {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
            .unwrap();
        b.append_extension(aki).unwrap();
    }
    if !sans.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for s in sans {
            match s {
                San::Dns(d) => san.dns(d),
                San::Ip(i) => san.ip(i),
            };
        }
        let ext = san
            .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
            .unwrap();
        b.append_extension(ext).unwrap();
    }
    let signer = issuer.map(|i| &i.key).unwrap_or(&key);
    b.sign(signer, MessageDigest::sha256()).unwrap();
    Issued {
        cert: b.build(),
        key,
    }
}

pub(crate) fn write_issued(dir: &Path, name: &str, issued: &Issued) {
    std::fs::write(
        dir.join(format!("{name}.crt")),
        issued.cert.to_pem().unwrap(),
    )
    .unwrap();
    write_key(
        &dir.join(format!("{name}.key")),
        &issued.key.private_key_to_pem_pkcs8().unwrap(),
    );
}

pub fn write_key(path: &Path, pem: &[u8]) {
    std::fs::write(path, pem).unwrap();
    set_mode(path, 0o600);
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A CRL signed by `ca` (files `<ca>.crt/.key` in dir) revoking `revoked`, via the openssl
/// CLI (the openssl crate cannot build CRLs).
pub(crate) fn make_crl(dir: &Path, ca: &str, revoked: &[&Issued], out: &str) {
    let work = dir.join(format!("crl-{out}"));
    std::fs::create_dir_all(&work).unwrap();
    let mut index = String::new();
    for r in revoked {
        let serial = r
            .cert
            .serial_number()
            .to_bn()
            .unwrap()
            .to_hex_str()
            .unwrap();
        let serial = if serial.len() % 2 == 1 {
            format!("0{serial}")
        } else {
            serial.to_string()
        };
        index.push_str(&format!(
            "R\t300101000000Z\t240101000000Z\t{serial}\tunknown\t/CN=revoked\n"
        ));
    }
    std::fs::write(work.join("index.txt"), index).unwrap();
    std::fs::write(work.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        work.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca=d\n[d]\ndatabase={}\ncrlnumber={}\ndefault_md=sha256\ndefault_crl_days=30\n",
            work.join("index.txt").display(),
            work.join("crlnumber").display()
        ),
    )
    .unwrap();
    let out_path = dir.join(out);
    let status = Command::new("openssl")
        .args(["ca", "-gencrl", "-batch", "-config"])
        .arg(work.join("ca.cnf"))
        .arg("-keyfile")
        .arg(dir.join(format!("{ca}.key")))
        .arg("-cert")
        .arg(dir.join(format!("{ca}.crt")))
        .arg("-out")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "openssl ca -gencrl: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

pub(crate) fn make_pki() -> Result<Pki, String> {
    let dir = PathBuf::from(ROOT).join(format!("pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    set_mode(&dir, 0o755);
    let ca = issue("pgdap test root CA", ec_key(), None, &[], true, false);
    write_issued(&dir, "ca", &ca);
    let other = issue("unrelated CA", ec_key(), None, &[], true, false);
    write_issued(&dir, "other-ca", &other);
    let bundle = [other.cert.to_pem().unwrap(), ca.cert.to_pem().unwrap()].concat();
    std::fs::write(dir.join("bundle.crt"), bundle).unwrap();

    let server = issue(
        "pgdap-server",
        ec_key(),
        Some(&ca),
        &[
            San::Dns("localhost"),
            San::Dns("ssl.pgdap.test"),
            San::Ip("127.0.0.2"),
        ],
        false,
        false,
    );
    write_issued(&dir, "server", &server);
    let cn_only = issue("127.0.0.12", ec_key(), Some(&ca), &[], false, false);
    write_issued(&dir, "server-cn-only", &cn_only);
    let wildcard = issue(
        "pgdap-wildcard",
        ec_key(),
        Some(&ca),
        &[San::Dns("*.pgdap.test")],
        false,
        false,
    );
    write_issued(&dir, "server-wildcard", &wildcard);
    let other_srv = issue(
        "pgdap-other",
        ec_key(),
        Some(&other),
        &[San::Ip("127.0.0.14")],
        false,
        false,
    );
    write_issued(&dir, "server-other-ca", &other_srv);
    let self_signed = issue(
        "pgdap-self-signed",
        ec_key(),
        None,
        &[San::Ip("127.0.0.15")],
        false,
        false,
    );
    write_issued(&dir, "server-self-signed", &self_signed);
    let revoked = issue(
        "pgdap-revoked",
        ec_key(),
        Some(&ca),
        &[San::Ip("127.0.0.16")],
        false,
        false,
    );
    write_issued(&dir, "server-revoked", &revoked);
    let expired = issue(
        "pgdap-expired",
        ec_key(),
        Some(&ca),
        &[San::Ip("127.0.0.17")],
        false,
        true,
    );
    write_issued(&dir, "server-expired", &expired);
    let expiring = issue_valid(
        "pgdap-expiring",
        ec_key(),
        Some(&ca),
        &[San::Ip("127.0.0.51")],
        false,
        -300,
        10,
    );
    write_issued(&dir, "server-expiring", &expiring);

    let alice = issue("alice", ec_key(), Some(&ca), &[], false, false);
    write_issued(&dir, "alice", &alice);
    let alice_rsa = issue("alice", rsa_key(), Some(&ca), &[], false, false);
    std::fs::write(dir.join("alice-rsa.crt"), alice_rsa.cert.to_pem().unwrap()).unwrap();
    write_key(
        &dir.join("alice-rsa.key"),
        &alice_rsa.key.rsa().unwrap().private_key_to_pem().unwrap(),
    );
    let alice_sec1 = issue("alice", ec_key(), Some(&ca), &[], false, false);
    std::fs::write(
        dir.join("alice-sec1.crt"),
        alice_sec1.cert.to_pem().unwrap(),
    )
    .unwrap();
    write_key(
        &dir.join("alice-sec1.key"),
        &alice_sec1
            .key
            .ec_key()
            .unwrap()
            .private_key_to_pem()
            .unwrap(),
    );
    write_key(
        &dir.join("alice-enc.key"),
        &alice
            .key
            .private_key_to_pem_pkcs8_passphrase(
                openssl::symm::Cipher::aes_256_cbc(),
                b"passphrase",
            )
            .unwrap(),
    );
    let bob = issue("bob-cn", ec_key(), Some(&ca), &[], false, false);
    write_issued(&dir, "bob", &bob);
    let scram = issue("scram_user", ec_key(), Some(&ca), &[], false, false);
    write_issued(&dir, "scram", &scram);
    let alice_other = issue("alice", ec_key(), Some(&other), &[], false, false);
    write_issued(&dir, "alice-other-ca", &alice_other);
    let alice_revoked = issue("alice", ec_key(), Some(&ca), &[], false, false);
    write_issued(&dir, "alice-revoked", &alice_revoked);
    let inter = issue(
        "pgdap intermediate CA",
        ec_key(),
        Some(&ca),
        &[],
        true,
        false,
    );
    let alice_chain = issue("alice", ec_key(), Some(&inter), &[], false, false);
    std::fs::write(
        dir.join("alice-chain.crt"),
        [
            alice_chain.cert.to_pem().unwrap(),
            inter.cert.to_pem().unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    write_key(
        &dir.join("alice-chain.key"),
        &alice_chain.key.private_key_to_pem_pkcs8().unwrap(),
    );

    // The replication clusters and list members of tests/server/hosts.rs: every address
    // of their area but 127.0.0.225 (the member whose certificate does not match).
    let cluster_ips: Vec<String> = (220..=239)
        .filter(|n| *n != 225)
        .map(|n| format!("127.0.0.{n}"))
        .collect();
    let mut cluster_sans = vec![San::Dns("*.pgdap.test"), San::Dns("localhost")];
    cluster_sans.extend(cluster_ips.iter().map(|ip| San::Ip(ip)));
    let cluster = issue(
        "pgdap-cluster",
        ec_key(),
        Some(&ca),
        &cluster_sans,
        false,
        false,
    );
    write_issued(&dir, "server-cluster", &cluster);

    make_crl(&dir, "ca", &[&revoked], "client.crl");
    make_crl(&dir, "ca", &[], "empty.crl");
    make_crl(&dir, "other-ca", &[], "other-ca.crl");
    make_crl(&dir, "ca", &[&alice_revoked], "server.crl");
    Ok(Pki { dir })
}
