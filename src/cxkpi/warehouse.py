"""The one DuckDB connection helper, and the lock that keeps writers of a file in line.

DuckDB allows one writing process per file. The nightly tasks that write the warehouse
(the X and O loads may run in parallel under Airflow) take an advisory file lock first,
so they queue instead of failing with "Could not set lock on file".
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from cxkpi.errors import CxkpiError

# Extensions must never be downloaded at run time: icu, json and parquet are built in.
_CONFIG = {"autoinstall_known_extensions": False}


def connect(path: Path | str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only, config=dict(_CONFIG))
    con.execute("set TimeZone = 'UTC'")
    return con


@contextmanager
def writer_lock(path: Path, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold an exclusive advisory lock for writing ``path`` (waits up to ``timeout_s``)."""
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CxkpiError(
                        f"another cxkpi process has held the write lock on {path} for "
                        f"{timeout_s:.0f}s; is a run stuck?"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sql_text(value: object, what: str) -> str:
    text = str(value)
    # DuckDB reads SQL text as a C string: a NUL byte would end the statement mid-literal.
    # Backslashes need nothing: DuckDB's '...' strings have no escape sequences.
    if "\x00" in text:
        raise ValueError(f"a NUL byte cannot be part of an SQL {what}: {text!r}")
    return text


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier: the one way any name reaches SQL."""
    return '"' + _sql_text(name, "identifier").replace('"', '""') + '"'


def quote_literal(value: object) -> str:
    """``value`` as a single-quoted SQL string: the one way a text value reaches SQL when it
    cannot be a bound parameter (options of table functions, struct keys)."""
    return "'" + _sql_text(value, "string").replace("'", "''") + "'"
