"""``check: kpi_movement``: monthly HQ KPI values vs the last published ones."""

from __future__ import annotations

from typing import Any, TypeGuard

from cxkpi.gate.checks._common import (
    fetch_dicts,
    published_parquet,
    require_table,
    table_sql,
)
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind
from cxkpi.gate.report import SAMPLE_ROWS
from cxkpi.warehouse import connect, quote_literal

_HQ_MONTHS = """
    select kpi_id, period_start, value, unit, n, is_reliable
    from {table}
    where {headline_slice} {kpis}
"""


def _hq_months(con, source: str, kpis: list[str] | None) -> dict[tuple, dict]:
    where = ""
    if kpis:
        where = " and kpi_id in (" + ", ".join("'" + k.replace("'", "''") + "'" for k in kpis) + ")"
    from cxkpi import package_macros  # jinja2: only when the check runs, not to register it

    sql = _HQ_MONTHS.format(
        table=source, headline_slice=package_macros.headline_slice(), kpis=where
    )
    rows = fetch_dicts(con.execute(sql))
    return {(r["kpi_id"], r["period_start"]): r for r in rows}


def _latest_reliable(values: dict[tuple, dict], kpi: str, reliable_only: bool) -> dict | None:
    candidates = [
        v
        for (k, _), v in values.items()
        if k == kpi and v["value"] is not None and (v["is_reliable"] or not reliable_only)
    ]
    return max(candidates, key=lambda v: v["period_start"], default=None)


@check_kind(
    "kpi_movement",
    {
        "max_change": Param("bounds", required=True),
        "kpis": Param("names"),
        # or the catalog's KPIs at these levels of the KPI tree (goal, outcome, ...)
        "kpi_levels": Param("names"),
        "definitions": Param("table", default="intermediate.int_kpi__definitions"),
        "table": Param("table", default="marts.kpi_values"),
        "published_table": Param("column", default="kpi_values"),
        "include_unreliable": Param("bool", default=False),
    },
    label=lambda p: (
        "kpi_movement(" + ", ".join(f"{k}: {v:g}" for k, v in p["max_change"].items()) + ")"
    ),
)
def check_kpi_movement(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Monthly HQ values (all channels, segments, touchpoints) vs the last published ones.

    Flags a KPI whose value for a month moved by more than its unit's bound since the
    last publish, and one whose latest month moved by more than the bound from the
    previous publish's latest month. Only values with a reliable sample are compared
    (``include_unreliable: true`` compares all): a month just begun moves a lot.
    """
    if published_parquet(ctx.published_path, "publish_log") is None:
        return Outcome.skip("nothing published yet")
    missing = require_table(con, params["table"])
    if missing:
        return missing
    kpis = params["kpis"]
    if not kpis and params["kpi_levels"]:
        missing = require_table(con, params["definitions"])
        if missing:
            return missing
        listed = ", ".join(quote_literal(level) for level in params["kpi_levels"])
        kpis = [
            kpi
            for (kpi,) in con.execute(
                f"select kpi_id from {table_sql(params['definitions'])} "
                f"where kpi_level in ({listed}) order by kpi_id"
            ).fetchall()
        ]
        if not kpis:
            return Outcome.skip(f"the catalog has no KPI at levels {params['kpi_levels']}")
    new = _hq_months(con, table_sql(params["table"]), kpis)
    published = published_parquet(ctx.published_path, params["published_table"])
    if published is None:
        return Outcome.skip(f"{params['published_table']} is not in the published version")
    pub = connect()
    try:
        old = _hq_months(pub, f"read_parquet({quote_literal(published)})", kpis)
    finally:
        pub.close()
    bounds, reliable_only = params["max_change"], not params["include_unreliable"]

    def bound_of(unit: str | None) -> float | None:
        return bounds.get(unit or "", bounds.get("default"))

    def comparable(v: dict | None) -> TypeGuard[dict]:
        return v is not None and v["value"] is not None and (v["is_reliable"] or not reliable_only)

    moved, compared = [], 0
    for key, now in new.items():
        before, bound = old.get(key), bound_of(now["unit"])
        if bound is None or not comparable(now) or not comparable(before):
            continue
        compared += 1
        if abs(now["value"] - before["value"]) > bound:
            moved.append(("same month", now, before, bound))
    for kpi in sorted({k for k, _ in new}):
        latest = _latest_reliable(new, kpi, reliable_only)
        before_latest = _latest_reliable(old, kpi, reliable_only)
        if latest is None or before_latest is None:
            continue
        if latest["period_start"] <= before_latest["period_start"]:
            continue  # same latest month: compared above
        bound = bound_of(latest["unit"])
        compared += bound is not None
        if bound is not None and abs(latest["value"] - before_latest["value"]) > bound:
            moved.append(("latest month vs previous latest", latest, before_latest, bound))
    observed = {"values_compared": compared}
    if not moved:
        return Outcome(True, 0, observed=observed)
    moved.sort(key=lambda m: -abs(m[1]["value"] - m[2]["value"]))
    sample = [
        {
            "kpi": now["kpi_id"],
            "comparison": how,
            "period": now["period_start"].isoformat(),
            "published_period": before["period_start"].isoformat(),
            "old": round(before["value"], 2),
            "new": round(now["value"], 2),
            "unit": now["unit"],
            "max_change": bound,
        }
        for how, now, before, bound in moved
    ]
    text = "; ".join(
        f"{s['kpi']} {s['period'][:7]}: {s['old']:g} -> {s['new']:g} {s['unit']}"
        + (
            f" (published latest {s['published_period'][:7]})"
            if s["period"] != s["published_period"]
            else ""
        )
        + f", moved {abs(s['new'] - s['old']):.1f} > {s['max_change']:g}"
        for s in sample[:SAMPLE_ROWS]
    )
    return Outcome(
        False,
        len(moved),
        sample[:SAMPLE_ROWS],
        f"{len(moved)} KPI value(s) moved: {text}",
        observed=observed,
    )
