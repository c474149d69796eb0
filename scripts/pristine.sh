#!/usr/bin/env bash
# CI's run of the README's two Quick start commands, in order and as written, on a
# pristine machine: a Debian bookworm root made by `debootstrap --variant=minbase` plus
# only what "a fresh machine with Rust installed" means (gcc, libc6-dev, git,
# ca-certificates, and this machine's Rust toolchain, mounted read-only), entered with
# chroot. Of this machine the root sees only the repository, the toolchain, /proc, /sys,
# /dev (with a /dev/shm of its own), copies of its CA certificates and resolv.conf, and
# the network.
#
#   bash scripts/pristine.sh              (as root)
#   bash scripts/pristine.sh 'CMD' ...    other commands in the same kind of root
#
# The root is built once into $PGDAP_PRISTINE_CACHE (/var/cache/pgdap/pristine-bookworm)
# and never changed afterwards (delete it to rebuild, e.g. for Debian's updates): each run
# works on a throwaway overlay of it (a copy where overlayfs is not permitted) in a
# private mount namespace, with an empty directory mounted over the repository's target/
# (a cold build; the host's build is neither used nor touched) and cargo's home (registry
# downloads) cached in $PGDAP_PRISTINE_CARGO_HOME (/var/cache/pgdap/pristine-cargo-home).
#
# Network ($PGDAP_PRISTINE_NET): `host` (default) shares this machine's network, as
# containers here use host networking on loopback addresses; then nothing here may listen
# on 127.0.0.x:5432 (checked first: in CI nothing does). `isolated` gives the root a
# network namespace of its own, reaching out through slirp4netns (whose virtual network
# uses a private range inside the namespace), for a developer machine whose own test
# servers are up.
# Target directory ($PGDAP_PRISTINE_TARGET): `throwaway` (default) mounts an empty
# directory over the repository's target/; `repo` builds in the repository's own target/
# (CI: the fresh clone's is empty, so the build is as cold, and the host steps after it
# reuse what it built).
# Installed on this machine when missing: debootstrap (to build the root), slirp4netns
# and iproute2 (isolated network).
#
# At the end, whatever happened: every process whose root is the throwaway root, or that
# lives in the run's mount namespace, is killed by PID; everything is unmounted (lazily
# as a last resort); the copy is removed once nothing is mounted under it. The last line
# is the step's duration in minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${PGDAP_PRISTINE_CACHE:-/var/cache/pgdap/pristine-bookworm}
CARGO_CACHE=${PGDAP_PRISTINE_CARGO_HOME:-/var/cache/pgdap/pristine-cargo-home}
NET=${PGDAP_PRISTINE_NET:-host}
TARGET_MODE=${PGDAP_PRISTINE_TARGET:-throwaway}
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
# What "Rust installed" means besides the toolchain (README.md, docs/requirements.md).
BASE_PACKAGES="gcc libc6-dev git ca-certificates"
STAMP="$CACHE.done"
STAMP_TEXT="debootstrap --variant=minbase $SUITE $MIRROR + $BASE_PACKAGES"
# The run's start (seconds since the epoch), shared with the namespace's part.
export PGDAP_PRISTINE_T0=${PGDAP_PRISTINE_T0:-$(date +%s)}

minutes() { awk -v s="$1" 'BEGIN { printf "%.1f", s / 60 }'; }
say() { echo "pristine.sh: [$(minutes $(($(date +%s) - PGDAP_PRISTINE_T0))) min] $*" >&2; }

