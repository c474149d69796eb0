#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL servers (the distribution's, any of
# 12-18) started by the tests.
# On a fresh Debian/Ubuntu machine it first installs what the tests need (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

# Every feature but `vendored`: the tests compare pgdap with psql, which links the
# system OpenSSL, so pgdap links the same one (a vendored OpenSSL 3.6 reports a refused
# client certificate differently). `vendored` is built by scripts/windows.sh in CI.
features=$(awk '/^\[features\]/ {f=1; next} /^\[/ {f=0} f && /^[A-Za-z0-9_-]+ *=/ {print $1}' Cargo.toml |
  grep -vx -e default -e vendored | paste -sd, -)
if [ "${1:-}" = --print-features ]; then
  echo "$features"
  exit 0
fi

. scripts/packages.sh
need_build_packages all   # the suite links the system OpenSSL; CI also builds `vendored`
need_postgresql
# Other tools the tests drive go here: need_package NAME ...
# tests/pgbouncer.rs and tests/failover.rs start their own PgBouncer and HAProxy.
need_package pgbouncer haproxy
install_needed
PG_BIN_DIR=$(pg_bin_dir)
echo "PostgreSQL server and psql: $PG_BIN_DIR" >&2

# A 'main' cluster listening on localhost:5432 would not collide with the test servers
# (they use 127.0.0.2 and up), but stop it anyway so nothing answers where tests expect
# no server.
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h 2>/dev/null | awk '$4 == "online" {print $1, $2}' | while read -r v c; do
    pg_ctlcluster "$v" "$c" stop || true
  done
fi

# Test servers run as the 'postgres' user when we are root; it must be able to reach the
# test directories.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home postgres
fi

echo "features: ${features:-none}" >&2
cargo test --features "$features" --all-targets "$@"
cargo test --features "$features" --doc
# The exhaustive encoding check (every code point of every encoding against the server,
# a few minutes) is kept out of the default run and run here.
cargo test --features "$features" --test encoding -- --ignored
