//! The Windows build under Wine against real servers: `connect.exe` (built by
//! `scripts/windows.sh` for x86_64-pc-windows-gnu) runs every case that depends on the
//! platform, and each outcome is compared with the Linux `connect` example and psql
//! (libpq 15) for the same case. Linux paths are given to Windows as Wine sees them
//! (`Z:\tmp\...`), the case's `~/.postgresql` becomes Wine's `%APPDATA%\postgresql`.
//!
//! Needs the build output of `scripts/windows.sh` (its `pgdap-windows.env`), so the test is
//! ignored in a plain `cargo test` and run by that script (`-- --ignored windows::`); run
//! without the build, or with a source file newer than `connect.exe`, it fails: a check
//! that cannot run must not pass.
//!
//! Addresses: 127.0.0.180 (SSL, certificate for 127.0.0.180), .181 (SSL, revoked
//! certificate), .182 (ssl = off), .183 (SSL without a server-side CRL, for the client
//! certificate chain: with `ssl_crl_file` the server would want the intermediate's CRL).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const SSL_ADDR: &str = "127.0.0.180";
const REVOKED_ADDR: &str = "127.0.0.181";
const PLAIN_ADDR: &str = "127.0.0.182";
const NO_CRL_ADDR: &str = "127.0.0.183";

/// What `scripts/windows.sh` prepared.
struct Wine {
    vars: BTreeMap<String, String>,
}

impl Wine {
    fn find() -> Wine {
        let file = std::env::var_os("PGDAP_WINDOWS_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("wine").join("pgdap-windows.env"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "the Windows build is absent ({}: {e}); run `bash scripts/windows.sh`",
                file.display()
            )
        });
        let vars: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for key in ["prefix", "wine", "exe", "appdata", "appdata_unix"] {
            assert!(vars.contains_key(key), "{} lacks {key}", file.display());
        }
        assert!(
            Path::new(&vars["exe"]).exists(),
            "{} is missing",
            vars["exe"]
        );
        if let Some(newer) = newer_source(Path::new(&vars["exe"])) {
            panic!(
                "{} is older than {}; run `bash scripts/windows.sh`",
                vars["exe"],
                newer.display()
            );
        }
        Wine { vars }
    }

    /// `%APPDATA%\postgresql` as this machine sees it (emptied for each case).
    fn pg_dir(&self) -> PathBuf {
        Path::new(&self.vars["appdata_unix"]).join("postgresql")
    }

    /// `%APPDATA%\postgresql` as Windows sees it.
    fn pg_dir_windows(&self) -> String {
        format!("{}\\postgresql", self.vars["appdata"])
    }

    fn prefix(&self) -> PathBuf {
        PathBuf::from(&self.vars["prefix"])
    }
}

/// A source file changed after `exe` was built (a stale Windows build would test old code).
fn newer_source(exe: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(exe).and_then(|m| m.modified()).ok()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The files cargo fingerprints by mtime for the example (not Cargo.lock: a checkout
    // touches it without a rebuild).
    let mut stack = vec![root.join("src"), root.join("examples").join("connect.rs")];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if meta.modified().is_ok_and(|m| m > built) {
            return Some(path);
        }
    }
    None
}

