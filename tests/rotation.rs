//! Certificate rotation: a `Connector` picks up changed certificate files without a
//! restart, and keeps its previous TLS context when a changed file is broken.

mod common;

use std::time::Duration;

use common::{access_point, pki, ssl_server, ClientHome};

fn connector(ap: pgdap::AccessPoint, home: &ClientHome) -> pgdap::Connector {
    let config = pgdap::Config::new(ap, &home.env())
        .unwrap()
        .with_options(pgdap::Options {
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
    .with_options(pgdap::Options {
        reload_interval: Duration::from_secs(3600),
        ..Default::default()
    });
    let connector = pgdap::Connector::new(config).unwrap();
    rotate(&home, "other-ca.crt", "root.crt");
    // Within the interval the old (valid) context stays in use.
    assert!(connector.connect().await.is_ok());
    // An explicit reload picks up the change.
    connector.tls_reloader().reload_now();
    assert!(connector.connect().await.is_err());
}
