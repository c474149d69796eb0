//! libpq's remaining connection surface (issue 26), each case run by pgdap (the `connect`
//! example, a process of its own with exactly the case's environment) and by libpq 18
//! (`tools/libpq_oracle.py`, ctypes) on the same servers: connection service files (each
//! search path, precedence against PGSSLMODE and PGMODE, a missing service, libpq's syntax
//! errors), `PGSSLROOTCERT=system` with `SSL_CERT_FILE` pointing at the test CA and at
//! another CA, a weak mode with `system`, a CRL directory with a revoked and a good server,
//! an encrypted client key with and without its passphrase, PGMIN/MAXPROTOCOLVERSION.
//!
//! The vendor's variables have no libpq counterpart above a service file: for libpq the
//! case states them as explicit connection parameters (`ORACLE_CONNINFO`), which libpq
//! puts above a service, as pgdap puts the vendor's layer.
//!
//! Servers: 127.0.0.2 (the shared SSL server, certificate `server`), 127.0.0.112 (the
//! revoked certificate `server-revoked`, revoked in `client.crl`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::common::{self, pki, ssl_server, ClientHome, Server, ServerSpec};

/// 127.0.0.112: a server whose certificate `client.crl` revokes.
fn revoked_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(ServerSpec::new("127.0.0.112", Some("server-revoked"))))
}

const SQL: &str = "select current_setting('application_name')";

/// One case: an Access Point, the process environment of both clients, and what libpq
/// gets as explicit parameters for the vendor's variables.
struct Case {
    server: String,
    db: &'static str,
    user: &'static str,
    password: &'static str,
    vars: Vec<(String, String)>,
    conninfo: String,
    home: ClientHome,
}

fn case(server: &str, db: &'static str, user: &'static str, password: &'static str) -> Case {
    Case {
        server: server.to_string(),
        db,
        user,
        password,
        vars: Vec::new(),
        conninfo: String::new(),
        home: ClientHome::new(),
    }
}

/// What a client saw: `Ok("<ssl>|<application_name>")` or the error text.
type Seen = Result<String, String>;

impl Case {
    fn var(mut self, name: &str, value: impl Into<String>) -> Case {
        self.vars.push((name.to_string(), value.into()));
        self
    }

    /// A vendor variable: pgdap reads it; libpq gets `keyword=value` as a parameter.
    fn vendor(mut self, name: &str, keyword: &str, value: &str) -> Case {
        self.vars.push((name.to_string(), value.to_string()));
        self.conninfo.push_str(&format!(" {keyword}={value}"));
        self
    }

    /// A file in the case's home directory (created with its parents).
    fn file(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.home.home().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("PG") || k.starts_with("SSL_CERT") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.home.home())
            .current_dir(self.home.home())
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    fn pgdap(&self) -> Seen {
        let dap = self.file(
            "dap.cfg",
            &format!(
                "dbengine=postgre\ndbserver={}\ndbname={}\nusername={}\npassword={}\n",
                self.server, self.db, self.user, self.password
            ),
        );
        let out = self
            .command(&common::example("connect"))
            .arg("--config")
            .arg(&dap)
            .args(["--sql", SQL])
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
        Ok(format!(
            "{}|{}",
            json["ssl"],
            json["result"].as_str().unwrap_or_default()
        ))
    }

    /// libpq 18, without a controlling terminal (`setsid`: OpenSSL's passphrase prompt
    /// reads /dev/tty and must fail, not wait).
    fn libpq18(&self) -> Seen {
        let mut conninfo = format!(
            "host={} port=5432 dbname={} user={}",
            self.server, self.db, self.user
        );
        if !self.password.is_empty() {
            conninfo.push_str(&format!(" password={}", self.password));
        }
        conninfo.push_str(&self.conninfo);
        let out = self
            .command(Path::new("setsid"))
            .arg("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/libpq_oracle.py"))
            .arg(SQL)
            .env("LIBPQ", common::libpq18::dir().join("lib/libpq.so.5"))
            .env("ORACLE_CONNINFO", conninfo)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|_| {
                panic!(
                    "oracle output {stdout:?} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        if v["ok"].as_bool() == Some(true) {
            Ok(format!(
                "{}|{}",
                v["ssl"],
                v["result"].as_str().unwrap_or_default()
            ))
        } else {
            Err(v["error"].as_str().unwrap_or_default().to_string())
        }
    }

    /// Both clients, which must agree: the same session, or both failing with `phrase` in
    /// both messages. Returns pgdap's.
    fn agree(&self, phrase: Option<&str>) -> Seen {
        let ours = self.pgdap();
        let theirs = self.libpq18();
        common::assert_agree(&self.vars, &ours, "libpq 18", &theirs, phrase);
        ours
    }
}

