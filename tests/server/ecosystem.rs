//! The ecosystem surface (issue 12): the adapter examples (bb8, diesel_async, blocking)
//! against `connect` and psql (libpq 15) in all six modes, with fallbacks, under
//! PGAUTH=cert and against an SSL-off server; query cancellation over TLS proven by a
//! loopback proxy recording each connection's first message; login WARNINGs reaching
//! the callback, the tracing log and the examples' `notices`; the public MakeTlsConnect.
//!
//! Addresses (this file's own, so it never waits for another test process): an SSL
//! server on 127.0.0.85 (`eco.pgdap.test`, wildcard certificate, the harness's roles,
//! databases and pg_hba.conf), an SSL-off server on 127.0.0.80, proxies on .81-.84.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{
    access_point, ensure_hosts, example, psql_outcome, ClientHome, Outcome, Server, ServerSpec,
    MODES, PG_BIN,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The host name of this file's SSL server (its certificate is `*.pgdap.test`).
const SSL_HOST: &str = "eco.pgdap.test";

fn ssl_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        ensure_hosts(SSL_HOST, "127.0.0.85");
        Server::start(ServerSpec::new("127.0.0.85", Some("server-wildcard")))
    })
}

fn plain_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(ServerSpec::new("127.0.0.80", None)))
}

const EXAMPLES: [&str; 4] = ["connect", "bb8", "diesel_async", "blocking"];
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const CANCEL_CODE: [u8; 4] = [0x04, 0xd2, 0x16, 0x2e];

fn write_ap(home: &ClientHome, server: &str, db: &str, user: &str, pw: &str) -> std::path::PathBuf {
    let cfg = home.home().join("dap.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dbengine=postgre\ndbserver={server}\ndbname={db}\nusername={user}\npassword={pw}\n"
        ),
    )
    .unwrap();
    cfg
}

