//! Certificate rotation: a `Connector` picks up changed certificate files without a
//! restart, and keeps its previous TLS context when a changed file is broken.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{self, access_point, pki, ssl_server, ClientHome, Server, ServerSpec};

fn connector(ap: pgdap::AccessPoint, home: &ClientHome) -> pgdap::Connector {
    let config = pgdap::Config::new(ap, &home.env())
        .unwrap()
        .with_options(pgdap::ConnectOptions {
            reload_interval: Duration::ZERO,
            ..Default::default()
        });
    pgdap::Connector::new(config).unwrap()
}

/// Replaces `name` in the default directory with a PKI file the way deployment tools do
/// (write a new file, rename it over the old one).
fn rotate(home: &ClientHome, pki_name: &str, name: &str) {
    let tmp = home.dir().join(format!(".{name}.new"));
    std::fs::copy(pki().path(pki_name), &tmp).unwrap();
    if name.ends_with(".key") {
        common::set_mode(&tmp, 0o600);
    }
    std::fs::rename(&tmp, home.dir().join(name)).unwrap();
}

#[tokio::test]
async fn rotated_root_ca_and_client_certificate_are_used_without_restart() {
    let server = ssl_server();
    let home = ClientHome::new()
        .var("PGMODE", "verify-full")
        .var("PGAUTH", "cert");
    home.put("other-ca.crt", "root.crt");
    home.put("bob.crt", "postgresql.crt");
    home.put("bob.key", "postgresql.key");
    let connector = connector(access_point(&server.addr, "certdb", "alice", ""), &home);

    let err = connector.connect().await.err().unwrap();
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );

    rotate(&home, "ca.crt", "root.crt");
    let err = connector.connect().await.err().unwrap();
    assert!(
        err.to_string()
            .contains("certificate authentication failed for user \"alice\""),
        "the new root CA is in use, the old client certificate still is: {err}"
    );

    rotate(&home, "alice.key", "postgresql.key");
    rotate(&home, "alice.crt", "postgresql.crt");
    let connected = connector.connect().await.unwrap();
    assert!(connected.tls.is_some());
    assert!(connector.tls_reloader().last_error().is_none());
}

#[tokio::test]
async fn a_broken_rotated_file_keeps_the_old_context_and_reports() {
    let server = ssl_server();
    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("ca.crt", "root.crt");
    let connector = connector(
        access_point(&server.addr, "appdb", "scram_user", "scram-pw"),
        &home,
    );
    assert!(connector.connect().await.is_ok());

    let tmp = home.dir().join(".root.new");
    std::fs::write(
        &tmp,
        b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::rename(&tmp, home.dir().join("root.crt")).unwrap();
    for _ in 0..3 {
        let connected = connector.connect().await.unwrap();
        assert!(
            connected.tls.unwrap().verified,
            "still verified with the old root CA"
        );
    }
    let error = connector
        .tls_reloader()
        .last_error()
        .expect("the reload error is reported");
    assert!(error.to_string().contains("root.crt"), "{error}");

    rotate(&home, "ca.crt", "root.crt");
    assert!(connector.connect().await.is_ok());
    assert!(connector.tls_reloader().last_error().is_none());
}

#[tokio::test]
async fn files_are_not_checked_before_the_interval() {
    let server = ssl_server();
    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("ca.crt", "root.crt");
    let config = pgdap::Config::new(
        access_point(&server.addr, "appdb", "scram_user", "scram-pw"),
        &home.env(),
    )
    .unwrap()
    .with_options(pgdap::ConnectOptions {
        reload_interval: Duration::from_secs(3600),
        ..Default::default()
    });
    let connector = pgdap::Connector::new(config).unwrap();
    rotate(&home, "other-ca.crt", "root.crt");
    // Within the interval the old (valid) context stays in use.
    assert!(connector.connect().await.is_ok());
    // An explicit reload picks up the change.
    connector.tls_reloader().reload_now();
    match connector.connect().await.map(|_| ()) {
        Err(pgdap::Error::CertificateVerifyFailed { root_ca, .. }) => {
            assert_eq!(root_ca, home.dir().join("root.crt"))
        }
        other => panic!("the new root CA does not verify the server: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// A file in use that disappears is a broken file, not a new configuration
// ---------------------------------------------------------------------------------------

/// A server whose certificate comes from another CA (`other-ca`): an impostor for a
/// client that trusts `ca.crt`.
fn impostor_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(ServerSpec::new("127.0.0.200", Some("server-other-ca"))))
}

/// A server whose certificate (from `ca`) is revoked by `client.crl`.
fn revoked_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(ServerSpec::new("127.0.0.201", Some("server-revoked"))))
}

/// Short enough for the test, long enough that the checks run off the connect path, as
/// in a service.
const VANISH_INTERVAL: Duration = Duration::from_millis(200);
/// How long a check may take to be seen (generous: the machine may be busy).
const VANISH_DEADLINE: Duration = Duration::from_secs(30);

fn require_connector(server: &Server, home: &ClientHome) -> pgdap::Connector {
    let config = pgdap::Config::new(
        access_point(&server.addr, "appdb", "scram_user", "scram-pw"),
        &home.env(),
    )
    .unwrap()
    .with_options(pgdap::ConnectOptions {
        reload_interval: VANISH_INTERVAL,
        ..Default::default()
    });
    pgdap::Connector::new(config).unwrap()
}

