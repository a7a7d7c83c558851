"""``generate``: the demo landing zone for a seed, scale and window: one random stream per
part, each entity built, then written as the source systems deliver it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from cxkpi.demo import follow_up
from cxkpi.demo._common import int_text
from cxkpi.demo.files import (
    write_benchmarks,
    write_case_events,
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

    streams = np.random.SeedSequence(seed).spawn(7)
    rng_org, rng_cust, rng_order, rng_resp, rng_text, rng_ticket, rng_loop = (
        np.random.default_rng(s) for s in streams
    )
    org = make_org(rng_org)
    cust = make_customers(rng_cust, org, _n(3_000, scale), start, end)
    orders = make_orders(rng_order, org, cust, _n(10_000, scale), start, end)
    resp, ratings = make_responses(rng_resp, org, cust, orders, _n(4_000, scale), end)
    tickets = make_tickets(rng_ticket, org, cust, orders, _n(2_500, scale), start, end)
    # the ticketing tool works the detractor cases; reaching one in time lifts the
    # customer's next answer and brings orders (before the comments, which follow the score)
    loop = follow_up.simulate(rng_loop, resp, orders, tickets, end)
    resp["_nps"] = loop.nps
    resp["NPS"] = int_text(loop.nps)
    extra = loop.extra_orders
    extra.insert(0, "order_id", [f"O{len(orders) + k:07d}" for k in range(1, len(extra) + 1)])
    orders = pd.concat([orders, extra], ignore_index=True)
    resp["Comment"] = make_comments(rng_text, resp)

    return {
        "org_units": write_org(out_dir, org),
        "customers": write_customers(out_dir, cust),
        "orders": write_orders(out_dir, orders),
        "deliveries": write_deliveries(out_dir, orders),
        "tickets": write_tickets(out_dir, tickets),
        "survey_responses": write_responses(out_dir, resp),
        "factor_ratings": write_factor_ratings(out_dir, ratings),
        "case_events": write_case_events(out_dir, loop.events),
        "benchmarks": write_benchmarks(out_dir),
    }


def _n(base: int, scale: float) -> int:
    return max(1, round(base * scale))


def _epoch(d: date) -> int:
    return int(pd.Timestamp(d).as_unit("s").value // 1_000_000_000)
