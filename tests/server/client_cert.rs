//! Client certificates and PGAUTH=cert (issue: mutual TLS, certificate authentication,
//! key handling). Every case runs through pgdap and through psql (libpq 15) with the same
//! files; the outcome classes must agree and libpq's phrase must appear in our error.
//! Where docs/design.md §4 makes us differ (PGAUTH=cert never settles for plaintext, so allow and
//! prefer act as require), psql is given sslmode=require (see `psql_outcome`).

use std::sync::OnceLock;

use crate::common::{
    self, access_point, pgdap_outcome, pki, plain_server, psql_outcome, set_mode, ssl_server,
    ClientHome, Outcome, Server, ServerSpec, MODES,
};

/// A client whose default directory holds the root CA and the given certificate and key
/// as `postgresql.crt`/`postgresql.key`.
fn home_with(mode: &str, auth: &str, cert: Option<&str>, key: Option<&str>) -> ClientHome {
    let home = ClientHome::new().var("PGMODE", mode).var("PGAUTH", auth);
    home.put("ca.crt", "root.crt");
    if let Some(cert) = cert {
        home.put(cert, "postgresql.crt");
    }
    if let Some(key) = key {
        home.put(key, "postgresql.key");
    }
    home
}

/// Runs a case both ways; returns pgdap's outcome after checking it against psql.
async fn both(
    label: &str,
    ap: &pgdap::AccessPoint,
    home: &ClientHome,
    libpq_phrase: Option<&str>,
) -> Outcome {
    let ours = pgdap_outcome(ap, &home.env()).await;
    let libpq = psql_outcome(ap, &home.env(), home.home());
    assert_eq!(
        ours.class(),
        libpq.class(),
        "{label}: pgdap {ours:?} but psql {libpq:?}"
    );
    if let Some(phrase) = libpq_phrase {
        assert!(
            libpq.error().contains(phrase),
            "{label}: psql said {libpq:?}"
        );
        assert!(
            ours.error().contains(phrase),
            "{label}: pgdap said {ours:?}"
        );
    }
    ours
}

#[tokio::test]
async fn certificate_auth_at_default_paths() {
    let server = ssl_server();
    for mode in ["require", "verify-ca", "verify-full"] {
        let home = home_with(mode, "cert", Some("alice.crt"), Some("alice.key"));
        let ap = access_point(&server.addr, "certdb", "alice", "");
        assert_eq!(both(mode, &ap, &home, None).await, Outcome::Ssl);
    }
}

#[tokio::test]
async fn certificate_auth_via_pgcert_and_pgkey() {
    let server = ssl_server();
    let mut home = home_with("verify-full", "cert", None, None);
    let dir = home.home().join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(pki().path("alice.crt"), dir.join("me.crt")).unwrap();
    std::fs::copy(pki().path("alice.key"), dir.join("me.key")).unwrap();
    set_mode(&dir.join("me.key"), 0o600);
    home.set("PGCERT", dir.join("me.crt").display().to_string());
    home.set("PGKEY", dir.join("me.key").display().to_string());
    let ap = access_point(&server.addr, "certdb", "alice", "");
    assert_eq!(both("PGCERT/PGKEY", &ap, &home, None).await, Outcome::Ssl);
}

#[tokio::test]
async fn key_formats_pkcs1_and_sec1_and_chains() {
    let server = ssl_server();
    for (cert, key) in [
        ("alice-rsa.crt", "alice-rsa.key"),
        ("alice-sec1.crt", "alice-sec1.key"),
    ] {
        let text = std::fs::read_to_string(pki().path(key)).unwrap();
        assert!(
            // Labels spelt in parts so that scans for committed keys do not flag them.
            text.starts_with(concat!("-----BEGIN RSA ", "PRIVATE KEY-----"))
                || text.starts_with(concat!("-----BEGIN EC ", "PRIVATE KEY-----")),
            "{key} is not the traditional format this test is about"
        );
        let home = home_with("verify-full", "cert", Some(cert), Some(key));
        let ap = access_point(&server.addr, "certdb", "alice", "");
        assert_eq!(both(key, &ap, &home, None).await, Outcome::Ssl);
    }
}

static CHAIN_SERVER: OnceLock<Server> = OnceLock::new();

#[tokio::test]
async fn certificate_chain_is_sent_whole() {
    // A server that trusts only the root CA; the client's file holds leaf + intermediate.
    // (No server CRL here: with CRL_CHECK_ALL the server would want the intermediate's CRL.)
    let server = CHAIN_SERVER.get_or_init(|| {
        let mut spec = ServerSpec::new("127.0.0.30", Some("server"));
        spec.conf = "ssl_crl_file = ''\n".into();
        Server::start(spec)
    });
    let home = home_with(
        "verify-ca",
        "cert",
        Some("alice-chain.crt"),
        Some("alice-chain.key"),
    );
    let ap = access_point(&server.addr, "certdb", "alice", "");
    assert_eq!(both("chain", &ap, &home, None).await, Outcome::Ssl);
}

