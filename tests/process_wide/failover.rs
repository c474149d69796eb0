//! Failover behind HAProxy (Debian's 2.6, `mode tcp`, a primary and a backup server) and
//! reconnect storms: a `pgdap::Pool` with concurrent workers keeps serving when the
//! active backend dies, broken connections are replaced without a restart, no checkout
//! waits past the configured timeouts, file descriptors return to their baseline, and
//! failed connects back off with jitter instead of stampeding a server.
//!
//! The tests print their measurements (recovery time, error counts, connection attempts);
//! docs/reliability.md quotes them. Each runs alone ([`crate::serially`]): the descriptor
//! counts must not see another test's sockets, and the tracing test sets the process's
//! global subscriber.
//!
//! Addresses: HAProxy 127.0.0.170 (primary .171, backup .172), HAProxy 127.0.0.173 with
//! a read-only backend .174, backoff server .175, HAProxy .177 with a read-only backend
//! .176, .178 (nothing listening) for the tracing test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::proxies::HaProxy;
use crate::common::{self, access_point, ClientHome, Server, ServerSpec};
use crate::{fd_count, serially};
use pgdap::pool::Backoff;
use pgdap::{Pool, PoolError, PoolOptions};

const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

fn server(addr: &'static str, conf: &str) -> Server {
    let mut spec = ServerSpec::new(addr, None);
    spec.conf = conf.to_string();
    Server::start(spec)
}

/// A backoff whose first delay (drawn from 30-60 s) outlasts any test's next checkout.
const LONG_BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(60),
    max: Duration::from_secs(60),
};

fn pool(addr: &str, max_size: usize, backoff: Backoff) -> Pool {
    let home = ClientHome::new().var("PGMODE", "prefer");
    let config = pgdap::Config::new(
        access_point(addr, "appdb", "scram_user", "scram-pw"),
        &home.env(),
    )
    .unwrap()
    .with_options(pgdap::ConnectOptions {
        connect_timeout: CONNECT_TIMEOUT,
        ..Default::default()
    });
    Pool::from_config(
        config,
        PoolOptions {
            max_size,
            checkout_timeout: Some(CHECKOUT_TIMEOUT),
            health_check_timeout: HEALTH_CHECK_TIMEOUT,
            reconnect_backoff: backoff,
            ..Default::default()
        },
    )
    .unwrap()
}

/// One operation of a worker: when it ended, how long it took, which server answered.
#[derive(Clone, Debug)]
struct Op {
    worker: usize,
    end: Instant,
    took: Duration,
    result: Result<String, String>,
}

/// Workers that loop `get()` + `select inet_server_addr()` until told to stop.
struct Workers {
    ops: Arc<Mutex<Vec<Op>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    fn start(pool: &Pool, n: usize) -> Workers {
        let ops = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..n)
            .map(|worker| {
                let (pool, ops, stop) = (pool.clone(), ops.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let start = Instant::now();
                        let result = match pool.get().await {
                            Ok(session) => session
                                .client
                                .simple_query("select inet_server_addr()::text")
                                .await
                                .map_err(|e| format!("query: {e}"))
                                .map(|messages| {
                                    messages
                                        .iter()
                                        .find_map(|m| match m {
                                            tokio_postgres::SimpleQueryMessage::Row(r) => {
                                                r.get(0).map(str::to_string)
                                            }
                                            _ => None,
                                        })
                                        .unwrap_or_default()
                                }),
                            Err(e) => Err(match e {
                                PoolError::Unavailable { .. } => "backoff".to_string(),
                                PoolError::Timeout { .. } => "checkout timeout".to_string(),
                                other => format!("connect: {other}"),
                            }),
                        };
                        let failed = result.is_err();
                        ops.lock().unwrap().push(Op {
                            worker,
                            end: Instant::now(),
                            took: start.elapsed(),
                            result,
                        });
                        // A service would pause after an error; workers do the same.
                        let pause = if failed { 50 } else { 10 };
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                })
            })
            .collect();
        Workers { ops, stop, tasks }
    }

    async fn stop(self) -> Vec<Op> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let ops = self.ops.lock().unwrap().clone();
        ops
    }

    fn snapshot(&self) -> Vec<Op> {
        self.ops.lock().unwrap().clone()
    }
}

