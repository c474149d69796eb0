//! `bench --config FILE --n N [--pool] [--raw]`: connection latency with the Access Point
//! in FILE and the `PG*` variables of the process environment.
//!
//! - default: N connections one after another through one `pgdap::Connector` (its TLS
//!   context built once), each: connect (`Connector::connect_spawned`: libpq's sequence and
//!   the PGCLIENTENCODING set-up), `select 1`, close (drop the client, wait for the
//!   connection task to end).
//! - `--connect-only`: the same with `Connector::connect()` plus spawning the connection,
//!   without the session's encoding set-up (the exact steps of `--raw`).
//! - `--raw`: the floor of the stack: tokio-postgres + postgres-native-tls with one reused
//!   `TlsConnector` given the same settings (PGMODE, PGROOTCA, PGCERT/PGKEY, connect
//!   timeout, keepalives). Supports PGMODE disable, require, verify-ca and verify-full;
//!   native-tls has no CRL support, so PGCRL is not applied.
//! - `--compare`: pgdap, `--connect-only` and `--raw` connection by connection in
//!   rotating order in one process (N of each); the top-level fields are pgdap's, with
//!   `pgdap`, `pgdap_connect` and `raw` summaries and `ratio_pgdap_raw`,
//!   `ratio_connect_raw` (ratios of medians).
//! - `--pool`: one `pgdap::Pool` (max size 1); after one warm-up checkout, N times check a
//!   connection out and return it. `--pool-check closed|query|idle` picks the health check
//!   (default: the pool's default, `select 1` only after 500 ms idle).
//!
//! Options: `--warmup W` connections before timing (default 5, not counted); `--hold K`
//! before the timed loop opens K connections and keeps them open, reading VmRSS/VmHWM
//! from /proc/self/status before and after (memory per open connection).
//!
//! The last line of stdout is one JSON object: `n`, `median_ms`, `p90_ms`, and `mean_ms`,
//! `min_ms`, `max_ms`, `conns_per_s` (N over the loop's wall time), `impl`, `ssl`, and
//! with `--hold`: `hold`, `rss_kib_per_conn`, `hwm_kib_per_conn`.
//!
//! `bench --self-test-server DIR [--addr 127.0.0.58]` instead starts a throwaway
//! PostgreSQL 15 with the test harness (as `cargo run --example demo` does), with a server
//! certificate for that address, writes one directory per case under DIR (`disable`,
//! `require`, `verify-full`, `cert`), each with `dap.cfg`, `pgdap.env` (PG* variables for
//! pgdap and `--raw`) and `libpq.env` (the same settings for libpq), prints `ready`, and
//! keeps the server until its standard input closes. `scripts/bench.sh` drives it.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)] // a part of the test harness: its servers and PKI
mod common;

use common::bench_cases::{write_case, CASES};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

/// Counts the bytes allocated and not yet freed, for the heap cost of an open connection
/// (exact, unlike RSS, which the allocator's caching blurs). One relaxed atomic add per
/// allocation, the same for every implementation measured.
struct CountingAlloc;

static LIVE_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            std::sync::atomic::Ordering::Relaxed,
        );
        std::alloc::System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

fn live_heap_bytes() -> isize {
    LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    Session,
    ConnectOnly,
    Raw,
    Pool,
    Compare,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Session => "pgdap",
            Impl::ConnectOnly => "pgdap-connect",
            Impl::Raw => "raw",
            Impl::Pool => "pool",
            Impl::Compare => "compare",
        }
    }
}

struct Args {
    config: PathBuf,
    n: usize,
    imp: Impl,
    warmup: usize,
    hold: usize,
    pool_check: pgdap::pool::HealthCheck,
    /// `--concurrency C`: N batches of C connections opened at once.
    concurrency: Option<usize>,
    /// `--silent-first ADDR`: a silent peer on ADDR:5432 put before `dbserver`.
    silent_first: Option<String>,
    /// `--stagger-ms MS` for `--silent-first` (default 100).
    stagger_ms: u64,
}

