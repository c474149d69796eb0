//! libpq's own variables (docs/design.md §9, issue 13), each compared with libpq on real servers:
//! psql 15 (libpq 15) for the variables libpq 15 has, and libpq 18 through
//! `tools/libpq_oracle.py` (ctypes; `tools/libpq18.sh` installs it from npm) for the
//! newer ones and for session settings (psql sends its own fallback application_name).
//!
//! Servers (all of this file's own): 127.0.0.100 (PostgreSQL 15, SSL, the standard
//! pg_hba.conf plus a trust database and a read-only database), .101 (TLS 1.2 only),
//! .102 (wildcard certificate, `v13.pgdap.test`), .103 (no SSL), .105 (SSL without
//! ssl_ca_file), .106 and .107 (a primary and its streaming hot standby), .120 (a TCP
//! listener that never answers). tests/server/direct_tls.rs uses .104, .110 and .111.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::{
    self, access_point, ensure_hosts, pki, ClientHome, Server, ServerSpec, PG_BIN,
};

static SERVER: OnceLock<Server> = OnceLock::new();

/// 127.0.0.100: standard rules, plus `trustdb` (trust) and `rodb`
/// (default_transaction_read_only = on).
fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let mut spec = ServerSpec::new("127.0.0.100", Some("server"));
        spec.hba = format!(
            "host trustdb all 127.0.0.0/8 trust\n{}",
            common::STANDARD_HBA
        );
        let s = Server::start(spec);
        s.psql("postgres", "create database trustdb");
        s.psql("postgres", "create database rodb");
        s.psql(
            "postgres",
            "alter database rodb set default_transaction_read_only = on",
        );
        s
    })
}

/// 127.0.0.102: certificate for `*.pgdap.test`, reached as `v13.pgdap.test`.
fn wildcard_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        ensure_hosts("v13.pgdap.test", "127.0.0.102");
        Server::start(ServerSpec::new("127.0.0.102", Some("server-wildcard")))
    })
}

