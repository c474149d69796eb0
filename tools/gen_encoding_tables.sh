#!/usr/bin/env bash
# Generates data/encoding/tables.rs, the client-encoding tables of pgdap, FROM A REAL
# POSTGRESQL 15 SERVER: every byte sequence is decoded with convert_from() and every
# Unicode scalar value is encoded with convert_to(), in a UTF8 database, and what the
# server answered is written down as Rust tables of runs.
#
# Why: no Rust crate is byte-exact with PostgreSQL (encoding_rs follows WHATWG: its
# "iso-8859-1" is windows-1252, its windows-125x map undefined bytes differently, it has
# no JOHAB, its GBK decodes GB18030 four-byte sequences, its Shift_JIS is not PG's SJIS).
# PostgreSQL's own conversions are the reference, so the tables come from the server.
#
# Usage:
#   tools/gen_encoding_tables.sh            # starts a throwaway server (socket only, no TCP)
#   PGHOST=/path/to/socket PGUSER=postgres tools/gen_encoding_tables.sh   # use a running server
#
# Environment:
#   PG_BINDIR   server binaries for the throwaway server (default /usr/lib/postgresql/15/bin)
#   OUT         output file (default data/encoding/tables.rs beside this script's repository)
#   JOBS        parallel psql sessions (default 2)
#
# What is enumerated (per encoding):
#   decode: every 1-byte input 0x00..0xff; for the multibyte encodings (GBK, SJIS, UHC,
#           JOHAB) also every 2-byte input 0x80..0xff x 0x00..0xff, and for JOHAB every
#           3-byte input 0x8f 0xa1..0xfe 0xa1..0xfe (0x8f is a 3-byte lead in PG's JOHAB);
#           an input is recorded when convert_from() succeeds and yields ONE character.
#   encode: every code point U+0001..U+10FFFF except surrogates (1,112,063 of them);
#           recorded when convert_to(chr(cp)) succeeds. This captures one-way mappings.
# Validity rules (which sequences are malformed) are not tables: they are PostgreSQL's
# verifier functions, mirrored in src/encoding/ and checked by tests/server/encoding.rs.
# Runtime: about a minute on two cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
OUT="${OUT:-$repo/data/encoding/tables.rs}"
JOBS="${JOBS:-2}"
PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"

SINGLE_BYTE="LATIN1 LATIN2 LATIN3 LATIN4 LATIN5 LATIN6 LATIN7 LATIN8 LATIN9 LATIN10
ISO_8859_5 ISO_8859_6 ISO_8859_7 ISO_8859_8 WIN866 WIN874 WIN1250 WIN1251 WIN1252 WIN1256 WIN1258"
MULTI_BYTE="GBK SJIS UHC JOHAB"

work="$(mktemp -d /tmp/pgdap-encgen.XXXXXX)"
started=""
cleanup() {
    if [ -n "$started" ]; then
        run_as_pg "$PG_BINDIR/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

run_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        # initdb and postgres refuse to run as root.
        local cmd=""
        for a in "$@"; do cmd+=" $(printf '%q' "$a")"; done
        su postgres -c "$cmd"
    else
        "$@"
    fi
}

if [ -z "${PGHOST:-}" ]; then
    [ "$(id -u)" = 0 ] && chown postgres "$work"
    run_as_pg "$PG_BINDIR/initdb" -D "$work/data" -E UTF8 --locale=C -U postgres >"$work/initdb.log" 2>&1
    # listen_addresses='' : unix socket only, never a TCP port.
    run_as_pg "$PG_BINDIR/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
        -o "-c listen_addresses='' -c unix_socket_directories=$work -c fsync=off" start >/dev/null
    started=1
    export PGHOST="$work" PGUSER=postgres PGDATABASE=postgres
fi

psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

[ "$(psql_q -c 'show server_encoding')" = UTF8 ] || { echo "the database must be UTF8" >&2; exit 1; }
version="$(psql_q -c 'select version()')"
num="$(psql_q -c 'show server_version_num')"
if [ "$num" -lt 150000 ] || [ "$num" -ge 160000 ]; then
    echo "PostgreSQL 15 is the reference; this server is $num" >&2
    exit 1
fi


# One encoding: writes $work/$enc.rs with its DECODE and ENCODE run tables.
gen_one() {
    local enc="$1" multi=0
    case " $MULTI_BYTE " in *" $enc "*) multi=1 ;; esac
    psql_q -v enc="$enc" -v multi="$multi" -o "$work/$enc.rs" <<'SQL'
