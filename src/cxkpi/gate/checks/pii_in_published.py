"""``check: pii_in_published``: no personal data in any text column of a published table."""

from __future__ import annotations

from typing import Any

import duckdb

from cxkpi import pii
from cxkpi.gate.checks._common import (
    require_table,
    shown,
    table_sql,
)
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind
from cxkpi.gate.report import SAMPLE_ROWS
from cxkpi.warehouse import quote_ident

# Values the detector cannot flag (cxkpi.pii.may_hold_pii is false), decided in SQL so a
# column of a million keys costs a scan, not a million Python calls: ASCII only (NFKC
# leaves it unchanged), no at sign or at-word, fewer than pii.MIN_DIGITS digits.
_MAY_HOLD_PII_SQL = f"""(
    not regexp_full_match(part, '[\\x00-\\x7f]*')
    or part like '%@%'
    or regexp_matches(lower(part), '(^|[^a-z])(at|arroba|arobase)([^a-z]|$)')
    or length(regexp_replace(part, '[^0-9]', '', 'g')) >= {pii.MIN_DIGITS})"""


def _varchar_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        row[0]
        for row in con.execute(
            """select column_name from information_schema.columns
               where table_schema = ? and table_name = ? and data_type = 'VARCHAR'
               order by ordinal_position""",
            [schema, name],
        ).fetchall()
    ]


def _published_tables(con: duckdb.DuckDBPyConnection, ctx: GateContext) -> list[str]:
    if ctx.published_tables is not None:
        return list(ctx.published_tables)
    # without the publish list (a gate run by hand): every table of marts, a superset
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_schema = 'marts' order by 1"
    ).fetchall()
    return [r[0] for r in rows]


@check_kind("pii_in_published", {"tables": Param("names")}, table="published tables")
def check_pii_in_published(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """No personal data in any text column of any published table (cxkpi.pii).

    Every varchar column is scanned over its distinct "|"-separated parts: keys built by
    key_of join dimension texts with "|" and no kind of personal data spans a "|", so a
    key is clean when its parts are, and kpi_values' millions of keys come down to the
    few distinct dimension values and dates they are made of. Parts the SQL prefilter
    proves clean never reach Python.
    """
    tables = params["tables"] or _published_tables(con, ctx)
    detector = pii.detector()
    findings: list[dict[str, Any]] = []
    observed: dict[str, Any] = {}
    offending = 0
    for table in tables:
        missing = require_table(con, table)
        if missing:
            return missing
        for column in _varchar_columns(con, table):
            col = quote_ident(column)
            # the distinct parts of every value, kept before the prefilter runs on them: in
            # one query DuckDB pushes the filter below the distinct and runs its regexes on
            # every part of every row (19 s instead of 0.9 s on kpi_values' 2.9 M keys at
            # --scale 10); a temporary table is the fence. No distinct of whole values
            # first: keys are all distinct, and hashing millions of them costs memory
            # while their parts are a few hundred.
            con.execute(
                f"""create or replace temp table cxkpi_pii_parts as
                    select distinct unnest(string_split({col}, '|')) as part
                    from {table_sql(table)}
                    where {col} is not null"""
            )
            try:
                parts = con.execute(
                    f"select part from cxkpi_pii_parts where {_MAY_HOLD_PII_SQL}"
                ).fetchall()
            finally:
                con.execute("drop table cxkpi_pii_parts")
            flagged = {p: kinds for (p,) in parts if (kinds := detector.kinds(p))}
            observed[f"{table}.{column}"] = {"candidates": len(parts), "flagged": len(flagged)}
            if not flagged:
                continue
            rows = con.execute(
                f"""select count(*) from {table_sql(table)}
                    where list_has_any(string_split({col}, '|'), $parts)""",
                {"parts": list(flagged)},
            ).fetchone()
            offending += int(rows[0]) if rows else 0
            for part, kinds in list(flagged.items())[:SAMPLE_ROWS]:
                findings.append(
                    {"table": table, "column": column, "kinds": kinds, "value": shown(part)}
                )
    if not findings:
        return Outcome(True, 0, observed={"columns": observed})
    where = sorted({f"{f['table']}.{f['column']}" for f in findings})
    return Outcome(
        False,
        offending,
        findings[:SAMPLE_ROWS],
        f"{offending} row(s) of published tables hold personal data in {', '.join(where)} "
        "(shown masked); the loader should have masked it: see docs/quality-gate.md",
        observed={"columns": observed},
    )
