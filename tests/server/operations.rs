//! Operations: keepalives reach the socket, the connect timeout fires on a silent peer,
//! the doctor report flags what it should, logs never hold a secret, and unread notices
//! are capped in bytes.
//!
//! Addresses: 127.0.0.50 silent peer, .51 server with an expiring certificate, .52 server
//! with the vendor's settings (also the keepalive test's), and the shared servers.

use std::io::Write;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{self, access_point, plain_server, ssl_server, ClientHome, Server, ServerSpec};

/// The TCP sockets of this process connected to `addr:5432`, with their keepalive
/// settings read back through `getsockopt`.
fn keepalive_settings(addr: &str) -> Vec<(bool, Duration, Duration, u32, Duration)> {
    let target: std::net::SocketAddr = format!("{addr}:5432").parse().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        let link = std::fs::read_link(entry.path()).unwrap_or_default();
        if !link.to_string_lossy().starts_with("socket:") {
            continue;
        }
        // SAFETY: the fd is open for the duration of this borrow (the connection is alive).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&borrowed);
        let Ok(peer) = sock.peer_addr() else { continue };
        if peer.as_socket() != Some(target) {
            continue;
        }
        found.push((
            sock.keepalive().unwrap(),
            sock.tcp_keepalive_time().unwrap(),
            sock.tcp_keepalive_interval().unwrap(),
            sock.tcp_keepalive_retries().unwrap(),
            sock.tcp_user_timeout().unwrap().unwrap_or_default(),
        ));
    }
    found
}

#[tokio::test]
async fn keepalive_settings_reach_the_socket() {
    // A server of this module's own: the sockets of this process to the shared
    // ssl_server() include other modules' connections, made in parallel threads.
    let server = settings_server();
    let home = ClientHome::new().var("PGMODE", "require");
    let ap = access_point(&server.addr, "appdb", "scram_user", "scram-pw");
    // Defaults: 20 s idle, 5 s interval, 3 probes, 30 s TCP_USER_TIMEOUT.
    let connector =
        pgdap::Connector::new(pgdap::Config::new(ap.clone(), &home.env()).unwrap()).unwrap();
    let session = connector.connect_spawned().await.unwrap();
    let sockets = keepalive_settings(&server.addr);
    assert_eq!(
        sockets,
        vec![(
            true,
            Duration::from_secs(20),
            Duration::from_secs(5),
            3,
            Duration::from_secs(30)
        )]
    );
    drop(session);
    // Overrides reach the socket too.
    let config = pgdap::Config::new(ap, &home.env())
        .unwrap()
        .with_options(pgdap::ConnectOptions {
            keepalives_idle: Duration::from_secs(7),
            keepalives_interval: Duration::from_secs(2),
            keepalives_retries: 4,
            tcp_user_timeout: Duration::from_secs(9),
            ..Default::default()
        });
    let _session = pgdap::Connector::new(config)
        .unwrap()
        .connect_spawned()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // let the first socket close
    assert!(keepalive_settings(&server.addr).contains(&(
        true,
        Duration::from_secs(7),
        Duration::from_secs(2),
        4,
        Duration::from_secs(9)
    )));
}

#[tokio::test]
async fn a_silent_peer_hits_the_connect_timeout() {
    // Accepts and never answers (not even the SSLRequest); counts the attempts.
    let peer = common::SilentPeer::start("127.0.0.50");
    for mode in ["prefer", "disable", "verify-full"] {
        let home = ClientHome::new().var("PGMODE", mode);
        home.put("ca.crt", "root.crt");
        let config = pgdap::Config::new(access_point("127.0.0.50", "appdb", "u", "p"), &home.env())
            .unwrap()
            .with_options(pgdap::ConnectOptions {
                connect_timeout: Duration::from_millis(800),
                ..Default::default()
            });
        let before = peer.mark();
        let start = Instant::now();
        let err = pgdap::Connector::new(config)
            .unwrap()
            .connect()
            .await
            .err()
            .unwrap();
        let elapsed = start.elapsed();
        assert!(
            matches!(err, pgdap::Error::Timeout { .. }),
            "{mode}: {err:?}"
        );
        assert!(err.to_string().contains("timeout expired"), "{err}");
        // It waited for the timeout, and once: one attempt, not a fallback's second.
        assert!(
            elapsed >= Duration::from_millis(800),
            "{mode}: took {elapsed:?}"
        );
        assert_eq!(peer.attempts_since(before).await, 1, "{mode}: attempts");
    }
}

