//! Foundation end-to-end tests: disable and require against an SSL server and a non-SSL
//! server, scram and md5 users, a wrong password, and the `connect` example's contract.

use crate::common::{
    self, access_point, pgdap_outcome, plain_server, psql_outcome, ssl_server, ClientHome, Outcome,
};

#[tokio::test]
async fn disable_and_require_against_ssl_and_plain_servers() {
    let ssl = &ssl_server().addr;
    let plain = &plain_server().addr;
    let cases = [
        (ssl, "disable", "plain"),
        (ssl, "require", "ssl"),
        (plain, "disable", "plain"),
        (plain, "require", "fail"),
    ];
    for (server, mode, expected) in cases {
        let home = ClientHome::new().var("PGMODE", mode);
        let ap = access_point(server, "appdb", "scram_user", "scram-pw");
        let ours = pgdap_outcome(&ap, &home.env()).await;
        let libpq = psql_outcome(&ap, &home.env(), home.home());
        assert_eq!(ours.class(), expected, "{server} {mode}: {ours:?}");
        assert_eq!(
            ours.class(),
            libpq.class(),
            "{server} {mode}: pgdap {ours:?} psql {libpq:?}"
        );
        if expected == "fail" {
            assert!(
                ours.error()
                    .contains("server does not support SSL, but SSL was required"),
                "{}",
                ours.error()
            );
            assert!(libpq
                .error()
                .contains("server does not support SSL, but SSL was required"));
        }
    }
}

#[tokio::test]
async fn scram_and_md5_users() {
    for (user, pw) in [("scram_user", "scram-pw"), ("md5_user", "md5-pw")] {
        for mode in ["disable", "require"] {
            let home = ClientHome::new().var("PGMODE", mode);
            let ap = access_point(&ssl_server().addr, "appdb", user, pw);
            let expected = if mode == "disable" {
                Outcome::Plain
            } else {
                Outcome::Ssl
            };
            assert_eq!(
                pgdap_outcome(&ap, &home.env()).await,
                expected,
                "{user} {mode}"
            );
        }
    }
    // The methods really are the ones we think.
    let methods = ssl_server().psql(
        "postgres",
        "select rolname || ':' || split_part(rolpassword, '$', 1) from pg_authid \
         where rolname in ('md5_user','scram_user') order by 1",
    );
    assert!(methods.starts_with("md5_user:md5"), "{methods}");
    assert!(methods.ends_with("scram_user:SCRAM-SHA-256"), "{methods}");
}

#[tokio::test]
async fn wrong_password_passes_the_server_message_through() {
    let home = ClientHome::new().var("PGMODE", "require");
    let ap = access_point(&ssl_server().addr, "appdb", "scram_user", "wrong");
    let ours = pgdap_outcome(&ap, &home.env()).await;
    let libpq = psql_outcome(&ap, &home.env(), home.home());
    let msg = "password authentication failed for user \"scram_user\"";
    assert!(ours.error().contains(msg), "{ours:?}");
    assert!(libpq.error().contains(msg), "{libpq:?}");
    assert!(
        !ours.error().contains("wrong"),
        "the password leaked: {ours:?}"
    );
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error() {
    // Nothing listens on 127.0.0.4.
    let home = ClientHome::new().var("PGMODE", "disable");
    let ap = access_point("127.0.0.4", "appdb", "scram_user", "scram-pw");
    let ours = pgdap_outcome(&ap, &home.env()).await;
    assert!(ours.error().contains("Connection refused"), "{ours:?}");
    assert!(
        ours.error().contains("\"127.0.0.4\", port 5432"),
        "{ours:?}"
    );
}

fn run_connect(
    config: &std::path::Path,
    vars: &[(&str, &str)],
    home: &std::path::Path,
) -> std::process::Output {
    let mut cmd = std::process::Command::new(common::example("connect"));
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .arg("--config")
        .arg(config);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn connect_example_contract() {
    let server = ssl_server();
    let home = ClientHome::new();
    let cfg = home.home().join("dap.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dbengine=postgre\ndbserver={}\ndbname=appdb\nusername=scram_user\npassword=scram-pw\n",
            server.addr
        ),
    )
    .unwrap();
    for (mode, ssl) in [("require", true), ("disable", false)] {
        let out = run_connect(&cfg, &[("PGMODE", mode)], home.home());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let last = stdout.lines().last().unwrap();
        let json: serde_json::Value = serde_json::from_str(last).unwrap();
        assert_eq!(json["ssl"], ssl);
        assert_eq!(json["user"], "scram_user");
        assert_eq!(json["database"], "appdb");
        assert_eq!(json["server_encoding"], "UTF8");
        assert_eq!(json["client_encoding"], "UTF8");
        let major = format!("{}.", common::pg_major());
        assert!(json["server_version"].as_str().unwrap().starts_with(&major));
        if ssl {
            assert!(json["tls_version"].as_str().unwrap().starts_with("TLSv1."));
            assert!(!json["cipher"].as_str().unwrap().is_empty());
        } else {
            assert!(json["tls_version"].is_null());
            assert!(json["cipher"].is_null());
        }
    }
    // Failure: non-zero status, one line on stderr with the libpq wording.
    let out = run_connect(&cfg, &[("PGMODE", "verify-full")], home.home());
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("root certificate file") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains("scram-pw"));
    let out = run_connect(&cfg, &[("PGMODE", "Require")], home.home());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PGMODE"));
}