# Every mount point at or under $1 (this namespace's view), deepest first.
mounts_under() {
  awk -v r="$1" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Unmounts everything at or under $1: in order, then lazily what is still busy.
unmount_all() {
  local m round
  for round in 1 2 3; do
    while read -r m; do
      [ -n "$m" ] || continue
      umount "$m" 2>/dev/null || { [ "$round" -lt 3 ] || umount -l "$m" 2>/dev/null; } || true
    done < <(mounts_under "$1")
    [ -z "$(mounts_under "$1")" ] && return 0
    sleep 1
  done
  echo "pristine.sh: still mounted under $1:" >&2
  mounts_under "$1" >&2
  return 1
}

# Kills (by PID: TERM, then KILL) every process for which `$1 PID` succeeds.
kill_matching() {
  local test=$1 sig p pids round
  for round in 1 2 3 4 5 6; do
    pids=()
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" != $$ ] && [ "$p" != "$BASHPID" ] && "$test" "$p" && pids+=("$p")
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    sig=TERM
    [ "$round" -gt 1 ] && sig=KILL
    for p in "${pids[@]}"; do
      echo "pristine.sh: kill -$sig $p ($(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-100))" >&2
      kill -s "$sig" "$p" 2>/dev/null || true
    done
    sleep 2
  done
}

# ----------------------------------------------------------------------------------------
# The parts run in a private mount namespace (`unshare --mount`): every mount made there
# vanishes with the namespace, so none can be left on the host, and from the host the
# throwaway directory never shows the repository or the toolchain (removing it cannot
# reach them).
# ----------------------------------------------------------------------------------------

# __build DIR: debootstrap into DIR, then the base packages.
if [ "${1:-}" = __build ]; then
  dir=$2
  debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR" >&2
  # As a fresh installation: security and point-release updates.
  cat > "$dir/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR}-security $SUITE-security main
EOF
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$dir/etc/hosts"
  cp -L /etc/resolv.conf "$dir/etc/resolv.conf"
  mount -t proc proc "$dir/proc"
  chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $BASE_PACKAGES && apt-get clean" >&2
  umount "$dir/proc"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir/etc/resolv.conf"
  exit 0
fi

# __inside TMP SYSROOT COMMAND...: the throwaway root, its mounts, the checks, the commands.
if [ "${1:-}" = __inside ]; then
  tmp=$2 sysroot=$3
  shift 3
  root=$tmp/root
  # Tells the host side that the namespaces exist (and which mount namespace is ours).
  readlink /proc/self/ns/mnt > "$tmp/mntns"
  # shellcheck disable=SC2329 # called by kill_matching
  is_rooted() { # the process's root is the throwaway root (or below it)
    local r
    r=$(readlink "/proc/$1/root" 2>/dev/null) || return 1
    [ "$r" = "$root" ] || [ "${r#"$root"/}" != "$r" ]
  }
  # shellcheck disable=SC2329 # the EXIT trap
  inside_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    say "cleaning up: processes whose root is $root, then the mounts"
    kill_matching is_rooted
    unmount_all "$tmp" || rc=1
    exit "$rc"
  }
  trap inside_cleanup EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  if [ "$NET" = isolated ]; then
    for _ in $(seq 1 300); do [ -e "$tmp/net-ready" ] && break; sleep 0.1; done
    [ -e "$tmp/net-ready" ] || { echo "pristine.sh: the network namespace was not set up" >&2; exit 1; }
    ip link set lo up
  fi
  mkdir -p "$root" "$tmp/upper" "$tmp/work" "$tmp/target"
  if mount -t overlay overlay -o "lowerdir=$CACHE,upperdir=$tmp/upper,workdir=$tmp/work" "$root" 2>/dev/null; then
    say "throwaway root: overlayfs on $CACHE (changes in $tmp/upper)"
  else
    say "overlayfs not permitted here: copying $CACHE to $root"
    cp -a "$CACHE/." "$root/"
  fi
  mount -t proc proc "$root/proc"
  mount -t sysfs -o ro sysfs "$root/sys" 2>/dev/null || mount --rbind /sys "$root/sys"
  mount --bind /dev "$root/dev"
  mount --bind /dev/pts "$root/dev/pts"
  # PostgreSQL's shared memory: a /dev/shm of its own.
  mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
  mkdir -p "$root$REPO" "$root$sysroot" "$root/root/.cargo"
  mount --bind "$REPO" "$root$REPO"
  mkdir -p "$REPO/target"
  if [ "$TARGET_MODE" != repo ]; then
    mount --bind "$tmp/target" "$root$REPO/target"
  fi
  mount --bind "$sysroot" "$root$sysroot"
  mount -o remount,bind,ro "$root$sysroot"
  mount --bind "$CARGO_CACHE" "$root/root/.cargo"
  # The machine's DNS settings (a loopback resolver is slirp4netns' 10.0.2.3 in an
  # isolated network) and TLS trust (its own CAs, e.g. an egress proxy's).
  if [ "$NET" = isolated ]; then
    sed -E 's/^nameserver[[:space:]]+(127\.[0-9.]+|::1)[[:space:]]*$/nameserver 10.0.2.3/' /etc/resolv.conf > "$root/etc/resolv.conf"
  else
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  fi
  # As an installed machine's: its host name resolves (package scripts look it up).
  h=$(uname -n)
  grep -qw -- "$h" "$root/etc/hosts" || printf '127.0.1.1\t%s\n' "$h" >> "$root/etc/hosts"
  extra_ca=()
  if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
    cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
    chroot "$root" /usr/sbin/update-ca-certificates >&2
    # npm's node trusts its own CA list, not the system's, unless told.
    extra_ca=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
  fi
  in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
      TERM="${TERM:-dumb}" PATH="$sysroot/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      "${extra_ca[@]}" /bin/bash -c "cd \"\$1\" && eval \"\$2\"" in_root "$REPO" "$1"
  }
  say "the root before the commands (network: $NET):"
  # shellcheck disable=SC2016 # run by the root's bash
  in_root '
    . /etc/os-release
    echo "  $PRETTY_NAME (Debian $(cat /etc/debian_version)), $(dpkg-query -W -f="\${Status}\n" | grep -c "ok installed") packages"
    echo "  $(cargo --version), $(rustc --version) from $(dirname "$(command -v cargo)") (read-only)"
    echo "  $(gcc --version | head -1); $(git --version)"
    present=()
    for c in npm node python3 pg_ctl psql pkg-config pgbouncer haproxy; do
      if command -v "$c" >/dev/null || [ -e "/usr/sbin/$c" ]; then present+=("$c"); echo "  present: $c"; else echo "  absent:  $c"; fi
    done
    if ls -d /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
      present+=(/usr/lib/postgresql); echo "  present: /usr/lib/postgresql/N/bin/pg_ctl"
    else
      echo "  absent:  /usr/lib/postgresql/N/bin/pg_ctl"
    fi
    for p in libssl-dev make python3 nodejs npm postgresql; do
      if dpkg-query -W -f="\${Status}" "$p" 2>/dev/null | grep -q "ok installed"; then
        present+=("package $p"); echo "  present: package $p"
      else
        echo "  absent:  package $p"
      fi
    done
    echo "  perl: $(perl -e "print \$^V") (git depends on it)"
    echo "  /etc/hosts: the root'"'"'s own file ($(wc -l < /etc/hosts) lines)"
    if [ ${#present[@]} -gt 0 ]; then echo "  NOT PRISTINE: ${present[*]}"; exit 1; fi
  ' >&2 &
  # Each command in the background, waited for: a TERM to this script is then handled at
  # once (bash runs traps only between foreground commands).
  wait $!
  for cmd in "$@"; do
    say "README: $cmd"
    in_root "$cmd" < /dev/null &
    wait $!
    say "README: done: $cmd"
  done
  exit 0
fi

# ----------------------------------------------------------------------------------------
# On the host.
# ----------------------------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  echo "pristine.sh: run as root (debootstrap, namespaces, mounts, chroot)" >&2
  exit 1
fi
case $NET in isolated | host) ;; *)
  echo "pristine.sh: PGDAP_PRISTINE_NET is isolated or host, not $NET" >&2
  exit 1
  ;;
