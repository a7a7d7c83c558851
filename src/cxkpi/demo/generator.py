"""``generate``: the demo landing zone for a seed, scale and window: one random stream per
part, each entity built, then written as the source systems deliver it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from cxkpi.demo.files import (
    write_benchmarks,
    write_customers,
    write_deliveries,
    write_factor_ratings,
    write_orders,
    write_org,
    write_responses,
    write_tickets,
)
from cxkpi.demo.operations import make_orders, make_tickets
from cxkpi.demo.org import make_customers, make_org
from cxkpi.demo.surveys import make_comments, make_responses


def generate(
    out_dir: Path,
    scale: float = 1.0,
    seed: int = 42,
    end_date: date = date(2026, 10, 31),
    months: int = 12,
) -> dict[str, int]:
    """Write the demo landing files under out_dir; return rows written per entity.

    ``scale`` multiplies every row count except the organisation's and the benchmarks'; the
    data covers the ``months`` months ending at ``end_date`` (inclusive). Existing files of
    the same names are overwritten, nothing else is removed.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    if months < 1:
        raise ValueError("months must be at least 1")
    out_dir = Path(out_dir)
    window_end = end_date + timedelta(days=1)
    window_start = (pd.Timestamp(window_end) - pd.DateOffset(months=months)).date()
    start, end = _epoch(window_start), _epoch(window_end)

    streams = np.random.SeedSequence(seed).spawn(6)
    rng_org, rng_cust, rng_order, rng_resp, rng_text, rng_ticket = (
        np.random.default_rng(s) for s in streams
    )
    org = make_org(rng_org)
    cust = make_customers(rng_cust, org, _n(3_000, scale), start, end)
    orders = make_orders(rng_order, org, cust, _n(10_000, scale), start, end)
    resp, ratings = make_responses(rng_resp, org, cust, orders, _n(4_000, scale), end)
    resp["Comment"] = make_comments(rng_text, resp)
    tickets = make_tickets(rng_ticket, org, cust, orders, _n(2_500, scale), start, end)

    return {
        "org_units": write_org(out_dir, org),
        "customers": write_customers(out_dir, cust),
        "orders": write_orders(out_dir, orders),
        "deliveries": write_deliveries(out_dir, orders),
        "tickets": write_tickets(out_dir, tickets),
        "survey_responses": write_responses(out_dir, resp),
        "factor_ratings": write_factor_ratings(out_dir, ratings),
        "benchmarks": write_benchmarks(out_dir),
    }


def _n(base: int, scale: float) -> int:
    return max(1, round(base * scale))


def _epoch(d: date) -> int:
    return int(pd.Timestamp(d).as_unit("s").value // 1_000_000_000)
