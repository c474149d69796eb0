//! PostgreSQL servers of the tests: the template cluster, `Server`, the shared servers, clusters a test manages itself.

use super::*;

// ---------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------

/// The pg_hba.conf of the shared servers.
pub const STANDARD_HBA: &str = "\
local all all trust
hostssl certdb all 127.0.0.0/8 cert
hostssl mapdb all 127.0.0.0/8 cert map=cnmap
hostssl vcadb all 127.0.0.0/8 scram-sha-256 clientcert=verify-ca
hostssl sslonly all 127.0.0.0/8 scram-sha-256
hostnossl sslonly all 127.0.0.0/8 reject
hostnossl nossl all 127.0.0.0/8 scram-sha-256
hostssl nossl all 127.0.0.0/8 reject
host pwdb all 127.0.0.0/8 password
host all md5_user 127.0.0.0/8 md5
host all all 127.0.0.0/8 scram-sha-256
";

pub const STANDARD_IDENT: &str = "cnmap bob-cn bob\ncnmap /^(.*)@pgdap\\.test$ \\1\n";

/// What a server runs with.
pub struct ServerSpec {
    /// Loopback address, e.g. "127.0.0.2".
    pub addr: &'static str,
    /// PKI base name of the server certificate (`server`, `server-cn-only`, ...); `None`:
    /// ssl = off.
    pub cert: Option<&'static str>,
    /// pg_hba.conf.
    pub hba: String,
    /// pg_ident.conf.
    pub ident: String,
    /// Extra postgresql.conf lines.
    pub conf: String,
}

impl ServerSpec {
    pub fn new(addr: &'static str, cert: Option<&'static str>) -> ServerSpec {
        ServerSpec {
            addr,
            cert,
            hba: STANDARD_HBA.to_string(),
            ident: STANDARD_IDENT.to_string(),
            conf: String::new(),
        }
    }
}

pub struct Server {
    pub addr: String,
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    pub log: PathBuf,
    /// Docker mode's container (`PGDAP_TEST_DOCKER`, see `docker.rs`), removed on drop.
    container: Option<docker::Container>,
}

pub(crate) static RUNNING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
pub(crate) static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();

pub(crate) fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Runs a server binary of [`PG_BIN`] as [`as_postgres`] does.
pub(crate) fn pg_cmd(bin: &str) -> Command {
    as_postgres(Path::new(&format!("{PG_BIN}/{bin}")))
}

/// Runs the program at `path` as the `postgres` user when we are root (PostgreSQL refuses
/// to run as root).
pub fn as_postgres(path: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

/// Runs `cmd` and asserts that it succeeded (`what` names it in the failure).
pub fn run(mut cmd: Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Gives `path` and everything in it to `postgres` (servers run as postgres when root).
pub fn chown_postgres(path: &Path) {
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.arg("-R").arg("postgres:postgres").arg(path);
                c
            },
            "chown",
        );
    }
}

pub(crate) fn ensure_root_dir() {
    std::fs::create_dir_all(ROOT).unwrap();
    set_mode(Path::new(ROOT), 0o777);
    if is_root() {
        // Make sure the postgres user exists (Debian's package creates it).
        let exists = Command::new("id")
            .arg("postgres")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !exists {
            run(
                {
                    let mut c = Command::new("useradd");
                    c.args(["--system", "--user-group", "--no-create-home", "postgres"]);
                    c
                },
                "useradd postgres",
            );
        }
    }
}

