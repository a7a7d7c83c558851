"""The checks of single fields of a source declaration (text, time zone, timestamp format,
CSV characters, encoding) and where a field is written (``Location``), for the error
messages ``file:line:column: message``; ``cxkpi.sources`` checks a whole declaration."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from cxkpi.errors import ConfigError
from cxkpi.kpi_spec import Document

# The strptime directives DuckDB supports (a '-' drops zero padding where it applies).
_STRPTIME_DIRECTIVE = re.compile(r"%(-?[dmyHIMSj]|[aAwbBYpfgnzZUWcxXGVu%])")
# Those that read a time of day or an offset: not in a format for dates alone.
_TIME_DIRECTIVES = set("HIMSpfgnzZcX")


@dataclass(frozen=True)
class Location:
    """Where a declaration (or one of its fields) is written: file, and line:column when the
    YAML was read with positions."""

    file: Path
    document: Document | None = None

    def at(self, *field_path: str | int) -> str:
        if self.document is None:
            return str(self.file)
        line, column = self.document.at(tuple(field_path))
        return f"{self.file}:{line}:{column}"


def scalar_text(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def check_text(where: Location, value: Any, *field_path: str | int) -> str:
    """A text field of the declaration: a string, without NUL bytes, not empty."""
    name = ".".join(str(p) for p in field_path)
    if not isinstance(value, str):
        raise fail(where.at(*field_path), f"{name} must be text, got {value!r}")
    if not value:
        raise fail(where.at(*field_path), f"{name} must not be empty")
    if "\x00" in value:
        raise fail(where.at(*field_path), f"{name} must not contain a NUL byte")
    return value


def fail(where: Location | Path | str, message: str) -> ConfigError:
    place = where.at() if isinstance(where, Location) else where
    return ConfigError(f"{place}: {message}")


@cache
def duckdb_time_zones() -> frozenset[str]:
    from cxkpi.warehouse import connect

    con = connect()
    try:
        return frozenset(
            r[0] for r in con.execute("select name from pg_timezone_names()").fetchall()
        )
    finally:
        con.close()


def check_timestamp_format(where: Location, fmt: Any, key: str = "format") -> str:
    """``timestamps.<key>``: a strptime format DuckDB accepts."""
    fmt = check_text(where, fmt, "timestamps", key)
    at = where.at("timestamps", key)
    _directives(where, fmt, key)  # refuses one DuckDB does not support, naming it
    from cxkpi.warehouse import connect, quote_literal

    con = connect()
    try:
        # a literal, not a bound parameter: DuckDB imports pandas (1 s) to bind one
        con.execute(f"select try_strptime('2026-01-01', {quote_literal(fmt)})")
    except duckdb.Error as exc:
        raise fail(at, f"timestamps.{key} {fmt!r} is refused by DuckDB: {exc}") from None
    finally:
        con.close()
    return fmt


def check_date_format(where: Location, fmt: Any) -> str:
    """``timestamps.date_format``: how the source writes a date without a time."""
    fmt = check_timestamp_format(where, fmt, "date_format")
    for directive in _directives(where, fmt, "date_format"):
        if directive.lstrip("-") in _TIME_DIRECTIVES:
            raise fail(
                where.at("timestamps", "date_format"),
                f"timestamps.date_format {fmt!r}: %{directive} reads a time of day or an "
                "offset; date_format is for values written as a date alone (e.g. %Y-%m-%d), "
                "timestamps.format for those with a time",
            )
    return fmt


def _directives(where: Location, fmt: str, key: str) -> list[str]:
    """The strptime directives of ``fmt`` (without the %), each one DuckDB supports."""
    found = []
    position = 0
    while (percent := fmt.find("%", position)) >= 0:
        directive = _STRPTIME_DIRECTIVE.match(fmt, percent)
        if directive is None:
            shown = fmt[percent : percent + 3]
            raise fail(
                where.at("timestamps", key),
                f"timestamps.{key} {fmt!r}: {shown!r} is not a strptime directive DuckDB "
                "supports (e.g. %Y %m %d %H %M %S %f %z %b; write %% for a literal %)",
            )
        found.append(directive.group(1))
        position = directive.end()
    return found


def check_csv_char(where: Location, csv_data: dict, key: str, default: str) -> str:
    value = csv_data.get(key, default)
    value = check_text(where, value, "csv", key)
    if len(value) != 1:
        raise fail(where.at("csv", key), f"csv.{key} must be a single character, got {value!r}")
    if value in "\r\n":
        raise fail(where.at("csv", key), f"csv.{key} cannot be a line break")
    if key != "delimiter" and not value.isascii():
        raise fail(where.at("csv", key), f"csv.{key} must be an ASCII character, got {value!r}")
    return value


def check_encoding(where: Location, value: Any) -> str:
    text = check_text(where, value, "csv", "encoding")
    try:
        info = codecs.lookup(text)
    except LookupError:
        raise fail(
            where.at("csv", "encoding"), f"csv.encoding {text!r} is not a known encoding"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise fail(
            where.at("csv", "encoding"),
            f"csv.encoding {text!r} is not a text encoding (e.g. utf-8, cp1252, latin-1)",
        )
    return {"utf-8": "utf-8", "iso8859-1": "latin-1"}.get(info.name, info.name)
