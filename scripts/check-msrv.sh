#!/usr/bin/env bash
# Builds every target with every feature with the toolchain of Cargo.toml's rust-version
# and the locked dependencies: the declared minimum must really build. The toolchain is
# installed with rustup when missing; where it cannot be downloaded, the check fails: a
# check that cannot run must not pass.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$msrv" ] || { echo "check-msrv: no rust-version in Cargo.toml" >&2; exit 1; }
if ! rustup run "$msrv" rustc --version >/dev/null 2>&1; then
  if ! timeout 600 rustup toolchain install "$msrv" --profile minimal >&2; then
    echo "check-msrv: FAILED: the Rust $msrv toolchain cannot be installed on this machine" >&2
    exit 1
  fi
fi
# The library with every feature but `vendored` (OpenSSL's own C build adds nothing to a
# Rust version check and would double CI's time for it).
# The suite's features: not `rds-iam`, which only the rds_iam example uses and whose AWS
# SDK has its own, newer minimum (Rust 1.94.1 for aws-sdk-rds 1.159).
features=$(bash scripts/test.sh --print-features)
echo "check-msrv: cargo +$msrv check --locked --lib --features $features" >&2
cargo "+$msrv" check --locked --lib --features "$features" --target-dir target/msrv
