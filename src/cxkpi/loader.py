"""Load landing files into the warehouse's ``raw`` tables; every row is loaded or rejected.

For each file of each declared source:

1. its SHA-256 is compared with the file registry (``raw.load_files``): an unchanged file is
   skipped, a changed file with the same path replaces the rows it loaded before;
2. it is parsed in an in-memory DuckDB as text (so a bad value can be reported verbatim),
   mapped onto the canonical columns, typed, and checked (required, type, range, allowed
   values, duplicate keys within the file);
3. under the warehouse write lock, keys already loaded from other files are rejected as
   duplicates, and valid rows go to ``raw.<entity>``, the others to ``raw.load_rejects`` with
   their raw values and reason, in one transaction.

``rows_read = rows_loaded + rows_rejected`` is checked for every file before committing.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cxkpi import pii
from cxkpi.canonical import ENTITIES, LOAD_METADATA_COLUMNS, Column, Entity, entity
from cxkpi.errors import LoadError
from cxkpi.sources import NATIVE_ENCODINGS, SourceSpec
from cxkpi.warehouse import connect, quote_ident, quote_literal, writer_lock

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
_REJECTS_DDL = f"""
create table if not exists {RAW_SCHEMA}.load_rejects (
    batch_id varchar, source_name varchar, entity varchar, source_file varchar,
    file_sha256 varchar, source_record bigint, source_line bigint, raw_values varchar,
    reason varchar, rejected_at timestamp
)"""
_FILES_DDL = f"""
create table if not exists {RAW_SCHEMA}.load_files (
    batch_id varchar, source_name varchar, entity varchar, source_file varchar,
    file_sha256 varchar, file_bytes bigint, status varchar, rows_read bigint,
    rows_loaded bigint, rows_rejected bigint, message varchar, loaded_at timestamp
)"""


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


@dataclass
class LoadReport:
    batch_id: str
    files: list[FileResult] = field(default_factory=list)

    def total(self, attribute: str) -> int:
        return sum(getattr(f, attribute) for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def as_dict(self) -> dict:
        return {"batch_id": self.batch_id, "files": [asdict(f) for f in self.files]}


def _entity_ddl(ent: Entity) -> str:
    columns = ", ".join(f"{c.name} {c.type}" for c in (*ent.columns, *LOAD_METADATA_COLUMNS))
    return f"create table if not exists {RAW_SCHEMA}.{ent.name} ({columns})"


def ensure_raw_schema(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> None:
    prefix = f"{catalog}." if catalog else ""
    con.execute(f"create schema if not exists {prefix}{RAW_SCHEMA}")
    for ddl in (*(_entity_ddl(e) for e in ENTITIES.values()), _REJECTS_DDL, _FILES_DDL):
        con.execute(ddl.replace(f" {RAW_SCHEMA}.", f" {prefix}{RAW_SCHEMA}.", 1))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- parsing: the file becomes a temp table ``src`` of text columns ----------------------


def _csv_header(path: Path, spec: SourceSpec) -> list[str]:
    encoding = {"utf-8": "utf-8-sig"}.get(spec.csv.encoding, spec.csv.encoding)
    # Undecodable bytes further down are DuckDB's to reject line by line, not a reason to
    # refuse the whole file here.
    with open(path, encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=spec.csv.delimiter, quotechar=spec.csv.quote)
        header = next(reader, None)
    if header is None:
        return []
    return [h.strip() for h in header]


def _read_into_src(con: duckdb.DuckDBPyConnection, path: Path, spec: SourceSpec) -> list[str]:
    """Create temp tables ``src`` (one text row per record) and ``structural_rejects``.

    Returns the column names found in the file (for JSON lines, the keys are looked up
    per record, so this is the mapped keys).
    """
    file_literal = quote_literal(path)
    con.execute(
        "create temp table structural_rejects (source_record bigint, source_line bigint, "
        "raw_values varchar, reason varchar)"
    )
    if spec.format == "csv":
        header = _csv_header(path, spec)
        encoding, transcoded = spec.csv.encoding, None
        if encoding not in NATIVE_ENCODINGS:
            transcoded = _transcode_to_utf8(path, encoding)
            file_literal, encoding = quote_literal(transcoded), "utf-8"
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise LoadError(f"header repeats column name(s) {dupes}")
        columns = "{" + ", ".join(f"{quote_literal(h)}: 'VARCHAR'" for h in header) + "}"
        try:
            con.execute(
                f"""create temp table parsed as select * from read_csv({file_literal},
                    columns={columns}, auto_detect=false, header=true,
                    delim={quote_literal(spec.csv.delimiter)}, quote={quote_literal(spec.csv.quote)},
                    escape={quote_literal(spec.csv.escape)}, encoding={quote_literal(encoding)},
                    store_rejects=true, rejects_table='csv_reject_errors',
                    rejects_scan='csv_reject_scans', max_line_size=10000000)"""
            )
        finally:
            if transcoded is not None:
                transcoded.unlink(missing_ok=True)
        # DuckDB numbers a malformed record by its position among records, header = 1
        # (not by physical line: quoted fields may span lines).
        con.execute(
            """insert into structural_rejects
               select line - 1, null, to_json({'line': any_value(csv_line)}),
                      'malformed CSV record: ' || arg_min(error_message, column_idx)
               from csv_reject_errors group by line order by line"""
        )
        # The parsed rows take the record numbers the malformed ones left free, in order.
        con.execute(
            """create temp table src as
               with record_numbers as (
                   select r as record, row_number() over (order by r) - 1 as parsed_rowid
                   from range(1, (select count(*) from parsed)
                                 + (select count(*) from structural_rejects) + 1) as t(r)
                   where r not in (select source_record from structural_rejects)
               )
               select parsed.*, record_numbers.record as _source_record
               from parsed
               inner join record_numbers on parsed.rowid = record_numbers.parsed_rowid
               order by _source_record"""
        )
        return header
    if spec.format == "jsonl":
        con.execute(
            f"""create temp table lines as
                select line from read_csv({file_literal}, header=false,
                    columns={{'line': 'VARCHAR'}}, delim='\x01', quote='', escape='',
                    auto_detect=false, max_line_size=10000000)"""
        )
        con.execute(
            """create temp table numbered as
               select rowid + 1 as source_line, line from lines"""
        )
        # json_type() raises on invalid JSON and AND does not short-circuit: guard with CASE.
        is_object = (
            "coalesce(json_type(case when json_valid(line) then line end) = 'OBJECT', false)"
        )
        con.execute(
            f"""insert into structural_rejects
                select source_line, source_line, to_json({{'line': line}}),
                       'not a JSON object on this line'
                from numbered where nullif(trim(line), '') is not null and not ({is_object})"""
        )
        keys = list(dict.fromkeys(spec.columns.values()))
        extracted = ", ".join(
            f"json_extract_string(case when json_valid(line) then line end, "
            f"{quote_literal('$.' + _json_key(k))}) "
            f"as {quote_ident(k)}"
            for k in keys
        )
        con.execute(
            f"""create temp table src as
                select {extracted}, line as _line, source_line as _source_record
                from numbered where nullif(trim(line), '') is not null and {is_object}
                order by source_line"""
        )
        present = {
            row[0]
            for row in con.execute(
                "select distinct unnest(json_keys(case when json_valid(_line) then _line end)) "
                "from src"
            ).fetchall()
        }
        # A key absent from every record means the export changed shape; an empty file
        # has no records to tell, and nothing to lose.
        return [k for k in keys if k in present or not present]
    if spec.format == "parquet":
        con.execute(
            f"""create temp table src as
                select * exclude (file_row_number), file_row_number + 1 as _source_record
                from read_parquet({file_literal}, file_row_number=true)"""
        )
        return [row[0] for row in con.execute("describe src").fetchall()][:-1]
    raise LoadError(f"unsupported format {spec.format}")


def _transcode_to_utf8(path: Path, encoding: str) -> Path:
    """Copy a file in a codec DuckDB lacks to UTF-8 (strictly: a bad byte fails the file)."""
    import tempfile

    handle, name = tempfile.mkstemp(prefix="cxkpi-", suffix=".csv")
    target = Path(name)
    try:
        with (
            open(path, encoding=encoding, newline="") as source,
            open(handle, "w", encoding="utf-8", newline="") as sink,
        ):
            sink.writelines(iter(lambda: source.read(1 << 20), ""))
    except UnicodeDecodeError:
        target.unlink(missing_ok=True)
        raise
    return target


def _json_key(key: str) -> str:
    return '"' + key.replace('"', '\\"') + '"'


# --- typing and checking: ``src`` becomes ``staged`` with typed columns and a reason ------


def _typed(col: Column, text: str, spec: SourceSpec) -> str:
    if col.type == "varchar":
        return text
    if col.type == "integer":
        as_double = f"try_cast({text} as double)"
        return f"(case when {as_double} = floor({as_double}) then try_cast({as_double} as integer) end)"
    if col.type == "double":
        as_double = f"try_cast({text} as double)"
        return f"(case when isfinite({as_double}) then {as_double} end)"
    if col.type == "boolean":
        return f"try_cast({text} as boolean)"
    if col.type == "timestamp":
        fmt = spec.timestamp_format
        if fmt is None:
            # The parse connection's TimeZone is the source's: offset-less text is local time.
            return f"timezone('UTC', try_cast({text} as timestamptz))"
        parsed = f"try_strptime({text}, {quote_literal(fmt)})"
        if "%z" in fmt or "%Z" in fmt:
            return f"timezone('UTC', {parsed})"
        return f"timezone('UTC', timezone({quote_literal(spec.timezone)}, {parsed}))"
    raise LoadError(f"canonical type {col.type} not handled")


def _mapped_text(col: Column, spec: SourceSpec, present: set[str]) -> str:
    source_column = spec.columns.get(col.name)
    if source_column is None or source_column not in present:
        return "null::varchar"
    text = f"nullif(trim(cast(src.{quote_ident(source_column)} as varchar)), '')"
    mapping = spec.values.get(col.name)
    if not mapping:
        return text
    whens = " ".join(
        f"when {quote_literal(k)} then {quote_literal(_value_text(v))}" for k, v in mapping.items()
    )
    return f"(case {text} {whens} else {text} end)"


def _value_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _checks(col: Column, text: str, typed: str, spec: SourceSpec) -> list[str]:
    name = col.name
    shown = f"'''' || {text} || ''''"
    checks = []
    if col.required:
        checks.append(f"case when {text} is null then '{name}: required value missing' end")
    if col.type != "varchar":
        what = col.type
        if col.type == "timestamp" and spec.timestamp_format:
            what = f"timestamp in format {spec.timestamp_format}"
        if spec.values.get(col.name):
            what += " nor a value of its values: map"
        checks.append(
            f"case when {text} is not null and {typed} is null "
            f"then '{name}: ' || {shown} || ' is not a valid {what}' end"
        )
    if col.min is not None:
        checks.append(
            f"case when {typed} < {col.min} then '{name}: ' || {typed} || "
            f"' is below the minimum {col.min:g}' end"
        )
    if col.max is not None:
        checks.append(
            f"case when {typed} > {col.max} then '{name}: ' || {typed} || "
            f"' is above the maximum {col.max:g}' end"
        )
    if col.allowed:
        allowed = ", ".join(quote_literal(a) for a in col.allowed)
        checks.append(
            f"case when {typed} is not null and {typed} not in ({allowed}) "
            f"then '{name}: ' || {shown} || ' is not one of {', '.join(col.allowed)}' end"
        )
    return checks


def _stage(con: duckdb.DuckDBPyConnection, spec: SourceSpec, present: list[str]) -> None:
    ent = entity(spec.entity)
    present_set = set(present)
    missing = [s for s in dict.fromkeys(spec.columns.values()) if s not in present_set]
    selects, checks = [], []
    if missing:
        checks.append(
            quote_literal(
                f"file lacks mapped column(s) {missing}; found {present}. "
                f"Did the export change? Update {spec.declared_in}"
            )
        )
    for col in ent.columns:
        text = _mapped_text(col, spec, present_set)
        typed = _typed(col, text, spec)
        selects.append(f"{typed} as {col.name}")
        checks.extend(_checks(col, text, typed, spec))
    if spec.format == "jsonl":
        line, raw = "src._source_record", "to_json({'line': src._line})"
    else:
        line = "null::bigint"
        fields = ", ".join(f"{quote_literal(c)}: src.{quote_ident(c)}" for c in present)
        raw = f"to_json({{{fields}}})" if present else "'{}'"
    con.execute(
        f"""create temp table staged as
            select {", ".join(selects)},
                   src._source_record, {line} as _source_line,
                   {raw}::varchar as _raw_values,
                   concat_ws('; ', {", ".join(checks) or "null"}) as _reason
            from src"""
    )
    key = ", ".join(ent.primary_key)
    key_text = " || ', ' || ".join(f"coalesce({k}::varchar, '')" for k in ent.primary_key)
    con.execute(
        f"""update staged set _reason = 'duplicate {key} ' || {key_text} ||
                   ' within the file (first at record ' || first_record || ')'
            from (select _source_record as rec,
                         min(_source_record) over (partition by {key}) as first_record
                  from staged where _reason = '') dupes
            where staged._source_record = dupes.rec and dupes.rec <> dupes.first_record"""
    )


# --- the whole file -------------------------------------------------------------------


_TEMP_TABLES = (
    "src",
    "parsed",
    "staged",
    "structural_rejects",
    "lines",
    "numbered",
    "csv_reject_errors",
    "csv_reject_scans",
)


def _registry(con: duckdb.DuckDBPyConnection, source_name: str) -> dict[str, str]:
    """file -> checksum of the version of it currently loaded for ``source_name``."""
    rows = con.execute(
        f"""select source_file, file_sha256 from wh.{RAW_SCHEMA}.load_files
            where source_name = {quote_literal(source_name)}
              and status in ('loaded', 'replaced', 'empty')
            qualify row_number() over (partition by source_file order by loaded_at desc) = 1"""
    ).fetchall()
    return dict(rows)


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
    now_lit = quote_literal(_utc_now()) + "::timestamp"
    path_lit, sha_lit = quote_literal(result.source_file), quote_literal(result.file_sha256)
    source_lit, batch_lit = quote_literal(spec.name), quote_literal(batch_id)
    con.execute("begin")
    try:
        if replacing:
            con.execute(
                f"delete from {table} where _source_file = {path_lit} "
                f"and _source_name = {source_lit}"
            )
            con.execute(
                f"delete from wh.{RAW_SCHEMA}.load_rejects where source_file = {path_lit} "
                f"and source_name = {source_lit}"
            )
        pii.protect_staged(con, spec, result, batch_id, replacing)  # mask, withhold, reject
        match = " and ".join(f"staged.{k} = w.{k}" for k in ent.primary_key)
        key_text = " || ', ' || ".join(f"staged.{k}::varchar" for k in ent.primary_key)
        con.execute(
            f"""update staged set _reason = 'duplicate {", ".join(ent.primary_key)} ' ||
                    {key_text} || ': already loaded from ' || w._source_file
                from {table} w where {match} and staged._reason = ''"""
        )
        con.execute(
            f"""insert into {table}
                select {", ".join(ent.column_names)}, {batch_lit}, {source_lit}, {path_lit},
                       {sha_lit}, _source_record, {now_lit}
                from staged where _reason = '' order by _source_record"""
        )
        con.execute(
            f"""insert into wh.{RAW_SCHEMA}.load_rejects
                select {batch_lit}, {source_lit}, {quote_literal(ent.name)}, {path_lit},
                       {sha_lit}, _source_record, _source_line, _raw_values, _reason, {now_lit}
                from staged where _reason <> ''
                union all
                select {batch_lit}, {source_lit}, {quote_literal(ent.name)}, {path_lit},
                       {sha_lit}, source_record, source_line, raw_values, reason, {now_lit}
                from structural_rejects"""
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
    values = [
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
    ]
    con.execute(
        f"insert into wh.{RAW_SCHEMA}.load_files select "
        + ", ".join(quote_literal(v) if v is not None else "null" for v in values[:-1])
        + f", {quote_literal(values[-1])}::timestamp"
    )


def _record_failure(con: duckdb.DuckDBPyConnection, result: FileResult, batch_id: str) -> None:
    """A file that cannot be read at all is kept as one reject naming the file and error."""
    con.execute("begin")
    con.execute(
        f"insert into wh.{RAW_SCHEMA}.load_rejects values (?,?,?,?,?,?,?,?,?,?)",
        [
            batch_id,
            result.source_name,
            result.entity,
            result.source_file,
            result.file_sha256,
            None,
            None,
            None,
            result.message,
            _utc_now(),
        ],
    )
    _record_file(con, result, batch_id)
    con.execute("commit")


def load_file(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    path: Path,
    batch_id: str,
    previous_sha: str | None,
) -> FileResult:
    """Load one file through ``con``, an in-memory connection with the warehouse as ``wh``."""
    sha = file_sha256(path)
    result = FileResult(
        spec.name, spec.entity, str(path), sha, path.stat().st_size, status="loaded"
    )
    if previous_sha == sha:
        result.status = "unchanged"
        return result
    for name in _TEMP_TABLES:
        con.execute(f"drop table if exists temp.{name}")
    con.execute(f"set TimeZone = {quote_literal(spec.timezone)}")
    if result.file_bytes == 0:
        result.status, result.message = "empty", "file is empty (0 bytes)"
        con.execute("begin")
        _record_file(con, result, batch_id)
        con.execute("commit")
        return result
    try:
        present = _read_into_src(con, path, spec)
        _stage(con, spec, present)
    except (duckdb.Error, UnicodeError, LoadError, OSError) as exc:
        result.status = "failed"
        result.message = f"file could not be read as {spec.format}: {exc}".strip()
        _record_failure(con, result, batch_id)
        return result
    parsed = con.execute("select count(*) from staged").fetchone()
    structural = con.execute("select count(*) from structural_rejects").fetchone()
    assert parsed is not None and structural is not None
    result.rows_read = int(parsed[0]) + int(structural[0])
    replacing = previous_sha is not None
    if replacing:
        result.status = "replaced"
        result.message = f"file changed since its last load (was {previous_sha[:12]})"
    _commit_file(con, spec, result, batch_id, replacing)
    return result


def load(warehouse: Path, landing_dir: Path, specs: list[SourceSpec], batch_id: str) -> LoadReport:
    """Load every file of ``specs``; raise LoadError at the end if any file was unreadable.

    A required source with no file at all is reported as a failure too.
    """
    report = LoadReport(batch_id)
    for spec in specs:
        paths = spec.files(landing_dir)
        if not paths and spec.required:
            report.files.append(
                FileResult(
                    spec.name,
                    spec.entity,
                    str(landing_dir / spec.path),
                    "",
                    0,
                    status="failed",
                    message=f"no file matches {spec.path} in {landing_dir}",
                )
            )
        # One warehouse session per source: DuckDB has a single writer, and attaching
        # (then checkpointing on detach) once per source rather than per file is far cheaper.
        with writer_lock(warehouse):
            con = connect()
            try:
                con.execute(f"attach {quote_literal(warehouse)} as wh")
                ensure_raw_schema(con, "wh")
                registry = _registry(con, spec.name)
                for path in paths:
                    result = load_file(con, spec, path, batch_id, registry.get(str(path)))
                    log.info(
                        "%s %s: %s read=%d loaded=%d rejected=%d %s",
                        spec.name,
                        path.name,
                        result.status,
                        result.rows_read,
                        result.rows_loaded,
                        result.rows_rejected,
                        result.message,
                    )
                    report.files.append(result)
                con.execute("detach wh")
            finally:
                con.close()
    if report.failed:
        details = "\n".join(f"  {f.source_file}: {f.message}" for f in report.failed)
        raise LoadError(
            f"{len(report.failed)} landing file(s) could not be loaded (nothing from them is "
            f"lost: see raw.load_rejects and raw.load_files):\n{details}",
            report,
        )
    return report