fn target_dir() -> PathBuf {
    // <target>/debug/deps/windows-<hash>
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// A Linux path as Wine's `Z:` drive shows it.
fn z(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// A Linux path rooted without a drive letter, Windows style (`\tmp\...`): the current
/// drive, which is Z: because the Windows process starts in /tmp.
fn rooted(path: &Path) -> String {
    path.display().to_string().replace('/', "\\")
}

/// One variable: its value for Windows and for Linux.
struct Var {
    name: &'static str,
    windows: String,
    linux: String,
}

fn var(name: &'static str, windows: impl Into<String>, linux: impl Into<String>) -> Var {
    Var {
        name,
        windows: windows.into(),
        linux: linux.into(),
    }
}

fn same(name: &'static str, value: &str) -> Var {
    var(name, value, value)
}

struct Case {
    name: String,
    server: &'static str,
    db: &'static str,
    user: &'static str,
    password: &'static str,
    /// PKI file -> name under the default directory (both platforms).
    files: Vec<(&'static str, &'static str)>,
    vars: Vec<Var>,
    /// Windows' outcome differs from Linux/psql on purpose: the expected Windows class and why.
    windows_differs: Option<(&'static str, &'static str)>,
    /// Text the Windows error must contain (paths as written).
    windows_error: Vec<String>,
    /// Make the default-directory key readable by everyone (the permission rule).
    open_key: bool,
    /// A password file: `%APPDATA%\postgresql\pgpass.conf` on Windows, `~/.pgpass` on
    /// Linux (libpq's default places).
    pgpass: Option<&'static str>,
}

impl Case {
    fn new(name: impl Into<String>, server: &'static str) -> Case {
        Case {
            name: name.into(),
            server,
            db: "appdb",
            user: "scram_user",
            password: "scram-pw",
            files: Vec::new(),
            vars: Vec::new(),
            windows_differs: None,
            windows_error: Vec::new(),
            open_key: false,
            pgpass: None,
        }
    }
    fn pgpass(mut self, text: &'static str) -> Case {
        self.pgpass = Some(text);
        self
    }
    fn login(mut self, db: &'static str, user: &'static str, password: &'static str) -> Case {
        (self.db, self.user, self.password) = (db, user, password);
        self
    }
    fn file(mut self, pki: &'static str, name: &'static str) -> Case {
        self.files.push((pki, name));
        self
    }
    fn var(mut self, v: Var) -> Case {
        self.vars.push(v);
        self
    }
    fn mode(self, mode: &str) -> Case {
        self.var(same("PGMODE", mode))
    }
    fn error(mut self, text: impl Into<String>) -> Case {
        self.windows_error.push(text.into());
        self
    }
}

/// What one run printed.
#[derive(Debug)]
struct Run {
    class: &'static str,
    json: Option<serde_json::Value>,
    error: String,
}

fn run_connect(mut cmd: Command) -> Run {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        return Run {
            class: "fail",
            json: None,
            error: stderr,
        };
    }
    let last = stdout.lines().last().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("connect printed no JSON ({e}): {stdout} {stderr}"));
    Run {
        class: if json["ssl"] == serde_json::Value::Bool(true) {
            "ssl"
        } else {
            "plain"
        },
        json: Some(json),
        error: String::new(),
    }
}

fn place(dir: &Path, files: &[(&str, &str)], open_key: bool) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for (src, name) in files {
        let dst = dir.join(name);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(pki().path(src), &dst).unwrap();
        if name.ends_with(".key") {
            set_mode(&dst, if open_key { 0o644 } else { 0o600 });
        }
    }
}

