"""``check: empty_files``: files of this run that held no record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxkpi.gate.checks._common import (
    fetch_dicts,
    shown_row,
    source_filter,
    table_exists,
)
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind
from cxkpi.gate.report import SAMPLE_ROWS


@check_kind(
    "empty_files",
    {"sources": Param("names")},
    table="raw.load_files",
    checks_the_load=True,
)
def check_empty_files(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Files of this run that held no record (0 bytes, or a header only)."""
    if ctx.run_id is None:
        return Outcome.skip("no run_id given: the run's loads are unknown")
    if not table_exists(con, "raw.load_files"):
        return Outcome.skip("nothing was ever loaded (no raw.load_files)")
    rows = fetch_dicts(
        con.execute(
            f"""select source_name as source, source_file as file, status, file_bytes,
                       message
                from raw.load_files
                where batch_id = $run_id and rows_read = 0
                  and status in ('loaded', 'replaced', 'empty') {source_filter(params)}
                order by source_name, source_file""",
            {"run_id": ctx.run_id},
        )
    )
    if not rows:
        return Outcome(True, 0)
    for row in rows:
        row["file"] = Path(row["file"]).name
    names = ", ".join(f"{r['source']}: {r['file']}" for r in rows)
    return Outcome(
        False,
        len(rows),
        [shown_row(r) for r in rows[:SAMPLE_ROWS]],
        f"{len(rows)} file(s) of this run have no records ({names}): did an export fail?",
    )