esac
# The README's Quick start block, as written: two commands, run in order.
mapfile -t quick < <(awk '/^## Quick start/ {q=1} q && /^```sh/ {b=1; next} b && /^```/ {exit} b {sub(/ +#.*/, ""); print}' README.md)
if [ ${#quick[@]} -ne 2 ]; then
  echo "README.md: the Quick start block should hold two commands, found: ${quick[*]:-none}" >&2
  exit 1
fi
[ $# -eq 0 ] || quick=("$@")
sysroot=$(rustc --print sysroot)
[ -x "$sysroot/bin/cargo" ] || { echo "pristine.sh: no cargo in $sysroot/bin (rustc --print sysroot)" >&2; exit 1; }
for tool in unshare chroot flock; do
  command -v "$tool" >/dev/null || { echo "pristine.sh: $tool is missing (util-linux, coreutils)" >&2; exit 1; }
done

# This machine's tools for the step, installed when missing.
host_packages=()
[ -f "$STAMP" ] || command -v debootstrap >/dev/null || host_packages+=(debootstrap)
if [ "$NET" = isolated ]; then
  command -v slirp4netns >/dev/null || host_packages+=(slirp4netns)
  command -v ip >/dev/null || host_packages+=(iproute2)
fi
if [ ${#host_packages[@]} -gt 0 ]; then
  say "installing on this machine: ${host_packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${host_packages[@]}" >&2
fi

if [ "$NET" = host ]; then
  # The tests' servers listen on 127.0.0.x:5432 through this machine's network: nothing
  # here may listen there (a wildcard address counts; 127.0.0.1 is no test server's).
  busy=()
  while read -r hex; do
    case ${#hex} in
      8) v4=$hex ;;
      32)
        if [ "$hex" = 00000000000000000000000000000000 ]; then
          busy+=("[::]:5432")
          continue
        fi
        [ "${hex:0:24}" = 0000000000000000FFFF0000 ] || continue # not IPv4-mapped
        v4=${hex:24:8}
        ;;
      *) continue ;;
    esac
    ip=$(printf '%d.%d.%d.%d' "0x${v4:6:2}" "0x${v4:4:2}" "0x${v4:2:2}" "0x${v4:0:2}")
    case $ip in 0.0.0.0) busy+=("*:5432") ;; 127.0.0.1) ;; 127.*) busy+=("$ip:5432") ;; esac
  done < <(awk 'FNR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == "1538") print a[1] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  if [ ${#busy[@]} -gt 0 ]; then
    echo "pristine.sh: something on this machine listens where the tests' servers will: ${busy[*]}" >&2
    echo "(stop it, or run with PGDAP_PRISTINE_NET=isolated)" >&2
    exit 1
  fi
fi

mkdir -p "$(dirname "$CACHE")" "$CARGO_CACHE"
exec 9> "$(dirname "$CACHE")/pristine.lock"
flock -n 9 || { say "waiting for another pristine.sh run"; flock 9; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ] && [ -x "$CACHE/bin/bash" ]; then
  say "pristine root: cached $CACHE ($STAMP_TEXT; built $(date -r "$STAMP" '+%F %R'))"
else
  say "pristine root: building $CACHE ($STAMP_TEXT)"
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
  }
  build=$CACHE.build
  # Only plain directories there (the build and the runs mount in namespaces of their own).
  if [ -n "$(mounts_under "$CACHE")$(mounts_under "$build")" ]; then
    echo "pristine.sh: something is mounted under $CACHE or $build; not removing them" >&2
    exit 1
  fi
  rm -rf --one-file-system "$build" "$CACHE" "$STAMP"
  mkdir -p "$build"
  unshare --mount --propagation private bash "$0" __build "$build" 9>&-
  mv "$build" "$CACHE"
  echo "$STAMP_TEXT" > "$STAMP"
  say "pristine root built: $(du -sh "$CACHE" | cut -f1)"