/// 127.0.0.103: ssl = off.
fn plain_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(ServerSpec::new("127.0.0.103", None)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lib {
    Psql15,
    Libpq18,
}

/// A case: the Access Point's fields and the variables, run the same way by each client.
struct Case<'a> {
    server: &'a str,
    db: &'a str,
    user: &'a str,
    password: &'a str,
    vars: Vec<(&'a str, String)>,
    home: ClientHome,
}

fn case<'a>(server: &'a str, db: &'a str, user: &'a str, password: &'a str) -> Case<'a> {
    Case {
        server,
        db,
        user,
        password,
        vars: Vec::new(),
        home: ClientHome::new(),
    }
}

impl<'a> Case<'a> {
    fn var(mut self, name: &'a str, value: impl Into<String>) -> Case<'a> {
        self.vars.push((name, value.into()));
        self
    }

    fn env(&self) -> pgdap::Environment {
        let mut env = pgdap::Environment::default().with_default_dir(self.home.dir());
        for (k, v) in &self.vars {
            env = env.with(*k, v.clone());
        }
        env
    }

    /// pgdap: the first column of `sql` (`Ok`) or the error text.
    async fn pgdap(&self, sql: &str) -> Result<String, String> {
        let ap = access_point(self.server, self.db, self.user, self.password);
        let config = pgdap::Config::new(ap, &self.env()).map_err(|e| e.to_string())?;
        let connector = pgdap::Connector::new(config).map_err(|e| e.to_string())?;
        let session = connector
            .connect_spawned()
            .await
            .map_err(|e| e.to_string())?;
        let rows = session
            .client
            .simple_query(sql)
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// pgdap's blocking adapter (`integrations::blocking`), as [`Case::pgdap`].
    #[cfg(feature = "postgres")]
    async fn pgdap_blocking(&self, sql: &str) -> Result<String, String> {
        let ap = access_point(self.server, self.db, self.user, self.password);
        let config = pgdap::Config::new(ap, &self.env()).map_err(|e| e.to_string())?;
        let connector = pgdap::Connector::new(config).map_err(|e| e.to_string())?;
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || {
            let mut session =
                pgdap::integrations::blocking::connect(&connector).map_err(|e| e.to_string())?;
            let rows = session
                .client
                .simple_query(&sql)
                .map_err(|e| e.to_string())?;
            Ok(rows
                .iter()
                .find_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .unwrap_or_default())
        })
        .await
        .unwrap()
    }

    /// The blocking adapter agrees with the async path: the same value, or an error with
    /// the same text.
    /// (Without the `postgres` feature there is no blocking adapter to compare.)
    async fn blocking_agrees(&self, sql: &str, ours: &Result<String, String>) {
        #[cfg(feature = "postgres")]
        {
            let blocking = self.pgdap_blocking(sql).await;
            assert_eq!(&blocking, ours, "{:?}: blocking vs async", self.vars);
        }
        #[cfg(not(feature = "postgres"))]
        let _ = (sql, ours);
    }

    /// libpq with the same Access Point (as PGHOST, PGUSER, ... and PGPASSWORD when the
    /// Access Point has a password, which wins as in pgdap) and the same variables.
    fn libpq(&self, lib: Lib, sql: &str) -> Result<String, String> {
        let mut cmd = match lib {
            Lib::Psql15 => {
                let mut c = Command::new(format!("{PG_BIN}/psql"));
                c.args(["-X", "-A", "-t", "-w", "-c", sql]);
                c
            }
            Lib::Libpq18 => {
                let mut c = Command::new("python3");
                c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/libpq_oracle.py"))
                    .arg(sql)
                    .env("LIBPQ", common::libpq18::dir().join("lib/libpq.so.5"));
                c
            }
        };
        cmd.env_remove("PGPASSWORD");
        for (k, _) in std::env::vars() {
            if k.starts_with("PG") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.home.home())
            .env("PGHOST", self.server)
            .env("PGPORT", "5432")
            .env("PGUSER", self.user)
            .env("PGDATABASE", self.db);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        if !self.password.is_empty() {
            cmd.env("PGPASSWORD", self.password);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        match lib {
            Lib::Psql15 if out.status.success() => Ok(stdout),
            Lib::Psql15 => Err(stderr),
            Lib::Libpq18 => {
                let v: serde_json::Value =
                    serde_json::from_str(stdout.lines().last().unwrap_or_default())
                        .unwrap_or_else(|_| panic!("oracle output {stdout:?} {stderr}"));
                if v["ok"].as_bool() == Some(true) {
                    Ok(v["result"].as_str().unwrap_or_default().to_string())
                } else {
                    Err(v["error"].as_str().unwrap_or_default().to_string())
                }
            }
        }
    }

    /// Runs pgdap and libpq; asserts they agree (same value, or both fail with libpq's
    /// `phrase` in both errors); returns pgdap's result.
    async fn compare(&self, lib: Lib, sql: &str, phrase: Option<&str>) -> Result<String, String> {
        let ours = self.pgdap(sql).await;
        let theirs = self.libpq(lib, sql);
        common::assert_agree(&self.vars, &ours, &format!("{lib:?}"), &theirs, phrase);
        ours
    }
}

const SSL: &str =
    "select coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false)::text";

fn write_pgpass(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    common::set_mode(path, mode);
}

// ----- passwords -----------------------------------------------------------------------

#[tokio::test]
async fn pgpassword_is_used_when_the_access_point_has_none() {
    let s = server();
    let c = case(&s.addr, "appdb", "scram_user", "").var("PGPASSWORD", "scram-pw");
    assert_eq!(c.compare(Lib::Psql15, SSL, None).await.unwrap(), "true");
    // The Access Point's password wins over PGPASSWORD.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGPASSWORD", "wrong");
    assert_eq!(c.pgdap(SSL).await.unwrap(), "true");
    let c = case(&s.addr, "appdb", "scram_user", "wrong").var("PGPASSWORD", "scram-pw");
    let err = c.pgdap(SSL).await.unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");
}

#[tokio::test]
async fn password_file_follows_libpqs_rules() {
    let s = server();
    let addr = s.addr.as_str();
    // Default ~/.pgpass, 0600: found. 0700 is also accepted; 0640 and 0644 are ignored.
    for (mode, ok) in [(0o600, true), (0o700, true), (0o640, false), (0o644, false)] {
        let c = case(addr, "appdb", "scram_user", "");
        write_pgpass(
            &c.home.home().join(".pgpass"),
            &format!("# comment\n{addr}:5432:appdb:scram_user:scram-pw\n"),
            mode,
        );
        // A skipped file: libpq's warning reaches the user in pgdap's error too.
        let phrase = if ok {
            "no password supplied"
        } else {
            "has group or world access"
        };
        let r = c.compare(Lib::Psql15, SSL, Some(phrase)).await;
        assert_eq!(r.is_ok(), ok, "mode {mode:o}: {r:?}");
    }
    // PGPASSFILE, wildcards, escapes: the password ends at the first unescaped ':'.
    let c = case(addr, "appdb", "md5_user", "");
    let file = c.home.home().join("custom-pgpass");
    write_pgpass(
        &file,
        "other:*:*:*:x\n*:5432:*:md5_user:md5-pw:ignored\n",
        0o600,
    );
    let c = c.var("PGPASSFILE", file.display().to_string());
    assert_eq!(c.compare(Lib::Psql15, SSL, None).await.unwrap(), "true");
    // The first match wins even when wrong: it is sent (then prefer retries in
    // plaintext, which fails the same way).
    let c = case(addr, "appdb", "scram_user", "");
    write_pgpass(
        &c.home.home().join(".pgpass"),
        "*:*:*:*:wrong\n*:*:appdb:scram_user:scram-pw\n",
        0o600,
    );
    let err = c
        .compare(Lib::Psql15, SSL, Some("password authentication failed"))
        .await
        .unwrap_err();
    // Both attempts (SSL, then plaintext) were made, in both clients.
    assert!(
        err.contains("after the first attempt with SSL failed"),
        "{err}"
    );
    // libpq adds `password retrieved from file "..."`; pgdap's hint names the file too.
    let pgpass = c.home.home().join(".pgpass");
    assert!(
        err.contains(&format!(
            "password retrieved from file \"{}\"",
            pgpass.display()
        )),
        "{err}"
    );
    let theirs = c.libpq(Lib::Psql15, SSL).unwrap_err();
    assert!(theirs.contains("password retrieved from file"), "{theirs}");
    assert_eq!(
        theirs.matches("password authentication failed").count(),
        2,
        "{theirs}"
    );
    // PGPASSWORD wins over the file.
    let c = c.var("PGPASSWORD", "scram-pw");
    assert_eq!(c.compare(Lib::Psql15, SSL, None).await.unwrap(), "true");
}

#[tokio::test]
async fn password_escapes_in_the_file() {
    let s = server();
    s.psql("postgres", r"create role esc_user login password 'a:b\c' ");
    let c = case(&s.addr, "appdb", "esc_user", "");
    write_pgpass(
        &c.home.home().join(".pgpass"),
        &format!("{}:5432:appdb:esc_user:a\\:b\\\\c\n", s.addr),
        0o600,
    );
    assert_eq!(c.compare(Lib::Psql15, SSL, None).await.unwrap(), "true");
}

/// Under PGAUTH=cert no password from PGPASSWORD or the password file is ever sent, even
/// to a server that asks for one (a cleartext-password rule with the right password
/// available in both places).
#[tokio::test]
async fn cert_auth_never_sends_a_password() {
    let s = server();
    let c = case(&s.addr, "pwdb", "alice", "")
        .var("PGAUTH", "cert")
        .var("PGMODE", "require")
        .var("PGPASSWORD", "alice-pw");
    c.home.put("alice.crt", "postgresql.crt");
    c.home.put("alice.key", "postgresql.key");
    write_pgpass(&c.home.home().join(".pgpass"), "*:*:*:*:alice-pw\n", 0o600);
    let before = s.log_text().len();
    let err = c.pgdap(SSL).await.unwrap_err();
    assert!(err.contains("PGAUTH=cert, so no password is sent"), "{err}");
    // The password itself would have been accepted: libpq with it connects.
    let c2 = case(&s.addr, "pwdb", "alice", "").var("PGPASSWORD", "alice-pw");
    assert_eq!(c2.libpq(Lib::Psql15, SSL).unwrap(), "true");
    // pgdap's attempt left no password failure in the log. Other tests cause password
    // failures on this server on purpose, never for alice (only this test uses her here).
    let log = &s.log_text()[before..];
    assert!(
        !log.contains("password authentication failed for user \"alice\""),
        "{log}"
    );
}

// ----- twins ----------------------------------------------------------------------------

#[tokio::test]
async fn twins_are_fallbacks_and_the_vendor_variable_wins() {
    let s = server();
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGSSLMODE", "disable");
    assert_eq!(c.compare(Lib::Psql15, SSL, None).await.unwrap(), "false");
    // Invalid and empty twins: libpq's error.
    for bad in ["", "Require"] {
        let c = case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGSSLMODE", bad);
        c.compare(Lib::Psql15, SSL, Some("invalid sslmode value"))
            .await
            .unwrap_err();
    }
    // The vendor's variable wins; the conflict is recorded.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw")
        .var("PGMODE", "require")
        .var("PGSSLMODE", "disable");
    assert_eq!(c.pgdap(SSL).await.unwrap(), "true");
    let settings = pgdap::Settings::resolve(&c.env(), Some(&c.home.dir())).unwrap();
    assert_eq!(settings.conflicts, vec![("PGMODE", "PGSSLMODE")]);
    // An empty vendor variable falls back to the twin.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw")
        .var("PGMODE", "")
        .var("PGSSLMODE", "disable");
    assert_eq!(c.pgdap(SSL).await.unwrap(), "false");
    // PGSSLROOTCERT with verify-full (twin of PGROOTCA), and a wrong root fails in both.
    wildcard_server();
    let c = case("v13.pgdap.test", "appdb", "scram_user", "scram-pw")
        .var("PGSSLMODE", "verify-full")
        .var("PGSSLROOTCERT", pki().path("ca.crt").display().to_string());
    assert_eq!(c.compare(Lib::Psql15, SSL, None).await.unwrap(), "true");
    let c = case("v13.pgdap.test", "appdb", "scram_user", "scram-pw")
        .var("PGSSLMODE", "verify-ca")
        .var(
            "PGSSLROOTCERT",
            pki().path("other-ca.crt").display().to_string(),
        );
    c.compare(Lib::Psql15, SSL, Some("certificate verify failed"))
        .await
        .unwrap_err();
    // Client certificate through PGSSLCERT/PGSSLKEY.
    let c = case(&s.addr, "certdb", "alice", "")
        .var("PGSSLMODE", "require")
        .var("PGSSLCERT", pki().path("alice.crt").display().to_string());
    let key = c.home.put("alice.key", "alice.key");
    let c = c.var("PGSSLKEY", key.display().to_string());
    assert_eq!(c.compare(Lib::Psql15, SSL, None).await.unwrap(), "true");
}

// ----- session variables ------------------------------------------------------------

#[tokio::test]
async fn application_name_options_timezone_datestyle() {
    let s = server();
    let q = "select current_setting('application_name') || '|' || current_setting('TimeZone') \
             || '|' || current_setting('DateStyle') || '|' || current_setting('geqo')";
    let base = || case(&s.addr, "appdb", "scram_user", "scram-pw");
    let cases = [
        base().var("PGAPPNAME", "billing"),
        base().var("PGAPPNAME", ""),
        // PGAPPNAME wins over -c application_name in PGOPTIONS.
        base()
            .var("PGAPPNAME", "billing")
            .var("PGOPTIONS", "-c application_name=other"),
        // `\ ` escapes a space.
        base().var("PGOPTIONS", r"-c application_name=a\ b -c geqo=off"),
        base().var("PGOPTIONS", "--geqo=off"),
        base().var("PGTZ", "Europe/Paris"),
        base().var("PGTZ", "DEFAULT"),
        base().var("PGDATESTYLE", "SQL, DMY"),
        base().var("PGDATESTYLE", "default"),
        base().var("PGDATESTYLE", ""),
        base()
            .var("PGTZ", "Asia/Tokyo")
            .var("PGOPTIONS", "-c timezone=UTC"),
    ];
    for c in &cases {
        c.compare(Lib::Libpq18, q, None).await.unwrap();
    }
    assert_eq!(
        cases[3].pgdap(q).await.unwrap(),
        "a b|Etc/UTC|ISO, MDY|off"
            .replace("Etc/UTC", &cases[3].pgdap("show timezone").await.unwrap())
    );
    // Invalid values are the server's errors, in both.
    for c in [
        base().var("PGTZ", ""),
        base().var("PGTZ", "Mars/Olympus"),
        base().var("PGOPTIONS", "-c no_such_setting=1"),
    ] {
        c.compare(Lib::Libpq18, q, Some("FATAL")).await.unwrap_err();
    }
}

// ----- connect timeout ------------------------------------------------------------------

/// A peer that accepts and never answers (on 127.0.0.120:5432), counting attempts.
fn silent_server() -> &'static common::SilentPeer {
    static L: OnceLock<common::SilentPeer> = OnceLock::new();
    L.get_or_init(|| common::SilentPeer::start("127.0.0.120"))
}

#[tokio::test]
async fn connect_timeout_as_libpq() {
    let peer = silent_server();
    for (value, lo) in [("1", 1.9), ("3", 2.9)] {
        let c = case("127.0.0.120", "appdb", "u", "p").var("PGCONNECT_TIMEOUT", value);
        let mark = peer.mark();
        let t = Instant::now();
        let err = c.pgdap(SSL).await.unwrap_err();
        let ours = t.elapsed().as_secs_f64();
        let ours_attempts = peer.attempts_since(mark).await;
        let mark = peer.mark();
        let t = Instant::now();
        let theirs_err = c.libpq(Lib::Psql15, SSL).unwrap_err();
        let theirs = t.elapsed().as_secs_f64();
        let theirs_attempts = peer.attempts_since(mark).await;
        assert!(err.contains("timeout expired"), "{err}");
        assert!(theirs_err.contains("timeout expired"), "{theirs_err}");
        // 1 means 2 s (a lower bound: it waited that long); prefer does not retry in
        // plaintext after a timeout (counted: one attempt each).
        assert!(ours > lo, "pgdap {value}: {ours}s");
        assert!(theirs > lo, "psql {value}: {theirs}s");
        assert_eq!(
            (ours_attempts, theirs_attempts),
            (1, 1),
            "attempts with {value}"
        );
    }
    for bad in ["", "0.5", "2s"] {
        let c = case("127.0.0.120", "appdb", "u", "p").var("PGCONNECT_TIMEOUT", bad);
        c.compare(
            Lib::Psql15,
            SSL,
            Some("for connection option \"connect_timeout\""),
        )
        .await
        .unwrap_err();
    }
}

// ----- channel binding, require_auth ----------------------------------------------------

#[tokio::test]
async fn channel_binding_as_libpq() {
    let s = server();
    let p = plain_server();
    let cases = [
        (
            case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGCHANNELBINDING", "require"),
            None,
        ),
        (
            case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGCHANNELBINDING", "disable"),
            None,
        ),
        (
            case(&s.addr, "appdb", "md5_user", "md5-pw").var("PGCHANNELBINDING", "require"),
            Some("channel binding required but not supported by server's authentication request"),
        ),
        (
            case(&s.addr, "trustdb", "scram_user", "").var("PGCHANNELBINDING", "require"),
            Some(
                "channel binding required, but server authenticated client without channel binding",
            ),
        ),
        (
            case(&p.addr, "appdb", "scram_user", "scram-pw").var("PGCHANNELBINDING", "require"),
            Some("channel binding required, but SSL not in use"),
        ),
        (
            case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGCHANNELBINDING", ""),
            Some("invalid channel_binding value: \"\""),
        ),
        (
            case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGCHANNELBINDING", "Require"),
            Some("invalid channel_binding value"),
        ),
        // allow does not retry with SSL after the client refused the plaintext session.
        (
            case(&s.addr, "appdb", "scram_user", "scram-pw")
                .var("PGSSLMODE", "allow")
                .var("PGCHANNELBINDING", "require"),
            Some("channel binding required, but SSL not in use"),
        ),
    ];
    for (c, phrase) in &cases {
        let r = c.compare(Lib::Psql15, SSL, *phrase).await;
        assert_eq!(r.is_err(), phrase.is_some(), "{:?}: {r:?}", c.vars);
    }
}

#[tokio::test]
async fn require_auth_as_libpq_18() {
    let s = server();
    let dbs = [
        ("appdb", "scram_user", "scram-pw"),
        ("pwdb", "scram_user", "scram-pw"),
        ("appdb", "md5_user", "md5-pw"),
        ("trustdb", "scram_user", ""),
    ];
    let values = [
        "",
        "none",
        "password",
        "md5",
        "scram-sha-256",
        "scram-sha-256,password",
        "!password",
        "!none",
        "!scram-sha-256",
        "password,none",
        "oauth",
        "gss",
        "sspi,md5",
        "scram-sha-256,!password",
        "md5,md5",
        "md5, password",
        "SCRAM-SHA-256",
        ",md5",
    ];
    for v in values {
        for (db, user, pw) in dbs {
            let c = case(&s.addr, db, user, pw).var("PGREQUIREAUTH", v);
            let ours = c.pgdap(SSL).await;
            let theirs = c.libpq(Lib::Libpq18, SSL);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => {
                    // libpq's message, after its "connection to server ... failed: ".
                    let core = b.rsplit("failed: ").next().unwrap_or(b);
                    assert!(
                        a.contains(core),
                        "PGREQUIREAUTH={v:?} {db}: pgdap {a} vs libpq {b}"
                    );
                }
                _ => panic!("PGREQUIREAUTH={v:?} {db}/{user}: pgdap {ours:?} vs libpq {theirs:?}"),
            }
        }
    }
}

// ----- target_session_attrs ---------------------------------------------------------------

#[tokio::test]
async fn target_session_attrs_as_libpq() {
    let s = server();
    for attrs in [
        "any",
        "read-write",
        "read-only",
        "primary",
        "standby",
        "prefer-standby",
        "",
        "Primary",
    ] {
        for db in ["appdb", "rodb"] {
            let c = case(&s.addr, db, "scram_user", "scram-pw").var("PGTARGETSESSIONATTRS", attrs);
            same_target_outcome(&c, &format!("{attrs} {db}")).await;
        }
    }
    // A primary with default_transaction_read_only=on: primary and read-only, not
    // read-write.
    let c =
        case(&s.addr, "rodb", "scram_user", "scram-pw").var("PGTARGETSESSIONATTRS", "read-write");
    assert!(c
        .pgdap(SSL)
        .await
        .unwrap_err()
        .contains("session is read-only"));
}

// ----- TLS: bounds, SNI, certificate mode, GSS ------------------------------------------

#[tokio::test]
async fn tls_protocol_bounds() {
    let s = server();
    let q = "select version from pg_stat_ssl where pid = pg_backend_pid()";
    let base = || case(&s.addr, "appdb", "scram_user", "scram-pw");
    for c in [
        base().var("PGSSLMAXPROTOCOLVERSION", "TLSv1.2"),
        base().var("PGSSLMAXPROTOCOLVERSION", "tlsv1.2"),
        base().var("PGSSLMINPROTOCOLVERSION", "TLSv1.3"),
        base().var("PGSSLMINPROTOCOLVERSION", ""),
    ] {
        c.compare(Lib::Psql15, q, None).await.unwrap();
    }
    for (c, phrase) in [
        (
            base().var("PGSSLMAXPROTOCOLVERSION", "TLSv1.1"),
            "invalid SSL protocol version range",
        ),
        (
            base()
                .var("PGSSLMINPROTOCOLVERSION", "TLSv1.3")
                .var("PGSSLMAXPROTOCOLVERSION", "TLSv1.2"),
            "invalid SSL protocol version range",
        ),
        (
            base().var("PGSSLMINPROTOCOLVERSION", "TLSv1.4"),
            "invalid \"ssl_min_protocol_version\" value",
        ),
    ] {
        c.compare(Lib::Libpq18, q, Some(phrase)).await.unwrap_err();
    }
    // Under prefer a handshake that fails on the version range falls back to plaintext:
    // a server that allows TLS 1.2 only, a client that wants 1.3.
    let c =
        case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGSSLMINPROTOCOLVERSION", "TLSv1.3");
    let narrow = tls12_server();
    let c = Case {
        server: &narrow.addr,
        ..c
    };
    assert_eq!(c.compare(Lib::Libpq18, SSL, None).await.unwrap(), "false");
}

/// 127.0.0.101: a server whose TLS stops at 1.2.
fn tls12_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let mut spec = ServerSpec::new("127.0.0.101", Some("server"));
        spec.conf = "ssl_max_protocol_version = 'TLSv1.2'\n".into();
        Server::start(spec)
    })
}