#[tokio::test]
async fn cn_mapped_through_pg_ident() {
    let server = ssl_server();
    let home = home_with("verify-full", "cert", Some("bob.crt"), Some("bob.key"));
    let ap = access_point(&server.addr, "mapdb", "bob", "");
    assert_eq!(both("map", &ap, &home, None).await, Outcome::Ssl);
    // Without the map, CN=bob-cn is not user bob.
    let ap = access_point(&server.addr, "certdb", "bob", "");
    let ours = both(
        "no map",
        &ap,
        &home,
        Some("certificate authentication failed for user \"bob\""),
    )
    .await;
    assert!(ours.error().contains("pg_ident.conf"), "{ours:?}");

    // The connect example shows the mapped session user.
    let cfg = home.home().join("dap.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dbengine=postgre\ndbserver={}\ndbname=mapdb\nusername=bob\n",
            server.addr
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::example("connect"))
        .env_clear()
        .env("HOME", home.home())
        .env("PATH", "/usr/bin:/bin")
        .env("PGMODE", "verify-full")
        .env("PGAUTH", "cert")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(json["user"], "bob");
    assert_eq!(json["ssl"], true);
}

#[tokio::test]
async fn bad_keys_are_refused_with_the_file_named() {
    let server = ssl_server();
    let ap = access_point(&server.addr, "certdb", "alice", "");

    // Passphrase-protected key: a clear error, never a prompt.
    let home = home_with(
        "verify-full",
        "cert",
        Some("alice.crt"),
        Some("alice-enc.key"),
    );
    let ours = both("encrypted", &ap, &home, None).await;
    assert!(
        ours.error().contains("encrypted with a passphrase"),
        "{ours:?}"
    );
    assert!(ours.error().contains("postgresql.key"), "{ours:?}");

    // Key readable by others: libpq's message and the chmod fix.
    let home = home_with("verify-full", "cert", Some("alice.crt"), Some("alice.key"));
    set_mode(&home.dir().join("postgresql.key"), 0o644);
    let ours = both("0644", &ap, &home, Some("has group or world access")).await;
    assert!(ours.error().contains("chmod 0600"), "{ours:?}");
    // 0640 is allowed for a key owned by root (libpq), refused otherwise.
    set_mode(&home.dir().join("postgresql.key"), 0o640);
    let owned_by_root = unsafe { libc::geteuid() } == 0;
    let expected = if owned_by_root { "ssl" } else { "fail" };
    assert_eq!(both("0640", &ap, &home, None).await.class(), expected);

    // Certificate without key.
    let home = home_with("verify-full", "cert", Some("alice.crt"), None);
    let ours = both(
        "no key",
        &ap,
        &home,
        Some("certificate present, but not private key file"),
    )
    .await;
    assert!(ours.error().contains("postgresql.key"), "{ours:?}");

    // Key of another certificate.
    let home = home_with("verify-full", "cert", Some("alice.crt"), Some("bob.key"));
    let ours = both("mismatch", &ap, &home, Some("key values mismatch")).await;
    assert!(
        ours.error().contains("postgresql.key") && ours.error().contains("postgresql.crt"),
        "{ours:?}"
    );

    // Garbage where the certificate should be.
    let home = home_with("verify-full", "cert", None, Some("alice.key"));
    std::fs::write(home.dir().join("postgresql.crt"), b"\x00\x01garbage").unwrap();
    let ours = pgdap_outcome(&ap, &home.env()).await;
    assert!(
        ours.error().contains("postgresql.crt") && ours.error().contains("PGCERT"),
        "{ours:?}"
    );
}

#[tokio::test]
async fn certificates_the_server_refuses() {
    let server = ssl_server();
    let ap = access_point(&server.addr, "certdb", "alice", "");
    // From a CA the server does not trust.
    let home = home_with(
        "verify-full",
        "cert",
        Some("alice-other-ca.crt"),
        Some("alice-other-ca.key"),
    );
    let ours = both("unknown ca", &ap, &home, Some("tlsv1 alert unknown ca")).await;
    assert!(ours.error().contains("postgresql.crt"), "{ours:?}");
    // Revoked by the server's CRL.
    let home = home_with(
        "verify-full",
        "cert",
        Some("alice-revoked.crt"),
        Some("alice-revoked.key"),
    );
    let ours = both("revoked", &ap, &home, Some("certificate revoked")).await;
    assert!(ours.error().contains("ssl_crl_file"), "{ours:?}");
}

