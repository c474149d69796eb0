//! pgdap through PgBouncer (Debian's 1.18), with psql (libpq 15) through the same
//! PgBouncer as the oracle for every outcome: client-side TLS in each sslmode (PgBouncers
//! with `client_tls_sslmode` allow, require and disable, the last answering 'N'),
//! scram-sha-256 and md5 pass-through, PgBouncer's own `cert` auth, the error hints, and
//! session and transaction pooling through `pgdap::Pool` under concurrency.
//!
//! Addresses: backend 127.0.0.150 (ssl off: PgBouncer's client side is what is tested),
//! PgBouncers 127.0.0.151-.157.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::common::proxies::{
    auth_file_from, pgdap_via_proxy, psql_via_proxy, PgBouncer, PgBouncerSpec,
};
use crate::common::{access_point, ClientHome, Outcome, Server, ServerSpec, MODES};
use pgdap::{Pool, PoolOptions};
use tokio_postgres::types::Type;

const BACKEND: &str = "127.0.0.150";

fn backend() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let mut spec = ServerSpec::new(BACKEND, None);
        spec.hba = "local all all trust\n\
                    host all md5_user 127.0.0.0/8 md5\n\
                    host all all 127.0.0.0/8 scram-sha-256\n"
            .into();
        spec.conf = "max_connections = 100\n".into();
        let server = Server::start(spec);
        server.psql("appdb", "create table counter (id int primary key, n int)");
        server.psql("appdb", "grant all on counter to scram_user");
        server
    })
}

fn auth_file() -> String {
    let backend = backend();
    // alice logs in with PgBouncer's cert auth; PgBouncer then needs her password for the
    // backend's scram rule.
    auth_file_from(
        backend,
        &["scram_user", "md5_user"],
        &[("alice", "alice-pw")],
    )
}

fn bouncer(
    cell: &'static OnceLock<PgBouncer>,
    addr: &'static str,
    client_tls: &'static str,
    auth_type: &'static str,
    pool_mode: &'static str,
    pool_size: u32,
) -> &'static PgBouncer {
    cell.get_or_init(|| {
        PgBouncer::start(
            PgBouncerSpec {
                addr,
                client_tls,
                auth_type,
                pool_mode,
                auth_file: auth_file(),
                pool_size,
            },
            backend(),
        )
    })
}

/// Client TLS optional (`allow`), scram-sha-256, session pooling.
fn tls_allow() -> &'static PgBouncer {
    static B: OnceLock<PgBouncer> = OnceLock::new();
    bouncer(&B, "127.0.0.151", "allow", "scram-sha-256", "session", 20)
}

/// Client TLS off: answers 'N' to an SSLRequest.
fn tls_off() -> &'static PgBouncer {
    static B: OnceLock<PgBouncer> = OnceLock::new();
    bouncer(&B, "127.0.0.152", "disable", "scram-sha-256", "session", 20)
}

/// Client TLS required: a plaintext start-up is refused.
fn tls_required() -> &'static PgBouncer {
    static B: OnceLock<PgBouncer> = OnceLock::new();
    bouncer(&B, "127.0.0.153", "require", "scram-sha-256", "session", 20)
}

/// PgBouncer's own certificate authentication (CN = user), client certificates verified
/// (PgBouncer 1.18 requires `client_tls_sslmode = verify-full` for `auth_type = cert`).
fn cert_auth() -> &'static PgBouncer {
    static B: OnceLock<PgBouncer> = OnceLock::new();
    bouncer(&B, "127.0.0.154", "verify-full", "cert", "session", 20)
}

/// md5 authentication (md5 hash in auth_file, passed through to the backend's md5 rule).
fn md5() -> &'static PgBouncer {
    static B: OnceLock<PgBouncer> = OnceLock::new();
    bouncer(&B, "127.0.0.155", "allow", "md5", "session", 20)
}

