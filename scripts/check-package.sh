#!/usr/bin/env bash
# The crate as crates.io would get it: `cargo package` (which builds the packaged crate)
# must print no warning, the package must hold no CI, script, docker, tool or fuzz file
# and no private key, and `cargo publish --dry-run` must pass.
#   bash scripts/check-package.sh [--allow-dirty]   (--allow-dirty for uncommitted work)
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

cargo package --locked "$@" 2>&1 | tee "$log"
if grep -qi '^warning' "$log"; then
  echo "check-package: cargo package printed warnings (above)" >&2
  exit 1
fi
list=$(cargo package --list --locked "$@")
if grep -E '^(\.ci|scripts|docker|tools|fuzz)/|\.key$' <<<"$list"; then
  echo "check-package: the package carries the files above" >&2
  exit 1
fi
for f in LICENSE-MIT LICENSE-APACHE README.md src/lib.rs data/encoding/tables.rs; do
  grep -qx "$f" <<<"$list" || { echo "check-package: $f is not in the package" >&2; exit 1; }
done
# The package was just verified (built); the dry run checks the upload itself.
cargo publish --dry-run --locked --no-verify "$@" 2>&1 | tee "$log"
# "aborting upload due to dry run" is how every dry run ends.
if grep -i '^warning' "$log" | grep -qv 'aborting upload due to dry run'; then
  echo "check-package: cargo publish --dry-run printed warnings (above)" >&2
  exit 1
fi
echo "check-package: OK ($(wc -l <<<"$list") files)"
