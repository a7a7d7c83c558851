"""``check: kpis_present``: every KPI of the catalog that has data has a value in the
published table; those without any data (no_data) are named, not failed."""

from __future__ import annotations

from typing import Any

from cxkpi.gate.checks._common import require_table, table_sql
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind

SHOWN_IDS = 20  # ids named in the message; the evidence keeps them all


def _named(items: list[str]) -> str:
    return ", ".join(items[:SHOWN_IDS]) + (" …" if len(items) > SHOWN_IDS else "")


@check_kind(
    "kpis_present",
    {
        "table": Param("table", required=True),
        # default: the top declared level (display_order 1 in declared_levels)
        "org_level": Param("column"),
        # the catalog's one-row-per-fact tables (cxkpi compile) and its data status (dbt)
        "definitions": Param("table", default="intermediate.int_kpi__definitions"),
        "declared_levels": Param("table", default="intermediate.int_kpi__org_levels"),
        "data_status": Param("table", default="intermediate.int_kpi__data_status"),
    },
    label=lambda p: f"kpis_present({p['org_level'] or 'top level'})",
)
def check_kpis_present(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Each KPI (kind kpi) the catalog declares at ``org_level`` (default: the top
    declared level) has at least one value there, unless it has no data at all
    (``data_status``: no observation in its source, an input of its formula without
    data): the company lacks that data, nothing was lost, so such a KPI is named in the
    message of a passing check (the console shows it) instead of failing the publish. A
    KPI with data and no value fails it. The catalog, not the suite, says which KPIs to
    expect, so a company's own catalog needs no edit of the suite."""
    tables = ("table", "definitions", "declared_levels", "data_status")
    for table in (params[t] for t in tables):
        missing = require_table(con, table)
        if missing:
            return missing
    rows = con.execute(
        f"""select d.kpi_id,
                   exists (
                       select 1 from {table_sql(params["table"])} v
                       where v.kpi_id = d.kpi_id and v.org_level = l.org_level
                         and v.value is not null) as has_value,
                   coalesce(s.has_data, true) as has_data,
                   s.no_data_reason
            from {table_sql(params["definitions"])} d
            inner join {table_sql(params["declared_levels"])} l
                on l.kpi_id = d.kpi_id
                and (l.org_level = $level or ($level is null and l.display_order = 1))
            left join {table_sql(params["data_status"])} s on s.kpi_id = d.kpi_id
            where d.kind = 'kpi'
            order by d.kpi_id""",
        {"level": params["org_level"]},
    ).fetchall()
    expected = [kpi for kpi, _, has_data, _ in rows if has_data]
    absent = [kpi for kpi, has_value, has_data, _ in rows if has_data and not has_value]
    without_data = {kpi: reason for kpi, _, has_data, reason in rows if not has_data}
    observed = {
        "kpis_expected": len(expected),
        "kpis_without_value": absent,
        "kpis_without_data": without_data,
    }
    no_data = (
        f"{len(without_data)} KPI(s) have no data and are not expected (no_data, see "
        "kpi_alignment_report): "
        + _named([f"{kpi} ({reason})" for kpi, reason in without_data.items()])
        if without_data
        else ""
    )
    if not absent:
        return Outcome(True, 0, message=no_data, observed=observed)
    level = params["org_level"] or "the top"
    missing_values = (
        f"{len(absent)} of {len(expected)} KPIs have no value at {level} level: " + _named(absent)
    )
    return Outcome(
        False,
        len(absent),
        [{"kpi_id": kpi} for kpi in absent[:SHOWN_IDS]],
        missing_values + (f"; {no_data}" if no_data else ""),
        observed=observed,
    )
