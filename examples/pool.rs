//! `pool --config FILE [--tasks N] [--seconds S] [--size N] [--max-lifetime SECS] [--sql SQL]`:
//! a service in miniature. N tasks query through one `pgdap::Pool` for S seconds (each
//! task checks a connection out, runs SQL, gives it back, again), and the last line of
//! stdout is one JSON object:
//!
//! ```text
//! {"queries":51234,"errors":0,"error_samples":[],"connections_opened":8,
//!  "p50_ms":0.41,"p99_ms":1.9,"tasks":64,"seconds":10.0,"size":8}
//! ```
//!
//! `--max-lifetime SECS` makes the pool replace each connection after SECS seconds
//! (`PoolOptions::max_lifetime`), so new connections, and with them new credentials
//! (a rotated Access Point password, a provider's token), are exercised all the time.
//! It is also the load tool of the pool and failover work (docs/reliability.md).
//!
//! `--compare-deadpool` runs the same load twice in one process, through `pgdap::Pool`
//! and then through deadpool-postgres (a pool of the same size on pgdap's `MakeTls`: the
//! same TLS verification, tokio-postgres' own connect), and prints
//! `{"pgdap": {...}, "deadpool": {...}, "ratio_qps": ..., "ratio_p50": ..., "ratio_p99": ...}`.
//!
//! Exit status: 0 when it ran, whatever `errors` is; 1 on a bad setting (the Access
//! Point, the environment, the pool options); 2 on a bad command line.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: pool --config FILE [--tasks N] [--seconds S] [--size N] [--max-lifetime SECS] [--sql SQL]\n\
\n\
Runs N tasks (default 8) querying through one pgdap::Pool of --size connections\n\
(default 8) for S seconds (default 10), with the Access Point in FILE and the PG*\n\
variables of the environment, and prints one JSON object as the last line of stdout:\n\
queries, errors, error_samples (up to 5 messages), connections_opened, p50_ms, p99_ms\n\
(per query, checkout included), tasks, seconds, size.\n\
\n\
--max-lifetime SECS  replace each connection after SECS seconds (PoolOptions::max_lifetime)\n\
--sql SQL            the query (default: select 1)\n\
--compare-deadpool   the same load through deadpool-postgres too (same size, pgdap's MakeTls)\n\
\n\
Exit status: 0 when it ran (whatever errors is); 1 on a bad setting; 2 on a bad command line.";

struct Args {
    config: std::path::PathBuf,
    tasks: usize,
    seconds: f64,
    size: usize,
    max_lifetime: Option<Duration>,
    sql: String,
    compare_deadpool: bool,
}

fn parse() -> Result<Args, ExitCode> {
    let bad = |why: String| {
        eprintln!("pool: {why}\n{USAGE}");
        Err(ExitCode::from(2))
    };
    let mut args = Args {
        config: Default::default(),
        tasks: 8,
        seconds: 10.0,
        size: 8,
        max_lifetime: None,
        sql: "select 1".into(),
        compare_deadpool: false,
    };
    let mut config = None;
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            return Err(ExitCode::SUCCESS);
        }
        if arg == "--compare-deadpool" {
            args.compare_deadpool = true;
            continue;
        }
        let Some(value) = argv.next() else {
            return bad(format!("{arg} needs a value"));
        };
        let number = |v: &str| v.parse::<f64>().ok().filter(|n| n.is_finite() && *n > 0.0);
        match arg.as_str() {
            "--config" => config = Some(value.into()),
            "--sql" => args.sql = value,
            "--tasks" | "--size" => match value.parse::<usize>() {
                Ok(n) if n > 0 => {
                    if arg == "--tasks" {
                        args.tasks = n
                    } else {
                        args.size = n
                    }
                }
                _ => return bad(format!("{arg} {value:?}: not a positive integer")),
            },
            "--seconds" => match number(&value) {
                Some(s) => args.seconds = s,
                None => return bad(format!("--seconds {value:?}: not a positive number")),
            },
            "--max-lifetime" => match number(&value) {
                Some(s) => args.max_lifetime = Some(Duration::from_secs_f64(s)),
                None => return bad(format!("--max-lifetime {value:?}: not a positive number")),
            },
            other => return bad(format!("unexpected argument {other:?}")),
        }
    }
    match config {
        Some(c) => {
            args.config = c;
            Ok(args)
        }
        None => bad("--config FILE is required".into()),
    }
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    samples: Vec<String>,
}

/// A pool the load runs through.
#[derive(Clone)]
enum Target {
    Pgdap(pgdap::Pool),
    Deadpool(deadpool_postgres::Pool),
}

impl Target {
    async fn query(&self, sql: &str) -> Result<(), String> {
        match self {
            Target::Pgdap(pool) => query(pool, sql).await,
            Target::Deadpool(pool) => {
                let client = pool
                    .get()
                    .await
                    .map_err(|e| pgdap::error::Chain(&e).to_string())?;
                client
                    .simple_query(sql)
                    .await
                    .map(|_| ())
                    .map_err(|e| pgdap::error::Chain(&e).to_string())
            }
        }
    }