const HELP: &str = "\
bench: connection latency with the Access Point in FILE and the PG* variables of the
process environment (PGMODE, PGROOTCA, PGCERT, PGKEY, PGCRL, PGAUTH, PGCLIENTENCODING).

usage: bench --config FILE --n N [--pool [--pool-check closed|query|idle] | --raw |
             --connect-only | --compare] [--warmup W] [--hold K]
       bench --self-test-server DIR [--addr 127.0.0.x]

  --config FILE     the Access Point file
  --n N             timed connections: connect through one pgdap::Connector, `select 1`,
                    close
  --pool            N checkouts from a pgdap::Pool of size 1 instead; --pool-check picks
                    its health check (default: `select 1` after 500 ms idle)
  --connect-only    Connector::connect without the session's encoding set-up
  --raw             tokio-postgres + postgres-native-tls given the same settings (PGMODE
                    disable, require, verify-ca, verify-full; no CRL)
  --compare         pgdap, --connect-only and --raw in rotating order, with ratios
  --warmup W        untimed connections first (default 5)
  --hold K          keep K connections open and report memory per connection
  --silent-first ADDR
                    a peer on ADDR:5432 that accepts and never answers is put before
                    dbserver; N connects each with libpq's order (ConnectOptions::
                    host_stagger off, the default) and with --stagger-ms MS (default 100),
                    alternating: median_ms of each and ratio_stagger_default
  --concurrency C   N batches of C connections opened at once (each: connect, `select 1`;
                    closed after the batch): wall_ms per batch, p50/p99 per connection,
                    cpu_ms_per_handshake; with --compare, pgdap and --raw batches alternate
  --self-test-server DIR
                    start a throwaway PostgreSQL with the test harness and write one
                    directory of settings per case under DIR (scripts/bench.sh drives it)
  -h, --help        this help

The last line of stdout is one JSON object (n, median_ms, p90_ms, mean_ms, min_ms,
max_ms, conns_per_s, impl, ssl, build, ...). Build with --release: a debug build's
timings are several times slower, and the JSON says \"build\":\"debug\".";

fn usage() -> ! {
    eprintln!(
        "usage: bench --config FILE --n N [--pool [--pool-check closed|query|idle] | --raw | --connect-only | --compare] [--warmup W] [--hold K]\n       bench --self-test-server DIR [--addr 127.0.0.x]"
    );
    std::process::exit(2)
}

fn fail(what: &str, e: &dyn std::error::Error) -> ! {
    eprintln!("bench: {what}: {}", pgdap::error::Chain(e));
    std::process::exit(1)
}

