//! Load: many concurrent TLS connections opened and closed in a loop for a bounded time,
//! directly and through the pool: no unexpected error, no file descriptor left behind,
//! no connection left on the server, memory back to its baseline.
//!
//! One server of its own on 127.0.0.61 with `max_connections = 100`; 40 connections at
//! once stay below it (and below the shared servers' 60, should the limit be lowered).
//! A quarter of the clients authenticate with SCRAM, the others with a client certificate,
//! all over verify-ca TLS (SCRAM's 4096 PBKDF2 rounds run unoptimised in a debug build and
//! would make the CPU, not the library, the subject of the test).
//!
//! Memory: resident set size (VmRSS) is compared after `malloc_trim(0)`, which returns
//! freed heap pages to the OS, so that what is compared is memory still in use rather
//! than what the allocator keeps cached. The tolerance is [`RSS_TOLERANCE_KB`]. Both
//! measurements count the whole process, so each test runs alone ([`crate::serially`]).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{access_point, ClientHome, Server, ServerSpec};
use crate::{fd_count, serially};

const ADDR: &str = "127.0.0.61";
/// Connections open at once.
const CONCURRENCY: usize = 40;
/// How long each loop runs.
const RUN_FOR: Duration = Duration::from_secs(6);
/// Allowed growth of the resident set after a run (allocator and runtime bookkeeping
/// that is not given back, e.g. tokio's per-worker buffers and OpenSSL's caches).
const RSS_TOLERANCE_KB: u64 = 4 * 1024;

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let mut spec = ServerSpec::new(ADDR, Some("server"));
        spec.conf = "max_connections = 100\nlog_connections = off\n".into();
        Server::start(spec)
    })
}

