#!/usr/bin/env bash
# Checks docker/ without a Docker engine (as root, on Debian/Ubuntu):
#  1. docker/docker-compose.yml through a compose implementation's `config` (the
#     `docker-compose` Python package, installed into a cached virtualenv when missing);
#  2. the service as that `config` resolved it: its volumes bind-mounted at their container
#     paths in a private mount namespace, the image's environment (PGDATA, PATH) and the
#     compose environment, then its entrypoint and command run unchanged, with the
#     official image's docker-entrypoint.sh (docker/upstream/, unchanged) running initdb
#     and the init scripts as the image does. The only differences from the container: the
#     distribution's PostgreSQL instead of the image's 15, LANG=C.UTF-8, `gosu` played by
#     `setpriv`, and `-c listen_addresses=ADDR` appended (the container listens on every
#     interface; compose maps 127.0.0.2:5432 to it);
#  3. the result: roles, databases, pg_hba rules (no rule in error, each rule's outcome),
#     SSL with the generated certificates, POSTGRES_PASSWORD, certificate authentication,
#     through psql (libpq) and through pgdap (the `connect` example).
#
#   bash docker/verify.sh          (PGDAP_DOCKER_ADDR=127.0.0.143 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
ADDR=${PGDAP_DOCKER_ADDR:-127.0.0.143}
CARGO_FLAGS=${PGDAP_CARGO_FLAGS:-}

if [ "$(id -u)" -ne 0 ]; then
  echo "docker/verify.sh: run as root (it mounts the compose volumes at their container paths in a private mount namespace)" >&2
  exit 1
fi
. scripts/packages.sh
need_postgresql
command -v unshare >/dev/null || need_package util-linux
python3 -c 'import venv, ensurepip' 2>/dev/null || need_package python3-venv
install_needed
PGBIN=$(pg_bin_dir)

WORK=$(mktemp -d /tmp/pgdap-docker-verify.XXXXXX)
chmod 755 "$WORK"
created=()
cleanup() {
  if [ -f "$WORK/server.pid" ]; then
    kill -INT "$(cat "$WORK/server.pid")" 2>/dev/null || true
  fi
  local d
  for d in "${created[@]}"; do rmdir "$d" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- 1. docker-compose config ----------------------------------------------------------
VENV=${PGDAP_COMPOSE_VENV:-/var/cache/pgdap/compose-venv}
if [ ! -x "$VENV/bin/docker-compose" ]; then
  echo "== installing the docker-compose Python package into $VENV" >&2
  python3 -m venv "$VENV"
  # docker-compose 1.29.2 pins PyYAML 5.4, whose build needs Cython < 3.
  echo 'cython<3' > "$VENV/constraints.txt"
  PIP_CONSTRAINT="$VENV/constraints.txt" "$VENV/bin/pip" install -q 'docker-compose==1.29.2'
fi
echo "== $("$VENV/bin/docker-compose" version --short) config" >&2
"$VENV/bin/docker-compose" -f docker/docker-compose.yml config > "$WORK/config.yml"
"$VENV/bin/python" - "$WORK/config.yml" > "$WORK/service.sh" <<'EOF'
# The one service of the resolved compose file as shell arrays; "$$" is compose's escape
# of "$" in the values.
import shlex, sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
(name, svc), = config["services"].items()
q = lambda v: shlex.quote(str(v).replace("$$", "$"))
print(f"SERVICE={q(name)}")
print(f"IMAGE={q(svc['image'])}")
print("ENTRYPOINT=(" + " ".join(map(q, svc.get("entrypoint") or [])) + ")")
print("COMMAND=(" + " ".join(map(q, svc.get("command") or [])) + ")")
env = svc.get("environment") or {}
print("ENVIRONMENT=(" + " ".join(q(f"{k}={v}") for k, v in env.items()) + ")")
vols = []
for v in svc.get("volumes") or []:
    if isinstance(v, str):
        parts = v.split(":")
        v = {"source": parts[0], "target": parts[1], "read_only": len(parts) > 2 and "ro" in parts[2]}
    vols.append(f"{v['source']}|{v['target']}|{'ro' if v.get('read_only') else 'rw'}")
print("VOLUMES=(" + " ".join(map(q, vols)) + ")")
print("PORTS=(" + " ".join(q(p if isinstance(p, str) else f"{p.get('host_ip','')}:{p['published']}:{p['target']}") for p in svc.get("ports") or []) + ")")
EOF
. "$WORK/service.sh"
echo "service $SERVICE: image $IMAGE, ports ${PORTS[*]}, volumes ${VOLUMES[*]}" >&2
case "$IMAGE" in postgres:*) ;; *) echo "docker/verify.sh: expected a postgres image, got $IMAGE" >&2; exit 1 ;; esac

