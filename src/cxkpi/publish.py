"""Publish the audited marts: a new complete, versioned file swapped in atomically.

The folder's layout, and reading it: ``cxkpi.published_folder``.

The publisher never writes a file a reader has open. It builds the next version in
temporary folders, fsyncs them, renames the archive folder and the live folder into place,
then renames a new symlink over ``current``: that one rename is the commit point for DuckDB
readers (``cx.duckdb``) and Parquet readers (``latest.json``) alike, so both see the
previous complete version or the new one, never a mix. A reader holding the old file open
keeps its consistent view. A failure or a kill before the commit leaves the previous
version current; the next publish or rollback removes the half-built version (recovery).

Archived files are chmod read-only and checksummed in their manifest; a rollback verifies
every checksum before it restores a version. Everything the pipeline reads back (the
publish log, the gate's last-publish comparisons) comes from the archive's Parquet files,
so a BI client holding ``cx.duckdb`` open read-write blocks nothing.

The DuckDB file is written by duckdb 1.5 in storage format 64, which every duckdb 1.x
reader and client library opens (duckdb 2 writes 69, unreadable by 1.x).

Why this module is above ~400 lines: it is one protocol. What is staged, fsynced and
renamed in which order, where the commit point is, and what recovery and pruning remove
after a kill at any step, are one crash-safety argument that is checked by reading them
together (the kill -9 tests stop it at the build and at the commit); splitting the steps
across modules would hide the order. The read side is apart, in ``published_folder``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from cxkpi import outbox, scopes
from cxkpi.access import load_access
from cxkpi.config import Settings
from cxkpi.dbt_runner import published_models
from cxkpi.errors import PublishError
from cxkpi.loader import file_sha256
from cxkpi.published_folder import (
    CURRENT,
    LIVE,
    current_archive,
    current_manifest,
    kept_versions,
    live_folder,
    read_publish_log,
    verify_version,
    version_folder,
    versions_dir,
)
from cxkpi.warehouse import connect, process_lock, quote_ident, quote_literal

# The readers of the published folder stay reachable as ``publish.<name>`` for the CLI,
# the pipeline and the gate.
__all__ = [
    "PUBLISH_LOG_COLUMNS",
    "PublishResult",
    "current_archive",
    "current_manifest",
    "kept_versions",
    "publish",
    "publish_lock",
    "published_tables",
    "read_publish_log",
    "recover",
    "rollback",
    "verify_version",
]

log = logging.getLogger(__name__)

PUBLISH_LOG_COLUMNS = (
    "version integer not null",
    "run_id varchar not null",
    "logical_date date",  # the night the run was for (a backfill: an earlier night)
    "data_through date",  # the latest day the published data has values for
    "started_at timestamp not null",
    "finished_at timestamp not null",
    "tables varchar not null",
    "row_counts varchar not null",
    "audit_summary varchar",
    "kind varchar not null",  # publish | rollback
    "source_version integer",  # for a rollback: the version restored
    "duration_seconds double",
)
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
LOCK_WAIT_S = 120.0  # a publish waits this long for another publish or rollback to finish


@dataclass(frozen=True)
class PublishResult:
    version: int
    path: Path
    row_counts: dict[str, int]
    scope_timing: dict[str, float] = field(default_factory=dict)  # written, reused, seconds


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(settings: Settings) -> list[Path]:
    published = settings.published_dir
    found = [*published.glob(".cx.duckdb.v*.tmp*"), *published.glob(".*.tmp")]
    for folder in (versions_dir(settings), published / LIVE):
        if folder.is_dir():
            found += folder.glob(".v*.tmp")
    return found


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def recover(settings: Settings) -> list[str]:
    """Undo what a publish or rollback that died left behind (call with the publish lock
    held): its temporary files, and a version archived but never made current. Returns
    what was removed."""
    removed = []
    for leftover in _temporary(settings):
        _remove(leftover)
        removed.append(str(leftover))
    manifest = current_manifest(settings.published_dir)
    current = manifest["version"] if manifest else 0
    for version in kept_versions(settings):
        if version > current:
            shutil.rmtree(version_folder(settings, version))
            removed.append(str(version_folder(settings, version)))
    live = settings.published_dir / LIVE
    if live.is_dir():
        for folder in live.iterdir():
            if folder.name != f"v{current:06d}":
                _remove(folder)  # an uncommitted or an old live copy (open readers keep theirs)
                if folder.name[1:].isdigit() and int(folder.name[1:]) > current:
                    removed.append(str(folder))
    if removed:
        log.warning(
            "recovered the published folder from an interrupted publish: removed %s", removed
        )
    return removed


@contextmanager
def publish_lock(settings: Settings) -> Iterator[None]:
    """Serialise publish and rollback on one published folder (CLI and Airflow alike),
    and recover from one that died before doing anything else."""
    settings.published_dir.mkdir(parents=True, exist_ok=True)
    with process_lock(settings.published_dir / ".publish.lock", "publish or rollback", LOCK_WAIT_S):
        versions_dir(settings).mkdir(exist_ok=True)
        (settings.published_dir / LIVE).mkdir(exist_ok=True)
        _migrate_single_file_layout(settings)
        recover(settings)
        yield


def _symlink(target: str, link: Path) -> None:
    """Point ``link`` at ``target`` by one atomic rename."""
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _ensure_reader_links(settings: Settings) -> None:
    for name in ("cx.duckdb", "latest.json", scopes.SCOPES):
        link = settings.published_dir / name
        if link.is_dir() and not link.is_symlink():  # a copy of the folder followed the link
            shutil.rmtree(link)
        if not link.is_symlink() or os.readlink(link) != f"{CURRENT}/{name}":
            _symlink(f"{CURRENT}/{name}", link)


def _migrate_single_file_layout(settings: Settings) -> None:
    """Older releases renamed plain files over cx.duckdb and latest.json (and a copy of the
    folder that follows links looks the same): copy the current version into a live
    folder, point ``current`` at it, then turn both names into links (each step shows
    readers the same version)."""
    published = settings.published_dir
    if not (published / "cx.duckdb").is_file() or (published / "cx.duckdb").is_symlink():
        return
    manifest = current_manifest(published)
    if manifest is None:
        return
    live = live_folder(settings, manifest["version"])
    staging = live.with_name(f".{live.name}.tmp")
    staging.mkdir(parents=True)
    shutil.copyfile(published / "cx.duckdb", staging / "cx.duckdb")
    shutil.copyfile(published / "latest.json", staging / "latest.json")
    for copied in (live, published / CURRENT):  # a copy of the folder that followed links
        if copied.exists() and not copied.is_symlink():
            shutil.rmtree(copied)
    os.replace(staging, live)
    _symlink(f"{LIVE}/{live.name}", published / CURRENT)
    _ensure_reader_links(settings)
    log.warning(
        "published folder moved to the current/ pointer layout (version %d)", manifest["version"]
    )


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
    """One Parquet file per table, rows in the table's order: ``publish`` created each one
    ``order by all`` and DuckDB scans a table in insertion order, so the same table gives a
    byte-identical file on every night without a second sort (3 s of 12 at --scale 10)."""
    exported = {}
    for table in tables:
        file = folder / f"{table}.parquet"
        con.execute(
            f"copy {quote_ident(table)} to {quote_literal(file)} (format parquet, compression zstd)"
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
    """Make the staged version current: archive folder and live folder into place, then
    one atomic rename of the ``current`` pointer (the commit point for every reader)."""
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    shutil.copyfile(database, staging / "cx.duckdb")  # a copy: the archive is never shared
    for file in sorted(staging.rglob("*"), reverse=True):  # files before their folders
        _fsync(file)
        if file.is_file():
            file.chmod(READ_ONLY)  # folders stay writable: pruning removes them
    _fsync(staging)
    live_staging = database.parent
    (live_staging / "latest.json").write_text(
        json.dumps({**manifest, "path": f"versions/v{version:06d}"}, indent=2), encoding="utf-8"
    )
    _fsync(live_staging / "latest.json")
    _fsync(live_staging)
    os.replace(staging, version_folder(settings, version))
    _fsync(versions_dir(settings))
    os.replace(live_staging, live_folder(settings, version))
    _fsync(live_folder(settings, version).parent)
    _ensure_reader_links(settings)  # (first publish) links into current/, dangling until now
    _symlink(f"{LIVE}/v{version:06d}", settings.published_dir / CURRENT)  # the commit
    _fsync(settings.published_dir)


def _prune(settings: Settings, keep: int, current: int) -> list[int]:
    removed = []
    versions = kept_versions(settings)
    for version in versions[: max(len(versions) - keep, 0)]:
        if version != current:
            shutil.rmtree(version_folder(settings, version))
            removed.append(version)
    live = settings.published_dir / LIVE
    for folder in live.iterdir():
        if folder.name != f"v{current:06d}":
            _remove(folder)  # readers that have an old copy open keep it until they close
    return removed


def _next_version(settings: Settings, history: list[dict]) -> int:
    known = [h["version"] for h in history] + kept_versions(settings)
    return max(known, default=0) + 1


def _manifest(
    version: int,
    row: dict,
    exported: dict,
    database: Path,
    outbox_entry: dict | None,
    scoped: scopes.ScopesResult,
) -> dict:
    def day(value) -> str | None:
        return str(value) if value else None

    extra = {"outbox": outbox_entry} if outbox_entry is not None else {}
    return {
        **extra,
        "version": version,
        "run_id": row["run_id"],
        "logical_date": day(row["logical_date"]),
        "data_through": day(row.get("data_through")),
        "kind": row["kind"],
        "source_version": row["source_version"],
        "finished_at": row["finished_at"].isoformat(),
        "duckdb": {"file": "cx.duckdb", "sha256": file_sha256(database)},
        "tables": exported,
        "scopes": scoped.entries,
        "scope_problems": scoped.problems,
    }


@contextmanager
def _staged_version(settings: Settings, version: int, what: str) -> Iterator[Path]:
    """The temporary DuckDB file and archive folder a new version is built in; on any
    failure before the commit point everything of the new version is removed and the
    published version stays as it was."""
    live_staging = settings.published_dir / LIVE / f".v{version:06d}.tmp"
    staging = _staging_folder(settings, version)
    live_staging.mkdir()
    staging.mkdir()
    try:
        yield live_staging / "cx.duckdb"
    except BaseException as exc:
        committed = (current_manifest(settings.published_dir) or {}).get("version") == version
        if committed:  # failed after the commit point: the new version is published
            raise
        for path in (live_staging, staging, live_folder(settings, version)):
            if path.exists():
                _remove(path)
        if version_folder(settings, version).exists():
            shutil.rmtree(version_folder(settings, version))
        if not isinstance(exc, Exception):
            raise
        raise PublishError(f"{what} failed ({exc}); the published version is unchanged") from exc


def _staging_folder(settings: Settings, version: int) -> Path:
    return versions_dir(settings) / f".v{version:06d}.tmp"


def _seal_and_commit(
    settings: Settings,
    version: int,
    database: Path,
    history: list[dict],
    row: dict,
    models: list[dict],
    night_outbox: outbox.Outbox | None = None,
) -> scopes.ScopesResult:
    """Add the publish log to the staged file, export it as Parquet, write the night's
    case outbox and every role's extract and report beside it, commit it."""
    from cxkpi.report import render_report

    staging = _staging_folder(settings, version)
    outbox_entry = night_outbox.write(staging, _fsync) if night_outbox is not None else None
    con = connect(database)
    try:
        _write_publish_log(con, history, row)
        exported = _export_parquet(con, [*json.loads(row["tables"]), "publish_log"], staging)
        con.execute("checkpoint")
    finally:
        con.close()
    _fsync(database)
    scoped = scopes.write_scopes(
        database,
        staging,
        database.parent,
        load_access(settings.access_file, settings.org_levels),
        settings.org_levels,
        models,
        _kept_manifests(settings),
        version,
        _fsync,
        render_report,
    )
    for problem in scoped.problems:
        log.warning("access file: %s", problem)
    _commit(
        settings,
        version,
        database,
        staging,
        _manifest(version, row, exported, database, outbox_entry, scoped),
    )
    return scoped


