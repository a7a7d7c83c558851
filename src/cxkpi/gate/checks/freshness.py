"""``check: freshness``: the newest timestamp reaches the logical date minus a lag."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cxkpi.gate.checks._common import (
    require_table,
    shown,
    table_sql,
)
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind
from cxkpi.warehouse import quote_ident


@check_kind(
    "freshness",
    {
        "table": Param("table", required=True),
        "column": Param("column", required=True),
        "max_lag_days": Param("days", default=0),
    },
    label=lambda p: f"freshness({p['column']})",
    checks_the_night=True,
)
def check_freshness(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """The newest value of a timestamp column reaches the logical date minus the lag.

    Values later than the day after the logical date are not counted (a garbled future
    timestamp must not make stale data look fresh); their number is reported.
    """
    if ctx.logical_date is None:
        return Outcome.skip("no logical date given")
    missing = require_table(con, params["table"])
    if missing:
        return missing
    column = quote_ident(params["column"])
    horizon = ctx.logical_date + timedelta(days=2)
    found = con.execute(
        f"""select max({column}) filter (where {column} < $horizon),
                   count(*) filter (where {column} >= $horizon), count({column})
            from {table_sql(params["table"])}""",
        {"horizon": horizon},
    ).fetchone()
    assert found is not None
    latest, future, count = found
    required = ctx.logical_date - timedelta(days=params["max_lag_days"])
    latest_day = latest.date() if isinstance(latest, datetime) else latest
    observed = {
        "latest": shown(latest),
        "required_from": required.isoformat(),
        "logical_date": ctx.logical_date.isoformat(),
        "rows_with_values": count,
        "rows_after_horizon": future,
    }
    if latest_day is not None and latest_day >= required:
        return Outcome(True, observed=observed)
    lag = (ctx.logical_date - latest_day).days if latest_day else None
    what = (
        f"latest {params['column']} is {shown(latest)}, {lag} day(s) before"
        if latest_day
        else f"no {params['column']} value at all up to"
    )
    beyond = f"; {future} value(s) after {horizon} ignored" if future else ""
    return Outcome(
        False,
        None,
        [observed],
        f"{what} the logical date {ctx.logical_date} (allowed lag: "
        f"{params['max_lag_days']:g} day(s)){beyond}: is a source file missing?",
        observed=observed,
    )
