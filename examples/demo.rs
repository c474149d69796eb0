//! `cargo run --example demo`: starts a throwaway local PostgreSQL 15 with SSL and a
//! freshly generated PKI (on 127.0.0.2:5432, as the test suite does), then connects to it
//! through pgdap in several ways and prints what happened. Needs PostgreSQL 15 installed
//! (`bash scripts/test.sh` installs it) and, as root, runs the server as `postgres`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{access_point, pki, ssl_server, ClientHome};

async fn show(title: &str, ap: pgdap::AccessPoint, home: &ClientHome) {
    println!("\n== {title}");
    for (k, v) in home.vars() {
        println!("   {k}={v}");
    }
    let env = home.env();
    let result = async {
        let config = pgdap::Config::new(ap, &env)?;
        let connector = pgdap::Connector::new(config)?;
        let session = connector.connect_spawned().await?;
        pgdap::report::SessionInfo::query(&session).await
    }
    .await;
    match result {
        Ok(info) => println!(
            "   connected: ssl={} tls={} cipher={} verified={} user={} db={} server {}",
            info.ssl,
            info.tls_version.as_deref().unwrap_or("-"),
            info.cipher.as_deref().unwrap_or("-"),
            info.server_verified,
            info.user,
            info.database,
            info.server_version
        ),
        Err(e) => println!("   failed (as expected for this case): {e}"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("starting a throwaway PostgreSQL 15 with SSL on 127.0.0.2:5432 ...");
    let server = ssl_server();
    println!("server data directory: {}", server.data.display());
    println!("test PKI: {}", pki().dir.display());
    let addr = server.addr.clone();

    let home = ClientHome::new().var("PGMODE", "require");
    show(
        "require, no root CA: encrypted, server not verified",
        access_point(&addr, "appdb", "scram_user", "scram-pw"),
        &home,
    )
    .await;

    let home = ClientHome::new().var("PGMODE", "verify-full");
    show(
        "verify-full without root CA: refused before connecting, as libpq",
        access_point(&addr, "appdb", "scram_user", "scram-pw"),
        &home,
    )
    .await;

    let home = ClientHome::new().var("PGMODE", "verify-full");
    home.put("ca.crt", "root.crt");
    show(
        "verify-full with ~/.postgresql/root.crt: verified, host name checked",
        access_point(&addr, "appdb", "scram_user", "scram-pw"),
        &home,
    )
    .await;

    let home = ClientHome::new()
        .var("PGMODE", "verify-full")
        .var("PGAUTH", "cert");
    home.put("ca.crt", "root.crt");
    home.put("alice.crt", "postgresql.crt");
    home.put("alice.key", "postgresql.key");
    show(
        "certificate authentication (CN=alice), no password",
        access_point(&addr, "certdb", "alice", ""),
        &home,
    )
    .await;

    let home = ClientHome::new().var("PGMODE", "disable");
    show(
        "disable: plaintext",
        access_point(&addr, "appdb", "scram_user", "scram-pw"),
        &home,
    )
    .await;
    println!("\ndone; the server is stopped on exit.");
}
