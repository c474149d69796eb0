# shellcheck shell=bash
# Sourced by scripts/demo.sh, scripts/test.sh and .ci/run: finds what a Debian/Ubuntu
# machine lacks and installs it (as root) or prints the exact command (otherwise), before
# anything is built. Every program asked for is checked again after installing: one still
# missing is named and the script stops (exit 1), never left for a test to discover.
#
#   need_build_packages [system|vendored|all]
#                            C toolchain, and for linking the system OpenSSL (default)
#                            pkg-config and libssl-dev, for the `vendored` feature perl and
#                            make, for `all` (--all-features builds and default ones) both
#   need_postgresql          the distribution's PostgreSQL server and psql (any of 12-18),
#                            and the openssl command (the harness makes CRLs with it)
#   need_test_packages       every program the test suite runs (docs/requirements.md):
#                            the above (`all`), pg_basebackup, runuser, useradd, PgBouncer,
#                            HAProxy, npm and node (tools/libpq18.sh), python3 with ctypes
#                            (tools/libpq_oracle.py)
#   need WHAT TEST PKG...    PKG... unless the shell command TEST succeeds; WHAT names the
#                            program when TEST still fails after installing
#   need_package PKG         add any other package (other scripts' needs)
#   install_needed           installs them as root; otherwise prints the sudo line, exit 1;
#                            then checks every WHAT again

PGDAP_NEEDED=()
PGDAP_CHECK_WHAT=()
PGDAP_CHECK_TEST=()

need_package() {
  local p
  for p in "$@"; do
    case " ${PGDAP_NEEDED[*]} " in *" $p "*) ;; *) PGDAP_NEEDED+=("$p") ;; esac
  done
}

need() {
  local what=$1 test=$2
  shift 2
  PGDAP_CHECK_WHAT+=("$what (${*})")
  PGDAP_CHECK_TEST+=("$test")
  eval "$test" >/dev/null 2>&1 || need_package "$@"
}

# The newest /usr/lib/postgresql/N/bin (N = 12..18) holding pg_ctl and psql, or nothing.
pg_bin_dir() {
  local v
  for v in 18 17 16 15 14 13 12; do
    if [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ] && [ -x "/usr/lib/postgresql/$v/bin/psql" ]; then
      echo "/usr/lib/postgresql/$v/bin"
      return 0
    fi
  done
  return 1
}

need_build_packages() {
  local openssl=${1:-system}
  need "cc" "command -v cc" gcc libc6-dev
  if [ "$openssl" != system ]; then
    # openssl-src runs OpenSSL's Configure (perl with IPC::Cmd) and make.
    need "perl with IPC::Cmd" "perl -MIPC::Cmd -e1" perl
    need "make" "command -v make" make
  fi
  if [ "$openssl" != vendored ]; then
    need "pkg-config" "command -v pkg-config" pkg-config
    need "OpenSSL headers (pkg-config openssl)" "pkg-config --exists openssl" libssl-dev
  fi
}

need_postgresql() {
  need "PostgreSQL 12-18 pg_ctl and psql in /usr/lib/postgresql/N/bin" pg_bin_dir postgresql postgresql-client
  need "openssl" "command -v openssl" openssl
}

need_test_packages() {
  # tests/server/ecosystem.rs builds every example with --all-features (`vendored` included).
  need_build_packages all
  need_postgresql
  # tests/server/libpq_env.rs makes a standby with pg_basebackup; initdb starts every cluster.
  # shellcheck disable=SC2016 # evaluated by need
  need "pg_basebackup and initdb" '[ -x "$(pg_bin_dir)/pg_basebackup" ] && [ -x "$(pg_bin_dir)/initdb" ]' postgresql-client postgresql
  # As root the servers run as 'postgres' (runuser), created by useradd when missing.
  need "runuser" "command -v runuser" util-linux
  need "useradd" "command -v useradd" passwd
  # tests/server/pgbouncer.rs and tests/process_wide/failover.rs start their own PgBouncer
  # and HAProxy.
  need "/usr/sbin/pgbouncer" "[ -x /usr/sbin/pgbouncer ]" pgbouncer
  need "/usr/sbin/haproxy" "[ -x /usr/sbin/haproxy ]" haproxy
  # tools/libpq18.sh installs PostgreSQL 13 and 18 (servers, libpq 18) from npm.
  need "npm" "command -v npm" npm
  need "node" "command -v node" nodejs
  # tools/libpq_oracle.py drives libpq 18 through ctypes.
  need "python3 with ctypes and json" "python3 -c 'import ctypes, json'" python3
}

install_needed() {
  if [ ${#PGDAP_NEEDED[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      pgdap_missing >&2 || true
      echo "missing packages; install them with:" >&2
      echo "  sudo apt-get install -y ${PGDAP_NEEDED[*]}" >&2
      echo "(or run this script as root, which installs them)" >&2
      exit 1
    fi
    echo "installing: ${PGDAP_NEEDED[*]}" >&2
    # The tests and the demo start their own servers: do not let the package create and
    # start a 'main' cluster on localhost:5432.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/pgdap-tests.conf
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PGDAP_NEEDED[@]}" >&2
    PGDAP_NEEDED=()
  fi
  if pgdap_missing >&2; then
    echo "still missing after installing (see above): stopping before anything is built" >&2
    exit 1
  fi
}

# Prints every program whose check fails ("missing: WHAT (packages)"); false when none.
pgdap_missing() {
  local i found=1
  for i in "${!PGDAP_CHECK_TEST[@]}"; do
    if ! eval "${PGDAP_CHECK_TEST[$i]}" >/dev/null 2>&1; then
      echo "missing: ${PGDAP_CHECK_WHAT[$i]}"
      found=0
    fi
  done
  return $found
}
