//! The client side of a test: its per-user directory, Access Points, and the outcome of pgdap and psql on one case.

use super::*;

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

/// A temporary per-user directory (`~/.postgresql` of one test case).
pub struct ClientHome {
    pub tmp: tempfile::TempDir,
    vars: BTreeMap<String, String>,
}

impl ClientHome {
    pub fn new() -> ClientHome {
        ClientHome {
            tmp: tempfile::tempdir().unwrap(),
            vars: BTreeMap::new(),
        }
    }

    /// The default directory (`<home>/.postgresql`, created).
    pub fn dir(&self) -> PathBuf {
        let d = self.tmp.path().join(".postgresql");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn home(&self) -> &Path {
        self.tmp.path()
    }

    /// Copies a PKI file into the default directory under `name`.
    pub fn put(&self, pki_name: &str, name: &str) -> PathBuf {
        let dst = self.dir().join(name);
        std::fs::copy(pki().path(pki_name), &dst).unwrap();
        if name.ends_with(".key") {
            set_mode(&dst, 0o600);
        }
        dst
    }

    /// Sets a PG* variable.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> ClientHome {
        self.vars.insert(name.to_string(), value.into());
        self
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_string(), value.into());
    }

    pub fn env(&self) -> pgdap::Environment {
        pgdap::Environment::from_pairs(self.vars.clone()).with_default_dir(self.dir())
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
}

pub fn access_point(server: &str, db: &str, user: &str, password: &str) -> pgdap::AccessPoint {
    pgdap::AccessPoint::parse(&format!(
        "dbengine=postgre\ndbserver={server}\ndbname={db}\nusername={user}\npassword={password}\n"
    ))
    .unwrap()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ssl,
    Plain,
    Fail(String),
}

impl Outcome {
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Ssl => "ssl",
            Outcome::Plain => "plain",
            Outcome::Fail(_) => "fail",
        }
    }

    pub fn error(&self) -> &str {
        match self {
            Outcome::Fail(e) => e,
            _ => "",
        }
    }
}

pub(crate) const SSL_QUERY: &str =
    "select coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false)";

