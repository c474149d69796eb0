//! The pool: same connect semantics as single connections (verify-full, PGAUTH=cert,
//! prefer's fallback, PGCLIENTENCODING, configuration errors), the size limit, the
//! checkout timeout, and the health check discarding connections the server killed or
//! that stopped answering.
//!
//! One server of its own on 127.0.0.55, with a certificate for that IP address.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{self, access_point, backend_pid, pki, ClientHome, San, Server, ServerSpec};
use pgdap::pool::HealthCheck;
use pgdap::{Pool, PoolError, PoolOptions};

const ADDR: &str = "127.0.0.55";

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        // A server certificate for 127.0.0.55 from the test CA, so verify-full passes.
        let dir = &pki().dir;
        let ca = common::Issued {
            cert: openssl::x509::X509::from_pem(&std::fs::read(dir.join("ca.crt")).unwrap())
                .unwrap(),
            key: openssl::pkey::PKey::private_key_from_pem(
                &std::fs::read(dir.join("ca.key")).unwrap(),
            )
            .unwrap(),
        };
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let cert = common::issue("pgdap-pool", key, Some(&ca), &[San::Ip(ADDR)], false, false);
        std::fs::write(dir.join("pool-server.crt"), cert.cert.to_pem().unwrap()).unwrap();
        common::write_key(
            &dir.join("pool-server.key"),
            &cert.key.private_key_to_pem_pkcs8().unwrap(),
        );
        Server::start(ServerSpec::new(ADDR, Some("pool-server")))
    })
}

