//! Credentials that move (issue 25), on a real server: a pool under load while the role's
//! password is rotated on the server and in the Access Point file (atomic rename), then
//! in the password file, with a control run that rotates only the server (and must fail);
//! and a credential provider: expiry honoured, one call for concurrent connects, one
//! fetch and one retry after 28P01, no call under PGAUTH=cert, its error surfaced.
//!
//! Server: 127.0.0.205 (its own: the tests change role passwords).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use pgdap::credentials::{provider_fn, BoxError, Credential};
use pgdap::{ConnectOptions, Password, Pool, PoolOptions};

use crate::common::{self, pki, ClientHome, Server, ServerSpec};

fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(ServerSpec::new("127.0.0.205", Some("server"))))
}

/// A login role of its own with `password`.
fn role(name: &str, password: &str) {
    server().psql(
        "postgres",
        &format!("drop role if exists {name}; create role {name} login password '{password}'"),
    );
}

fn set_password(name: &str, password: &str) {
    server().psql(
        "postgres",
        &format!("alter role {name} password '{password}'"),
    );
}

/// Writes `text` beside `path` and renames it into place (what operators and Kubernetes'
/// secret volumes do), mode 0600.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    common::set_mode(&tmp, 0o600);
    std::fs::rename(&tmp, path).unwrap();
}

fn dap(user: &str, password: &str) -> String {
    format!(
        "dbengine=postgre\ndbserver={}\ndbname=appdb\nusername={user}\npassword={password}\n",
        server().addr
    )
}

/// When a query ended, and how.
type Outcome = (Instant, Result<(), String>);

/// What a run of the load saw, split at the moment the rotation was complete.
#[derive(Debug)]
struct Load {
    errors_before: usize,
    /// Errors between the server's change and the file's (the instant the issue allows;
    /// shown in the output, not bounded).
    #[allow(dead_code)]
    errors_between: usize,
    errors_after: usize,
    samples: Vec<String>,
    queries_after: usize,
    connects_after: u64,
}