#[tokio::test]
async fn sni_certmode_gssencmode() {
    let s = server();
    let base = || case(&s.addr, "appdb", "scram_user", "scram-pw");
    for (c, phrase) in [
        (base().var("PGSSLSNI", ""), None),
        (base().var("PGSSLSNI", "0"), None),
        (base().var("PGGSSENCMODE", "prefer"), None),
        (base().var("PGGSSENCMODE", "disable"), None),
        (
            base().var("PGGSSENCMODE", "require"),
            Some("invalid when GSSAPI support is not compiled in"),
        ),
        (
            base().var("PGGSSENCMODE", ""),
            Some("invalid gssencmode value"),
        ),
        (
            base().var("PGSSLCERTMODE", ""),
            Some("invalid sslcertmode value"),
        ),
        (base().var("PGSSLCERTMODE", "allow"), None),
        (base().var("PGSSLCERTMODE", "disable"), None),
    ] {
        let r = c.compare(Lib::Libpq18, SSL, phrase).await;
        assert_eq!(r.is_err(), phrase.is_some(), "{:?} {r:?}", c.vars);
    }
    // sslcertmode=disable: the certificate at the default path is not sent, so a
    // certificate-only database refuses the session (in both).
    let c = case(&s.addr, "certdb", "alice", "").var("PGSSLCERTMODE", "disable");
    c.home.put("alice.crt", "postgresql.crt");
    c.home.put("alice.key", "postgresql.key");
    c.compare(
        Lib::Libpq18,
        SSL,
        Some("connection requires a valid client certificate"),
    )
    .await
    .unwrap_err();
    let c = Case { vars: vec![], ..c };
    assert_eq!(c.compare(Lib::Libpq18, SSL, None).await.unwrap(), "true");
}