fn parse_args(args: Vec<String>) -> Args {
    let mut config = None;
    let mut n = None;
    let mut imp = Impl::Session;
    let mut warmup = 5;
    let mut hold = 0;
    let mut pool_check = pgdap::pool::HealthCheck::default();
    let mut concurrency = None;
    let mut silent_first = None;
    let mut stagger_ms = 100;
    let mut it = args.into_iter();
    let number =
        |v: Option<String>| -> usize { v.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()) };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => config = Some(PathBuf::from(it.next().unwrap_or_else(|| usage()))),
            "--n" => n = Some(number(it.next())),
            "--warmup" => warmup = number(it.next()),
            "--hold" => hold = number(it.next()),
            "--concurrency" => concurrency = Some(number(it.next()).max(1)),
            "--silent-first" => silent_first = Some(it.next().unwrap_or_else(|| usage())),
            "--stagger-ms" => stagger_ms = number(it.next()) as u64,
            "--pool" => imp = Impl::Pool,
            "--raw" => imp = Impl::Raw,
            "--connect-only" => imp = Impl::ConnectOnly,
            "--compare" => imp = Impl::Compare,
            "--pool-check" => {
                pool_check = match it.next().as_deref() {
                    Some("closed") => pgdap::pool::HealthCheck::Closed,
                    Some("query") => pgdap::pool::HealthCheck::Query,
                    Some("idle") => pgdap::pool::HealthCheck::default(),
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    let (Some(config), Some(n)) = (config, n) else {
        usage()
    };
    Args {
        config,
        n,
        imp,
        warmup,
        hold,
        pool_check,
        concurrency,
        silent_first,
        stagger_ms,
    }
}

/// VmRSS and VmHWM of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One way of opening a connection, ready to run `select 1` on.
enum Opener {
    Pgdap(pgdap::Connector),
    Raw {
        config: Box<tokio_postgres::Config>,
        tls: postgres_native_tls::MakeTlsConnector,
    },
}

/// An open connection and its connection task.
struct Open {
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
    ssl: bool,
}

impl Open {
    async fn close(self) {
        drop(self.client);
        let _ = self.task.await;
    }
}

impl Opener {
    async fn open(&self, imp: Impl) -> Result<Open, Box<dyn std::error::Error>> {
        match (self, imp) {
            (Opener::Pgdap(connector), Impl::ConnectOnly) => {
                let connected = connector.connect().await?;
                let connection = connected.connection;
                let task = tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Open {
                    client: connected.client,
                    task,
                    ssl: connected.tls.is_some(),
                })
            }
            (Opener::Pgdap(connector), _) => {
                let session = connector.connect_spawned().await?;
                Ok(Open {
                    client: session.client,
                    task: session.task,
                    ssl: session.tls.is_some(),
                })
            }
            (Opener::Raw { config, tls }, _) => {
                let (client, connection) = config.connect(tls.clone()).await?;
                let task = tokio::spawn(async move {
                    let _ = connection.await;
                });
                let ssl = config.get_ssl_mode() != tokio_postgres::config::SslMode::Disable;
                Ok(Open { client, task, ssl })
            }
        }
    }
}

