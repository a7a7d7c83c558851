"""One landing file: skipped when unchanged, else read, staged and committed (valid rows to
``raw.<entity>``, the others to ``raw.load_rejects``) in one transaction, or failed as a
whole; registered in ``raw.load_files`` either way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cxkpi import pii
from cxkpi.canonical import entity
from cxkpi.errors import LoadError
from cxkpi.loader.checks import stage
from cxkpi.loader.count import DEFAULT_MAX_RECORD_BYTES
from cxkpi.loader.read import read_into_src
from cxkpi.loader.registry import file_sha256
from cxkpi.loader.schema import NO_REASON, RAW_SCHEMA
from cxkpi.sources import SourceSpec
from cxkpi.warehouse import quote_literal


@dataclass
class FileResult:
    source_name: str
    entity: str
    source_file: str
    file_sha256: str
    file_bytes: int
    status: str  # loaded | replaced | unchanged | empty | failed
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    message: str = ""


# The temp tables reading and checking a file create, dropped before the next file.
_TEMP_TABLES = (
    "src",
    "parsed",
    "staged",
    "structural_rejects",
    "kept_records",
    "lines",
    "numbered",
    "csv_reject_errors",
    "csv_reject_scans",
)


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _commit_file(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    result: FileResult,
    batch_id: str,
    replacing: bool,
) -> None:
    """Move ``staged`` into the warehouse (attached as ``wh``) in one transaction."""
    ent = entity(spec.entity)
    table = f"wh.{RAW_SCHEMA}.{ent.name}"
    stamp = {
        "batch": batch_id,
        "source": spec.name,
        "entity": ent.name,
        "file": result.source_file,
        "sha": result.file_sha256,
        "now": _utc_now(),
    }
    con.execute("begin")
    try:
        if replacing:
            con.execute(
                f"delete from {table} where _source_file = $file and _source_name = $source",
                {k: stamp[k] for k in ("file", "source")},
            )
            con.execute(
                f"delete from wh.{RAW_SCHEMA}.load_rejects "
                "where source_file = $file and source_name = $source",
                {k: stamp[k] for k in ("file", "source")},
            )
        pii.protect_staged(con, spec, result, batch_id, replacing)  # mask, withhold, reject
        match = " and ".join(f"staged.{k} = w.{k}" for k in ent.primary_key)
        key_text = " || ', ' || ".join(f"staged.{k}::varchar" for k in ent.primary_key)
        duplicate = quote_literal(f"duplicate {', '.join(ent.primary_key)} ")
        con.execute(
            f"""update staged set _reason = {duplicate} || {key_text}
                    || ': already loaded from ' || w._source_file,
                    _reason_code = 'duplicate_key'
                from {table} w where {match} and staged._reason = ''"""
        )
        metadata = (
            "$batch as _batch_id, $source as _source_name, $file as _source_file, "
            "$sha as _file_sha256, _source_record, $now as _loaded_at"
        )
        con.execute(
            f"""insert into {table} by name
                select {", ".join(ent.column_names)}, {metadata}
                from staged where _reason = '' order by _source_record""",
            {k: stamp[k] for k in ("batch", "source", "file", "sha", "now")},
        )
        con.execute(
            f"""insert into wh.{RAW_SCHEMA}.load_rejects
                select $batch, $source, $entity, $file, $sha, _source_record, _source_line,
                       _raw_values, coalesce(nullif(_reason, ''), {quote_literal(NO_REASON)}),
                       $now, coalesce(_reason_code, 'unknown')
                from staged where _reason <> ''
                union all
                select $batch, $source, $entity, $file, $sha, source_record, source_line,
                       raw_values, coalesce(nullif(reason, ''), {quote_literal(NO_REASON)}),
                       $now, coalesce(reason_code, 'unknown')
                from structural_rejects""",
            stamp,
        )
        counts = con.execute(
            """select (select count(*) from staged where _reason = ''),
                      (select count(*) from staged where _reason <> '')
                       + (select count(*) from structural_rejects)"""
        ).fetchone()
        assert counts is not None
        result.rows_loaded, result.rows_rejected = int(counts[0]), int(counts[1])
        if result.rows_loaded + result.rows_rejected != result.rows_read:
            raise LoadError(
                f"{result.source_file}: {result.rows_read} rows read but "
                f"{result.rows_loaded} loaded + {result.rows_rejected} rejected; "
                "nothing was committed for this file"
            )
        _record_file(con, result, batch_id)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _record_file(con: duckdb.DuckDBPyConnection, result: FileResult, batch_id: str) -> None:
    con.execute(
        f"insert into wh.{RAW_SCHEMA}.load_files values (?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            batch_id,
            result.source_name,
            result.entity,
            result.source_file,
            result.file_sha256,
            result.file_bytes,
            result.status,
            result.rows_read,
            result.rows_loaded,
            result.rows_rejected,
            result.message,
            _utc_now(),
        ],
    )


def _record_failure(con: duckdb.DuckDBPyConnection, result: FileResult, batch_id: str) -> None:
    """A file that cannot be read at all is kept as one reject naming the file and error."""
    con.execute("begin")
    con.execute(
        f"insert into wh.{RAW_SCHEMA}.load_rejects values (?,?,?,?,?,?,?,?,?,?,?)",
        [
            batch_id,
            result.source_name,
            result.entity,
            result.source_file,
            result.file_sha256,
            None,
            None,
            None,
            result.message or "file could not be loaded",
            _utc_now(),
            "unreadable_file",
        ],
    )
    _record_file(con, result, batch_id)
    con.execute("commit")


def _fail_file(
    con: duckdb.DuckDBPyConnection, result: FileResult, batch_id: str, message: str
) -> FileResult:
    result.status, result.message = "failed", message
    result.rows_read = result.rows_loaded = result.rows_rejected = 0
    _record_failure(con, result, batch_id)
    return result


def load_file(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    path: Path,
    batch_id: str,
    previous_sha: str | None,
    *,
    source_file: str | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    reevaluate: str = "",
) -> FileResult:
    """Load one file through ``con``, an in-memory connection with the warehouse as ``wh``.

    ``source_file`` is the name the file is registered under (default: ``path``);
    ``reevaluate`` (a reason) reloads a file even if unchanged.
    """
    sha = file_sha256(path)
    result = FileResult(
        spec.name, spec.entity, source_file or str(path), sha, path.stat().st_size, "loaded"
    )
    if previous_sha == sha and not reevaluate:
        result.status = "unchanged"
        return result
    for name in _TEMP_TABLES:
        con.execute(f"drop table if exists temp.{name}")
    if result.file_bytes == 0:
        result.status, result.message = "empty", "file is empty (0 bytes)"
        con.execute("begin")
        _record_file(con, result, batch_id)
        con.execute("commit")
        return result
    try:
        con.execute(f"set TimeZone = {quote_literal(spec.timezone)}")
        present, records = read_into_src(con, path, spec, max_record_bytes)
        stage(con, spec, present)
    except (duckdb.Error, UnicodeError, LoadError, OSError, ValueError) as exc:
        return _fail_file(
            con, result, batch_id, f"file could not be read as {spec.format}: {exc}".strip()
        )
    parsed = con.execute("select count(*) from staged").fetchone()
    structural = con.execute("select count(*) from structural_rejects").fetchone()
    assert parsed is not None and structural is not None
    seen = int(parsed[0]) + int(structural[0])
    if seen != records:
        return _fail_file(
            con,
            result,
            batch_id,
            f"the file holds {records} records (counted independently of DuckDB) but "
            f"{seen} came out of DuckDB's {spec.format} reader; nothing from this file was "
            "committed (a record the reader lost or split would otherwise go unnoticed)",
        )
    result.rows_read = records
    replacing = previous_sha is not None
    if reevaluate:
        result.status, result.message = "replaced", reevaluate
    elif replacing:
        assert previous_sha is not None
        result.status = "replaced"
        result.message = f"file changed since its last load (was {previous_sha[:12]})"
    _commit_file(con, spec, result, batch_id, replacing)
    return result