fn ca() -> String {
    pki().path("ca.crt").display().to_string()
}

// ----- connection service files ---------------------------------------------------------

/// A service group asking for verify-full against the test CA, with a name to see.
fn verified_group(name: &str) -> String {
    format!(
        "# services\n[other]\napplication_name=wrong\n\n[{name}]\nsslmode=verify-full\nsslrootcert={}\napplication_name={name}-app\n",
        ca()
    )
}

#[test]
fn a_service_is_found_through_each_search_path() {
    let s = ssl_server();
    // PGSERVICEFILE.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw");
    let file = c.file("conf/services", &verified_group("billing"));
    let c = c
        .var("PGSERVICE", "billing")
        .var("PGSERVICEFILE", file.display().to_string());
    assert_eq!(c.agree(None).unwrap(), "true|billing-app");
    // ~/.pg_service.conf.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGSERVICE", "billing");
    c.file(".pg_service.conf", &verified_group("billing"));
    assert_eq!(c.agree(None).unwrap(), "true|billing-app");
    // PGSYSCONFDIR/pg_service.conf, when the per-user file lacks the group.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGSERVICE", "billing");
    c.file(".pg_service.conf", "[unrelated]\nsslmode=disable\n");
    let sys = c.file("sys/pg_service.conf", &verified_group("billing"));
    let c = c.var("PGSYSCONFDIR", sys.parent().unwrap().display().to_string());
    assert_eq!(c.agree(None).unwrap(), "true|billing-app");
}

#[test]
fn a_service_sits_above_libpqs_variables_and_below_the_vendors() {
    let s = ssl_server();
    // The service's verify-full with an untrusted CA wins over PGSSLMODE=disable: no
    // session (before, pgdap ignored the service and connected in plaintext).
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw");
    c.file(
        ".pg_service.conf",
        &format!(
            "[strict]\nsslmode=verify-full\nsslrootcert={}\n",
            pki().path("other-ca.crt").display()
        ),
    );
    let c = c
        .var("PGSERVICE", "strict")
        .var("PGSSLMODE", "disable")
        .var("PGAPPNAME", "from-env");
    let err = c.agree(Some("certificate verify failed")).unwrap_err();
    assert!(err.contains("PGROOTCA") || err.contains("root CA"), "{err}");
    // The service's application_name wins over PGAPPNAME.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw");
    c.file(".pg_service.conf", &verified_group("svc"));
    let c = c.var("PGSERVICE", "svc").var("PGAPPNAME", "from-env");
    assert_eq!(c.agree(None).unwrap(), "true|svc-app");
    // PGMODE (the vendor's) wins over the service: plaintext.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw");
    c.file(".pg_service.conf", &verified_group("svc"));
    let c = c
        .var("PGSERVICE", "svc")
        .vendor("PGMODE", "sslmode", "disable");
    assert_eq!(c.agree(None).unwrap(), "false|svc-app");
    // A password in the service is used when the Access Point has none.
    let c = case(&s.addr, "appdb", "scram_user", "");
    c.file(
        ".pg_service.conf",
        "[pw]\npassword=scram-pw\napplication_name=pw-app\n",
    );
    let c = c.var("PGSERVICE", "pw").var("PGPASSWORD", "wrong");
    assert_eq!(c.agree(None).unwrap(), "true|pw-app");
}

#[test]
fn service_errors_are_libpqs() {
    let s = ssl_server();
    let run = |text: &str, service: &str, phrase: &str| {
        let c = case(&s.addr, "appdb", "scram_user", "scram-pw");
        c.file(".pg_service.conf", text);
        let err = c.var("PGSERVICE", service).agree(Some(phrase)).unwrap_err();
        assert!(err.contains("PGSERVICE"), "{err}");
        err
    };
    // A missing service fails (before, pgdap connected without it).
    let err = run(
        "[a]\nsslmode=require\n",
        "b",
        "definition of service \"b\" not found",
    );
    assert!(err.contains(".pg_service.conf"), "{err}");
    run(
        "[a]\nsslmode = require\n",
        "a",
        "syntax error in service file",
    );
    run(
        "[a]\nnot_a_parameter=1\n",
        "a",
        "syntax error in service file",
    );
    run(
        "[a]\nservice=b\n",
        "a",
        "nested service specifications not supported in service file",
    );
    // PGSERVICEFILE must exist.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw")
        .var("PGSERVICE", "a")
        .var("PGSERVICEFILE", "/nonexistent/services");
    c.agree(Some("service file \"/nonexistent/services\" not found"))
        .unwrap_err();
    // A libpq parameter pgdap does not support: libpq connects, pgdap says why it will not
    // pretend to (a documented difference).
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGSERVICE", "k");
    c.file(".pg_service.conf", "[k]\nkrbsrvname=postgres\n");
    assert!(c.libpq18().is_ok());
    let err = c.pgdap().unwrap_err();
    assert!(
        err.contains("\"krbsrvname\" not supported by pgdap") && err.contains("GSSAPI"),
        "{err}"
    );
    // host= in a service is ignored: the Access Point names the server.
    let c = case(&s.addr, "appdb", "scram_user", "scram-pw").var("PGSERVICE", "h");
    c.file(
        ".pg_service.conf",
        "[h]\nhost=127.0.0.254\napplication_name=h-app\n",
    );
    assert_eq!(c.pgdap().unwrap(), "true|h-app");
}

