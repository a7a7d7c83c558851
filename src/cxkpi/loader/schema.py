"""The ``raw`` schema the loader writes: one table per canonical entity, ``load_rejects``
(with the reject reason codes, :data:`REASON_CODES`) and the file registry ``load_files``;
warehouses from older cxkpi versions are upgraded in place by :func:`ensure_raw_schema`."""

from __future__ import annotations

import duckdb

from cxkpi.canonical import ENTITIES, LOAD_METADATA_COLUMNS, Entity

RAW_SCHEMA = "raw"
NO_REASON = "rejected without a recorded reason (before cxkpi required one)"
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
    "expression": "a column's expression cannot be computed from the row's values",
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


def _entity_ddl(ent: Entity) -> str:
    columns = ", ".join(f"{c.name} {c.type}" for c in (*ent.columns, *LOAD_METADATA_COLUMNS))
    return f"create table if not exists {RAW_SCHEMA}.{ent.name} ({columns})"


def ensure_raw_schema(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> None:
    prefix = f"{catalog}." if catalog else ""
    con.execute(f"create schema if not exists {prefix}{RAW_SCHEMA}")
    for ddl in (*(_entity_ddl(e) for e in ENTITIES.values()), _REJECTS_DDL, _FILES_DDL):
        con.execute(ddl.replace(f" {RAW_SCHEMA}.", f" {prefix}{RAW_SCHEMA}.", 1))
    _add_new_columns(con, catalog, prefix)
    from cxkpi.outbox import ensure_ledger  # the closed loop's ledger: a dbt source too

    ensure_ledger(con, prefix)
    # Warehouses from before every reject needed a reason: name the gap, then forbid it.
    nullable = con.execute(
        """select is_nullable from information_schema.columns
           where table_catalog = coalesce(?, current_database()) and table_schema = ?
             and table_name = 'load_rejects' and column_name = 'reason'""",
        [catalog, RAW_SCHEMA],
    ).fetchone()
    if nullable and nullable[0] == "YES":
        table = f"{prefix}{RAW_SCHEMA}.load_rejects"
        con.execute(f"update {table} set reason = ? where coalesce(reason, '') = ''", [NO_REASON])
        con.execute(f"alter table {table} alter column reason set not null")
    _migrate_reason_code(con, catalog, prefix)


def _add_new_columns(con: duckdb.DuckDBPyConnection, catalog: str | None, prefix: str) -> None:
    """A column declared in canonical.py after the warehouse was made is added to its raw
    table (null for the rows loaded before); rows are inserted by name, so the order of
    columns does not matter. A column no longer declared stays, with its history."""
    present = set(
        con.execute(
            """select table_name, column_name from information_schema.columns
               where table_catalog = coalesce(?, current_database()) and table_schema = ?""",
            [catalog, RAW_SCHEMA],
        ).fetchall()
    )
    for ent in ENTITIES.values():
        for column in (*ent.columns, *LOAD_METADATA_COLUMNS):
            if (ent.name, column.name) not in present:
                con.execute(
                    f"alter table {prefix}{RAW_SCHEMA}.{ent.name} "
                    f"add column {column.name} {column.type}"
                )


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
