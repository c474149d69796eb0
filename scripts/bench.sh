#!/usr/bin/env bash
# Connection benchmark: pgdap vs raw tokio-postgres + postgres-native-tls vs libpq, on a
# throwaway local PostgreSQL 15 (started by `bench --self-test-server`, the test harness),
# for PGMODE disable, require, verify-full and certificate authentication (PGAUTH=cert).
#
#   bash scripts/bench.sh            # ROUNDS=7 N=200 HOLD=50 POOL_N=20000 by default
#   ROUNDS=3 N=100 bash scripts/bench.sh
#
# Each round runs, for every case, N connections one after another (connect, `select 1`,
# close) of each implementation: pgdap, pgdap without the session's encoding set-up
# ("connect only") and raw tokio-postgres + native-tls interleaved connection by
# connection in one process (`bench --compare`), so load changes on the machine hit all
# three alike; libpq (through ctypes) in a process of its own right before or after.
# Reported: the median over rounds of each run's median, p90 and connections per second,
# the median (and range) of the per-round ratios of medians, memory per open connection
# (HOLD connections held open), the pool's checkout+return latency, and pgbench -C.
# Needs PostgreSQL 15 (bash scripts/test.sh installs it), python3 (libpq is driven through
# ctypes, no package needed) and jq. Results: $OUT (default target/bench/results.jsonl)
# and the report on stdout (markdown).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
N=${N:-200}
HOLD=${HOLD:-50}
POOL_N=${POOL_N:-20000}
ADDR=${ADDR:-127.0.0.58}
OUT=${OUT:-target/bench/results.jsonl}
CASES=(disable require verify-full cert)
IMPLS=(pgdap pgdap-connect raw libpq)

for tool in python3 jq; do
  command -v "$tool" >/dev/null || { echo "bench.sh needs $tool" >&2; exit 1; }
done
. scripts/packages.sh
PGBENCH="$(pg_bin_dir || true)/pgbench"
[ -x "$PGBENCH" ] || { echo "bench.sh needs PostgreSQL 12-18 (bash scripts/test.sh installs it)" >&2; exit 1; }

cargo build --release --example bench >&2
BIN=$PWD/target/release/examples/bench
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

WORK=$(mktemp -d /tmp/pgdap-bench.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=scripts/selftest-server.sh
. scripts/selftest-server.sh
start_selftest_server "$WORK" "$BIN" --self-test-server "$WORK/srv" --addr "$ADDR"

# libpq through ctypes: the same loop as the bench example (connect, select 1, close),
# same JSON. Settings come from libpq.env (PGSSLMODE, PGSSLROOTCERT, ...); keepalives as
# pgdap's defaults.
cat > "$WORK/libpq_bench.py" <<'EOF'
import ctypes, ctypes.util, json, sys, time
n, warmup, hold = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pq = ctypes.CDLL(ctypes.util.find_library("pq") or "libpq.so.5")
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
pq.PQsslInUse.argtypes = [ctypes.c_void_p]
conninfo = b"keepalives=1 keepalives_idle=20 keepalives_interval=5 keepalives_count=3 tcp_user_timeout=30000"
def open_one():
    c = pq.PQconnectdb(conninfo)
    if pq.PQstatus(c) != 0:
        sys.exit("libpq: " + pq.PQerrorMessage(c).decode())
    r = pq.PQexec(c, b"select 1")
    if pq.PQresultStatus(r) != 2:  # PGRES_TUPLES_OK
        sys.exit("libpq: select 1 failed: " + pq.PQerrorMessage(c).decode())
    pq.PQclear(r)
    return c
def memory():
    f = dict(l.split(":", 1) for l in open("/proc/self/status"))
    return int(f["VmRSS"].split()[0]), int(f["VmHWM"].split()[0])
ssl = False
for _ in range(max(warmup, 1)):
    c = open_one(); ssl = bool(pq.PQsslInUse(c)); pq.PQfinish(c)
out = {"impl": "libpq"}
if hold:
    (rss0, hwm0) = memory()
    held = [open_one() for _ in range(hold)]
    (rss1, hwm1) = memory()
    for c in held: pq.PQfinish(c)
    out.update(hold=hold, rss_kib_per_conn=round((rss1 - rss0) / hold), hwm_kib_per_conn=round((hwm1 - hwm0) / hold))
times = []
start = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    c = open_one(); pq.PQfinish(c)
    times.append((time.perf_counter() - t) * 1000)
wall = time.perf_counter() - start
times.sort()
med = 0 if not n else (times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2)
p90 = 0 if not n else times[-(-n * 9 // 10) - 1]
out.update(n=n, median_ms=round(med, 4), p90_ms=round(p90, 4), mean_ms=round(sum(times) / max(n, 1), 4),
           conns_per_s=round(n / wall) if wall else 0, ssl=ssl)
print(json.dumps(out))
EOF

run_impl() { # case impl extra-args... -> one JSON line
  local case=$1 impl=$2; shift 2
  local dir="$WORK/srv/$case"
  case "$impl" in
    libpq) (set -a; . "$dir/libpq.env"; python3 "$WORK/libpq_bench.py" "$@") ;;
    pgdap) (set -a; . "$dir/pgdap.env"; "$BIN" --config "$dir/dap.cfg" "$@") ;;
    pgdap-connect) (set -a; . "$dir/pgdap.env"; "$BIN" --config "$dir/dap.cfg" --connect-only "$@") ;;
    raw) (set -a; . "$dir/pgdap.env"; "$BIN" --config "$dir/dap.cfg" --raw "$@") ;;
  esac
}