# --- 2. the container, locally ----------------------------------------------------------
# The PKI docker/gen-pki.sh makes, with the local address as an extra SAN, in place of
# docker/pki (left alone).
PKI_DIR="$WORK/pki" EXTRA_SAN="IP:$ADDR" bash docker/gen-pki.sh >/dev/null 2>&1
mounts=()
i=0
for v in "${VOLUMES[@]}"; do
  IFS='|' read -r src target mode <<<"$v"
  if [ "$src" = "$REPO/docker/pki" ]; then
    src="$WORK/pki"
  else
    i=$((i + 1))
    cp -a "$src" "$WORK/vol-$i"
    src="$WORK/vol-$i"
  fi
  mounts+=("$src|$target|$mode")
done
# The image's Dockerfile: PGDATA under /var/lib/postgresql (postgres' home), mode 1777.
mkdir -p "$WORK/varlib/data" "$WORK/run" "$WORK/bin"
chown -R postgres:postgres "$WORK/varlib" "$WORK/run"
chmod 1777 "$WORK/varlib/data"
cp docker/upstream/docker-entrypoint.sh "$WORK/bin/"
cat > "$WORK/bin/gosu" <<'EOF'
#!/bin/sh
# gosu USER COMMAND...: run COMMAND as USER with the environment unchanged (but HOME).
user=$1
shift
HOME=$(getent passwd "$user" | cut -d: -f6) exec setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
EOF
chmod 755 "$WORK/bin"/*
for target in /var/lib/postgresql /var/run/postgresql; do
  [ -d "$target" ] || { mkdir -p "$target"; created+=("$target"); }
done
for m in "${mounts[@]}"; do
  IFS='|' read -r _ target _ <<<"$m"
  [ -d "$target" ] || { mkdir -p "$target"; created+=("$target"); }
done

cat > "$WORK/inside.sh" <<'EOF'
set -euo pipefail
for m in "${MOUNTS[@]}"; do
  IFS='|' read -r src target mode <<<"$m"
  mount --bind "$src" "$target"
  [ "$mode" = rw ] || mount -o remount,bind,ro "$target"
done
mount --bind "$WORK/varlib" /var/lib/postgresql
mount --bind "$WORK/run" /var/run/postgresql
env -i PATH="$WORK/bin:$PGBIN:/usr/sbin:/usr/bin:/sbin:/bin" PGDATA=/var/lib/postgresql/data \
  LANG=C.UTF-8 "${ENVIRONMENT[@]}" \
  "${ENTRYPOINT[@]}" "${COMMAND[@]}" -c "listen_addresses=$ADDR" -c log_connections=on \
  > "$WORK/server.log" 2>&1 &
echo $! > "$WORK/server.pid"
wait
EOF
export WORK PGBIN ADDR
# Arrays cannot be exported: hand them over as a sourced file.
{
  declare -p ENTRYPOINT COMMAND ENVIRONMENT
  echo "MOUNTS=($(printf '%q ' "${mounts[@]}"))"
} > "$WORK/arrays.sh"
sed -i "1a . \"$WORK/arrays.sh\"" "$WORK/inside.sh"
echo "== running the service's entrypoint (docker-entrypoint.sh, init scripts) on $ADDR:5432" >&2
unshare --mount --propagation private bash "$WORK/inside.sh" &
ns=$!
for _ in $(seq 1 120); do
  "$PGBIN/pg_isready" -q -h "$ADDR" -p 5432 && break
  kill -0 "$ns" 2>/dev/null || break
  sleep 0.5
done
if ! "$PGBIN/pg_isready" -q -h "$ADDR" -p 5432; then
  echo "docker/verify.sh: the server did not come up; its log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
grep -q "running /docker-entrypoint-initdb.d/10-roles.sql" "$WORK/server.log" || {
  echo "docker/verify.sh: the entrypoint did not run the init script" >&2
  cat "$WORK/server.log" >&2
  exit 1
}

# --- 3. checks ---------------------------------------------------------------------------
failures=0
# check WHAT EXPECTED(ok|fail) [psql environment...] -- SQL : psql (libpq) as the oracle
check() {
  local what=$1 expect=$2 out rc
  shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  set +e
  out=$(env -i PATH=/usr/bin:/bin HOME="$WORK" PGHOST="$ADDR" PGPORT=5432 PGCONNECT_TIMEOUT=10 \
    "${envs[@]}" "$PGBIN/psql" -X -A -t -w -v ON_ERROR_STOP=1 -c "$1" 2>&1)
  rc=$?
  set -e
  if { [ "$expect" = ok ] && [ $rc -eq 0 ] && { [ -z "${2:-}" ] || [ "$out" = "$2" ]; }; } ||
    { [ "$expect" = fail ] && [ $rc -ne 0 ]; }; then
    echo "ok   $what: ${out//$'\n'/ }"
  else
    echo "FAIL $what (expected $expect${2:+ \"$2\"}): rc=$rc ${out//$'\n'/ }"
    failures=$((failures + 1))
  fi
}
CA="PGSSLROOTCERT=$WORK/pki/ca.crt"
SSLQ="select ssl from pg_stat_ssl where pid = pg_backend_pid()"
check "POSTGRES_PASSWORD: superuser over verify-full" ok PGUSER=postgres PGPASSWORD=postgres PGDATABASE=postgres PGSSLMODE=verify-full "$CA" -- \
  "select current_setting('ssl') || ' ' || (select ssl from pg_stat_ssl where pid = pg_backend_pid())" "on true"
check "hba_file is the mounted pg_hba.conf, no rule in error" ok PGUSER=postgres PGPASSWORD=postgres PGDATABASE=postgres PGSSLMODE=verify-full "$CA" -- \
  "select current_setting('hba_file') || ' ' || (select count(*) from pg_hba_file_rules where error is not null) || ' ' || (select count(*) from pg_hba_file_rules)" \
  "/var/lib/postgresql/pg_hba.conf 0 11"
check "pg_ident map cnmap loaded" ok PGUSER=postgres PGPASSWORD=postgres PGDATABASE=postgres PGSSLMODE=require -- \
  "select count(*) from pg_ident_file_mappings where map_name = 'cnmap' and error is null" "2"
check "roles" ok PGUSER=postgres PGPASSWORD=postgres PGDATABASE=postgres PGSSLMODE=require -- \
  "select string_agg(rolname, ',' order by rolname) from pg_roles where rolname in ('scram_user','alice','bob','md5_user')" "alice,bob,md5_user,scram_user"
check "databases" ok PGUSER=postgres PGPASSWORD=postgres PGDATABASE=postgres PGSSLMODE=require -- \
  "select string_agg(datname, ',' order by datname) from pg_database where datname not in ('postgres','template0','template1')" \
  "appdb,certdb,mapdb,nossl,pwdb,sslonly,vcadb"
check "scram_user, appdb, verify-full" ok PGUSER=scram_user PGPASSWORD=scram-pw PGDATABASE=appdb PGSSLMODE=verify-full "$CA" -- "$SSLQ" t
check "scram_user, appdb, plaintext allowed" ok PGUSER=scram_user PGPASSWORD=scram-pw PGDATABASE=appdb PGSSLMODE=disable -- "$SSLQ" f
check "scram_user, wrong password" fail PGUSER=scram_user PGPASSWORD=nope PGDATABASE=appdb PGSSLMODE=require -- "select 1"
check "md5_user (md5)" ok PGUSER=md5_user PGPASSWORD=md5-pw PGDATABASE=appdb PGSSLMODE=require -- "$SSLQ" t
check "pwdb (password)" ok PGUSER=scram_user PGPASSWORD=scram-pw PGDATABASE=pwdb PGSSLMODE=disable -- "$SSLQ" f
check "sslonly rejects plaintext" fail PGUSER=scram_user PGPASSWORD=scram-pw PGDATABASE=sslonly PGSSLMODE=disable -- "select 1"
check "sslonly over SSL" ok PGUSER=scram_user PGPASSWORD=scram-pw PGDATABASE=sslonly PGSSLMODE=require -- "$SSLQ" t
check "nossl rejects SSL" fail PGUSER=scram_user PGPASSWORD=scram-pw PGDATABASE=nossl PGSSLMODE=require -- "select 1"
check "certdb: certificate authentication, CN=alice" ok PGUSER=alice PGDATABASE=certdb PGSSLMODE=verify-full "$CA" \
  "PGSSLCERT=$WORK/pki/alice.crt" "PGSSLKEY=$WORK/pki/alice.key" -- "select current_user" alice
check "certdb without a client certificate" fail PGUSER=alice PGPASSWORD=alice-pw PGDATABASE=certdb PGSSLMODE=verify-full "$CA" \
  "PGSSLCERT=/nonexistent" "PGSSLKEY=/nonexistent" -- "select 1"
check "vcadb: password and a verified client certificate" ok PGUSER=alice PGPASSWORD=alice-pw PGDATABASE=vcadb PGSSLMODE=verify-full "$CA" \
  "PGSSLCERT=$WORK/pki/alice.crt" "PGSSLKEY=$WORK/pki/alice.key" -- "select current_user" alice

# pgdap itself, through the `connect` example.
printf 'dbengine=postgre\ndbserver=%s\ndbname=appdb\nusername=scram_user\npassword=scram-pw\n' "$ADDR" > "$WORK/dap.cfg"
printf 'dbengine=postgre\ndbserver=%s\ndbname=certdb\nusername=alice\n' "$ADDR" > "$WORK/cert.cfg"
# HOME is the client's (no ~/.postgresql); cargo and rustup keep theirs.
RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
pgdap_check() {
  local what=$1 cfg=$2 out
  shift 2
  # shellcheck disable=SC2086
  if out=$(env "$@" HOME="$WORK" RUSTUP_HOME="$RUSTUP_HOME" CARGO_HOME="$CARGO_HOME" cargo run --quiet $CARGO_FLAGS --example connect -- --config "$cfg" 2>&1) &&
    grep -q '"ssl":true' <<<"$out" && grep -q '"server_verified":true' <<<"$out"; then
    echo "ok   pgdap: $what: $(tail -1 <<<"$out")"
  else
    echo "FAIL pgdap: $what: $out"
    failures=$((failures + 1))
  fi
}
pgdap_check "verify-full, scram" "$WORK/dap.cfg" PGMODE=verify-full PGROOTCA="$WORK/pki/ca.crt"
pgdap_check "verify-full, certificate authentication" "$WORK/cert.cfg" PGMODE=verify-full PGAUTH=cert \
  PGROOTCA="$WORK/pki/ca.crt" PGCERT="$WORK/pki/alice.crt" PGKEY="$WORK/pki/alice.key"

kill -INT "$(cat "$WORK/server.pid")" 2>/dev/null || true
wait "$ns" 2>/dev/null || true
rm -f "$WORK/server.pid"
if [ $failures -ne 0 ]; then
  echo "docker/verify.sh: $failures check(s) failed; the server log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
echo "docker/verify.sh: compose file valid, entrypoint and init scripts work, every check passed"
