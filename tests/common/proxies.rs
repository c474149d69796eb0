//! PgBouncer and HAProxy processes started by the tests, in front of harness servers.
//!
//! - [`PgBouncer::start`]: Debian's `pgbouncer` (1.18) on `addr:5432` in front of one
//!   backend, run as the `postgres` user in the foreground, with the spec's client TLS
//!   mode (a certificate for its own IP address from the test CA), `auth_type`, pool mode
//!   and `auth_file` ([`auth_file_from`] copies the SCRAM/md5 secrets from the backend's
//!   `pg_authid`, so both pass through).
//! - [`HaProxy::start`]: Debian's `haproxy` (2.6) in `mode tcp` on `addr:5432` with a
//!   primary and an optional backup server, TCP health checks every 200 ms.
//! - [`psql_via_proxy`]: psql (libpq 15) with the same settings as pgdap, classifying the
//!   outcome by the *client-side* connection (`\conninfo`): `pg_stat_ssl` would describe
//!   the pooler's own connection to the backend, not the client's.
//!
//! Processes are stopped when dropped and, for those kept in statics, at process exit;
//! one left by a killed test run (its pid file under /tmp/pgdap-tests) is killed before an
//! address is reused.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{pki, San, Server};

const ROOT: &str = "/tmp/pgdap-tests";

/// The proxies this process started (pid, directory), killed and removed at exit.
static CHILDREN: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());
static AT_EXIT: std::sync::Once = std::sync::Once::new();