/// Connects through pgdap, checks that the session's own view of encryption agrees with
/// the server's (`pg_stat_ssl`), and classifies the outcome.
pub async fn pgdap_outcome(ap: &pgdap::AccessPoint, env: &pgdap::Environment) -> Outcome {
    let config = match pgdap::Config::new(ap.clone(), env) {
        Ok(c) => c.with_options(pgdap::ConnectOptions {
            connect_timeout: std::time::Duration::from_secs(10),
            ..Default::default()
        }),
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let connector = match pgdap::Connector::new(config) {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    match connector.connect_spawned().await {
        Ok(session) => {
            let ssl: bool = session
                .client
                .query_one(SSL_QUERY, &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(
                ssl,
                session.tls.is_some(),
                "pgdap's view of SSL disagrees with the server"
            );
            if ssl {
                Outcome::Ssl
            } else {
                Outcome::Plain
            }
        }
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

/// psql (the libpq of [`PG_BIN`]) set up for the same case as pgdap, resolving its own
/// defaults: `HOME` is the case's home, so libpq finds `~/.postgresql/root.crt`,
/// `postgresql.crt` and `postgresql.key` by itself, and nothing pgdap resolved is handed
/// over. What the harness states itself, from docs/design.md, are pgdap's documented
/// differences from libpq: a vendor variable, set and non-empty, becomes its libpq twin
/// (else the twin passes as set); a relative path is relative to `~/.postgresql` (psql
/// runs there); the default CRL file is `postgresql.crl` (libpq's is `root.crl`);
/// `PGAUTH=cert` sends no password and makes allow/prefer require. libpq variables that
/// pgdap honours by the same name pass through.
pub fn libpq_command(
    ap: &pgdap::AccessPoint,
    env: &pgdap::Environment,
    home: &Path,
    psql_args: &[&str],
) -> Command {
    let dir = home.join(".postgresql");
    assert_eq!(
        env.default_dir(),
        Some(dir.as_path()),
        "the oracle's HOME must be the one whose .postgresql pgdap uses"
    );
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(format!("{PG_BIN}/psql"));
    cmd.env_clear()
        .current_dir(&dir)
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("PGHOST", ap.server())
        .env("PGPORT", "5432")
        .env("PGUSER", ap.username())
        .env("PGDATABASE", ap.dbname())
        .env("PGCONNECT_TIMEOUT", "10")
        .args(psql_args);
    for (vendor, twin) in [
        ("PGMODE", "PGSSLMODE"),
        ("PGROOTCA", "PGSSLROOTCERT"),
        ("PGCERT", "PGSSLCERT"),
        ("PGKEY", "PGSSLKEY"),
        ("PGCRL", "PGSSLCRL"),
    ] {
        if let Some(value) = env.get(vendor).or_else(|| env.get_raw(twin)) {
            cmd.env(twin, value);
        }
    }
    if env.get("PGCRL").is_none() && env.get_raw("PGSSLCRL").is_none() {
        cmd.env("PGSSLCRL", "postgresql.crl");
    }
    let cert_auth = env.get("PGAUTH") == Some("cert");
    if cert_auth {
        let mode = env
            .get("PGMODE")
            .or_else(|| env.get_raw("PGSSLMODE"))
            .unwrap_or("prefer");
        if matches!(mode, "allow" | "prefer") {
            cmd.env("PGSSLMODE", "require");
        }
    } else if !ap.password().is_empty() {
        cmd.env("PGPASSWORD", ap.password().expose());
    }
    // Passed as set (PGCONNECT_TIMEOUT replaces the default above); psql 15's libpq
    // ignores PGLOADBALANCEHOSTS (libpq 16).
    for var in [
        "PGSSLSNI",
        "PGTARGETSESSIONATTRS",
        "PGLOADBALANCEHOSTS",
        "PGREQUIREPEER",
        "PGCONNECT_TIMEOUT",
    ] {
        if let Some(value) = env.get_raw(var) {
            cmd.env(var, value);
        }
    }
    cmd
}

/// Runs the same case through psql (see [`libpq_command`]) and classifies it by the
/// server's `pg_stat_ssl`. A configuration pgdap refuses is still run: libpq decides.
pub fn psql_outcome(ap: &pgdap::AccessPoint, env: &pgdap::Environment, home: &Path) -> Outcome {
    let mut cmd = libpq_command(ap, env, home, &["-X", "-A", "-t", "-w", "-c", SSL_QUERY]);
    let out = cmd.output().unwrap();
    if !out.status.success() {
        // The oracle's version is part of what it said: outcomes and messages are those
        // of this libpq.
        return Outcome::Fail(format!(
            "[psql {}] {}",
            pg_major(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    match String::from_utf8_lossy(&out.stdout).trim() {
        "t" => Outcome::Ssl,
        "f" => Outcome::Plain,
        other => Outcome::Fail(format!("unexpected psql output {other:?}")),
    }
}

/// Which server served a session: its address (`inet_server_addr()`), or `socket` for a
/// Unix-socket session (NULL), and whether it is encrypted (`pg_stat_ssl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub server: String,
    pub ssl: bool,
}

/// A session served by `server` (an address or `socket`), SSL or not.
pub fn served(server: &str, ssl: bool) -> Served {
    Served {
        server: server.to_string(),
        ssl,
    }
}

/// One text column `<address or socket> <true|false>`: [`Served`].
pub const SERVED_QUERY: &str = "select coalesce(host(inet_server_addr()), 'socket') || ' ' || \
     coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false)::text";

impl Served {
    /// Parses the row of [`SERVED_QUERY`].
    pub fn parse(row: &str) -> Result<Served, String> {
        match row.trim().split_once(' ') {
            Some((server, "true")) => Ok(served(server, true)),
            Some((server, "false")) => Ok(served(server, false)),
            _ => Err(format!("unexpected row {row:?}")),
        }
    }
}

/// Connects through pgdap (`ConnectOptions::connect_timeout` 10 s, PGCONNECT_TIMEOUT
/// wins when set) and reports which server served the session, checking that pgdap's
/// view of encryption agrees with the server's; or pgdap's error (Display).
pub async fn pgdap_served(
    ap: &pgdap::AccessPoint,
    env: &pgdap::Environment,
) -> Result<Served, String> {
    let config = pgdap::Config::new(ap.clone(), env)
        .map_err(|e| e.to_string())?
        .with_options(pgdap::ConnectOptions {
            connect_timeout: std::time::Duration::from_secs(10),
            ..Default::default()
        });
    let connector = pgdap::Connector::new(config).map_err(|e| e.to_string())?;
    let session = connector
        .connect_spawned()
        .await
        .map_err(|e| e.to_string())?;
    let row: String = session
        .client
        .query_one(SERVED_QUERY, &[])
        .await
        .unwrap()
        .get(0);
    let served = Served::parse(&row)?;
    assert_eq!(
        served.ssl,
        session.tls.is_some(),
        "pgdap's view of SSL disagrees with the server"
    );
    Ok(served)
}

/// psql (see [`libpq_command`]) on the same case: which server served the session, or
/// psql's standard error.
pub fn psql_served(
    ap: &pgdap::AccessPoint,
    env: &pgdap::Environment,
    home: &Path,
) -> Result<Served, String> {
    let out = libpq_command(ap, env, home, &["-X", "-A", "-t", "-w", "-c", SERVED_QUERY])
        .output()
        .unwrap();
    if out.status.success() {
        Served::parse(&String::from_utf8_lossy(&out.stdout))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
    }
}

/// libpq 18 (ctypes, `tools/libpq_oracle.py`) on the same case, with exactly the
/// environment and directory [`libpq_command`] gives psql: which server served the
/// session, or libpq's message (`PQerrorMessage`).
pub fn libpq18_served(
    ap: &pgdap::AccessPoint,
    env: &pgdap::Environment,
    home: &Path,
) -> Result<Served, String> {
    let psql = libpq_command(ap, env, home, &[]);
    let mut cmd = Command::new("python3");
    cmd.env_clear();
    for (name, value) in psql.get_envs() {
        if let Some(value) = value {
            cmd.env(name, value);
        }
    }
    if let Some(dir) = psql.get_current_dir() {
        cmd.current_dir(dir);
    }
    let out = cmd
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/libpq_oracle.py"))
        .arg(SERVED_QUERY)
        .env("LIBPQ", libpq18::dir().join("lib/libpq.so.5"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| {
            panic!(
                "libpq 18 oracle: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    if v["ok"].as_bool() == Some(true) {
        Served::parse(v["result"].as_str().unwrap_or_default())
    } else {
        Err(v["error"].as_str().unwrap_or_default().to_string())
    }
}

/// The hosts a (multi-host) connection failure names, one per line and attempt, in
/// order: libpq's `connection to server at "h" (addr), port 5432`, `connection to server
/// on socket "/dir/.s.PGSQL.5432"` (the text before ` failed:`) and `could not translate
/// host name "h"`.
pub fn failure_hosts(message: &str) -> Vec<String> {
    message
        .lines()
        .filter_map(|line| {
            if let Some(at) = line.find("connection to server ") {
                let rest = &line[at..];
                Some(rest.split(" failed:").next().unwrap().to_string())
            } else {
                let at = line.find("could not translate host name ")?;
                let rest = &line[at..];
                Some(rest.split(" to address").next().unwrap().to_string())
            }
        })
        .collect()
}

/// The name libtest gives the test function `name` of the module `module_path`
/// (`module_path!()`): the module path without the crate, e.g. `harness::hosts_child`.
/// A test that runs its test binary as a child selects the child's test with it
/// (`--exact`): test names carry the module since the test binaries became modules of one.
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

/// The features this test binary was built with: the examples are built with the same.
fn features() -> Vec<&'static str> {
    [
        ("bb8", cfg!(feature = "bb8")),
        ("diesel-async", cfg!(feature = "diesel-async")),
        ("postgres", cfg!(feature = "postgres")),
        ("cli", cfg!(feature = "cli")),
        ("vendored", cfg!(feature = "vendored")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// The path of an example binary of this crate. The examples are built once per test
/// process with this test binary's profile and features (`cargo test --all-targets`
/// already built them so, and then this is a no-op; `cargo test --test server` did not),
/// so no test runs a stale example or one built with other features.
pub fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // target/<profile>/deps/<test>-<hash> → target/<profile>/examples
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "--examples"]);
        let features = features().join(",");
        if !features.is_empty() {
            cargo.args(["--features", &features]);
        }
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().unwrap();
        assert!(
            status.success(),
            "cargo build --examples --features {features}"
        );
        profile_dir.join("examples")
    });
    dir.join(name)
}

/// A TCP peer on `addr`:5432 that accepts connections and never answers, and counts
/// them exactly: [`SilentPeer::attempts_since`] makes a marker connection from 127.0.0.63
/// and waits until it is accepted, so every connection queued before it is counted.
/// Tests of timeouts count attempts with it instead of inferring them from elapsed time.
pub struct SilentPeer {
    held: std::sync::Arc<Mutex<Vec<std::net::TcpStream>>>,
    addr: std::net::SocketAddr,
}

/// The source address of [`SilentPeer`]'s marker connections (no test server uses it).
const MARKER_SOURCE: &str = "127.0.0.63";

impl SilentPeer {
    pub fn start(addr: &str) -> SilentPeer {
        let listener = std::net::TcpListener::bind((addr, 5432)).unwrap();
        let held = std::sync::Arc::new(Mutex::new(Vec::new()));
        let keep = held.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        SilentPeer {
            held,
            addr: format!("{addr}:5432").parse().unwrap(),
        }
    }

    /// A point to count from.
    pub fn mark(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// The connections accepted since `mark` (the marker excluded).
    pub async fn attempts_since(&self, mark: usize) -> usize {
        let marker =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let source: std::net::SocketAddr = format!("{MARKER_SOURCE}:0").parse().unwrap();
        marker.bind(&source.into()).unwrap();
        // A blocking connect to a listener on loopback: done once the kernel queues it.
        marker.connect(&self.addr.into()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let found = self.held.lock().unwrap().iter().skip(mark).position(|s| {
                s.peer_addr()
                    .is_ok_and(|a| a.ip().to_string() == MARKER_SOURCE)
            });
            if let Some(at) = found {
                return at;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the marker connection was never accepted"
            );
            // Yields: the test's runtime goes on meanwhile.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// The server process of a session (`pg_backend_pid()`).
pub async fn backend_pid(client: &pgdap::tokio_postgres::Client) -> i32 {
    client
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// Asserts that pgdap and a libpq oracle agree on one case: the same value, or both
/// failing with `phrase` (when given) in both messages. `case` names the case in the
/// panic message, `oracle` the libpq.
pub fn assert_agree(
    case: &dyn std::fmt::Debug,
    ours: &Result<String, String>,
    oracle: &str,
    theirs: &Result<String, String>,
    phrase: Option<&str>,
) {
    match (ours, theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{case:?}: pgdap {a:?} vs {oracle} {b:?}"),
        (Err(a), Err(b)) => {
            if let Some(p) = phrase {
                assert!(a.contains(p), "{case:?}: pgdap's error lacks {p:?}: {a}");
                assert!(b.contains(p), "{case:?}: {oracle}'s error lacks {p:?}: {b}");
            }
        }
        _ => panic!("{case:?}: pgdap {ours:?} vs {oracle} {theirs:?}"),
    }
}
