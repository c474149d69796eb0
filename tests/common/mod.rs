//! Test harness: real PostgreSQL servers (the distribution's, any of 12-18: see [`PG_BIN`])
//! and a test PKI, made at run time.
//!
//! API (for the test crates, `#[path = "../common/mod.rs"] mod common;` in
//! tests/server/main.rs and tests/process_wide/main.rs, and for the examples that start
//! servers):
//! - [`pki()`]: the PKI of this test process (generated once): `pki().path("ca.crt")`, see
//!   [`Pki`] for the files (CA, unrelated CA, server and client certificates, CRLs).
//! - [`Server::start(ServerSpec)`]: a server on `127.0.0.x:5432` with the spec's SSL
//!   certificate, `pg_hba.conf`, `pg_ident.conf` and extra `postgresql.conf` lines.
//!   Servers are stopped at process exit (and stale ones from killed runs at start).
//!   [`Server::psql`] runs SQL as superuser over the unix socket.
//! - [`ssl_server()`] (127.0.0.2, SSL, rich pg_hba: see [`STANDARD_HBA`]) and
//!   [`plain_server()`] (127.0.0.3, ssl=off, same pg_hba): shared per test process.
//!   Roles: `scram_user`/`scram-pw`, `md5_user`/`md5-pw` (md5 hash), `alice`/`alice-pw`
//!   (client certificate CN=alice), `bob` (certificate CN=bob-cn mapped through
//!   pg_ident map `cnmap`). Databases: appdb, sslonly (hostssl; plaintext rejected), nossl (hostnossl; SSL
//!   rejected),
//!   certdb (cert), mapdb (cert map=cnmap), vcadb (scram + clientcert=verify-ca),
//!   pwdb (cleartext password).
//! - [`ClientHome`]: a temporary per-user directory (the `~/.postgresql` of a test) with
//!   helpers to place root CA, CRL, certificate and key files; [`ClientHome::env`] builds a
//!   [`pgdap::Environment`] with that default directory.
//! - [`access_point`]: an Access Point for a server/db/user/password.
//! - [`pgdap_outcome`] and [`psql_outcome`]: run the same case through pgdap and psql
//!   (libpq of the same version) and classify it as [`Outcome::Ssl`], [`Outcome::Plain`] or
//!   [`Outcome::Fail`].
//!
//! Addresses: 127.0.0.2 ssl_server, .3 plain_server, .10-.29 sslmode matrix servers,
//! .30-.39 client-certificate tests, .40-.49 encoding tests, .50-.59 operations and pool,
//! .60-.69 reliability and load, .70-.79 security (MITM proxy), .80-.99 ecosystem
//! adapters and cancel, .100-.129 libpq variables and direct TLS (PostgreSQL 18),
//! .130-.139 round-trip counting, .140-.149 CLI, demo and docker checks, .150-.179
//! PgBouncer and HAProxy, .180-.199 Windows under Wine, .200-.209 certificate rotation,
//! .210-.219 hostile fake servers (security). The modules of tests/server share one
//! process, so each keeps to its area: a server started on an address where its own
//! process already runs one stops that one first (see `claim_address`).
//! Host names `*.pgdap.test` are added to /etc/hosts (see [`ensure_hosts`]), marked with
//! the test process's pid and removed at its exit, or by the next run when it was killed.

/// The self-test servers of the `bench` and `roundtrips` examples (no test uses them).
#[allow(dead_code)]
pub mod bench_cases;
pub mod libpq18;
pub mod proxies;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

/// Every PGMODE value, weakest first (from `pgdap::SslMode`).
pub const MODES: [&str; 6] = [
    pgdap::SslMode::Disable.as_str(),
    pgdap::SslMode::Allow.as_str(),
    pgdap::SslMode::Prefer.as_str(),
    pgdap::SslMode::Require.as_str(),
    pgdap::SslMode::VerifyCa.as_str(),
    pgdap::SslMode::VerifyFull.as_str(),
];

/// The directory of the PostgreSQL server binaries the harness runs (`initdb`, `pg_ctl`)
/// and of `psql`, the libpq oracle: `$PGDAP_PG_BIN` when set, else the newest
/// `/usr/lib/postgresql/N/bin` (Debian/Ubuntu, N = 12..=18) or `/usr/pgsql-N/bin`
/// holding `pg_ctl` and `psql`. Displays as the path: `format!("{PG_BIN}/psql")`.
pub static PG_BIN: PgBin = PgBin;

