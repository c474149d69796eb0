# Sourced by scripts/bench.sh and scripts/roundtrips.sh: starts a self-test server
# example (`bench --self-test-server`, `roundtrips`) in the background and waits until it
# prints `ready`. The example keeps PostgreSQL until its stdin, a FIFO held open on fd 3
# here, closes; the EXIT trap closes it, waits for the example and removes $WORK.
#
#   start_selftest_server "$WORK" COMMAND [ARGS...]   # output in $WORK/server.out
start_selftest_server() {
  local work=$1
  shift
  mkfifo "$work/ctl"
  "$@" < "$work/ctl" > "$work/server.out" 2>&1 &
  SERVER_PID=$!
  exec 3> "$work/ctl"
  SELFTEST_WORK=$work
  trap stop_selftest_server EXIT
  for _ in $(seq 240); do
    grep -q '^ready$' "$work/server.out" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$work/server.out" >&2; exit 1; }
    sleep 0.5
  done
  echo "server did not start" >&2
  cat "$work/server.out" >&2
  exit 1
}

stop_selftest_server() {
  exec 3>&- || true
  wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$SELFTEST_WORK"
}