// ----- doctor ---------------------------------------------------------------------------

#[tokio::test]
async fn doctor_shows_libpq_settings_and_what_is_ignored() {
    let s = server();
    let c = case(&s.addr, "appdb", "scram_user", "")
        .var("PGHOST", "elsewhere")
        .var("PGSERVICE", "svc")
        .var("PGLOADBALANCEHOSTS", "random")
        .var("PGSSLCOMPRESSION", "1")
        .var("PGMODE", "require")
        .var("PGSSLMODE", "disable")
        .var("PGAPPNAME", "billing")
        .var("PGCONNECT_TIMEOUT", "1")
        .var("PGTARGETSESSIONATTRS", "read-write");
    write_pgpass(&c.home.home().join(".pgpass"), "*:*:*:*:scram-pw\n", 0o600);
    // A service whose host the Access Point overrides.
    std::fs::write(
        c.home.home().join(".pg_service.conf"),
        "[svc]\nhost=elsewhere\n",
    )
    .unwrap();
    let ap = access_point(c.server, c.db, c.user, c.password);
    let report = pgdap::doctor::diagnose(&ap, &c.env(), &Default::default()).await;
    let setting = |name: &str| {
        report
            .settings
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", report.settings))
            .clone()
    };
    assert_eq!(setting("PGAPPNAME").value, "billing");
    assert_eq!(setting("PGCONNECT_TIMEOUT").value, "2s");
    assert_eq!(setting("PGTARGETSESSIONATTRS").source, "env");
    assert_eq!(setting("password in use").source, "password file");
    assert_eq!(setting("password in use").value, "***");
    assert!(setting("PGPASSFILE").value.contains("matches at line 1"));
    assert!(report.connection.connected, "{:?}", report.connection);
    let warned = |item: &str| {
        report
            .checks
            .iter()
            .any(|c| c.item == item && c.status == pgdap::doctor::Status::Warn)
    };
    assert!(warned("PGHOST"), "{:?}", report.checks);
    assert!(warned("PGSERVICE"), "{:?}", report.checks);
    assert!(warned("PGSSLCOMPRESSION"), "{:?}", report.checks);
    // Supported since issue 24: a setting, not a warning.
    assert!(!warned("PGLOADBALANCEHOSTS"), "{:?}", report.checks);
    assert_eq!(setting("PGLOADBALANCEHOSTS").value, "random");
    assert!(
        setting("PGSERVICE").value.starts_with("svc (file ")
            && setting("PGSERVICE").value.ends_with(".pg_service.conf)"),
        "{:?}",
        setting("PGSERVICE")
    );
    assert!(warned("PGSSLMODE"), "{:?}", report.checks);
    assert!(!format!("{report:?}").contains("scram-pw"));
    // A group-readable password file: ignored with libpq's warning.
    common::set_mode(&c.home.home().join(".pgpass"), 0o644);
    let report = pgdap::doctor::diagnose(&ap, &c.env(), &Default::default()).await;
    assert!(report
        .checks
        .iter()
        .any(|c| c.item == "password file" && c.found.contains("has group or world access")));
}