/// Opens `n` connections (all checked out at once, then returned), so that measurements
/// start from a full pool rather than from the first connects' SCRAM work.
async fn fill(pool: &Pool, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut held = Vec::new();
    while held.len() < n {
        let tasks: Vec<_> = (held.len()..n)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.get().await })
            })
            .collect();
        for t in tasks {
            if let Ok(session) = t.await.unwrap() {
                held.push(session);
            }
        }
        assert!(Instant::now() < deadline, "could not open {n} connections");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// When every worker has succeeded on `addr` after its last failure: the recovery
/// instant, or `None` while some worker has not.
fn recovered_at(ops: &[Op], workers: usize, since: Instant, addr: &str) -> Option<Instant> {
    let mut latest = since;
    for w in 0..workers {
        let mine: Vec<&Op> = ops
            .iter()
            .filter(|o| o.worker == w && o.end > since)
            .collect();
        let last_failure = mine.iter().rposition(|o| o.result.is_err());
        let first_ok = mine
            .iter()
            .skip(last_failure.map_or(0, |i| i + 1))
            .find(|o| o.result.as_deref().map(|a| a.starts_with(addr)) == Ok(true))?;
        latest = latest.max(first_ok.end);
    }
    Some(latest)
}

fn error_counts(ops: &[Op]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for op in ops {
        if let Err(e) = &op.result {
            let kind = e.split(':').next().unwrap_or(e).to_string();
            *counts.entry(kind).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn pool_survives_a_backend_kill_behind_haproxy() {
    serially(failover());
}

async fn failover() {
    const WORKERS: usize = 16;
    const POOL: usize = 8;
    let primary = server("127.0.0.171", "");
    let backup = server("127.0.0.172", "");
    let proxy = HaProxy::start("127.0.0.170", &primary.addr, Some(&backup.addr));
    let fds_before = fd_count();

    let pool = pool(&proxy.addr, POOL, Backoff::default());
    fill(&pool, POOL).await;
    let workers = Workers::start(&pool, WORKERS);
    let started = Instant::now();
    while (workers.snapshot().len() < WORKERS * 10 || started.elapsed() < Duration::from_secs(1))
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let steady = workers.snapshot();
    eprintln!(
        "steady state: {} operations in {:?}, {:?}",
        steady.len(),
        started.elapsed(),
        error_counts(&steady)
    );
    assert!(
        steady.len() > WORKERS * 5,
        "too few operations: {}",
        steady.len()
    );
    assert!(
        steady
            .iter()
            .all(|o| o.result.as_deref() == Ok("127.0.0.171/32")),
        "before the kill every operation is served by the primary: {:?}",
        steady
            .iter()
            .find(|o| o.result.as_deref() != Ok("127.0.0.171/32"))
    );
    let fds_steady = fd_count();
    assert_eq!(pool.status().size, POOL, "{:?}", pool.status());

    // The primary dies (immediate shutdown: its backends exit, HAProxy's health check
    // marks it down and sends new connections to the backup).
    let killed = Instant::now();
    primary.stop();
    let deadline = killed + Duration::from_secs(15);
    let recovery = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(at) = recovered_at(&workers.snapshot(), WORKERS, killed, "127.0.0.172") {
            break at.duration_since(killed);
        }
        assert!(
            Instant::now() < deadline,
            "not every worker recovered within 15 s: {:?}, status {:?}",
            error_counts(&workers.snapshot()),
            pool.status()
        );
    };
    // Keep serving a little longer: nothing fails any more.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let ops = workers.stop().await;
    let after: Vec<&Op> = ops.iter().filter(|o| o.end > killed + recovery).collect();
    assert!(
        after
            .iter()
            .all(|o| o.result.as_deref() == Ok("127.0.0.172/32")),
        "after recovery everything is served by the backup: {:?}",
        after
            .iter()
            .find(|o| o.result.as_deref() != Ok("127.0.0.172/32"))
    );
    let during: Vec<&Op> = ops.iter().filter(|o| o.end > killed).collect();
    if std::env::var_os("FAILOVER_TIMELINE").is_some() {
        for o in &during {
            if o.result.as_ref().err().map(String::as_str) != Some("backoff") {
                eprintln!(
                    "{:>6.3} s  worker {:>2}  took {:>5.3} s  {:?}",
                    o.end.duration_since(killed).as_secs_f64(),
                    o.worker,
                    o.took.as_secs_f64(),
                    o.result
                );
            }
        }
    }
    let errors = error_counts(&ops);
    let failed: usize = errors.values().sum();
    let slowest = ops.iter().map(|o| o.took).max().unwrap();
    let first_backup = during
        .iter()
        .filter(|o| o.result.as_deref() == Ok("127.0.0.172/32"))
        .map(|o| o.end.duration_since(killed))
        .min()
        .unwrap();
    let status = pool.status();
    eprintln!(
        "failover: first success on the backup {:.2} s after the kill; recovery {:.2} s (kill -> \
         every one of {WORKERS} workers succeeding on the backup); {failed} failed of {} \
         operations after the kill {errors:?}; slowest operation {:.2} s; status {status:?}",
        first_backup.as_secs_f64(),
        recovery.as_secs_f64(),
        during.len(),
        slowest.as_secs_f64()
    );
    // No checkout waited past the configured bounds: checkout timeout, plus a connect
    // (prefer: up to two attempts) and a health check.
    let bound = CHECKOUT_TIMEOUT + 2 * CONNECT_TIMEOUT + HEALTH_CHECK_TIMEOUT;
    assert!(
        slowest <= bound,
        "an operation took {slowest:?} > {bound:?}"
    );
    assert!(
        recovery < Duration::from_secs(10),
        "recovery took {recovery:?}"
    );
    // The broken connections were noticed and replaced.
    assert!(status.health_check_discards >= 1, "{status:?}");
    assert!(status.reconnects >= 1, "{status:?}");
    assert!(status.connects > POOL as u64, "{status:?}");
    assert!(status.size <= POOL, "{status:?}");
    // No descriptor leak: the same count as in steady state, and the baseline once the
    // pool is gone.
    let fds_after = fd_count();
    assert!(
        fds_after <= fds_steady,
        "fds: {fds_before} before the pool, {fds_steady} steady, {fds_after} after failover"
    );
    pool.close();
    drop(pool);
    let closed = Instant::now();
    while fd_count() > fds_before && closed.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fd_count(),
        fds_before,
        "file descriptors back to the baseline"
    );
    drop(proxy);
    drop(backup);
}

/// Counts connection attempts reaching the server's address while it is down: with the
/// default backoff a few, without it one per checkout.
async fn outage(pool: &Pool, workers: usize, outage: Duration) -> (u64, usize) {
    let w = Workers::start(pool, workers);
    tokio::time::sleep(outage).await;
    let ops = w.stop().await;
    (pool.status().connect_failures, ops.len())
}

#[test]
fn reconnects_back_off_with_jitter_and_recover_when_the_server_returns() {
    serially(backoff());
}

async fn backoff() {
    const WORKERS: usize = 16;
    let server = server("127.0.0.175", "");
    server.stop();

    // Without backoff every checkout that needs a connection tries one.
    let storm = pool(&server.addr, 8, Backoff::OFF);
    let (storm_attempts, storm_ops) = outage(&storm, WORKERS, Duration::from_secs(2)).await;
    // With the default backoff (100 ms doubling, up to 5 s), a handful in 2 s.
    let calm = pool(&server.addr, 8, Backoff::default());
    let (calm_attempts, calm_ops) = outage(&calm, WORKERS, Duration::from_secs(2)).await;
    let status = calm.status();
    eprintln!(
        "2 s outage, {WORKERS} workers: {storm_attempts} connection attempts in {storm_ops} \
         checkouts without backoff; {calm_attempts} attempts in {calm_ops} checkouts with the \
         default backoff ({} refused while backing off)",
        status.backoff_rejections
    );
    assert!(storm_attempts >= 100, "without backoff: {storm_attempts}");
    // The first wave (up to max_size = 8 concurrent connects; a refused connect fails so
    // fast that it is usually one) counts as one failure; then one probe after each delay
    // (ceilings 0.1, 0.2, 0.4, 0.8, 1.6 s, drawn from their upper half): 4 or 5 probes
    // fit in 2 s.
    assert!(
        (1 + 3..=8 + 6).contains(&calm_attempts),
        "with backoff: {calm_attempts}"
    );
    assert!(status.backoff_rejections > 100, "{status:?}");
    assert_eq!(status.size, 0);
    // The next checkout may be the probe of a slot that just came due; the one after
    // it is refused without an attempt.
    let first = calm.get().await;
    assert!(first.is_err(), "the server is down");
    match calm.get().await {
        Err(PoolError::Unavailable {
            attempts,
            retry_in,
            last_error,
            ..
        }) => {
            assert!(attempts >= 3);
            assert!(retry_in <= Duration::from_secs(5));
            assert!(last_error.contains("127.0.0.175"), "{last_error}");
        }
        other => panic!("expected Unavailable while backing off, got {other:?}"),
    }

    // The server comes back: the pool reconnects within one backoff delay (at most 5 s
    // plus a connect), without a restart of the service.
    server.restart();
    let back = Instant::now();
    let workers = Workers::start(&calm, WORKERS);
    let recovered = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(at) = recovered_at(&workers.snapshot(), WORKERS, back, "127.0.0.175") {
            break at.duration_since(back);
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "{:?}",
            calm.status()
        );
    };
    let ops = workers.stop().await;
    let status = calm.status();
    eprintln!(
        "server back: every worker served after {:.2} s; {} failures meanwhile; status {status:?}",
        recovered.as_secs_f64(),
        ops.iter()
            .filter(|o| o.end < back + recovered && o.result.is_err())
            .count()
    );
    assert!(recovered <= Duration::from_secs(5) + CONNECT_TIMEOUT);
    assert!(status.connects >= 1 && status.size >= 1, "{status:?}");
}

