//! Pools over host lists: a read-write pool follows a failover (primary killed, a standby
//! promoted) without a restart, a prefer-standby pool spreads over the standbys, and
//! pooled connections to a server that turned read-only are dropped on checkout.
//!
//! Here rather than in tests/process_wide: these tests measure times and outcomes of their
//! own pool, not the process (descriptors, memory, the global subscriber). The times they
//! print are taken while other modules' tests run in parallel.
//!
//! Addresses: failover cluster 127.0.0.230 (primary), .231, .232; read cluster .233
//! (primary), .234, .235; read-only demotion .236, .237.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{access_point, psql_served, ClientHome, Cluster, Server, ServerSpec};
use pgdap::{Pool, PoolOptions};

/// Every checkout and its query must return within this bound (else the caller hung):
/// the checkout timeout, plus a connect over three members of at most PGCONNECT_TIMEOUT
/// each (two passes for prefer-standby), with room.
const BOUND: Duration = Duration::from_secs(40);
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

/// The case's home: `PGMODE=prefer`, `PGCONNECT_TIMEOUT=5` (no member hangs here; the
/// bound only keeps a connect on a loaded 2-core machine from timing out) and `vars`.
fn home(vars: &[(&str, &str)]) -> ClientHome {
    let mut home = ClientHome::new()
        .var("PGMODE", "prefer")
        .var("PGCONNECT_TIMEOUT", "5");
    for (name, value) in vars {
        home.set(name, *value);
    }
    home
}

fn ap(hosts: &[&str]) -> pgdap::AccessPoint {
    access_point(&hosts.join(","), "appdb", "scram_user", "scram-pw")
}