/// 8 tasks over a pool of 4 whose connections live 1 s, for 6 s; after 2 s `rotate`
/// runs (it returns the instant the server changed; the rotation is complete when it
/// returns).
async fn under_load(
    env: pgdap::Environment,
    file: &Path,
    rotate: impl FnOnce() -> Instant + Send + 'static,
) -> Load {
    let ap = pgdap::AccessPoint::from_file(file).unwrap();
    let config = pgdap::Config::new(ap, &env)
        .unwrap()
        .with_options(ConnectOptions {
            reload_interval: Duration::ZERO,
            connect_timeout: Duration::from_secs(5),
            ..Default::default()
        });
    let pool = Pool::from_config(
        config,
        PoolOptions {
            max_size: 4,
            max_lifetime: Some(Duration::from_secs(1)),
            checkout_timeout: Some(Duration::from_secs(5)),
            reconnect_backoff: pgdap::pool::Backoff::OFF,
            ..Default::default()
        },
    )
    .unwrap();
    let log: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let end = Instant::now() + Duration::from_secs(6);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (pool, log) = (pool.clone(), log.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let result = match pool.get().await {
                        Ok(s) => s
                            .client
                            .simple_query("select 1")
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(pgdap::error::Chain(&e).to_string()),
                    };
                    let failed = result.is_err();
                    log.lock().unwrap().push((Instant::now(), result));
                    if failed {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (changed, done) = tokio::task::spawn_blocking(move || {
        let changed = rotate();
        (changed, Instant::now())
    })
    .await
    .unwrap();
    let connects_at_change = pool.status().connects;
    for t in tasks {
        t.await.unwrap();
    }
    let log = log.lock().unwrap();
    let errors = |from: Option<Instant>, to: Option<Instant>| {
        log.iter()
            .filter(|(t, r)| {
                r.is_err() && from.is_none_or(|f| *t > f) && to.is_none_or(|e| *t <= e)
            })
            .count()
    };
    Load {
        errors_before: errors(None, Some(changed)),
        errors_between: errors(Some(changed), Some(done)),
        errors_after: errors(Some(done), None),
        samples: log
            .iter()
            .filter_map(|(_, r)| r.clone().err())
            .take(3)
            .collect(),
        queries_after: log.iter().filter(|(t, r)| r.is_ok() && *t > done).count(),
        connects_after: pool.status().connects - connects_at_change,
    }
}

fn env(home: &ClientHome) -> pgdap::Environment {
    home.env()
        .with("PGMODE", "verify-ca")
        .with("PGROOTCA", pki().path("ca.crt").display().to_string())
}

#[tokio::test]
async fn a_pool_follows_a_password_rotated_in_the_access_point_file() {
    server();
    role("rot_ap", "pw-1");
    let home = ClientHome::new();
    let file = home.home().join("dap.cfg");
    replace(&file, &dap("rot_ap", "pw-1"));
    let file2 = file.clone();
    let load = under_load(env(&home), &file, move || {
        set_password("rot_ap", "pw-2");
        let changed = Instant::now();
        replace(&file2, &dap("rot_ap", "pw-2"));
        changed
    })
    .await;
    eprintln!("access point rotation: {load:?}");
    assert_eq!(load.errors_before, 0, "{load:?}");
    assert_eq!(load.errors_after, 0, "{load:?}");
    assert!(load.queries_after > 100, "{load:?}");
    assert!(
        load.connects_after >= 4,
        "new connections after the change: {load:?}"
    );
}

#[tokio::test]
async fn a_pool_follows_a_password_rotated_in_the_password_file() {
    server();
    role("rot_pass", "pw-1");
    let home = ClientHome::new();
    let file = home.home().join("dap.cfg");
    replace(&file, &dap("rot_pass", ""));
    let passfile = home.home().join("pgpass");
    replace(&passfile, "*:5432:appdb:rot_pass:pw-1\n");
    let env = env(&home).with("PGPASSFILE", passfile.display().to_string());
    let load = under_load(env, &file, move || {
        set_password("rot_pass", "pw-2");
        let changed = Instant::now();
        replace(&passfile, "*:5432:appdb:rot_pass:pw-2\n");
        changed
    })
    .await;
    eprintln!("password file rotation: {load:?}");
    assert_eq!(load.errors_before, 0, "{load:?}");
    assert_eq!(load.errors_after, 0, "{load:?}");
    assert!(load.connects_after >= 4, "{load:?}");
}

/// The control: the server changes and the file does not. New connections must fail,
/// or the rotation tests above could not fail either.
#[tokio::test]
async fn control_rotating_only_the_server_fails_new_connections() {
    server();
    role("rot_ctl", "pw-1");
    let home = ClientHome::new();
    let file = home.home().join("dap.cfg");
    replace(&file, &dap("rot_ctl", "pw-1"));
    let load = under_load(env(&home), &file, || {
        set_password("rot_ctl", "pw-2");
        Instant::now()
    })
    .await;
    eprintln!("control (server only): {load:?}");
    assert_eq!(load.errors_before, 0, "{load:?}");
    assert!(load.errors_after > 0, "{load:?}");
    assert!(
        load.samples
            .iter()
            .any(|s| s.contains("password authentication failed")),
        "{load:?}"
    );
}

// ----- the credential provider ----------------------------------------------------------

/// A connector for `user` on the server, verify-ca, with an Access Point password that
/// is wrong (the provider must win over it).
fn connector(home: &ClientHome, user: &str) -> pgdap::Connector {
    let ap = common::access_point(&server().addr, "appdb", user, "not-the-password");
    pgdap::Connector::new(pgdap::Config::new(ap, &env(home)).unwrap()).unwrap()
}

/// The provider's secrets, by call number (1-based), and its call count.
fn scripted(
    secrets: Vec<(String, Option<Duration>)>,
) -> (Arc<AtomicU64>, impl pgdap::credentials::CredentialProvider) {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let provider = provider_fn("scripted", move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
        let (secret, lifetime) = secrets[n.min(secrets.len() - 1)].clone();
        async move {
            let credential = Credential::new(Password::new(secret));
            Ok::<_, BoxError>(match lifetime {
                Some(d) => credential.expiring_at(SystemTime::now() + d),
                None => credential,
            })
        }
    });
    (calls, provider)
}

async fn current_user(connector: &pgdap::Connector) -> Result<String, pgdap::Error> {
    let session = connector.connect_spawned().await?;
    let row = session
        .client
        .query_one("select current_user::text", &[])
        .await
        .map_err(pgdap::Error::Query)?;
    Ok(row.get(0))
}

#[tokio::test]
async fn a_provider_wins_and_is_called_once_for_concurrent_connects() {
    server();
    role("tok_many", "token-1");
    let home = ClientHome::new();
    let (calls, provider) = scripted(vec![("token-1".into(), None)]);
    let connector = connector(&home, "tok_many").with_credential_provider(provider);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = connector.clone();
            tokio::spawn(async move { current_user(&c).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "tok_many");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(connector.credential_status().unwrap().calls, 1);
}

#[tokio::test]
async fn an_expiring_token_is_replaced_before_the_server_stops_accepting_it() {
    server();
    let home = ClientHome::new();
    // Each token is the role's password until 3 s after it is issued (VALID UNTIL): the
    // server refuses it afterwards, whatever the client does.
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    role("tok_expiring", "unused");
    let provider = provider_fn("expiring", move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let token = format!("token-{n}");
            let sql = format!(
                "alter role tok_expiring password '{token}' valid until '{}'",
                chrono_like(SystemTime::now() + Duration::from_secs(3))
            );
            tokio::task::spawn_blocking(move || server().psql("postgres", &sql))
                .await
                .unwrap();
            Ok::<_, BoxError>(
                Credential::new(Password::new(token))
                    .expiring_at(SystemTime::now() + Duration::from_secs(3)),
            )
        }
    });
    let connector = connector(&home, "tok_expiring").with_credential_provider(provider);
    assert_eq!(current_user(&connector).await.unwrap(), "tok_expiring");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Refreshed 0.3-0.45 s... at most 1.5 s before the expiry: at 2.1 s the token is due,
    // and the connection uses a new one (no refusal and retry: the old one still works).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(current_user(&connector).await.unwrap(), "tok_expiring");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let status = connector.credential_status().unwrap();
    assert!(status.expires_at.unwrap() > SystemTime::now());
    // Past the first token's expiry: still connecting, with the second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(current_user(&connector).await.unwrap(), "tok_expiring");
}

