# Sourced by scripts/demo.sh and scripts/test.sh: finds what a Debian/Ubuntu machine lacks
# and installs it (as root) or prints the exact command (otherwise).
#
#   need_build_packages [system|vendored|all]
#                            C toolchain, and for linking the system OpenSSL (default)
#                            pkg-config and libssl-dev, for the `vendored` feature perl and
#                            make, for `all` (--all-features builds and default ones) both
#   need_postgresql          the distribution's PostgreSQL server and psql (any of 12-18),
#                            and the openssl command (the harness makes CRLs with it)
#   need_package PKG         add any other package (other scripts' needs)
#   install_needed           installs them as root; otherwise prints the sudo line, exit 1

PGDAP_NEEDED=()

need_package() {
  local p
  for p in "$@"; do
    case " ${PGDAP_NEEDED[*]} " in *" $p "*) ;; *) PGDAP_NEEDED+=("$p") ;; esac
  done
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
  command -v cc >/dev/null || need_package gcc libc6-dev
  if [ "$openssl" != system ]; then
    # openssl-src runs OpenSSL's Configure (perl with IPC::Cmd) and make.
    perl -MIPC::Cmd -e1 2>/dev/null || need_package perl
    command -v make >/dev/null || need_package make
  fi
  if [ "$openssl" != vendored ]; then
    command -v pkg-config >/dev/null || need_package pkg-config
    pkg-config --exists openssl 2>/dev/null || need_package libssl-dev
  fi
}

need_postgresql() {
  pg_bin_dir >/dev/null || need_package postgresql postgresql-client
  command -v openssl >/dev/null || need_package openssl
}

install_needed() {
  [ ${#PGDAP_NEEDED[@]} -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ]; then
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
}
