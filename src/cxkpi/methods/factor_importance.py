"""The analyze stage's Python part: derived factor importance, written to the warehouse.

dbt computes everything expressible in portable SQL; a key-driver regression is not, so it
runs here, after ``dbt build`` and before the gate, on the enriched factor ratings. The
result table ``marts.factor_importance`` is audited and published like the dbt marts.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from cxkpi.canonical import EXPERIENCE_FACTORS
from cxkpi.methods.importance import derived_importance
from cxkpi.warehouse import Warehouse, as_warehouse, quote_ident, quote_literal

TABLE = ("marts", "factor_importance")
# (outcome id, how it is computed per response): an X outcome and an O outcome.
OUTCOMES = {
    "nps": "the response's likelihood to recommend (0-10)",
    "repurchased_within_90d": "the customer ordered again within 90 days of responding "
    "(responses with a complete 90-day window only)",
}
MIN_RESPONDENTS = 30


_RATINGS = """
    select r.response_id, r.factor, r.experience, r.nps,
           cast(s.repurchased_within_90d as double) as repurchased_within_90d, s.responded_at
    from intermediate.int_factor_ratings_enriched r
    inner join intermediate.int_survey_responses_enriched s using (response_id)
"""


def _wide(con, outcome: str, where: str = "true") -> pd.DataFrame:
    """One row per response (sorted by response_id), one column per factor, then
    ``outcome``: what :func:`factor_frame` makes of the long ratings, pivoted by DuckDB so
    that the long rows (21.6 M at --scale 1000) never reach pandas. The warehouse model
    holds one rating per response and factor (its dbt test) and one outcome per response
    (joined from the response)."""
    present = [
        row[0]
        for row in con.execute(
            f"select factor from ({_RATINGS}) where {where} "
            "group by factor order by min(response_id), factor"
        ).fetchall()
    ]
    factors = [f for f in EXPERIENCE_FACTORS if f in present]
    factors += [f for f in present if f not in factors]
    spread = "".join(
        f", max(case when factor = {quote_literal(f)} then experience end) as {quote_ident(f)}"
        for f in factors
    )
    wide = con.execute(
        f"select response_id{spread}, "
        f"cast(any_value({quote_ident(outcome)}) as double) as {quote_ident(outcome)} "
        f"from ({_RATINGS}) where {where} group by response_id order by response_id"
    ).df()
    return wide.set_index("response_id")


def _frames(con) -> dict[str, pd.DataFrame]:
    frames = {"nps": _wide(con, "nps")}
    latest_order = con.execute(
        "select max(ordered_at) from intermediate.int_order_history"
    ).fetchone()[0]
    if latest_order is not None:
        # responses with a complete 90-day window only
        cutoff = (latest_order - pd.Timedelta(days=90)).isoformat(sep=" ")
        frames["repurchased_within_90d"] = _wide(
            con,
            "repurchased_within_90d",
            f"responded_at <= cast({quote_literal(cutoff)} as timestamp)",
        )
    return frames


def compute(warehouse: Warehouse | Path) -> list[dict]:
    """Derived importance of every rated factor for each outcome (rows for the table)."""
    warehouse = as_warehouse(warehouse)
    with warehouse.writer_lock():
        con = warehouse.connect(read_only=True)
        try:
            frames = _frames(con)
        finally:
            con.close()
    rows: list[dict] = []
    for outcome, frame in frames.items():
        factors = [c for c in frame.columns if c != outcome]
        usable = frame.dropna()
        if len(usable) < max(MIN_RESPONDENTS, len(factors) + 3) or not factors:
            continue
        for result in derived_importance(frame, outcome, factors):
            row = {"outcome": outcome, **asdict(result)}
            rows.append(
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            )
    return rows


def write(warehouse: Warehouse | Path, rows: list[dict]) -> int:
    """Replace ``marts.factor_importance`` with ``rows`` in one transaction."""
    schema, name = TABLE
    warehouse = as_warehouse(warehouse)
    with warehouse.writer_lock():
        con = warehouse.connect()
        try:
            con.execute(f"create schema if not exists {schema}")
            con.execute("begin")
            con.execute(
                f"""create or replace table {schema}.{name} (
                    factor_importance_id varchar not null, outcome varchar not null,
                    factor varchar not null, beta double, beta_se double,
                    beta_p_value double, relative_weight double,
                    relative_weight_share double, ci_low double, ci_high double,
                    rank integer, n bigint, r_squared double, method varchar)"""
            )
            if rows:
                con.executemany(
                    f"insert into {schema}.{name} values (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        [
                            f"{r['outcome']}|{r['factor']}",
                            r["outcome"],
                            r["factor"],
                            r["beta"],
                            r["beta_se"],
                            r["beta_p_value"],
                            r["relative_weight"],
                            r["relative_weight_share"],
                            r["ci_low"],
                            r["ci_high"],
                            r["rank"],
                            r["n"],
                            r["r_squared"],
                            "relative weights (Johnson 2000) + standardized OLS, bootstrap CI",
                        ]
                        for r in rows
                    ],
                )
            con.execute("commit")
        finally:
            con.close()
    return len(rows)
