//! Reliability: bad input gets a clear error naming the file or variable (and no panic or
//! hang), faulty servers give errors (never a hang, never a plaintext session under
//! `PGAUTH=cert`), and a pool recovers from a server restart.
//!
//! Addresses: 127.0.0.60 silent peer, .62 fault-injecting fake server, .65 a real server
//! killed during queries, .66 a real server restarted under a pool (.61: `tests/process_wide/load.rs`).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{
    self, access_point, pki, psql_outcome, ssl_server, ClientHome, Outcome, Server, ServerSpec,
};
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

fn connector(ap: pgdap::AccessPoint, home: &ClientHome) -> pgdap::Result<pgdap::Connector> {
    pgdap::Connector::new(pgdap::Config::new(ap, &home.env())?.with_options(
        pgdap::ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            ..Default::default()
        },
    ))
}

fn ssl_ap() -> pgdap::AccessPoint {
    access_point(&ssl_server().addr, "appdb", "scram_user", "scram-pw")
}

/// Runs `f` on a thread and fails the test if it has not returned within `limit`
/// (a hang on a FIFO or a huge file would otherwise hang the whole test run).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Asserts a `BadFile` error for `var` naming `path`, and returns its message.
fn assert_bad_file(result: pgdap::Result<pgdap::Connector>, var: &str, path: &Path) -> String {
    let err = result.expect_err("an error");
    let text = err.to_string();
    match &err {
        pgdap::Error::BadFile {
            var: v, path: p, ..
        } => {
            assert_eq!((*v, p.as_path()), (var, path), "{text}");
        }
        other => panic!("expected BadFile for {var}, got {other:?}"),
    }
    assert!(text.contains(var), "{text}");
    assert!(text.contains(&*path.to_string_lossy()), "{text}");
    text
}

// ---------------------------------------------------------------------------------------
// Access Point files
// ---------------------------------------------------------------------------------------

#[test]
fn access_point_file_that_is_not_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dap.cfg");
    std::fs::write(
        &path,
        b"dbengine=postgre\ndbserver=h\ndbname=caf\xe9\nusername=u\n",
    )
    .unwrap();
    let err = pgdap::AccessPoint::from_file(&path).unwrap_err();
    assert!(
        matches!(err, pgdap::Error::AccessPointNotUtf8 { line: 3 }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "Access Point line 3: not UTF-8 text");
    // UTF-16 (what some Windows editors save) and binary garbage: errors, no panic.
    let utf16: Vec<u8> = "\u{feff}dbengine=postgre\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for (i, bytes) in [utf16, garbage(4096, 1), garbage(100, 2), vec![0; 64]]
        .into_iter()
        .enumerate()
    {
        std::fs::write(&path, &bytes).unwrap();
        let err = pgdap::AccessPoint::from_file(&path).unwrap_err();
        assert!(err.to_string().starts_with("Access Point"), "{i}: {err}");
    }
}

