//! Test harness: real PostgreSQL servers (the distribution's, any of 12-18: see [`PG_BIN`])
//! and a test PKI, made at run time.
//!
//! API (for the test crates, `#[path = "../common/mod.rs"] mod common;` in
//! tests/server/main.rs and tests/process_wide/main.rs, and for the examples that start
//! servers):
//! - [`pki()`]: the PKI of this test process (generated once): `pki().path("ca.crt")`, see
//!   [`Pki`] for the files (CA, unrelated CA, server and client certificates, CRLs).
//! - [`Server::start(ServerSpec)`]: a server on `127.0.0.x:5432` with the spec's SSL
//!   certificate, `pg_hba.conf`, `pg_ident.conf` and extra `postgresql.conf` lines.
//!   Servers are stopped at process exit (and stale ones from killed runs at start).
//!   [`Server::psql`] runs SQL as superuser over the unix socket.
//! - [`ssl_server()`] (127.0.0.2, SSL, rich pg_hba: see [`STANDARD_HBA`]) and
//!   [`plain_server()`] (127.0.0.3, ssl=off, same pg_hba): shared per test process.
//!   Roles: `scram_user`/`scram-pw`, `md5_user`/`md5-pw` (md5 hash), `alice`/`alice-pw`
//!   (client certificate CN=alice), `bob` (certificate CN=bob-cn mapped through
//!   pg_ident map `cnmap`). Databases: appdb, sslonly (hostssl; plaintext rejected), nossl (hostnossl; SSL
//!   rejected),
//!   certdb (cert), mapdb (cert map=cnmap), vcadb (scram + clientcert=verify-ca),
//!   pwdb (cleartext password).
//! - [`ClientHome`]: a temporary per-user directory (the `~/.postgresql` of a test) with
//!   helpers to place root CA, CRL, certificate and key files; [`ClientHome::env`] builds a
//!   [`pgdap::Environment`] with that default directory.
//! - [`access_point`]: an Access Point for a server/db/user/password.
//! - [`SilentPeer`]: a peer that accepts and never answers, counting connection attempts
//!   exactly (its marker connections come from 127.0.0.63), for timeout tests.
//! - [`pgdap_outcome`] and [`psql_outcome`]: run the same case through pgdap and psql
//!   (which resolves its own defaults: [`libpq_command`]) and classify it as [`Outcome::Ssl`], [`Outcome::Plain`] or
//!   [`Outcome::Fail`].
//! - [`Cluster::start`]: a primary and streaming hot standbys (`pg_basebackup`), each on
//!   its own address with its own socket directory and SSL (`server-cluster.crt`);
//!   [`Cluster::add_standby`], [`Cluster::sync`], and per [`Node`]: `psql`, `kill`
//!   (immediate stop), `start`, `promote`, `wait_streaming`, `in_recovery`.
//! - [`pgdap_served`] and [`psql_served`]: which server served a session
//!   ([`Served`]: its address or `socket`, SSL or not) through pgdap and psql, or the
//!   failure; [`failure_hosts`]: the hosts a multi-host failure message names.
//!
//! Addresses: 127.0.0.2 ssl_server, .3 plain_server, .10-.29 sslmode matrix servers,
//! .30-.39 client-certificate tests, .40-.49 encoding tests, .50-.59 operations and pool,
//! .60-.69 reliability and load, .70-.79 security (MITM proxy), .80-.99 ecosystem
//! adapters and cancel, .100-.129 libpq variables and direct TLS (PostgreSQL 18; .112 service files and CRL directories),
//! .130-.139 round-trip counting, .140-.149 CLI, demo and docker checks, .150-.179
//! PgBouncer and HAProxy, .180-.199 Windows under Wine, .200-.209 certificate rotation (.205 credentials that move),
//! .210-.219 hostile fake servers (security), .220-.239 host lists, replication clusters
//! and failover (hosts: .220-.229 the module's cluster and list members, .230-.239 its
//! failover and pool tests, .238 the staggered attempt's silent peer). The modules of tests/server share one
//! process, so each keeps to its area: a server started on an address where its own
//! process already runs one stops that one first (see `claim_address`).
//! With `PGDAP_TEST_DOCKER=IMAGE` every server runs in a container of IMAGE (Docker mode:
//! `docker.rs`, docs/docker.md); without it nothing differs.
//! Host names `*.pgdap.test` are added to /etc/hosts (see [`ensure_hosts`]), marked with
//! the test process's pid and removed at its exit, or by the next run when it was killed.