record() { # kind round case impl json
  jq -c --arg kind "$1" --argjson round "$2" --arg case "$3" --arg impl "$4" \
    '. + {kind: $kind, round: $round, case: $case, impl: $impl}' <<< "$5" >> "$OUT"
}

echo "server: $(head -1 "$WORK/server.out"); $(nproc) cores; rounds=$ROUNDS n=$N" >&2
printf 'select 1;\n' > "$WORK/select1.sql"
for round in $(seq "$ROUNDS"); do
  for case in "${CASES[@]}"; do
    # pgdap, pgdap (connect only) and raw interleaved connection by connection in one
    # process (--compare); libpq in a process of its own, before or after it by turns.
    if [ $((round % 2)) -eq 1 ]; then order=(compare libpq); else order=(libpq compare); fi
    for what in "${order[@]}"; do
      if [ "$what" = libpq ]; then
        line=$(run_impl "$case" libpq "$N" 5 0 | tail -1)
        record latency "$round" "$case" libpq "$line"
      else
        line=$(run_impl "$case" pgdap --compare --n "$N" --warmup 5 | tail -1)
        record latency "$round" "$case" pgdap "$(jq -c .pgdap <<< "$line")"
        record latency "$round" "$case" pgdap-connect "$(jq -c .pgdap_connect <<< "$line")"
        record latency "$round" "$case" raw "$(jq -c .raw <<< "$line")"
        record ratio "$round" "$case" compare "$(jq -c '{ratio_pgdap_raw, ratio_connect_raw}' <<< "$line")"
        echo "round $round $case: $(jq -r '"pgdap \(.pgdap.median_ms) ms, connect-only \(.pgdap_connect.median_ms) ms, raw \(.raw.median_ms) ms, pgdap/raw \(.ratio_pgdap_raw)"' <<< "$line")" >&2
      fi
    done
    # libpq's own connection benchmark, for its connections per second.
    pgb=$( (set -a; . "$WORK/srv/$case/libpq.env"; "$PGBENCH" -n -C -c 1 -t "$N" -f "$WORK/select1.sql" 2>&1) )
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<< "$pgb" | head -1)
    conn=$(sed -n 's/^average connection time = \([0-9.]*\) ms.*/\1/p' <<< "$pgb" | head -1)
    record pgbench "$round" "$case" pgbench "{\"n\": $N, \"tps\": ${tps:-0}, \"avg_connection_ms\": ${conn:-0}}"
  done
  # Pool checkout + return with an idle connection (verify-full; the TLS mode does not
  # matter once connected): the default health check, and a query on every checkout.
  line=$(run_impl verify-full pgdap --pool --n "$POOL_N" --warmup 100 | tail -1)
  record pool "$round" verify-full pool-idle "$line"
  line=$(run_impl verify-full pgdap --pool --pool-check query --n $((POOL_N / 4)) --warmup 100 | tail -1)
  record pool "$round" verify-full pool-query "$line"
  echo "round $round pool: $(jq -r '"median \(.median_ms * 1000) us"' <<< "$line") with query" >&2
done

# Memory per open connection: HOLD connections open at once, three times per case.
for rep in 1 2 3; do
  for case in "${CASES[@]}"; do
    for impl in "${IMPLS[@]}"; do
      if [ "$impl" = libpq ]; then args=(0 5 "$HOLD"); else args=(--n 0 --warmup 5 --hold "$HOLD"); fi
      line=$(run_impl "$case" "$impl" "${args[@]}" | tail -1)
      record memory "$rep" "$case" "$impl" "$line"
    done
  done
done