/// Transaction pooling, 4 server connections.
fn transaction_pooling() -> &'static PgBouncer {
    static B: OnceLock<PgBouncer> = OnceLock::new();
    bouncer(
        &B,
        "127.0.0.156",
        "allow",
        "scram-sha-256",
        "transaction",
        4,
    )
}

/// Runs one case through pgdap and psql and asserts the same outcome; returns it.
async fn same_as_psql(ap: &pgdap::AccessPoint, home: &ClientHome, case: &str) -> Outcome {
    let ours = pgdap_via_proxy(ap, &home.env()).await;
    let theirs = psql_via_proxy(ap, &home.env(), home.home());
    assert_eq!(
        ours.class(),
        theirs.class(),
        "{case}: pgdap {ours:?} but psql {theirs:?}"
    );
    ours
}

#[tokio::test]
async fn every_sslmode_through_pgbouncer_matches_psql() {
    let mut table = Vec::new();
    for (bouncer, label) in [
        (tls_allow(), "client_tls_sslmode=allow"),
        (tls_off(), "client_tls_sslmode=disable"),
        (tls_required(), "client_tls_sslmode=require"),
    ] {
        for root_ca in [true, false] {
            for mode in MODES {
                let home = ClientHome::new().var("PGMODE", mode);
                if root_ca {
                    home.put("ca.crt", "root.crt");
                }
                let ap = access_point(&bouncer.addr, "appdb", "scram_user", "scram-pw");
                let case = format!("{label}, PGMODE={mode}, root CA: {root_ca}");
                let outcome = same_as_psql(&ap, &home, &case).await;
                table.push((case, outcome.class()));
            }
        }
    }
    // Spot checks of libpq's rules, so agreement cannot hide a shared mistake.
    let class = |case: &str| table.iter().find(|(c, _)| c == case).unwrap().1;
    assert_eq!(
        class("client_tls_sslmode=allow, PGMODE=prefer, root CA: false"),
        "ssl"
    );
    assert_eq!(
        class("client_tls_sslmode=allow, PGMODE=allow, root CA: false"),
        "plain"
    );
    assert_eq!(
        class("client_tls_sslmode=allow, PGMODE=verify-full, root CA: true"),
        "ssl"
    );
    assert_eq!(
        class("client_tls_sslmode=allow, PGMODE=verify-ca, root CA: false"),
        "fail"
    );
    assert_eq!(
        class("client_tls_sslmode=disable, PGMODE=prefer, root CA: true"),
        "plain"
    );
    assert_eq!(
        class("client_tls_sslmode=disable, PGMODE=require, root CA: false"),
        "fail"
    );
    assert_eq!(
        class("client_tls_sslmode=require, PGMODE=allow, root CA: false"),
        "ssl"
    );
    assert_eq!(
        class("client_tls_sslmode=require, PGMODE=disable, root CA: false"),
        "fail"
    );
    eprintln!("{table:#?}");
}

#[tokio::test]
async fn scram_and_md5_pass_through() {
    for (bouncer, user, password) in [
        (tls_allow(), "scram_user", "scram-pw"),
        (md5(), "md5_user", "md5-pw"),
        (tls_off(), "scram_user", "scram-pw"),
    ] {
        for mode in ["disable", "prefer", "verify-full"] {
            let home = ClientHome::new().var("PGMODE", mode);
            home.put("ca.crt", "root.crt");
            let ap = access_point(&bouncer.addr, "appdb", user, password);
            let case = format!("{user} through {} with PGMODE={mode}", bouncer.addr);
            let outcome = same_as_psql(&ap, &home, &case).await;
            if bouncer.addr == tls_off().addr && mode == "verify-full" {
                assert_eq!(outcome.class(), "fail", "{case}");
                continue;
            }
            assert_ne!(outcome.class(), "fail", "{case}: {outcome:?}");
            // The session really is the backend's, as that user.
            let config = pgdap::Config::new(ap, &home.env()).unwrap();
            let session = pgdap::Connector::new(config)
                .unwrap()
                .connect_spawned()
                .await
                .unwrap();
            let rows = session
                .client
                .query_typed("select current_user::text, inet_server_addr()::text", &[])
                .await
                .unwrap();
            assert_eq!(rows[0].get::<_, String>(0), user);
            assert_eq!(rows[0].get::<_, String>(1), format!("{BACKEND}/32"));
        }
    }
}

