"""``check: kpis_present``: every KPI of the catalog has a value in the published table."""

from __future__ import annotations

from typing import Any

from cxkpi.gate.checks._common import require_table, table_sql
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind

SHOWN_IDS = 20  # ids named in the message; the evidence keeps them all


@check_kind(
    "kpis_present",
    {
        "table": Param("table", required=True),
        # default: the top declared level (display_order 1 in declared_levels)
        "org_level": Param("column"),
        # the catalog's one-row-per-fact tables (cxkpi compile)
        "definitions": Param("table", default="intermediate.int_kpi__definitions"),
        "declared_levels": Param("table", default="intermediate.int_kpi__org_levels"),
    },
    label=lambda p: f"kpis_present({p['org_level'] or 'top level'})",
)
def check_kpis_present(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Each KPI (kind kpi) the catalog declares at ``org_level`` (default: the top
    declared level) has at least one value there. The catalog, not the suite, says which
    KPIs to expect, so a company's own catalog needs no edit of the suite; the message
    names the KPIs without a value."""
    for table in (params["table"], params["definitions"], params["declared_levels"]):
        missing = require_table(con, table)
        if missing:
            return missing
    rows = con.execute(
        f"""select d.kpi_id, exists (
                    select 1 from {table_sql(params["table"])} v
                    where v.kpi_id = d.kpi_id and v.org_level = l.org_level
                      and v.value is not null) as has_value
            from {table_sql(params["definitions"])} d
            inner join {table_sql(params["declared_levels"])} l
                on l.kpi_id = d.kpi_id
                and (l.org_level = $level or ($level is null and l.display_order = 1))
            where d.kind = 'kpi'
            order by d.kpi_id""",
        {"level": params["org_level"]},
    ).fetchall()
    absent = [kpi for kpi, has_value in rows if not has_value]
    observed = {"kpis_expected": len(rows), "kpis_without_value": absent}
    if not absent:
        return Outcome(True, 0, observed=observed)
    named = ", ".join(absent[:SHOWN_IDS]) + (" …" if len(absent) > SHOWN_IDS else "")
    return Outcome(
        False,
        len(absent),
        [{"kpi_id": kpi} for kpi in absent[:SHOWN_IDS]],
        f"{len(absent)} of {len(rows)} KPIs have no value at "
        f"{params['org_level'] or 'the top'} level: {named}",
        observed=observed,
    )