-- Session-local helpers (schema pg_temp): nothing is left behind on the server.
create function pg_temp.try_from(b bytea, e name) returns text
language plpgsql immutable as $$
begin
    return convert_from(b, e);
exception when others then
    return null;
end $$;
create function pg_temp.try_to(t text, e name) returns bytea
language plpgsql immutable as $$
begin
    return convert_to(t, e);
exception when others then
    return null;
end $$;

create temp table dec as
select k, ascii(r)::bigint as v
from (
    select k, pg_temp.try_from(b, :'enc') as r
    from (
        select i::bigint as k, set_byte('\x00'::bytea, 0, i) as b
        from generate_series(0, 255) i
        union all
        select (l << 8 | t)::bigint, set_byte(set_byte('\x0000'::bytea, 0, l), 1, t)
        from generate_series(128, 255) l, generate_series(0, 255) t
        where :multi = 1
        union all
        select (x'8f0000'::int | t2 << 8 | t3)::bigint,
               set_byte(set_byte('\x8f0000'::bytea, 1, t2), 2, t3)
        from generate_series(161, 254) t2, generate_series(161, 254) t3
        where :'enc' = 'JOHAB'
    ) inputs
) s
where r is not null and char_length(r) = 1;

create temp table enc_bytes as
select cp::bigint as k, b
from (
    select cp, pg_temp.try_to(chr(cp), :'enc') as b
    from generate_series(1, 1114111) cp
    where cp not between 55296 and 57343
) s
where b is not null;

-- Guard: an encoded character is 1 to 4 bytes, none of them NUL, so it is stored as a
-- big-endian integer without losing anything.
do $$ begin
    if exists (select 1 from enc_bytes
               where length(b) not between 1 and 4 or position('\x00'::bytea in b) > 0) then
        raise exception 'unexpected output of convert_to()';
    end if;
end $$;

create temp table enc as
select k, ('x' || lpad(encode(b, 'hex'), 8, '0'))::bit(32)::bigint as v
from enc_bytes;

create temp view runs as
select 'DECODE' as dir, min(k) as k, min(v) as v, count(*) as n
from (select k, v, v - k as d, k - row_number() over (partition by v - k order by k) as g from dec) s
group by d, g
union all
select 'ENCODE', min(k), min(v), count(*)
from (select k, v, v - k as d, k - row_number() over (partition by v - k order by k) as g from enc) s
group by d, g;

select format(E'/// %s %s: %s entries in %s runs.\npub(crate) static %s_%s: &[Run] = &[\n%s\n];\n',
              :'enc', lower(dir), sum(n), count(*), :'enc', dir,
              string_agg(format('(0x%s,0x%s,%s),', to_hex(k), to_hex(v), n), '' order by k))
from runs
group by dir
order by dir;
SQL
}
export -f gen_one psql_q
export work MULTI_BYTE

printf '%s\n' $SINGLE_BYTE $MULTI_BYTE | xargs -P "$JOBS" -I{} bash -c 'gen_one "$@"' _ {}

{
    cat <<HDR
// @generated by tools/gen_encoding_tables.sh -- do not edit by hand.
//
// Source: $version,
// database encoding UTF8. Every table below is what that server answered:
//   *_DECODE: convert_from(bytes, ENC) for every 1-byte input, and for GBK, SJIS, UHC and
//             JOHAB every 2-byte input with a high first byte (JOHAB also 0x8f + 2 bytes),
//             kept when the result is exactly one character.
//   *_ENCODE: convert_to(chr(cp), ENC) for every code point U+0001..U+10FFFF except the
//             surrogates, kept when the server converted it.
// A table is a sorted list of runs (first, value, count): first + i maps to value + i for
// i in 0..count. Byte sequences are big-endian integers (0x8140 is the bytes 81 40).
// Anything not listed is unmappable ("has no equivalent"); malformed sequences are
// decided by the verifier functions in src/encoding/, not by these tables.

/// A run of consecutive mappings: \`(first, value, count)\`.
pub(crate) type Run = (u32, u32, u32);

HDR
    for enc in $SINGLE_BYTE $MULTI_BYTE; do
        cat "$work/$enc.rs"
    done
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT ($(wc -c <"$OUT") bytes) from: $version" >&2