fn run_example(name: &str, home: &ClientHome, cfg: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(example(name));
    cmd.env_clear()
        .env("HOME", home.home())
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .arg("--config")
        .arg(cfg)
        .args(extra);
    for (k, v) in home.vars() {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The example's outcome and its JSON line (on success).
fn outcome(out: &Output) -> (Outcome, Option<serde_json::Value>) {
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "one line on stderr: {stderr}"
        );
        return (Outcome::Fail(stderr), None);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let class = if json["ssl"] == true {
        Outcome::Ssl
    } else {
        Outcome::Plain
    };
    (class, Some(json))
}

/// The fields every example must agree on with `connect`.
fn comparable(json: &serde_json::Value) -> serde_json::Value {
    let mut v = json.clone();
    let map = v.as_object_mut().unwrap();
    for volatile in ["notices", "cipher", "result"] {
        map.remove(volatile);
    }
    v
}

struct Case {
    label: &'static str,
    server: String,
    db: &'static str,
    user: &'static str,
    pw: &'static str,
    cert: bool,
}

#[test]
fn adapters_match_connect_and_psql_in_every_mode() {
    ssl_server();
    let ssl = SSL_HOST.to_string();
    let plain = plain_server().addr.clone();
    let cases = [
        Case {
            label: "ssl server",
            server: ssl.clone(),
            db: "appdb",
            user: "scram_user",
            pw: "scram-pw",
            cert: false,
        },
        // allow must retry with SSL, prefer must not fall back.
        Case {
            label: "hostssl only",
            server: ssl.clone(),
            db: "sslonly",
            user: "scram_user",
            pw: "scram-pw",
            cert: false,
        },
        // prefer must fall back to plaintext after the server's refusal over SSL.
        Case {
            label: "hostnossl only",
            server: ssl.clone(),
            db: "nossl",
            user: "scram_user",
            pw: "scram-pw",
            cert: false,
        },
        Case {
            label: "ssl off",
            server: plain,
            db: "appdb",
            user: "scram_user",
            pw: "scram-pw",
            cert: false,
        },
        Case {
            label: "PGAUTH=cert",
            server: ssl,
            db: "certdb",
            user: "alice",
            pw: "alice-pw",
            cert: true,
        },
    ];
    let mut table = Vec::new();
    for case in &cases {
        for mode in MODES {
            let mut home = ClientHome::new()
                .var("PGMODE", mode)
                .var("PGCLIENTENCODING", "WIN1252");
            home.put("ca.crt", "root.crt");
            if case.cert {
                home.set("PGAUTH", "cert");
                home.put("alice.crt", "postgresql.crt");
                home.put("alice.key", "postgresql.key");
            }
            let cfg = write_ap(&home, &case.server, case.db, case.user, case.pw);
            let ap = access_point(&case.server, case.db, case.user, case.pw);
            let libpq = psql_outcome(&ap, &home.env(), home.home());
            let (reference, reference_json) = outcome(&run_example("connect", &home, &cfg, &[]));
            assert_eq!(
                reference.class(),
                libpq.class(),
                "{} {mode}: connect {reference:?} psql {libpq:?}",
                case.label
            );
            for name in &EXAMPLES[1..] {
                let (ours, json) = outcome(&run_example(name, &home, &cfg, &[]));
                assert_eq!(
                    ours.class(),
                    reference.class(),
                    "{} {mode}: {name} {ours:?} connect {reference:?}",
                    case.label
                );
                if let (Some(json), Some(reference)) = (&json, &reference_json) {
                    assert_eq!(
                        comparable(json),
                        comparable(reference),
                        "{} {mode} {name}",
                        case.label
                    );
                    assert_eq!(json["client_encoding"], "WIN1252");
                }
                if case.cert {
                    assert!(
                        !ours.error().contains("alice-pw"),
                        "{name}: password in the error"
                    );
                }
            }
            table.push(format!(
                "{:15} {:12} {}",
                case.label,
                mode,
                reference.class()
            ));
        }
    }
    // The table proves the fallbacks were exercised: allow retried with SSL, prefer
    // fell back to plaintext.
    let table = table.join("\n");
    assert!(
        table.contains("hostssl only    allow        ssl"),
        "{table}"
    );
    assert!(
        table.contains("hostnossl only  prefer       plain"),
        "{table}"
    );
    assert!(
        table.contains("ssl off         prefer       plain"),
        "{table}"
    );
    assert!(
        table.contains("PGAUTH=cert     prefer       ssl"),
        "{table}"
    );
    eprintln!("{table}");
}

#[test]
fn failures_keep_pgdaps_errors_in_every_adapter() {
    ssl_server();
    let server = SSL_HOST;
    // verify-full without a root CA: the libpq message, from every example.
    let home = ClientHome::new().var("PGMODE", "verify-full");
    let cfg = write_ap(&home, server, "appdb", "scram_user", "scram-pw");
    for name in EXAMPLES {
        let (out, _) = outcome(&run_example(name, &home, &cfg, &[]));
        assert!(
            out.error().contains("root certificate file") && out.error().contains("does not exist"),
            "{name}: {out:?}"
        );
    }
    // Wrong password: the server's message, never the password.
    let home = ClientHome::new().var("PGMODE", "require");
    let cfg = write_ap(&home, server, "appdb", "scram_user", "wrong-secret");
    for name in EXAMPLES {
        let (out, _) = outcome(&run_example(name, &home, &cfg, &[]));
        assert!(
            out.error()
                .contains("password authentication failed for user \"scram_user\""),
            "{name}: {out:?}"
        );
        assert!(!out.error().contains("wrong-secret"), "{name}");
    }
}

#[test]
fn help_and_sql_result() {
    for name in EXAMPLES {
        let out = Command::new(example(name)).arg("--help").output().unwrap();
        assert!(out.status.success(), "{name} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("--cancel-after"));
        let out = Command::new(example(name)).arg("--bogus").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name} usage error");
    }
    let home = ClientHome::new()
        .var("PGMODE", "require")
        .var("PGAPPNAME", "ecosystem-test");
    ssl_server();
    let cfg = write_ap(&home, SSL_HOST, "appdb", "scram_user", "scram-pw");
    for name in EXAMPLES {
        let (_, json) = outcome(&run_example(name, &home, &cfg, &["--sql", "select 6 * 7"]));
        let json = json.unwrap_or_else(|| panic!("{name} failed"));
        assert_eq!(json["result"], "42", "{name}");
        assert!(json["application_name"].is_string(), "{name}: {json}");
        let (_, json) = outcome(&run_example(
            name,
            &home,
            &cfg,
            &["--sql", "select 1 where false"],
        ));
        assert!(json.unwrap()["result"].is_null(), "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------

/// A loopback TCP proxy that records the first 8 bytes each client sends; with
/// `refuse_ssl_after`, connections after that many answer an SSLRequest with 'N'
/// themselves (a downgrading man in the middle) and record whatever the client sends
/// next.
struct Proxy {
    firsts: Arc<Mutex<Vec<Vec<u8>>>>,
    after_refusal: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Proxy {
    async fn start(listen: &str, upstream: &str, refuse_ssl_after: Option<usize>) -> Proxy {
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let upstream: SocketAddr = upstream.parse().unwrap();
        let firsts = Arc::new(Mutex::new(Vec::new()));
        let after_refusal = Arc::new(Mutex::new(Vec::new()));
        let (f, a) = (firsts.clone(), after_refusal.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                n += 1;
                let (f, a) = (f.clone(), a.clone());
                let refuse = refuse_ssl_after.is_some_and(|k| n > k);
                tokio::spawn(async move {
                    let mut first = [0u8; 8];
                    if client.read_exact(&mut first).await.is_err() {
                        return;
                    }
                    f.lock().unwrap().push(first.to_vec());
                    if refuse && first == SSL_REQUEST {
                        client.write_all(b"N").await.unwrap();
                        let mut rest = Vec::new();
                        let _ = tokio::time::timeout(
                            Duration::from_secs(2),
                            client.read_to_end(&mut rest),
                        )
                        .await;
                        a.lock().unwrap().push(rest);
                        return;
                    }
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    server.write_all(&first).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Proxy {
            firsts,
            after_refusal,
        }
    }

    fn firsts(&self) -> Vec<Vec<u8>> {
        self.firsts.lock().unwrap().clone()
    }
}

fn verify_ca_home() -> ClientHome {
    let home = ClientHome::new().var("PGMODE", "verify-ca");
    home.put("ca.crt", "root.crt");
    home
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_over_verify_ca_begins_with_an_ssl_request() {
    let server = ssl_server();
    let proxy = Proxy::start("127.0.0.81:5432", &format!("{}:5432", server.addr), None).await;
    let home = verify_ca_home();
    let cfg = write_ap(&home, "127.0.0.81", "appdb", "scram_user", "scram-pw");
    // Built before the clock starts.
    example("connect");
    // The connect example: cancelled after 1 s, the server's message on stderr.
    let started = Instant::now();
    let out = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            run_example(
                "connect",
                &home,
                &cfg,
                &["--sql", "select pg_sleep(20)", "--cancel-after", "1"],
            )
        }
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("canceling statement due to user request"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let firsts = proxy.firsts();
    assert_eq!(firsts.len(), 2, "session + cancel connection: {firsts:?}");
    assert!(
        firsts.iter().all(|f| f[..] == SSL_REQUEST),
        "every connection, the cancel one included, began with an SSLRequest: {firsts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_every_adapter_example() {
    let server = ssl_server();
    let proxy = Proxy::start("127.0.0.82:5432", &format!("{}:5432", server.addr), None).await;
    // Built before the clock starts.
    example("connect");
    for name in &EXAMPLES[1..] {
        let before = proxy.firsts().len();
        let home = verify_ca_home();
        let cfg = write_ap(&home, "127.0.0.82", "appdb", "scram_user", "scram-pw");
        let started = Instant::now();
        let name = name.to_string();
        let out = tokio::task::spawn_blocking({
            let name = name.clone();
            move || {
                run_example(
                    &name,
                    &home,
                    &cfg,
                    &["--sql", "select pg_sleep(20)", "--cancel-after", "1"],
                )
            }
        })
        .await
        .unwrap();
        assert!(!out.status.success(), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("canceling statement due to user request"),
            "{name}: {stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{name}");
        let firsts = proxy.firsts();
        assert!(firsts.len() > before + 1, "{name}: {firsts:?}");
        assert!(
            firsts[before..].iter().all(|f| f[..] == SSL_REQUEST),
            "{name}: {firsts:?}"
        );
    }
}

/// Runs `select pg_sleep(20)` on the session and cancels it from another task once the
/// server (`ssl_server()`, behind the proxies) runs it: a cancel sent before the query
/// starts would be lost, so the canceller waits for it in `pg_stat_activity` instead of a
/// fixed delay.
async fn sleeping_query_is_cancelled(session: &pgdap::Session) {
    let token = session.cancel_token().expect("cancel key");
    let pid = token.process_id();
    let canceller = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        let running = format!(
            "select count(*) from pg_stat_activity where pid = {pid} \
             and state = 'active' and query = 'select pg_sleep(20)'"
        );
        while tokio::task::spawn_blocking({
            let running = running.clone();
            move || ssl_server().psql("postgres", &running)
        })
        .await
        .unwrap()
            != "1"
        {
            assert!(Instant::now() < deadline, "the query never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        token.cancel_query().await
    });
    let started = Instant::now();
    let err = session
        .client
        .batch_execute("select pg_sleep(20)")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&pgdap::tokio_postgres::error::SqlState::QUERY_CANCELED)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    canceller.await.unwrap().unwrap();
    // `?` into pgdap::Error keeps the server's message.
    let e: pgdap::Error = err.into();
    assert!(e
        .chain()
        .to_string()
        .contains("canceling statement due to user request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_connector_and_pool_sessions_tls_and_plaintext() {
    let server = ssl_server();
    let proxy = Proxy::start("127.0.0.83:5432", &format!("{}:5432", server.addr), None).await;
    // TLS, from a Pool.
    let home = verify_ca_home();
    let ap = access_point("127.0.0.83", "appdb", "scram_user", "scram-pw");
    let pool = pgdap::Pool::from_config(
        pgdap::Config::new(ap.clone(), &home.env()).unwrap(),
        pgdap::PoolOptions::default(),
    )
    .unwrap();
    let session = pool.get().await.unwrap();
    assert!(session.cancel_token().unwrap().encrypted());
    sleeping_query_is_cancelled(&session).await;
    drop(session);
    let firsts = proxy.firsts();
    assert!(firsts.iter().all(|f| f[..] == SSL_REQUEST), "{firsts:?}");
    // Plaintext (PGMODE=disable), from a Connector: the cancel request itself, in the clear.
    let home = ClientHome::new().var("PGMODE", "disable");
    let connector = pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap()).unwrap();
    let session = connector.connect_spawned().await.unwrap();
    assert!(!session.cancel_token().unwrap().encrypted());
    let before = proxy.firsts().len();
    sleeping_query_is_cancelled(&session).await;
    let firsts = proxy.firsts();
    assert_eq!(firsts.len(), before + 1);
    assert_eq!(&firsts[before][..4], &[0, 0, 0, 16], "{firsts:?}");
    assert_eq!(&firsts[before][4..], &CANCEL_CODE, "{firsts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_key_never_goes_in_plaintext_when_the_ssl_request_is_refused() {
    let server = ssl_server();
    // The session (first connection) passes; the cancel connection meets a 'N'.
    let proxy = Proxy::start("127.0.0.84:5432", &format!("{}:5432", server.addr), Some(1)).await;
    // prefer: the attempt whose tokio-postgres sslmode would go on in plaintext.
    let home = ClientHome::new().var("PGMODE", "prefer");
    let ap = access_point("127.0.0.84", "appdb", "scram_user", "scram-pw");
    let connector = pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap()).unwrap();
    let session = connector.connect_spawned().await.unwrap();
    assert!(session.tls.is_some());
    let err = session
        .cancel_token()
        .unwrap()
        .cancel_query()
        .await
        .unwrap_err();
    assert!(matches!(err, pgdap::Error::Cancel { .. }), "{err}");
    // The proxy records what followed its 'N' once the client has closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.after_refusal.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent_after = proxy.after_refusal.lock().unwrap().clone();
    assert_eq!(
        sent_after,
        vec![Vec::<u8>::new()],
        "bytes sent after 'N': {sent_after:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Notices
// ---------------------------------------------------------------------------------------

const WARNING: &str = "invalid value for parameter \"plpgsql.variable_conflict\"";

/// A role whose every login draws a WARNING (on the shared SSL server of this process).
fn warning_role() -> &'static str {
    static ROLE: OnceLock<()> = OnceLock::new();
    ROLE.get_or_init(|| {
        let server = ssl_server();
        server.psql("postgres", "CREATE ROLE warn_user LOGIN PASSWORD 'warn-pw'");
        server.psql(
            "postgres",
            "ALTER ROLE warn_user SET plpgsql.variable_conflict = 'bogus'",
        );
        server.psql(
            "postgres",
            "ALTER ROLE warn_user SET session_preload_libraries = 'plpgsql'",
        );
    });
    "warn_user"
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut *self.0.lock().unwrap(), buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn login_warning_reaches_callback_log_queue_and_psql_agrees() {
    let user = warning_role();
    let server = SSL_HOST;
    // psql (libpq) prints the warning: the oracle that there is one at every login.
    let out = Command::new(format!("{PG_BIN}/psql"))
        .env_clear()
        .env("PGPASSWORD", "warn-pw")
        .env("PGSSLMODE", "require")
        .args([
            "-X", "-h", server, "-U", user, "-d", "appdb", "-c", "select 1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("WARNING:  {WARNING}")),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // A callsite first hit by another test thread while no subscriber was interested may
    // have cached "never" (tracing#2874): recompute with this one in place.
    tracing::callsite::rebuild_interest_cache();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let home = ClientHome::new().var("PGMODE", "require");
    let ap = access_point(server, "appdb", user, "warn-pw");
    let connector = pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap())
        .unwrap()
        .with_notice_callback(move |n| sink.lock().unwrap().push(n.clone()));
    let session = connector.connect_spawned().await.unwrap();
    session
        .client
        .batch_execute("do $$ begin raise notice 'from the session'; end $$")
        .await
        .unwrap();
    let notices = session.notices.drain();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert_eq!(notices[0].severity, "WARNING");
    assert!(notices[0].message.contains(WARNING), "{notices:?}");
    assert_eq!(notices[1].severity, "NOTICE");
    assert_eq!(notices[1].message, "from the session");
    assert_eq!(
        *seen.lock().unwrap(),
        notices,
        "the callback saw the same notices"
    );
    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("plpgsql.variable_conflict"))
        .unwrap_or_else(|| panic!("no log line: {log}"));
    assert!(
        line.contains("WARN") && line.contains("pgdap::notice"),
        "{line}"
    );
    // NOTICE is logged at INFO: below this subscriber's WARN.
    assert!(!log.contains("from the session"), "{log}");
}

#[test]
fn login_warning_in_every_examples_notices() {
    let user = warning_role();
    for mode in ["disable", "require"] {
        let home = ClientHome::new().var("PGMODE", mode);
        let cfg = write_ap(&home, SSL_HOST, "appdb", user, "warn-pw");
        for name in EXAMPLES {
            let (out, json) = outcome(&run_example(name, &home, &cfg, &[]));
            let json = json.unwrap_or_else(|| panic!("{name} {mode}: {out:?}"));
            let notices = json["notices"].as_array().unwrap();
            assert!(
                notices.iter().any(|n| n["severity"] == "WARNING"
                    && n["message"].as_str().unwrap().contains(WARNING)),
                "{name} {mode}: {json}"
            );
        }
        // Notices of the query itself (diesel_async wraps SQL in a select: not a DO block).
        for name in ["connect", "bb8", "blocking"] {
            let (_, json) = outcome(&run_example(
                name,
                &home,
                &cfg,
                &[
                    "--sql",
                    "do $$ begin raise notice 'during the query'; end $$",
                ],
            ));
            let json = json.unwrap();
            assert!(json["result"].is_null());
            let notices = json["notices"].as_array().unwrap();
            assert_eq!(notices.len(), 2, "{name}: {json}");
            assert_eq!(notices[1]["message"], "during the query", "{name}");
            assert_eq!(notices[1]["severity"], "NOTICE", "{name}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The public MakeTlsConnect
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn make_tls_with_tokio_postgres_config_connect() {
    ssl_server();
    let server = SSL_HOST;
    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("ca.crt", "root.crt");
    let ap = access_point(server, "appdb", "scram_user", "scram-pw");
    let connector =
        pgdap::Connector::new(pgdap::Config::new(ap.clone(), &home.env()).unwrap()).unwrap();
    let pg = connector.tokio_postgres_config(pgdap::connect::Attempt::SslRequired);
    let (client, connection) = pg.connect(connector.make_tls().unwrap()).await.unwrap();
    tokio::spawn(connection);
    let ssl: bool = client
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
    // SCRAM channel binding over the public connector: required, and it works.
    let mut pg = pg.clone();
    pg.channel_binding(pgdap::tokio_postgres::config::ChannelBinding::Require);
    let (client, connection) = pg.connect(connector.make_tls().unwrap()).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("select 1").await.unwrap();

    // An unrelated root CA: the verification is pgdap's.
    let other = ClientHome::new().var("PGMODE", "verify-full");
    other.put("other-ca.crt", "root.crt");
    let connector = pgdap::Connector::new(pgdap::Config::new(ap, &other.env()).unwrap()).unwrap();
    let pg = connector.tokio_postgres_config(pgdap::connect::Attempt::SslRequired);
    let Err(err) = pg.connect(connector.make_tls().unwrap()).await else {
        panic!("connected with an unrelated root CA")
    };
    let text = pgdap::error::Chain(&err).to_string();
    assert!(text.contains("certificate verify failed"), "{text}");
}

/// bb8's checks through pgdap's `SessionManager` on a real server: `is_valid` (run on
/// checkout) finds a connection whose backend was terminated while it was idle, and
/// `has_broken` (run on return) one whose backend was terminated while it was checked
/// out; either way the pool hands out a new connection, never the dead one.
#[cfg(feature = "bb8")]
#[tokio::test]
async fn bb8_checks_discard_terminated_connections() {
    let server = ssl_server();
    let home = ClientHome::new().var("PGMODE", "require");
    let ap = access_point(&server.addr, "appdb", "scram_user", "scram-pw");
    let manager = pgdap::integrations::bb8::SessionManager::new(
        pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap()).unwrap(),
    );
    let terminate = |pid: i32| {
        assert_eq!(
            server.psql("postgres", &format!("select pg_terminate_backend({pid})")),
            "t"
        );
    };

    // is_valid, on checkout: terminated while idle in the pool.
    let pool = bb8::Pool::builder()
        .max_size(1)
        .test_on_check_out(true)
        .build(manager.clone())
        .await
        .unwrap();
    let conn = pool.get().await.unwrap();
    let first = crate::common::backend_pid(&conn.client).await;
    drop(conn);
    terminate(first);
    server.wait_backend_gone(first).await;
    let conn = pool.get().await.unwrap();
    let second = crate::common::backend_pid(&conn.client).await;
    assert_ne!(
        second, first,
        "is_valid handed out the terminated connection"
    );
    drop(conn);

    // has_broken, on return: terminated while checked out (no check on checkout, so only
    // has_broken can keep the dead connection out of the pool).
    let pool = bb8::Pool::builder()
        .max_size(1)
        .test_on_check_out(false)
        .build(manager)
        .await
        .unwrap();
    let conn = pool.get().await.unwrap();
    let first = crate::common::backend_pid(&conn.client).await;
    terminate(first);
    server.wait_backend_gone(first).await;
    // The connection task ends once it reads the server's goodbye.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(conn.client.is_closed() || conn.task.is_finished()) {
        assert!(
            Instant::now() < deadline,
            "the client never saw the connection close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(conn);
    let conn = pool.get().await.unwrap();
    let second = crate::common::backend_pid(&conn.client).await;
    assert_ne!(
        second, first,
        "has_broken returned the dead connection to the pool"
    );
}

/// diesel-async's own bb8 pool on pgdap connections: a returned connection is reused (the
/// same backend, with the parts pgdap recorded for it: TLS and pgdap's cancel token), and
/// one whose backend was terminated is replaced, never handed out again.
#[cfg(feature = "diesel-async")]
#[tokio::test]
async fn diesel_async_pool_reuses_connections_and_replaces_dead_ones() {
    use diesel_async::RunQueryDsl;
    let server = ssl_server();
    let home = verify_ca_home();
    let ap = access_point(&server.addr, "appdb", "scram_user", "scram-pw");
    let connector = pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap()).unwrap();
    let sessions = pgdap::integrations::diesel_async::Sessions::new();
    let pool = diesel_async::pooled_connection::bb8::Pool::builder()
        .max_size(1)
        .retry_connection(false)
        .build(pgdap::integrations::diesel_async::manager(
            connector, &sessions,
        ))
        .await
        .unwrap();
    let pid_of = |parts: Option<pgdap::integrations::diesel_async::SessionParts>| {
        let parts = parts.expect("a connection pgdap opened");
        assert!(parts.tls.is_some(), "verify-ca: encrypted");
        parts.cancel.expect("cancel key").process_id()
    };

    let mut conn = pool.get().await.unwrap();
    diesel::sql_query("select 1")
        .execute(&mut *conn)
        .await
        .unwrap();
    let first = pid_of(sessions.for_connection(&mut conn).await.unwrap());
    drop(conn);
    let mut conn = pool.get().await.unwrap();
    assert_eq!(
        pid_of(sessions.for_connection(&mut conn).await.unwrap()),
        first,
        "the returned connection is reused"
    );
    drop(conn);

    assert_eq!(
        server.psql("postgres", &format!("select pg_terminate_backend({first})")),
        "t"
    );
    server.wait_backend_gone(first).await;
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query("select 1")
        .execute(&mut *conn)
        .await
        .unwrap();
    let second = pid_of(sessions.for_connection(&mut conn).await.unwrap());
    assert_ne!(
        second, first,
        "the terminated connection was handed out again"
    );
}
