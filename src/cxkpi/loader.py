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

``rows_read`` is an independent count of the file's records (a byte-level scan of CSV and
JSON lines, Parquet's metadata), never DuckDB's reader alone: if the reader returns another
number the file fails, nothing of it committed. ``rows_read = rows_loaded + rows_rejected``
is checked for every file before committing. A record larger than ``max_record_bytes`` is
rejected, unparsed, with a reason saying so.

Files are registered by their path relative to the landing directory (POSIX separators),
so a project folder can move; registries written with absolute paths are converted.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import mmap
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import duckdb
import pyarrow.parquet as pq

from cxkpi import pii
from cxkpi.canonical import ENTITIES, LOAD_METADATA_COLUMNS, Column, Entity, entity
from cxkpi.errors import ConfigError, LoadError
from cxkpi.sources import NATIVE_ENCODINGS, SourceSpec
from cxkpi.warehouse import connect, quote_ident, quote_literal, writer_lock

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
# The largest record (CSV record or JSON line, in bytes) the loader parses; larger ones are
# rejected with a reason. The setting ``max_record_bytes`` overrides it.
DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024
_NO_REASON = "rejected without a recorded reason (before cxkpi required one)"
_REJECTS_DDL = f"""
create table if not exists {RAW_SCHEMA}.load_rejects (
    batch_id varchar, source_name varchar, entity varchar, source_file varchar,
    file_sha256 varchar, source_record bigint, source_line bigint, raw_values varchar,
    reason varchar not null check (reason <> ''), rejected_at timestamp,
    reason_code varchar
)"""
# raw.load_rejects.reason_code: why a row was rejected, as a code to group by (the reason
# text beside it is for humans and holds the row's values). A row failing several checks
# gets the code of the first one its reason names.
REASON_CODES = {
    "required": "a required value is missing",
    "type": "a value is not of its column's type (nor a value of its values: map)",
    "range": "a number is below its column's minimum or above its maximum",
    "allowed": "a value is not one of its column's allowed values",
    "missing_column": "the file lacks a mapped column",
    "duplicate_in_file": "the row's key is already on an earlier record of the same file",
    "duplicate_key": "the row's key is already loaded from another file",
    "pii_in_identifier": "personal data in an identifier column",
    "malformed": "a CSV record the reader rejects, or a JSON line that is not an object",
    "oversize": "a record above max_record_bytes, not parsed",
    "unreadable_file": "the whole file could not be read (one reject for the file)",
    "unknown": "rejected before cxkpi recorded reasons or their codes",
}
# Codes for rejects stored before the column existed, from their reason's first part.
_BACKFILL_CODE = """case
    when {part} = '' or {part} like 'rejected without a recorded reason%' then 'unknown'
    when regexp_matches({part}, '^\\w+: required value missing') then 'required'
    when regexp_matches({part}, '^\\w+: ''.*'' is not a valid ') then 'type'
    when regexp_matches({part}, '^\\w+: ''.*'' is not one of ') then 'allowed'
    when regexp_matches({part}, '^\\w+: \\S+ is (above the maximum|below the minimum) ')
        then 'range'
    when {part} like 'file lacks mapped column%' then 'missing_column'
    when {part} like 'duplicate % within the file (first at record %' then 'duplicate_in_file'
    when {part} like 'duplicate %: already loaded from %' then 'duplicate_key'
    when {part} like 'personal data (%) in identifier column %' then 'pii_in_identifier'
    when {part} like 'malformed CSV record%' or {part} = 'not a JSON object on this line'
        then 'malformed'
    when regexp_matches({part}, '^(record|line) \\d+ is .* above the maximum record size')
        then 'oversize'
    when source_record is null and raw_values is null then 'unreadable_file'
    else 'unknown' end"""
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
    # Warehouses from before every reject needed a reason: name the gap, then forbid it.
    nullable = con.execute(
        """select is_nullable from information_schema.columns
           where table_catalog = coalesce(?, current_database()) and table_schema = ?
             and table_name = 'load_rejects' and column_name = 'reason'""",
        [catalog, RAW_SCHEMA],
    ).fetchone()
    if nullable and nullable[0] == "YES":
        table = f"{prefix}{RAW_SCHEMA}.load_rejects"
        con.execute(f"update {table} set reason = ? where coalesce(reason, '') = ''", [_NO_REASON])
        con.execute(f"alter table {table} alter column reason set not null")
    _migrate_reason_code(con, catalog, prefix)