fi

tmp=$(mktemp -d /var/tmp/pgdap-pristine.XXXXXX)
inner='' slirp='' ns=''
# shellcheck disable=SC2329 # called by kill_matching
in_ns() { [ "$(readlink "/proc/$1/ns/mnt" 2>/dev/null)" = "$ns" ]; }
# shellcheck disable=SC2329 # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$inner" ] && kill -0 "$inner" 2>/dev/null; then
    kill -TERM "$inner" 2>/dev/null || true
    wait "$inner" 2>/dev/null || true
  fi
  # Anything still alive in the run's mount namespace would keep it, and its mounts.
  ns=$(cat "$tmp/mntns" 2>/dev/null || true)
  [ -z "$ns" ] || kill_matching in_ns
  if [ -n "$slirp" ]; then
    kill -TERM "$slirp" 2>/dev/null || true
    wait "$slirp" 2>/dev/null || true
  fi
  # The namespace is gone, and with it every mount; checked before removing anything.
  if [ -n "$(mounts_under "$tmp")" ]; then
    echo "pristine.sh: mounts under $tmp, not removing it:" >&2
    mounts_under "$tmp" >&2
    rc=1
  else
    say "removing $tmp ($(du -sh "$tmp" 2>/dev/null | cut -f1): the root's changes, the build)"
    rm -rf --one-file-system "$tmp"
  fi
  say "finished (exit $rc)"
  echo "pristine.sh: $(minutes $(($(date +%s) - PGDAP_PRISTINE_T0))) minutes"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
say "run in $tmp: $(printf '%s; ' "${quick[@]}")"
unshare_args=(--mount --propagation private)
[ "$NET" = host ] || unshare_args+=(--net)
unshare "${unshare_args[@]}" bash "$0" __inside "$tmp" "$sysroot" "${quick[@]}" 9>&- &
inner=$!
if [ "$NET" = isolated ]; then
  # The namespaces exist once the inner part has written $tmp/mntns; then slirp4netns
  # gives the network namespace a tap0 with NAT to this machine's network (not to its
  # loopback).
  for _ in $(seq 1 300); do [ -s "$tmp/mntns" ] && break; kill -0 "$inner" 2>/dev/null || break; sleep 0.1; done
  if [ ! -s "$tmp/mntns" ] || [ "$(readlink "/proc/$inner/ns/net")" = "$(readlink /proc/self/ns/net)" ]; then
    echo "pristine.sh: the run's network namespace did not appear" >&2
    exit 1
  fi
  slirp4netns --configure --mtu=65520 --disable-host-loopback --ready-fd=3 "$inner" tap0 \
    3> "$tmp/slirp.ready" > "$tmp/slirp.log" 2>&1 9>&- &
  slirp=$!
  for _ in $(seq 1 300); do [ -s "$tmp/slirp.ready" ] && break; kill -0 "$slirp" 2>/dev/null || break; sleep 0.1; done
  if [ ! -s "$tmp/slirp.ready" ]; then
    echo "pristine.sh: slirp4netns did not start:" >&2
    cat "$tmp/slirp.log" >&2
    exit 1
  fi
  touch "$tmp/net-ready"
fi
wait "$inner"