#[tokio::test]
async fn wrong_password_through_pgbouncer_keeps_the_access_point_hint() {
    for (bouncer, user) in [(tls_allow(), "scram_user"), (md5(), "md5_user")] {
        for mode in ["disable", "require"] {
            let home = ClientHome::new().var("PGMODE", mode);
            let ap = access_point(&bouncer.addr, "appdb", user, "wrong");
            let case = format!("{user}, wrong password, PGMODE={mode}, {}", bouncer.addr);
            let outcome = same_as_psql(&ap, &home, &case).await;
            let message = outcome.error();
            assert!(
                message.contains("check password= in the Access Point"),
                "{case}: {message}"
            );
            assert!(
                !message.contains("wrong"),
                "{case}: the password leaked: {message}"
            );
        }
    }
}

#[tokio::test]
async fn pgbouncer_cert_auth_matches_psql() {
    let bouncer = cert_auth();
    for mode in MODES {
        // alice's certificate: PgBouncer maps CN=alice to the user alice.
        let home = ClientHome::new().var("PGMODE", mode).var("PGAUTH", "cert");
        home.put("ca.crt", "root.crt");
        home.put("alice.crt", "postgresql.crt");
        home.put("alice.key", "postgresql.key");
        let ap = access_point(&bouncer.addr, "appdb", "alice", "");
        let case = format!("PGAUTH=cert alice, PGMODE={mode}");
        let outcome = same_as_psql(&ap, &home, &case).await;
        if mode == "disable" {
            assert_eq!(outcome.class(), "fail", "{case}");
        } else {
            assert_eq!(outcome, Outcome::Ssl, "{case}");
        }
    }
    // bob's certificate (CN=bob-cn) does not name the user bob: PgBouncer refuses it.
    let home = ClientHome::new()
        .var("PGMODE", "verify-full")
        .var("PGAUTH", "cert");
    home.put("ca.crt", "root.crt");
    home.put("bob.crt", "postgresql.crt");
    home.put("bob.key", "postgresql.key");
    let ap = access_point(&bouncer.addr, "appdb", "bob", "");
    let outcome = same_as_psql(&ap, &home, "bob-cn as bob").await;
    assert_eq!(outcome.class(), "fail");
    // No certificate at all: PgBouncer's verify-ca client TLS refuses the handshake.
    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("ca.crt", "root.crt");
    let ap = access_point(&bouncer.addr, "appdb", "alice", "alice-pw");
    let outcome = same_as_psql(&ap, &home, "no client certificate").await;
    assert_eq!(outcome.class(), "fail");
}

#[tokio::test]
async fn cert_auth_against_a_password_pgbouncer_names_the_right_cause() {
    let home = ClientHome::new()
        .var("PGMODE", "verify-full")
        .var("PGAUTH", "cert");
    home.put("ca.crt", "root.crt");
    home.put("scram.crt", "postgresql.crt");
    home.put("scram.key", "postgresql.key");
    let ap = access_point(&tls_allow().addr, "appdb", "scram_user", "scram-pw");
    let outcome = same_as_psql(&ap, &home, "PGAUTH=cert against auth_type=scram-sha-256").await;
    let message = outcome.error();
    assert!(message.contains("PGAUTH=cert"), "{message}");
    assert!(message.contains("auth_type"), "{message}");
    assert!(message.contains("pg_hba.conf"), "{message}");
}

