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

/// Runs the same case through psql (the libpq of [`PG_BIN`]): the Access Point and our variables mapped
/// onto libpq's (PGSSLMODE, PGSSLROOTCERT, ... with the paths pgdap resolved, so both read
/// the same files; PGSSLSNI passes through). `PGAUTH=cert` maps to no password and, as
/// SPEC §4 requires, allow/prefer to require.
pub fn psql_outcome(ap: &pgdap::AccessPoint, env: &pgdap::Environment, home: &Path) -> Outcome {
    let settings = match pgdap::Settings::resolve(env, env.default_dir()) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(format!("configuration: {e}")),
    };
    let cert_auth = settings.auth.value == pgdap::AuthMethod::Cert;
    let mode = match (settings.mode.value, cert_auth) {
        (pgdap::SslMode::Allow | pgdap::SslMode::Prefer, true) => "require",
        (m, _) => m.as_str(),
    };
    let mut cmd = Command::new(format!("{PG_BIN}/psql"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("PGHOST", ap.server())
        .env("PGPORT", "5432")
        .env("PGUSER", ap.username())
        .env("PGDATABASE", ap.dbname())
        .env("PGSSLMODE", mode)
        .env("PGSSLROOTCERT", &settings.root_ca.value)
        .env("PGSSLCERT", &settings.cert.value)
        .env("PGSSLKEY", &settings.key.value)
        .env("PGSSLCRL", &settings.crl.value)
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-X", "-A", "-t", "-w", "-c", SSL_QUERY]);
    // libpq's own variables without a vendor twin, which pgdap honours by the same name.
    for var in ["PGSSLSNI"] {
        if let Some(value) = env.get(var) {
            cmd.env(var, value);
        }
    }
    if !cert_auth && !ap.password().is_empty() {
        cmd.env("PGPASSWORD", ap.password().expose());
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Outcome::Fail(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    match String::from_utf8_lossy(&out.stdout).trim() {
        "t" => Outcome::Ssl,
        "f" => Outcome::Plain,
        other => Outcome::Fail(format!("unexpected psql output {other:?}")),
    }
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

/// The path of an example binary of this crate, building it first if this test run did
/// not (`cargo test --test server` builds only that test).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example {name}");
    }
    path
}