def _kept_manifests(settings: Settings) -> list[tuple[Path, dict]]:
    """The kept versions' folders and manifests, newest first (what scopes reuse)."""
    kept = []
    for version in reversed(kept_versions(settings)):
        folder = version_folder(settings, version)
        try:
            kept.append((folder, json.loads((folder / "manifest.json").read_text("utf-8"))))
        except (OSError, ValueError):  # a damaged version lends nothing
            continue
    return kept


def _night_outbox(settings: Settings, logical_date: str | None) -> outbox.Outbox | None:
    """The case outbox of the night being published (none for a run without a logical
    date), after recording the current version's outbox where a kill left it unrecorded.
    Run under the warehouse's writer lock."""
    if logical_date is None:
        return None
    con = settings.warehouse.connect()
    try:
        outbox.ensure_ledger(con)
        manifest = current_manifest(settings.published_dir)
        if manifest and manifest.get("outbox"):
            outbox.record_published(con, version_folder(settings, manifest["version"]), manifest)
        return outbox.prepare(con, settings, date.fromisoformat(logical_date))
    finally:
        con.close()


def _record_outbox(settings: Settings, night_outbox: outbox.Outbox, run_id: str, version: int):
    with settings.warehouse.writer_lock():
        con = settings.warehouse.connect()
        try:
            outbox.record(con, night_outbox, run_id, version)
        finally:
            con.close()


