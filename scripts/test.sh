#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL 15 servers started by the tests.
# On a fresh Debian/Ubuntu machine it first installs what the tests need (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

need_install=()
[ -x /usr/lib/postgresql/15/bin/pg_ctl ] || need_install+=(postgresql-15 postgresql-client-15)
command -v openssl >/dev/null || need_install+=(openssl)
pkg-config --exists openssl 2>/dev/null || need_install+=(libssl-dev pkg-config)
# tests/pgbouncer.rs and tests/failover.rs start their own PgBouncer and HAProxy.
[ -x /usr/sbin/pgbouncer ] || need_install+=(pgbouncer)
[ -x /usr/sbin/haproxy ] || need_install+=(haproxy)
if [ ${#need_install[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need_install[*]}; install them (e.g. sudo apt-get install ${need_install[*]})" >&2
    exit 1
  fi
  # Do not let the package create and start a 'main' cluster on localhost:5432.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/pgdap-tests.conf
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}"
fi

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

cargo test --all-targets "$@"
cargo test --doc
# The exhaustive encoding check (every code point of every encoding against the server,
# a few minutes) is kept out of the default run and run here.
cargo test --test encoding -- --ignored
