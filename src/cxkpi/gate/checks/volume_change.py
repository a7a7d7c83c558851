"""``check: volume_change``: rows now vs the rows of the last published version."""

from __future__ import annotations

import json
import math
from typing import Any

from cxkpi.gate.checks._common import (
    last_publish,
    published_parquet,
    require_table,
    table_sql,
)
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind


@check_kind(
    "volume_change",
    {
        "table": Param("table", required=True),
        "max_ratio": Param("ratio", required=True),
        "published_table": Param("column"),
    },
    label=lambda p: f"volume_change(max_ratio={p['max_ratio']:g})",
)
def check_volume_change(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Rows now vs the rows the last published version recorded for the table."""
    if published_parquet(ctx.published_path, "publish_log") is None:
        return Outcome.skip("nothing published yet")
    missing = require_table(con, params["table"])
    if missing:
        return missing
    name = params["published_table"] or params["table"].split(".")[1]
    last = last_publish(ctx.published_path)
    counts = json.loads(last["row_counts"]) if last else {}
    if name not in counts:
        return Outcome.skip(f"{name} is not in the last published version")
    old = int(counts[name])
    found = con.execute(f"select count(*) from {table_sql(params['table'])}").fetchone()
    new = int(found[0]) if found else 0
    ratio = new / old if old else (1.0 if new == 0 else math.inf)
    bound = params["max_ratio"]
    observed = {
        "rows": new,
        "published_rows": old,
        "published_version": last["version"] if last else None,
        "ratio": round(ratio, 4) if math.isfinite(ratio) else "inf",
    }
    if 1 / bound <= ratio <= bound:
        return Outcome(True, observed=observed)
    return Outcome(
        False,
        new,
        [observed],
        f"{new:,} rows vs {old:,} in published version {observed['published_version']} "
        f"(x{ratio:.2f}; allowed between x{1 / bound:.2f} and x{bound:g})",
        observed=observed,
    )