/// Two connectors: SCRAM (`scram_user`) and certificate authentication (`alice`, certdb).
fn connectors() -> (Vec<pgdap::Connector>, Vec<ClientHome>) {
    let scram = ClientHome::new().var("PGMODE", "verify-ca");
    scram.put("ca.crt", "root.crt");
    let cert = ClientHome::new()
        .var("PGMODE", "verify-ca")
        .var("PGAUTH", "cert");
    cert.put("ca.crt", "root.crt");
    cert.put("alice.crt", "postgresql.crt");
    cert.put("alice.key", "postgresql.key");
    let options = pgdap::ConnectOptions {
        connect_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let make = |ap, home: &ClientHome| {
        pgdap::Connector::new(
            pgdap::Config::new(ap, &home.env())
                .unwrap()
                .with_options(options.clone()),
        )
        .unwrap()
    };
    let connectors = vec![
        make(
            access_point(ADDR, "appdb", "scram_user", "scram-pw"),
            &scram,
        ),
        make(access_point(ADDR, "certdb", "alice", ""), &cert),
    ];
    (connectors, vec![scram, cert])
}

fn rss_kb() -> u64 {
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Client connections the server has open (backends of our two users).
fn server_connections() -> usize {
    server()
        .psql(
            "postgres",
            "select count(*) from pg_stat_activity where usename in ('scram_user', 'alice')",
        )
        .parse()
        .unwrap()
}

/// Waits (up to 10 s) until the process is back to `fds` descriptors and the server to
/// no client connection; returns what was last seen.
async fn settle(fds: usize) -> (usize, usize) {
    let mut seen = (0, 0);
    for _ in 0..100 {
        seen = (
            fd_count(),
            tokio::task::spawn_blocking(server_connections)
                .await
                .unwrap(),
        );
        if seen.0 <= fds && seen.1 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// One connection: open, check TLS, one query, close and wait for the connection task.
async fn one_direct(connector: &pgdap::Connector) -> Result<(), String> {
    let session = connector
        .connect_spawned()
        .await
        .map_err(|e| e.to_string())?;
    if !session.tls.as_ref().is_some_and(|t| t.verified) {
        return Err("not a verified TLS session".into());
    }
    let n: i32 = session
        .client
        .query_one("select 1", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    if n != 1 {
        return Err(format!("select 1 gave {n}"));
    }
    let pgdap::Session { client, task, .. } = session;
    drop(client);
    task.await.map_err(|e| e.to_string())
}

struct Measure {
    fds: usize,
    rss: u64,
}

impl Measure {
    /// Waits until the server has no client connection left and the descriptor count
    /// has not changed for half a second (connection tasks of the warm-up closing their
    /// sockets), then measures.
    async fn baseline() -> Measure {
        let mut last = (usize::MAX, usize::MAX);
        let mut stable = 0;
        for _ in 0..100 {
            let seen = (
                fd_count(),
                tokio::task::spawn_blocking(server_connections)
                    .await
                    .unwrap(),
            );
            stable = if seen == last && seen.1 == 0 {
                stable + 1
            } else {
                0
            };
            if stable == 5 {
                break;
            }
            last = seen;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(stable, 5, "no stable baseline: {last:?}");
        Measure {
            fds: last.0,
            rss: rss_kb(),
        }
    }

    async fn check(&self, label: &str) {
        let (fds, conns) = settle(self.fds).await;
        assert_eq!(conns, 0, "{label}: connections left open on the server");
        assert!(
            fds <= self.fds,
            "{label}: {fds} file descriptors open after the run, {} before",
            self.fds
        );
        let rss = rss_kb();
        println!(
            "{label}: fds {} -> {fds}, VmRSS {} kB -> {rss} kB ({:+} kB)",
            self.fds,
            self.rss,
            rss as i64 - self.rss as i64
        );
        assert!(
            rss <= self.rss + RSS_TOLERANCE_KB,
            "{label}: VmRSS grew from {} kB to {rss} kB",
            self.rss
        );
    }
}

/// Errors and successes of one run.
#[derive(Default)]
struct Tally {
    errors: Vec<String>,
    done: [usize; 2],
}

impl Tally {
    fn assert_clean(&self, label: &str, at_least: usize) {
        assert!(
            self.errors.is_empty(),
            "{label}: {} errors: {:?}",
            self.errors.len(),
            &self.errors[..self.errors.len().min(5)]
        );
        let total = self.done[0] + self.done[1];
        assert!(total >= at_least, "{label}: only {total} done");
    }
}

/// `CONCURRENCY` tasks opening, using and closing connections until `run_for` is over;
/// a quarter use SCRAM, the others a client certificate.
async fn direct_workload(connectors: &[pgdap::Connector], run_for: Duration) -> Tally {
    let kind = |i: usize| usize::from(!i.is_multiple_of(4));
    let deadline = Instant::now() + run_for;
    let mut workers = Vec::new();
    for i in 0..CONCURRENCY {
        let c = connectors[kind(i)].clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                match one_direct(&c).await {
                    Ok(()) => tally.done[kind(i)] += 1,
                    Err(e) => tally.errors.push(e),
                }
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for w in workers {
        let t = w.await.unwrap();
        tally.errors.extend(t.errors);
        tally.done[0] += t.done[0];
        tally.done[1] += t.done[1];
    }
    tally
}

#[test]
fn concurrent_tls_connections_directly() {
    serially(directly());
}

async fn directly() {
    server();
    let (connectors, _homes) = connectors();
    // Warm-up: the same workload for a second (lazy statics, runtime and allocator
    // structures at full concurrency, OpenSSL's caches), then the baseline.
    direct_workload(&connectors, Duration::from_secs(1))
        .await
        .assert_clean("direct warm-up", 1);
    let base = Measure::baseline().await;

    let tally = direct_workload(&connectors, RUN_FOR).await;
    let [scram, cert] = tally.done;
    println!(
        "direct: {} connections ({scram} SCRAM, {cert} certificate) in {RUN_FOR:?} at concurrency {CONCURRENCY}",
        scram + cert
    );
    tally.assert_clean("direct", CONCURRENCY);
    base.check("direct").await;
}

/// Two pools of `CONCURRENCY / 2` (one per authentication) and `2 * CONCURRENCY`
/// callers until `run_for` is over: callers wait for each other, connections are reused,
/// and every tenth checkout discards its connection so that connections are opened and
/// closed all along. The pools are closed and dropped at the end.
async fn pool_workload(connectors: &[pgdap::Connector], run_for: Duration) -> Tally {
    let options = pgdap::PoolOptions {
        max_size: CONCURRENCY / 2,
        checkout_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let pools: Vec<pgdap::Pool> = connectors
        .iter()
        .map(|c| pgdap::Pool::new(c.clone(), options.clone()).unwrap())
        .collect();
    let deadline = Instant::now() + run_for;
    let mut workers = Vec::new();
    for i in 0..CONCURRENCY * 2 {
        let pool = pools[i % 2].clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut n = 0usize;
            while Instant::now() < deadline {
                n += 1;
                let result = async {
                    let session = pool.get().await.map_err(|e| e.to_string())?;
                    let one: i32 = session
                        .client
                        .query_one("select 1", &[])
                        .await
                        .map_err(|e| e.to_string())?
                        .get(0);
                    if one != 1 {
                        return Err(format!("select 1 gave {one}"));
                    }
                    if n.is_multiple_of(10) {
                        session.discard();
                    }
                    Ok::<(), String>(())
                }
                .await;
                match result {
                    Ok(()) => tally.done[i % 2] += 1,
                    Err(e) => tally.errors.push(e),
                }
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for w in workers {
        let t = w.await.unwrap();
        tally.errors.extend(t.errors);
        tally.done[0] += t.done[0];
        tally.done[1] += t.done[1];
    }
    for pool in &pools {
        let status = pool.status();
        assert!(status.size <= CONCURRENCY / 2, "{status:?}");
        pool.close();
    }
    tally
}

#[test]
fn concurrent_checkouts_through_the_pool() {
    serially(through_the_pool());
}

async fn through_the_pool() {
    server();
    let (connectors, _homes) = connectors();
    pool_workload(&connectors, Duration::from_secs(1))
        .await
        .assert_clean("pool warm-up", 1);
    let base = Measure::baseline().await;

    let tally = pool_workload(&connectors, RUN_FOR).await;
    println!(
        "pool: {} checkouts in {RUN_FOR:?}, 2 pools of {}",
        tally.done[0] + tally.done[1],
        CONCURRENCY / 2
    );
    tally.assert_clean("pool", CONCURRENCY * 2);
    base.check("pool").await;
}