/// See [`PG_BIN`]; detected once per process, panics with the install command when no
/// server is found.
pub struct PgBin;

/// The PostgreSQL major versions the harness accepts.
pub const PG_VERSIONS: std::ops::RangeInclusive<u32> = 12..=18;

static PG_FOUND: OnceLock<(u32, String)> = OnceLock::new();

/// The newest installed PostgreSQL (major version, bin directory) of [`PG_VERSIONS`], or
/// `$PGDAP_PG_BIN` (its version read from `pg_ctl --version`); `None` when there is none.
pub fn find_pg_bin() -> Option<(u32, PathBuf)> {
    if let Some(dir) = std::env::var_os("PGDAP_PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let out = Command::new(dir.join("pg_ctl"))
            .arg("--version")
            .output()
            .ok()?;
        // "pg_ctl (PostgreSQL) 16.4 (Ubuntu 16.4-1)"
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let major = text
            .split_whitespace()
            .nth(2)?
            .split('.')
            .next()?
            .parse()
            .ok()?;
        return Some((major, dir));
    }
    PG_VERSIONS.rev().find_map(|v| {
        [
            format!("/usr/lib/postgresql/{v}/bin"),
            format!("/usr/pgsql-{v}/bin"),
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|d| d.join("pg_ctl").is_file() && d.join("psql").is_file())
        .map(|d| (v, d))
    })
}

/// The command that installs the distribution's PostgreSQL without creating and starting
/// its `main` cluster (the tests start their own servers).
pub const PG_INSTALL_HINT: &str = "sudo mkdir -p /etc/postgresql-common/createcluster.d && \
echo 'create_main_cluster = false' | sudo tee /etc/postgresql-common/createcluster.d/pgdap.conf && \
sudo apt-get install -y postgresql postgresql-client openssl";

fn pg_found() -> &'static (u32, String) {
    PG_FOUND.get_or_init(|| match find_pg_bin() {
        Some((v, dir)) => (v, dir.display().to_string()),
        None => panic!(
            "no PostgreSQL server {}-{} found (looked for pg_ctl and psql in \
             /usr/lib/postgresql/N/bin and /usr/pgsql-N/bin; PGDAP_PG_BIN overrides). \
             Install it as root with `bash scripts/test.sh`, or:\n{PG_INSTALL_HINT}",
            PG_VERSIONS.start(),
            PG_VERSIONS.end()
        ),
    })
}

/// The major version of the PostgreSQL in [`PG_BIN`] (server and psql).
pub fn pg_major() -> u32 {
    pg_found().0
}

impl std::ops::Deref for PgBin {
    type Target = str;
    fn deref(&self) -> &str {
        &pg_found().1
    }
}

impl std::fmt::Display for PgBin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl AsRef<Path> for PgBin {
    fn as_ref(&self) -> &Path {
        Path::new(&**self)
    }
}

impl AsRef<std::ffi::OsStr> for PgBin {
    fn as_ref(&self) -> &std::ffi::OsStr {
        std::ffi::OsStr::new(&**self)
    }
}
const ROOT: &str = "/tmp/pgdap-tests";

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
///   `server-expiring.crt` (IP 127.0.0.51, expires in 10 days).
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

static PKI: OnceLock<Pki> = OnceLock::new();

pub fn pki() -> &'static Pki {
    PKI.get_or_init(|| make_pki().expect("generating the test PKI"))
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

