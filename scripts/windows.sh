#!/usr/bin/env bash
# Builds pgdap's `connect` example for Windows (x86_64-pc-windows-gnu, OpenSSL from source
# through the `vendored` feature) and runs it under Wine against real PostgreSQL 15 servers
# on this machine (tests/server/windows.rs), comparing every case with the Linux `connect` example
# and psql (libpq 15). See docs/windows.md for the cases and the Wine caveats.
#
#   bash scripts/windows.sh            # install what is missing, build, prepare Wine, test
#   bash scripts/windows.sh --build    # only build connect.exe and prepare the Wine prefix
#
# Installs when missing (Debian/Ubuntu, as root): gcc-mingw-w64-x86-64, wine64, the rust-std
# of x86_64-pc-windows-gnu (rustup). Only the `connect` example is built for Windows: the
# vendored OpenSSL dominates the build and the other examples add nothing the test uses.
#
# Wine 8 (Debian bookworm) lacks bcryptprimitives.dll!ProcessPrng, which Rust's standard
# library imports for random numbers; the script builds a small shim DLL from the C source
# below (ProcessPrng calling RtlGenRandom, i.e. advapi32!SystemFunction036) and puts it in
# the Wine prefix's system32.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-pc-windows-gnu
build_only=false
[[ ${1:-} == --build ]] && build_only=true
started=$SECONDS
step() { echo "windows.sh: [$((SECONDS - started))s] $*" >&2; }

# --- tools -------------------------------------------------------------------------------
missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
wine=$(command -v wine64 || true)
[[ -z $wine && -x /usr/lib/wine/wine64 ]] && wine=/usr/lib/wine/wine64
[[ -z $wine ]] && missing+=(wine64)
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
fi
if ! rustup target list --installed | grep -qx "$target"; then
  step "adding the $target standard library"
  rustup target add "$target" >/dev/null
fi
wineserver=$(command -v wineserver || echo /usr/lib/wine/wineserver64)
[[ -x $wineserver ]] || wineserver=/usr/lib/wine/wineserver

# --- build -------------------------------------------------------------------------------
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
step "cargo build --release --example connect --target $target --features vendored"
CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
  CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc \
  AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar \
  cargo build --release --example connect --target "$target" --features vendored
exe=$target_dir/$target/release/examples/connect.exe
[[ -f $exe ]] || { echo "windows.sh: $exe was not built" >&2; exit 1; }

# --- Wine prefix ---------------------------------------------------------------------------
export WINEPREFIX=${PGDAP_WINEPREFIX:-$target_dir/wine}
export WINEARCH=win64 WINEDEBUG=-all
# No Mono/Gecko installers (not needed, and they would prompt); our ProcessPrng shim first.
export WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives=n,b"
mkdir -p "$WINEPREFIX"
if [[ ! -f $WINEPREFIX/system.reg ]]; then
  step "creating the Wine prefix $WINEPREFIX"
  "$wine" wineboot --init >/dev/null 2>&1
  "$wineserver" -w
fi
shim_dir=$target_dir/windows-shim
mkdir -p "$shim_dir"
cat >"$shim_dir/processprng.c" <<'EOF'
/* bcryptprimitives.dll for Wine 8: Rust's std (1.78+) imports ProcessPrng, which Wine 8
 * does not implement. Same contract: fill the buffer with random bytes, always TRUE. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
EOF
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$shim_dir/bcryptprimitives.dll" \
  "$shim_dir/processprng.c" -ladvapi32
cp "$shim_dir/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"

# %APPDATA% as Windows and as this machine see it, for tests/server/windows.rs.
appdata=$("$wine" cmd /c 'echo %APPDATA%' 2>/dev/null | tr -d '\r')
appdata_unix=$("$wine" winepath -u "$appdata" 2>/dev/null | tr -d '\r')
[[ -d $appdata_unix ]] || { echo "windows.sh: %APPDATA% ($appdata) not found in $WINEPREFIX" >&2; exit 1; }
step "smoke test: connect.exe under Wine"
if ! "$wine" "$exe" 2>"$shim_dir/smoke.err" >/dev/null; then
  # Usage error (exit 2) is the expected answer without arguments; a loader failure is not.
  if ! grep -q usage "$shim_dir/smoke.err"; then
    cat "$shim_dir/smoke.err" >&2
    echo "windows.sh: connect.exe does not start under Wine" >&2
    exit 1
  fi
fi
cat >"$WINEPREFIX/pgdap-windows.env" <<EOF
prefix=$WINEPREFIX
wine=$wine
wineserver=$wineserver
exe=$exe
appdata=$appdata
appdata_unix=$appdata_unix
EOF
step "ready: $WINEPREFIX/pgdap-windows.env"
$build_only && exit 0

# --- the Windows cases ---------------------------------------------------------------------
step "cargo test --test server -- --ignored windows::"
PGDAP_WINDOWS_ENV="$WINEPREFIX/pgdap-windows.env" \
  cargo test --test server -- --ignored windows:: --nocapture --test-threads 1
"$wineserver" -k 2>/dev/null || true
step "done"