extern "C" fn stop_all_at_exit() {
    let _ =
        std::fs::remove_dir_all(PathBuf::from(ROOT).join(format!("pki-{}", std::process::id())));
    if let Ok(list) = RUNNING.lock() {
        for data in list.iter() {
            let _ = pg_cmd("pg_ctl")
                .arg("-D")
                .arg(data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
            let _ = std::fs::remove_dir_all(data.parent().unwrap_or(data));
        }
    }
    if docker::image().is_some() {
        docker::remove_all(false);
    }
}

/// The template's roles and databases.
const TEMPLATE_SETUP: &str = "\
            SET password_encryption = 'scram-sha-256';
            CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw';
            CREATE ROLE alice LOGIN PASSWORD 'alice-pw';
            CREATE ROLE bob LOGIN;
            SET password_encryption = 'md5';
            CREATE ROLE md5_user LOGIN PASSWORD 'md5-pw';
            CREATE DATABASE appdb; CREATE DATABASE sslonly; CREATE DATABASE nossl;
            CREATE DATABASE certdb; CREATE DATABASE mapdb; CREATE DATABASE vcadb;
            CREATE DATABASE pwdb;";

/// initdb once per process into a template with the test roles and databases.
pub(crate) fn template() -> &'static PathBuf {
    TEMPLATE.get_or_init(|| {
        ensure_root_dir();
        unsafe {
            libc::atexit(stop_all_at_exit);
        }
        remove_dead_processes_dirs();
        if Path::new(HOSTS).exists() && is_root() {
            remove_hosts_lines(Path::new(HOSTS), |owner| {
                owner.is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists())
            });
        }
        let dir = PathBuf::from(ROOT).join(format!("template-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        RUNNING.lock().unwrap().push(dir.join("data"));
        std::fs::create_dir_all(&dir).unwrap();
        chown_postgres(&dir);
        let data = dir.join("data");
        let initdb_args = [
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "-A",
            "trust",
            "--no-sync",
        ];
        if let Some(image) = docker::image() {
            docker::remove_all(true);
            let statements: Vec<&str> = TEMPLATE_SETUP
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            docker::initdb_template(image, &dir, &initdb_args, &statements);
            return data;
        }
        run(
            {
                let mut c = pg_cmd("initdb");
                c.arg("-D").arg(&data).args(initdb_args);
                c
            },
            "initdb",
        );
        // Start it on a unix socket only, create roles and databases, stop.
        let sock = dir.join("sock");
        std::fs::create_dir_all(&sock).unwrap();
        chown_postgres(&sock);
        run(
            {
                let mut c = pg_cmd("pg_ctl");
                c.arg("-D").arg(&data).arg("-o").arg(format!(
                    "-c listen_addresses='' -c unix_socket_directories='{}' -c fsync=off",
                    sock.display()
                ));
                c.args(["-w", "-l"]).arg(dir.join("log")).arg("start");
                c
            },
            "pg_ctl start template",
        );
        let setup = TEMPLATE_SETUP;
        let mut psql = Command::new(format!("{PG_BIN}/psql"));
        psql.arg("-h").arg(&sock).args([
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
        ]);
        for statement in setup.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            psql.arg("-c").arg(statement);
        }
        let out = psql.output().unwrap();
        assert!(
            out.status.success(),
            "template setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        run(
            {
                let mut c = pg_cmd("pg_ctl");
                c.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]);
                c
            },
            "pg_ctl stop template",
        );
        data
    })
}

