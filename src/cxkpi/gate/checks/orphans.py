"""``check: orphans``: rows whose key is not found in the referenced table."""

from __future__ import annotations

from typing import Any

from cxkpi.gate.checks._common import (
    fetch_dicts,
    pct,
    require_table,
    shown_row,
    table_sql,
)
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind
from cxkpi.gate.report import SAMPLE_ROWS
from cxkpi.warehouse import quote_ident


@check_kind(
    "orphans",
    {
        "table": Param("table", required=True),
        "column": Param("column", required=True),
        "ref_table": Param("table", required=True),
        "ref_column": Param("column", required=True),
        "max_share": Param("share", default=0.0),
        "key": Param("column"),
    },
    label=lambda p: f"orphans({p['column']} -> {p['ref_table']}.{p['ref_column']})",
)
def check_orphans(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Rows whose (non-empty) key is not found in the referenced table."""
    for table in (params["table"], params["ref_table"]):
        missing = require_table(con, table)
        if missing:
            return missing
    column, ref_column = quote_ident(params["column"]), quote_ident(params["ref_column"])
    orphan_rows = f"""
        from {table_sql(params["table"])} t
        where t.{column} is not null and not exists (
            select 1 from {table_sql(params["ref_table"])} r where r.{ref_column} = t.{column})
    """
    counts = con.execute(
        f"select (select count(*) {orphan_rows}), "
        f"(select count({column}) from {table_sql(params['table'])})"
    ).fetchone()
    assert counts is not None
    orphans, keyed = int(counts[0]), int(counts[1])
    share = orphans / keyed if keyed else 0.0
    observed = {"rows_with_key": keyed, "orphans": orphans, "share": round(share, 4)}
    if not orphans or share <= params["max_share"]:
        return Outcome(True, orphans, observed=observed)
    key = f"t.{quote_ident(params['key'])} as key, " if params["key"] else ""
    rows = fetch_dicts(
        con.execute(f"select {key}t.{column} {orphan_rows} order by 1 limit {SAMPLE_ROWS}")
    )
    return Outcome(
        False,
        orphans,
        [shown_row(r) for r in rows],
        f"{orphans} of {keyed} rows ({pct(share)}, max {pct(params['max_share'])}) have "
        f"{params['column']} values not found in {params['ref_table']}.{params['ref_column']}",
        observed=observed,
    )