    fn connections_opened(&self) -> u64 {
        match self {
            Target::Pgdap(pool) => pool.status().connects,
            // deadpool-postgres does not count them; its size is the floor.
            Target::Deadpool(pool) => pool.status().size as u64,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let pool = match build(&args) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("pool: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ours = run(&args, Target::Pgdap(pool.clone())).await;
    if !args.compare_deadpool {
        println!("{ours}");
        return ExitCode::SUCCESS;
    }
    let peer = match deadpool(&args, pool.connector()) {
        Ok(peer) => peer,
        Err(e) => {
            eprintln!("pool: deadpool-postgres: {e}");
            return ExitCode::FAILURE;
        }
    };
    let theirs = run(&args, Target::Deadpool(peer)).await;
    let ratio = |key: &str| {
        let (a, b) = (
            ours[key].as_f64().unwrap_or(0.0),
            theirs[key].as_f64().unwrap_or(0.0),
        );
        if b > 0.0 {
            (a / b * 1000.0).round() / 1000.0
        } else {
            0.0
        }
    };
    let json = serde_json::json!({
        "ratio_qps": ratio("qps"),
        "ratio_p50": ratio("p50_ms"),
        "ratio_p99": ratio("p99_ms"),
        "pgdap": ours,
        "deadpool": theirs,
    });
    println!("{json}");
    ExitCode::SUCCESS
}

/// deadpool-postgres of the same size on the connector's tokio-postgres settings and
/// pgdap's `MakeTls` (the same verification; no libpq fallbacks: the first attempt of
/// the sslmode only).
fn deadpool(
    args: &Args,
    connector: &pgdap::Connector,
) -> Result<deadpool_postgres::Pool, Box<dyn std::error::Error>> {
    use pgdap::connect::Attempt;
    let manager_config = deadpool_postgres::ManagerConfig {
        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
    };
    let manager = match connector.make_tls() {
        Some(tls) => deadpool_postgres::Manager::from_config(
            connector.tokio_postgres_config(Attempt::SslRequired),
            tls,
            manager_config,
        ),
        None => deadpool_postgres::Manager::from_config(
            connector.tokio_postgres_config(Attempt::Plain),
            pgdap::tokio_postgres::NoTls,
            manager_config,
        ),
    };
    Ok(deadpool_postgres::Pool::builder(manager)
        .max_size(args.size)
        .build()?)
}

/// The load: `args.tasks` tasks through `target` for `args.seconds`; the JSON summary.
async fn run(args: &Args, target: Target) -> serde_json::Value {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(args.seconds);
    let tasks: Vec<_> = (0..args.tasks)
        .map(|_| {
            let (target, tally, sql) = (target.clone(), tally.clone(), args.sql.clone());
            tokio::spawn(async move {
                let mut mine = Tally::default();
                while Instant::now() < end {
                    let start = Instant::now();
                    match target.query(&sql).await {
                        Ok(()) => mine.latencies.push(start.elapsed()),
                        Err(e) => {
                            mine.errors += 1;
                            if mine.samples.len() < 5 {
                                mine.samples.push(e);
                            }
                            // An error is not a reason to spin: a short pause.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                if let Ok(mut all) = tally.lock() {
                    all.latencies.append(&mut mine.latencies);
                    all.errors += mine.errors;
                    for s in mine.samples {
                        if all.samples.len() < 5 && !all.samples.contains(&s) {
                            all.samples.push(s);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();
    let opened = target.connections_opened();
    let mut tally = match Arc::try_unwrap(tally) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(_) => Tally::default(),
    };
    tally.latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if tally.latencies.is_empty() {
            return 0.0;
        }
        let i = ((tally.latencies.len() - 1) as f64 * q).round() as usize;
        tally.latencies[i].as_secs_f64() * 1000.0
    };
    let queries = tally.latencies.len();
    serde_json::json!({
        "queries": queries,
        "errors": tally.errors,
        "error_samples": tally.samples,
        "connections_opened": opened,
        "p50_ms": (quantile(0.50) * 1000.0).round() / 1000.0,
        "p99_ms": (quantile(0.99) * 1000.0).round() / 1000.0,
        "qps": (queries as f64 / elapsed.as_secs_f64()).round(),
        "tasks": args.tasks,
        "seconds": args.seconds,
        "size": args.size,
    })
}

fn build(args: &Args) -> Result<pgdap::Pool, pgdap::error::Report> {
    let ap = pgdap::AccessPoint::from_file(&args.config)?;
    let config = pgdap::Config::new(ap, &pgdap::Environment::from_process_env())?;
    let options = pgdap::PoolOptions {
        max_size: args.size,
        max_lifetime: args.max_lifetime,
        ..Default::default()
    };
    Ok(pgdap::Pool::from_config(config, options)?)
}

async fn query(pool: &pgdap::Pool, sql: &str) -> Result<(), String> {
    let session = pool
        .get()
        .await
        .map_err(|e| pgdap::error::Chain(&e).to_string())?;
    session
        .client
        .simple_query(sql)
        .await
        .map(|_| ())
        .map_err(|e| pgdap::error::Chain(&e).to_string())
}