#[test]
fn huge_access_point_files_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.cfg");
    // 100 MB, sparse: only the first 64 KiB + 1 byte may be read.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(100 * 1024 * 1024).unwrap();
    drop(file);
    for target in [
        path.clone(),
        PathBuf::from("/dev/zero"),
        PathBuf::from("/dev/urandom"),
    ] {
        let start = Instant::now();
        let shown = target.clone();
        let err = within(Duration::from_secs(10), move || {
            pgdap::AccessPoint::from_file(&target).unwrap_err()
        });
        assert!(
            matches!(&err, pgdap::Error::AccessPointTooLarge { path, limit: 65536 } if *path == shown),
            "{err:?}"
        );
        assert!(err.to_string().contains(&*shown.to_string_lossy()), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
    // Exactly at the cap is still parsed (and then refused for its content).
    std::fs::write(
        &path,
        vec![b'#'; pgdap::access_point::MAX_FILE_SIZE as usize],
    )
    .unwrap();
    let err = pgdap::AccessPoint::from_file(&path).unwrap_err();
    assert!(
        matches!(
            err,
            pgdap::Error::MissingKey {
                key: "dbengine",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn access_point_path_that_is_a_directory_or_a_dangling_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let dangling = dir.path().join("dap.cfg");
    std::os::unix::fs::symlink(dir.path().join("gone.cfg"), &dangling).unwrap();
    for path in [dir.path().to_path_buf(), dangling] {
        let err = pgdap::AccessPoint::from_file(&path).unwrap_err();
        assert!(
            matches!(err, pgdap::Error::AccessPointRead { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "could not read Access Point file \"{}\"",
                path.display()
            )),
            "{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Certificate, key and CRL files
// ---------------------------------------------------------------------------------------

/// The four files, their variables and what must exist besides each for it to be read.
const ROLES: [(&str, &str); 4] = [
    ("PGROOTCA", "root.crt"),
    ("PGCRL", "postgresql.crl"),
    ("PGCERT", "postgresql.crt"),
    ("PGKEY", "postgresql.key"),
];

/// A home where every file is valid except `role`'s, which `make` creates.
fn home_with_bad(role: usize, make: impl FnOnce(&Path)) -> (ClientHome, PathBuf) {
    let home = ClientHome::new().var("PGMODE", "verify-ca");
    let valid = ["ca.crt", "empty.crl", "alice.crt", "alice.key"];
    for (i, (_, name)) in ROLES.iter().enumerate() {
        if i != role {
            home.put(valid[i], name);
        }
    }
    let path = home.dir().join(ROLES[role].1);
    make(&path);
    (home, path)
}

#[test]
fn binary_garbage_where_a_certificate_key_or_crl_should_be() {
    // The key label is spelt in parts so that scans for committed keys do not flag it.
    let pem_garbage: &[u8] = &[
        &b"-----BEGIN CERTIFICATE-----\n\x00\xff\x10garbage\n-----END CERTIFICATE-----\n\
        -----BEGIN X509 CRL-----\nnot base64 !!\n-----END X509 CRL-----\n"[..],
        concat!(
            "-----BEGIN ",
            "PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .as_bytes(),
    ]
    .concat();
    for (role, (var, _)) in ROLES.iter().enumerate() {
        for (seed, bytes) in [
            (1, garbage(3000, 7 + role as u64)),
            (2, pem_garbage.to_vec()),
            (3, garbage(20, 99)),
        ] {
            let (home, path) = home_with_bad(role, |p| {
                std::fs::write(p, &bytes).unwrap();
                common::set_mode(p, 0o600);
            });
            let text = assert_bad_file(connector(ssl_ap(), &home), var, &path);
            assert!(
                !text.contains("BEGIN PRIVATE KEY"),
                "{seed}: key material in {text}"
            );
        }
    }
}

#[test]
fn oversized_certificate_file_is_refused_unread() {
    let (home, path) = home_with_bad(0, |p| {
        let f = std::fs::File::create(p).unwrap();
        f.set_len(100 * 1024 * 1024).unwrap();
    });
    let start = Instant::now();
    let text = assert_bad_file(connector(ssl_ap(), &home), "PGROOTCA", &path);
    assert!(text.contains("larger than"), "{text}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn directory_where_a_file_should_be() {
    for (role, (var, _)) in ROLES.iter().enumerate() {
        let (home, path) = home_with_bad(role, |p| std::fs::create_dir(p).unwrap());
        let text = assert_bad_file(connector(ssl_ap(), &home), var, &path);
        assert!(text.contains("not a regular file"), "{text}");
    }
}

#[tokio::test]
async fn directory_as_root_ca_fails_like_psql() {
    let (home, _) = home_with_bad(0, |p| std::fs::create_dir(p).unwrap());
    let home = home.var("PGMODE", "require");
    let ours = common::pgdap_outcome(&ssl_ap(), &home.env()).await;
    let libpq = psql_outcome(&ssl_ap(), &home.env(), home.home());
    assert_eq!(
        (ours.class(), libpq.class()),
        ("fail", "fail"),
        "{ours:?} {libpq:?}"
    );
    assert!(ours.error().contains("PGROOTCA"), "{ours:?}");
}

#[tokio::test]
async fn dangling_symlinks_count_as_absent_as_in_libpq() {
    let dangle = |p: &Path| std::os::unix::fs::symlink(p.with_extension("gone"), p).unwrap();
    let ap = ssl_ap();

    // Root CA: absent. require connects unverified (psql too); verify-ca is libpq's error.
    let (home, root) = home_with_bad(0, dangle);
    let home = home.var("PGMODE", "require");
    let c = connector(ap.clone(), &home).unwrap();
    let ctx = c.tls_context().unwrap();
    assert_eq!(ctx.policy().root_ca, None);
    let session = c.connect_spawned().await.unwrap();
    assert!(!session.tls.as_ref().unwrap().verified);
    assert_eq!(psql_outcome(&ap, &home.env(), home.home()), Outcome::Ssl);
    let home = home.var("PGMODE", "verify-ca");
    let err = connector(ap.clone(), &home).err().unwrap();
    assert!(
        matches!(&err, pgdap::Error::RootCertMissing { path } if *path == root),
        "{err:?}"
    );
    let libpq = psql_outcome(&ap, &home.env(), home.home());
    assert!(libpq.error().contains("does not exist"), "{libpq:?}");
    assert!(err.to_string().contains(&format!(
        "root certificate file \"{}\" does not exist",
        root.display()
    )));

    // A symlink loop cannot be stat'ed either.
    let home = ClientHome::new().var("PGMODE", "verify-full");
    let a = home.dir().join("root.crt");
    std::os::unix::fs::symlink(home.dir().join("loop"), &a).unwrap();
    std::os::unix::fs::symlink(&a, home.dir().join("loop")).unwrap();
    assert!(matches!(
        connector(ap.clone(), &home).err().unwrap(),
        pgdap::Error::RootCertMissing { .. }
    ));

    // CRL: absent, the connection is verified without one.
    let (home, _) = home_with_bad(1, dangle);
    let c = connector(ap.clone(), &home).unwrap();
    assert_eq!(c.tls_context().unwrap().policy().crl, None);
    assert!(c.connect_spawned().await.unwrap().tls.unwrap().verified);

    // Client certificate: absent, none is sent; under PGAUTH=cert that is an error.
    let (home, cert) = home_with_bad(2, dangle);
    let c = connector(ap.clone(), &home).unwrap();
    assert_eq!(c.tls_context().unwrap().policy().client_cert, None);
    let home = home.var("PGAUTH", "cert");
    let err = connector(
        access_point(&ssl_server().addr, "certdb", "alice", ""),
        &home,
    )
    .err()
    .unwrap();
    assert!(
        matches!(&err, pgdap::Error::CertAuthWithoutCertificate { path } if *path == cert),
        "{err:?}"
    );

    // Key: absent while the certificate exists is libpq's error, psql agrees.
    let (home, key) = home_with_bad(3, dangle);
    let home = home.var("PGMODE", "require");
    let err = connector(ap.clone(), &home).err().unwrap();
    assert!(
        matches!(&err, pgdap::Error::ClientKeyMissing { path } if *path == key),
        "{err:?}"
    );
    let phrase = format!(
        "certificate present, but not private key file \"{}\"",
        key.display()
    );
    assert!(err.to_string().contains(&phrase), "{err}");
    let libpq = psql_outcome(&ap, &home.env(), home.home());
    assert!(libpq.error().contains(&phrase), "{libpq:?}");
}

#[test]
fn unreadable_key_file_is_a_clear_error_not_a_hang() {
    // A FIFO (opening it for reading would block until a writer comes), a device and a
    // directory: none is a key file.
    for make in [
        mkfifo as fn(&Path),
        |p: &Path| std::os::unix::fs::symlink("/dev/null", p).unwrap(),
        |p: &Path| std::fs::create_dir(p).unwrap(),
    ] {
        let (home, path) = home_with_bad(3, make);
        let shown = path.clone();
        let text = within(Duration::from_secs(10), move || {
            assert_bad_file(connector(ssl_ap(), &home), "PGKEY", &shown)
        });
        assert!(text.contains("not a regular file"), "{text}");
    }
    // The same for the certificate, root CA and CRL.
    for (role, &(var, _)) in ROLES.iter().enumerate().take(3) {
        let (home, path) = home_with_bad(role, mkfifo);
        let text = within(Duration::from_secs(10), move || {
            assert_bad_file(connector(ssl_ap(), &home), var, &path)
        });
        assert!(text.contains("not a regular file"), "{text}");
    }
    // Permission bits stop every user but root.
    if !is_root() {
        let (home, path) = home_with_bad(3, |p| {
            std::fs::copy(pki().path("alice.key"), p).unwrap();
            common::set_mode(p, 0o000);
        });
        let text = assert_bad_file(connector(ssl_ap(), &home), "PGKEY", &path);
        assert!(text.contains("ermission denied"), "{text}");
    }
}

#[tokio::test]
async fn empty_root_ca_file_is_an_error_in_every_ssl_mode() {
    for mode in ["allow", "prefer", "require", "verify-ca", "verify-full"] {
        let (home, path) = home_with_bad(0, |p| std::fs::write(p, b"").unwrap());
        let home = home.var("PGMODE", mode);
        let text = assert_bad_file(connector(ssl_ap(), &home), "PGROOTCA", &path);
        assert!(text.contains("no PEM certificate"), "{mode}: {text}");
        if mode == "require" {
            // libpq refuses it too ("no certificate or crl found").
            let libpq = psql_outcome(&ssl_ap(), &home.env(), home.home());
            assert_eq!(libpq.class(), "fail", "{libpq:?}");
        }
    }
}

#[test]
fn client_certificate_openssl_refuses_names_pgcert() {
    // A parsable certificate OpenSSL will not use at its default security level (RSA
    // 1024): the error names the file, as libpq's does.
    let ca_cert =
        openssl::x509::X509::from_pem(&std::fs::read(pki().path("ca.crt")).unwrap()).unwrap();
    let ca_key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(pki().path("ca.key")).unwrap())
            .unwrap();
    let ca = common::Issued {
        cert: ca_cert,
        key: ca_key,
    };
    let weak = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
    let issued = common::issue("alice", weak, Some(&ca), &[], false, false);
    let home = ClientHome::new().var("PGMODE", "require");
    let cert = home.dir().join("postgresql.crt");
    std::fs::write(&cert, issued.cert.to_pem().unwrap()).unwrap();
    common::write_key(
        &home.dir().join("postgresql.key"),
        &issued.key.private_key_to_pem_pkcs8().unwrap(),
    );
    let text = assert_bad_file(connector(ssl_ap(), &home), "PGCERT", &cert);
    assert!(text.contains("too small"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Environment values
// ---------------------------------------------------------------------------------------

#[test]
fn environment_values_with_nul_or_line_breaks_name_the_variable() {
    let dir = Some(Path::new("/home/op/.postgresql"));
    for var in ["PGMODE", "PGAUTH", "PGROOTCA", "PGCERT", "PGKEY", "PGCRL"] {
        for value in [
            "require\0",
            "verify-full\n",
            "a\0b",
            "x\ny",
            "cert\r\n",
            "\0",
        ] {
            let env = pgdap::Environment::from_pairs([(var, value)]);
            let err = pgdap::Settings::resolve(&env, dir).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err,
                    pgdap::Error::InvalidEnv { var: v, .. } | pgdap::Error::InvalidPath { var: v, .. }
                    if *v == var),
                "{var}={value:?}: {err:?}"
            );
            assert!(text.contains(var), "{text}");
            // The raw control character never reaches the message (it could forge log lines).
            assert!(!text.contains(['\0', '\n', '\r']), "{text:?}");
        }
    }
    // PGCLIENTENCODING is matched as PostgreSQL matches encoding names (every character
    // but ASCII letters and digits ignored), so "UTF8\n" is UTF8; nothing else is
    // accepted, and a refusal names the variable without the raw characters.
    for (value, expected) in [
        ("UTF8\n", Some("UTF8")),
        ("Win\u{0}1252", Some("WIN1252")),
        ("\0", None),
        ("\n\r", None),
    ] {
        let env = pgdap::Environment::from_pairs([("PGCLIENTENCODING", value)]);
        match (pgdap::Settings::resolve(&env, dir), expected) {
            (Ok(s), Some(name)) => assert_eq!(s.encoding.value.name(), name),
            (Err(e @ pgdap::Error::UnknownEncoding { .. }), None) => {
                let text = e.to_string();
                assert!(text.contains("PGCLIENTENCODING"), "{text}");
                assert!(!text.contains(['\0', '\n', '\r']), "{text:?}");
            }
            (other, _) => panic!("{value:?}: {other:?}"),
        }
    }
}

/// Child half of `non_unicode_path_in_the_process_environment_is_refused` (run in a
/// process of its own, with the environment prepared by the parent).
#[test]
#[ignore = "run by non_unicode_path_in_the_process_environment_is_refused"]
fn child_non_unicode_path() {
    if std::env::var_os("PGDAP_TEST_CHILD").is_none() {
        return; // only meaningful in the environment the parent prepares
    }
    let env = pgdap::Environment::from_process_env();
    let err = pgdap::Settings::resolve(&env, Some(Path::new("/tmp")))
        .map(|s| s.root_ca.value)
        .unwrap_err();
    assert!(
        matches!(
            err,
            pgdap::Error::InvalidPath {
                var: "PGROOTCA",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("not valid Unicode"), "{err}");
    println!("CHILD-OK");
}

#[test]
fn non_unicode_path_in_the_process_environment_is_refused() {
    // PGROOTCA names an existing CA file whose name is not UTF-8. pgdap's environment is
    // text, so the name cannot be kept; treating the mangled name as absent would quietly
    // turn verification off under prefer/require. It must be an error naming PGROOTCA.
    use std::os::unix::ffi::OsStrExt;
    let home = ClientHome::new();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.crt");
    let path = home.dir().join(name);
    std::fs::copy(pki().path("ca.crt"), &path).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &common::test_name(module_path!(), "child_non_unicode_path"),
            "--ignored",
            "--nocapture",
        ])
        .env("PGDAP_TEST_CHILD", "1")
        .env("PGROOTCA", &path)
        .env("PGMODE", "require")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Faulty servers
// ---------------------------------------------------------------------------------------

const SILENT: &str = "127.0.0.60";
const FAKE: &str = "127.0.0.62";

fn cert_home(mode: &str, auth: &str) -> ClientHome {
    let home = ClientHome::new().var("PGMODE", mode).var("PGAUTH", auth);
    home.put("alice.crt", "postgresql.crt");
    home.put("alice.key", "postgresql.key");
    home
}

#[tokio::test]
async fn silent_peer_times_out_in_every_mode_and_through_the_pool() {
    // Accepts and never answers; counts the attempts.
    let peer = common::SilentPeer::start(SILENT);
    let timeout = Duration::from_millis(600);
    let options = pgdap::ConnectOptions {
        connect_timeout: timeout,
        ..Default::default()
    };
    for mode in ["disable", "allow", "prefer", "require"] {
        for auth in ["password", "cert"] {
            if (mode, auth) == ("disable", "cert") {
                continue;
            }
            let home = cert_home(mode, auth);
            let config =
                pgdap::Config::new(access_point(SILENT, "appdb", "alice", "pw"), &home.env())
                    .unwrap()
                    .with_options(options.clone());
            let before = peer.mark();
            let err = tokio::time::timeout(
                Duration::from_secs(10),
                pgdap::Connector::new(config.clone()).unwrap().connect(),
            )
            .await
            .expect("connect hung past its timeout")
            .err()
            .unwrap();
            // One attempt: a timeout is not a reason for allow/prefer to try again (so
            // the error is the attempt's own, not a RetryFailed of two).
            assert!(
                matches!(err, pgdap::Error::Timeout { .. }),
                "{mode}/{auth}: {err:?}"
            );
            assert_eq!(
                peer.attempts_since(before).await,
                1,
                "{mode}/{auth}: attempts"
            );
            let before = peer.mark();
            let pool = pgdap::Pool::from_config(
                config,
                pgdap::PoolOptions {
                    max_size: 2,
                    ..Default::default()
                },
            )
            .unwrap();
            let err = tokio::time::timeout(Duration::from_secs(10), pool.get())
                .await
                .expect("pool checkout hung")
                .err()
                .unwrap();
            assert!(err.to_string().contains("timeout expired"), "{err}");
            assert_eq!(
                peer.attempts_since(before).await,
                1,
                "{mode}/{auth}: pool attempts"
            );
        }
    }
}

/// What the fake server at 127.0.0.62 does. A plaintext startup is always answered as a
/// trusting PostgreSQL would (authentication OK, one-row answers to queries), so that any
/// fallback to plaintext shows as a working plaintext session.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Answers the SSLRequest with these bytes and closes.
    SslReply(&'static [u8]),
    /// Answers the SSLRequest with these bytes, then serves plaintext on the same socket.
    SslReplyThenPlain(&'static [u8]),
    /// Answers 'S', reads the ClientHello and closes.
    CloseInHandshake,
    /// Completes the TLS handshake, reads the startup packet, asks for SCRAM
    /// (AuthenticationSASL) and closes.
    CloseMidAuth,
    /// Completes the TLS handshake, reads the startup packet, sends a FATAL error.
    ErrorWhileEncrypted,
}

struct FakeServer {
    fault: Arc<Mutex<Fault>>,
}

static FAKE_SERVER: OnceLock<FakeServer> = OnceLock::new();
/// The fault matrix test and the garbage-reply test share the fake; one at a time.
static FAKE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn fake_server() -> &'static FakeServer {
    FAKE_SERVER.get_or_init(|| {
        let fault = Arc::new(Mutex::new(Fault::CloseInHandshake));
        let shared = fault.clone();
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        acceptor
            .set_certificate_chain_file(pki().path("server.crt"))
            .unwrap();
        acceptor
            .set_private_key_file(pki().path("server.key"), SslFiletype::PEM)
            .unwrap();
        let acceptor = Arc::new(acceptor.build());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind((FAKE, 5432)).await.unwrap();
                ready_tx.send(()).unwrap();
                loop {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let fault = *shared.lock().unwrap();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let _ = serve(tcp, fault, &acceptor).await;
                    });
                }
            });
        });
        ready_rx.recv().unwrap();
        FakeServer { fault }
    })
}

const SSL_REQUEST: u32 = 80877103;
const GSSENC_REQUEST: u32 = 80877104;

async fn read_packet<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let len = s.read_u32().await? as usize;
    if !(4..=100_000).contains(&len) {
        return Err(std::io::Error::other("bad length"));
    }
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await?;
    Ok(body)
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn fatal(text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "28000"),
        (b'M', text),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    message(b'E', &body)
}

async fn serve(
    mut tcp: tokio::net::TcpStream,
    fault: Fault,
    acceptor: &SslAcceptor,
) -> std::io::Result<()> {
    loop {
        let first = read_packet(&mut tcp).await?;
        let code = u32::from_be_bytes(first[..4].try_into().unwrap());
        match code {
            GSSENC_REQUEST => tcp.write_all(b"N").await?,
            SSL_REQUEST => break,
            _ => return serve_plain(tcp).await,
        }
    }
    match fault {
        Fault::SslReply(bytes) => {
            tcp.write_all(bytes).await?;
            tcp.flush().await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        }
        Fault::SslReplyThenPlain(bytes) => {
            tcp.write_all(bytes).await?;
            let _startup = read_packet(&mut tcp).await?;
            serve_plain(tcp).await
        }
        Fault::CloseInHandshake => {
            tcp.write_all(b"S").await?;
            let mut hello = [0u8; 5];
            tcp.read_exact(&mut hello).await?;
            Ok(())
        }
        Fault::CloseMidAuth | Fault::ErrorWhileEncrypted => {
            tcp.write_all(b"S").await?;
            let ssl = Ssl::new(acceptor.context()).map_err(std::io::Error::other)?;
            let mut tls = tokio_openssl::SslStream::new(ssl, tcp).map_err(std::io::Error::other)?;
            Pin::new(&mut tls)
                .accept()
                .await
                .map_err(std::io::Error::other)?;
            let _startup = read_packet(&mut tls).await?;
            let reply = if matches!(fault, Fault::CloseMidAuth) {
                let mut body = 10u32.to_be_bytes().to_vec();
                body.extend_from_slice(b"SCRAM-SHA-256\0\0");
                message(b'R', &body)
            } else {
                fatal("no pg_hba.conf entry (fault injected)")
            };
            tls.write_all(&reply).await?;
            tls.flush().await?;
            // Close without close_notify, as a crashed backend would.
            Ok(())
        }
    }
}

/// A trusting plaintext server: authentication OK, every query answered with one row
/// holding `f` (psql's "is this SSL?" query reads it as plaintext).
async fn serve_plain<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> std::io::Result<()> {
    let mut out = message(b'R', &0u32.to_be_bytes());
    for (name, value) in [
        ("server_version", "15.0"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
    ] {
        out.extend(message(b'S', format!("{name}\0{value}\0").as_bytes()));
    }
    out.extend(message(b'K', &[0, 0, 0, 1, 0, 0, 0, 2]));
    out.extend(message(b'Z', b"I"));
    s.write_all(&out).await?;
    loop {
        let tag = s.read_u8().await?;
        let len = s.read_u32().await? as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        s.read_exact(&mut body).await?;
        match tag {
            b'Q' => {
                let mut row = Vec::new();
                row.extend_from_slice(&1u16.to_be_bytes());
                row.extend_from_slice(b"ssl\0");
                row.extend_from_slice(&0u32.to_be_bytes());
                row.extend_from_slice(&0u16.to_be_bytes());
                row.extend_from_slice(&16u32.to_be_bytes()); // bool
                row.extend_from_slice(&1i16.to_be_bytes());
                row.extend_from_slice(&(-1i32).to_be_bytes());
                row.extend_from_slice(&0u16.to_be_bytes());
                let mut out = message(b'T', &row);
                out.extend(message(b'D', &[0, 1, 0, 0, 0, 1, b'f']));
                out.extend(message(b'C', b"SELECT 1\0"));
                out.extend(message(b'Z', b"I"));
                s.write_all(&out).await?;
            }
            b'X' => return Ok(()),
            _ => {}
        }
    }
}

/// Connects through pgdap (no session set-up queries) and classifies the outcome.
async fn pgdap_class(ap: &pgdap::AccessPoint, home: &ClientHome) -> Outcome {
    let connector = match connector(ap.clone(), home) {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    match tokio::time::timeout(Duration::from_secs(15), connector.connect()).await {
        Err(_) => panic!("connect hung"),
        Ok(Err(e)) => Outcome::Fail(e.to_string()),
        Ok(Ok(connected)) => {
            let ssl = connected.tls.is_some();
            let task = tokio::spawn(connected.connection);
            drop(connected.client);
            let _ = task.await;
            if ssl {
                Outcome::Ssl
            } else {
                Outcome::Plain
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_servers_fail_like_psql_and_never_downgrade_cert_auth() {
    let fake = fake_server();
    let _one_at_a_time = FAKE_LOCK.lock().await;
    let faults = [
        Fault::CloseInHandshake,
        Fault::CloseMidAuth,
        Fault::ErrorWhileEncrypted,
        Fault::SslReply(b""),
        Fault::SslReply(b"X"),
        Fault::SslReply(b"\x00\xff garbage \x01\x02"),
        Fault::SslReply(b"E\x00\x00\x00\x2aSFATAL\x00C53300\x00Msorry, too many clients\x00\x00"),
        Fault::SslReplyThenPlain(b"X"),
    ];
    let mut table = Vec::new();
    for fault in faults {
        *fake.fault.lock().unwrap() = fault;
        for mode in ["disable", "allow", "prefer", "require"] {
            for auth in ["password", "cert"] {
                if (mode, auth) == ("disable", "cert") {
                    continue;
                }
                let home = cert_home(mode, auth);
                let ap = access_point(FAKE, "appdb", "alice", "pw");
                let ours = pgdap_class(&ap, &home).await;
                let libpq =
                    tokio::task::block_in_place(|| psql_outcome(&ap, &home.env(), home.home()));
                table.push(format!(
                    "{fault:?} {mode}/{auth}: pgdap {ours:?}, psql {libpq:?}"
                ));
                if auth == "cert" {
                    assert_ne!(
                        ours,
                        Outcome::Plain,
                        "{fault:?} {mode}/cert downgraded to plaintext"
                    );
                }
                assert_eq!(
                    ours.class(),
                    libpq.class(),
                    "{fault:?} {mode}/{auth}: pgdap {ours:?} but psql {libpq:?}"
                );
            }
        }
    }
    // The fake really serves plaintext: these rows show it (and so that the assertions
    // above could fail).
    assert!(
        table.iter().any(|r| r.contains("pgdap Plain")),
        "{table:#?}"
    );
    println!("{}", table.join("\n"));
}

/// libpq refuses a reply to the SSLRequest that is neither 'S', 'N' nor an error
/// ("received invalid response to SSL negotiation: X"), also under prefer (no plaintext
/// retry). tokio-postgres alone reads any byte but 'S' as 'N'; pgdap's own socket
/// ([`pgdap::connect::Wire`]) sees the reply byte and fails as libpq does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_ssl_reply_under_prefer_fails_like_libpq() {
    let fake = fake_server();
    let _one_at_a_time = FAKE_LOCK.lock().await;
    *fake.fault.lock().unwrap() = Fault::SslReplyThenPlain(b"X");
    let home = cert_home("prefer", "password");
    let ap = access_point(FAKE, "appdb", "alice", "pw");
    let libpq = tokio::task::block_in_place(|| psql_outcome(&ap, &home.env(), home.home()));
    assert!(
        libpq
            .error()
            .contains("received invalid response to SSL negotiation: X"),
        "{libpq:?}"
    );
    let ours = pgdap_class(&ap, &home).await;
    assert_eq!(ours.class(), "fail", "{ours:?}");
    assert!(
        ours.error()
            .contains("received invalid response to SSL negotiation: X"),
        "{ours:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Real servers going away
// ---------------------------------------------------------------------------------------

static KILLED_SERVER: OnceLock<Server> = OnceLock::new();
static RESTARTED_SERVER: OnceLock<Server> = OnceLock::new();

/// verify-ca against the PKI's CA (the server certificate names 127.0.0.2, so not
/// verify-full), password authentication.
fn verified_home() -> ClientHome {
    let home = ClientHome::new().var("PGMODE", "verify-ca");
    home.put("ca.crt", "root.crt");
    home
}

async fn wait_for_query(server: &'static Server, pattern: &'static str) {
    let sql = format!(
        "select count(*) from pg_stat_activity where query like '{pattern}%' and state = 'active'"
    );
    for _ in 0..100 {
        let sql = sql.clone();
        let n = tokio::task::spawn_blocking(move || server.psql("postgres", &sql))
            .await
            .unwrap();
        if n == "1" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("query {pattern} never showed up in pg_stat_activity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_a_query_gives_an_error_not_a_hang() {
    let server =
        KILLED_SERVER.get_or_init(|| Server::start(ServerSpec::new("127.0.0.65", Some("server"))));
    let home = verified_home();
    let ap = access_point(&server.addr, "appdb", "scram_user", "scram-pw");
    let connector = connector(ap, &home).unwrap();

    // 1. The backend is terminated (pg_terminate_backend) during a query.
    let session = connector.connect_spawned().await.unwrap();
    let query = tokio::spawn(async move {
        let result = session
            .client
            .simple_query("select pg_sleep(60) -- terminated")
            .await;
        (result, session)
    });
    wait_for_query(server, "select pg_sleep(60) -- terminated").await;
    server.psql(
        "postgres",
        "select pg_terminate_backend(pid) from pg_stat_activity where query like 'select pg_sleep(60) -- terminated%'",
    );
    let (result, session) = tokio::time::timeout(Duration::from_secs(10), query)
        .await
        .expect("the query hung after its backend was terminated")
        .unwrap();
    let err = result.unwrap_err();
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("57P01"),
        "{err:?}"
    );
    // The session is dead and says so; the next query fails at once.
    let again = tokio::time::timeout(
        Duration::from_secs(5),
        session.client.simple_query("select 1"),
    )
    .await
    .expect("a query on a dead session hung");
    assert!(again.is_err());
    assert!(session.client.is_closed());

    // 2. The whole server is killed (immediate shutdown) during a query.
    let session = connector.connect_spawned().await.unwrap();
    let query = tokio::spawn(async move {
        session
            .client
            .simple_query("select pg_sleep(60) -- killed")
            .await
            .map(|_| ())
    });
    wait_for_query(server, "select pg_sleep(60) -- killed").await;
    let stopped = tokio::task::spawn_blocking(move || server.stop());
    let result = tokio::time::timeout(Duration::from_secs(15), query)
        .await
        .expect("the query hung after the server was killed")
        .unwrap();
    assert!(result.is_err(), "{result:?}");
    stopped.await.unwrap();

    // 3. While it is down a new connection is refused at once, with the host named.
    let start = Instant::now();
    let err = connector.connect().await.err().unwrap();
    assert!(
        matches!(err.last_attempt(), pgdap::Error::Connect { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("127.0.0.65"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    // 4. Back up: the same connector connects again (verified TLS).
    tokio::task::spawn_blocking(move || server.restart())
        .await
        .unwrap();
    let session = connector.connect_spawned().await.unwrap();
    assert!(session.tls.as_ref().unwrap().verified);
    session.client.simple_query("select 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_discards_dead_connections_across_a_server_restart() {
    let server = RESTARTED_SERVER
        .get_or_init(|| Server::start(ServerSpec::new("127.0.0.66", Some("server"))));
    let home = verified_home();
    let ap = access_point(&server.addr, "appdb", "scram_user", "scram-pw");
    let pool = pgdap::Pool::new(
        connector(ap, &home).unwrap(),
        pgdap::PoolOptions {
            max_size: 4,
            checkout_timeout: Some(Duration::from_secs(10)),
            // Only the cheap closed-check: the restart must be noticed without a query.
            health_check: pgdap::pool::HealthCheck::Closed,
            ..Default::default()
        },
    )
    .unwrap();
    // Four connections open, then idle in the pool.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.get().await.unwrap());
    }
    let mut before = Vec::new();
    for s in &held {
        before.push(common::backend_pid(&s.client).await);
    }
    drop(held);
    assert_eq!(pool.status().available, 4);

    // The server restarts (fast shutdown terminates every backend).
    tokio::task::spawn_blocking(move || server.restart())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Every checkout works: the dead connections are discarded, new ones opened.
    let mut held = Vec::new();
    for _ in 0..4 {
        let s = tokio::time::timeout(Duration::from_secs(15), pool.get())
            .await
            .expect("checkout hung")
            .unwrap();
        assert!(s.tls.as_ref().unwrap().verified);
        held.push(s);
    }
    for s in &held {
        let pid = common::backend_pid(&s.client).await;
        assert!(
            !before.contains(&pid),
            "a connection from before the restart was reused"
        );
    }
    assert!(pool.status().size <= 4, "{:?}", pool.status());
    drop(held);

    // Down: a checkout fails fast with the connector's error, no hang...
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = tokio::time::timeout(Duration::from_secs(15), pool.get())
        .await
        .expect("checkout hung while the server was down")
        .err()
        .unwrap();
    assert!(err.to_string().contains("127.0.0.66"), "{err}");
    // ...and once it is back, checkouts succeed again.
    tokio::task::spawn_blocking(move || server.restart())
        .await
        .unwrap();
    let s = tokio::time::timeout(Duration::from_secs(15), pool.get())
        .await
        .expect("checkout hung after the server came back")
        .unwrap();
    s.client.simple_query("select 1").await.unwrap();
}
