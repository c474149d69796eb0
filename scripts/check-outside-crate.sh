#!/usr/bin/env bash
# A crate outside the repository that depends on pgdap alone (no tokio-postgres of its
# own) must compile code naming pgdap::tokio_postgres::{Client, Row} and using `?` on
# query results into pgdap::Error (issue 12). Run by CI; its own CARGO_TARGET_DIR
# (OUTSIDE_TARGET_DIR, default target/outside-crate) keeps the repository's build apart.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/outside/src"
cat > "$work/outside/Cargo.toml" <<TOML
[package]
name = "outside"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
pgdap = { path = "$repo" }

[workspace]
TOML
cat > "$work/outside/src/main.rs" <<'RUST'
use pgdap::tokio_postgres::{Client, Row};

async fn answer(client: &Client) -> Result<i32, pgdap::Error> {
    let row: Row = client.query_one("select 42", &[]).await?;
    Ok(row.get(0))
}

async fn run() -> Result<i32, pgdap::Error> {
    let ap = pgdap::AccessPoint::from_file("dap.cfg")?;
    let session = pgdap::connect(ap, &pgdap::Environment::from_process_env()).await?;
    answer(&session.client).await
}

fn main() -> Result<(), pgdap::error::Report> {
    // Compiled, not run: no tokio dependency either, the future is only named.
    let _future = run();
    let e = pgdap::AccessPoint::parse("dbengine=mssql\n").unwrap_err();
    println!("{}", e.chain());
    Ok(())
}
RUST
# The lock file of the repository, so the check uses the versions pgdap is tested with.
cp "$repo/Cargo.lock" "$work/outside/Cargo.lock"
if grep -q 'tokio-postgres' "$work/outside/Cargo.toml"; then
  echo "the outside crate must not depend on tokio-postgres itself" >&2
  exit 1
fi
CARGO_TARGET_DIR="${OUTSIDE_TARGET_DIR:-$repo/target/outside-crate}" \
  cargo build --quiet --manifest-path "$work/outside/Cargo.toml"
"${OUTSIDE_TARGET_DIR:-$repo/target/outside-crate}/debug/outside" | grep -q 'unsupported'
echo "outside crate: OK (pgdap::tokio_postgres::{Client, Row} and ? into pgdap::Error compile)"
