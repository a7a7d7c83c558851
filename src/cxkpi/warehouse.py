"""The one DuckDB connection helper, and the lock that keeps writers of a file in line.

DuckDB allows one writing process per file. The nightly tasks that write the warehouse
(the X and O loads may run in parallel under Airflow) take an advisory file lock first,
so they queue instead of failing with "Could not set lock on file".
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from cxkpi.errors import CxkpiError

log = logging.getLogger(__name__)

# Extensions must never be downloaded at run time: icu, json and parquet are built in.
_CONFIG: dict[str, str | bool | int | float | list[str]] = {"autoinstall_known_extensions": False}
# Every DuckDB of a night (cxkpi's connections and dbt's, see profiles.yml) stays under this
# memory limit and spills to disk beyond it (a file's temp folder is <file>.tmp): a night at
# --scale 1000 fits a 4 GB budget on a 2-core machine. Set CXKPI_DUCKDB_MEMORY_LIMIT to
# change it (DuckDB's own default is 80 % of the machine's memory).
MEMORY_LIMIT_ENV = "CXKPI_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "3GB"


def memory_limit() -> str:
    return os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT


def connect(path: Path | str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = {
        **_CONFIG,
        "memory_limit": memory_limit(),
    }
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    con.execute("set TimeZone = 'UTC'")
    # no progress bar: on a long query DuckDB draws one on stdout, which in a task log or a
    # redirected run is thousands of lines of carriage returns
    con.execute("set enable_progress_bar = false")
    return con


@contextmanager
def writer_lock(path: Path, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold an exclusive advisory lock for writing ``path`` (waits up to ``timeout_s``)."""
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        if not _flock_within(handle, timeout_s):
            raise CxkpiError(
                f"another cxkpi process has held the write lock on {path} for "
                f"{timeout_s:.0f}s; is a run stuck?"
            )
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _flock_within(handle, wait_s: float) -> bool:
    """Take an exclusive flock on ``handle``, trying for ``wait_s``; False if not had."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def _sql_text(value: object, what: str) -> str:
    text = str(value)
    # DuckDB reads SQL text as a C string: a NUL byte would end the statement mid-literal.
    # Backslashes need nothing: DuckDB's '...' strings have no escape sequences.
    if "\x00" in text:
        raise ValueError(f"a NUL byte cannot be part of an SQL {what}: {text!r}")
    return text


class LockBusy(CxkpiError):
    """Another live process holds a cxkpi process lock."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def process_lock(path: Path, what: str, wait_s: float = 0.0) -> Iterator[dict]:
    """Hold an exclusive lock on ``path`` for ``what`` (e.g. "run"), failing after
    ``wait_s`` with "another <what> is in progress (pid, started at)".

    The lock is an flock, released by the kernel when its holder dies; the file keeps the
    holder's pid and start time for the message. A file left by a dead pid (killed) is
    taken over with a log line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if not _flock_within(handle, wait_s):
            holder = _holder(handle)
            raise LockBusy(
                f"another {what} is in progress (pid {holder.get('pid', '?')}, started "
                f"at {holder.get('started_at', '?')}; lock {path}): wait for it to "
                "finish, or stop it"
            )
        previous = _holder(handle)
        if previous.get("pid") and previous["pid"] != os.getpid():
            alive = _pid_alive(int(previous["pid"]))
            log.warning(
                "taking over the %s lock %s of pid %s (started at %s), which %s",
                what,
                path,
                previous["pid"],
                previous.get("started_at"),
                "released it without cleaning up" if alive else "is no longer running",
            )
        holder = {"pid": os.getpid(), "started_at": _now(), "what": what}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder))
        handle.flush()
        try:
            yield previous
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder(handle) -> dict:
    handle.seek(0)
    try:
        found = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier: the one way any name reaches SQL."""
    return '"' + _sql_text(name, "identifier").replace('"', '""') + '"'


def quote_literal(value: object) -> str:
    """``value`` as a single-quoted SQL string: the one way a text value reaches SQL when it
    cannot be a bound parameter (options of table functions, struct keys)."""
    return "'" + _sql_text(value, "string").replace("'", "''") + "'"
