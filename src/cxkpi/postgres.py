"""PostgreSQL (issue 14): tables of a DuckDB database copied into a PostgreSQL server with
COPY, one transaction per call, so a copy either lands whole or not at all.

DuckDB stays the engine that reads landing files and checks rows; what it holds moves to
PostgreSQL as CSV through ``COPY ... FROM STDIN`` (the fastest way in, and what the loader's
"one transaction per file" needs). Column types are mapped one to one; a type with no
faithful PostgreSQL twin is refused by name rather than copied as text.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from cxkpi.errors import CxkpiError
from cxkpi.warehouse import quote_ident, quote_literal

_TYPES = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric(39, 0)",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20, 0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "UUID": "uuid",
    "JSON": "jsonb",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def pg_type(duckdb_type: str, where: str = "") -> str:
    """The PostgreSQL type holding every value of a DuckDB column type exactly."""
    found = _TYPES.get(duckdb_type.upper())
    if found:
        return found
    decimal = _DECIMAL.fullmatch(duckdb_type.upper())
    if decimal:
        return f"numeric({decimal.group(1)}, {decimal.group(2)})"
    raise CxkpiError(
        f"{where or 'a column'}: DuckDB type {duckdb_type} has no PostgreSQL twin cxkpi copies "
        "(lists, structs, maps, blobs): cast it in the model to text or a scalar type"
    )


def copy_tables(
    source: duckdb.DuckDBPyConnection,
    target: Any,
    tables: list[tuple[str, str]],
    into_schema: str | None = None,
) -> dict[str, int]:
    """Copy each ``(schema, table)`` of the DuckDB connection into the PostgreSQL connection
    ``target`` (psycopg2), replacing a table of the same name (in ``into_schema`` if given,
    else the same schema), in the caller's transaction. Returns the rows copied per
    ``schema.table`` written."""
    copied = {}
    with tempfile.TemporaryDirectory(prefix="cxkpi-pg-") as scratch, target.cursor() as cur:
        for source_schema, table in tables:
            source_name = f"{quote_ident(source_schema)}.{quote_ident(table)}"
            schema = into_schema or source_schema
            name = f"{quote_ident(schema)}.{quote_ident(table)}"
            columns = source.execute(f"describe {source_name}").fetchall()
            definition = ", ".join(
                f"{quote_ident(c[0])} {pg_type(c[1], f'{schema}.{table}.{c[0]}')}" for c in columns
            )
            cur.execute(f"create schema if not exists {quote_ident(schema)}")
            cur.execute(f"drop table if exists {name}")
            cur.execute(f"create table {name} ({definition})")
            file = Path(scratch) / f"{schema}.{table}.csv"
            source.execute(
                f"copy {source_name} to {quote_literal(file)} (format csv, header false)"
            )
            with file.open("rb") as rows:
                cur.copy_expert(f"copy {name} from stdin with (format csv)", rows)
            file.unlink()
            copied[f"{schema}.{table}"] = cur.rowcount
    return copied
