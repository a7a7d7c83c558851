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

from cxkpi.methods.importance import derived_importance, factor_frame
from cxkpi.warehouse import connect, writer_lock

TABLE = ("marts", "factor_importance")
# (outcome id, how it is computed per response): an X outcome and an O outcome.
OUTCOMES = {
    "nps": "the response's likelihood to recommend (0-10)",
    "repurchased_within_90d": "the customer ordered again within 90 days of responding "
    "(responses with a complete 90-day window only)",
}
MIN_RESPONDENTS = 30


def _frames(con) -> dict[str, pd.DataFrame]:
    ratings = con.execute(
        """select r.response_id, r.factor, r.experience, r.nps,
                  s.repurchased_within_90d, s.responded_at
           from intermediate.int_factor_ratings_enriched r
           inner join intermediate.int_survey_responses_enriched s using (response_id)
           -- a fixed row order: the seeded bootstrap then draws the same resamples
           order by r.response_id, r.factor"""
    ).df()
    latest_order = con.execute(
        "select max(ordered_at) from intermediate.int_order_history"
    ).fetchone()[0]
    frames = {"nps": factor_frame(ratings[["response_id", "factor", "experience", "nps"]])}
    if latest_order is not None:
        window = ratings[ratings["responded_at"] <= latest_order - pd.Timedelta(days=90)]
        window = window.assign(
            repurchased_within_90d=window["repurchased_within_90d"].astype("float64")
        )
        frames["repurchased_within_90d"] = factor_frame(
            window[["response_id", "factor", "experience", "repurchased_within_90d"]],
            outcome="repurchased_within_90d",
        )
    return frames


def compute(warehouse: Path) -> list[dict]:
    """Derived importance of every rated factor for each outcome (rows for the table)."""
    with writer_lock(warehouse):
        con = connect(warehouse, read_only=True)
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


def write(warehouse: Path, rows: list[dict]) -> int:
    """Replace ``marts.factor_importance`` with ``rows`` in one transaction."""
    schema, name = TABLE
    with writer_lock(warehouse):
        con = connect(warehouse)
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