#[test]
fn read_only_backend_behind_the_proxy_is_pooled_without_a_target_check() {
    serially(read_only());
}

async fn read_only() {
    // A read-only server behind the service's address (e.g. a standby after a failover
    // to the wrong node). Without PGTARGETSESSIONATTRS nothing checks: sessions are
    // pooled and writes fail with read_only_sql_transaction.
    let read_only = server("127.0.0.174", "default_transaction_read_only = on\n");
    read_only.psql(
        "appdb",
        "start transaction read write; create table t (x int); grant all on t to scram_user; commit",
    );
    let proxy = HaProxy::start("127.0.0.173", &read_only.addr, None);
    let pool = pool(&proxy.addr, 2, Backoff::default());
    let session = pool.get().await.unwrap();
    let err = session
        .client
        .batch_execute("insert into t values (1)")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
        "{err}"
    );
    assert_eq!(pool.status().size, 1);
}

/// Captures what the subscriber writes while a [`Recording`] of it is alive (the load
/// tests of this process must not see the buffer grow with their events).
#[derive(Clone, Default)]
struct Capture {
    text: Arc<Mutex<Vec<u8>>>,
    recording: Arc<std::sync::atomic::AtomicBool>,
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.recording.load(std::sync::atomic::Ordering::SeqCst) {
            self.text.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Empties the buffer and records until the returned guard is dropped.
    fn record(&self) -> Recording<'_> {
        self.text.lock().unwrap().clear();
        self.recording
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Recording(self)
    }

