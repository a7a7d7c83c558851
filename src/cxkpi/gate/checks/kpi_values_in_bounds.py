"""``check: kpi_values_in_bounds``: each value within the range its KPI can take."""

from __future__ import annotations

from typing import Any

from cxkpi.gate.checks._common import fetch_dicts, require_table, shown_row, table_sql
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind
from cxkpi.gate.report import SAMPLE_ROWS


@check_kind(
    "kpi_values_in_bounds",
    {
        "table": Param("table", required=True),
        "definitions": Param("table", default="intermediate.int_kpi__definitions"),
    },
    label=lambda p: "kpi_values_in_bounds(value)",
)
def check_kpi_values_in_bounds(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Values outside ``value_min``..``value_max`` of their KPI: the range its type gives
    (NPS -100..100, a share in percent 0..100, a mean within its answer scale), computed
    by ``cxkpi compile`` from the catalog, so no suite names a KPI or a scale. A KPI
    whose type does not bound it (a count, a ratio, a formula) is not checked."""
    for table in (params["table"], params["definitions"]):
        missing = require_table(con, table)
        if missing:
            return missing
    outside = f"""
        from {table_sql(params["table"])} v
        inner join {table_sql(params["definitions"])} d on d.kpi_id = v.kpi_id
        where v.value < d.value_min or v.value > d.value_max"""
    counts = con.execute(
        f"""select (select count(*) {outside}),
                   (select count(*) from {table_sql(params["table"])} v
                    inner join {table_sql(params["definitions"])} d on d.kpi_id = v.kpi_id
                    where v.value is not null
                      and (d.value_min is not null or d.value_max is not null))"""
    ).fetchone()
    assert counts is not None
    wrong, checked = int(counts[0]), int(counts[1])
    observed = {"values_checked": checked, "values_outside": wrong}
    if not wrong:
        return Outcome(True, 0, observed=observed)
    rows = fetch_dicts(
        con.execute(
            f"""select v.kpi_id, v.period_grain, v.period_start, v.org_level, v.org_unit_id,
                       v.value, d.value_min, d.value_max {outside}
                order by abs(v.value) desc, v.kpi_id limit {SAMPLE_ROWS}"""
        )
    )
    kpis = con.execute(f"select distinct v.kpi_id {outside} order by 1").fetchall()
    return Outcome(
        False,
        wrong,
        [shown_row(r) for r in rows],
        f"{wrong} of {checked} values are outside the range their KPI can take "
        f"({', '.join(k[0] for k in kpis)})",
        observed=observed,
    )