fn pool(home: &ClientHome, hosts: &[&str], max_size: usize) -> Pool {
    let config = pgdap::Config::new(ap(hosts), &home.env()).unwrap();
    Pool::from_config(
        config,
        PoolOptions {
            max_size,
            checkout_timeout: Some(CHECKOUT_TIMEOUT),
            health_check_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .unwrap()
}

/// psql 15 with the pool's settings: the server that serves a new session.
fn psql_picks(home: &ClientHome, hosts: &[&str]) -> Result<String, String> {
    psql_served(&ap(hosts), &home.env(), home.home()).map(|s| s.server)
}

/// Checks out and runs `sql` (one text column) within [`BOUND`]; `Err("hang")` past it.
async fn checkout_query(pool: &Pool, sql: &str) -> Result<String, String> {
    let work = async {
        let session = pool.get().await.map_err(|e| format!("checkout: {e}"))?;
        let row = session
            .client
            .query_one(sql, &[])
            .await
            .map_err(|e| format!("query: {e}"))?;
        Ok(row.get::<_, String>(0))
    };
    tokio::time::timeout(BOUND, work)
        .await
        .unwrap_or_else(|_| Err("hang".to_string()))
}

/// `n` sessions checked out at once (each within [`BOUND`]), each asked `sql`; then all
/// returned to the pool.
async fn held_at_once(pool: &Pool, n: usize, sql: &str) -> Vec<Result<String, String>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (pool, sql) = (pool.clone(), sql.to_string());
            tokio::spawn(async move {
                let work = async {
                    let session = pool.get().await.map_err(|e| format!("checkout: {e}"))?;
                    let row = session
                        .client
                        .query_one(&sql, &[])
                        .await
                        .map_err(|e| format!("query: {e}"))?;
                    // Held until every task has its own session.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(row.get::<_, String>(0))
                };
                tokio::time::timeout(BOUND, work)
                    .await
                    .unwrap_or_else(|_| Err("hang".to_string()))
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn counts(results: &[Result<String, String>]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in results {
        let key = match r {
            Ok(v) => v.clone(),
            Err(e) => format!("error: {e}"),
        };
        *m.entry(key).or_insert(0) += 1;
    }
    m
}

#[derive(Clone, Debug)]
struct Op {
    end: Instant,
    took: Duration,
    result: Result<String, String>,
}

const WRITE: &str = "insert into writes (at) values (now()) returning host(inet_server_addr())";

/// 8 tasks writing through a read-write pool over [primary, standby1, standby2]; the
/// primary is killed, standby1 promoted: no caller hangs, errors stop soon after the
/// promotion, and afterwards every session is on the new primary. psql 15 with the same
/// settings is asked at each stage (the harness's failover is checked even while
/// pgdap's side fails); pgdap's assertions come last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_write_pool_follows_failover() {
    const P: &str = "127.0.0.230";
    const S1: &str = "127.0.0.231";
    const S2: &str = "127.0.0.232";
    const WORKERS: usize = 8;
    let Some(cluster) = Cluster::start(P, &[S1, S2]) else {
        return;
    };
    cluster.primary.psql(
        "appdb",
        "create table writes (id bigserial primary key, at timestamptz); \
         grant all on writes to scram_user; grant all on sequence writes_id_seq to scram_user",
    );
    cluster.sync();
    let home = home(&[("PGTARGETSESSIONATTRS", "read-write")]);
    assert_eq!(psql_picks(&home, &[P, S1, S2]), Ok(P.to_string()));
    let pool = pool(&home, &[P, S1, S2], 8);

    let ops = Arc::new(Mutex::new(Vec::<Op>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (pool, ops, stop) = (pool.clone(), ops.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let start = Instant::now();
                    let result = checkout_query(&pool, WRITE).await;
                    let failed = result.is_err();
                    ops.lock().unwrap().push(Op {
                        end: Instant::now(),
                        took: start.elapsed(),
                        result,
                    });
                    let pause = if failed { 50 } else { 10 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            })
        })
        .collect();
    let snapshot = || ops.lock().unwrap().clone();
    let results = |ops: &[Op]| ops.iter().map(|o| o.result.clone()).collect::<Vec<_>>();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let steady = snapshot();
    eprintln!("before the kill: {:?}", counts(&results(&steady)));

    let killed = Instant::now();
    tokio::task::block_in_place(|| cluster.primary.kill());
    // An outage a failover manager would take to decide.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let psql_outage = tokio::task::block_in_place(|| psql_picks(&home, &[P, S1, S2]));
    tokio::task::block_in_place(|| cluster.standbys[0].promote());
    // pg_is_in_recovery() is false: the new primary accepts writes from now on.
    let ready = Instant::now();
    eprintln!(
        "failover: kill -> promoted standby accepts writes: {:.2} s",
        ready.duration_since(killed).as_secs_f64()
    );
    let psql_after = tokio::task::block_in_place(|| psql_picks(&home, &[P, S1, S2]));
    eprintln!("psql 15, read-write: during the outage {psql_outage:?}; after {psql_after:?}");
    let err = psql_outage.expect_err("no read-write member during the outage");
    assert!(
        err.contains(&format!("\"{P}\", port 5432 failed: Connection refused"))
            && err.contains(&format!("\"{S1}\", port 5432 failed: session is read-only"))
            && err.contains(&format!("\"{S2}\", port 5432 failed: session is read-only")),
        "{err}"
    );
    assert_eq!(psql_after, Ok(S1.to_string()));

    // Run until no error for 1.5 s (20 s at most).
    let deadline = ready + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ops = snapshot();
        let last_error = ops
            .iter()
            .filter(|o| o.result.is_err())
            .map(|o| o.end)
            .max();
        let quiet_since = last_error.unwrap_or(ready).max(ready);
        if quiet_since.elapsed() > Duration::from_millis(1500) || Instant::now() > deadline {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let ops = snapshot();
    let after_kill: Vec<Op> = ops.iter().filter(|o| o.end > killed).cloned().collect();
    let first_write = after_kill
        .iter()
        .filter(|o| o.result.as_deref() == Ok(S1))
        .map(|o| o.end.saturating_duration_since(ready))
        .min();
    let last_error = after_kill
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.end)
        .max();
    let errors_stop = last_error.map(|e| e.saturating_duration_since(ready));
    let slowest = ops.iter().map(|o| o.took).max().unwrap();
    eprintln!(
        "failover: first successful write through the pool {} after the new primary \
         accepted connections; last error {}; {} operations after the kill {:?}; slowest \
         operation {:.2} s; pool {:?}",
        first_write.map_or("never".to_string(), |d| format!("{} ms", d.as_millis())),
        errors_stop.map_or("none".to_string(), |d| format!(
            "{} ms after it",
            d.as_millis()
        )),
        after_kill.len(),
        counts(&results(&after_kill)),
        slowest.as_secs_f64(),
        pool.status()
    );
    // Every session the pool hands out now is on the new primary, out of recovery.
    let now = held_at_once(
        &pool,
        8,
        "select host(inet_server_addr()) || ' ' || pg_is_in_recovery()::text",
    )
    .await;

    assert!(
        steady.len() >= WORKERS * 5,
        "too few writes before the kill: {:?}",
        counts(&results(&steady))
    );
    assert!(
        steady.iter().all(|o| o.result.as_deref() == Ok(P)),
        "before the kill every write goes to the primary: {:?}",
        counts(&results(&steady))
    );
    assert!(
        ops.iter()
            .all(|o| o.result.as_ref().err().map(String::as_str) != Some("hang")),
        "a checkout or write hung past {BOUND:?}"
    );
    assert!(slowest < BOUND, "slowest operation {slowest:?}");
    let first_write = first_write.expect("no write reached the new primary");
    assert!(
        first_write < Duration::from_secs(5),
        "first write on the new primary {first_write:?} after it accepted connections"
    );
    if let Some(errors_stop) = errors_stop {
        assert!(
            errors_stop < Duration::from_secs(5),
            "errors went on {errors_stop:?} after the promotion"
        );
    }
    // After the last error, every write went to the new primary; none ever reached S2.
    let last_error = last_error.unwrap_or(killed);
    let after_errors: Vec<Op> = ops.iter().filter(|o| o.end > last_error).cloned().collect();
    assert!(
        !after_errors.is_empty() && after_errors.iter().all(|o| o.result.as_deref() == Ok(S1)),
        "after the errors stopped: {:?}",
        counts(&results(&after_errors))
    );
    assert!(ops.iter().all(|o| o.result.as_deref() != Ok(S2)));
    assert_eq!(
        counts(&now),
        BTreeMap::from([(format!("{S1} false"), 8)]),
        "sessions after the failover"
    );
}

/// A read pool (PGTARGETSESSIONATTRS=prefer-standby, PGLOADBALANCEHOSTS=random) over
/// [primary, s1, s2]: spread over both standbys and never the primary while a standby is
/// up; with one standby down, the other; with both down, the primary (second pass). psql
/// 15 (no load balancing) is asked at each stage: s1, s2, then the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefer_standby_pool_spreads_over_the_standbys() {
    const P: &str = "127.0.0.233";
    const S1: &str = "127.0.0.234";
    const S2: &str = "127.0.0.235";
    const N: usize = 24;
    const SQL: &str = "select host(inet_server_addr())";
    let Some(cluster) = Cluster::start(P, &[S1, S2]) else {
        return;
    };
    let home = home(&[
        ("PGTARGETSESSIONATTRS", "prefer-standby"),
        ("PGLOADBALANCEHOSTS", "random"),
    ]);
    let pool = pool(&home, &[P, S1, S2], N);
    let mut stages = Vec::new();
    // N sessions at once: N connections, each placed at random. Both standbys appear
    // unless all N went to one (probability 2 * 2^-24).
    assert_eq!(psql_picks(&home, &[P, S1, S2]), Ok(S1.to_string()));
    stages.push(counts(&held_at_once(&pool, N, SQL).await));

    tokio::task::block_in_place(|| cluster.standbys[0].kill());
    assert_eq!(psql_picks(&home, &[P, S1, S2]), Ok(S2.to_string()));
    // Idle past the health check's 500 ms: pooled sessions are checked before use.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stages.push(counts(&held_at_once(&pool, N, SQL).await));

    tokio::task::block_in_place(|| cluster.standbys[1].kill());
    assert_eq!(psql_picks(&home, &[P, S1, S2]), Ok(P.to_string()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    stages.push(counts(&held_at_once(&pool, N, SQL).await));
    eprintln!("prefer-standby, random, {N} sessions: all up, s1 down, both down: {stages:?}");

    assert_eq!(
        stages[0].keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([S1.to_string(), S2.to_string()]),
        "all up: {:?}",
        stages[0]
    );
    assert_eq!(stages[1], BTreeMap::from([(S2.to_string(), N)]), "s1 down");
    assert_eq!(stages[2], BTreeMap::from([(P.to_string(), N)]), "both down");
}

/// Sessions pooled on a server that turns read-only (as a demoted primary) are dropped
/// on checkout by a read-write pool: checkouts go to the member that still accepts
/// writes (as psql 15 with the same settings does for a new session).
#[tokio::test]
async fn pooled_sessions_on_a_server_turned_read_only_are_dropped() {
    const A: &str = "127.0.0.236";
    const B: &str = "127.0.0.237";
    const SQL: &str =
        "select host(inet_server_addr()) || ' ' || current_setting('transaction_read_only')";
    let a = Server::start(ServerSpec::new(A, None));
    let _b = Server::start(ServerSpec::new(B, None));
    let home = home(&[("PGTARGETSESSIONATTRS", "read-write")]);
    assert_eq!(psql_picks(&home, &[A, B]), Ok(A.to_string()));
    let pool = pool(&home, &[A, B], 4);
    let before = counts(&held_at_once(&pool, 4, SQL).await);
    a.psql(
        "postgres",
        "alter system set default_transaction_read_only = on",
    );
    a.psql("postgres", "select pg_reload_conf()");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(psql_picks(&home, &[A, B]), Ok(B.to_string()));
    let mut after = Vec::new();
    for _ in 0..8 {
        after.push(checkout_query(&pool, SQL).await);
    }
    let after = counts(&after);
    eprintln!(
        "before: {before:?}; after {A} turned read-only: {after:?}, pool {:?}",
        pool.status()
    );
    assert_eq!(before, BTreeMap::from([(format!("{A} off"), 4)]));
    assert_eq!(after, BTreeMap::from([(format!("{B} off"), 8)]));
}