/// 127.0.0.52, configured as the vendor expects (`standard_conforming_strings = off`,
/// `bytea_output = 'escape'`). In this process only `keepalive_settings_reach_the_socket`
/// connects to it (the doctor runs in a child process).
fn settings_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let mut spec = ServerSpec::new("127.0.0.52", Some("server"));
        spec.conf = "standard_conforming_strings = off\nbytea_output = 'escape'\n".into();
        Server::start(spec)
    })
}

static EXPIRING_SERVER: OnceLock<Server> = OnceLock::new();

fn doctor(config: &std::path::Path, home: &ClientHome, json: bool) -> (bool, String) {
    let mut cmd = std::process::Command::new(common::example("doctor"));
    cmd.env_clear()
        .env("HOME", home.home())
        .env("PATH", "/usr/bin:/bin")
        .arg("--config")
        .arg(config);
    for (k, v) in home.vars() {
        cmd.env(k, v);
    }
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

fn write_config(
    home: &ClientHome,
    server: &str,
    db: &str,
    user: &str,
    password: &str,
) -> std::path::PathBuf {
    let path = home.home().join("dap.cfg");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        "dbengine=postgre\ndbserver={server}\ndbname={db}\nusername={user}\npassword={password}\n"
    )
    .unwrap();
    path
}

fn status_of<'a>(report: &'a serde_json::Value, item: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"].as_str().unwrap().starts_with(item))
        .unwrap_or_else(|| panic!("no check {item} in {report}"))["status"]
        .as_str()
        .unwrap()
}

