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

The package, in the order a file goes through it: ``registry`` (checksums, landing-relative
names), ``count`` (the independent record count, oversize records), ``read`` (the file as
text rows), ``checks`` (typed and checked rows), ``files`` (one file committed or failed),
``batch`` (a whole load, corrections re-evaluated); ``schema`` holds the raw tables and
the reason codes.
"""

from __future__ import annotations

from cxkpi.loader.batch import LoadReport, load
from cxkpi.loader.count import DEFAULT_MAX_RECORD_BYTES
from cxkpi.loader.files import FileResult, load_file
from cxkpi.loader.registry import file_sha256, registry_name
from cxkpi.loader.schema import RAW_SCHEMA, REASON_CODES, ensure_raw_schema

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "RAW_SCHEMA",
    "REASON_CODES",
    "FileResult",
    "LoadReport",
    "ensure_raw_schema",
    "file_sha256",
    "load",
    "load_file",
    "registry_name",
]