// ----- PGSSLROOTCERT=system --------------------------------------------------------------

#[test]
fn system_roots_follow_ssl_cert_file() {
    let s = ssl_server();
    let empty_dir = tempfile::tempdir().unwrap();
    let system = |cert_file: PathBuf| {
        case(&s.addr, "appdb", "scram_user", "scram-pw")
            .var("PGSSLROOTCERT", "system")
            .var("SSL_CERT_FILE", cert_file.display().to_string())
            .var("SSL_CERT_DIR", empty_dir.path().display().to_string())
    };
    // The test CA as the system's store: verify-full by default, connected.
    assert_eq!(system(pki().path("ca.crt")).agree(None).unwrap(), "true|");
    // Another CA: refused.
    let err = system(pki().path("other-ca.crt"))
        .agree(Some("certificate verify failed"))
        .unwrap_err();
    assert!(err.contains("PGSSLROOTCERT=system"), "{err}");
    // A weaker mode is libpq's error.
    system(pki().path("ca.crt"))
        .var("PGSSLMODE", "require")
        .agree(Some(
            "weak sslmode \"require\" may not be used with sslrootcert=system (use \"verify-full\")",
        ))
        .unwrap_err();
}

// ----- PGSSLCRLDIR -----------------------------------------------------------------------

/// A directory holding `crls` (PKI names), hashed by `openssl rehash`.
fn crl_dir(c: &Case, crls: &[&str]) -> PathBuf {
    let dir = c.home.home().join("crls");
    std::fs::create_dir_all(&dir).unwrap();
    for crl in crls {
        std::fs::copy(pki().path(crl), dir.join(crl)).unwrap();
    }
    let status = Command::new("openssl")
        .arg("rehash")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "openssl rehash");
    dir
}

#[test]
fn a_crl_directory_revokes_as_libpq() {
    let good = ssl_server();
    let revoked = revoked_server();
    let with_dir = |server: &str, crls: &[&str]| {
        let c = case(server, "appdb", "scram_user", "scram-pw");
        let dir = crl_dir(&c, crls);
        c.var("PGSSLMODE", "verify-ca")
            .var("PGSSLROOTCERT", ca())
            .var("PGSSLCRLDIR", dir.display().to_string())
    };
    assert_eq!(
        with_dir(&good.addr, &["client.crl"]).agree(None).unwrap(),
        "true|"
    );
    // libpq 18 says "SSL error: certificate verify failed" without OpenSSL's reason;
    // pgdap names the reason and the directory.
    let err = with_dir(&revoked.addr, &["client.crl"])
        .agree(Some("certificate verify failed"))
        .unwrap_err();
    assert!(
        err.contains("certificate revoked") && err.contains("PGSSLCRLDIR"),
        "{err}"
    );
    // No CRL from the issuer in the directory.
    let err = with_dir(&good.addr, &["other-ca.crl"])
        .agree(Some("certificate verify failed"))
        .unwrap_err();
    assert!(err.contains("unable to get certificate CRL"), "{err}");
    // With a CRL file as well, both are read: the directory's CRL revokes when the file
    // holds none from the issuer...
    let c = with_dir(&revoked.addr, &["client.crl"])
        .var("PGSSLCRL", pki().path("other-ca.crl").display().to_string());
    let err = c.agree(Some("certificate verify failed")).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");
    // ...and the file's CRL from the issuer is found first (OpenSSL looks in the
    // directory only for an issuer it has no CRL of), in libpq as in pgdap.
    let c = with_dir(&revoked.addr, &["client.crl"])
        .var("PGSSLCRL", pki().path("empty.crl").display().to_string());
    assert_eq!(c.agree(None).unwrap(), "true|");
    // The directory set: the default CRL file (~/.postgresql/postgresql.crl for pgdap,
    // root.crl for libpq) is not read, here one that would revoke nothing.
    let c = with_dir(&revoked.addr, &["client.crl"]);
    std::fs::copy(pki().path("empty.crl"), c.home.dir().join("postgresql.crl")).unwrap();
    std::fs::copy(pki().path("empty.crl"), c.home.dir().join("root.crl")).unwrap();
    let err = c.agree(Some("certificate verify failed")).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");
}