pub enum San<'a> {
    Dns(&'a str),
    Ip(&'a str),
}

static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(100);

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

fn write_issued(dir: &Path, name: &str, issued: &Issued) {
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
fn make_crl(dir: &Path, ca: &str, revoked: &[&Issued], out: &str) {
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

fn make_pki() -> Result<Pki, String> {
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

    make_crl(&dir, "ca", &[&revoked], "client.crl");
    make_crl(&dir, "ca", &[], "empty.crl");
    make_crl(&dir, "other-ca", &[], "other-ca.crl");
    make_crl(&dir, "ca", &[&alice_revoked], "server.crl");
    Ok(Pki { dir })
}

// ---------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------

/// The pg_hba.conf of the shared servers.
pub const STANDARD_HBA: &str = "\
local all all trust
hostssl certdb all 127.0.0.0/8 cert
hostssl mapdb all 127.0.0.0/8 cert map=cnmap
hostssl vcadb all 127.0.0.0/8 scram-sha-256 clientcert=verify-ca
hostssl sslonly all 127.0.0.0/8 scram-sha-256
hostnossl sslonly all 127.0.0.0/8 reject
hostnossl nossl all 127.0.0.0/8 scram-sha-256
hostssl nossl all 127.0.0.0/8 reject
host pwdb all 127.0.0.0/8 password
host all md5_user 127.0.0.0/8 md5
host all all 127.0.0.0/8 scram-sha-256
";

pub const STANDARD_IDENT: &str = "cnmap bob-cn bob\ncnmap /^(.*)@pgdap\\.test$ \\1\n";

/// What a server runs with.
pub struct ServerSpec {
    /// Loopback address, e.g. "127.0.0.2".
    pub addr: &'static str,
    /// PKI base name of the server certificate (`server`, `server-cn-only`, ...); `None`:
    /// ssl = off.
    pub cert: Option<&'static str>,
    /// pg_hba.conf.
    pub hba: String,
    /// pg_ident.conf.
    pub ident: String,
    /// Extra postgresql.conf lines.
    pub conf: String,
}

impl ServerSpec {
    pub fn new(addr: &'static str, cert: Option<&'static str>) -> ServerSpec {
        ServerSpec {
            addr,
            cert,
            hba: STANDARD_HBA.to_string(),
            ident: STANDARD_IDENT.to_string(),
            conf: String::new(),
        }
    }
}

pub struct Server {
    pub addr: String,
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    pub log: PathBuf,
}

static RUNNING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Runs a server binary of [`PG_BIN`] as [`as_postgres`] does.
fn pg_cmd(bin: &str) -> Command {
    as_postgres(Path::new(&format!("{PG_BIN}/{bin}")))
}

/// Runs the program at `path` as the `postgres` user when we are root (PostgreSQL refuses
/// to run as root).
pub fn as_postgres(path: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

/// Runs `cmd` and asserts that it succeeded (`what` names it in the failure).
pub fn run(mut cmd: Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Gives `path` and everything in it to `postgres` (servers run as postgres when root).
pub fn chown_postgres(path: &Path) {
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.arg("-R").arg("postgres:postgres").arg(path);
                c
            },
            "chown",
        );
    }
}

fn ensure_root_dir() {
    std::fs::create_dir_all(ROOT).unwrap();
    set_mode(Path::new(ROOT), 0o777);
    if is_root() {
        // Make sure the postgres user exists (Debian's package creates it).
        let exists = Command::new("id")
            .arg("postgres")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !exists {
            run(
                {
                    let mut c = Command::new("useradd");
                    c.args(["--system", "--user-group", "--no-create-home", "postgres"]);
                    c
                },
                "useradd postgres",
            );
        }
    }
}

extern "C" fn stop_all_at_exit() {
    let _ =
        std::fs::remove_dir_all(PathBuf::from(ROOT).join(format!("pki-{}", std::process::id())));
    if let Ok(list) = RUNNING.lock() {
        for data in list.iter() {
            let _ = pg_cmd("pg_ctl")
                .arg("-D")
                .arg(data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
            let _ = std::fs::remove_dir_all(data.parent().unwrap_or(data));
        }
    }
}

/// initdb once per process into a template with the test roles and databases.
fn template() -> &'static PathBuf {
    TEMPLATE.get_or_init(|| {
        ensure_root_dir();
        unsafe {
            libc::atexit(stop_all_at_exit);
        }
        remove_dead_processes_dirs();
        if Path::new(HOSTS).exists() && is_root() {
            remove_hosts_lines(Path::new(HOSTS), |owner| {
                owner.is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists())
            });
        }
        let dir = PathBuf::from(ROOT).join(format!("template-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        RUNNING.lock().unwrap().push(dir.join("data"));
        std::fs::create_dir_all(&dir).unwrap();
        chown_postgres(&dir);
        let data = dir.join("data");
        run(
            {
                let mut c = pg_cmd("initdb");
                c.arg("-D").arg(&data).args([
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-A",
                    "trust",
                    "--no-sync",
                ]);
                c
            },
            "initdb",
        );
        // Start it on a unix socket only, create roles and databases, stop.
        let sock = dir.join("sock");
        std::fs::create_dir_all(&sock).unwrap();
        chown_postgres(&sock);
        run(
            {
                let mut c = pg_cmd("pg_ctl");
                c.arg("-D").arg(&data).arg("-o").arg(format!(
                    "-c listen_addresses='' -c unix_socket_directories='{}' -c fsync=off",
                    sock.display()
                ));
                c.args(["-w", "-l"]).arg(dir.join("log")).arg("start");
                c
            },
            "pg_ctl start template",
        );
        let setup = "\
            SET password_encryption = 'scram-sha-256';
            CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw';
            CREATE ROLE alice LOGIN PASSWORD 'alice-pw';
            CREATE ROLE bob LOGIN;
            SET password_encryption = 'md5';
            CREATE ROLE md5_user LOGIN PASSWORD 'md5-pw';
            CREATE DATABASE appdb; CREATE DATABASE sslonly; CREATE DATABASE nossl;
            CREATE DATABASE certdb; CREATE DATABASE mapdb; CREATE DATABASE vcadb;
            CREATE DATABASE pwdb;";
        let mut psql = Command::new(format!("{PG_BIN}/psql"));
        psql.arg("-h").arg(&sock).args([
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
        ]);
        for statement in setup.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            psql.arg("-c").arg(statement);
        }
        let out = psql.output().unwrap();
        assert!(
            out.status.success(),
            "template setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        run(
            {
                let mut c = pg_cmd("pg_ctl");
                c.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]);
                c
            },
            "pg_ctl stop template",
        );
        data
    })
}

