"""Publish the audited marts: a new complete, versioned file swapped in atomically.

Layout of the published folder::

    published/cx.duckdb                  the current version (what BI tools open)
    published/latest.json                manifest of the current version (Parquet readers)
    published/versions/v000007/          one folder per kept version, never modified:
        cx.duckdb                          the DuckDB file of that version
        <table>.parquet                    every published table as Parquet
        manifest.json                      version, run, schema, row counts, checksums

The publisher never writes a file a reader has open. It builds the next version in
temporary files, fsyncs them, renames the version folder into place, then renames the
new DuckDB file over ``cx.duckdb`` (the commit point for DuckDB readers) and the new
manifest over ``latest.json`` (the commit point for Parquet readers). Renames are atomic on
POSIX: a reader sees the previous complete version or the new one, never a mix, and a
reader holding the old file open keeps its consistent view. A process killed anywhere
leaves the previous version in place; leftovers are removed by the next publish.

The DuckDB file is written by duckdb 1.5 in storage format 64, which every duckdb 1.x
reader and driver opens (duckdb 2 writes 69, unreadable by 1.x).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cxkpi.config import Settings
from cxkpi.dbt_runner import published_models
from cxkpi.errors import PublishError
from cxkpi.loader import file_sha256
from cxkpi.warehouse import connect, quote_ident, quote_literal, writer_lock

log = logging.getLogger(__name__)

PUBLISH_LOG_COLUMNS = (
    "version integer not null",
    "run_id varchar not null",
    "logical_date date",
    "started_at timestamp not null",
    "finished_at timestamp not null",
    "tables varchar not null",
    "row_counts varchar not null",
    "audit_summary varchar",
    "kind varchar not null",  # publish | rollback
    "source_version integer",  # for a rollback: the version restored
    "duration_seconds double",
)


@dataclass(frozen=True)
class PublishResult:
    version: int
    path: Path
    row_counts: dict[str, int]


def versions_dir(settings: Settings) -> Path:
    return settings.published_dir / "versions"


def version_folder(settings: Settings, version: int) -> Path:
    return versions_dir(settings) / f"v{version:06d}"


def kept_versions(settings: Settings) -> list[int]:
    folder = versions_dir(settings)
    if not folder.is_dir():
        return []
    return sorted(
        int(p.name[1:])
        for p in folder.iterdir()
        if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit()
    )


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
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    return rows


def _clean_leftovers(settings: Settings) -> None:
    """Temporary files and folders of a publish that died: never visible to readers."""
    published = settings.published_dir
    for leftover in published.glob(".cx.duckdb.v*.tmp*"):
        leftover.unlink()
    for leftover in published.glob(".latest.json.*.tmp"):
        leftover.unlink()
    if versions_dir(settings).is_dir():
        for leftover in versions_dir(settings).glob(".v*.tmp"):
            shutil.rmtree(leftover)


def _write_publish_log(con, history: list[dict], row: dict) -> None:
    con.execute("create or replace table publish_log (" + ", ".join(PUBLISH_LOG_COLUMNS) + ")")
    names = [c.split()[0] for c in PUBLISH_LOG_COLUMNS]
    placeholders = ", ".join("?" for _ in names)
    for entry in [*history, row]:
        con.execute(
            f"insert into publish_log values ({placeholders})",
            [entry.get(name) or ("publish" if name == "kind" else None) for name in names],
        )


def _export_parquet(con, tables: list[str], folder: Path) -> dict[str, dict]:
    exported = {}
    for table in tables:
        file = folder / f"{table}.parquet"
        con.execute(
            f"copy (select * from {quote_ident(table)}) to {quote_literal(file)} "
            "(format parquet, compression zstd)"
        )
        described = con.execute(f"describe {quote_ident(table)}").fetchall()
        rows = con.execute(f"select count(*) from {quote_ident(table)}").fetchone()
        _fsync(file)
        exported[table] = {
            "file": file.name,
            "rows": int(rows[0]) if rows else 0,
            "sha256": file_sha256(file),
            "columns": [{"name": c[0], "type": c[1]} for c in described],
        }
    return exported


def _commit(
    settings: Settings, version: int, database: Path, staging: Path, manifest: dict
) -> None:
    """Make the staged version current: the version folder, then cx.duckdb, then
    latest.json, each by an atomic rename."""
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    os.link(database, staging / "cx.duckdb")
    _fsync(staging / "manifest.json")
    _fsync(staging)
    final = version_folder(settings, version)
    os.replace(staging, final)
    _fsync(final.parent)
    os.replace(database, settings.published_path)
    latest_tmp = settings.published_dir / f".latest.json.{version}.tmp"
    latest_tmp.write_text(
        json.dumps({**manifest, "path": str(final.relative_to(settings.published_dir))}, indent=2),
        encoding="utf-8",
    )
    _fsync(latest_tmp)
    os.replace(latest_tmp, settings.published_dir / "latest.json")
    _fsync(settings.published_dir)


def _prune(settings: Settings, keep: int, current: int) -> list[int]:
    removed = []
    versions = kept_versions(settings)
    for version in versions[: max(len(versions) - keep, 0)]:
        if version != current:
            shutil.rmtree(version_folder(settings, version))
            removed.append(version)
    return removed


def _next_version(settings: Settings, history: list[dict]) -> int:
    known = [h["version"] for h in history] + kept_versions(settings)
    return max(known, default=0) + 1


def _manifest(version: int, row: dict, exported: dict, database: Path) -> dict:
    return {
        "version": version,
        "run_id": row["run_id"],
        "logical_date": str(row["logical_date"]) if row["logical_date"] else None,
        "kind": row["kind"],
        "source_version": row["source_version"],
        "finished_at": row["finished_at"].isoformat(),
        "duckdb": {"file": "cx.duckdb", "sha256": file_sha256(database)},
        "tables": exported,
    }


@contextmanager
def _staged_version(settings: Settings, version: int, what: str) -> Iterator[Path]:
    """The temporary DuckDB file and version folder a new version is built in; on any
    failure both are removed and the published version stays as it was."""
    database = settings.published_dir / f".cx.duckdb.v{version}.tmp"
    staging = _staging_folder(settings, version)
    staging.mkdir()
    try:
        yield database
    except Exception as exc:
        database.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise PublishError(f"{what} failed ({exc}); the published version is unchanged") from exc


def _staging_folder(settings: Settings, version: int) -> Path:
    return versions_dir(settings) / f".v{version:06d}.tmp"


def _seal_and_commit(
    settings: Settings, version: int, database: Path, history: list[dict], row: dict
) -> None:
    """Add the publish log to the staged file, export it as Parquet, commit it."""
    staging = _staging_folder(settings, version)
    con = connect(database)
    try:
        _write_publish_log(con, history, row)
        exported = _export_parquet(con, [*json.loads(row["tables"]), "publish_log"], staging)
        con.execute("checkpoint")
    finally:
        con.close()
    _fsync(database)
    _commit(settings, version, database, staging, _manifest(version, row, exported, database))


def published_tables(settings: Settings) -> list[dict]:
    """What a publish copies: the dbt models tagged ``published`` and the tables the
    analyze stage writes next to them (name, schema); the gate audits the same list."""
    from cxkpi.analysis.drivers import TABLE as DRIVER_TABLE

    models = published_models(settings)
    if not models:
        raise PublishError("no dbt model is tagged 'published': nothing to publish")
    return [*models, {"name": DRIVER_TABLE[1], "schema": DRIVER_TABLE[0]}]


def publish(
    settings: Settings,
    run_id: str,
    logical_date: str | None,
    started_at: datetime,
    audit_summary: dict | None = None,
) -> PublishResult:
    models = published_tables(settings)
    settings.published_dir.mkdir(parents=True, exist_ok=True)
    versions_dir(settings).mkdir(exist_ok=True)
    _clean_leftovers(settings)
    history = read_publish_log(settings.published_path)
    version = _next_version(settings, history)
    row_counts: dict[str, int] = {}
    with _staged_version(settings, version, f"publishing version {version}") as database:
        with writer_lock(settings.warehouse_path):
            con = connect(database)
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
            finally:
                con.close()
        finished = datetime.now(UTC).replace(tzinfo=None)
        row = {
            "version": version,
            "run_id": run_id,
            "logical_date": logical_date,
            "started_at": started_at.replace(tzinfo=None),
            "finished_at": finished,
            "tables": json.dumps([m["name"] for m in models]),
            "row_counts": json.dumps(row_counts, sort_keys=True),
            "audit_summary": json.dumps(audit_summary or {}, sort_keys=True),
            "kind": "publish",
            "source_version": None,
            "duration_seconds": (finished - started_at.replace(tzinfo=None)).total_seconds(),
        }
        _seal_and_commit(settings, version, database, history, row)
    removed = _prune(settings, settings.keep_versions, version)
    log.info("published version %d (%s); pruned %s", version, row_counts, removed)
    return PublishResult(version, settings.published_path, row_counts)


def rollback(settings: Settings, to_version: int | None = None) -> PublishResult:
    """Publish the content of an earlier kept version again, as a new version.

    The history is kept: the new version's publish_log is the whole log so far plus a
    ``rollback`` row naming the version restored.
    """
    history = read_publish_log(settings.published_path)
    if not history:
        raise PublishError(f"nothing is published at {settings.published_path}")
    current = history[-1]["version"]
    available = [v for v in kept_versions(settings) if v != current]
    if to_version is None:
        earlier = [v for v in available if v < current]
        if not earlier:
            raise PublishError(f"no earlier version is kept (kept: {kept_versions(settings)})")
        to_version = earlier[-1]
    if to_version not in available:
        raise PublishError(
            f"version {to_version} is not kept; kept versions: {kept_versions(settings)} "
            f"(current {current}); keep more with keep_versions in cxkpi.yml"
        )
    _clean_leftovers(settings)
    version = _next_version(settings, history)
    source = version_folder(settings, to_version)
    started = datetime.now(UTC).replace(tzinfo=None)
    what = f"rollback to version {to_version}"
    with _staged_version(settings, version, what) as database:
        shutil.copyfile(source / "cx.duckdb", database)
        restored = next(h for h in history if h["version"] == to_version)
        finished = datetime.now(UTC).replace(tzinfo=None)
        row = {
            **restored,
            "version": version,
            "run_id": f"rollback-to-v{to_version}",
            "started_at": started,
            "finished_at": finished,
            "kind": "rollback",
            "source_version": to_version,
            "duration_seconds": (finished - started).total_seconds(),
        }
        _seal_and_commit(settings, version, database, history, row)
    _prune(settings, settings.keep_versions, version)
    return PublishResult(version, settings.published_path, json.loads(row["row_counts"]))
