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
from dataclasses import dataclass
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


# -- where the warehouse lives: the embedded DuckDB file or a PostgreSQL server ----------

WAREHOUSE_TYPES = ("duckdb", "postgres")
# The one place a PostgreSQL password comes from (dbt's profile reads the same variable):
# never a file, never a URL, so no config, log or run record holds it.
PASSWORD_ENV = "CXKPI_PG_PASSWORD"
POSTGRES_ALIAS = "wh"


@dataclass(frozen=True)
class PostgresTarget:
    """A PostgreSQL database the whole night runs in (docs/data-engineer.md, PostgreSQL)."""

    host: str = "127.0.0.1"
    port: int = 5432
    database: str = "cx"
    user: str = "cxkpi"
    # the schema BI readers query: the current version; kept ones are <schema>_v<version>
    published_schema: str = "cx"
    # prefix of the roles made from the access file (roles are shared by a whole server)
    role_prefix: str = "cxkpi_"

    def libpq(self) -> str:
        """The libpq connection string, with the password from the environment if set."""
        parts = {"host": self.host, "port": str(self.port), "dbname": self.database}
        parts["user"] = self.user
        if os.environ.get(PASSWORD_ENV):
            parts["password"] = os.environ[PASSWORD_ENV]
        return " ".join(f"{key}={_libpq_value(value)}" for key, value in parts.items())

    def describe(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect(self):
        """A psycopg2 connection (the postgres extra), autocommit off."""
        try:
            import psycopg2  # type: ignore[import-untyped]
        except ImportError:
            raise CxkpiError(_EXTRA_MISSING) from None
        try:
            return psycopg2.connect(self.libpq())
        except psycopg2.Error as exc:
            raise CxkpiError(f"cannot connect to {self.describe()}: {exc}".strip()) from None


_EXTRA_MISSING = (
    "warehouse type postgres needs cxkpi's postgres extra (dbt-postgres, psycopg2 and "
    "DuckDB's postgres extension): install it with `uv sync --extra postgres` "
    "(`make install` does)"
)


def _libpq_value(value: str) -> str:
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_postgres_extension(con: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's postgres extension from its wheel (never downloaded): DuckDB checks
    the binary's signature, so it is DuckDB Labs' build."""
    import importlib.util

    spec = importlib.util.find_spec("duckdb_extension_postgres_scanner")
    if spec is None or not spec.submodule_search_locations:
        raise CxkpiError(_EXTRA_MISSING)
    folder = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    binary = folder / f"v{duckdb.__version__}" / "postgres_scanner.duckdb_extension"
    if not binary.is_file():
        built_for = sorted(p.name for p in folder.glob("v*"))
        raise CxkpiError(
            f"DuckDB's postgres extension is installed for DuckDB {built_for}, but DuckDB "
            f"{duckdb.__version__} is installed: run `uv sync --extra postgres` (uv.lock pins "
            "the two together)"
        )
    con.execute(f"load {quote_literal(binary)}")


@dataclass(frozen=True)
class Warehouse:
    """The warehouse of a project, as every stage opens it: a DuckDB connection whose
    default catalog is the warehouse. For PostgreSQL that is DuckDB's postgres extension
    attached to the server, so the loader, the analyze stage, the gate and the publisher
    run the same SQL on either; dbt builds in the server with dbt-postgres.

    ``path`` is the DuckDB file, or for PostgreSQL the local anchor of the locks and
    leases the night's processes coordinate with (``<path>.lock``, ``.run.lock``...)."""

    path: Path
    kind: str = "duckdb"
    postgres: PostgresTarget | None = None

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgres"

    def __str__(self) -> str:
        return self.postgres.describe() if self.postgres is not None else str(self.path)

    def exists(self) -> bool:
        return self.is_postgres or self.path.exists()

    def attach(self, con: duckdb.DuckDBPyConnection, alias: str, read_only: bool = False) -> None:
        """Attach the warehouse to ``con`` as ``alias``."""
        mode = " (read_only)" if read_only else ""
        if self.postgres is None:
            con.execute(f"attach {quote_literal(self.path)} as {quote_ident(alias)}{mode}")
            return
        load_postgres_extension(con)
        secret = quote_ident(f"cxkpi_{alias}")
        options = ", ".join(
            f"{key} {quote_literal(value)}"
            for key, value in {
                "host": self.postgres.host,
                "port": str(self.postgres.port),
                "database": self.postgres.database,
                "user": self.postgres.user,
                "password": os.environ.get(PASSWORD_ENV, ""),
            }.items()
        )
        # a temporary secret: DuckDB redacts it in every listing and error message
        con.execute(f"create or replace temporary secret {secret} (type postgres, {options})")
        con.execute(
            f"attach '' as {quote_ident(alias)} (type postgres, secret {secret}"
            + (", read_only" if read_only else "")
            + ")"
        )

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A connection whose unqualified names resolve in the warehouse (for PostgreSQL
        its schema ``public``; cxkpi names every table with its schema)."""
        if self.postgres is None:
            return connect(self.path, read_only=read_only)
        con = connect()
        try:
            self.attach(con, POSTGRES_ALIAS, read_only=read_only)
            con.execute(f"use {POSTGRES_ALIAS}")
        except BaseException:
            con.close()
            raise
        return con

    def writer_lock(self, timeout_s: float = 600.0):
        return writer_lock(self.path, timeout_s)


def as_warehouse(warehouse: Warehouse | Path | str) -> Warehouse:
    """A warehouse given as a DuckDB file path (tests, benchmarks) or as itself."""
    return warehouse if isinstance(warehouse, Warehouse) else Warehouse(Path(warehouse))