/// tokio-postgres + native-tls with the settings pgdap resolved (the same files and
/// connection options), built once.
fn raw_opener(config: &pgdap::Config) -> Result<Opener, Box<dyn std::error::Error>> {
    let ap = config.access_point();
    let settings = config.settings();
    let opts = config.options();
    let mode = settings.mode.value;
    let cert_auth = settings.auth.value == pgdap::AuthMethod::Cert;
    let mut pg = tokio_postgres::Config::new();
    pg.host(ap.server())
        .port(ap.port())
        .user(ap.username())
        .dbname(ap.dbname())
        .keepalives(opts.keepalives)
        .keepalives_idle(opts.keepalives_idle)
        .keepalives_interval(opts.keepalives_interval)
        .keepalives_retries(opts.keepalives_retries)
        .connect_timeout(opts.connect_timeout)
        .tcp_user_timeout(opts.tcp_user_timeout);
    if !cert_auth && !ap.password().is_empty() {
        pg.password(ap.password().expose());
    }
    let mut builder = native_tls::TlsConnector::builder();
    builder
        .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
        .disable_built_in_roots(true);
    let root_ca = &settings.root_ca.value;
    let have_root = root_ca.exists();
    match mode {
        pgdap::SslMode::Disable => {
            pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        pgdap::SslMode::Require | pgdap::SslMode::VerifyCa | pgdap::SslMode::VerifyFull => {
            pg.ssl_mode(tokio_postgres::config::SslMode::Require);
        }
        other => {
            return Err(format!(
                "--raw supports PGMODE disable, require, verify-ca, verify-full, not {other}"
            )
            .into())
        }
    }
    if have_root {
        for cert in native_tls::Certificate::stack_from_pem(&std::fs::read(root_ca)?)? {
            builder.add_root_certificate(cert);
        }
    }
    // libpq: require verifies the chain only when a root CA file exists.
    builder.danger_accept_invalid_certs(mode == pgdap::SslMode::Require && !have_root);
    builder.danger_accept_invalid_hostnames(mode != pgdap::SslMode::VerifyFull);
    if settings.cert.value.exists() {
        let cert = std::fs::read(&settings.cert.value)?;
        let key = std::fs::read(&settings.key.value)?;
        builder.identity(native_tls::Identity::from_pkcs8(&cert, &key)?);
    }
    let tls = postgres_native_tls::MakeTlsConnector::new(builder.build()?);
    Ok(Opener::Raw {
        config: Box::new(pg),
        tls,
    })
}

fn summary(mut times: Vec<Duration>, wall: Duration) -> serde_json::Value {
    let n = times.len();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = match n {
        0 => 0.0,
        _ if n % 2 == 1 => ms(times[n / 2]),
        _ => (ms(times[n / 2 - 1]) + ms(times[n / 2])) / 2.0,
    };
    let p90 = match n {
        0 => 0.0,
        _ => ms(times[(n * 9).div_ceil(10) - 1]),
    };
    let mean = if n == 0 {
        0.0
    } else {
        times.iter().map(|d| ms(*d)).sum::<f64>() / n as f64
    };
    let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
    json!({
        "n": n,
        "median_ms": round(median),
        "p90_ms": round(p90),
        "mean_ms": round(mean),
        "min_ms": round(times.first().copied().map(ms).unwrap_or(0.0)),
        "max_ms": round(times.last().copied().map(ms).unwrap_or(0.0)),
        "conns_per_s": if wall.is_zero() { 0.0 } else { (n as f64 / wall.as_secs_f64()).round() },
    })
}

async fn bench(args: Args) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let ap = pgdap::AccessPoint::from_file(&args.config)?;
    let env = pgdap::Environment::from_process_env();
    let config = pgdap::Config::new(ap, &env)?;
    let mode = config.settings().mode.value.to_string();
    let auth = config.settings().auth.value.to_string();

    if args.imp == Impl::Pool {
        let pool = pgdap::Pool::from_config(
            config,
            pgdap::PoolOptions {
                max_size: 1,
                health_check: args.pool_check,
                ..Default::default()
            },
        )?;
        let ssl = pool.get().await?.tls.is_some();
        for _ in 0..args.warmup {
            drop(pool.get().await?);
        }
        let mut times = Vec::with_capacity(args.n);
        let started = Instant::now();
        for _ in 0..args.n {
            let t = Instant::now();
            let session = pool.get().await?;
            drop(session);
            times.push(t.elapsed());
        }
        let wall = started.elapsed();
        let mut out = summary(times, wall);
        out["impl"] = json!("pool");
        out["pool_check"] = json!(format!("{:?}", args.pool_check));
        out["sslmode"] = json!(mode);
        out["auth"] = json!(auth);
        out["ssl"] = json!(ssl);
        return Ok(out);
    }

    if let Some(addr) = &args.silent_first {
        return silent_first(&args, addr).await;
    }

    if let Some(c) = args.concurrency {
        let mut out = concurrent(&config, &args, c).await?;
        out["sslmode"] = json!(mode);
        out["auth"] = json!(auth);
        return Ok(out);
    }

    if args.imp == Impl::Compare {
        let mut out = compare(&config, &args).await?;
        out["sslmode"] = json!(mode);
        out["auth"] = json!(auth);
        return Ok(out);
    }

    let opener = match args.imp {
        Impl::Raw => raw_opener(&config)?,
        _ => Opener::Pgdap(pgdap::Connector::new(config)?),
    };
    let mut ssl = false;
    for _ in 0..args.warmup.max(1) {
        let open = opener.open(args.imp).await?;
        ssl = open.ssl;
        open.client.simple_query("select 1").await?;
        open.close().await;
    }

    let mut memory = None;
    if args.hold > 0 {
        let (rss0, hwm0) = memory_kib();
        let heap0 = live_heap_bytes();
        let mut held = Vec::with_capacity(args.hold);
        for _ in 0..args.hold {
            let open = opener.open(args.imp).await?;
            open.client.simple_query("select 1").await?;
            held.push(open);
        }
        let (rss1, hwm1) = memory_kib();
        let heap1 = live_heap_bytes();
        for open in held {
            open.close().await;
        }
        let per = |a: u64, b: u64| (b.saturating_sub(a) as f64 / args.hold as f64).round();
        let heap = ((heap1 - heap0) as f64 / 1024.0 / args.hold as f64 * 10.0).round() / 10.0;
        memory = Some((per(rss0, rss1), per(hwm0, hwm1), heap));
    }

    let mut times = Vec::with_capacity(args.n);
    let started = Instant::now();
    for _ in 0..args.n {
        let t = Instant::now();
        let open = opener.open(args.imp).await?;
        open.client.simple_query("select 1").await?;
        open.close().await;
        times.push(t.elapsed());
    }
    let wall = started.elapsed();
    let mut out = summary(times, wall);
    out["impl"] = json!(args.imp.name());
    out["sslmode"] = json!(mode);
    out["auth"] = json!(auth);
    out["ssl"] = json!(ssl);
    if let Some((rss, hwm, heap)) = memory {
        out["heap_kib_per_conn"] = json!(heap);
        out["hold"] = json!(args.hold);
        out["rss_kib_per_conn"] = json!(rss);
        out["hwm_kib_per_conn"] = json!(hwm);
    }
    Ok(out)
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// One batch: `c` connections opened at once (each timed from its start to the answer of
/// its `select 1`), then all closed. Returns the batch's wall time, each connection's
/// time and the process's CPU time over the batch (the closing not included).
async fn batch(
    opener: &std::sync::Arc<Opener>,
    imp: Impl,
    c: usize,
) -> Result<(Duration, Vec<Duration>, Duration), Box<dyn std::error::Error>> {
    let cpu0 = cpu_time();
    let started = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            let opener = opener.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let open = opener.open(imp).await.map_err(|e| e.to_string())?;
                open.client
                    .simple_query("select 1")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((t.elapsed(), open))
            })
        })
        .collect();
    let mut times = Vec::with_capacity(c);
    let mut opened = Vec::with_capacity(c);
    let mut first_error = None;
    for task in tasks {
        match task.await? {
            Ok((d, open)) => {
                times.push(d);
                opened.push(open);
            }
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    let wall = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    for open in opened {
        open.close().await;
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok((wall, times, cpu)),
    }
}

/// `--concurrency C`: N batches of C connections at once, of one implementation or, with
/// `--compare`, of pgdap (session) and raw alternating batch by batch (which goes first
/// alternates too). Per implementation: `wall_ms` (median batch), `p50_ms`/`p99_ms` over
/// every connection, `cpu_ms_per_handshake` (median batch's CPU / C); with `--compare`,
/// `ratio_*` pgdap/raw.
async fn concurrent(
    config: &pgdap::Config,
    args: &Args,
    c: usize,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use std::sync::Arc;
    let impls: Vec<Impl> = match args.imp {
        Impl::Compare => vec![Impl::Session, Impl::Raw],
        Impl::Pool => return Err("--concurrency does not apply to --pool".into()),
        imp => vec![imp],
    };
    let pgdap = Arc::new(Opener::Pgdap(pgdap::Connector::new(config.clone())?));
    let raw = if impls.contains(&Impl::Raw) {
        Some(Arc::new(raw_opener(config)?))
    } else {
        None
    };
    let opener = |imp: Impl| match (&raw, imp) {
        (Some(raw), Impl::Raw) => raw.clone(),
        _ => pgdap.clone(),
    };
    // Warm-up: one small batch each.
    for &imp in &impls {
        batch(&opener(imp), imp, c.min(4)).await?;
    }
    let mut results: Vec<(Vec<Duration>, Vec<Duration>, Vec<Duration>)> =
        vec![Default::default(); impls.len()];
    for round in 0..args.n.max(1) {
        for k in 0..impls.len() {
            let i = (k + round) % impls.len();
            let (wall, times, cpu) = batch(&opener(impls[i]), impls[i], c).await?;
            results[i].0.push(wall);
            results[i].1.extend(times);
            results[i].2.push(cpu);
        }
    }
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let quantile = |v: &[Duration], q: f64| {
        let mut v = v.to_vec();
        v.sort();
        v.get(((v.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let mut out = json!({"concurrency": c, "rounds": args.n.max(1), "build": if cfg!(debug_assertions) { "debug" } else { "release" }});
    let mut figures = Vec::new();
    for (imp, (walls, times, cpus)) in impls.iter().zip(results) {
        let wall = median(walls);
        let cpu = median(cpus);
        let entry = json!({
            "wall_ms": ms(wall),
            "p50_ms": ms(quantile(&times, 0.5)),
            "p99_ms": ms(quantile(&times, 0.99)),
            "cpu_ms_per_handshake": ms(cpu / c as u32),
        });
        figures.push(entry.clone());
        out[imp.name()] = entry;
    }
    if let [p, r] = &figures[..] {
        let ratio = |key: &str| {
            let (a, b) = (
                p[key].as_f64().unwrap_or(0.0),
                r[key].as_f64().unwrap_or(0.0),
            );
            if b > 0.0 {
                (a / b * 1000.0).round() / 1000.0
            } else {
                0.0
            }
        };
        out["ratio_wall"] = json!(ratio("wall_ms"));
        out["ratio_p50"] = json!(ratio("p50_ms"));
        out["ratio_p99"] = json!(ratio("p99_ms"));
        out["ratio_cpu"] = json!(ratio("cpu_ms_per_handshake"));
    } else {
        for key in ["wall_ms", "p50_ms", "p99_ms", "cpu_ms_per_handshake"] {
            out[key] = figures[0][key].clone();
        }
        out["impl"] = json!(impls[0].name());
    }
    Ok(out)
}

/// `--compare`: pgdap (session), pgdap (connect only) and raw, connection by connection
/// in rotating order in one process, so that load changes on the machine hit all three
/// alike. The top-level `median_ms`/`p90_ms` are pgdap's; `ratio_*` are ratios of medians.
async fn compare(
    config: &pgdap::Config,
    args: &Args,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    const IMPLS: [Impl; 3] = [Impl::Session, Impl::ConnectOnly, Impl::Raw];
    let raw = raw_opener(config)?;
    let pgdap = Opener::Pgdap(pgdap::Connector::new(config.clone())?);
    let opener = |imp: Impl| if imp == Impl::Raw { &raw } else { &pgdap };
    let mut ssl = Vec::new();
    for imp in IMPLS {
        for _ in 0..args.warmup.max(1) {
            let open = opener(imp).open(imp).await?;
            open.client.simple_query("select 1").await?;
            ssl.push(open.ssl);
            open.close().await;
        }
    }
    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut walls = [Duration::ZERO; 3];
    for i in 0..args.n {
        for k in 0..IMPLS.len() {
            let slot = (i + k) % IMPLS.len();
            let imp = IMPLS[slot];
            let t = Instant::now();
            let open = opener(imp).open(imp).await?;
            open.client.simple_query("select 1").await?;
            open.close().await;
            let elapsed = t.elapsed();
            times[slot].push(elapsed);
            walls[slot] += elapsed;
        }
    }
    let [session, connect, raw] = times;
    let [w_session, w_connect, w_raw] = walls;
    let session = summary(session, w_session);
    let connect = summary(connect, w_connect);
    let raw = summary(raw, w_raw);
    let ratio = |a: &serde_json::Value, b: &serde_json::Value| {
        let (a, b) = (a["median_ms"].as_f64(), b["median_ms"].as_f64());
        match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => ((a / b) * 10_000.0).round() / 10_000.0,
            _ => 0.0,
        }
    };
    let mut out = session.clone();
    out["impl"] = json!("compare");
    out["ssl"] = json!(ssl.iter().all(|s| *s));
    out["ratio_pgdap_raw"] = json!(ratio(&session, &raw));
    out["ratio_connect_raw"] = json!(ratio(&connect, &raw));
    out["pgdap"] = session;
    out["pgdap_connect"] = connect;
    out["raw"] = raw;
    Ok(out)
}

fn self_test_server(dir: &Path, addr: &'static str) {
    use std::io::Read;
    // A server certificate for this address from the test CA (verify-full by IP SAN).
    common::bench_cases::issue_server("bench-server", &[addr]);
    let mut spec = common::ServerSpec::new(addr, Some("bench-server"));
    // Room for --hold 50 next to pgbench and the pool, and for --concurrency 150.
    spec.conf.push_str("max_connections = 200\n");
    let server = common::Server::start(spec);
    for case in &CASES {
        if let Err(e) = write_case(dir, addr, case) {
            fail(&format!("writing case {}", case.name), &e);
        }
    }
    println!("server {addr} log {}", server.log.display());
    println!("ready");
    // Keep the server until stdin closes; returning from main stops it (atexit).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

/// `--silent-first ADDR`: a listener on ADDR:5432 that accepts and never answers (a host
/// that hangs: a dead VM behind a live load balancer, a firewall that drops) before the
/// Access Point's `dbserver`; N connects with libpq's one-at-a-time order and N with
/// `ConnectOptions::host_stagger`, alternating, each connect then `select 1`.
async fn silent_first(
    args: &Args,
    addr: &str,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind((addr, 5432)).await?;
    // Accepted sockets are kept open and never read: the attempt waits for its timeout.
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let ap = pgdap::AccessPoint::from_file(&args.config)?;
    let listed = pgdap::AccessPoint::new(
        format!("{addr},{}", ap.server()),
        ap.dbname(),
        ap.username(),
        ap.password().clone(),
    );
    let env = pgdap::Environment::from_process_env();
    let config = pgdap::Config::new(listed, &env)?;
    let timeout = config
        .settings()
        .attempt_timeout(config.options().connect_timeout)
        .unwrap_or_default();
    let stagger = Duration::from_millis(args.stagger_ms);
    let staggered = pgdap::Connector::new(config.clone().with_options(pgdap::ConnectOptions {
        host_stagger: Some(stagger),
        ..config.options().clone()
    }))?;
    let default = pgdap::Connector::new(config)?;
    let (mut plain_times, mut stagger_times) = (Vec::new(), Vec::new());
    for i in 0..args.n {
        // Alternately first, so neither side always meets a warmer machine.
        let order = if i % 2 == 0 {
            [(&default, false), (&staggered, true)]
        } else {
            [(&staggered, true), (&default, false)]
        };
        for (connector, is_stagger) in order {
            let t = Instant::now();
            let session = connector.connect_spawned().await?;
            session.client.simple_query("select 1").await?;
            let took = t.elapsed();
            drop(session);
            if is_stagger {
                stagger_times.push(took);
            } else {
                plain_times.push(took);
            }
        }
    }
    held.abort();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let (d, s) = (median(plain_times), median(stagger_times));
    Ok(json!({
        "n": args.n,
        "impl": "silent_first",
        "silent_peer": addr,
        "attempt_timeout_ms": timeout.as_millis() as u64,
        "stagger_ms": args.stagger_ms,
        "default_median_ms": d,
        "stagger_median_ms": s,
        "ratio_stagger_default": s / d,
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--self-test-server") {
        let Some(dir) = args.get(1) else { usage() };
        let addr: &'static str = match args.get(2).map(String::as_str) {
            None => "127.0.0.58",
            Some("--addr") => match args.get(3) {
                Some(a) if a.starts_with("127.") => a.clone().leak(),
                _ => usage(),
            },
            Some(_) => usage(),
        };
        self_test_server(Path::new(dir), addr);
        return;
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{HELP}");
        return;
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "bench: this is a debug build; its timings are several times slower than a release \
             build's (cargo run --release --example bench)"
        );
    }
    let args = parse_args(args);
    match bench(args).await {
        Ok(mut out) => {
            out["build"] = json!(if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            });
            println!("{out}")
        }
        Err(e) => fail("failed", e.as_ref()),
    }
}