/// 127.0.0.105: SSL without ssl_ca_file, so it never asks for a client certificate.
fn no_ca_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let mut spec = ServerSpec::new("127.0.0.105", Some("server"));
        spec.conf = "ssl_ca_file = ''\nssl_crl_file = ''\n".into();
        Server::start(spec)
    })
}

#[tokio::test]
async fn sslcertmode_require_as_libpq_16() {
    let s = server();
    let n = no_ca_server();
    let p = plain_server();
    let with_cert = |c: Case<'static>| {
        c.home.put("alice.crt", "postgresql.crt");
        c.home.put("alice.key", "postgresql.key");
        c
    };
    let cases: Vec<(Case<'static>, Option<&str>)> = vec![
        // The server asks and a certificate is sent: accepted.
        (
            with_cert(
                case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGSSLCERTMODE", "require"),
            ),
            None,
        ),
        // The server asks, nothing to send.
        (
            case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGSSLCERTMODE", "require"),
            Some("server accepted connection without a valid SSL certificate"),
        ),
        // The server never asks.
        (
            with_cert(
                case(&n.addr, "appdb", "scram_user", "scram-pw").var("PGSSLCERTMODE", "require"),
            ),
            Some("server did not request an SSL certificate"),
        ),
        // allow: the plaintext attempt fails on the client side and is not retried.
        (
            with_cert(
                case(&s.addr, "appdb", "scram_user", "scram-pw")
                    .var("PGSSLMODE", "allow")
                    .var("PGSSLCERTMODE", "require"),
            ),
            Some("server did not request an SSL certificate"),
        ),
        (
            case(&p.addr, "appdb", "scram_user", "scram-pw").var("PGSSLCERTMODE", "require"),
            Some("server did not request an SSL certificate"),
        ),
    ];
    for (c, phrase) in &cases {
        let r = c.compare(Lib::Libpq18, SSL, *phrase).await;
        assert_eq!(r.is_err(), phrase.is_some(), "{:?} {r:?}", c.vars);
        c.blocking_agrees(SSL, &r).await;
    }
}

