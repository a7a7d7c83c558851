"""Counting a file's records independently of DuckDB's reader (a byte-level scan of CSV
records and JSON lines), and cutting out the records above ``max_record_bytes``."""

from __future__ import annotations

import mmap
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cxkpi.errors import LoadError

# The largest record (CSV record or JSON line, in bytes) the loader parses; larger ones are
# rejected with a reason. The setting ``max_record_bytes`` overrides it.
DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024


@dataclass
class RecordScan:
    """A text file's records as a byte-level scan sees them.

    ``records`` counts data records (CSV: after the header rows, blank lines skipped; JSON
    lines: lines with more than spaces); ``oversize`` holds (record number, byte offset,
    size) of every record above the limit, record numbers as the loader reports them;
    ``extra_headers`` (byte offset, size) of the header rows after the first (CSV).
    """

    records: int = 0
    oversize: list[tuple[int, int, int]] = field(default_factory=list)
    header: bytes = b""
    extra_headers: list[tuple[int, int]] = field(default_factory=list)

    def cuts(self) -> list[tuple[int, int]]:
        """(byte offset, size) of every record DuckDB's reader must not see, in order."""
        return sorted([*self.extra_headers, *((start, size) for _, start, size in self.oversize)])


def scan_csv(
    data: bytes | mmap.mmap, quote: bytes, escape: bytes, limit: int, header_rows: int = 1
) -> RecordScan:
    """Record boundaries of RFC 4180 CSV: line breaks end a record outside quotes; inside,
    a doubled quote (or ``escape`` + any byte) does not close the field. The first
    ``header_rows`` records are the header (names in the first); data records count from 1
    after them."""
    scan = RecordScan()
    outside = re.compile(b"[" + re.escape(quote) + b"\r\n]")
    inside = re.compile(b"[" + re.escape(quote) + re.escape(escape) + b"]")
    size, position, number = len(data), 0, -header_rows  # the header rows are -h..-1
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
        if number <= 0:
            row = number + header_rows  # 1 for the names
            if end - start > limit:
                raise LoadError(
                    f"header row {row} is {end - start:,} bytes, above the maximum record "
                    f"size of {limit:,} bytes (max_record_bytes)"
                )
            if row == 1:
                scan.header = bytes(data[start:end])
            else:
                scan.extra_headers.append((start, end - start))
        elif end - start > limit:
            scan.oversize.append((number, start, end - start))
    scan.records = max(number, 0)
    return scan


def scan_lines(data: bytes | mmap.mmap, limit: int) -> RecordScan:
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
def memory_mapped(path: Path) -> Iterator[mmap.mmap]:
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        yield m


def without_records(path: Path, data: mmap.mmap, scan: RecordScan, blank: bool) -> Path:
    """A temporary copy of ``path`` without its oversize records and extra header rows
    (``blank``: an empty line in their place, so JSON line numbers stay), copied in
    slices: memory stays small."""
    handle, name = tempfile.mkstemp(prefix="cxkpi-", suffix=path.suffix)
    with open(handle, "wb") as sink:
        position = 0
        for start, size in scan.cuts():
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
