#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after another, each for SECONDS (default 60).
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]      # all targets when none is named
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the nightly flags
# cargo-fuzz passes are accepted through RUSTC_BOOTSTRAP=1. Environment:
#   FUZZ_SANITIZER   address (default) or none (faster, no leak/ASan checks)
#   FUZZ_LOG_DIR     where the per-target logs go (default fuzz/target/logs)
# New corpus entries go to fuzz/target/corpus/<target> (not committed); the seed corpus
# fuzz/corpus/<target> is only read. A crash leaves its input in fuzz/artifacts/<target>/
# and makes the script exit non-zero after the remaining targets have run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
sanitizer="${FUZZ_SANITIZER:-address}"
log_dir="${FUZZ_LOG_DIR:-$PWD/target/logs}"
mkdir -p "$log_dir"
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

cargo fuzz build -O -s "$sanitizer" >/dev/null

failed=()
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