/// Runs one case on Windows (Wine), Linux and psql; returns a results-table row.
fn run_case(wine: &Wine, case: &Case, failures: &mut Vec<String>) -> String {
    let work = tempfile::tempdir().unwrap();
    let ap_text = format!(
        "dbengine=postgre\ndbserver={}\ndbname={}\nusername={}\npassword={}\n",
        case.server, case.db, case.user, case.password
    );
    let ap_file = work.path().join("dap.cfg");
    std::fs::write(&ap_file, &ap_text).unwrap();

    // Windows.
    place(&wine.pg_dir(), &case.files, case.open_key);
    if let Some(text) = case.pgpass {
        let file = wine.pg_dir().join("pgpass.conf");
        std::fs::write(&file, text).unwrap();
        set_mode(&file, 0o600);
    }
    let mut cmd = Command::new(&wine.vars["wine"]);
    cmd.env_clear()
        .current_dir("/tmp")
        .env("PATH", "/usr/bin:/bin")
        .env(
            "HOME",
            std::env::var_os("HOME").unwrap_or_else(|| "/root".into()),
        )
        .env("WINEPREFIX", wine.prefix())
        .env("WINEARCH", "win64")
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=;bcryptprimitives=n,b")
        .arg(&wine.vars["exe"])
        .arg("--config")
        .arg(z(&ap_file));
    for v in &case.vars {
        cmd.env(v.name, &v.windows);
    }
    let windows = run_connect(cmd);

    // Linux: the same files in ~/.postgresql.
    let home = ClientHome::new();
    place(&home.dir(), &case.files, case.open_key);
    if let Some(text) = case.pgpass {
        let file = home.home().join(".pgpass");
        std::fs::write(&file, text).unwrap();
        set_mode(&file, 0o600);
    }
    let mut cmd = Command::new(example("connect"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.home())
        .arg("--config")
        .arg(&ap_file);
    let mut env = pgdap::Environment::default().with_default_dir(home.dir());
    for v in &case.vars {
        cmd.env(v.name, &v.linux);
        env = env.with(v.name, v.linux.clone());
    }
    let linux = run_connect(cmd);
    let ap = pgdap::AccessPoint::parse(&ap_text).unwrap();
    let psql = psql_outcome(&ap, &env, home.home());

    let mut problems = Vec::new();
    let expected = case.windows_differs.map(|(c, _)| c).unwrap_or(linux.class);
    if windows.class != expected {
        problems.push(format!(
            "Windows {} ({}) but expected {expected}",
            windows.class, windows.error
        ));
    }
    if linux.class != psql.class() {
        problems.push(format!(
            "Linux connect {} ({}) but psql {} ({})",
            linux.class,
            linux.error,
            psql.class(),
            psql.error()
        ));
    }
    if case.windows_differs.is_none() {
        if let (Some(w), Some(l)) = (&windows.json, &linux.json) {
            if w != l {
                problems.push(format!("JSON differs: Windows {w} Linux {l}"));
            }
        }
    }
    for text in &case.windows_error {
        if !windows.error.contains(text.as_str()) {
            problems.push(format!("Windows error lacks {text:?}: {:?}", windows.error));
        }
    }
    let verdict = if problems.is_empty() { "pass" } else { "FAIL" };
    if !problems.is_empty() {
        failures.push(format!("{}: {}", case.name, problems.join("; ")));
    }
    let vars: Vec<String> = case
        .vars
        .iter()
        .map(|v| format!("{}={}", v.name, v.windows))
        .collect();
    let files: Vec<String> = case.files.iter().map(|(_, n)| n.to_string()).collect();
    let detail = match (&windows.json, case.windows_differs) {
        (_, Some((_, why))) => why.to_string(),
        (Some(j), None) => format!(
            "{} {} verified={} client_encoding={}",
            j["tls_version"].as_str().unwrap_or("-"),
            j["cipher"].as_str().unwrap_or(""),
            j["server_verified"],
            j["client_encoding"].as_str().unwrap_or("")
        ),
        (None, None) => windows.error.chars().take(160).collect(),
    };
    let row = format!(
        "| {} | `{}` | {} | {} | {} | {} | {} | {} |",
        case.name,
        vars.join(" ").replace('|', "\\|"),
        if files.is_empty() {
            "-".to_string()
        } else {
            files.join(", ")
        },
        windows.class,
        linux.class,
        psql.class(),
        verdict,
        detail.replace('|', "\\|")
    );
    println!("{row}");
    row
}

/// A server certificate for 127.0.0.180 from the test CA (the shared PKI has none for
/// this address), written into the PKI directory as `server-win.crt/.key`.
fn issue_server_cert() {
    let pki = pki();
    let ca = Issued {
        cert: openssl::x509::X509::from_pem(&std::fs::read(pki.path("ca.crt")).unwrap()).unwrap(),
        key: openssl::pkey::PKey::private_key_from_pem(&std::fs::read(pki.path("ca.key")).unwrap())
            .unwrap(),
    };
    let key = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let server = issue(
        "pgdap-windows",
        key,
        Some(&ca),
        &[San::Ip(SSL_ADDR)],
        false,
        false,
    );
    std::fs::write(pki.path("server-win.crt"), server.cert.to_pem().unwrap()).unwrap();
    write_key(
        &pki.path("server-win.key"),
        &server.key.private_key_to_pem_pkcs8().unwrap(),
    );
}

fn cases(wine: &Wine) -> Vec<Case> {
    let pki_dir = pki().dir.clone();
    let ca = pki_dir.join("ca.crt");
    let appdata_pg = wine.pg_dir_windows();
    let mut cases = Vec::new();

    // Every sslmode with the root CA at its %APPDATA% default, and without any root CA.
    for mode in MODES {
        cases.push(
            Case::new(format!("{mode}, root.crt in %APPDATA%"), SSL_ADDR)
                .file("ca.crt", "root.crt")
                .mode(mode),
        );
    }
    for mode in MODES {
        let mut case = Case::new(format!("{mode}, no root CA"), SSL_ADDR).mode(mode);
        if mode.starts_with("verify") {
            case = case.error(format!(
                "root certificate file \"{appdata_pg}\\root.crt\" does not exist"
            ));
        }
        cases.push(case);
    }
    for mode in ["prefer", "require", "verify-full"] {
        cases.push(
            Case::new(format!("{mode}, root.crt of another CA"), SSL_ADDR)
                .file("other-ca.crt", "root.crt")
                .mode(mode),
        );
    }

    // PGROOTCA as a Windows path.
    let forms = [
        ("drive letter, backslashes", z(&ca)),
        ("drive letter, slashes", z(&ca).replace('\\', "/")),
        ("rooted, no drive letter", rooted(&ca)),
        ("rooted with slashes", ca.display().to_string()),
    ];
    for (form, value) in forms {
        cases.push(
            Case::new(format!("verify-full, PGROOTCA {form}"), SSL_ADDR)
                .mode("verify-full")
                .var(var("PGROOTCA", value, ca.display().to_string())),
        );
    }
    cases.push(
        Case::new("verify-full, PGROOTCA relative to %APPDATA%", SSL_ADDR)
            .file("ca.crt", "sub/ca.crt")
            .mode("verify-full")
            .var(var("PGROOTCA", r"sub\ca.crt", "sub/ca.crt")),
    );
    let missing = pki_dir.join("missing").join("ca.crt");
    cases.push(
        Case::new("verify-ca, PGROOTCA missing, drive letter", SSL_ADDR)
            .mode("verify-ca")
            .var(var("PGROOTCA", z(&missing), missing.display().to_string()))
            .error(format!(
                "root certificate file \"{}\" does not exist",
                z(&missing)
            )),
    );
    cases.push(
        Case::new("verify-ca, PGROOTCA missing, rooted", SSL_ADDR)
            .mode("verify-ca")
            .var(var(
                "PGROOTCA",
                rooted(&missing),
                missing.display().to_string(),
            ))
            .error(format!(
                "root certificate file \"{}\" does not exist",
                rooted(&missing)
            )),
    );
    cases.push(
        Case::new("verify-ca, PGROOTCA missing, relative", SSL_ADDR)
            .mode("verify-ca")
            .var(var("PGROOTCA", r"sub\none.crt", "sub/none.crt"))
            .error(format!(
                "root certificate file \"{appdata_pg}\\sub\\none.crt\" does not exist"
            )),
    );
    cases.push(
        Case::new("verify-ca, PGROOTCA drive-relative", SSL_ADDR)
            .mode("verify-ca")
            .var(var("PGROOTCA", "Z:ca.crt", "Z:ca.crt"))
            .error("invalid path in PGROOTCA"),
    );

    // Client certificates and PGAUTH=cert.
    let client = |name: &str, pki_cert: &'static str, pki_key: &'static str| {
        Case::new(name, SSL_ADDR)
            .file("ca.crt", "root.crt")
            .file(pki_cert, "postgresql.crt")
            .file(pki_key, "postgresql.key")
            .mode("verify-full")
    };
    cases.push(
        client("PGAUTH=cert, alice (EC, PKCS#8)", "alice.crt", "alice.key")
            .login("certdb", "alice", "")
            .var(same("PGAUTH", "cert")),
    );
    cases.push(
        client(
            "PGAUTH=cert, alice (RSA, PKCS#1)",
            "alice-rsa.crt",
            "alice-rsa.key",
        )
        .login("certdb", "alice", "")
        .var(same("PGAUTH", "cert")),
    );
    // Against .183, whose certificate names 127.0.0.180: verify-ca.
    let chain = Case::new("PGAUTH=cert, alice (leaf + intermediate)", NO_CRL_ADDR)
        .file("ca.crt", "root.crt")
        .file("alice-chain.crt", "postgresql.crt")
        .file("alice-chain.key", "postgresql.key")
        .mode("verify-ca")
        .login("certdb", "alice", "")
        .var(same("PGAUTH", "cert"));
    cases.push(chain);
    cases.push(
        client("PGAUTH=cert, bob mapped by pg_ident", "bob.crt", "bob.key")
            .login("mapdb", "bob", "")
            .var(same("PGAUTH", "cert")),
    );
    cases.push(
        client("clientcert=verify-ca + scram", "scram.crt", "scram.key").login(
            "vcadb",
            "scram_user",
            "scram-pw",
        ),
    );
    cases.push(
        Case::new("clientcert=verify-ca, no certificate", SSL_ADDR)
            .file("ca.crt", "root.crt")
            .mode("verify-full")
            .login("vcadb", "scram_user", "scram-pw")
            .error("connection requires a valid client certificate"),
    );
    cases.push(
        client(
            "PGAUTH=cert, certificate of another CA",
            "alice-other-ca.crt",
            "alice-other-ca.key",
        )
        .login("certdb", "alice", "")
        .var(same("PGAUTH", "cert"))
        .error("tlsv1 alert unknown ca"),
    );
    let (alice_crt, alice_key) = (pki_dir.join("alice.crt"), pki_dir.join("alice.key"));
    cases.push(
        Case::new("PGAUTH=cert, PGCERT/PGKEY as Windows paths", SSL_ADDR)
            .file("ca.crt", "root.crt")
            .mode("verify-full")
            .login("certdb", "alice", "")
            .var(same("PGAUTH", "cert"))
            .var(var(
                "PGCERT",
                z(&alice_crt),
                alice_crt.display().to_string(),
            ))
            .var(var(
                "PGKEY",
                rooted(&alice_key),
                alice_key.display().to_string(),
            )),
    );
    cases.push(
        Case::new("certificate without key", SSL_ADDR)
            .file("ca.crt", "root.crt")
            .file("alice.crt", "postgresql.crt")
            .mode("verify-full")
            .login("certdb", "alice", "")
            .var(same("PGAUTH", "cert"))
            .error(format!(
                "certificate present, but not private key file \"{appdata_pg}\\postgresql.key\""
            )),
    );
    let mut open = client("key readable by all (0644)", "alice.crt", "alice.key")
        .login("certdb", "alice", "")
        .var(same("PGAUTH", "cert"));
    open.open_key = true;
    open.windows_differs = Some((
        "ssl",
        "no key-permission check on Windows (libpq skips it there); Linux and psql refuse the key",
    ));
    cases.push(open);

    // CRL: the server at .181 presents a certificate that client.crl revokes.
    cases.push(
        Case::new("verify-ca, revoked server, no CRL", REVOKED_ADDR)
            .file("ca.crt", "root.crt")
            .mode("verify-ca"),
    );
    cases.push(
        Case::new("verify-ca, revoked server, CRL in %APPDATA%", REVOKED_ADDR)
            .file("ca.crt", "root.crt")
            .file("client.crl", "postgresql.crl")
            .mode("verify-ca"),
    );
    cases.push(
        Case::new("prefer, revoked server, CRL in %APPDATA%", REVOKED_ADDR)
            .file("ca.crt", "root.crt")
            .file("client.crl", "postgresql.crl")
            .mode("prefer"),
    );
    let (crl, empty_crl) = (pki_dir.join("client.crl"), pki_dir.join("empty.crl"));
    cases.push(
        Case::new(
            "verify-ca, revoked server, PGCRL drive letter",
            REVOKED_ADDR,
        )
        .file("ca.crt", "root.crt")
        .mode("verify-ca")
        .var(var("PGCRL", z(&crl), crl.display().to_string())),
    );
    cases.push(
        Case::new("verify-ca, revoked server, empty CRL", REVOKED_ADDR)
            .file("ca.crt", "root.crt")
            .mode("verify-ca")
            .var(var(
                "PGCRL",
                rooted(&empty_crl),
                empty_crl.display().to_string(),
            )),
    );

    // PGCLIENTENCODING.
    for encoding in ["WIN1252", "Win1251", "SJIS", "LATIN1", "UTF8"] {
        cases.push(
            Case::new(format!("PGCLIENTENCODING={encoding}"), SSL_ADDR)
                .file("ca.crt", "root.crt")
                .mode("verify-full")
                .var(same("PGCLIENTENCODING", encoding)),
        );
    }

    // The password file at its default place (%APPDATA%\postgresql\pgpass.conf), used
    // when the Access Point has no password; without it no password is supplied.
    cases.push(
        Case::new("password from pgpass.conf in %APPDATA%", SSL_ADDR)
            .login("appdb", "scram_user", "")
            .file("ca.crt", "root.crt")
            .mode("verify-full")
            .pgpass("# the vendor's service\n*:5432:appdb:scram_user:scram-pw\n"),
    );
    cases.push(
        Case::new("no password and no pgpass.conf", SSL_ADDR)
            .login("appdb", "scram_user", "")
            .mode("require")
            .error("no password supplied"),
    );

    // PGSSLROOTCERT=system: the operating system's store (Windows: the ROOT store, read
    // through schannel), which does not hold the test CA: verification fails on every
    // platform (psql 15 takes "system" for a file that does not exist).
    cases.push(
        Case::new("verify-full, PGSSLROOTCERT=system", SSL_ADDR)
            .mode("verify-full")
            .var(same("PGSSLROOTCERT", "system"))
            .error("certificate verify failed")
            .error("PGSSLROOTCERT=system"),
    );

    // A Unix-socket directory in dbserver: no server there on Linux (psql and pgdap fail
    // to find the socket); on Windows pgdap says it does not support Unix-domain sockets.
    cases.push(
        Case::new(
            "dbserver a socket directory",
            "/nonexistent-pgdap-socket-dir",
        )
        .mode("prefer")
        .error("Unix-domain sockets are not supported by pgdap on this platform"),
    );

    // A server without SSL.
    for mode in ["disable", "allow", "prefer", "require"] {
        cases.push(Case::new(format!("{mode}, server without SSL"), PLAIN_ADDR).mode(mode));
    }
    cases
}

#[test]
#[ignore = "needs the Windows build: run by scripts/windows.sh"]
fn windows_build_under_wine_matches_linux_and_psql() {
    let wine = Wine::find();
    issue_server_cert();
    let _ssl = Server::start(ServerSpec::new(SSL_ADDR, Some("server-win")));
    let _revoked = Server::start(ServerSpec::new(REVOKED_ADDR, Some("server-revoked")));
    let _plain = Server::start(ServerSpec::new(PLAIN_ADDR, None));
    let mut no_crl = ServerSpec::new(NO_CRL_ADDR, Some("server-win"));
    no_crl.conf = "ssl_crl_file = ''\n".into();
    let _no_crl = Server::start(no_crl);

    let mut table = String::from(
        "| case | Windows environment | files in %APPDATA%\\postgresql | Windows | Linux | psql | result | detail |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    let started = std::time::Instant::now();
    let all = cases(&wine);
    for case in &all {
        let row = run_case(&wine, case, &mut failures);
        writeln!(table, "{row}").unwrap();
    }
    let _ = std::fs::remove_dir_all(wine.pg_dir());
    let summary = format!(
        "\n{} cases, {} failed, {:.0} s\n",
        all.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    table.push_str(&summary);
    let out = target_dir().join("windows-results.md");
    std::fs::write(&out, &table).unwrap();
    println!("{summary}results table: {}", out.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