    fn text(&self) -> String {
        String::from_utf8(self.text.lock().unwrap().clone()).unwrap()
    }
}

struct Recording<'a>(&'a Capture);

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        self.0
            .recording
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The process-wide subscriber of this test binary, writing into a buffer. Global rather
/// than scoped: a scoped (thread-local) subscriber misses the events of the runtime's
/// worker threads.
fn capture() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        capture
    })
}

#[test]
fn pool_metrics_are_traced_with_target_pgdap_pool() {
    serially(traced());
}

async fn traced() {
    let capture = capture();
    let recording = capture.record();
    // Nothing listens on 127.0.0.178: connects are refused. A long first delay, so the
    // second checkout is inside it however slow the machine is (the default's 50-100 ms
    // window could pass between two lines).
    let pool = pool("127.0.0.178", 2, LONG_BACKOFF);
    assert!(matches!(pool.get().await, Err(PoolError::Connect(_))));
    assert!(matches!(
        pool.get().await,
        Err(PoolError::Unavailable { .. })
    ));
    let status = pool.status();
    assert_eq!(
        (
            status.connect_failures,
            status.backoff_rejections,
            status.size
        ),
        (1, 1, 0),
        "{status:?}"
    );
    drop(recording);
    let text = capture.text();
    // This pool's events.
    let ours: Vec<&str> = text.lines().filter(|l| l.contains("127.0.0.178")).collect();
    let failed = ours
        .iter()
        .find(|l| l.contains("connect failed; backing off"))
        .unwrap_or_else(|| panic!("no connect-failure event in {ours:#?}"));
    assert!(
        failed.contains("WARN") && failed.contains("pgdap::pool"),
        "{failed}"
    );
    assert!(
        failed.contains("connect_failures=1") && failed.contains("attempts=1"),
        "{failed}"
    );
    let refused = ours
        .iter()
        .find(|l| l.contains("not connecting: backing off"))
        .unwrap_or_else(|| panic!("no backoff event in {ours:#?}"));
    assert!(refused.contains("backoff_rejections=1"), "{refused}");
    assert!(!text.contains("scram-pw"), "the password was logged");
}