python3 - "$OUT" "$ROUNDS" "$N" "$HOLD" "$POOL_N" <<'EOF'
import json, statistics as st, sys
path, rounds, n, hold, pool_n = sys.argv[1], *map(int, sys.argv[2:])
rows = [json.loads(l) for l in open(path)]
cases = ["disable", "require", "verify-full", "cert"]
impls = ["pgdap", "pgdap-connect", "raw", "libpq"]
def sel(kind, case, impl):
    return [r for r in rows if r["kind"] == kind and r["case"] == case and r["impl"] == impl]
def med(kind, case, impl, key):
    v = [r[key] for r in sel(kind, case, impl) if key in r]
    return st.median(v) if v else float("nan")
def compare_ratio(case, key):
    v = [r[key] for r in rows if r["kind"] == "ratio" and r["case"] == case]
    return (st.median(v), min(v), max(v)) if v else (float("nan"),) * 3
def ratio(case, a, b):
    if (a, b) == ("pgdap", "raw"):
        return compare_ratio(case, "ratio_pgdap_raw")
    if (a, b) == ("pgdap-connect", "raw"):
        return compare_ratio(case, "ratio_connect_raw")
    by_round = {}
    for r in rows:
        if r["kind"] == "latency" and r["case"] == case and r["impl"] in (a, b):
            by_round.setdefault(r["round"], {})[r["impl"]] = r["median_ms"]
    v = [x[a] / x[b] for x in by_round.values() if a in x and b in x and x[b] > 0]
    return (st.median(v), min(v), max(v)) if v else (float("nan"),) * 3
label = {"disable": "disable", "require": "require", "verify-full": "verify-full", "cert": "verify-full + PGAUTH=cert"}
print(f"{rounds} rounds x {n} connections per implementation and case; medians over rounds.\n")
print("| case | pgdap | pgdap (connect only) | raw tokio-postgres + native-tls | libpq |")
print("|---|---|---|---|---|")
for c in cases:
    cells = [f"{med('latency', c, i, 'median_ms'):.2f} ms / {med('latency', c, i, 'p90_ms'):.2f} ms / {med('latency', c, i, 'conns_per_s'):.0f}/s" for i in impls]
    print(f"| {label[c]} | " + " | ".join(cells) + " |")
print("\n(median / p90 / connections per second, each connection: connect, `select 1`, close)\n")
print("| case | pgdap / raw | pgdap (connect only) / raw | libpq / raw | pgdap / libpq |")
print("|---|---|---|---|---|")
for c in cases:
    cells = []
    for a, b in [("pgdap", "raw"), ("pgdap-connect", "raw"), ("libpq", "raw"), ("pgdap", "libpq")]:
        m, lo, hi = ratio(c, a, b)
        cells.append(f"{m:.3f} ({lo:.2f}-{hi:.2f})")
    print(f"| {label[c]} | " + " | ".join(cells) + " |")
print("\n(median of the per-round ratios of medians; range over rounds in parentheses)\n")
print(f"| case | pgdap | raw | libpq | pgbench -C |")
print("|---|---|---|---|---|")
for c in cases:
    tps = med("pgbench", c, "pgbench", "tps")
    avg = med("pgbench", c, "pgbench", "avg_connection_ms")
    print(f"| {label[c]} | {med('latency', c, 'pgdap', 'conns_per_s'):.0f}/s | {med('latency', c, 'raw', 'conns_per_s'):.0f}/s | {med('latency', c, 'libpq', 'conns_per_s'):.0f}/s | {tps:.0f} tps, avg connection {avg:.2f} ms |")
print("\n(connections per second, one client)\n")
print(f"Memory per open connection ({hold} held open; VmRSS delta / {hold}, median of 3; Rust heap for the Rust clients):\n")
print("| case | pgdap | raw | libpq |")
print("|---|---|---|---|")
for c in cases:
    def m(i):
        s = f"{med('memory', c, i, 'rss_kib_per_conn'):.0f} KiB"
        h = med('memory', c, i, 'heap_kib_per_conn')
        return s + (f" (heap {h:.1f} KiB)" if h == h else "")
    print(f"| {label[c]} | {m('pgdap')} | {m('raw')} | {m('libpq')} |")
print()
for impl, what in [("pool-idle", "default health check (select 1 only after 500 ms idle)"), ("pool-query", "select 1 on every checkout")]:
    v = [r for r in rows if r["kind"] == "pool" and r["impl"] == impl]
    print(f"Pool checkout + return, {what}: median {st.median(r['median_ms'] for r in v) * 1000:.2f} us, "
          f"p90 {st.median(r['p90_ms'] for r in v) * 1000:.2f} us (median over {len(v)} rounds of {v[0]['n']} each)")
EOF
