#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL servers (the distribution's, any of
# 12-18) started by the tests.
# On a fresh Debian/Ubuntu machine it first installs every program the tests run (as root;
# otherwise it prints the `sudo apt-get install` line and stops): the list is
# docs/requirements.md, the checks scripts/packages.sh's need_test_packages.
# Every cargo test run goes on after a failure (--no-fail-fast) and all three run; the
# script exits non-zero when anything failed, and its last two lines count the test
# binaries and the tests that passed and failed ("tests: N passed, M failed").
set -euo pipefail
cd "$(dirname "$0")/.."

# Every feature but `vendored` and `rds-iam`: the tests compare pgdap with psql, which
# links the system OpenSSL, so pgdap links the same one (a vendored OpenSSL 3.6 reports a
# refused client certificate differently; scripts/windows.sh builds `vendored` in CI).
# `rds-iam` is the rds_iam example's AWS SDK (two minutes of build, Rust 1.94.1); CI
# builds, lints and tests that example on its own (.ci/run).
features=$(awk '/^\[features\]/ {f=1; next} /^\[/ {f=0} f && /^[A-Za-z0-9_-]+ *=/ {print $1}' Cargo.toml |
  grep -vx -e default -e vendored -e rds-iam | paste -sd, -)
if [ "${1:-}" = --print-features ]; then
  echo "$features"
  exit 0
fi

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust first (https://rustup.rs)" >&2
  exit 1
fi
. scripts/packages.sh
need_test_packages
install_needed
PG_BIN_DIR=$(pg_bin_dir)
echo "PostgreSQL server and psql: $PG_BIN_DIR" >&2
echo "programs: $("$PG_BIN_DIR/psql" --version), $(openssl version), node $(node --version), npm $(npm --version), $(python3 --version), $(/usr/sbin/pgbouncer --version 2>&1 | head -1), $(/usr/sbin/haproxy -v 2>&1 | head -1)" >&2

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
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
log=$target_dir/test.sh.log
: > "$log"
echo "cargo's output is also in $log" >&2
failed_runs=()
# cargo test ARGS...: its output shown and appended to the log; a failure is remembered.
cargo_test() {
  echo "== cargo test $*" | tee -a "$log"
  local rc=0
  cargo test "$@" 2>&1 | tee -a "$log" || rc=${PIPESTATUS[0]}
  # The end of this run, for the count below.
  echo "== exit $rc" >> "$log"
  [ "$rc" -eq 0 ] || failed_runs+=("cargo test $* (exit $rc)")
}
cargo_test --no-fail-fast --features "$features" --all-targets "$@"
cargo_test --no-fail-fast --features "$features" --doc
# The exhaustive encoding check (every code point of every encoding against the server,
# a few minutes) is kept out of the default run and run here: the ignored tests of the
# `encoding` module of the tests/server binary (its other ignored tests: reliability's
# child half, run only as its parent's child, and windows::, run by scripts/windows.sh
# on the Windows build).
cargo_test --no-fail-fast --features "$features" --test server -- --ignored encoding::

# Count libtest's "test result:" lines, one per test binary (doc tests included), the
# last one of each binary (a failing test's captured output may hold a child's). A binary
# cargo reports as failed ("error: test failed, to rerun pass ...") without such a line
# (it crashed), or a cargo run that failed without a failing binary (a build error),
# counts as one failed binary and one failed test. A binary without libtest's harness
# (benches/codecs.rs) that succeeds counts as a passed binary of no tests.
read -r bin_ok bin_failed tests_ok tests_failed < <(awk '
  function close_binary() {
    if (!open) return
    failed = (result == "failed") || rerun
    if (failed) { bf++; if (result == "") tf++ } else { bo++ }
    tp += p; tf += f; run_failures += failed; open = 0
  }
  /^== cargo test / { close_binary(); run_failures = 0; next }
  /^== exit / { close_binary(); if ($3 != 0 && run_failures == 0) { bf++; tf++ }; next }
  /^ +Running [^`]/ || /^ +Doc-tests / { close_binary(); open = 1; result = ""; rerun = 0; p = 0; f = 0; next }
  /^error: test failed, to rerun pass / { rerun = 1; next }
  open && /^test result: / {
    result = ($3 == "ok.") ? "ok" : "failed"
    for (i = 4; i < NF; i++) {
      if ($(i + 1) ~ /^passed;?$/) p = $i
      if ($(i + 1) ~ /^failed;?$/) f = $i
    }
  }
  END { close_binary(); printf "%d %d %d %d\n", bo, bf, tp, tf }
' "$log")
if [ ${#failed_runs[@]} -gt 0 ]; then
  printf 'test.sh: FAILED: %s\n' "${failed_runs[@]}"
fi
echo "binaries: $bin_ok passed, $bin_failed failed"
echo "tests: $tests_ok passed, $tests_failed failed"
[ ${#failed_runs[@]} -eq 0 ]