#[test]
fn doctor_reports() {
    // SSL server, verified: encryption OK; standard_conforming_strings = on (the default)
    // and bytea_output = hex are WARN with the fix.
    let server = ssl_server();
    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("ca.crt", "root.crt");
    let cfg = write_config(&home, &server.addr, "appdb", "scram_user", "scram-pw");
    let (ok, text) = doctor(&cfg, &home, false);
    assert!(ok, "{text}");
    assert!(text.contains("[OK  ] encryption: SSL TLSv1.3"), "{text}");
    assert!(
        text.contains("[WARN] standard_conforming_strings: on"),
        "{text}"
    );
    assert!(text.contains("standard_conforming_strings = off"), "{text}");
    assert!(text.contains("[WARN] bytea_output: hex"), "{text}");
    assert!(text.contains("password          ***"), "{text}");
    assert!(!text.contains("scram-pw"), "password leaked: {text}");
    let (_, json) = doctor(&cfg, &home, true);
    let report: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(report["connection"]["ssl"], true);
    assert_eq!(report["connection"]["server_verified"], true);
    assert_eq!(report["connection"]["user"], "scram_user");
    assert_eq!(
        report["connection"]["server_certificate"]["san"][2],
        "IP:127.0.0.2"
    );
    assert_eq!(status_of(&report, "standard_conforming_strings"), "WARN");
    assert_eq!(status_of(&report, "root CA expiry"), "OK");
    assert!(!json.contains("scram-pw"));

    // A server configured as the vendor expects: both settings OK.
    let tuned = settings_server();
    let cfg = write_config(&home, &tuned.addr, "appdb", "scram_user", "scram-pw");
    let home_ca = ClientHome::new().var("PGMODE", "verify-ca");
    home_ca.put("ca.crt", "root.crt");
    let (ok, json) = doctor(&cfg, &home_ca, true);
    assert!(ok, "{json}");
    let report: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(status_of(&report, "standard_conforming_strings"), "OK");
    assert_eq!(status_of(&report, "bytea_output"), "OK");

    // Non-SSL server under prefer: plaintext is a WARN.
    let plain = plain_server();
    let home = ClientHome::new();
    let cfg = write_config(&home, &plain.addr, "appdb", "scram_user", "scram-pw");
    let (ok, json) = doctor(&cfg, &home, true);
    assert!(ok, "{json}");
    let report: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(report["connection"]["ssl"], false);
    assert_eq!(status_of(&report, "encryption"), "WARN");
    assert_eq!(status_of(&report, "root CA"), "WARN");

    // A server certificate about to expire (10 days): WARN.
    let expiring = EXPIRING_SERVER
        .get_or_init(|| Server::start(ServerSpec::new("127.0.0.51", Some("server-expiring"))));
    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("ca.crt", "root.crt");
    let cfg = write_config(&home, &expiring.addr, "appdb", "scram_user", "scram-pw");
    let (ok, text) = doctor(&cfg, &home, false);
    assert!(ok, "{text}");
    assert!(
        text.contains("[WARN] server certificate expiry (CN=pgdap-expiring): expires in"),
        "{text}"
    );

    // Failure: verify-full without a root CA; the likely cause comes from the vendor table.
    let home = ClientHome::new().var("PGMODE", "verify-full");
    let cfg = write_config(&home, &server.addr, "appdb", "scram_user", "scram-pw");
    let (ok, json) = doctor(&cfg, &home, true);
    assert!(!ok);
    let report: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(report["connection"]["connected"], false);
    assert!(report["connection"]["likely_cause"]
        .as_str()
        .unwrap()
        .contains("no root CA"));
    assert_eq!(status_of(&report, "connection"), "FAIL");

    // A client key with mode 0644 is reported with the file.
    let home = ClientHome::new()
        .var("PGMODE", "verify-full")
        .var("PGAUTH", "cert");
    home.put("ca.crt", "root.crt");
    home.put("alice.crt", "postgresql.crt");
    let key = home.put("alice.key", "postgresql.key");
    common::set_mode(&key, 0o644);
    let cfg = write_config(&home, &server.addr, "certdb", "alice", "");
    let (_, text) = doctor(&cfg, &home, false);
    assert!(
        text.contains("[FAIL] client key: private key file"),
        "{text}"
    );
    assert!(text.contains("chmod 0600"), "{text}");

    // An Access Point file with a password that others can read: WARN, not refused. A
    // minimum protocol below TLS 1.2: raised to TLS 1.2, and said so.
    let home = ClientHome::new()
        .var("PGMODE", "verify-full")
        .var("PGSSLMINPROTOCOLVERSION", "TLSv1");
    home.put("ca.crt", "root.crt");
    let cfg = write_config(&home, &server.addr, "appdb", "scram_user", "scram-pw");
    common::set_mode(&cfg, 0o644);
    let (ok, text) = doctor(&cfg, &home, false);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "[WARN] Access Point file: Access Point file \"{}\" holds a password and is readable by group or others (mode 0644)",
            cfg.display()
        )),
        "{text}"
    );
    assert!(text.contains("chmod 0600"), "{text}");
    assert!(
        text.contains(
            "[WARN] PGSSLMINPROTOCOLVERSION: PGSSLMINPROTOCOLVERSION=TLSv1 is raised to TLSv1.2"
        ),
        "{text}"
    );
    assert!(text.contains("TLSv1 (raised to TLSv1.2)"), "{text}");
    assert!(text.contains("[OK  ] encryption: SSL TLSv1."), "{text}");
    assert!(!text.contains("scram-pw"), "password leaked: {text}");
    common::set_mode(&cfg, 0o600);
    let (_, text) = doctor(&cfg, &home, false);
    assert!(!text.contains("Access Point file:"), "{text}");
}

