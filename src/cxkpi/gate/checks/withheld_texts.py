"""``check: withheld_texts``: texts of this run the loader withheld as unsafe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxkpi import pii
from cxkpi.gate.checks._common import (
    fetch_dicts,
    table_exists,
)
from cxkpi.gate.registry import GateContext, Outcome, check_kind
from cxkpi.gate.report import SAMPLE_ROWS


@check_kind("withheld_texts", {}, table=pii.WITHHELD_TABLE)
def check_withheld_texts(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Texts of this run's files the loader withheld (NULL in raw; kept in
    raw.withheld_texts) because they could not be made safe."""
    if ctx.run_id is None:
        return Outcome.skip("no run_id given: the run's loads are unknown")
    if not table_exists(con, pii.WITHHELD_TABLE):
        return Outcome(True, 0, observed={"withheld": 0})
    rows = fetch_dicts(
        con.execute(
            f"""select source_name as source, source_file as file, source_record as record,
                       column_name as column, reason
                from {pii.WITHHELD_TABLE} where batch_id = $run_id
                order by source_file, source_record""",
            {"run_id": ctx.run_id},
        )
    )
    if not rows:
        return Outcome(True, 0, observed={"withheld": 0})
    for row in rows:
        row["file"] = Path(row["file"]).name
    return Outcome(
        False,
        len(rows),
        rows[:SAMPLE_ROWS],
        f"{len(rows)} text value(s) withheld (NULL in the warehouse, original kept in "
        f"{pii.WITHHELD_TABLE}): they could not be made safe",
        observed={"withheld": len(rows)},
    )
