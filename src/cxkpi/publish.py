"""Publish the audited marts to ``published/cx.duckdb``: a new complete file, swapped in.

The publisher never writes the file readers have open. It builds the next version in a
temporary file next to it, checkpoints and fsyncs it, and renames it over the published
path (atomic on POSIX). A reader that opened the old file keeps a consistent view of it; a
reader that opens after the rename sees the new version; nobody sees a mix, even if the
process dies mid-way (the temporary file is then simply left over and removed next time).

The file is written by duckdb 1.5 with its default storage format, which duckdb 1.x readers
(and BI drivers built on them) open; duckdb 2's format would not be (see tests).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cxkpi.config import Settings
from cxkpi.dbt_runner import published_models
from cxkpi.errors import PublishError
from cxkpi.warehouse import connect, quote_ident, quote_literal, writer_lock

log = logging.getLogger(__name__)

PUBLISH_LOG_DDL = """
create table publish_log (
    version integer not null,
    run_id varchar not null,
    logical_date date,
    started_at timestamp not null,
    finished_at timestamp not null,
    tables varchar not null,
    row_counts varchar not null,
    audit_summary varchar
)"""


@dataclass(frozen=True)
class PublishResult:
    version: int
    path: Path
    row_counts: dict[str, int]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_publish_log(published_path: Path) -> list[dict]:
    """The publish history in the currently published file (empty if none yet)."""
    if not published_path.exists():
        return []
    con = connect(published_path, read_only=True)
    try:
        cursor = con.execute("select * from publish_log order by version")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def publish(
    settings: Settings,
    run_id: str,
    logical_date: str | None,
    started_at: datetime,
    audit_summary: dict | None = None,
) -> PublishResult:
    from cxkpi.analysis.drivers import TABLE as DRIVER_TABLE

    models = published_models(settings)
    # tables the analyze stage writes next to the dbt marts
    models.append({"name": DRIVER_TABLE[1], "schema": DRIVER_TABLE[0]})
    if not models:
        raise PublishError("no dbt model is tagged 'published': nothing to publish")
    target = settings.published_path
    target.parent.mkdir(parents=True, exist_ok=True)
    history = read_publish_log(target)
    version = (history[-1]["version"] if history else 0) + 1
    temporary = target.parent / f".{target.name}.v{version}.tmp"
    for leftover in target.parent.glob(f".{target.name}.v*.tmp*"):
        leftover.unlink()  # from a publish that died: never visible to readers

    row_counts: dict[str, int] = {}
    try:
        with writer_lock(settings.warehouse_path):
            con = connect(temporary)
            try:
                con.execute(f"attach {quote_literal(settings.warehouse_path)} as wh (read_only)")
                for model in models:
                    source = f"wh.{quote_ident(model['schema'])}.{quote_ident(model['name'])}"
                    con.execute(
                        f"create table {quote_ident(model['name'])} as select * from {source}"
                    )
                    count = con.execute(
                        f"select count(*) from {quote_ident(model['name'])}"
                    ).fetchone()
                    row_counts[model["name"]] = int(count[0]) if count else 0
                con.execute("detach wh")
                con.execute(PUBLISH_LOG_DDL)
                for row in history:
                    con.execute(
                        "insert into publish_log values (?,?,?,?,?,?,?,?)", list(row.values())
                    )
                con.execute(
                    "insert into publish_log values (?,?,?,?,?,?,?,?)",
                    [
                        version,
                        run_id,
                        logical_date,
                        started_at.replace(tzinfo=None),
                        datetime.now(UTC).replace(tzinfo=None),
                        json.dumps([m["name"] for m in models]),
                        json.dumps(row_counts, sort_keys=True),
                        json.dumps(audit_summary or {}, sort_keys=True),
                    ],
                )
                con.execute("checkpoint")
            finally:
                con.close()
        _fsync(temporary)
        os.replace(temporary, target)
        _fsync(target.parent)
    except Exception as exc:
        temporary.unlink(missing_ok=True)
        raise PublishError(
            f"publishing version {version} failed ({exc}); {target} is unchanged"
        ) from exc
    log.info("published version %d to %s: %s", version, target, row_counts)
    return PublishResult(version, target, row_counts)
