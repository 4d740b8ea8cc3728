"""Smoke check for the PGlite TimescaleDB wire-protocol server (server.mjs).

Run with the project venv:  .venv/bin/python tests/timescaledb/server/smoke_check.py
It spawns the server itself (stdin=PIPE, like the pytest fixture will), runs
psycopg 3 / SQLAlchemy 2 against it and prints timings. Exit status 0 = pass.
Needs `npm ci` to have been run in this directory.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import errors

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = shutil.which("node") or "node"
TIMINGS: dict[str, str] = {}


def start_server(*args: str, timeout: float = 60.0) -> tuple[subprocess.Popen, str, float]:
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [NODE, os.path.join(HERE, "server.mjs"), "--port", "0", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,  # diagnostics go straight to our stderr
        text=True,
    )
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "server did not print READY in time"
    line = proc.stdout.readline().strip()
    assert line.startswith("READY postgresql://"), f"unexpected first line: {line!r}"
    return proc, line.split(" ", 1)[1], time.monotonic() - t0


def stop(proc: subprocess.Popen, how: str = "sigterm", timeout: float = 10.0) -> float:
    t0 = time.monotonic()
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        proc.stdin.close()
    rc = proc.wait(timeout=timeout)
    assert rc == 0, f"server exited with {rc} after {how}"
    return time.monotonic() - t0


def check_basics(url: str) -> None:
    with psycopg.connect(url) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
        assert version.startswith("PostgreSQL 17"), version
        settings = {
            "TimeZone": "UTC",
            "enable_seqscan": "on",
            "client_min_messages": "notice",
            "allow_system_table_mods": "off",
            "DateStyle": "ISO, MDY",
            "search_path": '"$user", public',
        }
        for name, want in settings.items():
            got = conn.execute(f"SHOW {name}").fetchone()[0]
            assert got == want, f"SHOW {name} = {got!r}, want {want!r}"
        assert conn.info.server_version >= 170000, conn.info.server_version
        assert conn.info.parameter_status("TimeZone") == "UTC"
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0]
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("DO $$ BEGIN RAISE NOTICE 'hello notice'; END $$")
        assert notices == ["hello notice"], notices
        conn.commit()
        print(f"  {version.split(' on ')[0]}, timescaledb {ext}")


def check_hypertable_and_params(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE metrics (ts timestamptz NOT NULL, device int, value float8)")
        conn.execute("SELECT create_hypertable('metrics', 'ts')")
        base = datetime(2024, 1, 1, tzinfo=UTC)
        conn.execute("INSERT INTO metrics VALUES (%s, %s, %s)", (base, 0, 0.5))
        cur = conn.cursor()
        rows = [(base + timedelta(minutes=i), i % 10, i * 1.5) for i in range(1, 1001)]
        t0 = time.monotonic()
        cur.executemany("INSERT INTO metrics VALUES (%s, %s, %s)", rows)
        TIMINGS["executemany rows/s"] = f"{1000 / (time.monotonic() - t0):,.0f}"
        n, total = conn.execute("SELECT count(*), sum(value) FROM metrics").fetchone()
        assert n == 1001 and abs(total - (0.5 + sum(r[2] for r in rows))) < 1e-6, (n, total)
        got = conn.execute(
            "SELECT ts, device, value FROM metrics WHERE device = %s ORDER BY ts LIMIT 1", (3,)
        ).fetchone()
        assert got == rows[2], got
        buckets = conn.execute(
            "SELECT count(*) FROM (SELECT time_bucket('1 hour', ts) b FROM metrics GROUP BY b) s"
        ).fetchone()[0]
        assert buckets == 17, buckets
        chunks = conn.execute("SELECT count(*) FROM show_chunks('metrics')").fetchone()[0]
        assert chunks >= 1

        # Single-row inserts (one round trip each).
        t0 = time.monotonic()
        for i in range(500):
            conn.execute("INSERT INTO metrics VALUES (%s, %s, %s)", (base - timedelta(seconds=i + 1), 99, 1.0))
        TIMINGS["single inserts/s"] = f"{500 / (time.monotonic() - t0):,.0f}"

        # A parameter bigger than 64 KiB (one message bigger than PGlite's buffers).
        big = "x" * 200_000 + "é"
        assert conn.execute("SELECT %s::text", (big,)).fetchone()[0] == big
        assert conn.execute("SELECT length(%s::text)", ("y" * 300_000,)).fetchone()[0] == 300_000

        # Message sizes around 8 KiB so that many batch-internal message
        # boundaries would land on multiples of 8192 (the PGlite hang bug).
        conn.execute("CREATE TABLE blobs (id int, body text)")
        rows = [(i, "b" * (8150 + (i * 7) % 120)) for i in range(300)]
        cur.executemany("INSERT INTO blobs VALUES (%s, %s)", rows)
        rows2 = [(1000 + i, "c" * (i * 37 % 20000)) for i in range(300)]
        cur.executemany("INSERT INTO blobs VALUES (%s, %s)", rows2)
        n, total = conn.execute("SELECT count(*), sum(length(body)) FROM blobs").fetchone()
        assert n == 600 and total == sum(len(r[1]) for r in rows + rows2), (n, total)

        # Pipeline mode with an error in the middle: the rest of the pipeline is
        # skipped up to Sync and the session stays consistent.
        conn.commit()
        try:
            with conn.pipeline():
                conn.execute("INSERT INTO blobs VALUES (%s, %s)", (-1, "before"))
                conn.execute("SELECT 1 / %s", (0,))
                conn.execute("INSERT INTO blobs VALUES (%s, %s)", (-2, "after"))
        except errors.DivisionByZero:
            pass
        else:
            raise AssertionError("pipeline error not raised")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM blobs WHERE id < 0").fetchone()[0] == 0
        conn.commit()


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def _read_until_ready(sock: socket.socket, stop: bytes = b"Z") -> list[tuple[bytes, bytes]]:
    """Read backend messages up to and including the first of kind `stop`."""
    buf, out = b"", []
    while True:
        while len(buf) >= 5 and len(buf) >= 1 + struct.unpack("!i", buf[1:5])[0]:
            n = 1 + struct.unpack("!i", buf[1:5])[0]
            out.append((buf[:1], buf[5:n]))
            buf = buf[n:]
            if out[-1][0] == stop:
                assert not buf, buf
                return out
        chunk = sock.recv(1 << 16)
        assert chunk, "server closed the connection"
        buf += chunk


def check_raw_8k_pipeline(url: str) -> None:
    """Deterministic check of the 8192-boundary workaround: one pipeline whose
    Parse and every Bind+Execute pair are exactly 8192 bytes, so without the
    workaround nearly every batch has an inner boundary on a multiple of 8192."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE rawpipe (a int, b text)")
    with _raw_connect(url) as sock:
        sql = b"INSERT INTO rawpipe VALUES ($1, $2)"
        parse = _msg(b"P", b"\0" + sql.ljust(8192 - 9) + b"\0" + struct.pack("!h", 0))
        assert len(parse) == 8192
        n, stream = 200, [parse]
        for i in range(n):
            a = str(i).encode()
            b = b"z" * (8192 - 31 - len(a))
            bind = _msg(b"B", b"\0\0" + struct.pack("!hh", 0, 2) + struct.pack("!i", len(a)) + a
                        + struct.pack("!i", len(b)) + b + struct.pack("!h", 0))
            execute = _msg(b"E", b"\0" + struct.pack("!i", 0))
            assert len(bind) + len(execute) == 8192
            stream += [bind, execute]
        sock.sendall(b"".join(stream) + _msg(b"S", b""))
        reply = _read_until_ready(sock)
        kinds = [k for k, _ in reply]
        assert b"E" not in kinds and kinds.count(b"C") == n, reply[:3]
        sock.sendall(_msg(b"Q", b"SELECT count(*), sum(length(b)) FROM rawpipe\0"))
        row = [v for k, v in _read_until_ready(sock) if k == b"D"][0]
        count_len = struct.unpack("!i", row[2:6])[0]
        count, total = row[6 : 6 + count_len], row[10 + count_len :]
        assert (int(count), int(total)) == (n, sum(8192 - 31 - len(str(i)) for i in range(n))), row
        sock.sendall(_msg(b"X", b""))