type Refusal = dyn Fn(&pgdap::Error) -> bool;
type Settled = dyn Fn(Option<Arc<pgdap::Error>>) -> bool;

/// One round: the good server is reached and its certificate verified; the bad one is
/// refused with the expected error.
async fn round(good: &pgdap::Connector, bad: &pgdap::Connector, refused: &Refusal, when: &str) {
    match good.connect().await {
        Ok(connected) => assert!(
            connected.tls.as_ref().is_some_and(|t| t.verified),
            "{when}: the good server's certificate is still verified"
        ),
        Err(e) => panic!("{when}: the good server is refused: {e}"),
    }
    match bad.connect().await {
        Ok(_) => panic!("{when}: the bad server's certificate was accepted"),
        Err(e) => assert!(refused(&e), "{when}: unexpected refusal: {e}"),
    }
}

/// Runs rounds until both connectors' reload state satisfies `settled` (the checks after
/// the change have run), then a few more.
async fn rounds_until(
    good: &pgdap::Connector,
    bad: &pgdap::Connector,
    refused: &Refusal,
    settled: &Settled,
    when: &str,
) {
    let start = Instant::now();
    loop {
        round(good, bad, refused, when).await;
        if settled(good.tls_reloader().last_error()) && settled(bad.tls_reloader().last_error()) {
            break;
        }
        assert!(
            start.elapsed() < VANISH_DEADLINE,
            "{when}: the check did not report within {VANISH_DEADLINE:?}: {:?} / {:?}",
            good.tls_reloader().last_error().map(|e| e.to_string()),
            bad.tls_reloader().last_error().map(|e| e.to_string()),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        tokio::time::sleep(VANISH_INTERVAL).await;
        round(good, bad, refused, when).await;
    }
}

fn vanished(
    var: &'static str,
    file: std::path::PathBuf,
) -> impl Fn(Option<Arc<pgdap::Error>>) -> bool {
    move |e| matches!(e.as_deref(), Some(pgdap::Error::FileVanished { var: v, path, .. }) if *v == var && *path == file)
}

/// `PGMODE=require` with a root CA: the root CA file is moved away and back. A service
/// that was verifying keeps verifying (an impostor is refused throughout, the real server
/// is reached and verified), the vanished file is reported, and the file's return is
/// picked up.
#[tokio::test]
async fn a_vanished_root_ca_keeps_verifying_under_require() {
    let good_server = ssl_server();
    let impostor = impostor_server();
    let home = ClientHome::new().var("PGMODE", "require");
    let root = home.put("ca.crt", "root.crt");
    let good = require_connector(good_server, &home);
    let bad = require_connector(impostor, &home);
    let refused = {
        let root = root.clone();
        move |e: &pgdap::Error| {
            matches!(e, pgdap::Error::CertificateVerifyFailed { root_ca, reason, .. }
                if *root_ca == root && reason.contains("unable to get local issuer certificate"))
        }
    };
    round(&good, &bad, &refused, "root CA in place").await;

    let away = home.dir().join(".root.crt.away");
    std::fs::rename(&root, &away).unwrap();
    rounds_until(
        &good,
        &bad,
        &refused,
        &vanished("PGROOTCA", root.clone()),
        "root CA moved away",
    )
    .await;

    std::fs::rename(&away, &root).unwrap();
    rounds_until(
        &good,
        &bad,
        &refused,
        &|e| e.is_none(),
        "root CA moved back",
    )
    .await;

    // What a restart sees: a connector built without the file verifies nothing.
    std::fs::rename(&root, &away).unwrap();
    let restarted = require_connector(impostor, &home);
    let connected = restarted
        .connect()
        .await
        .expect("require without a root CA");
    assert!(!connected.tls.unwrap().verified);
}

/// `PGMODE=require` with a root CA and a CRL revoking one server's certificate: the CRL
/// is moved away and back. The revoked server is refused throughout (the kept context
/// still holds the CRL), the real server is reached, the vanished CRL is reported, and
/// its return is picked up.
#[tokio::test]
async fn a_vanished_crl_keeps_revocation_under_require() {
    let good_server = ssl_server();
    let revoked = revoked_server();
    let home = ClientHome::new().var("PGMODE", "require");
    home.put("ca.crt", "root.crt");
    let crl = home.put("client.crl", "postgresql.crl");
    let good = require_connector(good_server, &home);
    let bad = require_connector(revoked, &home);
    let refused = {
        let crl = crl.clone();
        move |e: &pgdap::Error| matches!(e, pgdap::Error::CertificateRevoked { crl: used, .. } if *used == crl)
    };
    round(&good, &bad, &refused, "CRL in place").await;

    let away = home.dir().join(".postgresql.crl.away");
    std::fs::rename(&crl, &away).unwrap();
    rounds_until(
        &good,
        &bad,
        &refused,
        &vanished("PGCRL", crl.clone()),
        "CRL moved away",
    )
    .await;

    std::fs::rename(&away, &crl).unwrap();
    rounds_until(&good, &bad, &refused, &|e| e.is_none(), "CRL moved back").await;
}
