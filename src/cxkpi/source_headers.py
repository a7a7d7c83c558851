"""``cxkpi validate``'s look at the landing files: every mapped column is in each file.

The loader rejects every row of a file that lacks a mapped column (or a column an
expression reads), at night. This reads only each file's header (CSV: the first of its
``header_rows``), schema (Parquet) or first records (JSON lines) so that a renamed export
column is named before any night runs, with the file, the fields reading it and what the
file has.
"""

from __future__ import annotations

import json
from pathlib import Path

from cxkpi.loader.read import csv_header
from cxkpi.sources import SourceSpec

HEADER_BYTES = 1 << 20  # a header longer than 1 MiB is read as far as that
JSONL_RECORDS = 1000  # a key absent from all of the first records is reported


def file_columns(spec: SourceSpec, path: Path) -> list[str]:
    """The column names (keys) the file offers, as the loader would see them."""
    if spec.format == "csv":
        with path.open("rb") as file:
            return csv_header(file.read(HEADER_BYTES), spec, spec.csv.encoding)
    if spec.format == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    keys: dict[str, None] = {}
    with path.open(encoding="utf-8", errors="replace") as file:
        seen = 0
        for line in file:
            if seen == JSONL_RECORDS:
                break
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the loader rejects the line with its reason
            if isinstance(record, dict):
                keys.update(dict.fromkeys(record))
                seen += 1
    return list(keys)


def check_landing_headers(specs: list[SourceSpec], landing_dir: Path) -> tuple[int, list[str]]:
    """The number of landing files read, and a problem per file missing a column its
    declaration maps or an expression of it reads (or unreadable)."""
    problems: list[str] = []
    files = 0
    for spec in specs:
        for path in spec.files(landing_dir):
            files += 1
            where = f"{spec.declared_in}: source {spec.name}: {path.relative_to(landing_dir)}"
            try:
                found = file_columns(spec, path)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not raised
                problems.append(f"{where}: cannot be read ({type(exc).__name__}: {exc})")
                continue
            missing = [c for c in spec.source_columns if c not in found]
            if missing:
                shown = found if len(found) <= 30 else [*found[:30], "…"]
                first = f" in its first {JSONL_RECORDS} records" if spec.format == "jsonl" else ""
                readers = sorted({f for c in missing for f in spec.fields_reading(c)})
                problems.append(
                    f"{where} lacks mapped column(s) {missing}{first} (read by "
                    f"{', '.join(readers)}); it has {shown}. Did the export change? Update "
                    "the declaration's columns."
                )
    return files, problems