/// Removes the template and PKI directories of test processes that no longer run
/// (killed before their exit handler could clean up), stopping their servers first.
fn remove_dead_processes_dirs() {
    let Ok(entries) = std::fs::read_dir(ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("template-")
            .or_else(|| name.strip_prefix("pki-"))
        else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let data = entry.path().join("data");
        if data.join("postmaster.pid").exists() {
            let _ = pg_cmd("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Makes `addr` free for this process: a server left there by a test process that no
/// longer runs (killed before its exit handler) is stopped; one of a test process that
/// still runs (e.g. another test binary run in parallel) is waited for, up to 5 minutes.
fn claim_address(addr: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let mut busy = false;
        let Ok(entries) = std::fs::read_dir(ROOT) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(pid) = name.strip_suffix(&format!("-{addr}")) else {
                continue;
            };
            let alive =
                pid != std::process::id().to_string() && Path::new("/proc").join(pid).exists();
            if alive {
                busy = true;
                continue;
            }
            let data = entry.path().join("data");
            if data.join("postmaster.pid").exists() {
                let _ = pg_cmd("pg_ctl")
                    .arg("-D")
                    .arg(&data)
                    .args(["-m", "immediate", "-w", "stop"])
                    .output();
            }
            let _ = std::fs::remove_dir_all(entry.path());
        }
        if !busy || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

impl Server {
    pub fn start(spec: ServerSpec) -> Server {
        let template = template();
        claim_address(spec.addr);
        let dir = PathBuf::from(ROOT).join(format!("{}-{}", std::process::id(), spec.addr));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).unwrap();
        run(
            {
                let mut c = Command::new("cp");
                c.arg("-a").arg(template).arg(&data);
                c
            },
            "copy template",
        );
        let socket_dir = dir.join("sock");
        std::fs::create_dir_all(&socket_dir).unwrap();
        let mut conf = format!(
            "listen_addresses = '{}'\nport = 5432\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             shared_buffers = 16MB\nmax_connections = 60\nlog_connections = on\n\
             log_min_messages = info\npassword_encryption = 'scram-sha-256'\n",
            spec.addr,
            socket_dir.display()
        );
        if let Some(cert) = spec.cert {
            let pki = pki();
            for (src, dst) in [
                (format!("{cert}.crt"), "server.crt"),
                (format!("{cert}.key"), "server.key"),
                ("ca.crt".to_string(), "root.crt"),
                ("server.crl".to_string(), "root.crl"),
            ] {
                std::fs::copy(pki.path(&src), data.join(dst)).unwrap();
            }
            set_mode(&data.join("server.key"), 0o600);
            conf.push_str(
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
                 ssl_ca_file = 'root.crt'\nssl_crl_file = 'root.crl'\n",
            );
        } else {
            conf.push_str("ssl = off\n");
        }
        conf.push_str(&spec.conf);
        std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
        std::fs::write(data.join("pg_hba.conf"), &spec.hba).unwrap();
        std::fs::write(data.join("pg_ident.conf"), &spec.ident).unwrap();
        chown_postgres(&dir);
        let log = dir.join("server.log");
        RUNNING.lock().unwrap().push(data.clone());
        run(
            {
                let mut c = pg_cmd("pg_ctl");
                c.arg("-D")
                    .arg(&data)
                    .args(["-w", "-t", "60", "-l"])
                    .arg(&log)
                    .arg("start");
                c
            },
            &format!("pg_ctl start {}", spec.addr),
        );
        Server {
            addr: spec.addr.to_string(),
            data,
            socket_dir,
            log,
        }
    }

    /// Runs SQL as superuser over the unix socket; returns stdout (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(format!("{PG_BIN}/psql"))
            .arg("-h")
            .arg(&self.socket_dir)
            .args([
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-A",
                "-t",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// The server log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(&self) {
        let _ = pg_cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    pub fn restart(&self) {
        run(
            {
                let mut c = pg_cmd("pg_ctl");
                c.arg("-D")
                    .arg(&self.data)
                    .args(["-w", "-m", "fast", "-l"])
                    .arg(&self.log)
                    .arg("restart");
                c
            },
            "pg_ctl restart",
        );
    }
}

static SSL_SERVER: OnceLock<Server> = OnceLock::new();
static PLAIN_SERVER: OnceLock<Server> = OnceLock::new();

pub fn ssl_server() -> &'static Server {
    SSL_SERVER.get_or_init(|| Server::start(ServerSpec::new("127.0.0.2", Some("server"))))
}

pub fn plain_server() -> &'static Server {
    PLAIN_SERVER.get_or_init(|| Server::start(ServerSpec::new("127.0.0.3", None)))
}

const HOSTS: &str = "/etc/hosts";
const HOSTS_MARK: &str = "# pgdap-tests";

/// A fresh directory for a cluster a test manages itself (not through [`Server`]): a
/// server left running in `dir/data` by an earlier run is stopped with `pg_ctl` (run as
/// `postgres`), the directory is emptied and handed to `postgres`. Returns `dir/data`.
pub fn fresh_cluster_dir(dir: &Path, pg_ctl: &Path) -> PathBuf {
    let data = dir.join("data");
    if data.join("postmaster.pid").exists() {
        stop_cluster(pg_ctl, &data);
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    Command::new("chown")
        .arg("postgres")
        .arg(dir)
        .status()
        .unwrap();
    data
}

/// Stops the cluster in `data` at once (for exit handlers: errors are ignored) and removes
/// its directory, the parent of `data` ([`fresh_cluster_dir`]).
pub fn stop_cluster(pg_ctl: &Path, data: &Path) {
    let _ = as_postgres(pg_ctl)
        .arg("-D")
        .arg(data)
        .args(["-m", "immediate", "-w", "stop"])
        .output();
    if let Some(dir) = data.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Runs `pg_ctl -D data ARGS [-l log]` as `postgres` and asserts that it succeeded.
pub fn pg_ctl(pg_ctl: &Path, data: &Path, args: &[&str], log: Option<&Path>) {
    let mut cmd = as_postgres(pg_ctl);
    cmd.arg("-D").arg(data).args(args);
    if let Some(log) = log {
        cmd.arg("-l").arg(log);
    }
    run(cmd, &format!("pg_ctl {args:?} on {}", data.display()));
}

/// Makes `name` resolve to `addr` through /etc/hosts, in a line marked
/// `# pgdap-tests pid=<this process>`. The process removes its lines at exit; lines of
/// test processes that no longer run (killed runs) are removed first.
pub fn ensure_hosts(name: &str, addr: &str) {
    ensure_hosts_in(Path::new(HOSTS), name, addr);
    // Registered once, after the first line exists (the servers' handler may not run in a
    // process that starts none).
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(remove_own_hosts_at_exit);
    });
}

extern "C" fn remove_own_hosts_at_exit() {
    remove_hosts_lines(Path::new(HOSTS), |pid| pid == Some(std::process::id()));
}

/// [`ensure_hosts`] on any hosts file (tests of the harness use a copy).
pub fn ensure_hosts_in(hosts: &Path, name: &str, addr: &str) {
    let line = format!("{addr} {name} {HOSTS_MARK} pid={}", std::process::id());
    edit_hosts(hosts, |lines| {
        lines.retain(|l| !is_stale_hosts_line(l));
        if !lines.contains(&line) {
            lines.push(line.clone());
        }
    });
}

/// Removes the marked lines whose owner (`Some(pid)`, or `None` for lines of older
/// harness versions, which carried no pid) `remove` selects.
pub fn remove_hosts_lines(hosts: &Path, remove: impl Fn(Option<u32>) -> bool) {
    edit_hosts(hosts, |lines| {
        lines.retain(|l| hosts_line_owner(l).is_none_or(|owner| !remove(owner)));
    });
}

/// Removes this process's line for `name` from /etc/hosts, and no other: the other names
/// of the process are in use by its other tests.
pub fn remove_own_hosts_line(name: &str) {
    let me = std::process::id();
    edit_hosts(Path::new(HOSTS), |lines| {
        lines.retain(|l| {
            hosts_line_owner(l) != Some(Some(me)) || l.split_whitespace().nth(1) != Some(name)
        });
    });
}

/// `None`: not a harness line; `Some(None)`: a harness line without pid (older harness);
/// `Some(Some(pid))`: the line of test process `pid`.
fn hosts_line_owner(line: &str) -> Option<Option<u32>> {
    let (_, mark) = line.split_once(HOSTS_MARK)?;
    let mark = mark.trim();
    if mark.is_empty() {
        return Some(None);
    }
    Some(mark.strip_prefix("pid=").and_then(|p| p.parse().ok()))
}

/// A harness line of a process that no longer runs. Lines without pid (older harness
/// versions) are stale only when no other test process runs (one might still use them).
fn is_stale_hosts_line(line: &str) -> bool {
    match hosts_line_owner(line) {
        None => false,
        Some(Some(pid)) => !Path::new("/proc").join(pid.to_string()).exists(),
        Some(None) => !other_test_process_runs(),
    }
}

/// Whether another live process has a template, PKI or server directory under the
/// harness root.
fn other_test_process_runs() -> bool {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir(ROOT) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        let pid = name
            .strip_prefix("template-")
            .or_else(|| name.strip_prefix("pki-"))
            .or_else(|| name.split('-').next());
        pid.is_some_and(|p| {
            p != me && p.parse::<u32>().is_ok() && Path::new("/proc").join(p).exists()
        })
    })
}

/// The exclusive lock on harness edits of the hosts file, held until the returned file
/// is dropped (closed); `None` when the lock file cannot be opened. Other threads of this
/// process wait for it too (an `flock` per open file).
pub fn lock_hosts() -> Option<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let _ = std::fs::create_dir_all(ROOT);
    let lock_path = PathBuf::from(ROOT).join("hosts.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .ok()?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&lock_path, std::fs::Permissions::from_mode(0o666));
    unsafe {
        libc::flock(lock.as_raw_fd(), libc::LOCK_EX);
    }
    Some(lock)
}

/// Read-modify-write of the hosts file under an exclusive lock (test processes run in
/// parallel). Written in place, not renamed: /etc/hosts is a bind mount in containers.
fn edit_hosts(hosts: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let _lock = lock_hosts();
    let text = std::fs::read_to_string(hosts).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let before = lines.clone();
    edit(&mut lines);
    if lines != before {
        let mut out = lines.join("\n");
        out.push('\n');
        std::fs::write(hosts, out).unwrap_or_else(|e| {
            panic!("tests need /etc/hosts entries for *.pgdap.test (run as root): {e}")
        });
    }
    // The lock is released when `_lock` is dropped (closed).
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

/// A temporary per-user directory (`~/.postgresql` of one test case).
pub struct ClientHome {
    pub tmp: tempfile::TempDir,
    vars: BTreeMap<String, String>,
}

impl ClientHome {
    pub fn new() -> ClientHome {
        ClientHome {
            tmp: tempfile::tempdir().unwrap(),
            vars: BTreeMap::new(),
        }
    }

    /// The default directory (`<home>/.postgresql`, created).
    pub fn dir(&self) -> PathBuf {
        let d = self.tmp.path().join(".postgresql");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn home(&self) -> &Path {
        self.tmp.path()
    }

    /// Copies a PKI file into the default directory under `name`.
    pub fn put(&self, pki_name: &str, name: &str) -> PathBuf {
        let dst = self.dir().join(name);
        std::fs::copy(pki().path(pki_name), &dst).unwrap();
        if name.ends_with(".key") {
            set_mode(&dst, 0o600);
        }
        dst
    }

    /// Sets a PG* variable.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> ClientHome {
        self.vars.insert(name.to_string(), value.into());
        self
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_string(), value.into());
    }

    pub fn env(&self) -> pgdap::Environment {
        pgdap::Environment::from_pairs(self.vars.clone()).with_default_dir(self.dir())
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
}

pub fn access_point(server: &str, db: &str, user: &str, password: &str) -> pgdap::AccessPoint {
    pgdap::AccessPoint::parse(&format!(
        "dbengine=postgre\ndbserver={server}\ndbname={db}\nusername={user}\npassword={password}\n"
    ))
    .unwrap()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ssl,
    Plain,
    Fail(String),
}

impl Outcome {
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Ssl => "ssl",
            Outcome::Plain => "plain",
            Outcome::Fail(_) => "fail",
        }
    }

    pub fn error(&self) -> &str {
        match self {
            Outcome::Fail(e) => e,
            _ => "",
        }
    }
}

