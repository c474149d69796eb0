//! The `pgdap` command (feature `cli`) against a real server: `connect` keeps the
//! `connect` example's contract and agrees with psql, `doctor` exits 0/1 as documented,
//! `convert` round-trips, `bench` prints its summary, every `--help` exits 0.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common::{self, access_point, psql_outcome, ClientHome, Outcome, Server, ServerSpec};

const ADDR: &str = "127.0.0.144";

/// A server on 127.0.0.144 with the test PKI's CA and a certificate for that address.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        // The standard PKI has no certificate for this address: the wildcard one, reached
        // by IP, verifies up to verify-ca; verify-full is covered by the sslmode tests.
        Server::start(ServerSpec::new(ADDR, Some("server-wildcard")))
    })
}

fn pgdap(args: &[&str], vars: &[(&str, &str)], home: &Path, stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgdap"));
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .args(args)
        .envs(vars.iter().copied());
    match stdin {
        None => cmd.output().unwrap(),
        Some(input) => {
            use std::io::Write;
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            child.wait_with_output().unwrap()
        }
    }
}

fn config_file(home: &ClientHome, db: &str, user: &str, password: &str) -> String {
    let path = home.home().join(format!("{db}-{user}.cfg"));
    std::fs::write(
        &path,
        format!("dbengine=postgre\ndbserver={ADDR}\ndbname={db}\nusername={user}\npassword={password}\n"),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn every_help_exits_0_and_explains_the_variables() {
    let home = ClientHome::new();
    for sub in [&[][..], &["doctor"], &["connect"], &["convert"], &["bench"]] {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = pgdap(&args, &[], home.home(), None);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {out:?}");
        if sub != ["convert"] {
            for var in ["PGMODE", "PGROOTCA", "PGCERT", "PGKEY", "PGCRL", "PGAUTH"] {
                assert!(text.contains(var), "{args:?} help lacks {var}:\n{text}");
            }
        }
    }
    let out = pgdap(&["connect"], &[], home.home(), None);
    assert_eq!(out.status.code(), Some(2), "a usage error exits 2");
}

#[test]
fn connect_prints_the_session_and_agrees_with_psql() {
    server();
    let home = ClientHome::new();
    home.put("ca.crt", "root.crt");
    let cfg = config_file(&home, "appdb", "scram_user", "scram-pw");
    let ap = access_point(ADDR, "appdb", "scram_user", "scram-pw");
    for mode in common::MODES {
        if mode == "verify-full" {
            continue; // the certificate names *.pgdap.test, not the address
        }
        let out = pgdap(
            &["connect", "--config", &cfg],
            &[("PGMODE", mode)],
            home.home(),
            None,
        );
        let env = home.env().with("PGMODE", mode);
        let libpq = psql_outcome(&ap, &env, home.home());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let ours = if out.status.success() {
            let json: serde_json::Value =
                serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
            assert_eq!(json["user"], "scram_user");
            assert_eq!(json["database"], "appdb");
            // With ~/.postgresql/root.crt every SSL mode verifies the chain, as libpq does.
            assert_eq!(json["server_verified"], json["ssl"]);
            if json["ssl"] == true {
                Outcome::Ssl
            } else {
                Outcome::Plain
            }
        } else {
            Outcome::Fail(String::from_utf8_lossy(&out.stderr).to_string())
        };
        assert_eq!(
            ours.class(),
            libpq.class(),
            "PGMODE={mode}: {ours:?} vs psql {libpq:?}"
        );
    }
    let out = pgdap(
        &["connect", "--config", &cfg],
        &[("PGMODE", "verify-full")],
        home.home(),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("pgdap connect: ") && err.contains(ADDR),
        "{err}"
    );
}

#[test]
fn doctor_exit_status() {
    server();
    let home = ClientHome::new();
    home.put("ca.crt", "root.crt");
    let good = config_file(&home, "appdb", "scram_user", "scram-pw");
    let out = pgdap(
        &["doctor", "--config", &good, "--json"],
        &[("PGMODE", "verify-ca")],
        home.home(),
        None,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    let bad = config_file(&home, "appdb", "scram_user", "wrong");
    let out = pgdap(
        &["doctor", "--config", &bad],
        &[("PGMODE", "verify-ca")],
        home.home(),
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
}

#[test]
fn convert_round_trips_and_reports_unmappable_input() {
    let home = ClientHome::new();
    let out = pgdap(
        &["convert", "--encoding", "Win1252", "--decode"],
        &[],
        home.home(),
        Some(b"caf\xe9 \x80"),
    );
    assert!(out.status.success());
    assert_eq!(out.stdout, "café €".as_bytes());
    let out = pgdap(
        &["convert", "--encoding", "LATIN1", "--encode"],
        &[],
        home.home(),
        Some("café".as_bytes()),
    );
    assert_eq!(out.stdout, b"caf\xe9");
    let out = pgdap(
        &["convert", "--encoding", "LATIN1", "--encode"],
        &[],
        home.home(),
        Some("€".as_bytes()),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let out = pgdap(
        &["convert", "--encoding", "klingon", "--decode"],
        &[],
        home.home(),
        Some(b""),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bench_prints_a_summary() {
    server();
    let home = ClientHome::new();
    let cfg = config_file(&home, "appdb", "scram_user", "scram-pw");
    for extra in [&[][..], &["--pool"]] {
        let mut args = vec!["bench", "--config", &cfg, "--n", "5", "--warmup", "1"];
        args.extend_from_slice(extra);
        let out = pgdap(&args, &[("PGMODE", "require")], home.home(), None);
        assert!(out.status.success(), "{out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["n"], 5);
        assert_eq!(json["ssl"], true);
        assert_eq!(json["pool"], !extra.is_empty());
        assert!(json["median_ms"].as_f64().unwrap() > 0.0);
        let debug = cfg!(debug_assertions);
        assert_eq!(json["build"], if debug { "debug" } else { "release" });
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).contains("debug build"),
            debug
        );
    }
}

/// An encrypted client key: `pgdap connect` asks for the passphrase on a terminal (with
/// echo off, as psql does), and fails at once, naming the key, without one.
#[test]
fn connect_prompts_for_an_encrypted_keys_passphrase_on_a_terminal() {
    server();
    let home = ClientHome::new();
    home.put("alice.crt", "postgresql.crt");
    home.put("alice-enc.key", "postgresql.key");
    let config = config_file(&home, "certdb", "alice", "");
    let ca = common::pki().path("ca.crt").display().to_string();
    let vars = [
        ("PGMODE", "verify-ca"),
        ("PGROOTCA", ca.as_str()),
        ("PGAUTH", "cert"),
    ];
    // No terminal: no prompt, the key's error.
    let out = pgdap(
        &["connect", "--config", &config],
        &vars,
        home.home(),
        Some(b"passphrase\n"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is encrypted with a passphrase") && stderr.contains("postgresql.key"),
        "{stderr}"
    );
    // A terminal (script(1) gives the command a pseudo-terminal): the prompt, then the
    // session.
    let command = format!("{} connect --config {config}", env!("CARGO_BIN_EXE_pgdap"));
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"])
        .env_clear()
        .env("HOME", home.home())
        .env("PATH", "/usr/bin:/bin")
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        // The prompt reads the terminal once the command asks.
        std::thread::sleep(std::time::Duration::from_millis(500));
        stdin.write_all(b"passphrase\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Enter PEM pass phrase for"), "{stdout}");
    // Not echoed: the terminal shows the prompt, never the passphrase typed.
    assert!(!stdout.contains("passphrase"), "echoed: {stdout}");
    assert!(stdout.contains("\"user\":\"alice\""), "{stdout}");
}