/// A timestamp PostgreSQL reads (UTC, seconds since the epoch through to_timestamp).
fn chrono_like(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // `valid until` takes a timestamptz literal; epoch form through an expression is not
    // allowed there, so format it in UTC.
    let out = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{secs:.3}"),
            "+%Y-%m-%d %H:%M:%S.%3N+00",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn a_refused_cached_secret_is_fetched_again_and_retried_once() {
    server();
    role("tok_rotated", "s-1");
    let home = ClientHome::new();
    let (calls, provider) = scripted(vec![
        ("s-1".into(), None),
        ("s-2".into(), None),
        ("wrong".into(), None),
    ]);
    let connector = connector(&home, "tok_rotated").with_credential_provider(provider);
    assert_eq!(current_user(&connector).await.unwrap(), "tok_rotated");
    // The secret store rotates it behind the cache: the cached one is refused, a fresh
    // one fetched, the connection tried once more.
    set_password("tok_rotated", "s-2");
    assert_eq!(current_user(&connector).await.unwrap(), "tok_rotated");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Again, and the fresh one is wrong too: one retry only, the server's refusal
    // returned, naming the provider.
    set_password("tok_rotated", "s-3");
    let err = current_user(&connector).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        matches!(err.last_attempt(), pgdap::Error::Server(r) if r.code == "28P01"),
        "{err}"
    );
    assert!(
        pgdap::error::Chain(&err)
            .to_string()
            .contains("credential provider \"scripted\""),
        "{err}"
    );
}

#[tokio::test]
async fn no_provider_call_under_certificate_authentication() {
    server();
    let home = ClientHome::new()
        .var("PGMODE", "verify-ca")
        .var("PGROOTCA", pki().path("ca.crt").display().to_string())
        .var("PGAUTH", "cert");
    home.put("alice.crt", "postgresql.crt");
    home.put("alice.key", "postgresql.key");
    let (calls, provider) = scripted(vec![("never".into(), None)]);
    let ap = common::access_point(&server().addr, "certdb", "alice", "");
    let connector = pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap())
        .unwrap()
        .with_credential_provider(provider);
    assert_eq!(current_user(&connector).await.unwrap(), "alice");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_providers_error_reaches_the_caller_and_nothing_is_sent() {
    server();
    let home = ClientHome::new();
    let provider = provider_fn("iam", || async {
        Err::<Credential, BoxError>("the instance has no role attached".into())
    });
    let connector = connector(&home, "scram_user").with_credential_provider(provider);
    let err = current_user(&connector).await.unwrap_err();
    assert!(
        matches!(&err, pgdap::Error::CredentialProvider { provider, .. } if provider == "iam"),
        "{err}"
    );
    assert_eq!(
        pgdap::error::Chain(&err).to_string(),
        "credential provider \"iam\" failed: the instance has no role attached"
    );
}