def published_tables(settings: Settings) -> list[dict]:
    """What a publish copies: the dbt models tagged ``published`` and the tables the
    analyze stage writes next to them (name, schema); the gate audits the same list."""
    from cxkpi.methods.factor_importance import TABLE as IMPORTANCE_TABLE

    models = published_models(settings)
    if not models:
        raise PublishError("no dbt model is tagged 'published': nothing to publish")
    importance = {"name": IMPORTANCE_TABLE[1], "schema": IMPORTANCE_TABLE[0]}
    return [*models, {**importance, "columns": [], "scope": {"rows": "company"}}]


def _data_through(con) -> object:
    """The latest day the published KPI values cover (None if there are none)."""
    try:
        found = con.execute(
            "select max(period_start) from kpi_values where period_grain = 'day'"
        ).fetchone()
    except Exception:  # noqa: BLE001 - a project without kpi_values publishes no such date
        return None
    return found[0] if found else None


def publish(
    settings: Settings,
    run_id: str,
    logical_date: str | None,
    started_at: datetime,
    audit_summary: dict | None = None,
) -> PublishResult:
    models = published_tables(settings)
    with publish_lock(settings):
        _serve_in_postgres(settings, models, None)
        history = read_publish_log(settings.published_path)
        version = _next_version(settings, history)
        row_counts: dict[str, int] = {}
        night_outbox = None
        with _staged_version(settings, version, f"publishing version {version}") as database:
            with settings.warehouse.writer_lock():
                night_outbox = _night_outbox(settings, logical_date)
                con = connect(database)
                try:
                    settings.warehouse.attach(con, "wh", read_only=True)
                    for model in models:
                        name = quote_ident(model["name"])
                        source = f"wh.{quote_ident(model['schema'])}.{name}"
                        # rows in a fixed order: the same marts give the same file
                        con.execute(f"create table {name} as select * from {source} order by all")
                        count = con.execute(f"select count(*) from {name}").fetchone()
                        row_counts[model["name"]] = int(count[0]) if count else 0
                    con.execute("detach wh")
                    data_through = _data_through(con)
                finally:
                    con.close()
            finished = datetime.now(UTC).replace(tzinfo=None)
            row = {
                "version": version,
                "run_id": run_id,
                "logical_date": logical_date,
                "data_through": data_through,
                "started_at": started_at.replace(tzinfo=None),
                "finished_at": finished,
                "tables": json.dumps([m["name"] for m in models]),
                "row_counts": json.dumps(row_counts, sort_keys=True),
                "audit_summary": json.dumps(audit_summary or {}, sort_keys=True),
                "kind": "publish",
                "source_version": None,
                "duration_seconds": (finished - started_at.replace(tzinfo=None)).total_seconds(),
            }
            scoped = _seal_and_commit(
                settings, version, database, history, row, models, night_outbox
            )
        if night_outbox is not None:
            # after the commit: a kill before this line is repaired by the next publish
            _record_outbox(settings, night_outbox, run_id, version)
        _serve_in_postgres(settings, models, version)
        removed = _prune(settings, settings.keep_versions, version)
    log.info("published version %d (%s); pruned %s", version, row_counts, removed)
    return PublishResult(version, settings.published_path, row_counts, _scope_timing(scoped))