/// With PGTARGETSESSIONATTRS=read-write a read-only server behind the address is refused:
/// the check's failure is a connect failure, counted, backed off, never pooled; psql
/// (libpq 15) refuses the same server.
#[test]
fn read_write_target_refuses_a_read_only_backend_and_never_pools_it() {
    serially(read_write_target());
}

async fn read_write_target() {
    let read_only = server("127.0.0.176", "default_transaction_read_only = on\n");
    let proxy = HaProxy::start("127.0.0.177", &read_only.addr, None);
    let home = ClientHome::new()
        .var("PGMODE", "prefer")
        .var("PGTARGETSESSIONATTRS", "read-write");
    let ap = access_point(&proxy.addr, "appdb", "scram_user", "scram-pw");
    let config = pgdap::Config::new(ap.clone(), &home.env()).unwrap();
    let pool = Pool::from_config(
        config,
        PoolOptions {
            max_size: 4,
            reconnect_backoff: Backoff::OFF,
            ..Default::default()
        },
    )
    .unwrap();
    for _ in 0..3 {
        let err = pool.get().await.unwrap_err();
        assert!(matches!(err, PoolError::Connect(_)), "{err:?}");
        assert!(err.to_string().contains("session is read-only"), "{err}");
    }
    let status = pool.status();
    assert_eq!(
        (status.size, status.connects, status.connect_failures),
        (0, 0, 3),
        "{status:?}"
    );
    // psql with the same variable refuses the same server.
    let out = std::process::Command::new(format!("{}/psql", common::PG_BIN))
        .env_clear()
        .env("PGHOST", &proxy.addr)
        .env("PGUSER", "scram_user")
        .env("PGPASSWORD", "scram-pw")
        .env("PGDATABASE", "appdb")
        .env("PGTARGETSESSIONATTRS", "read-write")
        .args(["-X", "-w", "-c", "select 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("session is read-only"));
    // With backoff the pool also stops hammering the read-only server (a long first delay,
    // so the second checkout is inside it however slow the machine is).
    let home = ClientHome::new().var("PGTARGETSESSIONATTRS", "read-write");
    let pool = Pool::from_config(
        pgdap::Config::new(ap, &home.env()).unwrap(),
        PoolOptions {
            reconnect_backoff: LONG_BACKOFF,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(pool.get().await, Err(PoolError::Connect(_))));
    assert!(matches!(
        pool.get().await,
        Err(PoolError::Unavailable { .. })
    ));
    assert_eq!(pool.status().size, 0);
}