def _raw_connect(url: str) -> socket.socket:
    host, port = url.split("@")[1].split("/")[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    body = struct.pack("!i", 196608) + b"user\0postgres\0database\0postgres\0\0"
    sock.sendall(struct.pack("!i", len(body) + 4) + body)
    assert _read_until_ready(sock)[0] == (b"R", struct.pack("!i", 0))
    return sock


def check_raw_extended_copy_and_abandon(url: str) -> None:
    """COPY FROM STDIN through the extended protocol (as libpq's PQexecParams
    sends it: Parse/Bind/Describe/Execute/Sync, data, CopyDone, Sync), then a
    client that vanishes mid-transaction with a half-sent pipeline."""
    with _raw_connect(url) as sock:
        sock.sendall(_msg(b"Q", b"CREATE TABLE ext_copy (a int, b text)\0"))
        _read_until_ready(sock)
        sql = b"COPY ext_copy (a, b) FROM STDIN"
        sock.sendall(
            _msg(b"P", b"\0" + sql + b"\0" + struct.pack("!h", 0))
            + _msg(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
            + _msg(b"D", b"P\0")
            + _msg(b"E", b"\0" + struct.pack("!i", 0))
            + _msg(b"S", b"")
        )
        reply = _read_until_ready(sock, stop=b"G")
        assert [k for k, _ in reply] == [b"1", b"2", b"n", b"G"], reply
        assert reply[-1][1] == b"\0\0\x02\0\0\0\0", reply  # text format, 2 text columns
        sock.sendall(_msg(b"d", b"1\tone\n2\ttwo\n") + _msg(b"c", b"") + _msg(b"S", b""))
        reply = _read_until_ready(sock)
        assert (b"C", b"COPY 2\0") in reply and reply[-1] == (b"Z", b"I"), reply
        # Abandon: open transaction + half-sent pipeline, then just disconnect.
        sock.sendall(_msg(b"Q", b"BEGIN; INSERT INTO ext_copy VALUES (3, 'three')\0"))
        assert _read_until_ready(sock)[-1] == (b"Z", b"T")
        sock.sendall(
            _msg(b"P", b"\0INSERT INTO ext_copy VALUES (4, 'four')\0" + struct.pack("!h", 0))
            + _msg(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
            + _msg(b"E", b"\0" + struct.pack("!i", 0))
            + _msg(b"H", b"")
        )
        time.sleep(0.3)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT a, b FROM ext_copy ORDER BY a").fetchall() == [(1, "one"), (2, "two")]
        assert conn.execute("SELECT 1").fetchone() == (1,)


def check_copy(url: str) -> None:
    n = 50_000
    base = datetime(2024, 2, 1, tzinfo=UTC)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE copy_t (a int, b text, ts timestamptz)")
        conn.execute("SELECT create_hypertable('copy_t', by_range('ts', INTERVAL '1 hour'), migrate_data => true)")
        cur = conn.cursor()
        # text format, inside a transaction (psycopg's default: BEGIN first)
        t0 = time.monotonic()
        with cur.copy("COPY copy_t (a, b, ts) FROM STDIN") as cp:
            for i in range(n):
                cp.write_row((i, f"row {i}\twith tab", base + timedelta(seconds=i)))
        dt = time.monotonic() - t0
        TIMINGS["COPY text rows/s"] = f"{n / dt:,.0f}"
        assert cur.rowcount == n, cur.rowcount
        conn.commit()
        # binary format, right after
        t0 = time.monotonic()
        with cur.copy("COPY copy_t (a, b, ts) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "text", "timestamptz"])
            for i in range(n):
                cp.write_row((n + i, f"bin {i}", base + timedelta(seconds=n + i)))
        dt = time.monotonic() - t0
        TIMINGS["COPY binary rows/s"] = f"{n / dt:,.0f}"
        conn.commit()
        cnt, s = conn.execute("SELECT count(*), sum(a) FROM copy_t").fetchone()
        assert cnt == 2 * n and s == sum(range(2 * n)), (cnt, s)
        assert conn.execute("SELECT b FROM copy_t WHERE a = 7").fetchone()[0] == "row 7\twith tab"
        conn.commit()
        # a plain COPY text block written in one go, in autocommit mode (no savepoint path)
        conn.autocommit = True
        with cur.copy("COPY copy_t (a, b, ts) FROM STDIN") as cp:
            cp.write("-1\tx\t2024-03-01\n-2\ty\t2024-03-01\n")
        # COPY with a bad row: error, then the connection is still usable
        conn.autocommit = False
        try:
            with cur.copy("COPY copy_t (a, b, ts) FROM STDIN") as cp:
                cp.write("1\tok\t2024-03-01\nnot-a-number\tbad\t2024-03-01\n")
        except errors.InvalidTextRepresentation:
            pass
        else:
            raise AssertionError("bad COPY row not rejected")
        conn.rollback()
        # COPY into a missing table fails at once, like a real server
        try:
            with cur.copy("COPY no_such_table FROM STDIN") as cp:
                cp.write("1\n")
        except errors.UndefinedTable:
            pass
        else:
            raise AssertionError("COPY into a missing table did not fail")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM copy_t").fetchone()[0] == 2 * n + 2
        # COPY statements sized so the statement/CopyData boundaries would land on
        # 8192 multiples (the server pads / re-chunks to avoid PGlite's bug).
        payload = "".join(f"{i}\tpad{'p' * (i % 50)}\t2024-03-02\n" for i in range(10_000))
        for qlen in (8187, 8192, 16379):
            stmt = "COPY copy_t (a, b, ts) FROM STDIN"
            with cur.copy(stmt.ljust(qlen - 6)) as cp:
                cp.write(payload)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM copy_t").fetchone()[0] == 2 * n + 2 + 30_000
        conn.commit()
        # COPY TO STDOUT
        with cur.copy("COPY (SELECT a FROM copy_t WHERE a BETWEEN 0 AND 9 AND b LIKE 'row%' ORDER BY a) TO STDOUT") as cp:
            out = b"".join(bytes(b) for b in cp)
        assert out == b"".join(f"{i}\n".encode() for i in range(10)), out
        conn.commit()


def check_errors_and_transactions(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("SELECT 1 / 0")
        except errors.DivisionByZero:
            pass
        else:
            raise AssertionError("no error")
        assert conn.execute("SELECT 42").fetchone()[0] == 42
        conn.execute("CREATE TABLE tx_t (a int)")
        conn.execute("BEGIN")
        conn.execute("INSERT INTO tx_t VALUES (1)")
        try:
            conn.execute("SELECT * FROM no_such_table")
        except errors.UndefinedTable:
            pass
        try:
            conn.execute("SELECT 1")
        except errors.InFailedSqlTransaction:
            pass
        else:
            raise AssertionError("transaction not marked failed")
        conn.execute("ROLLBACK")
        assert conn.execute("SELECT count(*) FROM tx_t").fetchone()[0] == 0
    with psycopg.connect(url) as conn:  # non-autocommit: error, rollback, go on
        try:
            conn.execute("SELECT 1 / 0")
        except errors.DivisionByZero:
            conn.rollback()
        conn.execute("INSERT INTO tx_t VALUES (2)")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM tx_t").fetchone()[0] == 1


def check_two_connections(url: str, queue_timeout: float) -> None:
    conn1 = psycopg.connect(url, autocommit=True)
    conn1.execute("PREPARE leaky AS SELECT 1")
    conn1.execute("CREATE TEMP TABLE tmp_leak (a int)")
    conn1.execute("SET enable_seqscan = off")
    conn1.execute("SET TimeZone = 'Asia/Tokyo'")
    conn1.execute("BEGIN")
    conn1.execute("INSERT INTO tx_t VALUES (3)")  # left uncommitted on purpose
    result: dict[str, object] = {}

    def second() -> None:
        try:
            c = psycopg.connect(url, autocommit=True, application_name="second")
            result["connected_at"] = time.monotonic()
            result["conn"] = c
        except Exception as e:
            result["error"] = e

    th = threading.Thread(target=second)
    th.start()
    time.sleep(1.5)
    assert "connected_at" not in result and "error" not in result, "second connection did not wait"
    closed_at = time.monotonic()
    conn1.close()
    th.join(10)
    assert "conn" in result, result
    conn2 = result["conn"]
    print(f"  second connection got the backend {result['connected_at'] - closed_at:.2f}s after the first closed")
    assert conn2.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
    assert conn2.execute("SELECT to_regclass('tmp_leak')").fetchone()[0] is None
    assert conn2.execute("SHOW enable_seqscan").fetchone()[0] == "on"
    assert conn2.execute("SHOW TimeZone").fetchone()[0] == "UTC"
    assert conn2.execute("SHOW application_name").fetchone()[0] == "second"
    assert conn2.execute("SELECT count(*) FROM tx_t WHERE a = 3").fetchone()[0] == 0
    # While conn2 holds the backend, a third client times out with a FATAL error.
    t0 = time.monotonic()
    try:
        psycopg.connect(url, connect_timeout=queue_timeout + 20)
    except psycopg.OperationalError as e:
        assert "timed out" in str(e), e
    else:
        raise AssertionError("third connection did not time out")
    waited = time.monotonic() - t0
    assert queue_timeout - 0.5 < waited < queue_timeout + 5, waited
    conn2.close()
    # options=-c ... in the startup packet is applied
    with psycopg.connect(url, options="-c search_path=pg_catalog,public -c statement_timeout=0") as c:
        assert c.execute("SHOW search_path").fetchone()[0].replace(" ", "") == "pg_catalog,public"


def check_sqlalchemy(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), pool_size=1, max_overflow=0)
    with engine.connect() as c:
        assert c.execute(text("SELECT 1 + :x"), {"x": 1}).scalar() == 2
        assert c.execute(text("SELECT count(*) FROM tx_t")).scalar() == 1
    with engine.begin() as c:
        c.execute(text("INSERT INTO tx_t VALUES (:a)"), [{"a": i} for i in range(10, 20)])
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM tx_t")).scalar() == 11
    engine.dispose()


def check_data_dir() -> None:
    tmp = tempfile.mkdtemp(prefix="pglite-smoke-")
    try:
        proc, url, _ = start_server("--data-dir", tmp)
        with psycopg.connect(url) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute("CREATE TABLE readings (ts timestamptz NOT NULL, sensor int, v float8)")
            conn.execute("SELECT create_hypertable('readings', by_range('ts', INTERVAL '1 day'))")
            conn.execute(
                "INSERT INTO readings SELECT t, (extract(epoch FROM t)::int / 60) % 5, 1.0"
                " FROM generate_series('2024-01-01'::timestamptz, '2024-01-03 23:59', '1 minute') t"
            )
            conn.execute("ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'sensor')")
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('readings', older_than => '2024-01-02'::timestamptz) c")
            conn.commit()
            expected = conn.execute("SELECT count(*), sum(v), count(DISTINCT sensor) FROM readings").fetchone()
        stop(proc, "sigterm")

        proc, url, _ = start_server("--data-dir", tmp)
        with psycopg.connect(url) as conn:
            got = conn.execute("SELECT count(*), sum(v), count(DISTINCT sensor) FROM readings").fetchone()
            assert got == expected == (3 * 1440, 3 * 1440.0, 5), (got, expected)
            compressed = conn.execute(
                "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings' AND is_compressed"
            ).fetchone()[0]
            assert compressed == 1, compressed
            conn.execute("INSERT INTO readings VALUES ('2024-01-05', 1, 2.0)")  # new chunk after reopen
            conn.commit()
            assert conn.execute("SELECT count(*) FROM show_chunks('readings')").fetchone()[0] == 4
        took = stop(proc, "stdin")  # the parent going away (stdin EOF) stops it too
        print(f"  data dir re-opened: {got[0]} rows incl. a compressed chunk; stdin EOF -> exit in {took:.2f}s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    queue_timeout = 3.0
    proc, url, startup = start_server("--queue-timeout", str(queue_timeout))
    TIMINGS["startup s"] = f"{startup:.2f}"
    print(f"server at {url} (startup {startup:.2f}s)")
    try:
        steps = [
            ("1 basics", lambda: check_basics(url)),
            ("2 hypertable, params, 8 KiB boundaries", lambda: check_hypertable_and_params(url)),
            ("2b raw pipeline of 8192-byte messages", lambda: check_raw_8k_pipeline(url)),
            ("3 COPY", lambda: check_copy(url)),
            ("3b raw extended-protocol COPY, abandoned session", lambda: check_raw_extended_copy_and_abandon(url)),
            ("4 errors, transactions", lambda: check_errors_and_transactions(url)),
            ("5 two connections", lambda: check_two_connections(url, queue_timeout)),
            ("6 SQLAlchemy", lambda: check_sqlalchemy(url)),
        ]
        for name, fn in steps:
            t0 = time.monotonic()
            fn()
            print(f"ok  {name} ({time.monotonic() - t0:.2f}s)")
        rss = open(f"/proc/{proc.pid}/status").read().split("VmRSS:")[1].split("\n")[0].strip()
        TIMINGS["server RSS"] = rss
    except BaseException:
        proc.kill()
        raise
    TIMINGS["SIGTERM exit s"] = f"{stop(proc, 'sigterm'):.2f}"
    print("ok  7a SIGTERM -> exit 0")
    t0 = time.monotonic()
    check_data_dir()
    print(f"ok  7b data dir reopen + stdin close ({time.monotonic() - t0:.2f}s)")
    print("timings: " + ", ".join(f"{k}={v}" for k, v in TIMINGS.items()))
    print("smoke check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