def _migrate_reason_code(con: duckdb.DuckDBPyConnection, catalog: str | None, prefix: str) -> None:
    """Warehouses from before reason codes: add the column, and code the old rows once."""
    present = con.execute(
        """select count(*) from information_schema.columns
           where table_catalog = coalesce(?, current_database()) and table_schema = ?
             and table_name = 'load_rejects' and column_name = 'reason_code'""",
        [catalog, RAW_SCHEMA],
    ).fetchone()
    if present and present[0]:
        return
    table = f"{prefix}{RAW_SCHEMA}.load_rejects"
    con.execute(f"alter table {table} add column reason_code varchar")
    code = _BACKFILL_CODE.format(part="split_part(coalesce(reason, ''), '; ', 1)")
    con.execute(f"update {table} set reason_code = {code}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- counting: the file's records, independently of DuckDB's reader ------------------------


@dataclass
class RecordScan:
    """A text file's records as a byte-level scan sees them.

    ``records`` counts data records (CSV: after the header, blank lines skipped; JSON lines:
    lines with more than spaces); ``oversize`` holds (record number, byte offset, size) of
    every record above the limit, record numbers as the loader reports them.
    """

    records: int = 0
    oversize: list[tuple[int, int, int]] = field(default_factory=list)
    header: bytes = b""


def _scan_csv(data: bytes | mmap.mmap, quote: bytes, escape: bytes, limit: int) -> RecordScan:
    """Record boundaries of RFC 4180 CSV: line breaks end a record outside quotes; inside,
    a doubled quote (or ``escape`` + any byte) does not close the field."""
    scan = RecordScan()
    outside = re.compile(b"[" + re.escape(quote) + b"\r\n]")
    inside = re.compile(b"[" + re.escape(quote) + re.escape(escape) + b"]")
    size, position, number = len(data), 0, -1  # the header is record 0
    while position < size:
        if data[position] in b"\r\n":  # blank line: DuckDB skips it, so do we
            position += 1
            continue
        start, quoted, end = position, False, size
        while position < size:
            if not quoted:
                match = outside.search(data, position)
                if match is None:
                    position = size
                    break
                if data[match.start()] == quote[0]:
                    quoted, position = True, match.end()
                    continue
                end, position = match.start(), match.end()
                if data[end] == 13 and position < size and data[position] == 10:
                    position += 1
                break
            match = inside.search(data, position)
            if match is None:  # unterminated quote: the rest of the file is this record
                position = size
                break
            at = match.start()
            following = data[at + 1] if at + 1 < size else None
            if data[at] == escape[0] and (escape != quote or following == quote[0]):
                position = at + 2
                continue
            quoted, position = False, at + 1
        number += 1
        if number == 0:
            scan.header = bytes(data[start : min(end, start + limit + 1)])
            if end - start > limit:
                raise LoadError(
                    f"the header record is {end - start:,} bytes, above the maximum record "
                    f"size of {limit:,} bytes (max_record_bytes)"
                )
        elif end - start > limit:
            scan.oversize.append((number, start, end - start))
    scan.records = max(number, 0)
    return scan


def _scan_lines(data: bytes | mmap.mmap, limit: int) -> RecordScan:
    """JSON lines: one record per line holding more than spaces; numbered by line."""
    scan = RecordScan()
    size, position, line = len(data), 0, 0
    while position < size:
        newline = data.find(b"\n", position)
        end = size if newline < 0 else newline
        line += 1
        text_end = end - 1 if end > position and data[end - 1] == 13 else end
        if end - position > limit:
            scan.records += 1
            scan.oversize.append((line, position, end - position))
        elif data[position:text_end].strip(b" "):
            scan.records += 1
        position = end + 1
    return scan


@contextmanager
def _mapped(path: Path) -> Iterator[mmap.mmap]:
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        yield m


def _without_oversize(path: Path, data: mmap.mmap, scan: RecordScan, blank: bool) -> Path:
    """A temporary copy of ``path`` without its oversize records (``blank``: an empty line
    in their place, so JSON line numbers stay), copied in slices: memory stays small."""
    handle, name = tempfile.mkstemp(prefix="cxkpi-", suffix=path.suffix)
    with open(handle, "wb") as sink:
        position = 0
        for _number, start, size in scan.oversize:
            sink.writelines(
                data[b : min(b + (1 << 20), start)] for b in range(position, start, 1 << 20)
            )
            position = start + size
            if not blank:  # drop the record's line break too
                position += 2 if data[position : position + 2] == b"\r\n" else 1
        sink.writelines(
            data[block : block + (1 << 20)] for block in range(position, len(data), 1 << 20)
        )
    return Path(name)


def _oversize_rejects(
    con: duckdb.DuckDBPyConnection, scan: RecordScan, data: mmap.mmap, limit: int, jsonl: bool
) -> None:
    what = "line" if jsonl else "record"
    for number, start, size in scan.oversize:
        beginning = bytes(data[start : start + 200]).decode("utf-8", "replace")
        reason = (
            f"{what} {number} is {size:,} bytes, above the maximum record size of "
            f"{limit:,} bytes (max_record_bytes): not parsed"
        )
        con.execute(
            "insert into structural_rejects values (?, ?, ?, ?, 'oversize')",
            [number, number if jsonl else None, json.dumps({"first_bytes": beginning}), reason],
        )


# --- parsing: the file becomes a temp table ``src`` of text columns ----------------------


def _csv_header(header: bytes, spec: SourceSpec, encoding: str) -> list[str]:
    # Undecodable bytes are DuckDB's to reject line by line, not a reason to refuse the file.
    text = header.decode("utf-8-sig" if encoding == "utf-8" else encoding, errors="replace")
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(
        io.StringIO(text),
        delimiter=spec.csv.delimiter,
        quotechar=spec.csv.quote,
        escapechar=None if spec.csv.escape == spec.csv.quote else spec.csv.escape,
        doublequote=spec.csv.escape == spec.csv.quote,
    )
    try:
        return [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise LoadError(f"the header record cannot be read: {exc}") from None


def _read_into_src(
    con: duckdb.DuckDBPyConnection, path: Path, spec: SourceSpec, max_record_bytes: int
) -> tuple[list[str], int]:
    """Create temp tables ``src`` (one text row per record) and ``structural_rejects``.

    Returns the column names found in the file (for JSON lines, the keys are looked up
    per record, so this is the mapped keys) and the file's record count, counted without
    DuckDB.
    """
    con.execute(
        "create temp table structural_rejects (source_record bigint, source_line bigint, "
        "raw_values varchar, reason varchar, reason_code varchar)"
    )
    max_line = max_record_bytes + 1024  # DuckDB only ever sees records within the limit
    if spec.format == "parquet":
        records = pq.ParquetFile(path).metadata.num_rows
        con.execute(
            """create temp table src as
                select * exclude (file_row_number), file_row_number + 1 as _source_record
                from read_parquet(?, file_row_number=true)""",
            [str(path)],
        )
        return [row[0] for row in con.execute("describe src").fetchall()][:-1], records
    scratch: list[Path] = []
    try:
        data_path, encoding = path, spec.csv.encoding
        if spec.format == "csv" and encoding not in NATIVE_ENCODINGS:
            data_path, encoding = _transcode_to_utf8(path, encoding), "utf-8"
            scratch.append(data_path)
        with _mapped(data_path) as data:
            if spec.format == "csv":
                scan = _scan_csv(
                    data, spec.csv.quote.encode(), spec.csv.escape.encode(), max_record_bytes
                )
            else:
                scan = _scan_lines(data, max_record_bytes)
            if scan.oversize:
                data_path = _without_oversize(data_path, data, scan, blank=spec.format == "jsonl")
                scratch.append(data_path)
            _oversize_rejects(con, scan, data, max_record_bytes, spec.format == "jsonl")
        if spec.format == "csv":
            return _read_csv(con, data_path, spec, encoding, scan, max_line), scan.records
        if spec.format == "jsonl":
            return _read_jsonl(con, data_path, spec, max_line), scan.records
    finally:
        for temporary in scratch:
            temporary.unlink(missing_ok=True)
    raise LoadError(f"unsupported format {spec.format}")


def _read_csv(
    con: duckdb.DuckDBPyConnection,
    data_path: Path,
    spec: SourceSpec,
    encoding: str,
    scan: RecordScan,
    max_line: int,
) -> list[str]:
    header = _csv_header(scan.header, spec, encoding)
    if len({h.lower() for h in header}) != len(header):
        dupes = sorted({h for h in header if [x.lower() for x in header].count(h.lower()) > 1})
        raise LoadError(
            f"header repeats column name(s) {dupes} (compared case-insensitively, as DuckDB does)"
        )
    columns = "{" + ", ".join(f"{quote_literal(h)}: 'VARCHAR'" for h in header) + "}"
    con.execute(
        f"""create temp table parsed as select * from read_csv(?,
            columns={columns}, auto_detect=false, header=true,
            delim=?, quote=?, escape=?, encoding=?,
            store_rejects=true, rejects_table='csv_reject_errors',
            rejects_scan='csv_reject_scans', max_line_size={int(max_line)})""",
        [str(data_path), spec.csv.delimiter, spec.csv.quote, spec.csv.escape, encoding],
    )
    # Record numbers in the file DuckDB read (oversize records taken out) -> in the file.
    con.execute(
        """create temp table kept_records as
           select r as record, row_number() over (order by r) as read_record
           from range(1, ? + 1) as t(r)
           where r not in (select source_record from structural_rejects)""",
        [scan.records],
    )
    # DuckDB numbers a malformed record by its position among records, header = 1
    # (not by physical line: quoted fields may span lines).
    con.execute(
        """insert into structural_rejects
           select kept_records.record, null, to_json({'line': any_value(csv_line)}),
                  'malformed CSV record: '
                  || coalesce(arg_min(error_message, coalesce(column_idx, 0)),
                              any_value(error_type)::varchar, 'rejected by the CSV reader'),
                  'malformed'
           from csv_reject_errors
           inner join kept_records on kept_records.read_record = csv_reject_errors.line - 1
           group by kept_records.record order by kept_records.record"""
    )
    # The parsed rows take the record numbers the rejected ones left free, in order.
    con.execute(
        """create temp table src as
           with record_numbers as (
               select r as record, row_number() over (order by r) - 1 as parsed_rowid
               from range(1, ? + 1) as t(r)
               where r not in (select source_record from structural_rejects)
           )
           select parsed.*, record_numbers.record as _source_record
           from parsed
           inner join record_numbers on parsed.rowid = record_numbers.parsed_rowid
           order by _source_record""",
        [scan.records],
    )
    return header


def _read_jsonl(
    con: duckdb.DuckDBPyConnection, data_path: Path, spec: SourceSpec, max_line: int
) -> list[str]:
    con.execute(
        f"""create temp table lines as
            select line from read_csv(?, header=false,
                columns={{'line': 'VARCHAR'}}, delim='\x01', quote='', escape='',
                auto_detect=false, max_line_size={int(max_line)})""",
        [str(data_path)],
    )
    con.execute(
        """create temp table numbered as
           select rowid + 1 as source_line, line from lines
           where rowid + 1 not in (select source_line from structural_rejects)"""
    )
    # json_type() raises on invalid JSON and AND does not short-circuit: guard with CASE.
    is_object = "coalesce(json_type(case when json_valid(line) then line end) = 'OBJECT', false)"
    con.execute(
        f"""insert into structural_rejects
            select source_line, source_line, to_json({{'line': line}}),
                   'not a JSON object on this line', 'malformed'
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
            "select distinct unnest(json_keys(case when json_valid(_line) then _line end)) from src"
        ).fetchall()
    }
    # A key absent from every record means the export changed shape; an empty file
    # has no records to tell, and nothing to lose.
    return [k for k in keys if k in present or not present]


def _transcode_to_utf8(path: Path, encoding: str) -> Path:
    """Copy a file in a codec DuckDB lacks to UTF-8 (strictly: a bad byte fails the file)."""
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
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
    whens = " ".join(f"when {quote_literal(k)} then {_value_sql(v)}" for k, v in mapping.items())
    return f"(case {text} {whens} else {text} end)"


def _value_sql(value: object) -> str:
    if value is None:
        return "null::varchar"
    return quote_literal(str(value).lower() if isinstance(value, bool) else value)


def _checks(col: Column, text: str, typed: str, spec: SourceSpec) -> list[tuple[str, str]]:
    """Per check, an SQL expression giving a reason (or NULL) and the check's reason code
    (REASON_CODES); every piece of text in them, declared or canonical, goes through
    quote_literal."""
    name = col.name
    shown = f"'''' || {text} || ''''"
    checks = []
    if col.required:
        message = quote_literal(f"{name}: required value missing")
        checks.append((f"case when {text} is null then {message} end", "required"))
    if col.type != "varchar":
        what = col.type
        if col.type == "timestamp" and spec.timestamp_format:
            what = f"timestamp in format {spec.timestamp_format}"
        if spec.values.get(col.name):
            what += " nor a value of its values: map"
        checks.append(
            (
                (
                    f"case when {text} is not null and {typed} is null "
                    f"then {quote_literal(name + ': ')} || {shown} "
                    f"|| {quote_literal(' is not a valid ' + what)} end"
                ),
                "type",
            )
        )
    if col.min is not None:
        checks.append(
            (
                (
                    f"case when {typed} < {float(col.min)!r} then {quote_literal(name + ': ')} "
                    f"|| {typed} || {quote_literal(f' is below the minimum {col.min:g}')} end"
                ),
                "range",
            )
        )
    if col.max is not None:
        checks.append(
            (
                (
                    f"case when {typed} > {float(col.max)!r} then {quote_literal(name + ': ')} "
                    f"|| {typed} || {quote_literal(f' is above the maximum {col.max:g}')} end"
                ),
                "range",
            )
        )
    if col.allowed:
        allowed = ", ".join(quote_literal(a) for a in col.allowed)
        checks.append(
            (
                (
                    f"case when {typed} is not null and {typed} not in ({allowed}) "
                    f"then {quote_literal(name + ': ')} || {shown} "
                    f"|| {quote_literal(' is not one of ' + ', '.join(col.allowed))} end"
                ),
                "allowed",
            )
        )
    return checks


def _stage(con: duckdb.DuckDBPyConnection, spec: SourceSpec, present: list[str]) -> None:
    ent = entity(spec.entity)
    present_set = set(present)
    missing = [s for s in dict.fromkeys(spec.columns.values()) if s not in present_set]
    selects: list[str] = []
    checks: list[tuple[str, str]] = []
    if missing:
        message = quote_literal(
            f"file lacks mapped column(s) {missing}; found {present}. "
            f"Did the export change? Update {spec.declared_in}"
        )
        checks.append((message, "missing_column"))
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
    # the code of the first check that gives a reason, as the reason names it first
    codes = (
        "coalesce("
        + ", ".join(f"case when ({r}) is not null then {quote_literal(c)} end" for r, c in checks)
        + ")"
        if checks
        else "null::varchar"
    )
    con.execute(
        f"""create temp table staged as
            select {", ".join(selects)},
                   src._source_record, {line} as _source_line,
                   {raw}::varchar as _raw_values,
                   concat_ws('; ', {", ".join(r for r, _ in checks) or "null"}) as _reason,
                   {codes} as _reason_code
            from src"""
    )
    key = ", ".join(ent.primary_key)
    key_text = " || ', ' || ".join(f"coalesce({k}::varchar, '')" for k in ent.primary_key)
    con.execute(
        f"""update staged set _reason = 'duplicate {key} ' || {key_text} ||
                   ' within the file (first at record ' || first_record || ')',
                   _reason_code = 'duplicate_in_file'
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
    "kept_records",
    "lines",
    "numbered",
    "csv_reject_errors",
    "csv_reject_scans",
)


def _registry(con: duckdb.DuckDBPyConnection, source_name: str) -> dict[str, str]:
    """file (relative to landing_dir) -> checksum of its version loaded for ``source_name``."""
    rows = con.execute(
        f"""select source_file, file_sha256 from wh.{RAW_SCHEMA}.load_files
            where source_name = ? and status in ('loaded', 'replaced', 'empty')
            qualify row_number() over (partition by source_file order by loaded_at desc) = 1""",
        [source_name],
    ).fetchall()
    return dict(rows)


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _already_loaded_from(source_file: str) -> str:
    """The end of the reason of a row rejected because ``source_file`` holds its key."""
    return f": already loaded from {source_file}"


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
        con.execute(
            f"""insert into {table}
                select {", ".join(ent.column_names)}, $batch, $source, $file,
                       $sha, _source_record, $now
                from staged where _reason = '' order by _source_record""",
            {k: stamp[k] for k in ("batch", "source", "file", "sha", "now")},
        )
        con.execute(
            f"""insert into wh.{RAW_SCHEMA}.load_rejects
                select $batch, $source, $entity, $file, $sha, _source_record, _source_line,
                       _raw_values, coalesce(nullif(_reason, ''), {quote_literal(_NO_REASON)}),
                       $now, coalesce(_reason_code, 'unknown')
                from staged where _reason <> ''
                union all
                select $batch, $source, $entity, $file, $sha, source_record, source_line,
                       raw_values, coalesce(nullif(reason, ''), {quote_literal(_NO_REASON)}),
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
        present, records = _read_into_src(con, path, spec, max_record_bytes)
        _stage(con, spec, present)
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


# --- the registry: paths relative to landing_dir ---------------------------------------------


def registry_name(path: Path, landing_dir: Path) -> str:
    """How ``raw.load_files`` (and every raw table) names a landing file."""
    return path.relative_to(landing_dir).as_posix()


def _relative_guess(absolute: str, spec: SourceSpec, landing_dir: Path) -> str | None:
    """The landing-relative name of a file a registry holds by absolute path: below the
    current landing_dir, or the trailing parts the source's ``path`` pattern matches."""
    candidate = PurePosixPath(absolute)
    for root in (landing_dir, landing_dir.resolve()):
        if candidate.is_relative_to(root.as_posix()):
            return candidate.relative_to(root.as_posix()).as_posix()
    pattern = PurePosixPath(spec.path)
    if "**" not in spec.path:
        depth = len(pattern.parts)
        tail = PurePosixPath(*candidate.parts[-depth:])
        return tail.as_posix() if tail.match(spec.path) else None
    for start in range(1, len(candidate.parts)):  # longest tail that exists in landing_dir
        tail = PurePosixPath(*candidate.parts[start:])
        if (landing_dir / tail).is_file():
            return tail.as_posix()
    return None


def _migrate_absolute_paths(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, spec: SourceSpec
) -> None:
    """Convert the registry of ``spec`` from absolute paths (cxkpi before 0.2) to
    landing-relative ones, in the raw table, the rejects (and their reasons) and load_files."""
    absolute = [
        row[0]
        for row in con.execute(
            f"""select distinct source_file from wh.{RAW_SCHEMA}.load_files
                where source_name = ? and source_file like '/%'""",
            [spec.name],
        ).fetchall()
    ]
    renames = {a: r for a in absolute if (r := _relative_guess(a, spec, landing_dir))}
    for kept in sorted(set(absolute) - set(renames)):
        log.warning("%s: registry path %s left as is: no landing-relative name", spec.name, kept)
    if not renames:
        return
    table = f"wh.{RAW_SCHEMA}.{spec.entity}"
    con.execute("begin")
    try:
        for old, new in renames.items():
            args = {"old": old, "new": new, "source": spec.name}
            con.execute(
                f"update {table} set _source_file = $new "
                "where _source_file = $old and _source_name = $source",
                args,
            )
            con.execute(
                f"update wh.{RAW_SCHEMA}.load_files set source_file = $new "
                "where source_file = $old and source_name = $source",
                args,
            )
            con.execute(
                f"update wh.{RAW_SCHEMA}.load_rejects set source_file = $new "
                "where source_file = $old and source_name = $source",
                args,
            )
            con.execute(
                f"""update wh.{RAW_SCHEMA}.load_rejects
                    set reason = replace(reason, $old_end, $new_end)
                    where entity = $entity and ends_with(reason, $old_end)""",
                {
                    "old_end": _already_loaded_from(old),
                    "new_end": _already_loaded_from(new),
                    "entity": spec.entity,
                },
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    log.info("%s: %d registry path(s) made relative to landing_dir", spec.name, len(renames))


@contextmanager
def _warehouse_session(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection with the warehouse attached as ``wh``, under the writer lock."""
    with writer_lock(warehouse):
        con = connect()
        try:
            con.execute(f"attach {quote_literal(warehouse)} as wh")
            ensure_raw_schema(con, "wh")
            yield con
            con.execute("detach wh")
        finally:
            con.close()


# --- a whole load ------------------------------------------------------------------------


def _load_source(
    warehouse: Path,
    landing_dir: Path,
    spec: SourceSpec,
    batch_id: str,
    max_record_bytes: int,
    reevaluate: dict[str, str] | None = None,
) -> list[FileResult]:
    """Load every file of ``spec`` (or, with ``reevaluate``, those files again, for the
    reason given per file)."""
    try:
        paths = spec.files(landing_dir)
    except ConfigError as exc:
        return [FileResult(spec.name, spec.entity, spec.path, "", 0, "failed", message=str(exc))]
    results = []
    if not paths and spec.required and reevaluate is None:
        results.append(
            FileResult(
                spec.name,
                spec.entity,
                spec.path,
                "",
                0,
                status="failed",
                message=f"no file matches {spec.path} in {landing_dir}",
            )
        )
    # One warehouse session per source: DuckDB has a single writer, and attaching
    # (then checkpointing on detach) once per source rather than per file is far cheaper.
    with _warehouse_session(warehouse) as con:
        _migrate_absolute_paths(con, landing_dir, spec)
        registry = _registry(con, spec.name)
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
    warehouse: Path, replaced: list[FileResult], evaluated_after: dict[tuple[str, str], int]
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
                    _already_loaded_from(result.source_file),
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
    warehouse: Path,
    landing_dir: Path,
    specs: list[SourceSpec],
    batch_id: str,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> LoadReport:
    """Load every file of ``specs``; raise LoadError at the end if any file was unreadable.

    A required source with no file at all is reported as a failure too. When a changed
    file replaces an earlier version, rows of other files that were rejected as duplicates
    of its keys are evaluated again (their files reloaded): a key the correction removed
    is free for them now, and a key it kept is rejected again with an accurate reason.
    """
    if max_record_bytes < 1:
        raise ConfigError(f"max_record_bytes must be at least 1, got {max_record_bytes}")
    report = LoadReport(batch_id)
    for spec in specs:
        report.files.extend(_load_source(warehouse, landing_dir, spec, batch_id, max_record_bytes))
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