const SSL_QUERY: &str =
    "select coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false)";

/// Connects through pgdap, checks that the session's own view of encryption agrees with
/// the server's (`pg_stat_ssl`), and classifies the outcome.
pub async fn pgdap_outcome(ap: &pgdap::AccessPoint, env: &pgdap::Environment) -> Outcome {
    let config = match pgdap::Config::new(ap.clone(), env) {
        Ok(c) => c.with_options(pgdap::ConnectOptions {
            connect_timeout: std::time::Duration::from_secs(10),
            ..Default::default()
        }),
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let connector = match pgdap::Connector::new(config) {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    match connector.connect_spawned().await {
        Ok(session) => {
            let ssl: bool = session
                .client
                .query_one(SSL_QUERY, &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(
                ssl,
                session.tls.is_some(),
                "pgdap's view of SSL disagrees with the server"
            );
            if ssl {
                Outcome::Ssl
            } else {
                Outcome::Plain
            }
        }
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

/// Runs the same case through psql (the libpq of [`PG_BIN`]): the Access Point and our variables mapped
/// onto libpq's (PGSSLMODE, PGSSLROOTCERT, ... with the paths pgdap resolved, so both read
/// the same files; PGSSLSNI passes through). `PGAUTH=cert` maps to no password and, as
/// SPEC §4 requires, allow/prefer to require.
pub fn psql_outcome(ap: &pgdap::AccessPoint, env: &pgdap::Environment, home: &Path) -> Outcome {
    let settings = match pgdap::Settings::resolve(env, env.default_dir()) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(format!("configuration: {e}")),
    };
    let cert_auth = settings.auth.value == pgdap::AuthMethod::Cert;
    let mode = match (settings.mode.value, cert_auth) {
        (pgdap::SslMode::Allow | pgdap::SslMode::Prefer, true) => "require",
        (m, _) => m.as_str(),
    };
    let mut cmd = Command::new(format!("{PG_BIN}/psql"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("PGHOST", ap.server())
        .env("PGPORT", "5432")
        .env("PGUSER", ap.username())
        .env("PGDATABASE", ap.dbname())
        .env("PGSSLMODE", mode)
        .env("PGSSLROOTCERT", &settings.root_ca.value)
        .env("PGSSLCERT", &settings.cert.value)
        .env("PGSSLKEY", &settings.key.value)
        .env("PGSSLCRL", &settings.crl.value)
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-X", "-A", "-t", "-w", "-c", SSL_QUERY]);
    // libpq's own variables without a vendor twin, which pgdap honours by the same name.
    for var in ["PGSSLSNI"] {
        if let Some(value) = env.get(var) {
            cmd.env(var, value);
        }
    }
    if !cert_auth && !ap.password().is_empty() {
        cmd.env("PGPASSWORD", ap.password().expose());
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Outcome::Fail(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    match String::from_utf8_lossy(&out.stdout).trim() {
        "t" => Outcome::Ssl,
        "f" => Outcome::Plain,
        other => Outcome::Fail(format!("unexpected psql output {other:?}")),
    }
}

/// The name libtest gives the test function `name` of the module `module_path`
/// (`module_path!()`): the module path without the crate, e.g. `harness::hosts_child`.
/// A test that runs its test binary as a child selects the child's test with it
/// (`--exact`): test names carry the module since the test binaries became modules of one.
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

/// The path of an example binary of this crate, building it first if this test run did
/// not (`cargo test --test server` builds only that test).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example {name}");
    }
    path
}
