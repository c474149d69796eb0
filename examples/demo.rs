//! `cargo run --example demo [-- --addr 127.0.0.2]`: starts a throwaway local PostgreSQL
//! (the distribution's, any of 12-18) with SSL and a freshly generated PKI on ADDR:5432,
//! connects to it through pgdap in every PGMODE, without and with a root CA, and with
//! certificate authentication, and prints what happened next to what libpq (`psql` of the
//! same version) does with the same settings. The server and the PKI are removed on exit.
//!
//! `bash scripts/demo.sh` (the README's first command) installs what this needs first.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)] // a part of the test harness: its servers and PKI
mod common;

use std::process::ExitCode;

use common::{access_point, find_pg_bin, pki, ClientHome, Outcome, San, Server, ServerSpec};

const HELP: &str = "\
demo: a throwaway PostgreSQL with SSL and generated certificates, connected through pgdap

usage: cargo run --example demo [-- --addr ADDR]

  --addr ADDR  the loopback address the server listens on (port 5432), default 127.0.0.2;
               pick another 127.0.0.x if that one is in use
  -h, --help   print this help

Needs PostgreSQL 12-18 server binaries and psql (Debian/Ubuntu: the `postgresql` package;
`bash scripts/demo.sh` installs them) and the `openssl` command. As root the server runs
as the `postgres` user. Nothing is left behind: the server is stopped and its directory,
the certificates and keys are removed on exit.";

fn parse_args() -> Result<Option<&'static str>, String> {
    let mut addr = "127.0.0.2";
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => {
                let a = args.next().ok_or("--addr needs a value")?;
                if !a.starts_with("127.") || a.parse::<std::net::Ipv4Addr>().is_err() {
                    return Err(format!("--addr {a:?}: give a loopback address 127.x.y.z"));
                }
                addr = Box::leak(a.into_boxed_str());
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Some(addr))
}

/// A server certificate for `addr` (SAN IP addr and DNS localhost) issued by the test CA,
/// written to the PKI directory as `demo-server.crt/.key`.
fn demo_server_certificate(addr: &str) {
    let dir = &pki().dir;
    let ca = common::Issued {
        cert: openssl::x509::X509::from_pem(&std::fs::read(dir.join("ca.crt")).unwrap()).unwrap(),
        key: openssl::pkey::PKey::private_key_from_pem(&std::fs::read(dir.join("ca.key")).unwrap())
            .unwrap(),
    };
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let server = common::issue(
        "pgdap-demo",
        key,
        Some(&ca),
        &[San::Ip(addr), San::Dns("localhost")],
        false,
        false,
    );
    std::fs::write(dir.join("demo-server.crt"), server.cert.to_pem().unwrap()).unwrap();
    common::write_key(
        &dir.join("demo-server.key"),
        &server.key.private_key_to_pem_pkcs8().unwrap(),
    );
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Ssl => "encrypted".into(),
        Outcome::Plain => "plaintext".into(),
        Outcome::Fail(e) => {
            let first = e
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("psql: error: ");
            let short: String = first.chars().take(110).collect();
            format!("refused: {short}")
        }
    }
}

/// Connects through pgdap and through psql with the same settings and prints both.
async fn case(title: &str, ap: pgdap::AccessPoint, home: &ClientHome) -> bool {
    let env = home.env();
    let ours = common::pgdap_outcome(&ap, &env).await;
    let libpq = common::psql_outcome(&ap, &env, home.home());
    let vars: Vec<String> = home
        .vars()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let files: Vec<String> = std::fs::read_dir(home.dir())
        .map(|d| {
            let mut names: Vec<String> = d
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect();
            names.sort();
            names
        })
        .unwrap_or_default();
    let same = ours.class() == libpq.class();
    println!("\n== {title}");
    println!(
        "   {}  ~/.postgresql: {}",
        vars.join(" "),
        if files.is_empty() {
            "(empty)".to_string()
        } else {
            files.join(", ")
        }
    );
    println!("   pgdap: {}", describe(&ours));
    println!(
        "   psql:  {}{}",
        describe(&libpq),
        if same {
            "  (same outcome)"
        } else {
            "  (DIFFERENT)"
        }
    );
    same
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let addr = match parse_args() {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("demo: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let Some((major, bin)) = find_pg_bin() else {
        eprintln!(
            "demo: no PostgreSQL server 12-18 found (pg_ctl and psql in /usr/lib/postgresql/N/bin).\n\
             Run `bash scripts/demo.sh` as root, or install it:\n  {}",
            common::PG_INSTALL_HINT
        );
        return ExitCode::FAILURE;
    };
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("demo: the `openssl` command is missing: sudo apt-get install -y openssl");
        return ExitCode::FAILURE;
    }
    println!(
        "starting a throwaway PostgreSQL {major} ({}) with SSL on {addr}:5432 ...",
        bin.display()
    );
    demo_server_certificate(addr);
    let server = Server::start(ServerSpec::new(addr, Some("demo-server")));
    println!("server data directory: {}", server.data.display());
    println!(
        "generated PKI (CA, server and client certificates): {}",
        pki().dir.display()
    );
    println!("Access Point: dbengine=postgre dbserver={addr} dbname=appdb username=scram_user password=****");

    let scram = || access_point(addr, "appdb", "scram_user", "scram-pw");
    let mut all_same = true;
    for mode in common::MODES {
        let home = ClientHome::new().var("PGMODE", mode);
        all_same &= case(&format!("PGMODE={mode}, no root CA"), scram(), &home).await;
    }
    for mode in ["verify-ca", "verify-full"] {
        let home = ClientHome::new().var("PGMODE", mode);
        home.put("ca.crt", "root.crt");
        all_same &= case(
            &format!("PGMODE={mode} with the CA in ~/.postgresql/root.crt"),
            scram(),
            &home,
        )
        .await;
    }
    let home = ClientHome::new()
        .var("PGMODE", "verify-full")
        .var("PGAUTH", "cert");
    home.put("ca.crt", "root.crt");
    home.put("alice.crt", "postgresql.crt");
    home.put("alice.key", "postgresql.key");
    all_same &= case(
        "certificate authentication: CN=alice, no password sent (database certdb)",
        access_point(addr, "certdb", "alice", ""),
        &home,
    )
    .await;
    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("other-ca.crt", "root.crt");
    all_same &= case(
        "verify-full with an unrelated CA: the server certificate does not verify",
        scram(),
        &home,
    )
    .await;

    println!(
        "\n{}; the server is stopped and removed on exit.",
        if all_same {
            "pgdap and libpq agreed on every case"
        } else {
            "pgdap and libpq DISAGREED on a case above"
        }
    );
    if all_same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