/// Pool options for the pooling tests: 8 connections, short timeouts.
fn pool_options() -> PoolOptions {
    PoolOptions {
        max_size: 8,
        checkout_timeout: Some(Duration::from_secs(20)),
        ..Default::default()
    }
}

fn pool_through(bouncer: &PgBouncer, opts: PoolOptions) -> Pool {
    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("ca.crt", "root.crt");
    let ap = access_point(&bouncer.addr, "appdb", "scram_user", "scram-pw");
    let pool = Pool::from_config(pgdap::Config::new(ap, &home.env()).unwrap(), opts).unwrap();
    // The home (root CA) is only read when the connector is built.
    drop(home);
    pool
}

/// What each worker of the pooling tests runs; returns the errors seen.
#[derive(Clone, Copy, Debug)]
enum Workload {
    /// `query` (named prepared statements), a `transaction()` with `query` inside.
    Prepared,
    /// The transaction-pooling recipe: `query_typed`, `simple_query`, and explicit
    /// transactions whose statements are closed before COMMIT.
    Recipe,
}

async fn run_workers(
    pool: &Pool,
    workload: Workload,
    workers: usize,
    rounds: usize,
) -> Vec<String> {
    let pool = Arc::new(pool.clone());
    let mut tasks = Vec::new();
    for w in 0..workers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for r in 0..rounds {
                let mut session = match pool.get().await {
                    Ok(s) => s,
                    Err(e) => {
                        errors.push(e.to_string());
                        continue;
                    }
                };
                let id = (w * rounds + r) as i32;
                let result = match workload {
                    Workload::Prepared => prepared_round(&mut session, id).await,
                    Workload::Recipe => recipe_round(&mut session, id).await,
                };
                if let Err(e) = result {
                    errors.push(match e.as_db_error() {
                        Some(db) => format!("{}: {}", db.code().code(), db.message()),
                        None => e.to_string(),
                    });
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    errors
}

async fn prepared_round(
    session: &mut pgdap::PooledSession,
    id: i32,
) -> Result<(), tokio_postgres::Error> {
    let row = session
        .client
        .query_one("select $1::int + 1", &[&id])
        .await?;
    assert_eq!(row.get::<_, i32>(0), id + 1);
    let tx = session.client.transaction().await?;
    tx.execute("insert into counter values ($1, 1)", &[&id])
        .await?;
    tx.execute("update counter set n = n + 1 where id = $1", &[&id])
        .await?;
    tx.commit().await
}

/// The transaction-pooling recipe (docs/reliability.md): statements that never outlive
/// the server connection PgBouncer lends for one transaction.
async fn recipe_round(
    session: &mut pgdap::PooledSession,
    id: i32,
) -> Result<(), tokio_postgres::Error> {
    // One round trip, unnamed statement: parse, bind and execute under one Sync.
    let rows = session
        .client
        .query_typed("select $1::int + 1", &[(&id, Type::INT4)])
        .await?;
    assert_eq!(rows[0].get::<_, i32>(0), id + 1);
    session.client.simple_query("select 1").await?;
    let tx = session.client.transaction().await?;
    tx.execute_typed("insert into counter values ($1, 1)", &[(&id, Type::INT4)])
        .await?;
    tx.execute_typed(
        "update counter set n = n + 1 where id = $1",
        &[(&id, Type::INT4)],
    )
    .await?;
    tx.commit().await
}

fn clear_counter() {
    backend().psql("appdb", "truncate counter");
}

fn counter_total() -> String {
    backend().psql(
        "appdb",
        "select count(*) || ' ' || coalesce(sum(n), 0) from counter",
    )
}

#[tokio::test]
async fn pooling_through_pgbouncer_under_concurrency() {
    // One test for both PgBouncers: they share the backend's counter table.
    // Session pooling: every statement kind works, named prepared statements included.
    clear_counter();
    let pool = pool_through(tls_allow(), pool_options());
    let errors = run_workers(&pool, Workload::Prepared, 32, 10).await;
    assert!(errors.is_empty(), "session pooling: {errors:?}");
    assert_eq!(counter_total(), "320 640");
    let status = pool.status();
    assert!(status.size <= 8, "{status:?}");
    assert_eq!(status.connect_failures, 0, "{status:?}");

    // Transaction pooling: the recipe works under concurrency, through 4 server
    // connections shared by 8 pooled client connections.
    clear_counter();
    let pool = pool_through(transaction_pooling(), pool_options());
    let errors = run_workers(&pool, Workload::Recipe, 32, 10).await;
    assert!(errors.is_empty(), "transaction pooling recipe: {errors:?}");
    assert_eq!(counter_total(), "320 640");

    // Named prepared statements under transaction pooling: PgBouncer 1.18 hands the
    // Bind to another server connection than the Parse.
    clear_counter();
    let errors = run_workers(&pool, Workload::Prepared, 32, 10).await;
    // How many rounds fail depends on the interleaving (the deterministic case is the next
    // test); what may fail is fixed: only the named statements, with PostgreSQL's errors
    // for a statement missing on (26000) or already on (42P05) the server connection, or
    // bound with another statement's parameters (08P01). A failed round commits nothing, a
    // round that succeeded committed its row whole.
    eprintln!(
        "named prepared statements under transaction pooling: {} errors of 320 rounds, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    let unexpected: Vec<&String> = errors
        .iter()
        .filter(|e| {
            !["26000:", "42P05:", "08P01:"]
                .iter()
                .any(|c| e.starts_with(c))
        })
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    let committed = 320 - errors.len();
    assert_eq!(counter_total(), format!("{committed} {}", committed * 2));
}

/// Transaction pooling, 2 server connections, for the deterministic interleaving below.
fn transaction_pooling_small() -> &'static PgBouncer {
    static B: OnceLock<PgBouncer> = OnceLock::new();
    bouncer(
        &B,
        "127.0.0.157",
        "allow",
        "scram-sha-256",
        "transaction",
        2,
    )
}

async fn connect_to(bouncer: &PgBouncer) -> pgdap::Session {
    let home = ClientHome::new().var("PGMODE", "require");
    let ap = access_point(&bouncer.addr, "appdb", "scram_user", "scram-pw");
    pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap())
        .unwrap()
        .connect_spawned()
        .await
        .unwrap()
}

#[tokio::test]
async fn named_statements_break_under_transaction_pooling_and_the_recipe_does_not() {
    let bouncer = transaction_pooling_small();
    let a = connect_to(bouncer).await;
    let b = connect_to(bouncer).await;
    // Two transactions at once: PgBouncer opens both server connections; both go idle.
    a.client.batch_execute("begin").await.unwrap();
    b.client.batch_execute("begin").await.unwrap();
    a.client.batch_execute("commit").await.unwrap();
    b.client.batch_execute("commit").await.unwrap();

    // A prepares on server connection X, which goes back to PgBouncer after the Sync;
    // B's transaction takes X (the most recently used idle server); A's execution is
    // sent to the other one, which never saw the statement.
    let statement = a.client.prepare("select 41 + 1").await.unwrap();
    b.client.batch_execute("begin").await.unwrap();
    let err = a.client.query(&statement, &[]).await.unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "26000", "{db:?}");
    assert!(db.message().contains("does not exist"), "{db:?}");
    b.client.batch_execute("commit").await.unwrap();

    // The same interleaving with the recipe's calls: nothing outlives one Sync.
    let rows = a.client.query_typed("select 41 + 1", &[]).await.unwrap();
    b.client.batch_execute("begin").await.unwrap();
    let again = a
        .client
        .query_typed("select $1::int + 1", &[(&41i32, Type::INT4)])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 42);
    assert_eq!(again[0].get::<_, i32>(0), 42);
    b.client.batch_execute("commit").await.unwrap();
}
