#!/usr/bin/env bash
# Round trips per connection, per sslmode: pgdap, pgdap without the session set-up
# ("connect only"), raw tokio-postgres + postgres-native-tls, and libpq (ctypes), through a
# loopback proxy that delays every chunk DELAY_MS in each direction (examples/roundtrips.rs).
#
#   bash scripts/roundtrips.sh            # DELAY_MS=20 N=5
#   PG18=1 bash scripts/roundtrips.sh     # PostgreSQL 18 and libpq 18 (npm package):
#                                         # require, and direct TLS (PGSSLNEGOTIATION=direct)
#
# Two measures of each connection (connect, `select 1`, close):
#  - counted: the proxy's count of client flights the server answered (exact, per connection);
#  - timed:   the median latency of N connections (the bench example's, or the same loop in
#             libpq) divided by the round-trip time 2 x DELAY_MS.
# Both include the `select 1` (one round trip); Terminate is not answered and not counted.
# Addresses: server 127.0.0.130, proxy 127.0.0.131 (SERVER_ADDR, PROXY_ADDR).
set -euo pipefail
cd "$(dirname "$0")/.."

DELAY_MS=${DELAY_MS:-20}
N=${N:-5}
SERVER_ADDR=${SERVER_ADDR:-127.0.0.130}
PROXY_ADDR=${PROXY_ADDR:-127.0.0.131}
CASES=(disable require verify-full cert)
PG18_ARG=()
LIBPQ=${LIBPQ:-}
if [ -n "${PG18:-}" ]; then
  CASES=(require direct)
  PG18_ARG=(--pg18)
  LIBPQ=$(bash tools/libpq18.sh)/lib/libpq.so.5
fi
read -r -a IMPLS <<< "${IMPLS:-pgdap pgdap-connect raw libpq}"

command -v jq >/dev/null || { echo "roundtrips.sh needs jq" >&2; exit 1; }
cargo build --release --example bench --example roundtrips >&2
BIN=${BENCH_BIN:-$PWD/target/release/examples/bench}  # BENCH_BIN: try a modified build
RTT=$PWD/target/release/examples/roundtrips

WORK=$(mktemp -d /tmp/pgdap-rtt.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=scripts/selftest-server.sh
. scripts/selftest-server.sh
start_selftest_server "$WORK" "$RTT" "$WORK/srv" --server "$SERVER_ADDR" --proxy "$PROXY_ADDR" \
  --delay-ms "$DELAY_MS" "${PG18_ARG[@]}"
LOG=$WORK/srv/proxy.jsonl
touch "$LOG"

cat > "$WORK/libpq.py" <<'EOF'
import ctypes, ctypes.util, json, sys, time
n, warmup = int(sys.argv[1]), int(sys.argv[2])
import os
pq = ctypes.CDLL(os.environ.get("LIBPQ") or ctypes.util.find_library("pq") or "libpq.so.5")
pq.PQconnectdb.restype = ctypes.c_void_p
pq.PQconnectdb.argtypes = [ctypes.c_char_p]
pq.PQstatus.argtypes = [ctypes.c_void_p]
pq.PQerrorMessage.argtypes = [ctypes.c_void_p]
pq.PQerrorMessage.restype = ctypes.c_char_p
pq.PQexec.restype = ctypes.c_void_p
pq.PQexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
pq.PQresultStatus.argtypes = [ctypes.c_void_p]
pq.PQclear.argtypes = [ctypes.c_void_p]
pq.PQfinish.argtypes = [ctypes.c_void_p]
def one():
    c = pq.PQconnectdb(b"")
    if pq.PQstatus(c) != 0:
        sys.exit("libpq: " + pq.PQerrorMessage(c).decode())
    r = pq.PQexec(c, b"select 1")
    if pq.PQresultStatus(r) != 2:
        sys.exit("libpq: select 1 failed")
    pq.PQclear(r)
    pq.PQfinish(c)
for _ in range(warmup):
    one()
times = []
for _ in range(n):
    t = time.perf_counter(); one(); times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({"impl": "libpq", "n": n, "median_ms": times[n // 2]}))
EOF

run_impl() { # case impl -> JSON line with median_ms
  local dir="$WORK/srv/$1"
  case "$2" in
    libpq) (set -a; . "$dir/libpq.env"; LIBPQ=$LIBPQ python3 "$WORK/libpq.py" "$N" 1) ;;
    pgdap) (set -a; . "$dir/pgdap.env"; "$BIN" --config "$dir/dap.cfg" --n "$N" --warmup 1) ;;
    pgdap-connect) (set -a; . "$dir/pgdap.env"; "$BIN" --config "$dir/dap.cfg" --connect-only --n "$N" --warmup 1) ;;
    raw) (set -a; . "$dir/pgdap.env"; "$BIN" --config "$dir/dap.cfg" --raw --n "$N" --warmup 1) ;;
  esac | tail -1
}

echo "$(head -1 "$WORK/server.out"); N=$N"
echo
echo "| case | implementation | round trips (counted, median) | latency median | latency / RTT |"
echo "|---|---|---|---|---|"
for case in "${CASES[@]}"; do
  for impl in "${IMPLS[@]}"; do
    if [ "$case" = direct ] && [ "$impl" = raw ]; then
      echo "| $case | $impl | - | - | (tokio-postgres has no direct TLS) |"
      continue
    fi
    before=$(wc -l < "$LOG")
    json=$(run_impl "$case" "$impl")
    sleep $(( DELAY_MS * 3 / 1000 + 1 ))  # let the proxy log the last connection
    counted=$(tail -n +"$((before + 1))" "$LOG" | jq -s '[.[].round_trips] | sort | .[length/2|floor]')
    ms=$(jq -r '.median_ms' <<< "$json")
    ratio=$(jq -rn --argjson ms "$ms" --argjson d "$DELAY_MS" '$ms / (2 * $d) * 100 | round / 100')
    echo "| $case | $impl | $counted | $(printf '%.1f' "$ms") ms | $ratio |"
    tail -n 1 "$LOG" | jq -r --arg c "$case" --arg i "$impl" '"\($c) \($i): \(.trace)"' >> "$WORK/traces"
  done
done
echo
echo "Last connection of each, as the proxy read it (C/S: client/server chunk, bytes@ms since its first):"
echo
sed 's/^/    /' "$WORK/traces"
