"""What each dbt build was built from, so that a night with nothing new does no dbt work.

A build is determined by two things:

- the **fingerprint**: everything that decides what dbt computes from given data - the
  dbt project's files (generated KPI models and copied package macros included), the dbt
  vars cxkpi passes, the dbt target and the cxkpi version. When it changes, the previous
  build's tables mean something else: the next build is a full refresh.
- the **watermark**: what the warehouse's ``raw`` tables held (row count and a digest of
  every row, per table). The loader changes them for a new, corrected or failed file; so
  does anything else that writes raw rows.

Each attempt is recorded in ``cxkpi_state.dbt_builds`` (running, then succeeded or failed).
A build is needed unless the latest attempt succeeded with the same fingerprint and
watermark. The analyze stage, whose inputs are dbt's outputs, records there that it ran.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cxkpi
from cxkpi import dbt_runner
from cxkpi.config import Settings
from cxkpi.loader import RAW_SCHEMA
from cxkpi.warehouse import quote_ident

STATE_SCHEMA = "cxkpi_state"
BUILDS_TABLE = f"{STATE_SCHEMA}.dbt_builds"
# Folders of the dbt project that dbt writes, not reads.
_DBT_OUTPUT_DIRS = frozenset({"target", "logs", "dbt_packages"})


@dataclass(frozen=True)
class BuildInputs:
    fingerprint: str
    watermark: str


@dataclass(frozen=True)
class BuildRecord:
    build_id: int
    run_id: str
    status: str  # running | succeeded | failed
    finished_at: datetime | None
    full_refresh: bool
    fingerprint: str
    watermark: str
    analyzed_at: datetime | None
    # the full gate passed on this build's outputs, with these suites and settings
    gate_key: str | None = None
    published_version: int | None = None  # the version published from them


def _project_files(project_dir: Path, skip: frozenset[str] = frozenset()) -> list[Path]:
    """A folder's files, hidden ones and those under a top folder in ``skip`` left out."""
    files = []
    for path in project_dir.rglob("*"):
        parts = path.relative_to(project_dir).parts
        if parts[0] in skip or any(p.startswith(".") for p in parts):
            continue
        if path.is_file():
            files.append(path)
    return sorted(files)


def digest_folder(digest: Any, folder: Path, skip: frozenset[str] = frozenset()) -> None:
    """Add every file of ``folder`` (its path in the folder and its bytes) to ``digest``."""
    for path in _project_files(folder, skip):
        digest.update(b"\0" + path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())


def fingerprint(settings: Settings) -> str:
    """A digest of everything but the data that decides dbt's output (module docstring)."""
    digest = hashlib.sha256()
    settings_text = json.dumps(
        {
            "cxkpi": cxkpi.__version__,
            "target": settings.dbt_target,
            "vars": dbt_runner.dbt_vars(settings),
        },
        sort_keys=True,
    )
    digest.update(settings_text.encode())
    # the dbt project's files dbt reads, not those it writes
    digest_folder(digest, settings.dbt_project_dir, _DBT_OUTPUT_DIRS)
    return digest.hexdigest()


def watermark(settings: Settings) -> str:
    """Row count and a digest of every row of each ``raw`` table, as JSON text."""
    con = settings.warehouse.connect(read_only=True)
    try:
        tables = [
            row[0]
            for row in con.execute(
                """select table_name from information_schema.tables
                   where table_schema = ? order by table_name""",
                [RAW_SCHEMA],
            ).fetchall()
        ]
        held = {}
        for table in tables:
            rows, digest = con.execute(
                f"""select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar
                    from {RAW_SCHEMA}.{quote_ident(table)} as t"""
            ).fetchone() or (0, "0")
            held[table] = [rows, digest]
    finally:
        con.close()
    return json.dumps(held, sort_keys=True)


def current_inputs(settings: Settings) -> BuildInputs:
    return BuildInputs(fingerprint(settings), watermark(settings))


