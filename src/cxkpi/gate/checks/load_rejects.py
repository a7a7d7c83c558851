"""``check: load_rejects``: the share of rows of this run's files the loader rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxkpi.gate.checks._common import (
    LOAD_SCOPE,
    fetch_dicts,
    mask_pii,
    pct,
    shown_row,
    source_filter,
    table_exists,
)
from cxkpi.gate.registry import GateContext, Outcome, Param, check_kind
from cxkpi.gate.report import SAMPLE_ROWS


def _example(reason: str | None) -> str:
    """One reason of a code, as a message may show it: personal data masked, cut short."""
    text = mask_pii(reason or "no reason recorded")
    return text if len(text) <= 120 else text[:119] + "…"


@check_kind(
    "load_rejects",
    {"max_share": Param("share", required=True), "sources": Param("names")},
    table="raw.load_rejects",
    checks_the_load=True,
    label=lambda p: (
        "load_rejects("
        + "".join(f"{source}, " for source in p["sources"] or ())
        + f"max_share={p['max_share']:g})"
    ),
)
def check_load_rejects(con, ctx: GateContext, params: dict[str, Any]) -> Outcome:
    """Share of rows of this run's files rejected by the loader, per source."""
    if ctx.run_id is None:
        return Outcome.skip("no run_id given: the run's loads are unknown")
    if not table_exists(con, "raw.load_files"):
        return Outcome.skip("nothing was ever loaded (no raw.load_files)")
    args = {"run_id": ctx.run_id}
    sources = fetch_dicts(
        con.execute(
            LOAD_SCOPE
            + f"""
            select source_name,
                   sum(rows_read) filter (where not redelivered) as rows_read,
                   sum(rows_rejected) filter (where not redelivered) as rows_rejected,
                   count(*) filter (where redelivered) as redelivered_files,
                   count(*) as files
            from run_files where true {source_filter(params)}
            group by source_name order by source_name""",
            args,
        )
    )
    failing, observed = [], {}
    for s in sources:
        read, rejected = int(s["rows_read"] or 0), int(s["rows_rejected"] or 0)
        share = rejected / read if read else 0.0
        observed[s["source_name"]] = {
            "files": s["files"],
            "redelivered_files": s["redelivered_files"],
            "rows_read": read,
            "rows_rejected": rejected,
            "share": round(share, 4),
        }
        if rejected and share > params["max_share"]:
            failing.append((s["source_name"], read, rejected, share))
    if not failing:
        return Outcome(True, 0, observed={"sources": observed})
    messages: list[str] = []
    sample: list[dict] = []
    for name, read, rejected, share in failing:
        # grouped by the loader's reason code (raw.load_rejects.reason_code), one example
        # reason each: the first record's
        top = con.execute(
            LOAD_SCOPE
            + """
            select coalesce(r.reason_code, 'unknown') as code, count(*) as n,
                   coalesce(arg_min(r.reason, r.source_record), any_value(r.reason)) as example
            from raw.load_rejects r
            inner join run_files f using (source_file, file_sha256)
            where r.batch_id = $run_id and r.source_name = $source and not f.redelivered
            group by 1 order by n desc, min(r.source_record) nulls first, code limit 3""",
            {**args, "source": name},
        ).fetchall()
        messages.append(
            f"{name} rejected {rejected} of {read} rows ({pct(share)}, max "
            f"{pct(params['max_share'])}); top reasons: "
            + ", ".join(f"{n}x {code} (e.g. {_example(example)!r})" for code, n, example in top)
        )
        rows = fetch_dicts(
            con.execute(
                LOAD_SCOPE
                + """
                select r.source_name as source, r.source_file as file,
                       r.source_record as record, r.reason_code as code, r.reason,
                       r.raw_values
                from raw.load_rejects r
                inner join run_files f using (source_file, file_sha256)
                where r.batch_id = $run_id and r.source_name = $source and not f.redelivered
                order by r.source_file, r.source_record nulls first limit $n""",
                {**args, "source": name, "n": SAMPLE_ROWS},
            )
        )
        for row in rows:
            row["file"] = Path(row["file"]).name if row["file"] else None
            # masked first, then cut: enough to find the record (the reason says why)
            raw = mask_pii(row["raw_values"] or "")
            row["raw_values"] = raw if len(raw) <= 120 else raw[:119] + "…"
        sample.extend(shown_row(r) for r in rows)
    return Outcome(
        False,
        sum(f[2] for f in failing),
        sample[:SAMPLE_ROWS],
        "; ".join(messages),
        observed={"sources": observed},
    )
