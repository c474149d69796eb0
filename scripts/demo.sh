#!/usr/bin/env bash
# The README's first command: on a fresh Debian/Ubuntu machine with Rust, installs what the
# demo needs (as root; otherwise prints the exact `sudo apt-get install` line and exits 1),
# then runs `cargo run --example demo`: a throwaway PostgreSQL with SSL and generated
# certificates, connected through pgdap in every PGMODE next to psql.
#
#   bash scripts/demo.sh [--addr 127.0.0.x]
#   PGDAP_FEATURES=vendored bash scripts/demo.sh   # build OpenSSL from source, no libssl-dev
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust first (https://rustup.rs)" >&2
  exit 1
fi
case " ${PGDAP_FEATURES:-} " in *vendored*) need_build_packages vendored ;; *) need_build_packages ;; esac
need_postgresql
install_needed

features=()
[ -z "${PGDAP_FEATURES:-}" ] || features=(--features "$PGDAP_FEATURES")
exec cargo run "${features[@]}" --example demo -- "$@"