// ----- the connect example reads all of this from the process environment ---------------

#[test]
fn connect_example_honours_libpq_variables() {
    let s = server();
    let home = ClientHome::new();
    write_pgpass(
        &home.home().join(".pgpass"),
        &format!("{}:5432:*:scram_user:scram-pw\n", s.addr),
        0o600,
    );
    let run = |db: &str, vars: &[(&str, &str)]| {
        let dap = home.home().join(format!("{db}.cfg"));
        std::fs::write(
            &dap,
            format!(
                "dbengine=postgre\ndbserver={}\ndbname={db}\nusername=scram_user\n",
                s.addr
            ),
        )
        .unwrap();
        let mut cmd = Command::new(common::example("connect"));
        for (k, _) in std::env::vars() {
            if k.starts_with("PG") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", home.home()).arg("--config").arg(&dap);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // The password comes from ~/.pgpass; PGSSLMODE (twin) applies.
    let out = run(
        "appdb",
        &[("PGSSLMODE", "disable"), ("PGAPPNAME", "billing")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(json["ssl"], false, "{json}");
    assert_eq!(json["user"], "scram_user");
    // PGTARGETSESSIONATTRS refuses the read-only database.
    let out = run("rodb", &[("PGTARGETSESSIONATTRS", "read-write")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("session is read-only"));
    // A group-readable password file is ignored: no password.
    common::set_mode(&home.home().join(".pgpass"), 0o644);
    let out = run("appdb", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no password supplied"));
}

/// A PGTARGETSESSIONATTRS case through pgdap and psql 15: the same outcome, and pgdap's
/// error carries psql's reason (libpq's message). Returns that reason when refused.
async fn same_target_outcome(c: &Case<'_>, name: &str) -> Option<String> {
    let ours = c.pgdap(SSL).await;
    c.blocking_agrees(SSL, &ours).await;
    let theirs = c.libpq(Lib::Psql15, SSL);
    assert_eq!(
        ours.is_ok(),
        theirs.is_ok(),
        "{name}: {ours:?} vs {theirs:?}"
    );
    let (Err(a), Err(b)) = (&ours, &theirs) else {
        return None;
    };
    let core = b
        .lines()
        .next()
        .unwrap_or_default()
        .rsplit("failed: ")
        .next()
        .unwrap()
        .trim_start_matches("psql: error: ");
    assert!(a.contains(core), "{name}: pgdap {a} vs psql {b}");
    Some(core.to_string())
}

// ----- a real hot standby -----------------------------------------------------------------

static STANDBY_DATA: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn stop_standby() {
    if let Some(data) = STANDBY_DATA.get() {
        common::stop_cluster(Path::new(&format!("{PG_BIN}/pg_ctl")), data);
    }
}

/// 127.0.0.106: a primary; 127.0.0.107: its streaming hot standby (pg_basebackup -R).
fn standby() -> &'static str {
    static PRIMARY: OnceLock<Server> = OnceLock::new();
    let primary = PRIMARY.get_or_init(|| {
        let mut spec = ServerSpec::new("127.0.0.106", Some("server"));
        spec.hba = format!("local replication all trust\n{}", common::STANDARD_HBA);
        Server::start(spec)
    });
    STANDBY_DATA.get_or_init(|| {
        let dir = PathBuf::from("/tmp/pgdap-tests/i13-standby-127.0.0.107");
        let data = common::fresh_cluster_dir(&dir, Path::new(&format!("{PG_BIN}/pg_ctl")));
        let mut basebackup = common::as_postgres(Path::new(&format!("{PG_BIN}/pg_basebackup")));
        basebackup
            .arg("-h")
            .arg(&primary.socket_dir)
            .args(["-U", "postgres", "-R", "-X", "stream", "-D"])
            .arg(&data);
        common::run(basebackup, "pg_basebackup");
        let mut conf = std::fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
        conf.push_str(&format!(
            "listen_addresses = '127.0.0.107'\nunix_socket_directories = '{}'\n",
            dir.display()
        ));
        std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
        common::chown_postgres(&dir);
        unsafe {
            libc::atexit(stop_standby);
        }
        common::pg_ctl(
            Path::new(&format!("{PG_BIN}/pg_ctl")),
            &data,
            &["-w", "-t", "60", "start"],
            Some(&dir.join("log")),
        );
        data
    });
    "127.0.0.107"
}

#[tokio::test]
async fn target_session_attrs_on_a_hot_standby_as_libpq() {
    let addr = standby();
    for attrs in [
        "any",
        "read-write",
        "read-only",
        "primary",
        "standby",
        "prefer-standby",
    ] {
        let c = case(addr, "appdb", "scram_user", "scram-pw").var("PGTARGETSESSIONATTRS", attrs);
        same_target_outcome(&c, attrs).await;
    }
    let c = case(addr, "appdb", "scram_user", "scram-pw").var("PGTARGETSESSIONATTRS", "primary");
    assert!(c
        .pgdap(SSL)
        .await
        .unwrap_err()
        .contains("server is in hot standby mode"));
}

// ----- servers before PostgreSQL 14 (no start-up reports: libpq asks) -----------------------

/// The npm package's PostgreSQL 13.
const PG13: &str = "13.23.0-beta.16";

static PG13_DATA: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();

extern "C" fn stop_pg13() {
    if let Some((bin, primary, standby)) = PG13_DATA.get() {
        common::libpq18::stop_server_of(bin, standby);
        common::libpq18::stop_server_of(bin, primary);
    }
}

/// 127.0.0.108: a PostgreSQL 13 primary with `ro_user`, whose sessions default to
/// read-only; 127.0.0.109: its streaming hot standby, made from a copy of the stopped
/// primary (the package has no pg_basebackup). Direct TLS uses the primary as a server
/// older than 17.
pub(crate) fn pg13_servers() -> (&'static str, &'static str) {
    PG13_DATA.get_or_init(|| {
        let bin = common::libpq18::install(PG13);
        let pg_ctl = bin.join("bin/pg_ctl");
        let primary = common::libpq18::start_server_of(
            &bin,
            "127.0.0.108",
            "server",
            &[
                "create role ro_user login password 'ro-pw'",
                "alter role ro_user set default_transaction_read_only = on",
            ],
        );
        let run = |args: &[&str], data: &Path, log: Option<&Path>| {
            common::pg_ctl(&pg_ctl, data, args, log)
        };
        run(&["-m", "fast", "-w", "stop"], &primary, None);
        let dir = PathBuf::from("/tmp/pgdap-tests/pg-npm-127.0.0.109");
        let standby = common::fresh_cluster_dir(&dir, &pg_ctl);
        let mut cp = Command::new("cp");
        cp.arg("-a").arg(&primary).arg(&standby);
        common::run(cp, "copying the primary");
        std::fs::write(standby.join("standby.signal"), "").unwrap();
        let mut conf = std::fs::read_to_string(standby.join("postgresql.auto.conf")).unwrap();
        conf.push_str(&format!(
            "listen_addresses = '127.0.0.109'\nunix_socket_directories = '{}'\n\
             primary_conninfo = 'host=127.0.0.108 port=5432 user=postgres'\n",
            dir.display()
        ));
        std::fs::write(standby.join("postgresql.auto.conf"), conf).unwrap();
        common::chown_postgres(&dir);
        let primary_log = primary.with_file_name("log");
        run(&["-w", "-t", "60", "start"], &primary, Some(&primary_log));
        unsafe {
            libc::atexit(stop_pg13);
        }
        run(
            &["-w", "-t", "60", "start"],
            &standby,
            Some(&dir.join("log")),
        );
        (bin, primary, standby)
    });
    ("127.0.0.108", "127.0.0.109")
}

/// PGTARGETSESSIONATTRS against PostgreSQL 13, which reports neither
/// `default_transaction_read_only` nor `in_hot_standby` at start-up: pgdap asks as libpq
/// does (`SHOW transaction_read_only`, `pg_is_in_recovery()`), and every value gives
/// psql 15's outcome on a primary and a hot standby, for a read-write and a read-only
/// role.
#[tokio::test]
async fn target_session_attrs_on_postgresql_13_as_libpq() {
    let (primary, standby) = pg13_servers();
    let version = case(primary, "appdb", "scram_user", "scram-pw")
        .pgdap("show server_version_num")
        .await
        .unwrap();
    assert!(version.starts_with("13"), "not PostgreSQL 13: {version}");
    let mut refusals = std::collections::BTreeSet::new();
    for (addr, user, password) in [
        (primary, "scram_user", "scram-pw"),
        (primary, "ro_user", "ro-pw"),
        (standby, "scram_user", "scram-pw"),
        (standby, "ro_user", "ro-pw"),
    ] {
        for attrs in [
            "any",
            "read-write",
            "read-only",
            "primary",
            "standby",
            "prefer-standby",
        ] {
            let c = case(addr, "appdb", user, password).var("PGTARGETSESSIONATTRS", attrs);
            refusals.extend(same_target_outcome(&c, &format!("{addr} {user} {attrs}")).await);
        }
    }
    // Each of libpq's four refusals happened (the cases are not all "any").
    assert_eq!(
        refusals.into_iter().collect::<Vec<_>>(),
        [
            "server is in hot standby mode",
            "server is not in hot standby mode",
            "session is not read-only",
            "session is read-only",
        ],
    );
}
