#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after another, each for SECONDS (default 60).
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]      # all targets when none is named
#   bash scripts/fuzz.sh --replay [TARGET...]       # CI: each seed corpus once, no fuzzing
#
# --replay runs every input of fuzz/corpus/<target> through its target once (libFuzzer's
# -runs=0), so a committed input that crashes again fails CI; it installs cargo-fuzz when
# it is missing and builds without a sanitizer unless FUZZ_SANITIZER says otherwise.
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the nightly flags
# cargo-fuzz passes are accepted through RUSTC_BOOTSTRAP=1. Environment:
#   FUZZ_SANITIZER   address (default) or none (faster, no leak/ASan checks)
#   FUZZ_LOG_DIR     where the per-target logs go (default fuzz/target/logs)
# New corpus entries go to fuzz/target/corpus/<target> (not committed); the seed corpus
# fuzz/corpus/<target> is only read. A crash leaves its input in fuzz/artifacts/<target>/
# and makes the script exit non-zero after the remaining targets have run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

replay=false
if [ "${1:-}" = "--replay" ]; then
  replay=true
  shift
  seconds=0
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >&2
  fi
else
  seconds="${1:-60}"
  shift || true
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
if $replay; then
  sanitizer="${FUZZ_SANITIZER:-none}"
else
  sanitizer="${FUZZ_SANITIZER:-address}"
fi
log_dir="${FUZZ_LOG_DIR:-$PWD/target/logs}"
mkdir -p "$log_dir"
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

cargo fuzz build -O -s "$sanitizer" >/dev/null

failed=()
if $replay; then
  for target in "${targets[@]}"; do
    log="$log_dir/replay-$target.log"
    count=$(find "corpus/$target" -type f | wc -l)
    if [ "$count" -eq 0 ]; then
      echo "   $target: FAILED: corpus/$target is empty" && failed+=("$target") && continue
    fi
    if cargo fuzz run -O -s "$sanitizer" "$target" "corpus/$target" -- -runs=0 -timeout=10 \
      >"$log" 2>&1; then
      echo "   $target: $count seed inputs replayed"
    else
      echo "   $target: FAILED (see $log)"
      grep -E 'panicked|SUMMARY|ERROR' "$log" | head -5 | sed 's/^/   /' || true
      failed+=("$target")
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: replay failed: ${failed[*]}" >&2
    exit 1
  fi
  echo "fuzz.sh: every seed corpus replayed without a crash"
  exit 0
fi
for target in "${targets[@]}"; do
  work="target/corpus/$target"
  mkdir -p "$work"
  log="$log_dir/fuzz-$target.log"
  echo "== $target: ${seconds}s, sanitizer $sanitizer, log $log"
  if cargo fuzz run -O -s "$sanitizer" "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1; then
    grep -E '^Done|stat::number_of_executed_units|stat::peak_rss_mb' "$log" | sed 's/^/   /'
  else
    echo "   FAILED (see $log and fuzz/artifacts/$target/)"
    grep -E 'panicked|SUMMARY|ERROR' "$log" | head -5 | sed 's/^/   /' || true
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed targets: ${failed[*]}" >&2
  exit 1
fi
echo "all targets ran ${seconds}s without a crash, panic, leak or hang"