/// The self-test servers of the `bench` and `roundtrips` examples (no test uses them).
#[allow(dead_code)]
pub mod bench_cases;
pub mod libpq18;
pub mod proxies;

mod client;
mod cluster;
mod docker;
mod hosts;
mod pki;
mod server;

pub use client::*;
// Only tests/server uses the clusters (tests/process_wide and the examples do not).
#[allow(unused_imports)]
pub use cluster::*;
pub use hosts::*;
pub use pki::*;
pub use server::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

/// Every PGMODE value, weakest first (from `pgdap::SslMode`).
pub const MODES: [&str; 6] = [
    pgdap::SslMode::Disable.as_str(),
    pgdap::SslMode::Allow.as_str(),
    pgdap::SslMode::Prefer.as_str(),
    pgdap::SslMode::Require.as_str(),
    pgdap::SslMode::VerifyCa.as_str(),
    pgdap::SslMode::VerifyFull.as_str(),
];

/// The directory of the PostgreSQL server binaries the harness runs (`initdb`, `pg_ctl`)
/// and of `psql`, the libpq oracle: `$PGDAP_PG_BIN` when set, else the newest
/// `/usr/lib/postgresql/N/bin` (Debian/Ubuntu, N = 12..=18) or `/usr/pgsql-N/bin`
/// holding `pg_ctl` and `psql`. Displays as the path: `format!("{PG_BIN}/psql")`.
pub static PG_BIN: PgBin = PgBin;

/// See [`PG_BIN`]; detected once per process, panics with the install command when no
/// server is found.
pub struct PgBin;

/// The PostgreSQL major versions the harness accepts.
pub const PG_VERSIONS: std::ops::RangeInclusive<u32> = 12..=18;

static PG_FOUND: OnceLock<(u32, String)> = OnceLock::new();

/// The newest installed PostgreSQL (major version, bin directory) of [`PG_VERSIONS`], or
/// `$PGDAP_PG_BIN` (its version read from `pg_ctl --version`); `None` when there is none.
pub fn find_pg_bin() -> Option<(u32, PathBuf)> {
    if let Some(dir) = std::env::var_os("PGDAP_PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let out = Command::new(dir.join("pg_ctl"))
            .arg("--version")
            .output()
            .ok()?;
        // "pg_ctl (PostgreSQL) 16.4 (Ubuntu 16.4-1)"
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let major = text
            .split_whitespace()
            .nth(2)?
            .split('.')
            .next()?
            .parse()
            .ok()?;
        return Some((major, dir));
    }
    PG_VERSIONS.rev().find_map(|v| {
        [
            format!("/usr/lib/postgresql/{v}/bin"),
            format!("/usr/pgsql-{v}/bin"),
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|d| d.join("pg_ctl").is_file() && d.join("psql").is_file())
        .map(|d| (v, d))
    })
}

/// The command that installs the distribution's PostgreSQL without creating and starting
/// its `main` cluster (the tests start their own servers).
pub const PG_INSTALL_HINT: &str = "sudo mkdir -p /etc/postgresql-common/createcluster.d && \
echo 'create_main_cluster = false' | sudo tee /etc/postgresql-common/createcluster.d/pgdap.conf && \
sudo apt-get install -y postgresql postgresql-client openssl";

fn pg_found() -> &'static (u32, String) {
    PG_FOUND.get_or_init(|| match find_pg_bin() {
        Some((v, dir)) => (v, dir.display().to_string()),
        None => panic!(
            "no PostgreSQL server {}-{} found (looked for pg_ctl and psql in \
             /usr/lib/postgresql/N/bin and /usr/pgsql-N/bin; PGDAP_PG_BIN overrides). \
             Install it as root with `bash scripts/test.sh`, or:\n{PG_INSTALL_HINT}",
            PG_VERSIONS.start(),
            PG_VERSIONS.end()
        ),
    })
}

/// The major version of the PostgreSQL in [`PG_BIN`] (server and psql).
pub fn pg_major() -> u32 {
    pg_found().0
}

impl std::ops::Deref for PgBin {
    type Target = str;
    fn deref(&self) -> &str {
        &pg_found().1
    }
}

impl std::fmt::Display for PgBin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl AsRef<Path> for PgBin {
    fn as_ref(&self) -> &Path {
        Path::new(&**self)
    }
}

impl AsRef<std::ffi::OsStr> for PgBin {
    fn as_ref(&self) -> &std::ffi::OsStr {
        std::ffi::OsStr::new(&**self)
    }
}
pub(crate) const ROOT: &str = "/tmp/pgdap-tests";