/// Captures everything pgdap logs (all levels) while `f` runs.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_hold_a_secret() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // A callsite first hit by another test thread while no subscriber was interested may
    // have cached "never" (tracing#2874): recompute with this one in place.
    tracing::callsite::rebuild_interest_cache();
    let server = ssl_server();
    let secret = "S3cret-Pa55word";
    let key_pem = std::fs::read_to_string(common::pki().path("alice.key")).unwrap();
    let key_body = key_pem.lines().nth(1).unwrap().to_string();

    // A failing connection (wrong password, prefer: both attempts), a fallback, and a
    // succeeding one with a client certificate.
    for (db, mode, password) in [
        ("appdb", "prefer", secret),
        ("nossl", "prefer", "scram-pw"),
        ("appdb", "verify-full", "scram-pw"),
    ] {
        let home = ClientHome::new().var("PGMODE", mode);
        home.put("ca.crt", "root.crt");
        home.put("alice.crt", "postgresql.crt");
        home.put("alice.key", "postgresql.key");
        let ap = access_point(&server.addr, db, "scram_user", password);
        let connector =
            pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap()).unwrap();
        let _ = connector.connect().await;
    }
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("connecting"), "{logs}");
    assert!(
        logs.contains("retrying without SSL"),
        "the fallback is logged: {logs}"
    );
    assert!(logs.contains("password authentication failed"), "{logs}");
    assert!(logs.contains("connected"), "{logs}");
    assert!(!logs.contains(secret), "password in logs: {logs}");
    assert!(!logs.contains("scram-pw"), "password in logs: {logs}");
    assert!(!logs.contains(&key_body), "key material in logs");
    assert!(!logs.contains("PRIVATE KEY"), "key material in logs");
}

/// A server that sends many large notices cannot make a session hold more than
/// `NOTICE_QUEUE_BYTES` of unread notice text: the oldest are dropped, counted in notices
/// and bytes, and the first drop is logged once with the host.
#[tokio::test]
async fn unread_notices_are_capped_in_bytes() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // A callsite first hit by another test thread while no subscriber was interested may
    // have cached "never" (tracing#2874): recompute with this one in place.
    tracing::callsite::rebuild_interest_cache();
    let server = plain_server();
    let home = ClientHome::new().var("PGMODE", "disable");
    let ap = access_point(&server.addr, "appdb", "scram_user", "scram-pw");
    let connector = pgdap::Connector::new(pgdap::Config::new(ap, &home.env()).unwrap()).unwrap();
    let session = connector.connect_spawned().await.unwrap();
    // Twelve notices of 300 000 characters (3.6 MB) and three small ones: well under the
    // count cap, far over the byte cap.
    session
        .client
        .batch_execute(
            "do $$ begin \
               for i in 1..12 loop raise notice '%', repeat('x', 300000) || i; end loop; \
               for i in 1..3 loop raise notice 'small %', i; end loop; \
             end $$",
        )
        .await
        .unwrap();
    let unread = session.notices.unread_bytes();
    let (dropped, dropped_bytes) = (session.notices.dropped(), session.notices.dropped_bytes());
    let notices = session.notices.drain();
    assert!(unread <= pgdap::connect::NOTICE_QUEUE_BYTES, "{unread}");
    assert_eq!(
        unread,
        notices.iter().map(|n| n.text_len()).sum::<usize>(),
        "unread_bytes counts what is queued"
    );
    // 1 MiB holds three of the large notices (300 000 + 2 or 3 digits + 11), and the
    // small ones after them.
    let messages: Vec<&str> = notices
        .iter()
        .map(|n| &n.message[n.message.len() - 7..])
        .collect();
    assert_eq!(
        messages,
        ["xxxxx10", "xxxxx11", "xxxxx12", "small 1", "small 2", "small 3"]
    );
    assert_eq!(dropped, 9);
    let sent: u64 = (1..=12u64)
        .map(|i| 300_000 + i.to_string().len() as u64 + "NOTICE".len() as u64 + 5)
        .sum();
    let kept: u64 = notices.iter().take(3).map(|n| n.text_len() as u64).sum();
    assert_eq!(dropped_bytes, sent - kept);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("unread notices dropped"))
        .collect();
    assert_eq!(warnings.len(), 1, "logged once: {logs}");
    assert!(warnings[0].contains(&server.addr), "{logs}");
}
