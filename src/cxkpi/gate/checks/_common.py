"""Helpers shared by the check kinds: table names, row fetching, masked samples, the
run's load scope and the last published version."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from cxkpi.gate.registry import Outcome
from cxkpi.gate.report import SAMPLE_TEXT
from cxkpi.warehouse import quote_ident


def table_sql(table: str) -> str:
    schema, name = table.split(".")
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(found and found[0])


def require_table(con: duckdb.DuckDBPyConnection, table: str) -> Outcome | None:
    """A missing table fails the check (it is not silently passed)."""
    if table_exists(con, table):
        return None
    return Outcome(False, message=f"table {table} does not exist in the warehouse")


def fetch_dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def mask_pii(text: str) -> str:
    """``text`` with personal data replaced by [email], [phone]... (cxkpi.pii)."""
    from cxkpi import pii  # here: validating suites needs no phone-number tables

    return pii.detector().mask(text)


def shown(value: Any) -> Any:
    """A sampled value as it may appear in a message: PII masked, long text shortened."""
    if isinstance(value, str):
        text = mask_pii(value)
        return text if len(text) <= SAMPLE_TEXT else text[: SAMPLE_TEXT - 1] + "…"
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float):
        return round(value, 3)
    return value


def shown_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: shown(v) for k, v in row.items()}


def pct(share: float) -> str:
    return f"{share:.1%}"


LOAD_SCOPE = """
    -- files of this run; a file with the content of one loaded before under another
    -- path is a re-delivery: its rows were loaded (or rejected) then, it adds nothing.
    with run_files as (
        select f.*,
               exists (
                   select 1 from raw.load_files b
                   where b.file_sha256 = f.file_sha256 and b.source_file <> f.source_file
                     and b.status in ('loaded', 'replaced') and b.loaded_at <= f.loaded_at
               ) as redelivered
        from raw.load_files f
        where f.batch_id = $run_id
    )
"""


def source_filter(params: dict[str, Any], column: str = "source_name") -> str:
    if not params.get("sources"):
        return ""
    names = ", ".join("'" + s.replace("'", "''") + "'" for s in params["sources"])
    return f" and {column} in ({names})"


def published_parquet(published: Path | None, table: str) -> Path | None:
    """The current published version's archived Parquet file of ``table`` (None if nothing
    is published or the table is not in it): immutable, so a BI client holding the live
    ``cx.duckdb`` open, even read-write, cannot block or change the comparison."""
    if published is None:
        return None
    from cxkpi import publish  # here: validating suites registers the checks, runs none

    archive = publish.current_archive(published.parent)
    if archive is None or not (archive / f"{table}.parquet").is_file():
        return None
    return archive / f"{table}.parquet"


def last_publish(published: Path | None) -> dict[str, Any] | None:
    """The publish_log row of the current version (None if nothing is published)."""
    from cxkpi import publish

    history = publish.read_publish_log(published) if published is not None else []
    return history[-1] if history else None