// ----- encrypted client keys --------------------------------------------------------------

#[test]
fn an_encrypted_key_needs_its_passphrase() {
    let s = ssl_server();
    let with_key = |group: &str| {
        let c = case(&s.addr, "certdb", "alice", "")
            .vendor("PGMODE", "sslmode", "verify-full")
            .vendor("PGROOTCA", "sslrootcert", &ca())
            .var("PGAUTH", "cert");
        c.home.put("alice.crt", "postgresql.crt");
        c.home.put("alice-enc.key", "postgresql.key");
        c.file(".pg_service.conf", group);
        c.var("PGSERVICE", "k")
    };
    assert_eq!(
        with_key("[k]\nsslpassword=passphrase\n")
            .agree(None)
            .unwrap(),
        "true|"
    );
    // libpq, with no terminal to prompt on, and pgdap both refuse; pgdap says how to
    // supply the passphrase.
    let err = with_key("[k]\napplication_name=x\n")
        .agree(Some("postgresql.key"))
        .unwrap_err();
    assert!(
        err.contains("key_passphrase") && err.contains("sslpassword"),
        "{err}"
    );
    with_key("[k]\nsslpassword=wrong\n")
        .agree(Some("could not load private key file"))
        .unwrap_err();
}

#[tokio::test]
async fn connect_options_supply_the_key_passphrase() {
    let s = ssl_server();
    let home = ClientHome::new()
        .var("PGMODE", "verify-full")
        .var("PGROOTCA", ca())
        .var("PGAUTH", "cert");
    home.put("alice.crt", "postgresql.crt");
    home.put("alice-enc.key", "postgresql.key");
    let ap = common::access_point(&s.addr, "certdb", "alice", "");
    let connect = |passphrase: Option<&str>| {
        let config = pgdap::Config::new(ap.clone(), &home.env())
            .unwrap()
            .with_options(pgdap::ConnectOptions {
                key_passphrase: passphrase.map(pgdap::Password::new),
                ..Default::default()
            });
        async move { pgdap::Connector::new(config)?.connect_spawned().await }
    };
    let session = connect(Some("passphrase")).await.unwrap();
    let user: String = session
        .client
        .query_one("select current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, "alice");
    assert!(matches!(
        connect(None).await.unwrap_err(),
        pgdap::Error::ClientKeyEncrypted { .. }
    ));
    assert!(matches!(
        connect(Some("wrong")).await.unwrap_err(),
        pgdap::Error::ClientKeyPassphrase { .. }
    ));
}

// ----- protocol versions ------------------------------------------------------------------

#[test]
fn protocol_versions_as_libpq_18() {
    let s = ssl_server();
    let run = |vars: &[(&str, &str)]| {
        let mut c = case(&s.addr, "appdb", "scram_user", "scram-pw");
        for (k, v) in vars {
            c = c.var(k, *v);
        }
        c
    };
    assert_eq!(
        run(&[("PGMAXPROTOCOLVERSION", "latest")])
            .agree(None)
            .unwrap(),
        "true|"
    );
    assert_eq!(
        run(&[
            ("PGMINPROTOCOLVERSION", "3.0"),
            ("PGMAXPROTOCOLVERSION", "3.2")
        ])
        .agree(None)
        .unwrap(),
        "true|"
    );
    run(&[("PGMINPROTOCOLVERSION", "3.1")])
        .agree(Some("invalid min_protocol_version value: \"3.1\""))
        .unwrap_err();
    run(&[
        ("PGMINPROTOCOLVERSION", "latest"),
        ("PGMAXPROTOCOLVERSION", "3.0"),
    ])
    .agree(Some(
        "\"min_protocol_version\" is greater than \"max_protocol_version\"",
    ))
    .unwrap_err();
    // A 3.2 minimum: libpq 18 fails against this PostgreSQL 15 server, pgdap refuses it
    // before connecting (it speaks 3.0 only).
    let err = run(&[("PGMINPROTOCOLVERSION", "3.2")])
        .agree(Some("3.2"))
        .unwrap_err();
    assert!(
        err.contains("pgdap speaks protocol version 3.0 only"),
        "{err}"
    );
}
