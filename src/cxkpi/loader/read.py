"""Parsing: a landing file becomes the temp table ``src`` of text columns, one row per
record numbered as in the file, and ``structural_rejects`` for records that cannot be
parsed (malformed CSV, a JSON line that is not an object, oversize records)."""

from __future__ import annotations

import csv
import io
import json
import mmap
import tempfile
from pathlib import Path

import duckdb

from cxkpi.errors import LoadError
from cxkpi.loader.count import RecordScan, memory_mapped, scan_csv, scan_lines, without_records
from cxkpi.sources import NATIVE_ENCODINGS, SourceSpec
from cxkpi.warehouse import quote_ident, quote_literal


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


def csv_header(header: bytes, spec: SourceSpec, encoding: str) -> list[str]:
    """The header record's names, trimmed (also read by `cxkpi validate`)."""
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


def read_into_src(
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
        import pyarrow.parquet as pq  # here: validating sources needs no pyarrow (0.2 s)

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
        with memory_mapped(data_path) as data:
            if spec.format == "csv":
                scan = scan_csv(
                    data,
                    spec.csv.quote.encode(),
                    spec.csv.escape.encode(),
                    max_record_bytes,
                    spec.csv.header_rows,
                )
            else:
                scan = scan_lines(data, max_record_bytes)
            if scan.cuts():
                data_path = without_records(data_path, data, scan, blank=spec.format == "jsonl")
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
    header = csv_header(scan.header, spec, encoding)
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
    keys = spec.source_columns
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