fn options(app: &str) -> pgdap::ConnectOptions {
    pgdap::ConnectOptions {
        application_name: Some(app.to_string()),
        connect_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

fn pool(
    home: &ClientHome,
    db: &str,
    user: &str,
    password: &str,
    app: &str,
    opts: PoolOptions,
) -> Pool {
    let server = server();
    let config = pgdap::Config::new(access_point(&server.addr, db, user, password), &home.env())
        .unwrap()
        .with_options(options(app));
    Pool::from_config(config, opts).unwrap()
}

fn verify_full_home() -> ClientHome {
    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("ca.crt", "root.crt");
    home
}

/// Connections of an application name as the server sees them.
fn server_connections(app: &str) -> usize {
    server()
        .psql(
            "postgres",
            &format!("select count(*) from pg_stat_activity where application_name = '{app}'"),
        )
        .parse()
        .unwrap()
}

#[tokio::test]
async fn verify_full_session_is_verified_and_encrypted() {
    let home = verify_full_home();
    let pool = pool(
        &home,
        "appdb",
        "scram_user",
        "scram-pw",
        "pool-vf",
        PoolOptions::default(),
    );
    let session = pool.get().await.unwrap();
    let tls = session
        .tls
        .as_ref()
        .expect("verify-full session is encrypted");
    assert!(tls.verified, "server certificate verified");
    let row = session
        .client
        .query_one(
            "select current_user::text, (select ssl from pg_stat_ssl where pid = pg_backend_pid())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "scram_user");
    assert!(row.get::<_, bool>(1), "the server sees SSL");
    assert_eq!(pool.status().size, 1);
}

#[tokio::test]
async fn cert_auth_sends_no_password() {
    let home = verify_full_home().var("PGAUTH", "cert");
    home.put("alice.crt", "postgresql.crt");
    home.put("alice.key", "postgresql.key");
    let pool = pool(
        &home,
        "certdb",
        "alice",
        "",
        "pool-cert",
        PoolOptions::default(),
    );
    let session = pool.get().await.unwrap();
    let user: String = session
        .client
        .query_one("select current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, "alice");
    assert!(session.tls.is_some());
}

#[tokio::test]
async fn prefer_falls_back_and_encoding_is_set_up_as_for_single_connections() {
    // nossl rejects SSL sessions: prefer retries in plaintext, as libpq does.
    let home = ClientHome::new()
        .var("PGMODE", "prefer")
        .var("PGCLIENTENCODING", "latin1");
    let pool = pool(
        &home,
        "nossl",
        "scram_user",
        "scram-pw",
        "pool-prefer",
        PoolOptions::default(),
    );
    let session = pool.get().await.unwrap();
    assert!(session.tls.is_none(), "prefer fell back to plaintext");
    assert_eq!(session.encoding.client_encoding().name(), "LATIN1");
    assert_eq!(session.encoding.server_encoding(), "UTF8");

    // require never settles for plaintext: the same refusal a single connection gets.
    let home = ClientHome::new().var("PGMODE", "require");
    let pool = pool_for_errors(&home, "nossl", "scram-pw");
    let err = pool.get().await.unwrap_err();
    let PoolError::Connect(e) = &err else {
        panic!("expected a connect error, got {err:?}")
    };
    let single = pgdap::Connector::new(pool.connector().config().clone())
        .unwrap()
        .connect()
        .await
        .err()
        .expect("a single connection fails too");
    assert_eq!(e.to_string(), single.to_string());
    assert!(e.to_string().contains("pg_hba.conf"), "{e}");
}

fn pool_for_errors(home: &ClientHome, db: &str, password: &str) -> Pool {
    pool(
        home,
        db,
        "scram_user",
        password,
        "pool-errors",
        PoolOptions {
            checkout_timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn bad_configuration_errors() {
    // verify-full without a root CA: refused when the pool is built, libpq's message.
    let home = ClientHome::new().var("PGMODE", "verify-full");
    let config = pgdap::Config::new(
        access_point(ADDR, "appdb", "scram_user", "scram-pw"),
        &home.env(),
    )
    .unwrap();
    let err = Pool::from_config(config, PoolOptions::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            PoolError::Connect(pgdap::Error::RootCertMissing { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("root certificate file"), "{err}");

    // A wrong password: the checkout fails with the server's refusal, nothing is kept.
    let home = verify_full_home();
    let pool = pool_for_errors(&home, "appdb", "wrong-pw");
    let err = pool.get().await.unwrap_err();
    match &err {
        PoolError::Connect(e) => assert_eq!(e.server_code(), Some("28P01"), "{e}"),
        other => panic!("expected the server's refusal, got {other:?}"),
    }
    assert_eq!(pool.status().size, 0);

    // A bad PGMODE never gets as far as a pool.
    let home = ClientHome::new().var("PGMODE", "Require");
    let err = pgdap::Config::new(
        access_point(ADDR, "appdb", "scram_user", "scram-pw"),
        &home.env(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("PGMODE"));
}

#[tokio::test]
async fn size_limit_and_checkout_timeout() {
    let home = verify_full_home();
    let app = "pool-size";
    let pool = pool(
        &home,
        "appdb",
        "scram_user",
        "scram-pw",
        app,
        PoolOptions {
            max_size: 2,
            checkout_timeout: Some(Duration::from_millis(300)),
            ..Default::default()
        },
    );
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let (pid_a, pid_b) = (backend_pid(&a.client).await, backend_pid(&b.client).await);
    assert_ne!(pid_a, pid_b);
    let status = pool.status();
    assert_eq!((status.max_size, status.size, status.available), (2, 2, 0));
    assert_eq!(server_connections(app), 2);

    // Exhausted: the third checkout waits for the timeout, then fails.
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err, PoolError::Timeout { max_size: 2, .. }),
        "{err:?}"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(
        err.to_string().contains("all 2 connections are in use"),
        "{err}"
    );
    assert_eq!(server_connections(app), 2, "no third connection was opened");

    // A waiter gets the connection returned while it waits, without a new connection.
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let s = pool.get().await.unwrap();
            backend_pid(&s.client).await
        })
    };
    // Returned as soon as the waiter waits (it gives up after the 300 ms checkout timeout).
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.status().waiting != 1 {
        assert!(Instant::now() < deadline, "the waiter never waited");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(a);
    assert_eq!(waiter.await.unwrap(), pid_a);
    assert_eq!(pool.status().size, 2);

    // discard() closes instead of returning: the next checkout opens a new connection.
    b.discard();
    assert_eq!(pool.status().size, 1);
    let c = pool.get().await.unwrap();
    let d = pool.get().await.unwrap();
    let pids = [backend_pid(&c.client).await, backend_pid(&d.client).await];
    assert!(pids.contains(&pid_a) && !pids.contains(&pid_b), "{pids:?}");
}

#[tokio::test]
async fn health_check_discards_a_terminated_connection() {
    for (check, app) in [
        (HealthCheck::Query, "pool-kill-query"),
        (HealthCheck::Closed, "pool-kill-closed"),
        (HealthCheck::default(), "pool-kill-default"),
    ] {
        let home = verify_full_home();
        let pool = pool(
            &home,
            "appdb",
            "scram_user",
            "scram-pw",
            app,
            PoolOptions {
                max_size: 1,
                health_check: check,
                ..Default::default()
            },
        );
        let session = pool.get().await.unwrap();
        let pid = backend_pid(&session.client).await;
        drop(session);
        assert_eq!(
            server().psql("postgres", &format!("select pg_terminate_backend({pid})")),
            "t"
        );
        server().wait_backend_gone(pid).await;
        // Let the connection task read the server's goodbye (what is_closed() reports).
        tokio::time::sleep(Duration::from_millis(200)).await;

        let session = pool.get().await.unwrap();
        let new_pid = backend_pid(&session.client).await;
        assert_ne!(
            new_pid, pid,
            "{check:?}: got the terminated connection back"
        );
        assert_eq!(
            pool.status().size,
            1,
            "{check:?}: the dead one was discarded"
        );
        assert_eq!(server_connections(app), 1);
    }
}

#[tokio::test]
async fn health_check_query_discards_a_connection_that_stopped_answering() {
    // A backend stopped with SIGSTOP keeps its socket open: only the query notices.
    let home = verify_full_home();
    let app = "pool-stopped";
    let pool = pool(
        &home,
        "appdb",
        "scram_user",
        "scram-pw",
        app,
        PoolOptions {
            max_size: 1,
            health_check: HealthCheck::Query,
            health_check_timeout: Duration::from_millis(300),
            ..Default::default()
        },
    );
    let session = pool.get().await.unwrap();
    let pid = backend_pid(&session.client).await;
    drop(session);
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let started = Instant::now();
    let result = pool.get().await;
    let waited = started.elapsed();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let session = result.unwrap();
    assert_ne!(backend_pid(&session.client).await, pid);
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(pool.status().size, 1);
    // The discarded client said goodbye; once resumed, the old backend exits.
    server().wait_backend_gone(pid).await;
}

#[tokio::test]
async fn closed_pool_refuses_checkouts() {
    let home = verify_full_home();
    let pool = pool(
        &home,
        "appdb",
        "scram_user",
        "scram-pw",
        "pool-close",
        PoolOptions::default(),
    );
    drop(pool.get().await.unwrap());
    pool.close();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, PoolError::Closed { .. }), "{err:?}");
    assert!(err.to_string().contains(ADDR));
}

/// `HealthCheck::QueryIfIdle`: a connection idle for longer than the window is checked
/// with a query (a stopped backend is found and replaced); one used within the window is
/// handed out without the round trip (the stopped backend comes back unchecked).
#[tokio::test]
async fn query_if_idle_checks_only_connections_idle_past_the_window() {
    for (window, app) in [
        (Duration::from_millis(100), "pool-idle-query"),
        (Duration::from_secs(600), "pool-idle-bypass"),
    ] {
        let home = verify_full_home();
        let pool = pool(
            &home,
            "appdb",
            "scram_user",
            "scram-pw",
            app,
            PoolOptions {
                max_size: 1,
                health_check: HealthCheck::QueryIfIdle(window),
                health_check_timeout: Duration::from_millis(300),
                ..Default::default()
            },
        );
        let session = pool.get().await.unwrap();
        let pid = backend_pid(&session.client).await;
        drop(session);
        // Idle past the short window, well within the long one.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        let result = pool.get().await;
        let status = pool.status();
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
        let session = result.unwrap();
        if window < Duration::from_secs(1) {
            assert_ne!(backend_pid(&session.client).await, pid, "{app}");
            assert_eq!(
                (status.health_check_discards, status.connects),
                (1, 2),
                "{app}: {status:?}"
            );
            server().wait_backend_gone(pid).await;
        } else {
            assert_eq!(backend_pid(&session.client).await, pid, "{app}");
            assert_eq!(
                (status.health_check_discards, status.connects),
                (0, 1),
                "{app}: {status:?}"
            );
        }
    }
}

/// `PooledSession::detach` takes the session out of the pool for good: the pool no longer
/// counts it and opens another for the next checkout; the detached session keeps working
/// and its connection closes when it is dropped.
#[tokio::test]
async fn a_detached_session_leaves_the_pool() {
    let home = verify_full_home();
    let app = "pool-detach";
    let pool = pool(
        &home,
        "appdb",
        "scram_user",
        "scram-pw",
        app,
        PoolOptions {
            max_size: 1,
            ..Default::default()
        },
    );
    let pooled = pool.get().await.unwrap();
    let pid = backend_pid(&pooled.client).await;
    let session: pgdap::Session = pooled.detach();
    assert_eq!(pool.status().size, 0, "{:?}", pool.status());
    let other = pool.get().await.unwrap();
    assert_ne!(backend_pid(&other.client).await, pid);
    let row = session
        .client
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i32>(0),
        pid,
        "the detached session still works"
    );
    assert_eq!(server_connections(app), 2);
    drop(session);
    server().wait_backend_gone(pid).await;
    assert_eq!(pool.status().size, 1);
}

/// A session's notices: `recv` waits for the next one, and past the queue's limit of
/// unread notices the oldest are dropped and counted.
#[tokio::test]
async fn notices_are_received_and_the_oldest_dropped_past_the_limit() {
    let home = verify_full_home();
    let pool = pool(
        &home,
        "appdb",
        "scram_user",
        "scram-pw",
        "pool-notices",
        PoolOptions::default(),
    );
    let session = pool.get().await.unwrap();
    let notices = session.notices.clone();
    notices.drain();
    let waiter = tokio::spawn(async move { notices.recv().await });
    session
        .client
        .batch_execute("do $$ begin raise notice 'one for recv'; end $$")
        .await
        .unwrap();
    let notice = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("recv returned")
        .unwrap()
        .expect("a notice");
    assert_eq!(
        (notice.severity.as_str(), notice.message.as_str()),
        ("NOTICE", "one for recv")
    );

    let limit = pgdap::connect::NOTICE_QUEUE_LIMIT;
    let extra = 44;
    let dropped_before = session.notices.dropped();
    session
        .client
        .batch_execute(&format!(
            "do $$ begin for i in 1..{} loop raise notice 'n%', i; end loop; end $$",
            limit + extra
        ))
        .await
        .unwrap();
    let kept = session.notices.drain();
    assert_eq!(kept.len(), limit);
    assert_eq!(session.notices.dropped() - dropped_before, extra as u64);
    assert_eq!(
        kept[0].message,
        format!("n{}", extra + 1),
        "the oldest went"
    );
    assert_eq!(kept[limit - 1].message, format!("n{}", limit + extra));
}