def _ensure_table(con) -> None:
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(
        f"""create table if not exists {BUILDS_TABLE} (
            build_id integer primary key,
            run_id varchar not null,
            started_at timestamp not null,
            finished_at timestamp,
            status varchar not null,
            full_refresh boolean not null,
            fingerprint varchar not null,
            watermark varchar not null,
            analyzed_at timestamp,
            gate_key varchar,
            published_version integer
        )"""
    )
    # warehouses built before these columns existed
    con.execute(f"alter table {BUILDS_TABLE} add column if not exists gate_key varchar")
    con.execute(f"alter table {BUILDS_TABLE} add column if not exists published_version integer")


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _records(settings: Settings, where: str = "") -> list[BuildRecord]:
    if not settings.warehouse.exists():
        return []
    con = settings.warehouse.connect(read_only=True)
    try:
        known = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = 'dbt_builds'",
            [STATE_SCHEMA],
        ).fetchone()
        if not known or not known[0]:
            return []
        cursor = con.execute(f"select * from {BUILDS_TABLE} {where} order by build_id desc limit 1")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    fields = set(BuildRecord.__dataclass_fields__)
    # columns added later are absent from older warehouses: their defaults apply
    return [BuildRecord(**{k: v for k, v in row.items() if k in fields}) for row in rows]


def latest(settings: Settings) -> BuildRecord | None:
    """The latest build attempt, whatever became of it."""
    found = _records(settings)
    return found[0] if found else None


def latest_succeeded(settings: Settings) -> BuildRecord | None:
    found = _records(settings, "where status = 'succeeded'")
    return found[0] if found else None


def start(settings: Settings, run_id: str, inputs: BuildInputs, full_refresh: bool) -> int:
    """Record a build attempt as running; its id."""
    with settings.warehouse.writer_lock():
        con = settings.warehouse.connect()
        try:
            _ensure_table(con)
            row = con.execute(f"select coalesce(max(build_id), 0) + 1 from {BUILDS_TABLE}")
            build_id = int((row.fetchone() or (1,))[0])
            con.execute(
                f"""insert into {BUILDS_TABLE} (build_id, run_id, started_at, status,
                        full_refresh, fingerprint, watermark)
                    values (?, ?, ?, 'running', ?, ?, ?)""",
                [
                    build_id,
                    run_id,
                    _utc_now(),
                    full_refresh,
                    inputs.fingerprint,
                    inputs.watermark,
                ],
            )
        finally:
            con.close()
    return build_id


def _update(settings: Settings, build_id: int, assignments: str, value: object = None) -> None:
    """Set ``assignments`` (one ``?``: ``value``, by default now) on a build."""
    with settings.warehouse.writer_lock():
        con = settings.warehouse.connect()
        try:
            _ensure_table(con)
            con.execute(
                f"update {BUILDS_TABLE} set {assignments} where build_id = ?",
                [_utc_now() if value is None else value, build_id],
            )
        finally:
            con.close()


def finish(settings: Settings, build_id: int, succeeded: bool) -> None:
    status = "succeeded" if succeeded else "failed"
    _update(settings, build_id, f"finished_at = ?, status = '{status}'")


def mark_analyzed(settings: Settings, build_id: int) -> None:
    _update(settings, build_id, "analyzed_at = ?")


def mark_gated(settings: Settings, build_id: int, gate_key: str) -> None:
    """The full gate passed on this build's outputs; ``gate_key`` names what it checked
    with (the suites and settings: ``pipeline.gate_key``)."""
    _update(settings, build_id, "gate_key = ?", gate_key)


def mark_published(settings: Settings, build_id: int, version: int) -> None:
    _update(settings, build_id, "published_version = ?", version)


def current_build(settings: Settings) -> BuildRecord | None:
    """The build whose outputs the warehouse holds, if neither data nor definitions moved
    since it succeeded (else None: what dbt built is not what the raw tables say)."""
    built = latest(settings)
    return built if is_unchanged(built, current_inputs(settings)) else None


def is_unchanged(previous: BuildRecord | None, inputs: BuildInputs) -> bool:
    """Whether ``previous``, the latest build attempt, succeeded on exactly ``inputs``."""
    return (
        previous is not None
        and previous.status == "succeeded"
        and previous.fingerprint == inputs.fingerprint
        and previous.watermark == inputs.watermark
    )


def full_refresh_reason(settings: Settings, inputs: BuildInputs, requested: bool) -> str | None:
    """Why this build must rebuild every incremental model, or None if it need not."""
    if requested:
        return "requested"
    succeeded = latest_succeeded(settings)
    if succeeded is None:
        return "no earlier build of this warehouse"
    if succeeded.fingerprint != inputs.fingerprint:
        return f"the dbt project, definitions or settings changed since build {succeeded.build_id}"
    return None