/// Removes the template and PKI directories of test processes that no longer run
/// (killed before their exit handler could clean up), stopping their servers first.
pub(crate) fn remove_dead_processes_dirs() {
    let Ok(entries) = std::fs::read_dir(ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("template-")
            .or_else(|| name.strip_prefix("pki-"))
        else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let data = entry.path().join("data");
        if data.join("postmaster.pid").exists() {
            let _ = pg_cmd("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Makes `addr` free for this process: a server left there by a test process that no
/// longer runs (killed before its exit handler) is stopped; one of a test process that
/// still runs (e.g. another test binary run in parallel) is waited for, up to 5 minutes.
pub(crate) fn claim_address(addr: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let mut busy = false;
        let Ok(entries) = std::fs::read_dir(ROOT) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(pid) = name.strip_suffix(&format!("-{addr}")) else {
                continue;
            };
            let alive =
                pid != std::process::id().to_string() && Path::new("/proc").join(pid).exists();
            if alive {
                busy = true;
                continue;
            }
            let data = entry.path().join("data");
            if data.join("postmaster.pid").exists() {
                let _ = pg_cmd("pg_ctl")
                    .arg("-D")
                    .arg(&data)
                    .args(["-m", "immediate", "-w", "stop"])
                    .output();
            }
            let _ = std::fs::remove_dir_all(entry.path());
        }
        if !busy || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

impl Server {
    pub fn start(spec: ServerSpec) -> Server {
        let template = template();
        claim_address(spec.addr);
        let dir = PathBuf::from(ROOT).join(format!("{}-{}", std::process::id(), spec.addr));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).unwrap();
        run(
            {
                let mut c = Command::new("cp");
                c.arg("-a").arg(template).arg(&data);
                c
            },
            "copy template",
        );
        let socket_dir = dir.join("sock");
        std::fs::create_dir_all(&socket_dir).unwrap();
        let mut conf = format!(
            "listen_addresses = '{}'\nport = 5432\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             shared_buffers = 16MB\nmax_connections = 60\nlog_connections = on\n\
             log_min_messages = info\npassword_encryption = 'scram-sha-256'\n",
            spec.addr,
            socket_dir.display()
        );
        if let Some(cert) = spec.cert {
            let pki = pki();
            for (src, dst) in [
                (format!("{cert}.crt"), "server.crt"),
                (format!("{cert}.key"), "server.key"),
                ("ca.crt".to_string(), "root.crt"),
                ("server.crl".to_string(), "root.crl"),
            ] {
                std::fs::copy(pki.path(&src), data.join(dst)).unwrap();
            }
            set_mode(&data.join("server.key"), 0o600);
            conf.push_str(
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
                 ssl_ca_file = 'root.crt'\nssl_crl_file = 'root.crl'\n",
            );
        } else {
            conf.push_str("ssl = off\n");
        }
        conf.push_str(&spec.conf);
        std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
        std::fs::write(data.join("pg_hba.conf"), &spec.hba).unwrap();
        std::fs::write(data.join("pg_ident.conf"), &spec.ident).unwrap();
        chown_postgres(&dir);
        let log = dir.join("server.log");
        RUNNING.lock().unwrap().push(data.clone());
        if let Some(image) = docker::image() {
            let name = docker::start(image, spec.addr, &dir);
            return Server {
                addr: spec.addr.to_string(),
                data,
                socket_dir,
                log,
                container: Some(docker::Container { name }),
            };
        }
        run(
            {
                let mut c = pg_cmd("pg_ctl");
                c.arg("-D")
                    .arg(&data)
                    .args(["-w", "-t", "60", "-l"])
                    .arg(&log)
                    .arg("start");
                c
            },
            &format!("pg_ctl start {}", spec.addr),
        );
        Server {
            addr: spec.addr.to_string(),
            data,
            socket_dir,
            log,
            container: None,
        }
    }

    /// Waits until the server no longer lists the backend `pid` (10 s at most).
    pub async fn wait_backend_gone(&self, pid: i32) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.psql(
            "postgres",
            &format!("select count(*) from pg_stat_activity where pid = {pid}"),
        ) != "0"
        {
            assert!(
                std::time::Instant::now() < deadline,
                "backend {pid} still there"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Runs SQL as superuser over the unix socket; returns stdout (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(format!("{PG_BIN}/psql"))
            .arg("-h")
            .arg(&self.socket_dir)
            .args([
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-A",
                "-t",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// The server log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(&self) {
        let _ = pg_cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    pub fn restart(&self) {
        if let (Some(image), Some(_)) = (docker::image(), &self.container) {
            // The container ends with its postmaster: a new one on the same directory.
            run(
                {
                    let mut c = pg_cmd("pg_ctl");
                    c.arg("-D")
                        .arg(&self.data)
                        .args(["-w", "-m", "fast", "stop"]);
                    c
                },
                "pg_ctl stop (restart)",
            );
            docker::start(image, &self.addr, self.data.parent().unwrap());
            return;
        }
        run(
            {
                let mut c = pg_cmd("pg_ctl");
                c.arg("-D")
                    .arg(&self.data)
                    .args(["-w", "-m", "fast", "-l"])
                    .arg(&self.log)
                    .arg("restart");
                c
            },
            "pg_ctl restart",
        );
    }
}

pub(crate) static SSL_SERVER: OnceLock<Server> = OnceLock::new();
pub(crate) static PLAIN_SERVER: OnceLock<Server> = OnceLock::new();

pub fn ssl_server() -> &'static Server {
    SSL_SERVER.get_or_init(|| Server::start(ServerSpec::new("127.0.0.2", Some("server"))))
}

pub fn plain_server() -> &'static Server {
    PLAIN_SERVER.get_or_init(|| Server::start(ServerSpec::new("127.0.0.3", None)))
}

/// A fresh directory for a cluster a test manages itself (not through [`Server`]): a
/// server left running in `dir/data` by an earlier run is stopped with `pg_ctl` (run as
/// `postgres`), the directory is emptied and handed to `postgres`. Returns `dir/data`.
pub fn fresh_cluster_dir(dir: &Path, pg_ctl: &Path) -> PathBuf {
    let data = dir.join("data");
    if data.join("postmaster.pid").exists() {
        stop_cluster(pg_ctl, &data);
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    Command::new("chown")
        .arg("postgres")
        .arg(dir)
        .status()
        .unwrap();
    data
}

/// Stops the cluster in `data` at once (for exit handlers: errors are ignored) and removes
/// its directory, the parent of `data` ([`fresh_cluster_dir`]).
pub fn stop_cluster(pg_ctl: &Path, data: &Path) {
    let _ = as_postgres(pg_ctl)
        .arg("-D")
        .arg(data)
        .args(["-m", "immediate", "-w", "stop"])
        .output();
    if let Some(dir) = data.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Runs `pg_ctl -D data ARGS [-l log]` as `postgres` and asserts that it succeeded.
pub fn pg_ctl(pg_ctl: &Path, data: &Path, args: &[&str], log: Option<&Path>) {
    let mut cmd = as_postgres(pg_ctl);
    cmd.arg("-D").arg(data).args(args);
    if let Some(log) = log {
        cmd.arg("-l").arg(log);
    }
    run(cmd, &format!("pg_ctl {args:?} on {}", data.display()));
}
