"""``check: load_rejects``: the share of rows of this run's files the loader rejected."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cxkpi.canonical import ENTITIES
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


def _reason_pattern(reason: str, entity_name: str | None = None) -> str:
    """A reject reason without its row's values, so reasons group: "nps: 11 is above the
    maximum 10" and "nps: 12 ..." are both "nps: … is above the maximum 10"."""
    keys = ", ".join(ENTITIES[entity_name].primary_key) if entity_name in ENTITIES else None
    parts = []
    for part in reason.split("; "):
        part = re.sub(r"^(\w+): '.*' is not ", r"\1: '…' is not ", part)
        part = re.sub(r"^(\w+): -?[0-9.eE+-]+ is (above|below)", r"\1: … is \2", part)
        if keys and part.startswith(f"duplicate {keys} "):
            if " within the file (first at record " in part:
                part = f"duplicate {keys} … within the file"
            elif ": already loaded from " in part:
                part = f"duplicate {keys} …: already loaded"
        parts.append(part[:120])
    return "; ".join(parts)


@check_kind(
    "load_rejects",
    {"max_share": Param("share", required=True), "sources": Param("names")},
    table="raw.load_rejects",
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
    messages, sample = [], []
    for name, read, rejected, share in failing:
        reasons = con.execute(
            LOAD_SCOPE
            + """
            select r.entity, r.reason, count(*) as n
            from raw.load_rejects r
            inner join run_files f using (source_file, file_sha256)
            where r.batch_id = $run_id and r.source_name = $source and not f.redelivered
            group by all order by n desc, min(r.source_record) limit 1000""",
            {**args, "source": name},
        ).fetchall()
        grouped: dict[str, int] = {}
        for entity_name, reason, n in reasons:
            key = _reason_pattern(reason or "no reason recorded", entity_name)
            grouped[key] = grouped.get(key, 0) + n
        top = sorted(grouped.items(), key=lambda kv: -kv[1])[:3]
        messages.append(
            f"{name} rejected {rejected} of {read} rows ({pct(share)}, max "
            f"{pct(params['max_share'])}); top reasons: "
            + ", ".join(f"{n}x {reason!r}" for reason, n in top)
        )
        rows = fetch_dicts(
            con.execute(
                LOAD_SCOPE
                + """
                select r.source_name as source, r.source_file as file,
                       r.source_record as record, r.reason, r.raw_values
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
