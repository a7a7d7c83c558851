"""A whole load: every file of every source, one warehouse session per source under the
writer lock, corrections followed by re-evaluating the files whose rows were rejected as
duplicates of the replaced keys; :class:`LoadError` at the end if any file failed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from cxkpi.errors import ConfigError, LoadError
from cxkpi.loader.count import DEFAULT_MAX_RECORD_BYTES
from cxkpi.loader.files import FileResult, load_file
from cxkpi.loader.registry import (
    already_loaded_from,
    loaded_checksums,
    migrate_absolute_paths,
    registry_name,
)
from cxkpi.loader.schema import RAW_SCHEMA, ensure_raw_schema
from cxkpi.sources import SourceSpec
from cxkpi.warehouse import Warehouse, as_warehouse, connect

log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    batch_id: str
    files: list[FileResult] = field(default_factory=list)
    # optional sources (required: false) no file of which was in landing_dir
    absent_sources: list[str] = field(default_factory=list)

    def total(self, attribute: str) -> int:
        return sum(getattr(f, attribute) for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def as_dict(self) -> dict:
        return {
            "batch_id": self.batch_id,
            "files": [asdict(f) for f in self.files],
            "absent_sources": self.absent_sources,
        }


@contextmanager
def _warehouse_session(warehouse: Warehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection with the warehouse attached as ``wh``, under the writer lock."""
    with warehouse.writer_lock():
        con = connect()
        try:
            warehouse.attach(con, "wh")
            ensure_raw_schema(con, "wh")
            yield con
            con.execute("detach wh")
        finally:
            con.close()


def _load_source(
    warehouse: Warehouse,
    landing_dir: Path,
    spec: SourceSpec,
    batch_id: str,
    max_record_bytes: int,
    reevaluate: dict[str, str] | None = None,
) -> list[FileResult]:
    """Load every file of ``spec`` (or, with ``reevaluate``, those files again, for the
    reason given per file); no result at all for an optional source without files."""
    try:
        paths = spec.files(landing_dir)
    except ConfigError as exc:
        return [FileResult(spec.name, spec.entity, spec.path, "", 0, "failed", message=str(exc))]
    results = []
    if not paths and reevaluate is None:
        if not spec.required:
            log.info(
                "%s: no file matches %s; the source is optional (required: false), 0 rows",
                spec.name,
                spec.path,
            )
            return []
        results.append(
            FileResult(
                spec.name,
                spec.entity,
                spec.path,
                "",
                0,
                status="failed",
                message=(
                    f"no file matches {spec.path} in {landing_dir}: source {spec.name} is "
                    f"required; if its export does not arrive every night, declare "
                    f"required: false in {spec.declared_in}"
                ),
            )
        )
    # One warehouse session per source: DuckDB has a single writer, and attaching
    # (then checkpointing on detach) once per source rather than per file is far cheaper.
    with _warehouse_session(warehouse) as con:
        migrate_absolute_paths(con, landing_dir, spec)
        registry = loaded_checksums(con, spec.name)
        for path in paths:
            name = registry_name(path, landing_dir)
            if reevaluate is not None and name not in reevaluate:
                continue
            result = load_file(
                con,
                spec,
                path,
                batch_id,
                registry.get(name),
                source_file=name,
                max_record_bytes=max_record_bytes,
                reevaluate=(reevaluate or {}).get(name, ""),
            )
            log.info(
                "%s %s: %s read=%d loaded=%d rejected=%d %s",
                spec.name,
                name,
                result.status,
                result.rows_read,
                result.rows_loaded,
                result.rows_rejected,
                result.message,
            )
            results.append(result)
    return results


def _stranded_duplicates(
    warehouse: Warehouse, replaced: list[FileResult], evaluated_after: dict[tuple[str, str], int]
) -> dict[str, dict[str, str]]:
    """Files holding rows rejected as duplicates of a key of a file this load replaced, and
    judged before that replacement: source name -> {file: why it is evaluated again}."""
    pending: dict[str, dict[str, str]] = {}
    with _warehouse_session(warehouse) as con:
        for result in replaced:
            rows = con.execute(
                f"""select distinct source_name, source_file from wh.{RAW_SCHEMA}.load_rejects
                    where entity = ? and ends_with(reason, ?)
                      and not (source_name = ? and source_file = ?)""",
                [
                    result.entity,
                    already_loaded_from(result.source_file),
                    result.source_name,
                    result.source_file,
                ],
            ).fetchall()
            replaced_at = evaluated_after[(result.source_name, result.source_file)]
            for source_name, source_file in rows:
                if evaluated_after.get((source_name, source_file), -1) > replaced_at:
                    continue  # judged against the new version already
                pending.setdefault(source_name, {})[source_file] = (
                    f"evaluated again: rows of it were rejected as duplicates of keys of "
                    f"{result.source_file}, which was replaced"
                )
    return pending


def load(
    warehouse: Warehouse | Path,
    landing_dir: Path,
    specs: list[SourceSpec],
    batch_id: str,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> LoadReport:
    """Load every file of ``specs``; raise LoadError at the end if any file was unreadable.

    A required source with no file at all is reported as a failure too; an optional one
    (``required: false``) is named in ``absent_sources``. When a changed
    file replaces an earlier version, rows of other files that were rejected as duplicates
    of its keys are evaluated again (their files reloaded): a key the correction removed
    is free for them now, and a key it kept is rejected again with an accurate reason.
    """
    if max_record_bytes < 1:
        raise ConfigError(f"max_record_bytes must be at least 1, got {max_record_bytes}")
    warehouse = as_warehouse(warehouse)
    report = LoadReport(batch_id)
    for spec in specs:
        results = _load_source(warehouse, landing_dir, spec, batch_id, max_record_bytes)
        if not results:
            report.absent_sources.append(spec.name)
        report.files.extend(results)
    order = {  # when each file's rows were last judged in this load
        (f.source_name, f.source_file): i
        for i, f in enumerate(report.files)
        if f.status in ("loaded", "replaced")
    }
    replaced = [f for f in report.files if f.status == "replaced"]
    if replaced and warehouse.exists():
        by_name = {s.name: s for s in specs}
        pending = _stranded_duplicates(warehouse, replaced, order)
        for source_name, files in sorted(pending.items()):
            if source_name not in by_name:
                log.warning(
                    "%s: files %s hold rejects to re-evaluate but the source is not part of "
                    "this load; they are re-evaluated when it is loaded with them",
                    source_name,
                    sorted(files),
                )
                continue
            report.files.extend(
                _load_source(
                    warehouse, landing_dir, by_name[source_name], batch_id, max_record_bytes, files
                )
            )
    if report.failed:
        details = "\n".join(f"  {f.source_file}: {f.message}" for f in report.failed)
        raise LoadError(
            f"{len(report.failed)} landing file(s) could not be loaded (nothing from them is "
            f"lost: see raw.load_rejects and raw.load_files):\n{details}",
            report,
        )
    return report
