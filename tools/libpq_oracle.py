#!/usr/bin/env python3
"""A libpq oracle: connects with libpq exactly as an application would (conninfo "" so
every setting comes from the PG* environment variables), then prints one JSON line.

Usage: LIBPQ=/path/to/libpq.so.5 [ORACLE_CONNINFO=...] python3 tools/libpq_oracle.py [SQL]

Output: {"ok": true, "ssl": bool, "result": "<first column of first row of SQL>",
"tls_version": ..., "alpn": ...} or {"ok": false, "error": "<PQerrorMessage>"}.
The tests use it for libpq 16-18 behaviour (tools/libpq18.sh installs that libpq);
psql 15 remains the oracle for libpq 15.
"""
import ctypes
import json
import os
import sys

lib = ctypes.CDLL(os.environ["LIBPQ"])
lib.PQconnectdb.restype = ctypes.c_void_p
lib.PQconnectdb.argtypes = [ctypes.c_char_p]
lib.PQstatus.argtypes = [ctypes.c_void_p]
lib.PQerrorMessage.restype = ctypes.c_char_p
lib.PQerrorMessage.argtypes = [ctypes.c_void_p]
lib.PQexec.restype = ctypes.c_void_p
lib.PQexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.PQresultStatus.argtypes = [ctypes.c_void_p]
lib.PQresultErrorMessage.restype = ctypes.c_char_p
lib.PQresultErrorMessage.argtypes = [ctypes.c_void_p]
lib.PQntuples.argtypes = [ctypes.c_void_p]
lib.PQgetvalue.restype = ctypes.c_char_p
lib.PQgetvalue.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
lib.PQsslInUse.argtypes = [ctypes.c_void_p]
lib.PQsslAttribute.restype = ctypes.c_char_p
lib.PQsslAttribute.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.PQfinish.argtypes = [ctypes.c_void_p]


def text(b):
    return None if b is None else b.decode("utf-8", "replace")


# ORACLE_REPEAT=N: time N connections (PQconnectdb to CONNECTION_OK, then PQfinish) and
# print {"times_ms": [...]} (the direct-TLS benchmark).
repeat = int(os.environ.get("ORACLE_REPEAT", "0"))
if repeat:
    import time

    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        c = lib.PQconnectdb(b"")
        ok = lib.PQstatus(c) == 0
        times.append((time.perf_counter() - t) * 1000)
        if not ok:
            print(json.dumps({"ok": False, "error": text(lib.PQerrorMessage(c)).strip()}))
            sys.exit(2)
        lib.PQfinish(c)
    print(json.dumps({"ok": True, "times_ms": times}))
    sys.exit(0)


# ORACLE_CONNINFO: explicit connection parameters (above a service file and the
# environment, as an application's own settings are); empty by default.
conn = lib.PQconnectdb(os.environ.get("ORACLE_CONNINFO", "").encode())
if lib.PQstatus(conn) != 0:  # CONNECTION_OK
    print(json.dumps({"ok": False, "error": text(lib.PQerrorMessage(conn)).strip()}))
    sys.exit(2)
out = {
    "ok": True,
    "ssl": bool(lib.PQsslInUse(conn)),
    "tls_version": text(lib.PQsslAttribute(conn, b"protocol")),
    "alpn": text(lib.PQsslAttribute(conn, b"alpn")),
}
if len(sys.argv) > 1:
    res = lib.PQexec(conn, sys.argv[1].encode())
    if lib.PQresultStatus(res) != 2:  # PGRES_TUPLES_OK
        out = {"ok": False, "error": text(lib.PQresultErrorMessage(res)).strip()}
    elif lib.PQntuples(res) > 0:
        out["result"] = text(lib.PQgetvalue(res, 0, 0))
    else:
        out["result"] = None
lib.PQfinish(conn)
print(json.dumps(out))
sys.exit(0 if out["ok"] else 2)