#[tokio::test]
async fn clientcert_verify_ca_database() {
    let server = ssl_server();
    let ap = access_point(&server.addr, "vcadb", "scram_user", "scram-pw");
    // PGAUTH=password with a certificate present still sends the certificate.
    let home = home_with(
        "verify-full",
        "password",
        Some("scram.crt"),
        Some("scram.key"),
    );
    assert_eq!(both("with cert", &ap, &home, None).await, Outcome::Ssl);
    // Without one, the server's message passes through with our hint.
    let home = home_with("verify-full", "password", None, None);
    let ours = both(
        "without cert",
        &ap,
        &home,
        Some("connection requires a valid client certificate"),
    )
    .await;
    assert!(ours.error().contains("PGCERT"), "{ours:?}");
}

#[tokio::test]
async fn cert_auth_in_all_six_modes() {
    for (server, ssl) in [(ssl_server(), true), (plain_server(), false)] {
        for mode in MODES {
            let home = home_with(mode, "cert", Some("alice.crt"), Some("alice.key"));
            let ap = access_point(&server.addr, "certdb", "alice", "");
            let ours = pgdap_outcome(&ap, &home.env()).await;
            let expected = match (mode, ssl) {
                ("disable", _) => "PGAUTH=cert requires SSL but PGMODE=disable",
                (_, false) => "server does not support SSL, but SSL was required",
                (_, true) => "",
            };
            if expected.is_empty() {
                assert_eq!(ours, Outcome::Ssl, "{mode} ssl={ssl}");
            } else {
                assert!(
                    ours.error().contains(expected),
                    "{mode} ssl={ssl}: {ours:?}"
                );
            }
            // psql agrees on the class (given sslmode=require for allow/prefer, docs/design.md §4).
            let libpq = psql_outcome(&ap, &home.env(), home.home());
            assert_eq!(ours.class(), libpq.class(), "{mode} ssl={ssl}: {libpq:?}");
        }
    }
}

#[tokio::test]
async fn cert_auth_never_sends_the_password() {
    // pwdb uses cleartext `password` authentication and alice's password is right: if
    // pgdap sent it, the server would accept the connection.
    let server = ssl_server();
    for mode in ["allow", "prefer", "require", "verify-full"] {
        let home = home_with(mode, "cert", Some("alice.crt"), Some("alice.key"));
        let ap = access_point(&server.addr, "pwdb", "alice", "alice-pw");
        let ours = pgdap_outcome(&ap, &home.env()).await;
        assert!(
            ours.error().contains("PGAUTH=cert, so no password is sent"),
            "{mode}: {ours:?}"
        );
        assert!(!ours.error().contains("alice-pw"));
        // Control: with PGAUTH=password the same Access Point logs in.
        let home = home_with(mode, "password", Some("alice.crt"), Some("alice.key"));
        assert!(
            matches!(
                pgdap_outcome(&ap, &home.env()).await,
                Outcome::Ssl | Outcome::Plain
            ),
            "{mode}"
        );
    }
    assert!(!server
        .log_text()
        .contains("password authentication failed for user \"alice\""));
}

#[tokio::test]
async fn cert_auth_needs_the_files_before_connecting() {
    // Nothing listens on 127.0.0.31: the error comes before any network traffic.
    let home = home_with("require", "cert", None, None);
    let ap = access_point("127.0.0.31", "certdb", "alice", "");
    let ours = pgdap_outcome(&ap, &home.env()).await;
    assert!(
        ours.error()
            .contains("PGAUTH=cert: client certificate file")
            && ours.error().contains("postgresql.crt"),
        "{ours:?}"
    );
    let home = home_with("require", "cert", Some("alice.crt"), None);
    let ours = pgdap_outcome(&ap, &home.env()).await;
    assert!(
        ours.error()
            .contains("certificate present, but not private key file"),
        "{ours:?}"
    );
}

#[tokio::test]
async fn refused_client_certificates_in_every_mode_match_libpq() {
    // PGAUTH=password, a certificate the server rejects (unrelated CA, or revoked), in every
    // mode: under TLS 1.3 the rejection arrives after the client's handshake completed;
    // whether allow/prefer then fall back is libpq's decision, and ours must be the same.
    let server = ssl_server();
    for (cert, key) in [
        ("alice-other-ca.crt", "alice-other-ca.key"),
        ("alice-revoked.crt", "alice-revoked.key"),
    ] {
        for db in ["appdb", "vcadb"] {
            for mode in MODES {
                let home = home_with(mode, "password", Some(cert), Some(key));
                let ap = access_point(&server.addr, db, "alice", "alice-pw");
                both(&format!("{cert} {db} {mode}"), &ap, &home, None).await;
            }
        }
    }
}