def _serve_in_postgres(settings: Settings, models: list[dict], version: int | None) -> None:
    """A PostgreSQL warehouse's night publishes into the server too
    (``cxkpi.postgres_publish``): ``version`` (just committed in the folder), or, with
    None, the folder's current version if the server is behind it (a kill between the
    two commits). A failure here leaves the server on its previous version."""
    if settings.warehouse_type != "postgres":
        return
    from cxkpi import postgres_publish

    access = load_access(settings.access_file, settings.org_levels)
    if version is None:
        manifest = current_manifest(settings.published_dir)
        archived = version_folder(settings, manifest["version"]) / "cx.duckdb" if manifest else None
        postgres_publish.sync(settings, archived, models, access)
        return
    try:
        postgres_publish.publish_version(
            settings, version_folder(settings, version) / "cx.duckdb", models, access
        )
    except Exception as exc:
        raise PublishError(
            f"version {version} is published in {settings.published_dir}, but publishing it "
            f"into {settings.warehouse} failed ({exc}); the server still serves its previous "
            "version: the next publish or rollback publishes it there"
        ) from exc


def _scope_timing(scoped: scopes.ScopesResult) -> dict[str, float]:
    return {
        "scopes_written": scoped.written,
        "scopes_reused": scoped.reused,
        "scopes_seconds": round(scoped.seconds, 2),
    }


def rollback(settings: Settings, to_version: int | None = None) -> PublishResult:
    """Publish the content of an earlier kept version again, as a new version.

    Every file of that version is first checked against its manifest's checksums: a
    version changed since it was published is refused. The history is kept: the new
    version's publish_log is the whole log so far plus a ``rollback`` row naming the
    version restored.
    """
    models = published_tables(settings)
    with publish_lock(settings):
        _serve_in_postgres(settings, models, None)
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
        manifest = verify_version(settings, to_version)
        version = _next_version(settings, history)
        source = version_folder(settings, to_version)
        started = datetime.now(UTC).replace(tzinfo=None)
        what = f"rollback to version {to_version}"
        with _staged_version(settings, version, what) as database:
            shutil.copyfile(source / "cx.duckdb", database)
            if file_sha256(database) != manifest["duckdb"]["sha256"]:
                raise PublishError(f"{source / 'cx.duckdb'} changed while it was being copied")
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
            scoped = _seal_and_commit(settings, version, database, history, row, models)
        _serve_in_postgres(settings, models, version)
        _prune(settings, settings.keep_versions, version)
    counts = json.loads(row["row_counts"])
    return PublishResult(version, settings.published_path, counts, _scope_timing(scoped))