extern "C" fn kill_children_at_exit() {
    if let Ok(list) = CHILDREN.lock() {
        for (pid, dir) in list.iter() {
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn register(pid: u32, dir: &Path) {
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(kill_children_at_exit);
    });
    CHILDREN.lock().unwrap().push((pid, dir.to_path_buf()));
}

fn unregister(pid: u32) {
    CHILDREN.lock().unwrap().retain(|(p, _)| *p != pid);
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A directory for one proxy of this process; a proxy of a dead test process left at the
/// same address (its `proxy.pid`) is killed first.
fn proxy_dir(kind: &str, addr: &str) -> PathBuf {
    std::fs::create_dir_all(ROOT).unwrap();
    let suffix = format!("-{kind}-{addr}");
    if let Ok(entries) = std::fs::read_dir(ROOT) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(owner) = name.strip_suffix(&suffix) else {
                continue;
            };
            if Path::new("/proc").join(owner).exists() {
                continue;
            }
            if let Ok(pid) = std::fs::read_to_string(entry.path().join("proxy.pid")) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = PathBuf::from(ROOT).join(format!("{}{suffix}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The uid and gid of the `postgres` user.
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

fn chown_postgres(path: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .arg("-R")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown {}", path.display());
    }
}

/// Waits until something accepts TCP connections on `addr:5432`.
fn wait_listening(addr: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let target: std::net::SocketAddr = format!("{addr}:5432").parse().unwrap();
    loop {
        if std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "proxy on {addr} exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "proxy on {addr} not listening after 20 s: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server certificate for `addr` from the test CA, written as `<name>.crt/.key` in the
/// PKI directory (so verify-full through a proxy at that address passes).
pub fn cert_for_ip(name: &str, addr: &str) -> (PathBuf, PathBuf) {
    let dir = &pki().dir;
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    if crt.exists() {
        return (crt, key);
    }
    let ca = super::Issued {
        cert: openssl::x509::X509::from_pem(&std::fs::read(dir.join("ca.crt")).unwrap()).unwrap(),
        key: openssl::pkey::PKey::private_key_from_pem(&std::fs::read(dir.join("ca.key")).unwrap())
            .unwrap(),
    };
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let k =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let issued = super::issue(name, k, Some(&ca), &[San::Ip(addr)], false, false);
    std::fs::write(&crt, issued.cert.to_pem().unwrap()).unwrap();
    super::write_key(&key, &issued.key.private_key_to_pem_pkcs8().unwrap());
    (crt, key)
}

// ---------------------------------------------------------------------------------------
// PgBouncer
// ---------------------------------------------------------------------------------------

/// What a PgBouncer runs with.
pub struct PgBouncerSpec {
    /// Its own address (port 5432).
    pub addr: &'static str,
    /// `client_tls_sslmode`: disable, allow, prefer, require, verify-ca, verify-full.
    pub client_tls: &'static str,
    /// `auth_type`: scram-sha-256, md5, cert, trust, ...
    pub auth_type: &'static str,
    /// `pool_mode`: session or transaction.
    pub pool_mode: &'static str,
    /// `auth_file` lines (`"user" "secret"`).
    pub auth_file: String,
    /// `default_pool_size` (server connections per user/database pair).
    pub pool_size: u32,
}

pub struct PgBouncer {
    pub addr: String,
    pub dir: PathBuf,
    child: Child,
}

impl PgBouncer {
    pub fn start(spec: PgBouncerSpec, backend: &Server) -> PgBouncer {
        let dir = proxy_dir("pgbouncer", spec.addr);
        let log = dir.join("pgbouncer.log");
        std::fs::write(dir.join("userlist.txt"), &spec.auth_file).unwrap();
        let mut ini = format!(
            "[databases]\n* = host={backend} port=5432\n\n[pgbouncer]\n\
             listen_addr = {addr}\nlisten_port = 5432\nunix_socket_dir =\n\
             logfile = {log}\npidfile =\nauth_type = {auth}\nauth_file = {users}\n\
             pool_mode = {mode}\ndefault_pool_size = {size}\nmax_client_conn = 500\n\
             server_tls_sslmode = disable\nserver_login_retry = 1\nquery_wait_timeout = 15\n\
             ignore_startup_parameters = extra_float_digits\n\
             client_tls_sslmode = {tls}\nclient_tls_protocols = tlsv1.2,tlsv1.3\n",
            backend = backend.addr,
            addr = spec.addr,
            log = log.display(),
            auth = spec.auth_type,
            users = dir.join("userlist.txt").display(),
            mode = spec.pool_mode,
            size = spec.pool_size,
            tls = spec.client_tls,
        );
        if spec.client_tls != "disable" {
            let (crt, key) = cert_for_ip(&format!("bouncer-{}", spec.addr), spec.addr);
            for (src, dst) in [(crt, "server.crt"), (key, "server.key")] {
                std::fs::copy(src, dir.join(dst)).unwrap();
            }
            std::fs::copy(pki().path("ca.crt"), dir.join("ca.crt")).unwrap();
            ini.push_str(&format!(
                "client_tls_cert_file = {d}/server.crt\nclient_tls_key_file = {d}/server.key\n\
                 client_tls_ca_file = {d}/ca.crt\n",
                d = dir.display()
            ));
        }
        std::fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
        chown_postgres(&dir);
        super::set_mode(&dir.join("userlist.txt"), 0o600);
        let mut cmd = Command::new("/usr/sbin/pgbouncer");
        if is_root() {
            // PgBouncer refuses to run as root; the child itself (not a runuser wrapper)
            // so that its pid is PgBouncer's.
            use std::os::unix::process::CommandExt;
            let (uid, gid) = postgres_ids();
            cmd.uid(uid).gid(gid);
        }
        let mut child = cmd
            .arg(dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer (apt-get install pgbouncer; scripts/test.sh installs it)");
        register(child.id(), &dir);
        std::fs::write(dir.join("proxy.pid"), child.id().to_string()).unwrap();
        wait_listening(spec.addr, &mut child, &log);
        PgBouncer {
            addr: spec.addr.to_string(),
            dir,
            child,
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        stop_child(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stop_child(child: &mut Child) {
    // SIGTERM (PgBouncer and HAProxy exit at once); SIGKILL after a short grace.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            unregister(child.id());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    unregister(child.id());
}

/// `auth_file` lines for `users`, with the secrets the backend stores (SCRAM verifiers
/// and md5 hashes pass through PgBouncer; a plaintext password is given for users that
/// log in with PgBouncer's `cert` auth, which then needs one for the backend).
pub fn auth_file_from(backend: &Server, users: &[&str], plaintext: &[(&str, &str)]) -> String {
    let list = users
        .iter()
        .map(|u| format!("'{u}'"))
        .collect::<Vec<_>>()
        .join(",");
    let rows = backend.psql(
        "postgres",
        &format!("select rolname || ' ' || rolpassword from pg_authid where rolname in ({list})"),
    );
    let mut text = String::new();
    for line in rows.lines() {
        let (user, secret) = line.split_once(' ').unwrap();
        text.push_str(&format!("\"{user}\" \"{secret}\"\n"));
    }
    for (user, password) in plaintext {
        text.push_str(&format!("\"{user}\" \"{password}\"\n"));
    }
    text
}

// ---------------------------------------------------------------------------------------
// HAProxy
// ---------------------------------------------------------------------------------------

// HAProxy is started by tests/process_wide (failover) only.
#[allow(dead_code)]
pub struct HaProxy {
    pub addr: String,
    pub dir: PathBuf,
    child: Child,
}

#[allow(dead_code)]
impl HaProxy {
    /// `mode tcp` on `addr:5432`, `primary` active and `backup` (if any) used only when
    /// the primary's health check fails: TCP checks every 200 ms, down after 2 failures,
    /// up after 2 successes; sessions on a server marked down are shut down.
    pub fn start(addr: &'static str, primary: &str, backup: Option<&str>) -> HaProxy {
        let dir = proxy_dir("haproxy", addr);
        let log = dir.join("haproxy.log");
        let mut cfg = format!(
            "global\n  maxconn 2000\n\n\
             defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n\
             timeout server 60s\n  retries 2\n  option redispatch\n\n\
             listen pg\n  bind {addr}:5432\n  default-server inter 200ms fall 2 rise 2 \
             on-marked-down shutdown-sessions\n  server primary {primary}:5432 check\n"
        );
        if let Some(backup) = backup {
            cfg.push_str(&format!("  server backup {backup}:5432 check backup\n"));
        }
        std::fs::write(dir.join("haproxy.cfg"), cfg).unwrap();
        let mut child = Command::new("/usr/sbin/haproxy")
            .arg("-db")
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("haproxy.err")).unwrap())
            .spawn()
            .expect("haproxy (apt-get install haproxy; scripts/test.sh installs it)");
        register(child.id(), &dir);
        std::fs::write(dir.join("proxy.pid"), child.id().to_string()).unwrap();
        wait_listening(addr, &mut child, &dir.join("haproxy.err"));
        HaProxy {
            addr: addr.to_string(),
            dir,
            child,
        }
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        stop_child(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Oracles and measurements
// ---------------------------------------------------------------------------------------

/// psql (libpq 15) set up for the same case as pgdap ([`super::libpq_command`]), through
/// a proxy: the outcome of the client-side connection from `\conninfo`.
pub fn psql_via_proxy(
    ap: &pgdap::AccessPoint,
    env: &pgdap::Environment,
    home: &Path,
) -> super::Outcome {
    let mut cmd = super::libpq_command(ap, env, home, &["-X", "-w", "-c", "\\conninfo"]);
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return super::Outcome::Fail(format!(
            "[psql {}] {}",
            super::pg_major(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if String::from_utf8_lossy(&out.stdout).contains("SSL connection") {
        super::Outcome::Ssl
    } else {
        super::Outcome::Plain
    }
}

/// pgdap through a proxy: connect, run a query, classify by the client-side TLS session.
pub async fn pgdap_via_proxy(ap: &pgdap::AccessPoint, env: &pgdap::Environment) -> super::Outcome {
    let config = match pgdap::Config::new(ap.clone(), env) {
        Ok(c) => c,
        Err(e) => return super::Outcome::Fail(e.to_string()),
    };
    let connector = match pgdap::Connector::new(config) {
        Ok(c) => c,
        Err(e) => return super::Outcome::Fail(e.to_string()),
    };
    match connector.connect_spawned().await {
        Ok(session) => {
            session.client.simple_query("select 1").await.unwrap();
            if session.tls.is_some() {
                super::Outcome::Ssl
            } else {
                super::Outcome::Plain
            }
        }
        Err(e) => super::Outcome::Fail(e.to_string()),
    }
}
